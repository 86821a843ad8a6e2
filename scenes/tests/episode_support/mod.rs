//! A tiny deterministic environment for episode tests: its frames hash the whole history, so
//! any misalignment between actions and frames changes the bytes.

#![allow(dead_code)]

use std::sync::Arc;

use scenes::episode::{EpisodeMeta, FORMAT_VERSION};
use scenes::{Env, Frame, MazeInfo, Pose, SceneKind, StepInfo, StepOutput};

pub const MAZE_ACTIONS: [&str; 6] = [
    "noop",
    "forward",
    "turn_left",
    "turn_right",
    "forward_left",
    "forward_right",
];
pub const VOXEL_ACTIONS: [&str; 5] = ["noop", "forward", "turn_left", "turn_right", "jump"];

pub struct FakeEnv {
    pub scene: SceneKind,
    pub res: usize,
    pub size: usize,
    /// The task ends (terminal) after this many steps, if set.
    pub terminal_after: Option<usize>,
    steps: usize,
    hash: u64,
    pose: Pose,
    target: usize,
}

impl FakeEnv {
    pub fn new(scene: SceneKind, res: usize) -> Self {
        Self {
            scene,
            res,
            size: 5,
            terminal_after: None,
            steps: 0,
            hash: 0,
            pose: Pose {
                position: [0.0; 3],
                yaw: 0.0,
            },
            target: 0,
        }
    }

    fn mix(&mut self, v: u64) {
        self.hash = (self.hash ^ v)
            .wrapping_mul(0x100_0000_01b3)
            .rotate_left(17);
    }

    fn output(&self, reward: f64) -> StepOutput {
        let mut frame = Frame::new(self.res, self.res);
        let mut h = self.hash;
        for b in frame.rgb.iter_mut() {
            h = h
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (h >> 56) as u8;
        }
        let info = match self.scene {
            SceneKind::Maze => {
                let n = self.size;
                let layout: Vec<u8> = (0..n * n)
                    .map(|i| (i % n != 0 && i / n != 0 && i % n != n - 1 && i / n != n - 1) as u8)
                    .collect();
                StepInfo::Maze(MazeInfo {
                    size: n,
                    layout: Arc::new(layout),
                    targets_pos: vec![[1.5, 1.5], [3.5, 2.5], [2.5, 3.5]],
                    target: self.target,
                    target_color: [self.target as f64 / 2.0, 0.25, 1.0],
                })
            }
            SceneKind::Voxel => StepInfo::Voxel,
        };
        let terminal = self.terminal_after.is_some_and(|n| self.steps >= n);
        StepOutput {
            frame,
            reward,
            done: terminal,
            truncated: false,
            pose: self.pose,
            info,
        }
    }
}

impl Env for FakeEnv {
    fn scene(&self) -> SceneKind {
        self.scene
    }

    fn action_names(&self) -> &[&'static str] {
        match self.scene {
            SceneKind::Maze => &MAZE_ACTIONS,
            SceneKind::Voxel => &VOXEL_ACTIONS,
        }
    }

    fn resolution(&self) -> usize {
        self.res
    }

    fn reset(&mut self, seed: u64) -> StepOutput {
        self.steps = 0;
        self.hash = 0;
        self.mix(seed);
        self.target = (seed % 3) as usize;
        self.pose = Pose {
            position: [2.5, 2.5, (seed % 7) as f64],
            yaw: 0.3,
        };
        self.output(0.0)
    }

    fn step(&mut self, action: usize) -> StepOutput {
        self.steps += 1;
        self.mix(action as u64 + 1);
        self.pose.yaw += [0.0, 0.0, 0.2, -0.2, 0.1, -0.1, 0.0][action];
        if matches!(action, 1 | 4 | 5) {
            self.pose.position[0] += 0.1 * self.pose.yaw.cos();
            self.pose.position[1] += 0.1 * self.pose.yaw.sin();
        }
        let reward = if self.hash % 5 == 0 { 1.0 } else { 0.0 };
        if reward > 0.0 {
            self.target = (self.target + 1) % 3;
        }
        self.output(reward)
    }

    fn steps(&self) -> usize {
        self.steps
    }
}

/// A policy that cycles deterministically through the actions, seeded.
pub fn cycling_policy(seed: u64, n_actions: usize) -> impl FnMut(&StepOutput) -> usize + Send {
    let mut state = seed;
    move |_last: &StepOutput| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % n_actions as u64) as usize
    }
}

pub fn meta_for(env: &dyn Env, seed: u64, size: usize) -> EpisodeMeta {
    EpisodeMeta {
        format_version: FORMAT_VERSION,
        scene: env.scene(),
        seed: Some(seed),
        size,
        resolution: env.resolution(),
        action_names: env.action_names().iter().map(|s| s.to_string()).collect(),
        policy: Some("cycle".into()),
        steps: 0,
    }
}

/// A fresh empty directory under the test target dir.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
