//! Chunked SSD (Dao & Gu 2024, §6) against the per-step reference recurrence on the CPU
//! (burn-ndarray) for growing sequence lengths. Prints time and time per step, so linear growth
//! of the chunked form shows as a flat µs/step column; ratios are against the same run.
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
const CHUNK: usize = 64;

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
         d_state {D_STATE}, chunk {CHUNK}; best of 3 (reference: 1 run)"
    );
    println!(
        "{:>6} | {:>12} {:>10} | {:>12} {:>10} {:>14} | {:>8}",
        "T", "reference ms", "µs/step", "chunked ms", "µs/step", "µs/step ÷ 1k", "speedup"
    );
    let mut chunked_per_step_1k = None;
    for t in [1024, 2048, 4096, 8192, 16384] {
        let x = uniform(&mut rng, [1, t, HEADS, HEAD_DIM], -1.0, 1.0);
        let dt = uniform(&mut rng, [1, t, HEADS], 0.001, 0.1);
        let a = uniform(&mut rng, [HEADS], -8.0, -1.0);
        let b = uniform(&mut rng, [1, t, GROUPS, D_STATE], -1.0, 1.0);
        let c = uniform(&mut rng, [1, t, GROUPS, D_STATE], -1.0, 1.0);
        let run_chunked = || {
            let (y, s) = chunked_ssd(
                x.clone(),
                dt.clone(),
                a.clone(),
                b.clone(),
                c.clone(),
                None,
                CHUNK,
            );
            (y.into_data(), s.into_data())
        };
        run_chunked(); // warm-up
        let chunked = best_of(3, || {
            run_chunked();
        });
        let reference = best_of(1, || {
            let (y, s) =
                reference_ssd(x.clone(), dt.clone(), a.clone(), b.clone(), c.clone(), None);
            let _ = (y.into_data(), s.into_data());
        });
        let per_step = |d: Duration| d.as_secs_f64() * 1e6 / t as f64;
        let base = *chunked_per_step_1k.get_or_insert(per_step(chunked));
        println!(
            "{:>6} | {:>12.1} {:>10.2} | {:>12.1} {:>10.2} {:>14.2} | {:>7.1}×",
            t,
            reference.as_secs_f64() * 1e3,
            per_step(reference),
            chunked.as_secs_f64() * 1e3,
            per_step(chunked),
            per_step(chunked) / base,
            reference.as_secs_f64() / chunked.as_secs_f64(),
        );
    }
}
