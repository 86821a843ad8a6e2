//! Training data for the world model (SPEC §5.4): clips of `clip_frames` consecutive frames with
//! the action that produced each frame and the agent's pose, drawn from episode files or
//! generated on the fly by scene workers, assembled into batches on background threads.
//!
//! Determinism: the batch of update `step` is a pure function of (seed, step): every clip is
//! drawn with a generator seeded from the seed, the step and the clip's index in the batch. A
//! resumed run therefore sees exactly the batches the uninterrupted run would have seen, and
//! the number of worker threads never changes the data.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use crossbeam_channel::{bounded, Receiver};
use scenes::{Rng, SceneKind};

use super::config::WorldModelConfig;
use super::diffusion::{gaussian_host, training_taus_host, TauSampling};
use super::error::WorldError;
use super::model::FrameConditions;
use super::sources::{ClipSource, EpisodeSource, GeneratedSource, PoolSource};

/// Where training clips come from, as given on the command line:
/// a directory of episode files, `gen:maze:9` / `gen:voxel` (a new level per clip),
/// `gen:maze:9:pool=8` (a fixed pool of 8 generated clips, for quick overfitting checks), or
/// `gen:maze:9:revisit=50` (half of the maze clips walk their path back, see
/// [`GeneratedSource`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSpec {
    Episodes(PathBuf),
    Generated {
        scene: SceneKind,
        size: Option<usize>,
        pool: Option<usize>,
        /// Percent of clips that turn around and walk back along their path (maze only).
        revisit: Option<u32>,
    },
}

impl FromStr for DataSpec {
    type Err = WorldError;
    fn from_str(s: &str) -> Result<Self, WorldError> {
        let Some(rest) = s.strip_prefix("gen:") else {
            return Ok(DataSpec::Episodes(PathBuf::from(s)));
        };
        let bad = |reason: String| WorldError::Data {
            data: s.to_string(),
            reason,
        };
        let mut parts = rest.split(':');
        let scene: SceneKind = parts.next().unwrap_or("").parse().map_err(bad)?;
        let (mut size, mut pool, mut revisit) = (None, None, None);
        for p in parts {
            if let Some(n) = p.strip_prefix("pool=") {
                let n = n.parse::<usize>().ok().filter(|&n| n > 0);
                pool = Some(n.ok_or_else(|| bad(format!("'{p}' needs a positive clip count")))?);
            } else if let Some(n) = p.strip_prefix("revisit=") {
                let n = n.parse::<u32>().ok().filter(|&n| n <= 100);
                revisit =
                    Some(n.ok_or_else(|| bad(format!("'{p}' needs a percentage, 0 to 100")))?);
            } else if let Ok(n) = p.parse::<usize>() {
                size = Some(n);
            } else {
                return Err(bad(format!(
                    "unknown part '{p}' (expected gen:maze[:SIZE][:pool=N][:revisit=PERCENT] \
                     or gen:voxel[:pool=N])"
                )));
            }
        }
        if scene == SceneKind::Voxel && size.is_some() {
            return Err(bad("the voxel scene takes no size".into()));
        }
        if scene == SceneKind::Voxel && revisit.is_some() {
            return Err(bad(
                "revisits are a maze option (they mirror the maze's turn actions)".into(),
            ));
        }
        Ok(DataSpec::Generated {
            scene,
            size,
            pool,
            revisit,
        })
    }
}

impl std::fmt::Display for DataSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSpec::Episodes(p) => write!(f, "{}", p.display()),
            DataSpec::Generated {
                scene,
                size,
                pool,
                revisit,
            } => {
                write!(f, "gen:{}", scene.name())?;
                if let Some(n) = size {
                    write!(f, ":{n}")?;
                }
                if let Some(n) = pool {
                    write!(f, ":pool={n}")?;
                }
                if let Some(n) = revisit {
                    write!(f, ":revisit={n}")?;
                }
                Ok(())
            }
        }
    }
}

/// One clip on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    /// `[frames, R, R, 3]` values in [-1, 1].
    pub pixels: Vec<f32>,
    /// The action that produced each frame (0 = noop for an episode's first frame).
    pub actions: Vec<usize>,
    /// `[frames, pose_dim]` pose features (empty when the source has none).
    pub poses: Vec<f32>,
}

