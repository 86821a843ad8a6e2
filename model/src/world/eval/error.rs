//! Typed errors of the evaluation harness (SPEC §5.6): settings that do not fit together,
//! episode files that cannot serve as context and ground truth, and models that do not fit the
//! scene.

use std::path::PathBuf;

use scenes::episode::EpisodeError;
use scenes::SceneError;

use crate::world::WorldError;

/// Everything the evaluation harness can report to its caller.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Settings that do not fit together (e.g. a retrieval run whose generated length is not
    /// its context length).
    #[error("{0}")]
    Settings(String),

    /// A protocol name other than `retrieval` or `reasoning`.
    #[error("unknown evaluation protocol '{0}' (expected 'retrieval' or 'reasoning')")]
    UnknownProtocol(String),

    /// A model whose resolution, actions or pose conditioning do not fit the episodes.
    #[error("model '{model}' cannot be evaluated on {what}: {reason}")]
    ModelMismatch {
        model: String,
        what: String,
        reason: String,
    },

    /// An episode file that cannot provide what the protocol needs.
    #[error("{path}: {reason}")]
    EpisodeFile { path: PathBuf, reason: String },

    /// An episode directory with too few (or no) episode files.
    #[error("{path}: {reason}")]
    EpisodeDir { path: PathBuf, reason: String },

    #[error(transparent)]
    Episode(#[from] EpisodeError),

    #[error(transparent)]
    Scene(#[from] SceneError),

    #[error(transparent)]
    World(#[from] WorldError),
}
