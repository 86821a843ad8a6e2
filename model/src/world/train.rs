//! The world-model training loop (SPEC §5.4; Po et al. 2025 §4.2): flow matching with
//! diffusion forcing and the clean-prefix scheme, AdamW (Loshchilov & Hutter 2019) with linear
//! warmup + cosine decay, global-norm gradient clipping, an EMA of the weights for sampling,
//! a loss log (`loss.csv`, `summary.json`), periodic sampled continuations, and atomic
//! checkpoints that resume exactly.
//!
//! Exact resumption: the batch and the noise of update `s` are pure functions of (seed, s)
//! (`data::stream_rng`; both are drawn on the host by the data workers, so they are also the
//! same on every backend), and a checkpoint holds the weights, the EMA, the AdamW moments and the
//! step, so a run killed and resumed follows the uninterrupted run's loss curve. Training runs
//! in f32, or with bf16 matrix products where the backend has bf16 (`precision`; f32 master
//! weights, norms, softmax, SSD scan, loss and optimizer).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ElementConversion;
use serde::{Deserialize, Serialize};

use super::adamw::FusedAdamW;
use super::checkpoint::{
    has_checkpoint, load_for_inference_checked, open_checkpoint, save_checkpoint, EMA_FILE,
    MODEL_FILE,
};
use super::config::WorldModelConfig;
use super::curriculum::{phase_at, ClipPhase, PhaseSpan};
use super::data::{
    batch_from_rng, open_source, stream_rng, BatchShape, BatchStream, DataSpec, NoiseSpec, Stream,
};
use super::diffusion::{flow_matching_loss_with, TauSampling};
use super::error::WorldError;
use super::model::WorldModel;
use super::optim::{clip_grad_global_norm, ema_decay_at, ema_update, LrSchedule};
use super::preview::{preview, PreviewSamples};
use super::runlog::{write_summary, LossLog, LossRow};
use super::sources::ClipSource;
use crate::precision::{autocast, MatmulPrecision};

/// Everything that determines the numbers of a run; saved in every checkpoint and required to
/// be identical when resuming.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// Where the clips come from (`DataSpec` as text).
    pub data: String,
    /// Total optimizer updates.
    pub steps: usize,
    /// Clips per batch.
    pub batch: usize,
    /// Frames per clip.
    pub clip_frames: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warmup updates.
    pub warmup: usize,
    /// Final learning rate as a fraction of the peak.
    pub min_lr_ratio: f64,
    pub weight_decay: f64,
    pub beta_1: f64,
    pub beta_2: f64,
    /// Maximum global gradient norm (0 disables clipping).
    pub grad_clip: f64,
    /// EMA decay (warmed up, see `optim::ema_decay_at`).
    pub ema_decay: f64,
    pub tau_sampling: TauSampling,
    /// Probability of the clean-prefix scheme per clip.
    pub prefix_prob: f64,
    pub seed: u64,
    /// Precision of the matrix products (`crate::precision`; absent in older runs: f32).
    #[serde(default)]
    pub precision: MatmulPrecision,
    /// Checkpoint or inference export whose EMA weights start the run instead of a random
    /// initialisation (a warm start: fresh optimizer, update 0). Absent for runs from scratch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// The curriculum's second phase: other clips from a given update on (`curriculum`).
    /// Absent: `batch` clips of `clip_frames` frames throughout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_clips: Option<ClipPhase>,
}

impl TrainSettings {
    /// Defaults for `config` and `data`: batch 8, the config's clip length, lr 3e-4 with 5%
    /// warmup to a 10% floor, weight decay 0.01, betas (0.9, 0.999), clipping at 1.0, EMA 0.999,
    /// logit-normal(0, 1) noise levels, prefix probability 0.5, seed 0.
    pub fn new(config: &WorldModelConfig, data: &DataSpec, steps: usize) -> Self {
        Self {
            data: data.to_string(),
            steps,
            batch: 8,
            clip_frames: config.clip_frames,
            lr: 3e-4,
            warmup: (steps / 20).max(1),
            min_lr_ratio: 0.1,
            weight_decay: 0.01,
            beta_1: 0.9,
            beta_2: 0.999,
            grad_clip: 1.0,
            ema_decay: 0.999,
            tau_sampling: TauSampling::LogitNormal {
                mean: 0.0,
                std: 1.0,
            },
            prefix_prob: 0.5,
            seed: 0,
            precision: MatmulPrecision::F32,
            init: None,
            long_clips: None,
        }
    }

