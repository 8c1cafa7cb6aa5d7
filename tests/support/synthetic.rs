//! Registries made in memory, for tests and benchmarks: [`MemoryRegistry`]
//! serves documents built from a list of packages, and [`universe`]
//! generates a large layered package graph from a seed.
//!
//! Test-only code, outside the library: the integration tests
//! (`tests/it/main.rs`) and `benches/resolve.rs` include this file with
//! `#[path]`, so the fm binary never carries it.
//!
//! The universe is deterministic (a seed, no global randomness). Packages
//! sit in layers; each version depends on a few packages of the next
//! layer. Newer majors of a package tend to need newer majors of their
//! dependencies, and the project pins some deep packages to old majors, so
//! the solver meets conflicts and has to backtrack.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pubgrub::OfflineDependencyProvider;
use semver::Version;

use fm::location::DEFAULT_PRIORITY;
use fm::manifest::{Dependency, RegistryDecl};
use fm::registry::{PackageDocument, Registry, RegistryError, VersionRecord};
use fm::req::Requirement;
use fm::resolve::provider::{Pkg, root_version};
use fm::resolve::ranges::SemverSet;
use fm::resolve::{RegistryEntry, RegistrySet};

/// One published version: `(version, [(dependency, requirement)], yanked)`.
#[derive(Debug, Clone)]
pub struct SynthVersion {
    pub version: Version,
    pub dependencies: Vec<(String, String)>,
    pub yanked: bool,
}

/// A package graph and the project's requirements on it.
#[derive(Debug, Clone, Default)]
pub struct Universe {
    /// name → versions.
    pub packages: BTreeMap<String, Vec<SynthVersion>>,
    /// The project's `[dependencies]`: `(name, requirement)`.
    pub root: Vec<(String, String)>,
}

/// A registry held in memory.
#[derive(Debug)]
pub struct MemoryRegistry {
    name: String,
    url: url::Url,
    docs: HashMap<String, Arc<PackageDocument>>,
}

/// A fake but well-formed SHA-256 for `name@version`.
pub fn fake_digest(name: &str, version: &str) -> String {
    fm::fsutil::sha256_hex(format!("{name}@{version}").as_bytes())
}

impl MemoryRegistry {
    /// A registry serving `packages`; `reverse` lists every document's
    /// versions oldest first instead of newest first (resolution must not
    /// care).
    pub fn new(name: &str, packages: &BTreeMap<String, Vec<SynthVersion>>, reverse: bool) -> MemoryRegistry {
        let url = url::Url::parse(&format!("memory://{name}/")).unwrap_or_else(|_| {
            // A registry name is always a valid host; this is unreachable.
            url::Url::parse("memory://registry/").expect("static URL")
        });
        let mut docs = HashMap::new();
        for (pkg, versions) in packages {
            let mut records: Vec<VersionRecord> = versions
                .iter()
                .map(|v| {
                    let version = v.version.to_string();
                    VersionRecord {
                        checksum: fake_digest(pkg, &version).parse().expect("a digest"),
                        size_bytes: 1000,
                        dependencies: v
                            .dependencies
                            .iter()
                            .map(|(n, r)| (n.parse().expect("a name"), r.clone()))
                            .collect(),
                        yanked: v.yanked,
                        version,
                        ..VersionRecord::default()
                    }
                })
                .collect();
            records.sort_by_key(|r| std::cmp::Reverse(r.semver()));
            if reverse {
                records.reverse();
            }
            let mut doc = PackageDocument {
                versions: Some(records),
                ..PackageDocument::default()
            };
            doc.info.name = pkg.clone();
            docs.insert(pkg.clone(), Arc::new(doc));
        }
        MemoryRegistry {
            name: name.to_owned(),
            url,
            docs,
        }
    }

