//! Run locks: an advisory file lock per run, held by the `haq run` process executing it.
//! The kernel drops the lock when that process dies however it dies, so "status running
//! but lock free" reliably means interrupted — no heartbeats or timeouts needed.

use std::fs::{File, OpenOptions, TryLockError};

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

    /// Whether some live process holds the run's lock.
    pub fn is_held(store: &Store, run_id: i64) -> Result<bool> {
        Ok(RunLock::try_acquire(store, run_id)?.is_none())
    }

    pub fn run_id(&self) -> i64 {
        self.run_id
    }
}
