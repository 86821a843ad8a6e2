//! Clip sources of the training data (SPEC §4.3, §5.4): episode files loaded into memory,
//! scenes generated on the fly (a new level per clip, explored by the scripted policy), and a
//! fixed pool of generated clips. Each draws a clip from a caller-given generator, so that the
//! batch of a step is a pure function of the seed and the step (see `data.rs`).
//!
//! Conditioning per frame t (SPEC §5.2): the action that produced frame t (0 = the reset no-op)
//! and, for pose-conditioned configs in the maze, [x/N, y/N, cos yaw, sin yaw].

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use scenes::episode::{list_episode_files, read_episode, Episode, Track};
use scenes::factory::{default_size, make_env};
use scenes::policy::{by_name, mirror_action};
use scenes::{Env, Rng, SceneKind, StepInfo, StepOutput};

use super::config::WorldModelConfig;
use super::data::{stream_rng, Clip, Stream};
use super::error::WorldError;
use super::frames::{frame_to_unit, maze_pose_features};

/// Steps of exploration before a generated clip starts, drawn uniformly in 0..=this.
pub const MAX_WARMUP_STEPS: usize = 48;

/// Something that draws training clips.
pub trait ClipSource: Send + Sync {
    /// A short description for messages (the directory, `gen:maze:9`, ...).
    fn describe(&self) -> String;
    /// One clip of `frames` frames, every random choice drawn from `rng`.
    fn sample(&self, rng: &mut Rng, frames: usize) -> Result<Clip, WorldError>;
}

/// Frames with their actions and pose features, at the scene's resolution.
struct Track1 {
    /// `[T, R, R, 3]` bytes.
    image: Vec<u8>,
    scene_resolution: usize,
    actions: Vec<usize>,
    /// `[T, 4]` maze pose features, or empty.
    poses: Vec<f32>,
}

impl Track1 {
    fn len(&self) -> usize {
        self.actions.len()
    }

    /// Appends frame `src` again, with its pose, reached by `action`.
    fn repeat(&mut self, src: usize, action: usize) {
        let n = self.scene_resolution * self.scene_resolution * 3;
        self.image.extend_from_within(src * n..(src + 1) * n);
        self.actions.push(action);
        if !self.poses.is_empty() {
            self.poses.extend_from_within(src * 4..(src + 1) * 4);
        }
    }

    /// Frames `start..start + frames` as a clip at `resolution`.
    fn clip(&self, start: usize, frames: usize, resolution: usize, pose_dim: usize) -> Clip {
        let r = self.scene_resolution;
        let n = r * r * 3;
        let mut pixels = Vec::with_capacity(frames * resolution * resolution * 3);
        for t in start..start + frames {
            let frame = scenes::Frame {
                width: r,
                height: r,
                rgb: self.image[t * n..(t + 1) * n].to_vec(),
            };
            pixels.extend(
                frame_to_unit(&frame, resolution)
                    .expect("resolution checked when the source was opened"),
            );
        }
        let poses = if pose_dim == 0 {
            Vec::new()
        } else {
            self.poses[start * 4..(start + frames) * 4].to_vec()
        };
        Clip {
            pixels,
            actions: self.actions[start..start + frames].to_vec(),
            poses,
        }
    }
}

/// What a config needs from the data: the pose width (0 = none) and the action count.
fn needs(
    config: &WorldModelConfig,
    scene: SceneKind,
    n_actions: usize,
    what: &str,
) -> Result<usize, WorldError> {
    let bad = |reason: String| WorldError::Data {
        data: what.to_string(),
        reason,
    };
    if config.channels != 3 {
        return Err(bad(format!(
            "scenes are RGB, the config '{}' has {} channels",
            config.name, config.channels
        )));
    }
    if let Some(a) = config.n_actions {
        if a < n_actions {
            return Err(bad(format!(
                "the data has {n_actions} actions, the config '{}' embeds only {a}",
                config.name
            )));
        }
    }
    match (config.pose_dim, scene) {
        (None, _) => Ok(0),
        (Some(4), SceneKind::Maze) => Ok(4),
        (Some(d), SceneKind::Maze) => Err(bad(format!(
            "maze poses have 4 features (x/N, y/N, cos, sin), the config '{}' expects {d}",
            config.name
        ))),
        (Some(_), SceneKind::Voxel) => Err(bad(format!(
            "the config '{}' is pose-conditioned, which only the maze provides; use an \
             action-conditioned config such as voxel-small",
            config.name
        ))),
    }
}

/// Episode files, loaded into memory (frames stay u8; about 12 KB per 64×64 frame).
pub struct EpisodeSource {
    dir: String,
    episodes: Vec<Track1>,
    /// Cumulative count of clip starts, for drawing a start uniformly over all episodes.
    cumulative: Vec<usize>,
    resolution: usize,
    pose_dim: usize,
}

