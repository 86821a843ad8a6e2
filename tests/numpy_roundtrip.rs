//! Episode files interoperate with Python's numpy: a file we write loads with `numpy.load` with
//! the expected keys, dtypes, shapes and values, and a file numpy writes in the Memory Maze
//! layout (float32, no memworld metadata) loads with our reader.
//!
//! Needs `python3` with numpy. Outside CI the test is skipped with a notice when either is
//! missing; under CI (env var `CI` set) it must run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use scenes::episode::{
    read_episode, write_episode, EpisodeBuilder, EpisodeMeta, Source, Track, FORMAT_VERSION,
};
use scenes::{Frame, MazeInfo, Pose, SceneKind, StepInfo, StepOutput};

fn numpy_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but python3 with numpy is not available"
        );
        eprintln!("notice: python3 with numpy not found; skipping the numpy round-trip test");
    }
    ok
}

fn python(script: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A hand-built 4-step maze episode with awkward values (negative, fractional, large).
fn episode() -> scenes::episode::Episode {
    let names = [
        "noop",
        "forward",
        "turn_left",
        "turn_right",
        "forward_left",
        "forward_right",
    ];
    let meta = EpisodeMeta {
        format_version: FORMAT_VERSION,
        scene: SceneKind::Maze,
        seed: Some(u64::MAX - 7),
        size: 3,
        resolution: 8,
        action_names: names.iter().map(|s| s.to_string()).collect(),
        policy: Some("explore".into()),
        steps: 0,
    };
    let out = |t: usize, reward: f64| {
        let mut frame = Frame::new(8, 8);
        for (i, b) in frame.rgb.iter_mut().enumerate() {
            *b = (i * 37 + t * 101) as u8;
        }
        StepOutput {
            frame,
            reward,
            done: t == 4,
            truncated: false,
            pose: Pose {
                position: [1.25 + t as f64 * 0.1, 1.75, 0.0],
                yaw: -0.3 * t as f64,
            },
            info: StepInfo::Maze(MazeInfo {
                size: 3,
                layout: Arc::new(vec![0, 1, 0, 1, 1, 1, 0, 1, 0]),
                targets_pos: vec![[0.5, 1.5], [2.5, 1.5 + 1e-9]],
                target: t % 2,
                target_color: [1.0, 1.0 / 3.0, 0.0],
            }),
        }
    };
    let mut b = EpisodeBuilder::new(meta);
    b.push_reset(&out(0, 0.0));
    for (t, a) in [(1, 1), (2, 4), (3, 2), (4, 5)] {
        b.push_step(a, &out(t, if t == 3 { 1.0 } else { 0.0 }));
    }
    b.finish()
}

/// Prints one line per key, `key dtype shape hex`, then the decoded metadata and two values
/// computed by numpy.
const DESCRIBE: &str = r#"
import sys, json, numpy as np
f = np.load(sys.argv[1])
for k in f.files:
    a = f[k]
    print(k, a.dtype.str, ",".join(map(str, a.shape)) or "-", a.tobytes().hex() or "-")
meta = json.loads(bytes(f["memworld_meta"]).decode("utf-8"))
print("meta", meta["scene"], meta["seed"], meta["format_version"], meta["steps"], meta["policy"])
print("action_argmax", ",".join(map(str, f["action"][1:].argmax(axis=1).tolist())))
print("reward_sum", repr(float(f["reward"].sum())))
"#;

fn le_f64(values: &[f64]) -> String {
    values
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn numpy_loads_our_file_and_we_load_numpys() {
    if !numpy_available() {
        return;
    }
    let dir = scratch("numpy_roundtrip");
    let ep = episode();
    let path = dir.join("ours.npz");
    write_episode(&path, &ep).unwrap();
    let stdout = python(DESCRIBE, &[&path]);
    let lines: std::collections::HashMap<&str, Vec<&str>> = stdout
        .lines()
        .map(|l| {
            let mut parts = l.split(' ');
            (parts.next().unwrap(), parts.collect())
        })
        .collect();

    let Track::Maze(m) = &ep.track else {
        panic!("maze track")
    };
    let bools = |v: &[bool]| hex(&v.iter().map(|&b| b as u8).collect::<Vec<_>>());
    let expected: Vec<(&str, &str, &str, String)> = vec![
        ("image", "|u1", "5,8,8,3", hex(&ep.image)),
        ("action", "<f8", "5,6", le_f64(&ep.action)),
        ("reward", "<f8", "5", le_f64(&ep.reward)),
        ("terminal", "|b1", "5", bools(&ep.terminal)),
        ("reset", "|b1", "5", bools(&ep.reset)),
        ("maze_layout", "|u1", "5,3,3", hex(&m.maze_layout)),
        ("agent_pos", "<f8", "5,2", le_f64(&m.agent_pos)),
        ("agent_dir", "<f8", "5,2", le_f64(&m.agent_dir)),
        ("targets_pos", "<f8", "5,2,2", le_f64(&m.targets_pos)),
        ("targets_vec", "<f8", "5,2,2", le_f64(&m.targets_vec)),
        ("target_pos", "<f8", "5,2", le_f64(&m.target_pos)),
        ("target_vec", "<f8", "5,2", le_f64(&m.target_vec)),
        ("target_color", "<f8", "5,3", le_f64(&m.target_color)),
    ];
    assert_eq!(lines.len(), expected.len() + 4, "numpy saw:\n{stdout}");
    for (key, dtype, shape, data) in &expected {
        let got = lines
            .get(key)
            .unwrap_or_else(|| panic!("numpy did not find key {key}"));
        assert_eq!(got[0], *dtype, "{key} dtype");
        assert_eq!(got[1], *shape, "{key} shape");
        assert_eq!(got[2], data, "{key} values");
    }
    assert_eq!(
        lines["memworld_meta"][0], "|u1",
        "metadata is a uint8 vector"
    );
    assert!(
        lines["memworld_meta"][1].parse::<usize>().is_ok(),
        "metadata is 1-d"
    );
    assert_eq!(
        lines["meta"],
        vec!["maze", &(u64::MAX - 7).to_string(), "1", "4", "explore"]
    );
    assert_eq!(lines["action_argmax"], vec!["1,4,2,5"]);
    assert_eq!(lines["reward_sum"], vec!["1.0"]);

    // numpy writes a Memory Maze style file from our arrays (float32, no metadata); we read it.
    let theirs = dir.join("theirs.npz");
    let write = r#"
import sys, numpy as np
f = np.load(sys.argv[1])
arrays = {k: f[k] for k in f.files if k != "memworld_meta"}
arrays = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in arrays.items()}
np.savez_compressed(sys.argv[2], **arrays)
"#;
    python(write, &[&path, &theirs]);
    let back = read_episode(&theirs).unwrap();
    assert_eq!(back.source, Source::MemoryMaze);
    assert_eq!(
        (back.meta.size, back.meta.resolution, back.meta.steps),
        (3, 8, 4)
    );
    assert_eq!(back.image, ep.image);
    assert_eq!(back.action, ep.action);
    assert_eq!(back.reset, ep.reset);
    assert_eq!(back.terminal, ep.terminal);
    let Track::Maze(bm) = &back.track else {
        panic!("maze track")
    };
    let as_f32 = |v: &[f64]| v.iter().map(|&x| x as f32 as f64).collect::<Vec<_>>();
    assert_eq!(bm.targets_vec, as_f32(&m.targets_vec));
    assert_eq!(bm.target_color, as_f32(&m.target_color));
    assert_eq!(bm.maze_layout, m.maze_layout);
}
