//! All terminal output goes through [`Shell`]: status lines to stderr, data
//! to stdout, nothing else. Output reads well without color; `NO_COLOR`
//! and `--color` are honoured.

use std::io::{IsTerminal, Write};

use super::args::ColorChoice;

/// How much to say, and whether in color.
#[derive(Debug, Clone)]
pub struct Shell {
    pub quiet: bool,
    pub verbose: bool,
    pub color: bool,
}

impl Shell {
    pub fn new(quiet: bool, verbose: bool, color: ColorChoice) -> Shell {
        let color = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
            }
        };
        Shell { quiet, verbose, color }
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

    /// Whether bars may be drawn (stderr is a terminal and not quiet).
    pub fn progress_enabled(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }
}
