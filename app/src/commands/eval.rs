//! `memworld eval retrieval|reasoning` (SPEC §5.6; Po et al. 2025, §5): evaluates one or more
//! checkpoints on the same held-out episodes and writes the tables, the curves against frame
//! distance as PNG plots, and side-by-side GIFs (ground truth | generated).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::backend::Backend;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use model::world::eval::{
    evaluate_batch, frames_csv_rows, hold_last_frame, level_seed, scene_resolution, EpisodeScores,
    EpisodeSource, EvalReport, EvalSettings, GenerateOptions, ModelReport, ModelScores, Protocol,
    FRAMES_CSV_HEADER,
};
use model::world::preview::{PreviewClip, PreviewSamples};
use model::world::{WorldModel, WorldModelConfig, WorldSession};
use scenes::episode::atomic::write_bytes_atomic;
use scenes::SceneKind;

use super::backend::{run_on, BackendKind, OnBackend};
use super::resolve_size;
use super::train::write_preview_gif;
use crate::media;
use crate::plot::{LinePlot, Series};

/// Evaluate world-model checkpoints on the paper's memory protocols.
///
/// retrieval: a context of N frames along an exploration path, then the same poses walked
/// back; the model generates N frames that should reproduce the context in reverse.
/// reasoning: a context of N frames, then M frames of a fresh trajectory into places the
/// context may not have shown, against the frames the scene renders.
///
/// Levels come from seeds held out from training (see `model::world::eval::protocol`), or
/// episodes from --episodes-dir. The output directory receives results.md, results.csv
/// (one row per model), curves.csv and results.json (means and the curves against frame
/// distance), frames.csv (every generated frame), psnr.png, ssim.png and
/// videos/MODEL_epNNN.gif. The same seed and checkpoints give byte-identical results.
///
/// Every report ends with the row 'hold last context frame', which scores no model: the last
/// context frame held for every generated frame. Without --checkpoint only that row is
/// computed (how hard the episodes are, in seconds and without a model).
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Protocol: retrieval or reasoning.
    #[arg(value_name = "PROTOCOL")]
    pub protocol: Protocol,
    /// A checkpoint directory or a run directory (its latest checkpoint). Repeat the flag to
    /// evaluate several models on the same episodes in one table. Without it only the
    /// reference row (the last context frame held) is scored.
    #[arg(long = "checkpoint", value_name = "DIR")]
    pub checkpoints: Vec<PathBuf>,
    /// Scene rendering the episodes: maze or voxel (voxel: reasoning only) [default: maze,
    /// or the scene of the --episodes-dir files].
    #[arg(long)]
    pub scene: Option<SceneKind>,
    /// Maze cells per side: 9, 11, 13 or 15 [default: 9, or the size of the episode files].
    #[arg(long)]
    pub size: Option<usize>,
    /// N, context frames shown to the model before it generates.
    #[arg(long, value_name = "N")]
    pub context: usize,
    /// M, frames to generate after the context [default: N; retrieval always generates N].
    #[arg(long, value_name = "M")]
    pub generate: Option<usize>,
    /// Episodes to evaluate.
    #[arg(long, default_value_t = 16)]
    pub episodes: usize,
    /// Seed of the held-out levels (episode e uses level 1000000 + seed + e), of the start
    /// offsets in episode files and of the diffusion noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Euler steps per generated frame [default: each model's sampling_steps].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Noise level in [0, 1) at which each generated frame is committed to the model's history
    /// (later frames then lean less on its errors) [default: each model's history_noise].
    #[arg(long, value_name = "TAU", value_parser = crate::models::parse_history_noise)]
    pub history_noise: Option<f32>,
    /// Output directory [default: eval-PROTOCOL].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Take context and ground truth from episode files (ours or real Memory Maze .npz) in
    /// this directory instead of rendering levels: episode e reads the e-th file (sorted).
    #[arg(long, value_name = "DIR")]
    pub episodes_dir: Option<PathBuf>,
    /// Write side-by-side GIFs (ground truth | generated) of the first K episodes per model.
    #[arg(long, value_name = "K", default_value_t = 2)]
    pub videos: usize,
    /// Episodes generated together in one batch (results do not depend on it).
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Context frames committed per prefill pass (bounds the prefill's memory).
    #[arg(long, default_value_t = 32)]
    pub prefill_chunk: usize,
    /// Also evaluate each model with only the last K context frames prefilled, the earlier
    /// ones dropped (a row of its own, labelled "MODEL, last K context"), on the same
    /// episodes: a control for memory. A model that uses the dropped frames scores lower
    /// there on the way back.
    #[arg(long, value_name = "K")]
    pub keep_context: Option<usize>,
    /// Compute backend. `cuda` needs a build with `--features cuda`.
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
}

