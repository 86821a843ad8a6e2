//! Training checkpoints of the world model (SPEC §5.4, §9): model + EMA weights + optimizer
//! state + step + config + training settings, written atomically as a directory and loaded
//! back with clear errors for missing, damaged or mismatched files.
//!
//! Layout of a run directory:
//! ```text
//! RUN/checkpoints/step-000500/{config.json, model.mpk, ema.mpk, optim.mpk, state.json}
//! RUN/checkpoints/latest          text file naming the newest complete checkpoint directory
//! ```
//! A checkpoint is written into `step-NNNNNN.tmp/` (every file synced), renamed to
//! `step-NNNNNN/`, and only then is `latest` replaced (atomically), so a crash at any point
//! leaves the previous checkpoint intact and `latest` naming a complete directory. `state.json`
//! holds the byte length and a checksum of every weight file plus the parameter manifest
//! (module path and shape of each tensor), so truncation, corruption and a config that does not
//! match the weights are reported before any tensor is built.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::{
    FullPrecisionSettings, HalfPrecisionSettings, NamedMpkBytesRecorder, Record, Recorder,
};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

use super::config::WorldModelConfig;
use super::error::WorldError;
use super::model::WorldModel;
use super::optim::param_manifest;

/// Version of the checkpoint layout written by this code.
pub const CHECKPOINT_FORMAT: u32 = 1;
pub const CHECKPOINTS_DIR: &str = "checkpoints";
pub const LATEST_FILE: &str = "latest";
pub const CONFIG_FILE: &str = "config.json";
pub const STATE_FILE: &str = "state.json";
pub const MODEL_FILE: &str = "model.mpk";
pub const EMA_FILE: &str = "ema.mpk";
pub const OPTIM_FILE: &str = "optim.mpk";
/// The EMA weights of a `q8` inference checkpoint (which has no `ema.mpk`).
pub const EMA_Q8_FILE: &str = "ema.q8";

pub(super) type Rec = NamedMpkBytesRecorder<FullPrecisionSettings>;
pub(super) type HalfRec = NamedMpkBytesRecorder<HalfPrecisionSettings>;

/// How the floats of a checkpoint's weight files are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats (training checkpoints).
    #[default]
    F32,
    /// 16-bit floats (exported inference checkpoints; loaded back as f32).
    F16,
    /// 8-bit block-quantised weights in `ema.q8` (see [`super::quant`]; loaded back as f32).
    Q8,
}

/// Size and checksum of one file of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub bytes: u64,
    /// 64-bit checksum in hex (see [`checksum`]); detects damage, not tampering.
    pub checksum: String,
}

/// `state.json`: everything of a checkpoint besides the config and the tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    pub format_version: u32,
    /// Optimizer updates done; training resumes with update `step`.
    pub step: usize,
    /// The training settings of the run (opaque here; see `train::TrainSettings`).
    pub train: serde_json::Value,
    pub files: BTreeMap<String, FileDigest>,
    /// Module path and shape of every float parameter of the model, in visiting order.
    pub params: Vec<(String, Vec<usize>)>,
    /// Storage precision of the weight files (absent in older checkpoints: f32).
    #[serde(default)]
    pub precision: Precision,
}

