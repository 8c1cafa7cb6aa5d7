//! Lock and sync a project with the library, as `fm lock` and `fm sync` do:
//! the bundled sample project (`fixtures/project/fm.toml`) over the two
//! bundled directory registries (`fixtures/registries/{company,main}`).
//!
//! The sample is copied to a temporary folder (with its registries as
//! absolute `file://` URLs), so the run writes nothing in the checkout:
//!
//! ```sh
//! cargo run --example lock_and_sync
//! ```

use std::path::Path;

use fm::Project;
use fm::install::{Cache, NoProgress, Options};
use fm::project::{LockMode, LockOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let work = tempfile::tempdir()?;

    // The sample manifest, its relative registry paths made absolute.
    let manifest = std::fs::read_to_string(fixtures.join("project/fm.toml"))?;
    let registries = fixtures.join("registries").canonicalize()?;
    let manifest = manifest.replace("url = \"../registries/", &format!("url = \"{}/", registries.display()));
    let project_dir = work.path().join("project");
    std::fs::create_dir_all(&project_dir)?;
    std::fs::write(project_dir.join("fm.toml"), manifest)?;

    // 1. Lock: resolve against the project's registries and write fm.lock.
    let project = Project::load(&project_dir.join("fm.toml"))?;
    let outcome = project.lock(&LockOptions::default())?;
    for change in &outcome.changes {
        println!("{change}");
    }
    println!(
        "locked {} packages into {}",
        outcome.lock.packages.len(),
        project.lock_path().display()
    );

    // 2. Sync: install exactly the lock into .fm/packages, verified;
    //    `Locked` refuses a lock that no longer matches fm.toml.
    let options = Options {
        offline: false,
        prune: true,
        cache: Cache::new(work.path().join("cache")),
        reinstall: Default::default(),
        precheck: Default::default(),
    };
    let (_plan, report) = project.sync(LockMode::Locked, &options, &NoProgress)?;
    for (name, version) in &report.installed {
        println!("installed {name} {version}");
    }

    // 3. A second sync finds everything in place.
    let (_, again) = project.sync(LockMode::Locked, &options, &NoProgress)?;
    assert!(again.installed.is_empty());
    println!("{} packages up to date", again.unchanged);
    Ok(())
}
