//! Typed errors of the world model (SPEC §9): unknown presets, configs that do not fit
//! together, shapes that do not match the model, and (from checkpoints and data) I/O problems.

use std::path::PathBuf;

/// Everything the world model library can report to its caller.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// `WorldModelConfig::preset` got a name it does not know.
    #[error("unknown world-model preset '{name}' (expected one of: {known})")]
    UnknownPreset { name: String, known: String },

    /// A config whose sizes do not fit together (e.g. a block size that does not divide the grid).
    #[error("invalid world-model config '{name}': {reason}")]
    InvalidConfig { name: String, reason: String },

    /// Input tensors or conditions that do not match the model's config.
    #[error("shape mismatch: {0}")]
    Shape(String),

    /// A streaming session was asked to generate before it was prefilled.
    #[error("the streaming session has no context yet: call prefill first")]
    NotPrefilled,

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Neither a checkpoint directory nor a run directory with checkpoints.
    #[error("no checkpoint at {path}: expected a checkpoint directory (with state.json) or a run directory (with checkpoints/latest)")]
    NoCheckpoint { path: PathBuf },

    /// A checkpoint file that is missing, truncated, corrupted or unreadable.
    #[error("damaged checkpoint file {path}: {reason}")]
    CheckpointDamaged { path: PathBuf, reason: String },

    /// A checkpoint whose config is not the one asked for.
    #[error("checkpoint {path} was trained with config '{found}', not the requested '{expected}' (differs in {differences})")]
    ConfigMismatch {
        path: PathBuf,
        expected: String,
        found: String,
        differences: String,
    },

    /// A checkpoint whose weights do not have the shapes its config (or this code) builds.
    #[error("checkpoint {path} does not fit its model: {reason}")]
    ArchitectureMismatch { path: PathBuf, reason: String },

    /// Training data that cannot be used (missing directory, no episodes, wrong frame size, ...).
    #[error("training data '{data}': {reason}")]
    Data { data: String, reason: String },

    /// Training options that do not fit together or do not match the run being resumed.
    #[error("training options: {0}")]
    TrainOptions(String),

    /// The training loss became NaN or infinite.
    #[error("training diverged at step {step}: the loss is {loss}")]
    Diverged { step: usize, loss: f64 },
}