    /// A [`RegistryEntry`] for this registry.
    pub fn entry(self, priority: i64, explicit: bool) -> RegistryEntry {
        RegistryEntry {
            decl: RegistryDecl {
                log: Default::default(),
                relative: None,
                name: self.name.clone(),
                url: self.url.clone(),
                priority,
                explicit,
            },
            client: Arc::new(self),
        }
    }
}

impl Registry for MemoryRegistry {
    fn name(&self) -> &str {
        &self.name
    }

    fn url(&self) -> &url::Url {
        &self.url
    }

    fn document<'a>(&'a self, package: &'a str) -> BoxFuture<'a, Result<Option<Arc<PackageDocument>>, RegistryError>> {
        let doc = self.docs.get(package).cloned();
        async move { Ok(doc) }.boxed()
    }

    fn download<'a>(
        &'a self,
        package: &'a str,
        version: &'a str,
        _sink: &'a mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> BoxFuture<'a, Result<u64, RegistryError>> {
        async move {
            Err(RegistryError::MissingArchive {
                registry: self.name.clone(),
                package: package.to_owned(),
                version: version.to_owned(),
            })
        }
        .boxed()
    }
}

impl Universe {
    /// One registry serving the whole universe.
    pub fn registry_set(&self, reverse: bool) -> RegistrySet {
        RegistrySet {
            entries: vec![MemoryRegistry::new("synthetic", &self.packages, reverse).entry(DEFAULT_PRIORITY, false)],
        }
    }

    /// The project's dependencies as a manifest would hold them.
    pub fn dependencies(&self) -> Vec<Dependency> {
        self.root
            .iter()
            .filter_map(|(n, r)| {
                Requirement::parse(r).ok().map(|req| Dependency {
                    name: n.clone(),
                    req,
                    registry: None,
                })
            })
            .collect()
    }

    /// The same graph for pubgrub's `OfflineDependencyProvider` (yanked
    /// versions left out, as fm never picks them without a lock).
    pub fn offline_provider(&self) -> OfflineDependencyProvider<Pkg, SemverSet> {
        let mut p = OfflineDependencyProvider::new();
        let set = |r: &str| {
            semver::VersionReq::parse(r)
                .map(|r| SemverSet::from_req(&r))
                .unwrap_or_else(|_| pubgrub::VersionSet::empty())
        };
        p.add_dependencies(
            Pkg::Root,
            root_version(),
            self.root.iter().map(|(n, r)| (Pkg::named(n), set(r))),
        );
        for (name, versions) in &self.packages {
            for v in versions.iter().filter(|v| !v.yanked) {
                p.add_dependencies(
                    Pkg::named(name),
                    v.version.clone(),
                    v.dependencies.iter().map(|(n, r)| (Pkg::named(n), set(r))),
                );
            }
        }
        p
    }
}

/// pubgrub's [`OfflineDependencyProvider`] deciding in fm's order
/// ([`fm::resolve::provider::priority`]): the reference fm's provider must
/// agree with, version for version.
pub struct InFmOrder {
    offline: OfflineDependencyProvider<Pkg, SemverSet>,
    /// Package → how many packages were prioritized before it.
    order: std::cell::RefCell<HashMap<Pkg, usize>>,
}

impl InFmOrder {
    pub fn new(offline: OfflineDependencyProvider<Pkg, SemverSet>) -> InFmOrder {
        InFmOrder {
            offline,
            order: Default::default(),
        }
    }
}

impl pubgrub::DependencyProvider for InFmOrder {
    type P = Pkg;
    type V = Version;
    type VS = SemverSet;
    type M = String;
    type Err = std::convert::Infallible;
    type Priority = fm::resolve::provider::Priority;

