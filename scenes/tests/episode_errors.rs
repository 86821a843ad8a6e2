//! Damaged episode files give one clear error naming the file and the key, never a panic.

mod episode_support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use episode_support::{cycling_policy, meta_for, scratch_dir, FakeEnv};
use scenes::episode::npy::{self, DType};
use scenes::episode::{read_episode, write_episode, EpisodeError};
use scenes::record::record_episode;
use scenes::{Env, SceneKind};

/// A valid 10-step maze episode (T = 11, 6 actions) and its entries as (name, bytes).
fn valid_file(dir: &Path) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let mut env = FakeEnv::new(SceneKind::Maze, 16);
    let meta = meta_for(&env, 1, 5);
    let mut act = cycling_policy(1, env.action_names().len());
    let ep = record_episode(&mut env, &mut act, meta, 1, 10, &mut || {});
    let path = dir.join("ep3.npz");
    write_episode(&path, &ep).unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let entries = (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            (f.name().to_string(), bytes)
        })
        .collect();
    (path, entries)
}

/// Rewrites the archive with entry `key.npy` replaced (or removed when `replacement` is None).
fn rewrite(path: &Path, entries: &[(String, Vec<u8>)], key: &str, replacement: Option<Vec<u8>>) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    for (name, bytes) in entries {
        let bytes = if name == &format!("{key}.npy") {
            match &replacement {
                Some(b) => b,
                None => continue,
            }
        } else {
            bytes
        };
        zip.start_file(name.as_str(), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn npy_f64(shape: &[usize], values: &[f64]) -> Vec<u8> {
    let mut out = Vec::new();
    npy::write_f64(&mut out, shape, values).unwrap();
    out
}

#[test]
fn wrong_shape_names_file_key_and_both_shapes() {
    let dir = scratch_dir("episode_errors_shape");
    let (path, entries) = valid_file(&dir);
    rewrite(
        &path,
        &entries,
        "action",
        Some(npy_f64(&[10, 5], &[0.0; 50])),
    );
    let err = read_episode(&path).unwrap_err();
    let expected = format!(
        "{}: key 'action' has shape (10, 5), expected (11, 6)",
        path.display()
    );
    assert_eq!(err.to_string(), expected);
    assert_eq!(err.key(), Some("action"));
}

#[test]
fn wrong_dtype_missing_key_and_bad_values_name_the_key() {
    let dir = scratch_dir("episode_errors_keys");
    let (path, entries) = valid_file(&dir);

    let mut reward_u8 = Vec::new();
    npy::write_bytes(&mut reward_u8, DType::U8, &[11], &[0; 11]).unwrap();
    rewrite(&path, &entries, "reward", Some(reward_u8));
    let err = read_episode(&path).unwrap_err();
    assert!(
        matches!(err, EpisodeError::Dtype { ref key, .. } if key == "reward"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("{}: key 'reward' has dtype '|u1'", path.display())),
        "{err}"
    );

    rewrite(&path, &entries, "reset", None);
    let err = read_episode(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: missing key 'reset'", path.display())
    );

    let mut action = vec![0.0; 66];
    action[0] = 1.0; // row 0 must be the reset no-op
    rewrite(&path, &entries, "action", Some(npy_f64(&[11, 6], &action)));
    let err = read_episode(&path).unwrap_err();
    assert!(
        matches!(err, EpisodeError::Value { ref key, .. } if key == "action"),
        "{err}"
    );

    let mut garbage = npy_f64(&[11], &[0.0; 11]);
    garbage.truncate(40);
    rewrite(&path, &entries, "reward", Some(garbage));
    let err = read_episode(&path).unwrap_err();
    assert_eq!(err.key(), Some("reward"), "{err}");

    let meta = br#"{"format_version": 99, "scene": "maze"}"#.to_vec();
    let mut meta_npy = Vec::new();
    npy::write_bytes(&mut meta_npy, DType::U8, &[meta.len()], &meta).unwrap();
    rewrite(&path, &entries, "memworld_meta", Some(meta_npy));
    let err = read_episode(&path).unwrap_err();
    assert_eq!(err.key(), Some("memworld_meta"), "{err}");
}

#[test]
fn truncated_files_error_with_file_name_at_every_cut() {
    let dir = scratch_dir("episode_errors_truncated");
    let (path, _) = valid_file(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let cut_path = dir.join("cut.npz");
    let mut keys_named = 0;
    for cut in [
        0,
        3,
        30,
        bytes.len() / 10,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() * 9 / 10,
        bytes.len() - 1,
    ] {
        std::fs::write(&cut_path, &bytes[..cut]).unwrap();
        let err = read_episode(&cut_path).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{}: ", cut_path.display())),
            "cut {cut}: {msg}"
        );
        assert!(!msg.contains('\n'), "one line: {msg}");
        keys_named += err.key().is_some() as usize;
    }
    // A cut inside the image data (the first, largest entry) is traced to that key.
    std::fs::write(&cut_path, &bytes[..bytes.len() / 10]).unwrap();
    let err = read_episode(&cut_path).unwrap_err();
    assert_eq!(err.key(), Some("image"), "{err}");
    assert!(keys_named >= 3);

    std::fs::write(&cut_path, b"this is not a zip file at all").unwrap();
    assert!(matches!(
        read_episode(&cut_path),
        Err(EpisodeError::NotNpz { .. })
    ));
    let missing = dir.join("nope.npz");
    assert!(matches!(
        read_episode(&missing),
        Err(EpisodeError::Io { .. })
    ));
}
