//! Progress on stderr: an indicatif bar on a terminal, periodic lines otherwise.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bar when stderr is a terminal, else a line every few seconds.
    Auto,
    Off,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    total: u64,
    done: u64,
    started: Instant,
    last_line: Instant,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// `total` is the expected number of records (an estimate when duplicates are injected).
    pub fn new(total: u64, mode: ProgressMode) -> Self {
        let now = Instant::now();
        let (bar, lines) = match mode {
            ProgressMode::Off => (None, false),
            ProgressMode::Auto if std::io::stderr().is_terminal() => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} records ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                (Some(bar), false)
            }
            ProgressMode::Auto => (None, true),
        };
        Progress {
            bar,
            lines,
            total,
            done: 0,
            started: now,
            last_line: now,
        }
    }

    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            if self.done > self.total {
                self.total = self.done;
                bar.set_length(self.total);
            }
            bar.set_position(self.done);
        } else if self.lines && self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            let secs = self.started.elapsed().as_secs_f64().max(1e-9);
            eprintln!(
                "simulator: {}/{} records ({:.0}%), {:.0} records/s",
                self.done,
                self.total,
                100.0 * self.done as f64 / self.total.max(1) as f64,
                self.done as f64 / secs
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.set_length(self.done);
            bar.finish();
        }
    }
}
