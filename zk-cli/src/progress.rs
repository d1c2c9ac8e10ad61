//! A one-line progress indicator on stderr for long work (deleteall, tree, ls -R of a large
//! subtree). It shows only when stderr is a terminal and the work has taken a moment, and it
//! erases itself when done. `ZK_PROGRESS=always` forces it (for tests), `ZK_PROGRESS=never`
//! turns it off.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How long work runs before the indicator appears.
const DELAY: Duration = Duration::from_millis(300);
/// How often it is redrawn.
const INTERVAL: Duration = Duration::from_millis(100);

/// A progress line: `label: done/total` or `label: done`.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    forced: bool,
    label: String,
    start: Instant,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    /// A progress line named `label`, shown if stderr is a terminal.
    pub fn new(label: &str) -> Progress {
        let setting = std::env::var("ZK_PROGRESS").unwrap_or_default();
        let forced = setting == "always";
        Progress {
            enabled: forced || (setting != "never" && std::io::stderr().is_terminal()),
            forced,
            label: label.to_owned(),
            start: Instant::now(),
            last: None,
            drawn: false,
        }
    }

    /// Switches to another phase (e.g. from listing to deleting).
    pub fn relabel(&mut self, label: &str) {
        self.label = label.to_owned();
        self.last = None;
    }

    /// Reports `done` units of work (of `total`, when known); redraws at most every 100 ms.
    pub fn update(&mut self, done: u64, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if !self.forced && now.duration_since(self.start) < DELAY {
            return;
        }
        if self.last.is_some_and(|t| now.duration_since(t) < INTERVAL) {
            return;
        }
        self.last = Some(now);
        let text = match total {
            Some(t) if t > 0 => format!("{}: {done}/{t} ({}%)", self.label, done * 100 / t),
            _ => format!("{}: {done}", self.label),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{text}");
        let _ = err.flush();
        self.drawn = true;
    }

    /// Erases the line, if it was drawn.
    pub fn finish(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
