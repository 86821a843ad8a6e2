//! `memworld train` (SPEC §1, §5.4): trains a world-model preset on episode files or on scenes
//! generated on the fly, on the ndarray (CPU), wgpu or CUDA backend, with a progress bar, a loss
//! log, sample GIFs and atomic checkpoints that `--resume` continues exactly.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::backend::Autodiff;
use burn::tensor::backend::{AutodiffBackend, Backend};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use model::precision::MatmulPrecision;
use model::world::checkpoint::{has_checkpoint, open_checkpoint};
use model::world::preview::PreviewSamples;
use model::world::runlog::LossRow;
use model::world::{
    train, Control, DataSpec, TrainObserver, TrainOptions, TrainSettings, WorldModelConfig,
};
use scenes::Frame;

use super::backend::{run_on, OnBackend};
use crate::media;

/// Train a world model.
///
/// A run directory (--out) receives loss.csv (step, loss, lr, grad_norm, tokens/s),
/// summary.json, samples/step-NNNNNN.gif (true frames left, the EMA model's continuation of
/// the second half of a clip right) and checkpoints/step-NNNNNN/ with a `latest` pointer.
/// Checkpoints are written atomically: killing the process at any time leaves the last one
/// intact, and `--resume` continues from it with the same loss curve as an uninterrupted run.
/// Ctrl-C (or SIGTERM) stops at the next log row and writes a checkpoint first; a second
/// Ctrl-C stops at once.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Model preset: tiny, maze-small, voxel-small, causal-full, causal-window, mamba2,
    /// mamba2-local. With --resume it defaults to the checkpoint's and must match it.
    #[arg(long, value_name = "PRESET")]
    pub config: Option<String>,
    /// Training data: a directory of episode files (.npz), `gen:maze:SIZE` (a new generated
    /// maze level per clip; SIZE 9, 11, 13 or 15), `gen:maze:SIZE:pool=N` (a fixed pool of N
    /// generated clips), or `gen:voxel[:pool=N]` (generated voxel worlds, for voxel-small).
    /// Add `:revisit=PERCENT` to a maze source to have that share of its clips turn around
    /// after at least half their frames and walk the path back, as the retrieval evaluation
    /// does (e.g. `gen:maze:9:revisit=50`). With --resume it defaults to the checkpoint's.
    #[arg(long, value_name = "DIR|gen:maze:9")]
    pub data: Option<String>,
    /// Run directory for logs, samples and checkpoints.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Total optimizer updates [default: 10000].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Clips per batch [default: 8].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Frames per training clip [default: the preset's clip_frames].
    #[arg(long)]
    pub clip_frames: Option<usize>,
    /// Curriculum: after UPDATES updates of the --batch × --clip-frames clips, train on BATCH
    /// clips of FRAMES frames each (e.g. 700:1x128: short clips teach what the scenes look
    /// like, long ones the memory). The learning-rate schedule runs over all --steps
    /// [default: the same clips throughout].
    #[arg(long, value_name = "UPDATES:BATCHxFRAMES")]
    pub long_clips: Option<String>,
    /// Peak learning rate of AdamW [default: 3e-4].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Linear warmup updates before the cosine decay [default: 5% of --steps].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Decay of the EMA weights used for sampling and shipped for inference [default: 0.999].
    #[arg(long)]
    pub ema: Option<f64>,
    /// Maximum global gradient norm; 0 turns clipping off [default: 1.0].
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Seed of the initialisation, the data order and the noise [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Precision of the matrix products: f32, or bf16 (linear layers and attention products
    /// with bf16 inputs; weights, norms, softmax, SSD scan, loss and optimizer stay f32).
    /// bf16 needs --backend cuda [default: f32].
    #[arg(long, value_name = "f32|bf16")]
    pub precision: Option<MatmulPrecision>,
    /// Write a checkpoint every N updates (and always at the end).
    #[arg(long, default_value_t = 500)]
    pub ckpt_every: usize,
    /// Checkpoints kept on disk (the newest).
    #[arg(long, default_value_t = 2)]
    pub keep: usize,
    /// Write a sample GIF every N updates; 0 turns samples off.
    #[arg(long, default_value_t = 500)]
    pub sample_every: usize,
    /// Read the loss back and log a row every N updates (each read waits for the device).
    #[arg(long, default_value_t = 10)]
    pub log_every: usize,
    /// Threads preparing batches in the background [default: cores − 1, at most 8].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Continue the run in --out from its latest checkpoint; every setting must match it.
    #[arg(long)]
    pub resume: bool,
    /// Start a new run from the EMA weights of a checkpoint (a run directory or one of its
    /// checkpoints) or of an inference export such as assets/models/maze, instead of a random
    /// initialisation; the optimizer starts fresh at update 0. Its config must equal --config.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// Compute backend. `cuda` needs a build with `--features cuda`.
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
}

/// The burn backend to train on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// CPU (burn-ndarray).
    Ndarray,
    /// Any GPU through wgpu (Vulkan, Metal, DX12).
    Wgpu,
    /// NVIDIA GPUs through CUDA.
    Cuda,
}

