//! Runs and what hangs off them: inputs, outputs, metrics and checkpoints; and the claim
//! protocol that lets several `haq run` processes share one store.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use crate::artifact::Digest;
use crate::error::{Error, Result};
use crate::lock::RunLock;
use crate::store::{now, Store};

/// Where a run stands. `Running` in the table with nobody holding the run's lock is read
/// back as `Interrupted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Interrupted,
    Failed,
    Done,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
            RunStatus::Done => "done",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "running" => RunStatus::Running,
            "interrupted" => RunStatus::Interrupted,
            "failed" => RunStatus::Failed,
            "done" => RunStatus::Done,
            other => return Err(Error::Invalid(format!("unknown run status {other:?}"))),
        })
    }
}

/// One execution of a stage, possibly over several attempts (resumes keep the id).
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: i64,
    pub stage: String,
    pub kind: String,
    pub fingerprint: String,
    pub status: RunStatus,
    pub params: serde_json::Value,
    pub binary_id: String,
    pub workflow: String,
    pub attempts: i64,
    pub created_at: f64,
    pub started_at: f64,
    pub ended_at: Option<f64>,
    pub error: Option<String>,
}

impl Run {
    /// The params as dotted leaves (`dataset.name`), for tables of runs.
    pub fn flat_params(&self) -> BTreeMap<String, serde_json::Value> {
        let mut out = BTreeMap::new();
        flatten(String::new(), &self.params, &mut out);
        out
    }
}

/// Nested maps become dotted names; anything else is a leaf.
fn flatten(
    prefix: String,
    value: &serde_json::Value,
    out: &mut BTreeMap<String, serde_json::Value>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(name, value, out);
            }
        }
        leaf => {
            out.insert(prefix, leaf.clone());
        }
    }
}

/// What the scheduler knows about a run before it starts.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub stage: &'a str,
    pub kind: &'a str,
    pub fingerprint: &'a str,
    pub params: &'a serde_json::Value,
    pub binary_id: &'a str,
    pub workflow: &'a str,
    pub inputs: &'a BTreeMap<String, Digest>,
}

/// The answer to "may I run this stage?".
#[derive(Debug)]
pub enum Claim {
    /// A completed run with the same fingerprint exists: nothing to do.
    Cached(Run),
    /// Another live process is executing it.
    Busy(Run),
    /// This process now owns the run (new, or resumed when `resumed` is true).
    Owned {
        run: Run,
        lock: RunLock,
        resumed: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub key: String,
    pub step: i64,
    pub value: f64,
    pub time: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub step: i64,
    pub digest: Digest,
}

const RUN_COLUMNS: &str =
    "id, stage, kind, fingerprint, status, params, binary_id, workflow, attempts, \
                           created_at, started_at, ended_at, error";

fn run_from_row(row: &Row) -> rusqlite::Result<Run> {
    let status: String = row.get(4)?;
    let params: String = row.get(5)?;
    let bad = |i, e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e)
    };
    Ok(Run {
        id: row.get(0)?,
        stage: row.get(1)?,
        kind: row.get(2)?,
        fingerprint: row.get(3)?,
        status: status.parse().map_err(|e: Error| bad(4, e.into()))?,
        params: serde_json::from_str(&params).map_err(|e| bad(5, e.into()))?,
        binary_id: row.get(6)?,
        workflow: row.get(7)?,
        attempts: row.get(8)?,
        created_at: row.get(9)?,
        started_at: row.get(10)?,
        ended_at: row.get(11)?,
        error: row.get(12)?,
    })
}

/// The newest run of `stage` with `fingerprint` that is (`done`) or is not completed.
fn find_run(
    conn: &rusqlite::Connection,
    stage: &str,
    fingerprint: &str,
    done: bool,
) -> rusqlite::Result<Option<Run>> {
    let filter = if done { "=" } else { "!=" };
    conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE stage = ?1 AND fingerprint = ?2 \
         AND status {filter} 'done' ORDER BY id DESC LIMIT 1"
    ))?
    .query_row(params![stage, fingerprint], run_from_row)
    .optional()
}

