//! Turns the arrays of an `.npz` into an [`Episode`], checking every key's presence, dtype, shape
//! and the format's value rules (one-hot actions with a zero first row, `reset` only at t = 0,
//! `reward[0]` = 0, a 0/1 layout). Errors name the file and the key.

use std::path::Path;

use super::npy::{shape_str, DType, NpyArray};
use super::{
    Episode, EpisodeError, EpisodeMeta, MazeTrack, Source, Track, VoxelTrack, FORMAT_VERSION,
    MEMORY_MAZE_ACTIONS, META_KEY,
};
use crate::SceneKind;

type Getter<'a> = dyn FnMut(&str) -> Result<Option<NpyArray>, EpisodeError> + 'a;

/// Dtypes accepted per kind of key (SPEC §4.3: float32 is accepted where float64 is specified).
const FLOAT: &[DType] = &[DType::F64, DType::F32];
const BOOL: &[DType] = &[DType::Bool];
const BYTE: &[DType] = &[DType::U8];

struct Reader<'a, 'g> {
    path: &'a Path,
    get: &'a mut Getter<'g>,
}

impl Reader<'_, '_> {
    fn require(&mut self, key: &str, dtypes: &[DType]) -> Result<NpyArray, EpisodeError> {
        let arr = (self.get)(key)?.ok_or_else(|| EpisodeError::MissingKey {
            path: self.path.into(),
            key: key.into(),
        })?;
        if !dtypes.contains(&arr.dtype) {
            let expected: Vec<String> = dtypes.iter().map(|d| format!("'{}'", d.descr())).collect();
            return Err(EpisodeError::Dtype {
                path: self.path.into(),
                key: key.into(),
                found: arr.dtype.descr(),
                expected: expected.join(" or "),
            });
        }
        Ok(arr)
    }

    fn shape_error(&self, key: &str, found: &[usize], expected: String) -> EpisodeError {
        EpisodeError::Shape {
            path: self.path.into(),
            key: key.into(),
            found: shape_str(found),
            expected,
        }
    }

    /// Reads `key` and checks it has exactly `shape`.
    fn array(
        &mut self,
        key: &str,
        dtypes: &[DType],
        shape: &[usize],
    ) -> Result<NpyArray, EpisodeError> {
        let arr = self.require(key, dtypes)?;
        if arr.shape != shape {
            return Err(self.shape_error(key, &arr.shape, shape_str(shape)));
        }
        Ok(arr)
    }

