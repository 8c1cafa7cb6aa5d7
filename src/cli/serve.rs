//! `fm registry serve` (alias `fm studio start`): runs the registry server.

use std::sync::Arc;

use super::args::ServeArgs;
use super::{Context, Failure};
#[cfg(feature = "cloud")]
use crate::registry::object::{ObjectStorage, credential_variables};
use crate::registry::storage::{DirStorage, Storage, is_object_url};
use crate::server::{self, ServerConfig, Tokens};

pub fn serve(ctx: &Context, a: ServeArgs) -> Result<(), Failure> {
    let storage = open_storage(ctx, &a)?;
    let mut tokens = Tokens::from_plain(a.token.iter().map(String::as_str));
    if let Some(file) = &a.tokens_file {
        tokens.add_file(&ctx.cwd.join(file))?;
    }
    let bind = bind_address(&a.bind, a.host.as_deref(), a.port);
    let described = storage.describe();
    let mut config = ServerConfig::new(storage, bind);
    if let Some(id) = &a.replica_id {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(Failure::usage(
                format!("--replica-id {id:?}: use letters, digits, '-' and '_'"),
                None,
            ));
        }
        config.replica_id = id.clone();
    }
    config.tokens = tokens;
    config.require_auth = a.require_auth;
    config.max_upload_bytes = a.max_upload_mb.saturating_mul(1024 * 1024);
    config.log_requests = !ctx.global.quiet;
    if a.redirect_downloads {
        config.redirect_downloads = Some(std::time::Duration::from_secs(a.redirect_expires));
        server::check_redirects(&config).map_err(|e| match e {
            // Asking a folder to sign is a usage error; failing to sign is not.
            server::ServerError::RedirectUnsupported { .. } => Failure {
                report: e.into(),
                code: 2,
            },
            e => Failure::user(e),
        })?;
    }
    config.storage_cache_ttl = a.storage_cache_ttl;
    config.conn_limits.header_timeout = a.header_timeout;
    config.conn_limits.idle_timeout = a.idle_timeout;
    config.counts_refresh = a.stats_refresh;
    if let Some(n) = a.max_connections {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        // Honoured as given (the operator may know their traffic), but
        // past the budget `accept` can meet EMFILE: then the server backs
        // off and keeps serving (see server::listen).
        if let Some(budget) = server::listen::fd_budget()
            && n > budget
        {
            ctx.shell.warn(format!(
                "--max-connections {n}: the open-file limit (ulimit -n {}) affords about {budget} connections; raise it or expect refused accepts under load",
                server::listen::fd_limit().unwrap_or(0)
            ));
        }
        config.conn_limits.max_connections = n;
    }
    ctx.shell.verbose(format!(
        "Serving up to {} connections at once (header timeout {:?}, idle timeout {:?})",
        config.conn_limits.max_connections, config.conn_limits.header_timeout, config.conn_limits.idle_timeout
    ));
    if let Some(key) = super::log::optional_key(ctx, a.log_key.as_deref())? {
        // A wrong key, or a key for a storage without a log, is refused
        // before binding rather than at the first publish.
        crate::tlog::Appender::for_storage(config.storage.as_ref(), Some(&key)).map_err(Failure::user)?;
        config.log_key = Some(Arc::new(key));
    }
    if config.tokens.is_empty() {
        ctx.shell
            .warn("no publish tokens configured: uploads and yanks will be refused (pass --token or --tokens-file)");
    }
    if config.require_auth && config.tokens.is_empty() {
        ctx.shell
            .warn("--require-auth without tokens: every read but health will be refused");
    }
    let runtime = crate::runtime::get().map_err(|e| Failure::user(miette::miette!("{e}")))?;
    let shell = ctx.shell.clone();
    runtime.block_on(server::serve(config, move |addr| {
        // Printed even with --quiet: scripts and tests read the address.
        eprintln!("   Listening on http://{addr} (storage {described})");
        shell.verbose("Press Ctrl-C to stop");
    }))?;
    Ok(())
}

/// `--storage`: a bucket URL, a `file://` URL or a folder (created).
fn open_storage(ctx: &Context, a: &ServeArgs) -> Result<Arc<dyn Storage>, Failure> {
    #[cfg(not(feature = "cloud"))]
    if is_object_url(&a.storage) {
        return Err(Failure::without_feature("a bucket --storage", "cloud"));
    }
    #[cfg(feature = "cloud")]
    if is_object_url(&a.storage) {
        let variables = credential_variables(&a.storage);
        let s = ObjectStorage::open(&a.storage, a.storage_endpoint.as_deref()).map_err(|e| {
            Failure::user(miette::miette!(
                help = format!("check the URL, --storage-endpoint and the credential variables: {variables}"),
                "cannot open the storage {}: {e}",
                a.storage
            ))
        })?;
        // Fail at start, not at the first request, on a wrong bucket,
        // endpoint or credentials.
        s.list("index/").map_err(|e| {
            Failure::user(miette::miette!(
                help = format!(
                    "check that the bucket exists, --storage-endpoint, and the credential variables: {variables}"
                ),
                "cannot reach the storage {}: {e}",
                a.storage
            ))
        })?;
        return Ok(Arc::new(s));
    }
    if a.storage_endpoint.is_some() {
        return Err(Failure::usage(
            "--storage-endpoint needs a bucket --storage (s3://, gs:// or az://)",
            None,
        ));
    }
    let root = match url::Url::parse(&a.storage) {
        Ok(u) if u.scheme() == "file" => u
            .to_file_path()
            .map_err(|()| Failure::usage(format!("--storage {}: not a local file URL", a.storage), None))?,
        _ => ctx.cwd.join(&a.storage),
    };
    std::fs::create_dir_all(&root).map_err(|e| {
        Failure::user(miette::miette!(
            "cannot create the storage folder {}: {e}",
            root.display()
        ))
    })?;
    Ok(Arc::new(DirStorage::new(root)))
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
