//! `fm sync` performance (numbers in BENCHMARKS.md, section "Sync"):
//!
//! - `noop_1000`: a sync of 1,000 locked packages that are all installed
//!   already (fm.lock read from disk included). Target: ≤ 10 ms.
//! - `warm_fresh_project` vs `plain_copy`: installing 200 packages whose
//!   archives are cached into a fresh project (each re-hashed and
//!   unpacked), against a plain recursive copy of the same installed trees.
//! - `cold_dir_registry` vs `sha256`: downloading (from a directory
//!   registry), verifying and unpacking 32 packages of 512 KiB into an
//!   empty cache, in bytes per second next to SHA-256 itself.
//! - `noop_universe`: a no-op sync of the lock of a universe made by
//!   `/work/shared/bench/gen_universe.py` (the 10,000-package one locks
//!   1,299 packages, 11,691 files), when `FM_BENCH_UNIVERSE` names its
//!   folder and `fm lock` was run in its `fm-project/`. Skipped otherwise.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fm::install::{self, Cache, Layout, NoProgress};
use fm::lock::{LockedPackage, LockedRegistry, Lockfile};

/// A directory registry holding `count` packages `pNNNN@1.0.0`, each with
/// `files` files of `file_size` bytes (incompressible when `random`), and a
/// lock naming them all, saved as `{root}/project/fm.lock`.
struct Fixture {
    root: tempfile::TempDir,
    lock: Lockfile,
}

fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn fixture(count: usize, files: usize, file_size: usize, random: bool) -> Fixture {
    let root = tempfile::tempdir().expect("tempdir");
    let reg = root.path().join("registry");
    let mut packages = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("p{i:04}");
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("manifest.json", opts).expect("zip");
        zip.write_all(format!(r#"{{"name": "{name}", "version": "1.0.0"}}"#).as_bytes())
            .expect("zip");
        for f in 0..files {
            zip.start_file(format!("components/c{f}.py"), opts).expect("zip");
            let body = if random {
                pseudo_random((i * 1000 + f) as u64, file_size)
            } else {
                format!("# {name} {f}\ndef run(x):\n    return x\n")
                    .repeat(file_size / 40 + 1)
                    .into_bytes()
            };
            zip.write_all(&body).expect("zip");
        }
        let bytes = zip.finish().expect("zip").into_inner();
        let path = reg.join(format!("packages/{name}/{name}-1.0.0.fmpkg"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, &bytes).expect("write");
        packages.push(LockedPackage {
            name: name.parse().unwrap(),
            version: semver::Version::new(1, 0, 0),
            registry: "main".to_owned(),
            sha256: fm::fsutil::sha256_hex(&bytes).parse().unwrap(),
            size: bytes.len() as u64,
            dependencies: Vec::new(),
        });
    }
    let lock = Lockfile {
        log: Default::default(),
        root: Vec::new(),
        registries: vec![LockedRegistry {
            name: "main".to_owned(),
            url: url::Url::from_directory_path(&reg).expect("url").to_string(),
            priority: 100,
            explicit: false,
        }],
        packages,
    };
    let project = root.path().join("project");
    std::fs::create_dir_all(&project).expect("mkdir");
    lock.save(&project.join("fm.lock")).expect("save");
    Fixture { root, lock }
}

fn opts(cache: &Path) -> install::Options {
    install::Options {
        reinstall: Default::default(),
        precheck: Default::default(),
        offline: false,
        prune: true,
        cache: Cache::new(cache),
    }
}

fn sync(lock: &Lockfile, project: &Path, cache: &Path) -> install::Report {
    install::install(
        &lock.packages,
        &lock.registries,
        &Layout::project(project),
        &opts(cache),
        &NoProgress,
    )
    .expect("install")
}

/// A folder removed when dropped (criterion drops routine outputs outside
/// the timed section).
struct Scratch(PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

fn benches(c: &mut Criterion) {
    let home = tempfile::tempdir().expect("tempdir");
    // SAFETY: set before any thread is started; fm reads FM_HOME for the
    // user configuration when it opens registries.
    unsafe { std::env::set_var("FM_HOME", home.path()) };

    // No-op sync of 1,000 packages.
    {
        let fx = fixture(1000, 2, 200, false);
        let project = fx.root.path().join("project");
        let cache = fx.root.path().join("cache");
        let first = sync(&fx.lock, &project, &cache);
        assert_eq!(first.installed.len(), 1000);
        c.bench_function("sync/noop_1000", |b| {
            b.iter(|| {
                let lock = Lockfile::load(&project.join("fm.lock")).expect("load").expect("lock");
                let r = sync(&lock, &project, &cache);
                assert_eq!(r.unchanged, 1000);
            })
        });
        // The same without reading fm.lock: the installer's own share.
        c.bench_function("sync/noop_1000_lock_in_memory", |b| {
            b.iter(|| {
                let r = sync(&fx.lock, &project, &cache);
                assert_eq!(r.unchanged, 1000);
            })
        });
        c.bench_function("sync/noop_1000_lock_parse_only", |b| {
            b.iter(|| Lockfile::load(&project.join("fm.lock")).expect("load").expect("lock"))
        });
    }

    // No-op sync of a generated universe's lock (lock in memory: the
    // installer's share, which the stat check adds to).
    if let Ok(universe) = std::env::var("FM_BENCH_UNIVERSE") {
        let src = Path::new(&universe).join("fm-project");
        let lock = Lockfile::load(&src.join("fm.lock"))
            .expect("read fm.lock")
            .expect("run `fm lock` in FM_BENCH_UNIVERSE/fm-project first");
        let registries = lock.registries_at(&src).expect("registries");
        let root = tempfile::tempdir().expect("tempdir");
        let (project, cache) = (root.path().join("project"), root.path().join("cache"));
        std::fs::create_dir_all(&project).expect("mkdir");
        let install = || {
            install::install(
                &lock.packages,
                &registries,
                &Layout::project(&project),
                &opts(&cache),
                &NoProgress,
            )
            .expect("install")
        };
        let first = install();
        assert_eq!(first.installed.len(), lock.packages.len());
        let mut g = c.benchmark_group("sync");
        g.sample_size(50);
        g.bench_function(format!("noop_universe_{}", lock.packages.len()), |b| {
            b.iter(|| assert_eq!(install().unchanged, lock.packages.len()))
        });
        g.finish();
    } else {
        eprintln!("sync/noop_universe: skipped (set FM_BENCH_UNIVERSE to a gen_universe.py folder)");
    }

    // Warm sync into a fresh project vs a plain recursive copy.
    {
        let fx = fixture(200, 3, 2000, false);
        let cache = fx.root.path().join("cache");
        sync(&fx.lock, &fx.root.path().join("project"), &cache);
        let mut g = c.benchmark_group("sync/warm_200");
        g.sample_size(20);
        let n = std::sync::atomic::AtomicUsize::new(0);
        let fresh = || -> Scratch {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = fx.root.path().join(format!("fresh-{i}"));
            std::fs::create_dir_all(&p).expect("mkdir");
            Scratch(p)
        };
        g.bench_function("fm_sync_fresh_project", |b| {
            b.iter_batched(
                fresh,
                |p| {
                    let r = sync(&fx.lock, &p.0, &cache);
                    assert_eq!(r.installed.len(), 200);
                    p
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function("plain_recursive_copy", |b| {
            b.iter_batched(
                fresh,
                |p| {
                    for pkg in &fx.lock.packages {
                        copy_dir(
                            &fx.root.path().join("project/.fm/packages").join(&pkg.name),
                            &p.0.join(".fm/packages").join(&pkg.name),
                        );
                    }
                    p
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }

    // Cold sync from a directory registry vs SHA-256 throughput.
    {
        let fx = fixture(32, 2, 256 * 1024, true);
        let total: u64 = fx.lock.packages.iter().map(|p| p.size).sum();
        let mut g = c.benchmark_group("sync/throughput");
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(8));
        g.throughput(Throughput::Bytes(total));
        let n = std::sync::atomic::AtomicUsize::new(0);
        g.bench_function("cold_dir_registry_16MiB", |b| {
            b.iter_batched(
                || {
                    let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let base = fx.root.path().join(format!("cold-{i}"));
                    std::fs::create_dir_all(base.join("project")).expect("mkdir");
                    Scratch(base)
                },
                |base| {
                    let r = sync(&fx.lock, &base.0.join("project"), &base.0.join("cache"));
                    assert_eq!(r.downloaded, 32);
                    base
                },
                BatchSize::PerIteration,
            )
        });
        let data = pseudo_random(7, total as usize);
        g.bench_function("sha256_same_bytes", |b| b.iter(|| fm::fsutil::sha256_hex(&data)));
        g.finish();
    }
}

criterion_group!(sync_benches, benches);
criterion_main!(sync_benches);
