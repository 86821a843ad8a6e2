//! The convolution + SiLU kernels against the f64 host loops on wgpu (lavapipe in CI) and
//! CUDA, on awkward shapes (sequences shorter than the carried inputs, widths not a multiple
//! of the column cube, rows not a whole chunk, more elements than one grid row), outputs
//! pre-filled with NaN so an element a kernel never writes fails; and the host loops'
//! gradients against finite differences of their forward form.

use super::conv::{launch_conv_silu_backward, launch_conv_silu_forward, CHUNK_ROWS};
use super::reference::{self, ConvDims};
use super::tests::{assert_gradient, numerical_gradient};
use crate::testing::{cube_input, host, nan_output, uniform, GpuTarget};
use crate::tolerance::assert_close_slices;

/// `(batch, seq, channels, taps)`: one token (fewer than the 3 carried inputs), two taps,
/// widths around the column cube (64), rows around a chunk (256), the model's 640 channels,
/// and 8,388,672 elements (past one grid row of 256-unit cubes).
const CONV_SHAPES: [(usize, usize, usize, usize); 7] = [
    (1, 1, 1, 4),
    (2, 2, 5, 4),
    (3, 63, 7, 2),
    (2, 65, 70, 4),
    (1, 500, 130, 4),
    (2, 256, 640, 4),
    (1, 131_073, 64, 4),
];

/// Inputs `[x, state, weight, bias]` and an output gradient for `dims`.
fn conv_case(dims: ConvDims, seed: u64) -> ([Vec<f32>; 4], Vec<f32>) {
    let ConvDims {
        batch,
        seq,
        channels,
        taps,
    } = dims;
    let len = batch * seq * channels;
    (
        [
            uniform(len, -2.0, 2.0, seed),
            uniform(batch * channels * (taps - 1), -2.0, 2.0, seed + 1),
            uniform(channels * taps, -0.8, 0.8, seed + 2),
            uniform(channels, -0.5, 0.5, seed + 3),
        ],
        uniform(len, -1.0, 1.0, seed + 4),
    )
}

fn conv_silu_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    for (k, &(batch, seq, channels, taps)) in CONV_SHAPES.iter().enumerate() {
        let dims = ConvDims {
            batch,
            seq,
            channels,
            taps,
        };
        let ([x, state, weight, bias], dy) = conv_case(dims, 10 * k as u64);
        let what = format!("conv_silu {dims:?}");
        let x_shape = [batch, seq, channels];
        let state_shape = [batch, channels, taps - 1];
        let inputs = || {
            [
                cube_input::<T, 3>(&x, x_shape, &device),
                cube_input::<T, 3>(&state, state_shape, &device),
                cube_input::<T, 2>(&weight, [channels, taps], &device),
                cube_input::<T, 1>(&bias, [channels], &device),
            ]
        };

        let y = nan_output::<T, 3>(x_shape, &device);
        launch_conv_silu_forward(inputs(), y.clone());
        let want_y = reference::conv_silu(&x, &state, &weight, &bias, dims);
        assert_close_slices(&format!("{what} y"), &host::<T, 3>(y), &want_y, 1e-5, 1e-6);

        let rows = batch * seq;
        let chunks = rows.div_ceil(CHUNK_ROWS);
        let outs = [
            nan_output::<T, 3>(x_shape, &device),
            nan_output::<T, 3>(state_shape, &device),
            nan_output::<T, 3>([chunks, taps + 1, channels], &device),
        ];
        launch_conv_silu_backward(
            inputs(),
            cube_input::<T, 3>(&dy, x_shape, &device),
            nan_output::<T, 3>(x_shape, &device),
            outs.clone(),
        );
        let [want_dx, want_dstate, want_dweight, want_dbias] =
            reference::conv_silu_backward([&x, &state, &weight, &bias], &dy, dims);
        let [dx, dstate, partial] = outs.map(host::<T, 3>);
        assert_close_slices(&format!("{what} dx"), &dx, &want_dx, 1e-5, 1e-6);
        assert_close_slices(&format!("{what} dstate"), &dstate, &want_dstate, 1e-5, 1e-6);
        // The chunks' partial sums, summed here: `[taps + 1, channels]`.
        let sums: Vec<f32> = (0..(taps + 1) * channels)
            .map(|i| {
                (0..chunks)
                    .map(|chunk| partial[chunk * (taps + 1) * channels + i] as f64)
                    .sum::<f64>() as f32
            })
            .collect();
        let dweight: Vec<f32> = (0..channels * taps)
            .map(|i| sums[(i % taps) * channels + i / taps])
            .collect();
        // Sums over all rows in f32: the rounding grows with their number.
        let abs_tol = 1e-6 * rows as f64;
        let got_dbias = &sums[taps * channels..];
        assert_close_slices(
            &format!("{what} dweight"),
            &dweight,
            &want_dweight,
            1e-4,
            abs_tol,
        );
        assert_close_slices(
            &format!("{what} dbias"),
            got_dbias,
            &want_dbias,
            1e-4,
            abs_tol,
        );
    }
}

crate::gpu_tests!(conv_silu_matches_host);

/// The host backward of the convolution + SiLU equals finite differences of the host forward
/// for `loss = Σ dy · y`, for every input, with more tokens than carried inputs and fewer.
#[test]
fn host_conv_silu_gradients_match_finite_differences() {
    for (batch, seq, channels, taps) in [(2, 5, 3, 4), (1, 2, 2, 4), (2, 3, 2, 2)] {
        let dims = ConvDims {
            batch,
            seq,
            channels,
            taps,
        };
        let (inputs, dy) = conv_case(dims, 7);
        let grads = reference::conv_silu_backward(inputs.each_ref().map(|v| &v[..]), &dy, dims);
        let wide = |v: &[f32]| -> Vec<f64> { v.iter().map(|&a| a as f64).collect() };
        let point = inputs.each_ref().map(|v| wide(v));
        let dy = wide(&dy);
        for (i, name) in ["dx", "dstate", "dweight", "dbias"].iter().enumerate() {
            let loss = |p: &[f64]| -> f64 {
                let mut args = point.clone();
                args[i] = p.to_vec();
                let [x, state, weight, bias] = &args;
                let y = reference::conv_silu_f64(x, state, weight, bias, dims);
                y.iter().zip(&dy).map(|(a, b)| a * b).sum()
            };
            let what = format!("{name} {dims:?}");
            assert_gradient(&what, &grads[i], &numerical_gradient(&point[i], loss));
        }
    }
}