/// A checksum of `bytes` for damage detection: 64-bit words mixed by xor, an odd multiply and a
/// rotation (each a bijection of the running state, so any single changed word changes the
/// result), seeded with the length.
pub fn checksum(bytes: &[u8]) -> String {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ w).wrapping_mul(K).rotate_left(31);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(tail))
        .wrapping_mul(K)
        .rotate_left(31);
    h ^= h >> 33;
    format!("{h:016x}")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WorldError + '_ {
    move |source| WorldError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn damaged(path: &Path, reason: impl Into<String>) -> WorldError {
    WorldError::CheckpointDamaged {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Writes `bytes` to a new file and syncs it to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), WorldError> {
    use std::io::Write;
    let mut f = fs::File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) {
    // Durability of renames after a power cut only; never affects correctness.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}

/// Name of the checkpoint directory of update `step`.
pub fn checkpoint_name(step: usize) -> String {
    format!("step-{step:06}")
}

/// Writes a checkpoint of `step` into `run_dir/checkpoints/`, points `latest` at it and removes
/// all but the newest `keep` (at least 1) checkpoints. Returns the checkpoint directory.
pub fn save_checkpoint<B, O>(
    run_dir: &Path,
    step: usize,
    model: &WorldModel<B>,
    ema: &WorldModel<B::InnerBackend>,
    optim: &O,
    train: serde_json::Value,
    keep: usize,
) -> Result<PathBuf, WorldError>
where
    B: AutodiffBackend,
    O: Optimizer<WorldModel<B>, B>,
{
    let root = run_dir.join(CHECKPOINTS_DIR);
    fs::create_dir_all(&root).map_err(io_err(&root))?;
    let name = checkpoint_name(step);
    let dir = root.join(&name);
    let encode_err = |file: &str, e: burn::record::RecorderError| WorldError::Io {
        path: dir.join(file),
        source: std::io::Error::other(e.to_string()),
    };
    let inner = model.valid();
    let blobs = [
        (
            MODEL_FILE,
            Recorder::<B::InnerBackend>::record(&Rec::default(), inner.clone().into_record(), ())
                .map_err(|e| encode_err(MODEL_FILE, e))?,
        ),
        (
            EMA_FILE,
            Recorder::<B::InnerBackend>::record(&Rec::default(), ema.clone().into_record(), ())
                .map_err(|e| encode_err(EMA_FILE, e))?,
        ),
        (
            OPTIM_FILE,
            Recorder::<B>::record(&Rec::default(), optim.to_record(), ())
                .map_err(|e| encode_err(OPTIM_FILE, e))?,
        ),
    ];
    let state = CheckpointState {
        format_version: CHECKPOINT_FORMAT,
        step,
        train,
        files: BTreeMap::new(),
        params: param_manifest(&inner),
        precision: Precision::F32,
    };
    write_checkpoint_dir(&dir, &blobs, model.config(), state)?;
    let latest = root.join(LATEST_FILE);
    scenes::episode::atomic::write_bytes_atomic(&latest, format!("{name}\n").as_bytes())
        .map_err(io_err(&latest))?;
    prune_checkpoints(&root, keep.max(1))?;
    Ok(dir)
}

/// Writes the checkpoint directory `dir` atomically: the weight files `blobs`, `config.json` and
/// `state.json` (with each blob's digest added to `state.files`) go into `dir.tmp/`, every file
/// synced, which is then renamed over `dir` (replacing one left by an interrupted run).
pub(super) fn write_checkpoint_dir(
    dir: &Path,
    blobs: &[(&str, Vec<u8>)],
    config: &WorldModelConfig,
    mut state: CheckpointState,
) -> Result<(), WorldError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "checkpoint".into());
    let tmp = dir.with_file_name(format!("{name}.tmp"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    for (file, bytes) in blobs {
        write_synced(&tmp.join(file), bytes)?;
        state.files.insert(
            file.to_string(),
            FileDigest {
                bytes: bytes.len() as u64,
                checksum: checksum(bytes),
            },
        );
    }
    let config_json = serde_json::to_vec_pretty(config).expect("configs serialise");
    write_synced(&tmp.join(CONFIG_FILE), &config_json)?;
    let state_json = serde_json::to_vec_pretty(&state).expect("states serialise");
    write_synced(&tmp.join(STATE_FILE), &state_json)?;
    sync_dir(&tmp);
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(io_err(dir))?;
    }
    fs::rename(&tmp, dir).map_err(io_err(dir))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent);
    }
    Ok(())
}

/// Removes all but the newest `keep` complete checkpoints and any leftover `.tmp` directory.
fn prune_checkpoints(root: &Path, keep: usize) -> Result<(), WorldError> {
    let mut steps = Vec::new();
    for entry in fs::read_dir(root).map_err(io_err(root))? {
        let entry = entry.map_err(io_err(root))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(rest) = name.strip_prefix("step-") {
            if rest.ends_with(".tmp") {
                let _ = fs::remove_dir_all(entry.path());
            } else if let Ok(s) = rest.parse::<usize>() {
                steps.push((s, entry.path()));
            }
        }
    }
    steps.sort();
    let n = steps.len();
    for (_, path) in steps.into_iter().take(n.saturating_sub(keep)) {
        fs::remove_dir_all(&path).map_err(io_err(&path))?;
    }
    Ok(())
}

