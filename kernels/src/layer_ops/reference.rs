//! Host f64 forms of the layer ops ([`super`]), the kernels' reference in tests; the
//! gradients here are checked against finite differences of the forward forms (`tests.rs`).

/// Each row's mean and `1/√(var + eps)` (population variance) of `x` `[rows, d]`.
fn row_stats(x: &[f64], d: usize, eps: f64) -> Vec<(f64, f64)> {
    x.chunks(d)
        .map(|row| {
            let mean = row.iter().sum::<f64>() / d as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
            (mean, 1.0 / (var + eps).sqrt())
        })
        .collect()
}

fn wide(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

fn narrow(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

/// [`norm_modulate`] in f64: `y` only.
pub(crate) fn norm_modulate_f64(
    x: &[f64],
    shift: &[f64],
    scale: &[f64],
    d: usize,
    eps: f64,
) -> Vec<f64> {
    let per_group = x.len() / shift.len();
    let stats = row_stats(x, d, eps);
    (0..x.len())
        .map(|k| {
            let (r, i) = (k / d, k % d);
            let v = (r / per_group) * d + i;
            let (mean, rstd) = stats[r];
            (x[k] - mean) * rstd * (1.0 + scale[v]) + shift[v]
        })
        .collect()
}

/// `y = x̂ · (1 + scale[g]) + shift[g]` and the rows' `(mean, rstd)` flattened as `[rows, 2]`;
/// `x` is `[rows, d]`, `shift` and `scale` `[groups, d]`, row `r` in group
/// `r / (rows / groups)`.
pub fn norm_modulate(
    x: &[f32],
    shift: &[f32],
    scale: &[f32],
    d: usize,
    eps: f64,
) -> (Vec<f32>, Vec<f32>) {
    let x = wide(x);
    let y = norm_modulate_f64(&x, &wide(shift), &wide(scale), d, eps);
    let stats: Vec<f64> = row_stats(&x, d, eps)
        .iter()
        .flat_map(|&(m, s)| [m, s])
        .collect();
    (narrow(&y), narrow(&stats))
}

/// `[dx, dshift, dscale]` of [`norm_modulate`] for output gradient `dy`.
pub fn norm_modulate_backward(
    x: &[f32],
    scale: &[f32],
    dy: &[f32],
    d: usize,
    eps: f64,
) -> [Vec<f32>; 3] {
    let (x, scale, dy) = (wide(x), wide(scale), wide(dy));
    let per_group = x.len() / scale.len();
    let mut dx = vec![0.0; x.len()];
    let (mut dshift, mut dscale) = (vec![0.0; scale.len()], vec![0.0; scale.len()]);
    for (r, &(mean, rstd)) in row_stats(&x, d, eps).iter().enumerate() {
        let vectors = (r / per_group) * d;
        let x_hat = |i: usize| (x[r * d + i] - mean) * rstd;
        let g = |i: usize| dy[r * d + i] * (1.0 + scale[vectors + i]);
        let mean_g = (0..d).map(g).sum::<f64>() / d as f64;
        let mean_gx = (0..d).map(|i| g(i) * x_hat(i)).sum::<f64>() / d as f64;
        for i in 0..d {
            dx[r * d + i] = rstd * (g(i) - mean_g - x_hat(i) * mean_gx);
            dshift[vectors + i] += dy[r * d + i];
            dscale[vectors + i] += dy[r * d + i] * x_hat(i);
        }
    }
    [narrow(&dx), narrow(&dshift), narrow(&dscale)]
}

/// The error function to ~1e-15: its Maclaurin series below 3, else the continued fraction
/// of its complement.
pub(crate) fn erf(z: f64) -> f64 {
    let a = z.abs();
    let value = if a < 3.0 {
        // erf z = 2/√π · Σ (−1)ⁿ z^(2n+1) / (n! (2n+1))
        let (mut term, mut sum, mut n) = (a, a, 0.0);
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -a * a / n;
            sum += term / (2.0 * n + 1.0);
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    } else {
        // erfc z = e^(−z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + …))))
        let mut fraction = a;
        for k in (1..60).rev() {
            fraction = a + (k as f64 / 2.0) / fraction;
        }
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / fraction
    };
    value.copysign(z)
}

/// The exact GELU in f64, `v · Φ(v)`.
pub(crate) fn gelu_f64(v: f64) -> f64 {
    v * 0.5 * (1.0 + erf(v / std::f64::consts::SQRT_2))
}

/// The exact GELU, element-wise.
pub fn gelu(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| gelu_f64(v as f64) as f32).collect()
}

/// GELU's input gradient, `dy · (Φ(v) + v · φ(v))`.
pub fn gelu_backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    x.iter()
        .zip(dy)
        .map(|(&v, &g)| {
            let v = v as f64;
            let cdf = 0.5 * (1.0 + erf(v / std::f64::consts::SQRT_2));
            let density = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (g as f64 * (cdf + v * density)) as f32
        })
        .collect()
}

