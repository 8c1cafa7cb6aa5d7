//! The registry server (`fm registry serve`, alias `fm studio start`):
//! SPEC §4's HTTP API, a superset of FlowMason Studio's, on axum.
//!
//! - [`routes`]: the route table and the router (auth, request log). The
//!   handlers, `reads` and `writes`, see storage only through
//!   [`Storage`](crate::registry::storage::Storage) and publish through
//!   [`publish`](crate::registry::publish), the same path `fm publish` takes
//!   for directory registries, so an object-store backend changes no route.
//!   `state` is what they share, `cache` what is kept between requests
//!   (documents, rendered answers, bucket archives), `error` the error
//!   answer.
//! - [`auth`]: publish tokens (hashes only).
//! - [`downloads`]: download counts, flushed in batches.
//! - [`counts`]: the totals `health` and `stats` answer from in O(1).
//! - [`fast`]: `GET packages/{name}` answered from the kept answer before
//!   the router (same auth, same answer, same log line).
//! - [`listen`]: the accept loop: a connection limit, header-read and idle
//!   timeouts, back-off at the file-descriptor limit, graceful drain.
//!
//! With [`ServerConfig::redirect_downloads`] archives are not relayed: the
//! download route answers `307` to a URL the storage pre-signs
//! ([`Storage::presign_get`]), and [`check_redirects`] refuses a storage
//! that cannot sign before the server binds.
//!
//! The server prints `Listening on http://ADDR` to stderr once bound (tests
//! bind `127.0.0.1:0` and read it), logs one line a request to stderr
//! (method, path, status, time — never headers, so never tokens), and on
//! SIGINT/SIGTERM stops accepting, lets in-flight requests finish and saves
//! the download counts.

pub mod auth;
mod cache;
pub mod counts;
pub mod downloads;
mod error;
pub mod fast;
pub mod listen;
pub mod log;
mod reads;
pub mod routes;
mod state;
mod writes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::archive::Limits;
use crate::registry::storage::Storage;

pub use auth::Tokens;
pub use cache::STAT_EVERY;
pub use listen::ConnLimits;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub storage: Arc<dyn Storage>,
    pub bind: String,
    pub tokens: Tokens,
    pub require_auth: bool,
    /// Largest accepted upload body, in bytes.
    pub max_upload_bytes: usize,
    /// Caps applied when validating uploaded archives.
    pub limits: Limits,
    /// Log one line a request to stderr.
    pub log_requests: bool,
    /// How often download counts are saved.
    pub flush_every: Duration,
    /// Names this server's download-count object
    /// ([`downloads::replica_key`]); unique per replica over one storage.
    pub replica_id: String,
    /// `--redirect-downloads`: answer downloads with `307` to a pre-signed
    /// URL valid this long, instead of relaying the archive. Needs a
    /// storage that signs ([`Storage::presign_get`]); [`serve`] refuses
    /// to start otherwise.
    pub redirect_downloads: Option<Duration>,
    /// For storages without local files (buckets): how long a package
    /// document read from the store is served without asking the store
    /// again. Zero (the default): every request revalidates it.
    pub storage_cache_ttl: Duration,
    /// How many connections at once, and how long each may idle or take
    /// to send its request head ([`listen`]).
    pub conn_limits: ConnLimits,
    /// How often the kept totals are recomputed from the storage
    /// ([`counts::REFRESH_EVERY`]).
    pub counts_refresh: Duration,
    /// `--log-key`: the transparency log's key; publishes and yanks are
    /// appended to `log/` ([`crate::tlog`]). Without it, a storage that
    /// keeps a log refuses publishes.
    pub log_key: Option<Arc<crate::tlog::LogKey>>,
}

