//! Evaluation trajectories of the paper's Memory Maze protocol (Po et al. 2025, §5): spatial
//! retrieval (the context path walked back in reverse, so every frame to generate was seen)
//! and spatial reasoning (the context, then a fresh continuation into places the context may
//! not have shown).

use super::{ExplorePolicy, Policy};
use crate::maze::MazeEnv;
use crate::{Env, Frame, Pose, Rng};

/// Poses, actions and frames of an evaluation trajectory, all of one length T.
///
/// `actions[t]` is the action that led to `frames[t]` / `poses[t]`; `actions[0] = 0` (the
/// reset no-op), as in episode files.
#[derive(Clone, Debug)]
pub struct Trajectory {
    pub poses: Vec<Pose>,
    pub actions: Vec<usize>,
    pub frames: Vec<Frame>,
}

impl Trajectory {
    pub fn len(&self) -> usize {
        self.poses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.poses.is_empty()
    }

    fn push(&mut self, pose: Pose, action: usize, frame: Frame) {
        self.poses.push(pose);
        self.actions.push(action);
        self.frames.push(frame);
    }
}

/// The action with left and right swapped (noop and forward are their own mirror).
pub fn mirror_action(action: usize) -> usize {
    match action {
        2 => 3,
        3 => 2,
        4 => 5,
        5 => 4,
        a => a,
    }
}

/// Resets `env` with `seed` and records `context` frames of exploration (the reset frame and
/// `context - 1` steps), driven by an [`ExplorePolicy`] seeded from `seed`.
fn explore_context(env: &mut MazeEnv, seed: u64, context: usize) -> (Trajectory, ExplorePolicy) {
    let mut policy = ExplorePolicy::new(Rng::new(seed).fork(11).next_u64());
    let mut traj = Trajectory {
        poses: Vec::new(),
        actions: Vec::new(),
        frames: Vec::new(),
    };
    if context == 0 {
        return (traj, policy);
    }
    let mut out = env.reset(seed);
    traj.push(out.pose, 0, out.frame.clone());
    for _ in 1..context {
        let action = policy.act(&out);
        out = env.step(action);
        traj.push(out.pose, action, out.frame.clone());
    }
    (traj, policy)
}

/// Spatial retrieval: `context` poses of an exploration run, then the same poses in reverse
/// order (length `2 * context`). The second half's frames are the context frames reversed,
/// so each is exactly what the agent saw there before.
///
/// The agent cannot drive backwards, so no action reproduces a reversed step; the second half's
/// actions are the mirrored context actions in reverse order (`actions[context] = 0`, the
/// turn-around), and the poses are the authoritative conditioning. On return `env` is at the
/// last pose of the trajectory (the first context pose).
pub fn retrieval_trajectory(env: &mut MazeEnv, seed: u64, context: usize) -> Trajectory {
    let (mut traj, _) = explore_context(env, seed, context);
    for k in 0..context {
        let src = context - 1 - k;
        let action = if k == 0 {
            0
        } else {
            mirror_action(traj.actions[src + 1])
        };
        traj.push(traj.poses[src], action, traj.frames[src].clone());
    }
    if let Some(&pose) = traj.poses.last() {
        env.set_pose(pose);
    }
    traj
}

/// Spatial reasoning: `context` frames of exploration, then `generate` more steps from the
/// last context pose driven by a fresh explorer (new seed, no memory of the visited cells)
/// that walks to random reachable cells. Length `context + generate`; frames, poses and
/// actions are those the environment produced.
pub fn reasoning_trajectory(
    env: &mut MazeEnv,
    seed: u64,
    context: usize,
    generate: usize,
) -> Trajectory {
    let (mut traj, _) = explore_context(env, seed, context);
    if context == 0 {
        return traj;
    }
    let mut fresh = ExplorePolicy::new(Rng::new(seed).fork(12).next_u64());
    let mut out = crate::StepOutput {
        frame: traj.frames[context - 1].clone(),
        reward: 0.0,
        done: false,
        truncated: false,
        pose: env.pose(),
        info: crate::StepInfo::Maze(env.info()),
    };
    for _ in 0..generate {
        let action = fresh.act(&out);
        out = env.step(action);
        traj.push(out.pose, action, out.frame.clone());
    }
    traj
}
