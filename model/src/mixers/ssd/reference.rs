//! The SSD reference: Mamba-2's selective-state-space recurrence evaluated one step at a time
//! (Dao & Gu 2024, eq. (2) with scalar A per head, §3.2). Slow and obviously correct; the
//! chunked form and the kernels are checked against it.

use burn::tensor::{backend::Backend, Tensor};

use super::{expand_groups, ssd_dims};

/// Per-step SSD recurrence
/// h_t = exp(Δ_t A) h_{t−1} + Δ_t x_t B_tᵀ,  y_t = h_t C_t  (the layer adds D x_t).
///
/// # Shapes
/// - `x`: `[batch, seq, heads, head_dim]`
/// - `dt`: `[batch, seq, heads]`, Δ after softplus
/// - `a`: `[heads]`, A < 0
/// - `b`, `c`: `[batch, seq, groups, d_state]`, heads divide evenly among groups
/// - `initial_state`: `[batch, heads, head_dim, d_state]` (zeros if `None`)
/// - returns `y`: `[batch, seq, heads, head_dim]` and the final state
///   `[batch, heads, head_dim, d_state]`
pub fn reference_ssd<B: Backend>(
    x: Tensor<B, 4>,
    dt: Tensor<B, 3>,
    a: Tensor<B, 1>,
    b: Tensor<B, 4>,
    c: Tensor<B, 4>,
    initial_state: Option<Tensor<B, 4>>,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [batch, seq, heads, head_dim, _groups, d_state] =
        ssd_dims(&x, &dt, &a, &b, &c, initial_state.as_ref());
    let device = x.device();
    let b = expand_groups(b, heads);
    let c = expand_groups(c, heads);
    let decay = (dt.clone() * a.reshape([1, 1, heads])).exp();

    let mut h =
        initial_state.unwrap_or_else(|| Tensor::zeros([batch, heads, head_dim, d_state], &device));
    let mut ys = Vec::with_capacity(seq);
    for t in 0..seq {
        let a_t = decay.clone().narrow(1, t, 1).reshape([batch, heads, 1, 1]);
        let dt_t = dt.clone().narrow(1, t, 1).reshape([batch, heads, 1, 1]);
        let x_t = x
            .clone()
            .narrow(1, t, 1)
            .reshape([batch, heads, head_dim, 1]);
        let b_t = b
            .clone()
            .narrow(1, t, 1)
            .reshape([batch, heads, 1, d_state]);
        let c_t = c
            .clone()
            .narrow(1, t, 1)
            .reshape([batch, heads, 1, d_state]);
        // h_t = a_t h_{t−1} + Δ_t x_t B_tᵀ (outer product by broadcasting)
        h = h * a_t + (x_t * dt_t) * b_t;
        // y_t = h_t C_t
        let y_t = (h.clone() * c_t).sum_dim(3);
        ys.push(y_t.reshape([batch, 1, heads, head_dim]));
    }
    (Tensor::cat(ys, 1), h)
}
