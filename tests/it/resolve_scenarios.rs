//! Resolver scenarios (pubgrub's classic cases, conflict reports, missing
//! packages, pre-releases) run in-process: the library's pure
//! [`fm::resolve::resolve`] against an in-memory registry named `main`, with
//! no archive packed and no binary started. A conflict is rendered by miette
//! with the options the CLI uses (no color, ASCII, 100 columns), so the
//! text asserted is the text a user reads; `tests/it/lock.rs` keeps one
//! conflict end to end through `fm lock`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use fm::lock::Lockfile;
use fm::registry::{PackageDocument, Registry, RegistryError};
use fm::resolve::{Preferences, RegistryEntry, RegistrySet, ResolveError, resolve};
use semver::Version;

use crate::synthetic::{MemoryRegistry, SynthVersion, Universe};

type Pkgs<'a> = &'a [(&'a str, &'a str, &'a [(&'a str, &'a str)])];

/// A universe holding `pkgs`, and a project depending on `deps`.
fn universe(pkgs: Pkgs<'_>, deps: &[(&str, &str)]) -> Universe {
    let mut packages: BTreeMap<String, Vec<SynthVersion>> = BTreeMap::new();
    for (n, v, d) in pkgs {
        packages.entry((*n).to_owned()).or_default().push(SynthVersion {
            version: Version::parse(v).unwrap(),
            dependencies: d.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect(),
            yanked: false,
        });
    }
    Universe {
        packages,
        root: deps.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect(),
    }
}

/// One registry, `main`, serving the universe.
fn main_registry(u: &Universe) -> RegistrySet {
    RegistrySet {
        entries: vec![MemoryRegistry::new("main", &u.packages, false).entry(fm::location::DEFAULT_PRIORITY, false)],
    }
}

fn lock(u: &Universe) -> Result<Lockfile, ResolveError> {
    resolve(&u.dependencies(), &main_registry(u), &Preferences::default())
}

/// The locked `name version` pairs.
fn locked(lock: &Lockfile) -> String {
    lock.packages
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `fm lock` reports as changed against no lock, one line each.
fn added(lock: &Lockfile) -> String {
    fm::lock::changes(None, lock)
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A diagnostic as the CLI prints it (`src/cli/mod.rs`'s miette options),
/// without trailing spaces.
fn render(e: &dyn miette::Diagnostic) -> String {
    struct Shown<'a>(&'a dyn miette::Diagnostic, miette::MietteHandler);
    impl fmt::Debug for Shown<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            miette::ReportHandler::debug(&self.1, self.0, f)
        }
    }
    let handler = miette::MietteHandlerOpts::new()
        .color(false)
        .unicode(false)
        .terminal_links(false)
        .width(100)
        .build();
    format!("{:?}", Shown(e, handler))
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The conflict `u` must end in, rendered.
fn conflict(u: &Universe) -> String {
    match lock(u) {
        Err(e @ ResolveError::Conflict { .. }) => render(&e),
        Err(e) => panic!("expected a conflict, got {e}"),
        Ok(l) => panic!("expected a conflict, got a solution:\n{}", l.render()),
    }
}

#[test]
fn no_conflict() {
    let u = universe(
        &[
            ("foo", "1.0.0", &[("bar", "^1.0.0")]),
            ("bar", "1.0.0", &[]),
            ("bar", "2.0.0", &[]),
        ],
        &[("foo", "^1.0.0")],
    );
    let lock = lock(&u).unwrap();
    insta::assert_snapshot!(added(&lock), @r"
    Added bar 1.0.0
    Added foo 1.0.0
    ");
    assert_eq!(lock.packages.len(), 2);
    insta::assert_snapshot!(locked(&lock), @r"
    bar 1.0.0
    foo 1.0.0
    ");
}

#[test]
fn avoiding_conflict_during_decision_making() {
    let u = universe(
        &[
            ("foo", "1.0.0", &[]),
            ("foo", "1.1.0", &[("bar", "^2.0.0")]),
            ("bar", "1.0.0", &[]),
            ("bar", "1.1.0", &[]),
            ("bar", "2.0.0", &[]),
        ],
        &[("foo", "^1.0.0"), ("bar", "^1.0.0")],
    );
    insta::assert_snapshot!(locked(&lock(&u).unwrap()), @r"
    bar 1.1.0
    foo 1.0.0
    ");
}

#[test]
fn conflict_resolution() {
    let u = universe(
        &[
            ("foo", "1.0.0", &[]),
            ("foo", "2.0.0", &[("bar", "^1.0.0")]),
            ("bar", "1.0.0", &[("foo", "^1.0.0")]),
        ],
        &[("foo", ">=1.0.0")],
    );
    insta::assert_snapshot!(locked(&lock(&u).unwrap()), @"foo 1.0.0");
}

#[test]
fn conflict_resolution_with_a_partial_satisfier() {
    let u = universe(
        &[
            ("foo", "1.0.0", &[]),
            ("foo", "1.1.0", &[("left", "^1.0.0"), ("right", "^1.0.0")]),
            ("left", "1.0.0", &[("shared", ">=1.0.0")]),
            ("right", "1.0.0", &[("shared", "<2.0.0")]),
            ("shared", "2.0.0", &[]),
            ("shared", "1.0.0", &[("target", "^1.0.0")]),
            ("target", "2.0.0", &[]),
            ("target", "1.0.0", &[]),
        ],
        &[("foo", "^1.0.0"), ("target", "^2.0.0")],
    );
    insta::assert_snapshot!(locked(&lock(&u).unwrap()), @r"
    foo 1.0.0
    target 2.0.0
    ");
}

#[test]
fn linear_error_reporting() {
    let u = universe(
        &[
            ("foo", "1.0.0", &[("bar", "^2.0.0")]),
            ("bar", "2.0.0", &[("baz", "^3.0.0")]),
            ("baz", "1.0.0", &[]),
            ("baz", "3.0.0", &[]),
        ],
        &[("foo", "^1.0.0"), ("baz", "^1.0.0")],
    );
    insta::assert_snapshot!(conflict(&u), @r"
    fm::resolve::conflict

      x cannot resolve the dependencies
      |
      | Because bar ^2.0.0 depends on baz ^3.0.0 and foo 1.0.0 depends on bar ^2.0.0, foo 1.0.0
      | depends on baz ^3.0.0.
      | And because the project depends on baz ^1.0.0 and foo ^1.0.0, the project's requirements
      | cannot all be met.
      help: change one of these requirements in fm.toml (or ask for a release of the package that
            holds the other back), then run `fm lock` again
    ");
}

#[test]
fn branching_error_reporting() {
    let u = universe(
        &[
            ("foo", "1.0.0", &[("a", "^1.0.0"), ("b", "^1.0.0")]),
            ("foo", "1.1.0", &[("x", "^1.0.0"), ("y", "^1.0.0")]),
            ("a", "1.0.0", &[("b", "^2.0.0")]),
            ("b", "1.0.0", &[]),
            ("b", "2.0.0", &[]),
            ("x", "1.0.0", &[("y", "^2.0.0")]),
            ("y", "1.0.0", &[]),
            ("y", "2.0.0", &[]),
        ],
        &[("foo", "^1.0.0")],
    );
    insta::assert_snapshot!(conflict(&u), @r"
    fm::resolve::conflict

      x cannot resolve the dependencies
      |
      | Because a ^1.0.0 depends on b ^2.0.0 and foo 1.0.0 depends on a ^1.0.0, foo 1.0.0 depends on b
      | ^2.0.0.
      | And because foo 1.0.0 depends on b ^1.0.0, foo 1.0.0 cannot be used. (1)
      |
      | Because x ^1.0.0 depends on y ^2.0.0 and foo 1.1.0 depends on x ^1.0.0, foo 1.1.0 depends on y
      | ^2.0.0.
      | And because foo 1.1.0 depends on y ^1.0.0, foo 1.1.0 cannot be used.
      | And because foo 1.0.0 cannot be used (1), foo ^1.0.0 cannot be used.
      | And because the project depends on foo ^1.0.0, the project's requirements cannot all be met.
      help: change one of these requirements in fm.toml (or ask for a release of the package that
            holds the other back), then run `fm lock` again
    ");
}

#[test]
fn an_unknown_package_names_the_registries_searched() {
    let u = universe(&[("foo", "1.0.0", &[("ghost", "^1")])], &[("foo", "^1")]);
    insta::assert_snapshot!(conflict(&u), @r"
    fm::resolve::conflict

      x cannot resolve the dependencies
      |
      | Because no registry has a package named ghost (searched: main) and foo 1.0.0 depends on ghost
      | ^1, foo 1.0.0 cannot be used.
      | And because the project depends on foo ^1, the project's requirements cannot all be met.
      help: check the spelling of ghost, or add the registry that has it to [[registries]] in fm.toml
    ");
}

#[test]
fn an_impossible_requirement_is_a_resolution_failure() {
    let u = universe(&[("foo", "2.0.0", &[])], &[("foo", ">=2.0.0, <2.0.0")]);
    insta::assert_snapshot!(conflict(&u), @r"
    fm::resolve::conflict

      x cannot resolve the dependencies
      |
      | The project depends on foo >=2.0.0, <2.0.0, which no version can satisfy.
      help: change one of these requirements in fm.toml (or ask for a release of the package that
            holds the other back), then run `fm lock` again
    ");
}

#[test]
fn pre_releases_only_when_a_requirement_names_one() {
    let pkgs: Pkgs<'_> = &[("foo", "1.0.0", &[]), ("foo", "1.1.0-beta.1", &[])];
    assert_eq!(locked(&lock(&universe(pkgs, &[("foo", "^1")])).unwrap()), "foo 1.0.0");
    assert_eq!(
        locked(&lock(&universe(pkgs, &[("foo", "^1.1.0-beta")])).unwrap()),
        "foo 1.1.0-beta.1"
    );
}

/// Build metadata is ignored by requirements (`=1.0.0` matches `1.0.0+x`,
/// as `VersionReq::matches` says): the solver's release sets key on
/// `major.minor.patch`. A hostile document listing `1.0.0` and `1.0.0+x`
/// is still solved without a panic, and the answer does not depend on the
/// order the document lists them in.
#[test]
fn a_version_and_its_build_metadata_twin_are_solved_the_same_in_any_order() {
    let outcome = |pkgs: Pkgs<'_>, reverse: bool| {
        let u = universe(pkgs, &[("b", "^1")]);
        let set = RegistrySet {
            entries: vec![
                MemoryRegistry::new("main", &u.packages, reverse).entry(fm::location::DEFAULT_PRIORITY, false),
            ],
        };
        match resolve(&u.dependencies(), &set, &Preferences::default()) {
            Ok(l) => locked(&l),
            Err(e @ ResolveError::Conflict { .. }) => render(&e),
            Err(e) => panic!("expected a lock or a conflict, got {e}"),
        }
    };
    let plain: Pkgs<'_> = &[
        ("a", "1.0.0", &[]),
        ("a", "1.0.0+x", &[]),
        ("b", "1.0.0", &[("a", "=1.0.0")]),
    ];
    // One of the twins, by semver's order (`+x` sorts after the plain one).
    assert_eq!(outcome(plain, false), "a 1.0.0+x\nb 1.0.0");
    assert_eq!(outcome(plain, true), outcome(plain, false));
    // The twin tried first needs a package no registry has.
    let broken: Pkgs<'_> = &[
        ("a", "1.0.0", &[]),
        ("a", "1.0.0+x", &[("missing", "^1")]),
        ("b", "1.0.0", &[("a", "^1")]),
    ];
    let first = outcome(broken, false);
    assert_eq!(outcome(broken, true), first);
    eprintln!(
        "FIGURES build-metadata twins: 2 documents x 2 listing orders, same outcome each: {:?} / {:?}",
        outcome(plain, false),
        first.lines().find(|l| l.contains("Because")).unwrap_or(&first)
    );
}

/// A registry whose documents fail or arrive late, by package name.
#[derive(Debug)]
struct Flaky {
    inner: MemoryRegistry,
}

impl Flaky {
    fn corrupt(package: &str) -> RegistryError {
        RegistryError::Corrupt {
            registry: "main".to_owned(),
            package: package.to_owned(),
            reason: format!("the document of {package} is broken"),
        }
    }
}

impl Registry for Flaky {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn url(&self) -> &url::Url {
        self.inner.url()
    }
    fn document<'a>(
        &'a self,
        package: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<Option<Arc<PackageDocument>>, RegistryError>> {
        Box::pin(async move {
            match package {
                // Fails at once when it is prefetched, long before the
                // solver needs `needed`.
                "unrelated" => Err(Flaky::corrupt(package)),
                "needed" => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Err(Flaky::corrupt(package))
                }
                _ => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    self.inner.document(package).await
                }
            }
        })
    }
    fn download<'a>(
        &'a self,
        package: &'a str,
        version: &'a str,
        sink: &'a mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> futures_util::future::BoxFuture<'a, Result<u64, RegistryError>> {
        self.inner.download(package, version, sink)
    }
}

/// The error that stopped the solver is the one reported: it travels
/// through pubgrub as the provider's error. (It used to be fetched back
/// from a list of every failure met, so a failed prefetch of a package the
/// solution never needed was reported instead.)
#[test]
fn the_registry_error_that_stopped_the_solver_is_the_one_reported() {
    // `top 2.0.0` is the version prefetching guesses and reads the
    // dependencies of; the project allows only `top 1.x`, whose dependency
    // the solver then needs.
    let u = universe(
        &[
            ("top", "2.0.0", &[("unrelated", "^1")]),
            ("top", "1.0.0", &[("needed", "^1")]),
        ],
        &[("top", "^1")],
    );
    let entry = MemoryRegistry::new("main", &u.packages, false).entry(100, false);
    let set = RegistrySet {
        entries: vec![RegistryEntry {
            decl: entry.decl,
            client: Arc::new(Flaky {
                inner: MemoryRegistry::new("main", &u.packages, false),
            }),
        }],
    };
    let err = resolve(&u.dependencies(), &set, &Preferences::default()).unwrap_err();
    let shown = render(&err);
    assert!(shown.contains("invalid document for needed"), "{shown}");
    assert!(!shown.contains("unrelated"), "{shown}");
    assert!(
        shown.contains("fm::registry::corrupt"),
        "the registry's own diagnostic: {shown}"
    );
    println!(
        "FIGURES resolve-error: 2 registry failures (1 prefetched and unneeded, first; 1 needed): 1 reported, the needed one; {} mentions of the unneeded one",
        shown.matches("unrelated").count()
    );
}
