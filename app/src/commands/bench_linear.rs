//! The linear-layer rows of `memworld bench kernels`: the world model's linear layers over its
//! `[batch, frames, h, w, d]` tokens, forward and backward, with the rows grouped as
//! `MEMWORLD_LINEAR_ROWS=grouped` or `flat` would ([`model::linear_rows`]) against burn's
//! batched products. The output and the input, weight and bias gradients are compared.

use burn::tensor::{backend::Backend, Tensor};
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
