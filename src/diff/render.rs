//! The renderers of a [`LockDiff`]: the text report, the Markdown table
//! for a pull-request comment, and the line-per-package summary git
//! compares (`fm diff --textconv`). Every renderer shows the groups in the
//! order the module doc of [`crate::diff`] gives, the two alarms first.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Edge, Labels, LockDiff, Source};
use crate::lock::{LockedPackage, Lockfile};

const CAUTION: &str = "A published version's archive changed: it was republished or tampered with. \
                       Do not accept this lock until you know why.";

const KEY_CAUTION: &str = "A log's key is fixed for its lifetime: a new key (or none) means a new, unrelated history. \
Confirm the rotation with the registry's operator before accepting this lock.";
const URL_CAUTION: &str = "A registry's URL changed: every package from it would be fetched from the new URL \
                           (and fm sync refuses the lock until fm.toml declares it). \
                           Do not accept this lock until you know why.";

impl LockDiff {
    /// The human report; ANSI colors when `color`.
    pub fn render_text(&self, labels: &Labels, color: bool) -> String {
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_owned()
            }
        };
        let mut out = String::new();
        if self.is_empty() {
            let _ = writeln!(out, "No changes between {} and {}.", labels.old, labels.new);
            return out;
        }
        let _ = writeln!(out, "{}", paint("1", &format!("{} -> {}", labels.old, labels.new)));
        if !self.digest_changed.is_empty() {
            let n = self.digest_changed.len();
            let head = format!(
                "!!! SAME VERSION, DIFFERENT SHA-256: {n} package{} !!!",
                if n == 1 { "" } else { "s" }
            );
            let _ = writeln!(out, "\n{}", paint("1;31", &head));
            let _ = writeln!(out, "    {CAUTION}");
            for c in &self.digest_changed {
                let _ = writeln!(
                    out,
                    "  {} {} {} ({})",
                    paint("1;31", "!"),
                    c.name,
                    c.version,
                    c.registry
                );
                let _ = writeln!(out, "      was sha256 {} ({} bytes)", c.old_sha256, c.old_size);
                let _ = writeln!(out, "      now sha256 {} ({} bytes)", c.new_sha256, c.new_size);
            }
        }
        if !self.registry_url_changed.is_empty() {
            let n = self.registry_url_changed.len();
            let head = format!(
                "!!! REGISTRY URL CHANGED: {n} registr{} !!!",
                if n == 1 { "y" } else { "ies" }
            );
            let _ = writeln!(out, "\n{}", paint("1;31", &head));
            let _ = writeln!(out, "    {URL_CAUTION}");
            for c in &self.registry_url_changed {
                let _ = writeln!(out, "  {} {}", paint("1;31", "!"), c.name);
                let _ = writeln!(out, "      was {}", c.old_url);
                let _ = writeln!(out, "      now {}", c.new_url);
            }
        }
        if !self.log_key_changed.is_empty() {
            let n = self.log_key_changed.len();
            let head = format!(
                "!!! TRANSPARENCY LOG KEY CHANGED: {n} registr{} !!!",
                if n == 1 { "y" } else { "ies" }
            );
            let _ = writeln!(out, "\n{}", paint("1;31", &head));
            let _ = writeln!(out, "    {KEY_CAUTION}");
            for c in &self.log_key_changed {
                let _ = writeln!(out, "  {} {}", paint("1;31", "!"), c.name);
                let _ = writeln!(out, "      was {}", c.old_key);
                let _ = writeln!(out, "      now {}", c.new_key.as_deref().unwrap_or("no log"));
            }
        }
        let mut section = |title: String, lines: Vec<String>| {
            if !lines.is_empty() {
                let _ = writeln!(out, "\n{}", paint("1", &title));
                for l in lines {
                    let _ = writeln!(out, "  {l}");
                }
            }
        };
        section(
            format!("Added: {}", self.added.len()),
            self.added
                .iter()
                .map(|p| format!("{} {} {} ({})", paint("32", "+"), p.name, p.version, p.registry))
                .collect(),
        );
        section(
            format!("Removed: {}", self.removed.len()),
            self.removed
                .iter()
                .map(|p| format!("{} {} {} ({})", paint("31", "-"), p.name, p.version, p.registry))
                .collect(),
        );
        section(
            format!("Upgraded: {}", self.upgraded.len()),
            self.upgraded
                .iter()
                .map(|c| format!("  {} {} -> {} ({})", c.name, c.from, c.to, c.registry))
                .collect(),
        );
        section(
            format!("Downgraded: {} (check that this is intended)", self.downgraded.len()),
            self.downgraded
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {} -> {} ({})",
                        paint("1;33", "!"),
                        c.name,
                        c.from,
                        c.to,
                        c.registry
                    )
                })
                .collect(),
        );
        let src = |s: &Source| match &s.url {
            Some(u) => format!("{} <{u}>", s.name),
            None => s.name.clone(),
        };
        section(
            format!(
                "Registry changed: {} (check the new source)",
                self.registry_changed.len()
            ),
            self.registry_changed
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {}: {} -> {}",
                        paint("1;33", "!"),
                        c.name,
                        c.version,
                        src(&c.from),
                        src(&c.to)
                    )
                })
                .collect(),
        );
        let edge = |e: &Edge| format!("{} -> {} {}", e.from, e.to, e.req).trim_end().to_owned();
        section(
            format!(
                "Dependencies: +{} -{}",
                self.edges_added.len(),
                self.edges_removed.len()
            ),
            self.edges_added
                .iter()
                .map(|e| format!("{} {}", paint("32", "+"), edge(e)))
                .chain(
                    self.edges_removed
                        .iter()
                        .map(|e| format!("{} {}", paint("31", "-"), edge(e))),
                )
                .collect(),
        );
        section(
            format!(
                "Requirements: +{} -{}",
                self.requirements_added.len(),
                self.requirements_removed.len()
            ),
            self.requirements_added
                .iter()
                .map(|r| format!("{} {r}", paint("32", "+")))
                .chain(
                    self.requirements_removed
                        .iter()
                        .map(|r| format!("{} {r}", paint("31", "-"))),
                )
                .collect(),
        );
        let summary: Vec<String> = self.counts().iter().map(|(l, n)| format!("{n} {l}")).collect();
        let _ = writeln!(out, "\nSummary: {}", summary.join(", "));
        out
    }

    /// A compact Markdown table for a pull-request comment. Starts with the
    /// marker `<!-- fm-diff -->` so a CI job can find and update its comment.
    pub fn render_markdown(&self, labels: &Labels) -> String {
        let mut out = String::from("<!-- fm-diff -->\n");
        let footer = format!(
            "\n<sub>`fm diff` from `{}` to `{}`</sub>\n",
            cell(&labels.old),
            cell(&labels.new)
        );
        if self.is_empty() {
            let _ = writeln!(out, "#### fm.lock: no changes");
            out.push_str(&footer);
            return out;
        }
        let summary: Vec<String> = self.counts().iter().map(|(l, n)| format!("{n} {l}")).collect();
        let _ = writeln!(out, "#### fm.lock: {}", summary.join(", "));
        if !self.digest_changed.is_empty() {
            let n = self.digest_changed.len();
            let _ = writeln!(out);
            let _ = writeln!(out, "> [!CAUTION]");
            let _ = writeln!(
                out,
                "> **{n} package{} changed SHA-256 without changing version.** {CAUTION}",
                if n == 1 { "" } else { "s" }
            );
        }
        if !self.registry_url_changed.is_empty() {
            let names: Vec<String> = self
                .registry_url_changed
                .iter()
                .map(|c| format!("`{}`", cell(&c.name)))
                .collect();
            let _ = writeln!(out);
            let _ = writeln!(out, "> [!CAUTION]");
            let _ = writeln!(out, "> **Registry URL changed: {}.** {URL_CAUTION}", names.join(", "));
        }
        if !self.log_key_changed.is_empty() {
            let names: Vec<String> = self
                .log_key_changed
                .iter()
                .map(|c| format!("`{}`", cell(&c.name)))
                .collect();
            let _ = writeln!(out);
            let _ = writeln!(out, "> [!CAUTION]");
            let _ = writeln!(
                out,
                "> **Transparency log key changed: {}.** {KEY_CAUTION}",
                names.join(", ")
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "| Change | Package | Old | New |");
        let _ = writeln!(out, "|---|---|---|---|");
        let mut row = |change: &str, package: &str, old: String, new: String| {
            let package = if package.is_empty() {
                String::new()
            } else {
                format!("`{package}`")
            };
            let _ = writeln!(out, "| {change} | {package} | {} | {} |", cell(&old), cell(&new));
        };
        let short = |h: &str| h.get(..12).unwrap_or(h).to_owned();
        for c in &self.digest_changed {
            row(
                ":rotating_light: **same version, new digest**",
                &c.name,
                format!("{} `{}`", c.version, short(&c.old_sha256)),
                format!("{} `{}`", c.version, short(&c.new_sha256)),
            );
        }
        for c in &self.registry_url_changed {
            row(
                ":rotating_light: **registry URL changed**",
                &c.name,
                format!("`{}`", cell(&c.old_url)),
                format!("`{}`", cell(&c.new_url)),
            );
        }
        for p in &self.added {
            row(
                "added",
                &p.name,
                String::new(),
                format!("{} ({})", p.version, p.registry),
            );
        }
        for p in &self.removed {
            row(
                "removed",
                &p.name,
                format!("{} ({})", p.version, p.registry),
                String::new(),
            );
        }
        for c in &self.upgraded {
            row("upgraded", &c.name, c.from.clone(), c.to.clone());
        }
        for c in &self.downgraded {
            row(":warning: **downgraded**", &c.name, c.from.clone(), c.to.clone());
        }
        let src = |s: &Source| match &s.url {
            Some(u) => format!("{} `{u}`", s.name),
            None => s.name.clone(),
        };
        for c in &self.registry_changed {
            row(":warning: **registry changed**", &c.name, src(&c.from), src(&c.to));
        }
        let edge = |e: &Edge| format!("`{}`", format!("{} {}", e.to, e.req).trim_end());
        for e in &self.edges_added {
            row("dependency added", &e.from, String::new(), edge(e));
        }
        for e in &self.edges_removed {
            row("dependency removed", &e.from, edge(e), String::new());
        }
        for r in &self.requirements_added {
            row("requirement added", "", String::new(), format!("`{r}`"));
        }
        for r in &self.requirements_removed {
            row("requirement removed", "", format!("`{r}`"), String::new());
        }
        out.push_str(&footer);
        out
    }
}

