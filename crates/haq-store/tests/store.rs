use std::collections::BTreeMap;
use std::io::Read;

use haq_store::{Claim, Digest, Error, NewRun, RunStatus, Store};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("sub/store.db")).unwrap();
    (dir, store)
}

fn new_run<'a>(
    fp: &'a str,
    params: &'a serde_json::Value,
    inputs: &'a BTreeMap<String, Digest>,
) -> NewRun<'a> {
    NewRun {
        stage: "train",
        kind: "example",
        fingerprint: fp,
        params,
        binary_id: "b1",
        workflow: "w",
        inputs,
    }
}

#[test]
fn artifacts_are_deduplicated_and_streamed_in_chunks() {
    let (_dir, store) = store();
    // Larger than one chunk, not a multiple of it.
    let big: Vec<u8> = (0..3_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let a = store.put_bytes(&big, "application/octet-stream").unwrap();
    let b = store
        .put_reader(&big[..], "application/octet-stream")
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.0, blake3::hash(&big).to_hex().to_string());
    assert_eq!(store.get_bytes(&a).unwrap(), big);
    let mut reader = store.open_artifact(&a).unwrap();
    assert_eq!(reader.size(), big.len() as u64);
    let mut head = [0u8; 10];
    reader.read_exact(&mut head).unwrap();
    assert_eq!(&head, &big[..10]);
    let empty = store.put_bytes(b"", "text/plain").unwrap();
    assert_eq!(store.get_bytes(&empty).unwrap(), b"");
    let count: i64 = rusqlite::Connection::open(store.path())
        .unwrap()
        .query_row("SELECT count(*) FROM artifacts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 2, "the same bytes are stored once");
    assert!(matches!(
        store.get_bytes(&Digest("00".into())),
        Err(Error::NoSuchArtifact(_))
    ));
}

#[test]
fn gc_removes_only_unreferenced_artifacts() {
    let (_dir, store) = store();
    let (params, inputs) = (serde_json::json!({}), BTreeMap::new());
    let Claim::Owned { run, lock, .. } =
        store.claim(&new_run("f", &params, &inputs), false).unwrap()
    else {
        panic!("a new run is owned")
    };
    let kept = store
        .put_output(run.id, "model", b"weights", "application/octet-stream")
        .unwrap();
    store.save_checkpoint(run.id, 1, &b"state"[..]).unwrap();
    let orphan = store.put_bytes(b"orphan bytes", "text/plain").unwrap();
    store.finish_run(&lock).unwrap();
    let stats = store.gc().unwrap();
    assert_eq!(stats.artifacts, 1);
    assert_eq!(stats.bytes, 12);
    assert!(store.get_bytes(&kept).is_ok());
    assert!(store.get_bytes(&orphan).is_err());
    assert_eq!(store.drop_finished_checkpoints().unwrap(), 1);
    assert_eq!(
        store.gc().unwrap().artifacts,
        1,
        "the checkpoint's blob goes next"
    );
}

#[test]
fn claim_caches_waits_and_resumes_from_the_latest_checkpoint() {
    let (_dir, store) = store();
    let params = serde_json::json!({"epochs": 3});
    let input = store.put_bytes(b"data", "text/plain").unwrap();
    let inputs = BTreeMap::from([("prep/data".to_string(), input)]);
    let new = new_run("fp1", &params, &inputs);

    let Claim::Owned { run, lock, resumed } = store.claim(&new, false).unwrap() else {
        panic!("owned")
    };
    assert!(!resumed);
    assert_eq!(store.inputs(run.id).unwrap(), inputs);
    assert_eq!(store.run(run.id).unwrap().status, RunStatus::Running);
    // A second process asking for the same work is told to wait.
    let other = Store::open(store.path()).unwrap();
    assert!(matches!(other.claim(&new, false).unwrap(), Claim::Busy(r) if r.id == run.id));

    for step in 1..=3 {
        store
            .log_metrics(run.id, step, &[("loss", 1.0 / step as f64)])
            .unwrap();
        if step < 3 {
            store
                .save_checkpoint(run.id, step, format!("state {step}").as_bytes())
                .unwrap();
        }
    }
    store
        .put_output(run.id, "partial", b"x", "text/plain")
        .unwrap();
    drop(lock); // the process dies here
    assert_eq!(other.run(run.id).unwrap().status, RunStatus::Interrupted);

    let Claim::Owned {
        run: again,
        lock,
        resumed,
    } = other.claim(&new, false).unwrap()
    else {
        panic!("owned")
    };
    assert!(resumed);
    assert_eq!(again.id, run.id);
    assert_eq!(again.attempts, 2);
    let ckpt = other.latest_checkpoint(run.id).unwrap().unwrap();
    assert_eq!(ckpt.step, 2);
    assert_eq!(
        other.checkpoints(run.id).unwrap(),
        std::slice::from_ref(&ckpt),
        "only the latest is kept"
    );
    let blobs: i64 = rusqlite::Connection::open(other.path())
        .unwrap()
        .query_row("SELECT count(*) FROM artifacts WHERE size > 0 AND media_type = 'application/x-haq-checkpoint'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(blobs, 1, "the older checkpoint's blob is gone");
    assert_eq!(other.get_bytes(&ckpt.digest).unwrap(), b"state 2");
    let steps: Vec<i64> = other
        .metrics(run.id, Some("loss"))
        .unwrap()
        .iter()
        .map(|m| m.step)
        .collect();
    assert_eq!(steps, [1, 2], "metrics after the checkpoint are dropped");
    assert!(
        other.outputs(run.id).unwrap().is_empty(),
        "outputs of the interrupted attempt are dropped"
    );

    other
        .put_output(run.id, "model", b"final", "text/plain")
        .unwrap();
    other.finish_run(&lock).unwrap();
    drop(lock);
    assert!(matches!(store.claim(&new, false).unwrap(), Claim::Cached(r) if r.id == run.id));
    let Claim::Owned {
        run: forced,
        resumed,
        ..
    } = store.claim(&new, true).unwrap()
    else {
        panic!("forced")
    };
    assert!(!resumed);
    assert_ne!(forced.id, run.id);
}

#[test]
fn failed_runs_keep_their_error_and_are_retried_with_the_same_id() {
    let (_dir, store) = store();
    let (params, inputs) = (serde_json::json!({}), BTreeMap::new());
    let new = new_run("fp", &params, &inputs);
    let Claim::Owned { run, lock, .. } = store.claim(&new, false).unwrap() else {
        panic!()
    };
    store
        .stop_run(&lock, RunStatus::Failed, Some("out of memory"))
        .unwrap();
    drop(lock);
    let failed = store.run(run.id).unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("out of memory"));
    let Claim::Owned { run: retry, .. } = store.claim(&new, false).unwrap() else {
        panic!()
    };
    assert_eq!(retry.id, run.id);
    assert_eq!(retry.error, None);
}

#[test]
fn a_store_from_a_newer_haq_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(Store::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let err = Store::open(&path).err().expect("refused");
    assert!(matches!(err, Error::NewerSchema { found: 999, .. }));
    assert!(err.to_string().contains("upgrade haq"), "{err}");
}

#[test]
fn reopening_keeps_everything_and_checks_integrity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let digest = Store::open(&path)
        .unwrap()
        .put_bytes(b"persist", "text/plain")
        .unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.get_bytes(&digest).unwrap(), b"persist");
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn many_openers_of_a_new_store_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/store.db");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = Store::open(&path).unwrap();
                store
                    .put_bytes(format!("opener {i}").as_bytes(), "text/plain")
                    .unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().expect("every opener succeeds");
    }
    assert_eq!(Store::open(&path).unwrap().integrity_check().unwrap(), "ok");
}

