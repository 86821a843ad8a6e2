//! The world model (SPEC §5.1–5.3): patch embedding + 2-D position embedding, per-frame
//! conditioning, `n_layers` adaLN-Zero blocks (block-wise Mamba-2 → frame-local attention →
//! MLP, parts absent per preset) and a zero-initialised head that predicts the flow-matching
//! velocity v = ε − x₀ per patch, unpatchified back to frames.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use super::block::{zero_linear, AdaVectors, AttentionContext, WorldBlock};
use super::config::WorldModelConfig;
use super::embed::{unpatchify, Conditioning, PatchEmbed};
use super::error::WorldError;
use crate::mixers::attention::KvCache;
use crate::mixers::ssd::Mamba2State;
use crate::precision::linear;

/// What each frame is conditioned on besides its noise level.
///
/// # Shapes
/// - actions: `[batch, frames]`, the index of the action that produced each frame (0 = noop for
///   the first frame of an episode)
/// - poses: `[batch, frames, pose_dim]`
#[derive(Clone, Debug)]
pub struct FrameConditions<B: Backend> {
    pub actions: Option<Tensor<B, 2, Int>>,
    pub poses: Option<Tensor<B, 3>>,
}

impl<B: Backend> FrameConditions<B> {
    /// No conditioning at all (a model with neither actions nor poses).
    pub fn none() -> Self {
        Self {
            actions: None,
            poses: None,
        }
    }

    /// Frames `start..start + len` of every sequence.
    pub fn frames(&self, start: usize, len: usize) -> Self {
        Self {
            actions: self.actions.clone().map(|a| a.narrow(1, start, len)),
            poses: self.poses.clone().map(|p| p.narrow(1, start, len)),
        }
    }

    /// Each frame's conditions `times` times in a row (`[batch, frames·times]`, frame-major).
    pub fn repeat_frames(&self, times: usize) -> Self {
        let repeat2 = |t: &Tensor<B, 2, Int>| {
            let [b, f] = t.dims();
            t.clone()
                .reshape([b, f, 1])
                .repeat_dim(2, times)
                .reshape([b, f * times])
        };
        let repeat3 = |t: &Tensor<B, 3>| {
            let [b, f, d] = t.dims();
            t.clone()
                .reshape([b, f, 1, d])
                .repeat_dim(2, times)
                .reshape([b, f * times, d])
        };
        Self {
            actions: self.actions.as_ref().map(repeat2),
            poses: self.poses.as_ref().map(repeat3),
        }
    }

    /// These conditions followed by `next`'s, along the frame axis.
    pub fn concat(&self, next: &Self) -> Self {
        let cat2 = |a: &Option<Tensor<B, 2, Int>>, b: &Option<Tensor<B, 2, Int>>| match (a, b) {
            (Some(a), Some(b)) => Some(Tensor::cat(vec![a.clone(), b.clone()], 1)),
            _ => None,
        };
        let cat3 = |a: &Option<Tensor<B, 3>>, b: &Option<Tensor<B, 3>>| match (a, b) {
            (Some(a), Some(b)) => Some(Tensor::cat(vec![a.clone(), b.clone()], 1)),
            _ => None,
        };
        Self {
            actions: cat2(&self.actions, &next.actions),
            poses: cat3(&self.poses, &next.poses),
        }
    }

