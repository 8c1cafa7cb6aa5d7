//! Many `fm sync --frozen` processes at once: 8 projects sharing one cache,
//! plus 2 more on one of those projects, from a cold cache. Every project
//! ends up with exactly its lock, byte for byte against the archives.

use std::io::Read as _;
use std::path::Path;

use crate::common::*;

/// Files of a zip archive (not directories), with their bytes.
fn archive_files(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("entry");
        if f.is_dir() {
            continue;
        }
        let mut data = Vec::new();
        f.read_to_end(&mut data).expect("read entry");
        out.push((f.name().to_owned(), data));
    }
    out.sort();
    out
}

fn lock_project(project: &Path, url: &str, packages: &[(String, String, u64)]) {
    std::fs::create_dir_all(project).unwrap();
    std::fs::write(
        project.join("fm.toml"),
        format!("[project]\nname = \"app\"\n\n[dependencies]\n\n[[registries]]\nname = \"main\"\nurl = \"{url}\"\n"),
    )
    .unwrap();
    let lock = fm::lock::Lockfile {
        log: Default::default(),
        root: packages.iter().map(|(n, _, _)| format!("{n} =1.0.0")).collect(),
        registries: vec![fm::lock::LockedRegistry {
            name: "main".into(),
            url: url.into(),
            priority: 100,
            explicit: false,
        }],
        packages: packages
            .iter()
            .map(|(n, sha, size)| fm::lock::LockedPackage {
                name: n.parse().unwrap(),
                version: semver::Version::new(1, 0, 0),
                registry: "main".into(),
                sha256: sha.parse().unwrap(),
                size: *size,
                dependencies: vec![],
            })
            .collect(),
    };
    lock.save(&project.join("fm.lock")).unwrap();
}

#[test]
fn eight_projects_on_one_cache_and_two_syncs_on_one_project_all_install_exactly() {
    let ctx = TestContext::new();
    let reg = ctx.dir_registry("main");
    let mut pkgs = Vec::new();
    for i in 0..12 {
        let n = format!("c{i:02}");
        let sha = reg.publish(&n, "1.0.0", &[]);
        let bytes = std::fs::read(reg.archive_path(&n, "1.0.0")).unwrap();
        pkgs.push((n, sha, bytes));
    }
    // Project i locks 6 overlapping packages (i..i+6 mod 12).
    let projects: Vec<(std::path::PathBuf, Vec<usize>)> = (0..8)
        .map(|i| (ctx.root.join(format!("proj{i}")), (i..i + 6).map(|j| j % 12).collect()))
        .collect();
    for (dir, which) in &projects {
        let locked: Vec<(String, String, u64)> = which
            .iter()
            .map(|&j| (pkgs[j].0.clone(), pkgs[j].1.clone(), pkgs[j].2.len() as u64))
            .collect();
        lock_project(dir, &reg.url(), &locked);
    }
    let rounds = 4;
    for round in 0..rounds {
        let _ = std::fs::remove_dir_all(&ctx.cache);
        for (dir, _) in &projects {
            let _ = std::fs::remove_dir_all(dir.join(".fm"));
        }
        let spawn = |dir: &Path| {
            ctx.fm()
                .current_dir(dir)
                .args(["sync", "--frozen"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn fm sync")
        };
        let mut children: Vec<_> = projects.iter().map(|(dir, _)| spawn(dir)).collect();
        children.push(spawn(&projects[0].0));
        children.push(spawn(&projects[0].0));
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert_code(&out, 0);
        }
        for (dir, which) in &projects {
            let out = ctx.fm().current_dir(dir).arg("verify").output().unwrap();
            assert_code(&out, 0);
            let mut installed: Vec<String> = std::fs::read_dir(dir.join(".fm/packages"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            installed.sort();
            let mut want: Vec<String> = which.iter().map(|&j| pkgs[j].0.clone()).collect();
            want.sort();
            assert_eq!(installed, want, "round {round}: {}", dir.display());
            for &j in which {
                let (name, _, bytes) = &pkgs[j];
                for (entry, data) in archive_files(bytes) {
                    let got = std::fs::read(dir.join(".fm/packages").join(name).join(&entry))
                        .unwrap_or_else(|e| panic!("round {round}: {name}/{entry}: {e}"));
                    assert!(got == data, "round {round}: {name}/{entry} differs from its archive");
                }
            }
        }
        // The cache holds each archive once, verified.
        for (rel, bytes) in snapshot_tree(&ctx.cache.join("archives")) {
            let stem = Path::new(&rel).file_stem().unwrap().to_string_lossy().into_owned();
            assert_eq!(fm::fsutil::sha256_hex(&bytes), stem);
        }
    }
    eprintln!(
        "FIGURES concurrency: {rounds} rounds x 10 concurrent fm sync (8 projects, one cache; 2 more on one project); 0 wrong bytes"
    );
}