impl Store {
    /// Decides, atomically with every other process on this store, whether to reuse, wait
    /// for, resume or start the run `new` describes. Resuming drops the metrics and outputs
    /// recorded after the run's latest checkpoint, so no step is counted twice. `force`
    /// ignores earlier runs and starts afresh.
    pub fn claim(&self, new: &NewRun, force: bool) -> Result<Claim> {
        self.write_with(|tx| {
            let sql = |e| self.err(e);
            let find = |done| find_run(tx, new.stage, new.fingerprint, done).map_err(sql);
            if let Some(run) = find(true)?.filter(|_| !force) {
                return Ok(Claim::Cached(run));
            }
            if let Some(run) = find(false)?.filter(|_| !force) {
                let Some(lock) = RunLock::try_acquire(self, run.id)? else {
                    return Ok(Claim::Busy(run));
                };
                let step = latest_checkpoint_tx(tx, run.id).map_err(sql)?.map(|c| c.step);
                tx.execute(
                    "DELETE FROM metrics WHERE run_id = ?1 AND step > ?2",
                    params![run.id, step.unwrap_or(i64::MIN)],
                )
                .map_err(sql)?;
                tx.execute("DELETE FROM run_outputs WHERE run_id = ?1", [run.id]).map_err(sql)?;
                tx.execute(
                    "UPDATE runs SET status = 'running', attempts = attempts + 1, started_at = ?2, \
                     ended_at = NULL, error = NULL, workflow = ?3 WHERE id = ?1",
                    params![run.id, now(), new.workflow],
                )
                .map_err(sql)?;
                let run = run_tx(tx, run.id).map_err(sql)?;
                return Ok(Claim::Owned { run, lock, resumed: true });
            }
            let t = now();
            tx.execute(
                "INSERT INTO runs (stage, kind, fingerprint, status, params, binary_id, workflow, created_at, started_at) \
                 VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?7)",
                params![new.stage, new.kind, new.fingerprint, new.params.to_string(), new.binary_id, new.workflow, t],
            )
            .map_err(sql)?;
            let id = tx.last_insert_rowid();
            // The row is not visible to others until commit, and we commit holding the
            // lock, so nobody can see this run unlocked while we live.
            let lock = RunLock::try_acquire(self, id)?
                .ok_or_else(|| Error::Invalid(format!("lock of new run {id} is held by another process")))?;
            for (name, digest) in new.inputs {
                tx.execute(
                    "INSERT INTO run_inputs (run_id, name, digest) VALUES (?1, ?2, ?3)",
                    params![id, name, digest.0],
                )
                .map_err(sql)?;
            }
            let run = run_tx(tx, id).map_err(sql)?;
            Ok(Claim::Owned { run, lock, resumed: false })
        })
    }

