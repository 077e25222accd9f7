//! tierline: a contact-centre routing daemon.
//!
//! - `config`: the TOML file → validated routing + daemon settings.
//! - `engine`: the deterministic router (events + clock in, decisions out).
//! - `daemon`: the engine task, clock, live reload, signals and shutdown around the engine.
//! - `api`: the HTTP API (event intake, decisions, read/admin endpoints, auth, TLS, webhooks out).
//! - `metrics`: Prometheus series, KPI statistics and the `/metrics` listener.
//! - `journal`: durability (input journal, snapshots, crash recovery, verify/dump).
//! - `sim`: the engine in virtual time against synthetic traffic (`tierline simulate`).
//! - `loadgen`: the HTTP load generator and the bare-hyper baseline server (benchmarks only).

pub mod api;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod journal;
pub mod loadgen;
pub mod metrics;
pub mod sim;
