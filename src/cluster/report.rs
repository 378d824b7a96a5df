//! What the user sees of a long cluster operation: progress bars while waiting, and
//! elapsed time per phase at the end.

use std::time::{Duration, Instant};

use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// A server that could not be brought up, with the reason in the user's words.
#[derive(Clone, Debug, Serialize)]
pub struct ServerFailure {
    pub name: String,
    pub reason: String,
}

/// Elapsed time per phase, in order.
#[derive(Debug, Clone)]
pub struct Phases {
    last: Instant,
    pub done: Vec<(String, Duration)>,
}

impl Default for Phases {
    fn default() -> Self {
        Phases::start()
    }
}

impl Phases {
    pub fn start() -> Phases {
        Phases {
            last: Instant::now(),
            done: Vec::new(),
        }
    }
    /// Ends the current phase under `name`.
    pub fn mark(&mut self, name: &str) {
        let now = Instant::now();
        self.done.push((name.to_string(), now - self.last));
        self.last = now;
    }
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.done
                .iter()
                .map(|(k, d)| {
                    (
                        k.clone(),
                        serde_json::json!((d.as_secs_f64() * 10.0).round() / 10.0),
                    )
                })
                .collect(),
        )
    }
}

/// Every live line of the process, on stderr and hidden when stderr is not a terminal (CI
/// logs stay clean). One set for all, so a command's phase line and the server bar of the
/// module it runs stack instead of overwriting each other.
pub fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// A progress bar on stderr, hidden when stderr is not a terminal (CI logs stay clean).
pub fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = bars().add(ProgressBar::new(total));
    if let Ok(style) = ProgressStyle::with_template("{spinner} {pos}/{len} {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A live line without a count (a phase that is running), among [`bars`]; a long message
/// (a task name) is cut to the terminal's width, since a wrapped line breaks redrawing.
pub fn spinner(what: &str) -> ProgressBar {
    let bar = bars().add(ProgressBar::new_spinner());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {wide_msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Ends a live line, leaving `line` in its place.
pub fn finish(bar: &ProgressBar, line: String) {
    if let Ok(style) = ProgressStyle::with_template("{msg}") {
        bar.set_style(style);
    }
    bar.finish_with_message(line);
}
