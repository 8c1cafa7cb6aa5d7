//! Conflict explanations: pubgrub's derivation tree in words.
//!
//! pubgrub's reporter walks the tree and numbers causes it needs more than
//! once (`(1)`), so a shared cause is explained once and referred to after;
//! this module supplies the words: package names, requirements as the user
//! wrote them (a dependency's set keeps its requirement text, see
//! [`SemverSet`]), the project as "the project", and, for a name no
//! registry has, the registries searched.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pubgrub::{
    DefaultStringReporter, DerivationTree, Derived, External, Map, ReportFormatter, Reporter, Term, VersionSet,
};

use super::provider::Pkg;
use super::ranges::SemverSet;

/// The derivation pubgrub gives for a conflict.
pub type Tree = DerivationTree<Pkg, SemverSet, String>;

/// Words for one resolution's explanation.
pub struct Formatter {
    /// Names no registry had.
    pub missing: HashSet<String>,
    /// For each missing name, the registries searched, in order.
    pub searched: HashMap<String, Vec<String>>,
    /// Requirement texts met during resolution and their sets, by text.
    pub known: Vec<(SemverSet, String)>,
    /// name → what its registry offers ("main has 1.0.0, 0.9.0").
    pub available: HashMap<String, String>,
}

/// `pkg range` as a reader wants it: `a 1.2.0`, `b ^2`, `c` (any version).
fn term(f: &Formatter, p: &Pkg, set: &SemverSet) -> String {
    match p {
        Pkg::Root => "the project".to_owned(),
        Pkg::Named(n) => {
            if let Some(w) = set.written() {
                return format!("{n} {w}");
            }
            // A set the solver derived that equals a requirement someone
            // wrote is shown as they wrote it.
            if let Some((_, w)) = f.known.iter().find(|(k, _)| k == set) {
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
                (term(self, d1, s1), term(self, d2, s2))
            } else {
                (term(self, d2, s2), term(self, d1, s1))
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
            _ => {
                let what = if *set == SemverSet::full() {
                    format!("there is no usable version of {p}")
                } else {
                    format!(
                        "no usable version of {}",
                        term(self, p, set).replacen(' ', " matches ", 1)
                    )
                };
                match self.available.get(&p.to_string()) {
                    Some(a) => format!("{what} ({a})"),
                    None => what,
                }
            }
        }
    }
}

impl ReportFormatter<Pkg, SemverSet, String> for Formatter {
    type Output = String;

    fn format_external(&self, external: &External<Pkg, SemverSet, String>) -> String {
        match external {
            External::NotRoot(p, _) => format!("{p} is being resolved"),
            External::NoVersions(p, set) => self.no_versions(p, set),
            External::FromDependencyOf(p, ps, d, ds) => {
                let dep = if ds.is_empty() {
                    format!("{}, which no version can satisfy", term(self, d, ds))
                } else {
                    term(self, d, ds)
                };
                match p {
                    Pkg::Root => format!("the project depends on {dep}"),
                    _ => format!("{} depends on {dep}", term(self, p, ps)),
                }
            }
            External::Custom(p, ps, why) => format!("{} {why}", term(self, p, ps)),
        }
    }

    fn format_terms(&self, terms: &Map<Pkg, Term<SemverSet>>) -> String {
        let mut list: Vec<(&Pkg, &Term<SemverSet>)> = terms.iter().collect();
        list.sort_by(|a, b| a.0.cmp(b.0));
        // The project is always chosen: "the project and a 1.0 are
        // incompatible" says no more than "a 1.0 cannot be used".
        if list.len() > 1 {
            list.retain(|(p, t)| !(**p == Pkg::Root && matches!(t, Term::Positive(_))));
        }
        match list.as_slice() {
            [] => "the requirements cannot all be met".to_owned(),
            [(Pkg::Root, Term::Positive(_))] => "the project's requirements cannot all be met".to_owned(),
            [(p, Term::Positive(r))] => format!("{} cannot be used", term(self, p, r)),
            [(p, Term::Negative(r))] => format!("{} is required", term(self, p, r)),
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
                        Term::Positive(r) => term(self, p, r),
                        Term::Negative(r) => format!("not {}", term(self, p, r)),
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

/// Folds "there are no other versions of `a`" into what sits next to it,
/// as pubgrub's `collapse_no_versions` does ("a 1.0.0 depends on b ^2"
/// rather than a sentence about the versions of `a` that do not exist);
/// but it keeps the statement when it is the news: the package does not
/// exist at all, or no version meets the whole requirement next to it.
fn collapse(tree: &mut Tree, missing: &HashSet<String>) {
    let DerivationTree::Derived(d) = tree else { return };
    collapse(Arc::make_mut(&mut d.cause1), missing);
    collapse(Arc::make_mut(&mut d.cause2), missing);
    let (none, other) = match (&*d.cause1, &*d.cause2) {
        (DerivationTree::External(External::NoVersions(p, r)), other)
        | (other, DerivationTree::External(External::NoVersions(p, r))) => ((p, r), other),
        _ => return,
    };
    let (p, r) = none;
    if let Pkg::Named(n) = p
        && missing.contains(&**n)
    {
        return;
    }
    let merged = match other {
        DerivationTree::Derived(_) => other.clone(),
        DerivationTree::External(External::FromDependencyOf(p1, r1, p2, r2)) => {
            if p1 == p {
                DerivationTree::External(External::FromDependencyOf(
                    p1.clone(),
                    r1.union(r),
                    p2.clone(),
                    r2.clone(),
                ))
            } else if p2 == p && !r2.subset_of(r) {
                DerivationTree::External(External::FromDependencyOf(
                    p1.clone(),
                    r1.clone(),
                    p2.clone(),
                    r2.union(r),
                ))
            } else {
                return;
            }
        }
        _ => return,
    };
    *tree = merged;
}

/// The explanation of a failed resolution, one sentence a line.
pub fn explain(mut tree: Tree, formatter: &Formatter) -> String {
    collapse(&mut tree, &formatter.missing);
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
