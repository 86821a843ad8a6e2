//! Streaming inference (SPEC §5.5): a session holds, per layer, the block-wise SSM state of
//! every spatial block and the attention's key/value cache (a ring of the last k − 1 frames with
//! a window of k). Prefilling runs the chunked forward once over the context; each new frame
//! then takes S Euler denoising passes over that frame's tokens only, which read the state and
//! cache without changing them, and one pass at τ = 0 that commits the clean frame. With
//! windowed attention, memory and time per frame do not grow with the rollout.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::diffusion::{add_noise, euler_step, euler_taus, history_noise_seed, initial_noise};
use super::model::{FrameConditions, LayerConditions, WorldModel};
use super::packed::PackedAda;
use crate::mixers::attention::KvCache;
use crate::mixers::ssd::Mamba2State;

/// A world model plus the memory of the frames it has been shown or has generated.
pub struct WorldSession<B: Backend> {
    model: WorldModel<B>,
    device: B::Device,
    /// Per layer: the SSM state after the last committed frame (`None` = zeros / no SSM).
    states: Vec<Option<Mamba2State<B>>>,
    /// Per layer: the attention's cache (`None` without attention).
    caches: Vec<Option<KvCache<B>>>,
    frames: usize,
    steps: usize,
    /// Noise level at which generated frames are committed (`WorldModelConfig::history_noise`).
    history_noise: f32,
    /// The adaLN weights of every layer side by side, where the fused kernels serve.
    packed_ada: Option<PackedAda<B>>,
}

impl<B: Backend> WorldSession<B> {
    /// An empty session; it samples with the config's `sampling_steps`.
    pub fn new(model: WorldModel<B>, device: B::Device) -> Self {
        let steps = model.config().sampling_steps;
        let history_noise = model.config().history_noise_level() as f32;
        let packed_ada = PackedAda::new(&model);
        let mut s = Self {
            model,
            device,
            states: Vec::new(),
            caches: Vec::new(),
            frames: 0,
            steps,
            history_noise,
            packed_ada,
        };
        s.reset();
        s
    }

    pub fn model(&self) -> &WorldModel<B> {
        &self.model
    }

    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Forget every frame (a new episode).
    pub fn reset(&mut self) {
        self.states = vec![None; self.model.blocks.len()];
        self.caches = self
            .model
            .blocks
            .iter()
            .map(|b| b.attention.as_ref().map(|a| a.empty_cache()))
            .collect();
        self.frames = 0;
    }

    /// Frames committed since the last reset (context and generated).
    pub fn frames_committed(&self) -> usize {
        self.frames
    }

    /// The most frames any layer's attention cache holds (k − 1 with a window of k; every frame
    /// for full attention; 0 without attention).
    pub fn cached_frames(&self) -> usize {
        self.caches
            .iter()
            .flatten()
            .map(|c| c.len_frames())
            .max()
            .unwrap_or(0)
    }

    /// Advance by `frames` frames without running the model: every attention cache appends
    /// copies of the frames it holds and the SSM states stay as they are. Only for latency
    /// measurements at long rollouts (a full-attention baseline would need hours to commit
    /// thousands of frames; the cost of the next frame depends on how many frames the caches
    /// hold, not on their content). Needs at least one committed frame.
    pub fn repeat_history(&mut self, frames: usize) {
        assert!(
            self.frames > 0,
            "repeat_history needs a committed frame to repeat"
        );
        for cache in self.caches.iter_mut().flatten() {
            cache.repeat_held(frames);
        }
        self.frames += frames;
    }

    /// Euler steps per generated frame.
    pub fn sampling_steps(&self) -> usize {
        self.steps
    }

    /// Change the Euler steps per generated frame (at least 1).
    pub fn set_sampling_steps(&mut self, steps: usize) {
        assert!(steps > 0, "the sampler needs at least one step");
        self.steps = steps;
    }

    /// Noise level at which generated frames are committed (0: clean).
    pub fn history_noise(&self) -> f32 {
        self.history_noise
    }

    /// Commit generated frames at noise level `tau` from now on (0 commits them clean).
    pub fn set_history_noise(&mut self, tau: f32) {
        assert!(
            (0.0..1.0).contains(&tau),
            "the history noise is a level in [0, 1)"
        );
        self.history_noise = tau;
    }

