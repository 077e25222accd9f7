//! tierline: a contact-centre routing daemon.
//!
//! - `config`: the TOML file → validated routing + daemon settings.
//! - `engine`: the deterministic router (events + clock in, decisions out).
//! - `journal`: durability (input journal, snapshots, crash recovery, verify/dump).

pub mod config;
pub mod engine;
pub mod journal;