    /// Marks an owned run done; the stage has committed its outputs by now.
    pub fn finish_run(&self, lock: &RunLock) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE runs SET status = 'done', ended_at = ?2, error = NULL WHERE id = ?1",
                params![lock.run_id(), now()],
            )
            .map(drop)
        })
    }

    /// Records that an owned run stopped early: `Interrupted` (resumable as is) or `Failed`
    /// with the reason.
    pub fn stop_run(&self, lock: &RunLock, status: RunStatus, error: Option<&str>) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE runs SET status = ?2, ended_at = ?3, error = ?4 WHERE id = ?1",
                params![lock.run_id(), status.as_str(), now(), error],
            )
            .map(drop)
        })
    }

    /// A run, with `Running` turned into `Interrupted` when its process is gone.
    pub fn run(&self, id: i64) -> Result<Run> {
        let run = run_tx(&self.conn, id)
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(Error::NoSuchRun(id))?;
        self.live(run)
    }

    /// Runs, newest first, optionally of one stage.
    pub fn runs(&self, stage: Option<&str>) -> Result<Vec<Run>> {
        // Two statements: `?1 IS NULL OR stage = ?1` cannot use the index on stage, and
        // `haq status` asks once per stage (quadratic in the workflow's size).
        let filter = if stage.is_some() {
            "stage = ?1"
        } else {
            "?1 IS NULL"
        };
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE {filter} ORDER BY id DESC"
            ))
            .map_err(|e| self.err(e))?;
        let runs = stmt
            .query_map([stage], run_from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        runs.into_iter().map(|r| self.live(r)).collect()
    }

    /// The completed run of `stage` with `fingerprint`, if there is one: a cache hit. A
    /// completed run never changes, so no claim is needed to reuse it.
    pub fn done_run(&self, stage: &str, fingerprint: &str) -> Result<Option<Run>> {
        find_run(&self.conn, stage, fingerprint, true).map_err(|e| self.err(e))
    }

    /// The newest completed run of a stage.
    pub fn latest_done(&self, stage: &str) -> Result<Option<Run>> {
        Ok(self
            .runs(Some(stage))?
            .into_iter()
            .find(|r| r.status == RunStatus::Done))
    }

    fn live(&self, mut run: Run) -> Result<Run> {
        if run.status == RunStatus::Running && !RunLock::is_held(self, run.id)? {
            run.status = RunStatus::Interrupted;
        }
        Ok(run)
    }

    pub fn inputs(&self, run_id: i64) -> Result<BTreeMap<String, Digest>> {
        named_digests(&self.conn, "run_inputs", run_id).map_err(|e| self.err(e))
    }

    pub fn outputs(&self, run_id: i64) -> Result<BTreeMap<String, Digest>> {
        outputs_tx(&self.conn, run_id).map_err(|e| self.err(e))
    }

    /// Stores `bytes` as the run's output `name` (replacing an earlier one).
    pub fn put_output(
        &self,
        run_id: i64,
        name: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest> {
        let digest = self.put_bytes(bytes, media_type)?;
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO run_outputs (run_id, name, digest) VALUES (?1, ?2, ?3)",
                params![run_id, name, digest.0],
            )
        })?;
        Ok(digest)
    }

    /// Records several metrics of one step in one transaction; logging a (key, step)
    /// again replaces the value. A value that is not a finite number (a diverged loss) is
    /// an error naming it, and nothing of the step is logged.
    pub fn log_metrics(&self, run_id: i64, step: i64, values: &[(&str, f64)]) -> Result<()> {
        if let Some((key, value)) = values.iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::Invalid(format!(
                "metric {key} at step {step} is {value}, not a finite number: training \
                 diverged; lower the learning rate (lr) or check the data"
            )));
        }
        let t = now();
        self.write(|tx| {
            for (key, value) in values {
                tx.execute(
                    "INSERT OR REPLACE INTO metrics (run_id, key, step, value, time) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![run_id, key, step, value, t],
                )?;
            }
            Ok(())
        })
    }

    /// A run's metrics ordered by key then step, optionally one key only.
    pub fn metrics(&self, run_id: i64, key: Option<&str>) -> Result<Vec<Metric>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT key, step, value, time FROM metrics WHERE run_id = ?1 AND (?2 IS NULL OR key = ?2) \
                 ORDER BY key, step",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![run_id, key], |r| {
            Ok(Metric {
                key: r.get(0)?,
                step: r.get(1)?,
                value: r.get(2)?,
                time: r.get(3)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    /// Every run's last value of each metric (the value at its highest step), by run id.
    pub fn final_metrics(&self) -> Result<BTreeMap<i64, BTreeMap<String, f64>>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT run_id, key, value FROM metrics m WHERE step = \
                 (SELECT max(step) FROM metrics WHERE run_id = m.run_id AND key = m.key)",
            )
            .map_err(|e| self.err(e))?;
        let mut out: BTreeMap<i64, BTreeMap<String, f64>> = BTreeMap::new();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(i64, String, f64)>>>())
            .map_err(|e| self.err(e))?;
        for (run, key, value) in rows {
            out.entry(run).or_default().insert(key, value);
        }
        Ok(out)
    }

    /// The metric a run logged last (by time): how far a running stage has got.
    pub fn latest_metric(&self, run_id: i64) -> Result<Option<Metric>> {
        self.conn
            .query_row(
                "SELECT key, step, value, time FROM metrics WHERE run_id = ?1 \
                 ORDER BY time DESC, step DESC LIMIT 1",
                [run_id],
                |r| {
                    Ok(Metric {
                        key: r.get(0)?,
                        step: r.get(1)?,
                        value: r.get(2)?,
                        time: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Saves the state after `step` as the run's checkpoint. Only the latest is kept (it is
    /// all a resume needs; a long search would otherwise store gigabytes): the row swap
    /// and the removal of the old blob happen in one transaction.
    pub fn save_checkpoint(
        &self,
        run_id: i64,
        step: i64,
        state: impl std::io::Read,
    ) -> Result<Digest> {
        let digest = self.put_reader(state, "application/x-haq-checkpoint")?;
        self.write(|tx| {
            let mut stmt = tx.prepare("SELECT digest FROM checkpoints WHERE run_id = ?1 AND step != ?2")?;
            let old: Vec<String> = stmt.query_map(params![run_id, step], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            tx.execute("DELETE FROM checkpoints WHERE run_id = ?1 AND step != ?2", params![run_id, step])?;
            tx.execute(
                "INSERT OR REPLACE INTO checkpoints (run_id, step, digest, time) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, step, digest.0, now()],
            )?;
            for d in old {
                tx.execute(
                    "DELETE FROM artifacts WHERE digest = ?1 AND digest NOT IN (
                         SELECT digest FROM checkpoints UNION SELECT digest FROM run_inputs
                         UNION SELECT digest FROM run_outputs)",
                    [d],
                )?;
            }
            Ok(())
        })?;
        Ok(digest)
    }

    /// A run's checkpoints, oldest first.
    pub fn checkpoints(&self, run_id: i64) -> Result<Vec<Checkpoint>> {
        let mut stmt = self
            .conn
            .prepare("SELECT step, digest FROM checkpoints WHERE run_id = ?1 ORDER BY step")
            .map_err(|e| self.err(e))?;
        stmt.query_map([run_id], |r| {
            Ok(Checkpoint {
                step: r.get(0)?,
                digest: Digest(r.get(1)?),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    pub fn latest_checkpoint(&self, run_id: i64) -> Result<Option<Checkpoint>> {
        latest_checkpoint_tx(&self.conn, run_id).map_err(|e| self.err(e))
    }

    /// Drops the checkpoints of completed runs (they are only needed to resume).
    pub fn drop_finished_checkpoints(&self) -> Result<u64> {
        self.write(|tx| {
            tx.execute("DELETE FROM checkpoints WHERE run_id IN (SELECT id FROM runs WHERE status = 'done')", [])
                .map(|n| n as u64)
        })
    }
}

fn run_tx(conn: &rusqlite::Connection, id: i64) -> rusqlite::Result<Run> {
    conn.query_row(
        &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
        [id],
        run_from_row,
    )
}

fn outputs_tx(
    conn: &rusqlite::Connection,
    run_id: i64,
) -> rusqlite::Result<BTreeMap<String, Digest>> {
    named_digests(conn, "run_outputs", run_id)
}

fn named_digests(
    conn: &rusqlite::Connection,
    table: &str,
    run_id: i64,
) -> rusqlite::Result<BTreeMap<String, Digest>> {
    // Cached: `haq run` and `haq status` ask once or twice per stage.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT name, digest FROM {table} WHERE run_id = ?1"
    ))?;
    let rows = stmt.query_map([run_id], |r| Ok((r.get(0)?, Digest(r.get(1)?))))?;
    rows.collect()
}

fn latest_checkpoint_tx(
    conn: &rusqlite::Connection,
    run_id: i64,
) -> rusqlite::Result<Option<Checkpoint>> {
    conn.query_row(
        "SELECT step, digest FROM checkpoints WHERE run_id = ?1 ORDER BY step DESC LIMIT 1",
        [run_id],
        |r| {
            Ok(Checkpoint {
                step: r.get(0)?,
                digest: Digest(r.get(1)?),
            })
        },
    )
    .optional()
}
