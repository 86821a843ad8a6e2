//! Per-frame generation latency of the streaming session against rollout length (SPEC §8):
//! ours (block-wise SSM + frame-local attention) should stay flat, full causal attention grows.
//! Runs on the CPU (burn-ndarray) with small models; absolute GPU figures are measured with the
//! app's benchmarks. Prints a table with each model's latency relative to its first window.
//!
//! `cargo bench -p memworld-model --bench world -- [--preset tiny|maze-small] [--lengths 10,100,1000] [--steps 8]`

use std::time::Instant;

use burn::backend::NdArray;
use burn::tensor::{Int, Tensor, TensorData};
use model::world::{AttentionKind, FrameConditions, SsmKind, WorldModelConfig, WorldSession};

type B = NdArray;

/// Frames averaged at each measured rollout length.
const WINDOW: usize = 5;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn conditions(cfg: &WorldModelConfig, t: usize) -> FrameConditions<B> {
    let dev = Default::default();
    FrameConditions {
        actions: cfg.n_actions.map(|n| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(vec![(t % n) as i64], [1, 1]), &dev)
        }),
        poses: cfg.pose_dim.map(|p| {
            let v: Vec<f32> = (0..p).map(|i| ((t + i) as f32 * 0.1).sin()).collect();
            Tensor::<B, 3>::from_data(TensorData::new(v, [1, 1, p]), &dev)
        }),
    }
}

/// Mean per-frame latency (ms) over `WINDOW` frames ending at each length in `lengths`.
fn measure(cfg: &WorldModelConfig, lengths: &[usize], steps: usize) -> Vec<f64> {
    let dev = Default::default();
    let model = cfg.init::<B>(&dev);
    let mut session = WorldSession::new(model, dev);
    session.set_sampling_steps(steps);
    let r = cfg.resolution;
    session.prefill(
        Tensor::zeros([1, 1, r, r, cfg.channels], &Default::default()),
        &conditions(cfg, 0),
    );
    let mut out = Vec::new();
    let mut frames = 1;
    for &len in lengths {
        while frames + WINDOW < len {
            session
                .generate_frames(&conditions(cfg, frames), frames as u64)
                .into_data();
            frames += 1;
        }
        let start = Instant::now();
        for _ in 0..WINDOW {
            session
                .generate_frames(&conditions(cfg, frames), frames as u64)
                .into_data();
            frames += 1;
        }
        out.push(start.elapsed().as_secs_f64() * 1e3 / WINDOW as f64);
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let preset = arg(&args, "--preset").unwrap_or_else(|| "tiny".into());
    let steps: usize = arg(&args, "--steps")
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let lengths: Vec<usize> = arg(&args, "--lengths")
        .unwrap_or_else(|| "10,100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let ours = match WorldModelConfig::preset(&preset) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let full = WorldModelConfig {
        name: format!("{preset}/causal-full"),
        ssm: SsmKind::None,
        attention: AttentionKind::Full,
        ..ours.clone()
    };

    println!("per-frame latency, {steps} Euler steps + 1 commit pass, batch 1, CPU (ndarray), preset {preset}");
    println!("mean over {WINDOW} frames ending at each rollout length\n");
    print!("| model |");
    for l in &lengths {
        print!(" frame {l} (ms) |");
    }
    println!(" last / first |");
    println!("|---|{}---|", "---|".repeat(lengths.len()));
    for cfg in [&ours, &full] {
        let ms = measure(cfg, &lengths, steps);
        print!("| {} |", cfg.name);
        for m in &ms {
            print!(" {m:.2} |");
        }
        println!(" {:.2} |", ms.last().unwrap() / ms[0]);
    }
}
