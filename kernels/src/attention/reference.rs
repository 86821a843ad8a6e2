//! Frame-local attention on the host in f64 with an explicit softmax per query row — the
//! independent computation the kernel tests compare against.

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
