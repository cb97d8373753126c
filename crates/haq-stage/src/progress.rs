//! Progress of a stage, drawn by `haq run`. A stage's stdout and stderr go to its run log,
//! and several stages may run at once, so a stage draws nothing itself: when `haq run` is
//! on a terminal it gives the stage the write end of a pipe (its descriptor number in
//! `HAQ_PROGRESS_FD`), the stage writes one JSON [`Update`] line per change, and `haq`
//! draws every running stage's bar pinned below the scrolling log lines, as cargo does.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Environment variable naming the descriptor progress updates are written to.
pub const PROGRESS_FD_ENV: &str = "HAQ_PROGRESS_FD";

/// One line of the progress pipe: where a stage's bar stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// What is counted (`epoch 2/8`, a stage name).
    pub label: String,
    pub pos: u64,
    pub len: u64,
    /// A short status, e.g. `loss 0.312`.
    pub message: String,
    /// The bar is finished and should be cleared.
    pub done: bool,
}

/// Position updates more frequent than this are coalesced: a bar redrawn 10 times a
/// second looks live, and a tight loop of `inc(1)` does not flood the pipe.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The progress pipe, taken from the environment once per process.
fn sink() -> &'static Option<Mutex<File>> {
    static SINK: OnceLock<Option<Mutex<File>>> = OnceLock::new();
    SINK.get_or_init(|| {
        let fd: i32 = std::env::var(PROGRESS_FD_ENV).ok()?.parse().ok()?;
        // Only a pipe that haq made: a stage started by hand with the variable set to
        // some other descriptor must not write into it.
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat only writes the stat buffer; a bad descriptor returns -1.
        let ok = unsafe { libc::fstat(fd, stat.as_mut_ptr()) } == 0;
        // SAFETY: fstat succeeded, so the buffer is initialised.
        if !ok || unsafe { stat.assume_init() }.st_mode & libc::S_IFMT != libc::S_IFIFO {
            return None;
        }
        // SAFETY: the descriptor is open, is a pipe, and nothing else in the process
        // owns it; it stays open for the life of the process.
        Some(Mutex::new(unsafe { File::from_raw_fd(fd) }))
    })
}

/// A stage's progress bar (see [`crate::StageContext::progress`]). Without
/// `haq run` on a terminal it does nothing.
pub struct Progress {
    state: Mutex<(Update, Option<Instant>)>,
}

impl Progress {
    pub(crate) fn new(len: u64, label: &str) -> Progress {
        let bar = Progress {
            state: Mutex::new((
                Update {
                    label: label.to_string(),
                    len,
                    ..Update::default()
                },
                None,
            )),
        };
        bar.update(true, |_| {});
        bar
    }

    pub fn set_position(&self, pos: u64) {
        self.update(false, |u| u.pos = pos);
    }

    pub fn inc(&self, delta: u64) {
        self.update(false, |u| u.pos += delta);
    }

    pub fn set_message(&self, message: impl Into<String>) {
        let message = message.into();
        // Sent at once: it usually follows a position update that the same step made.
        self.update(true, |u| u.message = message);
    }

    /// Starts counting again from 0 under a new label (the next epoch).
    pub fn restart(&self, label: impl Into<String>) {
        let label = label.into();
        self.update(true, |u| {
            u.label = label;
            u.pos = 0;
            u.message.clear();
        });
    }

    /// Clears the bar (once: a bar finished by hand is not finished again when dropped).
    pub fn finish(&self) {
        if !self.state.lock().expect("progress state").0.done {
            self.update(true, |u| u.done = true);
        }
    }

    /// Applies a change and sends the new state, unless one was sent less than
    /// [`MIN_INTERVAL`] ago and the change is not `urgent`.
    fn update(&self, urgent: bool, change: impl FnOnce(&mut Update)) {
        let Some(sink) = sink() else { return };
        let mut state = self.state.lock().expect("progress state");
        change(&mut state.0);
        let due = state.1.is_none_or(|t| t.elapsed() >= MIN_INTERVAL);
        if urgent || due {
            state.1 = Some(Instant::now());
            let mut line = serde_json::to_string(&state.0).expect("an update serialises");
            line.push('\n');
            // A haq that went away is no reason to fail the stage.
            let _ = sink
                .lock()
                .expect("progress pipe")
                .write_all(line.as_bytes());
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
