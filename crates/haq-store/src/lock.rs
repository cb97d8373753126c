//! Run locks: an advisory file lock per run, held by the `haq run` process executing it.
//! The kernel drops the lock when that process dies however it dies, so "status running
//! but lock free" reliably means interrupted — no heartbeats or timeouts needed.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::store::Store;

/// Proof that this process owns a run; dropping it releases the run.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    run_id: i64,
}

impl RunLock {
    /// Takes the run's lock if nobody holds it.
    pub fn try_acquire(store: &Store, run_id: i64) -> Result<Option<RunLock>> {
        let path = store.locks_dir().join(format!("run-{run_id}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RunLock {
                _file: file,
                run_id,
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    /// Whether some live process holds the run's lock. A read-only store asks the kernel's
    /// lock table instead of trying the lock: a viewer must never hold, even for an
    /// instant, a lock that a resuming `haq run` is about to take.
    pub fn is_held(store: &Store, run_id: i64) -> Result<bool> {
        if store.read_only {
            return held_per_proc_locks(&store.locks_dir().join(format!("run-{run_id}.lock")));
        }
        Ok(RunLock::try_acquire(store, run_id)?.is_none())
    }

    pub fn run_id(&self) -> i64 {
        self.run_id
    }
}

/// Whether `/proc/locks` (Linux) lists a lock on `path`'s inode. Its lines read
/// `1: FLOCK  ADVISORY  WRITE 1234 08:02:5678 0 EOF`: the sixth field is
/// major:minor:inode of the locked file (proc(5)).
fn held_per_proc_locks(path: &Path) -> Result<bool> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(path, e)),
    };
    let table = "/proc/locks";
    let locks = std::fs::read_to_string(table).map_err(|e| Error::io(Path::new(table), e))?;
    let inode = meta.ino().to_string();
    let (major, minor) = (libc_major(meta.dev()), libc_minor(meta.dev()));
    Ok(locks.lines().any(|line| {
        let Some(id) = line
            .split_whitespace()
            .find(|f| f.matches(':').count() == 2)
        else {
            return false;
        };
        let mut parts = id.split(':');
        let (Some(maj), Some(min), Some(ino)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        ino == inode
            && u64::from_str_radix(maj, 16).ok() == Some(major)
            && u64::from_str_radix(min, 16).ok() == Some(minor)
    }))
}

/// The major and minor numbers of a Linux `dev_t` (glibc's `gnu_dev_major`/`minor`).
fn libc_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)
}

fn libc_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)
}