    /// Commit clean context frames (τ = 0) in one chunked pass. May be called again to append.
    ///
    /// # Shapes
    /// - frames: `[batch, n, H, W, C]` in [-1, 1]; cond: `[batch, n]`
    pub fn prefill(&mut self, frames: Tensor<B, 5>, cond: &FrameConditions<B>) {
        self.commit(frames, cond);
    }

    /// Commit clean frames (τ = 0): advance every SSM state and append to every cache; returns
    /// the model's output for them (the velocity at τ = 0).
    ///
    /// # Shapes
    /// - frames: `[batch, n, H, W, C]`; cond: `[batch, n]`; returns `[batch, n, H, W, C]`
    pub fn commit(&mut self, frames: Tensor<B, 5>, cond: &FrameConditions<B>) -> Tensor<B, 5> {
        let [b, n, ..] = frames.dims();
        self.commit_at(frames, Tensor::zeros([b, n], &self.device), cond)
    }

    /// Commit frames at the given noise levels (diffusion forcing's view, in which history may
    /// itself be noisy): streaming a sequence through `commit_at` frame by frame gives the
    /// full-sequence forward's output on it.
    ///
    /// # Shapes
    /// - frames: `[batch, n, H, W, C]`; tau: `[batch, n]`; cond: `[batch, n]`;
    ///   returns `[batch, n, H, W, C]`
    pub fn commit_at(
        &mut self,
        frames: Tensor<B, 5>,
        tau: Tensor<B, 2>,
        cond: &FrameConditions<B>,
    ) -> Tensor<B, 5> {
        let silu_c = self.model.silu_condition(tau, cond);
        self.pass(frames, LayerConditions::Silu(silu_c), true)
    }

    /// One pass over new frames with their adaLN conditioning: with `commit` it advances the
    /// states and appends to the caches, without it it reads them and changes neither. Returns
    /// the model's velocity for the frames.
    fn pass(
        &mut self,
        x: Tensor<B, 5>,
        conditions: LayerConditions<B>,
        commit: bool,
    ) -> Tensor<B, 5> {
        let [_, n, ..] = x.dims();
        let caches = Some((&mut self.caches[..], commit));
        if !commit {
            let mut states = self.states.clone();
            return self
                .model
                .forward_conditioned(x, conditions, &mut states, caches);
        }
        let v = self
            .model
            .forward_conditioned(x, conditions, &mut self.states, caches);
        self.frames += n;
        v
    }

    /// One denoising pass over new frames at noise level `tau`: the velocity the model predicts
    /// for them after the committed frames. Reads the states and caches, changes neither.
    ///
    /// # Shapes
    /// - x_tau: `[batch, n, H, W, C]`; cond: `[batch, n]`; returns `[batch, n, H, W, C]`
    pub fn denoise_pass(
        &mut self,
        x_tau: Tensor<B, 5>,
        tau: f32,
        cond: &FrameConditions<B>,
    ) -> Tensor<B, 5> {
        let [b, n, ..] = x_tau.dims();
        let tau = Tensor::full([b, n], tau, &self.device);
        let silu_c = self.model.silu_condition(tau, cond);
        self.pass(x_tau, LayerConditions::Silu(silu_c), false)
    }

    /// Generate and commit the next frame: `sampling_steps` Euler passes from the noise of
    /// `seed` (the same noise as [`super::diffusion::sample_next_full`]), clamp to [-1, 1],
    /// then one commit pass (at the history noise level, with the noise of
    /// [`history_noise_seed`]`(seed)`).
    ///
    /// # Shapes
    /// - cond: `[batch, 1]`; returns `[batch, 1, H, W, C]`
    pub fn generate_frames(&mut self, cond: &FrameConditions<B>, seed: u64) -> Tensor<B, 5> {
        let batch = match (&cond.actions, &cond.poses) {
            (Some(a), _) => a.dims()[0],
            (None, Some(p)) => p.dims()[0],
            (None, None) => 1,
        };
        let cfg = self.model.config();
        let (r, c) = (cfg.resolution, cfg.channels);
        let shape = [batch, 1, r, r, c];
        let x = initial_noise::<B>(shape, seed, &self.device);
        let commit_noise = (self.history_noise > 0.0)
            .then(|| initial_noise::<B>(shape, history_noise_seed(seed), &self.device));
        self.denoise_and_commit(x, commit_noise, cond)
    }

