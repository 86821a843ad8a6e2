//! Tokens and conditioning of the world model (SPEC §5.1–5.2): patchify / unpatchify, the
//! linear patch embedding with a learned 2-D position embedding, and the per-frame condition
//! c_t = MLP(sinusoidal(τ_t)) + Embed(action_t) [+ MLP(pose_t)] (DiT, Peebles & Xie 2023).

use burn::module::{Initializer, Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::config::WorldModelConfig;
use crate::precision::linear;

/// Cut frames into non-overlapping p×p patches, each flattened in (row, column, channel) order.
///
/// # Shapes
/// - frames: `[batch, frames, H, W, C]`
/// - output: `[batch, frames, H/p, W/p, p·p·C]`
pub fn patchify<B: Backend>(frames: Tensor<B, 5>, p: usize) -> Tensor<B, 5> {
    let [b, f, h, w, c] = frames.dims();
    assert!(
        h % p == 0 && w % p == 0,
        "patchify: frame {h}×{w} is not a multiple of the patch {p}"
    );
    let (gh, gw) = (h / p, w / p);
    // Batch and frames merged: some backends stop at 6 dimensions.
    frames
        .reshape([b * f, gh, p, gw, p, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, f, gh, gw, p * p * c])
}

/// Inverse of [`patchify`].
///
/// # Shapes
/// - tokens: `[batch, frames, gh, gw, p·p·C]`
/// - output: `[batch, frames, gh·p, gw·p, C]`
pub fn unpatchify<B: Backend>(tokens: Tensor<B, 5>, p: usize, channels: usize) -> Tensor<B, 5> {
    let [b, f, gh, gw, k] = tokens.dims();
    assert_eq!(
        k,
        p * p * channels,
        "unpatchify: token width {k} is not p·p·C = {}",
        p * p * channels
    );
    tokens
        .reshape([b * f, gh, gw, p, p, channels])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, f, gh * p, gw * p, channels])
}

/// Linear patch embedding plus a learned 2-D position embedding (one vector per grid cell).
#[derive(Module, Debug)]
pub struct PatchEmbed<B: Backend> {
    pub proj: Linear<B>,
    /// `[grid, grid, d_model]`
    pub pos: Param<Tensor<B, 3>>,
    pub patch: usize,
}

impl<B: Backend> PatchEmbed<B> {
    pub fn new(config: &WorldModelConfig, device: &B::Device) -> Self {
        let g = config.grid();
        Self {
            proj: LinearConfig::new(config.patch_dim(), config.d_model).init(device),
            pos: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([g, g, config.d_model], device),
            patch: config.patch,
        }
    }

    /// # Shapes
    /// - frames: `[batch, frames, H, W, C]`
    /// - output: `[batch, frames, grid, grid, d_model]`
    pub fn forward(&self, frames: Tensor<B, 5>) -> Tensor<B, 5> {
        let x = linear(&self.proj, patchify(frames, self.patch));
        x + self.pos.val().unsqueeze::<5>()
    }
}

/// Sinusoidal features of the noise level (DiT's timestep embedding on t = 1000·τ):
/// `[cos(t·ω_i), sin(t·ω_i)]` with ω_i = 10000^(−i/half).
///
/// # Shapes
/// - tau: `[batch, frames]`
/// - output: `[batch, frames, dim]`
pub fn sinusoidal<B: Backend>(tau: Tensor<B, 2>, dim: usize) -> Tensor<B, 3> {
    let [b, f] = tau.dims();
    let half = dim / 2;
    let omega: Vec<f32> = (0..half)
        .map(|i| (-(10000f64.ln()) * i as f64 / half as f64).exp() as f32)
        .collect();
    let omega = Tensor::<B, 1>::from_data(TensorData::new(omega, [half]), &tau.device());
    let args = tau.mul_scalar(1000.0).reshape([b, f, 1]) * omega.reshape([1, 1, half]);
    Tensor::cat(vec![args.clone().cos(), args.sin()], 2)
}

/// Per-frame condition c_t (SPEC §5.2).
#[derive(Module, Debug)]
pub struct Conditioning<B: Backend> {
    pub tau_in: Linear<B>,
    pub tau_out: Linear<B>,
    pub action: Option<Embedding<B>>,
    pub pose_in: Option<Linear<B>>,
    pub pose_out: Option<Linear<B>>,
    pub freq_dim: usize,
}

impl<B: Backend> Conditioning<B> {
    pub fn new(config: &WorldModelConfig, device: &B::Device) -> Self {
        let d = config.d_model;
        let small = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let linear = |i, o| {
            LinearConfig::new(i, o)
                .with_initializer(small.clone())
                .init(device)
        };
        Self {
            tau_in: linear(config.freq_dim, d),
            tau_out: linear(d, d),
            action: config.n_actions.map(|n| {
                EmbeddingConfig::new(n, d)
                    .with_initializer(small.clone())
                    .init(device)
            }),
            pose_in: config.pose_dim.map(|p| linear(p, d)),
            pose_out: config.pose_dim.map(|_| linear(d, d)),
            freq_dim: config.freq_dim,
        }
    }

