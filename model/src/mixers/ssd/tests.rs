//! Checks of the SSD mixer (STYLE.md item 2): reference = chunked on outputs and final states,
//! split runs = whole runs, `Mamba2::forward` = folding `Mamba2::step`, chunked gradients =
//! reference gradients, plus a smaller subset on wgpu.

use burn::backend::{Autodiff, NdArray};
use burn::module::Param;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use scenes::Rng;

use super::layer::softplus;
use super::{chunked_ssd, reference_ssd, Mamba2, Mamba2Config, Mamba2State};
use crate::tolerance::assert_close;
use kernels::testing::GpuTarget;

type Cpu = NdArray<f32>;

/// A tensor of uniform values in [lo, hi) drawn from a seeded generator.
pub(crate) fn uniform<B: Backend, const D: usize>(
    rng: &mut Rng,
    shape: [usize; D],
    lo: f64,
    hi: f64,
    device: &B::Device,
) -> Tensor<B, D> {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.range_f64(lo, hi) as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Inputs of one SSD problem.
pub(crate) struct SsdInputs<B: Backend> {
    pub x: Tensor<B, 4>,
    pub dt: Tensor<B, 3>,
    pub a: Tensor<B, 1>,
    pub b: Tensor<B, 4>,
    pub c: Tensor<B, 4>,
    pub h0: Tensor<B, 4>,
}

/// Random SSD inputs; `max_log_decay` bounds −Δ·A per step (large values test stability).
pub(crate) fn ssd_inputs<B: Backend>(
    seed: u64,
    [batch, seq, heads, head_dim, groups, d_state]: [usize; 6],
    max_log_decay: f64,
    device: &B::Device,
) -> SsdInputs<B> {
    let mut rng = Rng::new(seed);
    let a_max = max_log_decay.sqrt();
    SsdInputs {
        x: uniform(&mut rng, [batch, seq, heads, head_dim], -1.0, 1.0, device),
        dt: uniform(&mut rng, [batch, seq, heads], 0.001, a_max, device),
        a: uniform(&mut rng, [heads], -a_max, -0.05, device),
        b: uniform(&mut rng, [batch, seq, groups, d_state], -1.0, 1.0, device),
        c: uniform(&mut rng, [batch, seq, groups, d_state], -1.0, 1.0, device),
        h0: uniform(
            &mut rng,
            [batch, heads, head_dim, d_state],
            -1.0,
            1.0,
            device,
        ),
    }
}

fn check_reference_equals_chunked<B: Backend>(
    dims: [usize; 6],
    chunk_size: usize,
    with_state: bool,
    max_log_decay: f64,
    device: &B::Device,
) {
    let i = ssd_inputs::<B>(
        dims.iter().sum::<usize>() as u64,
        dims,
        max_log_decay,
        device,
    );
    let h0 = with_state.then_some(i.h0);
    let (y_ref, s_ref) = reference_ssd(
        i.x.clone(),
        i.dt.clone(),
        i.a.clone(),
        i.b.clone(),
        i.c.clone(),
        h0.clone(),
    );
    let (y, s) = chunked_ssd(i.x, i.dt, i.a, i.b, i.c, h0, chunk_size);
    let what = format!("dims {dims:?} chunk {chunk_size} state {with_state}");
    assert_close(&format!("y, {what}"), y, y_ref, 1e-4, 1e-6);
    assert_close(&format!("final state, {what}"), s, s_ref, 1e-4, 1e-6);
}

#[test]
fn reference_equals_chunked() {
    let device = Default::default();
    // [batch, seq, heads, head_dim, groups, d_state]
    for (heads, groups) in [(1, 1), (4, 2), (3, 3)] {
        for seq in [1, 63, 64, 65, 500] {
            for chunk_size in [16, 64] {
                for with_state in [false, true] {
                    let dims = [2, seq, heads, 4, groups, 5];
                    check_reference_equals_chunked::<Cpu>(
                        dims, chunk_size, with_state, 1.0, &device,
                    );
                }
            }
        }
    }
}

#[test]
fn reference_equals_chunked_with_strong_decay_and_odd_chunks() {
    // −Δ·A up to 16 per step: the within-chunk decay sums reach hundreds, where a decay mask
    // built as exp of large differences (or masked after exp) would overflow or lose digits.
    let device = Default::default();
    for chunk_size in [1, 7, 64] {
        check_reference_equals_chunked::<Cpu>(
            [1, 130, 2, 3, 1, 4],
            chunk_size,
            true,
            16.0,
            &device,
        );
    }
}

#[test]
fn split_runs_equal_one_run() {
    let device = Default::default();
    let dims = [2, 150, 4, 4, 2, 6];
    let i = ssd_inputs::<Cpu>(7, dims, 1.0, &device);
    let whole = chunked_ssd(
        i.x.clone(),
        i.dt.clone(),
        i.a.clone(),
        i.b.clone(),
        i.c.clone(),
        Some(i.h0.clone()),
        16,
    );
    for split in [1, 40, 64, 149] {
        let part = |t: usize, len: usize| {
            let (x, dt, b, c) = (
                i.x.clone().narrow(1, t, len),
                i.dt.clone().narrow(1, t, len),
                i.b.clone().narrow(1, t, len),
                i.c.clone().narrow(1, t, len),
            );
            (x, dt, b, c)
        };
        let (x, dt, b, c) = part(0, split);
        let (y1, s1) = chunked_ssd(x, dt, i.a.clone(), b, c, Some(i.h0.clone()), 16);
        let (x, dt, b, c) = part(split, 150 - split);
        // The second half runs through the reference, so the state handed over is checked too.
        let (y2, s2) = reference_ssd(x, dt, i.a.clone(), b, c, Some(s1));
        let y = Tensor::cat(vec![y1, y2], 1);
        assert_close(
            &format!("y split at {split}"),
            y,
            whole.0.clone(),
            1e-4,
            1e-6,
        );
        assert_close(
            &format!("state split at {split}"),
            s2,
            whole.1.clone(),
            1e-4,
            1e-6,
        );
    }
}

#[test]
fn chunked_gradients_equal_reference_gradients() {
    type Ad = Autodiff<Cpu>;
    let device = Default::default();
    let dims = [2, 37, 4, 3, 2, 5];
    let i = ssd_inputs::<Ad>(11, dims, 2.0, &device);
    let mut rng = Rng::new(12);
    let [batch, seq, heads, head_dim, _, d_state] = dims;
    let w_y = uniform::<Ad, 4>(&mut rng, [batch, seq, heads, head_dim], -1.0, 1.0, &device);
    let w_s = uniform::<Ad, 4>(
        &mut rng,
        [batch, heads, head_dim, d_state],
        -1.0,
        1.0,
        &device,
    );

    let grads_of = |chunked: bool| {
        let x = i.x.clone().require_grad();
        let dt = i.dt.clone().require_grad();
        let a = i.a.clone().require_grad();
        let b = i.b.clone().require_grad();
        let c = i.c.clone().require_grad();
        let h0 = i.h0.clone().require_grad();
        let (y, s) = if chunked {
            chunked_ssd(
                x.clone(),
                dt.clone(),
                a.clone(),
                b.clone(),
                c.clone(),
                Some(h0.clone()),
                8,
            )
        } else {
            reference_ssd(
                x.clone(),
                dt.clone(),
                a.clone(),
                b.clone(),
                c.clone(),
                Some(h0.clone()),
            )
        };
        let loss = (y * w_y.clone()).sum() + (s * w_s.clone()).sum();
        let g = loss.backward();
        (
            x.grad(&g).unwrap(),
            dt.grad(&g).unwrap(),
            a.grad(&g).unwrap(),
            b.grad(&g).unwrap(),
            c.grad(&g).unwrap(),
            h0.grad(&g).unwrap(),
        )
    };
    let (gx, gdt, ga, gb, gc, gh0) = grads_of(true);
    let (rx, rdt, ra, rb, rc, rh0) = grads_of(false);
    assert_close("dL/dx", gx, rx, 1e-4, 1e-6);
    assert_close("dL/ddt", gdt, rdt, 1e-4, 1e-6);
    assert_close("dL/dA", ga, ra, 1e-4, 1e-6);
    assert_close("dL/dB", gb, rb, 1e-4, 1e-6);
    assert_close("dL/dC", gc, rc, 1e-4, 1e-6);
    assert_close("dL/dh0", gh0, rh0, 1e-4, 1e-6);
}

/// The small layer shape the tests use: d_model 16, d_state 8, head_dim 8 (4 heads), 2 groups.
pub(crate) fn test_config(chunk_size: usize) -> Mamba2Config {
    Mamba2Config::new(16)
        .with_d_state(8)
        .with_head_dim(8)
        .with_n_groups(2)
        .with_chunk_size(chunk_size)
}

/// A small layer whose every parameter is drawn from a seeded generator (not the default
/// init, so D ≠ 1 and the norm weight ≠ 1 are exercised too).
pub(crate) fn seeded_layer<B: Backend>(
    seed: u64,
    chunk_size: usize,
    device: &B::Device,
) -> Mamba2<B> {
    let config = test_config(chunk_size);
    let mut layer = config.init::<B>(device);
    let mut rng = Rng::new(seed);
    let (d_model, d_inner, heads) = (16, config.d_inner(), config.n_heads());
    let conv_dim = config.conv_dim();
    let d_in_proj = 2 * d_inner + 2 * 2 * 8 + heads;
    let s_in = 1.0 / (d_model as f64).sqrt();
    let s_out = 1.0 / (d_inner as f64).sqrt();
    layer.in_proj.weight =
        Param::from_tensor(uniform(&mut rng, [d_model, d_in_proj], -s_in, s_in, device));
    layer.out_proj.weight =
        Param::from_tensor(uniform(&mut rng, [d_inner, d_model], -s_out, s_out, device));
    layer.conv_weight = Param::from_tensor(uniform(&mut rng, [conv_dim, 4], -0.5, 0.5, device));
    layer.conv_bias = Param::from_tensor(uniform(&mut rng, [conv_dim], -0.5, 0.5, device));
    layer.dt_bias = Param::from_tensor(uniform(&mut rng, [heads], -4.0, 0.5, device));
    layer.a_log = Param::from_tensor(uniform(&mut rng, [heads], 0.0, 2.5, device));
    layer.d = Param::from_tensor(uniform(&mut rng, [heads], 0.5, 1.5, device));
    layer.norm_weight = Param::from_tensor(uniform(&mut rng, [d_inner], 0.5, 1.5, device));
    layer
}

fn assert_states_close<B: Backend>(what: &str, a: Mamba2State<B>, b: Mamba2State<B>) {
    assert_close(&format!("{what}: conv state"), a.conv, b.conv, 1e-5, 1e-6);
    assert_close(&format!("{what}: ssm state"), a.ssm, b.ssm, 1e-4, 1e-6);
}

fn check_forward_equals_step<B: Backend>(seq: usize, device: &B::Device) {
    let layer = seeded_layer::<B>(21, 16, device);
    let mut rng = Rng::new(22 + seq as u64);
    let x = uniform::<B, 3>(&mut rng, [2, seq, 16], -1.0, 1.0, device);
    let (y, state) = layer.forward(x.clone(), None);
    let mut stepped = layer.zero_state(2, device);
    let ys: Vec<_> = (0..seq)
        .map(|t| {
            let x_t = x.clone().narrow(1, t, 1).reshape([2, 16]);
            layer.step(x_t, &mut stepped).unsqueeze_dim(1)
        })
        .collect();
    assert_close(
        &format!("forward vs step, T = {seq}"),
        y,
        Tensor::cat(ys, 1),
        1e-4,
        1e-6,
    );
    assert_states_close(&format!("forward vs step, T = {seq}"), state, stepped);
}

#[test]
fn mamba2_forward_equals_folded_step() {
    let device = Default::default();
    for seq in [1, 2, 5, 37] {
        check_forward_equals_step::<Cpu>(seq, &device);
    }
}

#[test]
fn mamba2_forward_split_anywhere_equals_whole() {
    let device = Default::default();
    let layer = seeded_layer::<Cpu>(31, 16, &device);
    let mut rng = Rng::new(32);
    let seq = 70;
    let x = uniform::<Cpu, 3>(&mut rng, [2, seq, 16], -1.0, 1.0, &device);
    let (y_whole, s_whole) = layer.forward(x.clone(), None);
    // Pieces shorter than the conv width, across chunk boundaries, single tokens.
    for cuts in [
        vec![1, 2, 3, 35],
        vec![16, 17],
        vec![69],
        vec![2, 4, 6, 8, 10],
    ] {
        let mut state = None;
        let mut ys = Vec::new();
        let mut start = 0;
        for end in cuts.iter().copied().chain([seq]) {
            let (y, s) = layer.forward(x.clone().narrow(1, start, end - start), state);
            ys.push(y);
            state = Some(s);
            start = end;
        }
        let what = format!("forward split at {cuts:?}");
        assert_close(&what, Tensor::cat(ys, 1), y_whole.clone(), 1e-4, 1e-6);
        assert_states_close(&what, state.unwrap(), s_whole.clone());
    }
}

#[test]
fn mamba2_init_follows_mamba2() {
    let device = Default::default();
    let config = Mamba2Config::new(32).with_d_state(8).with_head_dim(8);
    let layer = config.init::<Cpu>(&device);
    assert_eq!((config.d_inner(), config.n_heads()), (64, 8));
    // Δ = softplus(dt_bias) lands in [dt_min, dt_max]; −A in [a_init_min, a_init_max]; D = 1.
    let dt: Vec<f32> = crate::tolerance::to_vec(softplus(layer.dt_bias.val()));
    assert!(
        dt.iter()
            .all(|&v| (0.001 * 0.999..=0.1 * 1.001).contains(&v)),
        "Δ at init: {dt:?}"
    );
    let neg_a: Vec<f32> = crate::tolerance::to_vec(layer.a().neg());
    assert!(
        neg_a.iter().all(|&v| (1.0..=16.0).contains(&v)),
        "−A at init: {neg_a:?}"
    );
    assert!(crate::tolerance::to_vec(layer.d.val())
        .iter()
        .all(|&v| v == 1.0));
    let (y, state) = layer.forward(Tensor::ones([1, 3, 32], &device), None);
    assert_eq!(y.dims(), [1, 3, 32]);
    assert_eq!(state.conv.dims(), [1, 64 + 16, 3]);
    assert_eq!(state.ssm.dims(), [1, 8, 8, 8]);
}

#[test]
fn softplus_is_stable_and_exact() {
    let device = Default::default();
    let x = Tensor::<Cpu, 1>::from_floats([-100.0, -3.0, 0.0, 2.0, 100.0], &device);
    let expected: Vec<f32> = [-100.0f64, -3.0, 0.0, 2.0, 100.0]
        .iter()
        .map(|&v| {
            if v > 30.0 {
                v as f32
            } else {
                v.exp().ln_1p() as f32
            }
        })
        .collect();
    crate::tolerance::assert_close_slices(
        "softplus",
        &crate::tolerance::to_vec(softplus(x)),
        &expected,
        1e-6,
        1e-30,
    );
}

fn gpu_reference_equals_chunked_and_forward_equals_step<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    check_reference_equals_chunked::<T::B>([1, 65, 4, 4, 2, 5], 16, true, 1.0, &device);
    check_forward_equals_step::<T::B>(5, &device);
}

kernels::gpu_tests!(gpu_reference_equals_chunked_and_forward_equals_step);