/// The checkpoint directory `path` names: itself if it holds `state.json`, else the one
/// `path/checkpoints/latest` points to.
pub fn resolve_checkpoint_dir(path: &Path) -> Result<PathBuf, WorldError> {
    if path.join(STATE_FILE).is_file() {
        return Ok(path.to_path_buf());
    }
    let latest = path.join(CHECKPOINTS_DIR).join(LATEST_FILE);
    if !latest.is_file() {
        if !path.exists() {
            return Err(WorldError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            });
        }
        return Err(WorldError::NoCheckpoint {
            path: path.to_path_buf(),
        });
    }
    let name = fs::read_to_string(&latest).map_err(io_err(&latest))?;
    let name = name.trim();
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(damaged(
            &latest,
            format!("does not name a checkpoint directory ({name:?})"),
        ));
    }
    let dir = path.join(CHECKPOINTS_DIR).join(name);
    if !dir.is_dir() {
        return Err(damaged(
            &latest,
            format!("names {name}, which does not exist"),
        ));
    }
    Ok(dir)
}

/// The run directory holds a checkpoint to resume from.
pub fn has_checkpoint(run_dir: &Path) -> bool {
    run_dir.join(CHECKPOINTS_DIR).join(LATEST_FILE).is_file()
}

/// A checkpoint whose config and state have been read and checked, before any
/// tensor is loaded.
#[derive(Clone, Debug)]
pub struct OpenCheckpoint {
    pub dir: PathBuf,
    pub config: WorldModelConfig,
    pub state: CheckpointState,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, WorldError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(damaged(path, "the file is missing"))
        }
        Err(e) => {
            return Err(WorldError::Io {
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| damaged(path, format!("not valid JSON: {e}")))
}

/// Field-by-field differences of two configs, e.g. `name (tiny vs maze-small), d_model (32 vs 256)`.
pub fn config_differences(expected: &WorldModelConfig, found: &WorldModelConfig) -> String {
    let a = serde_json::to_value(expected).expect("configs serialise");
    let b = serde_json::to_value(found).expect("configs serialise");
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return String::from("the whole config");
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&serde_json::Value>| v.map_or("-".to_string(), |v| v.to_string());
            format!("{k}: {} vs {}", show(b.get(k)), show(a.get(k)))
        })
        .collect();
    diffs.join(", ")
}

/// Reads and checks `config.json` and `state.json` of the checkpoint at
/// `path` (a checkpoint directory or a run directory). With `expected`, a checkpoint trained
/// with another config is rejected; the history noise, a sampling setting that does not change
/// the weights, may differ.
pub fn open_checkpoint(
    path: &Path,
    expected: Option<&WorldModelConfig>,
) -> Result<OpenCheckpoint, WorldError> {
    let dir = resolve_checkpoint_dir(path)?;
    let config_path = dir.join(CONFIG_FILE);
    let config: WorldModelConfig = read_json(&config_path)?;
    config
        .validate()
        .map_err(|e| damaged(&config_path, e.to_string()))?;
    let state_path = dir.join(STATE_FILE);
    let state: CheckpointState = read_json(&state_path)?;
    if state.format_version > CHECKPOINT_FORMAT {
        return Err(damaged(
            &state_path,
            format!(
                "format version {} is newer than this program's {CHECKPOINT_FORMAT}",
                state.format_version
            ),
        ));
    }
    if let Some(expected) = expected {
        let same_weights = WorldModelConfig {
            history_noise: expected.history_noise,
            ..config.clone()
        };
        if expected != &same_weights {
            return Err(WorldError::ConfigMismatch {
                path: dir,
                expected: expected.name.clone(),
                found: config.name.clone(),
                differences: config_differences(expected, &config),
            });
        }
    }
    Ok(OpenCheckpoint { dir, config, state })
}

fn check_manifest(
    dir: &Path,
    built: &[(String, Vec<usize>)],
    saved: &[(String, Vec<usize>)],
) -> Result<(), WorldError> {
    let mismatch = |reason: String| WorldError::ArchitectureMismatch {
        path: dir.to_path_buf(),
        reason,
    };
    for (i, (b, s)) in built.iter().zip(saved).enumerate() {
        if b != s {
            return Err(mismatch(format!(
                "parameter #{i} is {} {:?} in the checkpoint but {} {:?} for its config",
                s.0, s.1, b.0, b.1
            )));
        }
    }
    if built.len() != saved.len() {
        return Err(mismatch(format!(
            "the checkpoint holds {} parameter tensors, its config builds {}",
            saved.len(),
            built.len()
        )));
    }
    Ok(())
}

