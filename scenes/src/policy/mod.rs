//! Scripted policies (SPEC §4.4): BFS exploration of the maze, random actions with
//! persistence, a forward-biased wanderer for the voxel world, and the evaluation
//! trajectories (retrieval and reasoning) of the paper's Memory Maze protocol.
//!
//! A policy sees only what an episode file holds (the last [`StepOutput`]: frame, pose, layout),
//! and draws every choice from its own seeded [`Rng`](crate::Rng), so runs are reproducible.

mod explore;
mod random;
mod trajectory;

pub use explore::ExplorePolicy;
pub use random::{RandomPolicy, WanderPolicy};
pub use trajectory::{mirror_action, reasoning_trajectory, retrieval_trajectory, Trajectory};

use crate::{SceneError, SceneKind, StepOutput};

/// Names accepted by [`by_name`].
pub const POLICY_NAMES: [&str; 2] = ["explore", "random"];

/// Chooses the next action from the last step's output.
pub trait Policy: Send {
    /// The policy's name as given to [`by_name`].
    fn name(&self) -> &'static str;
    /// Restarts the policy for a new episode; the same seed gives the same choices.
    fn reset(&mut self, seed: u64);
    /// The action (an index into the env's action names) to take after `last`.
    fn act(&mut self, last: &StepOutput) -> usize;
}

/// Builds a policy by name for a scene with `n_actions` actions.
///
/// `explore` is [`ExplorePolicy`] in the maze (six Memory Maze actions) and [`WanderPolicy`] in
/// the voxel world (needs at least noop, forward, turn_left, turn_right); `random` is
/// [`RandomPolicy`] for any action count.
pub fn by_name(
    name: &str,
    scene: SceneKind,
    n_actions: usize,
    seed: u64,
) -> Result<Box<dyn Policy>, SceneError> {
    let wrong = |reason: &str| SceneError::PolicyActions {
        policy: name.to_string(),
        n_actions,
        reason: reason.to_string(),
    };
    match (name, scene) {
        ("explore", SceneKind::Maze) => {
            if n_actions != crate::maze::ACTIONS.len() {
                return Err(wrong("maze exploration uses the six Memory Maze actions"));
            }
            Ok(Box::new(ExplorePolicy::new(seed)))
        }
        ("explore", SceneKind::Voxel) => {
            if n_actions < 4 {
                return Err(wrong(
                    "wandering needs noop, forward, turn_left and turn_right",
                ));
            }
            Ok(Box::new(WanderPolicy::new(n_actions, seed)))
        }
        ("random", _) => {
            if n_actions == 0 {
                return Err(wrong("there is no action to choose from"));
            }
            Ok(Box::new(RandomPolicy::new(n_actions, seed)))
        }
        _ => Err(SceneError::UnknownPolicy(name.to_string())),
    }
}
