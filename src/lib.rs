//! fm — a declarative, lockfile-driven package manager for FlowMason
//! packages (`.fmpkg`).
//!
//! The pipeline, and where each step lives:
//!
//! 1. [`manifest`] reads `fm.toml`: what the project wants.
//! 2. [`registry`] fetches package documents and archives from directory
//!    and HTTP registries, in priority order.
//! 3. [`resolve`] picks one version per package with PubGrub.
//! 4. [`lock`] writes `fm.lock`: exactly what was picked, with digests.
//! 5. [`install`] reproduces the lock into `.fm/packages`, verified.
//!
//! Beside the pipeline: [`archive`] packs and safely unpacks `.fmpkg` files,
//! [`server`] is the registry server, and [`cli`] parses arguments and prints.
//! [`text`] makes what a registry sends safe to print.
//! [`values`] holds the checked names, digests and locked dependencies the
//! steps pass along, each validated once where it is read.
//! Every registry keeps a transparency log of what it published
//! ([`registry::tlog`]); [`tlog`] is what a client proves with it.
//! For review and CI, [`diff`] compares two locks and [`outdated`] compares a
//! lock with what its registries now offer.
//! Data flows one way along the pipeline; no module reaches back up it.
//!
//! To embed fm: [`Client`] opens one registry (a server or a folder) to
//! search, read versions, download verified archives, publish and yank;
//! [`client::registry_set`] hands clients, or [`registry::Registry`]
//! implementations of your own, to [`resolve::resolve`]; [`Project`] locks
//! and syncs a project (manifest → lock → install). Examples: `examples/`. The
//! map of every module, the trust boundaries and where new code goes:
//! `docs/architecture.md`.

#![allow(clippy::result_large_err)] // miette diagnostics carry their source text

pub mod archive;
pub mod cli;
pub mod client;
pub mod config;
pub mod diff;
pub mod fsutil;
pub mod install;
pub mod location;
pub mod lock;
pub mod manifest;
pub mod names;
pub mod outdated;
pub mod project;
pub mod registry;
pub mod req;
pub mod resolve;
pub mod runtime;
#[cfg(feature = "server")]
pub mod server;
pub mod text;
pub mod tlog;
pub mod values;

pub use client::Client;
pub use project::Project;
