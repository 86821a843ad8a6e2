//! Mamba-2's state-space dual (SSD) mixer (Dao & Gu 2024, "Transformers are SSMs", §§4–7;
//! SPEC §5.3): a per-step reference recurrence, the four-stage chunked form, and the `Mamba2`
//! layer built on it.
//!
//! The scan, per head with a scalar decay and B/C shared within groups of heads:
//! h_t = a_t h_{t−1} + Δ_t x_t B_tᵀ,  y_t = h_t C_t,  a_t = exp(Δ_t A).
//! The skip term D x_t is added by the layer.

mod autodiff;
pub mod backward;
pub mod chunked;
pub mod conv_op;
pub mod gated_norm_op;
pub mod layer;
pub mod reference;

pub use backward::{chunked_ssd_backward, SsdGrads};
pub use chunked::chunked_ssd;
pub use layer::{Mamba2, Mamba2Config, Mamba2State};
pub use reference::reference_ssd;

use burn::tensor::{backend::Backend, Tensor};

#[cfg(test)]
mod backward_tests;
#[cfg(test)]
pub(crate) mod tests;

/// The SSD scan as the layer runs it: the CubeCL kernel where it serves the call
/// (`kernels::ssd::serves`; under autodiff the kernel forward with the recomputing backward of
/// [`chunked_ssd_backward`], `autodiff.rs`), else [`chunked_ssd`] with `chunk_size`. Arguments
/// and shapes as for [`chunked_ssd`].
pub fn ssd_scan<B: Backend>(
    x: Tensor<B, 4>,
    dt: Tensor<B, 3>,
    a: Tensor<B, 1>,
    b: Tensor<B, 4>,
    c: Tensor<B, 4>,
    initial_state: Option<Tensor<B, 4>>,
    chunk_size: usize,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [_, _, _, _, _, d_state] = ssd_dims(&x, &dt, &a, &b, &c, initial_state.as_ref());
    let inputs = (&x, &dt, &a, &b, &c);
    if let Some(out) = autodiff::kernel_ssd(inputs, initial_state.as_ref(), chunk_size) {
        return out;
    }
    if kernels::ssd::serves(&x, d_state) {
        return kernels::ssd::chunked_ssd(x, dt, a, b, c, initial_state);
    }
    chunked_ssd(x, dt, a, b, c, initial_state, chunk_size)
}

/// One step of the recurrence, `h ← exp(Δ A) h + Δ x Bᵀ`, `y = h C`: the CubeCL step kernel
/// where it serves the call (`kernels::ssd::serves_step`: wgpu and cuda, not under autodiff),
/// else [`step_by_tensor_ops`].
///
/// # Shapes
/// - `x`: `[batch, heads, head_dim]`, `dt`: `[batch, heads]`, `a`: `[heads]`
/// - `b`, `c`: `[batch, groups, d_state]`, `state`: `[batch, heads, head_dim, d_state]`
/// - returns `y` `[batch, heads, head_dim]` and the new state
pub fn ssd_step<B: Backend>(
    x: Tensor<B, 3>,
    dt: Tensor<B, 2>,
    a: Tensor<B, 1>,
    b: Tensor<B, 3>,
    c: Tensor<B, 3>,
    state: Tensor<B, 4>,
) -> (Tensor<B, 3>, Tensor<B, 4>) {
    if kernels::ssd::serves_step(&x) {
        return kernels::ssd::ssd_step(x, dt, a, b, c, state);
    }
    step_by_tensor_ops(x, dt, a, b, c, state)
}

/// [`ssd_step`] by tensor ops on any backend (the step kernel's reference).
pub fn step_by_tensor_ops<B: Backend>(
    x: Tensor<B, 3>,
    dt: Tensor<B, 2>,
    a: Tensor<B, 1>,
    b: Tensor<B, 3>,
    c: Tensor<B, 3>,
    state: Tensor<B, 4>,
) -> (Tensor<B, 3>, Tensor<B, 4>) {
    let [batch, heads, head_dim] = x.dims();
    let [_, groups, d_state] = b.dims();
    let per_head = |t: Tensor<B, 3>| {
        expand_groups(t.reshape([batch, 1, groups, d_state]), heads)
            .reshape([batch, heads, 1, d_state])
    };
    let decay = (dt.clone() * a.unsqueeze_dim(0))
        .exp()
        .reshape([batch, heads, 1, 1]);
    let state = state * decay + (x * dt.reshape([batch, heads, 1])).unsqueeze_dim(3) * per_head(b);
    let y = (state.clone() * per_head(c))
        .sum_dim(3)
        .reshape([batch, heads, head_dim]);
    (y, state)
}

/// Check the shape contract shared by [`reference_ssd`] and [`chunked_ssd`] and return
/// `[batch, seq, heads, head_dim, groups, d_state]`.
pub(crate) fn ssd_dims<B: Backend>(
    x: &Tensor<B, 4>,
    dt: &Tensor<B, 3>,
    a: &Tensor<B, 1>,
    b: &Tensor<B, 4>,
    c: &Tensor<B, 4>,
    initial_state: Option<&Tensor<B, 4>>,
) -> [usize; 6] {
    let [batch, seq, heads, head_dim] = x.dims();
    let [_, _, groups, d_state] = b.dims();
    assert!(seq > 0, "SSD: the sequence must hold at least one step");
    assert_eq!(
        dt.dims(),
        [batch, seq, heads],
        "SSD: dt must be [batch, seq, heads]"
    );
    assert_eq!(a.dims(), [heads], "SSD: A must be [heads]");
    assert_eq!(
        b.dims(),
        [batch, seq, groups, d_state],
        "SSD: B must be [batch, seq, groups, d_state]"
    );
    assert_eq!(c.dims(), b.dims(), "SSD: C must have the shape of B");
    assert!(
        groups > 0 && heads % groups == 0,
        "SSD: heads ({heads}) must be a multiple of groups ({groups})"
    );
    if let Some(s) = initial_state {
        assert_eq!(
            s.dims(),
            [batch, heads, head_dim, d_state],
            "SSD: the initial state must be [batch, heads, head_dim, d_state]"
        );
    }
    [batch, seq, heads, head_dim, groups, d_state]
}

/// Share each group's B (or C) with its heads: `[batch, seq, groups, d_state]` →
/// `[batch, seq, heads, d_state]`, head `i` reading group `i / (heads / groups)` as in Mamba-2.
pub(crate) fn expand_groups<B: Backend>(t: Tensor<B, 4>, heads: usize) -> Tensor<B, 4> {
    let [batch, seq, groups, d_state] = t.dims();
    if groups == heads {
        return t;
    }
    t.unsqueeze_dim::<5>(3)
        .repeat_dim(3, heads / groups)
        .reshape([batch, seq, heads, d_state])
}
