//! `MazeEnv`: the maze scene as an [`Env`] (SPEC §4.1). `reset(seed)` generates the level and
//! spawns the agent; `step(action)` integrates the action, gives +1 when the agent touches the
//! current target (then picks another target at random) and renders the frame that results.

use std::sync::Arc;

use super::physics::{self, Velocity, AGENT_RADIUS};
use super::{Level, MazeConfig, Renderer, ACTIONS};
use crate::{Env, Frame, MazeInfo, Pose, Rng, SceneError, SceneKind, StepInfo, StepOutput};

/// Distance (cells) between the agent and the target's centre that counts as touching it.
pub const TOUCH_DISTANCE: f64 = 0.5;

/// The maze environment. Holds one level at a time; `reset` replaces it.
#[derive(Clone, Debug)]
pub struct MazeEnv {
    config: MazeConfig,
    level: Level,
    pose: Pose,
    velocity: Velocity,
    steps: usize,
    /// Draws new targets after a touch; seeded from the episode seed.
    rng: Rng,
    renderer: Arc<Renderer>,
}

impl MazeEnv {
    /// A maze environment; the level of seed 0 is loaded until the first `reset`.
    ///
    /// # Panics
    /// If `config` is invalid (see [`MazeConfig::validate`]); use [`MazeEnv::try_new`] for
    /// configurations that come from users.
    pub fn new(config: MazeConfig) -> Self {
        match Self::try_new(config) {
            Ok(env) => env,
            Err(e) => panic!("MazeEnv::new: {e}"),
        }
    }

    /// A maze environment, or an error naming what is wrong with `config`.
    pub fn try_new(config: MazeConfig) -> Result<Self, SceneError> {
        config.validate()?;
        let level = Level::generate(&config, 0);
        Ok(Self {
            config,
            pose: level.spawn,
            level,
            velocity: Velocity::default(),
            steps: 0,
            rng: Rng::new(0),
            renderer: Arc::new(Renderer::new(config.resolution)),
        })
    }

    pub fn config(&self) -> &MazeConfig {
        &self.config
    }

    /// The current level (layout, regions, objects, current target).
    pub fn level(&self) -> &Level {
        &self.level
    }

    pub fn pose(&self) -> Pose {
        self.pose
    }

    pub fn velocity(&self) -> Velocity {
        self.velocity
    }

    /// Teleports the agent to `pose` and stops it. Neither reward nor step count changes.
    pub fn set_pose(&mut self, pose: Pose) {
        self.pose = Pose {
            position: pose.position,
            yaw: physics::wrap_yaw(pose.yaw),
        };
        self.velocity = Velocity::default();
    }

    /// Renders the current level from any pose (target border included).
    pub fn render_at(&self, pose: Pose) -> Frame {
        self.renderer.render(&self.level, pose)
    }

    /// Renders the current level from `pose` into an existing frame (no allocation).
    pub fn render_into(&self, pose: Pose, frame: &mut Frame) {
        self.renderer.render_into(&self.level, pose, frame);
    }

    /// True when the point (x, y) lies in a free cell of the current level.
    pub fn is_free(&self, x: f64, y: f64) -> bool {
        self.level.is_free(x, y)
    }

    /// True when the agent's disc at (x, y) would overlap a wall.
    pub fn agent_collides(&self, x: f64, y: f64) -> bool {
        self.level.collides(x, y, AGENT_RADIUS)
    }

    /// Maze state for episode files.
    pub fn info(&self) -> MazeInfo {
        MazeInfo {
            size: self.level.size,
            layout: Arc::clone(&self.level.layout),
            targets_pos: self.level.objects.iter().map(|o| o.pos).collect(),
            target: self.level.target,
            target_color: self.level.target_object().color,
        }
    }

    fn output(&self, reward: f64) -> StepOutput {
        let done = self.steps >= self.config.steps();
        StepOutput {
            frame: self.render_at(self.pose),
            reward,
            done,
            truncated: done,
            pose: self.pose,
            info: StepInfo::Maze(self.info()),
        }
    }

    /// A new target, different from the current one.
    fn pick_new_target(&mut self) {
        let k = self.level.objects.len();
        if k > 1 {
            let next = self.rng.below(k - 1);
            self.level.target = if next >= self.level.target {
                next + 1
            } else {
                next
            };
        }
    }
}

impl Env for MazeEnv {
    fn scene(&self) -> SceneKind {
        SceneKind::Maze
    }

    fn action_names(&self) -> &[&'static str] {
        &ACTIONS
    }

    fn resolution(&self) -> usize {
        self.config.resolution
    }

    fn reset(&mut self, seed: u64) -> StepOutput {
        self.level = Level::generate(&self.config, seed);
        self.pose = self.level.spawn;
        self.velocity = Velocity::default();
        self.steps = 0;
        self.rng = Rng::new(seed).fork(4);
        self.output(0.0)
    }

    /// # Panics
    /// If `action >= 6` (the action set is fixed; callers validate user input).
    fn step(&mut self, action: usize) -> StepOutput {
        assert!(
            action < ACTIONS.len(),
            "maze action {action} out of range 0..{}",
            ACTIONS.len()
        );
        let (pose, velocity) = physics::integrate(&self.level, self.pose, self.velocity, action);
        self.pose = pose;
        self.velocity = velocity;
        self.steps += 1;
        let target = self.level.target_object().pos;
        let (dx, dy) = (target[0] - pose.position[0], target[1] - pose.position[1]);
        let reward = if dx * dx + dy * dy < TOUCH_DISTANCE * TOUCH_DISTANCE {
            self.pick_new_target();
            1.0
        } else {
            0.0
        };
        self.output(reward)
    }

    fn steps(&self) -> usize {
        self.steps
    }
}