    /// From the noise `x` of the next frame: `sampling_steps` Euler passes, clamp to [-1, 1],
    /// then one commit pass; returns the frame. With a history noise level τₕ > 0 the commit
    /// pass sees (1 − τₕ)·x̂ + τₕ·`commit_noise` at τₕ instead of the clean frame x̂
    /// (`commit_noise` is then required; it is ignored at τₕ = 0). The condition of every
    /// pass (its τ and the frame's action and pose) is computed once, for all passes together,
    /// instead of once per pass; where the fused kernels serve, so are every layer's adaLN
    /// vectors of every pass (one product, [`PackedAda`]).
    ///
    /// # Shapes
    /// - x, commit_noise: `[batch, 1, H, W, C]`; cond: `[batch, 1]`; returns
    ///   `[batch, 1, H, W, C]`
    pub fn denoise_and_commit(
        &mut self,
        mut x: Tensor<B, 5>,
        commit_noise: Option<Tensor<B, 5>>,
        cond: &FrameConditions<B>,
    ) -> Tensor<B, 5> {
        let [batch, n, ..] = x.dims();
        assert_eq!(n, 1, "denoise_and_commit generates one frame per video");
        let taus = euler_taus(self.steps);
        // Pass i < S denoises at τ_i; pass S commits the frame at the history noise level.
        let passes = self.steps + 1;
        let history_tau = self.history_noise;
        let pass_taus: Vec<f32> = (0..batch)
            .flat_map(|_| taus[..self.steps].iter().copied().chain([history_tau]))
            .collect();
        let tau = Tensor::from_data(TensorData::new(pass_taus, [batch, passes]), &self.device);
        let silu_c = self.model.silu_condition(tau, &cond.repeat_frames(passes));
        // Tensors are shared handles: the clone copies no weights.
        let packed = self.packed_ada.clone();
        let table = packed.as_ref().map(|p| p.table(silu_c.clone()));
        let condition = |i: usize| match (&packed, &table) {
            (Some(p), Some(table)) => LayerConditions::Made(p.vectors(table, i)),
            _ => LayerConditions::Silu(silu_c.clone().narrow(1, i, 1)),
        };
        for i in 0..self.steps {
            let v = self.pass(x.clone(), condition(i), false);
            x = euler_step(x, v, taus[i], taus[i + 1]);
        }
        let x0 = x.clamp(-1.0, 1.0);
        let committed = if history_tau > 0.0 {
            let eps = commit_noise.expect("a history noise level needs the commit noise");
            let tau = Tensor::full([batch, 1], history_tau, &self.device);
            add_noise(x0.clone(), eps, tau)
        } else {
            x0.clone()
        };
        self.pass(committed, condition(self.steps), true);
        x0
    }

    /// Generate and commit the next frame of a single video from the action that produces it
    /// and the pose it is seen from (each required when the model is conditioned on it).
    ///
    /// # Shapes
    /// - returns `[1, H, W, C]`
    pub fn generate(
        &mut self,
        action: Option<usize>,
        pose: Option<[f32; 4]>,
        seed: u64,
    ) -> Tensor<B, 4> {
        let cond = single_frame_conditions(action, pose.as_ref().map(|p| &p[..]), &self.device);
        let frame = self.generate_frames(&cond, seed);
        let [b, _, h, w, c] = frame.dims();
        frame.reshape([b, h, w, c])
    }
}

/// Conditions of one frame of one video.
pub fn single_frame_conditions<B: Backend>(
    action: Option<usize>,
    pose: Option<&[f32]>,
    device: &B::Device,
) -> FrameConditions<B> {
    FrameConditions {
        actions: action.map(|a| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(vec![a as i64], [1, 1]), device)
        }),
        poses: pose.map(|p| {
            Tensor::<B, 3>::from_data(TensorData::new(p.to_vec(), [1, 1, p.len()]), device)
        }),
    }
}
