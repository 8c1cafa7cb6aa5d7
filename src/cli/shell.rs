//! All terminal output goes through [`Shell`]: status lines to stderr, data
//! to stdout, nothing else. Output reads well without color; `NO_COLOR`
//! and `--color` are honoured.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::args::ColorChoice;

/// How much to say, and whether in color.
#[derive(Debug, Clone)]
pub struct Shell {
    pub quiet: bool,
    pub verbose: bool,
    pub color: bool,
    /// `--json`: data goes to stdout as JSON, and no bars are drawn.
    pub json: bool,
}

impl Shell {
    pub fn new(quiet: bool, verbose: bool, json: bool, color: ColorChoice) -> Shell {
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
            }
        };
        Shell {
            quiet,
            verbose,
            color,
            json,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// A right-aligned verb and a message, cargo-style: `     Locked 3 packages`.
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        if !self.quiet {
            let verb = self.paint("1;32", &format!("{verb:>12}"));
            let _ = writeln!(std::io::stderr(), "{verb} {message}");
        }
    }

    /// A plain line on stderr (suppressed by --quiet).
    pub fn info(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{message}");
        }
    }

    /// Shown only with --verbose.
    pub fn verbose(&self, message: impl std::fmt::Display) {
        if self.verbose {
            let _ = writeln!(std::io::stderr(), "{message}");
        }
    }

    /// A warning on stderr (shown even with --quiet).
    pub fn warn(&self, message: impl std::fmt::Display) {
        let w = self.paint("1;33", "warning");
        let _ = writeln!(std::io::stderr(), "{w}: {message}");
    }

    /// Data on stdout.
    pub fn data(&self, text: impl std::fmt::Display) {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{text}");
        let _ = out.flush();
    }

    /// A JSON value on stdout, pretty-printed with a trailing newline.
    pub fn json(&self, value: &impl serde::Serialize) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => self.data(format!("{s}\n")),
            Err(e) => self.warn(format!("cannot render JSON: {e}")),
        }
    }

    /// Whether bars may be drawn (stderr is a terminal, neither --quiet
    /// nor --json).
    pub fn progress_enabled(&self) -> bool {
        !self.quiet && !self.json && std::io::stderr().is_terminal()
    }
}

/// The CLI's [`RequestObserver`](crate::registry::observe::RequestObserver):
/// with `-v`, one line a request on stderr (`GET URL 200 in 12 ms`; the URL
/// comes redacted, headers are never seen); on a terminal, while resolving,
/// a spinner with the packages fetched and the requests in flight, shown
/// once resolution has taken longer than a moment.
pub struct RequestLog {
    verbose: bool,
    progress: AtomicBool,
    first: Mutex<Option<Instant>>,
    in_flight: AtomicUsize,
    fetched: AtomicUsize,
    bar: Mutex<Option<ProgressBar>>,
}

/// How long resolution runs before the spinner appears
/// (`FM_PROGRESS_DELAY_MS` changes it, for tests).
fn moment() -> Duration {
    let ms = std::env::var("FM_PROGRESS_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    Duration::from_millis(ms)
}

impl RequestLog {
    pub fn new(shell: &Shell) -> RequestLog {
        RequestLog {
            verbose: shell.verbose,
            progress: AtomicBool::new(shell.progress_enabled()),
            first: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            fetched: AtomicUsize::new(0),
            bar: Mutex::new(None),
        }
    }

    /// On the first request: after a moment, if resolution is still
    /// running, show the spinner (even while one slow request is all
    /// there is).
    pub fn show_later(log: &std::sync::Arc<RequestLog>) {
        if !log.progress.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut first) = log.first.lock() else { return };
        if first.is_some() {
            return;
        }
        *first = Some(Instant::now());
        let log = log.clone();
        std::thread::spawn(move || {
            std::thread::sleep(moment());
            if !log.progress.load(Ordering::SeqCst) {
                return;
            }
            if let Ok(mut bar) = log.bar.lock()
                && bar.is_none()
            {
                let b = ProgressBar::new_spinner();
                if let Ok(style) = ProgressStyle::with_template("{spinner} Resolving: {msg}") {
                    b.set_style(style);
                }
                b.enable_steady_tick(Duration::from_millis(100));
                *bar = Some(b);
            }
            log.update();
        });
    }

    /// Resolution is over: clear the spinner, draw no other (downloads
    /// have their own bars).
    pub fn resolved(&self) {
        self.progress.store(false, Ordering::SeqCst);
        if let Ok(mut bar) = self.bar.lock()
            && let Some(b) = bar.take()
        {
            b.finish_and_clear();
        }
    }

    fn update(&self) {
        if !self.progress.load(Ordering::SeqCst) {
            return;
        }
        let Ok(bar) = self.bar.lock() else { return };
        if let Some(b) = bar.as_ref() {
            b.set_message(format!(
                "{} fetched, {} in flight",
                super::fmt::count(self.fetched.load(Ordering::SeqCst), "package", "packages"),
                super::fmt::count(self.in_flight.load(Ordering::SeqCst), "request", "requests"),
            ));
        }
    }
}

impl crate::registry::observe::RequestObserver for RequestLog {
    fn started(&self, _method: &str, _url: &url::Url) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.update();
    }

    fn finished(&self, method: &str, url: &url::Url, status: Result<u16, &str>, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if method == "GET" && !url.path().ends_with("/download") {
            self.fetched.fetch_add(1, Ordering::SeqCst);
        }
        self.update();
        if self.verbose {
            let status = match status {
                Ok(code) => code.to_string(),
                Err(why) => why.to_owned(),
            };
            let line = format!("  {method} {url} {status} in {}", super::fmt::duration(elapsed));
            match self.bar.lock().ok().as_ref().and_then(|b| b.as_ref()) {
                Some(b) => b.println(line),
                None => {
                    let _ = writeln!(std::io::stderr(), "{line}");
                }
            }
        }
    }
}
