//! `fm registry serve` (alias `fm studio start`): runs the registry server.

use std::sync::Arc;

use super::args::ServeArgs;
use super::{Context, Failure};
use crate::registry::storage::DirStorage;
use crate::server::{self, ServerConfig, Tokens};

pub fn serve(ctx: &Context, a: ServeArgs) -> Result<(), Failure> {
    let root = ctx.cwd.join(&a.storage);
    std::fs::create_dir_all(&root).map_err(|e| {
        Failure::user(miette::miette!(
            "cannot create the storage folder {}: {e}",
            root.display()
        ))
    })?;
    let mut tokens = Tokens::from_plain(a.token.iter().map(String::as_str));
    if let Some(file) = &a.tokens_file {
        tokens.add_file(&ctx.cwd.join(file))?;
    }
    let mut config = ServerConfig::new(Arc::new(DirStorage::new(root.clone())), a.bind);
    config.tokens = tokens;
    config.require_auth = a.require_auth;
    config.max_upload_bytes = a.max_upload_mb.saturating_mul(1024 * 1024);
    config.log_requests = !ctx.global.quiet;
    if config.tokens.is_empty() {
        ctx.shell
            .warn("no publish tokens configured: uploads and yanks will be refused (pass --token or --tokens-file)");
    }
    if config.require_auth && config.tokens.is_empty() {
        ctx.shell
            .warn("--require-auth without tokens: every read but health will be refused");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::user(miette::miette!("cannot start the async runtime: {e}")))?;
    let shell = ctx.shell.clone();
    let storage = root.display().to_string();
    runtime.block_on(server::serve(config, move |addr| {
        // Printed even with --quiet: scripts and tests read the address.
        eprintln!("   Listening on http://{addr} (storage {storage})");
        shell.verbose("Press Ctrl-C to stop");
    }))?;
    Ok(())
}
