//! `fm diff [OLD] [NEW]`: reads two locks and prints what [`crate::diff`]
//! finds between them.
//!
//! Where the locks come from:
//! - a file path; `/dev/null` is an empty lock (git passes it for a file
//!   that is added or deleted); `-` is standard input;
//! - `REV:path`, read with `git cat-file blob REV:path` in the current
//!   folder (git's rules: `path` is relative to the repository's top,
//!   `REV:./path` to the current folder); a path that the revision does not
//!   have is an empty lock (the file is new);
//! - by default OLD is `HEAD:fm.lock` and NEW the working `fm.lock`, both
//!   beside the manifest.
//!
//! As a git diff driver: `diff.fmlock.textconv = fm diff --textconv` prints
//! one lock as a line-per-package summary ([`crate::diff::summarize`]) for
//! git to compare; `diff.fmlock.command = fm diff` is called by git with
//! seven arguments (`path old-file old-hex old-mode new-file new-hex
//! new-mode`, nine for a rename) and prints the grouped report.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::args::{ColorChoice, DiffArgs, DiffFormat};
use super::{Context, Failure};
use crate::diff::{self, Labels};
use crate::lock::{LOCK_FILE, Lockfile};

/// Why a lock to compare could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SourceError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    #[diagnostic(
        code(fm::diff::read),
        help(
            "pass a lock file, `REV:path` (e.g. `HEAD~1:fm.lock`), or nothing to compare HEAD with the working fm.lock"
        )
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `git` could not be started.
    #[error("cannot run git to read {spec}: {source}")]
    #[diagnostic(
        code(fm::diff::git_missing),
        help("install git, or pass both locks as files: fm diff OLD.lock NEW.lock")
    )]
    GitMissing {
        spec: String,
        #[source]
        source: std::io::Error,
    },
    /// The folder is not in a git repository.
    #[error("{} is not inside a git repository, so there is no {spec} to compare with", dir.display())]
    #[diagnostic(
        code(fm::diff::not_a_repo),
        help("pass the old lock as a file: fm diff OLD.lock [NEW.lock]")
    )]
    NotARepo { dir: PathBuf, spec: String },
    /// git refused the revision.
    #[error("git cannot read {spec}: {message}")]
    #[diagnostic(code(fm::diff::git), help("check the revision with `git log`; the form is REV:path"))]
    Git { spec: String, message: String },
    /// git called fm as a diff command with an unexpected number of arguments.
    #[error("fm diff takes at most two locks (or the 7 or 9 arguments git passes a diff driver), not {count}")]
    #[diagnostic(code(fm::diff::arguments), help("usage: fm diff [OLD] [NEW]"))]
    Arguments { count: usize },
}

/// Whether data on stdout may be colored: `--color`, `NO_COLOR`, and
/// whether stdout is a terminal.
pub(super) fn stdout_color(ctx: &Context) -> bool {
    match ctx.global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
        }
    }
}

/// A lock read from somewhere, and how to name it.
struct Side {
    label: String,
    lock: Lockfile,
}

fn empty(label: impl Into<String>) -> Side {
    Side {
        label: label.into(),
        lock: Lockfile::default(),
    }
}

fn parse(label: String, text: &str) -> Result<Side, Failure> {
    let lock = Lockfile::parse(Path::new(&label), text)?;
    Ok(Side { label, lock })
}

fn read_file(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|source| SourceError::Read {
        path: path.to_owned(),
        source,
    })
}

fn git(dir: &Path, args: &[&str], spec: &str) -> Result<std::process::Output, SourceError> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|source| SourceError::GitMissing {
            spec: spec.to_owned(),
            source,
        })
}

/// Reads `REV:path` with git in `dir`; `Ok(None)` when the revision does
/// not have the path (or, for `HEAD`, when there is no commit yet).
fn git_blob(dir: &Path, spec: &str) -> Result<Option<String>, SourceError> {
    let out = git(dir, &["cat-file", "blob", spec], spec)?;
    if out.status.success() {
        return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    let inside = git(dir, &["rev-parse", "--git-dir"], spec)?;
    if !inside.status.success() {
        return Err(SourceError::NotARepo {
            dir: dir.to_owned(),
            spec: spec.to_owned(),
        });
    }
    let rev = spec.split_once(':').map_or(spec, |(r, _)| r);
    let commit = format!("{rev}^{{commit}}");
    let known = git(dir, &["rev-parse", "--verify", "--quiet", &commit], spec)?;
    if known.status.success() || rev == "HEAD" {
        return Ok(None);
    }
    Err(SourceError::Git {
        spec: spec.to_owned(),
        message: String::from_utf8_lossy(&out.stderr)
            .trim()
            .trim_start_matches("fatal: ")
            .to_owned(),
    })
}

/// Reads one side named on the command line.
fn load(ctx: &Context, spec: &str) -> Result<Side, Failure> {
    if spec == "/dev/null" {
        return Ok(empty(spec));
    }
    if spec == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| SourceError::Read {
                path: PathBuf::from("<stdin>"),
                source,
            })?;
        return parse("<stdin>".to_owned(), &text);
    }
    let path = ctx.cwd.join(spec);
    if path.is_file() || !spec.contains(':') {
        return parse(spec.to_owned(), &read_file(&path)?);
    }
    match git_blob(&ctx.cwd, spec)? {
        Some(text) => parse(spec.to_owned(), &text),
        None => {
            ctx.shell
                .verbose(format!("{spec} does not exist; comparing with an empty lock"));
            Ok(empty(spec))
        }
    }
}

