//! One step of an evaluation run: generate a batch of episodes with one model and score every
//! generated frame against its ground truth (SPEC §5.6); and the reference every report
//! carries, the last context frame held for every generated frame (no model).

use burn::tensor::backend::Backend;
use scenes::Frame;

use super::episodes::EvalEpisode;
use super::error::EvalError;
use super::generate::{frames_at, generate_batch, truth_frames, GenerateOptions};
use super::score::{score_frames, EpisodeScores};
use crate::world::session::WorldSession;

/// What one episode gave with one model.
#[derive(Clone, Debug)]
pub struct EpisodeOutput {
    pub scores: EpisodeScores,
    /// Every frame of the episode (context, then ground truth) at the model's resolution.
    pub truth: Vec<Frame>,
    /// The generated frames (after the context) at the model's resolution.
    pub generated: Vec<Frame>,
}

/// Generates `episodes` (one batch) with the model of `session` and scores them.
/// `on_frame` is called after each generated frame of the batch.
pub fn evaluate_batch<B: Backend>(
    session: &mut WorldSession<B>,
    episodes: &[EvalEpisode],
    opts: &GenerateOptions,
    on_frame: &mut dyn FnMut(),
) -> Result<Vec<EpisodeOutput>, EvalError> {
    let resolution = session.model().config().resolution;
    let refs: Vec<&EvalEpisode> = episodes.iter().collect();
    let generated = generate_batch(session, &refs, opts, on_frame)?;
    episodes
        .iter()
        .zip(generated)
        .map(|(e, generated)| {
            let truth = frames_at(&e.frames, resolution)?;
            let (psnr, ssim) = score_frames(&truth[e.context..], &generated);
            Ok(EpisodeOutput {
                scores: EpisodeScores {
                    index: e.index,
                    origin: e.origin.clone(),
                    psnr,
                    ssim,
                },
                truth,
                generated,
            })
        })
        .collect()
}

/// Label of the reference row: the last context frame held for every generated frame.
pub const HOLD_LABEL: &str = "hold last context frame";

/// The scores of holding the episode's last context frame for every generated frame, at
/// `resolution`: the yardstick of the episodes. A model that predicts the motion beats it on
/// the first frames; in retrieval only a model that remembers the context beats it on the way
/// back, where the agent sees again what it saw long before.
pub fn hold_last_frame(
    episode: &EvalEpisode,
    resolution: usize,
) -> Result<EpisodeScores, EvalError> {
    let last = episode.context - 1;
    let held = frames_at(&episode.frames[last..=last], resolution)?.remove(0);
    let truth = truth_frames(episode, resolution)?;
    let (psnr, ssim) = score_frames(&truth, &vec![held; truth.len()]);
    Ok(EpisodeScores {
        index: episode.index,
        origin: episode.origin.clone(),
        psnr,
        ssim,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use scenes::SceneKind;

    fn gray(side: usize, v: u8) -> Frame {
        Frame {
            width: side,
            height: side,
            rgb: vec![v; side * side * 3],
        }
    }

    #[test]
    fn holding_the_last_context_frame_scores_against_each_truth_frame() {
        // Context 50, 100; truth 100 (the held frame itself), then 110 (10 levels off).
        let frames = [50, 100, 100, 110].map(|v| gray(32, v)).to_vec();
        let episode = EvalEpisode {
            index: 3,
            origin: "test".into(),
            scene: SceneKind::Maze,
            actions: vec![0; frames.len()],
            poses: None,
            frames,
            context: 2,
        };
        let s = hold_last_frame(&episode, 16).unwrap();
        assert_eq!((s.index, s.psnr.len(), s.ssim.len()), (3, 2, 2));
        // Identical frames: the PSNR cap and SSIM 1.
        assert_eq!(s.psnr[0], crate::world::eval::PSNR_CAP_DB);
        assert!((s.ssim[0] - 1.0).abs() < 1e-12, "{}", s.ssim[0]);
        // Uniform frames 10 apart: PSNR = 20 log10(255 / 10); SSIM reduces to its luminance
        // term (2 μx μy + C1) / (μx² + μy² + C1), C1 = (0.01 · 255)².
        let want_psnr = 20.0 * (255.0f64 / 10.0).log10();
        let c1 = (0.01f64 * 255.0).powi(2);
        let want_ssim = (2.0 * 100.0 * 110.0 + c1) / (100.0f64.powi(2) + 110.0f64.powi(2) + c1);
        assert!((s.psnr[1] - want_psnr).abs() < 1e-9, "{}", s.psnr[1]);
        assert!((s.ssim[1] - want_ssim).abs() < 1e-6, "{}", s.ssim[1]);
    }
}
