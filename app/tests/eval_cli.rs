//! `memworld eval` and `memworld bench dream` run as a user would, on a tiny randomly
//! initialised checkpoint written by the training code's checkpoint writer: the same seed and
//! checkpoint give byte-identical results.json, every output is written, and bad input gives
//! one clear error line.

mod common;

use common::{assert_one_line_error, memworld, scratch, text};

fn tiny_checkpoint(dir: &std::path::Path) -> std::path::PathBuf {
    common::tiny_checkpoint(dir, 2, 1)
}

/// Sets `flag` to `value` in `args` (replacing it when present).
fn set<'a>(args: &mut Vec<&'a str>, flag: &'a str, value: &'a str) {
    match args.iter().position(|a| *a == flag) {
        Some(i) => args[i + 1] = value,
        None => args.extend([flag, value]),
    }
}

fn eval_args<'a>(ckpt: &'a str, out: &'a str, protocol: &'a str) -> Vec<&'a str> {
    vec![
        "eval",
        protocol,
        "--checkpoint",
        ckpt,
        "--context",
        "3",
        "--generate",
        "3",
        "--episodes",
        "3",
        "--batch",
        "2",
        "--steps",
        "2",
        "--videos",
        "1",
        "--seed",
        "5",
        "--out",
        out,
    ]
}

