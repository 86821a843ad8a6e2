//! Frame-local attention on the host in f64 with an explicit softmax per query row, and its
//! gradients by the textbook formulas — the independent computations the kernel tests
//! compare against.

/// Attention over row-major host arrays with the shapes of
/// [`crate::attention::frame_attention`] after flattening batch and heads into `seqs`.
///
/// # Shapes
/// - `q`: `[seqs, query_frames, tokens, head_dim]`; `k`, `v`: `[seqs, key_frames, tokens,
///   head_dim]`; returns the shape of `q`
pub fn frame_attention_host(
    [seqs, query_frames, key_frames, tokens, head_dim]: [usize; 5],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    window: Option<usize>,
) -> Vec<f32> {
    let scale = 1.0 / (head_dim as f64).sqrt();
    let mut out = vec![0.0f32; seqs * query_frames * tokens * head_dim];
    for s in 0..seqs {
        for qf in 0..query_frames {
            let last = qf + key_frames - query_frames;
            let first = window.map_or(0, |w| (last + 1).saturating_sub(w));
            for t in 0..tokens {
                let qi = ((s * query_frames + qf) * tokens + t) * head_dim;
                let keys: Vec<usize> = (first..=last)
                    .flat_map(|kf| {
                        (0..tokens).map(move |u| ((s * key_frames + kf) * tokens + u) * head_dim)
                    })
                    .collect();
                let scores: Vec<f64> = keys
                    .iter()
                    .map(|&ki| {
                        (0..head_dim)
                            .map(|e| q[qi + e] as f64 * k[ki + e] as f64)
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                for e in 0..head_dim {
                    let mixed: f64 = keys
                        .iter()
                        .zip(&weights)
                        .map(|(&ki, w)| w * v[ki + e] as f64)
                        .sum();
                    out[qi + e] = (mixed / total) as f32;
                }
            }
        }
    }
    out
}

/// Gradients `[dq, dk, dv]` of [`frame_attention_host`] for the output gradient `dout`, from
/// the explicit softmax `P` of each row: `dV = Pᵀ dO`, `dS = P ∘ (dO Vᵀ − rowsum(P ∘ dO Vᵀ))`,
/// `dQ = dS K/√d`, `dK = dSᵀ Q/√d`.
///
/// # Shapes
/// - as [`frame_attention_host`]; `dout` like `q`; returns vectors shaped like `q`, `k`, `v`
pub fn frame_attention_backward_host(
    [seqs, query_frames, key_frames, tokens, head_dim]: [usize; 5],
    [q, k, v, dout]: [&[f32]; 4],
    window: Option<usize>,
) -> [Vec<f32>; 3] {
    let scale = 1.0 / (head_dim as f64).sqrt();
    let mut dq = vec![0.0f64; q.len()];
    let mut dk = vec![0.0f64; k.len()];
    let mut dv = vec![0.0f64; v.len()];
    let dot = |a: &[f32], i: usize, b: &[f32], j: usize| -> f64 {
        (0..head_dim)
            .map(|e| a[i + e] as f64 * b[j + e] as f64)
            .sum()
    };
    for s in 0..seqs {
        for qf in 0..query_frames {
            let last = qf + key_frames - query_frames;
            let first = window.map_or(0, |w| (last + 1).saturating_sub(w));
            for t in 0..tokens {
                let qi = ((s * query_frames + qf) * tokens + t) * head_dim;
                let keys: Vec<usize> = (first..=last)
                    .flat_map(|kf| {
                        (0..tokens).map(move |u| ((s * key_frames + kf) * tokens + u) * head_dim)
                    })
                    .collect();
                let scores: Vec<f64> = keys.iter().map(|&ki| dot(q, qi, k, ki) * scale).collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                let p: Vec<f64> = scores.iter().map(|s| (s - max).exp() / total).collect();
                let dp: Vec<f64> = keys.iter().map(|&ki| dot(dout, qi, v, ki)).collect();
                let mean: f64 = p.iter().zip(&dp).map(|(p, d)| p * d).sum();
                for (j, &ki) in keys.iter().enumerate() {
                    let ds = p[j] * (dp[j] - mean);
                    for e in 0..head_dim {
                        dv[ki + e] += p[j] * dout[qi + e] as f64;
                        dq[qi + e] += ds * k[ki + e] as f64 * scale;
                        dk[ki + e] += ds * q[qi + e] as f64 * scale;
                    }
                }
            }
        }
    }
    [dq, dk, dv].map(|g| g.into_iter().map(|x| x as f32).collect())
}
