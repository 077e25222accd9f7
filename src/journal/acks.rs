//! Subscriber acknowledgements: the seq of the last decision each outbound webhook subscriber
//! answered 2xx for, kept durably so delivery resumes after it on restart (at-least-once).
//!
//! One small file per subscriber, `DIR/subscribers/<name>-<crc32c of name>.ack`, holding one
//! JSON line `{"subscriber":"…","acked":N}`. It is replaced atomically — write a temp file,
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
    /// The subscriber's name, so a file is never read for another subscriber.
    subscriber: String,
    /// The seq of the last decision acknowledged (every decision ≤ it was answered 2xx, or
    /// filtered out by the subscriber's `types`).
    acked: u64,
}

/// The ack file of one subscriber. Cheap to clone; every method does blocking file I/O (call it
/// from `spawn_blocking`, never on the engine task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckFile {
    path: PathBuf,
    subscriber: String,
    /// Sync file and directory on every store (off only with `journal.sync = "none"`).
    sync: bool,
}

impl AckFile {
    /// The ack file for the subscriber called `name` under journal directory `journal_dir`.
    pub fn for_subscriber(journal_dir: &Path, name: &str, sync: bool) -> AckFile {
        AckFile {
            path: journal_dir
                .join(ACKS_DIR)
                .join(format!("{}.{ACK_EXT}", file_stem(name))),
            subscriber: name.to_string(),
            sync,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last acknowledged seq, `None` if this subscriber has never been recorded. A file that
    /// cannot be read or belongs to someone else is an error naming the file and why.
    pub fn load(&self) -> Result<Option<u64>, JournalError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(JournalError::io("read", &self.path, e)),
        };
        let bad = |reason: String| JournalError::Ack {
            path: self.path.clone(),
            reason,
        };
        let ack: Ack = serde_json::from_str(text.trim())
            .map_err(|e| bad(format!("not an ack record ({e})")))?;
        if ack.subscriber != self.subscriber {
            return Err(bad(format!(
                "it belongs to subscriber {:?}, not {:?}",
                ack.subscriber, self.subscriber
            )));
        }
        Ok(Some(ack.acked))
    }

    /// Record `acked` durably (atomic replace; see the module docs).
    pub fn store(&self, acked: u64) -> Result<(), JournalError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io("create", dir, e))?;
        let tmp = self.path.with_extension(format!("{ACK_EXT}.tmp"));
        let mut line = serde_json::to_vec(&Ack {
            subscriber: self.subscriber.clone(),
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
        if self.sync {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

/// A file-name-safe stem for a subscriber name (often a URL): its safe characters, shortened,
/// plus a checksum of the whole name so two names never share a file.
fn file_stem(name: &str) -> String {
    let safe: String = name
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
    format!("{safe}-{:08x}", crc32c::crc32c(name.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_ack_loads_back_and_a_new_subscriber_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let ack = AckFile::for_subscriber(dir.path(), "http://pbx:8080/hook", true);
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
        let a = AckFile::for_subscriber(dir, "pbx/a", true);
        let b = AckFile::for_subscriber(dir, "pbx:a", true);
        assert_ne!(a.path(), b.path());
    }

    #[test]
    fn a_damaged_or_foreign_ack_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ack = AckFile::for_subscriber(dir.path(), "pbx", false);
        ack.store(7).unwrap();
        std::fs::write(ack.path(), b"{\"subscriber\":\"other\",\"acked\":7}\n").unwrap();
        let err = ack.load().unwrap_err().to_string();
        assert!(err.contains("belongs to subscriber \"other\""), "{err}");
        assert!(err.contains(".ack"), "{err}");
        std::fs::write(ack.path(), b"{\"subscr").unwrap();
        let err = ack.load().unwrap_err().to_string();
        assert!(err.contains("not an ack record"), "{err}");
    }
}
