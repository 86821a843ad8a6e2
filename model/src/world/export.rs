//! Inference checkpoints (SPEC §9): the EMA weights of a training checkpoint, in f32, f16 or
//! 8-bit blocks ([`super::quant`]), with its config and a `state.json` that checks them —
//! small enough to ship with the program and loaded by
//! [`super::checkpoint::load_for_inference`] like any checkpoint (no `model.mpk` or
//! `optim.mpk`, so it cannot be resumed).
//!
//! Layout: `DIR/{config.json, state.json, ema.mpk}` (`ema.q8` instead for q8), written
//! atomically like every checkpoint directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::Recorder;
use burn::tensor::backend::Backend;

use super::checkpoint::{
    open_checkpoint, write_checkpoint_dir, CheckpointState, HalfRec, Precision, Rec,
    CHECKPOINT_FORMAT, EMA_FILE, EMA_Q8_FILE,
};
use super::error::WorldError;
use super::optim::param_manifest;
use super::quant;

/// What [`export_for_inference`] wrote.
#[derive(Clone, Debug)]
pub struct ExportSummary {
    pub dir: PathBuf,
    pub config: String,
    pub step: usize,
    pub params: usize,
    /// Bytes of the weight file.
    pub weight_bytes: u64,
}

/// Writes the EMA weights of the checkpoint at `src` (a checkpoint or run directory) into the
/// inference checkpoint directory `dst`, replacing it, with weights stored in `precision`.
pub fn export_for_inference<B: Backend>(
    src: &Path,
    dst: &Path,
    precision: Precision,
    device: &B::Device,
) -> Result<ExportSummary, WorldError> {
    let ckpt = open_checkpoint(src, None)?;
    let model = ckpt.load_weights::<B>(EMA_FILE, device)?;
    let (params, manifest) = (model.num_params(), param_manifest(&model));
    let (file, bytes) = match precision {
        Precision::F32 => (
            EMA_FILE,
            Recorder::<B>::record(&Rec::default(), model.into_record(), ()),
        ),
        Precision::F16 => (
            EMA_FILE,
            Recorder::<B>::record(&HalfRec::default(), model.into_record(), ()),
        ),
        Precision::Q8 => (
            EMA_Q8_FILE,
            Ok(quant::encode(&quant::collect_params(&model))),
        ),
    };
    let bytes = bytes.map_err(|e| WorldError::Io {
        path: dst.join(file),
        source: std::io::Error::other(e.to_string()),
    })?;
    let weight_bytes = bytes.len() as u64;
    let state = CheckpointState {
        format_version: CHECKPOINT_FORMAT,
        step: ckpt.state.step,
        train: ckpt.state.train.clone(),
        files: BTreeMap::new(),
        params: manifest,
        precision,
    };
    write_checkpoint_dir(dst, &[(file, bytes)], &ckpt.config, state)?;
    Ok(ExportSummary {
        dir: dst.to_path_buf(),
        config: ckpt.config.name.clone(),
        step: ckpt.state.step,
        params,
        weight_bytes,
    })
}
