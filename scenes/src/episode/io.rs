//! Reading and writing episode `.npz` files: a zip of `.npy` entries, deflate-compressed, as
//! `numpy.savez_compressed` writes them. Writes are atomic; a damaged file is diagnosed down to
//! the entry that is cut off where possible.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::npy::{self, DType, NpyArray};
use super::{atomic, validate, Episode, EpisodeError, Track, META_KEY};

/// Deflate level: 1 compresses rendered frames nearly as well as numpy's default 6 at a fraction
/// of the time, and recording is often bound by compression.
const DEFLATE_LEVEL: i64 = 1;

/// Writes `ep` to `path` atomically (via `path.tmp`, synced, then renamed).
///
/// # Panics
/// If the arrays of `ep` disagree with each other or with `ep.meta` (a bug in the caller: use
/// [`EpisodeBuilder`](super::EpisodeBuilder)).
pub fn write_episode(path: &Path, ep: &Episode) -> Result<(), EpisodeError> {
    validate::assert_consistent(ep);
    atomic::write_atomic(path, |file| write_npz(file, ep)).map_err(|e| EpisodeError::io(path, e))
}

fn write_npz(file: &mut File, ep: &Episode) -> io::Result<()> {
    let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
    let t = ep.len();
    let r = ep.resolution();
    let bools = |v: &[bool]| v.iter().map(|&b| b as u8).collect::<Vec<u8>>();
    put_bytes(&mut zip, "image", DType::U8, &[t, r, r, 3], &ep.image)?;
    put_f64(&mut zip, "action", &[t, ep.n_actions()], &ep.action)?;
    put_f64(&mut zip, "reward", &[t], &ep.reward)?;
    put_bytes(
        &mut zip,
        "terminal",
        DType::Bool,
        &[t],
        &bools(&ep.terminal),
    )?;
    put_bytes(&mut zip, "reset", DType::Bool, &[t], &bools(&ep.reset))?;
    match &ep.track {
        Track::Maze(m) => {
            let n = ep.meta.size;
            let k = m.targets;
            put_bytes(
                &mut zip,
                "maze_layout",
                DType::U8,
                &[t, n, n],
                &m.maze_layout,
            )?;
            put_f64(&mut zip, "agent_pos", &[t, 2], &m.agent_pos)?;
            put_f64(&mut zip, "agent_dir", &[t, 2], &m.agent_dir)?;
            put_f64(&mut zip, "targets_pos", &[t, k, 2], &m.targets_pos)?;
            put_f64(&mut zip, "targets_vec", &[t, k, 2], &m.targets_vec)?;
            put_f64(&mut zip, "target_pos", &[t, 2], &m.target_pos)?;
            put_f64(&mut zip, "target_vec", &[t, 2], &m.target_vec)?;
            put_f64(&mut zip, "target_color", &[t, 3], &m.target_color)?;
        }
        Track::Voxel(v) => {
            put_f64(&mut zip, "agent_pos", &[t, 3], &v.agent_pos)?;
            put_f64(&mut zip, "agent_yaw", &[t], &v.agent_yaw)?;
        }
    }
    let meta = serde_json::to_vec(&ep.meta).map_err(io::Error::other)?;
    put_bytes(&mut zip, META_KEY, DType::U8, &[meta.len()], &meta)?;
    zip.finish()?.flush()
}

fn entry_options(bytes: usize) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(DEFLATE_LEVEL))
        .large_file(bytes as u64 >= u32::MAX as u64 / 2)
}

fn put_bytes<W: Write + Seek>(
    zip: &mut ZipWriter<W>,
    key: &str,
    dtype: DType,
    shape: &[usize],
    data: &[u8],
) -> io::Result<()> {
    zip.start_file(format!("{key}.npy"), entry_options(data.len()))?;
    npy::write_bytes(zip, dtype, shape, data)
}

fn put_f64<W: Write + Seek>(
    zip: &mut ZipWriter<W>,
    key: &str,
    shape: &[usize],
    values: &[f64],
) -> io::Result<()> {
    zip.start_file(format!("{key}.npy"), entry_options(values.len() * 8))?;
    npy::write_f64(zip, shape, values)
}

/// Reads and validates an episode file: ours (with `memworld_meta`) or a Memory Maze dataset file
/// (without it; scene, size and resolution are then inferred from the arrays).
pub fn read_episode(path: &Path) -> Result<Episode, EpisodeError> {
    let file = File::open(path).map_err(|e| EpisodeError::io(path, e))?;
    let mut archive = match ZipArchive::new(BufReader::new(file)) {
        Ok(a) => a,
        Err(e) => return Err(diagnose_damage(path, e)),
    };
    let names: HashSet<String> = archive.file_names().map(str::to_string).collect();
    let mut get = |key: &str| -> Result<Option<NpyArray>, EpisodeError> {
        let entry = [format!("{key}.npy"), key.to_string()]
            .into_iter()
            .find(|n| names.contains(n));
        let Some(entry) = entry else { return Ok(None) };
        let damaged = |detail: String| EpisodeError::Damaged {
            path: path.into(),
            key: key.into(),
            detail,
        };
        let mut file = archive
            .by_name(&entry)
            .map_err(|e| damaged(e.to_string()))?;
        let mut bytes = Vec::with_capacity(file.size().min(1 << 30) as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| damaged(e.to_string()))?;
        npy::parse(bytes)
            .map(Some)
            .map_err(|cause| EpisodeError::Npy {
                path: path.into(),
                key: key.into(),
                cause,
            })
    };
    validate::decode(path, &mut get)
}

/// The central directory is unreadable (typically the file was cut off). Scan the local entries
/// from the start to say which key is incomplete.
fn diagnose_damage(path: &Path, err: zip::result::ZipError) -> EpisodeError {
    let mut detail = err.to_string();
    let mut key = None;
    if let Ok(file) = File::open(path) {
        let mut reader = BufReader::new(file);
        let mut last_complete: Option<String> = None;
        loop {
            match zip::read::read_zipfile_from_stream(&mut reader) {
                Ok(Some(mut entry)) => {
                    let name = entry.name().trim_end_matches(".npy").to_string();
                    match io::copy(&mut entry, &mut io::sink()) {
                        Ok(_) => last_complete = Some(name),
                        Err(e) => {
                            detail = format!("{e}");
                            key = Some(name);
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    if let Some(k) = &last_complete {
                        detail = format!("{detail}; the last complete key is '{k}'");
                    }
                    break;
                }
            }
        }
    }
    EpisodeError::NotNpz {
        path: path.into(),
        key,
        detail,
    }
}

/// True for paths that look like episode files (`*.npz`, not a `.tmp` leftover).
pub fn is_episode_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "npz")
}

/// The episode files at `path`: the file itself, or every `*.npz` under a directory
/// (recursively), sorted.
pub fn list_episode_files(path: &Path) -> Result<Vec<PathBuf>, EpisodeError> {
    let meta = std::fs::metadata(path).map_err(|e| EpisodeError::io(path, e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| EpisodeError::io(&dir, e))? {
            let entry = entry.map_err(|e| EpisodeError::io(&dir, e))?;
            let p = entry.path();
            let kind = entry.file_type().map_err(|e| EpisodeError::io(&p, e))?;
            if kind.is_dir() {
                dirs.push(p);
            } else if is_episode_file(&p) {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}
