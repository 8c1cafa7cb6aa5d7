//! Property tests of the resolver: requirement conversion against
//! `semver::VersionReq::matches`, and random registries where every
//! solution must satisfy every constraint, "no solution" must agree with a
//! brute-force search, and the answer must not depend on listing order.

use std::collections::BTreeMap;

use crate::synthetic::{MemoryRegistry, Shape, SynthVersion, Universe, universe};
use fm::lock::Lockfile;
use fm::resolve::ranges::SemverSet;
use fm::resolve::{Preferences, RegistrySet, ResolveError, resolve};
use proptest::prelude::*;
use pubgrub::VersionSet;
use semver::{Version, VersionReq};

const PRES: &[&str] = &["", "", "", "alpha", "alpha.1", "beta", "0", "rc.2"];

fn version() -> impl Strategy<Value = Version> {
    (0u64..3, 0u64..3, 0u64..3, 0..PRES.len()).prop_map(|(a, b, c, p)| {
        let mut v = Version::new(a, b, c);
        if !PRES[p].is_empty() {
            v.pre = semver::Prerelease::new(PRES[p]).unwrap();
        }
        v
    })
}

fn comparator() -> impl Strategy<Value = String> {
    let ops = prop::sample::select(vec!["^", "~", "=", ">", ">=", "<", "<=", ""]);
    (
        ops,
        0u64..3,
        prop::option::of(0u64..3),
        prop::option::of(0u64..3),
        0..PRES.len(),
        0..6u8,
    )
        .prop_map(|(op, a, b, c, p, shape)| match (shape, b, c) {
            (0, _, _) => "*".to_owned(),
            (1, _, _) => format!("{a}.*"),
            (2, Some(b), _) => format!("{a}.{b}.*"),
            (_, Some(b), Some(c)) if !PRES[p].is_empty() => format!("{op}{a}.{b}.{c}-{}", PRES[p]),
            (_, Some(b), Some(c)) => format!("{op}{a}.{b}.{c}"),
            (_, Some(b), None) => format!("{op}{a}.{b}"),
            _ => format!("{op}{a}"),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The set of a requirement holds exactly the versions `matches` accepts.
    #[test]
    fn conversion_matches_semver(cs in prop::collection::vec(comparator(), 1..4), vs in prop::collection::vec(version(), 1..24)) {
        let text = cs.join(", ");
        let Ok(req) = VersionReq::parse(&text) else { return Ok(()) };
        let set = fm::resolve::ranges::convert(&req);
        for v in &vs {
            prop_assert_eq!(set.contains(v), req.matches(v), "{} vs {}", text, v);
        }
        // Complements and intersections stay exact.
        let not = set.complement();
        for v in &vs {
            prop_assert_eq!(not.contains(v), !req.matches(v));
        }
    }
}

// ---- random registries ----

const REQS: &[&str] = &[
    "^0",
    "^1",
    "^2",
    ">=1.1",
    "<2",
    "~1.1",
    "*",
    "=1.0.0",
    ">=0.1, <1.1",
    "^1.1.0-beta",
    "^0.2",
    "*",
    ">=0.1",
    "^1",
];

#[derive(Debug, Clone)]
struct Case {
    universe: Universe,
}

fn case() -> impl Strategy<Value = Case> {
    let names = ["a", "b", "c", "d", "e"];
    let versions = prop::sample::subsequence(
        vec!["0.1.0", "0.2.0", "1.0.0", "1.1.0-beta", "1.1.0", "1.2.0", "2.0.0"],
        1..4,
    );
    let pkg = (
        versions,
        prop::collection::vec((0..5usize, 0..REQS.len(), 0u8..10), 12),
        prop::collection::vec(any::<u8>(), 4),
    );
    (
        prop::collection::vec(pkg, 5),
        prop::collection::vec((0..5usize, 0..REQS.len()), 1..3),
    )
        .prop_map(move |(pkgs, root)| {
            let mut packages = BTreeMap::new();
            for (i, (vs, deps, yank)) in pkgs.into_iter().enumerate() {
                let mut list = Vec::new();
                for (k, v) in vs.iter().enumerate() {
                    let mut d = BTreeMap::new();
                    for &(to, r, on) in deps.iter().skip(k * 3).take(3) {
                        if on < 3 && to != i {
                            d.insert(names[to].to_owned(), REQS[r].to_owned());
                        }
                    }
                    list.push(SynthVersion {
                        version: Version::parse(v).unwrap(),
                        dependencies: d.into_iter().collect(),
                        yanked: yank[k % yank.len()] < 20,
                    });
                }
                packages.insert(names[i].to_owned(), list);
            }
            let mut r = BTreeMap::new();
            for (to, req) in root {
                r.insert(names[to].to_owned(), REQS[req].to_owned());
            }
            Case {
                universe: Universe {
                    packages,
                    root: r.into_iter().collect(),
                },
            }
        })
}

fn run(u: &Universe, reverse: bool) -> Result<Lockfile, ResolveError> {
    resolve(&u.dependencies(), &u.registry_set(reverse), &Preferences::default())
}

fn matches(req: &str, v: &Version) -> bool {
    VersionReq::parse(req).unwrap().matches(v)
}

/// Every constraint holds: the project's, and every locked package's.
fn check(u: &Universe, lock: &Lockfile) -> Result<(), String> {
    let chosen: BTreeMap<&str, &Version> = lock.packages.iter().map(|p| (p.name.as_str(), &p.version)).collect();
    let need = |name: &str, req: &str, who: &str| match chosen.get(name) {
        Some(v) if matches(req, v) => Ok(()),
        other => Err(format!("{who} needs {name} {req}, got {other:?}")),
    };
    for (n, r) in &u.root {
        need(n, r, "root")?;
    }
    for p in &lock.packages {
        let known = u.packages[p.name.as_str()]
            .iter()
            .find(|v| v.version == p.version)
            .ok_or("unknown version")?;
        if known.yanked {
            return Err(format!("{} {} is yanked", p.name, p.version));
        }
        for (n, r) in &known.dependencies {
            need(n, r, &p.name)?;
        }
    }
    Ok(())
}

/// Whether any assignment satisfies everything (yanked versions excluded).
fn brute_force(u: &Universe) -> bool {
    let names: Vec<&String> = u.packages.keys().collect();
    let options: Vec<Vec<Option<&SynthVersion>>> = names
        .iter()
        .map(|n| {
            std::iter::once(None)
                .chain(u.packages[*n].iter().filter(|v| !v.yanked).map(Some))
                .collect()
        })
        .collect();
    let mut idx = vec![0usize; names.len()];
    loop {
        let pick: BTreeMap<&str, &SynthVersion> = names
            .iter()
            .zip(&idx)
            .filter_map(|(n, &i)| options[names.iter().position(|m| m == n).unwrap()][i].map(|v| (n.as_str(), v)))
            .collect();
        let ok_req = |n: &str, r: &str| pick.get(n).is_some_and(|v| matches(r, &v.version));
        if u.root.iter().all(|(n, r)| ok_req(n, r))
            && pick.values().all(|v| v.dependencies.iter().all(|(n, r)| ok_req(n, r)))
        {
            return true;
        }
        let mut k = 0;
        loop {
            if k == idx.len() {
                return false;
            }
            idx[k] += 1;
            if idx[k] < options[k].len() {
                break;
            }
            idx[k] = 0;
            k += 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn solutions_satisfy_every_constraint_and_failures_are_real(c in case()) {
        let u = &c.universe;
        let first = run(u, false);
        match &first {
            Ok(lock) => {
                if let Err(e) = check(u, lock) {
                    prop_assert!(false, "{e}\n{}", lock.render());
                }
            }
            Err(ResolveError::Conflict { explanation, .. }) => {
                prop_assert!(!brute_force(u), "fm found no solution but one exists:\n{explanation}");
                prop_assert!(!explanation.contains("-0"), "{explanation}");
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
        // Same answer again, and with every version list reversed and the
        // project's requirements in another order.
        let again = run(u, false);
        let mut shuffled = u.clone();
        shuffled.root.reverse();
        let reversed = run(&shuffled, true);
        let show = |r: &Result<Lockfile, ResolveError>| match r {
            Ok(l) => l.render(),
            Err(e) => format!("{e}"),
        };
        prop_assert_eq!(show(&first), show(&again));
        prop_assert_eq!(show(&first), show(&reversed));
    }
}

#[test]
fn the_synthetic_universe_resolves_like_pubgrubs_offline_provider_deciding_in_the_same_order() {
    let u = universe(7, Shape::SMALL);
    let lock = run(&u, false).expect("the small universe has a solution");
    check(&u, &lock).unwrap();
    assert_eq!(lock.render(), run(&u, true).unwrap().render());
    let offline = pubgrub::resolve(
        &crate::synthetic::InFmOrder::new(u.offline_provider()),
        fm::resolve::provider::Pkg::Root,
        fm::resolve::provider::root_version(),
    )
    .expect("offline solves it too");
    let mut raw: Vec<String> = offline
        .iter()
        .filter(|(p, _)| **p != fm::resolve::provider::Pkg::Root)
        .map(|(p, v)| format!("{p} {v}"))
        .collect();
    raw.sort();
    let ours: Vec<String> = lock
        .packages
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect();
    assert_eq!(ours, raw);
}

#[test]
fn a_name_in_a_higher_registry_is_never_taken_from_a_lower_one() {
    let pkg = |v: &str| {
        vec![SynthVersion {
            version: Version::parse(v).unwrap(),
            dependencies: vec![],
            yanked: false,
        }]
    };
    let high: BTreeMap<String, Vec<SynthVersion>> = [("internal".to_owned(), pkg("1.0.0"))].into();
    let low: BTreeMap<String, Vec<SynthVersion>> = [("internal".to_owned(), pkg("9.0.0"))].into();
    let set = RegistrySet {
        entries: vec![
            MemoryRegistry::new("company", &high, false).entry(10, false),
            MemoryRegistry::new("public", &low, false).entry(100, false),
        ],
    };
    let u = Universe {
        packages: BTreeMap::new(),
        root: vec![("internal".to_owned(), "*".to_owned())],
    };
    let lock = resolve(&u.dependencies(), &set, &Preferences::default()).unwrap();
    assert_eq!(lock.packages[0].version.to_string(), "1.0.0");
    assert_eq!(lock.packages[0].registry, "company");
    let u = Universe {
        packages: BTreeMap::new(),
        root: vec![("internal".to_owned(), ">=2".to_owned())],
    };
    assert!(matches!(
        resolve(&u.dependencies(), &set, &Preferences::default()),
        Err(ResolveError::Conflict { .. })
    ));
    let _ = SemverSet::full();
}

/// The generator must produce both outcomes, or the property above proves
/// little.
#[test]
fn random_cases_include_solutions_and_conflicts() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut ok, mut conflict) = (0, 0);
    for _ in 0..60 {
        let c = case().new_tree(&mut runner).unwrap().current();
        match run(&c.universe, false) {
            Ok(_) => ok += 1,
            Err(_) => conflict += 1,
        }
    }
    assert!(ok >= 6 && conflict >= 6, "{ok} solved, {conflict} conflicts");
}

/// A registry that answers after a pause and counts requests in flight.
#[derive(Debug)]
struct SlowRegistry {
    inner: MemoryRegistry,
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl fm::registry::Registry for SlowRegistry {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn url(&self) -> &url::Url {
        self.inner.url()
    }
    fn document<'a>(
        &'a self,
        package: &'a str,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<Option<std::sync::Arc<fm::registry::PackageDocument>>, fm::registry::RegistryError>,
    > {
        use std::sync::atomic::Ordering::SeqCst;
        Box::pin(async move {
            let now = self.in_flight.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(now, SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            self.in_flight.fetch_sub(1, SeqCst);
            self.inner.document(package).await
        })
    }
    fn download<'a>(
        &'a self,
        package: &'a str,
        version: &'a str,
        sink: &'a mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> futures_util::future::BoxFuture<'a, Result<u64, fm::registry::RegistryError>> {
        self.inner.download(package, version, sink)
    }
}

/// Documents of a package's dependencies are fetched together, not one
/// after the other (prefetching).
#[test]
fn dependencies_are_fetched_concurrently() {
    let v = |deps: &[&str]| {
        vec![SynthVersion {
            version: Version::new(1, 0, 0),
            dependencies: deps.iter().map(|d| (d.to_string(), "^1".to_owned())).collect(),
            yanked: false,
        }]
    };
    let packages: BTreeMap<String, Vec<SynthVersion>> = [
        ("top".to_owned(), v(&["b", "c", "d", "e"])),
        ("b".to_owned(), v(&[])),
        ("c".to_owned(), v(&[])),
        ("d".to_owned(), v(&[])),
        ("e".to_owned(), v(&[])),
    ]
    .into();
    let slow = std::sync::Arc::new(SlowRegistry {
        inner: MemoryRegistry::new("slow", &packages, false),
        in_flight: 0.into(),
        most: 0.into(),
    });
    let entry = MemoryRegistry::new("slow", &packages, false).entry(100, false);
    let set = RegistrySet {
        entries: vec![fm::resolve::RegistryEntry {
            decl: entry.decl,
            client: slow.clone(),
        }],
    };
    let u = Universe {
        packages: BTreeMap::new(),
        root: vec![("top".to_owned(), "^1".to_owned())],
    };
    let lock = resolve(&u.dependencies(), &set, &Preferences::default()).unwrap();
    assert_eq!(lock.packages.len(), 5);
    assert_eq!(
        slow.most.load(std::sync::atomic::Ordering::SeqCst),
        4,
        "b, c, d and e at once"
    );
}