impl ServerConfig {
    /// Defaults for `storage`, bound to `bind`.
    pub fn new(storage: Arc<dyn Storage>, bind: impl Into<String>) -> ServerConfig {
        ServerConfig {
            storage,
            bind: bind.into(),
            tokens: Tokens::default(),
            require_auth: false,
            max_upload_bytes: 100 * 1024 * 1024,
            limits: Limits::default(),
            log_requests: true,
            flush_every: Duration::from_secs(2),
            replica_id: downloads::new_replica_id(),
            redirect_downloads: None,
            storage_cache_ttl: Duration::ZERO,
            conn_limits: ConnLimits::default(),
            counts_refresh: counts::REFRESH_EVERY,
            log_key: None,
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    #[diagnostic(
        code(fm::server::bind),
        help("choose another address with --bind (port 0 picks a free port)")
    )]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--redirect-downloads needs a storage that can sign URLs (a bucket: s3://…); {storage} cannot")]
    #[diagnostic(
        code(fm::server::redirect_unsupported),
        help(
            "serve without --redirect-downloads (the server then sends the archives itself), or use a bucket storage"
        )
    )]
    RedirectUnsupported { storage: String },
    #[error("--redirect-downloads: cannot sign a URL with {storage}: {source}")]
    #[diagnostic(
        code(fm::server::redirect_sign),
        help("check the storage's credentials (the AWS_* variables), or serve without --redirect-downloads")
    )]
    RedirectSign {
        storage: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    #[diagnostic(code(fm::server::io))]
    Io(#[from] std::io::Error),
}

/// A temporary file this old belongs to no running writer: writes take
/// milliseconds, and this is far longer than any upload's.
const LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// Binds, announces the address through `on_bound`, and serves until
/// SIGINT/SIGTERM.
pub async fn serve(config: ServerConfig, on_bound: impl FnOnce(SocketAddr)) -> Result<(), ServerError> {
    check_redirects(&config)?;
    let listener = tokio::net::TcpListener::bind(&config.bind)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.bind.clone(),
            source,
        })?;
    let addr = listener.local_addr()?;
    // In the background: walking a large registry folder must not delay
    // serving, and nothing reads these files.
    let storage = config.storage.clone();
    tokio::task::spawn_blocking(move || match storage.remove_leftovers(LEFTOVER_AGE) {
        Ok(0) => {}
        Ok(n) => eprintln!("   Removed {n} temporary file(s) left by interrupted writes"),
        Err(e) => eprintln!("warning: cannot clean up temporary files in the storage: {e}"),
    });
    log::start(&config).await;
    let state = state::AppState::new(&config, addr);
    // Once, before serving: from here on the totals are kept, not
    // recomputed per request.
    let seeding = state.clone();
    match tokio::task::spawn_blocking(move || seeding.refresh_counts()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("warning: cannot count the stored packages yet: {e}"),
        Err(e) => eprintln!("warning: cannot count the stored packages yet: {e}"),
    }
    let refreshing = state.clone();
    let refresher = counts::spawn_refresher(config.counts_refresh, move || {
        if let Err(e) = refreshing.refresh_counts() {
            eprintln!("warning: cannot refresh the package counts: {e}");
        }
    });
    let flusher = downloads::spawn_flusher(state.downloads.clone(), config.storage.clone(), config.flush_every);
    let app = routes::router(state.clone(), &config);
    let shortcut = Arc::new(fast::PackageShortcut::new(state.clone(), config.log_requests));
    on_bound(addr);
    let answer: listen::Shortcut = Arc::new(move |req, peer| shortcut.answer(req, peer));
    listen::serve(listener, app, Some(answer), config.conn_limits, shutdown_signal()).await;
    refresher.abort();
    flusher.abort();
    let (d, s) = (state.downloads.clone(), config.storage.clone());
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || d.flush(s.as_ref())).await {
        eprintln!("warning: cannot save download counts: {e}");
    }
    Ok(())
}

/// With `--redirect-downloads`, checks before binding that the storage
/// signs URLs at all (signing needs no request to the store, so this costs
/// nothing but catches a folder storage or missing credentials at start).
pub fn check_redirects(config: &ServerConfig) -> Result<(), ServerError> {
    let Some(expires) = config.redirect_downloads else {
        return Ok(());
    };
    let storage = config.storage.describe();
    match config.storage.presign_get("index/fm-probe.json", expires) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ServerError::RedirectUnsupported { storage }),
        Err(source) => Err(ServerError::RedirectSign { storage, source }),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    eprintln!("Shutting down: finishing requests in flight");
}
