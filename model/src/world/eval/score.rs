//! Scores of generated frames (SPEC §5.6): PSNR and SSIM of every generated frame against its
//! ground truth (u8 frames at the model's resolution, `world::metrics`), per-episode means, and
//! the curves of the mean over episodes against frame distance.
//!
//! Frame distance d = k + 1 for the k-th generated frame (0-based): frames since the end of
//! the context. In retrieval the frame generated at distance d revisits the context frame seen
//! 2d − 1 frames before it.

use scenes::Frame;
use serde::{Deserialize, Serialize};

use crate::world::metrics::{psnr_frames, ssim_frames};

/// PSNR of identical frames is infinite; scores are capped here so means stay finite (the same
/// cap as the training previews).
pub const PSNR_CAP_DB: f64 = 100.0;

/// PSNR (dB, capped at [`PSNR_CAP_DB`]) and SSIM of each generated frame against its truth.
pub fn score_frames(truth: &[Frame], generated: &[Frame]) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(
        truth.len(),
        generated.len(),
        "one generated frame per ground-truth frame"
    );
    truth
        .iter()
        .zip(generated)
        .map(|(t, g)| (psnr_frames(g, t).min(PSNR_CAP_DB), ssim_frames(g, t)))
        .unzip()
}

/// The per-frame scores of one episode.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeScores {
    pub index: usize,
    pub origin: String,
    pub psnr: Vec<f64>,
    pub ssim: Vec<f64>,
}

/// One episode's means, as reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeSummary {
    pub index: usize,
    pub origin: String,
    pub psnr: f64,
    pub ssim: f64,
}

/// Means over episodes at each frame distance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistanceCurve {
    /// 1, 2, …, M.
    pub distance: Vec<usize>,
    pub psnr: Vec<f64>,
    pub ssim: Vec<f64>,
}

/// Everything measured for one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelScores {
    /// Mean over every generated frame of every episode.
    pub psnr: f64,
    pub ssim: f64,
    /// Standard deviation over episodes of the per-episode means.
    pub psnr_episode_std: f64,
    pub ssim_episode_std: f64,
    pub curve: DistanceCurve,
    pub episodes: Vec<EpisodeSummary>,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Population standard deviation (0 for fewer than two values).
fn std(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt()
}

impl ModelScores {
    /// Aggregates episodes that all generated the same number of frames.
    pub fn from_episodes(episodes: &[EpisodeScores]) -> Self {
        let m = episodes.first().map_or(0, |e| e.psnr.len());
        assert!(
            episodes
                .iter()
                .all(|e| e.psnr.len() == m && e.ssim.len() == m),
            "every episode must have {m} scored frames"
        );
        let column = |k: usize, f: fn(&EpisodeScores) -> &Vec<f64>| {
            mean(&episodes.iter().map(|e| f(e)[k]).collect::<Vec<_>>())
        };
        let curve = DistanceCurve {
            distance: (1..=m).collect(),
            psnr: (0..m).map(|k| column(k, |e| &e.psnr)).collect(),
            ssim: (0..m).map(|k| column(k, |e| &e.ssim)).collect(),
        };
        let summaries: Vec<EpisodeSummary> = episodes
            .iter()
            .map(|e| EpisodeSummary {
                index: e.index,
                origin: e.origin.clone(),
                psnr: mean(&e.psnr),
                ssim: mean(&e.ssim),
            })
            .collect();
        let per_psnr: Vec<f64> = summaries.iter().map(|s| s.psnr).collect();
        let per_ssim: Vec<f64> = summaries.iter().map(|s| s.ssim).collect();
        Self {
            // Equal frame counts per episode: the mean of the means is the mean over frames.
            psnr: mean(&per_psnr),
            ssim: mean(&per_ssim),
            psnr_episode_std: std(&per_psnr),
            ssim_episode_std: std(&per_ssim),
            curve,
            episodes: summaries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(index: usize, psnr: &[f64], ssim: &[f64]) -> EpisodeScores {
        EpisodeScores {
            index,
            origin: format!("e{index}"),
            psnr: psnr.to_vec(),
            ssim: ssim.to_vec(),
        }
    }

    #[test]
    fn aggregation_matches_hand_computed_means() {
        let s = ModelScores::from_episodes(&[
            ep(0, &[10.0, 20.0, 30.0], &[0.5, 0.6, 0.7]),
            ep(1, &[20.0, 40.0, 60.0], &[0.1, 0.2, 0.3]),
        ]);
        assert_eq!(s.curve.distance, vec![1, 2, 3]);
        assert_eq!(s.curve.psnr, vec![15.0, 30.0, 45.0]);
        assert!((s.curve.ssim[1] - 0.4).abs() < 1e-12);
        assert!((s.psnr - 30.0).abs() < 1e-12);
        assert!((s.ssim - 0.4).abs() < 1e-12);
        // Episode means 20 and 40: population std 10.
        assert!((s.psnr_episode_std - 10.0).abs() < 1e-12);
        assert_eq!(s.episodes[1].psnr, 40.0);
    }

    #[test]
    fn identical_frames_score_the_cap_and_one() {
        let mut f = Frame::new(16, 16);
        for (i, b) in f.rgb.iter_mut().enumerate() {
            *b = (i * 7 % 256) as u8;
        }
        let (p, s) = score_frames(&[f.clone()], &[f.clone()]);
        assert_eq!(p, vec![PSNR_CAP_DB]);
        assert!((s[0] - 1.0).abs() < 1e-12);
        let mut g = f.clone();
        g.rgb[0] ^= 0x40;
        let (p, _) = score_frames(&[f], &[g]);
        assert!(p[0] < PSNR_CAP_DB && p[0] > 40.0);
    }
}
