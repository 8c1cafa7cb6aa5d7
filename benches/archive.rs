//! Archive throughput: packing, reading manifest.json, and safe extraction
//! compared with the zip crate's own (unchecked, unhashed) extraction.

use std::hint::black_box;
use std::io::Cursor;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use fm::archive::{self, Limits};

/// A package folder with `files` files of ~4 KiB each.
fn package(dir: &Path, files: usize) {
    std::fs::write(
        dir.join("fm.toml"),
        "[package]\nname = \"bench\"\nversion = \"1.0.0\"\n\n[dependencies]\ntext-utils = \"^1.1\"\n",
    )
    .unwrap();
    for i in 0..files {
        let sub = dir.join(format!("components/group{}", i % 8));
        std::fs::create_dir_all(&sub).unwrap();
        let body: String = (0..100)
            .map(|k| format!("def f{k}(x):  # {i}\n    return x\n"))
            .collect();
        std::fs::write(sub.join(format!("c{i}.py")), body).unwrap();
    }
}

fn benches(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    package(&src, 200);
    // As `fm pack` does: read fm.toml, then pack with its metadata.
    let pack = || {
        let manifest = fm::manifest::Manifest::load(&src.join("fm.toml")).unwrap();
        archive::pack(&src, &manifest.pack_input().unwrap()).unwrap()
    };
    let bytes = pack().bytes;

    c.bench_function("pack 200 files", |b| b.iter(|| black_box(pack())));
    c.bench_function("read_manifest", |b| {
        b.iter(|| black_box(archive::read_manifest(&bytes).unwrap()))
    });
    c.bench_function("check_entries 200 files", |b| {
        b.iter(|| archive::check_entries(&bytes, &Limits::default()).unwrap())
    });
    let mut n = 0u64;
    c.bench_function("fm extract 200 files", |b| {
        b.iter(|| {
            n += 1;
            let dest = tmp.path().join(format!("fm{n}"));
            std::fs::create_dir(&dest).unwrap();
            black_box(archive::extract(Cursor::new(&bytes), &dest, &Limits::default()).unwrap());
        })
    });
    c.bench_function("zip crate extract 200 files", |b| {
        b.iter(|| {
            n += 1;
            let dest = tmp.path().join(format!("zip{n}"));
            zip::ZipArchive::new(Cursor::new(&bytes))
                .unwrap()
                .extract(&dest)
                .unwrap();
        })
    });
}

criterion_group! {
    name = archive_benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(archive_benches);
