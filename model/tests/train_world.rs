//! Issue 5's training checks on the CPU backend (Autodiff<NdArray>):
//! - the `tiny` preset trained for a few hundred updates on a handful of generated maze clips
//!   ends with a loss below half its starting loss, and its EMA weights sample next frames
//!   (from pure noise, given the context) closer in PSNR to the true frames than the untrained
//!   model does;
//! - a run killed mid-way and resumed follows the uninterrupted run's loss curve;
//! - damaged, incomplete or mismatched checkpoints give typed errors naming the file.
//!
//! The tests share the backend's global seed, so they run one at a time.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::tensor::Tensor;
use model::world::checkpoint::{self, checksum, CheckpointState, EMA_FILE, MODEL_FILE};
use model::world::data::{open_source, stream_rng, BatchShape, Stream};
use model::world::metrics::psnr_frames;
use model::world::preview::{generate_continuation, tensor_to_clips};
use model::world::runlog::{read_loss_csv, LossRow};
use model::world::{
    load_for_inference, load_for_inference_checked, train, Control, DataSpec, TauSampling,
    TrainObserver, TrainOptions, TrainSettings, WorldError, WorldModel, WorldModelConfig,
};

type B = NdArray;
type AB = Autodiff<NdArray>;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memworld-train-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

const DATA: &str = "gen:maze:9:pool=4";

fn settings(config: &WorldModelConfig, steps: usize) -> TrainSettings {
    let mut s = TrainSettings::new(config, &DATA.parse().unwrap(), steps);
    s.batch = 4;
    s.lr = 3e-3;
    s.warmup = 10;
    s.ema_decay = 0.99;
    s.tau_sampling = TauSampling::Uniform;
    s.seed = 11;
    s
}

/// Stops like a kill (nothing written) after the row of update `at`.
struct KillAt(usize);
impl TrainObserver for KillAt {
    fn on_log(&mut self, row: &LossRow) -> Control {
        if row.step >= self.0 {
            Control::Abort
        } else {
            Control::Continue
        }
    }
}

fn mean(rows: &[LossRow]) -> f64 {
    rows.iter().map(|r| r.loss).sum::<f64>() / rows.len() as f64
}

/// Mean PSNR of the last `n` frames of the pool clips generated after the others as context.
fn continuation_psnr(model: &WorldModel<B>, config: &WorldModelConfig, n: usize) -> f64 {
    let frames = config.clip_frames;
    let source = open_source(&DATA.parse::<DataSpec>().unwrap(), config, frames, 11).unwrap();
    let shape = BatchShape {
        batch: 4,
        clip_frames: frames,
        resolution: config.resolution,
        pose_dim: 4,
        noise: None,
    };
    let batch = model::world::data::batch_from_rng(
        source.as_ref(),
        &shape,
        stream_rng(11, Stream::Preview, 0),
    )
    .unwrap();
    let (x0, cond) = batch.to_device::<B>(config, &Default::default());
    let generated = generate_continuation(
        model,
        x0.clone(),
        &cond,
        frames - n,
        config.sampling_steps,
        99,
    );
    let truth = tensor_to_clips(x0);
    let generated = tensor_to_clips(generated);
    let mut scores = Vec::new();
    for (t, g) in truth.iter().zip(&generated) {
        for (k, frame) in g.iter().enumerate() {
            scores.push(psnr_frames(frame, &t[frames - n + k]));
        }
    }
    scores.iter().sum::<f64>() / scores.len() as f64
}

#[test]
fn tiny_preset_learns_a_handful_of_maze_clips() {
    let _guard = serial();
    let config = WorldModelConfig::tiny();
    let out = scratch("tiny");
    let mut opts = TrainOptions::new(config.clone(), settings(&config, 300), &out);
    opts.ckpt_every = 0;
    let summary =
        train::<AB>(&opts, &Default::default(), &mut model::world::train::Silent).unwrap();
    let rows = &summary.rows;
    assert_eq!(rows.len(), 300);
    let (first, last) = (mean(&rows[..20]), mean(&rows[rows.len() - 20..]));
    println!("loss: first 20 {first:.4}, last 20 {last:.4}");
    assert!(
        last < 0.5 * first,
        "loss went from {first:.4} to {last:.4}, not below half"
    );

    // Samples of the trained EMA weights against those of the untrained model (same init).
    let (trained, _) = load_for_inference::<B>(&out, &Default::default()).unwrap();
    <B as burn::tensor::backend::Backend>::seed(&Default::default(), 11);
    let untrained = config.init::<B>(&Default::default());
    let (p_trained, p_untrained) = (
        continuation_psnr(&trained, &config, 2),
        continuation_psnr(&untrained, &config, 2),
    );
    println!("next-frame PSNR: trained {p_trained:.2} dB, untrained {p_untrained:.2} dB");
    assert!(
        p_trained > p_untrained + 1.0,
        "trained {p_trained:.2} dB vs untrained {p_untrained:.2} dB"
    );
    let _ = fs::remove_dir_all(&out);
}

