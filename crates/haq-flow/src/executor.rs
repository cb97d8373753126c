//! The local executor: runs one stage binary for one run, keeping its output in the run's
//! log file, and stopping it cleanly when `haq run` is interrupted.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::terminal::Terminal;

/// Set from the SIGINT/SIGTERM handler; every executor watches it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Routes Ctrl-C and SIGTERM to [`interrupted`] instead of killing `haq` outright, so
/// running stages can be stopped and their runs left resumable.
pub fn install_interrupt_handler() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Whether the user asked `haq` to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// How a stage process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// Exited non-zero; the message is the last line it wrote to stderr.
    Failed(String),
    /// Killed by a signal, or stopped because `haq` was interrupted: resumable.
    Interrupted(String),
}

/// One stage process to start.
pub struct Job<'a> {
    pub stage: &'a str,
    pub binary: &'a Path,
    pub store: &'a Path,
    pub run_id: i64,
    pub log: PathBuf,
    /// Where the stage's progress bar is drawn and its output echoed.
    pub terminal: &'a Terminal,
    /// Also copy the stage's output lines, prefixed, to the terminal.
    pub echo: bool,
}

/// The descriptor a stage writes progress updates to (stdin, stdout, stderr, then this).
const PROGRESS_FD: libc::c_int = 3;

/// After forwarding an interrupt, how long a stage gets to exit before it is killed.
const GRACE: Duration = Duration::from_secs(10);

/// Runs the job to completion (or interruption).
pub fn execute(job: &Job) -> Result<Exit> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&job.log)
        .map_err(io_err(&job.log))?;
    writeln!(
        log,
        "==> haq: run {} of stage {} ({})",
        job.run_id,
        job.stage,
        job.binary.display()
    )
    .map_err(io_err(&job.log))?;
    let log = Arc::new(Mutex::new(log));

    let mut command = Command::new(job.binary);
    // OpenMP threads that spin while waiting make libtorch several times slower on a
    // busy machine (and stages share theirs with `-j N` siblings).
    if std::env::var_os("OMP_WAIT_POLICY").is_none() {
        command.env("OMP_WAIT_POLICY", "PASSIVE");
    }
    command
        .env(haq_stage::STORE_ENV, job.store)
        .env(haq_stage::RUN_ENV, job.run_id.to_string())
        .env_remove(haq_stage::PROGRESS_FD_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The progress pipe, only when there are bars to draw. Both ends are close-on-exec,
    // so other stages started meanwhile do not hold it open.
    let progress = if job.terminal.has_bars() {
        let (reader, writer) = std::io::pipe().map_err(io_err(job.binary))?;
        command.env(haq_stage::PROGRESS_FD_ENV, PROGRESS_FD.to_string());
        Some((reader, writer))
    } else {
        None
    };
    let progress_writer = progress.as_ref().map(|(_, w)| w.as_raw_fd());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if let Some(fd) = progress_writer {
                // dup2 leaves the copy open across exec; a descriptor that already is 3
                // only loses its close-on-exec flag.
                let moved = if fd == PROGRESS_FD {
                    libc::fcntl(fd, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, PROGRESS_FD)
                };
                if moved < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Own process group: a terminal's Ctrl-C reaches haq, which forwards it, so
            // haq always learns how the stage ended.
            libc::setpgid(0, 0);
            // If haq dies, the stage dies with it rather than running on unsupervised
            // after its run lock is gone.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(io_err(job.binary))?;
    // Only the stage may hold the write end, or the bar would never see the pipe close.
    let bar = progress.map(|(reader, writer)| {
        drop(writer);
        let (terminal, stage) = (job.terminal.clone(), job.stage.to_string());
        thread::spawn(move || terminal.follow(&stage, reader))
    });
    let last_err = Arc::new(Mutex::new(String::new()));
    let tees = [
        tee(child.stdout.take().expect("piped"), job, &log, None),
        tee(
            child.stderr.take().expect("piped"),
            job,
            &log,
            Some(last_err.clone()),
        ),
    ];
    let status = wait(&mut child).map_err(io_err(job.binary))?;
    for t in tees.into_iter().chain(bar) {
        let _ = t.join();
    }
    let last = last_err.lock().expect("tee").clone();
    let exit = if status.success() {
        Exit::Success
    } else if interrupted() {
        Exit::Interrupted("interrupted by the user".to_string())
    } else if let Some(signal) = status.signal() {
        Exit::Interrupted(format!("killed by signal {signal}"))
    } else if last.is_empty() {
        Exit::Failed(format!("exited with {status}"))
    } else {
        Exit::Failed(last)
    };
    let _ = writeln!(
        log.lock().expect("log"),
        "==> haq: run {} ended: {exit:?}",
        job.run_id
    );
    Ok(exit)
}

/// Waits for the child, forwarding an interrupt to its process group.
fn wait(child: &mut Child) -> std::io::Result<std::process::ExitStatus> {
    let mut forwarded: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if interrupted() {
            let pgid = child.id() as libc::pid_t;
            match forwarded {
                None => {
                    // SAFETY: plain kill(2) on the stage's own process group.
                    unsafe { libc::kill(-pgid, libc::SIGINT) };
                    forwarded = Some(Instant::now());
                }
                Some(t) if t.elapsed() > GRACE => {
                    // SAFETY: as above.
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                }
                Some(_) => {}
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Copies a stage's stream line by line into the run log (and `haq`'s stderr).
fn tee(
    stream: impl Read + Send + 'static,
    job: &Job,
    log: &Arc<Mutex<std::fs::File>>,
    last_line: Option<Arc<Mutex<String>>>,
) -> thread::JoinHandle<()> {
    let log = log.clone();
    let prefix = format!("[{}] ", job.stage);
    let echo = job.echo.then(|| job.terminal.clone());
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log.lock().expect("log"), "{line}");
            if let Some(terminal) = &echo {
                terminal.println(&format!("{prefix}{line}"));
            }
            if let Some(last) = &last_line {
                if !line.trim().is_empty() {
                    *last.lock().expect("last line") = line;
                }
            }
        }
    })
}
