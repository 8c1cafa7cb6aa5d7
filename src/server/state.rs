//! [`AppState`]: what every handler shares, built once from the
//! [`ServerConfig`] when the server binds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::ServerConfig;
use super::auth::Tokens;
use super::cache::{ArchiveCache, DocCache, RenderCache, all_documents};
use super::counts::Counts;
use super::downloads::Downloads;
use super::error::ApiError;
use crate::archive::Limits;
use crate::registry::storage::Storage;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<dyn Storage>,
    pub tokens: Arc<Tokens>,
    pub require_auth: bool,
    pub limits: Limits,
    pub downloads: Arc<Downloads>,
    /// `--redirect-downloads`: how long the pre-signed URLs last.
    pub redirect_downloads: Option<Duration>,
    pub addr: SocketAddr,
    /// The totals `health`, `stats` and `categories` answer from.
    pub counts: Arc<Counts>,
    /// `--log-key`: signs the transparency log's checkpoints.
    pub log_key: Option<Arc<crate::tlog::LogKey>>,
    pub(super) docs: Arc<DocCache>,
    pub(super) rendered: Arc<RenderCache>,
    pub(super) archives: Arc<ArchiveCache>,
}

impl AppState {
    pub fn new(config: &ServerConfig, addr: SocketAddr) -> AppState {
        AppState {
            storage: config.storage.clone(),
            tokens: Arc::new(config.tokens.clone()),
            require_auth: config.require_auth,
            limits: config.limits,
            downloads: Arc::new(Downloads::load(config.storage.as_ref(), &config.replica_id)),
            redirect_downloads: config.redirect_downloads,
            log_key: config.log_key.clone(),
            addr,
            docs: Arc::new(DocCache::with_ttl(config.storage_cache_ttl)),
            rendered: Arc::default(),
            archives: Arc::default(),
            counts: Arc::default(),
        }
    }

    /// Recomputes [`counts`](Self::counts) from every stored document
    /// (at start, then periodically: see [`super::counts`]).
    pub fn refresh_counts(&self) -> Result<(), ApiError> {
        self.counts.begin_refresh();
        match all_documents(self) {
            Ok(docs) => {
                self.counts.finish_refresh(docs.iter().map(|d| d.as_ref()));
                Ok(())
            }
            Err(e) => {
                self.counts.abandon_refresh();
                Err(e)
            }
        }
    }
}