impl OpenCheckpoint {
    /// The bytes of `file`, checked against the length and checksum in `state.json`.
    pub fn read_verified(&self, file: &str) -> Result<Vec<u8>, WorldError> {
        let path = self.dir.join(file);
        let digest =
            self.state.files.get(file).ok_or_else(|| {
                damaged(&self.dir.join(STATE_FILE), format!("no entry for {file}"))
            })?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(damaged(&path, "the file is missing"))
            }
            Err(e) => return Err(WorldError::Io { path, source: e }),
        };
        if bytes.len() as u64 != digest.bytes {
            return Err(damaged(
                &path,
                format!(
                    "truncated or extended: {} bytes, expected {}",
                    bytes.len(),
                    digest.bytes
                ),
            ));
        }
        if checksum(&bytes) != digest.checksum {
            return Err(damaged(
                &path,
                "the contents do not match the checksum in state.json",
            ));
        }
        Ok(bytes)
    }

    fn load_record<B: Backend, R: Record<B>>(
        &self,
        file: &str,
        device: &B::Device,
    ) -> Result<R, WorldError> {
        let bytes = self.read_verified(file)?;
        match self.state.precision {
            Precision::F32 => Recorder::<B>::load::<R>(&Rec::default(), bytes, device),
            Precision::F16 => Recorder::<B>::load::<R>(&HalfRec::default(), bytes, device),
            Precision::Q8 => {
                return Err(damaged(
                    &self.dir.join(file),
                    "a q8 checkpoint holds only quantised EMA weights",
                ))
            }
        }
        .map_err(|e| damaged(&self.dir.join(file), format!("cannot decode: {e}")))
    }

    /// A model of the checkpoint's config with the weights of `file` (`model.mpk` or `ema.mpk`).
    pub fn load_weights<B: Backend>(
        &self,
        file: &str,
        device: &B::Device,
    ) -> Result<WorldModel<B>, WorldError> {
        // The architecture this code builds for the config must be the one that was saved
        // (checked before loading: a record of another structure cannot be loaded safely).
        let model = self.config.init::<B>(device);
        check_manifest(&self.dir, &param_manifest(&model), &self.state.params)?;
        if self.state.precision == Precision::Q8 {
            let name = if file == EMA_FILE { EMA_Q8_FILE } else { file };
            let bytes = self.read_verified(name)?;
            let shapes: Vec<Vec<usize>> =
                self.state.params.iter().map(|(_, s)| s.clone()).collect();
            let values = super::quant::decode(&bytes, &shapes)
                .map_err(|e| damaged(&self.dir.join(name), e))?;
            return Ok(super::quant::load_params(model, values));
        }
        let record = self.load_record::<B, <WorldModel<B> as Module<B>>::Record>(file, device)?;
        let model = model.load_record(record);
        check_manifest(
            &self.dir.join(file),
            &self.state.params,
            &param_manifest(&model),
        )?;
        Ok(model)
    }

    /// The optimizer with the state saved in `optim.mpk`.
    pub fn load_optimizer<B, O>(&self, optim: O, device: &B::Device) -> Result<O, WorldError>
    where
        B: AutodiffBackend,
        O: Optimizer<WorldModel<B>, B>,
    {
        let record = self.load_record::<B, O::Record>(OPTIM_FILE, device)?;
        Ok(optim.load_record(record))
    }
}

/// Loads the EMA weights of a checkpoint for sampling (the weights to generate with), with its
/// config. `path` is a checkpoint directory or a run directory (its latest checkpoint).
pub fn load_for_inference<B: Backend>(
    path: &Path,
    device: &B::Device,
) -> Result<(WorldModel<B>, WorldModelConfig), WorldError> {
    let ckpt = open_checkpoint(path, None)?;
    let model = ckpt.load_weights::<B>(EMA_FILE, device)?;
    Ok((model, ckpt.config))
}

/// As [`load_for_inference`], rejecting a checkpoint trained with another config than `expected`.
pub fn load_for_inference_checked<B: Backend>(
    path: &Path,
    expected: &WorldModelConfig,
    device: &B::Device,
) -> Result<WorldModel<B>, WorldError> {
    let ckpt = open_checkpoint(path, Some(expected))?;
    ckpt.load_weights::<B>(EMA_FILE, device)
}
