//! `memworld bench dream` (SPEC §5.5, §8): per-frame latency of the streaming session at
//! growing rollout lengths. The session is advanced to each length by committing frames in
//! chunks (cheap), then a few full `generate` calls (S Euler passes + the committing pass, the
//! frame read back to the host) are timed there. With a windowed attention cache and SSM
//! states the latency should not grow with the length; the report gives last/first.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use model::world::checkpoint::{open_checkpoint, EMA_FILE};
use model::world::{FrameConditions, WorldModel, WorldModelConfig, WorldSession};
use scenes::episode::atomic::write_bytes_atomic;
use serde::Serialize;

use super::backend::{run_on, BackendKind, OnBackend};

/// Measure performance.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchKind,
}

#[derive(Subcommand, Debug)]
pub enum BenchKind {
    /// Per-frame latency and FPS of dreamed play at growing rollout lengths.
    Dream(DreamBenchArgs),
    /// Each GPU kernel against its tensor-op reference (agreement, then time) at the model's
    /// shapes.
    Kernels(super::bench_kernels::KernelsBenchArgs),
}

/// Time the streaming session's `generate` at several rollout lengths.
///
/// The session is advanced to each length by committing frames (chunked, not timed; or, with
/// --advance repeat, by repeating the cached frames), then
/// --reps frames are generated and timed one by one, each read back to the host. Writes a
/// JSON report and prints a table with the last/first latency ratio.
#[derive(Args, Debug)]
pub struct DreamBenchArgs {
    /// Model preset (random weights unless --checkpoint is given): tiny, maze-small,
    /// voxel-small, causal-full, causal-window, mamba2, mamba2-local.
    #[arg(long, value_name = "PRESET")]
    pub config: Option<String>,
    /// Use this checkpoint's EMA weights (its config must match --config when both are given).
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
    /// Rollout lengths (frames already in the session) at which to time generation.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000,5000")]
    pub lengths: Vec<usize>,
    /// Frames generated and timed at each length.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Untimed frames generated first (kernel compilation, autotuning, allocation).
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Euler steps per frame [default: the config's sampling_steps].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Frames committed per pass while advancing to the next length.
    #[arg(long, default_value_t = 64)]
    pub advance_chunk: usize,
    /// How the session reaches each length: `commit` runs the model over filler frames;
    /// `repeat` appends copies of the frames the attention caches hold without running the
    /// model (seconds instead of hours for `causal-full` at thousands of frames; a frame's cost
    /// depends on how many frames are held, not on their content).
    #[arg(long, value_enum, default_value_t = Advance::Commit)]
    pub advance: Advance,
    /// Seed of the random weights and of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// JSON report to write [default: bench-dream-PRESET.json].
    #[arg(long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
    /// Compute backend. `cuda` needs a build with `--features cuda`.
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
}

/// How `bench dream` advances the session between lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Advance {
    /// Commit filler frames through the model.
    Commit,
    /// Repeat the held frames in the attention caches (the model does not run).
    Repeat,
}

/// Latency at one rollout length.
#[derive(Clone, Debug, Serialize)]
pub struct LengthRow {
    /// Frames in the session before the first timed frame.
    pub length: usize,
    /// Frames the attention caches hold there.
    pub cached_frames: usize,
    pub median_ms: f64,
    pub mean_ms: f64,
    pub min_ms: f64,
    /// 1000 / median_ms.
    pub fps: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    config: String,
    checkpoint: Option<String>,
    backend: &'static str,
    params: usize,
    resolution: usize,
    sampling_steps: usize,
    reps: usize,
    advance: Advance,
    rows: Vec<LengthRow>,
    /// median latency at the last length / at the first.
    last_over_first: f64,
}

pub fn run(args: BenchArgs) -> Result<()> {
    match args.what {
        BenchKind::Dream(a) => run_on(a.backend, DreamJob(a)),
        BenchKind::Kernels(a) => super::bench_kernels::run(a),
    }
}

struct DreamJob(DreamBenchArgs);

impl OnBackend for DreamJob {
    type Output = ();
    fn run<B: Backend>(self, device: B::Device) -> Result<()> {
        bench_dream::<B>(&self.0, &device)
    }
}

fn load<B: Backend>(args: &DreamBenchArgs, device: &B::Device) -> Result<WorldModel<B>> {
    let preset = args
        .config
        .as_deref()
        .map(WorldModelConfig::preset)
        .transpose()?;
    match (&args.checkpoint, preset) {
        (Some(dir), preset) => {
            let flag = || format!("--checkpoint {}", dir.display());
            let ckpt = open_checkpoint(dir, preset.as_ref()).with_context(flag)?;
            ckpt.load_weights::<B>(EMA_FILE, device).with_context(flag)
        }
        (None, Some(config)) => {
            B::seed(device, args.seed);
            Ok(config.init::<B>(device))
        }
        (None, None) => bail!("--config or --checkpoint is required (e.g. --config maze-small)"),
    }
}

/// Median, mean and minimum of `v` (not empty).
pub(crate) fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    };
    (median, s.iter().sum::<f64>() / n as f64, s[0])
}

