//! tierline: a contact-centre routing daemon.
//!
//! - `config`: the TOML file → validated routing + daemon settings.
//! - `engine`: the deterministic router (events + clock in, decisions out).
//! - `metrics`: Prometheus series, KPI statistics and the `/metrics` listener.

pub mod config;
pub mod engine;
pub mod metrics;
