//! memworld model: the mixer library shared by the video world model and hybrid language
//! models (SPEC §5.3, §7), and the world model itself (SPEC §5).

mod linear_routine;
pub mod linear_rows;
pub mod mixers;
pub mod precision;
pub mod world;

/// The shared tolerance helper (re-exported so model tests and kernel tests use one).
pub use kernels::tolerance;
