//! The `fm` command line: parse (clap), call the library, print.
//!
//! One module per command. Every command returns `Result<(), Failure>`;
//! [`run`] renders failures with miette and maps them to exit codes in one
//! place: 0 success, 1 a user-facing failure (conflict, stale lock, drift,
//! not found), 2 a usage error (including commands not built yet, and
//! `--json` on a command without a JSON form). Every JSON document carries
//! its schema version (docs/review-and-ci.md, "JSON output").

pub mod args;
mod diff;
mod fmt;
mod install;
mod lock;
mod log;
mod manifest_cmds;
mod outdated;
mod pack;
mod registry_cmds;
mod search;
#[cfg(feature = "server")]
mod serve;
#[cfg(not(feature = "server"))]
#[path = "serve_missing.rs"]
mod serve;
pub mod shell;
mod sync;
mod target;
mod tree;
mod verify;
mod yank;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use args::{Cli, Command, RegistryCommand, StudioCommand};
pub use shell::Shell;

/// A failed command: what to show, and the exit code.
pub struct Failure {
    pub report: miette::Report,
    pub code: u8,
}

impl Failure {
    /// A user-facing failure (exit 1).
    pub fn user(e: impl Into<miette::Report>) -> Failure {
        Failure {
            report: e.into(),
            code: 1,
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>, help: Option<&str>) -> Failure {
        let message = message.into();
        let report = match help {
            Some(h) => miette::miette!(help = h.to_owned(), "{message}"),
            None => miette::miette!("{message}"),
        };
        Failure { report, code: 2 }
    }

    /// What this build was compiled without (a cargo feature, see
    /// Cargo.toml's `[features]`): says which, exits 2.
    pub fn without_feature(what: &str, feature: &str) -> Failure {
        Failure::usage(
            format!("{what} needs fm's `{feature}` feature, and this build of fm was compiled without it"),
            Some(&format!(
                "nothing was changed; build fm with `--features {feature}` (a default feature: `--no-default-features` leaves it out)"
            )),
        )
    }

    /// A command whose machinery is not built yet: says so, exits 2.
    pub fn not_built(command: &str) -> Failure {
        Failure::usage(
            format!("`fm {command}` is not implemented in this build of fm yet"),
            Some("nothing was changed; see README.md for what this build supports"),
        )
    }
}

impl<E: miette::Diagnostic + Send + Sync + 'static> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::user(miette::Report::new(e))
    }
}

/// What every command gets: the parsed global flags and the output.
pub struct Context {
    pub shell: Shell,
    pub global: args::GlobalArgs,
    pub cwd: PathBuf,
}

impl Context {
    /// The manifest path: `--manifest-path`/`FM_MANIFEST`, else the nearest
    /// `fm.toml` upwards.
    pub fn manifest_path(&self) -> Result<PathBuf, Failure> {
        Ok(crate::manifest::find(self.global.manifest_path.as_deref(), &self.cwd)?)
    }
}

/// Runs fm with these arguments (the first is the program name).
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let shell = Shell::new(cli.global.quiet, cli.global.verbose, cli.global.json, cli.global.color);
    let log = REQUEST_LOG.get_or_init(|| std::sync::Arc::new(shell::RequestLog::new(&shell)));
    crate::registry::observe::set_observer(Box::new(SharedLog(log.clone())));
    let color = shell.color;
    miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(color)
                .terminal_links(false)
                .width(100)
                .build(),
        )
    }))
    .ok();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let ctx = Context {
        shell,
        global: cli.global,
        cwd,
    };
    match dispatch(&ctx, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            requests_done();
            eprintln!("{:?}", f.report);
            ExitCode::from(f.code)
        }
    }
}

/// The request log and resolution spinner of this process.
static REQUEST_LOG: std::sync::OnceLock<std::sync::Arc<shell::RequestLog>> = std::sync::OnceLock::new();

struct SharedLog(std::sync::Arc<shell::RequestLog>);

impl crate::registry::observe::RequestObserver for SharedLog {
    fn started(&self, method: &str, url: &url::Url) {
        self.0.started(method, url);
        shell::RequestLog::show_later(&self.0);
    }
    fn finished(&self, method: &str, url: &url::Url, status: Result<u16, &str>, elapsed: std::time::Duration) {
        self.0.finished(method, url, status, elapsed);
    }
}

/// Resolution is over: the spinner goes (the request log stays).
pub(crate) fn requests_done() {
    if let Some(log) = REQUEST_LOG.get() {
        log.resolved();
    }
}

/// The commands whose result is neither data nor a change: `--json` is a
/// usage error for them, rather than output that a script cannot parse.
fn json_form(command: &Command) -> Result<(), Failure> {
    let name = match command {
        Command::Completions(_) => "completions",
        Command::Registry(RegistryCommand::Serve(_)) => "registry serve",
        Command::Studio(StudioCommand::Start(_)) => "studio start",
        _ => return Ok(()),
    };
    Err(Failure::usage(
        format!("`fm {name}` has no JSON output"),
        Some("run it without --json"),
    ))
}

fn dispatch(ctx: &Context, command: Command) -> Result<(), Failure> {
    if ctx.global.json {
        json_form(&command)?;
    }
    match command {
        Command::Init(a) => manifest_cmds::init(ctx, a),
        Command::Add(a) => manifest_cmds::add(ctx, a),
        Command::Remove(a) => manifest_cmds::remove(ctx, a),
        Command::Pack(a) => pack::pack(ctx, a),
        Command::Publish(a) => pack::publish(ctx, a),
        Command::Completions(a) => {
            let shell = match a.shell {
                args::Shell::Bash => clap_complete::Shell::Bash,
                args::Shell::Zsh => clap_complete::Shell::Zsh,
                args::Shell::Fish => clap_complete::Shell::Fish,
                args::Shell::Powershell => clap_complete::Shell::PowerShell,
            };
            clap_complete::generate(shell, &mut Cli::command(), "fm", &mut std::io::stdout());
            Ok(())
        }
        Command::Lock(a) => lock::lock(ctx, a),
        Command::Sync(a) => sync::sync(ctx, a),
        Command::Tree(a) => tree::tree(ctx, a),
        Command::Why(a) => tree::why(ctx, a),
        Command::Outdated(a) => outdated::outdated(ctx, a),
        Command::Diff(a) => diff::diff(ctx, a),
        Command::Yank(a) => yank::yank(ctx, a),
        Command::Verify(a) => verify::verify(ctx, a),
        Command::Search(a) => search::search(ctx, a),
        Command::Install(a) => install::install(ctx, a),
        Command::Registry(RegistryCommand::Serve(a)) | Command::Studio(StudioCommand::Start(a)) => serve::serve(ctx, a),
        Command::Registry(RegistryCommand::List { all }) => registry_cmds::list(ctx, all),
        Command::Registry(RegistryCommand::Add {
            name,
            url,
            token,
            priority,
            default,
        }) => registry_cmds::add(ctx, name, url, token, priority, default),
        Command::Registry(RegistryCommand::Remove { name }) => registry_cmds::remove(ctx, name),
        Command::Registry(RegistryCommand::SetDefault { name }) => registry_cmds::set_default(ctx, name),
        Command::Registry(RegistryCommand::Cache { clear, older_than }) => registry_cmds::cache(ctx, clear, older_than),
        Command::Registry(RegistryCommand::Log(c)) => log::run(ctx, c),
    }
}
