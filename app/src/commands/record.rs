//! `memworld record`: scripted-policy episodes to `.npz` files on parallel workers, with a
//! progress bar; rerunning an interrupted command resumes it (SPEC §4.3–4.4).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use scenes::record::{record_episodes, RecordConfig};
use scenes::SceneKind;

use super::{make_policy, make_scene, resolve_size, resolve_steps};

/// Record episodes of a scripted policy to episode files.
///
/// Writes one .npz per episode (Memory Maze dataset keys; see docs/episode-format.md) named
/// ep{index:05}_{seed}.npz. Rerunning the same command after an interruption keeps the finished
/// episodes and records only the missing ones.
#[derive(Args, Debug, Clone)]
pub struct RecordArgs {
    /// Scene to record: maze or voxel.
    #[arg(value_name = "SCENE")]
    pub scene: SceneKind,
    /// Number of episodes to record.
    #[arg(long, default_value_t = 10)]
    pub episodes: usize,
    /// Steps per episode; each file holds steps + 1 frames [default: the scene's episode
    /// length: 1000/2000/3000/4000 for maze sizes 9/11/13/15, 1000 for voxel].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Maze cells per side: 9, 11, 13 or 15 [default: 9]. The voxel world has a fixed size.
    #[arg(long)]
    pub size: Option<usize>,
    /// Master seed; episode i uses a seed derived from (seed, i), the same on every machine
    /// and for any number of workers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Parallel workers [default: the number of CPU cores].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Frame side in pixels: 64, 128 or 256 for the maze; 64 or 128 for voxel.
    #[arg(long = "res", value_name = "PIXELS", default_value_t = 64)]
    pub resolution: usize,
    /// Scripted policy: explore (maze: BFS to random reachable cells; voxel: wandering) or
    /// random (random actions with persistence).
    #[arg(long, default_value = "explore")]
    pub policy: String,
}

pub fn run(args: RecordArgs) -> Result<()> {
    if args.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    let workers = match args.workers {
        Some(0) => bail!("--workers must be at least 1"),
        Some(w) => w,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let size = resolve_size(args.scene, args.size)?;
    let steps = resolve_steps(args.scene, size, args.steps)?;
    // Check the flags here so that errors name them; the recorder builds its own copies.
    make_policy(
        &args.policy,
        make_scene(args.scene, size, args.resolution)?.as_ref(),
        0,
    )?;
    let cfg = RecordConfig {
        scene: args.scene,
        size,
        resolution: args.resolution,
        episodes: args.episodes,
        steps,
        seed: args.seed,
        policy: args.policy.clone(),
        out_dir: args.out.clone(),
        workers,
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} frames ({per_sec}, eta {eta})")
            .expect("valid template"),
    );
    let start = Instant::now();
    let summary = record_episodes(&cfg, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| {
        format!(
            "recording {} episodes into {}",
            args.scene.name(),
            args.out.display()
        )
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let rate = summary.frames_recorded as f64 / secs.max(1e-9);
    println!(
        "recorded {} {} episodes ({} frames) in {secs:.1} s: {rate:.0} frames/s with {workers} worker{}; \
         kept {} finished, re-recorded {} damaged, removed {} leftovers; files in {}",
        summary.recorded,
        args.scene.name(),
        summary.frames_recorded,
        if workers == 1 { "" } else { "s" },
        summary.skipped,
        summary.replaced,
        summary.removed_tmp,
        args.out.display()
    );
    Ok(())
}
