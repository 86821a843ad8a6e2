//! One step of an evaluation run: generate a batch of episodes with one model and score every
//! generated frame against its ground truth (SPEC §5.6).

use burn::tensor::backend::Backend;
use scenes::Frame;

use super::episodes::EvalEpisode;
use super::error::EvalError;
use super::generate::{generate_batch, truth_frames, GenerateOptions};
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
            let context = EvalEpisode {
                frames: e.frames[..e.context].to_vec(),
                context: 0,
                ..e.clone()
            };
            let mut truth = truth_frames(&context, resolution)?;
            let gt = truth_frames(e, resolution)?;
            let (psnr, ssim) = score_frames(&gt, &generated);
            truth.extend(gt);
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
