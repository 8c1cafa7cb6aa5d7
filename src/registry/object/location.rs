//! Storage URLs (`s3://`, `gs://`, `az://`, `abfss://`) and
//! `--storage-endpoint`, parsed and checked before any store is built:
//! no secret in a URL, plain http only on loopback, and a shown form that
//! carries nothing but names.

use std::io;

use object_store::path::Path;

/// The clouds a storage URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cloud {
    S3,
    Gcs,
    Azure,
}

/// A parsed storage URL: which cloud, which bucket (container), which
/// account (Azure, when the URL names it) and which prefix.
#[derive(Debug)]
pub(super) struct Location {
    pub(super) cloud: Cloud,
    /// The URL's scheme as given (lower case), kept for display.
    pub(super) scheme: String,
    pub(super) bucket: String,
    pub(super) account: Option<String>,
    pub(super) prefix: String,
}

impl Location {
    pub(super) fn parse(url: &str) -> io::Result<Location> {
        let parsed = url::Url::parse(url).map_err(|e| invalid(format!("bad storage URL {url}: {e}")))?;
        let scheme = parsed.scheme().to_ascii_lowercase();
        let cloud = match scheme.as_str() {
            "s3" | "s3a" => Cloud::S3,
            "gs" => Cloud::Gcs,
            "az" | "abfs" | "abfss" => Cloud::Azure,
            _ => {
                return Err(invalid(format!(
                    "storage URL {url}: use s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX"
                )));
            }
        };
        if parsed.password().is_some() || parsed.query().is_some() {
            // Never echo the URL back: it may hold a secret.
            return Err(invalid(format!(
                "storage URL {scheme}://…: credentials do not belong in the URL; set them in the environment ({})",
                credential_variables(url)
            )));
        }
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let (bucket, account) = if cloud == Cloud::Azure && !parsed.username().is_empty() {
            // abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX
            let account = [".dfs.core.windows.net", ".blob.core.windows.net"]
                .iter()
                .find_map(|s| host.strip_suffix(s))
                .filter(|a| !a.is_empty() && !a.contains('.'))
                .ok_or_else(|| {
                    invalid(format!(
                        "storage URL {url}: expected {scheme}://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX"
                    ))
                })?;
            (parsed.username().to_owned(), Some(account.to_owned()))
        } else if parsed.username().is_empty() {
            (host, None)
        } else {
            return Err(invalid(format!(
                "storage URL {scheme}://…: credentials do not belong in the URL; set them in the environment ({})",
                credential_variables(url)
            )));
        };
        if bucket.is_empty() {
            let what = if cloud == Cloud::Azure { "CONTAINER" } else { "BUCKET" };
            return Err(invalid(format!(
                "storage URL {url} names no {} ({scheme}://{what}/PREFIX)",
                what.to_ascii_lowercase()
            )));
        }
        let prefix = parsed.path().trim_matches('/').to_owned();
        if !prefix.is_empty() {
            Path::parse(&prefix).map_err(|e| invalid(format!("bad prefix in {url}: {e}")))?;
        }
        Ok(Location {
            cloud,
            scheme,
            bucket,
            account,
            prefix,
        })
    }

    /// The URL as shown in logs and errors: rebuilt from its parts, so it
    /// never carries anything but names.
    pub(super) fn shown(&self) -> String {
        let host = match &self.account {
            Some(account) => format!("{}@{account}.dfs.core.windows.net", self.bucket),
            None => self.bucket.clone(),
        };
        let scheme = if self.cloud == Cloud::S3 { "s3" } else { &self.scheme };
        if self.prefix.is_empty() {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}/{}", self.prefix)
        }
    }
}

/// `--storage-endpoint`: an https URL, or plain http on a loopback address.
#[derive(Debug)]
pub(super) struct Endpoint {
    pub(super) url: String,
    pub(super) http: bool,
    pub(super) loopback: bool,
}

impl Endpoint {
    pub(super) fn parse(endpoint: &str) -> io::Result<Endpoint> {
        let e = url::Url::parse(endpoint).map_err(|e| invalid(format!("bad --storage-endpoint {endpoint}: {e}")))?;
        let http = match e.scheme() {
            "https" => false,
            "http" if is_loopback(&e) => true,
            "http" => {
                return Err(invalid(format!(
                    "--storage-endpoint {endpoint}: plain http is only allowed on a loopback address; use https"
                )));
            }
            other => {
                return Err(invalid(format!(
                    "--storage-endpoint {endpoint}: {other}:// is not an endpoint; use https://HOST[:PORT]"
                )));
            }
        };
        if e.password().is_some() || !e.username().is_empty() || e.query().is_some() {
            return Err(invalid(
                "--storage-endpoint: credentials do not belong in the endpoint; set them in the environment".to_owned(),
            ));
        }
        Ok(Endpoint {
            url: endpoint.trim_end_matches('/').to_owned(),
            http,
            loopback: is_loopback(&e),
        })
    }
}

/// The environment variables that hold credentials for the cloud `url`
/// names, for error messages and help.
pub fn credential_variables(url: &str) -> &'static str {
    let scheme = url
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    match scheme.as_str() {
        "gs" => {
            "GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_SERVICE_ACCOUNT (a key file) or GOOGLE_SERVICE_ACCOUNT_KEY (the key's \
             JSON); or run on Google Cloud with an attached service account (none for an emulator on a loopback \
             --storage-endpoint)"
        }
        "az" | "abfs" | "abfss" => {
            "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY, AZURE_STORAGE_TOKEN, \
             or AZURE_CLIENT_ID + AZURE_CLIENT_SECRET + AZURE_TENANT_ID; or run on Azure with a managed identity"
        }
        _ => "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, or an instance role",
    }
}

pub(super) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
pub(super) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_urls_parse_and_show_no_secret() {
        let at = Location::parse("gs://bkt/fm/reg/").expect("gs");
        assert_eq!(
            (at.cloud, at.bucket.as_str(), at.prefix.as_str()),
            (Cloud::Gcs, "bkt", "fm/reg")
        );
        assert_eq!(at.shown(), "gs://bkt/fm/reg");
        let at = Location::parse("az://cont/reg").expect("az");
        assert_eq!(
            (at.cloud, at.bucket.as_str(), at.account.as_deref()),
            (Cloud::Azure, "cont", None)
        );
        assert_eq!(at.shown(), "az://cont/reg");
        let at = Location::parse("abfss://cont@acct.dfs.core.windows.net/reg").expect("abfss");
        assert_eq!((at.bucket.as_str(), at.account.as_deref()), ("cont", Some("acct")));
        assert_eq!(at.shown(), "abfss://cont@acct.dfs.core.windows.net/reg");
        assert_eq!(Location::parse("S3A://b").expect("s3a").shown(), "s3://b");
        // Secrets in a URL are refused without echoing them.
        for url in [
            "az://cont:hunter2@acct.blob.core.windows.net/reg",
            "gs://user:hunter2@bkt/reg",
            "az://cont/reg?sig=hunter2",
        ] {
            let e = Location::parse(url).expect_err(url).to_string();
            assert!(e.contains("do not belong in the URL") && !e.contains("hunter2"), "{e}");
        }
        let e = Location::parse("abfss://cont@acct.example.com/reg").expect_err("foreign host");
        assert!(e.to_string().contains("CONTAINER@ACCOUNT.dfs.core.windows.net"), "{e}");
        let e = Endpoint::parse("http://u:hunter2@127.0.0.1:1").expect_err("secret in endpoint");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(
            Endpoint::parse("http://[::1]:10000/devstoreaccount1")
                .expect("loopback")
                .http
        );
    }
}