/// Zero frames and neutral conditions for `n` frames, to advance the session cheaply.
fn filler<B: Backend>(
    cfg: &WorldModelConfig,
    n: usize,
    device: &B::Device,
) -> (Tensor<B, 5>, FrameConditions<B>) {
    let r = cfg.resolution;
    let frames = Tensor::zeros([1, n, r, r, cfg.channels], device);
    let cond = FrameConditions {
        actions: cfg
            .n_actions
            .map(|_| Tensor::<B, 2, Int>::zeros([1, n], device)),
        poses: cfg
            .pose_dim
            .map(|d| Tensor::<B, 3>::zeros([1, n, d], device)),
    };
    (frames, cond)
}

fn bench_dream<B: Backend>(args: &DreamBenchArgs, device: &B::Device) -> Result<()> {
    if args.reps == 0 || args.advance_chunk == 0 || args.steps == Some(0) {
        bail!("--reps, --advance-chunk and --steps must be at least 1");
    }
    let mut lengths = args.lengths.clone();
    lengths.sort_unstable();
    lengths.dedup();
    // Frames in the session after the first context frame and the warm-up.
    let primed = 1 + args.warmup;
    match lengths.first() {
        None => bail!("--lengths needs at least one length"),
        Some(&l) if l < primed => {
            bail!("--lengths {l}: the session already holds {primed} frames after the first frame and --warmup {}", args.warmup)
        }
        _ => {}
    }
    let model = load::<B>(args, device)?;
    let cfg = model.config().clone();
    if cfg.pose_dim.is_some_and(|d| d != 4) {
        bail!(
            "the model's pose has {} values; the session's generate takes the 4 maze pose features",
            cfg.pose_dim.unwrap_or(0)
        );
    }
    let params = model.num_params();
    let mut session = WorldSession::new(model, device.clone());
    if let Some(s) = args.steps {
        session.set_sampling_steps(s);
    }
    let action = cfg.n_actions.map(|_| 1);
    let pose = cfg.pose_dim.map(|_| [0.5f32, 0.5, 1.0, 0.0]);
    let mut frame_seed = args.seed;
    let mut generate = |session: &mut WorldSession<B>| -> f64 {
        let t0 = Instant::now();
        let frame = session.generate(action, pose, frame_seed);
        let _ = frame.into_data();
        frame_seed = frame_seed.wrapping_add(1);
        t0.elapsed().as_secs_f64() * 1e3
    };

    let last = *lengths.last().expect("not empty");
    let bar = ProgressBar::new(last as u64).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} frames {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let (x, c) = filler::<B>(&cfg, 1, device);
    session.prefill(x, &c);
    bar.set_message("warming up");
    for _ in 0..args.warmup {
        generate(&mut session);
    }
    let mut rows = Vec::new();
    for &length in &lengths {
        bar.set_message(format!("advancing to {length}"));
        if args.advance == Advance::Repeat && session.frames_committed() < length {
            session.repeat_history(length - session.frames_committed());
        }
        while session.frames_committed() < length {
            let n = args.advance_chunk.min(length - session.frames_committed());
            let (x, c) = filler::<B>(&cfg, n, device);
            let _ = session.commit(x, &c).into_data();
            bar.set_position(session.frames_committed() as u64);
        }
        bar.set_message(format!("timing at {length}"));
        // At least `length` (more when the previous length's timed frames passed it).
        let at = session.frames_committed();
        let cached_frames = session.cached_frames();
        let times: Vec<f64> = (0..args.reps).map(|_| generate(&mut session)).collect();
        let (median_ms, mean_ms, min_ms) = stats(&times);
        rows.push(LengthRow {
            length: at,
            cached_frames,
            median_ms,
            mean_ms,
            min_ms,
            fps: 1e3 / median_ms,
        });
    }
    bar.finish_and_clear();

    let last_over_first = rows.last().expect("rows").median_ms / rows[0].median_ms;
    let report = Report {
        config: cfg.name.clone(),
        checkpoint: args.checkpoint.as_ref().map(|p| p.display().to_string()),
        backend: args.backend.name(),
        params,
        resolution: cfg.resolution,
        sampling_steps: session.sampling_steps(),
        reps: args.reps,
        advance: args.advance,
        rows,
        last_over_first,
    };
    println!(
        "dream bench: {} ({:.2}M params, {}x{}, {} Euler steps), backend {}, {} timed frames per length",
        report.config,
        params as f64 / 1e6,
        cfg.resolution,
        cfg.resolution,
        report.sampling_steps,
        report.backend,
        args.reps
    );
    println!(
        "{:>8} {:>8} {:>11} {:>11} {:>11} {:>9}",
        "length", "cached", "median ms", "mean ms", "min ms", "FPS"
    );
    for r in &report.rows {
        println!(
            "{:>8} {:>8} {:>11.2} {:>11.2} {:>11.2} {:>9.1}",
            r.length, r.cached_frames, r.median_ms, r.mean_ms, r.min_ms, r.fps
        );
    }
    println!(
        "median latency at length {last} / at length {}: {:.3}",
        report.rows[0].length, last_over_first
    );
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("bench-dream-{}.json", report.config)));
    let mut json = serde_json::to_string_pretty(&report).expect("reports serialise");
    json.push('\n');
    write_bytes_atomic(&out, json.as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}
