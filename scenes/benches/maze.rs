//! Maze scene throughput on one thread: renderer frames/s at 64/128/256 over poses of an
//! exploration run, `MazeEnv::step` steps/s (physics + reward + a 64×64 frame), and the pure
//! physics step alone. Run with `cargo bench -p memworld-scenes --bench maze`.

use std::hint::black_box;
use std::time::Instant;

use scenes::maze::{integrate, MazeConfig, MazeEnv, Velocity};
use scenes::policy::{ExplorePolicy, Policy};
use scenes::{Env, Frame, Pose};

/// Renderer target from the issue: frames per second per core at 64×64.
const TARGET_FPS_64: f64 = 5000.0;

/// Poses and actions of an exploration run, to render and replay.
fn exploration(env: &mut MazeEnv, seed: u64, steps: usize) -> (Vec<Pose>, Vec<usize>) {
    let mut policy = ExplorePolicy::new(seed);
    let mut out = env.reset(seed);
    let (mut poses, mut actions) = (vec![out.pose], Vec::new());
    for _ in 0..steps {
        let a = policy.act(&out);
        out = env.step(a);
        poses.push(out.pose);
        actions.push(a);
    }
    (poses, actions)
}

fn rate(count: usize, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    count as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    println!("maze scene, single thread");
    println!("{:<34} {:>12} {:>10}", "what", "per second", "vs target");
    for size in [9usize, 15] {
        for res in [64usize, 128, 256] {
            let config = MazeConfig::new(size)
                .and_then(|c| c.with_resolution(res))
                .expect("valid config");
            let mut env = MazeEnv::new(config);
            let (poses, _) = exploration(&mut env, 7, 1000);
            let mut frame = Frame::new(res, res);
            let frames = 4_000_000 / (res * res) * 4;
            // Warm up caches and the texture tables.
            for p in poses.iter().take(100) {
                env.render_into(*p, &mut frame);
            }
            let fps = rate(frames, || {
                for i in 0..frames {
                    env.render_into(poses[i % poses.len()], &mut frame);
                    black_box(&frame);
                }
            });
            let vs = if res == 64 {
                format!("{:.1}x", fps / TARGET_FPS_64)
            } else {
                String::new()
            };
            println!(
                "{:<34} {:>12.0} {:>10}",
                format!("render {size}x{size} maze at {res}x{res}"),
                fps,
                vs
            );
        }
    }
    let mut env = MazeEnv::new(MazeConfig::default());
    let (_, actions) = exploration(&mut env, 3, 1000);
    let steps = 20_000;
    let sps = rate(steps, || {
        env.reset(3);
        for i in 0..steps {
            black_box(env.step(actions[i % actions.len()]));
        }
    });
    println!("{:<34} {:>12.0}", "MazeEnv::step (9x9, 64x64)", sps);
    let level = env.level().clone();
    let n = 1_000_000;
    let ips = rate(n, || {
        let (mut pose, mut vel) = (level.spawn, Velocity::default());
        for i in 0..n {
            (pose, vel) = integrate(&level, pose, vel, actions[i % actions.len()]);
        }
        black_box(pose);
    });
    println!("{:<34} {:>12.0}", "physics integrate only", ips);
}