fn track_of(ep: Episode, pose_dim: usize) -> Track1 {
    let t = ep.len();
    let actions = (0..t).map(|i| ep.action_index(i).unwrap_or(0)).collect();
    let poses = match (&ep.track, pose_dim) {
        (Track::Maze(m), 4) => (0..t)
            .flat_map(|i| {
                maze_pose_features(
                    [m.agent_pos[2 * i], m.agent_pos[2 * i + 1]],
                    [m.agent_dir[2 * i], m.agent_dir[2 * i + 1]],
                    ep.meta.size,
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let scene_resolution = ep.resolution();
    Track1 {
        image: ep.image,
        scene_resolution,
        actions,
        poses,
    }
}

impl EpisodeSource {
    /// Reads every episode file under `dir` and checks it can feed `config` with clips of
    /// `frames` frames.
    pub fn open(dir: &Path, config: &WorldModelConfig, frames: usize) -> Result<Self, WorldError> {
        let what = dir.display().to_string();
        let data_err = |reason: String| WorldError::Data {
            data: what.clone(),
            reason,
        };
        let files = list_episode_files(dir).map_err(|e| data_err(e.to_string()))?;
        if files.is_empty() {
            return Err(data_err("no episode files (*.npz) found".into()));
        }
        let loaded = read_all(&files)?;
        let mut episodes = Vec::new();
        let mut pose_dim = None;
        for (path, ep) in files.iter().zip(loaded) {
            let file_err = |reason: String| WorldError::Data {
                data: path.display().to_string(),
                reason,
            };
            let r = ep.resolution();
            if r % config.resolution != 0 {
                return Err(file_err(format!(
                    "{r}×{r} frames cannot be box-filtered to the config's {c}×{c}",
                    c = config.resolution
                )));
            }
            let pd = needs(
                config,
                ep.meta.scene,
                ep.n_actions(),
                &path.display().to_string(),
            )?;
            pose_dim = Some(pd);
            if ep.len() >= frames {
                episodes.push(track_of(ep, pd));
            }
        }
        if episodes.is_empty() {
            return Err(data_err(format!(
                "no episode has the {frames} frames a clip needs"
            )));
        }
        let mut cumulative = Vec::with_capacity(episodes.len());
        let mut total = 0;
        for e in &episodes {
            total += e.len() + 1 - frames;
            cumulative.push(total);
        }
        Ok(Self {
            dir: what,
            episodes,
            cumulative,
            resolution: config.resolution,
            pose_dim: pose_dim.unwrap_or(0),
        })
    }

    pub fn len(&self) -> usize {
        self.episodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.episodes.is_empty()
    }
}

/// Reads the files on a few threads, keeping their order.
fn read_all(files: &[PathBuf]) -> Result<Vec<Episode>, WorldError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
        .min(files.len());
    let chunk = files.len().div_ceil(threads.max(1));
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|p| {
                            read_episode(p).map_err(|e| WorldError::Data {
                                data: p.display().to_string(),
                                reason: e.to_string(),
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for h in handles {
            out.extend(h.join().expect("episode reader thread")?);
        }
        Ok(out)
    })
}

impl ClipSource for EpisodeSource {
    fn describe(&self) -> String {
        self.dir.clone()
    }

    fn sample(&self, rng: &mut Rng, frames: usize) -> Result<Clip, WorldError> {
        let total = *self.cumulative.last().expect("at least one episode");
        let k = rng.below(total);
        let e = self.cumulative.partition_point(|&c| c <= k);
        let start = k - if e == 0 { 0 } else { self.cumulative[e - 1] };
        Ok(self.episodes[e].clip(start, frames, self.resolution, self.pose_dim))
    }
}

/// Clips generated on the fly: a new level per clip, explored by the scene's scripted policy
/// for a random number of warm-up steps, then `frames` recorded frames. Environments are
/// reused across clips (`reset` rebuilds the level from its seed).
///
/// With revisits (maze only), that percentage of the clips turns around after `k` explored
/// frames (`k` uniform in ⌈frames/2⌉ … frames − 1) and walks the path back as the retrieval
/// protocol does (`scenes::policy::retrieval_trajectory`): frame `k + j` repeats frame
/// `k − 1 − j` with its pose, the action is the mirrored forward action (0 at the turn).
/// Every frame of the way back was seen before, so these clips reward remembering.
pub struct GeneratedSource {
    scene: SceneKind,
    size: usize,
    resolution: usize,
    pose_dim: usize,
    n_actions: usize,
    scene_resolution: usize,
    /// Percent of clips that walk back (0 = none; then no random draw is spent on it).
    revisit: u32,
    envs: Mutex<Vec<Box<dyn Env>>>,
}

impl GeneratedSource {
    pub fn new(
        scene: SceneKind,
        size: Option<usize>,
        config: &WorldModelConfig,
    ) -> Result<Self, WorldError> {
        let size = size.unwrap_or_else(|| default_size(scene));
        let what = format!("gen:{}:{size}", scene.name());
        let bad = |reason: String| WorldError::Data {
            data: what.clone(),
            reason,
        };
        // The smallest rendering resolution the scene supports that box-filters to the model's.
        let mut last_err = format!(
            "no resolution of the scene is a multiple of {}",
            config.resolution
        );
        let mut env = None;
        for r in [64, 128, 256]
            .into_iter()
            .filter(|r| r % config.resolution == 0)
        {
            match make_env(scene, size, r) {
                Ok(e) => {
                    env = Some(e);
                    break;
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        let env = env.ok_or_else(|| bad(last_err))?;
        let n_actions = env.action_names().len();
        let pose_dim = needs(config, scene, n_actions, &what)?;
        Ok(Self {
            scene,
            size,
            resolution: config.resolution,
            pose_dim,
            n_actions,
            scene_resolution: env.resolution(),
            revisit: 0,
            envs: Mutex::new(vec![env]),
        })
    }

    /// The same source with `percent` of its clips walking back along their path.
    pub fn with_revisits(mut self, percent: u32) -> Self {
        self.revisit = percent.min(100);
        self
    }

    fn take_env(&self) -> Result<Box<dyn Env>, WorldError> {
        if let Some(env) = self.envs.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(env);
        }
        make_env(self.scene, self.size, self.scene_resolution).map_err(|e| WorldError::Data {
            data: self.describe(),
            reason: e.to_string(),
        })
    }
}

impl ClipSource for GeneratedSource {
    fn describe(&self) -> String {
        let revisit = match self.revisit {
            0 => String::new(),
            n => format!(":revisit={n}"),
        };
        format!("gen:{}:{}{revisit}", self.scene.name(), self.size)
    }

    fn sample(&self, rng: &mut Rng, frames: usize) -> Result<Clip, WorldError> {
        let mut env = self.take_env()?;
        let mut policy =
            by_name("explore", self.scene, self.n_actions, rng.next_u64()).map_err(|e| {
                WorldError::Data {
                    data: self.describe(),
                    reason: e.to_string(),
                }
            })?;
        let warmup = rng.below(MAX_WARMUP_STEPS + 1);
        let mut out = env.reset(rng.next_u64());
        let mut action = 0;
        for _ in 0..warmup {
            action = policy.act(&out);
            out = env.step(action);
        }
        // Drawn only when revisits are on, so that clips without them keep their old streams.
        let turn = (self.revisit > 0 && frames > 1 && rng.below(100) < self.revisit as usize)
            .then(|| frames.div_ceil(2) + rng.below(frames / 2));
        let r = out.frame.width;
        let mut track = Track1 {
            image: Vec::with_capacity(frames * r * r * 3),
            scene_resolution: r,
            actions: Vec::with_capacity(frames),
            poses: Vec::with_capacity(frames * 4),
        };
        for t in 0..turn.unwrap_or(frames) {
            if t > 0 {
                action = policy.act(&out);
                out = env.step(action);
            }
            push_step(&mut track, action, &out);
        }
        if let Some(k) = turn {
            for j in 0..frames - k {
                let src = k - 1 - j;
                let back = if j == 0 {
                    0
                } else {
                    mirror_action(track.actions[src + 1])
                };
                track.repeat(src, back);
            }
        }
        self.envs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(env);
        Ok(track.clip(0, frames, self.resolution, self.pose_dim))
    }
}

fn push_step(track: &mut Track1, action: usize, out: &StepOutput) {
    track.image.extend_from_slice(&out.frame.rgb);
    track.actions.push(action);
    if let StepInfo::Maze(info) = &out.info {
        let p = out.pose;
        track.poses.extend(maze_pose_features(
            [p.position[0], p.position[1]],
            p.heading(),
            info.size,
        ));
    }
}

/// A fixed pool of generated clips, drawn uniformly.
pub struct PoolSource {
    what: String,
    clips: Vec<Clip>,
}

impl PoolSource {
    /// `n` clips of `frames` frames from `gen`, generated from `seed`.
    pub fn generate(
        gen: &GeneratedSource,
        n: usize,
        frames: usize,
        seed: u64,
    ) -> Result<Self, WorldError> {
        let clips = (0..n)
            .map(|i| gen.sample(&mut stream_rng(seed, Stream::Pool, i as u64), frames))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            what: format!("{}:pool={n}", gen.describe()),
            clips,
        })
    }

    pub fn clips(&self) -> &[Clip] {
        &self.clips
    }
}

impl ClipSource for PoolSource {
    fn describe(&self) -> String {
        self.what.clone()
    }

    fn sample(&self, rng: &mut Rng, frames: usize) -> Result<Clip, WorldError> {
        let clip = &self.clips[rng.below(self.clips.len())];
        if clip.actions.len() != frames {
            return Err(WorldError::Data {
                data: self.what.clone(),
                reason: format!(
                    "the pool holds {}-frame clips, {frames} were asked for",
                    clip.actions.len()
                ),
            });
        }
        Ok(clip.clone())
    }
}
