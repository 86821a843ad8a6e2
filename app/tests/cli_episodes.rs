//! The `record`, `rollout` and `inspect` subcommands, run as a user would: exit codes, one-line
//! errors without panic traces, and files that decode.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{assert_one_line_error, memworld, scratch};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bad_scene_name_and_bad_flags_fail_with_one_line() {
    let dir = scratch("cli_bad_flags");
    let out_dir = dir.to_str().unwrap();
    assert_one_line_error(&memworld(&["record", "castle", "--out", out_dir]), "castle");
    assert_one_line_error(
        &memworld(&["rollout", "dungeon", "--out", "x.gif"]),
        "dungeon",
    );
    assert_one_line_error(
        &memworld(&[
            "record",
            "maze",
            "--size",
            "10",
            "--episodes",
            "1",
            "--out",
            out_dir,
        ]),
        "--size 10",
    );
    assert_one_line_error(
        &memworld(&[
            "record",
            "maze",
            "--policy",
            "sprint",
            "--episodes",
            "1",
            "--out",
            out_dir,
        ]),
        "sprint",
    );
    assert_one_line_error(
        &memworld(&["inspect", dir.join("missing.npz").to_str().unwrap()]),
        "missing.npz",
    );
    assert_one_line_error(&memworld(&["inspect", out_dir]), "no .npz episode files");
}

#[test]
fn record_then_inspect_then_damage() {
    let dir = scratch("cli_record_inspect");
    let data = dir.join("maze");
    let data_s = data.to_str().unwrap();
    let rec = memworld(&[
        "record",
        "maze",
        "--episodes",
        "3",
        "--steps",
        "30",
        "--size",
        "9",
        "--seed",
        "7",
        "--workers",
        "2",
        "--out",
        data_s,
    ]);
    assert!(rec.status.success(), "record failed: {}", stderr(&rec));
    assert!(
        stdout(&rec).contains("recorded 3 maze episodes (93 frames)"),
        "{}",
        stdout(&rec)
    );
    let files: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");

    let ok = memworld(&["inspect", data_s]);
    let summary = stdout(&ok);
    assert!(
        ok.status.success(),
        "inspect failed: {}{summary}",
        stderr(&ok)
    );
    assert!(
        summary.contains("3 episode files: 3 valid, 0 invalid"),
        "{summary}"
    );
    assert!(summary.contains("maze: 3 episodes"), "{summary}");
    assert!(summary.contains("min 31, mean 31.0, max 31"), "{summary}");
    assert!(summary.contains("resolution 64x64"), "{summary}");
    // 3 episodes × 30 steps = 90 actions in the histogram.
    let hist = summary
        .lines()
        .find(|l| l.trim_start().starts_with("actions:"))
        .unwrap();
    let total: u64 = hist
        .split(", ")
        .map(|part| {
            part.split_whitespace()
                .rev()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(total, 90, "{hist}");

    // Rerunning resumes: nothing to record.
    let again = memworld(&[
        "record",
        "maze",
        "--episodes",
        "3",
        "--steps",
        "30",
        "--seed",
        "7",
        "--out",
        data_s,
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("recorded 0 maze episodes")
            && stdout(&again).contains("kept 3 finished")
    );

    // Damage one file: inspect lists it and fails.
    let victim = files.iter().min().unwrap();
    let bytes = std::fs::read(victim).unwrap();
    std::fs::write(victim, &bytes[..bytes.len() / 2]).unwrap();
    let bad = memworld(&["inspect", data_s]);
    assert_one_line_error(&bad, "1 of 3 episode files are invalid");
    let listing = stdout(&bad);
    assert!(listing.contains("2 valid, 1 invalid"), "{listing}");
    assert!(
        listing.contains(victim.file_name().unwrap().to_str().unwrap()),
        "{listing}"
    );
}

#[test]
fn rollout_writes_a_gif_and_a_contact_sheet() {
    let dir = scratch("cli_rollout");
    let gif = dir.join("clip.gif");
    let sheet = dir.join("sheet.png");
    let out = memworld(&[
        "rollout",
        "maze",
        "--policy",
        "explore",
        "--steps",
        "11",
        "--out",
        gif.to_str().unwrap(),
        "--sheet",
        sheet.to_str().unwrap(),
        "--sheet-frames",
        "6",
        "--sheet-columns",
        "3",
        "--scale",
        "1",
    ]);
    assert!(out.status.success(), "rollout failed: {}", stderr(&out));

    use image::AnimationDecoder;
    let decoder = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(&gif).unwrap(),
    ))
    .unwrap();
    let frames = decoder.into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), 12, "steps + 1 frames");
    assert_eq!(frames[0].buffer().dimensions(), (64, 64));

    let png = image::open(&sheet).unwrap().to_rgb8();
    // 3 columns × 2 rows of 64-px frames with 2-px gaps.
    assert_eq!(png.dimensions(), (3 * 66 + 2, 2 * 66 + 2));
    assert!(!dir.join("clip.gif.tmp").exists() && !dir.join("sheet.png.tmp").exists());
}

#[test]
fn help_explains_every_flag() {
    for sub in ["record", "rollout", "inspect"] {
        let out = memworld(&[sub, "-h"]);
        assert!(out.status.success());
        let help = stdout(&out);
        let flags: Vec<&str> = help
            .lines()
            .filter(|l| l.trim_start().starts_with('-'))
            .collect();
        assert!(flags.len() >= 2, "{sub}: {help}");
        // Short help puts the description on the flag's line, after two spaces.
        for line in flags {
            assert!(
                line.trim().contains("  "),
                "{sub}: flag without help text: {line}"
            );
        }
    }
}