    pub fn validate(&self) -> Result<(), WorldError> {
        let bad = |m: String| Err(WorldError::TrainOptions(m));
        if self.steps == 0 || self.batch == 0 {
            return bad("--steps and --batch must be positive".into());
        }
        if self.clip_frames < 2 {
            return bad(format!(
                "--clip-frames must be at least 2 (got {})",
                self.clip_frames
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("--lr must be positive (got {})", self.lr));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return bad(format!("--ema must be in [0, 1) (got {})", self.ema_decay));
        }
        if !(0.0..=1.0).contains(&self.prefix_prob) || !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return bad("prefix probability and min_lr_ratio must be in [0, 1]".into());
        }
        if self.grad_clip < 0.0 || self.weight_decay < 0.0 {
            return bad("grad clipping and weight decay cannot be negative".into());
        }
        if let Some(long) = &self.long_clips {
            long.check(self.steps).map_err(WorldError::TrainOptions)?;
        }
        Ok(())
    }

    /// The clips of update `step` (0-based) and the span of updates that take them.
    fn phase_at(&self, step: usize) -> PhaseSpan {
        phase_at(step, (self.batch, self.clip_frames), self.long_clips)
    }

    fn schedule(&self) -> LrSchedule {
        LrSchedule {
            peak: self.lr,
            warmup: self.warmup,
            total: self.steps,
            min_ratio: self.min_lr_ratio,
        }
    }

    /// AdamW, on its kernel where the backend has it (`adamw.rs`).
    fn optimizer(&self) -> FusedAdamW {
        FusedAdamW::new(
            self.beta_1 as f32,
            self.beta_2 as f32,
            1e-8,
            self.weight_decay as f32,
        )
    }
}

/// A training run: the model config, the settings, and how the run is driven and logged.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub config: WorldModelConfig,
    pub settings: TrainSettings,
    /// Run directory: `loss.csv`, `summary.json`, `checkpoints/`.
    pub out: PathBuf,
    /// Continue from `out`'s latest checkpoint.
    pub resume: bool,
    /// Checkpoint every this many updates (0: only at the end).
    pub ckpt_every: usize,
    /// Checkpoints kept on disk (the newest).
    pub keep_checkpoints: usize,
    /// Sampled continuations every this many updates (0: never).
    pub sample_every: usize,
    /// Clips in each preview.
    pub sample_clips: usize,
    /// Read the loss back (and log a row) every this many updates.
    pub log_every: usize,
    /// Background threads preparing batches (0: on the training thread).
    pub data_workers: usize,
}

impl TrainOptions {
    pub fn new(config: WorldModelConfig, settings: TrainSettings, out: impl Into<PathBuf>) -> Self {
        Self {
            config,
            settings,
            out: out.into(),
            resume: false,
            ckpt_every: 500,
            keep_checkpoints: 2,
            sample_every: 0,
            sample_clips: 2,
            log_every: 1,
            data_workers: 0,
        }
    }
}

/// What the caller wants after a log row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    /// Write a checkpoint now and return (e.g. on Ctrl-C).
    StopAndCheckpoint,
    /// Return at once without writing anything more (what a kill does).
    Abort,
}

/// Hooks for progress display, sample videos and interruption.
pub trait TrainObserver {
    /// Training is about to start at update `start` of `total`.
    fn on_start(&mut self, _start: usize, _total: usize, _num_params: usize) {}
    /// A row of the loss log.
    fn on_log(&mut self, _row: &LossRow) -> Control {
        Control::Continue
    }
    fn on_samples(&mut self, _samples: &PreviewSamples) {}
    fn on_checkpoint(&mut self, _step: usize, _dir: &Path) {}
}

/// An observer that watches nothing.
pub struct Silent;
impl TrainObserver for Silent {}

