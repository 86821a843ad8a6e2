//! `memworld rollout`: run a policy headless in a scene and write what it saw as an animated GIF,
//! optionally with a contact sheet. With `--dream` or `--checkpoint` the frames are dreamed by a
//! world model (a [`model::world::DreamEnv`]) and the GIF shows real | dreamed side by side.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use scenes::record::policy_seed;
use scenes::{Env, Frame, SceneKind, StepOutput};

use super::backend::BackendKind;
use super::{make_policy, make_scene, resolve_size};
use crate::media;

/// Run a scripted policy headless and write the frames as an animated GIF.
///
/// The clip holds steps + 1 frames: the reset observation, then one frame per action.
/// With --dream (the shipped model for the scene) or --checkpoint, a world model dreams the
/// frames from the keys and poses of the real scene, and the GIF shows real | dreamed side by
/// side (a red bar marks dreamed frames); the mean PSNR of dreamed against real frames and the
/// model's per-frame latency are printed.
#[derive(Args, Debug, Clone)]
pub struct RolloutArgs {
    /// Scene: maze or voxel.
    #[arg(value_name = "SCENE")]
    pub scene: SceneKind,
    /// Scripted policy choosing the actions: explore or random.
    #[arg(long, default_value = "explore")]
    pub policy: String,
    /// Steps to run.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Animated GIF to write.
    #[arg(long, value_name = "FILE.gif")]
    pub out: PathBuf,
    /// Also write a contact sheet: a PNG grid of evenly spaced frames.
    #[arg(long, value_name = "FILE.png")]
    pub sheet: Option<PathBuf>,
    /// Frames on the contact sheet (first and last included).
    #[arg(long, default_value_t = 24)]
    pub sheet_frames: usize,
    /// Columns of the contact sheet.
    #[arg(long, default_value_t = 8)]
    pub sheet_columns: usize,
    /// Maze cells per side: 9, 11, 13 or 15 [default: 9]. The voxel world has a fixed size.
    #[arg(long)]
    pub size: Option<usize>,
    /// Seed of the level and of the policy.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Frame side in pixels: 64, 128 or 256 for the maze; 64 or 128 for voxel.
    #[arg(long = "res", value_name = "PIXELS", default_value_t = 64)]
    pub resolution: usize,
    /// GIF frames per second (the Memory Maze is controlled at 4 steps per second).
    #[arg(long, default_value_t = 10)]
    pub fps: u32,
    /// Enlarge frames this many times in the GIF and the sheet (nearest neighbour).
    #[arg(long, default_value_t = 2)]
    pub scale: u32,
    /// Dream the frames with the world model shipped for the scene (assets/models/SCENE).
    #[arg(long)]
    pub dream: bool,
    /// Dream the frames with this checkpoint (a checkpoint or run directory); implies --dream.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// When dreaming: real frames shown to the model (teacher forcing) before it dreams.
    #[arg(long, default_value_t = 0)]
    pub context: usize,
    /// When dreaming: denoising (Euler) steps per frame [default: the model's, 8 for the
    /// shipped ones]. Fewer is faster and blurrier: see the README's measurements.
    #[arg(long, value_name = "N", value_parser = crate::models::parse_euler_steps)]
    pub euler_steps: Option<usize>,
    /// When dreaming: noise level in [0, 1) at which each dreamed frame is committed to the
    /// model's memory, so later frames lean less on its errors [default: the model's
    /// history_noise].
    #[arg(long, value_name = "TAU", value_parser = crate::models::parse_history_noise)]
    pub history_noise: Option<f32>,
    /// When dreaming: compute backend of the model. `cuda` needs a build with `--features cuda`.
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub model_backend: BackendKind,
}

/// Resets `env` with `seed` and steps it `steps` times with actions from `act`; returns every
/// frame (steps + 1) and the total reward. `on_frame` is called after each frame.
pub fn collect_frames(
    env: &mut dyn Env,
    act: &mut dyn FnMut(&StepOutput) -> usize,
    seed: u64,
    steps: usize,
    on_frame: &mut dyn FnMut(),
) -> (Vec<Frame>, f64) {
    let mut last = env.reset(seed);
    let mut frames = Vec::with_capacity(steps + 1);
    let mut reward = 0.0;
    frames.push(last.frame.clone());
    on_frame();
    for _ in 0..steps {
        last = env.step(act(&last));
        reward += last.reward;
        frames.push(last.frame.clone());
        on_frame();
    }
    (frames, reward)
}

pub fn run(args: RolloutArgs) -> Result<()> {
    if args.fps == 0 || args.scale == 0 || args.sheet_frames == 0 || args.sheet_columns == 0 {
        bail!("--fps, --scale, --sheet-frames and --sheet-columns must be at least 1");
    }
    if args.dream || args.checkpoint.is_some() {
        return super::dream_rollout::run(args);
    }
    if args.context > 0 {
        bail!(
            "--context {} applies to dreamed rollouts (--dream or --checkpoint)",
            args.context
        );
    }
    let size = resolve_size(args.scene, args.size)?;
    let mut env = make_scene(args.scene, size, args.resolution)?;
    let mut policy = make_policy(&args.policy, env.as_ref(), policy_seed(args.seed))?;

    let bar = ProgressBar::new(2 * (args.steps as u64 + 1)).with_style(
        ProgressStyle::with_template("{spinner} {msg} {wide_bar} {pos}/{len}")
            .expect("valid template"),
    );
    bar.set_message("simulating");
    let (frames, reward) = collect_frames(
        env.as_mut(),
        &mut |last| policy.act(last),
        args.seed,
        args.steps,
        &mut || bar.inc(1),
    );
    bar.set_message("encoding GIF");
    media::write_gif(&args.out, &frames, args.fps, args.scale, &mut || bar.inc(1))?;
    bar.finish_and_clear();
    println!(
        "wrote {} ({} frames of {res}x{res} at {}x, {} fps; {} {} seed {}, total reward {reward})",
        args.out.display(),
        frames.len(),
        args.scale,
        args.fps,
        args.scene.name(),
        args.policy,
        args.seed,
        res = args.resolution,
    );
    write_sheet(&args, &frames)
}

/// Writes the contact sheet --sheet asks for, if any.
pub fn write_sheet(args: &RolloutArgs, frames: &[Frame]) -> Result<()> {
    if let Some(sheet_path) = &args.sheet {
        let picked: Vec<&Frame> = media::evenly_spaced(frames.len(), args.sheet_frames)
            .into_iter()
            .map(|i| &frames[i])
            .collect();
        let sheet = media::contact_sheet(&picked, args.sheet_columns, args.scale);
        media::write_png(sheet_path, &sheet)?;
        println!(
            "wrote {} ({} frames, {}x{} px)",
            sheet_path.display(),
            picked.len(),
            sheet.width(),
            sheet.height()
        );
    }
    Ok(())
}