    fn prioritize(
        &self,
        package: &Pkg,
        range: &SemverSet,
        stats: &pubgrub::PackageResolutionStatistics,
    ) -> Self::Priority {
        use pubgrub::VersionSet;
        if *package == Pkg::Root {
            return fm::resolve::provider::priority(0, 0, 0);
        }
        let mut order = self.order.borrow_mut();
        let next = order.len();
        let seen = *order.entry(package.clone()).or_insert(next);
        let count = self
            .offline
            .versions(package)
            .map_or(0, |vs| vs.filter(|v| range.contains(v)).count());
        fm::resolve::provider::priority(count, stats.conflict_count(), seen)
    }

    fn choose_version(&self, package: &Pkg, range: &SemverSet) -> Result<Option<Version>, Self::Err> {
        self.offline.choose_version(package, range)
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<pubgrub::Dependencies<Pkg, SemverSet, String>, Self::Err> {
        self.offline.get_dependencies(package, version)
    }
}

/// A small deterministic generator (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Shape of a generated universe.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub layers: usize,
    /// Packages per layer.
    pub width: usize,
    /// Versions per package (spread over majors 1 and 2).
    pub versions: usize,
    /// Dependencies per version.
    pub fan_out: usize,
    /// Direct dependencies of the project.
    pub roots: usize,
    /// Deep packages the project holds back to major 1.
    pub held: usize,
    /// Percent of dependencies whose major is drawn at random instead of
    /// following the dependent's major (the source of conflicts).
    pub wild: u64,
}

impl Shape {
    /// The benchmark's universe: 2,000 packages × 10 versions; about 850
    /// of them in the solution, after a few hundred milliseconds of
    /// backtracking.
    pub const BENCH: Shape = Shape {
        layers: 5,
        width: 400,
        versions: 10,
        fan_out: 3,
        roots: 24,
        held: 3,
        wild: 2,
    };
    /// A small one for tests in debug builds.
    pub const SMALL: Shape = Shape {
        layers: 4,
        width: 30,
        versions: 6,
        fan_out: 2,
        roots: 6,
        held: 2,
        wild: 30,
    };
}

/// Generates a layered universe from `seed`.
pub fn universe(seed: u64, shape: Shape) -> Universe {
    let mut rng = Rng::new(seed);
    let name = |layer: usize, i: usize| format!("l{layer}-p{i}");
    let half = shape.versions.div_ceil(2).max(1);
    let mut packages = BTreeMap::new();
    for layer in 0..shape.layers {
        for i in 0..shape.width {
            let mut versions = Vec::with_capacity(shape.versions);
            for k in 0..shape.versions {
                let major = 1 + (k / half) as u64;
                let minor = (k % half) as u64;
                let mut deps = BTreeMap::new();
                if layer + 1 < shape.layers {
                    for _ in 0..shape.fan_out {
                        let dep = name(layer + 1, rng.below(shape.width as u64) as usize);
                        // Newer majors mostly want newer majors below them.
                        let want = if rng.below(100) < shape.wild {
                            1 + rng.below(2)
                        } else {
                            major
                        };
                        let req = match rng.below(4) {
                            0 => format!(">={want}.1, <{}", want + 1),
                            1 => format!("~{want}.{}", rng.below(half as u64)),
                            _ => format!("^{want}"),
                        };
                        deps.insert(dep, req);
                    }
                }
                versions.push(SynthVersion {
                    version: Version::new(major, minor, 0),
                    dependencies: deps.into_iter().collect(),
                    yanked: false,
                });
            }
            packages.insert(name(layer, i), versions);
        }
    }
    let mut root = BTreeMap::new();
    for _ in 0..shape.roots {
        root.insert(name(0, rng.below(shape.width as u64) as usize), "*".to_owned());
    }
    // Hold a few deep packages back: their dependents' newest versions
    // then conflict and the solver backtracks.
    if shape.layers > 2 {
        for _ in 0..shape.held {
            let layer = 1 + rng.below(shape.layers as u64 - 1) as usize;
            root.insert(name(layer, rng.below(shape.width as u64) as usize), "^1".to_owned());
        }
    }
    Universe {
        packages,
        root: root.into_iter().collect(),
    }
}
