//! The evaluation report (SPEC §5.6): settings, and for each model its checkpoint and scores,
//! rendered as JSON (means and per-distance curves), a markdown table and CSV tables. Every
//! rendering is a pure function of the scores, so a run repeated with the same seed and
//! checkpoints gives byte-identical files.

use std::fmt::Write;

use scenes::SceneKind;
use serde::{Deserialize, Serialize};

use super::protocol::{EvalSettings, Protocol};
use super::score::{EpisodeScores, ModelScores};

/// One evaluated model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    /// Unique name in the report (the preset name, made unique when repeated).
    pub label: String,
    /// The checkpoint as given on the command line.
    pub checkpoint: String,
    /// The preset the checkpoint was trained as.
    pub config: String,
    /// Optimizer updates of the checkpoint.
    pub train_step: usize,
    pub params: usize,
    /// Euler steps used per generated frame.
    pub sampling_steps: usize,
    /// Noise level at which generated frames were committed (absent in older reports: 0).
    #[serde(default)]
    pub history_noise: f32,
    /// Context frames prefilled when fewer than all (`--keep-context`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_context: Option<usize>,
    pub scores: ModelScores,
}

/// The `config` of the reference row, which no model produced (see [`ModelReport::reference`]).
pub const REFERENCE_CONFIG: &str = "reference";

impl ModelReport {
    /// The row of the scores of holding the last context frame
    /// ([`hold_last_frame`](super::run::hold_last_frame)).
    pub fn reference(scores: ModelScores) -> Self {
        Self {
            label: super::run::HOLD_LABEL.to_string(),
            checkpoint: "-".to_string(),
            config: REFERENCE_CONFIG.to_string(),
            train_step: 0,
            params: 0,
            sampling_steps: 0,
            history_noise: 0.0,
            kept_context: None,
            scores,
        }
    }

    pub fn is_reference(&self) -> bool {
        self.config == REFERENCE_CONFIG
    }
}

/// An evaluation run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub protocol: Protocol,
    /// Where context and ground truth came from.
    pub source: String,
    pub scene: SceneKind,
    /// Maze cells per side (the voxel world's size for voxel episodes).
    pub size: usize,
    /// Frame side of the episodes before any downsampling to a model's resolution.
    pub source_resolution: usize,
    pub settings: EvalSettings,
    /// The range of level seeds the episodes used, `[first, last]` (scene sources only).
    pub level_seeds: Option<[u64; 2]>,
    pub models: Vec<ModelReport>,
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A markdown table cell (pipes escaped).
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

impl EvalReport {
    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("reports serialise");
        s.push('\n');
        s
    }

    /// A markdown section: what was run, then one row per model.
    pub fn markdown(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let what = match s.protocol {
            Protocol::Retrieval => format!(
                "{n} context frames along an exploration path, then the same poses walked back; \
                 {n} frames generated against the reversed context",
                n = s.context
            ),
            Protocol::Reasoning => format!(
                "{} context frames, then {} frames of a fresh trajectory generated against the \
                 rendered ground truth",
                s.context, s.generate
            ),
        };
        writeln!(
            out,
            "## {} ({} → {})\n",
            s.protocol.name(),
            s.context,
            s.generate
        )
        .unwrap();
        writeln!(out, "- Protocol: {what}.").unwrap();
        writeln!(
            out,
            "- Episodes: {} from {}, seed {}.",
            s.episodes, self.source, s.seed
        )
        .unwrap();
        if let Some([a, b]) = self.level_seeds {
            writeln!(out, "- Level seeds {a}–{b} (held out from training).").unwrap();
        }
        writeln!(
            out,
            "- Metrics: mean PSNR and SSIM (11×11 Gaussian window, σ = 1.5) over every generated \
             frame, ± the standard deviation over episodes."
        )
        .unwrap();
        if let Some(r) = self.models.iter().find(|m| m.is_reference()) {
            writeln!(
                out,
                "- The row '{}' scores no model: it holds the last context frame for every \
                 generated frame, the yardstick a model must beat.",
                r.label
            )
            .unwrap();
        }
        writeln!(out).unwrap();
        writeln!(
            out,
            "| Model | Checkpoint | Step | Params | Euler steps | History noise | PSNR (dB) ↑ | SSIM ↑ | PSNR first → last frame |"
        )
        .unwrap();
        writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|").unwrap();
        for m in &self.models {
            let c = &m.scores.curve;
            let (first, last) = (
                c.psnr.first().copied().unwrap_or(f64::NAN),
                c.psnr.last().copied().unwrap_or(f64::NAN),
            );
            let (checkpoint, step, params, steps, noise) = if m.is_reference() {
                let none = || "—".to_string();
                (none(), none(), none(), none(), none())
            } else {
                (
                    md_cell(&m.checkpoint),
                    m.train_step.to_string(),
                    format!("{:.2}M", m.params as f64 / 1e6),
                    m.sampling_steps.to_string(),
                    m.history_noise.to_string(),
                )
            };
            writeln!(
                out,
                "| {} | {checkpoint} | {step} | {params} | {steps} | {noise} | {:.2} ± {:.2} | {:.3} ± {:.3} | {:.2} → {:.2} |",
                md_cell(&m.label),
                m.scores.psnr,
                m.scores.psnr_episode_std,
                m.scores.ssim,
                m.scores.ssim_episode_std,
                first,
                last
            )
            .unwrap();
        }
        out
    }

    /// One row per model: the means and settings.
    pub fn summary_csv(&self) -> String {
        let s = &self.settings;
        let mut out = String::from(
            "model,config,checkpoint,train_step,params,protocol,context,generate,episodes,seed,sampling_steps,history_noise,psnr,psnr_episode_std,ssim,ssim_episode_std\n",
        );
        for m in &self.models {
            writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&m.label),
                csv_field(&m.config),
                csv_field(&m.checkpoint),
                m.train_step,
                m.params,
                s.protocol.name(),
                s.context,
                s.generate,
                s.episodes,
                s.seed,
                m.sampling_steps,
                m.history_noise,
                m.scores.psnr,
                m.scores.psnr_episode_std,
                m.scores.ssim,
                m.scores.ssim_episode_std
            )
            .unwrap();
        }
        out
    }

    /// One row per model and frame distance: the means over episodes.
    pub fn curves_csv(&self) -> String {
        let mut out = String::from("model,distance,psnr,ssim\n");
        for m in &self.models {
            let c = &m.scores.curve;
            for i in 0..c.distance.len() {
                writeln!(
                    out,
                    "{},{},{},{}",
                    csv_field(&m.label),
                    c.distance[i],
                    c.psnr[i],
                    c.ssim[i]
                )
                .unwrap();
            }
        }
        out
    }
}

/// Header of the per-frame CSV.
pub const FRAMES_CSV_HEADER: &str = "model,episode,origin,distance,psnr,ssim\n";

/// Per-frame rows of one model's episodes (append to a file that starts with
/// [`FRAMES_CSV_HEADER`]).
pub fn frames_csv_rows(label: &str, episodes: &[EpisodeScores]) -> String {
    let mut out = String::new();
    for e in episodes {
        for (k, (p, s)) in e.psnr.iter().zip(&e.ssim).enumerate() {
            writeln!(
                out,
                "{},{},{},{},{p},{s}",
                csv_field(label),
                e.index,
                csv_field(&e.origin),
                k + 1
            )
            .unwrap();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("runs/a"), "runs/a");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(md_cell("a|b"), "a\\|b");
    }
}
