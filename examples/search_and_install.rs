//! Search a registry, then download a package verified against its SHA-256
//! and unpack it — FlowMason's `client.search` and `install`, with
//! [`fm::Client`].
//!
//! ```text
//! cargo run --example search_and_install -- REGISTRY QUERY DEST
//! ```
//!
//! REGISTRY is an `http(s)://` URL (fm's server or FlowMason Studio's) or a
//! registry folder; `FM_EXAMPLE_TOKEN`, when set, is sent to that
//! registry's origin only. The newest version of the first match is
//! unpacked into `DEST/{name}`. Exit 1 on any failure (a digest mismatch
//! included: nothing is unpacked), 2 on bad arguments.

use std::path::PathBuf;
use std::process::ExitCode;

use fm::client::ClientError;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [registry, query, dest] = args.as_slice() else {
        eprintln!("usage: search_and_install REGISTRY QUERY DEST");
        return ExitCode::from(2);
    };
    match run(registry, query, PathBuf::from(dest)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::FAILURE
        }
    }
}

async fn run(registry: &str, query: &str, dest: PathBuf) -> Result<(), ClientError> {
    let mut builder = fm::Client::builder(registry);
    if let Ok(token) = std::env::var("FM_EXAMPLE_TOKEN") {
        builder = builder.token(&token);
    }
    let client = builder.open()?;

    // 1. Search: one entry a package, its newest version. The text fields
    //    come cleaned of control characters, safe to print.
    let found = client.search(query).await?;
    println!("{} package(s) match {query:?}:", found.len());
    for info in &found {
        println!("  {} {}  {}", info.name, info.version, info.description);
    }
    let Some(first) = found.first() else {
        return Ok(());
    };

    // 2. What the registry says about it: every version, yanked ones too.
    let versions = client.versions(&first.name).await?;
    let shown: Vec<String> = versions
        .iter()
        .map(|r| {
            if r.yanked {
                format!("{} (yanked)", r.version)
            } else {
                r.version.clone()
            }
        })
        .collect();
    println!("{} versions: {}", first.name, fm::text::printable(&shown.join(", ")));

    // 3. Download, verified against the registry's SHA-256: only matching
    //    bytes come back.
    let archive = client.download(&first.name, &first.version).await?;
    println!(
        "Downloaded {} {} ({} bytes, sha256 {}): verified",
        archive.name(),
        archive.version(),
        archive.bytes().len(),
        archive.sha256()
    );

    // 4. Unpack into a new folder, with the checks every install applies.
    let target = dest.join(archive.name());
    let files = archive.unpack(&target)?;
    println!("Unpacked {} file(s) into {}", files.len(), target.display());
    for f in &files {
        println!("  {}", f.path);
    }
    Ok(())
}
