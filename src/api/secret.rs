//! Where secrets come from: an environment variable or a file, as the config names them
//! (`*_env` or `*_file`), read at start and again on every reload.
//!
//! Container platforms hand secrets over as files (Kubernetes and Docker secrets, systemd
//! `LoadCredential=`), and a file can be rotated while the daemon runs: a reload (SIGHUP, the
//! config file watch, `PUT /v1/config`) reads it again. Both sources give text that is parsed the
//! same way: surrounding whitespace (a file's trailing newline) is trimmed, and the callers split
//! several values on commas. A relative file path is resolved against the working directory,
//! like every other path in the config (`server.tls_cert`, `journal.dir`).
//!
//! This module never logs or prints a secret's value: errors name the field and the file, never
//! the content, and `Secret`'s `Debug` is redacted.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use thiserror::Error;

/// A secret file larger than this is refused: a secret is a line, not a document, and the limit
/// keeps a wrong path (a log file, `/dev/zero`) from being read into memory.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Reads an environment variable (`std::env::var` in the daemon; injectable for tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Why a configured secret could not be read. Messages name the field and the variable or path,
/// never the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretError {
    #[error("{field} names environment variable `{var}`, which is not set or is empty")]
    MissingVar { field: String, var: String },
    #[error("{field}: cannot read secret file {path}: {reason}")]
    Unreadable {
        field: String,
        path: String,
        reason: String,
    },
    #[error("{field}: secret file {path} is empty")]
    EmptyFile { field: String, path: String },
    #[error(
        "{field}: secret file {path} is larger than {MAX_SECRET_FILE_BYTES} bytes; \
         a secret file holds only the secret (is the path right?)"
    )]
    TooLarge { field: String, path: String },
    #[error("{field}: secret file {path} is not UTF-8 text")]
    NotText { field: String, path: String },
    #[error(
        "{field}: a value in {origin} contains a line break; \
         separate several secrets with commas"
    )]
    LineBreak { field: String, origin: String },
    #[error("{env_field} and {file_field} are both set; a secret comes from one of them")]
    BothSet {
        env_field: String,
        file_field: String,
    },
}

/// Where one secret setting reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The environment variable of this name.
    Env(String),
    /// The file at this path (relative: to the working directory).
    File(PathBuf),
}

/// One configured secret: its source and the config field that named it (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSetting {
    /// The config field, e.g. `auth.read_tokens_file` or `subscriber[0].secret_env`.
    pub field: String,
    pub source: SecretSource,
}

impl SecretSetting {
    /// The setting of an `<name>_env` / `<name>_file` pair under `prefix` (`auth`,
    /// `subscriber[0]`): `None` when neither is set. Both set is an error (config validation
    /// refuses it in files; this catches configs built in code).
    pub fn from_pair(
        prefix: &str,
        name: &str,
        env: Option<&str>,
        file: Option<&Path>,
    ) -> Result<Option<SecretSetting>, SecretError> {
        let field = |suffix: &str| format!("{prefix}.{name}_{suffix}");
        match (env, file) {
            (None, None) => Ok(None),
            (Some(var), None) => Ok(Some(SecretSetting {
                field: field("env"),
                source: SecretSource::Env(var.to_string()),
            })),
            (None, Some(path)) => Ok(Some(SecretSetting {
                field: field("file"),
                source: SecretSource::File(path.to_path_buf()),
            })),
            (Some(_), Some(_)) => Err(SecretError::BothSet {
                env_field: field("env"),
                file_field: field("file"),
            }),
        }
    }

    /// The value, trimmed: never empty. Warns (once per read) when a secret file is readable by
    /// group or others.
    pub fn read(&self, env: EnvLookup<'_>) -> Result<String, SecretError> {
        match &self.source {
            SecretSource::Env(var) => {
                let value = env(var).unwrap_or_default();
                let value = value.trim();
                if value.is_empty() {
                    return Err(SecretError::MissingVar {
                        field: self.field.clone(),
                        var: var.clone(),
                    });
                }
                Ok(value.to_string())
            }
            SecretSource::File(path) => read_file(&self.field, path),
        }
    }

    /// The value split into comma-separated secrets (rotation: several are accepted at once),
    /// each trimmed, empty ones dropped; never empty.
    pub fn read_list(&self, env: EnvLookup<'_>) -> Result<Vec<String>, SecretError> {
        let raw = self.read(env)?;
        let values = split_values(&raw);
        if values.is_empty() {
            // Only commas and blanks: as empty as an empty value.
            return Err(self.empty_error());
        }
        if values.iter().any(|v| v.contains(['\n', '\r'])) {
            return Err(SecretError::LineBreak {
                field: self.field.clone(),
                origin: self.origin(),
            });
        }
        Ok(values)
    }

    /// One secret (no splitting): the value must be a single line.
    pub fn read_one(&self, env: EnvLookup<'_>) -> Result<Secret, SecretError> {
        let raw = self.read(env)?;
        if raw.contains(['\n', '\r']) {
            return Err(SecretError::LineBreak {
                field: self.field.clone(),
                origin: self.origin(),
            });
        }
        Ok(Secret::new(raw.into_bytes()))
    }

