//! Locks git could not merge, and locks that are not valid as a whole:
//! what `fm lock` can still take from them as preferences.

use std::path::Path;

use super::{LOCK_VERSION, Lockfile};

/// What can still be read of a lock that is not valid as a whole: each
/// `[[package]]` entry that is valid on its own (with the `[[registry]]`
/// entries that are), for `fm lock` to keep as preferences. Empty when the
/// text is not TOML at all.
pub fn salvage(path: &Path, text: &str) -> Lockfile {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return Lockfile::default();
    };
    let list = |key: &str| -> Vec<toml::Value> {
        table
            .get(key)
            .and_then(toml::Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let one = |registries: Vec<toml::Value>, packages: Vec<toml::Value>| -> Option<Lockfile> {
        let mut t = toml::Table::new();
        t.insert("version".into(), toml::Value::Integer(LOCK_VERSION as i64));
        t.insert("registry".into(), toml::Value::Array(registries));
        t.insert("package".into(), toml::Value::Array(packages));
        Lockfile::parse(path, &toml::to_string(&t).ok()?).ok()
    };
    let registries: Vec<toml::Value> = list("registry")
        .into_iter()
        .filter(|r| one(vec![r.clone()], Vec::new()).is_some())
        .collect();
    let mut out = one(registries.clone(), Vec::new()).unwrap_or_default();
    for p in list("package") {
        if let Some(l) = one(registries.clone(), vec![p]) {
            out.packages.extend(l.packages);
        }
    }
    out.packages.sort_by(|a, b| a.name.cmp(&b.name));
    out.packages.dedup_by(|a, b| a.name == b.name);
    out
}

/// Whether `text` holds git merge-conflict markers.
pub fn has_conflict_markers(text: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with("<<<<<<< ") || l == "<<<<<<<" || l.starts_with(">>>>>>> ") || l == ">>>>>>>")
}

/// Splits a conflicted lock into "ours" and "theirs" texts (diff3 bases are
/// dropped) and parses what it can of each. The result holds the packages of
/// both sides; resolution uses them as preferences.
pub fn read_conflicted(path: &Path, text: &str) -> Vec<Lockfile> {
    #[derive(PartialEq)]
    enum Side {
        Both,
        Ours,
        Base,
        Theirs,
    }
    let mut ours = String::new();
    let mut theirs = String::new();
    let mut side = Side::Both;
    for line in text.lines() {
        if line.starts_with("<<<<<<<") {
            side = Side::Ours;
        } else if line.starts_with("|||||||") {
            side = Side::Base;
        } else if line.starts_with("=======") && side != Side::Both {
            side = Side::Theirs;
        } else if line.starts_with(">>>>>>>") {
            side = Side::Both;
        } else {
            match side {
                Side::Both => {
                    ours.push_str(line);
                    ours.push('\n');
                    theirs.push_str(line);
                    theirs.push('\n');
                }
                Side::Ours => {
                    ours.push_str(line);
                    ours.push('\n');
                }
                Side::Theirs => {
                    theirs.push_str(line);
                    theirs.push('\n');
                }
                Side::Base => {}
            }
        }
    }
    [ours, theirs]
        .iter()
        .filter_map(|t| Lockfile::parse(path, t).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::tests::sample;

    #[test]
    fn splits_conflicts() {
        let a = sample().render();
        let b = a.replace("1.4.2", "1.5.0");
        let text = format!("{}<<<<<<< ours\n{}=======\n{}>>>>>>> theirs\n", "", a, b);
        let sides = read_conflicted(Path::new("fm.lock"), &text);
        assert_eq!(sides.len(), 2);
        assert_eq!(sides[1].packages[0].version.to_string(), "1.5.0");
    }
}
