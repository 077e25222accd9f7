//! Durability: the input journal, snapshots, crash recovery, and the offline `verify`/`dump`.
//!
//! The engine is deterministic, so the journal of accepted inputs *is* the routing state. This
//! module owns everything on disk in the journal directory:
//!
//! - `<first index>.seg`: segments of an append-only log of frames (`frame`, `segment`, `log`).
//!   One batch of inputs is one frame, written before any input of it is applied and synced
//!   (here, or by the caller on another thread: `Journal::write`) before any effect is answered.
//! - `<index>.snap`: snapshots of the whole replayable state (`snapshot`); recovery restores the
//!   newest good one and replays the records after it through the same code (`recovery`).
//! - `LOCK`: held (`flock`) while a daemon has the journal open, so two never write it at once.
//! - `subscribers/<name>.ack`: each outbound subscriber's last acknowledged decision seq (`acks`).
//!
//! It never decides anything about routing, never reads a clock (callers pass engine time for the
//! snapshot schedule) and spawns nothing on the write path: the caller either waits for the sync
//! (`Journal::append`) or writes (`Journal::write`) and syncs `Log::active_file` on a thread of
//! its own (the daemon's `tierline-sync`, `daemon::commit`). Recovery alone decodes on a scoped
//! helper thread, before the daemon serves.
//! A snapshot is captured by the caller at one journal position (`Journal::prepare_snapshot`)
//! and encoded, written and pruned by `PendingSnapshot::write` on whatever thread the caller
//! chooses (the daemon uses a dedicated one, `daemon::durable`).
//! See docs/DURABILITY.md for the storage choice and its failure modes.

pub mod acks;
pub mod frame;
pub mod inspect;
pub mod log;
pub mod recovery;
pub mod segment;
pub mod snapshot;

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

pub use acks::AckFile;
pub use inspect::{dump, verify, VerifyReport};
pub use log::{Log, LogOptions, OpenReport};
pub use recovery::{
    Capture, Journal, JournalOptions, PendingSnapshot, RecoveryReport, Replay, WrittenSnapshot,
};
pub use segment::{SegmentFile, SkippedDamage, TornTail};
pub use snapshot::SnapshotFile;

/// Everything that can go wrong with the journal. Each names the file (and offset) involved.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot {op} {}: {source}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Damage inside acknowledged data: recovery refuses to start rather than lose it silently.
    #[error(
        "journal damaged: {} at byte {offset}: {damage} (what to do: docs/DURABILITY.md, \
         \"Failure modes\")",
        .path.display()
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        damage: String,
    },
    #[error(
        "journal has a hole: {} starts at record {found} but record {expected} was expected",
        .path.display()
    )]
    Gap {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error(
        "{} is named like a journal file but is a {kind}: move it out of the journal directory",
        .path.display()
    )]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error(
        "journal directory {} is in use by another process (it holds {})",
        .path.parent().unwrap_or(.path).display(),
        .path.display()
    )]
    Locked { path: PathBuf },
    #[error("a journal record of {bytes} bytes is over the limit of {max} bytes")]
    RecordTooLarge { bytes: usize, max: usize },
    #[error("a journal record must not be empty")]
    EmptyRecord,
    #[error("cannot encode input {position} of the batch for the journal: {reason}")]
    Encode { position: usize, reason: String },
    #[error("journal record {index}{} cannot be read back: {reason}", located(.at))]
    Decode {
        index: u64,
        reason: String,
        /// The segment file and the byte offset of the frame holding the record, filled in by
        /// the scan that found it (`None` only before it is).
        at: Option<(PathBuf, u64)>,
    },
    #[error("snapshot {}: {reason}", .path.display())]
    Snapshot { path: PathBuf, reason: String },
    #[error("subscriber ack file {}: {reason}", .path.display())]
    Ack { path: PathBuf, reason: String },
    #[error("cannot take a snapshot: {reason}")]
    SnapshotState { reason: String },
    #[error("{} holds journal records but no usable snapshot to replay them onto{}", .dir.display(), .why)]
    NoSnapshot { dir: PathBuf, why: String },
}