/// The sizes of a [`conv_silu`] problem: `x` `[batch, seq, channels]`, `state`
/// `[batch, channels, taps − 1]`, `weight` `[channels, taps]`.
#[derive(Clone, Copy, Debug)]
pub struct ConvDims {
    pub batch: usize,
    pub seq: usize,
    pub channels: usize,
    pub taps: usize,
}

impl ConvDims {
    /// Padded input position `pos` of channel `c` in sequence `b`: a carried input of `state`
    /// for `pos < taps − 1`, else token `pos − (taps − 1)` of `x`.
    fn padded(&self, x: &[f64], state: &[f64], b: usize, pos: usize, c: usize) -> f64 {
        let carried = self.taps - 1;
        match pos < carried {
            true => state[(b * self.channels + c) * carried + pos],
            false => x[(b * self.seq + pos - carried) * self.channels + c],
        }
    }
}

/// The convolution before SiLU, in f64, `[batch, seq, channels]`.
pub(crate) fn conv_pre_f64(
    x: &[f64],
    state: &[f64],
    weight: &[f64],
    bias: &[f64],
    dims: ConvDims,
) -> Vec<f64> {
    let ConvDims {
        seq,
        channels,
        taps,
        ..
    } = dims;
    (0..x.len())
        .map(|k| {
            let (b, t, c) = (k / channels / seq, k / channels % seq, k % channels);
            bias[c]
                + (0..taps)
                    .map(|j| weight[c * taps + j] * dims.padded(x, state, b, t + j, c))
                    .sum::<f64>()
        })
        .collect()
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// [`conv_silu`] in f64.
pub(crate) fn conv_silu_f64(
    x: &[f64],
    state: &[f64],
    weight: &[f64],
    bias: &[f64],
    dims: ConvDims,
) -> Vec<f64> {
    let pre = conv_pre_f64(x, state, weight, bias, dims);
    pre.iter().map(|&v| v * sigmoid(v)).collect()
}

/// Mamba-2's causal depthwise convolution + SiLU (see `super::conv_silu`).
pub fn conv_silu(
    x: &[f32],
    state: &[f32],
    weight: &[f32],
    bias: &[f32],
    dims: ConvDims,
) -> Vec<f32> {
    let y = conv_silu_f64(&wide(x), &wide(state), &wide(weight), &wide(bias), dims);
    narrow(&y)
}

/// `[dx, dstate, dweight, dbias]` of [`conv_silu`] for output gradient `dy`.
pub fn conv_silu_backward(
    [x, state, weight, bias]: [&[f32]; 4],
    dy: &[f32],
    dims: ConvDims,
) -> [Vec<f32>; 4] {
    let (x, state, weight, bias, dy) = (wide(x), wide(state), wide(weight), wide(bias), wide(dy));
    let ConvDims {
        seq,
        channels,
        taps,
        ..
    } = dims;
    let carried = taps - 1;
    let pre = conv_pre_f64(&x, &state, &weight, &bias, dims);
    let (mut dx, mut dstate) = (vec![0.0; x.len()], vec![0.0; state.len()]);
    let (mut dweight, mut dbias) = (vec![0.0; weight.len()], vec![0.0; bias.len()]);
    for (k, &v) in pre.iter().enumerate() {
        let (b, t, c) = (k / channels / seq, k / channels % seq, k % channels);
        let s = sigmoid(v);
        let g = dy[k] * (s + v * s * (1.0 - s));
        dbias[c] += g;
        for j in 0..taps {
            let pos = t + j;
            dweight[c * taps + j] += g * dims.padded(&x, &state, b, pos, c);
            let w = weight[c * taps + j];
            match pos < carried {
                true => dstate[(b * channels + c) * carried + pos] += w * g,
                false => dx[(b * seq + pos - carried) * channels + c] += w * g,
            }
        }
    }
    [
        narrow(&dx),
        narrow(&dstate),
        narrow(&dweight),
        narrow(&dbias),
    ]
}

/// The sizes of a [`gated_norm`] problem: row tensors `[rows, d]`, `groups` norm groups of
/// `d / groups` channels, heads of `head_dim` channels (D is `[d / head_dim]`).
#[derive(Clone, Copy, Debug)]
pub struct GatedNormDims {
    pub d: usize,
    pub groups: usize,
    pub head_dim: usize,
}

/// Mamba-2's D skip and gated RMSNorm in f64 (see `super::gated_norm`).
pub(crate) fn gated_norm_f64(
    [y, x, z]: [&[f64]; 3],
    d_skip: &[f64],
    weight: &[f64],
    dims: GatedNormDims,
    eps: f64,
) -> Vec<f64> {
    let GatedNormDims {
        d,
        groups,
        head_dim,
    } = dims;
    let width = d / groups;
    let g: Vec<f64> = (0..y.len())
        .map(|k| (y[k] + d_skip[k % d / head_dim] * x[k]) * z[k] * sigmoid(z[k]))
        .collect();
    g.chunks(width)
        .flat_map(|group| {
            let r = 1.0 / (group.iter().map(|v| v * v).sum::<f64>() / width as f64 + eps).sqrt();
            group.iter().map(move |v| v * r)
        })
        .enumerate()
        .map(|(k, v)| v * weight[k % d])
        .collect()
}

/// `s = y + D · x`, `out = RMSNorm_group(s · SiLU(z)) · w`, on `[rows, d]` rows.
pub fn gated_norm(
    [y, x, z]: [&[f32]; 3],
    d_skip: &[f32],
    weight: &[f32],
    dims: GatedNormDims,
    eps: f64,
) -> Vec<f32> {
    let rows = [wide(y), wide(x), wide(z)];
    let out = gated_norm_f64(
        [&rows[0], &rows[1], &rows[2]],
        &wide(d_skip),
        &wide(weight),
        dims,
        eps,
    );
    narrow(&out)
}

/// `[dy, dx, dz, dD, dweight]` of [`gated_norm`] for output gradient `dout`.
pub fn gated_norm_backward(
    [y, x, z]: [&[f32]; 3],
    d_skip: &[f32],
    weight: &[f32],
    dout: &[f32],
    dims: GatedNormDims,
    eps: f64,
) -> [Vec<f32>; 5] {
    let GatedNormDims {
        d,
        groups,
        head_dim,
    } = dims;
    let width = d / groups;
    let (y, x, z, d_skip, weight, dout) = (
        wide(y),
        wide(x),
        wide(z),
        wide(d_skip),
        wide(weight),
        wide(dout),
    );
    let n = y.len();
    let (mut dy, mut dx, mut dz) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let (mut dd, mut dweight) = (vec![0.0; d_skip.len()], vec![0.0; d]);
    for first in (0..n).step_by(width) {
        let ks = first..first + width;
        let s = |k: usize| y[k] + d_skip[k % d / head_dim] * x[k];
        let silu = |k: usize| z[k] * sigmoid(z[k]);
        let g = |k: usize| s(k) * silu(k);
        let r = 1.0 / (ks.clone().map(|k| g(k) * g(k)).sum::<f64>() / width as f64 + eps).sqrt();
        let dg_hat = |k: usize| dout[k] * weight[k % d];
        let mean_dot = ks.clone().map(|k| dg_hat(k) * g(k) * r).sum::<f64>() / width as f64;
        for k in ks {
            let (c, sg) = (k % d, sigmoid(z[k]));
            let dg = r * (dg_hat(k) - g(k) * r * mean_dot);
            dy[k] = dg * silu(k);
            dx[k] = dy[k] * d_skip[c / head_dim];
            dz[k] = dg * s(k) * sg * (1.0 + z[k] * (1.0 - sg));
            dd[c / head_dim] += dy[k] * x[k];
            dweight[c] += dout[k] * g(k) * r;
        }
    }
    [dy, dx, dz, dd, dweight].map(|v| narrow(&v))
}
