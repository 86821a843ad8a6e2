//! The loss log of a training run: `loss.csv` (one row per logged update, appended as training
//! goes; cut back to the resumed step on `--resume`, so a resumed run's log reads as if it had
//! never stopped) and `summary.json` (written atomically at the end).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use scenes::episode::atomic::write_bytes_atomic;
use serde::{Deserialize, Serialize};

use super::error::WorldError;
use super::train::TrainSummary;

pub const LOSS_FILE: &str = "loss.csv";
pub const SUMMARY_FILE: &str = "summary.json";
const HEADER: &str = "step,loss,lr,grad_norm,tokens_per_s";

/// One row of `loss.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossRow {
    /// Updates done (the row covers the updates since the previous row).
    pub step: usize,
    /// Mean loss over the updates the row covers.
    pub loss: f64,
    /// Learning rate of the row's last update.
    pub lr: f64,
    /// Global gradient norm before clipping at the row's last update (NaN without clipping).
    pub grad_norm: f64,
    /// Training throughput over the rows's updates.
    pub tokens_per_s: f64,
}

impl LossRow {
    fn to_csv(&self) -> String {
        format!(
            "{},{:.9e},{:.6e},{:.6e},{:.1}\n",
            self.step, self.loss, self.lr, self.grad_norm, self.tokens_per_s
        )
    }

    fn from_csv(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.trim().split(',').collect();
        if f.len() != 5 {
            return None;
        }
        Some(Self {
            step: f[0].parse().ok()?,
            loss: f[1].parse().ok()?,
            lr: f[2].parse().ok()?,
            grad_norm: f[3].parse().ok()?,
            tokens_per_s: f[4].parse().ok()?,
        })
    }
}

/// Reads a `loss.csv`.
pub fn read_loss_csv(path: &Path) -> Result<Vec<LossRow>, WorldError> {
    let text = std::fs::read_to_string(path).map_err(|source| WorldError::Io {
        path: path.into(),
        source,
    })?;
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            LossRow::from_csv(l).ok_or_else(|| WorldError::Io {
                path: path.into(),
                source: std::io::Error::other(format!("line {} is not a loss row: {l:?}", i + 2)),
            })
        })
        .collect()
}

/// `loss.csv` open for appending.
pub struct LossLog {
    path: PathBuf,
    file: File,
}

impl LossLog {
    /// Starts the log of a run in `out` at update `start`: a fresh file, or, when resuming,
    /// the existing rows up to `start` (rows logged after the checkpoint are dropped).
    pub fn open(out: &Path, start: usize, resuming: bool) -> Result<Self, WorldError> {
        std::fs::create_dir_all(out).map_err(|source| WorldError::Io {
            path: out.into(),
            source,
        })?;
        let path = out.join(LOSS_FILE);
        let mut text = format!("{HEADER}\n");
        if resuming && path.is_file() {
            for row in read_loss_csv(&path)?
                .into_iter()
                .filter(|r| r.step <= start)
            {
                text.push_str(&row.to_csv());
            }
        }
        write_bytes_atomic(&path, text.as_bytes()).map_err(|source| WorldError::Io {
            path: path.clone(),
            source,
        })?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|source| WorldError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Self { path, file })
    }

    pub fn append(&mut self, row: &LossRow) -> Result<(), WorldError> {
        self.file
            .write_all(row.to_csv().as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|source| WorldError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// Writes `summary.json` (without the per-row log, which is in `loss.csv`).
pub fn write_summary(out: &Path, summary: &TrainSummary) -> Result<(), WorldError> {
    let path = out.join(SUMMARY_FILE);
    let mut value = serde_json::to_value(summary).expect("summaries serialise");
    if let Some(o) = value.as_object_mut() {
        o.remove("rows");
    }
    let text = serde_json::to_string_pretty(&value).expect("json");
    write_bytes_atomic(&path, text.as_bytes()).map_err(|source| WorldError::Io { path, source })
}
