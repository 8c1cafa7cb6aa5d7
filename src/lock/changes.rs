//! What a re-lock changed, one line a package (SPEC §3: `Added x 1.2.0`,
//! `Updated y 1.0.0 -> 1.1.0`, `Removed z 0.3.1`).

use super::Lockfile;

/// One line of what a re-lock changed. A move of a package that the new
/// lock forces (its old version no longer satisfies a requirement on it)
/// says which requirement, in `because`: `required by a 2.0.0: b ^2`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum Change {
    Added {
        name: String,
        version: String,
    },
    Updated {
        name: String,
        from: String,
        to: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        because: Option<String>,
    },
    /// To a lower version: never said as "Updated", a reviewer must see it.
    Downgraded {
        name: String,
        from: String,
        to: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        because: Option<String>,
    },
    Removed {
        name: String,
        version: String,
    },
}

impl Change {
    /// The verb and the rest of the line, as `fm lock` prints them.
    pub fn parts(&self) -> (&'static str, String) {
        let moved = |from: &str, to: &str, because: &Option<String>| match because {
            Some(b) => format!("{from} -> {to} ({b})"),
            None => format!("{from} -> {to}"),
        };
        match self {
            Change::Added { name, version } => ("Added", format!("{name} {version}")),
            Change::Updated {
                name,
                from,
                to,
                because,
            } => ("Updated", format!("{name} {}", moved(from, to, because))),
            Change::Downgraded {
                name,
                from,
                to,
                because,
            } => ("Downgraded", format!("{name} {}", moved(from, to, because))),
            Change::Removed { name, version } => ("Removed", format!("{name} {version}")),
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (verb, rest) = self.parts();
        write!(f, "{verb} {rest}")
    }
}

/// What changed from `old` (if any) to `new`, one entry a package, by name.
pub fn changes(old: Option<&Lockfile>, new: &Lockfile) -> Vec<Change> {
    let before = old.map(Lockfile::by_name).unwrap_or_default();
    let after = new.by_name();
    let mut out = Vec::new();
    let names: std::collections::BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    for name in names {
        match (before.get(name), after.get(name)) {
            (None, Some(p)) => out.push(Change::Added {
                name: name.to_owned(),
                version: p.version.to_string(),
            }),
            (Some(p), None) => out.push(Change::Removed {
                name: name.to_owned(),
                version: p.version.to_string(),
            }),
            (Some(a), Some(b)) if a.version != b.version => {
                let (name, from, to) = (name.to_owned(), a.version.to_string(), b.version.to_string());
                let because = forced_by(new, &name, &a.version);
                out.push(if b.version < a.version {
                    Change::Downgraded {
                        name,
                        from,
                        to,
                        because,
                    }
                } else {
                    Change::Updated {
                        name,
                        from,
                        to,
                        because,
                    }
                });
            }
            _ => {}
        }
    }
    out
}

/// The first requirement in `new` on `name` that `old_version` does not
/// satisfy (the project's first, then the packages' by name), as
/// `required by a 2.0.0: b ^2` or `required by fm.toml: b ^2`.
fn forced_by(new: &Lockfile, name: &str, old_version: &semver::Version) -> Option<String> {
    let excludes = |req: &str| {
        crate::req::Requirement::parse(req)
            .ok()
            .is_some_and(|r| !r.matches(old_version))
    };
    for r in &new.root {
        let Some((n, rest)) = r.split_once(' ') else { continue };
        // `name req (registry)`: the registry part is not a requirement.
        let req = match rest.rfind(" (") {
            Some(i) if rest.ends_with(')') => &rest[..i],
            _ => rest,
        };
        if n == name && excludes(req) {
            return Some(format!("required by fm.toml: {name} {req}"));
        }
    }
    for p in &new.packages {
        for d in &p.dependencies {
            if d.name() == name && excludes(d.req()) {
                return Some(format!("required by {} {}: {d}", p.name, p.version));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::tests::sample;

    #[test]
    fn a_lower_version_is_downgraded_and_a_forced_move_says_why() {
        let mut old = sample();
        old.root = vec!["summarizer ^1.2 (company)".into()];
        let mut new = old.clone();
        new.root = vec!["summarizer <1.4 (company)".into()];
        new.packages[0].version = "1.3.0".parse().unwrap();
        let c = changes(Some(&old), &new);
        assert_eq!(
            c.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["Downgraded summarizer 1.4.2 -> 1.3.0 (required by fm.toml: summarizer <1.4)"]
        );
        // A move nothing forced (an upgrade asked for) has no reason.
        let c = changes(Some(&new), &old);
        assert_eq!(c[0].to_string(), "Updated summarizer 1.3.0 -> 1.4.2");
    }
}
