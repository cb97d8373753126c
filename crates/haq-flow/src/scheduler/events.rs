//! What a run reports: each stage's [`Event`]s as they happen, and the [`Summary`] at
//! the end. Every executor reports the same events, so `haq run` prints the same lines
//! wherever stages run.

/// Where events go (the CLI prints them); called from the threads stages run on.
pub type OnEvent<'a> = dyn Fn(&Event) + Sync + 'a;

/// What happened, as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    Cached {
        stage: String,
        run: i64,
        /// Workspace files written back because they were missing or changed.
        restored: usize,
    },
    Started {
        stage: String,
        run: i64,
        attempt: i64,
        resumed_from: Option<i64>,
    },
    Waiting {
        stage: String,
        run: i64,
    },
    Done {
        stage: String,
        run: i64,
        seconds: f64,
    },
    Failed {
        stage: String,
        run: i64,
        message: String,
    },
    Interrupted {
        stage: String,
        run: i64,
        message: String,
    },
    Skipped {
        stage: String,
        because: String,
    },
    /// News of a stage's batch job (submitted, re-attached, its state).
    Job {
        stage: String,
        job: String,
        what: String,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Cached {
                stage,
                run,
                restored: 0,
            } => write!(f, "{stage}: up to date (run {run})"),
            Event::Cached {
                stage,
                run,
                restored,
            } => write!(
                f,
                "{stage}: up to date (run {run}); restored {restored} workspace file{}",
                if *restored == 1 { "" } else { "s" }
            ),
            Event::Started {
                stage,
                run,
                attempt: 1,
                ..
            } => write!(f, "{stage}: running (run {run})"),
            Event::Started {
                stage,
                run,
                attempt,
                resumed_from: None,
            } => write!(
                f,
                "{stage}: restarting run {run} (attempt {attempt}; it saved no checkpoint)"
            ),
            Event::Started {
                stage,
                run,
                resumed_from: Some(step),
                ..
            } => {
                write!(
                    f,
                    "{stage}: resuming run {run} from its checkpoint at step {step}"
                )
            }
            Event::Waiting { stage, run } => {
                write!(
                    f,
                    "{stage}: run {run} is being executed by another haq process; waiting"
                )
            }
            Event::Done {
                stage,
                run,
                seconds,
            } => write!(f, "{stage}: done (run {run}, {seconds:.1}s)"),
            Event::Failed {
                stage,
                run,
                message,
            } => write!(f, "{stage}: FAILED (run {run}): {message}"),
            Event::Interrupted {
                stage,
                run,
                message,
            } => {
                write!(
                    f,
                    "{stage}: interrupted (run {run}, {message}); `haq run` resumes it"
                )
            }
            Event::Skipped { stage, because } => write!(f, "{stage}: skipped ({because})"),
            Event::Job { stage, job, what } => write!(f, "{stage}: slurm job {job} {what}"),
        }
    }
}

/// The outcome of a whole `haq run`.
#[derive(Debug, Default)]
pub struct Summary {
    pub executed: Vec<String>,
    pub cached: Vec<String>,
    pub failed: Vec<String>,
    pub skipped: Vec<String>,
    pub interrupted: Vec<String>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.interrupted.is_empty()
    }
}
