//! Resolution speed: fm's provider (documents through the registry trait,
//! fetched on the prefetching index, requirement texts parsed and
//! converted) against pubgrub's `OfflineDependencyProvider` on the same
//! graph, with the same version sets. The gap is fm's overhead.
//!
//! `cargo bench --bench resolve`

use criterion::{Criterion, criterion_group, criterion_main};

// The in-memory registry and the generated universe (test-only code, kept
// out of the library).
#[path = "../tests/support/synthetic.rs"]
mod synthetic;
use synthetic::{Shape, universe};

use fm::resolve::provider::{Pkg, root_version};
use fm::resolve::{Preferences, resolve};

fn bench(c: &mut Criterion) {
    let u = universe(42, Shape::BENCH);
    let deps = u.dependencies();
    let offline = u.offline_provider();
    // Check once that both agree and there is a solution worth timing.
    let lock = resolve(&deps, &u.registry_set(false), &Preferences::default()).expect("the bench universe resolves");
    let raw = pubgrub::resolve(&offline, Pkg::Root, root_version()).expect("offline resolves it");
    assert_eq!(lock.packages.len() + 1, raw.iter().count());
    eprintln!(
        "universe: {} packages, {} versions; solution: {} packages",
        u.packages.len(),
        u.packages.values().map(Vec::len).sum::<usize>(),
        lock.packages.len()
    );
    let mut g = c.benchmark_group("resolve");
    g.sample_size(15);
    // The registry's documents exist before resolution starts, as on a
    // server; each resolution builds its own index, so nothing is cached
    // between iterations.
    let set = u.registry_set(false);
    g.bench_function("fm_provider", |b| {
        b.iter(|| resolve(&deps, &set, &Preferences::default()).expect("resolves"))
    });
    g.bench_function("pubgrub_offline", |b| {
        b.iter(|| pubgrub::resolve(&offline, Pkg::Root, root_version()).expect("resolves"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
