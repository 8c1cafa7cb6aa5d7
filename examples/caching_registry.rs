//! A [`Registry`] of your own, used by fm's resolver unchanged: a caching
//! layer that wraps another registry and keeps every package document it
//! has read in memory, so a second resolution reads nothing.
//!
//! ```text
//! cargo run --example caching_registry -- REGISTRY PACKAGE [REQUIREMENT]
//! ```
//!
//! REGISTRY is an `http(s)://` URL or a registry folder; REQUIREMENT is
//! Cargo syntax (default `*`). Prints the resolved packages and how many
//! documents each resolution read from the registry underneath. The same
//! pattern gives a fallback chain (ask the next registry when one has no
//! document), a registry that logs or meters requests, or one that serves
//! from a snapshot.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use fm::manifest::Dependency;
use fm::registry::{PackageDocument, Registry, RegistryError};
use fm::req::Requirement;
use fm::resolve::Preferences;
use futures_util::future::BoxFuture;
use miette::IntoDiagnostic;

/// Wraps a registry; remembers each document (and each "no such package").
#[derive(Debug)]
struct CachingRegistry {
    inner: Arc<dyn Registry>,
    docs: Mutex<HashMap<String, Option<Arc<PackageDocument>>>>,
    /// Documents read from `inner`.
    reads: AtomicUsize,
    /// Documents answered from memory.
    hits: AtomicUsize,
}

impl CachingRegistry {
    fn new(inner: Arc<dyn Registry>) -> CachingRegistry {
        CachingRegistry {
            inner,
            docs: Mutex::new(HashMap::new()),
            reads: AtomicUsize::new(0),
            hits: AtomicUsize::new(0),
        }
    }

    fn cached(&self, package: &str) -> Option<Option<Arc<PackageDocument>>> {
        self.docs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(package)
            .cloned()
    }
}

impl Registry for CachingRegistry {
    // The lock records the wrapped registry's name and URL: a cache does
    // not change where packages come from.
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn url(&self) -> &url::Url {
        self.inner.url()
    }

    fn document<'a>(&'a self, package: &'a str) -> BoxFuture<'a, Result<Option<Arc<PackageDocument>>, RegistryError>> {
        Box::pin(async move {
            if let Some(doc) = self.cached(package) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(doc);
            }
            self.reads.fetch_add(1, Ordering::Relaxed);
            let doc = self.inner.document(package).await?;
            self.docs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(package.to_owned(), doc.clone());
            Ok(doc)
        })
    }

    // Archives are not cached here: fm verifies every download against the
    // lock's digest, so pass them through.
    fn download<'a>(
        &'a self,
        package: &'a str,
        version: &'a str,
        sink: &'a mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> BoxFuture<'a, Result<u64, RegistryError>> {
        self.inner.download(package, version, sink)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (registry, package, req) = match args.as_slice() {
        [r, p] => (r, p, "*"),
        [r, p, q] => (r, p, q.as_str()),
        _ => {
            eprintln!("usage: caching_registry REGISTRY PACKAGE [REQUIREMENT]");
            return ExitCode::from(2);
        }
    };
    match run(registry, package, req) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:?}");
            ExitCode::FAILURE
        }
    }
}

fn run(registry: &str, package: &str, req: &str) -> miette::Result<()> {
    let client = fm::Client::builder(registry).name("main").open()?;
    let cache = Arc::new(CachingRegistry::new(client.registry()));
    // The resolver takes any `Arc<dyn Registry>`, in priority order.
    let set = fm::client::registry_set([cache.clone() as Arc<dyn Registry>]);
    let deps = [Dependency {
        name: package.to_owned(),
        req: Requirement::parse(req).into_diagnostic()?,
        registry: None,
    }];

    let lock = fm::resolve::resolve(&deps, &set, &Preferences::default())?;
    for p in &lock.packages {
        println!("{} {} from {} (sha256 {})", p.name, p.version, p.registry, p.sha256);
    }
    let first = cache.reads.load(Ordering::Relaxed);
    println!("first resolution: {first} document(s) read from the registry");

    let again = fm::resolve::resolve(&deps, &set, &Preferences::default())?;
    let second = cache.reads.load(Ordering::Relaxed) - first;
    println!(
        "second resolution: {second} document(s) read from the registry, {} from the cache, same result: {}",
        cache.hits.load(Ordering::Relaxed),
        again.packages == lock.packages
    );
    Ok(())
}
