//! Flow-matching diffusion of the world model (SPEC §5.4): x_τ = (1 − τ) x₀ + τ ε with
//! v-prediction (v = ε − x₀), per-frame independent noise levels (diffusion forcing, Chen et al.
//! 2024), the long-context clean-prefix scheme of Po et al. 2025 §4.2, the masked MSE loss, and
//! the Euler sampler on the full sequence (the reference the streaming session is tested
//! against).

use burn::config::Config;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use scenes::Rng;

use super::model::{FrameConditions, WorldModel};

/// How training draws each frame's noise level τ.
#[derive(Config, Debug, Copy, PartialEq)]
pub enum TauSampling {
    /// τ ~ U[0, 1).
    Uniform,
    /// τ = sigmoid(mean + std·n), n ~ N(0, 1) (SD3's logit-normal).
    LogitNormal { mean: f64, std: f64 },
}

impl TauSampling {
    /// One draw.
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        match *self {
            TauSampling::Uniform => rng.next_f64(),
            TauSampling::LogitNormal { mean, std } => {
                let z = mean + std * standard_normal(rng);
                1.0 / (1.0 + (-z).exp())
            }
        }
    }
}

/// One N(0, 1) draw (Box–Muller on two uniforms).
pub fn standard_normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.next_f64(); // (0, 1]: ln is finite
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A tensor of N(0, 1) values drawn on the host from `rng`, so that noise is identical on every
/// backend and independent of any backend-global random state.
pub fn gaussian<B: Backend, const D: usize>(
    shape: [usize; D],
    rng: &mut Rng,
    device: &B::Device,
) -> Tensor<B, D> {
    let v = gaussian_host(shape.iter().product(), rng);
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// `n` N(0, 1) values by Box–Muller, both outputs of each pair used (half the uniforms per
/// value).
pub fn gaussian_host(n: usize, rng: &mut Rng) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let u1 = 1.0 - rng.next_f64(); // (0, 1]: ln is finite
        let u2 = rng.next_f64();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
        v.push((r * c) as f32);
        if v.len() < n {
            v.push((r * s) as f32);
        }
    }
    v
}

/// Flow-matching interpolation x_τ = (1 − τ) x₀ + τ ε with one τ per frame.
///
/// # Shapes
/// - x0, eps: `[batch, frames, H, W, C]`; tau: `[batch, frames]`
pub fn add_noise<B: Backend>(
    x0: Tensor<B, 5>,
    eps: Tensor<B, 5>,
    tau: Tensor<B, 2>,
) -> Tensor<B, 5> {
    let [b, f] = tau.dims();
    let t = tau.reshape([b, f, 1, 1, 1]);
    x0 * t.clone().neg().add_scalar(1.0) + eps * t
}

/// Per-frame noise levels for one training batch, and the loss mask.
///
/// Diffusion forcing draws every frame's τ independently. With probability `prefix_prob` a
/// sequence instead keeps a random prefix longer than half the clip clean (τ = 0, no loss) and
/// draws τ for the remaining frames only (Po et al. 2025 §4.2); the prefix length L is uniform
/// in ⌊F/2⌋+1 ..= F−1, so at least one frame is noised. Clips of fewer than 3 frames have no
/// such prefix and always use plain diffusion forcing.
///
/// # Shapes
/// - returns (tau `[batch, frames]`, mask `[batch, frames]` with 1 where the loss applies)
pub fn sample_training_taus<B: Backend>(
    batch: usize,
    frames: usize,
    sampling: TauSampling,
    prefix_prob: f64,
    device: &B::Device,
    rng: &mut Rng,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let (taus, mask) = training_taus_host(batch, frames, sampling, prefix_prob, rng);
    (
        Tensor::from_data(TensorData::new(taus, [batch, frames]), device),
        Tensor::from_data(TensorData::new(mask, [batch, frames]), device),
    )
}

/// Host-side body of [`sample_training_taus`] (row-major `[batch, frames]`).
pub fn training_taus_host(
    batch: usize,
    frames: usize,
    sampling: TauSampling,
    prefix_prob: f64,
    rng: &mut Rng,
) -> (Vec<f32>, Vec<f32>) {
    let mut taus = Vec::with_capacity(batch * frames);
    let mut mask = Vec::with_capacity(batch * frames);
    let shortest = frames / 2 + 1;
    for _ in 0..batch {
        let prefix = if shortest < frames && rng.chance(prefix_prob) {
            shortest + rng.below(frames - shortest)
        } else {
            0
        };
        for t in 0..frames {
            if t < prefix {
                taus.push(0.0);
                mask.push(0.0);
            } else {
                taus.push(sampling.sample(rng) as f32);
                mask.push(1.0);
            }
        }
    }
    (taus, mask)
}

