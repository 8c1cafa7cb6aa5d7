//! Freshness (SPEC §3): whether fm.lock still matches fm.toml, decided
//! offline from what the lock records (`[root]`, `[[registry]]`), without
//! re-resolving; and whether a hand-edited lock still satisfies it.

use super::Project;
use crate::lock::{LockedRegistry, Lockfile};
use crate::resolve::locked_registry;

/// Whether `lock` still matches the project, decided offline from `[root]`
/// and `[[registry]]`: `Ok(())` fresh, `Err(reasons)` stale, one line each.
pub(super) fn check_fresh(project: &Project, lock: &Lockfile) -> Result<(), Vec<String>> {
    let manifest = project.manifest();
    let mut reasons = Vec::new();
    // Sets: a lock may record 100 000 roots; comparing lists would be
    // quadratic.
    let want: std::collections::BTreeSet<String> = manifest.dependencies.values().map(ToString::to_string).collect();
    let have: std::collections::BTreeSet<String> = lock.root.iter().cloned().collect();
    for w in &want {
        if !have.contains(w) {
            reasons.push(format!("fm.toml requires {w}, which fm.lock does not record"));
        }
    }
    for h in &have {
        if !want.contains(h) {
            reasons.push(format!("fm.lock records {h}, which fm.toml does not require"));
        }
    }
    match project.registry_decls() {
        Ok(decls) => {
            let want: Vec<LockedRegistry> = decls.iter().map(locked_registry).collect();
            if want != lock.registries {
                let show = |r: &[LockedRegistry]| {
                    if r.is_empty() {
                        "none".to_owned()
                    } else {
                        let more = match r.len().saturating_sub(MAX_REASONS) {
                            0 => String::new(),
                            n => format!(" and {n} more"),
                        };
                        r.iter()
                            .take(MAX_REASONS)
                            .map(|r| {
                                let mut s = format!("{} {} (priority {}", r.name, r.url, r.priority);
                                if r.explicit {
                                    s.push_str(", explicit");
                                }
                                s.push(')');
                                s
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                            + &more
                    }
                };
                reasons.push(format!(
                    "the registries changed: fm.lock has {}; the project now uses {}",
                    show(&lock.registries),
                    show(&want)
                ));
            }
        }
        Err(e) => reasons.push(format!("the project's registries cannot be read: {e}")),
    }
    if let Ok(decls) = project.registry_decls() {
        reasons.extend(crate::tlog::client::stale_pins(&decls, lock));
    }
    // A hand-edited lock may no longer satisfy what it records.
    let locked = lock.by_name();
    for d in manifest.dependencies.values() {
        match locked.get(d.name.as_str()).copied() {
            None => {
                if have.contains(&d.to_string()) {
                    reasons.push(format!("fm.lock has no package {}", d.name));
                }
            }
            Some(p) if !d.req.matches(&p.version) => {
                reasons.push(format!("fm.lock's {} {} does not satisfy {}", p.name, p.version, d.req));
            }
            Some(_) => {}
        }
    }
    if reasons.len() > MAX_REASONS {
        // Short whatever the input: the first few, then a count.
        let more = reasons.len() - MAX_REASONS;
        reasons.truncate(MAX_REASONS);
        reasons.push(format!("… and {more} more differences"));
    }
    if reasons.is_empty() { Ok(()) } else { Err(reasons) }
}

/// Most reasons [`check_fresh`] lists (and registries it shows), so an
/// error stays a few lines long whatever the lock holds.
const MAX_REASONS: usize = 10;
