//! Conflict explanations: pubgrub's derivation tree in words.
//!
//! pubgrub's reporter walks the tree and numbers causes it needs more than
//! once (`(1)`), so a shared cause is explained once and referred to after;
//! this module supplies the words: package names, requirements as the user
//! wrote them (a dependency's set keeps its requirement text, see
//! [`SemverSet`]), the project as "the project", and, for a name no
//! registry has, the registries searched.

use std::collections::{HashMap, HashSet};

use pubgrub::{
    DefaultStringReporter, DerivationTree, Derived, External, Map, ReportFormatter, Reporter, Term, VersionSet,
};

use super::provider::Pkg;
use super::ranges::SemverSet;

type Tree = DerivationTree<Pkg, SemverSet, String>;

/// Words for one resolution's explanation.
pub struct Formatter {
    /// Names no registry had.
    pub missing: HashSet<String>,
    /// For each missing name, the registries searched, in order.
    pub searched: HashMap<String, Vec<String>>,
}

/// `pkg range` as a reader wants it: `a 1.2.0`, `b ^2`, `c` (any version).
fn term(p: &Pkg, set: &SemverSet) -> String {
    match p {
        Pkg::Root => "the project".to_owned(),
        Pkg::Named(n) => {
            if let Some(w) = set.written() {
                return format!("{n} {w}");
            }
            if set.pre.is_empty()
                && let Some(v) = set.release.as_singleton()
            {
                return format!("{n} {v}");
            }
            if set.release.as_singleton().is_none()
                && let Some(v) = set.pre.as_singleton()
                && set.release.is_empty()
            {
                return format!("{n} {v}");
            }
            if *set == SemverSet::full() {
                return n.to_string();
            }
            format!("{n} {set}")
        }
    }
}

impl Formatter {
    /// Two causes in one phrase; two requirements of the project are
    /// joined: "the project depends on a ^1 and b ^2".
    fn pair(&self, e1: &External<Pkg, SemverSet, String>, e2: &External<Pkg, SemverSet, String>) -> String {
        if let (External::FromDependencyOf(Pkg::Root, _, d1, s1), External::FromDependencyOf(Pkg::Root, _, d2, s2)) =
            (e1, e2)
        {
            let (a, b) = if d1 <= d2 {
                (term(d1, s1), term(d2, s2))
            } else {
                (term(d2, s2), term(d1, s1))
            };
            return format!("the project depends on {a} and {b}");
        }
        format!("{} and {}", self.format_external(e1), self.format_external(e2))
    }

    fn no_versions(&self, p: &Pkg, set: &SemverSet) -> String {
        match p {
            Pkg::Named(n) if self.missing.contains(&**n) => {
                let searched = self.searched.get(&**n).cloned().unwrap_or_default();
                if searched.is_empty() {
                    format!("no registry may serve {n} (every registry is explicit and none is named for it)")
                } else {
                    format!(
                        "no registry has a package named {n} (searched: {})",
                        searched.join(", ")
                    )
                }
            }
            _ if *set == SemverSet::full() => format!("there is no usable version of {p}"),
            _ => format!("no usable version of {p} matches {set}"),
        }
    }
}

impl ReportFormatter<Pkg, SemverSet, String> for Formatter {
    type Output = String;

    fn format_external(&self, external: &External<Pkg, SemverSet, String>) -> String {
        match external {
            External::NotRoot(p, _) => format!("{p} is being resolved"),
            External::NoVersions(p, set) => self.no_versions(p, set),
            External::FromDependencyOf(p, ps, d, ds) => match p {
                Pkg::Root => format!("the project depends on {}", term(d, ds)),
                _ => format!("{} depends on {}", term(p, ps), term(d, ds)),
            },
            External::Custom(p, ps, why) => format!("{} {why}", term(p, ps)),
        }
    }

