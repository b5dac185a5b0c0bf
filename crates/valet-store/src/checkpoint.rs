//! The audit chain's head, kept in a file outside the database so that truncating the log
//! (deleting its latest entries) is detected by [`verify`](crate::verify).

use crate::error::{Error, Result};
use alloy_primitives::{B256, hex};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The audit chain head (seq and hash) kept outside the database.
///
/// The file holds one line, `<seq> 0x<hash>`. It is replaced atomically: written to a
/// temporary file beside it, fsync'd, renamed over it, and the directory fsync'd. It only
/// moves forward: writers (several gateway processes of one home, say) take an exclusive lock
/// on `<path>.lock`, and a head at or below the recorded one is not written.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: PathBuf,
}

impl Checkpoint {
    /// A checkpoint kept at `path` (its directory must exist).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Checkpoint { path: path.into() }
    }

    /// Where the checkpoint lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `(seq, hash)` as the head, atomically and durably, unless the recorded head is
    /// already at `seq` or beyond (another process got there first); the file has mode 0600.
    pub fn write(&self, seq: u64, hash: B256) -> Result<()> {
        let mut lock_name = self.path.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        let lock_path = self.path.with_file_name(lock_name);
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| Error::io("opening the checkpoint lock", &lock_path, e))?;
        lock.lock()
            .map_err(|e| Error::io("locking the checkpoint", &lock_path, e))?;
        if self.read()?.is_some_and(|(recorded, _)| recorded >= seq) {
            return Ok(());
        }
        self.replace(seq, hash)
    }

    fn replace(&self, seq: u64, hash: B256) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // A name of its own per write, so that concurrent writers never share a temporary.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(
            ".tmp.{}.{}",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = dir.join(tmp_name);
        let written = self.write_via(&tmp, &dir, seq, hash);
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    fn write_via(&self, tmp: &Path, dir: &Path, seq: u64, hash: B256) -> Result<()> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(tmp)
            .map_err(|e| Error::io("creating checkpoint", tmp, e))?;
        file.write_all(format!("{seq} {}\n", hex::encode_prefixed(hash)).as_bytes())
            .map_err(|e| Error::io("writing checkpoint", tmp, e))?;
        file.sync_all()
            .map_err(|e| Error::io("syncing checkpoint", tmp, e))?;
        drop(file);
        fs::rename(tmp, &self.path)
            .map_err(|e| Error::io("replacing checkpoint", &self.path, e))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("syncing the directory of checkpoint", dir, e))?;
        Ok(())
    }

    /// The recorded head, or `None` if no checkpoint was written yet.
    pub fn read(&self) -> Result<Option<(u64, B256)>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("reading checkpoint", &self.path, e)),
        };
        let corrupt = |reason: &str| {
            Error::corrupt(
                format!("checkpoint {}", self.path.display()),
                reason.to_owned(),
            )
        };
        let line = text
            .strip_suffix('\n')
            .ok_or_else(|| corrupt("no final newline"))?;
        let (seq, hash) = line
            .split_once(' ')
            .ok_or_else(|| corrupt("expected `<seq> 0x<hash>`"))?;
        let seq = seq
            .parse::<u64>()
            .map_err(|_| corrupt("seq is not an unsigned integer"))?;
        let hash = hash
            .strip_prefix("0x")
            .filter(|h| h.len() == 64)
            .and_then(|_| hash.parse::<B256>().ok())
            .ok_or_else(|| corrupt("hash is not 0x and 64 hex digits"))?;
        Ok(Some((seq, hash)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_and_replaces_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::new(dir.path().join("audit.checkpoint"));
        assert_eq!(cp.read().unwrap(), None);
        cp.write(1, B256::repeat_byte(1)).unwrap();
        cp.write(42, B256::repeat_byte(0xfe)).unwrap();
        assert_eq!(cp.read().unwrap(), Some((42, B256::repeat_byte(0xfe))));
        // Never backwards: a late writer of an older head changes nothing.
        cp.write(41, B256::repeat_byte(2)).unwrap();
        assert_eq!(cp.read().unwrap(), Some((42, B256::repeat_byte(0xfe))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(cp.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["audit.checkpoint", "audit.checkpoint.lock"].map(std::ffi::OsString::from),
            "no temporary left, only the writers' lock"
        );
    }

    #[test]
    fn a_damaged_checkpoint_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        fs::write(&path, "12 0x1234\n").unwrap();
        let err = Checkpoint::new(&path).read().unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(matches!(err, Error::Corrupt { .. }));
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("cp");
        let err = Checkpoint::new(&path).write(1, B256::ZERO).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
