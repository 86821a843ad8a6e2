//! The SSD recurrence on the host in f64, step by step — the independent computation the
//! kernel tests compare against (`h_t = exp(Δ_t A) h_{t−1} + Δ_t x_t B_tᵀ`, `y_t = h_t C_t`),
//! and the scan over chunks element by element.

/// Sizes of an SSD problem.
#[derive(Clone, Copy, Debug)]
pub struct SsdDims {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub groups: usize,
    pub d_state: usize,
}

/// Run the recurrence over row-major host arrays with the shapes of
/// [`crate::ssd::chunked_ssd`]; returns `(y, final_state)`.
pub fn recurrent_ssd(
    d: SsdDims,
    x: &[f32],
    dt: &[f32],
    a: &[f32],
    b: &[f32],
    c: &[f32],
    initial_state: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let SsdDims {
        batch,
        seq,
        heads,
        head_dim,
        groups,
        d_state,
    } = d;
    let mut state: Vec<f64> = initial_state.iter().map(|&v| v as f64).collect();
    let mut y = vec![0.0f32; batch * seq * heads * head_dim];
    for bi in 0..batch {
        for t in 0..seq {
            for h in 0..heads {
                let g = h / (heads / groups);
                let dt_v = dt[(bi * seq + t) * heads + h] as f64;
                let decay = (dt_v * a[h] as f64).exp();
                let bc = ((bi * seq + t) * groups + g) * d_state;
                for p in 0..head_dim {
                    let xi = x[((bi * seq + t) * heads + h) * head_dim + p] as f64;
                    let s = &mut state[((bi * heads + h) * head_dim + p) * d_state..][..d_state];
                    let mut out = 0.0;
                    for n in 0..d_state {
                        s[n] = decay * s[n] + dt_v * xi * b[bc + n] as f64;
                        out += s[n] * c[bc + n] as f64;
                    }
                    y[((bi * seq + t) * heads + h) * head_dim + p] = out as f32;
                }
            }
        }
    }
    (y, state.into_iter().map(|v| v as f32).collect())
}

/// The chunk scan of [`crate::ssd::chunk_scan`] in f64 over row-major host arrays
/// (`log_decay` `[rows, chunks]`, `local` `[rows, chunks, width]`, `initial` `[rows, width]`);
/// returns `(states, last)`.
pub fn chunk_scan_host(
    log_decay: &[f32],
    local: &[f32],
    initial: &[f32],
    [rows, chunks, width]: [usize; 3],
    reverse: bool,
) -> (Vec<f32>, Vec<f32>) {
    let mut states = vec![0.0f32; rows * chunks * width];
    let mut last = vec![0.0f32; rows * width];
    for row in 0..rows {
        for e in 0..width {
            let mut s = initial[row * width + e] as f64;
            for step in 0..chunks {
                let k = if reverse { chunks - 1 - step } else { step };
                let at = (row * chunks + k) * width + e;
                states[at] = s as f32;
                s = (log_decay[row * chunks + k] as f64).exp() * s + local[at] as f64;
            }
            last[row * width + e] = s as f32;
        }
    }
    (states, last)
}
