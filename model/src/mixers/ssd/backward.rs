//! The gradients of the SSD scan by the chunk algorithm (Dao & Gu 2024, §6), recomputing what
//! the forward did not keep: given the inputs, the output gradient `dy` and the final state's
//! gradient, every input gradient in one pass of batched matmuls within chunks plus two scans
//! over chunks — forward for the state entering each chunk, in reverse for the gradient each
//! chunk's final state receives from the chunks after it. Only `chunk × chunk` tiles per chunk
//! exist; no `seq × seq` mask, and nothing of the forward is stored.
//!
//! Per head and chunk, with `u = Δ x`, `cs` the within-chunk prefix sums of `log a = Δ A`,
//! `E[i, j] = exp(cs_i − cs_j)` (j ≤ i), `G = E ∘ C Bᵀ`, `S` the entering state (`head_dim ×
//! d_state`) and `D` the gradient of the chunk's final state from later chunks:
//! - `y = G u + diag(e^{cs}) C Sᵀ`, final `= e^{cs_L} S + uᵀ diag(e^{cs_L − cs}) B`;
//! - `du = Gᵀ dy + diag(e^{cs_L − cs}) B Dᵀ`, `dS = e^{cs_L} D + dyᵀ diag(e^{cs}) C`;
//! - with `M = dy uᵀ`: `dC = (M ∘ E) B + diag(e^{cs}) dy S`,
//!   `dB = (M ∘ E)ᵀ C + diag(e^{cs_L − cs}) u D`;
//! - `d cs` collects every exponent's gradient, and `d log a_k = Σ_{i ≥ k} d cs_i`.
//!
//! The scans run on the chunk-scan kernel (`kernels::ssd::chunk_scan`) where the backend has
//! the kernels, else as a loop of tensor ops.

use burn::tensor::{backend::Backend, Tensor};
use kernels::{kernels_serve, KernelKind};

use super::chunked::{dt_to_chunks, from_chunks, segsum, to_chunks};
use super::ssd_dims;

/// Gradients of the SSD scan's inputs, shaped as the inputs.
#[derive(Debug)]
pub struct SsdGrads<B: Backend> {
    pub x: Tensor<B, 4>,
    pub dt: Tensor<B, 3>,
    pub a: Tensor<B, 1>,
    pub b: Tensor<B, 4>,
    pub c: Tensor<B, 4>,
    pub initial_state: Tensor<B, 4>,
}

