//! The AdamW kernel against the host f64 reference on lengths around the cube size and past
//! one grid row, outputs NaN-filled so an element the kernel never writes fails.

use super::{launch_adamw, reference, AdamWStep};
use crate::testing::{cube_input, host, nan_output, uniform, GpuTarget};
use crate::tolerance::assert_close_slices;

fn adamw_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    // A cube holds 256 units and a grid row 32,768 cubes: 8,388,608 elements.
    for (n, time) in [
        (1, 1),
        (63, 2),
        (255, 7),
        (257, 1),
        (500, 40),
        (8_388_609, 3),
    ] {
        let step = AdamWStep {
            lr: 3e-4,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.05,
            time,
        };
        let p = uniform(n, -1.0, 1.0, 1 + n as u64);
        let g = uniform(n, -0.1, 0.1, 2 + n as u64);
        let m = uniform(n, -0.01, 0.01, 3 + n as u64);
        // Second moments are non-negative.
        let v = uniform(n, 0.0, 1e-4, 4 + n as u64);
        let outs = [(); 3].map(|_| nan_output::<T, 1>([n], &device));
        let input = |x: &[f32]| cube_input::<T, 1>(x, [n], &device);
        launch_adamw(
            input(&p),
            input(&g),
            input(&m),
            input(&v),
            outs.clone(),
            &step,
        );
        let (want_p, want_m, want_v) = reference::adamw(&p, &g, &m, &v, &step);
        let [got_p, got_m, got_v] = outs.map(|t| host::<T, 1>(t));
        let what = format!("adamw n={n} t={time}");
        assert_close_slices(&format!("{what} param"), &got_p, &want_p, 1e-6, 1e-6);
        assert_close_slices(&format!("{what} moment_1"), &got_m, &want_m, 1e-5, 1e-9);
        assert_close_slices(&format!("{what} moment_2"), &got_v, &want_v, 1e-5, 1e-12);
        // The step itself, p' − p (~lr), to a tolerance of its own size: a lost bias
        // correction or decay term shows here even where it is below the parameters' rounding.
        let step_of = |q: &[f32]| -> Vec<f32> { q.iter().zip(&p).map(|(a, b)| a - b).collect() };
        assert_close_slices(
            &format!("{what} step"),
            &step_of(&got_p),
            &step_of(&want_p),
            1e-3,
            0.0,
        );
    }
}

/// The public entry takes tensors as burn holds them: a gradient that is a transposed view
/// (as a matrix product's backward makes it) is read in its logical order.
fn adamw_update_reads_strided_tensors<T: GpuTarget>() {
    use burn::tensor::{Tensor, TensorData};
    let Some(device) = T::device() else { return };
    let (rows, cols) = (37, 300);
    let n = rows * cols;
    let step = AdamWStep {
        lr: 1e-2,
        beta_1: 0.9,
        beta_2: 0.99,
        epsilon: 1e-8,
        weight_decay: 0.05,
        time: 1,
    };
    let p = uniform(n, -1.0, 1.0, 5);
    let g = uniform(n, -0.1, 0.1, 6);
    let zeros = vec![0.0; n];
    let tensor = |x: &[f32], shape: [usize; 2]| {
        Tensor::<T::B, 2>::from_data(TensorData::new(x.to_vec(), shape), &device)
    };
    // g laid out transposed: the tensor [cols, rows] holding gᵀ, viewed as [rows, cols].
    let g_t: Vec<f32> = (0..cols)
        .flat_map(|c| (0..rows).map(move |r| (r, c)))
        .map(|(r, c)| g[r * cols + c])
        .collect();
    let grad = tensor(&g_t, [cols, rows]).transpose();
    let (got_p, _, _) = super::adamw_update(
        tensor(&p, [rows, cols]),
        grad,
        tensor(&zeros, [rows, cols]),
        tensor(&zeros, [rows, cols]),
        &step,
    );
    let (want_p, _, _) = reference::adamw(&p, &g, &zeros, &zeros, &step);
    let got = crate::tolerance::to_vec(got_p);
    assert_close_slices("adamw_update, transposed grad", &got, &want_p, 1e-6, 1e-6);
}

crate::gpu_tests!(adamw_matches_host, adamw_update_reads_strided_tensors);
