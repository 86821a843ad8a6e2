//! Episode files (SPEC §4.3): one `.npz` per episode with the keys, dtypes and shapes of the
//! Memory Maze offline dataset, plus a `memworld_meta` JSON entry. The format is documented in
//! `docs/episode-format.md`; this module holds the in-memory form, the builder that records an
//! [`Env`](crate::Env) into it, and the reader/writer.
//!
//! Action alignment: `action[t]` is the one-hot of the action whose effect produced `image[t]`;
//! `action[0]` is all zeros because no action precedes the first frame (the reset no-op).

pub mod atomic;
mod builder;
mod error;
mod io;
pub mod npy;
mod validate;

pub use builder::EpisodeBuilder;
pub use error::EpisodeError;
pub use io::{is_episode_file, list_episode_files, read_episode, write_episode};

use crate::SceneKind;

/// Version of the layout written by this code; readers accept this version and older ones.
pub const FORMAT_VERSION: u32 = 1;

/// Name of the `.npz` entry (without `.npy`) holding the JSON metadata as a uint8 array.
pub const META_KEY: &str = "memworld_meta";

/// The Memory Maze action set, in its order (SPEC §4.1). Files without metadata (real Memory
/// Maze episodes) are read with these names.
pub const MEMORY_MAZE_ACTIONS: [&str; 6] = [
    "noop",
    "forward",
    "turn_left",
    "turn_right",
    "forward_left",
    "forward_right",
];

/// The `memworld_meta` document.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpisodeMeta {
    pub format_version: u32,
    pub scene: SceneKind,
    /// Seed the episode was generated from (`None` for files from elsewhere).
    pub seed: Option<u64>,
    /// Maze: cells per side N. Voxel: the world size the scene was built with.
    pub size: usize,
    /// Frame side length in pixels.
    pub resolution: usize,
    /// Names of the columns of `action`, index 0 is `noop`.
    pub action_names: Vec<String>,
    /// Scripted policy that chose the actions (`None` if unknown).
    pub policy: Option<String>,
    /// Steps in the file: T - 1.
    pub steps: usize,
}

/// Where an episode came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Written by memworld: carries `memworld_meta`.
    Memworld,
    /// No `memworld_meta`: a Memory Maze dataset file; the metadata was inferred from the arrays.
    MemoryMaze,
}

/// One episode in memory. Arrays are flat, C order, with the shapes given per field
/// (T frames, R resolution, A actions, N maze cells per side, K targets).
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    pub meta: EpisodeMeta,
    pub source: Source,
    /// (T, R, R, 3) RGB.
    pub image: Vec<u8>,
    /// (T, A) one-hot; row 0 all zeros.
    pub action: Vec<f64>,
    /// (T,) reward received on arriving at frame t; `reward[0]` = 0.
    pub reward: Vec<f64>,
    /// (T,) the task ended at frame t (time limits are not terminal).
    pub terminal: Vec<bool>,
    /// (T,) true only at t = 0.
    pub reset: Vec<bool>,
    pub track: Track,
}

/// Scene-specific per-frame state.
#[derive(Clone, Debug, PartialEq)]
pub enum Track {
    Maze(MazeTrack),
    Voxel(VoxelTrack),
}

/// The Memory Maze keys. Agent-centric vectors are (right, forward) in cell units.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MazeTrack {
    /// K, the number of target objects.
    pub targets: usize,
    /// (T, N, N), 1 free, 0 wall, indexed [y, x], row 0 at the bottom.
    pub maze_layout: Vec<u8>,
    /// (T, 2) (x, y) in cell units.
    pub agent_pos: Vec<f64>,
    /// (T, 2) unit heading (x, y).
    pub agent_dir: Vec<f64>,
    /// (T, K, 2) global positions of all objects.
    pub targets_pos: Vec<f64>,
    /// (T, K, 2) agent-centric (right, forward) vectors to all objects.
    pub targets_vec: Vec<f64>,
    /// (T, 2) current target, global.
    pub target_pos: Vec<f64>,
    /// (T, 2) current target, agent-centric.
    pub target_vec: Vec<f64>,
    /// (T, 3) current target colour in [0, 1].
    pub target_color: Vec<f64>,
}

/// The voxel keys.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct VoxelTrack {
    /// (T, 3) feet position (x, y, z), y up, in blocks.
    pub agent_pos: Vec<f64>,
    /// (T,) heading in radians, counter-clockwise from +x seen from above.
    pub agent_yaw: Vec<f64>,
}

impl Episode {
    /// T, the number of frames (steps + 1).
    pub fn len(&self) -> usize {
        self.reward.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reward.is_empty()
    }

    /// A, the width of `action`.
    pub fn n_actions(&self) -> usize {
        self.meta.action_names.len()
    }

    /// Frame side length R.
    pub fn resolution(&self) -> usize {
        self.meta.resolution
    }

    /// Frame `t` as (R, R, 3) bytes.
    pub fn frame(&self, t: usize) -> &[u8] {
        let n = self.resolution() * self.resolution() * 3;
        &self.image[t * n..(t + 1) * n]
    }

    /// Index of the action that produced frame `t`; `None` for the reset no-op (an all-zero row).
    pub fn action_index(&self, t: usize) -> Option<usize> {
        let a = self.n_actions();
        self.action[t * a..(t + 1) * a]
            .iter()
            .position(|&v| v == 1.0)
    }

    /// How often each action was taken (the reset no-op row is not counted).
    pub fn action_counts(&self) -> Vec<u64> {
        let mut counts = vec![0; self.n_actions()];
        for t in 0..self.len() {
            if let Some(i) = self.action_index(t) {
                counts[i] += 1;
            }
        }
        counts
    }

    pub fn total_reward(&self) -> f64 {
        self.reward.iter().sum()
    }
}