    fn empty_error(&self) -> SecretError {
        match &self.source {
            SecretSource::Env(var) => SecretError::MissingVar {
                field: self.field.clone(),
                var: var.clone(),
            },
            SecretSource::File(path) => SecretError::EmptyFile {
                field: self.field.clone(),
                path: describe(path),
            },
        }
    }

    /// "environment variable `X`" or "secret file /path".
    fn origin(&self) -> String {
        match &self.source {
            SecretSource::Env(var) => format!("environment variable `{var}`"),
            SecretSource::File(path) => format!("secret file {}", describe(path)),
        }
    }
}

/// Comma-separated values, trimmed, empty ones dropped.
pub fn split_values(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The path as written; a relative one also says what it is relative to.
fn describe(path: &Path) -> String {
    if path.is_relative() {
        match std::env::current_dir() {
            Ok(cwd) => format!(
                "{} (relative to the working directory {})",
                path.display(),
                cwd.display()
            ),
            Err(_) => format!("{} (relative to the working directory)", path.display()),
        }
    } else {
        path.display().to_string()
    }
}

fn read_file(field: &str, path: &Path) -> Result<String, SecretError> {
    let unreadable = |e: std::io::Error| SecretError::Unreadable {
        field: field.to_string(),
        path: describe(path),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    if let Ok(meta) = file.metadata() {
        warn_if_shared(field, path, &meta);
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(SecretError::TooLarge {
            field: field.to_string(),
            path: describe(path),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| SecretError::NotText {
        field: field.to_string(),
        path: describe(path),
    })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(SecretError::EmptyFile {
            field: field.to_string(),
            path: describe(path),
        });
    }
    Ok(value.to_string())
}

/// Whether a file mode lets group or others read, write or run the file (as ssh refuses for
/// private keys; here a warning, since some platforms mount secrets group-readable on purpose).
pub fn is_shared(mode: u32) -> bool {
    mode & 0o077 != 0
}

#[cfg(unix)]
fn warn_if_shared(field: &str, path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if is_shared(mode) {
        tracing::warn!(
            field,
            file = %path.display(),
            mode = format!("{mode:03o}").as_str(),
            "secret file is accessible by group or others; restrict it (chmod 600 or 400)"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_field: &str, _path: &Path, _meta: &std::fs::Metadata) {}

/// A secret's bytes. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Secret {
        Secret(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A secret that reloads can replace while tasks keep using it (a subscriber's signing secret).
#[derive(Debug, Clone)]
pub struct RotatingSecret {
    setting: SecretSetting,
    current: Arc<RwLock<Secret>>,
}

impl RotatingSecret {
    /// Read `setting` for the first time.
    pub fn load(setting: SecretSetting, env: EnvLookup<'_>) -> Result<RotatingSecret, SecretError> {
        let secret = setting.read_one(env)?;
        Ok(RotatingSecret {
            setting,
            current: Arc::new(RwLock::new(secret)),
        })
    }

    /// The secret in force.
    pub fn get(&self) -> Secret {
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Read the source again without changing anything (a reload reads every secret first and
    /// swaps only if all could be read).
    pub fn read_again(&self, env: EnvLookup<'_>) -> Result<Secret, SecretError> {
        self.setting.read_one(env)
    }

    /// Put `secret` in force; whether it differs from the one before.
    pub fn replace(&self, secret: Secret) -> bool {
        let mut current = match self.current.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let changed = *current != secret;
        *current = secret;
        changed
    }

    pub fn setting(&self) -> &SecretSetting {
        &self.setting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn file_setting(path: &Path) -> SecretSetting {
        SecretSetting {
            field: "auth.read_tokens_file".into(),
            source: SecretSource::File(path.to_path_buf()),
        }
    }

    fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(content).unwrap();
        path
    }

    #[test]
    fn a_file_is_parsed_like_the_env_var_trailing_newline_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "tokens", b"  old-token , new-token\n");
        let from_file = file_setting(&path).read_list(&no_env).unwrap();
        let from_env = SecretSetting {
            field: "auth.read_tokens_env".into(),
            source: SecretSource::Env("T".into()),
        }
        .read_list(&|_: &str| Some("  old-token , new-token\n".to_string()))
        .unwrap();
        assert_eq!(from_file, vec!["old-token", "new-token"]);
        assert_eq!(from_file, from_env);
    }

    #[test]
    fn a_crlf_file_is_trimmed_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "s", b"s3cret\r\n");
        assert_eq!(
            file_setting(&path).read_one(&no_env).unwrap().expose(),
            b"s3cret"
        );
    }

    #[test]
    fn a_missing_file_names_the_field_the_path_and_the_os_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope");
        let err = file_setting(&path).read(&no_env).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "auth.read_tokens_file: cannot read secret file {}: ",
                path.display()
            )),
            "{message}"
        );
        assert!(message.contains("No such file or directory"), "{message}");
    }

    #[test]
    fn a_relative_path_says_what_it_is_relative_to() {
        let err = file_setting(Path::new("no/such/secret-file"))
            .read(&no_env)
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("no/such/secret-file (relative to the working directory /"),
            "{message}"
        );
    }

    #[test]
    fn an_empty_or_blank_file_is_refused_without_showing_content() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("empty", &b""[..]),
            ("blank", b" \n\t\n"),
            ("commas", b" , ,\n"),
        ] {
            let path = write(dir.path(), name, content);
            let err = file_setting(&path).read_list(&no_env).unwrap_err();
            assert_eq!(
                err,
                SecretError::EmptyFile {
                    field: "auth.read_tokens_file".into(),
                    path: path.display().to_string()
                },
                "{name}"
            );
        }
    }

    #[test]
    fn a_directory_is_unreadable_with_the_os_reason() {
        let dir = tempfile::tempdir().unwrap();
        let err = file_setting(dir.path()).read(&no_env).unwrap_err();
        assert!(
            matches!(&err, SecretError::Unreadable { reason, .. } if reason.contains("directory")),
            "{err}"
        );
    }

    #[test]
    fn a_huge_or_binary_file_is_refused_and_its_content_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![b'x'; MAX_SECRET_FILE_BYTES as usize + 1];
        let path = write(dir.path(), "big", &big);
        let err = file_setting(&path).read(&no_env).unwrap_err();
        assert!(matches!(err, SecretError::TooLarge { .. }), "{err}");
        assert!(!err.to_string().contains("xxxx"));
        let exact = vec![b'x'; MAX_SECRET_FILE_BYTES as usize];
        let path = write(dir.path(), "exact", &exact);
        assert_eq!(
            file_setting(&path).read(&no_env).unwrap().len(),
            exact.len()
        );

        let path = write(dir.path(), "binary", &[0xff, 0xfe, b's']);
        let err = file_setting(&path).read(&no_env).unwrap_err();
        assert!(matches!(err, SecretError::NotText { .. }), "{err}");
    }

    #[test]
    fn one_secret_per_line_is_refused_with_a_hint_to_use_commas() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "lines", b"first-token\nsecond-token\n");
        let err = file_setting(&path).read_list(&no_env).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("contains a line break"), "{message}");
        assert!(message.contains("separate several secrets with commas"));
        assert!(!message.contains("first-token"), "{message}");
        let err = file_setting(&path).read_one(&no_env).unwrap_err();
        assert!(matches!(err, SecretError::LineBreak { .. }));
    }

    #[test]
    fn an_unset_or_blank_env_var_is_missing() {
        let setting = SecretSetting {
            field: "subscriber[0].secret_env".into(),
            source: SecretSource::Env("HOOK".into()),
        };
        let expected = SecretError::MissingVar {
            field: "subscriber[0].secret_env".into(),
            var: "HOOK".into(),
        };
        assert_eq!(setting.read(&no_env).unwrap_err(), expected);
        assert_eq!(
            setting.read(&|_: &str| Some("  \n".into())).unwrap_err(),
            expected
        );
    }

    #[test]
    fn env_and_file_for_the_same_secret_is_an_error_naming_both() {
        let err = SecretSetting::from_pair("auth", "admin_tokens", Some("A"), Some(Path::new("f")))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "auth.admin_tokens_env and auth.admin_tokens_file are both set; a secret comes from one of them"
        );
        let file = SecretSetting::from_pair("subscriber[2]", "secret", None, Some(Path::new("f")))
            .unwrap()
            .unwrap();
        assert_eq!(file.field, "subscriber[2].secret_file");
        assert_eq!(
            SecretSetting::from_pair("auth", "read_tokens", None, None).unwrap(),
            None
        );
    }

    #[test]
    fn group_or_other_access_is_shared_owner_only_is_not() {
        for mode in [0o600, 0o400, 0o700, 0o200] {
            assert!(!is_shared(mode), "{mode:o}");
        }
        for mode in [0o640, 0o604, 0o644, 0o660, 0o601, 0o610, 0o777] {
            assert!(is_shared(mode), "{mode:o}");
        }
    }

    #[test]
    fn a_rotating_secret_is_read_again_and_replaced_only_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "s", b"one\n");
        let setting = SecretSetting {
            field: "subscriber[0].secret_file".into(),
            source: SecretSource::File(path.clone()),
        };
        let secret = RotatingSecret::load(setting, &no_env).unwrap();
        write(dir.path(), "s", b"two\n");
        assert_eq!(secret.get().expose(), b"one");
        let fresh = secret.read_again(&no_env).unwrap();
        assert!(secret.replace(fresh.clone()));
        assert_eq!(secret.get().expose(), b"two");
        assert!(!secret.replace(fresh));
        assert_eq!(format!("{:?}", secret.get()), "Secret(<redacted>)");
        assert!(!format!("{secret:?}").contains("two"));
    }
}
