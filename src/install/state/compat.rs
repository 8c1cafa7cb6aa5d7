//! The `toml` crate's reading of a state file: what the line parser of
//! [`super::fast`] does not take (a hand edit, the version 1 format).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{FileStat, InstalledFile, InstalledPackage, STATE_VERSION, State};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    version: u32,
    #[serde(default)]
    #[allow(dead_code)] // derived from the packages
    set: String,
    #[serde(default)]
    owned: Vec<String>,
    #[serde(default)]
    package: Vec<RawPackage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    name: String,
    version: String,
    sha256: String,
    #[serde(default)]
    executable: Vec<String>,
    #[serde(default)]
    files: BTreeMap<String, RawFile>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawFile {
    /// Version 1: the digest alone.
    Digest(String),
    Full {
        sha256: String,
        size: Option<u64>,
        mtime: Option<i64>,
        ctime: Option<i64>,
        ino: Option<i64>,
    },
}

pub(super) fn parse_toml(text: &str) -> Result<State, String> {
    let raw: RawState = toml::from_str(text).map_err(|e| e.to_string())?;
    if raw.version != 1 && raw.version != STATE_VERSION {
        return Err(format!(
            "format version {} (this fm reads 1 and {STATE_VERSION})",
            raw.version
        ));
    }
    let mut packages = BTreeMap::new();
    for p in raw.package {
        if packages.contains_key(&p.name) {
            return Err(format!("package {} is listed twice", p.name));
        }
        let files = p
            .files
            .into_iter()
            .map(|(path, f)| {
                let f = match f {
                    RawFile::Digest(sha256) => InstalledFile { sha256, stat: None },
                    RawFile::Full {
                        sha256,
                        size,
                        mtime,
                        ctime,
                        ino,
                    } => InstalledFile {
                        sha256,
                        stat: match (size, mtime, ctime, ino) {
                            (Some(size), Some(mtime), Some(ctime), Some(ino)) => Some(FileStat {
                                size,
                                mtime,
                                ctime,
                                ino: ino as u64,
                            }),
                            _ => None,
                        },
                    },
                };
                (path, f)
            })
            .collect();
        packages.insert(
            p.name.clone(),
            InstalledPackage {
                name: p.name,
                version: p.version,
                sha256: p.sha256,
                executable: p.executable,
                files,
            },
        );
    }
    Ok(State {
        packages,
        owned: raw.owned.into_iter().collect(),
    })
}
