//! Independent f64 host loops for the fused kernels, written from the formulas (not from the
//! kernels or the model's tensor ops); the tests compare both against them.

use super::MambaDims;

fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

fn softplus(x: f64) -> f64 {
    (1.0 + x.exp()).ln()
}

/// Layer norm + modulation of `[rows, d]` with shift/scale rows per frame of `tokens` rows.
pub fn norm_modulate(
    x: &[f32],
    shift: &[f32],
    scale: &[f32],
    d: usize,
    tokens: usize,
    eps: f64,
) -> Vec<f32> {
    let mut y = Vec::with_capacity(x.len());
    for (r, row) in x.chunks(d).enumerate() {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let f = r / tokens;
        for (i, &v) in row.iter().enumerate() {
            let n = (v as f64 - mean) / (var + eps).sqrt();
            y.push((n * (1.0 + scale[f * d + i] as f64) + shift[f * d + i] as f64) as f32);
        }
    }
    y
}

/// `x + gate · y` of `[rows, d]`, gate rows per frame of `tokens` rows.
pub fn gated_residual(x: &[f32], gate: &[f32], y: &[f32], d: usize, tokens: usize) -> Vec<f32> {
    (0..x.len())
        .map(|i| {
            let g = gate[(i / d / tokens) * d + i % d] as f64;
            (x[i] as f64 + g * y[i] as f64) as f32
        })
        .collect()
}

/// The outputs of [`mamba_prologue`], flat in the kernels' layouts.
pub struct Prologue {
    pub x: Vec<f32>,
    pub b: Vec<f32>,
    pub c: Vec<f32>,
    pub dt: Vec<f32>,
    pub conv: Vec<f32>,
}

/// Convolution over [carried inputs, this call's xBC] for each of `batch` sequences of `seq`
/// tokens, token by token as a streaming convolution would run.
pub fn mamba_prologue(
    zxbcdt: &[f32],
    conv_state: &[f32],
    conv_weight: &[f32],
    conv_bias: &[f32],
    dt_bias: &[f32],
    batch: usize,
    seq: usize,
    dims: MambaDims,
) -> Prologue {
    let MambaDims {
        d_inner,
        heads,
        groups,
        d_state,
        d_conv,
        ..
    } = dims;
    let gs = groups * d_state;
    let conv_dim = dims.conv_dim();
    let width = d_inner + conv_dim + heads;
    let k = d_conv;
    let mut out = Prologue {
        x: vec![0.0; batch * seq * d_inner],
        b: vec![0.0; batch * seq * gs],
        c: vec![0.0; batch * seq * gs],
        dt: vec![0.0; batch * seq * heads],
        conv: vec![0.0; batch * conv_dim * (k - 1)],
    };
    for s in 0..batch {
        for ch in 0..conv_dim {
            // The window of the last k inputs, oldest first, starting from the carried ones.
            let mut window: Vec<f64> = (0..k - 1)
                .map(|i| conv_state[(s * conv_dim + ch) * (k - 1) + i] as f64)
                .collect();
            for t in 0..seq {
                let row = s * seq + t;
                window.push(zxbcdt[row * width + d_inner + ch] as f64);
                let acc = conv_bias[ch] as f64
                    + (0..k)
                        .map(|j| conv_weight[ch * k + j] as f64 * window[window.len() - k + j])
                        .sum::<f64>();
                let v = silu(acc) as f32;
                if ch < d_inner {
                    out.x[row * d_inner + ch] = v;
                } else if ch < d_inner + gs {
                    out.b[row * gs + ch - d_inner] = v;
                } else {
                    out.c[row * gs + ch - d_inner - gs] = v;
                }
            }
            for i in 0..k - 1 {
                out.conv[(s * conv_dim + ch) * (k - 1) + i] =
                    window[window.len() - (k - 1) + i] as f32;
            }
        }
        for t in 0..seq {
            let row = s * seq + t;
            for h in 0..heads {
                let raw = zxbcdt[row * width + d_inner + conv_dim + h] as f64 + dt_bias[h] as f64;
                out.dt[row * heads + h] = softplus(raw) as f32;
            }
        }
    }
    out
}

