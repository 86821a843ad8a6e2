//! Inference checkpoints (SPEC §9): the EMA weights of a training checkpoint, in f32, f16 or
//! 8-bit blocks ([`super::quant`]), with its config and a `state.json` that checks them — small enough to ship
//! with the program and loaded by [`super::checkpoint::load_for_inference`] like any
//! checkpoint (no `model.mpk` or `optim.mpk`, so it cannot be resumed).
//!
//! Layout: `DIR/{config.json, state.json, ema.mpk}` (`ema.q8` instead for q8), written into `DIR.tmp/` (synced) and
//! renamed into place, so an interrupted export never leaves a half-written `DIR`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::Recorder;
use burn::tensor::backend::Backend;

use super::checkpoint::{
    checksum, io_err, open_checkpoint, sync_dir, write_synced, CheckpointState, FileDigest,
    HalfRec, Precision, Rec, CHECKPOINT_FORMAT, CONFIG_FILE, EMA_FILE, EMA_Q8_FILE, STATE_FILE,
};
use super::error::WorldError;
use super::optim::param_manifest;

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
    let params = model.num_params();
    let record = model.clone().into_record();
    let file = match precision {
        Precision::Q8 => EMA_Q8_FILE,
        Precision::F32 | Precision::F16 => EMA_FILE,
    };
    let bytes = match precision {
        Precision::F32 => Recorder::<B>::record(&Rec::default(), record, ()),
        Precision::F16 => Recorder::<B>::record(&HalfRec::default(), record, ()),
        Precision::Q8 => Ok(super::quant::encode(&super::quant::collect_params(&model))),
    }
    .map_err(|e| WorldError::Io {
        path: dst.join(file),
        source: std::io::Error::other(e.to_string()),
    })?;

    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    let tmp = dst.with_file_name(format!("{name}.tmp"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    write_synced(&tmp.join(file), &bytes)?;
    let config_json = serde_json::to_vec_pretty(&ckpt.config).expect("configs serialise");
    write_synced(&tmp.join(CONFIG_FILE), &config_json)?;
    let mut files = BTreeMap::new();
    files.insert(
        file.to_string(),
        FileDigest {
            bytes: bytes.len() as u64,
            checksum: checksum(&bytes),
        },
    );
    let state = CheckpointState {
        format_version: CHECKPOINT_FORMAT,
        step: ckpt.state.step,
        train: ckpt.state.train.clone(),
        files,
        params: param_manifest(&model),
        precision,
    };
    let state_json = serde_json::to_vec_pretty(&state).expect("states serialise");
    write_synced(&tmp.join(STATE_FILE), &state_json)?;
    sync_dir(&tmp);
    if dst.exists() {
        fs::remove_dir_all(dst).map_err(io_err(dst))?;
    }
    fs::rename(&tmp, dst).map_err(io_err(dst))?;
    if let Some(parent) = dst.parent() {
        sync_dir(parent);
    }
    Ok(ExportSummary {
        dir: dst.to_path_buf(),
        config: ckpt.config.name.clone(),
        step: ckpt.state.step,
        params,
        weight_bytes: bytes.len() as u64,
    })
}
