//! Voxel scene throughput on one thread: ray-caster frames/s at 64×64 and 128×128 over the poses
//! of a random walk (with the plain every-cell DDA as the baseline in the same run),
//! `VoxelEnv::step` steps/s (physics + a 64×64 frame), physics alone, and world generation.
//! Run with `cargo bench -p memworld-scenes --bench voxel`.

use std::hint::black_box;
use std::time::Instant;

use scenes::voxel::{generate, Action, VoxelConfig, VoxelEnv};
use scenes::{Env, Frame, Pose, Rng};

/// Renderer target from the issue: frames per second per core at 64×64.
const TARGET_FPS_64: f64 = 1000.0;

/// A forward-biased random walk with persistence (as an exploring player moves).
fn walk_actions(seed: u64, steps: usize) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut a = Action::Forward;
    (0..steps)
        .map(|_| {
            if rng.chance(0.15) {
                a = [
                    Action::Forward,
                    Action::Forward,
                    Action::TurnLeft,
                    Action::TurnRight,
                    Action::Jump,
                ][rng.below(5)];
            }
            a.index()
        })
        .collect()
}

fn walk_poses(env: &mut VoxelEnv, seed: u64, steps: usize) -> Vec<Pose> {
    env.reset(seed);
    walk_actions(seed, steps)
        .into_iter()
        .map(|a| {
            env.advance(a);
            env.pose()
        })
        .collect()
}

/// CPU time this thread has run, from Linux's `/proc/thread-self/schedstat` (nanoseconds);
/// `None` elsewhere. Per-core rates use it so that other processes on the machine don't count.
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

/// Rates of `count` operations: per wall-clock second and per second of this thread's CPU time.
struct Rate {
    wall: f64,
    cpu: Option<f64>,
}

fn rate(count: usize, f: impl FnOnce()) -> Rate {
    let (start, cpu_start) = (Instant::now(), thread_cpu_seconds());
    f();
    let wall = count as f64 / start.elapsed().as_secs_f64();
    let cpu = match (cpu_start, thread_cpu_seconds()) {
        (Some(a), Some(b)) if b > a => Some(count as f64 / (b - a)),
        _ => None,
    };
    Rate { wall, cpu }
}

impl Rate {
    /// The per-core figure: CPU-time based when available.
    fn per_core(&self) -> f64 {
        self.cpu.unwrap_or(self.wall)
    }
}

fn row(what: &str, r: &Rate, note: String) {
    let cpu = r.cpu.map_or("n/a".to_string(), |c| format!("{c:.0}"));
    println!("{what:<40} {:>12.0} {cpu:>14} {note:>16}", r.wall);
}

fn main() {
    println!("voxel scene, single thread");
    println!(
        "{:<40} {:>12} {:>14} {:>16}",
        "what", "per wall s", "per CPU s", ""
    );
    for res in [64usize, 128] {
        let mut env = VoxelEnv::new(VoxelConfig {
            resolution: res,
            ..VoxelConfig::default()
        })
        .expect("valid config");
        let poses = walk_poses(&mut env, 11, 1000);
        let mut frame = Frame::new(res, res);
        for p in poses.iter().take(50) {
            env.render_into(*p, &mut frame);
        }
        let frames = 3_000 * 64 * 64 / (res * res);
        let fps = rate(frames, || {
            for i in 0..frames {
                env.render_into(poses[i % poses.len()], &mut frame);
                black_box(&frame);
            }
        });
        let reference_frames = frames / 8;
        let reference_fps = rate(reference_frames, || {
            for i in 0..reference_frames {
                black_box(env.render_reference_at(poses[i % poses.len()]));
            }
        });
        let target = if res == 64 {
            format!("{:.2}x target", fps.per_core() / TARGET_FPS_64)
        } else {
            String::new()
        };
        row(
            &format!("render {res}x{res} (column-path tracer)"),
            &fps,
            target,
        );
        let speedup = fps.per_core() / reference_fps.per_core();
        row(
            &format!("render {res}x{res} (reference DDA)"),
            &reference_fps,
            format!("fast {speedup:.1}x ref"),
        );
    }
    let mut env = VoxelEnv::new(VoxelConfig::default()).expect("valid config");
    let actions = walk_actions(5, 1000);
    let steps = 5_000;
    env.reset(5);
    let sps = rate(steps, || {
        for i in 0..steps {
            black_box(env.step(actions[i % actions.len()]));
        }
    });
    row(
        "VoxelEnv::step (physics + 64x64 frame)",
        &sps,
        String::new(),
    );
    env.reset(5);
    let physics_steps = 200_000;
    let pps = rate(physics_steps, || {
        for i in 0..physics_steps {
            env.advance(actions[i % actions.len()]);
        }
        black_box(env.pose());
    });
    row("VoxelEnv::advance (physics only)", &pps, String::new());
    let worlds = 20;
    let wps = rate(worlds, || {
        for s in 0..worlds {
            black_box(generate(100 + s as u64));
        }
    });
    row("world generation (128x48x128)", &wps, String::new());
}
