//! Who may write: publish tokens, kept as SHA-256 hashes only.
//!
//! Tokens come from `--token` / `FM_SERVER_TOKENS` (hashed as soon as they
//! are read) and from a tokens file whose lines are `sha256:<hex> [label]`
//! (`#` starts a comment). A request's bearer token is hashed and looked up,
//! so the comparison never touches a secret and leaks nothing through its
//! timing. Every token grants publish rights (upload, yank, un-yank); with
//! `--require-auth` one is needed for reads too.

use std::collections::HashSet;
use std::path::Path;

use axum::http::HeaderMap;

/// The set of accepted token hashes.
#[derive(Clone, Default)]
pub struct Tokens {
    hashes: HashSet<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.hashes.len())
    }
}

/// A tokens file that cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TokensError {
    #[error("cannot read the tokens file {path}: {source}")]
    #[diagnostic(code(fm::server::tokens_io))]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected `sha256:<64 hex digits> [label]`")]
    #[diagnostic(
        code(fm::server::tokens_syntax),
        help("store hashes, not tokens: `printf %s \"$TOKEN\" | sha256sum` gives the hex digits")
    )]
    Syntax { path: String, line: usize },
}

/// The outcome of checking a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A configured token was presented.
    Granted,
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token nobody configured.
    Refused,
}

impl Tokens {
    /// Tokens given in clear (from the command line or environment).
    pub fn from_plain<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Tokens {
        Tokens {
            hashes: tokens
                .into_iter()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| crate::fsutil::sha256_hex(t.as_bytes()))
                .collect(),
        }
    }

    /// Adds the hashes listed in a tokens file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), TokensError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Io {
            path: path.display().to_string(),
            source,
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let hash = line.split_whitespace().next().unwrap_or("");
            match hash.strip_prefix("sha256:") {
                Some(hex) if crate::fsutil::is_sha256_hex(hex) => {
                    self.hashes.insert(hex.to_ascii_lowercase());
                }
                _ => {
                    return Err(TokensError::Syntax {
                        path: path.display().to_string(),
                        line: i + 1,
                    });
                }
            }
        }
        Ok(())
    }

    /// How many tokens are configured.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether no token is configured (then nobody can publish).
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Checks the request's `Authorization: Bearer` header.
    pub fn check(&self, headers: &HeaderMap) -> Access {
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Access::Missing;
        };
        let Ok(value) = value.to_str() else {
            return Access::Refused;
        };
        let token = match value.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => return Access::Refused,
        };
        if self.hashes.contains(&crate::fsutil::sha256_hex(token.as_bytes())) {
            Access::Granted
        } else {
            Access::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, v.parse().expect("header"));
        h
    }

    #[test]
    fn plain_and_hashed_tokens_are_accepted_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("tokens");
        let hash = crate::fsutil::sha256_hex(b"from-file");
        std::fs::write(&file, format!("# ci\nsha256:{hash} ci-bot\n\n")).expect("write");
        let mut t = Tokens::from_plain(["a", " ", "b"]);
        t.add_file(&file).expect("file");
        assert_eq!(t.len(), 3);
        assert_eq!(t.check(&headers("Bearer a")), Access::Granted);
        assert_eq!(t.check(&headers("bearer from-file")), Access::Granted);
        assert_eq!(t.check(&headers("Bearer c")), Access::Refused);
        assert_eq!(t.check(&headers("Basic YTpi")), Access::Refused);
        assert_eq!(t.check(&HeaderMap::new()), Access::Missing);
        assert_eq!(format!("{t:?}"), "Tokens(3 configured)");
        assert!(!format!("{t:?}").contains(&hash));
    }

    #[test]
    fn a_tokens_file_with_a_clear_token_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("tokens");
        std::fs::write(&file, "my-secret-token\n").expect("write");
        let err = Tokens::default().add_file(&file).expect_err("clear token");
        assert!(err.to_string().contains(":1:"), "{err}");
    }
}
