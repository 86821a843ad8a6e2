//! Atomic file writes: write `name.tmp` beside the target, flush it to disk, then rename it over
//! the target, so a crash leaves either the old file, the new file, or a `.tmp` leftover that
//! readers ignore, never a half-written file under the real name.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// The temporary name used while `path` is being written: `path` with `.tmp` appended.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".tmp");
    PathBuf::from(name)
}

/// Creates `path` atomically: `write` fills a fresh temporary file, which is then synced and
/// renamed over `path`. On any error the temporary file is removed and `path` is untouched.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        write(&mut file)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_parent(path);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` atomically with the given bytes.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |f| io::Write::write_all(f, bytes))
}

/// Makes the rename durable where the platform allows syncing a directory; a failure here only
/// weakens durability after a power cut, never correctness, so it is ignored.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_no_file_and_no_temp() {
        let dir = std::env::temp_dir().join(format!("memworld-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("x.bin");
        fs::write(&target, b"old").unwrap();
        let err = write_atomic(&target, |f| {
            io::Write::write_all(f, b"partial")?;
            Err(io::Error::other("disk on fire"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert!(!temp_path(&target).exists());
        write_bytes_atomic(&target, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        fs::remove_dir_all(&dir).unwrap();
    }
}
