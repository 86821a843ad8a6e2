//! Evaluation episodes (SPEC §5.6): the context and ground truth of each episode, rendered by
//! a scene from a held-out level seed or cut from an episode file (ours or real Memory Maze),
//! with the action that produced each frame and, in the maze, its pose features.
//!
//! From a scene, the maze trajectories are the scenes' own [`retrieval_trajectory`] and
//! [`reasoning_trajectory`]; the voxel world (reasoning only) explores with its wandering
//! policy for the context and continues with a freshly seeded one. From a file, episode e reads
//! the e-th file (sorted by path) from a start drawn from the run's seed; retrieval appends the
//! context's poses reversed with the mirrored actions, as the scenes' retrieval trajectory does.

use std::path::{Path, PathBuf};

use scenes::episode::{list_episode_files, read_episode, Episode, Track};
use scenes::maze::{MazeConfig, MazeEnv, RESOLUTIONS as MAZE_RESOLUTIONS};
use scenes::policy::{by_name, mirror_action, reasoning_trajectory, retrieval_trajectory};
use scenes::voxel::{VoxelConfig, VoxelEnv};
use scenes::{Env, Frame, Pose, Rng, SceneKind};

use super::error::EvalError;
use super::protocol::{level_seed, EvalSettings, Protocol};
use crate::world::config::WorldModelConfig;
use crate::world::frames::maze_pose_features;

/// One episode of an evaluation: `context` frames shown to the model, then the ground truth of
/// the frames it generates.
#[derive(Clone, Debug)]
pub struct EvalEpisode {
    /// Position of the episode in the run (0-based).
    pub index: usize,
    /// Where it came from, e.g. `maze 9×9 level 1000003` or `ep00003.npz t=120..520`.
    pub origin: String,
    pub scene: SceneKind,
    /// Context then ground truth (`context + generate` frames) at the source's resolution.
    pub frames: Vec<Frame>,
    /// The action that produced each frame (0 = the reset no-op).
    pub actions: Vec<usize>,
    /// Maze pose features [x/N, y/N, cos yaw, sin yaw] of each frame (`None` outside the maze).
    pub poses: Option<Vec<[f32; 4]>>,
    pub context: usize,
}

impl EvalEpisode {
    /// The frames the model must generate.
    pub fn truth(&self) -> &[Frame] {
        &self.frames[self.context..]
    }

    pub fn resolution(&self) -> usize {
        self.frames[0].width
    }
}

/// An episode file of the run, checked when the source was opened.
#[derive(Clone, Debug)]
pub struct FileInfo {
    pub path: PathBuf,
    /// Frames in the file (T).
    pub frames: usize,
}

/// Where the episodes come from.
#[derive(Clone, Debug)]
pub enum EpisodeSource {
    /// Rendered by a scene from held-out level seeds.
    Scene {
        scene: SceneKind,
        /// Maze cells per side (ignored for the voxel world).
        size: usize,
        resolution: usize,
    },
    /// Cut from episode files.
    Files {
        dir: PathBuf,
        files: Vec<FileInfo>,
        scene: SceneKind,
        size: usize,
        resolution: usize,
        n_actions: usize,
    },
}

/// The smallest resolution `scene` renders that every model resolution divides.
pub fn scene_resolution(scene: SceneKind, models: &[usize]) -> Result<usize, EvalError> {
    let candidates: &[usize] = match scene {
        SceneKind::Maze => &MAZE_RESOLUTIONS,
        SceneKind::Voxel => &VoxelConfig::RESOLUTIONS,
    };
    candidates
        .iter()
        .copied()
        .find(|r| models.iter().all(|&m| m > 0 && r % m == 0))
        .ok_or_else(|| {
            EvalError::Settings(format!(
                "the {} scene renders at {candidates:?} pixels, none a multiple of every model \
                 resolution {models:?}",
                scene.name()
            ))
        })
}

