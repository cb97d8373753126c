//! Job stores and batch jobs: how a run executes away from the store, as a Slurm job
//! does. SQLite must not be written over a network filesystem by processes on several
//! hosts, so a job never opens the driver's store: the driver exports the run (its row,
//! params, inputs, latest checkpoint and the metrics up to it) into a store of its own in
//! the job's directory, the job's stage works on that one, and when the job has ended the
//! driver imports its metrics, checkpoint and outputs back in one transaction.

use std::path::Path;

use rusqlite::{params, OptionalExtension, Transaction};

use crate::error::{Error, Result};
use crate::lock::RunLock;
use crate::runs::RunStatus;
use crate::store::{now, Store};

/// A batch job submitted for a stage and not yet settled (see the `slurm_jobs` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchJob {
    pub stage: String,
    pub job_id: String,
    /// The job's directory, on the filesystem the cluster shares.
    pub dir: String,
    /// The run it executes; `None` while the job is held waiting for its inputs.
    pub run_id: Option<i64>,
    /// The scheduler's last known state (`PENDING`, `RUNNING`, ...) and reason.
    pub state: String,
    pub reason: String,
}

impl Store {
    /// Writes a job store for the (claimed) run `run_id` at `path`, replacing any file
    /// there: the run's row, its inputs' artifacts, its latest checkpoint and the metrics
    /// up to that checkpoint, in rollback-journal mode (see [`Store::open`]).
    pub fn export_job(&self, run_id: i64, path: &Path) -> Result<()> {
        for stale in [path.to_path_buf(), journal_path(path)] {
            match std::fs::remove_file(&stale) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&stale, e))
                }
                _ => {}
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        drop(Store::open(path)?);
        self.attached(path, |tx| {
            let step: Option<i64> = tx
                .query_row(
                    "SELECT max(step) FROM main.checkpoints WHERE run_id = ?1",
                    [run_id],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let wanted = "SELECT digest FROM main.run_inputs WHERE run_id = ?1 UNION \
                          SELECT digest FROM main.checkpoints WHERE run_id = ?1 AND step = ?2";
            for sql in [
                "INSERT INTO job.runs SELECT * FROM main.runs WHERE id = ?1",
                &format!(
                    "INSERT INTO job.artifacts SELECT * FROM main.artifacts WHERE digest IN ({wanted})"
                ),
                &format!(
                    "INSERT INTO job.artifact_chunks SELECT c.* FROM main.artifact_chunks c \
                     JOIN main.artifacts a ON a.id = c.artifact_id WHERE a.digest IN ({wanted})"
                ),
                "INSERT INTO job.run_inputs SELECT * FROM main.run_inputs WHERE run_id = ?1",
                "INSERT INTO job.checkpoints SELECT * FROM main.checkpoints WHERE run_id = ?1 AND step = ?2",
                "INSERT INTO job.metrics SELECT * FROM main.metrics WHERE run_id = ?1 AND step <= ?2",
            ] {
                // Unused parameters are an error to rusqlite; bind by what each uses.
                if sql.contains("?2") {
                    tx.execute(sql, params![run_id, step])?;
                } else {
                    tx.execute(sql, [run_id])?;
                }
            }
            Ok(())
        })
    }

    /// Imports what the job store at `path` holds of the run the caller owns: metrics and
    /// latest checkpoint always, outputs when the run completed there. In one transaction
    /// with the run's new status: `done` if the job completed it, else `otherwise` with
    /// its message. Returns the run's status in the job store.
    pub fn import_job(
        &self,
        lock: &RunLock,
        path: &Path,
        otherwise: (RunStatus, &str),
    ) -> Result<RunStatus> {
        let run_id = lock.run_id();
        if !path.is_file() {
            // The job never started (cancelled while queued): nothing to import.
            return self
                .stop_run(lock, otherwise.0, Some(otherwise.1))
                .map(|()| otherwise.0);
        }
        drop(Store::open(path)?); // brings an older job store's schema up to date
        self.attached(path, |tx| {
            let status: String =
                tx.query_row("SELECT status FROM job.runs WHERE id = ?1", [run_id], |r| {
                    r.get(0)
                })?;
            let status: RunStatus = status.parse().map_err(|e: Error| {
                rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
            })?;
            let done = status == RunStatus::Done;
            let wanted = if done {
                "SELECT digest FROM job.checkpoints WHERE run_id = ?1 UNION \
                 SELECT digest FROM job.run_outputs WHERE run_id = ?1"
            } else {
                "SELECT digest FROM job.checkpoints WHERE run_id = ?1"
            };
            let before: i64 =
                tx.query_row("SELECT coalesce(max(id), 0) FROM main.artifacts", [], |r| r.get(0))?;
            tx.execute(
                &format!(
                    "INSERT INTO main.artifacts (digest, size, media_type, created_at) \
                     SELECT digest, size, media_type, created_at FROM job.artifacts \
                     WHERE digest IN ({wanted}) AND digest NOT IN \
                     (SELECT digest FROM main.artifacts WHERE digest IS NOT NULL)"
                ),
                [run_id],
            )?;
            tx.execute(
                "INSERT INTO main.artifact_chunks (artifact_id, seq, data) \
                 SELECT m.id, c.seq, c.data FROM main.artifacts m \
                 JOIN job.artifacts j ON j.digest = m.digest \
                 JOIN job.artifact_chunks c ON c.artifact_id = j.id WHERE m.id > ?1",
                [before],
            )?;
            let old: Vec<String> = tx
                .prepare("SELECT digest FROM main.checkpoints WHERE run_id = ?1")?
                .query_map([run_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut tables = vec!["metrics", "checkpoints"];
            if done {
                tables.push("run_outputs");
            }
            for table in tables {
                tx.execute(&format!("DELETE FROM main.{table} WHERE run_id = ?1"), [run_id])?;
                tx.execute(
                    &format!("INSERT INTO main.{table} SELECT * FROM job.{table} WHERE run_id = ?1"),
                    [run_id],
                )?;
            }
            // Checkpoints replaced here are dropped as `save_checkpoint` drops them.
            for digest in old {
                tx.execute(
                    "DELETE FROM main.artifacts WHERE digest = ?1 AND digest NOT IN (
                         SELECT digest FROM main.checkpoints UNION SELECT digest FROM main.run_inputs
                         UNION SELECT digest FROM main.run_outputs)",
                    [digest],
                )?;
            }
            let (new_status, message) = if done {
                (RunStatus::Done, None)
            } else {
                (otherwise.0, Some(otherwise.1))
            };
            tx.execute(
                "UPDATE main.runs SET status = ?2, ended_at = ?3, error = ?4 WHERE id = ?1",
                params![run_id, new_status.to_string(), now(), message],
            )?;
            Ok(status)
        })
    }

    /// Runs `f` in one write transaction with the store at `path` attached as `job`.
    fn attached<T>(
        &self,
        path: &Path,
        f: impl FnOnce(&Transaction) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let name = path.to_str().ok_or_else(|| {
            Error::Invalid(format!("job store {}: not a UTF-8 path", path.display()))
        })?;
        self.conn
            .execute("ATTACH DATABASE ?1 AS job", [name])
            .map_err(|e| self.err(e))?;
        let result = self.write(f);
        let detached = self
            .conn
            .execute("DETACH DATABASE job", [])
            .map_err(|e| self.err(e));
        let value = result?;
        detached?;
        Ok(value)
    }

    /// Records a submitted job (replacing an earlier one of the stage).
    pub fn put_batch_job(&self, job: &BatchJob) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO slurm_jobs (stage, job_id, dir, run_id, state, reason, submitted_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![job.stage, job.job_id, job.dir, job.run_id, job.state, job.reason, now()],
            )
            .map(drop)
        })
    }

    /// The unsettled jobs, by stage.
    pub fn batch_jobs(&self) -> Result<Vec<BatchJob>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT stage, job_id, dir, run_id, state, reason FROM slurm_jobs ORDER BY stage",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| {
            Ok(BatchJob {
                stage: r.get(0)?,
                job_id: r.get(1)?,
                dir: r.get(2)?,
                run_id: r.get(3)?,
                state: r.get(4)?,
                reason: r.get(5)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    /// Forgets a stage's job once it is settled.
    pub fn remove_batch_job(&self, stage: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM slurm_jobs WHERE stage = ?1", [stage])
                .map(drop)
        })
    }
}

/// SQLite's rollback journal beside a database file.
fn journal_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push("-journal");
    name.into()
}
