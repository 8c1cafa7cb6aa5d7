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
    let bind = bind_address(&a.bind, a.host.as_deref(), a.port);
    let mut config = ServerConfig::new(Arc::new(DirStorage::new(root.clone())), bind);
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

/// `--bind`, with FlowMason's `--host`/`--port` replacing its parts.
fn bind_address(bind: &str, host: Option<&str>, port: Option<u16>) -> String {
    if host.is_none() && port.is_none() {
        return bind.to_owned();
    }
    let (bind_host, bind_port) = bind.rsplit_once(':').unwrap_or((bind, "8999"));
    let host = host.unwrap_or(bind_host);
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let port = port.map_or_else(|| bind_port.to_owned(), |p| p.to_string());
    format!("{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::bind_address;

    #[test]
    fn host_and_port_replace_parts_of_bind() {
        assert_eq!(bind_address("127.0.0.1:8999", None, None), "127.0.0.1:8999");
        assert_eq!(bind_address("127.0.0.1:8999", None, Some(0)), "127.0.0.1:0");
        assert_eq!(bind_address("127.0.0.1:8999", Some("0.0.0.0"), None), "0.0.0.0:8999");
        assert_eq!(bind_address("127.0.0.1:8999", Some("::1"), Some(9)), "[::1]:9");
    }
}