#[test]
fn a_diverged_metric_is_refused_with_a_message_and_nothing_of_its_step_is_logged() {
    let (_dir, store) = store();
    let (params, inputs) = (serde_json::json!({}), BTreeMap::new());
    let Claim::Owned { run, .. } = store
        .claim(&new_run("fp", &params, &inputs), false)
        .unwrap()
    else {
        panic!()
    };
    store.log_metrics(run.id, 1, &[("loss", 2.0)]).unwrap();
    let err = store
        .log_metrics(run.id, 2, &[("top1", 10.0), ("loss", f64::NAN)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("metric loss at step 2 is NaN, not a finite number: training diverged"),
        "{err}"
    );
    let logged: Vec<(String, i64)> = store
        .metrics(run.id, None)
        .unwrap()
        .into_iter()
        .map(|m| (m.key, m.step))
        .collect();
    assert_eq!(logged, [("loss".to_string(), 1)]);
}

#[test]
fn a_job_store_carries_a_run_out_and_its_results_back_in_one_import() {
    let (dir, store) = store();
    let input = store
        .put_bytes(&vec![7u8; 3 << 20], "application/octet-stream")
        .unwrap();
    let inputs = BTreeMap::from([("up/weights".to_string(), input.clone())]);
    let params = serde_json::json!({"steps": 4});
    let Claim::Owned { run, lock, .. } =
        store.claim(&new_run("f", &params, &inputs), false).unwrap()
    else {
        panic!("a new run is owned")
    };
    store.log_metrics(run.id, 1, &[("loss", 1.0)]).unwrap();
    store.save_checkpoint(run.id, 1, &b"state 1"[..]).unwrap();
    store.log_metrics(run.id, 2, &[("loss", 0.5)]).unwrap(); // after the checkpoint

    let path = dir.path().join("job/store.db");
    store.export_job(run.id, &path).unwrap();
    let journal: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        journal, "delete",
        "a job store is not WAL: it may be on NFS"
    );
    {
        // The job's side, as the stage harness sees it.
        let job = Store::open(&path).unwrap();
        assert_eq!(job.run(run.id).unwrap().params, params);
        assert_eq!(job.inputs(run.id).unwrap(), inputs);
        assert_eq!(job.get_bytes(&input).unwrap(), vec![7u8; 3 << 20]);
        assert_eq!(job.latest_checkpoint(run.id).unwrap().unwrap().step, 1);
        let steps: Vec<i64> = job
            .metrics(run.id, None)
            .unwrap()
            .iter()
            .map(|m| m.step)
            .collect();
        assert_eq!(steps, [1], "only the metrics up to the checkpoint");
        let Claim::Owned { lock: job_lock, .. } =
            job.claim(&new_run("f", &params, &inputs), false).unwrap()
        else {
            panic!("the job owns its copy")
        };
        job.log_metrics(run.id, 2, &[("loss", 0.25)]).unwrap();
        job.save_checkpoint(run.id, 2, &b"state 2"[..]).unwrap();
        job.put_output(run.id, "result", b"42", "text/plain")
            .unwrap();
        job.finish_run(&job_lock).unwrap();
    }
    let status = store
        .import_job(&lock, &path, (RunStatus::Failed, "unused"))
        .unwrap();
    assert_eq!(status, RunStatus::Done);
    let done = store.run(run.id).unwrap();
    assert_eq!(done.status, RunStatus::Done);
    let result = &store.outputs(run.id).unwrap()["result"];
    assert_eq!(store.get_bytes(result).unwrap(), b"42");
    let metrics: Vec<(i64, f64)> = store
        .metrics(run.id, None)
        .unwrap()
        .iter()
        .map(|m| (m.step, m.value))
        .collect();
    assert_eq!(metrics, [(1, 1.0), (2, 0.25)]);
    assert_eq!(store.latest_checkpoint(run.id).unwrap().unwrap().step, 2);
    assert_eq!(
        store.gc().unwrap().artifacts,
        0,
        "the old checkpoint was dropped on import"
    );
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn a_job_that_never_started_leaves_the_run_failed_with_the_reason() {
    let (dir, store) = store();
    let params = serde_json::json!({});
    let inputs = BTreeMap::new();
    let Claim::Owned { run, lock, .. } =
        store.claim(&new_run("f", &params, &inputs), false).unwrap()
    else {
        panic!("a new run is owned")
    };
    let status = store
        .import_job(
            &lock,
            &dir.path().join("nowhere.db"),
            (RunStatus::Failed, "slurm job 9 CANCELLED"),
        )
        .unwrap();
    assert_eq!(status, RunStatus::Failed);
    drop(lock);
    let run = store.run(run.id).unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("slurm job 9 CANCELLED"));
}

