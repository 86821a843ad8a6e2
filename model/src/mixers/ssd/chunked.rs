//! The SSD chunked ("state-space dual") algorithm of Mamba-2 (Dao & Gu 2024, §6, Listing 1):
//! split the sequence into chunks of `chunk_size` steps and compute
//! 1. intra-chunk outputs as a masked matmul (L ∘ C Bᵀ)(Δx), L the segment-sum decay mask;
//! 2. the state each chunk leaves behind from its own inputs;
//! 3. a scan over chunks passing states along (a short sequential loop, linear in chunks);
//! 4. the contribution of the state entering each chunk to that chunk's outputs.
//!
//! Work is linear in the sequence length (quadratic only within a chunk).

use burn::tensor::{backend::Backend, Bool, Tensor};

use super::{expand_groups, ssd_dims};

/// SSD by the four-stage chunk algorithm; equals [`super::reference_ssd`] for any
/// `chunk_size ≥ 1`, including lengths that are not a multiple of it.
///
/// # Shapes
/// - `x`: `[batch, seq, heads, head_dim]`
/// - `dt`: `[batch, seq, heads]`, Δ after softplus
/// - `a`: `[heads]`, A < 0
/// - `b`, `c`: `[batch, seq, groups, d_state]`, heads divide evenly among groups
/// - `initial_state`: `[batch, heads, head_dim, d_state]` (zeros if `None`)
/// - returns `y`: `[batch, seq, heads, head_dim]` and the final state
///   `[batch, heads, head_dim, d_state]`
pub fn chunked_ssd<B: Backend>(
    x: Tensor<B, 4>,
    dt: Tensor<B, 3>,
    a: Tensor<B, 1>,
    b: Tensor<B, 4>,
    c: Tensor<B, 4>,
    initial_state: Option<Tensor<B, 4>>,
    chunk_size: usize,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [batch, seq, heads, head_dim, groups, d_state] =
        ssd_dims(&x, &dt, &a, &b, &c, initial_state.as_ref());
    assert!(chunk_size > 0, "SSD: chunk_size must be at least 1");
    let device = x.device();
    let l = chunk_size;
    let n_chunks = seq.div_ceil(l);
    let padded = n_chunks * l;

    // Zero padding to whole chunks is exact: Δ = 0 there, so a_t = 1 and nothing is added, and
    // the final state is the one after step `seq`.
    let (x, dt, b, c) = if padded > seq {
        let pad = padded - seq;
        (
            Tensor::cat(
                vec![x, Tensor::zeros([batch, pad, heads, head_dim], &device)],
                1,
            ),
            Tensor::cat(vec![dt, Tensor::zeros([batch, pad, heads], &device)], 1),
            Tensor::cat(
                vec![b, Tensor::zeros([batch, pad, groups, d_state], &device)],
                1,
            ),
            Tensor::cat(
                vec![c, Tensor::zeros([batch, pad, groups, d_state], &device)],
                1,
            ),
        )
    } else {
        (x, dt, b, c)
    };

    // [batch, padded, heads, k] → [batch, heads, n_chunks, l, k]
    let to_chunks = |t: Tensor<B, 4>| {
        let [_, _, _, k] = t.dims();
        t.reshape([batch, n_chunks, l, heads, k])
            .permute([0, 3, 1, 2, 4])
    };
    let x = to_chunks(x);
    let b = to_chunks(expand_groups(b, heads));
    let c = to_chunks(expand_groups(c, heads));
    let dt = dt
        .reshape([batch, n_chunks, l, heads])
        .permute([0, 3, 1, 2]);

    // log a_t = Δ_t A and its within-chunk prefix sums: [batch, heads, n_chunks, l]
    let log_a = dt.clone() * a.reshape([1, heads, 1, 1]);
    let log_a_cumsum = log_a.clone().cumsum(3);
    let x_dt = x * dt.unsqueeze_dim(4);

    // 1. Intra-chunk: Y_diag = (L ∘ C Bᵀ) (Δx), L[i, j] = exp(Σ_{j<k≤i} log a_k) for j ≤ i.
    let decay_mask = segsum(log_a).exp();
    let scores = c.clone().matmul(b.clone().swap_dims(3, 4)) * decay_mask;
    let y_diag = scores.matmul(x_dt.clone());

    // 2. State each chunk leaves from its own inputs: Σ_s exp(Σ_{s<k≤l} log a_k) Δ_s x_s B_sᵀ.
    let log_a_total = log_a_cumsum.clone().narrow(3, l - 1, 1);
    let decay_to_end = (log_a_total.clone() - log_a_cumsum.clone()).exp();
    let chunk_states = (x_dt * decay_to_end.unsqueeze_dim(4))
        .swap_dims(3, 4)
        .matmul(b); // [batch, heads, n_chunks, head_dim, d_state]

    // 3. Scan over chunks: s_{k+1} = exp(Σ_chunk k log a) s_k + chunk_states_k.
    let chunk_decay = log_a_total.exp(); // [batch, heads, n_chunks, 1]
    let mut state =
        initial_state.unwrap_or_else(|| Tensor::zeros([batch, heads, head_dim, d_state], &device));
    let mut entering = Vec::with_capacity(n_chunks);
    let decays = chunk_decay.split(1, 2);
    let states = chunk_states.split(1, 2);
    for (decay_k, states_k) in decays.into_iter().zip(states) {
        entering.push(state.clone());
        state = state * decay_k.reshape([batch, heads, 1, 1])
            + states_k.reshape([batch, heads, head_dim, d_state]);
    }
    let entering = Tensor::stack::<5>(entering, 2); // [batch, heads, n_chunks, head_dim, d_state]

    // 4. State → output: Y_off[i] = exp(Σ_{k≤i} log a_k) C_i s_entering.
    let y_off = c.matmul(entering.swap_dims(3, 4)) * log_a_cumsum.exp().unsqueeze_dim(4);

    let y = (y_diag + y_off)
        .permute([0, 2, 3, 1, 4])
        .reshape([batch, padded, heads, head_dim])
        .narrow(1, 0, seq);
    (y, state)
}

/// Stable segment sums within each chunk: `out[.., i, j] = Σ_{j<k≤i} x[.., k]` for j ≤ i and
/// −∞ above the diagonal, so `exp` gives the decay mask L with exact zeros. The sums are taken
/// directly (a masked cumulative sum) rather than as differences of prefix sums, which would
/// cancel catastrophically when the prefix sums are large.
///
/// # Shapes
/// - `x`: `[batch, heads, n_chunks, l]` → `[batch, heads, n_chunks, l, l]`
fn segsum<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 5> {
    let [batch, heads, n_chunks, l] = x.dims();
    let device = x.device();
    let shape = [batch, heads, n_chunks, l, l];
    // rows i, columns j: keep x[i] where j < i (tril_mask marks what lies outside the triangle)
    let outside_strict_lower = Tensor::<B, 2, Bool>::tril_mask([l, l], -1, &device)
        .reshape([1, 1, 1, l, l])
        .expand(shape);
    let outside_lower = Tensor::<B, 2, Bool>::tril_mask([l, l], 0, &device)
        .reshape([1, 1, 1, l, l])
        .expand(shape);
    x.unsqueeze_dim::<5>(4)
        .expand(shape)
        .mask_fill(outside_strict_lower, 0.0)
        .cumsum(3)
        .mask_fill(outside_lower, f32::NEG_INFINITY)
}
