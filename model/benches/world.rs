//! Per-frame generation latency of the streaming session against rollout length (SPEC §8):
//! ours (block-wise SSM + frame-local attention) should stay flat, full causal attention grows.
//! Prints a table with each model's mean latency per frame (5 frames ending at each length)
//! and its last/first ratio; both models run in the same process.
//!
//! ```text
//! cargo bench -p memworld-model --bench world -- [--backend ndarray|wgpu|cuda] \
//!     [--preset tiny|maze-small|...] [--lengths 10,100,200] [--steps 8]
//! ```
//! `cuda` needs the crate's `cuda` feature (`--features cuda`).

use std::io::Write;
use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use model::world::{AttentionKind, FrameConditions, SsmKind, WorldModelConfig, WorldSession};

/// Frames averaged at each measured rollout length.
const WINDOW: usize = 5;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn conditions<B: Backend>(cfg: &WorldModelConfig, t: usize, dev: &B::Device) -> FrameConditions<B> {
    FrameConditions {
        actions: cfg.n_actions.map(|n| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(vec![(t % n) as i64], [1, 1]), dev)
        }),
        poses: cfg.pose_dim.map(|p| {
            let v: Vec<f32> = (0..p).map(|i| ((t + i) as f32 * 0.1).sin()).collect();
            Tensor::<B, 3>::from_data(TensorData::new(v, [1, 1, p]), dev)
        }),
    }
}

/// Mean per-frame latency (ms) over `WINDOW` frames ending at each length in `lengths`,
/// printed as table cells as they are measured.
fn measure<B: Backend>(
    cfg: &WorldModelConfig,
    lengths: &[usize],
    steps: usize,
    dev: &B::Device,
) -> Vec<f64> {
    let model = cfg.init::<B>(dev);
    let mut session = WorldSession::new(model, dev.clone());
    session.set_sampling_steps(steps);
    let r = cfg.resolution;
    session.prefill(
        Tensor::zeros([1, 1, r, r, cfg.channels], dev),
        &conditions(cfg, 0, dev),
    );
    // Warm-up (kernel compilation on GPU backends) outside the measured windows.
    session
        .generate_frames(&conditions(cfg, 1, dev), 1)
        .into_data();
    let mut frames = 2;
    let mut out = Vec::new();
    for &len in lengths {
        while frames + WINDOW < len {
            session
                .generate_frames(&conditions(cfg, frames, dev), frames as u64)
                .into_data();
            frames += 1;
        }
        let start = Instant::now();
        for _ in 0..WINDOW {
            session
                .generate_frames(&conditions(cfg, frames, dev), frames as u64)
                .into_data();
            frames += 1;
        }
        let ms = start.elapsed().as_secs_f64() * 1e3 / WINDOW as f64;
        print!(" {ms:.2} |");
        std::io::stdout().flush().ok();
        out.push(ms);
    }
    out
}

fn run<B: Backend>(backend: &str, preset: &str, lengths: &[usize], steps: usize, dev: B::Device) {
    let ours = match WorldModelConfig::preset(preset) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let full = WorldModelConfig {
        name: format!("{preset} as causal-full"),
        ssm: SsmKind::None,
        attention: AttentionKind::Full,
        ..ours.clone()
    };
    println!(
        "per-frame latency (ms), {steps} Euler steps + 1 commit pass, batch 1, backend {backend}"
    );
    println!("mean over {WINDOW} frames ending at each rollout length\n");
    print!("| model |");
    for l in lengths {
        print!(" frame {l} |");
    }
    println!(" last / first |");
    println!("|---|{}---|", "---|".repeat(lengths.len()));
    for cfg in [&ours, &full] {
        print!("| {} |", cfg.name);
        let ms = measure::<B>(cfg, lengths, steps, &dev);
        println!(" {:.2} |", ms.last().unwrap() / ms[0]);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let preset = arg(&args, "--preset").unwrap_or_else(|| "tiny".into());
    let backend = arg(&args, "--backend").unwrap_or_else(|| "ndarray".into());
    let steps: usize = arg(&args, "--steps")
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let lengths: Vec<usize> = arg(&args, "--lengths")
        .unwrap_or_else(|| "10,100,200".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|&l| l > WINDOW)
        .collect();
    if lengths.is_empty() || steps == 0 {
        eprintln!("--lengths needs lengths above {WINDOW} and --steps must be positive");
        std::process::exit(2);
    }
    match backend.as_str() {
        "ndarray" => {
            run::<burn::backend::NdArray>(&backend, &preset, &lengths, steps, Default::default())
        }
        "wgpu" => {
            run::<burn::backend::Wgpu>(&backend, &preset, &lengths, steps, Default::default())
        }
        #[cfg(feature = "cuda")]
        "cuda" => {
            run::<burn::backend::Cuda>(&backend, &preset, &lengths, steps, Default::default())
        }
        other => {
            eprintln!("unknown or unavailable backend '{other}' (ndarray, wgpu; cuda with --features cuda)");
            std::process::exit(2);
        }
    }
}