#[test]
fn a_read_only_store_reads_beside_a_writer_and_creates_nothing() {
    let (dir, store) = store();
    let params = serde_json::json!({"epochs": 3});
    let inputs = BTreeMap::new();
    let Claim::Owned { run, lock, .. } = store
        .claim(&new_run("fp", &params, &inputs), false)
        .unwrap()
    else {
        panic!("owned")
    };
    store.log_metrics(run.id, 1, &[("loss", 2.0)]).unwrap();
    store
        .log_metrics(run.id, 2, &[("loss", 1.0), ("acc", 0.5)])
        .unwrap();
    let locks = store.locks_dir();
    let before: Vec<_> = std::fs::read_dir(&locks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();

    let reader = Store::open_read_only(store.path()).unwrap();
    // The writer holds the run's lock: the reader sees it running, without trying the lock.
    assert_eq!(reader.run(run.id).unwrap().status, RunStatus::Running);
    let finals = reader.final_metrics().unwrap();
    assert_eq!(finals[&run.id]["loss"], 1.0);
    assert_eq!(finals[&run.id]["acc"], 0.5);
    assert_eq!(reader.latest_metric(run.id).unwrap().unwrap().step, 2);
    // It sees what the writer commits after it opened.
    store.log_metrics(run.id, 3, &[("loss", 0.5)]).unwrap();
    assert_eq!(reader.final_metrics().unwrap()[&run.id]["loss"], 0.5);
    drop(lock);
    assert_eq!(reader.run(run.id).unwrap().status, RunStatus::Interrupted);
    let after: Vec<_> = std::fs::read_dir(&locks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after, "the reader made no lock file");
    // A run that never had a lock file reads as interrupted too, and none is made for it.
    let other = serde_json::json!({"epochs": 4});
    let Claim::Owned {
        run: second, lock, ..
    } = store
        .claim(&new_run("fp2", &other, &inputs), false)
        .unwrap()
    else {
        panic!("owned")
    };
    drop(lock);
    std::fs::remove_file(locks.join(format!("run-{}.lock", second.id))).unwrap();
    assert_eq!(
        reader.run(second.id).unwrap().status,
        RunStatus::Interrupted
    );
    assert!(!locks.join(format!("run-{}.lock", second.id)).exists());
    // Writing through it fails: the connection itself is read-only.
    assert!(reader.put_bytes(b"x", "text/plain").is_err());

    let refused = |path: &std::path::Path| Store::open_read_only(path).err().expect("refused");
    let missing = refused(&dir.path().join("nope.db"));
    assert!(
        missing.to_string().contains("no such file yet"),
        "{missing}"
    );
    assert!(!dir.path().join("nope.db").exists());
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let err = refused(&empty);
    assert!(
        err.to_string().contains("empty, no haq tables yet"),
        "{err}"
    );
    let junk = dir.path().join("junk.db");
    std::fs::write(
        &junk,
        b"not a database at all, just some text that is long enough",
    )
    .unwrap();
    let err = refused(&junk);
    assert!(err.to_string().contains("not an SQLite file"), "{err}");
}
