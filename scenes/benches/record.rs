//! Recorder throughput (frames/s written to disk) with 1 and 2 workers, and where one worker's
//! time goes: simulating (policy + physics + rendering) versus compressing and writing the file.
//! Ratios are against the 1-worker run of the same scene in the same process.
//! Run with `cargo bench -p memworld-scenes --bench record`.

use std::path::Path;
use std::time::Instant;

use scenes::episode::{write_episode, EpisodeMeta, FORMAT_VERSION};
use scenes::factory::{default_size, make_env};
use scenes::policy::by_name;
use scenes::record::{record_episode, record_episodes, RecordConfig};
use scenes::SceneKind;

fn main() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench_record");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("recorder throughput at 64x64 ({cores} cores visible)");
    println!(
        "{:<8} {:>8} {:>9} {:>8} {:>10} {:>9}",
        "scene", "workers", "frames", "seconds", "frames/s", "vs 1"
    );
    for (scene, episodes, steps) in [(SceneKind::Maze, 8, 500), (SceneKind::Voxel, 4, 250)] {
        let mut base = 0.0;
        for workers in [1, 2] {
            let out_dir = root.join(format!("{}-{workers}", scene.name()));
            let _ = std::fs::remove_dir_all(&out_dir);
            let cfg = RecordConfig {
                scene,
                size: default_size(scene),
                resolution: 64,
                episodes,
                steps,
                seed: 1,
                policy: "explore".into(),
                out_dir,
                workers,
            };
            let start = Instant::now();
            let summary = record_episodes(&cfg, |_, _| {}).expect("record");
            let secs = start.elapsed().as_secs_f64();
            let rate = summary.frames_recorded as f64 / secs;
            if workers == 1 {
                base = rate;
            }
            println!(
                "{:<8} {:>8} {:>9} {:>8.2} {:>10.0} {:>8.2}x",
                scene.name(),
                workers,
                summary.frames_recorded,
                secs,
                rate,
                rate / base
            );
        }
        split(scene, steps, &root);
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// One episode on one thread: simulation time versus file-writing time.
fn split(scene: SceneKind, steps: usize, root: &Path) {
    let size = default_size(scene);
    let mut env = make_env(scene, size, 64).expect("env");
    let mut policy = by_name("explore", scene, env.action_names().len(), 7).expect("policy");
    let meta = EpisodeMeta {
        format_version: FORMAT_VERSION,
        scene,
        seed: Some(7),
        size,
        resolution: 64,
        action_names: env.action_names().iter().map(|s| s.to_string()).collect(),
        policy: Some("explore".into()),
        steps,
    };
    let start = Instant::now();
    let ep = record_episode(
        env.as_mut(),
        &mut |o| policy.act(o),
        meta,
        7,
        steps,
        &mut || {},
    );
    let sim = start.elapsed().as_secs_f64();
    let path = root.join(format!("split-{}.npz", scene.name()));
    let start = Instant::now();
    write_episode(&path, &ep).expect("write");
    let write = start.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let raw = ep.image.len() + ep.action.len() * 8;
    println!(
        "  one {} worker: simulate {:.0} frames/s, write {:.0} frames/s ({:.0}% of the time writing; file {:.1} MB, {:.0}% of raw image+action bytes)",
        scene.name(),
        ep.len() as f64 / sim,
        ep.len() as f64 / write,
        100.0 * write / (sim + write),
        bytes as f64 / 1e6,
        100.0 * bytes as f64 / raw as f64
    );
}
