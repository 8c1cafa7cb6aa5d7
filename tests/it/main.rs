//! fm's integration tests: one binary, one module per area (as ripgrep
//! and cargo's testsuite do), each driving the real `fm` binary.
//! Run one area with `cargo test --test it sync::`.

mod archive;
mod buckets;
mod cli_output;
mod cli_truth;
mod clouds;
mod common;
mod concurrency;
mod crash;
mod credentials;
mod diff;
mod examples;
mod faults;
mod file_modes;
mod hostile;
mod http_registry;
mod install_safety;
mod lock;
mod lock_reads;
mod manifest;
mod outdated;
mod portable;
mod prefetch;
mod proxy;
mod publish;
mod registry_cmds;
mod resolve_props;
mod resolve_scenarios;
mod robustness;
mod scale;
mod secrets;
mod serve;
mod server_limits;
mod smoke;
mod sync;
mod sync_relock;
#[path = "../support/synthetic.rs"]
pub mod synthetic;
mod tlog;
mod tlog_client;
mod tlog_concurrency;
mod values;
mod yank_memo;
