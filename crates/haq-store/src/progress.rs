//! Progress bars for stages. A stage's stdout and stderr go to its run log, so indicatif
//! would see no terminal; when `haq run` itself is on one it sets `HAQ_PROGRESS=1` and
//! the bars are drawn straight to the controlling terminal, keeping escape codes out of
//! the logs.

use std::fs::OpenOptions;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Environment variable `haq run` sets when progress should be shown.
pub const PROGRESS_ENV: &str = "HAQ_PROGRESS";

pub(crate) fn bar(len: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), draw_target());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>14} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}

fn draw_target() -> ProgressDrawTarget {
    if std::env::var(PROGRESS_ENV).as_deref() != Ok("1") {
        return ProgressDrawTarget::hidden();
    }
    let tty = (
        OpenOptions::new().read(true).open("/dev/tty"),
        OpenOptions::new().write(true).open("/dev/tty"),
    );
    match tty {
        (Ok(r), Ok(w)) => {
            ProgressDrawTarget::term_like(Box::new(console::Term::read_write_pair(r, w)))
        }
        _ => ProgressDrawTarget::hidden(),
    }
}
