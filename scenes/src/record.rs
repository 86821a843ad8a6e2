//! The episode recorder (SPEC §4.4): runs a scripted policy in a scene for N episodes on parallel
//! workers (crossbeam channels) and writes one `.npz` per episode, atomically.
//!
//! Reproducible: episode `i` uses the seed [`episode_seed`]`(seed, i)` whatever the worker count.
//! Resumable: an interrupted run keeps its finished episodes; rerunning the same command skips
//! every valid finished file, removes `.tmp` leftovers and records only what is missing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{bounded, unbounded};

use crate::episode::{self, EpisodeBuilder, EpisodeError, EpisodeMeta, FORMAT_VERSION};
use crate::{factory, policy, Env, Rng, SceneKind, StepOutput};

/// What to record.
#[derive(Clone, Debug)]
pub struct RecordConfig {
    pub scene: SceneKind,
    /// Maze cells per side, or the voxel world size.
    pub size: usize,
    /// Frame side length in pixels.
    pub resolution: usize,
    pub episodes: usize,
    /// Steps per episode (T = steps + 1 frames; fewer only if the task ends the episode).
    pub steps: usize,
    /// Master seed; episode `i` uses [`episode_seed`]`(seed, i)`.
    pub seed: u64,
    /// Scripted policy name (`explore` or `random`).
    pub policy: String,
    pub out_dir: PathBuf,
    /// Parallel workers (at least 1).
    pub workers: usize,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// Episodes recorded and written by this run.
    pub recorded: usize,
    /// Valid finished episodes found on disk and kept.
    pub skipped: usize,
    /// Damaged episode files that were recorded again.
    pub replaced: usize,
    /// `.tmp` leftovers of an interrupted run that were removed.
    pub removed_tmp: usize,
    /// Frames recorded by this run (skipped episodes not counted).
    pub frames_recorded: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Scene(#[from] crate::SceneError),
    #[error(transparent)]
    Episode(#[from] EpisodeError),
    #[error("{}: {cause}", .path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: recorded with other settings ({detail}); use another output directory", .path.display())]
    Mismatch { path: PathBuf, detail: String },
    #[error("invalid record settings: {0}")]
    Config(String),
}

/// A policy as the recorder sees it: picks the next action from the last output.
pub type ActFn = Box<dyn FnMut(&StepOutput) -> usize + Send>;

/// The seed of episode `index` of a run with master seed `seed`.
pub fn episode_seed(seed: u64, index: usize) -> u64 {
    Rng::new(seed).fork(index as u64).next_u64()
}

/// The seed handed to the policy of the episode with seed `episode_seed` (a stream independent
/// of the level's).
pub fn policy_seed(episode_seed: u64) -> u64 {
    Rng::new(episode_seed).fork(0x706f_6c69_6379).next_u64()
}

/// `out_dir/ep{index:05}_{episode_seed}.npz`.
pub fn episode_path(out_dir: &Path, index: usize, episode_seed: u64) -> PathBuf {
    out_dir.join(format!("ep{index:05}_{episode_seed}.npz"))
}

/// Records one episode: reset with `seed`, then `steps` steps, fewer only if the task ends it.
/// The environment's own time limit is ignored: `steps` is the recording's time limit.
/// `on_frame` is called after every frame.
pub fn record_episode(
    env: &mut dyn Env,
    act: &mut dyn FnMut(&StepOutput) -> usize,
    meta: EpisodeMeta,
    seed: u64,
    steps: usize,
    on_frame: &mut dyn FnMut(),
) -> episode::Episode {
    let mut builder = EpisodeBuilder::new(meta);
    let mut last = env.reset(seed);
    builder.push_reset(&last);
    on_frame();
    for _ in 0..steps {
        let action = act(&last);
        last = env.step(action);
        builder.push_step(action, &last);
        on_frame();
        if last.done && !last.truncated {
            break;
        }
    }
    builder.finish()
}

/// The metadata every episode of this run carries (`steps` is set per episode when finished).
fn run_meta(cfg: &RecordConfig, env: &dyn Env, seed: u64) -> EpisodeMeta {
    EpisodeMeta {
        format_version: FORMAT_VERSION,
        scene: cfg.scene,
        seed: Some(seed),
        size: cfg.size,
        resolution: cfg.resolution,
        action_names: env.action_names().iter().map(|s| s.to_string()).collect(),
        policy: Some(cfg.policy.clone()),
        steps: cfg.steps,
    }
}

enum Outcome {
    Recorded { frames: u64, replaced: bool },
    Skipped { frames: u64 },
}

enum Msg {
    Frames(u64),
    Done(Result<Outcome, RecordError>),
}

/// Records `cfg.episodes` episodes of `cfg.scene` driven by the scripted policy `cfg.policy`
/// (see [`policy::by_name`]), on `cfg.workers` threads. `progress(done_frames, total_frames)` is
/// called on the calling thread as work completes.
pub fn record_episodes(
    cfg: &RecordConfig,
    progress: impl Fn(u64, u64) + Sync,
) -> Result<RecordSummary, RecordError> {
    let make_env = || Ok(factory::make_env(cfg.scene, cfg.size, cfg.resolution)?);
    let n_actions = make_env()?.action_names().len();
    let make_policy = |seed| -> Result<ActFn, RecordError> {
        let mut policy = policy::by_name(&cfg.policy, cfg.scene, n_actions, seed)?;
        Ok(Box::new(move |last: &StepOutput| policy.act(last)))
    };
    record_episodes_with(cfg, make_env, make_policy, progress)
}

/// Records `cfg.episodes` episodes with environments from `make_env` and policies from
/// `make_policy(policy_seed)`. `progress(done_frames, total_frames)` is called on the calling
/// thread as work completes.
pub fn record_episodes_with<E, P>(
    cfg: &RecordConfig,
    make_env: E,
    make_policy: P,
    progress: impl Fn(u64, u64) + Sync,
) -> Result<RecordSummary, RecordError>
where
    E: Fn() -> Result<Box<dyn Env>, RecordError> + Sync,
    P: Fn(u64) -> Result<ActFn, RecordError> + Sync,
{
    if cfg.steps == 0 {
        return Err(RecordError::Config("--steps must be at least 1".into()));
    }
    // Fail fast on bad settings, before any file is touched.
    let probe = make_env()?;
    if probe.scene() != cfg.scene || probe.resolution() != cfg.resolution {
        return Err(RecordError::Config(
            "the environment does not match the settings".into(),
        ));
    }
    drop(make_policy(0)?);
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| RecordError::Io { path, cause }
    };
    std::fs::create_dir_all(&cfg.out_dir).map_err(io_err(&cfg.out_dir))?;
    let mut summary = RecordSummary {
        removed_tmp: remove_leftovers(&cfg.out_dir)?,
        ..Default::default()
    };

    let frames_per_episode = cfg.steps as u64 + 1;
    let total = cfg.episodes as u64 * frames_per_episode;
    let workers = cfg.workers.clamp(1, cfg.episodes.max(1));
    let (job_tx, job_rx) = bounded(cfg.episodes);
    for i in 0..cfg.episodes {
        job_tx.send(i).expect("queue sized for every job");
    }
    drop(job_tx);
    let (msg_tx, msg_rx) = unbounded();
    let stop = AtomicBool::new(false);
    let mut first_error = None;
    let mut probe = Some(probe);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (job_rx, msg_tx) = (job_rx.clone(), msg_tx.clone());
            let (make_env, make_policy, stop) = (&make_env, &make_policy, &stop);
            let mut env = probe.take();
            s.spawn(move || {
                while let Ok(index) = job_rx.recv() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = (|| {
                        if env.is_none() {
                            env = Some(make_env()?);
                        }
                        let env = env.as_mut().expect("just created").as_mut();
                        run_job(cfg, index, env, make_policy, &mut |n| {
                            let _ = msg_tx.send(Msg::Frames(n));
                        })
                    })();
                    let _ = msg_tx.send(Msg::Done(result));
                }
            });
        }
        drop(msg_tx);
        let mut done = 0u64;
        for msg in msg_rx {
            match msg {
                Msg::Frames(n) => done += n,
                Msg::Done(Ok(Outcome::Recorded { frames, replaced })) => {
                    done += frames_per_episode.saturating_sub(frames); // an episode the task ended early
                    summary.recorded += 1;
                    summary.replaced += replaced as usize;
                    summary.frames_recorded += frames;
                }
                Msg::Done(Ok(Outcome::Skipped { frames })) => {
                    done += frames_per_episode.saturating_sub(frames);
                    summary.skipped += 1;
                }
                Msg::Done(Err(e)) => {
                    stop.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
            progress(done.min(total), total);
        }
    });
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// Records episode `index` unless a valid finished file for it exists already.
fn run_job(
    cfg: &RecordConfig,
    index: usize,
    env: &mut dyn Env,
    make_policy: &(dyn Fn(u64) -> Result<ActFn, RecordError> + Sync),
    report: &mut dyn FnMut(u64),
) -> Result<Outcome, RecordError> {
    let seed = episode_seed(cfg.seed, index);
    let path = episode_path(&cfg.out_dir, index, seed);
    let expected = run_meta(cfg, env, seed);
    let mut replaced = false;
    if path.exists() {
        match episode::read_episode(&path) {
            Ok(ep) => {
                check_same_settings(&path, &ep, &expected)?;
                report(ep.len() as u64);
                return Ok(Outcome::Skipped {
                    frames: ep.len() as u64,
                });
            }
            Err(EpisodeError::Io { path, cause }) => return Err(RecordError::Io { path, cause }),
            Err(_) => replaced = true, // damaged: record it again
        }
    }
    let mut act = make_policy(policy_seed(seed))?;
    let mut pending = 0u64;
    let ep = record_episode(env, &mut act, expected, seed, cfg.steps, &mut || {
        pending += 1;
        if pending == 64 {
            report(std::mem::take(&mut pending));
        }
    });
    report(pending);
    episode::write_episode(&path, &ep)?;
    Ok(Outcome::Recorded {
        frames: ep.len() as u64,
        replaced,
    })
}

