//! The layer ops' kernels against the f64 host loops on wgpu (lavapipe in CI) and CUDA, on
//! awkward shapes (widths of 1 and not multiples of the cube, one row per group, more rows or
//! groups than one grid row), outputs pre-filled with NaN so an element a kernel never writes
//! fails; and the host loops' gradients against finite differences of their forward forms.

use super::kernel::{launch_gelu, launch_norm_modulate_backward, launch_norm_modulate_forward};
use super::reference;
use crate::testing::{cube_input, host, nan_output, uniform, GpuTarget};
use crate::tolerance::assert_close_slices;

const EPS: f64 = 1e-6;

/// `(rows, d, groups)`: one row, width 1, one row per group, widths around the column cube
/// (64), the model's 256 tokens × 256 wide frames, and 32,769 rows and groups (past one grid
/// row of cubes, for both kernels).
const NORM_SHAPES: [(usize, usize, usize); 7] = [
    (1, 5, 1),
    (3, 1, 3),
    (63, 7, 63),
    (260, 65, 4),
    (250, 130, 2),
    (768, 256, 3),
    (32_769, 3, 32_769),
];

fn norm_modulate_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    for (k, &(rows, d, groups)) in NORM_SHAPES.iter().enumerate() {
        let seed = 10 * k as u64;
        // Rows with an offset, so the mean matters, and a ramp along them, so that no row of
        // a few columns is nearly constant (its tiny variance would amplify f32 rounding).
        let x: Vec<f32> = uniform(rows * d, -1.0, 1.0, seed)
            .iter()
            .enumerate()
            .map(|(j, v)| v + (j / d % 5) as f32 + 1.5 * (j % d % 4) as f32)
            .collect();
        let shift = uniform(groups * d, -1.0, 1.0, seed + 1);
        let scale = uniform(groups * d, -0.5, 0.5, seed + 2);
        let dy = uniform(rows * d, -1.0, 1.0, seed + 3);
        let what = format!("norm_modulate rows={rows} d={d} groups={groups}");

        let (y, stats) = (
            nan_output::<T, 2>([rows, d], &device),
            nan_output::<T, 2>([rows, 2], &device),
        );
        let input = |v: &[f32], shape: [usize; 2]| cube_input::<T, 2>(v, shape, &device);
        launch_norm_modulate_forward(
            input(&x, [rows, d]),
            [input(&shift, [groups, d]), input(&scale, [groups, d])],
            y.clone(),
            stats.clone(),
            EPS as f32,
        );
        let (want_y, want_stats) = reference::norm_modulate(&x, &shift, &scale, d, EPS);
        assert_close_slices(&format!("{what} y"), &host::<T, 2>(y), &want_y, 1e-5, 1e-5);
        let got_stats = host::<T, 2>(stats.clone());
        assert_close_slices(
            &format!("{what} stats"),
            &got_stats,
            &want_stats,
            1e-5,
            1e-5,
        );

        let outs = [
            nan_output::<T, 2>([rows, d], &device),
            nan_output::<T, 2>([groups, d], &device),
            nan_output::<T, 2>([groups, d], &device),
        ];
        launch_norm_modulate_backward(
            input(&x, [rows, d]),
            stats,
            input(&scale, [groups, d]),
            input(&dy, [rows, d]),
            outs.clone(),
        );
        let want = reference::norm_modulate_backward(&x, &scale, &dy, d, EPS);
        // dx is scaled by 1/σ, up to 1/√eps = 1000 for a constant row (width 1), and so is the
        // rounding of g − mean(g) (CUDA contracts products into FMAs): its absolute tolerance
        // grows with the largest 1/σ.
        let max_rstd = want_stats
            .iter()
            .skip(1)
            .step_by(2)
            .fold(0f32, |m, &s| m.max(s));
        let abs_tols = [1e-5f64.max(1e-7 * max_rstd as f64), 1e-5, 1e-5];
        for (((got, want), name), abs_tol) in outs
            .into_iter()
            .zip(&want)
            .zip(["dx", "dshift", "dscale"])
            .zip(abs_tols)
        {
            let got = host::<T, 2>(got);
            assert_close_slices(&format!("{what} {name}"), &got, want, 1e-4, abs_tol);
        }
    }
}

