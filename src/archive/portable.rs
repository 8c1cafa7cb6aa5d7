//! Entry names every supported OS can create: the rules that make a
//! published version installable on Linux, macOS and Windows. Publish and
//! install run the same checks, so a version no install can unpack is never
//! published (it would be burnt: versions are immutable).
//!
//! Refused, with the reason:
//! - a path over [`MAX_PATH_BYTES`] or a component over
//!   [`MAX_COMPONENT_BYTES`] (Linux and macOS cap a component at 255 bytes,
//!   Windows a whole path at 260 characters, and the install folder comes
//!   first);
//! - Windows device names as a component's stem (`CON`, `aux.py`, `COM1`,
//!   `lpt9.txt`, any case, any extension), trailing dots or spaces, and the
//!   characters `< > " | ? *`;
//! - `.git` and `.fm` components (never part of a package; an installed
//!   `.fm/` or `.git/` would be taken for fm's or git's own);
//! - two entries that are the same path once case is folded and Unicode is
//!   normalized (NFC), as Windows and macOS see them;
//! - a path that is a file in one entry and a folder in another (`x` and
//!   `x/y`, or `x` and `x/`).

use std::collections::HashMap;

/// Longest entry path, in bytes.
pub const MAX_PATH_BYTES: usize = 200;
/// Longest path component, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 100;

/// Checks one entry path (already `/`-separated and free of `..`, empty
/// components, backslashes, drive letters, `:` and control characters:
/// see [`super::safe_entry_path`]).
pub fn check_path(path: &str) -> Result<(), String> {
    for part in path.split('/') {
        if part.len() > MAX_COMPONENT_BYTES {
            return Err(format!(
                "a path component is {} bytes long (at most {MAX_COMPONENT_BYTES})",
                part.len()
            ));
        }
        if part.ends_with('.') || part.ends_with(' ') {
            return Err(format!(
                "the component {part:?} ends with a dot or a space (Windows drops them, so two entries could meet)"
            ));
        }
        if let Some(c) = part.chars().find(|c| matches!(c, '<' | '>' | '"' | '|' | '?' | '*')) {
            return Err(format!("the character {c:?} cannot be in a Windows file name"));
        }
        let stem = part.split('.').next().unwrap_or(part).trim_end();
        if crate::names::is_windows_device(stem) {
            return Err(format!(
                "{part:?} is a reserved device name on Windows (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with any extension)"
            ));
        }
        let folded = part.to_lowercase();
        if folded == ".git" || folded == ".fm" {
            return Err(format!("a {part}/ folder is never part of a package"));
        }
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "its path is {} bytes long (at most {MAX_PATH_BYTES}, so it fits under Windows' 260-character limit once installed)",
            path.len()
        ));
    }
    Ok(())
}

/// The key two paths share when Windows or macOS would see one file.
fn fold(path: &str) -> String {
    icu_normalizer::ComposingNormalizerBorrowed::new_nfc()
        .normalize(path)
        .to_lowercase()
}

/// Checks a whole archive's paths for case, normalization and file/folder
/// collisions. `entries` are (path without a trailing `/`, is a folder).
/// The error names the entry and says why.
pub fn check_collisions<'a>(entries: impl IntoIterator<Item = (&'a str, bool)>) -> Result<(), (String, String)> {
    let mut files: HashMap<String, &str> = HashMap::new();
    let mut dirs: HashMap<String, &str> = HashMap::new();
    for (path, is_dir) in entries {
        let key = fold(path);
        if is_dir {
            dirs.entry(key).or_insert(path);
        } else if let Some(other) = files.insert(key, path) {
            let why = if other == path {
                "duplicate entry".to_owned()
            } else {
                format!(
                    "duplicate entry: {other:?} and {path:?} are one file on Windows and macOS (case or Unicode normalization differs)"
                )
            };
            return Err((path.to_owned(), why));
        }
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let parent = &path[..at + i];
            dirs.entry(fold(parent)).or_insert(parent);
            at += i + 1;
        }
    }
    let mut clashes: Vec<(&str, &str)> = files
        .iter()
        .filter_map(|(k, f)| dirs.get(k).map(|d| (*f, *d)))
        .collect();
    clashes.sort();
    if let Some((file, dir)) = clashes.first() {
        return Err((
            (*file).to_owned(),
            format!("file/folder collision: {file:?} is a file, and {dir:?} is a folder in the same archive"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_paths() {
        for ok in [
            "a.py",
            "components/x.py",
            "con_fig.py",
            "console.py",
            "lpt10.txt",
            ".github/ci.yml",
        ] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(101);
        let deep = ["abcdefghij"; 20].join("/");
        for bad in [
            "CON",
            "aux.py",
            "x/Com1.tar.gz",
            "lpt9",
            "nul .txt",
            "a./b",
            "b ",
            "q?.py",
            "a|b",
            ".git/config",
            "x/.FM/state.toml",
            &long,
            &deep,
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn collisions() {
        assert!(check_collisions([("a/b", false), ("a/c", false), ("a", true)]).is_ok());
        for bad in [
            vec![("x", false), ("x", true)],
            vec![("x", false), ("x/y", false)],
            vec![("x/y", false), ("X", false)],
            vec![("A.py", false), ("a.py", false)],
            vec![("caf\u{e9}.py", false), ("cafe\u{301}.py", false)],
        ] {
            assert!(check_collisions(bad.clone()).is_err(), "{bad:?}");
        }
    }
}