/// D skip and gated RMSNorm of `[rows, d_inner]`; z is the first `d_inner` of each
/// `width`-wide row of `zxbcdt`.
#[allow(clippy::too_many_arguments)]
pub fn mamba_epilogue(
    y: &[f32],
    x: &[f32],
    d_skip: &[f32],
    zxbcdt: &[f32],
    width: usize,
    norm_weight: &[f32],
    dims: MambaDims,
    eps: f64,
) -> Vec<f32> {
    let MambaDims {
        d_inner,
        head_dim,
        groups,
        ..
    } = dims;
    let gw = d_inner / groups;
    let rows = y.len() / d_inner;
    let mut out = vec![0.0; y.len()];
    for r in 0..rows {
        for g in 0..groups {
            let gated: Vec<f64> = (g * gw..(g + 1) * gw)
                .map(|ch| {
                    let i = r * d_inner + ch;
                    (y[i] as f64 + d_skip[ch / head_dim] as f64 * x[i] as f64)
                        * silu(zxbcdt[r * width + ch] as f64)
                })
                .collect();
            let rms = (gated.iter().map(|v| v * v).sum::<f64>() / gw as f64 + eps).sqrt();
            for (j, v) in gated.iter().enumerate() {
                let ch = g * gw + j;
                out[r * d_inner + ch] = (v / rms * norm_weight[ch] as f64) as f32;
            }
        }
    }
    out
}

/// Axial RoPE of `x` `[batch, frames, h·w, heads, head_dim]` for frames starting at
/// `first_frame`, angles from the formula per token (not from a table).
#[allow(clippy::too_many_arguments)]
pub fn rope(
    x: &[f32],
    frames: usize,
    [h, w]: [usize; 2],
    heads: usize,
    head_dim: usize,
    rows_cols_frames: [usize; 3],
    theta: f64,
    first_frame: usize,
) -> Vec<f32> {
    let half = head_dim / 2;
    let [rows, cols, _] = rows_cols_frames;
    let mut out = vec![0.0; x.len()];
    for (v, chunk) in x.chunks(head_dim).enumerate() {
        let token = (v / heads) % (h * w);
        let frame = first_frame + (v / heads / (h * w)) % frames;
        for j in 0..half {
            let (pos, i, m) = if j < rows {
                (token / w, j, rows)
            } else if j < rows + cols {
                (token % w, j - rows, cols)
            } else {
                (frame, j - rows - cols, half - rows - cols)
            };
            let angle = pos as f64 * theta.powf(-(i as f64) / m as f64);
            let (x1, x2) = (chunk[j] as f64, chunk[j + half] as f64);
            out[v * head_dim + j] = (x1 * angle.cos() - x2 * angle.sin()) as f32;
            out[v * head_dim + j + half] = (x1 * angle.sin() + x2 * angle.cos()) as f32;
        }
    }
    out
}

/// `gelu(y + bias)` of `[rows, width]` with the exact GELU, `v·Φ(v)`, where
/// `Φ(v) = erfc(−v/√2)/2` ([`erfc`]; Rust's std has no erf).
pub fn bias_gelu(y: &[f32], bias: &[f32]) -> Vec<f32> {
    let width = bias.len();
    y.iter()
        .enumerate()
        .map(|(i, &v)| {
            let v = v as f64 + bias[i % width] as f64;
            (v * 0.5 * erfc(-v / std::f64::consts::SQRT_2)) as f32
        })
        .collect()
}

/// The complementary error function to ~1e-7 relative (Numerical Recipes' `erfcc`,
/// Chebyshev fit), enough to check f32 kernels.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}
