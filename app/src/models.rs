//! World models for dreaming: where the shipped inference checkpoints live
//! (`assets/models/<scene>/`), which checkpoint a command uses (`--checkpoint`, else the shipped
//! one for the scene), and building a dreamed environment from it on a compute backend.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use model::world::checkpoint::{open_checkpoint, EMA_FILE};
use model::world::{DreamEnv, WorldModel, WorldModelConfig};
use scenes::{Env, SceneKind};

use crate::commands::make_scene;

/// Environment variable naming the folder that holds `models/<scene>/` (replaces the lookup).
pub const ASSETS_ENV: &str = "MEMWORLD_ASSETS";

/// The folders searched for shipped models: `$MEMWORLD_ASSETS` alone when it is set; else
/// `./assets`, the `assets` folder of the checkout the running binary was built in (found from
/// the executable in `target/<profile>/`), and the one this crate was compiled from.
fn asset_roots() -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os(ASSETS_ENV) {
        return vec![PathBuf::from(dir)];
    }
    let mut roots = Vec::new();
    roots.push(PathBuf::from("assets"));
    if let Ok(exe) = std::env::current_exe() {
        if let Some(repo) = exe.ancestors().nth(3) {
            roots.push(repo.join("assets"));
        }
    }
    roots.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("assets"),
    );
    roots
}

/// The shipped inference checkpoint for `scene`, if one is installed.
pub fn shipped_checkpoint(scene: SceneKind) -> Option<PathBuf> {
    asset_roots()
        .into_iter()
        .map(|root| root.join("models").join(scene.name()))
        .find(|dir| dir.join("state.json").is_file())
}

/// The checkpoint a dreaming command uses: `explicit`, else the shipped one for `scene`, else
/// an error that says how to get one.
pub fn checkpoint_for(scene: SceneKind, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    match shipped_checkpoint(scene) {
        Some(p) => Ok(p),
        None => bail!(
            "no world model to dream the {0} with: none is installed in assets/models/{0}/ \
             (set {ASSETS_ENV} to the folder holding models/), so pass --checkpoint RUN_DIR \
             from `memworld train`",
            scene.name()
        ),
    }
}

/// A loaded model and where it came from.
pub struct LoadedModel<B: Backend> {
    pub model: WorldModel<B>,
    pub config: WorldModelConfig,
    pub path: PathBuf,
    pub step: usize,
}

/// Loads the EMA weights of the checkpoint at `path` on `device`.
pub fn load_model<B: Backend>(path: &Path, device: &B::Device) -> Result<LoadedModel<B>> {
    let what = || format!("--checkpoint {}", path.display());
    let ckpt = open_checkpoint(path, None).with_context(what)?;
    let model = ckpt
        .load_weights::<B>(EMA_FILE, device)
        .with_context(what)?;
    Ok(LoadedModel {
        model,
        config: ckpt.config,
        path: path.to_path_buf(),
        step: ckpt.state.step,
    })
}

/// How a dreamed frame is sampled; `None` keeps the model's own setting.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sampling {
    /// Denoising (Euler) steps per frame (`sampling_steps`).
    pub euler_steps: Option<usize>,
    /// Noise level at which a dreamed frame is committed to the history (`history_noise`).
    pub history_noise: Option<f32>,
}

/// A dreamed `scene` (`size` cells, `res` pixels) driven by `model`, sampled as `sampling`
/// says.
pub fn dream_env<B: Backend>(
    model: &LoadedModel<B>,
    scene: SceneKind,
    size: usize,
    res: usize,
    sampling: Sampling,
    device: &B::Device,
) -> Result<DreamEnv<B>> {
    let real: Box<dyn Env> = make_scene(scene, size, res)?;
    let mut env = DreamEnv::new(real, model.model.clone(), device.clone()).with_context(|| {
        format!(
            "{} ({}) cannot dream the {} scene",
            model.path.display(),
            model.config.name,
            scene.name()
        )
    })?;
    if let Some(steps) = sampling.euler_steps {
        env.session_mut().set_sampling_steps(steps);
    }
    if let Some(tau) = sampling.history_noise {
        env.session_mut().set_history_noise(tau);
    }
    Ok(env)
}

/// Parses `--history-noise`: a noise level in [0, 1).
pub fn parse_history_noise(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(t) if (0.0..1.0).contains(&t) => Ok(t),
        _ => Err(format!(
            "'{s}' is not a history noise level (expected a number in [0, 1))"
        )),
    }
}

/// Parses `--euler-steps`: a whole number from 1 to 64.
pub fn parse_euler_steps(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=64) => Ok(n),
        _ => Err(format!(
            "'{s}' is not a number of Euler steps (expected 1 to 64)"
        )),
    }
}
