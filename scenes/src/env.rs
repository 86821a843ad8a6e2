//! The `Env` trait shared by the real scenes and (later) the world model's streaming session
//! (SPEC §3: the player, recorder and evaluator drive either without knowing which), and the
//! plain data types it returns.

use std::sync::Arc;

/// Which scene an environment or an episode file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SceneKind {
    Maze,
    Voxel,
}

impl SceneKind {
    pub fn name(self) -> &'static str {
        match self {
            SceneKind::Maze => "maze",
            SceneKind::Voxel => "voxel",
        }
    }
}

impl std::str::FromStr for SceneKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "maze" => Ok(SceneKind::Maze),
            "voxel" => Ok(SceneKind::Voxel),
            other => Err(format!(
                "unknown scene '{other}' (expected 'maze' or 'voxel')"
            )),
        }
    }
}

/// An RGB image, row-major, row 0 at the top, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Frame {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            rgb: vec![0; width * height * 3],
        }
    }

    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    pub fn set_pixel(&mut self, x: usize, y: usize, c: [u8; 3]) {
        let i = (y * self.width + x) * 3;
        self.rgb[i..i + 3].copy_from_slice(&c);
    }
}

/// The agent's exact pose. Maze: `position = [x, y, 0]` in cell units (the cell is
/// `floor(x), floor(y)`, row 0 at the bottom), `yaw` in radians counter-clockwise from +x.
/// Voxel: `position = [x, y, z]` in blocks with `y` up (eye at the feet + eye height), `yaw`
/// in radians counter-clockwise from +x seen from above.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pose {
    pub position: [f64; 3],
    pub yaw: f64,
}

impl Pose {
    /// Unit heading vector in the horizontal plane (x, y for the maze; x, z for voxel).
    pub fn heading(&self) -> [f64; 2] {
        [self.yaw.cos(), self.yaw.sin()]
    }
}

/// Maze-specific state needed by the episode format (SPEC §4.3).
#[derive(Clone, Debug, PartialEq)]
pub struct MazeInfo {
    /// Cells per side N.
    pub size: usize,
    /// N×N, indexed `[y * N + x]`, row 0 at the bottom; 1 free, 0 wall. Shared, it never changes
    /// within an episode.
    pub layout: Arc<Vec<u8>>,
    /// Global (x, y) of every target object, in cell units.
    pub targets_pos: Vec<[f64; 2]>,
    /// Index into `targets_pos` of the current target.
    pub target: usize,
    /// Current target colour, RGB in [0, 1].
    pub target_color: [f64; 3],
}

/// Scene-specific extras that come with every step.
#[derive(Clone, Debug, PartialEq)]
pub enum StepInfo {
    Maze(MazeInfo),
    Voxel,
}

/// What `reset` and `step` return: the observation that results, the reward received on
/// arriving at it, whether the task ended, and the exact pose.
#[derive(Clone, Debug)]
pub struct StepOutput {
    pub frame: Frame,
    pub reward: f64,
    /// The episode ended by the task or by its step limit (`truncated` tells which).
    pub done: bool,
    /// True when `done` comes from the time limit rather than the task.
    pub truncated: bool,
    pub pose: Pose,
    pub info: StepInfo,
}

/// An environment with discrete actions. Real scenes and the world model's streaming session
/// both implement it, so the player, recorder and evaluator never need to know which one they
/// drive.
pub trait Env: Send {
    fn scene(&self) -> SceneKind;
    /// Names of the discrete actions, in index order. Index 0 is always `noop`.
    fn action_names(&self) -> &[&'static str];
    /// Observation side length in pixels (frames are square).
    fn resolution(&self) -> usize;
    /// Start a new episode from `seed`. The returned reward is 0.
    fn reset(&mut self, seed: u64) -> StepOutput;
    /// Apply `action` (an index into `action_names`) and return the frame it produced.
    fn step(&mut self, action: usize) -> StepOutput;
    /// Steps taken since the last reset.
    fn steps(&self) -> usize;
    /// Wall time spent computing the latest observation, in milliseconds, for environments
    /// whose frames come from a model (a dreamed scene); `None` for simulated scenes.
    fn frame_latency_ms(&self) -> Option<f64> {
        None
    }
}
