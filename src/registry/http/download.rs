//! Archive downloads: streamed into the caller's sink with a deadline that
//! moves on with the bytes received; errors from a storage host a download
//! was redirected to name the host, never the URL's signature.

use reqwest::{StatusCode, header};
use tokio::io::AsyncWriteExt;

use super::super::transport;
use super::HttpRegistry;
use super::errors::error_chain;
use crate::registry::{RegistryError, redact_url};

impl HttpRegistry {
    /// Streams the archive of `package@version` into `sink` ([`Registry::download`](crate::registry::Registry::download)).
    pub(super) async fn download_archive(
        &self,
        package: &str,
        version: &str,
        sink: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<u64, RegistryError> {
        if self.offline {
            return Err(RegistryError::Offline {
                registry: self.name.clone(),
                package: format!("{package}@{version}"),
            });
        }
        let url = self.archive_url(package, version)?;
        let mut f = match self.get(url, header::HeaderMap::new()).await {
            Ok(f) => f,
            Err(RegistryError::Http {
                registry,
                message,
                help,
                source,
            }) => {
                return Err(RegistryError::Http {
                    registry,
                    message: format!("downloading {package}@{version}: {message}"),
                    help,
                    source,
                });
            }
            Err(e) => return Err(e),
        };
        if !f.status.is_success() && f.url.origin() != self.api.origin() && f.url.origin() != self.token_origin {
            return Err(self.storage_error(f, package, version).await);
        }
        if f.status == StatusCode::NOT_FOUND {
            return Err(RegistryError::MissingArchive {
                registry: self.name.clone(),
                package: package.to_owned(),
                version: version.to_owned(),
            });
        }
        if !f.status.is_success() {
            return Err(self.status_error(f, &format!("downloading {package}@{version}")).await);
        }
        let mut written = 0u64;
        loop {
            // The deadline moves on with the bytes received (a minimum
            // throughput); the caller caps the bytes at the lock's size.
            let by = f.budget.archive_deadline(written);
            let chunk = match tokio::time::timeout_at(by, f.response.chunk()).await {
                Ok(chunk) => chunk.map_err(|e| {
                    let help = if e.is_timeout() {
                        transport::deadline_help(&f.budget)
                    } else {
                        "try again; the archive is verified against its digest either way".into()
                    };
                    let message = format!("downloading {package}@{version} failed: {}", error_chain(&e));
                    self.http_err_from(message, Some(help), e)
                })?,
                Err(_) => {
                    return Err(self.http_err(
                    format!(
                        "downloading {package}@{version} from {}: too slow, {written} bytes in {} s                                  (the deadline is {} s plus 1 s per 64 KiB received)",
                        redact_url(&f.url),
                        f.budget.elapsed_secs(),
                        f.budget.secs()
                    ),
                    Some(transport::deadline_help(&f.budget)),
                ));
                }
            };
            let Some(chunk) = chunk else { break };
            sink.write_all(&chunk).await.map_err(|source| RegistryError::Io {
                registry: self.name.clone(),
                what: format!("writing {package}@{version}"),
                source,
            })?;
            written += chunk.len() as u64;
        }
        sink.flush().await.map_err(|source| RegistryError::Io {
            registry: self.name.clone(),
            what: format!("writing {package}@{version}"),
            source,
        })?;
        Ok(written)
    }
}
