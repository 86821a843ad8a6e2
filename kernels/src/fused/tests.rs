//! Fused kernels against the f64 host loops on wgpu (lavapipe in CI) and CUDA, on awkward
//! shapes (widths that are not multiples of the cube, one-token sequences shorter than the
//! carried convolution inputs, more rows than one grid row), outputs pre-filled with NaN so an
//! element the kernel never writes fails the comparison.

use super::launch::{
    launch_bias_gelu, launch_gated_residual, launch_mamba_epilogue, launch_mamba_prologue,
    launch_norm_modulate, launch_rope_pair, PrologueOut,
};
use super::{reference, MambaDims};
use crate::testing::{cube_input, host, nan_output, uniform, Device, GpuTarget};
use crate::tolerance::assert_close_slices;

const TOL: f64 = 1e-5;

fn check_norm_modulate<T: GpuTarget>(rows: usize, d: usize, tokens: usize, device: &Device<T>) {
    let frames = rows / tokens;
    let x: Vec<f32> = uniform(rows * d, -2.0, 3.0, 1);
    let shift = uniform(frames * d, -1.0, 1.0, 2);
    let scale = uniform(frames * d, -1.0, 1.0, 3);
    let eps = 1e-6;
    let y = nan_output::<T, 2>([rows, d], device);
    launch_norm_modulate(
        cube_input::<T, 2>(&x, [rows, d], device),
        cube_input::<T, 2>(&shift, [frames, d], device),
        cube_input::<T, 2>(&scale, [frames, d], device),
        y.clone(),
        tokens,
        eps as f32,
    );
    let want = reference::norm_modulate(&x, &shift, &scale, d, tokens, eps);
    assert_close_slices(
        &format!("norm_modulate rows {rows} d {d}"),
        &host::<T, 2>(y),
        &want,
        TOL,
        TOL,
    );
}

fn norm_modulate_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    check_norm_modulate::<T>(3 * 5, 37, 5, &device);
    check_norm_modulate::<T>(2 * 16, 256, 16, &device);
    check_norm_modulate::<T>(4, 1, 2, &device);
    // More rows than one grid row holds: the grid continues along y.
    check_norm_modulate::<T>(40_000, 3, 8, &device);
}

fn gated_residual_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    let (rows, d, tokens) = (3 * 7, 37, 7);
    let x = uniform(rows * d, -1.0, 1.0, 4);
    let y = uniform(rows * d, -1.0, 1.0, 5);
    let gate = uniform(rows / tokens * d, -1.0, 1.0, 6);
    let out = nan_output::<T, 2>([rows, d], &device);
    launch_gated_residual(
        cube_input::<T, 2>(&x, [rows, d], &device),
        cube_input::<T, 2>(&gate, [rows / tokens, d], &device),
        cube_input::<T, 2>(&y, [rows, d], &device),
        out.clone(),
        tokens,
    );
    let want = reference::gated_residual(&x, &gate, &y, d, tokens);
    assert_close_slices("gated_residual", &host::<T, 2>(out), &want, TOL, TOL);
}

fn check_prologue<T: GpuTarget>(batch: usize, seq: usize, dims: MambaDims, device: &Device<T>) {
    let conv_dim = dims.conv_dim();
    let width = dims.d_inner + conv_dim + dims.heads;
    let k = dims.d_conv;
    let rows = batch * seq;
    let gs = dims.groups * dims.d_state;
    let zxbcdt = uniform(rows * width, -2.0, 2.0, 7);
    let state = uniform(batch * conv_dim * (k - 1), -1.0, 1.0, 8);
    let weight = uniform(conv_dim * k, -0.7, 0.7, 9);
    let bias = uniform(conv_dim, -0.3, 0.3, 10);
    // Large and small raw Δ: softplus's overflow-free form is exercised on both sides.
    let dt_bias: Vec<f32> = uniform(dims.heads, -30.0, 30.0, 11);
    let out = PrologueOut {
        x: nan_output::<T, 2>([rows, dims.d_inner], device),
        b: nan_output::<T, 2>([rows, gs], device),
        c: nan_output::<T, 2>([rows, gs], device),
        dt: nan_output::<T, 2>([rows, dims.heads], device),
        conv: nan_output::<T, 3>([batch, conv_dim, k - 1], device),
    };
    launch_mamba_prologue(
        cube_input::<T, 2>(&zxbcdt, [rows, width], device),
        cube_input::<T, 3>(&state, [batch, conv_dim, k - 1], device),
        cube_input::<T, 2>(&weight, [conv_dim, k], device),
        cube_input::<T, 1>(&bias, [conv_dim], device),
        cube_input::<T, 1>(&dt_bias, [dims.heads], device),
        &out,
        seq,
        dims,
    );
    let want =
        reference::mamba_prologue(&zxbcdt, &state, &weight, &bias, &dt_bias, batch, seq, dims);
    let what = |part: &str| format!("mamba_prologue {part}, batch {batch} seq {seq} {dims:?}");
    assert_close_slices(&what("x"), &host::<T, 2>(out.x), &want.x, TOL, TOL);
    assert_close_slices(&what("B"), &host::<T, 2>(out.b), &want.b, TOL, TOL);
    assert_close_slices(&what("C"), &host::<T, 2>(out.c), &want.c, TOL, TOL);
    assert_close_slices(&what("dt"), &host::<T, 2>(out.dt), &want.dt, TOL, TOL);
    assert_close_slices(
        &what("conv state"),
        &host::<T, 3>(out.conv),
        &want.conv,
        0.0,
        0.0,
    );
}

fn dims(d_inner: usize, heads: usize, groups: usize, d_state: usize, d_conv: usize) -> MambaDims {
    MambaDims {
        d_inner,
        heads,
        head_dim: d_inner / heads,
        groups,
        d_state,
        d_conv,
    }
}