/// The input gradients of [`super::chunked_ssd`] (with an explicit initial state) given the
/// gradients of its outputs, by chunks of `chunk_size` steps (any size gives the same
/// gradients).
///
/// # Shapes
/// - inputs as for [`super::chunked_ssd`]; `dy` as `y`, `d_final` as the final state
#[allow(clippy::too_many_arguments)]
pub fn chunked_ssd_backward<B: Backend>(
    x: Tensor<B, 4>,
    dt: Tensor<B, 3>,
    a: Tensor<B, 1>,
    b: Tensor<B, 4>,
    c: Tensor<B, 4>,
    initial_state: Tensor<B, 4>,
    dy: Tensor<B, 4>,
    d_final: Tensor<B, 4>,
    chunk_size: usize,
) -> SsdGrads<B> {
    let [batch, seq, heads, head_dim, groups, d_state] =
        ssd_dims(&x, &dt, &a, &b, &c, Some(&initial_state));
    assert_eq!(
        dy.dims(),
        x.dims(),
        "SSD backward: dy must have the shape of x"
    );
    assert_eq!(
        d_final.dims(),
        initial_state.dims(),
        "SSD backward: the final state's gradient must have the state's shape"
    );
    assert!(chunk_size > 0, "SSD: chunk_size must be at least 1");
    let l = chunk_size.min(seq);
    let r = heads / groups;

    // Everything per head and chunk: [batch, heads, n_chunks, l, k].
    let x = to_chunks(x, l);
    let dy = to_chunks(dy, l);
    let dt = dt_to_chunks(dt, l);
    let n_chunks = dt.dims()[2];
    let per_head = |t: Tensor<B, 4>| {
        let t = to_chunks(t, l);
        if r == 1 {
            return t;
        }
        t.unsqueeze_dim::<6>(2)
            .repeat_dim(2, r)
            .reshape([batch, heads, n_chunks, l, d_state])
    };
    let (b, c) = (per_head(b), per_head(c));

    let a4 = a.reshape([1, heads, 1, 1]);
    let cs = (dt.clone() * a4.clone()).cumsum(3);
    let cs_last = cs.clone().narrow(3, l - 1, 1);
    let to_end = (cs_last.clone() - cs.clone()).exp().unsqueeze_dim::<5>(4);
    let from_start = cs.clone().exp().unsqueeze_dim::<5>(4);
    let u = x.clone() * dt.clone().unsqueeze_dim(4);
    let decay = segsum(cs).exp();
    let scores = decay.clone() * c.clone().matmul(b.clone().swap_dims(3, 4));

    // The state entering each chunk, and the gradient each chunk's final state gets from the
    // chunks after it: [batch, heads, n_chunks, head_dim, d_state].
    let rows = batch * heads;
    let width = head_dim * d_state;
    let scan = |local: Tensor<B, 5>, initial: Tensor<B, 4>, reverse: bool| {
        let (states, last) = state_scan(
            cs_last.clone().reshape([rows, n_chunks]),
            local.reshape([rows, n_chunks, width]),
            initial.reshape([rows, width]),
            reverse,
        );
        (
            states.reshape([batch, heads, n_chunks, head_dim, d_state]),
            last.reshape([batch, heads, head_dim, d_state]),
        )
    };
    let made = (u.clone() * to_end.clone())
        .swap_dims(3, 4)
        .matmul(b.clone());
    let (entering, _) = scan(made, initial_state, false);
    let from_outputs = (dy.clone() * from_start.clone())
        .swap_dims(3, 4)
        .matmul(c.clone());
    let (leaving, d_initial) = scan(from_outputs, d_final, true);

    let du = scores.clone().swap_dims(3, 4).matmul(dy.clone())
        + b.clone().matmul(leaving.clone().swap_dims(3, 4)) * to_end.clone();
    let m = dy.clone().matmul(u.clone().swap_dims(3, 4));
    let d_cb = m.clone() * decay;
    let dc =
        d_cb.clone().matmul(b.clone()) + dy.clone().matmul(entering.clone()) * from_start.clone();
    let u_leaving = u.matmul(leaving.clone());
    let db = d_cb.swap_dims(3, 4).matmul(c.clone()) + u_leaving.clone() * to_end.clone();

    // Gradients of the exponents cs_i: of the intra-chunk decays (row minus column sums), of
    // the entering state's decay into each output, and of the decays into the final state.
    let w = m * scores;
    let squeeze = |t: Tensor<B, 5>| t.reshape([batch, heads, n_chunks, l]);
    let y_off = c.matmul(entering.clone().swap_dims(3, 4)) * from_start;
    let into_final = squeeze((u_leaving * b).sum_dim(4) * to_end);
    let d_cs = squeeze(w.clone().sum_dim(4)) - squeeze(w.sum_dim(3))
        + squeeze((dy * y_off).sum_dim(4))
        - into_final.clone();
    // cs_L enters every log a_k of the chunk, so its gradient adds to each suffix sum.
    let d_cs_last = into_final.sum_dim(3)
        + cs_last.exp()
            * (entering * leaving)
                .sum_dim(4)
                .sum_dim(3)
                .reshape([batch, heads, n_chunks, 1]);
    let d_log_a = d_cs.clone().sum_dim(3) - d_cs.clone().cumsum(3) + d_cs + d_cs_last;

    let dx = du.clone() * dt.clone().unsqueeze_dim(4);
    let d_dt = squeeze((x * du).sum_dim(4)) + d_log_a.clone() * a4;
    let da = (dt.clone() * d_log_a)
        .sum_dim(3)
        .sum_dim(2)
        .sum_dim(0)
        .reshape([heads]);
    let per_group = |t: Tensor<B, 5>| {
        let t = if r == 1 {
            t
        } else {
            t.reshape([batch, groups, r, n_chunks, l, d_state])
                .sum_dim(2)
                .reshape([batch, groups, n_chunks, l, d_state])
        };
        from_chunks(t, seq)
    };
    let d_dt = from_chunks(d_dt.unsqueeze_dim(4), seq).reshape([batch, seq, heads]);
    SsdGrads {
        x: from_chunks(dx, seq),
        dt: d_dt,
        a: da,
        b: per_group(db),
        c: per_group(dc),
        initial_state: d_initial,
    }
}

/// Per row, `states[k] = s; s ← exp(log_decay[k]) s + local[k]` over the chunks (descending
/// when `reverse`), `s` starting at `initial`; returns `states` and the last `s`. On the
/// kernel where the backend has it, else by tensor ops (the kernel's reference).
///
/// # Shapes
/// - `log_decay`: `[rows, chunks]`, `local`: `[rows, chunks, width]`, `initial`: `[rows, width]`
pub fn state_scan<B: Backend>(
    log_decay: Tensor<B, 2>,
    local: Tensor<B, 3>,
    initial: Tensor<B, 2>,
    reverse: bool,
) -> (Tensor<B, 3>, Tensor<B, 2>) {
    if kernels_serve::<B>(KernelKind::Ssd, local.dtype()) {
        return kernels::ssd::chunk_scan(log_decay, local, initial, reverse);
    }
    let [rows, chunks, width] = local.dims();
    let decays = log_decay.exp().split(1, 1);
    let locals = local.split(1, 1);
    let mut states = vec![None; chunks];
    let mut s = initial;
    let order: Vec<usize> = if reverse {
        (0..chunks).rev().collect()
    } else {
        (0..chunks).collect()
    };
    for k in order {
        states[k] = Some(s.clone());
        s = s * decays[k].clone() + locals[k].clone().reshape([rows, width]);
    }
    let states = states.into_iter().map(|s| s.expect("every chunk visited"));
    (Tensor::stack(states.collect(), 1), s)
}
