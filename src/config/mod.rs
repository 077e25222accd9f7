//! The configuration file: TOML → validated `RoutingConfig` + `DaemonConfig`.
//!
//! Parsing never panics and never half-applies: either every check passes and a complete config is
//! returned, or every problem found is returned with its file, line and field.
//!
//! The pipeline: `toml_edit` parses the text keeping positions → `file` reads each section into
//! raw structs shaped exactly like the file → `validate` checks them and resolves defaults →
//! `locate` turns every problem's field path into a line and column. `config/tierline.toml` is the
//! documented example of every option.

pub mod daemon;
mod file;
pub(crate) mod locate;
pub mod routing;
mod schedule;
pub mod summary;
mod validate;

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
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = locate::line_col(text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            return Err(ConfigErrors(vec![ConfigError {
                file: origin.to_string(),
                line,
                column,
                field: String::new(),
                message: format!("TOML syntax error: {}", file::one_line(e.message())),
            }]));
        }
    };
    let loc = locate::Locator::new(origin, text, &doc);
    let (raw, mut errors) = file::read(&doc, &loc);
    match validate::resolve(&raw, &loc) {
        Ok((routing, daemon)) if errors.is_empty() => Ok(LoadedConfig {
            routing,
            daemon,
            source: text.to_string(),
        }),
        Ok(_) => Err(sorted(errors)),
        Err(more) => {
            errors.extend(more);
            Err(sorted(errors))
        }
    }
}

/// File order reads best; problems without a position go last.
fn sorted(mut errors: Vec<ConfigError>) -> ConfigErrors {
    errors.sort_by_key(|e| (e.line.is_none(), e.line, e.column));
    ConfigErrors(errors)
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
