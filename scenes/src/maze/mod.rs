//! The Memory-Maze-like scene (SPEC §4.1): seeded grid mazes with rooms and corridors,
//! per-region wall and floor looks, coloured ball targets, the current target colour as a
//! border, and a first-person CPU ray caster.
//!
//! Units: positions are in cells, `x` to the right and `y` up on the map, row 0 at the bottom;
//! yaw is in radians counter-clockwise from +x. The layout includes its outer wall, so the
//! navigable interior of an N×N maze is at most (N-2)×(N-2).

mod env;
mod level;
mod physics;
mod render;
mod textures;

pub use env::{MazeEnv, TOUCH_DISTANCE};
pub use level::{grid_distances, grid_path, Level, Object, Room};
pub use physics::{
    collides, integrate, wrap_yaw, Velocity, AGENT_RADIUS, FORWARD_SPEED, MOMENTUM, TURN_RATE,
};
pub use render::{border_width, draw_border, Renderer, BALL_RADIUS, EYE_HEIGHT, FOV_DEGREES};
pub use textures::{Look, Pattern, FLOOR_LOOKS, WALL_LOOKS};

use crate::SceneError;

/// Action names in the Memory Maze order (discrete actions of `memory_maze`).
pub const ACTIONS: [&str; 6] = [
    "noop",
    "forward",
    "turn_left",
    "turn_right",
    "forward_left",
    "forward_right",
];

/// Maze side lengths of the four Memory Maze tasks.
pub const SIZES: [usize; 4] = [9, 11, 13, 15];
/// Supported observation resolutions.
pub const RESOLUTIONS: [usize; 3] = [64, 128, 256];

/// Target colours in Memory Maze order (red, green, blue, purple, yellow, salmon), RGB in [0, 1].
pub const TARGET_COLORS: [[f64; 3]; 6] = [
    [170.0 / 220.0, 38.0 / 220.0, 30.0 / 220.0],
    [99.0 / 220.0, 170.0 / 220.0, 88.0 / 220.0],
    [39.0 / 220.0, 140.0 / 220.0, 217.0 / 220.0],
    [93.0 / 220.0, 105.0 / 220.0, 199.0 / 220.0],
    [220.0 / 220.0, 193.0 / 220.0, 59.0 / 220.0],
    [220.0 / 220.0, 128.0 / 220.0, 107.0 / 220.0],
];

/// Target colour names, parallel to [`TARGET_COLORS`].
pub const TARGET_COLOR_NAMES: [&str; 6] = ["red", "green", "blue", "purple", "yellow", "salmon"];

/// Converts a colour in [0, 1] to bytes (round to nearest), as drawn in the border.
pub fn color_to_u8(c: [f64; 3]) -> [u8; 3] {
    c.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
}

/// Maze scene configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MazeConfig {
    /// Cells per side: 9, 11, 13 or 15. Default: 9.
    pub size: usize,
    /// Observation side in pixels: 64, 128 or 256. Default: 64.
    pub resolution: usize,
    /// Steps per episode; `None` uses the Memory Maze limit of the size
    /// (1000/2000/3000/4000 for 9/11/13/15). Default: None.
    pub episode_steps: Option<usize>,
}

impl Default for MazeConfig {
    fn default() -> Self {
        Self {
            size: 9,
            resolution: 64,
            episode_steps: None,
        }
    }
}

impl MazeConfig {
    /// A configuration of `size` cells per side at 64×64 with the default episode length.
    pub fn new(size: usize) -> Result<Self, SceneError> {
        let config = Self {
            size,
            ..Self::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// The same configuration at another resolution.
    pub fn with_resolution(self, resolution: usize) -> Result<Self, SceneError> {
        let config = Self { resolution, ..self };
        config.validate()?;
        Ok(config)
    }

    /// The same configuration with an explicit episode length.
    pub fn with_episode_steps(self, steps: usize) -> Result<Self, SceneError> {
        let config = Self {
            episode_steps: Some(steps),
            ..self
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks size, resolution and episode length.
    pub fn validate(&self) -> Result<(), SceneError> {
        if !SIZES.contains(&self.size) {
            return Err(SceneError::InvalidMazeSize(self.size));
        }
        if !RESOLUTIONS.contains(&self.resolution) {
            return Err(SceneError::InvalidResolution(self.resolution));
        }
        if self.episode_steps == Some(0) {
            return Err(SceneError::InvalidEpisodeSteps);
        }
        Ok(())
    }

    /// Position of the size in [`SIZES`] (0 for 9×9 … 3 for 15×15).
    fn size_index(&self) -> usize {
        SIZES.iter().position(|&s| s == self.size).unwrap_or(0)
    }

    /// Number of target objects: 3/4/5/6 for 9/11/13/15.
    pub fn n_targets(&self) -> usize {
        3 + self.size_index()
    }

    /// Steps per episode: the explicit value, else 1000/2000/3000/4000 for 9/11/13/15.
    pub fn steps(&self) -> usize {
        self.episode_steps.unwrap_or(1000 * (1 + self.size_index()))
    }

    /// Rooms the generator tries to place: 3/4/5/6 for 9/11/13/15.
    pub fn max_rooms(&self) -> usize {
        3 + self.size_index()
    }
}