    /// Checks that these conditions fit `config` for `[batch, frames]` (what the model's asserts
    /// would otherwise catch), as a typed error for data coming from files.
    pub fn check(
        &self,
        config: &WorldModelConfig,
        batch: usize,
        frames: usize,
    ) -> Result<(), WorldError> {
        if config.n_actions.is_some() {
            match &self.actions {
                None => {
                    return Err(WorldError::Shape(
                        "the model is action-conditioned but no actions were given".into(),
                    ))
                }
                Some(a) if a.dims() != [batch, frames] => {
                    return Err(WorldError::Shape(format!(
                        "actions are {:?}, expected [{batch}, {frames}]",
                        a.dims()
                    )))
                }
                _ => {}
            }
        }
        if let Some(pd) = config.pose_dim {
            match &self.poses {
                None => {
                    return Err(WorldError::Shape(
                        "the model is pose-conditioned but no poses were given".into(),
                    ))
                }
                Some(p) if p.dims() != [batch, frames, pd] => {
                    return Err(WorldError::Shape(format!(
                        "poses are {:?}, expected [{batch}, {frames}, {pd}]",
                        p.dims()
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The video diffusion world model; built by [`WorldModelConfig::init`].
#[derive(Module, Debug)]
pub struct WorldModel<B: Backend> {
    pub embed: PatchEmbed<B>,
    pub conditioning: Conditioning<B>,
    pub blocks: Vec<WorldBlock<B>>,
    /// SiLU(c) → (shift, scale) of the final norm, zero-initialised.
    pub final_ada: Linear<B>,
    /// d_model → p·p·C velocity per token, zero-initialised.
    pub head: Linear<B>,
    config: WorldModelConfig,
}

impl WorldModelConfig {
    /// Build the model. Panics with the reason if [`Self::validate`] fails: check configs read
    /// from files with `validate` first.
    pub fn init<B: Backend>(&self, device: &B::Device) -> WorldModel<B> {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        WorldModel {
            embed: PatchEmbed::new(self, device),
            conditioning: Conditioning::new(self, device),
            blocks: (0..self.n_layers)
                .map(|l| WorldBlock::new(self, l, device))
                .collect(),
            final_ada: zero_linear(self.d_model, 2 * self.d_model, device),
            head: zero_linear(self.d_model, self.patch_dim(), device),
            config: self.clone(),
        }
    }
}

/// How one pass of the body gets its adaLN vectors.
pub(crate) enum LayerConditions<B: Backend> {
    /// SiLU of each frame's condition, `[batch, frames, d_model]`: every layer makes its own.
    Silu(Tensor<B, 3>),
    /// Every layer's vectors, then the final norm's, made beforehand
    /// ([`super::packed::PackedAda`]).
    Made(Vec<AdaVectors<B>>),
}

impl<B: Backend> WorldModel<B> {
    pub fn config(&self) -> &WorldModelConfig {
        &self.config
    }

    /// Full-sequence forward (training and the reference path of sampling): every frame is
    /// conditioned on its own noise level and on all earlier frames, never on later ones.
    /// Returns the predicted velocity v = ε − x₀.
    ///
    /// # Shapes
    /// - x_tau: `[batch, frames, H, W, C]`, noised frames in [-1, 1]
    /// - tau: `[batch, frames]`, each frame's noise level in [0, 1]
    /// - returns `[batch, frames, H, W, C]`
    pub fn forward(
        &self,
        x_tau: Tensor<B, 5>,
        tau: Tensor<B, 2>,
        cond: &FrameConditions<B>,
    ) -> Tensor<B, 5> {
        let [b, f, ..] = x_tau.dims();
        assert_eq!(tau.dims(), [b, f], "tau must be [batch, frames]");
        let mut states = vec![None; self.blocks.len()];
        let silu_c = self.silu_condition(tau, cond);
        self.forward_conditioned(x_tau, LayerConditions::Silu(silu_c), &mut states, None)
    }

    /// SiLU of each frame's condition c_t (its noise level, action and pose), which every
    /// layer's modulation and the final one read.
    ///
    /// # Shapes
    /// - tau: `[batch, frames]`; returns `[batch, frames, d_model]`
    pub(crate) fn silu_condition(
        &self,
        tau: Tensor<B, 2>,
        cond: &FrameConditions<B>,
    ) -> Tensor<B, 3> {
        silu(
            self.conditioning
                .forward(tau, cond.actions.as_ref(), cond.poses.as_ref()),
        )
    }

    /// The body shared by the full-sequence and streaming paths, from the frames'
    /// [`Self::silu_condition`] or the adaLN vectors made of it (a caller running several
    /// passes over one frame computes the conditions of all of them at once). `states[l]` is
    /// layer l's SSM state before the input (zeros if `None`); it is replaced by the state
    /// after the input. With
    /// `caches = Some((caches, commit))` layer l's attention continues `caches[l]` (and appends
    /// the input's keys/values when `commit`); with `None` the input is the whole video from
    /// frame 0.
    pub(crate) fn forward_conditioned(
        &self,
        x_tau: Tensor<B, 5>,
        conditions: LayerConditions<B>,
        states: &mut [Option<Mamba2State<B>>],
        mut caches: Option<(&mut [Option<KvCache<B>>], bool)>,
    ) -> Tensor<B, 5> {
        let [b, f, h, w, ch] = x_tau.dims();
        let cfg = &self.config;
        assert!(
            h == cfg.resolution && w == cfg.resolution && ch == cfg.channels,
            "frames are {h}×{w}×{ch}, the model expects {r}×{r}×{c}",
            r = cfg.resolution,
            c = cfg.channels
        );
        let mut ada = match conditions {
            LayerConditions::Silu(silu_c) => {
                assert_eq!(
                    silu_c.dims(),
                    [b, f, cfg.d_model],
                    "the condition must be [batch, frames, d_model]"
                );
                let mut ada: Vec<_> = self
                    .blocks
                    .iter()
                    .map(|block| block.ada_vectors(silu_c.clone()))
                    .collect();
                ada.push(AdaVectors::new(&self.final_ada, silu_c, cfg.d_model));
                ada
            }
            LayerConditions::Made(ada) => ada,
        };
        assert_eq!(
            ada.len(),
            self.blocks.len() + 1,
            "adaLN vectors for every layer and the final norm"
        );
        let final_ada = ada.pop().expect("the final norm's vectors");
        assert_eq!(
            states.len(),
            self.blocks.len(),
            "one SSM state slot per layer"
        );
        if let Some((cs, _)) = &caches {
            assert_eq!(cs.len(), self.blocks.len(), "one KV-cache slot per layer");
        }
        let mut x = self.embed.forward(x_tau);
        for (l, block) in self.blocks.iter().enumerate() {
            let attention = match caches
                .as_mut()
                .and_then(|(cs, commit)| cs[l].as_mut().map(|c| (c, *commit)))
            {
                Some((cache, commit)) => AttentionContext::Cached { cache, commit },
                None => AttentionContext::Sequence { first_frame: 0 },
            };
            let (y, state) = block.forward(x, &ada[l], states[l].take(), attention);
            x = y;
            states[l] = state;
        }
        let v = linear(&self.head, final_ada.norm_modulate(x, 0, 1));
        unpatchify(v, cfg.patch, cfg.channels)
    }
}