#[test]
fn eval_is_deterministic_and_writes_every_output() {
    let dir = scratch("eval_determinism");
    let ckpt = tiny_checkpoint(&dir.join("run"));
    let ckpt = ckpt.to_str().unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    for out in [&a, &b] {
        let run = memworld(&eval_args(ckpt, out.to_str().unwrap(), "retrieval"));
        assert!(run.status.success(), "stderr: {}", text(&run.stderr));
        assert!(
            text(&run.stdout).contains("| tiny |"),
            "{}",
            text(&run.stdout)
        );
    }
    let ja = std::fs::read(a.join("results.json")).unwrap();
    assert_eq!(
        ja,
        std::fs::read(b.join("results.json")).unwrap(),
        "results.json differs"
    );
    for f in ["results.csv", "curves.csv", "frames.csv", "results.md"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }

    let report: serde_json::Value = serde_json::from_slice(&ja).unwrap();
    let m = &report["models"][0];
    assert_eq!(m["config"], "tiny");
    assert_eq!(m["train_step"], 2);
    assert_eq!(
        m["scores"]["curve"]["distance"],
        serde_json::json!([1, 2, 3])
    );
    // The mean is the mean of the model's per-frame rows (the reference's rows follow).
    let frames = std::fs::read_to_string(a.join("frames.csv")).unwrap();
    let psnr: Vec<f64> = frames
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("tiny,"))
        .map(|l| l.rsplit(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(psnr.len(), 9);
    let mean = psnr.iter().sum::<f64>() / 9.0;
    assert!((m["scores"]["psnr"].as_f64().unwrap() - mean).abs() < 1e-9);

    for f in ["psnr.png", "ssim.png"] {
        let img = image::open(a.join(f)).unwrap();
        assert_eq!((img.width(), img.height()), (960, 600), "{f}");
    }
    let gif = a.join("videos").join("tiny_ep000.gif");
    assert!(std::fs::metadata(&gif).unwrap().len() > 0);
    assert!(
        !a.join("videos").join("tiny_ep001.gif").exists(),
        "--videos 1"
    );

    // Another seed gives other levels, hence other numbers.
    let c = dir.join("c");
    let mut args = eval_args(ckpt, c.to_str().unwrap(), "retrieval");
    set(&mut args, "--seed", "6");
    assert!(memworld(&args).status.success());
    assert_ne!(ja, std::fs::read(c.join("results.json")).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_checkpoints_make_one_table() {
    let dir = scratch("eval_two");
    let ckpt = tiny_checkpoint(&dir.join("run"));
    let ckpt = ckpt.to_str().unwrap();
    let out = dir.join("out");
    let mut args = eval_args(ckpt, out.to_str().unwrap(), "reasoning");
    args.extend(["--checkpoint", ckpt]);
    set(&mut args, "--episodes", "1");
    let run = memworld(&args);
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let models = report["models"].as_array().unwrap();
    // Two models, then the reference row.
    assert_eq!(models.len(), 3);
    assert_eq!(models[2]["label"].as_str(), Some("hold last context frame"));
    assert_eq!(
        (models[0]["label"].as_str(), models[1]["label"].as_str()),
        (Some("tiny #1"), Some("tiny #2"))
    );
    // The same weights on the same episodes score the same.
    assert_eq!(models[0]["scores"], models[1]["scores"]);
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--keep-context K` adds a row per model, on the same episodes, whose scores are its own:
/// the model without its earlier context frames.
#[test]
fn kept_context_adds_a_row_per_model_on_the_same_episodes() {
    let dir = scratch("eval_keep");
    let ckpt = tiny_checkpoint(&dir.join("run"));
    let out = dir.join("out");
    let mut args = eval_args(ckpt.to_str().unwrap(), out.to_str().unwrap(), "retrieval");
    set(&mut args, "--videos", "0");
    set(&mut args, "--keep-context", "1");
    let run = memworld(&args);
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    assert!(
        text(&run.stdout).contains("| tiny, last 1 context |"),
        "{}",
        text(&run.stdout)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let models = report["models"].as_array().unwrap();
    let labels: Vec<&str> = models
        .iter()
        .map(|m| m["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["tiny", "tiny, last 1 context", "hold last context frame"]
    );
    assert!(models[0]["kept_context"].is_null());
    assert_eq!(models[1]["kept_context"], 1);
    let episodes = |m: &serde_json::Value| m["scores"]["episodes"].as_array().unwrap().clone();
    let (full, kept) = (episodes(&models[0]), episodes(&models[1]));
    assert_eq!(
        full.iter().map(|e| &e["origin"]).collect::<Vec<_>>(),
        kept.iter().map(|e| &e["origin"]).collect::<Vec<_>>()
    );
    assert!(
        full.iter().zip(&kept).any(|(a, b)| a["psnr"] != b["psnr"]),
        "dropping context frames changed no frame: {full:?} {kept:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_checkpoint_only_the_reference_is_scored() {
    let dir = scratch("eval_reference");
    let ckpt = tiny_checkpoint(&dir.join("run"));
    let (with, without) = (dir.join("with"), dir.join("without"));
    let mut args = eval_args(ckpt.to_str().unwrap(), with.to_str().unwrap(), "reasoning");
    set(&mut args, "--videos", "0");
    assert!(memworld(&args).status.success());
    // The same command without --checkpoint.
    let i = args.iter().position(|a| *a == "--checkpoint").unwrap();
    args.drain(i..i + 2);
    set(&mut args, "--out", without.to_str().unwrap());
    let run = memworld(&args);
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    assert!(text(&run.stdout).contains("| hold last context frame | — |"));
    let report = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("results.json")).unwrap()).unwrap()
    };
    let (a, b) = (report(&with), report(&without));
    let b_models = b["models"].as_array().unwrap();
    assert_eq!(b_models.len(), 1);
    // The same episodes (the reference is scored at the tiny model's resolution beside it,
    // at the scene's alone).
    assert_eq!(
        a["models"][1]["scores"]["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["origin"])
            .collect::<Vec<_>>(),
        b_models[0]["scores"]["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["origin"])
            .collect::<Vec<_>>()
    );
    // Holding a frame is not a perfect prediction of a moving agent, and it gets worse as
    // the agent moves on.
    let scores = &b_models[0]["scores"];
    let psnr = scores["psnr"].as_f64().unwrap();
    assert!(psnr > 5.0 && psnr < 40.0, "{psnr}");
    let curve: Vec<f64> = scores["curve"]["psnr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(curve[0] > curve[2], "{curve:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_eval_input_fails_with_one_clear_line() {
    let dir = scratch("eval_errors");
    let ckpt = tiny_checkpoint(&dir.join("run"));
    let ckpt = ckpt.to_str().unwrap();
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    assert_one_line_error(&memworld(&eval_args(ckpt, out, "recall")), "recall");
    let missing = dir.join("nothing");
    assert_one_line_error(
        &memworld(&eval_args(missing.to_str().unwrap(), out, "retrieval")),
        "--checkpoint",
    );
    // A directory without a checkpoint.
    assert_one_line_error(
        &memworld(&eval_args(dir.to_str().unwrap(), out, "retrieval")),
        "no checkpoint",
    );
    // Retrieval generates the context length.
    let mut args = eval_args(ckpt, out, "retrieval");
    set(&mut args, "--generate", "5");
    assert_one_line_error(&memworld(&args), "--generate 5");
    // Episode files shorter than the context.
    let eps = dir.join("eps");
    let rec = memworld(&[
        "record",
        "maze",
        "--episodes",
        "1",
        "--steps",
        "4",
        "--out",
        eps.to_str().unwrap(),
    ]);
    assert!(rec.status.success(), "{}", text(&rec.stderr));
    let mut args = eval_args(ckpt, out, "reasoning");
    set(&mut args, "--episodes", "1");
    set(&mut args, "--episodes-dir", eps.to_str().unwrap());
    assert_one_line_error(&memworld(&args), "has 5 frames");
    // A voxel retrieval is refused.
    let mut args = eval_args(ckpt, out, "retrieval");
    set(&mut args, "--scene", "voxel");
    assert_one_line_error(&memworld(&args), "maze");
    // Keeping none, or all, of the 3 context frames.
    for k in ["0", "3"] {
        let mut args = eval_args(ckpt, out, "retrieval");
        set(&mut args, "--keep-context", k);
        assert_one_line_error(&memworld(&args), &format!("--keep-context {k}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_reads_episode_files() {
    let dir = scratch("eval_files");
    let ckpt = tiny_checkpoint(&dir.join("run"));
    let eps = dir.join("eps");
    let rec = memworld(&[
        "record",
        "maze",
        "--episodes",
        "2",
        "--steps",
        "10",
        "--out",
        eps.to_str().unwrap(),
    ]);
    assert!(rec.status.success(), "{}", text(&rec.stderr));
    let out = dir.join("out");
    let mut args = eval_args(ckpt.to_str().unwrap(), out.to_str().unwrap(), "reasoning");
    set(&mut args, "--episodes", "2");
    set(&mut args, "--episodes-dir", eps.to_str().unwrap());
    let run = memworld(&args);
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert!(report["level_seeds"].is_null());
    let origin = report["models"][0]["scores"]["episodes"][0]["origin"]
        .as_str()
        .unwrap();
    assert!(origin.contains(".npz t="), "{origin}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--advance repeat` reaches each length without running the model: the full-attention
/// baseline's caches then hold every frame up to that length.
#[test]
fn bench_dream_advances_by_repeating_cached_frames() {
    let dir = scratch("bench_dream_repeat");
    let out = dir.join("bench.json");
    let run = memworld(&[
        "bench",
        "dream",
        "--config",
        "causal-full",
        "--lengths",
        "4,40",
        "--reps",
        "1",
        "--warmup",
        "1",
        "--steps",
        "1",
        "--advance",
        "repeat",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(report["advance"], "repeat");
    let rows = report["rows"].as_array().unwrap();
    let held: Vec<_> = rows
        .iter()
        .map(|r| (r["length"].as_u64(), r["cached_frames"].as_u64()))
        .collect();
    assert_eq!(held, [(Some(4), Some(4)), (Some(40), Some(40))]);
}

#[test]
fn bench_dream_reports_every_length() {
    let dir = scratch("bench_dream");
    let out = dir.join("bench.json");
    let run = memworld(&[
        "bench",
        "dream",
        "--config",
        "tiny",
        "--lengths",
        "6,12",
        "--reps",
        "2",
        "--warmup",
        "1",
        "--steps",
        "2",
        "--advance-chunk",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["length"].as_u64(), rows[1]["length"].as_u64()),
        (Some(6), Some(12))
    );
    // tiny has a 2-frame attention window: the cache holds one frame whatever the length.
    assert_eq!(
        (
            rows[0]["cached_frames"].as_u64(),
            rows[1]["cached_frames"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let (a, b) = (
        rows[0]["median_ms"].as_f64().unwrap(),
        rows[1]["median_ms"].as_f64().unwrap(),
    );
    assert!((report["last_over_first"].as_f64().unwrap() - b / a).abs() < 1e-9);
    assert!((rows[0]["fps"].as_f64().unwrap() - 1e3 / a).abs() < 1e-6);
    assert_one_line_error(
        &memworld(&["bench", "dream", "--lengths", "10"]),
        "--config",
    );
    assert_one_line_error(
        &memworld(&[
            "bench",
            "dream",
            "--config",
            "tiny",
            "--lengths",
            "2",
            "--warmup",
            "3",
        ]),
        "--lengths 2",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
