//! Headless subcommands: `record`, `rollout`, `inspect` (SPEC §1), and the flag handling they
//! share.

pub mod backend;
pub mod bench;
pub mod bench_kernels;
pub mod bench_layer_ops;
pub mod bench_linear;
pub mod dream_rollout;
pub mod eval;
pub mod export;
pub mod inspect;
pub mod interrupt;
pub mod record;
pub mod rollout;
pub mod train;

use anyhow::{bail, Context, Result};
use scenes::factory::{default_size, make_env};
use scenes::maze::MazeConfig;
use scenes::policy::{by_name, Policy};
use scenes::voxel::VoxelConfig;
use scenes::{Env, SceneKind};

/// The scene size from `--size`: maze cells per side (default 9); the voxel world's size is
/// fixed, so `--size` may only repeat it.
pub fn resolve_size(scene: SceneKind, size: Option<usize>) -> Result<usize> {
    let fixed = default_size(scene);
    match (scene, size) {
        (SceneKind::Maze, Some(s)) => Ok(s),
        (SceneKind::Voxel, Some(s)) if s != fixed => {
            bail!("--size {s}: the voxel world has a fixed size of {fixed} blocks; --size applies to the maze")
        }
        _ => Ok(fixed),
    }
}

/// Steps per episode from `--steps`, defaulting to the scene's episode length.
pub fn resolve_steps(scene: SceneKind, size: usize, steps: Option<usize>) -> Result<usize> {
    let steps = match (steps, scene) {
        (Some(s), _) => s,
        (None, SceneKind::Maze) => MazeConfig::new(size)
            .with_context(|| format!("--size {size}"))?
            .steps(),
        (None, SceneKind::Voxel) => VoxelConfig::default().episode_steps,
    };
    if steps == 0 {
        bail!("--steps must be at least 1");
    }
    Ok(steps)
}

/// The scene the flags ask for, or an error naming the flags.
pub fn make_scene(scene: SceneKind, size: usize, resolution: usize) -> Result<Box<dyn Env>> {
    make_env(scene, size, resolution)
        .with_context(|| format!("{} --size {size} --res {resolution}", scene.name()))
}

/// The scripted policy `--policy` names, for `env`, or an error naming the flag.
pub fn make_policy(name: &str, env: &dyn Env, seed: u64) -> Result<Box<dyn Policy>> {
    by_name(name, env.scene(), env.action_names().len(), seed)
        .with_context(|| format!("--policy {name}"))
}