/// What a call to [`train`] did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainSummary {
    pub config: String,
    pub num_params: usize,
    /// Update the call started from (0, or the resumed checkpoint's step).
    pub start_step: usize,
    /// Updates done when the call returned.
    pub end_step: usize,
    pub total_steps: usize,
    /// Mean loss of the first / last (up to) 20 log rows of this call.
    pub initial_loss: f64,
    pub final_loss: f64,
    /// Mean training throughput of this call, frames' tokens per second.
    pub tokens_per_s: f64,
    pub wall_s: f64,
    pub last_checkpoint: Option<PathBuf>,
    /// Mean PSNR of the last preview, if one was drawn.
    pub last_preview_psnr: Option<f64>,
    /// Stopped before `total_steps` by the observer.
    pub interrupted: bool,
    /// The log rows of this call.
    pub rows: Vec<LossRow>,
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// Trains (or resumes training of) a world model on `device`.
pub fn train<B: AutodiffBackend>(
    opts: &TrainOptions,
    device: &B::Device,
    observer: &mut dyn TrainObserver,
) -> Result<TrainSummary, WorldError> {
    let (config, settings) = (&opts.config, &opts.settings);
    config.validate()?;
    settings.validate()?;
    if !settings.precision.supported::<B>(device) {
        return Err(WorldError::TrainOptions(format!(
            "--precision {}: this backend has no {0} tensors (use --backend cuda, or --precision f32)",
            settings.precision.name()
        )));
    }
    let spec: DataSpec = settings.data.parse()?;
    let resuming = opts.resume;
    if !resuming && has_checkpoint(&opts.out) {
        return Err(WorldError::TrainOptions(format!(
            "{} already holds checkpoints: pass --resume to continue that run, or choose another --out",
            opts.out.display()
        )));
    }
    let settings_json = serde_json::to_value(settings).expect("settings serialise");

    let optim = settings.optimizer().init::<B, WorldModel<B>>();
    let (mut model, mut ema, mut optim, start) = if resuming {
        if !has_checkpoint(&opts.out) {
            return Err(WorldError::TrainOptions(format!(
                "--resume: {} holds no checkpoint to resume from",
                opts.out.display()
            )));
        }
        let ckpt = open_checkpoint(&opts.out, Some(config))?;
        let saved: TrainSettings =
            serde_json::from_value(ckpt.state.train.clone()).map_err(|e| {
                WorldError::CheckpointDamaged {
                    path: ckpt.dir.join("state.json"),
                    reason: e.to_string(),
                }
            })?;
        if &saved != settings {
            return Err(WorldError::TrainOptions(format!(
                "--resume: the settings differ from the checkpoint's ({}); resume with the same flags",
                settings_differences(&saved, settings)
            )));
        }
        let model = ckpt.load_weights::<B>(MODEL_FILE, device)?;
        let ema = ckpt.load_weights::<B::InnerBackend>(EMA_FILE, device)?;
        let optim = ckpt.load_optimizer::<B, _>(optim, device)?;
        (model, ema, optim, ckpt.state.step)
    } else {
        B::seed(device, settings.seed);
        let model = match &settings.init {
            // The EMA weights of a checkpoint or export of the same config.
            Some(path) => load_for_inference_checked::<B>(Path::new(path), config, device)?,
            None => config.init::<B>(device),
        };
        let ema = model.valid();
        (model, ema, optim, 0)
    };
    let num_params = model.num_params();

    // The clip source of every phase still to run, opened now so that bad data fails before
    // any training.
    let mut phases = Vec::new();
    let mut next = Some(settings.phase_at(start));
    while let Some(span) = next {
        let source = open_source(&spec, config, span.clip_frames, settings.seed)?;
        phases.push((span, source));
        next = span.end.map(|end| settings.phase_at(end));
    }
    let mut phases = phases.into_iter();
    let mut phase = Phase::start(opts, phases.next().expect("a phase"), start);
    let mut log = LossLog::open(&opts.out, start, resuming)?;
    let schedule = settings.schedule();
    // Tokens trained by this call, and when the log window began.
    let (mut tokens, mut window_tokens) = (0usize, 0usize);
    let log_every = opts.log_every.max(1);
    observer.on_start(start, settings.steps, num_params);

    let started = Instant::now();
    let mut window = (
        Instant::now(),
        0usize,
        None::<burn::tensor::Tensor<B::InnerBackend, 1>>,
    );
    let mut rows = Vec::new();
    let mut last_checkpoint = None;
    let mut last_preview = None;
    let mut saved_at = start;
    let mut interrupted = false;
    let mut aborted = false;
    let mut step = start;
    while step < settings.steps {
        if phase.span.end == Some(step) {
            phase = Phase::start(opts, phases.next().expect("the next phase"), step);
        }
        let batch = phase.stream.next_batch()?;
        let (x0, cond) = batch.to_device::<B>(config, device);
        let (tau, mask, eps) = batch
            .noise_to_device::<B>(device)
            .expect("training batches carry their noise");
        let (loss, grads) = {
            let _scope = autocast(settings.precision.matmul_dtype());
            let loss = flow_matching_loss_with(&model, x0, eps, tau, mask, &cond);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            (loss, grads)
        };
        let (grads, grad_norm) = if settings.grad_clip > 0.0 {
            let (g, n) = clip_grad_global_norm::<B, _>(&model, grads, settings.grad_clip);
            (g, Some(n))
        } else {
            (grads, None)
        };
        let lr = schedule.lr(step);
        model = optim.step(lr, model, grads);
        ema = ema_update(ema, &model.valid(), ema_decay_at(settings.ema_decay, step));
        step += 1;
        tokens += phase.tokens_per_step;

        let loss = loss.inner();
        window.2 = Some(match window.2.take() {
            Some(sum) => sum + loss,
            None => loss,
        });
        window.1 += 1;
        let mut control = Control::Continue;
        if step % log_every == 0 || step == settings.steps {
            let n = window.1;
            let loss = window.2.take().expect("a loss").into_scalar().elem::<f64>() / n as f64;
            if !loss.is_finite() {
                return Err(WorldError::Diverged { step, loss });
            }
            let secs = window.0.elapsed().as_secs_f64().max(1e-9);
            let row = LossRow {
                step,
                loss,
                lr,
                grad_norm: grad_norm.map_or(f64::NAN, |g| g.into_scalar().elem::<f64>()),
                tokens_per_s: (tokens - window_tokens) as f64 / secs,
            };
            log.append(&row)?;
            control = observer.on_log(&row);
            rows.push(row);
            window = (Instant::now(), 0, None);
            window_tokens = tokens;
        }
        if control == Control::Abort {
            interrupted = true;
            aborted = true;
            break;
        }
        if opts.sample_every > 0 && step % opts.sample_every == 0 {
            let rng = stream_rng(settings.seed, Stream::Preview, 0);
            let preview_shape = BatchShape {
                batch: opts.sample_clips.max(1),
                noise: None,
                ..phase.shape.clone()
            };
            let batch = batch_from_rng(phase.source.as_ref(), &preview_shape, rng)?;
            let context = (phase.shape.clip_frames / 2).max(1);
            let samples =
                preview::<B::InnerBackend>(&ema, &batch, context, step, settings.seed, device);
            last_preview = Some(samples.mean_psnr());
            observer.on_samples(&samples);
        }
        let at_end = step == settings.steps;
        let periodic = opts.ckpt_every > 0 && step % opts.ckpt_every == 0;
        if (at_end || periodic || control == Control::StopAndCheckpoint) && step != saved_at {
            let dir = save_checkpoint(
                &opts.out,
                step,
                &model,
                &ema,
                &optim,
                settings_json.clone(),
                opts.keep_checkpoints,
            )?;
            observer.on_checkpoint(step, &dir);
            last_checkpoint = Some(dir);
            saved_at = step;
        }
        if control == Control::StopAndCheckpoint {
            interrupted = step < settings.steps;
            break;
        }
    }
    drop(phase);

    let wall_s = started.elapsed().as_secs_f64();
    // First and last quarter of the log rows (at most 20 each).
    let k = (rows.len() / 4).clamp(1, 20).min(rows.len());
    let summary = TrainSummary {
        config: config.name.clone(),
        num_params,
        start_step: start,
        end_step: step,
        total_steps: settings.steps,
        initial_loss: mean(rows[..k].iter().map(|r| r.loss)),
        final_loss: mean(rows[rows.len() - k..].iter().map(|r| r.loss)),
        tokens_per_s: tokens as f64 / wall_s.max(1e-9),
        wall_s,
        last_checkpoint,
        last_preview_psnr: last_preview,
        interrupted,
        rows,
    };
    if !aborted {
        write_summary(&opts.out, &summary)?;
    }
    Ok(summary)
}