/// " (frame at byte N of PATH)", or nothing when the place is not known.
fn located(at: &Option<(PathBuf, u64)>) -> String {
    match at {
        Some((path, offset)) => format!(" (frame at byte {offset} of {})", path.display()),
        None => String::new(),
    }
}

impl JournalError {
    /// A record that does not decode; the scan that read it adds where it is (`at`).
    pub fn decode(index: u64, reason: impl Into<String>) -> JournalError {
        JournalError::Decode {
            index,
            reason: reason.into(),
            at: None,
        }
    }

    /// Add the place of the record a `Decode` error is about, if it has none yet.
    pub(crate) fn at_frame(self, path: &Path, offset: u64) -> JournalError {
        match self {
            JournalError::Decode {
                index,
                reason,
                at: None,
            } => JournalError::Decode {
                index,
                reason,
                at: Some((path.to_path_buf(), offset)),
            },
            other => other,
        }
    }

    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> JournalError {
        JournalError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether this is the disk refusing a write (full, over quota, read-only, I/O error) rather
    /// than damaged data: the daemon answers 503 and keeps going.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, JournalError::Io { .. })
    }

    /// Whether this is a failed fsync/fdatasync (of a segment or the directory). The kernel may
    /// have dropped the dirty pages it could not write and a retried sync can then succeed
    /// without them ("fsyncgate"), so the daemon treats it as fatal, never as retryable.
    pub fn is_sync_failure(&self) -> bool {
        matches!(self, JournalError::Io { op, .. } if *op == "sync" || *op == "sync directory")
    }
}

/// fdatasync(2) a journal file, then make sure it is still in the journal directory: a
/// segment deleted while the daemon runs (`rm -rf` of the data directory, a cleanup job) syncs
/// fine, but to an inode nothing will ever read again, so every record acknowledged after the
/// deletion would be lost at the next start. It fails like an fsync error instead (the daemon
/// answers 503 and stops; DURABILITY.md, failure modes).
pub fn sync_journal_file(file: &File) -> std::io::Result<()> {
    file.sync_data()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if file.metadata()?.nlink() == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the file was deleted while in use (its journal directory entry is gone): \
                 records written to it would be lost at the next start",
            ));
        }
    }
    Ok(())
}

/// Make a directory's entries (new, renamed or removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io("sync directory", dir, e))
}

/// A daemon's hold on its journal directory: `DIR/LOCK` and the directory itself, each
/// `flock`ed exclusively for as long as this lives.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
    _dir: File,
}

/// Take `DIR/LOCK` and the directory exclusively for as long as the returned lock lives. The
/// directory's own lock holds when `LOCK` is deleted or replaced while a daemon runs (a
/// clean-up job, an operator's `rm`): a second daemon would otherwise lock a new `LOCK` and
/// write the same segment. `LOCK` stays for older builds, which lock only it.
pub(crate) fn lock_dir(dir: &Path) -> Result<DirLock, JournalError> {
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| JournalError::io("open", &path, e))?;
    flock_exclusive(&file, &path)?;
    let dir_file = File::open(dir).map_err(|e| JournalError::io("open", dir, e))?;
    flock_exclusive(&dir_file, &path)?;
    Ok(DirLock {
        _file: file,
        _dir: dir_file,
    })
}

/// `flock(LOCK_EX | LOCK_NB)`: `Locked` (naming `lock_path`) when another process holds it.
fn flock_exclusive(file: &File, lock_path: &Path) -> Result<(), JournalError> {
    // SAFETY: flock on a file descriptor we own; it has no memory-safety preconditions.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::WouldBlock {
            return Err(JournalError::Locked {
                path: lock_path.to_path_buf(),
            });
        }
        return Err(JournalError::io("lock", lock_path, err));
    }
    Ok(())
}
