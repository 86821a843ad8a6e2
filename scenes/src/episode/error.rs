//! Errors of episode files. Every message starts with the file and, where one is to blame, names
//! the key, e.g. `data/ep3.npz: key 'action' has shape (10, 5), expected (11, 6)`.

use std::path::{Path, PathBuf};

use super::npy::NpyError;

#[derive(Debug, thiserror::Error)]
pub enum EpisodeError {
    #[error("{}: {cause}", .path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// The zip directory could not be read; `key` names the entry found damaged when the file was
    /// scanned from its start (a file cut off mid-write usually loses its directory).
    #[error("{}: truncated or not an .npz archive{}: {detail}", .path.display(),
        .key.as_ref().map(|k| format!(" (key '{k}' is incomplete)")).unwrap_or_default())]
    NotNpz {
        path: PathBuf,
        key: Option<String>,
        detail: String,
    },
    #[error("{}: missing key '{key}'", .path.display())]
    MissingKey { path: PathBuf, key: String },
    #[error("{}: key '{key}' is damaged: {detail}", .path.display())]
    Damaged {
        path: PathBuf,
        key: String,
        detail: String,
    },
    #[error("{}: key '{key}': {cause}", .path.display())]
    Npy {
        path: PathBuf,
        key: String,
        cause: NpyError,
    },
    #[error("{}: key '{key}' has dtype '{found}', expected {expected}", .path.display())]
    Dtype {
        path: PathBuf,
        key: String,
        found: String,
        expected: String,
    },
    #[error("{}: key '{key}' has shape {found}, expected {expected}", .path.display())]
    Shape {
        path: PathBuf,
        key: String,
        found: String,
        expected: String,
    },
    /// Well-formed arrays whose contents break the format's rules (e.g. a non-one-hot action).
    #[error("{}: key '{key}': {detail}", .path.display())]
    Value {
        path: PathBuf,
        key: String,
        detail: String,
    },
}

impl EpisodeError {
    pub(crate) fn io(path: &Path, cause: std::io::Error) -> Self {
        EpisodeError::Io {
            path: path.to_path_buf(),
            cause,
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            EpisodeError::Io { path, .. }
            | EpisodeError::NotNpz { path, .. }
            | EpisodeError::MissingKey { path, .. }
            | EpisodeError::Damaged { path, .. }
            | EpisodeError::Npy { path, .. }
            | EpisodeError::Dtype { path, .. }
            | EpisodeError::Shape { path, .. }
            | EpisodeError::Value { path, .. } => path,
        }
    }

    /// The key the error is about, if one is to blame.
    pub fn key(&self) -> Option<&str> {
        match self {
            EpisodeError::Io { .. } => None,
            EpisodeError::NotNpz { key, .. } => key.as_deref(),
            EpisodeError::MissingKey { key, .. }
            | EpisodeError::Damaged { key, .. }
            | EpisodeError::Npy { key, .. }
            | EpisodeError::Dtype { key, .. }
            | EpisodeError::Shape { key, .. }
            | EpisodeError::Value { key, .. } => Some(key),
        }
    }
}
