//! The layer-op rows of `memworld bench kernels`: adaLN's layer norm + modulation and the MLP's
//! GELU over the world model's `[batch, frames, h, w, ·]` tokens, and Mamba-2's convolution +
//! SiLU and D skip + gated RMSNorm over its sequences, forward and backward, as training
//! records them ([`model::world::layer_ops`], [`model::mixers::ssd::conv_op`],
//! [`model::mixers::ssd::gated_norm_op`]: one operation each on the kernels) against burn's autodiff through their tensor ops. The output and every input
//! gradient are compared.

use burn::tensor::{activation, backend::Backend, Tensor};
use model::mixers::ssd::layer::{causal_conv, gated_norm};
use model::mixers::ssd::{conv_op, gated_norm_op};
use model::world::block::{layer_norm, modulate};
use model::world::layer_ops;

use super::bench_kernels::track;

/// `y`, `dx`, `dshift` and `dscale` of the norm + modulation for the output gradient `dy`,
/// flattened and concatenated: on the layer-op kernels when `kernels`, else by tensor ops.
pub fn norm_gradients<B: Backend>(
    kernels: bool,
    [x, dy]: [&Tensor<B, 5>; 2],
    [shift, scale]: [&Tensor<B, 3>; 2],
) -> Tensor<B, 1> {
    let (x, shift, scale) = (track(x), track(shift), track(scale));
    let y = match kernels {
        true => layer_ops::norm_modulate(x.clone(), shift.clone(), scale.clone()),
        false => modulate(layer_norm(x.clone()), shift.clone(), scale.clone()),
    };
    let grads = (y.clone() * Tensor::from_inner(dy.clone()))
        .sum()
        .backward();
    let missing = "norm input has a gradient";
    Tensor::cat(
        vec![
            y.inner().flatten(0, 4),
            x.grad(&grads).expect(missing).flatten(0, 4),
            shift.grad(&grads).expect(missing).flatten(0, 2),
            scale.grad(&grads).expect(missing).flatten(0, 2),
        ],
        0,
    )
}

/// `y` and `dx` of the GELU for the output gradient `dy`, flattened and concatenated: on the
/// layer-op kernels when `kernels`, else burn's (whose backward is the derivative of the tanh
/// approximation, ~1e-3 off the exact one).
pub fn gelu_gradients<B: Backend>(kernels: bool, [x, dy]: [&Tensor<B, 5>; 2]) -> Tensor<B, 1> {
    let x = track(x);
    let y = match kernels {
        true => layer_ops::gelu(x.clone()),
        false => activation::gelu(x.clone()),
    };
    let grads = (y.clone() * Tensor::from_inner(dy.clone()))
        .sum()
        .backward();
    let dx = x.grad(&grads).expect("GELU input has a gradient");
    Tensor::cat(vec![y.inner().flatten(0, 4), dx.flatten(0, 4)], 0)
}

/// `y`, `dxbc`, `dstate`, `dweight` and `dbias` of the convolution + SiLU for the output
/// gradient `dy`, flattened and concatenated: on the layer-op kernels when `kernels`, else by
/// the layer's tensor ops.
pub fn conv_gradients<B: Backend>(
    kernels: bool,
    [xbc, dy, state]: [&Tensor<B, 3>; 3],
    weight: &Tensor<B, 2>,
    bias: &Tensor<B, 1>,
) -> Tensor<B, 1> {
    let (xbc, state, weight, bias) = (track(xbc), track(state), track(weight), track(bias));
    let y = match kernels {
        true => conv_op::conv_silu(&xbc, &state, &weight, &bias)
            .expect("the conv kernels serve Autodiff over this backend"),
        false => {
            let pre = causal_conv(xbc.clone(), state.clone(), weight.clone(), bias.clone()).0;
            activation::silu(pre)
        }
    };
    let grads = (y.clone() * Tensor::from_inner(dy.clone()))
        .sum()
        .backward();
    let missing = "conv input has a gradient";
    Tensor::cat(
        vec![
            y.inner().flatten(0, 2),
            xbc.grad(&grads).expect(missing).flatten(0, 2),
            state.grad(&grads).expect(missing).flatten(0, 2),
            weight.grad(&grads).expect(missing).flatten(0, 1),
            bias.grad(&grads).expect(missing),
        ],
        0,
    )
}

/// The norm epsilon of the benchmarked gated RMSNorm (the layer's default).
const GATED_NORM_EPS: f64 = 1e-5;

/// `out` and the gradients of `y`, `x`, `z`, D and the weight of the D skip + gated RMSNorm
/// for the output gradient `dout`, flattened and concatenated: on the layer-op kernels when
/// `kernels`, else by the layer's tensor ops (one norm group).
pub fn gated_norm_gradients<B: Backend>(
    kernels: bool,
    [y, x]: [&Tensor<B, 4>; 2],
    [z, dout]: [&Tensor<B, 2>; 2],
    [d_skip, weight]: [&Tensor<B, 1>; 2],
) -> Tensor<B, 1> {
    let (y, x, z) = (track(y), track(x), track(z));
    let (d_skip, weight) = (track(d_skip), track(weight));
    let [batch, seq, heads, head_dim] = y.dims();
    let (rows, d) = (batch * seq, heads * head_dim);
    let out = match kernels {
        true => gated_norm_op::skip_gated_norm([&y, &x], &z, &d_skip, &weight, 1, GATED_NORM_EPS)
            .expect("the gated-norm kernels serve Autodiff over this backend"),
        false => {
            let s = y.clone() + x.clone() * d_skip.clone().reshape([1, 1, heads, 1]);
            let seqs = |t: Tensor<_, 4>| t.reshape([batch, seq, d]);
            let z = z.clone().reshape([batch, seq, d]);
            gated_norm(seqs(s), z, weight.clone(), 1, GATED_NORM_EPS).reshape([rows, d])
        }
    };
    let grads = (out.clone() * Tensor::from_inner(dout.clone()))
        .sum()
        .backward();
    let missing = "gated-norm input has a gradient";
    Tensor::cat(
        vec![
            out.inner().flatten(0, 1),
            y.grad(&grads).expect(missing).flatten(0, 3),
            x.grad(&grads).expect(missing).flatten(0, 3),
            z.grad(&grads).expect(missing).flatten(0, 1),
            d_skip.grad(&grads).expect(missing),
            weight.grad(&grads).expect(missing),
        ],
        0,
    )
}
