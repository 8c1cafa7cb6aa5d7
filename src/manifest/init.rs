//! `fm init`: the starter manifests, the starter package folder, and the
//! `.fm/.gitignore` that keeps installed packages out of git.

use std::path::{Path, PathBuf};

use super::{MANIFEST_FILE, ManifestError};
use crate::names;

/// The starter manifest `fm init` writes.
pub fn starter(name: &str) -> String {
    format!(
        r#"[project]
name = "{name}"
version = "0.1.0"

[dependencies]
# summarizer = "^1.2"

# Registries are searched in priority order, lower first. Without any, fm
# uses the registries in ~/.flowmason/registries.json.
# [[registries]]
# name = "local"
# url = "http://127.0.0.1:8999"
"#
    )
}

/// The starter `fm.toml` of `fm init --package`: a `[package]` that
/// `fm pack` accepts as it is.
pub fn package_starter(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
description = "{name}: a FlowMason package"
# license = "MIT"
# category = "transformers"
# Archive members: components/**/*.py and pipelines/**/*.pipeline.json are
# found by themselves; list `components` or `pipelines` here to choose.

[dependencies]
# text-utils = "^1.0"
"#
    )
}

/// The example component of `fm init --package`.
pub fn component_starter(name: &str) -> String {
    let func = name.replace('-', "_");
    format!(
        r#""""{name}: an example component (fm init --package). Replace it with your own."""


def {func}(text: str) -> str:
    return text.strip()
"#
    )
}

/// Makes `{dir}/.fm/` ignored by git with a `.gitignore` inside it holding
/// `*` (as uv does for `.venv`), so installed packages are never committed
/// by accident, whatever the repository's own `.gitignore` says. An
/// existing `.fm/.gitignore` is left as it is. Returns its path.
pub fn ignore_install_folder(dir: &Path) -> std::io::Result<PathBuf> {
    let fm = dir.join(".fm");
    std::fs::create_dir_all(&fm)?;
    let path = fm.join(".gitignore");
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(b"# Created by fm: everything in .fm/ is installed or fm's own state.\n*\n")?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    Ok(path)
}

/// Writes a starter package folder into `dir` (`fm.toml` with a
/// `[package]`, `components/{name}.py`), refusing to overwrite `fm.toml`.
pub fn init_package(dir: &Path, name: &str) -> Result<PathBuf, ManifestError> {
    names::validate(name)
        .map_err(|why| ManifestError::BadArgument(format!("invalid package name {name:?}: {why}. {}", names::HELP)))?;
    let path = create_new(&dir.join(MANIFEST_FILE), &package_starter(name))?;
    let components = dir.join("components");
    let component = components.join(format!("{}.py", name.replace('-', "_")));
    let io = |source| ManifestError::Io {
        path: component.clone(),
        source,
    };
    std::fs::create_dir_all(&components).map_err(io)?;
    if !component.exists() {
        std::fs::write(&component, component_starter(name)).map_err(io)?;
    }
    Ok(path)
}

fn create_new(path: &Path, text: &str) -> Result<PathBuf, ManifestError> {
    let io = |source| ManifestError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(text.as_bytes()).map_err(io)?;
            Ok(path.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(ManifestError::AlreadyExists { path: path.to_owned() })
        }
        Err(e) => Err(io(e)),
    }
}

/// Writes a starter manifest into `dir`, refusing to overwrite one.
pub fn init(dir: &Path, name: &str) -> Result<PathBuf, ManifestError> {
    names::validate(name)
        .map_err(|why| ManifestError::BadArgument(format!("invalid project name {name:?}: {why}. {}", names::HELP)))?;
    let path = dir.join(MANIFEST_FILE);
    let io = |source| ManifestError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(starter(name).as_bytes()).map_err(io)?;
            Ok(path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(ManifestError::AlreadyExists { path }),
        Err(e) => Err(io(e)),
    }
}