impl BackendKind {
    /// The flag value (`ndarray`, `wgpu`, `cuda`).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }
}

/// Settings from the flags, on top of the checkpoint's when resuming.
fn options(args: &TrainArgs) -> Result<TrainOptions> {
    let resuming = args.resume && has_checkpoint(&args.out);
    if args.resume && !resuming {
        bail!(
            "--resume: {} holds no checkpoint (expected {}/checkpoints/latest)",
            args.out.display(),
            args.out.display()
        );
    }
    let (config, mut settings) = if resuming {
        let ckpt = open_checkpoint(&args.out, None)?;
        let saved: TrainSettings =
            serde_json::from_value(ckpt.state.train.clone()).with_context(|| {
                format!(
                    "{}: unreadable training settings",
                    ckpt.dir.join("state.json").display()
                )
            })?;
        if let Some(name) = &args.config {
            if name != &ckpt.config.name {
                // Let the library report the field-by-field difference.
                let wanted = WorldModelConfig::preset(name)?;
                open_checkpoint(&args.out, Some(&wanted))?;
            }
        }
        (ckpt.config, saved)
    } else {
        let name = args
            .config
            .as_deref()
            .context("--config is required (e.g. --config tiny)")?;
        let data = args
            .data
            .as_deref()
            .context("--data is required (a directory of episodes or gen:maze:9)")?;
        let config = WorldModelConfig::preset(name)?;
        let spec: DataSpec = data.parse()?;
        (
            config.clone(),
            TrainSettings::new(&config, &spec, args.steps.unwrap_or(10_000)),
        )
    };
    if let Some(d) = &args.data {
        settings.data = d.parse::<DataSpec>()?.to_string();
    }
    if let Some(v) = args.steps {
        settings.steps = v;
        if !resuming && args.warmup.is_none() {
            settings.warmup = (v / 20).max(1);
        }
    }
    macro_rules! flag {
        ($field:ident, $arg:expr) => {
            if let Some(v) = $arg {
                settings.$field = v;
            }
        };
    }
    flag!(batch, args.batch);
    flag!(clip_frames, args.clip_frames);
    flag!(lr, args.lr);
    flag!(warmup, args.warmup);
    flag!(ema_decay, args.ema);
    flag!(grad_clip, args.grad_clip);
    flag!(seed, args.seed);
    flag!(precision, args.precision);
    if let Some(long) = &args.long_clips {
        settings.long_clips = Some(long.parse()?);
    }
    if let Some(path) = &args.init {
        settings.init = Some(path.display().to_string());
    }
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(1)
            .clamp(1, 8)
    });
    let mut opts = TrainOptions::new(config, settings, &args.out);
    opts.resume = resuming;
    opts.ckpt_every = args.ckpt_every;
    opts.keep_checkpoints = args.keep.max(1);
    opts.sample_every = args.sample_every;
    opts.log_every = args.log_every.max(1);
    opts.data_workers = workers;
    Ok(opts)
}

pub fn run(args: TrainArgs) -> Result<()> {
    let opts = options(&args)?;
    super::interrupt::install();
    run_on(args.backend, TrainJob(opts))
}

/// Training on the chosen backend, with autodiff on top of it.
struct TrainJob(TrainOptions);

impl OnBackend for TrainJob {
    type Output = ();
    fn run<B: Backend>(self, device: B::Device) -> Result<()> {
        train_on::<Autodiff<B>>(&self.0, &device)
    }
}

