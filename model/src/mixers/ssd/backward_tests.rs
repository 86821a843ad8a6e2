//! Checks of the SSD backward (STYLE.md item 2): the recomputing chunk backward equals burn's
//! autodiff through the per-step reference on every input gradient (ndarray, awkward lengths,
//! grouped B/C, strong decay), and the kernel operation (kernel forward + that backward) equals
//! autodiff through the chunk algorithm on wgpu and CUDA: outputs, final states, gradients.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use scenes::Rng;

use super::autodiff::kernel_ssd;
use super::tests::{ssd_inputs, uniform, SsdInputs};
use super::{chunked_ssd, chunked_ssd_backward, reference_ssd, SsdGrads};
use crate::tolerance::assert_close;
use kernels::testing::GpuTarget;

type Cpu = NdArray<f32>;

/// Weights `w_y`, `w_s` of the loss `Σ y∘w_y + Σ s∘w_s`, so `dy = w_y` and `d_final = w_s`.
fn loss_weights<B: Backend>(seed: u64, dims: [usize; 6], device: &B::Device) -> [Tensor<B, 4>; 2] {
    let [batch, seq, heads, head_dim, _, d_state] = dims;
    let mut rng = Rng::new(seed);
    [
        uniform(&mut rng, [batch, seq, heads, head_dim], -1.0, 1.0, device),
        uniform(
            &mut rng,
            [batch, heads, head_dim, d_state],
            -1.0,
            1.0,
            device,
        ),
    ]
}

type Scan<'a, B> = &'a dyn Fn(
    [Tensor<B, 4>; 3],
    Tensor<B, 3>,
    Tensor<B, 1>,
    Option<Tensor<B, 4>>,
) -> (Tensor<B, 4>, Tensor<B, 4>);

/// Outputs and input gradients of `scan` (taking `[x, b, c], dt, a, initial`) under autodiff,
/// for the loss of [`loss_weights`].
fn autodiff_run<B: AutodiffBackend>(
    i: &SsdInputs<B>,
    with_state: bool,
    [w_y, w_s]: &[Tensor<B, 4>; 2],
    scan: Scan<'_, B>,
) -> ([Tensor<B::InnerBackend, 4>; 2], SsdGrads<B::InnerBackend>) {
    let x = i.x.clone().require_grad();
    let dt = i.dt.clone().require_grad();
    let a = i.a.clone().require_grad();
    let b = i.b.clone().require_grad();
    let c = i.c.clone().require_grad();
    let h0 = i.h0.clone().require_grad();
    let (y, s) = scan(
        [x.clone(), b.clone(), c.clone()],
        dt.clone(),
        a.clone(),
        with_state.then(|| h0.clone()),
    );
    let loss = (y.clone() * w_y.clone()).sum() + (s.clone() * w_s.clone()).sum();
    let g = loss.backward();
    let grads = SsdGrads {
        x: x.grad(&g).expect("dx"),
        dt: dt.grad(&g).expect("ddt"),
        a: a.grad(&g).expect("dA"),
        b: b.grad(&g).expect("dB"),
        c: c.grad(&g).expect("dC"),
        initial_state: if with_state {
            h0.grad(&g).expect("dh0")
        } else {
            i.h0.clone().inner().zeros_like()
        },
    };
    ([y.inner(), s.inner()], grads)
}

fn assert_grads_close<B: Backend>(what: &str, g: SsdGrads<B>, r: SsdGrads<B>, with_state: bool) {
    let tol = (1e-4, 1e-6);
    assert_close(&format!("dx, {what}"), g.x, r.x, tol.0, tol.1);
    assert_close(&format!("dΔ, {what}"), g.dt, r.dt, tol.0, tol.1);
    assert_close(&format!("dA, {what}"), g.a, r.a, tol.0, tol.1);
    assert_close(&format!("dB, {what}"), g.b, r.b, tol.0, tol.1);
    assert_close(&format!("dC, {what}"), g.c, r.c, tol.0, tol.1);
    if with_state {
        assert_close(
            &format!("dh0, {what}"),
            g.initial_state,
            r.initial_state,
            tol.0,
            tol.1,
        );
    }
}

