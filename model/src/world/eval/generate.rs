//! Generation for the evaluation (SPEC §5.5, §5.6): a batch of episodes is prefilled into a
//! streaming session (in chunks of frames) and each later frame is sampled with the session's
//! Euler sampler, every episode from its own noise (and its own commit noise, with history
//! noise), so the frames an episode gets do not depend on which episodes share its batch.
//!
//! Each frame is `WorldSession::denoise_and_commit` (S denoising passes that read the state
//! and cache, clamp to [-1, 1], one committing pass at the history noise level) from the
//! initial noise assembled per episode; a test checks it equals `generate_frames` for one
//! episode.

use std::ops::Range;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use scenes::Frame;

use super::episodes::EvalEpisode;
use super::error::EvalError;
use super::protocol::noise_seed;
use crate::world::config::WorldModelConfig;
use crate::world::diffusion::{history_noise_seed, initial_noise};
use crate::world::frames::{frame_to_unit, unit_to_u8};
use crate::world::model::FrameConditions;
use crate::world::session::WorldSession;

/// How frames are generated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GenerateOptions {
    /// Euler steps per frame.
    pub steps: usize,
    /// Context frames committed per prefill pass (bounds the memory of the prefill).
    pub prefill_chunk: usize,
    /// Noise level at which generated frames are committed to the history
    /// (`WorldModelConfig::history_noise`).
    pub history_noise: f32,
    /// The run's seed; episode e's frame k starts from the noise of `noise_seed(seed, e, k)`.
    pub seed: u64,
    /// Prefill only the last K context frames (`None`: all). The frames before them are
    /// dropped, as if the episode began there: a control for memory.
    pub keep_context: Option<usize>,
}

/// The ground truth of `episode` at the model's `resolution` ([`frames_at`]).
pub fn truth_frames(episode: &EvalEpisode, resolution: usize) -> Result<Vec<Frame>, EvalError> {
    frames_at(episode.truth(), resolution)
}

/// `frames` at the model's `resolution`, quantised as the model sees its inputs (box-averaged
/// to the resolution, then to bytes).
pub fn frames_at(frames: &[Frame], resolution: usize) -> Result<Vec<Frame>, EvalError> {
    frames
        .iter()
        .map(|f| {
            let unit = frame_to_unit(f, resolution)?;
            Ok(Frame {
                width: resolution,
                height: resolution,
                rgb: unit.into_iter().map(unit_to_u8).collect(),
            })
        })
        .collect()
}

/// The conditions of frames `range` of every episode, as `config` asks for them.
///
/// # Shapes
/// - returns actions `[batch, frames]`, poses `[batch, frames, 4]`
pub fn conditions<B: Backend>(
    episodes: &[&EvalEpisode],
    range: Range<usize>,
    config: &WorldModelConfig,
    device: &B::Device,
) -> Result<FrameConditions<B>, EvalError> {
    let (b, n) = (episodes.len(), range.len());
    let actions = config.n_actions.map(|_| {
        let a: Vec<i64> = episodes
            .iter()
            .flat_map(|e| e.actions[range.clone()].iter().map(|&a| a as i64))
            .collect();
        Tensor::<B, 2, Int>::from_data(TensorData::new(a, [b, n]), device)
    });
    let poses = match config.pose_dim {
        None => None,
        Some(d) => {
            let mut p: Vec<f32> = Vec::with_capacity(b * n * d);
            for e in episodes {
                let Some(poses) = &e.poses else {
                    return Err(EvalError::ModelMismatch {
                        model: config.name.clone(),
                        what: e.origin.clone(),
                        reason: "the model is pose-conditioned but the episode has no poses".into(),
                    });
                };
                if d != 4 {
                    return Err(EvalError::ModelMismatch {
                        model: config.name.clone(),
                        what: e.origin.clone(),
                        reason: format!("maze poses have 4 features, the model expects {d}"),
                    });
                }
                p.extend(poses[range.clone()].iter().flatten());
            }
            Some(Tensor::<B, 3>::from_data(
                TensorData::new(p, [b, n, d]),
                device,
            ))
        }
    };
    Ok(FrameConditions { actions, poses })
}

