//! `haq run`'s terminal. Event lines and the stages' echoed output scroll; on a terminal,
//! each running stage's progress bar stays pinned below them, as cargo draws a build.
//! Stages report progress as JSON lines on a pipe (`haq_stage::progress`); only `haq`
//! draws, so concurrent stages never write over each other's lines.

use std::io::{BufRead, BufReader, Read};

use haq_stage::progress::Update;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where `haq run` prints: stderr, with pinned bars when it is a terminal.
#[derive(Clone)]
pub struct Terminal {
    bars: Option<MultiProgress>,
}

impl Terminal {
    /// With `bars`, progress bars are drawn on stderr (which should be a terminal).
    pub fn new(bars: bool) -> Terminal {
        Terminal {
            bars: bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// Whether stages should report progress.
    pub fn has_bars(&self) -> bool {
        self.bars.is_some()
    }

    /// Prints a line above the bars.
    pub fn println(&self, line: &str) {
        match &self.bars {
            // A draw target that is not a terminal after all refuses; the line still
            // belongs on stderr.
            Some(bars) if bars.println(line).is_ok() => {}
            _ => eprintln!("{line}"),
        }
    }

    /// Draws the bar of `stage` from the updates it writes to `pipe`, until the pipe
    /// closes (the stage exited); then clears it. A stage that reports nothing gets no bar.
    pub(crate) fn follow(&self, stage: &str, pipe: impl Read) {
        let Some(bars) = &self.bars else { return };
        let mut bar: Option<ProgressBar> = None;
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            // A malformed line is the stage's bug, not a reason to stop following it.
            let Ok(update) = serde_json::from_str::<Update>(&line) else {
                continue;
            };
            let bar = bar.get_or_insert_with(|| bars.add(new_bar()));
            if update.done {
                bar.finish_and_clear();
                continue;
            }
            let prefix = format!("{stage}: {}", update.label);
            if bar.is_finished() || bar.prefix() != prefix {
                bar.reset();
                bar.set_prefix(prefix);
            }
            bar.set_length(update.len);
            bar.set_position(update.pos);
            bar.set_message(update.message);
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
            bars.remove(&bar);
        }
    }
}

fn new_bar() -> ProgressBar {
    let bar = ProgressBar::hidden();
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>24} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}