/// A batch on the host, laid out as the model's inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct HostBatch {
    pub batch: usize,
    pub frames: usize,
    pub resolution: usize,
    /// `[batch, frames, R, R, 3]` in [-1, 1].
    pub pixels: Vec<f32>,
    /// `[batch, frames]`.
    pub actions: Vec<i64>,
    /// `[batch, frames, pose_dim]`, empty when the source has no poses.
    pub poses: Vec<f32>,
    pub pose_dim: usize,
    /// The training noise of the batch, when its shape asked for it.
    pub noise: Option<HostNoise>,
}

/// Noise levels, loss mask and Gaussian noise of one training batch (SPEC §5.4), drawn on the
/// host from the batch's step so that training is reproducible on every backend.
#[derive(Clone, Debug, PartialEq)]
pub struct HostNoise {
    /// `[batch, frames]` noise levels τ.
    pub tau: Vec<f32>,
    /// `[batch, frames]`, 1 where the loss applies (0 on a clean prefix).
    pub mask: Vec<f32>,
    /// `[batch, frames, R, R, 3]` ε ~ N(0, 1).
    pub eps: Vec<f32>,
}

/// How training draws a batch's noise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseSpec {
    pub sampling: TauSampling,
    pub prefix_prob: f64,
}

impl HostBatch {
    pub fn from_clips(clips: &[Clip], resolution: usize, pose_dim: usize) -> Self {
        let frames = clips.first().map_or(0, |c| c.actions.len());
        Self {
            batch: clips.len(),
            frames,
            resolution,
            pixels: clips
                .iter()
                .flat_map(|c| c.pixels.iter().copied())
                .collect(),
            actions: clips
                .iter()
                .flat_map(|c| c.actions.iter().map(|&a| a as i64))
                .collect(),
            poses: clips.iter().flat_map(|c| c.poses.iter().copied()).collect(),
            pose_dim,
            noise: None,
        }
    }

    /// The noise tensors: τ `[batch, frames]`, mask `[batch, frames]`, ε `[batch, frames, R, R, 3]`.
    pub fn noise_to_device<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Option<(Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 5>)> {
        let (b, f, r) = (self.batch, self.frames, self.resolution);
        self.noise.as_ref().map(|n| {
            (
                Tensor::from_data(TensorData::new(n.tau.clone(), [b, f]), device),
                Tensor::from_data(TensorData::new(n.mask.clone(), [b, f]), device),
                Tensor::from_data(TensorData::new(n.eps.clone(), [b, f, r, r, 3]), device),
            )
        })
    }

    /// The clean frames and the conditions `config` asks for, on `device`.
    ///
    /// # Shapes
    /// - returns x0 `[batch, frames, R, R, 3]`, actions `[batch, frames]`, poses `[batch, frames, pose_dim]`
    pub fn to_device<B: Backend>(
        &self,
        config: &WorldModelConfig,
        device: &B::Device,
    ) -> (Tensor<B, 5>, FrameConditions<B>) {
        let (b, f, r) = (self.batch, self.frames, self.resolution);
        let x0 = Tensor::from_data(
            TensorData::new(self.pixels.clone(), [b, f, r, r, 3]),
            device,
        );
        let actions = config.n_actions.map(|_| {
            Tensor::<B, 2, Int>::from_data(TensorData::new(self.actions.clone(), [b, f]), device)
        });
        let poses = config.pose_dim.map(|d| {
            Tensor::<B, 3>::from_data(TensorData::new(self.poses.clone(), [b, f, d]), device)
        });
        (x0, FrameConditions { actions, poses })
    }
}

/// Random streams used by training; each is independent of the others.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Data = 1,
    Noise = 2,
    Preview = 3,
    Pool = 4,
}

