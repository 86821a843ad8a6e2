//! Frame-local attention cost vs the number of frames (issue "mixer core", performance check):
//! with a fixed window the blocked training path costs the same per frame however many frames
//! there are; full causal attention (`window = None`) costs more per frame as frames grow.
//!
//! Run: `cargo bench -p memworld-model --bench attention` (NdArray backend, small dims). Prints
//! the best-of-N forward time and time per frame for each frame count, and each column's time per
//! frame relative to its own value at the smallest frame count.

use std::time::{Duration, Instant};

use burn::backend::NdArray;
use burn::tensor::{Distribution, Tensor};
use model::mixers::attention::{FrameLocalAttention, FrameLocalAttentionConfig};

type B = NdArray<f32>;

const D_MODEL: usize = 32;
const HEADS: usize = 2;
const GRID: [usize; 2] = [4, 4];
const FRAMES: [usize; 5] = [8, 16, 32, 64, 128];

/// Fastest wall time of `forward` over enough repetitions to fill about half a second (the
/// minimum is the figure least disturbed by other processes on a shared machine).
fn time_forward(attn: &FrameLocalAttention<B>, frames: usize) -> Duration {
    let device = Default::default();
    let [h, w] = GRID;
    let x = Tensor::<B, 5>::random(
        [1, frames, h, w, D_MODEL],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let run = || {
        let start = Instant::now();
        let y = attn.forward(x.clone(), 0);
        std::hint::black_box(y.into_data());
        start.elapsed()
    };
    let first = run();
    let reps =
        (Duration::from_millis(500).as_secs_f64() / first.as_secs_f64()).clamp(3.0, 50.0) as usize;
    (0..reps).map(|_| run()).min().unwrap_or(first)
}

fn main() {
    let device = Default::default();
    let variants: [(&str, Option<usize>, usize); 3] = [
        ("window 4", Some(4), 1),
        ("window 4, chunk 4", Some(4), 4),
        ("full causal", None, 1),
    ];
    let layers: Vec<FrameLocalAttention<B>> = variants
        .iter()
        .map(|&(_, window, chunk)| {
            FrameLocalAttentionConfig::new(D_MODEL, HEADS)
                .with_window(window)
                .with_chunk_frames(chunk)
                .init(&device)
        })
        .collect();
    println!(
        "frame-local attention forward, NdArray, d_model {D_MODEL}, {HEADS} heads, {}x{} tokens/frame, batch 1",
        GRID[0], GRID[1]
    );
    println!(
        "best-of-N time (ms) | time per frame (ms) | per-frame time relative to frames = {}",
        FRAMES[0]
    );
    print!("{:>6}", "frames");
    for (name, _, _) in &variants {
        print!(" | {name:>28}");
    }
    println!();
    let mut base = vec![0.0f64; variants.len()];
    for (i, &frames) in FRAMES.iter().enumerate() {
        print!("{frames:>6}");
        for (v, attn) in layers.iter().enumerate() {
            let ms = time_forward(attn, frames).as_secs_f64() * 1e3;
            let per_frame = ms / frames as f64;
            if i == 0 {
                base[v] = per_frame;
            }
            print!(
                " | {ms:>9.2} {per_frame:>8.3} {:>7.2}x",
                per_frame / base[v]
            );
        }
        println!();
    }
}