fn params(dir: &Path, file: &str) -> Vec<f32> {
    let ckpt = checkpoint::open_checkpoint(dir, None).unwrap();
    let m = ckpt.load_weights::<B>(file, &Default::default()).unwrap();
    let mut out = Vec::new();
    struct Collect<'a>(&'a mut Vec<f32>);
    impl burn::module::ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<B, D>>) {
            self.0.extend(p.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    m.visit(&mut Collect(&mut out));
    out
}

#[test]
fn killed_and_resumed_run_follows_the_uninterrupted_loss_curve() {
    let _guard = serial();
    let config = WorldModelConfig::tiny();
    let (a, b) = (scratch("whole"), scratch("killed"));
    let mut whole = TrainOptions::new(config.clone(), settings(&config, 40), &a);
    whole.ckpt_every = 10;
    let full = train::<AB>(
        &whole,
        &Default::default(),
        &mut model::world::train::Silent,
    )
    .unwrap();

    // Killed after update 25 (checkpoints at 10 and 20), with background data workers.
    let mut killed = TrainOptions {
        out: b.clone(),
        data_workers: 2,
        ..whole.clone()
    };
    let part = train::<AB>(&killed, &Default::default(), &mut KillAt(25)).unwrap();
    assert_eq!(part.end_step, 25);
    killed.resume = true;
    let resumed = train::<AB>(
        &killed,
        &Default::default(),
        &mut model::world::train::Silent,
    )
    .unwrap();
    assert_eq!((resumed.start_step, resumed.end_step), (20, 40));

    // The loss log of the killed run, cut back to update 20 and continued, is the whole run's.
    let (log_a, log_b) = (
        read_loss_csv(&a.join("loss.csv")).unwrap(),
        read_loss_csv(&b.join("loss.csv")).unwrap(),
    );
    assert_eq!(
        log_b.iter().map(|r| r.step).collect::<Vec<_>>(),
        (1..=40).collect::<Vec<_>>()
    );
    for (x, y) in log_a.iter().zip(&log_b) {
        let rel = (x.loss - y.loss).abs() / x.loss.abs().max(1e-12);
        assert!(
            rel <= 1e-5,
            "update {}: loss {} vs {} (rel {rel:.2e})",
            x.step,
            x.loss,
            y.loss
        );
        assert_eq!(x.lr, y.lr);
    }
    for (x, y) in full.rows[20..].iter().zip(&resumed.rows) {
        assert_eq!(x.step, y.step);
        assert!((x.loss - y.loss).abs() <= 1e-5 * x.loss.abs());
    }
    // And it ends with the same weights and EMA.
    for file in [MODEL_FILE, EMA_FILE] {
        let (wa, wb) = (params(&a, file), params(&b, file));
        model::tolerance::assert_close_slices(file, &wb, &wa, 1e-5, 1e-6);
    }
    let _ = (fs::remove_dir_all(&a), fs::remove_dir_all(&b));
}

/// A short run to damage: 2 updates, checkpoint at the end.
fn small_run(name: &str) -> (PathBuf, TrainOptions) {
    let config = WorldModelConfig::tiny();
    let out = scratch(name);
    let mut s = settings(&config, 2);
    s.batch = 1;
    let opts = TrainOptions::new(config, s, &out);
    train::<AB>(&opts, &Default::default(), &mut model::world::train::Silent).unwrap();
    (out, opts)
}

fn latest(out: &Path) -> PathBuf {
    checkpoint::resolve_checkpoint_dir(out).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn expect_damaged(dir: &Path, file: &str) -> String {
    match load_for_inference::<B>(dir, &Default::default()) {
        Err(e @ WorldError::CheckpointDamaged { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(file), "the message should name {file}: {msg}");
            msg
        }
        Err(e) => panic!("expected a damaged-checkpoint error naming {file}, got: {e}"),
        Ok(_) => panic!("a checkpoint with a damaged {file} loaded"),
    }
}

#[test]
fn damaged_or_mismatched_checkpoints_are_rejected_with_clear_errors() {
    let _guard = serial();
    let (out, opts) = small_run("damage");
    let good = latest(&out);
    let dev = Default::default();
    let (_, cfg) = load_for_inference::<B>(&out, &dev).unwrap();
    assert_eq!(cfg, WorldModelConfig::tiny());

    // Asked for another preset.
    match load_for_inference_checked::<B>(&out, &WorldModelConfig::maze_small(), &dev) {
        Err(e @ WorldError::ConfigMismatch { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("tiny") && msg.contains("maze-small") && msg.contains("d_model"),
                "{msg}"
            );
        }
        other => panic!("expected ConfigMismatch, got {:?}", other.err()),
    }
    // The history noise is a sampling setting: a config differing only there still matches,
    // and the checkpoint keeps its own.
    let noisy = WorldModelConfig {
        history_noise: Some(0.25),
        ..WorldModelConfig::tiny()
    };
    let loaded = load_for_inference_checked::<B>(&out, &noisy, &dev).unwrap();
    assert_eq!(loaded.config().history_noise, None);

    let case = |name: &str| {
        let dir = out.join(format!("case-{name}"));
        copy_dir(&good, &dir);
        dir
    };
    // Truncated weights.
    let dir = case("truncated");
    let bytes = fs::read(dir.join(EMA_FILE)).unwrap();
    fs::write(dir.join(EMA_FILE), &bytes[..bytes.len() / 2]).unwrap();
    assert!(expect_damaged(&dir, "ema.mpk").contains("truncated"));
    // One flipped byte.
    let dir = case("flipped");
    let mut bytes = fs::read(dir.join(EMA_FILE)).unwrap();
    let k = bytes.len() - 100;
    bytes[k] ^= 0x10;
    fs::write(dir.join(EMA_FILE), &bytes).unwrap();
    assert!(expect_damaged(&dir, "ema.mpk").contains("checksum"));
    // Garbage whose checksum was updated too: the decoder's error, not a panic.
    let dir = case("garbage");
    let garbage = vec![0xC1u8; 4096];
    fs::write(dir.join(EMA_FILE), &garbage).unwrap();
    let mut state: CheckpointState =
        serde_json::from_slice(&fs::read(dir.join("state.json")).unwrap()).unwrap();
    let d = state.files.get_mut(EMA_FILE).unwrap();
    (d.bytes, d.checksum) = (garbage.len() as u64, checksum(&garbage));
    fs::write(dir.join("state.json"), serde_json::to_vec(&state).unwrap()).unwrap();
    assert!(expect_damaged(&dir, "ema.mpk").contains("decode"));
    // Missing files.
    let dir = case("noconfig");
    fs::remove_file(dir.join("config.json")).unwrap();
    assert!(expect_damaged(&dir, "config.json").contains("missing"));
    let dir = case("noema");
    fs::remove_file(dir.join(EMA_FILE)).unwrap();
    expect_damaged(&dir, "ema.mpk");
    // A config edited to other sizes no longer fits the weights.
    let dir = case("edited");
    let mut edited = WorldModelConfig::tiny();
    edited.d_model = 48;
    fs::write(
        dir.join("config.json"),
        serde_json::to_vec(&edited).unwrap(),
    )
    .unwrap();
    match load_for_inference::<B>(&dir, &dev) {
        Err(e @ WorldError::ArchitectureMismatch { .. }) => {
            assert!(e.to_string().contains("in the checkpoint"), "{e}")
        }
        other => panic!("expected ArchitectureMismatch, got {:?}", other.err()),
    }
    // `latest` naming a directory that is gone; a directory without checkpoints.
    fs::write(out.join("checkpoints/latest"), "step-999999\n").unwrap();
    assert!(expect_damaged(&out, "latest").contains("step-999999"));
    fs::write(
        out.join("checkpoints/latest"),
        format!("{}\n", good.file_name().unwrap().to_string_lossy()),
    )
    .unwrap();
    let empty = out.join("case-empty");
    fs::create_dir_all(&empty).unwrap();
    assert!(matches!(
        load_for_inference::<B>(&empty, &dev),
        Err(WorldError::NoCheckpoint { .. })
    ));

    // Resuming with other settings or another config, or starting over an existing run.
    let mut other = opts.clone();
    other.resume = true;
    other.settings.lr = 1e-4;
    let err = train::<AB>(&other, &dev, &mut model::world::train::Silent)
        .err()
        .expect("lr differs");
    assert!(
        matches!(err, WorldError::TrainOptions(ref m) if m.contains("lr")),
        "{err}"
    );
    let mut other = opts.clone();
    other.resume = true;
    other.config = WorldModelConfig::tiny_variant("causal-full").unwrap();
    let err = train::<AB>(&other, &dev, &mut model::world::train::Silent)
        .err()
        .expect("config differs");
    assert!(matches!(err, WorldError::ConfigMismatch { .. }), "{err}");
    let err = train::<AB>(&opts, &dev, &mut model::world::train::Silent)
        .err()
        .expect("existing run");
    assert!(
        matches!(err, WorldError::TrainOptions(ref m) if m.contains("--resume")),
        "{err}"
    );
    let _ = fs::remove_dir_all(&out);
}

/// bf16 matrix products need a backend with bf16 tensors: on ndarray the run is refused before
/// anything is written, with the flag named.
#[test]
fn bf16_on_a_backend_without_bf16_is_refused() {
    let config = WorldModelConfig::tiny();
    let out = scratch("bf16-refused");
    let mut s = settings(&config, 2);
    s.precision = model::precision::MatmulPrecision::Bf16;
    let opts = TrainOptions::new(config, s, &out);
    let err = train::<AB>(&opts, &Default::default(), &mut model::world::train::Silent)
        .err()
        .expect("ndarray has no bf16");
    assert!(
        matches!(err, WorldError::TrainOptions(ref m) if m.contains("--precision bf16")),
        "{err}"
    );
    assert!(!checkpoint::has_checkpoint(&out));
}

fn run(opts: &TrainOptions) -> model::world::TrainSummary {
    train::<AB>(opts, &Default::default(), &mut model::world::train::Silent).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

/// A warm start (`TrainSettings::init`) begins from the source run's EMA weights: after one
/// update at a vanishing learning rate its weights are those EMA weights, not a fresh
/// initialisation, and its settings record where they came from. A source of another preset
/// is refused.
#[test]
fn warm_start_begins_from_the_source_ema_weights() {
    let _guard = serial();
    let (source, _) = small_run("init-source");
    let config = WorldModelConfig::tiny();
    let out = scratch("init-run");
    let mut s = settings(&config, 1);
    s.batch = 1;
    s.lr = 1e-12;
    s.seed = 12;
    s.init = Some(source.display().to_string());
    let opts = TrainOptions::new(config.clone(), s, &out);
    run(&opts);
    let (ema, warm) = (params(&source, EMA_FILE), params(&out, MODEL_FILE));
    model::tolerance::assert_close_slices("warm start", &warm, &ema, 1e-6, 1e-7);
    let saved = checkpoint::open_checkpoint(&out, None).unwrap();
    assert_eq!(saved.state.train["init"], source.display().to_string());

    // A scratch run with the same seed starts elsewhere, so the comparison above can fail.
    let scratch_out = scratch("init-none");
    let mut s = opts.settings.clone();
    s.init = None;
    run(&TrainOptions::new(config.clone(), s, &scratch_out));
    let far = max_diff(&params(&scratch_out, MODEL_FILE), &ema);
    assert!(
        far > 1e-2,
        "a fresh initialisation equals the source ({far})"
    );

    // From a run directory (f32 records) and from an 8-bit inference export, the warm-started
    // parameters are trainable: a real learning rate gives them gradients and moves them.
    let q8 = scratch("init-q8");
    model::world::export::export_for_inference::<B>(
        &source,
        &q8,
        checkpoint::Precision::Q8,
        &Default::default(),
    )
    .unwrap();
    for (i, from) in [&source, &q8].into_iter().enumerate() {
        let out = scratch(&format!("init-learns-{i}"));
        let mut s = settings(&config, 2);
        s.batch = 1;
        s.warmup = 1;
        s.init = Some(from.display().to_string());
        let summary = run(&TrainOptions::new(config.clone(), s, &out));
        assert!(
            summary.rows.iter().all(|r| r.grad_norm > 0.0),
            "warm start from {}: no gradient reached the weights",
            from.display()
        );
        let moved = max_diff(&params(&out, MODEL_FILE), &ema);
        assert!(
            moved > 1e-4,
            "warm start from {}: weights frozen",
            from.display()
        );
        let _ = fs::remove_dir_all(out);
    }
    let _ = fs::remove_dir_all(q8);

    let other = WorldModelConfig::tiny_variant("causal-window").unwrap();
    let mut s = settings(&other, 1);
    s.init = Some(source.display().to_string());
    let refused = scratch("init-other");
    let err = train::<AB>(
        &TrainOptions::new(other, s, &refused),
        &Default::default(),
        &mut model::world::train::Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("config"), "{err}");
    for d in [source, out, scratch_out, refused] {
        let _ = fs::remove_dir_all(d);
    }
}

/// Records every preview's context (half the clip length of its phase).
struct Previews(Vec<(usize, usize)>);
impl TrainObserver for Previews {
    fn on_samples(&mut self, samples: &model::world::preview::PreviewSamples) {
        self.0.push((samples.step, samples.context));
    }
}

/// A two-phase curriculum (`TrainSettings::long_clips`) trains its first updates exactly as a
/// run without one, switches to the long clips at its update (the previews' clips double),
/// and a run killed on either side of the switch resumes onto the uninterrupted loss curve.
#[test]
fn curriculum_switches_clips_at_its_update_and_resumes_across_the_switch() {
    let _guard = serial();
    let config = WorldModelConfig::tiny();
    let mut s = settings(&config, 6);
    s.batch = 2;
    s.long_clips = Some("3:1x16".parse().unwrap());
    // Previews (of one clip after every update) only where the test looks at them.
    let options = |name: &str, s: &TrainSettings, previews: bool| {
        let mut o = TrainOptions::new(config.clone(), s.clone(), scratch(name));
        o.ckpt_every = 2;
        o.sample_every = usize::from(previews);
        o.sample_clips = 1;
        o
    };
    let whole = options("curriculum", &s, true);
    let mut seen = Previews(Vec::new());
    let full = train::<AB>(&whole, &Default::default(), &mut seen).unwrap();
    let half = config.clip_frames / 2;
    assert_eq!(
        seen.0,
        vec![(1, half), (2, half), (3, half), (4, 8), (5, 8), (6, 8)]
    );
    let saved = checkpoint::open_checkpoint(&whole.out, None).unwrap();
    assert_eq!(saved.state.train["long_clips"]["clip_frames"], 16);

    // Without the curriculum: the same first three updates, then other batches.
    let mut plain = s.clone();
    plain.long_clips = None;
    let plain_opts = options("curriculum-plain", &plain, false);
    let plain = run(&plain_opts);
    for (x, y) in full.rows.iter().zip(&plain.rows) {
        let same = (x.loss - y.loss).abs() <= 1e-6 * x.loss.abs();
        assert_eq!(
            same,
            x.step <= 3,
            "update {}: {} vs {}",
            x.step,
            x.loss,
            y.loss
        );
    }

    // Killed after update 3 (resumes from 2, before the switch) and after 5 (resumes from 4,
    // after it).
    for (kill, from) in [(3, 2), (5, 4)] {
        let mut killed = options(&format!("curriculum-killed-{kill}"), &s, false);
        train::<AB>(&killed, &Default::default(), &mut KillAt(kill)).unwrap();
        killed.resume = true;
        let resumed = run(&killed);
        assert_eq!((resumed.start_step, resumed.end_step), (from, 6));
        for (x, y) in full.rows[from..].iter().zip(&resumed.rows) {
            assert_eq!(x.step, y.step);
            let rel = (x.loss - y.loss).abs() / x.loss.abs();
            assert!(
                rel <= 1e-5,
                "killed at {kill}, update {}: rel {rel:.2e}",
                x.step
            );
        }
        let _ = fs::remove_dir_all(&killed.out);
    }
    let _ = (
        fs::remove_dir_all(&whole.out),
        fs::remove_dir_all(&plain_opts.out),
    );
}
