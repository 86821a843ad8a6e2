//! The world model's configuration (SPEC §5.1–5.3) and its named presets: ours (block-wise
//! Mamba-2 + frame-local attention, Po et al. 2025) and the baselines of SPEC §5.3 as configs
//! of the same model.

use burn::config::Config;

use super::error::WorldError;

/// Which state-space mixer a block uses (SPEC §5.3).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum SsmKind {
    /// No SSM sublayer (the attention-only baselines).
    None,
    /// One Mamba-2 scan over the whole frame's tokens, frame after frame (the `mamba2` baselines).
    SingleScan,
    /// Block-wise scan: the token grid is split into blocks of `block_sizes[layer]`, each block
    /// scanned over time with its own state (ours).
    Blockwise,
}

/// Which attention a block uses (SPEC §5.3).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum AttentionKind {
    /// No attention sublayer (the `mamba2` baseline).
    None,
    /// Frame-local attention: frame t attends to frames t−k+1 … t (bidirectional inside a frame).
    Window(usize),
    /// Full causal attention over every earlier frame (the `causal-full` baseline).
    Full,
}

/// The world model's configuration. Saved beside every checkpoint; `name` is the preset it came
/// from.
#[derive(Config, Debug, PartialEq)]
pub struct WorldModelConfig {
    /// Preset name.
    pub name: String,
    /// Frame side length in pixels (frames are square).
    pub resolution: usize,
    /// Channels per pixel. Default: 3
    #[config(default = 3)]
    pub channels: usize,
    /// Patch side p: a frame becomes (resolution/p)² tokens of p·p·channels values.
    pub patch: usize,
    pub d_model: usize,
    pub n_layers: usize,
    /// Attention heads.
    pub n_heads: usize,
    pub ssm: SsmKind,
    /// Block size [b_h, b_w] per layer, cycled over the layers (used when `ssm` is `Blockwise`).
    pub block_sizes: Vec<[usize; 2]>,
    pub attention: AttentionKind,
    /// SSD state size N.
    pub d_state: usize,
    /// SSD head dimension P.
    pub ssm_head_dim: usize,
    /// Mamba-2 inner expansion (d_inner = expand · d_model).
    pub expand: usize,
    /// SSD chunk length.
    pub chunk_size: usize,
    /// MLP hidden size = mlp_ratio · d_model. Default: 4
    #[config(default = 4)]
    pub mlp_ratio: usize,
    /// Number of discrete actions when the model is action-conditioned.
    pub n_actions: Option<usize>,
    /// Pose vector length when the model is pose-conditioned (maze: x/N, y/N, cos, sin).
    pub pose_dim: Option<usize>,
    /// Euler steps per generated frame. Default: 8
    #[config(default = 8)]
    pub sampling_steps: usize,
    /// Training clip length in frames. Default: 16
    #[config(default = 16)]
    pub clip_frames: usize,
    /// Width of the sinusoidal noise-level features. Default: 256
    #[config(default = 256)]
    pub freq_dim: usize,
    /// Rotary base of the attention. Default: 10000
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    /// Noise level τ at which a generated frame is committed to the history: the frame enters
    /// the state and cache as (1 − τ)·x̂ + τ·ε, so later frames lean less on its errors (the
    /// "stabilising" history noise of diffusion forcing). `None` (and configs written before
    /// the field existed) commits it clean, as 0 does.
    pub history_noise: Option<f64>,
}

/// Every preset name `WorldModelConfig::preset` accepts.
pub const PRESETS: [&str; 7] = [
    "tiny",
    "maze-small",
    "voxel-small",
    "causal-full",
    "causal-window",
    "mamba2",
    "mamba2-local",
];

/// Frame window of ours and of the `causal-window` baseline in the small presets (SPEC §8's
/// reference shape uses 10); the baseline then differs from ours only by the SSM.
const SMALL_WINDOW: usize = 10;

