//! Accumulates the outputs of an [`Env`](crate::Env) into an [`Episode`], frame by frame, with the
//! format's alignment: the reset frame gets an all-zero action row, every later frame the one-hot
//! of the action that produced it.

use super::{Episode, EpisodeMeta, MazeTrack, Source, Track, VoxelTrack};
use crate::{SceneKind, StepInfo, StepOutput};

/// Builds an episode from a reset output followed by step outputs.
pub struct EpisodeBuilder {
    ep: Episode,
}

impl EpisodeBuilder {
    /// `meta.steps` is filled in by [`finish`](Self::finish); the other fields describe the
    /// environment the outputs come from.
    pub fn new(meta: EpisodeMeta) -> Self {
        let track = match meta.scene {
            SceneKind::Maze => Track::Maze(MazeTrack::default()),
            SceneKind::Voxel => Track::Voxel(VoxelTrack::default()),
        };
        let ep = Episode {
            meta,
            source: Source::Memworld,
            image: Vec::new(),
            action: Vec::new(),
            reward: Vec::new(),
            terminal: Vec::new(),
            reset: Vec::new(),
            track,
        };
        Self { ep }
    }

    /// Frames pushed so far.
    pub fn len(&self) -> usize {
        self.ep.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ep.is_empty()
    }

    /// The observation returned by `reset`: frame 0, action row all zeros.
    pub fn push_reset(&mut self, out: &StepOutput) {
        assert!(self.is_empty(), "the reset frame must come first");
        self.push(None, out);
    }

    /// The observation that `action` produced.
    pub fn push_step(&mut self, action: usize, out: &StepOutput) {
        assert!(!self.is_empty(), "push the reset frame before any step");
        assert!(action < self.ep.n_actions(), "action {action} out of range");
        self.push(Some(action), out);
    }

    fn push(&mut self, action: Option<usize>, out: &StepOutput) {
        let ep = &mut self.ep;
        let r = ep.meta.resolution;
        assert!(
            out.frame.width == r && out.frame.height == r,
            "frame is {}x{}, the episode's resolution is {r}",
            out.frame.width,
            out.frame.height
        );
        ep.image.extend_from_slice(&out.frame.rgb);
        let row = ep.action.len();
        ep.action.resize(row + ep.meta.action_names.len(), 0.0);
        if let Some(a) = action {
            ep.action[row + a] = 1.0;
        }
        ep.reward
            .push(if action.is_some() { out.reward } else { 0.0 });
        ep.terminal.push(out.done && !out.truncated);
        ep.reset.push(action.is_none());
        let pose = out.pose;
        match (&mut ep.track, &out.info) {
            (Track::Maze(m), StepInfo::Maze(info)) => {
                assert_eq!(
                    info.size, ep.meta.size,
                    "maze size differs from the episode's"
                );
                assert_eq!(
                    info.layout.len(),
                    info.size * info.size,
                    "layout must be N×N"
                );
                if action.is_none() {
                    m.targets = info.targets_pos.len();
                }
                assert_eq!(
                    info.targets_pos.len(),
                    m.targets,
                    "the number of targets changed"
                );
                let [x, y, _] = pose.position;
                let [hx, hy] = pose.heading();
                // Agent-centric (right, forward): right of heading (hx, hy) is (hy, -hx).
                let local = |p: [f64; 2]| {
                    let (dx, dy) = (p[0] - x, p[1] - y);
                    [dx * hy - dy * hx, dx * hx + dy * hy]
                };
                m.maze_layout.extend_from_slice(&info.layout);
                m.agent_pos.extend([x, y]);
                m.agent_dir.extend([hx, hy]);
                for &p in &info.targets_pos {
                    m.targets_pos.extend(p);
                    m.targets_vec.extend(local(p));
                }
                let target = info.targets_pos[info.target];
                m.target_pos.extend(target);
                m.target_vec.extend(local(target));
                m.target_color.extend(info.target_color);
            }
            (Track::Voxel(v), StepInfo::Voxel) => {
                v.agent_pos.extend(pose.position);
                v.agent_yaw.push(pose.yaw);
            }
            _ => panic!(
                "step info does not match the episode's scene {:?}",
                ep.meta.scene
            ),
        }
    }

    /// The finished episode, with `meta.steps` = frames - 1.
    pub fn finish(mut self) -> Episode {
        assert!(
            !self.is_empty(),
            "an episode needs at least its reset frame"
        );
        self.ep.meta.steps = self.ep.len() - 1;
        self.ep
    }
}
