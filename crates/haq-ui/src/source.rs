//! Where the UI's answers come from: the workflow and its store, opened read-only, with
//! the stage states computed at most once a second however many pages poll them.

use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use haq_flow::binaries::Binaries;
use haq_flow::{Dag, Workflow};
use haq_store::Store;

use crate::Reply;

/// How long a computed DAG answer is served before it is computed again: the pages poll
/// every second, and staleness hashes the `deps:` files and stage binaries.
const DAG_TTL: Duration = Duration::from_millis(900);

pub struct Source {
    pub wf: Workflow,
    pub dag: Dag,
    pub binaries: Binaries,
    /// Open read-only connections, reused across requests, with the inode of the file
    /// they opened: a store deleted and made again by a new `haq run` is a new file.
    pool: Mutex<Vec<(u64, Store)>>,
    dag_cache: Mutex<Option<(Instant, Reply)>>,
    /// What the terminal was last told about the store, so a change is said once.
    said: Mutex<Option<String>>,
}

impl Source {
    pub fn new(wf: Workflow, binaries: Binaries) -> Source {
        let dag = Dag::new(&wf);
        Source {
            wf,
            dag,
            binaries,
            pool: Mutex::new(Vec::new()),
            dag_cache: Mutex::new(None),
            said: Mutex::new(None),
        }
    }

    /// Answers with `f` on a read-only connection to the store, or with a 503 that says
    /// why there is none (no store yet, an empty file, another program's database): the
    /// page shows that line.
    pub fn with_store(&self, f: impl FnOnce(&Store) -> Reply) -> Reply {
        let inode = std::fs::metadata(&self.wf.store).map_or(0, |m| m.ino());
        let pooled = {
            let mut pool = self.pool.lock().expect("store pool");
            pool.retain(|(ino, _)| *ino == inode);
            pool.pop()
        };
        let store = match pooled {
            Some((_, s)) => s,
            None => match Store::open_read_only(&self.wf.store) {
                Ok(s) => {
                    self.tell(None);
                    s
                }
                Err(e) => {
                    let line = e.to_string();
                    self.tell(Some(&line));
                    return Reply::error(503, line);
                }
            },
        };
        let reply = f(&store);
        self.pool.lock().expect("store pool").push((inode, store));
        reply
    }

    /// Prints one line when the store becomes unavailable or available again.
    fn tell(&self, problem: Option<&str>) {
        let mut said = self.said.lock().expect("said");
        if said.as_deref() != problem {
            match problem {
                Some(line) => eprintln!("haq ui: {line}"),
                None if said.is_some() => {
                    eprintln!("haq ui: store {} is readable now", self.wf.store.display())
                }
                None => {}
            }
            *said = problem.map(str::to_string);
        }
    }

    /// Says on the terminal, at start, whether the store can be read.
    pub fn report_store_state(&self) {
        self.with_store(|_| Reply::new(200, "text/plain", ""));
    }

    /// The DAG answer, computed afresh when the cached one is older than [`DAG_TTL`].
    pub fn dag_reply(&self, compute: impl FnOnce() -> Reply) -> Reply {
        let mut cache = self.dag_cache.lock().expect("dag cache");
        if let Some((at, reply)) = cache.as_ref() {
            if at.elapsed() < DAG_TTL {
                return reply.clone();
            }
        }
        let reply = compute();
        *cache = Some((Instant::now(), reply.clone()));
        reply
    }
}
