//! Subscriber acknowledgements: the seq of the last decision each outbound webhook subscriber
//! answered 2xx for, kept durably so delivery resumes after it on restart (at-least-once).
//!
//! One small file per subscriber, `DIR/subscribers/<shown name>-<crc32c of name>.ack`, holding
//! one JSON line `{"subscriber":"<shown name>","name_crc32c":"…","acked":N}`. The shown name is
//! the subscriber's `name`, or for one without a name its URL with credentials, query and
//! fragment hidden (`api::subscriber::redacted_url`): a token in a webhook URL is not copied
//! into a file name or a file. (Files written before that, named and holding the whole URL, are
//! still read, and replaced by the new file at the first store.) It is replaced atomically — write a temp file,
//! sync it, rename it over the old one, sync the directory — so a crash leaves the old value or
//! the new one, never a mix. An ack that is lost (a crash between the 2xx and the rename) only
//! means the batch is delivered again, which at-least-once allows and the seq lets the receiver
//! de-duplicate.
//!
//! Why a file per subscriber and not a journal record: acks are delivery progress, not routing
//! state. Journaling them would put every subscriber's 2xx through the engine task and into the
//! deterministic replay, grow the journal and the snapshots with data routing never reads, and
//! couple a slow subscriber to routing's write path. A file per subscriber is written by the
//! subscriber's own task, off the engine task, and fails on its own (a failed write is logged and
//! costs redelivery, never routing). It never reads a clock and never decides anything about
//! routing.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{sync_dir, JournalError};

/// Subdirectory of the journal directory holding the ack files.
pub const ACKS_DIR: &str = "subscribers";
const ACK_EXT: &str = "ack";

/// What an ack file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Ack {
    /// The subscriber's shown name and (below) a checksum of its whole name, so a file is never
    /// read for another subscriber. Before `name_crc32c` existed: the whole name.
    subscriber: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name_crc32c: Option<String>,
    /// The seq of the last decision acknowledged (every decision ≤ it was answered 2xx, or
    /// filtered out by the subscriber's `types`).
    acked: u64,
}

/// The ack file of one subscriber. Cheap to clone; every method does blocking file I/O (call it
/// from `spawn_blocking`, never on the engine task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckFile {
    path: PathBuf,
    /// Where the file was before names were shown redacted, when that differs from `path`.
    legacy: Option<PathBuf>,
    /// The whole name (a URL for an unnamed subscriber).
    subscriber: String,
    /// The name as files may show it.
    shown: String,
    /// Sync file and directory on every store (off only with `journal.sync = "none"`).
    sync: bool,
}

impl AckFile {
    /// The ack file for the subscriber called `name` (shown as `shown`: the same, or its URL
    /// with the secrets hidden) under journal directory `journal_dir`.
    pub fn for_subscriber(journal_dir: &Path, name: &str, shown: &str, sync: bool) -> AckFile {
        let dir = journal_dir.join(ACKS_DIR);
        let path = dir.join(format!("{}.{ACK_EXT}", file_stem(shown, name)));
        let legacy = dir.join(format!("{}.{ACK_EXT}", file_stem(name, name)));
        AckFile {
            legacy: (legacy != path).then_some(legacy),
            path,
            subscriber: name.to_string(),
            shown: shown.to_string(),
            sync,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last acknowledged seq, `None` if this subscriber has never been recorded. A file that
    /// cannot be read or belongs to someone else is an error naming the file and why.
    pub fn load(&self) -> Result<Option<u64>, JournalError> {
        // The current file first, then the one an earlier version named with the whole URL.
        for path in std::iter::once(&self.path).chain(&self.legacy) {
            if let Some(text) = Self::read(path)? {
                return self.parse(path, &text).map(Some);
            }
        }
        Ok(None)
    }

    /// A file's text; `None` if there is no such file.
    fn read(path: &Path) -> Result<Option<String>, JournalError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(JournalError::io("read", path, e)),
        }
    }

    /// The seq an ack file at `path` holds, if it is this subscriber's.
    fn parse(&self, path: &Path, text: &str) -> Result<u64, JournalError> {
        let bad = |reason: String| JournalError::Ack {
            path: path.to_path_buf(),
            reason,
        };
        let ack: Ack = serde_json::from_str(text.trim())
            .map_err(|e| bad(format!("not an ack record ({e})")))?;
        let ours = match &ack.name_crc32c {
            Some(crc) => ack.subscriber == self.shown && *crc == name_crc32c(&self.subscriber),
            None => ack.subscriber == self.subscriber,
        };
        if !ours {
            return Err(bad(format!(
                "it belongs to subscriber {:?}, not {:?}",
                ack.subscriber, self.shown
            )));
        }
        Ok(ack.acked)
    }

