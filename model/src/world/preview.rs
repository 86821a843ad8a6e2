//! Sampled continuations of real clips (SPEC §5.4 "periodic sample videos", §5.6): given the
//! first `context` clean frames of a clip and the conditions of every frame, generate the rest
//! frame by frame from pure noise with the full-sequence Euler sampler, and score them against
//! the true frames with PSNR.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use scenes::Frame;

use super::data::HostBatch;
use super::diffusion::sample_next_full;
use super::frames::tensor_to_frame;
use super::metrics::psnr_frames;
use super::model::{FrameConditions, WorldModel};

/// Generates frames `context..frames` of each clip autoregressively: frame t is sampled from
/// noise (seed `seed + t`) given the clean context and the frames generated before it.
///
/// # Shapes
/// - clips: `[batch, frames, H, W, C]` (only the first `context` frames are read)
/// - cond: conditions of all `frames` frames
/// - returns `[batch, frames - context, H, W, C]`
pub fn generate_continuation<B: Backend>(
    model: &WorldModel<B>,
    clips: Tensor<B, 5>,
    cond: &FrameConditions<B>,
    context: usize,
    steps: usize,
    seed: u64,
) -> Tensor<B, 5> {
    let [_b, f, _h, _w, _c] = clips.dims();
    assert!(
        context < f,
        "generate_continuation: context {context} leaves nothing of {f} frames to generate"
    );
    let mut history = clips.narrow(1, 0, context);
    let mut generated = Vec::with_capacity(f - context);
    for t in context..f {
        let next = sample_next_full(
            model,
            history.clone(),
            &cond.frames(0, t + 1),
            steps,
            seed.wrapping_add(t as u64),
        );
        history = Tensor::cat(vec![history, next.clone()], 1);
        generated.push(next);
    }
    Tensor::cat(generated, 1)
}

/// One previewed clip: the true frames and, after the context, the generated ones.
#[derive(Clone, Debug)]
pub struct PreviewClip {
    pub truth: Vec<Frame>,
    /// Frames `context..` as generated.
    pub generated: Vec<Frame>,
    /// Mean PSNR (dB) of the generated frames against the true ones.
    pub psnr: f64,
}

/// Samples of the EMA model at one training step, for the sample videos.
#[derive(Clone, Debug)]
pub struct PreviewSamples {
    /// Updates done when the samples were drawn.
    pub step: usize,
    /// Number of clean context frames at the start of every clip.
    pub context: usize,
    pub clips: Vec<PreviewClip>,
}

impl PreviewSamples {
    /// Mean PSNR over all generated frames.
    pub fn mean_psnr(&self) -> f64 {
        let n = self.clips.len().max(1) as f64;
        self.clips.iter().map(|c| c.psnr).sum::<f64>() / n
    }
}

/// Frames of a `[batch, frames, H, W, 3]` tensor in [-1, 1] as u8 frames, per clip.
pub fn tensor_to_clips<B: Backend>(t: Tensor<B, 5>) -> Vec<Vec<Frame>> {
    let [b, f, h, w, c] = t.dims();
    (0..b)
        .map(|i| {
            (0..f)
                .map(|j| {
                    tensor_to_frame(t.clone().narrow(0, i, 1).narrow(1, j, 1).reshape([h, w, c]))
                })
                .collect()
        })
        .collect()
}

/// Generates and scores continuations of `batch`'s clips after `context` frames.
pub fn preview<B: Backend>(
    model: &WorldModel<B>,
    batch: &HostBatch,
    context: usize,
    step: usize,
    seed: u64,
    device: &B::Device,
) -> PreviewSamples {
    let (x0, cond) = batch.to_device::<B>(model.config(), device);
    let steps = model.config().sampling_steps;
    let generated = generate_continuation(model, x0.clone(), &cond, context, steps, seed);
    let truth = tensor_to_clips(x0);
    let generated = tensor_to_clips(generated);
    let clips = truth
        .into_iter()
        .zip(generated)
        .map(|(truth, generated)| {
            let psnr = generated
                .iter()
                .zip(&truth[context..])
                .map(|(g, t)| psnr_frames(g, t).min(100.0))
                .sum::<f64>()
                / generated.len() as f64;
            PreviewClip {
                truth,
                generated,
                psnr,
            }
        })
        .collect();
    PreviewSamples {
        step,
        context,
        clips,
    }
}
