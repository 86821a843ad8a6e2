//! Frame-local attention on the host in f64 with an explicit softmax per query row, and its
//! gradients by the textbook formulas — the independent computations the kernel tests
//! compare against.

/// Calls `row(qi, keys, p, lse)` for every query row: `qi` the row's offset in `q`, `keys` the
/// offsets in `k`/`v` of the key rows it sees (frame-major), `p` its softmax weights over them,
/// `lse` the log-sum-exp of its scaled scores.
fn for_each_row(
    [seqs, query_frames, key_frames, tokens, head_dim]: [usize; 5],
    q: &[f32],
    k: &[f32],
    window: Option<usize>,
    mut row: impl FnMut(usize, &[usize], &[f64], f64),
) {
    let scale = 1.0 / (head_dim as f64).sqrt();
    for s in 0..seqs {
        for qf in 0..query_frames {
            let last = qf + key_frames - query_frames;
            let first = window.map_or(0, |w| (last + 1).saturating_sub(w));
            let keys: Vec<usize> = (first..=last)
                .flat_map(|kf| {
                    (0..tokens).map(move |u| ((s * key_frames + kf) * tokens + u) * head_dim)
                })
                .collect();
            for t in 0..tokens {
                let qi = ((s * query_frames + qf) * tokens + t) * head_dim;
                let scores: Vec<f64> = keys
                    .iter()
                    .map(|&ki| dot(q, qi, k, ki, head_dim) * scale)
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                let p: Vec<f64> = scores.iter().map(|s| (s - max).exp() / total).collect();
                row(qi, &keys, &p, max + total.ln());
            }
        }
    }
}

/// `Σ_e a[i + e] · b[j + e]` in f64.
fn dot(a: &[f32], i: usize, b: &[f32], j: usize, head_dim: usize) -> f64 {
    (0..head_dim)
        .map(|e| a[i + e] as f64 * b[j + e] as f64)
        .sum()
}

/// Attention over row-major host arrays with the shapes of
/// [`crate::attention::frame_attention`] after flattening batch and heads into `seqs`.
///
/// # Shapes
/// - `q`: `[seqs, query_frames, tokens, head_dim]`; `k`, `v`: `[seqs, key_frames, tokens,
///   head_dim]`; returns the shape of `q`
pub fn frame_attention_host(
    dims: [usize; 5],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    window: Option<usize>,
) -> Vec<f32> {
    let head_dim = dims[4];
    let mut out = vec![0.0f32; q.len()];
    for_each_row(dims, q, k, window, |qi, keys, p, _| {
        for e in 0..head_dim {
            let mixed: f64 = keys
                .iter()
                .zip(p)
                .map(|(&ki, w)| w * v[ki + e] as f64)
                .sum();
            out[qi + e] = mixed as f32;
        }
    });
    out
}

/// The log-sum-exp of each query row's scaled scores, `ln Σ_j exp(q·k_j/√d)` over the keys it
/// sees: what the forward kernel hands the backward.
///
/// # Shapes
/// - as [`frame_attention_host`]; returns `[seqs, query_frames, tokens]`
pub fn frame_attention_lse_host(
    dims: [usize; 5],
    q: &[f32],
    k: &[f32],
    window: Option<usize>,
) -> Vec<f32> {
    let mut lse = vec![0.0f32; q.len() / dims[4]];
    for_each_row(dims, q, k, window, |qi, _, _, row_lse| {
        lse[qi / dims[4]] = row_lse as f32;
    });
    lse
}

/// Gradients `[dq, dk, dv]` of [`frame_attention_host`] for the output gradient `dout`, from
/// the explicit softmax `P` of each row: `dV = Pᵀ dO`, `dS = P ∘ (dO Vᵀ − rowsum(P ∘ dO Vᵀ))`,
/// `dQ = dS K/√d`, `dK = dSᵀ Q/√d`.
///
/// # Shapes
/// - as [`frame_attention_host`]; `dout` like `q`; returns vectors shaped like `q`, `k`, `v`
pub fn frame_attention_backward_host(
    dims: [usize; 5],
    [q, k, v, dout]: [&[f32]; 4],
    window: Option<usize>,
) -> [Vec<f32>; 3] {
    let head_dim = dims[4];
    let scale = 1.0 / (head_dim as f64).sqrt();
    let mut dq = vec![0.0f64; q.len()];
    let mut dk = vec![0.0f64; k.len()];
    let mut dv = vec![0.0f64; v.len()];
    for_each_row(dims, q, k, window, |qi, keys, p, _| {
        let dp: Vec<f64> = keys
            .iter()
            .map(|&ki| dot(dout, qi, v, ki, head_dim))
            .collect();
        let mean: f64 = p.iter().zip(&dp).map(|(p, d)| p * d).sum();
        for (j, &ki) in keys.iter().enumerate() {
            let ds = p[j] * (dp[j] - mean);
            for e in 0..head_dim {
                dv[ki + e] += p[j] * dout[qi + e] as f64;
                dq[qi + e] += ds * k[ki + e] as f64 * scale;
                dk[ki + e] += ds * q[qi + e] as f64 * scale;
            }
        }
    });
    [dq, dk, dv].map(|g| g.into_iter().map(|x| x as f32).collect())
}