fn reference_scan<B: Backend>(
    [x, b, c]: [Tensor<B, 4>; 3],
    dt: Tensor<B, 3>,
    a: Tensor<B, 1>,
    h0: Option<Tensor<B, 4>>,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    reference_ssd(x, dt, a, b, c, h0)
}

#[test]
fn chunked_backward_equals_autodiff_through_the_reference() {
    type Ad = Autodiff<Cpu>;
    let device = Default::default();
    // [batch, seq, heads, head_dim, groups, d_state], chunk, −Δ·A bound
    for (k, (dims, chunk, max_log_decay)) in [
        ([1, 1, 2, 3, 1, 5], 64, 1.0),
        ([2, 37, 4, 3, 2, 5], 8, 1.0),
        ([1, 65, 3, 4, 3, 2], 16, 1.0),
        ([2, 64, 2, 5, 1, 4], 64, 1.0),
        ([1, 130, 2, 3, 1, 4], 7, 16.0),
        ([1, 100, 4, 2, 1, 3], 1, 2.0),
    ]
    .into_iter()
    .enumerate()
    {
        let i = ssd_inputs::<Ad>(70 + k as u64, dims, max_log_decay, &device);
        let w = loss_weights::<Ad>(80 + k as u64, dims, &device);
        let (_, expected) = autodiff_run(&i, true, &w, &reference_scan);
        let g = chunked_ssd_backward(
            i.x.inner(),
            i.dt.inner(),
            i.a.inner(),
            i.b.inner(),
            i.c.inner(),
            i.h0.inner(),
            w[0].clone().inner(),
            w[1].clone().inner(),
            chunk,
        );
        assert_grads_close(&format!("dims {dims:?} chunk {chunk}"), g, expected, true);
    }
}

fn kernel_operation_equals_autodiff_through_the_chunk_algorithm<T: GpuTarget>() {
    let Some(device) = T::device() else { return };
    type Ad<T> = Autodiff<<T as GpuTarget>::B>;
    for (k, (dims, chunk)) in [
        ([1, 1, 2, 3, 1, 5], 64),
        ([2, 65, 4, 8, 2, 16], 16),
        ([1, 500, 2, 4, 1, 3], 64),
        // The world model's heads: head_dim 64, d_state 64.
        ([1, 300, 2, 64, 1, 64], 64),
    ]
    .into_iter()
    .enumerate()
    {
        let i = ssd_inputs::<Ad<T>>(90 + k as u64, dims, 1.0, &device);
        let w = loss_weights::<Ad<T>>(95 + k as u64, dims, &device);
        for with_state in [false, true] {
            let chunked = |[x, b, c]: [Tensor<Ad<T>, 4>; 3], dt, a, h0| {
                chunked_ssd(x, dt, a, b, c, h0, chunk)
            };
            let kernel = |[x, b, c]: [Tensor<Ad<T>, 4>; 3], dt, a, h0: Option<Tensor<Ad<T>, 4>>| {
                kernel_ssd((&x, &dt, &a, &b, &c), h0.as_ref(), chunk)
                    .expect("the kernel operation serves autodiff over a kernel backend")
            };
            let ([y, s], g) = autodiff_run(&i, with_state, &w, &kernel);
            let ([y_ref, s_ref], expected) = autodiff_run(&i, with_state, &w, &chunked);
            let what = format!("dims {dims:?} chunk {chunk} initial state {with_state}");
            assert_close(&format!("y, {what}"), y, y_ref, 1e-4, 1e-6);
            assert_close(&format!("final state, {what}"), s, s_ref, 1e-4, 1e-6);
            assert_grads_close(&what, g, expected, with_state);
        }
    }
}

kernels::gpu_tests!(kernel_operation_equals_autodiff_through_the_chunk_algorithm);
