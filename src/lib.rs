//! Root package: holds the workspace end-to-end tests in `tests/`.