/// A generator for (seed, stream, index), independent across all three.
pub fn stream_rng(seed: u64, stream: Stream, index: u64) -> Rng {
    let mut h = seed ^ 0x6A09_E667_F3BC_C909;
    for v in [stream as u64, index] {
        h = (h ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 29;
    }
    Rng::new(h)
}

/// What a batch is made of.
#[derive(Clone, Debug)]
pub struct BatchShape {
    pub batch: usize,
    pub clip_frames: usize,
    pub resolution: usize,
    pub pose_dim: usize,
    /// Draw the training noise with the batch (from `stream_rng(seed, Noise, step)`).
    pub noise: Option<NoiseSpec>,
}

/// Builds the clip source of `spec` for a model of `config`, checking that the data can feed
/// it (frame size, action count, poses).
pub fn open_source(
    spec: &DataSpec,
    config: &WorldModelConfig,
    clip_frames: usize,
    seed: u64,
) -> Result<Arc<dyn ClipSource>, WorldError> {
    let source: Arc<dyn ClipSource> = match spec {
        DataSpec::Episodes(dir) => Arc::new(EpisodeSource::open(dir, config, clip_frames)?),
        DataSpec::Generated {
            scene,
            size,
            pool,
            revisit,
        } => {
            let gen =
                GeneratedSource::new(*scene, *size, config)?.with_revisits(revisit.unwrap_or(0));
            match pool {
                None => Arc::new(gen),
                Some(n) => Arc::new(PoolSource::generate(&gen, *n, clip_frames, seed)?),
            }
        }
    };
    Ok(source)
}

/// The batch of update `step`: `shape.batch` clips, clip `i` drawn from
/// `stream_rng(seed, Data, step).fork(i)`, and, if `shape.noise` asks for it, the training noise
/// from `stream_rng(seed, Noise, step)`.
pub fn batch_for_step(
    source: &dyn ClipSource,
    shape: &BatchShape,
    seed: u64,
    step: usize,
) -> Result<HostBatch, WorldError> {
    let mut batch = batch_from_rng(source, shape, stream_rng(seed, Stream::Data, step as u64))?;
    if let Some(spec) = shape.noise {
        let mut rng = stream_rng(seed, Stream::Noise, step as u64);
        let (b, f) = (batch.batch, batch.frames);
        let (tau, mask) = training_taus_host(b, f, spec.sampling, spec.prefix_prob, &mut rng);
        let eps = gaussian_host(batch.pixels.len(), &mut rng);
        batch.noise = Some(HostNoise { tau, mask, eps });
    }
    Ok(batch)
}

/// A batch whose clip `i` is drawn from `rng.fork(i)`.
pub fn batch_from_rng(
    source: &dyn ClipSource,
    shape: &BatchShape,
    mut rng: Rng,
) -> Result<HostBatch, WorldError> {
    let clips = (0..shape.batch)
        .map(|i| source.sample(&mut rng.fork(i as u64), shape.clip_frames))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HostBatch::from_clips(
        &clips,
        shape.resolution,
        shape.pose_dim,
    ))
}

/// Batches for consecutive steps, produced by `workers` background threads into a bounded
/// channel and handed out in step order. With `workers == 0` batches are built on the caller's
/// thread.
pub struct BatchStream {
    source: Arc<dyn ClipSource>,
    shape: BatchShape,
    seed: u64,
    next_step: usize,
    pending: BTreeMap<usize, Result<HostBatch, WorldError>>,
    rx: Option<Receiver<(usize, Result<HostBatch, WorldError>)>>,
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl BatchStream {
    pub fn new(
        source: Arc<dyn ClipSource>,
        shape: BatchShape,
        seed: u64,
        start_step: usize,
        workers: usize,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        let mut rx = None;
        if workers > 0 {
            let (tx, r) = bounded(2 * workers);
            rx = Some(r);
            let counter = Arc::new(AtomicUsize::new(start_step));
            for _ in 0..workers {
                let (tx, counter, stop) = (tx.clone(), counter.clone(), stop.clone());
                let (source, shape) = (source.clone(), shape.clone());
                handles.push(std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let step = counter.fetch_add(1, Ordering::Relaxed);
                        let batch = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            batch_for_step(source.as_ref(), &shape, seed, step)
                        }))
                        .unwrap_or_else(|panic| {
                            Err(WorldError::Data {
                                data: source.describe(),
                                reason: format!("a data worker failed: {}", panic_message(&panic)),
                            })
                        });
                        if tx.send((step, batch)).is_err() {
                            break;
                        }
                    }
                }));
            }
        }
        Self {
            source,
            shape,
            seed,
            next_step: start_step,
            pending: BTreeMap::new(),
            rx,
            stop,
            handles,
        }
    }

    /// The batch of the next step.
    pub fn next_batch(&mut self) -> Result<HostBatch, WorldError> {
        let step = self.next_step;
        self.next_step += 1;
        let Some(rx) = &self.rx else {
            return batch_for_step(self.source.as_ref(), &self.shape, self.seed, step);
        };
        loop {
            if let Some(batch) = self.pending.remove(&step) {
                return batch;
            }
            let (s, batch) = rx.recv().map_err(|_| WorldError::Data {
                data: self.source.describe(),
                reason: "the data workers stopped unexpectedly".into(),
            })?;
            self.pending.insert(s, batch);
        }
    }
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receiver disconnects the channel, which wakes workers blocked on a send.
        self.rx.take();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// The message a panic carried (`panic!` with a literal or a formatted string).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}
