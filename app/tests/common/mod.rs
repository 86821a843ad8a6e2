//! Helpers shared by the CLI tests: running the binary, scratch folders, the one-line-error
//! check, and a `tiny` checkpoint with random (non-zero) weights.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module, ModuleMapper, Param};
use burn::optim::AdamWConfig;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use model::world::checkpoint::save_checkpoint;
use model::world::diffusion::gaussian;
use model::world::{WorldModel, WorldModelConfig};
use scenes::Rng;

type AB = Autodiff<NdArray>;

/// Runs the `memworld` binary with `args`.
pub fn memworld(args: &[&str]) -> Output {
    memworld_env(args, &[])
}

/// Runs the `memworld` binary with `args` and extra environment variables.
pub fn memworld_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memworld"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run memworld")
}

/// An empty folder for one test under the target directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Fails with exactly one `error:` line mentioning `needle` (clap may add a usage hint), and
/// no panic trace.
pub fn assert_one_line_error(out: &Output, needle: &str) {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "panic trace: {err}"
    );
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {err}");
    assert!(
        errors[0].contains(needle),
        "error should mention {needle:?}: {err}"
    );
}

/// Adds N(0, 0.1²) noise to every weight (a fresh model's zero-initialised head would make
/// every sample the same).
struct Jitter(Rng);

impl<Bk: Backend> ModuleMapper<Bk> for Jitter {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<Bk, D>>) -> Param<Tensor<Bk, D>> {
        let (id, t, mapper) = p.consume();
        let noise = gaussian::<Bk, D>(t.dims(), &mut self.0, &t.device()).mul_scalar(0.1);
        Param::from_mapped_value(id, t + noise, mapper)
    }
}

/// A run directory `dir` holding a checkpoint of update `step` of the tiny preset with random
/// weights drawn from `seed`.
pub fn tiny_checkpoint(dir: &Path, step: usize, seed: u64) -> PathBuf {
    let model: WorldModel<AB> = WorldModelConfig::tiny()
        .init::<AB>(&Default::default())
        .map(&mut Jitter(Rng::new(seed)));
    let optim = AdamWConfig::new().init::<AB, WorldModel<AB>>();
    save_checkpoint(
        dir,
        step,
        &model,
        &model.valid(),
        &optim,
        serde_json::json!({}),
        1,
    )
    .unwrap();
    dir.to_path_buf()
}
