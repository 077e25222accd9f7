//! Snapshot files: the whole replayable state as of one journal index, written atomically.
//!
//! `DIR/<index, 20 digits>.snap` holds the state after applying records `1..=index`:
//!
//! ```text
//! [magic "TLSNAP01"][index u64 LE][payload_len u64 LE][crc32c u32 LE][payload]
//! crc32c covers index, payload_len and the payload.
//! ```
//!
//! A snapshot is written to a `.tmp` file, synced, renamed into place and the directory synced, so
//! a crash leaves either the old set of snapshots or the new one, never a half file under a real
//! name. The payload's format belongs to the state (`Replay`); this module never looks inside it.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::segment::{list_numbered, SNAPSHOT_EXT, TEMP_EXT};
use super::{sync_dir, JournalError};

const MAGIC: &[u8; 8] = b"TLSNAP01";
const HEADER_BYTES: usize = 8 + 8 + 8 + 4;

/// One snapshot file on disk (not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// The last journal index it covers.
    pub index: u64,
    pub path: PathBuf,
}

pub(crate) fn snapshot_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.{SNAPSHOT_EXT}"))
}

/// The snapshots in `dir`, oldest first.
pub fn list_snapshots(dir: &Path) -> Result<Vec<SnapshotFile>, JournalError> {
    Ok(list_numbered(dir, SNAPSHOT_EXT)?
        .into_iter()
        .map(|(index, path)| SnapshotFile { index, path })
        .collect())
}

/// Write the state as of `index` and make it durable (unless `sync` is off). Returns its path.
pub fn write_snapshot(
    dir: &Path,
    index: u64,
    payload: &[u8],
    sync: bool,
) -> Result<PathBuf, JournalError> {
    write_snapshot_parts(dir, index, &[payload], sync)
}

/// `write_snapshot` with the payload given as consecutive parts (so a state encoded in pieces is
/// never copied into one buffer first).
pub fn write_snapshot_parts(
    dir: &Path,
    index: u64,
    parts: &[&[u8]],
    sync: bool,
) -> Result<PathBuf, JournalError> {
    let path = snapshot_path(dir, index);
    let tmp = path.with_extension(format!("{SNAPSHOT_EXT}.{TEMP_EXT}"));
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&index.to_le_bytes());
    header.extend_from_slice(&(payload_len as u64).to_le_bytes());
    let crc = parts
        .iter()
        .fold(crc32c::crc32c(&header[8..]), |crc, part| {
            crc32c::crc32c_append(crc, part)
        });
    header.extend_from_slice(&crc.to_le_bytes());
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(|e| JournalError::io("create", &tmp, e))?;
        // Big sequential writes: the payload can be hundreds of MiB.
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header)
            .and_then(|()| parts.iter().try_for_each(|part| out.write_all(part)))
            .map_err(|e| JournalError::io("write", &tmp, e))?;
        let file = out
            .into_inner()
            .map_err(|e| JournalError::io("write", &tmp, e.into_error()))?;
        if sync {
            file.sync_all()
                .map_err(|e| JournalError::io("sync", &tmp, e))?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| JournalError::io("rename", &tmp, e))?;
        if sync {
            sync_dir(dir)?;
        }
        Ok(path.clone())
    })();
    if result.is_err() {
        // Best effort: a half-written temp file is harmless (ignored and removed at open) but
        // takes space that a full disk needs back.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Read and check one snapshot: its index and payload.
pub fn read_snapshot(path: &Path) -> Result<(u64, Vec<u8>), JournalError> {
    let bad = |reason: String| JournalError::Snapshot {
        path: path.to_path_buf(),
        reason,
    };
    let mut bytes = std::fs::read(path).map_err(|e| JournalError::io("read", path, e))?;
    if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
        return Err(bad("not a tierline snapshot (bad magic)".into()));
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let index = word(8);
    let len = word(16);
    let crc = u32::from_le_bytes(bytes[24..28].try_into().unwrap_or([0; 4]));
    if len != (bytes.len() - HEADER_BYTES) as u64 {
        return Err(bad(format!(
            "says {len} payload bytes but the file holds {}",
            bytes.len() - HEADER_BYTES
        )));
    }
    if crc32c::crc32c_append(crc32c::crc32c(&bytes[8..24]), &bytes[HEADER_BYTES..]) != crc {
        return Err(bad("checksum mismatch".into()));
    }
    if numbered_index(path).is_some_and(|n| n != index) {
        return Err(bad(format!(
            "file name says index {:?} but it holds {index}",
            numbered_index(path)
        )));
    }
    bytes.drain(..HEADER_BYTES);
    Ok((index, bytes))
}

fn numbered_index(path: &Path) -> Option<u64> {
    super::segment::numbered(path, SNAPSHOT_EXT)
}

/// Delete all but the newest `keep` snapshots (and stray temp files). Returns the oldest index
/// kept, which bounds what journal segments can go.
pub fn prune_snapshots(dir: &Path, keep: usize) -> Result<Option<u64>, JournalError> {
    let snaps = list_snapshots(dir)?;
    let keep = keep.max(1);
    let cut = snaps.len().saturating_sub(keep);
    for s in &snaps[..cut] {
        std::fs::remove_file(&s.path).map_err(|e| JournalError::io("remove", &s.path, e))?;
    }
    Ok(snaps.get(cut).map(|s| s.index))
}
