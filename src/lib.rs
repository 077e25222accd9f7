//! tierline: a contact-centre routing daemon.
//!
//! - `config`: the TOML file → validated routing + daemon settings.
//! - `engine`: the deterministic router (events + clock in, decisions out).
//! - `sim`: the engine in virtual time against synthetic traffic (`tierline simulate`).

pub mod config;
pub mod engine;
pub mod sim;
