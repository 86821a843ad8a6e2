//! `VoxelEnv`: the Minecraft-like scene behind the `Env` trait. A reset generates the world of
//! the seed (kept when the seed repeats) and puts the player on a dry spawn spot facing a random
//! multiple of the turn angle; a step applies one action, runs the physics and renders the view.

use super::generate::{generate, spawn_point};
use super::physics::{self, Body};
use super::render::Renderer;
use super::trig::{sin_cos, wrap_angle};
use super::world::World;
use super::{Action, VoxelConfig, ACTIONS, TURN_ANGLE, WALK_DISTANCE};
use crate::{Env, Frame, Pose, Rng, SceneError, SceneKind, StepInfo, StepOutput};

/// The voxel world with a player in it.
#[derive(Clone, Debug)]
pub struct VoxelEnv {
    config: VoxelConfig,
    world: World,
    /// True once `world_mut` was handed out: the next reset regenerates even for the same seed.
    world_edited: bool,
    renderer: Renderer,
    body: Body,
    yaw: f64,
    steps: usize,
}

impl VoxelEnv {
    /// A validated environment, already reset to seed 0.
    pub fn new(config: VoxelConfig) -> Result<Self, SceneError> {
        config.validate()?;
        let world = generate(0);
        let body = Body {
            feet: [0.0; 3],
            vy: 0.0,
            on_ground: false,
        };
        let mut env = Self {
            config,
            world,
            world_edited: false,
            renderer: Renderer::new(config.resolution),
            body,
            yaw: 0.0,
            steps: 0,
        };
        env.spawn(0);
        Ok(env)
    }

    pub fn config(&self) -> &VoxelConfig {
        &self.config
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    /// Mutable access to the blocks (e.g. to place or break them). The player is not moved: call
    /// `set_pose` afterwards if an edit may have buried it. The next reset regenerates the world.
    pub fn world_mut(&mut self) -> &mut World {
        self.world_edited = true;
        &mut self.world
    }

    /// Feet position and yaw of the player.
    pub fn pose(&self) -> Pose {
        Pose {
            position: self.body.feet,
            yaw: self.yaw,
        }
    }

    /// Moves the player to `pose` with no vertical speed. A position inside solid blocks is
    /// lifted to the first free place above, and the position is kept inside the world's border.
    pub fn set_pose(&mut self, pose: Pose) {
        let feet = physics::resolve_overlap(&self.world, pose.position);
        let below = [feet[0], feet[1] - 1e-3, feet[2]];
        self.body = Body {
            feet,
            vy: 0.0,
            on_ground: physics::overlaps_solid(&self.world, below),
        };
        self.yaw = wrap_angle(pose.yaw);
    }

    /// Whether the player stands on solid ground (a jump is possible).
    pub fn on_ground(&self) -> bool {
        self.body.on_ground
    }

    /// The view from `pose` (feet position and yaw) in the current world; changes nothing.
    pub fn render_at(&self, pose: Pose) -> Frame {
        let mut frame = Frame::new(self.config.resolution, self.config.resolution);
        self.renderer.render(&self.world, pose, &mut frame);
        frame
    }

    /// `render_at` into an existing frame, without allocating.
    pub fn render_into(&self, pose: Pose, frame: &mut Frame) {
        self.renderer.render(&self.world, pose, frame);
    }

    /// The same image as `render_at`, by the reference traversal that looks up every cell.
    pub fn render_reference_at(&self, pose: Pose) -> Frame {
        let mut frame = Frame::new(self.config.resolution, self.config.resolution);
        self.renderer
            .render_reference(&self.world, pose, &mut frame);
        frame
    }

    /// Applies `action` (an index into `ACTIONS`) and runs the physics for one step, without
    /// rendering; counts as a step. `step` is this plus the rendered frame.
    ///
    /// Panics if `action` is not an index into `ACTIONS` (a caller bug, not user input).
    pub fn advance(&mut self, action: usize) {
        let action = Action::from_index(action).unwrap_or_else(|| {
            panic!(
                "voxel action index {action} out of range 0..{}",
                ACTIONS.len()
            )
        });
        let mut walk = [0.0; 2];
        match action {
            Action::Noop | Action::Jump => {}
            Action::Forward => {
                let (s, c) = sin_cos(self.yaw);
                walk = [c * WALK_DISTANCE, s * WALK_DISTANCE];
            }
            Action::TurnLeft => self.yaw = wrap_angle(self.yaw + TURN_ANGLE),
            Action::TurnRight => self.yaw = wrap_angle(self.yaw - TURN_ANGLE),
        }
        physics::step(&self.world, &mut self.body, walk, action == Action::Jump);
        self.steps += 1;
    }

    fn spawn(&mut self, seed: u64) {
        let mut rng = Rng::new(seed).fork(0x5BA7);
        let feet = spawn_point(&self.world, &mut rng);
        let turns = rng.below((std::f64::consts::TAU / TURN_ANGLE).round() as usize);
        self.set_pose(Pose {
            position: feet,
            yaw: turns as f64 * TURN_ANGLE,
        });
        self.steps = 0;
    }

    fn output(&self) -> StepOutput {
        let done = self.steps >= self.config.episode_steps;
        StepOutput {
            frame: self.render_at(self.pose()),
            reward: 0.0,
            done,
            truncated: done,
            pose: self.pose(),
            info: StepInfo::Voxel,
        }
    }
}

impl Env for VoxelEnv {
    fn scene(&self) -> SceneKind {
        SceneKind::Voxel
    }

    fn action_names(&self) -> &[&'static str] {
        &ACTIONS
    }

    fn resolution(&self) -> usize {
        self.config.resolution
    }

    fn reset(&mut self, seed: u64) -> StepOutput {
        if self.world_edited || self.world.seed() != seed {
            self.world = generate(seed);
            self.world_edited = false;
        }
        self.spawn(seed);
        self.output()
    }

    fn step(&mut self, action: usize) -> StepOutput {
        self.advance(action);
        self.output()
    }

    fn steps(&self) -> usize {
        self.steps
    }
}
