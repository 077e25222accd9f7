//! The configuration file: TOML → validated `RoutingConfig` + `DaemonConfig`.
//!
//! Parsing never panics and never half-applies: either every check passes and a complete config is
//! returned, or every problem found is returned with its file, line and field.

pub mod daemon;
pub mod routing;

use std::fmt;
use std::path::Path;

pub use daemon::DaemonConfig;
pub use routing::*;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line, when the problem can be located.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the field, e.g. `queue[1].steps[2].after_s`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{}:{}: ", self.file, l, c)?,
            (Some(l), None) => write!(f, "{}:{}: ", self.file, l)?,
            _ => write!(f, "{}: ", self.file)?,
        }
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Every problem found in a config file (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A parsed and validated config file.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub routing: RoutingConfig,
    pub daemon: DaemonConfig,
    /// The TOML text it came from (served by `GET /v1/config`).
    pub source: String,
}

/// Parse and validate config text. `origin` names the file in error messages.
pub fn parse(text: &str, origin: &str) -> Result<LoadedConfig, ConfigErrors> {
    let _ = (text, origin);
    todo!("config parsing (helper)")
}

/// Read, parse and validate a config file.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigErrors> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &origin),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file: origin,
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read config file: {e}"),
        }])),
    }
}
