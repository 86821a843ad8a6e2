//! The linear-layer rows of `memworld bench kernels`: the world model's linear layers over its
//! `[batch, frames, h, w, d]` tokens, forward and backward, with the rows grouped as
//! `MEMWORLD_LINEAR_ROWS=grouped` or `flat` would ([`model::linear_rows`]) against burn's
//! batched products. The output and the input, weight and bias gradients are compared.

use burn::tensor::{backend::Backend, Distribution, Tensor};
use model::linear_rows::{grouped_product, RowGrouping};
use model::mixers::ssd::Mamba2Config;
use model::world::WorldModelConfig;

use super::bench_kernels::track;

/// `(name, d_in, d_out)` of each linear layer the preset applies to its tokens.
pub fn layers(cfg: &WorldModelConfig) -> Vec<(&'static str, usize, usize)> {
    let d = cfg.d_model;
    let mut out = Vec::new();
    if (0..cfg.n_layers).any(|l| cfg.block_size(l).is_some()) {
        let mamba = Mamba2Config::new(d)
            .with_d_state(cfg.d_state)
            .with_head_dim(cfg.ssm_head_dim)
            .with_expand(cfg.expand);
        out.push(("ssm in", d, mamba.d_in_proj()));
        out.push(("ssm out", mamba.d_inner(), d));
    }
    if cfg.attention_window().is_some() {
        out.push(("attention q/k/v/o", d, d));
    }
    out.push(("mlp in", d, cfg.mlp_ratio * d));
    out.push(("mlp out", cfg.mlp_ratio * d, d));
    out
}

/// The products of a linear layer `d_in → d_out` over `groups` groups (frames) of `rows` rows
/// (tokens) each, as `(name, lhs, rhs)`: the forward `x·W` and the input gradient `dy·Wᵀ`
/// with one product per frame (burn's autodiff for grouped rows) and with one product over
/// all rows; the weight gradient `xᵀ·dy` with one product per frame and per 8 frames (partial
/// sums, added afterwards). `W` is broadcast over the batch, the transposes are views, as in
/// burn.
pub fn products<B: Backend>(
    [groups, rows]: [usize; 2],
    [d_in, d_out]: [usize; 2],
    device: &B::Device,
) -> Vec<(&'static str, Tensor<B, 3>, Tensor<B, 3>)> {
    let uniform = |shape: [usize; 3], scale: f64| {
        Tensor::<B, 3>::random(shape, Distribution::Uniform(-scale, scale), device)
    };
    let x = uniform([groups, rows, d_in], 1.0);
    let dy = uniform([groups, rows, d_out], 1.0);
    let w = uniform([1, d_in, d_out], 0.1);
    let flat = |t: &Tensor<B, 3>| t.clone().reshape([1, groups * rows, 0]);
    let mut out = vec![
        ("forward", x.clone(), w.clone()),
        ("forward flat", flat(&x), w.clone()),
        ("input grad", dy.clone(), w.clone().swap_dims(1, 2)),
        ("input grad flat", flat(&dy), w.swap_dims(1, 2)),
        ("weight grad", x.clone().swap_dims(1, 2), dy.clone()),
    ];
    if groups % 8 == 0 {
        let eight = |t: Tensor<B, 3>| t.reshape([groups / 8, 8 * rows, 0]);
        out.push(("weight grad 8 frames", eight(x).swap_dims(1, 2), eight(dy)));
    }
    out
}

/// `y`, `dx`, `dw` and `db` of `x·w + b` with the rows grouped by `grouping`, for the output
/// gradient `dy`, flattened and concatenated.
pub fn gradients<B: Backend>(
    grouping: RowGrouping,
    [x, dy]: [&Tensor<B, 5>; 2],
    w: &Tensor<B, 2>,
    b: &Tensor<B, 1>,
) -> Tensor<B, 1> {
    let (x, w, b) = (track(x), track(w), track(b));
    let y = grouped_product(grouping, x.clone(), w.clone(), Some(b.clone()));
    let grads = (y.clone() * Tensor::from_inner(dy.clone()))
        .sum()
        .backward();
    let missing = "linear input has a gradient";
    Tensor::cat(
        vec![
            y.inner().flatten(0, 4),
            x.grad(&grads).expect(missing).flatten(0, 4),
            w.grad(&grads).expect(missing).flatten(0, 1),
            b.grad(&grads).expect(missing),
        ],
        0,
    )
}
