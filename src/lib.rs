//! tierline: a contact-centre routing daemon.
//!
//! - `config`: the TOML file → validated routing + daemon settings.
//! - `engine`: the deterministic router (events + clock in, decisions out).
//! - `loadgen`: the HTTP load generator and the bare-hyper baseline server (benchmarks only).

pub mod config;
pub mod engine;
pub mod loadgen;
