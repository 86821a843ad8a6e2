//! The D skip + gated RMSNorm kernels against the f64 host loops on wgpu (lavapipe in CI) and
//! CUDA, on awkward shapes (one channel per head, groups spanning heads and heads spanning
//! groups, widths not a multiple of the column cube, rows not a whole chunk, more cubes than
//! one grid row), outputs pre-filled with NaN so an element a kernel never writes fails; and
//! the host loops' gradients against finite differences of their forward form.

use super::conv::CHUNK_ROWS;
use super::gated_rms::{launch_gated_norm_backward, launch_gated_norm_forward};
use super::reference::{self, GatedNormDims};
use super::tests::{assert_gradient, numerical_gradient};
use crate::testing::{cube_input, host, nan_output, uniform, GpuTarget};
use crate::tolerance::assert_close_slices;

const EPS: f64 = 1e-5;

/// `(rows, d, groups, head_dim)`: one row, heads of one channel, groups of two heads and heads
/// of two groups, 70 and 130 channels (around the 64-column cube), the model's 512 channels
/// in one group, and 32,769 rows of two groups (65,538 cubes: past one grid row).
const SHAPES: [(usize, usize, usize, usize); 7] = [
    (1, 4, 1, 4),
    (3, 6, 3, 1),
    (5, 8, 2, 2),
    (7, 8, 4, 4),
    (63, 70, 1, 7),
    (300, 130, 2, 13),
    (32_769, 2, 2, 1),
];

/// Row inputs `[y, x, z]`, `[D, weight]` and an output gradient.
fn case(rows: usize, dims: GatedNormDims, seed: u64) -> ([Vec<f32>; 3], [Vec<f32>; 2], Vec<f32>) {
    let n = rows * dims.d;
    (
        [0, 1, 2].map(|k| uniform(n, -2.0, 2.0, seed + k)),
        [
            uniform(dims.d / dims.head_dim, 0.5, 1.5, seed + 3),
            uniform(dims.d, 0.5, 1.5, seed + 4),
        ],
        uniform(n, -1.0, 1.0, seed + 5),
    )
}

fn gated_norm_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    for (k, &(rows, d, groups, head_dim)) in SHAPES.iter().enumerate() {
        let dims = GatedNormDims {
            d,
            groups,
            head_dim,
        };
        let ([y, x, z], [d_skip, weight], dout) = case(rows, dims, 10 * k as u64);
        let what = format!("gated_norm rows={rows} {dims:?}");
        let row_inputs = || [&y, &x, &z].map(|v| cube_input::<T, 2>(v, [rows, d], &device));
        let vector = |v: &[f32]| cube_input::<T, 1>(v, [v.len()], &device);

        let (out, rstd) = (
            nan_output::<T, 2>([rows, d], &device),
            nan_output::<T, 2>([rows, groups], &device),
        );
        launch_gated_norm_forward(
            row_inputs(),
            [vector(&d_skip), vector(&weight)],
            [out.clone(), rstd.clone()],
            groups,
            EPS as f32,
        );
        let rows_ref = [&y[..], &x[..], &z[..]];
        let want = reference::gated_norm(rows_ref, &d_skip, &weight, dims, EPS);
        assert_close_slices(
            &format!("{what} out"),
            &host::<T, 2>(out),
            &want,
            1e-4,
            1e-5,
        );

        let chunks = rows.div_ceil(CHUNK_ROWS);
        let row_grads = [0; 3].map(|_| nan_output::<T, 2>([rows, d], &device));
        let partial = nan_output::<T, 3>([chunks, 2, d], &device);
        launch_gated_norm_backward(
            row_inputs(),
            [vector(&d_skip), vector(&weight), rstd],
            cube_input::<T, 2>(&dout, [rows, d], &device),
            [
                row_grads[0].clone(),
                row_grads[1].clone(),
                row_grads[2].clone(),
                partial.clone(),
            ],
            groups,
        );
        let want = reference::gated_norm_backward(rows_ref, &d_skip, &weight, &dout, dims, EPS);
        for ((got, want), name) in row_grads.into_iter().zip(&want).zip(["dy", "dx", "dz"]) {
            let got = host::<T, 2>(got);
            assert_close_slices(&format!("{what} {name}"), &got, want, 1e-4, 1e-5);
        }
        // The chunks' partial sums, summed here: `Σ dout · ĝ` per channel, `Σ dy · x` per
        // channel summed over each head's channels.
        let partial = host::<T, 3>(partial);
        let column = |j: usize, c: usize| -> f64 {
            (0..chunks)
                .map(|chunk| partial[(chunk * 2 + j) * d + c] as f64)
                .sum()
        };
        let dweight: Vec<f32> = (0..d).map(|c| column(0, c) as f32).collect();
        let dd: Vec<f32> = (0..d / head_dim)
            .map(|h| {
                (0..head_dim)
                    .map(|p| column(1, h * head_dim + p))
                    .sum::<f64>() as f32
            })
            .collect();
        // Sums over all rows in f32: the rounding grows with their number.
        let abs_tol = 1e-6 * rows as f64;
        assert_close_slices(&format!("{what} dD"), &dd, &want[3], 1e-4, abs_tol);
        assert_close_slices(
            &format!("{what} dweight"),
            &dweight,
            &want[4],
            1e-4,
            abs_tol,
        );
    }
}

crate::gpu_tests!(gated_norm_matches_host);

/// The host backward of the D skip + gated RMSNorm equals finite differences of the host
/// forward for `loss = Σ dout · out`, for every input, with heads spanning groups and groups
/// spanning heads.
#[test]
fn host_gated_norm_gradients_match_finite_differences() {
    for (rows, d, groups, head_dim) in [(3, 6, 3, 2), (2, 8, 2, 8), (2, 4, 1, 1)] {
        let dims = GatedNormDims {
            d,
            groups,
            head_dim,
        };
        let ([y, x, z], [d_skip, weight], dout) = case(rows, dims, 3);
        let grads = reference::gated_norm_backward(
            [&y[..], &x[..], &z[..]],
            &d_skip,
            &weight,
            &dout,
            dims,
            EPS,
        );
        let wide = |v: &[f32]| -> Vec<f64> { v.iter().map(|&a| a as f64).collect() };
        let point = [&y, &x, &z, &d_skip, &weight].map(|v| wide(v));
        let dout = wide(&dout);
        for (i, name) in ["dy", "dx", "dz", "dD", "dweight"].iter().enumerate() {
            let loss = |p: &[f64]| -> f64 {
                let mut args = point.clone();
                args[i] = p.to_vec();
                let [y, x, z, d_skip, weight] = &args;
                let out = reference::gated_norm_f64([y, x, z], d_skip, weight, dims, EPS);
                out.iter().zip(&dout).map(|(a, b)| a * b).sum()
            };
            let what = format!("{name} rows={rows} {dims:?}");
            assert_gradient(&what, &grads[i], &numerical_gradient(&point[i], loss));
        }
    }
}
