//! Typed errors of the scenes crate: invalid scene configuration and unknown policy names.
//! Library code returns these; the app turns them into one-line messages naming the flag.

/// Everything a caller of the scenes crate can get wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SceneError {
    /// A maze side length other than the four Memory Maze sizes.
    #[error("invalid maze size {0}: expected 9, 11, 13 or 15")]
    InvalidMazeSize(usize),
    /// An observation resolution the renderer does not support.
    #[error("invalid resolution {0}: expected 64, 128 or 256")]
    InvalidResolution(usize),
    /// An observation resolution the voxel renderer does not support.
    #[error("invalid voxel resolution {0}: expected 64 or 128")]
    InvalidVoxelResolution(usize),
    /// An episode length of zero steps.
    #[error("invalid episode length 0: an episode needs at least one step")]
    InvalidEpisodeSteps,
    /// A policy name that `policy::by_name` does not know.
    #[error("unknown policy '{0}' (expected 'explore' or 'random')")]
    UnknownPolicy(String),
    /// A policy asked for an action set it cannot drive.
    #[error("policy '{policy}' cannot drive {n_actions} actions: {reason}")]
    PolicyActions {
        policy: String,
        n_actions: usize,
        reason: String,
    },
}
