//! Recording play sessions: the first pane's frames are accumulated with the episode builder
//! (same format as `memworld record`, SPEC §4.3) and, on stop, written on a background thread
//! as `<stem>.npz` plus a `<stem>.gif` preview, both atomically, into the record folder.
//! A reset, new seed, scene switch or episode end closes the file and recording goes on in a
//! new one, so every file holds exactly one episode.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use scenes::episode::{write_episode, Episode, EpisodeBuilder, EpisodeMeta, FORMAT_VERSION};
use scenes::factory::default_size;
use scenes::{Frame, SceneKind, StepInfo, StepOutput};

use crate::player::sim::{PaneEnv, SimEvent};

/// Frames per second of the GIF preview (the control rate of Memory Maze).
pub const PREVIEW_FPS: u32 = 4;

/// Where recordings go.
#[derive(Clone, Debug)]
pub struct RecordMeta {
    pub dir: PathBuf,
}

struct Active {
    builder: EpisodeBuilder,
    scene: &'static str,
    seed: u64,
}

/// The recording state of a session.
pub struct Recorder {
    meta: RecordMeta,
    active: Option<Active>,
    events: Sender<SimEvent>,
    writers: Vec<JoinHandle<()>>,
    saved: usize,
}

impl Recorder {
    pub fn new(meta: RecordMeta, events: Sender<SimEvent>) -> Self {
        Self {
            meta,
            active: None,
            events,
            writers: Vec::new(),
            saved: 0,
        }
    }

    /// Frames recorded so far; `None` when not recording.
    pub fn frames(&self) -> Option<usize> {
        self.active.as_ref().map(|a| a.builder.len())
    }

    /// Start a recording whose frame 0 is `current` (the observation on screen now).
    pub fn start(&mut self, pane: &PaneEnv, seed: u64, current: &StepOutput) {
        let env = &pane.env;
        let size = match &current.info {
            StepInfo::Maze(m) => m.size,
            StepInfo::Voxel => default_size(SceneKind::Voxel),
        };
        let meta = EpisodeMeta {
            format_version: FORMAT_VERSION,
            scene: env.scene(),
            seed: Some(seed),
            size,
            resolution: env.resolution(),
            action_names: env.action_names().iter().map(|s| s.to_string()).collect(),
            policy: Some("keyboard".into()),
            steps: 0,
        };
        let mut builder = EpisodeBuilder::new(meta);
        builder.push_reset(current);
        self.active = Some(Active {
            builder,
            scene: env.scene().name(),
            seed,
        });
    }

    /// Close the current file (if recording) and go on recording from `first`.
    pub fn restart(&mut self, pane: &PaneEnv, seed: u64, first: &StepOutput) {
        if self.active.is_some() {
            self.stop();
            self.start(pane, seed, first);
        }
    }

    pub fn push_step(&mut self, action: usize, out: &StepOutput) {
        if let Some(a) = self.active.as_mut() {
            a.builder.push_step(action, out);
        }
    }

    /// Stop recording and save in the background; a recording without a single step is dropped.
    pub fn stop(&mut self) {
        let Some(active) = self.active.take() else {
            return;
        };
        let _ = self.events.send(SimEvent::Recording(None));
        if active.builder.len() < 2 {
            let _ = self.events.send(SimEvent::Notice(
                "recording stopped before any step: nothing saved".into(),
            ));
            return;
        }
        let episode = active.builder.finish();
        let stem = self.next_stem(active.scene, active.seed);
        let dir = self.meta.dir.clone();
        let events = self.events.clone();
        let spawned = std::thread::Builder::new()
            .name("memworld-save".into())
            .spawn(move || {
                let event = match save(&dir, &stem, &episode) {
                    Ok((episode, preview)) => SimEvent::Saved { episode, preview },
                    Err(e) => SimEvent::Notice(format!("recording not saved: {e}")),
                };
                let _ = events.send(event);
            });
        match spawned {
            Ok(h) => self.writers.push(h),
            Err(e) => {
                let _ = self.events.send(SimEvent::Notice(format!(
                    "recording not saved: cannot start writer: {e}"
                )));
            }
        }
        self.writers.retain(|h| !h.is_finished());
    }

    /// Wait until every recording handed to a writer is on disk.
    pub fn wait(&mut self) {
        for h in self.writers.drain(..) {
            let _ = h.join();
        }
    }

    /// `<scene>-seed<seed>-<unix seconds>-<n>`, unique within the session.
    fn next_stem(&mut self, scene: &str, seed: u64) -> String {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.saved += 1;
        format!("{scene}-seed{seed}-{secs}-{:03}", self.saved)
    }
}

/// Write `<dir>/<stem>.npz` and `<dir>/<stem>.gif`, each atomically; returns both paths.
pub fn save(dir: &Path, stem: &str, episode: &Episode) -> Result<(PathBuf, PathBuf), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let npz = dir.join(format!("{stem}.npz"));
    let gif = dir.join(format!("{stem}.gif"));
    write_episode(&npz, episode).map_err(|e| e.to_string())?;
    write_preview(&gif, episode)?;
    Ok((npz, gif))
}

/// Longest preview, in frames: longer recordings are previewed with every k-th frame, played
/// k times faster, so the GIF stays small and as long as a 100 s clip.
pub const PREVIEW_MAX_FRAMES: usize = 400;

/// The GIF preview of `ep`: frames at least 128 pixels wide, real time up to
/// [`PREVIEW_MAX_FRAMES`] frames.
fn write_preview(path: &Path, ep: &Episode) -> Result<(), String> {
    let r = ep.resolution();
    let stride = ep.len().div_ceil(PREVIEW_MAX_FRAMES).max(1);
    let frames: Vec<Frame> = (0..ep.len())
        .step_by(stride)
        .map(|t| Frame {
            width: r,
            height: r,
            rgb: ep.frame(t).to_vec(),
        })
        .collect();
    let fps = (PREVIEW_FPS * stride as u32).min(50);
    let scale = (128 / r as u32).max(1);
    crate::media::write_gif(path, &frames, fps, scale, &mut || {}).map_err(|e| format!("{e:#}"))
}