fn train_on<B: AutodiffBackend>(opts: &TrainOptions, device: &B::Device) -> Result<()> {
    let mut observer = Progress {
        bar: None,
        out: opts.out.clone(),
        error: None,
    };
    let summary = train::<B>(opts, device, &mut observer)
        .with_context(|| format!("training {} into {}", opts.config.name, opts.out.display()))?;
    if let Some(bar) = &observer.bar {
        bar.finish();
    }
    if let Some(e) = observer.error {
        eprintln!("warning: {e:#}");
    }
    let checkpoint = summary
        .last_checkpoint
        .as_ref()
        .map(|p| format!(", checkpoint {}", p.display()))
        .unwrap_or_default();
    println!(
        "{}: updates {}..{} of {}, loss {:.4} → {:.4}, {:.0} tokens/s, {:.1} s{checkpoint}",
        summary.config,
        summary.start_step,
        summary.end_step,
        summary.total_steps,
        summary.initial_loss,
        summary.final_loss,
        summary.tokens_per_s,
        summary.wall_s,
    );
    if summary.interrupted {
        bail!(
            "interrupted at update {} of {}{checkpoint}; continue with --resume --out {}",
            summary.end_step,
            summary.total_steps,
            opts.out.display()
        );
    }
    Ok(())
}

/// Progress bar, sample GIFs.
struct Progress {
    bar: Option<ProgressBar>,
    out: PathBuf,
    /// The first failure to write a sample (reported at the end; training goes on).
    error: Option<anyhow::Error>,
}

impl TrainObserver for Progress {
    fn on_start(&mut self, start: usize, total: usize, num_params: usize) {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} {msg} (eta {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_position(start as u64);
        bar.println(format!(
            "{:.2}M parameters, starting at update {start}",
            num_params as f64 / 1e6
        ));
        self.bar = Some(bar);
    }

    fn on_log(&mut self, row: &LossRow) -> Control {
        if super::interrupt::requested() {
            return Control::StopAndCheckpoint;
        }
        if let Some(bar) = &self.bar {
            bar.set_position(row.step as u64);
            bar.set_message(format!(
                "loss {:.4} | {:.1}k tok/s | lr {:.2e}",
                row.loss,
                row.tokens_per_s / 1e3,
                row.lr
            ));
        }
        Control::Continue
    }

    fn on_samples(&mut self, samples: &PreviewSamples) {
        let path = self
            .out
            .join("samples")
            .join(format!("step-{:06}.gif", samples.step));
        match write_preview_gif(&path, samples) {
            Ok(()) => {
                if let Some(bar) = &self.bar {
                    bar.println(format!(
                        "samples {} (PSNR {:.2} dB)",
                        path.display(),
                        samples.mean_psnr()
                    ));
                }
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    fn on_checkpoint(&mut self, step: usize, dir: &Path) {
        if let Some(bar) = &self.bar {
            bar.println(format!("checkpoint {} (update {step})", dir.display()));
        }
    }
}

/// Gap in pixels between panels of a sample GIF.
const GAP: usize = 2;

/// A GIF with one row per clip: the true frames left, the context then the generated frames
/// right (a red bar under the right panel marks generated frames), upscaled (nearest) to at
/// least 128 pixels per frame, at 4 frames per second (the scenes' control rate).
pub fn write_preview_gif(path: &Path, samples: &PreviewSamples) -> Result<()> {
    let first = samples.clips.first().context("no clips to draw")?;
    let (r, frames) = (first.truth[0].width, first.truth.len());
    let (w, h) = (2 * r + GAP, samples.clips.len() * (r + 2 * GAP));
    let mut sheets = Vec::with_capacity(frames);
    for t in 0..frames {
        let mut sheet = Frame {
            width: w,
            height: h,
            rgb: [24u8, 24, 24].repeat(w * h),
        };
        for (row, clip) in samples.clips.iter().enumerate() {
            let y0 = row * (r + 2 * GAP);
            let generated = t >= samples.context;
            let right = if generated {
                &clip.generated[t - samples.context]
            } else {
                &clip.truth[t]
            };
            for (x0, frame) in [(0, &clip.truth[t]), (r + GAP, right)] {
                for y in 0..r {
                    for x in 0..r {
                        sheet.set_pixel(x0 + x, y0 + y, frame.pixel(x, y));
                    }
                }
            }
            if generated {
                for x in 0..r {
                    sheet.set_pixel(r + GAP + x, y0 + r + 1, [230, 60, 60]);
                }
            }
        }
        sheets.push(sheet);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let scale = 128usize.div_ceil(r).max(1) as u32;
    media::write_gif(path, &sheets, 4, scale, &mut || {})
}