    /// Forget this subscriber (its file, and an earlier version's): recorded again, it is new.
    pub fn remove(&self) -> Result<(), JournalError> {
        for path in std::iter::once(&self.path).chain(&self.legacy) {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(JournalError::io("remove", path, e)),
            }
        }
        if self.sync {
            if let Some(dir) = self.path.parent() {
                sync_dir(dir)?;
            }
        }
        Ok(())
    }

    /// Record `acked` durably (atomic replace; see the module docs).
    pub fn store(&self, acked: u64) -> Result<(), JournalError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io("create", dir, e))?;
        let tmp = self.path.with_extension(format!("{ACK_EXT}.tmp"));
        let mut line = serde_json::to_vec(&Ack {
            subscriber: self.shown.clone(),
            name_crc32c: Some(name_crc32c(&self.subscriber)),
            acked,
        })
        .map_err(|e| JournalError::Ack {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        line.push(b'\n');
        let mut file =
            std::fs::File::create(&tmp).map_err(|e| JournalError::io("create", &tmp, e))?;
        file.write_all(&line)
            .map_err(|e| JournalError::io("write", &tmp, e))?;
        if self.sync {
            file.sync_data()
                .map_err(|e| JournalError::io("sync", &tmp, e))?;
        }
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(|e| JournalError::io("rename", &tmp, e))?;
        // The file of an earlier version, named with the whole URL, goes once the new one is
        // in place (a crash between the two: the new one is read first).
        if let Some(legacy) = &self.legacy {
            match std::fs::remove_file(legacy) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(JournalError::io("remove", legacy, e)),
            }
        }
        if self.sync {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

/// The checksum of a subscriber's whole name an ack file carries, as 8 hex digits.
fn name_crc32c(name: &str) -> String {
    format!("{:08x}", crc32c::crc32c(name.as_bytes()))
}

/// A file-name-safe stem for a subscriber: the safe characters of its shown name, shortened,
/// plus a checksum of its whole name so two names never share a file.
fn file_stem(shown: &str, name: &str) -> String {
    let safe: String = shown
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{safe}-{}", name_crc32c(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_ack_loads_back_and_a_new_subscriber_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let ack = AckFile::for_subscriber(
            dir.path(),
            "http://pbx:8080/hook",
            "http://pbx:8080/hook",
            true,
        );
        assert_eq!(ack.load().unwrap(), None);
        ack.store(41).unwrap();
        ack.store(42).unwrap();
        assert_eq!(ack.load().unwrap(), Some(42));
        // Only the ack file is left behind, under subscribers/.
        let names: Vec<String> = std::fs::read_dir(dir.path().join(ACKS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].starts_with("http___pbx_8080_hook-"), "{names:?}");
    }

    #[test]
    fn names_that_sanitize_alike_get_different_files() {
        let dir = Path::new("/data");
        let a = AckFile::for_subscriber(dir, "pbx/a", "pbx/a", true);
        let b = AckFile::for_subscriber(dir, "pbx:a", "pbx:a", true);
        assert_ne!(a.path(), b.path());
    }

    #[test]
    fn a_damaged_or_foreign_ack_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ack = AckFile::for_subscriber(dir.path(), "pbx", "pbx", false);
        ack.store(7).unwrap();
        std::fs::write(ack.path(), b"{\"subscriber\":\"other\",\"acked\":7}\n").unwrap();
        let err = ack.load().unwrap_err().to_string();
        assert!(err.contains("belongs to subscriber \"other\""), "{err}");
        assert!(err.contains(".ack"), "{err}");
        std::fs::write(ack.path(), b"{\"subscr").unwrap();
        let err = ack.load().unwrap_err().to_string();
        assert!(err.contains("not an ack record"), "{err}");
    }

    /// An unnamed subscriber whose URL carries a token: neither the file's name nor its
    /// content holds the token. A file an earlier version wrote (named with, and holding, the
    /// whole URL) is read, and replaced by the new one at the first store.
    #[test]
    fn a_secret_in_a_webhook_url_stays_out_of_the_ack_file_and_an_old_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let url = "https://user:s3cret@pbx:8443/hook?token=t0ken";
        let shown = "https://…@pbx:8443/hook…";
        // What an earlier version wrote.
        let old = dir
            .path()
            .join(ACKS_DIR)
            .join(format!("{}.{ACK_EXT}", file_stem(url, url)));
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        let line = serde_json::json!({"subscriber": url, "acked": 17}).to_string();
        std::fs::write(&old, line).unwrap();

        let ack = AckFile::for_subscriber(dir.path(), url, shown, true);
        assert_ne!(ack.path(), old.as_path());
        assert_eq!(ack.load().unwrap(), Some(17), "the old file is read");
        ack.store(18).unwrap();
        assert_eq!(ack.load().unwrap(), Some(18));
        assert!(
            !old.exists(),
            "the old file is gone once the new one is in place"
        );
        let names: Vec<String> = std::fs::read_dir(dir.path().join(ACKS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let text = std::fs::read_to_string(ack.path()).unwrap();
        for secret in ["s3cret", "t0ken", "user"] {
            assert!(!names[0].contains(secret), "{names:?}");
            assert!(!text.contains(secret), "{text}");
        }
        // Another URL shown alike is another subscriber: its file is not this one's.
        let other = AckFile::for_subscriber(
            dir.path(),
            "https://user:other@pbx:8443/hook?token=t0ken",
            shown,
            true,
        );
        assert_ne!(other.path(), ack.path());
        std::fs::copy(ack.path(), other.path()).unwrap();
        let err = other.load().unwrap_err().to_string();
        assert!(err.contains("belongs to subscriber"), "{err}");
    }
}
