//! The store's schema as a list of forward migrations; `PRAGMA user_version` records how
//! many have been applied.

/// Migration `i` takes a store from version `i` to `i + 1`. Only ever append.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY,
    digest      TEXT UNIQUE,            -- blake3 hex; NULL only inside the writing transaction
    size        INTEGER NOT NULL DEFAULT 0,
    media_type  TEXT NOT NULL DEFAULT 'application/octet-stream',
    created_at  REAL NOT NULL
);
CREATE TABLE artifact_chunks (
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (artifact_id, seq)
) WITHOUT ROWID;
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    stage       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'interrupted', 'failed', 'done')),
    params      TEXT NOT NULL,
    binary_id   TEXT NOT NULL,
    workflow    TEXT NOT NULL DEFAULT '',
    attempts    INTEGER NOT NULL DEFAULT 1,
    created_at  REAL NOT NULL,
    started_at  REAL NOT NULL,
    ended_at    REAL,
    error       TEXT
);
CREATE INDEX runs_by_stage ON runs(stage, fingerprint);
CREATE TABLE run_inputs (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    digest  TEXT NOT NULL REFERENCES artifacts(digest),
    PRIMARY KEY (run_id, name)
);
CREATE TABLE run_outputs (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    digest  TEXT NOT NULL REFERENCES artifacts(digest),
    PRIMARY KEY (run_id, name)
);
CREATE TABLE metrics (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    step    INTEGER NOT NULL,
    value   REAL NOT NULL,
    time    REAL NOT NULL,
    PRIMARY KEY (run_id, key, step)
);
CREATE TABLE checkpoints (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,
    digest  TEXT NOT NULL REFERENCES artifacts(digest),
    time    REAL NOT NULL,
    PRIMARY KEY (run_id, step)
);
"#,
    r#"
-- Batch jobs the Slurm executor has submitted and not yet settled: one per stage, so a
-- restarted `haq run` re-attaches to a job instead of submitting the stage again. A job is
-- held until its inputs are known; `run_id` is set when its run is prepared.
CREATE TABLE slurm_jobs (
    stage        TEXT PRIMARY KEY,
    job_id       TEXT NOT NULL,
    dir          TEXT NOT NULL,
    run_id       INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    state        TEXT NOT NULL DEFAULT 'PENDING',
    reason       TEXT NOT NULL DEFAULT '',
    submitted_at REAL NOT NULL
);
"#,
];
