//! `memworld train` from the command line: Ctrl-C writes a checkpoint of the update it stopped
//! at and exits non-zero with a one-line message saying how to continue; `--init` refuses to
//! mix with `--resume` and refuses a checkpoint of another preset, each in one line.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_one_line_error, memworld, scratch, text, tiny_checkpoint};

fn loss_rows(out: &Path) -> usize {
    std::fs::read_to_string(out.join("loss.csv"))
        .map(|s| s.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

#[cfg(unix)]
#[test]
fn ctrl_c_writes_a_checkpoint_and_says_how_to_resume() {
    let dir = scratch("train-interrupt");
    let out = dir.join("run");
    let out_s = out.to_str().unwrap();
    let args = [
        "train",
        "--config",
        "tiny",
        "--data",
        "gen:maze:9:pool=2",
        "--out",
        out_s,
        "--steps",
        "1000000",
        "--batch",
        "1",
        "--log-every",
        "1",
        "--ckpt-every",
        "0",
        "--sample-every",
        "0",
        "--workers",
        "1",
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_memworld"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while loss_rows(&out) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no loss rows after 300 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let done = child.wait_with_output().unwrap();
    assert_one_line_error(&done, "interrupted at update");
    assert!(
        text(&done.stderr).contains("--resume"),
        "{}",
        text(&done.stderr)
    );

    // The checkpoint holds the last logged update: nothing was lost.
    let rows = loss_rows(&out);
    let latest = std::fs::read_to_string(out.join("checkpoints/latest")).unwrap();
    assert_eq!(
        latest.trim(),
        format!("step-{rows:06}"),
        "latest checkpoint vs {rows} logged updates"
    );
}

#[test]
fn init_is_refused_with_resume_or_another_preset() {
    let dir = scratch("train-init");
    let tiny = tiny_checkpoint(&dir.join("tiny-run"), 3, 5);
    let tiny_s = tiny.to_str().unwrap();
    let out = dir.join("run");
    let out_s = out.to_str().unwrap();
    // `train --config PRESET --data gen:maze:9 --out OUT --init TINY` and `extra`.
    let with_init = |preset: &str, extra: &str| {
        let mut args = vec!["train", "--config", preset, "--data", "gen:maze:9"];
        args.extend(["--out", out_s, "--init", tiny_s, extra]);
        memworld(&args)
    };
    assert_one_line_error(&with_init("tiny", "--resume"), "--resume");
    let other = with_init("causal-window", "--steps=1");
    assert_one_line_error(&other, "config");
    assert!(
        !out.join("checkpoints").exists(),
        "a refused run wrote checkpoints"
    );
}