/// Masked flow-matching loss for given noise and noise levels: the mean over frames with
/// mask = 1 of the per-frame MSE between the predicted and the true velocity ε − x₀.
///
/// # Shapes
/// - x0, eps: `[batch, frames, H, W, C]`; tau, mask: `[batch, frames]`; returns `[1]`
pub fn flow_matching_loss_with<B: Backend>(
    model: &WorldModel<B>,
    x0: Tensor<B, 5>,
    eps: Tensor<B, 5>,
    tau: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    cond: &FrameConditions<B>,
) -> Tensor<B, 1> {
    let [b, f, h, w, c] = x0.dims();
    assert_eq!(mask.dims(), [b, f], "mask must be [batch, frames]");
    let x_tau = add_noise(x0.clone(), eps.clone(), tau.clone());
    let v = model.forward(x_tau, tau, cond);
    let per_frame = (v - (eps - x0))
        .powi_scalar(2)
        .reshape([b, f, h * w * c])
        .mean_dim(2)
        .reshape([b, f]);
    let frames_with_loss = mask.clone().sum().clamp_min(1.0);
    (per_frame * mask).sum() / frames_with_loss
}

/// The training loss of SPEC §5.4: τ per frame from `sampling` with the clean-prefix scheme
/// (probability `prefix_prob`), ε ~ N(0, 1) drawn from `rng`, MSE on v over noised frames only.
///
/// # Shapes
/// - x0: `[batch, frames, H, W, C]` clean frames in [-1, 1]; returns `[1]`
pub fn flow_matching_loss<B: Backend>(
    model: &WorldModel<B>,
    x0: Tensor<B, 5>,
    cond: &FrameConditions<B>,
    sampling: TauSampling,
    prefix_prob: f64,
    rng: &mut Rng,
) -> Tensor<B, 1> {
    let [b, f, h, w, c] = x0.dims();
    let device = x0.device();
    let (tau, mask) = sample_training_taus::<B>(b, f, sampling, prefix_prob, &device, rng);
    let eps = gaussian([b, f, h, w, c], rng, &device);
    flow_matching_loss_with(model, x0, eps, tau, mask, cond)
}

/// Noise levels of the Euler sampler: τ_i = 1 − i/steps, i = 0..=steps.
pub fn euler_taus(steps: usize) -> Vec<f32> {
    assert!(steps > 0, "the sampler needs at least one step");
    (0..=steps).map(|i| 1.0 - i as f32 / steps as f32).collect()
}

/// The starting noise of a generated frame for `seed` (shared by the reference sampler and the
/// streaming session, so both start from the same ε).
pub fn initial_noise<B: Backend>(shape: [usize; 5], seed: u64, device: &B::Device) -> Tensor<B, 5> {
    gaussian(shape, &mut Rng::new(seed), device)
}

/// The seed of the noise with which the frame generated from `seed` is committed to the
/// history at a history noise level above 0 (a stream apart from the frame's starting noise).
pub fn history_noise_seed(seed: u64) -> u64 {
    seed ^ 0x9E37_79B9_7F4A_7C15
}

/// One Euler step of dx/dτ = v from τ to τ_next (τ_next < τ moves toward the data).
pub fn euler_step<B: Backend>(
    x: Tensor<B, 5>,
    v: Tensor<B, 5>,
    tau: f32,
    tau_next: f32,
) -> Tensor<B, 5> {
    x + v.mul_scalar(tau_next - tau)
}

/// Sample the next frame on the full sequence: `steps` Euler steps from pure noise at τ = 1 to
/// τ = 0, each running the whole history (τ = 0) plus the current estimate; the result is
/// clamped to [-1, 1]. Reference path for the streaming session.
///
/// # Shapes
/// - history: `[batch, n, H, W, C]` clean frames (n may be 0)
/// - cond_all: conditions of `[batch, n + 1]` frames (the history, then the new frame)
/// - returns `[batch, 1, H, W, C]`
pub fn sample_next_full<B: Backend>(
    model: &WorldModel<B>,
    history: Tensor<B, 5>,
    cond_all: &FrameConditions<B>,
    steps: usize,
    seed: u64,
) -> Tensor<B, 5> {
    let [b, n, ..] = history.dims();
    let history_tau = vec![0.0; b * n];
    sample_next_full_after(model, history, &history_tau, cond_all, steps, seed)
}

