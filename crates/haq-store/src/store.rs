use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{Error, Result};
use crate::schema::MIGRATIONS;

/// An open store: one SQLite file (WAL mode) plus a sibling directory `<file>.d/` with the
/// run locks and logs, which are files by nature.
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
    /// Opened by [`Store::open_read_only`]: nothing is written, not even a lock file.
    pub(crate) read_only: bool,
}

/// Writers wait this long for each other before giving up; stages write small
/// transactions, so a long wait means something is stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

impl Store {
    /// Opens the store at `path`, creating it (and its directory) if needed and applying
    /// any pending migrations.
    pub fn open(path: &Path) -> Result<Store> {
        if path.is_dir() {
            return Err(Error::Invalid(format!(
                "store {}: is a directory; the store is one SQLite file: name a file \
                 (store: in the workflow, or --store), e.g. {}",
                path.display(),
                path.join("store.db").display()
            )));
        }
        if path.as_os_str().is_empty() {
            return Err(Error::Invalid(
                "the store path is empty; name a file, e.g. store: .haq/store.db".into(),
            ));
        }
        // A store `open` creates is switched to WAL (a persistent setting); one that exists
        // keeps its journal mode, so a job store made empty by `Store::export_job` stays in
        // rollback mode, which, unlike WAL, works on a network filesystem.
        let created = !path.exists();
        if path.is_file() {
            check_is_haqs(path)?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let side = side_dir(path);
        for dir in [side.join("locks"), side.join("logs")] {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        // Creating the file, switching it to WAL and migrating it are done by one process at
        // a time: SQLite answers "database is locked" at once, without waiting, to some of
        // these steps when several processes open a new store together.
        let guard_path = side.join("open.lock");
        let guard = std::fs::File::create(&guard_path).map_err(|e| Error::io(&guard_path, e))?;
        guard.lock().map_err(|e| Error::io(&guard_path, e))?;
        let path = path.to_path_buf();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(&path, flags).map_err(|e| Error::sqlite(&path, e))?;
        let store = Store {
            conn,
            path,
            read_only: false,
        };
        store.configure(created)?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing store for reading only, for a viewer beside running stages: no
    /// file is created or migrated, no lock is taken, and WAL lets it read while stages
    /// write. A missing file, an empty one, or one of another program is a clear error.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        if !path.is_file() {
            return Err(Error::Invalid(format!(
                "store {}: no such file yet; `haq run` creates it",
                path.display()
            )));
        }
        check_is_haqs(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| Error::sqlite(path, e))?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
            read_only: true,
        };
        store
            .conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| store.err(e))?;
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| store.err(e))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(Error::NewerSchema {
                path: store.path.clone(),
                found: version,
                known,
            });
        }
        if version < known {
            return Err(Error::Invalid(format!(
                "store {}: {}; `haq run` or `haq status` brings it up to date",
                path.display(),
                if version == 0 {
                    "empty, no haq tables yet".to_string()
                } else {
                    format!("schema version {version}, older than this haq's {known}")
                }
            )));
        }
        Ok(store)
    }

    fn configure(&self, created: bool) -> Result<()> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.err(e))?;
        // WAL lets readers (`haq status`) run beside a writing stage; NORMAL sync is
        // durable against a killed process, which is the failure we design for. A rollback
        // journal (a job store) syncs fully: it may sit on a network filesystem.
        let journal = if created { "WAL" } else { "" };
        let mode: String = match journal {
            "" => self.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)),
            set => self
                .conn
                .query_row(&format!("PRAGMA journal_mode = {set}"), [], |r| r.get(0)),
        }
        .map_err(|e| self.err(e))?;
        let sync = if mode.eq_ignore_ascii_case("wal") {
            "NORMAL"
        } else {
            "FULL"
        };
        self.conn
            .execute_batch(&format!(
                "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"
            ))
            .map_err(|e| self.err(e))
    }

    fn migrate(&self) -> Result<()> {
        let known = MIGRATIONS.len() as i64;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if version > known {
            return Err(Error::NewerSchema {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        if version == known {
            return Ok(());
        }
        self.write(|tx| {
            // Re-read inside the write lock: another process may have migrated meanwhile.
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            }
            Ok(())
        })
    }

    /// The store's SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where per-run lock files live.
    pub fn locks_dir(&self) -> PathBuf {
        self.side_dir().join("locks")
    }

    /// Where per-run logs live.
    pub fn logs_dir(&self) -> PathBuf {
        self.side_dir().join("logs")
    }

    /// The log file of a run.
    pub fn log_path(&self, run_id: i64) -> PathBuf {
        self.logs_dir().join(format!("run-{run_id}.log"))
    }

    fn side_dir(&self) -> PathBuf {
        side_dir(&self.path)
    }

    /// Runs `f` in one write transaction, taken immediately so that check-then-write
    /// sequences are atomic across processes.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let value = f(&tx).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(value)
    }

    /// Like [`Store::write`] for bodies that fail with the store's own errors too.
    pub(crate) fn write_with<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let value = f(&tx)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(value)
    }

    pub(crate) fn err(&self, e: rusqlite::Error) -> Error {
        Error::sqlite(&self.path, e)
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    pub fn integrity_check(&self) -> Result<String> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}

/// Refuses, before anything is written beside it, a file that is not SQLite or that holds
/// another program's tables: haq would otherwise add its own tables beside them.
fn check_is_haqs(path: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| Error::sqlite(path, e))?;
    // One statement, so one snapshot: a store being created by another process has its
    // tables and its version committed together.
    let (version, tables): (i64, i64) = conn
        .query_row(
            "SELECT user_version, (SELECT count(*) FROM sqlite_master WHERE type = 'table') \
             FROM pragma_user_version",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
                Error::Invalid(format!(
                    "store {}: not an SQLite file, so not a haq store; point store: (or \
                     --store) at another path, or move this file away",
                    path.display()
                ))
            }
            _ => Error::sqlite(path, e),
        })?;
    if version == 0 && tables > 0 {
        return Err(Error::Invalid(format!(
            "store {}: an SQLite database with {tables} table(s) of another program, not a haq \
             store; haq leaves it untouched: point store: (or --store) at another path",
            path.display()
        )));
    }
    Ok(())
}

/// `<store file>.d/`: the run locks and logs.
fn side_dir(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".d");
    path.with_file_name(name)
}

/// Seconds since the Unix epoch, for record keeping only (never for staleness).
pub(crate) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
