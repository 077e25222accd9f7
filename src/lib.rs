//! tierline: a contact-centre routing daemon.
//!
//! - `config`: the TOML file → validated routing + daemon settings.
//! - `engine`: the deterministic router (events + clock in, decisions out).
//! - `daemon`: the engine task, clock, live reload, signals and shutdown around the engine.
//! - `api`: the HTTP API (event intake, decisions, read/admin endpoints, auth, TLS, webhooks out).
//! - `loadgen`: the HTTP load generator and the bare-hyper baseline server (benchmarks only).

pub mod api;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod loadgen;