    fn floats(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f64>, EpisodeError> {
        Ok(self
            .array(key, FLOAT, shape)?
            .to_f64()
            .expect("float dtype checked"))
    }

    fn bools(&mut self, key: &str, shape: &[usize]) -> Result<Vec<bool>, EpisodeError> {
        Ok(self
            .array(key, BOOL, shape)?
            .to_bool()
            .expect("bool dtype checked"))
    }

    fn value_error(&self, key: &str, detail: String) -> EpisodeError {
        EpisodeError::Value {
            path: self.path.into(),
            key: key.into(),
            detail,
        }
    }
}

fn parse_meta(r: &Reader, arr: NpyArray) -> Result<EpisodeMeta, EpisodeError> {
    let text = match arr.dtype {
        DType::U8 if arr.shape.len() == 1 => String::from_utf8(arr.data).ok(),
        DType::Unicode(_) => arr.to_unicode_string(),
        _ => None,
    }
    .ok_or_else(|| {
        r.value_error(
            META_KEY,
            "is not a UTF-8 JSON document (uint8 vector or unicode string)".into(),
        )
    })?;
    let meta: EpisodeMeta = serde_json::from_str(&text)
        .map_err(|e| r.value_error(META_KEY, format!("bad JSON: {e}")))?;
    if meta.format_version == 0 || meta.format_version > FORMAT_VERSION {
        return Err(r.value_error(
            META_KEY,
            format!(
                "format version {} is not supported (this reader knows 1 to {FORMAT_VERSION})",
                meta.format_version
            ),
        ));
    }
    Ok(meta)
}

/// Builds an episode from the arrays `get` returns (by key, without `.npy`).
pub(super) fn decode(path: &Path, get: &mut Getter) -> Result<Episode, EpisodeError> {
    let mut r = Reader { path, get };
    let stored_meta = match (r.get)(META_KEY)? {
        Some(arr) => Some(parse_meta(&r, arr)?),
        None => None,
    };

    let image = r.require("image", BYTE)?;
    let (meta, source) = match stored_meta {
        Some(m) => {
            let expected = [m.steps + 1, m.resolution, m.resolution, 3];
            if image.shape != expected {
                return Err(r.shape_error("image", &image.shape, shape_str(&expected)));
            }
            (m, Source::Memworld)
        }
        None => (
            infer_memory_maze_meta(&mut r, &image.shape)?,
            Source::MemoryMaze,
        ),
    };
    let t = meta.steps + 1;

    let a = meta.action_names.len();
    let action = r.floats("action", &[t, a])?;
    check_actions(&r, &action, a)?;
    let reward = r.floats("reward", &[t])?;
    if reward[0] != 0.0 {
        return Err(r.value_error("reward", format!("reward[0] is {}, expected 0", reward[0])));
    }
    let terminal = r.bools("terminal", &[t])?;
    let reset = r.bools("reset", &[t])?;
    if let Some(bad) = reset.iter().enumerate().position(|(i, &v)| v != (i == 0)) {
        return Err(r.value_error(
            "reset",
            format!(
                "reset[{bad}] is {}, expected true only at t = 0",
                reset[bad]
            ),
        ));
    }

    let track = match meta.scene {
        SceneKind::Maze => Track::Maze(read_maze(&mut r, t, meta.size)?),
        SceneKind::Voxel => Track::Voxel(VoxelTrack {
            agent_pos: r.floats("agent_pos", &[t, 3])?,
            agent_yaw: r.floats("agent_yaw", &[t])?,
        }),
    };
    Ok(Episode {
        meta,
        source,
        image: image.data,
        action,
        reward,
        terminal,
        reset,
        track,
    })
}

/// A Memory Maze dataset file has no metadata: the image gives T and R, the layout gives N.
fn infer_memory_maze_meta(
    r: &mut Reader,
    image_shape: &[usize],
) -> Result<EpisodeMeta, EpisodeError> {
    let (t, res) = match *image_shape {
        [t, h, w, 3] if h == w && t >= 1 => (t, h),
        _ => return Err(r.shape_error("image", image_shape, "(T, R, R, 3) with T >= 1".into())),
    };
    let layout = r.require("maze_layout", BYTE)?;
    let size = match *layout.shape.as_slice() {
        [lt, n, m] if lt == t && n == m && n > 0 => n,
        _ => return Err(r.shape_error("maze_layout", &layout.shape, format!("({t}, N, N)"))),
    };
    Ok(EpisodeMeta {
        format_version: FORMAT_VERSION,
        scene: SceneKind::Maze,
        seed: None,
        size,
        resolution: res,
        action_names: MEMORY_MAZE_ACTIONS.iter().map(|s| s.to_string()).collect(),
        policy: None,
        steps: t - 1,
    })
}

fn check_actions(r: &Reader, action: &[f64], a: usize) -> Result<(), EpisodeError> {
    for (t, row) in action.chunks_exact(a.max(1)).enumerate() {
        let ones = row.iter().filter(|&&v| v == 1.0).count();
        let zeros = row.iter().filter(|&&v| v == 0.0).count();
        let ok = zeros + ones == a && ones == (t > 0) as usize;
        if !ok {
            let want = if t == 0 {
                "all zeros (the reset no-op)"
            } else {
                "one-hot"
            };
            return Err(r.value_error("action", format!("row {t} is {row:?}, expected {want}")));
        }
    }
    Ok(())
}

fn read_maze(r: &mut Reader, t: usize, n: usize) -> Result<MazeTrack, EpisodeError> {
    let maze_layout = r.array("maze_layout", BYTE, &[t, n, n])?.data;
    if let Some(v) = maze_layout.iter().find(|&&v| v > 1) {
        return Err(r.value_error(
            "maze_layout",
            format!("holds {v}, expected only 0 (wall) and 1 (free)"),
        ));
    }
    let targets_pos = r.require("targets_pos", FLOAT)?;
    let k = match targets_pos.shape.as_slice() {
        &[tt, k, 2] if tt == t => k,
        found => return Err(r.shape_error("targets_pos", found, format!("({t}, K, 2)"))),
    };
    Ok(MazeTrack {
        targets: k,
        maze_layout,
        agent_pos: r.floats("agent_pos", &[t, 2])?,
        agent_dir: r.floats("agent_dir", &[t, 2])?,
        targets_pos: targets_pos.to_f64().expect("float dtype checked"),
        targets_vec: r.floats("targets_vec", &[t, k, 2])?,
        target_pos: r.floats("target_pos", &[t, 2])?,
        target_vec: r.floats("target_vec", &[t, 2])?,
        target_color: r.floats("target_color", &[t, 3])?,
    })
}

/// Checks that an in-memory episode's arrays agree with each other and with its metadata.
/// Violations are bugs in the code that built it, so they panic with a message.
pub(super) fn assert_consistent(ep: &Episode) {
    let t = ep.len();
    let (r, a) = (ep.resolution(), ep.n_actions());
    assert!(t >= 1, "an episode holds at least the reset frame");
    assert_eq!(ep.meta.steps + 1, t, "meta.steps must be T - 1");
    assert_eq!(ep.image.len(), t * r * r * 3, "image must be (T, R, R, 3)");
    assert_eq!(ep.action.len(), t * a, "action must be (T, A)");
    assert_eq!(ep.terminal.len(), t, "terminal must be (T,)");
    assert_eq!(ep.reset.len(), t, "reset must be (T,)");
    match (&ep.track, ep.meta.scene) {
        (Track::Maze(m), SceneKind::Maze) => {
            let (n, k) = (ep.meta.size, m.targets);
            assert_eq!(
                m.maze_layout.len(),
                t * n * n,
                "maze_layout must be (T, N, N)"
            );
            for (v, w, name) in [
                (&m.agent_pos, 2, "agent_pos"),
                (&m.agent_dir, 2, "agent_dir"),
                (&m.targets_pos, 2 * k, "targets_pos"),
                (&m.targets_vec, 2 * k, "targets_vec"),
                (&m.target_pos, 2, "target_pos"),
                (&m.target_vec, 2, "target_vec"),
                (&m.target_color, 3, "target_color"),
            ] {
                assert_eq!(v.len(), t * w, "{name} has the wrong length");
            }
        }
        (Track::Voxel(v), SceneKind::Voxel) => {
            assert_eq!(v.agent_pos.len(), t * 3, "agent_pos must be (T, 3)");
            assert_eq!(v.agent_yaw.len(), t, "agent_yaw must be (T,)");
        }
        (_, scene) => panic!("track does not match scene {scene:?}"),
    }
}
