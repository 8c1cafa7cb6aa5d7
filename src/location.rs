//! Registry locations: how a URL or a path that fm.toml, fm.lock, the user
//! config or the command line gives becomes a [`url::Url`], how it is shown,
//! compared and bound to a credential's origin.
//!
//! A leaf module: it imports nothing from the crate, so `manifest`,
//! `config`, `lock` and `registry` can all use it without reaching into
//! each other.
//!
//! Rules kept here:
//! - **A location is `http(s)://`, `static+http(s)://`, `file://` or a
//!   path** ([`parse_location`]); a path is made absolute against the
//!   folder of the file that gave it, lexically (the folder may not exist
//!   yet). Anything else is refused with the reason ([`LocationError`]).
//! - **What is recorded and shown carries no credentials**
//!   ([`redact_url`]): no user name, password, query or fragment, which is
//!   where a pre-signed URL keeps its signature.
//! - **A credential's origin is scheme, host and port** ([`origin`]), a
//!   `static+` prefix aside; a folder has none.

use std::path::{Path, PathBuf};

/// Priority of a registry that does not give one (SPEC §1): lower first.
pub const DEFAULT_PRIORITY: i64 = 100;

/// The scheme prefix of a static registry (`static+https://cdn.example/fm`).
pub const STATIC_PREFIX: &str = "static+";

/// Why a registry location cannot be used. The `Display` of each variant is
/// a reason to follow "invalid registry URL …: ".
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    /// The location is blank.
    #[error("it is empty")]
    Empty,
    /// A URL that does not parse.
    #[error("{0}")]
    Url(#[from] url::ParseError),
    /// An http(s) URL without a host.
    #[error("it has no host")]
    NoHost,
    /// A scheme fm does not read registries from.
    #[error("scheme {0:?} is not supported")]
    Scheme(String),
    /// `host:path` or similar: a URL missing its scheme.
    #[error("it looks like a URL without a supported scheme")]
    NoScheme,
    /// A path that cannot be made absolute.
    #[error("{}", source)]
    Path {
        #[source]
        source: std::io::Error,
    },
    /// An absolute path that is no `file://` URL.
    #[error("{} is not an absolute path", path.display())]
    NotAbsolute { path: PathBuf },
}

/// `url` without a `static+` scheme prefix, and whether it had one.
pub fn strip_static(url: &url::Url) -> Result<(url::Url, bool), url::ParseError> {
    match url.as_str().strip_prefix(STATIC_PREFIX) {
        Some(inner) => Ok((url::Url::parse(inner)?, true)),
        None => Ok((url.clone(), false)),
    }
}

/// Parses a registry location: `http(s)://…`, `static+http(s)://…`,
/// `file://…`, or a path (relative to `base`).
pub fn parse_location(text: &str, base: &Path) -> Result<url::Url, LocationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(LocationError::Empty);
    }
    if let Some((scheme, _)) = text.split_once("://") {
        let url = url::Url::parse(text)?;
        return match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" | "static+http" | "static+https" => {
                let (inner, _) = strip_static(&url)?;
                if inner.host_str().is_none_or(str::is_empty) {
                    Err(LocationError::NoHost)
                } else {
                    Ok(url)
                }
            }
            "file" => Ok(url),
            other => Err(LocationError::Scheme(other.to_owned())),
        };
    }
    if text.contains(':') && !cfg!(windows) && !text.starts_with('/') && !text.starts_with('.') {
        return Err(LocationError::NoScheme);
    }
    let path = Path::new(text);
    let abs = if path.is_absolute() {
        path.to_owned()
    } else {
        std::path::absolute(base.join(path)).map_err(|source| LocationError::Path { source })?
    };
    let abs = normalize(&abs);
    url::Url::from_directory_path(&abs).map_err(|()| LocationError::NotAbsolute { path: abs })
}

/// A registry location written as a relative path, normalised to `/`
/// separators without a trailing one (`../registries/main`); `None` for URLs
/// and absolute paths.
pub fn relative_location(text: &str) -> Option<String> {
    let text = text.trim();
    if text.contains("://") || Path::new(text).is_absolute() {
        return None;
    }
    let t = text.replace('\\', "/");
    let t = t.trim_end_matches('/');
    Some(if t.is_empty() { ".".to_owned() } else { t.to_owned() })
}

/// Removes `.` and `..` components lexically (the folder may not exist yet).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A URL as recorded in `fm.lock` and shown in messages: no user name or
/// password, no query or fragment.
pub fn redact_url(url: &url::Url) -> url::Url {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u
}

/// Whether two registry URLs name the same registry (trailing `/` and
/// credentials aside).
pub fn same_url(a: &url::Url, b: &url::Url) -> bool {
    let norm = |u: &url::Url| redact_url(u).as_str().trim_end_matches('/').to_owned();
    norm(a) == norm(b)
}

/// The origin a credential is bound to: scheme, host and port, default
/// ports filled in (`https://a` and `https://a:443/x` are one origin). A
/// `static+https://` registry's origin is that of its `https://` URL.
/// `None` for anything that is not http(s) (a folder gets no token).
pub fn origin(url: &url::Url) -> Option<url::Origin> {
    let (url, _) = strip_static(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    match url.origin() {
        o @ url::Origin::Tuple(..) => Some(o),
        url::Origin::Opaque(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn relative_registry_paths_resolve_against_the_manifest() {
        let u = parse_location("../reg", Path::new("/a/b")).unwrap();
        assert_eq!(u.as_str(), "file:///a/reg/");
    }

    #[test]
    fn unusable_locations_say_why() {
        let base = Path::new("/p");
        let why = |t: &str| parse_location(t, base).unwrap_err().to_string();
        assert_eq!(why("  "), "it is empty");
        assert_eq!(why("ftp://host/x"), "scheme \"ftp\" is not supported");
        assert_eq!(why("host:path"), "it looks like a URL without a supported scheme");
        assert_eq!(why("http://"), "empty host");
        assert!(parse_location("static+https://cdn.example/fm/", base).is_ok());
    }

    #[test]
    fn redaction_drops_credentials_query_and_fragment() {
        let r = redact_url(&u("https://me:pw@a.example/r/?X-Amz-Signature=s#f"));
        assert_eq!(r.as_str(), "https://a.example/r/");
        assert!(same_url(&u("https://me@a.example/r"), &u("https://a.example/r/")));
    }

    #[test]
    fn origins_normalize_default_ports_and_static() {
        assert_eq!(origin(&u("https://a.example")), origin(&u("https://a.example:443/x/")));
        assert_eq!(
            origin(&u("static+https://a.example/r/")),
            origin(&u("https://a.example/"))
        );
        assert_ne!(origin(&u("http://a.example")), origin(&u("https://a.example")));
        assert_ne!(origin(&u("http://a.example:8080")), origin(&u("http://a.example")));
        assert_eq!(origin(&u("file:///srv/reg")), None);
    }
}