/// A phase of the clip curriculum: its span of updates, its clips and the stream preparing
/// them.
struct Phase {
    span: PhaseSpan,
    source: Arc<dyn ClipSource>,
    shape: BatchShape,
    stream: BatchStream,
    tokens_per_step: usize,
}

impl Phase {
    /// The phase `span` on `source`, its stream starting at update `step`.
    fn start(
        opts: &TrainOptions,
        (span, source): (PhaseSpan, Arc<dyn ClipSource>),
        step: usize,
    ) -> Self {
        let (config, settings) = (&opts.config, &opts.settings);
        let shape = BatchShape {
            batch: span.batch,
            clip_frames: span.clip_frames,
            resolution: config.resolution,
            pose_dim: config.pose_dim.unwrap_or(0),
            noise: Some(NoiseSpec {
                sampling: settings.tau_sampling,
                prefix_prob: settings.prefix_prob,
            }),
        };
        let stream = BatchStream::new(
            source.clone(),
            shape.clone(),
            settings.seed,
            step,
            opts.data_workers,
        );
        Phase {
            span,
            source,
            shape,
            stream,
            tokens_per_step: span.batch * span.clip_frames * config.tokens_per_frame(),
        }
    }
}

/// `field: saved vs given` for every differing setting.
fn settings_differences(saved: &TrainSettings, given: &TrainSettings) -> String {
    let a = serde_json::to_value(saved).expect("settings serialise");
    let b = serde_json::to_value(given).expect("settings serialise");
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return String::new();
    };
    a.iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, v)| {
            format!(
                "{k}: checkpoint {v}, given {}",
                b.get(k).map_or("-".into(), |x| x.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