fn gelu_matches_host<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    // A cube holds 256 units and a grid row 32,768 cubes: 8,388,608 elements.
    for n in [1, 255, 257, 10_000, 8_388_609] {
        let mut x = uniform(n, -4.0, 4.0, n as u64);
        if let Some(first) = x.first_mut() {
            *first = -9.5;
        }
        let dy = uniform(n, -1.0, 1.0, n as u64 + 1);
        let input = |v: &[f32]| cube_input::<T, 1>(v, [n], &device);
        let (y, dx) = (
            nan_output::<T, 1>([n], &device),
            nan_output::<T, 1>([n], &device),
        );
        launch_gelu(input(&x), None, y.clone());
        launch_gelu(input(&x), Some(input(&dy)), dx.clone());
        let what = format!("gelu n={n}");
        let want_y = reference::gelu(&x);
        assert_close_slices(&format!("{what} y"), &host::<T, 1>(y), &want_y, 1e-5, 1e-6);
        let want_dx = reference::gelu_backward(&x, &dy);
        assert_close_slices(
            &format!("{what} dx"),
            &host::<T, 1>(dx),
            &want_dx,
            1e-5,
            1e-6,
        );
    }
}

crate::gpu_tests!(norm_modulate_matches_host, gelu_matches_host);

/// Central differences of `loss` at `point` along each coordinate.
pub(super) fn numerical_gradient(point: &[f64], loss: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let h = 1e-5;
    (0..point.len())
        .map(|i| {
            let mut p = point.to_vec();
            p[i] += h;
            let up = loss(&p);
            p[i] -= 2.0 * h;
            (up - loss(&p)) / (2.0 * h)
        })
        .collect()
}

pub(super) fn assert_gradient(what: &str, got: &[f32], want: &[f64]) {
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_close_slices(what, got, &want, 1e-5, 1e-6);
}

/// The host backward of the norm and modulation equals finite differences of the host
/// forward for `loss = Σ dy · y`, for x, shift and scale, with two groups of three rows.
#[test]
fn host_norm_modulate_gradients_match_finite_differences() {
    let (rows, d, groups) = (6, 5, 2);
    let f64s = |n, lo, hi, seed| -> Vec<f64> {
        uniform(n, lo, hi, seed).iter().map(|&v| v as f64).collect()
    };
    let (x, shift, scale, dy) = (
        f64s(rows * d, -2.0, 2.0, 1),
        f64s(groups * d, -1.0, 1.0, 2),
        f64s(groups * d, -0.5, 0.5, 3),
        f64s(rows * d, -1.0, 1.0, 4),
    );
    let loss = |x: &[f64], shift: &[f64], scale: &[f64]| -> f64 {
        let y = reference::norm_modulate_f64(x, shift, scale, d, EPS);
        y.iter().zip(&dy).map(|(a, b)| a * b).sum()
    };
    let f32s = |v: &[f64]| -> Vec<f32> { v.iter().map(|&a| a as f32).collect() };
    // The host backward reads f32 inputs: compare at the f32-rounded point.
    let (x, shift, scale, dy_32) = (
        f32s(&x).iter().map(|&v| v as f64).collect::<Vec<_>>(),
        f32s(&shift).iter().map(|&v| v as f64).collect::<Vec<_>>(),
        f32s(&scale).iter().map(|&v| v as f64).collect::<Vec<_>>(),
        f32s(&dy),
    );
    let [dx, dshift, dscale] =
        reference::norm_modulate_backward(&f32s(&x), &f32s(&scale), &dy_32, d, EPS);
    assert_gradient(
        "dx",
        &dx,
        &numerical_gradient(&x, |p| loss(p, &shift, &scale)),
    );
    assert_gradient(
        "dshift",
        &dshift,
        &numerical_gradient(&shift, |p| loss(&x, p, &scale)),
    );
    assert_gradient(
        "dscale",
        &dscale,
        &numerical_gradient(&scale, |p| loss(&x, &shift, p)),
    );
}

/// The host erf against published values, and GELU's host gradient against finite
/// differences of the host GELU.
#[test]
fn host_gelu_and_its_gradient_are_right() {
    for (z, erf) in [
        (0.0, 0.0),
        (0.5, 0.520_499_877_813_046_5),
        (1.0, 0.842_700_792_949_714_9),
        (-2.0, -0.995_322_265_018_952_7),
        (3.5, 0.999_999_256_901_627_7),
    ] {
        let got = reference::erf(z);
        assert!((got - erf).abs() < 1e-13, "erf({z}) = {got}, want {erf}");
    }
    let x: Vec<f32> = [-6.0, -2.5, -0.7, 0.0, 0.3, 1.9, 3.2, 7.0].to_vec();
    let ones = vec![1.0; x.len()];
    let got = reference::gelu_backward(&x, &ones);
    for (i, &v) in x.iter().enumerate() {
        let want = numerical_gradient(&[v as f64], |p| reference::gelu_f64(p[0]))[0];
        assert!(
            (got[i] as f64 - want).abs() < 1e-6,
            "gelu'({v}) = {}, want {want}",
            got[i]
        );
    }
}