pub fn run(args: EvalArgs) -> Result<()> {
    run_on(args.backend, Job(args))
}

struct Job(EvalArgs);

impl OnBackend for Job {
    type Output = ();
    fn run<B: Backend>(self, device: B::Device) -> Result<()> {
        evaluate::<B>(&self.0, &device)
    }
}

/// A loaded checkpoint.
struct Loaded<B: Backend> {
    label: String,
    checkpoint: String,
    step: usize,
    model: WorldModel<B>,
    /// Context frames prefilled (`None`: all), see `--keep-context`.
    keep_context: Option<usize>,
}

fn config(m: &Loaded<impl Backend>) -> &WorldModelConfig {
    m.model.config()
}

/// The history noise `m` is evaluated with: --history-noise, else its config's.
fn history_noise(args: &EvalArgs, m: &Loaded<impl Backend>) -> f32 {
    args.history_noise
        .unwrap_or(config(m).history_noise_level() as f32)
}

/// Loads every checkpoint (EMA weights), labelled by preset name (made unique).
fn load_models<B: Backend>(paths: &[PathBuf], device: &B::Device) -> Result<Vec<Loaded<B>>> {
    let mut out: Vec<Loaded<B>> = Vec::new();
    for path in paths {
        let loaded = crate::models::load_model::<B>(path, device)?;
        out.push(Loaded {
            label: loaded.config.name,
            checkpoint: path.display().to_string(),
            step: loaded.step,
            model: loaded.model,
            keep_context: None,
        });
    }
    let repeated: Vec<bool> = out
        .iter()
        .map(|m| out.iter().filter(|o| o.label == m.label).count() > 1)
        .collect();
    for (i, m) in out.iter_mut().enumerate() {
        if repeated[i] {
            m.label = format!("{} #{}", m.label, i + 1);
        }
    }
    Ok(out)
}

/// Each model, then (with `--keep-context K`) each again with only its last K context frames
/// prefilled.
fn with_kept_context<B: Backend>(models: Vec<Loaded<B>>, keep: Option<usize>) -> Vec<Loaded<B>> {
    let Some(k) = keep else {
        return models;
    };
    let kept: Vec<Loaded<B>> = models
        .iter()
        .map(|m| Loaded {
            label: format!("{}, last {k} context", m.label),
            checkpoint: m.checkpoint.clone(),
            step: m.step,
            model: m.model.clone(),
            keep_context: Some(k),
        })
        .collect();
    models.into_iter().chain(kept).collect()
}

fn settings(args: &EvalArgs) -> Result<EvalSettings> {
    let generate = match (args.protocol, args.generate) {
        (Protocol::Retrieval, Some(m)) if m != args.context => bail!(
            "--generate {m}: retrieval generates the context walked back, so it generates \
             --context ({}) frames; leave --generate out",
            args.context
        ),
        (_, Some(m)) => m,
        (_, None) => args.context,
    };
    let s = EvalSettings {
        protocol: args.protocol,
        context: args.context,
        generate,
        episodes: args.episodes,
        seed: args.seed,
    };
    s.validate()?;
    if args.batch == 0 || args.prefill_chunk == 0 || args.steps == Some(0) {
        bail!("--batch, --prefill-chunk and --steps must be at least 1");
    }
    if let Some(k) = args.keep_context.filter(|&k| k == 0 || k >= args.context) {
        bail!(
            "--keep-context {k}: keep between 1 and {} of the {} context frames",
            args.context.saturating_sub(1),
            args.context
        );
    }
    if args.episodes_dir.is_none() {
        level_seed(args.seed, args.episodes - 1)?;
    }
    Ok(s)
}