/// Escapes what would break a Markdown table cell.
pub(super) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// One lock as a line-oriented summary for `git diff` (the textconv
/// driver): one line a requirement, registry and package, and one line a
/// dependency edge, so that a change shows as a few readable `-`/`+` lines
/// naming the package, and a changed digest is visible as such.
pub fn summarize(lock: &Lockfile) -> String {
    let mut out = String::new();
    // No counts in the header: they would change with every added package.
    let _ = writeln!(out, "# fm.lock as summarized by `fm diff --textconv`");
    let mut root = lock.root.clone();
    root.sort();
    for r in &root {
        let _ = writeln!(out, "requires {r}");
    }
    for r in &lock.registries {
        let _ = write!(out, "registry {} {}", r.name, r.url);
        if r.priority != crate::location::DEFAULT_PRIORITY {
            let _ = write!(out, " priority {}", r.priority);
        }
        if r.explicit {
            let _ = write!(out, " explicit");
        }
        let _ = writeln!(out);
    }
    let packages: BTreeMap<&str, &LockedPackage> = lock.by_name();
    for p in packages.values() {
        let _ = writeln!(
            out,
            "{} {} from {} sha256 {} ({} bytes)",
            p.name, p.version, p.registry, p.sha256, p.size
        );
        let mut deps = p.dependencies.clone();
        deps.sort();
        for d in deps {
            let _ = writeln!(out, "    {} -> {d}", p.name);
        }
    }
    out
}