/// The folder holding the manifest (and so fm.lock); without a manifest,
/// the current folder if it holds an fm.lock.
fn project_dir(ctx: &Context) -> Result<PathBuf, Failure> {
    match ctx.manifest_path() {
        Ok(manifest) => Ok(manifest.parent().map_or_else(|| ctx.cwd.clone(), Path::to_owned)),
        Err(_) if ctx.global.manifest_path.is_none() && ctx.cwd.join(LOCK_FILE).is_file() => Ok(ctx.cwd.clone()),
        Err(e) => Err(e),
    }
}

/// Default OLD: `HEAD:fm.lock` beside the manifest.
fn default_old(dir: &Path, ctx: &Context) -> Result<Side, Failure> {
    let label = format!("HEAD:{LOCK_FILE}");
    match git_blob(dir, &format!("HEAD:./{LOCK_FILE}"))? {
        Some(text) => parse(label, &text),
        None => {
            ctx.shell.verbose(format!(
                "{LOCK_FILE} is not in HEAD (a new file); comparing with an empty lock"
            ));
            Ok(empty(label))
        }
    }
}

/// Default NEW: the working fm.lock beside the manifest.
fn default_new(dir: &Path, ctx: &Context) -> Result<Side, Failure> {
    let path = dir.join(LOCK_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(LOCK_FILE.to_owned(), &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ctx.shell.warn(format!(
                "{} does not exist; comparing with an empty lock",
                path.display()
            ));
            Ok(empty(LOCK_FILE))
        }
        Err(source) => Err(SourceError::Read { path, source }.into()),
    }
}

/// The two sides, from the arguments (see the module doc).
fn sides(ctx: &Context, a: &DiffArgs) -> Result<(Side, Side), Failure> {
    match a.rest.len() {
        0 => {}
        // git's diff driver: path old-file old-hex old-mode new-file new-hex new-mode [new-path similarity]
        5 | 7 => {
            let path = a.old.as_deref().unwrap_or(LOCK_FILE);
            let new_path = if a.rest.len() == 7 { &a.rest[5] } else { path };
            let old_file = a.new.as_deref().unwrap_or("/dev/null");
            let mut old = load(ctx, old_file)?;
            let mut new = load(ctx, &a.rest[2])?;
            old.label = format!("a/{path}");
            new.label = format!("b/{new_path}");
            return Ok((old, new));
        }
        n => {
            return Err(Failure {
                report: miette::Report::new(SourceError::Arguments { count: n + 2 }),
                code: 2,
            });
        }
    }
    match (&a.old, &a.new) {
        (Some(old), Some(new)) => Ok((load(ctx, old)?, load(ctx, new)?)),
        (Some(old), None) => {
            let old = load(ctx, old)?;
            Ok((old, default_new(&project_dir(ctx)?, ctx)?))
        }
        _ => {
            let dir = project_dir(ctx)?;
            Ok((default_old(&dir, ctx)?, default_new(&dir, ctx)?))
        }
    }
}

/// `fm diff --textconv FILE`: never fails on a file git hands it; a lock fm
/// cannot read (conflict markers, a newer format) is shown as it is.
fn textconv(ctx: &Context, file: Option<&str>) -> Result<(), Failure> {
    let Some(file) = file else {
        return Err(Failure::usage(
            "--textconv needs the lock file to summarize",
            Some("git passes it: git config diff.fmlock.textconv 'fm diff --textconv'"),
        ));
    };
    let path = ctx.cwd.join(file);
    let text = read_file(&path)?;
    match Lockfile::parse(&path, &text) {
        Ok(lock) => ctx.shell.data(diff::summarize(&lock)),
        Err(e) => {
            ctx.shell.verbose(format!("showing {file} as it is: {e}"));
            ctx.shell.data(text);
        }
    }
    Ok(())
}

pub fn diff(ctx: &Context, a: DiffArgs) -> Result<(), Failure> {
    if a.textconv {
        return textconv(ctx, a.old.as_deref());
    }
    let (old, new) = sides(ctx, &a)?;
    let changes = diff::diff(&old.lock, &new.lock);
    let labels = Labels {
        old: old.label,
        new: new.label,
    };
    let format = if ctx.global.json { DiffFormat::Json } else { a.format };
    match format {
        DiffFormat::Json => ctx.shell.json(&changes.to_json(&labels)),
        DiffFormat::Markdown => ctx.shell.data(changes.render_markdown(&labels)),
        DiffFormat::Text => ctx.shell.data(changes.render_text(&labels, stdout_color(ctx))),
    }
    if a.exit_code && !changes.is_empty() {
        let summary: Vec<String> = changes.counts().iter().map(|(l, n)| format!("{n} {l}")).collect();
        return Err(Failure::user(miette::miette!(
            help = "--exit-code makes fm diff exit 1 when the locks differ",
            "{} and {} differ: {}",
            labels.old,
            labels.new,
            summary.join(", ")
        )));
    }
    Ok(())
}
