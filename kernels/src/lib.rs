//! memworld kernels: GPU kernels behind backend-extension traits (SPEC §6), each beside the
//! tensor-op reference it is tested against, plus the one tolerance helper every equivalence
//! test in the workspace uses (STYLE.md item 3).

pub mod tolerance;