fn mamba_prologue_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    // One token: the convolution reads mostly carried inputs, and the new carried inputs are
    // two old ones and the token.
    check_prologue::<T>(3, 1, dims(8, 2, 1, 3, 4), &device);
    check_prologue::<T>(2, 2, dims(8, 2, 2, 3, 4), &device);
    check_prologue::<T>(2, 70, dims(12, 3, 1, 5, 4), &device);
    check_prologue::<T>(1, 5, dims(8, 4, 2, 4, 2), &device);
}

fn check_epilogue<T: GpuTarget>(rows: usize, extra: usize, dims: MambaDims, device: &Device<T>) {
    let d_inner = dims.d_inner;
    // z occupies the first d_inner columns of a wider row, as in the input projection.
    let width = d_inner + extra;
    let y = uniform(rows * d_inner, -1.0, 1.0, 12);
    let x = uniform(rows * d_inner, -1.0, 1.0, 13);
    let d_skip = uniform(dims.heads, 0.5, 1.5, 14);
    let zxbcdt = uniform(rows * width, -3.0, 3.0, 15);
    let w = uniform(d_inner, 0.5, 1.5, 16);
    let eps = 1e-5;
    let out = nan_output::<T, 2>([rows, d_inner], device);
    launch_mamba_epilogue(
        cube_input::<T, 2>(&y, [rows, d_inner], device),
        cube_input::<T, 2>(&x, [rows, d_inner], device),
        cube_input::<T, 1>(&d_skip, [dims.heads], device),
        cube_input::<T, 2>(&zxbcdt, [rows, width], device),
        cube_input::<T, 1>(&w, [d_inner], device),
        out.clone(),
        dims,
        eps as f32,
    );
    let want = reference::mamba_epilogue(&y, &x, &d_skip, &zxbcdt, width, &w, dims, eps);
    assert_close_slices(
        &format!("mamba_epilogue rows {rows} {dims:?}"),
        &host::<T, 2>(out),
        &want,
        TOL,
        TOL,
    );
}

fn mamba_epilogue_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    check_epilogue::<T>(7, 9, dims(12, 3, 1, 4, 4), &device);
    check_epilogue::<T>(5, 3, dims(12, 3, 3, 4, 4), &device);
    check_epilogue::<T>(4, 40, dims(200, 4, 2, 4, 4), &device);
}

fn check_rope<T: GpuTarget>(
    batch: usize,
    frames: usize,
    grid: [usize; 2],
    heads: usize,
    axes: super::RopeAxes,
    first_frame: usize,
    device: &Device<T>,
) {
    let head_dim = 2 * axes.pairs();
    let dims = [batch, frames, grid[0] * grid[1], heads, head_dim];
    let n: usize = dims.iter().product();
    let q = uniform(n, -1.0, 1.0, 17);
    let k = uniform(n, -1.0, 1.0, 18);
    let theta = 10_000.0;
    let table = super::rope_table(axes, theta, first_frame, frames, grid);
    let (q_out, k_out) = (
        nan_output::<T, 5>(dims, device),
        nan_output::<T, 5>(dims, device),
    );
    launch_rope_pair(
        cube_input::<T, 5>(&q, dims, device),
        cube_input::<T, 5>(&k, dims, device),
        cube_input::<T, 1>(&table, [table.len()], device),
        q_out.clone(),
        k_out.clone(),
        axes,
        grid,
    );
    let split = [axes.rows, axes.cols, axes.frames];
    for (name, input, out) in [("q", &q, q_out), ("k", &k, k_out)] {
        let want = reference::rope(
            input,
            frames,
            grid,
            heads,
            head_dim,
            split,
            theta,
            first_frame,
        );
        assert_close_slices(
            &format!("rope {name}, frames {first_frame}.. ×{frames}, grid {grid:?}, {axes:?}"),
            &host::<T, 5>(out),
            &want,
            TOL,
            TOL,
        );
    }
}

fn rope_pair_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    let axes = |rows, cols, frames| super::RopeAxes { rows, cols, frames };
    check_rope::<T>(2, 3, [3, 5], 2, axes(2, 1, 3), 0, &device);
    // A long rollout's frame index: the table's f64 angles keep sin/cos exact.
    check_rope::<T>(1, 1, [4, 4], 3, axes(11, 10, 11), 4_999, &device);
    check_rope::<T>(1, 2, [1, 7], 1, axes(1, 1, 1), 12, &device);
}

fn bias_gelu_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    let (rows, width) = (13, 37);
    let y = uniform(rows * width, -5.0, 5.0, 19);
    let bias = uniform(width, -1.0, 1.0, 20);
    let out = nan_output::<T, 2>([rows, width], &device);
    launch_bias_gelu(
        cube_input::<T, 2>(&y, [rows, width], &device),
        cube_input::<T, 1>(&bias, [width], &device),
        out.clone(),
    );
    let want = reference::bias_gelu(&y, &bias);
    assert_close_slices("bias_gelu", &host::<T, 2>(out), &want, 1e-5, 1e-6);
}

#[test]
fn erfc_matches_known_values() {
    // erfc(0) = 1, erfc(1) = 0.157299207050285, erfc(−0.5) = 1.520499877813047
    for (x, want) in [
        (0.0, 1.0),
        (1.0, 0.157_299_207_050_285),
        (-0.5, 1.520_499_877_813_047),
    ] {
        assert!((reference::erfc(x) - want).abs() < 2e-7, "erfc({x})");
    }
}

crate::gpu_tests!(
    bias_gelu_matches_host,
    rope_pair_matches_host,
    norm_modulate_matches_host,
    gated_residual_matches_host,
    mamba_prologue_matches_host,
    mamba_epilogue_matches_host,
);
