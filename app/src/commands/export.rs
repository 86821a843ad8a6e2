//! `memworld export`: turns a training checkpoint into a small inference checkpoint (EMA
//! weights, f16 by default) — the form models are shipped in under `assets/models/<scene>/`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use model::world::checkpoint::Precision;
use model::world::export::export_for_inference;

/// Export a checkpoint's EMA weights for inference (play --dream, rollout, eval, bench).
///
/// The output directory holds config.json, state.json (step, checksums, parameter manifest)
/// and ema.mpk; it is written atomically and loads wherever a checkpoint is accepted, but
/// cannot be resumed. Ship a maze model as assets/models/maze to make it the default.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A checkpoint directory or a run directory (its latest checkpoint).
    #[arg(long, value_name = "DIR")]
    pub checkpoint: PathBuf,
    /// Output directory (replaced if it exists).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Storage precision of the weights (loaded back as f32 in every case).
    #[arg(long, value_enum, default_value_t = PrecisionArg::F16)]
    pub precision: PrecisionArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// 32-bit floats (exact).
    F32,
    /// 16-bit floats (half the size).
    F16,
    /// 8-bit integers in blocks of 64 with one f32 scale each (about a quarter of the size).
    Q8,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let precision = match args.precision {
        PrecisionArg::F32 => Precision::F32,
        PrecisionArg::F16 => Precision::F16,
        PrecisionArg::Q8 => Precision::Q8,
    };
    let s = export_for_inference::<burn::backend::NdArray>(
        &args.checkpoint,
        &args.out,
        precision,
        &Default::default(),
    )
    .with_context(|| format!("--checkpoint {}", args.checkpoint.display()))?;
    println!(
        "wrote {} ({} at step {}, {} parameters, {:.1} MiB of {:?} weights)",
        s.dir.display(),
        s.config,
        s.step,
        s.params,
        s.weight_bytes as f64 / (1024.0 * 1024.0),
        args.precision
    );
    Ok(())
}
