//! `memworld play`: the desktop player. A winit 0.30 window drawn with wgpu 29 and an egui 0.35
//! HUD shows the real scene (and later a dreamed one beside it), driven by the keyboard at a
//! fixed control rate, and records sessions as episode files.
//!
//! Pure logic is kept apart from the window so tests can drive it:
//! - [`input`]: keys → actions and commands, fixed control clock;
//! - [`sim`]: the environments and recorder on their own thread behind channels;
//! - [`record`]: recordings → episode file + GIF preview, written atomically;
//! - [`layout`], [`render`], [`offscreen`]: pane geometry and the wgpu frame pass, drawn into
//!   the window or into a texture that can be read back;
//! - [`hud`]: the egui overlay; [`gpu`]: adapters and errors; [`app`]: the winit handler.

pub mod app;
pub mod dream;
pub mod gpu;
pub mod hud;
pub mod input;
pub mod layout;
pub mod offscreen;
pub mod record;
pub mod render;
pub mod sim;

use std::path::PathBuf;

use anyhow::Context as _;
use scenes::SceneKind;

pub use gpu::BackendChoice;

/// Keys, for `--help` (the same table as the on-screen legend).
const KEYS_HELP: &str = "Keys:
  W / Up       forward            A / Left     turn left
  D / Right    turn right         Q / E        forward + turn left / right
  Space        jump (voxel)       P            pause / resume
  .            single step while paused
  R            reset (same seed)  N            new seed
  Tab          switch scene       F5           start / stop recording
  Esc          quit
With no key held the agent does nothing (noop) at each control tick; held keys repeat.";

/// Arguments of `memworld play`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = KEYS_HELP)]
pub struct PlayArgs {
    /// Scene to play: `maze` (Memory-Maze-like) or `voxel` (Minecraft-like).
    pub scene: SceneKind,
    /// Maze side length in cells: 9, 11, 13 or 15 (maze only).
    #[arg(long, default_value_t = 9, value_parser = parse_size)]
    pub size: usize,
    /// Level seed; `N` in the player moves to the next one.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Observation resolution in pixels: 64, 128 or 256.
    #[arg(long, default_value_t = 64, value_parser = parse_res)]
    pub res: usize,
    /// Control rate in actions per second, independent of the display rate (Memory Maze: 4).
    #[arg(long, default_value_t = 4.0, value_parser = parse_hz)]
    pub hz: f64,
    /// Folder that `F5` recordings (episode `.npz` + `.gif` preview) are written into.
    #[arg(long, default_value = "recordings")]
    pub record_dir: PathBuf,
    /// Graphics backend: auto, vulkan, gl, metal or dx12.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Show the world model's dream beside the real scene (same keys; its latency in the HUD).
    /// Uses the model shipped for the scene unless --checkpoint is given.
    #[arg(long)]
    pub dream: bool,
    /// Dream with this checkpoint (a checkpoint or run directory); implies --dream.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Denoising (Euler) steps per dreamed frame [default: the model's, 8 for the shipped
    /// ones]. Fewer is faster and blurrier: see the README's measurements.
    #[arg(long, value_name = "N", value_parser = crate::models::parse_euler_steps)]
    pub euler_steps: Option<usize>,
    /// Noise level in [0, 1) at which each dreamed frame is committed to the model's memory,
    /// so later frames lean less on its errors [default: the model's history_noise].
    #[arg(long, value_name = "TAU", value_parser = crate::models::parse_history_noise)]
    pub history_noise: Option<f32>,
    /// Compute backend of the world model: ndarray (CPU), wgpu or cuda (a `--features cuda`
    /// build).
    #[arg(long, value_enum, default_value_t = crate::commands::backend::BackendKind::Ndarray)]
    pub model_backend: crate::commands::backend::BackendKind,
}

fn parse_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ (9 | 11 | 13 | 15)) => Ok(n),
        _ => Err(format!(
            "'{s}' is not a maze size (expected 9, 11, 13 or 15)"
        )),
    }
}

fn parse_res(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ (64 | 128 | 256)) => Ok(n),
        _ => Err(format!(
            "'{s}' is not a resolution (expected 64, 128 or 256)"
        )),
    }
}

fn parse_hz(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 60.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a control rate (expected a number in (0, 60])"
        )),
    }
}

/// Run `memworld play`.
pub fn run(args: PlayArgs) -> anyhow::Result<()> {
    let factory = if args.dream || args.checkpoint.is_some() {
        dream::dream_factory(
            args.scene,
            args.checkpoint.clone(),
            args.size,
            args.res,
            crate::models::Sampling {
                euler_steps: args.euler_steps,
                history_noise: args.history_noise,
            },
            args.model_backend,
        )
        .context("memworld play --dream")?
    } else {
        real_scene_factory(args.size, args.res)
    };
    app::run_window(args, factory).context("memworld play")
}

/// The environments of the plain player: one pane showing the real scene.
pub fn real_scene_factory(size: usize, res: usize) -> sim::EnvFactory {
    Box::new(move |kind| {
        let env = scenes::factory::make_env(kind, size, res).map_err(|e| e.to_string())?;
        Ok(vec![sim::PaneEnv {
            label: format!("real · {}", kind.name()),
            env,
        }])
    })
}