fn source(args: &EvalArgs, s: &EvalSettings, resolutions: &[usize]) -> Result<EpisodeSource> {
    let Some(dir) = &args.episodes_dir else {
        let scene = args.scene.unwrap_or(SceneKind::Maze);
        let size = resolve_size(scene, args.size)?;
        let r = scene_resolution(scene, resolutions)?;
        return EpisodeSource::scene(scene, size, r, s.protocol)
            .with_context(|| format!("--scene {} --size {size}", scene.name()));
    };
    let src = EpisodeSource::files(dir, s)
        .with_context(|| format!("--episodes-dir {}", dir.display()))?;
    if let Some(scene) = args.scene.filter(|&k| k != src.scene_kind()) {
        bail!(
            "--scene {}: the files in {} are {} episodes",
            scene.name(),
            dir.display(),
            src.scene_kind().name()
        );
    }
    if let Some(size) = args
        .size
        .filter(|&n| src.scene_kind() == SceneKind::Maze && n != src.size())
    {
        bail!(
            "--size {size}: the files in {} are {}x{} mazes",
            dir.display(),
            src.size(),
            src.size()
        );
    }
    Ok(src)
}

/// A file name made of the label's letters, digits, '-', '_' and '.'.
fn file_stem(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    write_bytes_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

fn evaluate<B: Backend>(args: &EvalArgs, device: &B::Device) -> Result<()> {
    let s = settings(args)?;
    let models = with_kept_context(
        load_models::<B>(&args.checkpoints, device)?,
        args.keep_context,
    );
    let resolutions: Vec<usize> = models.iter().map(|m| config(m).resolution).collect();
    let src = source(args, &s, &resolutions)?;
    for m in &models {
        src.check_model(config(m))
            .with_context(|| format!("--checkpoint {}", m.checkpoint))?;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("eval-{}", s.protocol.name())));
    let videos = out.join("videos");
    std::fs::create_dir_all(&videos).with_context(|| format!("creating {}", videos.display()))?;

    let total = (models.len() * s.episodes * s.generate) as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} frames {msg} (eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut sessions: Vec<WorldSession<B>> = models
        .iter()
        .map(|m| WorldSession::new(m.model.clone(), device.clone()))
        .collect();
    let mut scores: Vec<Vec<EpisodeScores>> = vec![Vec::new(); models.len()];
    // The reference row is scored at the first model's resolution (the scene's without one).
    let reference_resolution = resolutions.first().copied().unwrap_or(src.resolution());
    let mut reference: Vec<EpisodeScores> = Vec::new();
    let mut start = 0;
    while start < s.episodes {
        let end = (start + args.batch).min(s.episodes);
        bar.set_message(format!("building episodes {start}..{end}"));
        let episodes = (start..end)
            .map(|i| src.episode(&s, i))
            .collect::<Result<Vec<_>, _>>()
            .context("building evaluation episodes")?;
        for e in &episodes {
            reference.push(hold_last_frame(e, reference_resolution)?);
        }
        for (mi, m) in models.iter().enumerate() {
            bar.set_message(format!("{} episodes {start}..{end}", m.label));
            let opts = GenerateOptions {
                steps: args.steps.unwrap_or(config(m).sampling_steps),
                prefill_chunk: args.prefill_chunk,
                seed: s.seed,
                history_noise: history_noise(args, m),
                keep_context: m.keep_context,
            };
            let outputs = evaluate_batch(&mut sessions[mi], &episodes, &opts, &mut || {
                bar.inc(end as u64 - start as u64)
            })
            .with_context(|| format!("evaluating {}", m.checkpoint))?;
            for o in outputs {
                if o.scores.index < args.videos {
                    let path = videos.join(format!(
                        "{}_ep{:03}.gif",
                        file_stem(&m.label),
                        o.scores.index
                    ));
                    let psnr = o.scores.psnr.iter().sum::<f64>() / o.scores.psnr.len() as f64;
                    let samples = PreviewSamples {
                        step: m.step,
                        context: s.context,
                        clips: vec![PreviewClip {
                            truth: o.truth,
                            generated: o.generated,
                            psnr,
                        }],
                    };
                    write_preview_gif(&path, &samples)?;
                }
                scores[mi].push(o.scores);
            }
        }
        start = end;
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();

    let report = EvalReport {
        protocol: s.protocol,
        source: src.describe(),
        scene: src.scene_kind(),
        size: src.size(),
        source_resolution: src.resolution(),
        level_seeds: match src {
            EpisodeSource::Scene { .. } => {
                Some([level_seed(s.seed, 0)?, level_seed(s.seed, s.episodes - 1)?])
            }
            EpisodeSource::Files { .. } => None,
        },
        settings: s.clone(),
        models: models
            .iter()
            .zip(&scores)
            .map(|(m, sc)| ModelReport {
                label: m.label.clone(),
                checkpoint: m.checkpoint.clone(),
                config: config(m).name.clone(),
                train_step: m.step,
                params: m.model.num_params(),
                sampling_steps: args.steps.unwrap_or(config(m).sampling_steps),
                history_noise: history_noise(args, m),
                kept_context: m.keep_context,
                scores: ModelScores::from_episodes(sc),
            })
            .chain([ModelReport::reference(ModelScores::from_episodes(
                &reference,
            ))])
            .collect(),
    };
    scores.push(reference);
    write_outputs(&out, &report, &scores)?;
    print!("{}", report.markdown());
    println!(
        "\n{} model(s) × {} episodes × {} frames in {elapsed:.1} s; results in {}",
        models.len(),
        s.episodes,
        s.generate,
        out.display()
    );
    Ok(())
}

/// results.{json,md,csv}, curves.csv, frames.csv, psnr.png and ssim.png.
fn write_outputs(out: &Path, report: &EvalReport, scores: &[Vec<EpisodeScores>]) -> Result<()> {
    write_text(&out.join("results.json"), &report.to_json())?;
    write_text(&out.join("results.md"), &report.markdown())?;
    write_text(&out.join("results.csv"), &report.summary_csv())?;
    write_text(&out.join("curves.csv"), &report.curves_csv())?;
    let mut frames = String::from(FRAMES_CSV_HEADER);
    for (m, sc) in report.models.iter().zip(scores) {
        frames.push_str(&frames_csv_rows(&m.label, sc));
    }
    write_text(&out.join("frames.csv"), &frames)?;
    let s = &report.settings;
    for (file, name, pick) in [
        (
            "psnr.png",
            "PSNR (dB)",
            (|m: &ModelReport| m.scores.curve.psnr.clone()) as fn(&ModelReport) -> Vec<f64>,
        ),
        ("ssim.png", "SSIM", |m: &ModelReport| {
            m.scores.curve.ssim.clone()
        }),
    ] {
        let plot = LinePlot {
            title: format!(
                "{} {} -> {}: {name} vs frame distance",
                s.protocol.name(),
                s.context,
                s.generate
            ),
            x_label: "frames after the context".into(),
            y_label: name.into(),
            series: report
                .models
                .iter()
                .map(|m| Series {
                    label: m.label.clone(),
                    points: m
                        .scores
                        .curve
                        .distance
                        .iter()
                        .map(|&d| d as f64)
                        .zip(pick(m))
                        .collect(),
                })
                .collect(),
            width: 960,
            height: 600,
        };
        media::write_png(&out.join(file), &plot.render())?;
    }
    Ok(())
}
