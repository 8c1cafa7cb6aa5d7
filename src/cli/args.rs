//! The command line, as clap parses it: every command and global flag of
//! SPEC §6. Validation beyond syntax happens in the command modules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod values;
use values::{
    bind_address, bind_host, package_at_version, package_name, package_spec, parse_duration, parse_timeout, requirement,
};

/// fm — a declarative, lockfile-driven package manager for FlowMason packages.
#[derive(Debug, Parser)]
#[command(name = "fm", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Path to fm.toml (default: the nearest fm.toml from the current folder up).
    #[arg(long, global = true, env = "FM_MANIFEST", value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Use only what is cached on this machine; never touch the network.
    #[arg(long, global = true)]
    pub offline: bool,
    /// Print nothing on success but data on stdout (warnings and errors still).
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: each registry request with its status and time.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// When to color output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Print the result as JSON on stdout (a versioned schema; exit 2 on a
    /// command that has none).
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter fm.toml (and .fm/.gitignore) in the current folder.
    Init(InitArgs),
    /// Add a dependency to fm.toml and re-lock.
    Add(AddArgs),
    /// Remove a dependency from fm.toml and re-lock.
    Remove(RemoveArgs),
    /// Resolve the dependencies and write fm.lock.
    Lock(LockArgs),
    /// Make the install folder hold exactly the locked packages.
    Sync(SyncArgs),
    /// Show the locked dependency graph.
    Tree(TreeArgs),
    /// Show why a package is in the lock.
    Why(WhyArgs),
    /// Compare locked versions with the newest allowed and newest existing.
    Outdated(OutdatedArgs),
    /// Show what changed between two locks.
    Diff(DiffArgs),
    /// Yank (or un-yank) a published version.
    Yank(YankArgs),
    /// Print shell completions.
    Completions(CompletionsArgs),
    /// Re-hash the installed packages against what `fm sync` recorded.
    Verify(VerifyArgs),
    /// Search registries for packages.
    Search(SearchArgs),
    /// Install a package and its dependencies without a manifest.
    // `--version V` is install's own flag: without this, it clashes with the
    // propagated `--version` and clap panics building the command (e.g. in
    // `fm completions`).
    #[command(disable_version_flag = true)]
    Install(InstallArgs),
    /// Build a reproducible .fmpkg archive from a package folder.
    Pack(PackArgs),
    /// Upload an archive (or a package folder, packed first) to a registry.
    Publish(PublishArgs),
    /// Manage registries and run a registry server.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// FlowMason Studio compatibility.
    #[command(subcommand)]
    Studio(StudioCommand),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Project (or package) name (default: the folder's name).
    #[arg(long, value_parser = package_name)]
    pub name: Option<String>,
    /// Scaffold a package folder instead: `[package]` in fm.toml and an
    /// example component, ready for `fm pack`.
    #[arg(long)]
    pub package: bool,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The package, optionally with a requirement: `summarizer`, `summarizer@^1.2`.
    #[arg(value_name = "PKG[@REQ]", value_parser = package_spec)]
    pub package: String,
    /// Take it from this registry only (a `[[registries]]` name of fm.toml).
    #[arg(long, value_name = "NAME")]
    pub registry: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The dependency to remove.
    #[arg(value_name = "PKG", value_parser = package_name)]
    pub package: String,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Ignore the existing lock's versions: take the newest allowed of everything.
    #[arg(long)]
    pub upgrade: bool,
    /// Ignore the existing lock's version of this package (repeatable).
    #[arg(long, value_name = "P", value_parser = package_name)]
    pub upgrade_package: Vec<String>,
    /// Write nothing; exit 1 if fm.lock is stale.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Fail if fm.lock is stale instead of updating it.
    #[arg(long)]
    pub locked: bool,
    /// Install fm.lock as it is, without reading registries' metadata.
    #[arg(long)]
    pub frozen: bool,
    /// Install into this folder instead of .fm/packages.
    #[arg(long, value_name = "D")]
    pub dir: Option<PathBuf>,
    /// Re-hash the installed packages (as `fm verify` does) and install
    /// again, from the cache, those whose files changed.
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TreeFormat {
    Text,
    Json,
    Dot,
}

#[derive(Debug, Args)]
pub struct TreeArgs {
    /// Show the packages that depend on PKG instead.
    #[arg(long, value_name = "PKG")]
    pub invert: Option<String>,
    /// Show at most N levels.
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
    /// Output format: an indented tree, JSON (as --json), or Graphviz dot.
    #[arg(long, value_enum, default_value_t = TreeFormat::Text)]
    pub format: TreeFormat,
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The locked package to explain.
    #[arg(value_name = "PACKAGE", value_parser = package_name)]
    pub package: String,
}

#[derive(Debug, Args)]
pub struct OutdatedArgs {
    /// Exit 1 when a locked package can be upgraded (as `fm lock
    /// --upgrade-package` would move it), for CI.
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old lock: a file, or REV:path (default: `git show HEAD:fm.lock`).
    pub old: Option<String>,
    /// The new lock (default: the working fm.lock).
    pub new: Option<String>,
    /// Output format: the grouped report, JSON (as --json), or a Markdown
    /// table for a pull-request comment.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Exit 1 when anything changed.
    #[arg(long)]
    pub exit_code: bool,
    /// Print OLD (one lock file) as a line-per-package summary, for git's
    /// `diff.<driver>.textconv`.
    #[arg(long, hide = true, conflicts_with_all = ["new", "exit_code"])]
    pub textconv: bool,
    /// Extra arguments git passes to a diff driver (ignored beyond the files).
    #[arg(hide = true, trailing_var_arg = true)]
    pub rest: Vec<String>,
}

#[derive(Debug, Args)]
pub struct YankArgs {
    /// The published version to yank, e.g. `summarizer@1.0.4`.
    #[arg(value_name = "PKG@VERSION", value_parser = package_at_version)]
    pub package: String,
    /// Un-yank instead.
    #[arg(long)]
    pub undo: bool,
    /// A registry name, URL or directory path (default: the default registry).
    #[arg(long, value_name = "R")]
    pub registry: Option<String>,
    /// A directory registry's transparency-log key (its private key file).
    #[arg(long, env = "FM_LOG_KEY", value_name = "FILE")]
    pub log_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The install folder to check (default: .fm/packages).
    #[arg(long, value_name = "D")]
    pub dir: Option<PathBuf>,
    /// Instead: prove every locked package again in its registry's
    /// transparency log, against the current checkpoint.
    #[arg(long, conflicts_with = "dir")]
    pub log: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Text to look for in names, descriptions and tags.
    #[arg(value_name = "Q")]
    pub query: String,
    /// Search only this registry: a name, URL or directory path (default:
    /// every enabled registry).
    #[arg(long, value_name = "R")]
    pub registry: Option<String>,
    /// Only packages of this category (e.g. `transformers`).
    #[arg(long, value_name = "C")]
    pub category: Option<String>,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The package to install, with its dependencies.
    #[arg(value_name = "PKG", value_parser = package_name)]
    pub package: String,
    /// Exactly this version (`1.2.0`, FlowMason's meaning), or a range with
    /// an operator (`^1.2`, `>=1.2, <2`) (default: the newest).
    #[arg(long, value_name = "V", value_parser = requirement)]
    pub version: Option<String>,
    /// Take it from this registry only (a configured name).
    #[arg(long, value_name = "R")]
    pub registry: Option<String>,
    /// Where to install (default: .fm/packages in the current folder).
    #[arg(long, value_name = "D")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The package folder (default: the current folder).
    pub dir: Option<PathBuf>,
    /// Output file (default: {name}-{version}.fmpkg in the current folder).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// A .fmpkg file, or a package folder to pack first.
    #[arg(value_name = "FILE|DIR")]
    pub path: PathBuf,
    /// A registry name, URL or directory path (default: the default registry).
    #[arg(long)]
    pub registry: Option<String>,
    /// A directory registry's transparency-log key (its private key file).
    #[arg(long, env = "FM_LOG_KEY", value_name = "FILE")]
    pub log_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// List configured registries.
    List {
        /// Include disabled registries.
        #[arg(long)]
        all: bool,
    },
    /// Add a registry to the user configuration.
    Add {
        /// The registry's name, as fm.toml and `--registry` refer to it.
        #[arg(value_parser = package_name)]
        name: String,
        /// Where it is: an http(s):// or static+https:// URL, a file:// URL
        /// or a folder.
        url: String,
        /// A token sent to this registry only (stored in the user config).
        #[arg(long, value_name = "T")]
        token: Option<String>,
        /// Lower is searched first (default 100 for a new registry; a
        /// re-add without it keeps the registry's priority).
        #[arg(long, value_name = "N")]
        priority: Option<i64>,
        /// Make it the default registry for publishing.
        #[arg(long)]
        default: bool,
    },
    /// Remove a registry from the user configuration.
    Remove {
        /// The configured registry to remove.
        name: String,
    },
    /// Make a registry the default for publishing.
    SetDefault {
        /// The configured registry to make the default.
        name: String,
    },
    /// Show or clear the download cache.
    Cache {
        /// Delete the cached archives and unpacked trees.
        #[arg(long)]
        clear: bool,
        /// With --clear: only entries not used for DAYS days.
        #[arg(long, value_name = "DAYS")]
        older_than: Option<u64>,
    },
    /// Run a registry server.
    Serve(ServeArgs),
    /// The registry's transparency log (SPEC §9).
    #[command(subcommand)]
    Log(LogCommand),
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Create a registry's log: a signing key (if FILE does not exist),
    /// log/key and an empty signed checkpoint.
    Init {
        /// The registry's storage: a folder or a bucket URL.
        #[arg(long, value_name = "DIR|URL")]
        storage: String,
        /// The endpoint of a bucket storage (as for `fm registry serve`).
        #[arg(long, value_name = "URL")]
        storage_endpoint: Option<String>,
        /// The private key file (created 0600 if absent; never inside the storage).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The log's name, its checkpoints' origin line (default: fm.registry/ + the storage's name).
        #[arg(long, value_name = "NAME")]
        origin: Option<String>,
        /// Append a record for every version already published, and set their log_index.
        #[arg(long)]
        backfill: bool,
    },
    /// Print the registry's current checkpoint, verified.
    Checkpoint {
        /// A registry name, URL or folder.
        #[arg(value_name = "NAME|URL")]
        registry: String,
        /// The verifier key to trust (`name+id+base64`, or a file holding it); default: the key fm.toml, the user config or fm.lock pins for that registry, else the registry's own log/key.
        #[arg(long, value_name = "VKEY|FILE")]
        key: Option<String>,
    },
    /// Re-derive the whole log and check it against the signed checkpoint and the package documents.
    Verify {
        /// A registry name, URL or folder.
        #[arg(value_name = "NAME|URL")]
        registry: String,
        /// The verifier key to trust (`name+id+base64`, or a file holding it); default: the key fm.toml, the user config or fm.lock pins for that registry, else the registry's own log/key.
        #[arg(long, value_name = "VKEY|FILE")]
        key: Option<String>,
        /// A checkpoint seen earlier (a file): prove the log extends it.
        #[arg(long, value_name = "FILE")]
        against: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StudioCommand {
    /// Run a registry server (alias of `fm registry serve`).
    Start(ServeArgs),
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Where packages are stored: a folder, or a bucket (`s3://BUCKET/PREFIX`,
    /// `gs://BUCKET/PREFIX`, `az://CONTAINER/PREFIX`).
    #[arg(long, default_value = "./fm-registry", value_name = "DIR|URL")]
    pub storage: String,
    /// The endpoint of an S3-compatible server, a GCS emulator or an Azure
    /// endpoint for a bucket storage (plain http only on loopback).
    /// Credentials: the AWS_*, GOOGLE_* or AZURE_STORAGE_* variables.
    #[arg(long, value_name = "URL")]
    pub storage_endpoint: Option<String>,
    /// With a bucket: serve a package document read from the bucket for up
    /// to DURATION (`500ms`, `2s`, `1m`) without asking the bucket again.
    /// A publish or yank through another replica then shows here within
    /// DURATION; through this one, at once. Default 0: always revalidate.
    #[arg(long, default_value = "0", value_name = "DURATION", value_parser = parse_duration)]
    pub storage_cache_ttl: std::time::Duration,
    /// This replica's name in the storage's download counters (default:
    /// random). Give each replica over one bucket its own.
    #[arg(long, env = "FM_REPLICA_ID", value_name = "ID")]
    pub replica_id: Option<String>,
    /// Address to listen on: HOST:PORT (`127.0.0.1:8999`, `[::1]:0`; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8999", value_name = "ADDR", value_parser = bind_address)]
    pub bind: String,
    /// A token granting publish rights (repeatable).
    #[arg(
        long,
        env = "FM_SERVER_TOKENS",
        value_delimiter = ',',
        hide_env_values = true,
        value_name = "T"
    )]
    pub token: Vec<String>,
    /// Require a token for reads too.
    #[arg(long)]
    pub require_auth: bool,
    /// A file of token hashes (`sha256:<hex> [label]` per line) granting publish rights.
    #[arg(long, env = "FM_SERVER_TOKENS_FILE", value_name = "FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Host to listen on (FlowMason's `studio start --host`; overrides --bind's host).
    #[arg(long, value_parser = bind_host)]
    pub host: Option<String>,
    /// Port to listen on (FlowMason's `studio start --port`; overrides --bind's port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Largest accepted upload, in MiB.
    #[arg(long, default_value_t = 100, value_name = "MIB")]
    pub max_upload_mb: usize,
    /// Answer downloads with a redirect (307) to a pre-signed URL of the
    /// archive in the bucket, so the bytes go from the store to the client
    /// directly. Needs a bucket storage reachable by clients.
    #[arg(long)]
    pub redirect_downloads: bool,
    /// How long a pre-signed download URL stays valid, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS", requires = "redirect_downloads", value_parser = clap::value_parser!(u64).range(10..=604_800))]
    pub redirect_expires: u64,
    /// Connections served at once; more wait until one closes. Default:
    /// 1024, or less if the open-file limit (`ulimit -n`) cannot afford it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: Option<u64>,
    /// Close a connection that has not sent a whole request head this long
    /// after its first byte (`500ms`, `10s`, `1m`).
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_timeout)]
    pub header_timeout: std::time::Duration,
    /// Close a connection with no request in flight and no byte moving for
    /// this long; also how long a request body may stall.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_timeout)]
    pub idle_timeout: std::time::Duration,
    /// How often the totals `health` and `stats` answer from are recounted
    /// from the storage, so that writes by other replicas or by `fm publish`
    /// into the folder show; writes through this server show at once.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_timeout)]
    pub stats_refresh: std::time::Duration,
    /// The storage's transparency-log key: publishes and yanks are logged
    /// and checkpoints signed. Required to publish into a logged storage.
    #[arg(long, env = "FM_LOG_KEY", value_name = "FILE")]
    pub log_key: Option<PathBuf>,
}
