//! memworld scenes: procedural Memory-Maze-like and Minecraft-like worlds with CPU renderers,
//! scripted policies and the episode file format (SPEC §4). This crate never depends on burn.
//!
//! Everything that renders or moves is deterministic given a seed: the same seed gives
//! byte-identical frames and poses on every machine.

pub mod env;
pub mod episode;
pub mod error;
pub mod factory;
pub mod maze;
pub mod policy;
pub mod record;
pub mod rng;
pub mod voxel;

pub use env::{Env, Frame, MazeInfo, Pose, SceneKind, StepInfo, StepOutput};
pub use error::SceneError;
pub use rng::Rng;
