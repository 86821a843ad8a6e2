//! Chunked SSD (Dao & Gu 2024, §6) against the per-step reference recurrence on the CPU
//! (burn-ndarray) for growing sequence lengths. Prints time and time per step, so linear growth
//! of the chunked form shows as a flat µs/step column (chunk sizes 64 and 16); ratios are
//! against the same run.
//!
//! Run with `cargo bench -p memworld-model --bench ssd`.

use std::time::{Duration, Instant};

use burn::backend::NdArray;
use burn::tensor::{Tensor, TensorData};
use model::mixers::ssd::{chunked_ssd, reference_ssd};
use scenes::Rng;

type B = NdArray<f32>;

const HEADS: usize = 4;
const HEAD_DIM: usize = 16;
const GROUPS: usize = 1;
const D_STATE: usize = 16;
const REPS: usize = 3;

fn uniform<const D: usize>(rng: &mut Rng, shape: [usize; D], lo: f64, hi: f64) -> Tensor<B, D> {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.range_f64(lo, hi) as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

/// Best of `reps` wall-clock times of `f`, which must force its result to the host.
fn best_of(reps: usize, mut f: impl FnMut()) -> Duration {
    (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .expect("at least one repetition")
}

fn main() {
    let mut rng = Rng::new(1);
    println!(
        "SSD on burn-ndarray: batch 1, heads {HEADS}, head_dim {HEAD_DIM}, groups {GROUPS}, \
         d_state {D_STATE}; best of {REPS} runs each"
    );
    println!(
        "{:>6} | {:>10} {:>8} | {:>10} {:>8} {:>9} | {:>10} {:>8} | {:>8}",
        "T",
        "ref ms",
        "µs/step",
        "chunk64 ms",
        "µs/step",
        "÷ T=1k",
        "chunk16 ms",
        "µs/step",
        "ref÷c64"
    );
    let mut per_step_1k = None;
    for t in [1024, 2048, 4096, 8192, 16384] {
        let x = uniform(&mut rng, [1, t, HEADS, HEAD_DIM], -1.0, 1.0);
        let dt = uniform(&mut rng, [1, t, HEADS], 0.001, 0.1);
        let a = uniform(&mut rng, [HEADS], -8.0, -1.0);
        let b = uniform(&mut rng, [1, t, GROUPS, D_STATE], -1.0, 1.0);
        let c = uniform(&mut rng, [1, t, GROUPS, D_STATE], -1.0, 1.0);
        let chunked = |chunk: usize| {
            best_of(REPS, || {
                let (y, s) = chunked_ssd(
                    x.clone(),
                    dt.clone(),
                    a.clone(),
                    b.clone(),
                    c.clone(),
                    None,
                    chunk,
                );
                let _ = (y.into_data(), s.into_data());
            })
        };
        let chunk64 = chunked(64);
        let chunk16 = chunked(16);
        let reference = best_of(REPS, || {
            let (y, s) =
                reference_ssd(x.clone(), dt.clone(), a.clone(), b.clone(), c.clone(), None);
            let _ = (y.into_data(), s.into_data());
        });
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let per_step = |d: Duration| d.as_secs_f64() * 1e6 / t as f64;
        let base = *per_step_1k.get_or_insert(per_step(chunk64));
        println!(
            "{:>6} | {:>10.1} {:>8.2} | {:>10.1} {:>8.2} {:>9.2} | {:>10.1} {:>8.2} | {:>7.1}×",
            t,
            ms(reference),
            per_step(reference),
            ms(chunk64),
            per_step(chunk64),
            per_step(chunk64) / base,
            ms(chunk16),
            per_step(chunk16),
            reference.as_secs_f64() / chunk64.as_secs_f64(),
        );
    }
}
