//! Minecraft-like voxel scene (SPEC §4.2): a finite island of blocks generated from a seed
//! (gradient-noise terrain with hills, mountains, lakes, beaches and deserts; grass, dirt,
//! stone, sand, water at a sea level; trees of wood and leaves), a player box under gravity with
//! collision and jumping, and a CPU voxel ray caster with per-face shading, procedural textures,
//! translucent water, a sky gradient with a square sun, and distance fog. Everything is a pure
//! function of the seed and the actions, with portable arithmetic (no platform `libm` calls on
//! the paths that decide frames or poses).
//!
//! Conventions: blocks are unit cubes, cell `(x, y, z)` spans `[x, x+1) × [y, y+1) × [z, z+1)`,
//! `y` is up. A pose is the player's feet position (centre of the bottom of its box) and a yaw:
//! the heading is `(cos yaw, sin yaw)` in `(x, z)`, and turning left increases the yaw. On a
//! top-down map this is counter-clockwise when `x` points right and `z` points up.
//!
//! Actions follow the TECO Minecraft data (noop, forward, turn left, turn right, jump), with a
//! fixed turn of 15°.

mod block;
mod columns;
mod env;
mod generate;
mod noise;
mod physics;
mod reference;
mod render;
mod shade;
mod trig;
mod world;

pub use block::Block;
pub use env::VoxelEnv;
pub use generate::generate;
pub use noise::GradientNoise;
pub use physics::{overlaps_solid, EYE_HEIGHT, HALF_WIDTH, HEIGHT, SUBSTEPS};
pub use render::{Renderer, FOV_DEGREES};
pub use shade::{FOG_START, RAY_MAX};
pub use trig::{sin_cos, wrap_angle};
pub use world::{World, OCEAN_FLOOR, SEA_LEVEL, WORLD_SIZE};

use crate::SceneError;

/// Action names in index order (index 0 is the no-op).
pub const ACTIONS: [&str; 5] = ["noop", "forward", "turn_left", "turn_right", "jump"];

/// Yaw change of one turn action, radians (15°).
pub const TURN_ANGLE: f64 = std::f64::consts::PI / 12.0;
/// Horizontal distance one forward step covers on dry land, blocks (half in water).
pub const WALK_DISTANCE: f64 = 0.3;

/// The discrete actions, in the order of `ACTIONS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Noop = 0,
    Forward = 1,
    TurnLeft = 2,
    TurnRight = 3,
    Jump = 4,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Noop,
        Action::Forward,
        Action::TurnLeft,
        Action::TurnRight,
        Action::Jump,
    ];

    pub fn from_index(i: usize) -> Option<Self> {
        Self::ALL.get(i).copied()
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        ACTIONS[self as usize]
    }
}

/// Settings of a voxel environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VoxelConfig {
    /// Side of the square observation in pixels: 64 or 128. Default: 64.
    pub resolution: usize,
    /// Steps after which an episode is truncated. Default: 1000.
    pub episode_steps: usize,
}

impl Default for VoxelConfig {
    fn default() -> Self {
        Self {
            resolution: 64,
            episode_steps: 1000,
        }
    }
}

impl VoxelConfig {
    /// Observation sizes the voxel renderer supports.
    pub const RESOLUTIONS: [usize; 2] = [64, 128];

    pub fn validate(&self) -> Result<(), SceneError> {
        if !Self::RESOLUTIONS.contains(&self.resolution) {
            return Err(SceneError::InvalidVoxelResolution(self.resolution));
        }
        if self.episode_steps == 0 {
            return Err(SceneError::InvalidEpisodeSteps);
        }
        Ok(())
    }
}