fn file_err(path: &Path, reason: impl Into<String>) -> EvalError {
    EvalError::EpisodeFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl EpisodeSource {
    /// Episodes rendered by `scene` (a `size`×`size` maze, or the voxel world) at `resolution`.
    pub fn scene(
        scene: SceneKind,
        size: usize,
        resolution: usize,
        protocol: Protocol,
    ) -> Result<Self, EvalError> {
        match scene {
            SceneKind::Maze => {
                MazeConfig::new(size)?.with_resolution(resolution)?;
            }
            SceneKind::Voxel => {
                if protocol == Protocol::Retrieval {
                    return Err(EvalError::Settings(
                        "retrieval walks the context back by pose, which is defined for the \
                         maze scene; use reasoning for the voxel world"
                            .into(),
                    ));
                }
                VoxelConfig {
                    resolution,
                    ..VoxelConfig::default()
                }
                .validate()?;
            }
        }
        Ok(EpisodeSource::Scene {
            scene,
            size,
            resolution,
        })
    }

    /// Episodes cut from the files under `dir` (one file per episode, sorted by path). Reads
    /// every file the run needs once, to report a short, damaged or mismatched file before
    /// any model runs.
    pub fn files(dir: &Path, settings: &EvalSettings) -> Result<Self, EvalError> {
        let paths = list_episode_files(dir)?;
        if paths.len() < settings.episodes {
            return Err(EvalError::EpisodeDir {
                path: dir.to_path_buf(),
                reason: format!(
                    "holds {} episode file(s) (.npz), --episodes asks for {}",
                    paths.len(),
                    settings.episodes
                ),
            });
        }
        let need = settings.source_frames();
        let mut files = Vec::with_capacity(settings.episodes);
        let mut first: Option<(SceneKind, usize, usize, usize)> = None;
        for path in paths.into_iter().take(settings.episodes) {
            let ep = read_episode(&path)?;
            let kind = (ep.meta.scene, ep.meta.size, ep.resolution(), ep.n_actions());
            if ep.len() < need {
                return Err(file_err(
                    &path,
                    format!(
                        "has {} frames; {} with --context {} and --generate {} needs {need}",
                        ep.len(),
                        settings.protocol.name(),
                        settings.context,
                        settings.generate
                    ),
                ));
            }
            match first {
                None => first = Some(kind),
                Some(f) if f != kind => {
                    return Err(file_err(
                        &path,
                        format!(
                            "is a {} episode (size {}, {} px, {} actions) unlike the first file \
                             ({} size {}, {} px, {} actions); evaluate one kind at a time",
                            kind.0.name(),
                            kind.1,
                            kind.2,
                            kind.3,
                            f.0.name(),
                            f.1,
                            f.2,
                            f.3
                        ),
                    ))
                }
                _ => {}
            }
            files.push(FileInfo {
                path,
                frames: ep.len(),
            });
        }
        let (scene, size, resolution, n_actions) = first.expect("at least one episode");
        if scene == SceneKind::Voxel && settings.protocol == Protocol::Retrieval {
            return Err(EvalError::Settings(
                "retrieval walks the context back by pose, which is defined for maze episodes; \
                 use reasoning for voxel episodes"
                    .into(),
            ));
        }
        Ok(EpisodeSource::Files {
            dir: dir.to_path_buf(),
            files,
            scene,
            size,
            resolution,
            n_actions,
        })
    }

    pub fn scene_kind(&self) -> SceneKind {
        match self {
            EpisodeSource::Scene { scene, .. } | EpisodeSource::Files { scene, .. } => *scene,
        }
    }

    /// Frame side length of the episodes.
    pub fn resolution(&self) -> usize {
        match self {
            EpisodeSource::Scene { resolution, .. } | EpisodeSource::Files { resolution, .. } => {
                *resolution
            }
        }
    }

    /// Maze cells per side (the voxel world's fixed size for voxel episodes).
    pub fn size(&self) -> usize {
        match self {
            EpisodeSource::Scene { size, .. } | EpisodeSource::Files { size, .. } => *size,
        }
    }

    /// Number of discrete actions of the episodes.
    pub fn n_actions(&self) -> usize {
        match self {
            EpisodeSource::Files { n_actions, .. } => *n_actions,
            EpisodeSource::Scene { scene, .. } => match scene {
                SceneKind::Maze => scenes::maze::ACTIONS.len(),
                SceneKind::Voxel => scenes::voxel::ACTIONS.len(),
            },
        }
    }

    /// A one-line description, e.g. `maze 9×9 (held-out levels)` or the directory.
    pub fn describe(&self) -> String {
        match self {
            EpisodeSource::Scene {
                scene: SceneKind::Maze,
                size,
                ..
            } => format!("maze {size}x{size} (held-out levels)"),
            EpisodeSource::Scene { .. } => "voxel (held-out worlds)".into(),
            EpisodeSource::Files { dir, scene, .. } => {
                format!("{} episode files in {}", scene.name(), dir.display())
            }
        }
    }

    /// Checks that a model of `config` can be conditioned on and compared with these episodes.
    pub fn check_model(&self, config: &WorldModelConfig) -> Result<(), EvalError> {
        let bad = |reason: String| {
            Err(EvalError::ModelMismatch {
                model: config.name.clone(),
                what: self.describe(),
                reason,
            })
        };
        let r = self.resolution();
        if config.channels != 3 || r % config.resolution != 0 {
            return bad(format!(
                "the episodes are {r}×{r} RGB, which cannot be brought to the model's {0}×{0}×{1}",
                config.resolution, config.channels
            ));
        }
        if let Some(n) = config.n_actions {
            if n < self.n_actions() {
                return bad(format!(
                    "the episodes have {} actions, the model embeds only {n}",
                    self.n_actions()
                ));
            }
        }
        match (config.pose_dim, self.scene_kind()) {
            (None, _) | (Some(4), SceneKind::Maze) => Ok(()),
            (Some(d), SceneKind::Maze) => bad(format!(
                "maze poses have 4 features (x/N, y/N, cos, sin), the model expects {d}"
            )),
            (Some(_), SceneKind::Voxel) => {
                bad("the model is pose-conditioned, which only the maze provides".into())
            }
        }
    }

    /// Episode `index` of a run with `settings`.
    pub fn episode(&self, settings: &EvalSettings, index: usize) -> Result<EvalEpisode, EvalError> {
        match self {
            EpisodeSource::Scene {
                scene,
                size,
                resolution,
            } => scene_episode(*scene, *size, *resolution, settings, index),
            EpisodeSource::Files { files, .. } => {
                let info = files.get(index).ok_or_else(|| {
                    EvalError::Settings(format!(
                        "episode {index} asked of a source holding {}",
                        files.len()
                    ))
                })?;
                file_episode(info, settings, index)
            }
        }
    }
}

fn maze_poses(poses: &[Pose], size: usize) -> Vec<[f32; 4]> {
    poses
        .iter()
        .map(|p| maze_pose_features([p.position[0], p.position[1]], p.heading(), size))
        .collect()
}

fn scene_episode(
    scene: SceneKind,
    size: usize,
    resolution: usize,
    settings: &EvalSettings,
    index: usize,
) -> Result<EvalEpisode, EvalError> {
    let seed = level_seed(settings.seed, index)?;
    let (n, m) = (settings.context, settings.generate);
    let steps = settings.frames();
    match scene {
        SceneKind::Maze => {
            let config = MazeConfig::new(size)?
                .with_resolution(resolution)?
                .with_episode_steps(steps)?;
            let mut env = MazeEnv::try_new(config)?;
            let traj = match settings.protocol {
                Protocol::Retrieval => retrieval_trajectory(&mut env, seed, n),
                Protocol::Reasoning => reasoning_trajectory(&mut env, seed, n, m),
            };
            Ok(EvalEpisode {
                index,
                origin: format!("maze {size}x{size} level {seed}"),
                scene,
                poses: Some(maze_poses(&traj.poses, size)),
                frames: traj.frames,
                actions: traj.actions,
                context: n,
            })
        }
        SceneKind::Voxel => {
            let mut env = VoxelEnv::new(VoxelConfig {
                resolution,
                episode_steps: steps.max(VoxelConfig::default().episode_steps),
            })?;
            let n_actions = env.action_names().len();
            let mut rng = Rng::new(seed);
            let mut explore = by_name("explore", scene, n_actions, rng.fork(11).next_u64())?;
            let mut fresh = by_name("explore", scene, n_actions, rng.fork(12).next_u64())?;
            let mut out = env.reset(seed);
            let (mut frames, mut actions) = (vec![out.frame.clone()], vec![0]);
            for t in 1..steps {
                let policy = if t < n { &mut explore } else { &mut fresh };
                let a = policy.act(&out);
                out = env.step(a);
                frames.push(out.frame.clone());
                actions.push(a);
            }
            Ok(EvalEpisode {
                index,
                origin: format!("voxel world {seed}"),
                scene,
                frames,
                actions,
                poses: None,
                context: n,
            })
        }
    }
}

fn file_episode(
    info: &FileInfo,
    settings: &EvalSettings,
    index: usize,
) -> Result<EvalEpisode, EvalError> {
    let ep: Episode = read_episode(&info.path)?;
    if ep.len() != info.frames {
        return Err(file_err(&info.path, "changed while the evaluation ran"));
    }
    let n = settings.context;
    let span = settings.source_frames();
    let start = Rng::new(settings.seed)
        .fork(index as u64)
        .below(ep.len() - span + 1);
    let r = ep.resolution();
    let frame = |t: usize| Frame {
        width: r,
        height: r,
        rgb: ep.frame(t).to_vec(),
    };
    let action = |t: usize| ep.action_index(t).unwrap_or(0);
    let pose = |t: usize| match &ep.track {
        Track::Maze(mt) => Some(maze_pose_features(
            [mt.agent_pos[2 * t], mt.agent_pos[2 * t + 1]],
            [mt.agent_dir[2 * t], mt.agent_dir[2 * t + 1]],
            ep.meta.size,
        )),
        Track::Voxel(_) => None,
    };
    let mut order: Vec<usize> = (start..start + span).collect();
    let mut actions: Vec<usize> = order.iter().map(|&t| action(t)).collect();
    if settings.protocol == Protocol::Retrieval {
        // Walk the context back: the same poses reversed, mirrored actions (the turn-around
        // first), as `scenes::policy::retrieval_trajectory`.
        for k in 0..n {
            let src = n - 1 - k;
            actions.push(if k == 0 {
                0
            } else {
                mirror_action(actions[src + 1])
            });
            order.push(start + src);
        }
    }
    let poses: Option<Vec<[f32; 4]>> = order.iter().map(|&t| pose(t)).collect();
    let name = info.path.file_name().map_or_else(
        || info.path.display().to_string(),
        |f| f.to_string_lossy().to_string(),
    );
    Ok(EvalEpisode {
        index,
        origin: format!("{name} t={start}..{}", start + span),
        scene: ep.meta.scene,
        frames: order.iter().map(|&t| frame(t)).collect(),
        actions,
        poses,
        context: n,
    })
}