    fn format_terms(&self, terms: &Map<Pkg, Term<SemverSet>>) -> String {
        let mut list: Vec<(&Pkg, &Term<SemverSet>)> = terms.iter().collect();
        list.sort_by(|a, b| a.0.cmp(b.0));
        match list.as_slice() {
            [] => "the requirements cannot all be met".to_owned(),
            [(Pkg::Root, Term::Positive(_))] => "the project's requirements cannot all be met".to_owned(),
            [(p, Term::Positive(r))] => format!("{} cannot be used", term(p, r)),
            [(p, Term::Negative(r))] => format!("{} is required", term(p, r)),
            [(p1, Term::Positive(r1)), (p2, Term::Negative(r2))] => self.format_external(&External::FromDependencyOf(
                (*p1).clone(),
                r1.clone(),
                (*p2).clone(),
                r2.clone(),
            )),
            [(p1, Term::Negative(r1)), (p2, Term::Positive(r2))] => self.format_external(&External::FromDependencyOf(
                (*p2).clone(),
                r2.clone(),
                (*p1).clone(),
                r1.clone(),
            )),
            slice => {
                let parts: Vec<String> = slice
                    .iter()
                    .map(|(p, t)| match t {
                        Term::Positive(r) => term(p, r),
                        Term::Negative(r) => format!("not {}", term(p, r)),
                    })
                    .collect();
                format!("{} are incompatible", parts.join(", "))
            }
        }
    }

    fn explain_both_external(
        &self,
        e1: &External<Pkg, SemverSet, String>,
        e2: &External<Pkg, SemverSet, String>,
        current: &Map<Pkg, Term<SemverSet>>,
    ) -> String {
        format!("Because {}, {}.", self.pair(e1, e2), self.format_terms(current))
    }

    fn explain_both_ref(
        &self,
        id1: usize,
        d1: &Derived<Pkg, SemverSet, String>,
        id2: usize,
        d2: &Derived<Pkg, SemverSet, String>,
        current: &Map<Pkg, Term<SemverSet>>,
    ) -> String {
        format!(
            "Because {} ({id1}) and {} ({id2}), {}.",
            self.format_terms(&d1.terms),
            self.format_terms(&d2.terms),
            self.format_terms(current)
        )
    }

    fn explain_ref_and_external(
        &self,
        id: usize,
        d: &Derived<Pkg, SemverSet, String>,
        e: &External<Pkg, SemverSet, String>,
        current: &Map<Pkg, Term<SemverSet>>,
    ) -> String {
        format!(
            "Because {} ({id}) and {}, {}.",
            self.format_terms(&d.terms),
            self.format_external(e),
            self.format_terms(current)
        )
    }

    fn and_explain_external(
        &self,
        e: &External<Pkg, SemverSet, String>,
        current: &Map<Pkg, Term<SemverSet>>,
    ) -> String {
        format!(
            "And because {}, {}.",
            self.format_external(e),
            self.format_terms(current)
        )
    }

    fn and_explain_ref(
        &self,
        id: usize,
        d: &Derived<Pkg, SemverSet, String>,
        current: &Map<Pkg, Term<SemverSet>>,
    ) -> String {
        format!(
            "And because {} ({id}), {}.",
            self.format_terms(&d.terms),
            self.format_terms(current)
        )
    }

    fn and_explain_prior_and_external(
        &self,
        prior: &External<Pkg, SemverSet, String>,
        e: &External<Pkg, SemverSet, String>,
        current: &Map<Pkg, Term<SemverSet>>,
    ) -> String {
        format!("And because {}, {}.", self.pair(prior, e), self.format_terms(current))
    }
}

/// The explanation of a failed resolution, one sentence a line.
pub fn explain(mut tree: Tree, formatter: &Formatter) -> String {
    tree.collapse_no_versions();
    let text = DefaultStringReporter::report_with_formatter(&tree, formatter);
    // A single external cause is a bare phrase: make it a sentence.
    let mut text = text.trim().to_owned();
    if let Some(first) = text.get(..1) {
        let upper = first.to_uppercase();
        text.replace_range(..1, &upper);
    }
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}
