//! `fm diff` on large locks: comparing two locks should cost a small
//! fraction of parsing them, so a reviewer's tool never waits on it.
//!
//! Run: `cargo bench --bench diff`. Results in BENCHMARKS.md.

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fm::diff::{self, Labels};
use fm::lock::{LockedPackage, LockedRegistry, Lockfile};

/// A lock of `n` packages, each depending on the next two; `bump` moves
/// every tenth package up a minor version with a new digest.
fn lock(n: usize, bump: bool) -> Lockfile {
    let packages = (0..n)
        .map(|i| {
            let moved = bump && i % 10 == 0;
            LockedPackage {
                name: format!("pkg-{i:05}").parse().unwrap(),
                version: semver::Version::new(1, if moved { 3 } else { 2 }, (i % 7) as u64),
                registry: "main".into(),
                sha256: format!("{:064x}", i * 2 + usize::from(moved)).parse().unwrap(),
                size: 10_000 + i as u64,
                dependencies: (1..=2)
                    .filter(|d| i + d < n)
                    .map(|d| {
                        format!("pkg-{:05} ^1.{}", i + d, if moved { 3 } else { 2 })
                            .parse()
                            .unwrap()
                    })
                    .collect(),
            }
        })
        .collect();
    Lockfile {
        log: Default::default(),
        root: (0..n.min(20)).map(|i| format!("pkg-{i:05} ^1.2")).collect(),
        registries: vec![LockedRegistry {
            name: "main".into(),
            url: "https://registry.example.com/".into(),
            priority: 100,
            explicit: false,
        }],
        packages,
    }
}

fn bench(c: &mut Criterion) {
    let (old, new) = (lock(5000, false), lock(5000, true));
    let (old_text, new_text) = (old.render(), new.render());
    let labels = Labels {
        old: "old".into(),
        new: "new".into(),
    };
    let d = diff::diff(&old, &new);
    assert_eq!(d.upgraded.len(), 500);

    let mut g = c.benchmark_group("diff_5000_packages");
    g.bench_function("parse_both_locks", |b| {
        b.iter(|| {
            let a = Lockfile::parse(Path::new("old"), &old_text).expect("parse");
            let b2 = Lockfile::parse(Path::new("new"), &new_text).expect("parse");
            (a, b2)
        })
    });
    g.bench_function("diff", |b| b.iter(|| diff::diff(&old, &new)));
    g.bench_function("render_text", |b| b.iter(|| d.render_text(&labels, false)));
    g.bench_function("render_json", |b| b.iter(|| d.to_json(&labels).to_string()));
    g.bench_function("render_markdown", |b| b.iter(|| d.render_markdown(&labels)));
    g.bench_function("textconv_summary", |b| b.iter(|| diff::summarize(&new)));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
