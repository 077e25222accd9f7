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
pub(crate) mod file;
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
        // A TOML key or value quoted in the message may hold a control character (a string
        // with `\u001b`): escaped, so a terminal or a log line shows it rather than obeys it.
        let message = crate::engine::event::Printable(&self.message);
        if self.field.is_empty() {
            write!(f, "{message}")
        } else {
            write!(
                f,
                "{}: {message}",
                crate::engine::event::Printable(&self.field)
            )
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

/// Give problems found against the live state (a field path, no line: the engine knows no
/// text) the line and column where `text` writes their field. Only fields below a top-level
/// entry (`queue[0].channels`, not `queue`) are located: a bare `queue` names a queue the text
/// no longer has, which is nowhere in it.
pub fn locate_fields(text: &str, problems: &mut [ConfigError]) {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else {
        return;
    };
    let loc = locate::Locator::new("", text, &doc);
    for p in problems.iter_mut().filter(|p| p.line.is_none()) {
        let Some(path) = locate::FieldPath::parse(&p.field) else {
            continue;
        };
        if path.depth() < 2 {
            continue;
        }
        let located = loc.error(&path, String::new());
        p.line = located.line;
        p.column = located.column;
    }
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
    let text = read_text(path).map_err(|e| ConfigErrors(vec![e]))?;
    parse(&text, &path.display().to_string())
}

/// Whether config text is blank: white space, or a byte order mark alone (TOML would take either
/// as an empty document, a config with no queues). Refused as such by every way a config comes
/// in: `read_text` (files, at start and on reload) and `PUT /v1/config` (`empty_config`).
pub fn is_blank(text: &str) -> bool {
    text.trim_start_matches('\u{FEFF}').trim().is_empty()
}

/// `host:port`, as a listener takes it: an IP (`127.0.0.1:8080`, `[::1]:8080`) or a host name
/// (`localhost:8080`) and a port number. (`[server] listen`, `[metrics] listen`,
/// `baseline-server --listen`.)
pub fn is_host_port(s: &str) -> bool {
    s.parse::<std::net::SocketAddr>().is_ok()
        || s.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.contains(':')
                && !host.contains(char::is_whitespace)
                && port.parse::<u16>().is_ok()
        })
}

/// A number as a file could have written it, for messages: huge ones in exponent form (`1e300`,
/// not 301 digits; an integer past 2^53 is not exact in a float either).
pub(crate) fn show_number(v: f64) -> String {
    if v.abs() >= 1e15 {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Largest config file read: a config is journaled whole, as one record.
pub const MAX_CONFIG_BYTES: usize = crate::journal::frame::MAX_RECORD_BYTES;

/// A config file's text, as `load` and every reload read it. Refused, with the reason: a file
/// that cannot be read; one larger than `MAX_CONFIG_BYTES` (it could never be journaled; and
/// `/dev/zero` or a log named by mistake is not read without end); text that is not UTF-8 (at
/// the line and column of the first bad byte); and a blank file (nothing but white space):
/// every section has defaults, so it would be a config with no queues and, applied by a
/// reload, remove every queue. A file caught empty half-way through being rewritten is far
/// likelier than that intent, as for `PUT /v1/config`'s `empty_config`.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let origin = path.display().to_string();
    let problem = |line: Option<usize>, column: Option<usize>, message: String| ConfigError {
        file: origin.clone(),
        line,
        column,
        field: String::new(),
        message,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| problem(None, None, format!("cannot read config file: {e}")))?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(problem(
            None,
            None,
            format!(
                "the config file is larger than {MAX_CONFIG_BYTES} bytes, the most one journal \
                 record holds (a config is journaled whole): is it the right file?"
            ),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let valid = std::str::from_utf8(bytes.get(..at).unwrap_or_default()).unwrap_or_default();
        let (line, column) = locate::line_col(valid, at);
        problem(
            Some(line),
            Some(column),
            format!(
                "the config file is not UTF-8: byte 0x{:02X} here starts no character; save \
                 it as UTF-8",
                bytes.get(at).copied().unwrap_or_default()
            ),
        )
    })?;
    if is_blank(&text) {
        return Err(problem(
            None,
            None,
            "the config file is empty: a config with no [[queue]] would route nothing (and, \
             reloaded, remove every queue)"
                .into(),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::ConfigError;

    /// A key or value quoted in a config problem shows its control characters escaped:
    /// `check-config` writes the problem to a terminal, the daemon to its log.
    #[test]
    fn a_config_problem_shows_control_characters_escaped() {
        let problem = ConfigError {
            file: "t.toml".into(),
            line: Some(3),
            column: Some(1),
            field: "queue[0].tiers.no\nwhere".into(),
            message: "unknown strategy `fa\u{1b}st`".into(),
        };
        assert_eq!(
            problem.to_string(),
            "t.toml:3:1: queue[0].tiers.no\\nwhere: unknown strategy `fa\\u{1b}st`"
        );
    }
}