/// Frames `range` of every episode at the model's resolution, in [-1, 1].
///
/// # Shapes
/// - returns `[batch, frames, R, R, 3]`
pub fn frames_tensor<B: Backend>(
    episodes: &[&EvalEpisode],
    range: Range<usize>,
    resolution: usize,
    device: &B::Device,
) -> Result<Tensor<B, 5>, EvalError> {
    let (b, n, r) = (episodes.len(), range.len(), resolution);
    let mut v = Vec::with_capacity(b * n * r * r * 3);
    for e in episodes {
        for f in &e.frames[range.clone()] {
            v.extend(frame_to_unit(f, r)?);
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(v, [b, n, r, r, 3]),
        device,
    ))
}

/// Prefills `session` (reset first) with the context of `episodes` (its last
/// `opts.keep_context` frames where set) and generates the rest of each episode. Returns the
/// generated frames of each episode at the model's resolution; `on_frame` is called after each
/// generated frame of the batch.
pub fn generate_batch<B: Backend>(
    session: &mut WorldSession<B>,
    episodes: &[&EvalEpisode],
    opts: &GenerateOptions,
    on_frame: &mut dyn FnMut(),
) -> Result<Vec<Vec<Frame>>, EvalError> {
    let Some(first) = episodes.first() else {
        return Ok(Vec::new());
    };
    let (n, total) = (first.context, first.frames.len());
    if let Some(e) = episodes
        .iter()
        .find(|e| e.context != n || e.frames.len() != total)
    {
        return Err(EvalError::Settings(format!(
            "episodes of one batch must have equal lengths ({} has {} + {}, {} has {} + {})",
            first.origin,
            n,
            total - n,
            e.origin,
            e.context,
            e.frames.len() - e.context
        )));
    }
    if opts.steps == 0 || opts.prefill_chunk == 0 {
        return Err(EvalError::Settings(
            "the Euler steps and the prefill chunk must be at least 1".into(),
        ));
    }
    if let Some(k) = opts.keep_context.filter(|&k| k == 0 || k > n) {
        return Err(EvalError::Settings(format!(
            "the context frames kept ({k}) must be between 1 and the context ({n})"
        )));
    }
    let config = session.model().config().clone();
    let device = session.device().clone();
    let (r, ch) = (config.resolution, config.channels);
    session.reset();
    session.set_sampling_steps(opts.steps);
    session.set_history_noise(opts.history_noise);
    let mut start = opts.keep_context.map_or(0, |k| n - k);
    while start < n {
        let len = opts.prefill_chunk.min(n - start);
        let x = frames_tensor::<B>(episodes, start..start + len, r, &device)?;
        let cond = conditions::<B>(episodes, start..start + len, &config, &device)?;
        session.prefill(x, &cond);
        start += len;
    }

    let mut out: Vec<Vec<Frame>> = vec![Vec::with_capacity(total - n); episodes.len()];
    for k in 0..total - n {
        let cond = conditions::<B>(episodes, n + k..n + k + 1, &config, &device)?;
        let noise = |seed: fn(u64) -> u64| {
            let per_episode: Vec<Tensor<B, 5>> = episodes
                .iter()
                .map(|e| {
                    let s = seed(noise_seed(opts.seed, e.index, k));
                    initial_noise::<B>([1, 1, r, r, ch], s, &device)
                })
                .collect();
            Tensor::cat(per_episode, 0)
        };
        let commit_noise = (opts.history_noise > 0.0).then(|| noise(history_noise_seed));
        let x0 = session.denoise_and_commit(noise(|s| s), commit_noise, &cond);
        let values = x0
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32 frame data");
        for (frames, pixels) in out.iter_mut().zip(values.chunks_exact(r * r * ch)) {
            frames.push(Frame {
                width: r,
                height: r,
                rgb: pixels.iter().map(|&v| unit_to_u8(v)).collect(),
            });
        }
        on_frame();
    }
    Ok(out)
}