    /// # Shapes
    /// - tau: `[batch, frames]`
    /// - actions: `[batch, frames]` (required when the model is action-conditioned)
    /// - poses: `[batch, frames, pose_dim]` (required when the model is pose-conditioned)
    /// - output: `[batch, frames, d_model]`
    pub fn forward(
        &self,
        tau: Tensor<B, 2>,
        actions: Option<&Tensor<B, 2, Int>>,
        poses: Option<&Tensor<B, 3>>,
    ) -> Tensor<B, 3> {
        let [b, f] = tau.dims();
        let mut c = self
            .tau_out
            .forward(silu(self.tau_in.forward(sinusoidal(tau, self.freq_dim))));
        if let Some(embed) = &self.action {
            let a = actions.expect(
                "this world model is action-conditioned: FrameConditions.actions is required",
            );
            assert_eq!(
                a.dims(),
                [b, f],
                "actions must be [batch, frames] = [{b}, {f}]"
            );
            c = c + embed.forward(a.clone());
        }
        if let (Some(pin), Some(pout)) = (&self.pose_in, &self.pose_out) {
            let p = poses
                .expect("this world model is pose-conditioned: FrameConditions.poses is required");
            let [pb, pf, _] = p.dims();
            assert_eq!(
                [pb, pf],
                [b, f],
                "poses must be [batch, frames, pose_dim] with [batch, frames] = [{b}, {f}]"
            );
            c = c + pout.forward(silu(pin.forward(p.clone())));
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::Distribution;

    type B = NdArray;

    #[test]
    fn patchify_matches_index_arithmetic_and_inverts() {
        let dev = Default::default();
        let (b, f, h, w, c, p) = (2, 3, 8, 12, 3, 4);
        let n = b * f * h * w * c;
        let x = Tensor::<B, 5>::from_data(
            TensorData::new(
                (0..n).map(|i| i as f32).collect::<Vec<_>>(),
                [b, f, h, w, c],
            ),
            &dev,
        );
        let t = patchify(x.clone(), p);
        assert_eq!(t.dims(), [b, f, h / p, w / p, p * p * c]);
        let tv = t.clone().into_data().to_vec::<f32>().unwrap();
        let xv = x.clone().into_data().to_vec::<f32>().unwrap();
        // token (bi, fi, gy, gx), value index (py, px, ci) is pixel (gy·p+py, gx·p+px, ci)
        let (gh, gw) = (h / p, w / p);
        for (bi, fi, gy, gx, py, px, ci) in [
            (1, 2, 1, 2, 3, 0, 2),
            (0, 1, 0, 1, 2, 3, 1),
            (1, 0, 1, 0, 0, 0, 0),
        ] {
            let ti = ((((bi * f + fi) * gh + gy) * gw + gx) * p * p) * c + (py * p + px) * c + ci;
            let xi = (((bi * f + fi) * h + gy * p + py) * w + gx * p + px) * c + ci;
            assert_eq!(tv[ti], xv[xi]);
        }
        let back = unpatchify(t, p, c);
        assert_eq!(back.into_data().to_vec::<f32>().unwrap(), xv);
    }

    #[test]
    fn sinusoidal_matches_scalar_formula() {
        let dev = Default::default();
        let tau =
            Tensor::<B, 2>::from_data(TensorData::new(vec![0.0f32, 0.25, 0.5, 1.0], [2, 2]), &dev);
        let e = sinusoidal(tau, 8).into_data().to_vec::<f32>().unwrap();
        for (k, t) in [0.0f64, 0.25, 0.5, 1.0].iter().enumerate() {
            for i in 0..4 {
                let w = (-(10000f64.ln()) * i as f64 / 4.0).exp();
                let a = 1000.0 * t * w;
                assert!((e[k * 8 + i] as f64 - a.cos()).abs() < 1e-3, "cos {k} {i}");
                assert!(
                    (e[k * 8 + 4 + i] as f64 - a.sin()).abs() < 1e-3,
                    "sin {k} {i}"
                );
            }
        }
    }

    #[test]
    fn conditioning_depends_on_each_frame_only() {
        let dev = Default::default();
        let cfg = WorldModelConfig::tiny();
        let cond = Conditioning::<B>::new(&cfg, &dev);
        let tau = Tensor::<B, 2>::from_data(TensorData::new(vec![0.1f32, 0.7, 0.3], [1, 3]), &dev);
        let act = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![0i64, 2, 5], [1, 3]), &dev);
        let pose = Tensor::<B, 3>::random([1, 3, 4], Distribution::Normal(0.0, 1.0), &dev);
        let c1 = cond.forward(tau.clone(), Some(&act), Some(&pose));
        let act2 = Tensor::<B, 2, Int>::from_data(TensorData::new(vec![0i64, 2, 1], [1, 3]), &dev);
        let c2 = cond.forward(tau, Some(&act2), Some(&pose));
        let d = (c1 - c2)
            .abs()
            .sum_dim(2)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(&d[..2], &[0.0, 0.0]);
        assert!(d[2] > 0.0);
    }
}
