//! Shared fixtures: small variants of every preset with every parameter randomised (a fresh
//! model's adaLN-Zero gates and head are zero, which would make every comparison trivial),
//! random frames and conditions.

use burn::backend::NdArray;
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use scenes::Rng;

use crate::world::config::WorldModelConfig;
use crate::world::diffusion::{add_noise, gaussian};
use crate::world::model::{FrameConditions, WorldModel};

pub type B = NdArray;

/// `preset`'s mixer layout at test size: `tiny_variant` on 16×16 frames (a 4×4 token grid).
pub fn test_config(preset: &str) -> WorldModelConfig {
    let mut c = WorldModelConfig::tiny_variant(preset).unwrap();
    c.resolution = 16;
    c.chunk_size = 8;
    c.validate().unwrap();
    c
}

struct Jitter {
    rng: Rng,
    std: f64,
}

impl<Bk: Backend> ModuleMapper<Bk> for Jitter {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<Bk, D>>) -> Param<Tensor<Bk, D>> {
        let (id, tensor, mapper) = param.consume();
        let noise =
            gaussian::<Bk, D>(tensor.dims(), &mut self.rng, &tensor.device()).mul_scalar(self.std);
        Param::from_mapped_value(id, tensor + noise, mapper)
    }
}

/// A model of `config` with N(0, 0.1²) added to every parameter.
pub fn randomized_model(config: &WorldModelConfig, seed: u64) -> WorldModel<B> {
    let model = config.init::<B>(&Default::default());
    model.map(&mut Jitter {
        rng: Rng::new(seed),
        std: 0.1,
    })
}

/// Clean-looking frames in [-1, 1].
pub fn random_frames(
    config: &WorldModelConfig,
    batch: usize,
    frames: usize,
    rng: &mut Rng,
) -> Tensor<B, 5> {
    let r = config.resolution;
    gaussian::<B, 5>(
        [batch, frames, r, r, config.channels],
        rng,
        &Default::default(),
    )
    .mul_scalar(0.5)
    .clamp(-1.0, 1.0)
}

/// Random actions and poses for whatever `config` is conditioned on.
pub fn random_conditions(
    config: &WorldModelConfig,
    batch: usize,
    frames: usize,
    rng: &mut Rng,
) -> FrameConditions<B> {
    let dev = Default::default();
    FrameConditions {
        actions: config.n_actions.map(|n| {
            let v: Vec<i64> = (0..batch * frames).map(|_| rng.below(n) as i64).collect();
            Tensor::<B, 2, Int>::from_data(TensorData::new(v, [batch, frames]), &dev)
        }),
        poses: config
            .pose_dim
            .map(|p| gaussian::<B, 3>([batch, frames, p], rng, &dev)),
    }
}

/// Noise levels in (0.05, 0.95), one per frame.
pub fn random_taus(batch: usize, frames: usize, rng: &mut Rng) -> Tensor<B, 2> {
    let v: Vec<f32> = (0..batch * frames)
        .map(|_| rng.range_f64(0.05, 0.95) as f32)
        .collect();
    Tensor::from_data(TensorData::new(v, [batch, frames]), &Default::default())
}

/// A noisy clip, each frame with its own τ, and random conditions: `(x_τ, τ, conditions)`.
pub fn noisy_clip(
    config: &WorldModelConfig,
    batch: usize,
    frames: usize,
    rng: &mut Rng,
) -> (Tensor<B, 5>, Tensor<B, 2>, FrameConditions<B>) {
    let x0 = random_frames(config, batch, frames, rng);
    let eps = gaussian::<B, 5>(x0.dims(), rng, &Default::default());
    let tau = random_taus(batch, frames, rng);
    let x_tau = add_noise(x0, eps, tau.clone());
    (x_tau, tau, random_conditions(config, batch, frames, rng))
}

/// Frames `start..start+len` of a `[batch, frames, ...]` tensor.
pub fn frames_of<const D: usize>(t: &Tensor<B, D>, start: usize, len: usize) -> Tensor<B, D> {
    t.clone().narrow(1, start, len)
}