impl WorldModelConfig {
    /// The preset called `name` (one of [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, WorldError> {
        Ok(match name {
            "tiny" => Self::tiny(),
            "maze-small" => Self::maze_small(),
            "voxel-small" => Self::voxel_small(),
            "causal-full" => Self::causal_full(),
            "causal-window" => Self::causal_window(),
            "mamba2" => Self::mamba2(),
            "mamba2-local" => Self::mamba2_local(),
            other => {
                return Err(WorldError::UnknownPreset {
                    name: other.to_string(),
                    known: PRESETS.join(", "),
                })
            }
        })
    }

    /// A model small enough to train on a CPU in minutes: 32×32 maze frames, 2 layers of
    /// d_model 32, block-wise SSM ([4,4] then [2,2] blocks on the 8×8 grid) + window-2 attention,
    /// conditioned on pose and action like `maze-small`.
    pub fn tiny() -> Self {
        Self {
            name: "tiny".into(),
            resolution: 32,
            channels: 3,
            patch: 4,
            d_model: 32,
            n_layers: 2,
            n_heads: 2,
            ssm: SsmKind::Blockwise,
            block_sizes: vec![[4, 4], [2, 2]],
            attention: AttentionKind::Window(2),
            d_state: 8,
            ssm_head_dim: 8,
            expand: 2,
            chunk_size: 16,
            mlp_ratio: 4,
            n_actions: Some(6),
            pose_dim: Some(4),
            sampling_steps: 8,
            clip_frames: 8,
            freq_dim: 64,
            rope_theta: 10000.0,
            history_noise: None,
        }
    }

    /// Ours at SPEC §8's reference shape: 64×64 maze frames, patch 4, d_model 256, 8 layers,
    /// 4 heads, block sizes cycling 16/8/4/2, SSD d_state 64 / head dim 64 / expand 2 / chunk 64,
    /// window 10; conditioned on the pose (4) and the 6 maze actions.
    pub fn maze_small() -> Self {
        Self {
            name: "maze-small".into(),
            resolution: 64,
            channels: 3,
            patch: 4,
            d_model: 256,
            n_layers: 8,
            n_heads: 4,
            ssm: SsmKind::Blockwise,
            block_sizes: vec![[16, 16], [8, 8], [4, 4], [2, 2]],
            attention: AttentionKind::Window(SMALL_WINDOW),
            d_state: 64,
            ssm_head_dim: 64,
            expand: 2,
            chunk_size: 64,
            mlp_ratio: 4,
            n_actions: Some(6),
            pose_dim: Some(4),
            sampling_steps: 8,
            clip_frames: 16,
            freq_dim: 256,
            rope_theta: 10000.0,
            history_noise: None,
        }
    }

    /// Ours for the voxel world, conditioned on its 5 discrete actions only (as the paper's
    /// Minecraft model), no pose. `maze-small`'s layout at a smaller size (d_model 192, 4 layers:
    /// one cycle of the 16/8/4/2 blocks, ~4.3M parameters), so that the two shipped models
    /// together stay under ~20 MiB.
    pub fn voxel_small() -> Self {
        Self {
            name: "voxel-small".into(),
            d_model: 192,
            n_layers: 4,
            n_actions: Some(5),
            pose_dim: None,
            ..Self::maze_small()
        }
    }

    /// Baseline: no SSM, full causal attention over all frames.
    pub fn causal_full() -> Self {
        Self {
            name: "causal-full".into(),
            ssm: SsmKind::None,
            attention: AttentionKind::Full,
            ..Self::maze_small()
        }
    }

    /// Baseline: no SSM, causal attention limited to the last K frames.
    pub fn causal_window() -> Self {
        Self {
            name: "causal-window".into(),
            ssm: SsmKind::None,
            attention: AttentionKind::Window(SMALL_WINDOW),
            ..Self::maze_small()
        }
    }

    /// Baseline: one Mamba-2 scan over the whole frame, no attention.
    pub fn mamba2() -> Self {
        Self {
            name: "mamba2".into(),
            ssm: SsmKind::SingleScan,
            attention: AttentionKind::None,
            ..Self::maze_small()
        }
    }

    /// Baseline: one Mamba-2 scan over the whole frame + frame-local attention.
    pub fn mamba2_local() -> Self {
        Self {
            name: "mamba2-local".into(),
            ssm: SsmKind::SingleScan,
            attention: AttentionKind::Window(SMALL_WINDOW),
            ..Self::maze_small()
        }
    }

    /// The preset `name`'s mixer layout at the `tiny` size (for CPU tests of every baseline):
    /// its SSM kind and attention kind, with `tiny`'s sizes, windows shrunk to 2 frames and
    /// `name`'s conditioning (`voxel-small` keeps actions only).
    pub fn tiny_variant(name: &str) -> Result<Self, WorldError> {
        let full = Self::preset(name)?;
        let attention = match full.attention {
            AttentionKind::Window(_) => AttentionKind::Window(2),
            other => other,
        };
        Ok(Self {
            name: format!("tiny-{name}"),
            ssm: full.ssm,
            attention,
            n_actions: full.n_actions,
            pose_dim: full.pose_dim,
            ..Self::tiny()
        })
    }

    /// Tokens per side of a frame (resolution / patch).
    pub fn grid(&self) -> usize {
        self.resolution / self.patch
    }

    /// The noise level at which generated frames are committed (`history_noise`, 0 if unset).
    pub fn history_noise_level(&self) -> f64 {
        self.history_noise.unwrap_or(0.0)
    }

    /// Tokens per frame.
    pub fn tokens_per_frame(&self) -> usize {
        self.grid() * self.grid()
    }

    /// Values per token (p·p·channels).
    pub fn patch_dim(&self) -> usize {
        self.patch * self.patch * self.channels
    }

    /// The SSM's spatial block for `layer`: the configured (cycled) block for `Blockwise`, the
    /// whole frame for `SingleScan`, nothing without an SSM.
    pub fn block_size(&self, layer: usize) -> Option<[usize; 2]> {
        match self.ssm {
            SsmKind::None => None,
            SsmKind::SingleScan => Some([self.grid(), self.grid()]),
            SsmKind::Blockwise => Some(self.block_sizes[layer % self.block_sizes.len()]),
        }
    }

    /// Attention window in frames (`None` = every earlier frame), or `None` outer when the model
    /// has no attention.
    pub fn attention_window(&self) -> Option<Option<usize>> {
        match self.attention {
            AttentionKind::None => None,
            AttentionKind::Window(k) => Some(Some(k)),
            AttentionKind::Full => Some(None),
        }
    }

    /// Checks that the sizes fit together; every config from a file goes through this.
    pub fn validate(&self) -> Result<(), WorldError> {
        let bad = |reason: String| {
            Err(WorldError::InvalidConfig {
                name: self.name.clone(),
                reason,
            })
        };
        if self.resolution == 0 || self.patch == 0 || self.resolution % self.patch != 0 {
            return bad(format!(
                "resolution {} must be a positive multiple of the patch {}",
                self.resolution, self.patch
            ));
        }
        if self.channels == 0 || self.n_layers == 0 || self.mlp_ratio == 0 {
            return bad("channels, n_layers and mlp_ratio must be positive".into());
        }
        if self.ssm == SsmKind::None && self.attention == AttentionKind::None {
            return bad("a model needs an SSM, attention or both to mix frames".into());
        }
        if self.attention != AttentionKind::None
            && (self.n_heads == 0 || self.d_model % self.n_heads != 0)
        {
            return bad(format!(
                "d_model {} must be divisible by n_heads {}",
                self.d_model, self.n_heads
            ));
        }
        if self.attention == AttentionKind::Window(0) {
            return bad("the attention window must be at least one frame".into());
        }
        if self.ssm != SsmKind::None {
            let d_inner = self.expand * self.d_model;
            if self.ssm_head_dim == 0 || d_inner == 0 || d_inner % self.ssm_head_dim != 0 {
                return bad(format!(
                    "expand·d_model = {d_inner} must be a positive multiple of ssm_head_dim {}",
                    self.ssm_head_dim
                ));
            }
            if self.d_state == 0 || self.chunk_size == 0 {
                return bad("d_state and chunk_size must be positive".into());
            }
        }
        if self.ssm == SsmKind::Blockwise {
            if self.block_sizes.is_empty() {
                return bad("a block-wise SSM needs at least one block size".into());
            }
            let g = self.grid();
            for &[bh, bw] in &self.block_sizes {
                if bh == 0 || bw == 0 || g % bh != 0 || g % bw != 0 {
                    return bad(format!(
                        "block [{bh}, {bw}] does not divide the {g}×{g} token grid"
                    ));
                }
            }
        }
        if self.freq_dim < 2 || self.freq_dim % 2 != 0 {
            return bad(format!(
                "freq_dim {} must be even and at least 2",
                self.freq_dim
            ));
        }
        if self.sampling_steps == 0 || self.clip_frames == 0 {
            return bad("sampling_steps and clip_frames must be positive".into());
        }
        if !(0.0..1.0).contains(&self.history_noise_level()) {
            return bad(format!(
                "history_noise {} must be in [0, 1)",
                self.history_noise_level()
            ));
        }
        if self.n_actions == Some(0) || self.pose_dim == Some(0) {
            return bad("n_actions and pose_dim must be positive when present".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_and_tiny_variant_is_valid() {
        for name in PRESETS {
            let c = WorldModelConfig::preset(name).unwrap();
            assert_eq!(c.name, name);
            c.validate().unwrap();
            WorldModelConfig::tiny_variant(name)
                .unwrap()
                .validate()
                .unwrap();
        }
        assert!(matches!(
            WorldModelConfig::preset("huge"),
            Err(WorldError::UnknownPreset { .. })
        ));
    }

    #[test]
    fn validate_rejects_blocks_that_do_not_tile_the_grid() {
        let mut c = WorldModelConfig::tiny();
        c.block_sizes = vec![[3, 3]];
        assert!(matches!(
            c.validate(),
            Err(WorldError::InvalidConfig { .. })
        ));
        let mut c = WorldModelConfig::tiny();
        c.ssm = SsmKind::None;
        c.attention = AttentionKind::None;
        assert!(c.validate().is_err());
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = WorldModelConfig::causal_window();
        let json = serde_json::to_string(&c).unwrap();
        let back: WorldModelConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
    }
}