/// A finished file may only be kept if it was recorded with this run's settings.
fn check_same_settings(
    path: &Path,
    ep: &episode::Episode,
    want: &EpisodeMeta,
) -> Result<(), RecordError> {
    let have = &ep.meta;
    let ended_early = ep.terminal.last() == Some(&true);
    let differences: Vec<String> = [
        (
            "scene",
            have.scene.name().to_string(),
            want.scene.name().to_string(),
        ),
        ("size", have.size.to_string(), want.size.to_string()),
        (
            "resolution",
            have.resolution.to_string(),
            want.resolution.to_string(),
        ),
        (
            "policy",
            format!("{:?}", have.policy),
            format!("{:?}", want.policy),
        ),
        (
            "seed",
            format!("{:?}", have.seed),
            format!("{:?}", want.seed),
        ),
        (
            "actions",
            have.action_names.join(","),
            want.action_names.join(","),
        ),
        (
            "steps",
            have.steps.to_string(),
            if ended_early {
                have.steps.to_string()
            } else {
                want.steps.to_string()
            },
        ),
    ]
    .into_iter()
    .filter(|(_, h, w)| h != w)
    .map(|(name, h, w)| format!("{name} {h} instead of {w}"))
    .collect();
    if differences.is_empty() {
        Ok(())
    } else {
        Err(RecordError::Mismatch {
            path: path.to_path_buf(),
            detail: differences.join(", "),
        })
    }
}

/// Removes `ep*.npz.tmp` files left by an interrupted run; returns how many.
fn remove_leftovers(dir: &Path) -> Result<usize, RecordError> {
    let io_err = |path: &Path, cause| RecordError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let path = entry.map_err(|e| io_err(dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("ep") && name.ends_with(".npz.tmp") && path.is_file() {
            std::fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}
