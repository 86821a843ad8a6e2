//! The action-conditioned video world model (SPEC §5; Po et al. 2025, "Long-Context
//! State-Space Video World Models"): config and presets, tokens and conditioning, the
//! block-wise SSM + frame-local attention blocks, flow-matching diffusion, the streaming
//! session, and the `Env` that dreams a scene.

pub mod adamw;
pub mod block;
pub mod checkpoint;
pub mod config;
pub mod curriculum;
pub mod data;
pub mod diffusion;
pub mod dream;
pub mod embed;
pub mod error;
pub mod eval;
pub mod export;
pub mod frames;
pub mod layer_ops;
pub mod metrics;
pub mod model;
pub mod optim;
mod packed;
pub mod preview;
pub mod quant;
pub mod runlog;
pub mod session;
pub mod sources;
pub mod train;

#[cfg(test)]
mod tests;

pub use checkpoint::{load_for_inference, load_for_inference_checked};
pub use config::{AttentionKind, SsmKind, WorldModelConfig, PRESETS};
pub use data::DataSpec;
pub use diffusion::{
    add_noise, flow_matching_loss, flow_matching_loss_with, sample_next_full, sample_training_taus,
    TauSampling,
};
pub use dream::DreamEnv;
pub use error::WorldError;
pub use model::{FrameConditions, WorldModel};
pub use session::WorldSession;
pub use train::{train, Control, TrainObserver, TrainOptions, TrainSettings, TrainSummary};