/// [`sample_next_full`] after a history whose frames sit at the noise levels `history_tau`
/// (row-major `[batch, n]`; generated frames committed with history noise).
pub fn sample_next_full_after<B: Backend>(
    model: &WorldModel<B>,
    history: Tensor<B, 5>,
    history_tau: &[f32],
    cond_all: &FrameConditions<B>,
    steps: usize,
    seed: u64,
) -> Tensor<B, 5> {
    let [b, n, h, w, c] = history.dims();
    assert_eq!(
        history_tau.len(),
        b * n,
        "one noise level per history frame"
    );
    let device = history.device();
    let mut x = initial_noise::<B>([b, 1, h, w, c], seed, &device);
    let taus = euler_taus(steps);
    for i in 0..steps {
        let mut tau = Vec::with_capacity(b * (n + 1));
        for bi in 0..b {
            tau.extend_from_slice(&history_tau[bi * n..(bi + 1) * n]);
            tau.push(taus[i]);
        }
        let tau = Tensor::from_data(TensorData::new(tau, [b, n + 1]), &device);
        let input = if n == 0 {
            x.clone()
        } else {
            Tensor::cat(vec![history.clone(), x.clone()], 1)
        };
        let v = model.forward(input, tau, cond_all).narrow(1, n, 1);
        x = euler_step(x, v, taus[i], taus[i + 1]);
    }
    x.clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray;

    #[test]
    fn add_noise_interpolates_per_frame() {
        let dev = Default::default();
        let x0 = Tensor::<B, 5>::ones([1, 3, 2, 2, 1], &dev);
        let eps = Tensor::<B, 5>::ones([1, 3, 2, 2, 1], &dev).mul_scalar(-3.0);
        let tau = Tensor::<B, 2>::from_data(TensorData::new(vec![0.0f32, 0.5, 1.0], [1, 3]), &dev);
        let x = add_noise(x0, eps, tau).into_data().to_vec::<f32>().unwrap();
        for (k, want) in [1.0f32, -1.0, -3.0].iter().enumerate() {
            assert!(
                x[k * 4..k * 4 + 4].iter().all(|v| (v - want).abs() < 1e-6),
                "frame {k}"
            );
        }
    }

    #[test]
    fn clean_prefix_is_long_unnoised_and_masked() {
        let (frames, batch) = (10, 4000);
        let (taus, mask) =
            training_taus_host(batch, frames, TauSampling::Uniform, 0.5, &mut Rng::new(3));
        let mut with_prefix = 0;
        for s in 0..batch {
            let t = &taus[s * frames..(s + 1) * frames];
            let m = &mask[s * frames..(s + 1) * frames];
            let prefix = m.iter().take_while(|&&v| v == 0.0).count();
            // The mask is a prefix of zeros then ones, and τ = 0 exactly on the masked prefix.
            assert!(m[prefix..].iter().all(|&v| v == 1.0));
            assert!(t[..prefix].iter().all(|&v| v == 0.0));
            assert!(t[prefix..].iter().all(|&v| (0.0..1.0).contains(&v)));
            if prefix > 0 {
                assert!(prefix > frames / 2 && prefix < frames, "prefix {prefix}");
                with_prefix += 1;
            }
        }
        let p = with_prefix as f64 / batch as f64;
        assert!((p - 0.5).abs() < 0.04, "prefix probability {p}");
        // Without the scheme no frame is masked.
        let (_, mask) = training_taus_host(50, frames, TauSampling::Uniform, 0.0, &mut Rng::new(4));
        assert!(mask.iter().all(|&v| v == 1.0));
    }

    #[test]
    fn logit_normal_and_gaussian_have_the_right_moments() {
        let mut rng = Rng::new(9);
        let n = 20000;
        let s = TauSampling::LogitNormal {
            mean: 0.0,
            std: 1.0,
        };
        let draws: Vec<f64> = (0..n).map(|_| s.sample(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01 && draws.iter().all(|&t| t > 0.0 && t < 1.0));
        let below = draws
            .iter()
            .filter(|&&t| t < 1.0 / (1.0 + 1f64.exp()))
            .count() as f64
            / n as f64;
        assert!((below - 0.1587).abs() < 0.01, "P(z < -1) = {below}");

        let g = gaussian::<B, 1>([n], &mut rng, &Default::default())
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let m = g.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = g.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n as f64;
        assert!(
            m.abs() < 0.03 && (var - 1.0).abs() < 0.04,
            "mean {m} var {var}"
        );
    }

    #[test]
    fn euler_integrates_a_constant_velocity_exactly() {
        // With v = ε − x₀ constant, Euler from x_1 = ε lands on x₀ for any number of steps.
        let dev = Default::default();
        let eps = gaussian::<B, 5>([1, 1, 2, 2, 3], &mut Rng::new(1), &dev);
        let x0 = gaussian::<B, 5>([1, 1, 2, 2, 3], &mut Rng::new(2), &dev);
        let taus = euler_taus(7);
        let mut x = eps.clone();
        for i in 0..7 {
            x = euler_step(x, eps.clone() - x0.clone(), taus[i], taus[i + 1]);
        }
        crate::tolerance::assert_close("euler endpoint", x, x0, 1e-5, 1e-5);
    }
}
