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

use std::io::{Seek, SeekFrom, Write};
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

/// The record the newest snapshot file in `dir` was taken after (0 with none): usable or not, it
/// proves every record up to it was synced, so damage there is never a torn tail (as recovery
/// with `sync = "batch"` or `"always"` judges it; `journal verify`, `journal dump`, the replay).
pub fn newest_snapshot_index(dir: &Path) -> Result<u64, JournalError> {
    Ok(list_snapshots(dir)?.last().map_or(0, |s| s.index))
}

/// Write the state as of `index` and make it durable (unless `sync` is off). Returns its path.
pub fn write_snapshot(
    dir: &Path,
    index: u64,
    payload: &[u8],
    sync: bool,
) -> Result<PathBuf, JournalError> {
    write_snapshot_streamed(dir, index, sync, |out| {
        out.write_all(payload).map_err(|e| e.to_string())
    })
    .map(|(path, _)| path)
}

/// Write the snapshot as of `index` with its payload produced by `encode` straight into the file
/// (through a 1 MiB buffer), so a payload of hundreds of MiB is never held in memory: the header
/// goes in as a placeholder and is filled in (length and checksum) once the payload is written.
/// Returns the path and the payload's length. An error from `encode` that came from the file
/// (disk full, I/O error) is reported as that I/O error; any other as `SnapshotState`.
pub fn write_snapshot_streamed(
    dir: &Path,
    index: u64,
    sync: bool,
    encode: impl FnOnce(&mut dyn Write) -> Result<(), String>,
) -> Result<(PathBuf, u64), JournalError> {
    let path = snapshot_path(dir, index);
    let tmp = path.with_extension(format!("{SNAPSHOT_EXT}.{TEMP_EXT}"));
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(|e| JournalError::io("create", &tmp, e))?;
        let file = PacedFile::new(file, if sync { WRITEBACK_EVERY } else { 0 });
        // Big sequential writes: the payload can be hundreds of MiB.
        let mut out = ChecksumWriter {
            inner: std::io::BufWriter::with_capacity(1 << 20, file),
            crc: 0,
            len: 0,
            failed: None,
        };
        out.inner
            .write_all(&[0; HEADER_BYTES])
            .map_err(|e| JournalError::io("write", &tmp, e))?;
        if let Err(reason) = encode(&mut out) {
            return Err(match out.failed.take() {
                Some(e) => JournalError::io("write", &tmp, e),
                None => JournalError::SnapshotState { reason },
            });
        }
        let (payload_crc, payload_len) = (out.crc, out.len);
        let mut file = out
            .inner
            .into_inner()
            .map_err(|e| JournalError::io("write", &tmp, e.into_error()))?
            .file;
        let mut header = Vec::with_capacity(HEADER_BYTES);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&index.to_le_bytes());
        header.extend_from_slice(&payload_len.to_le_bytes());
        let crc = crc32c::crc32c_combine(
            crc32c::crc32c(&header[8..]),
            payload_crc,
            payload_len as usize,
        );
        header.extend_from_slice(&crc.to_le_bytes());
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&header))
            .map_err(|e| JournalError::io("write", &tmp, e))?;
        if sync {
            file.sync_all()
                .map_err(|e| JournalError::io("sync", &tmp, e))?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| JournalError::io("rename", &tmp, e))?;
        if sync {
            sync_dir(dir)?;
        }
        Ok((path.clone(), payload_len))
    })();
    if result.is_err() {
        // Best effort: a half-written temp file is harmless (ignored and removed at open) but
        // takes space that a full disk needs back.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// How much of a snapshot is written before the kernel is asked to write it back (`PacedFile`).
const WRITEBACK_EVERY: u64 = 1 << 20;

/// The snapshot file, written back to disk as it is written, `every` bytes at a time (Linux
/// `sync_file_range`, waiting for each range, like RocksDB's `bytes_per_sync` with
/// `strict_bytes_per_sync`), so that little of it is still dirty when it is synced.
///
/// Why: the journal's group commit `fdatasync`s its segment every few milliseconds on the same
/// filesystem. Left to the final `fsync`, a snapshot of tens of MiB is written back all at once,
/// and a journal sync issued meanwhile could wait behind it, and every answer waiting for
/// durability with it (measured: in one run at 10,000 events/s a 20 MB snapshot held a journal
/// sync 100–250 ms; controlled, 88 MB written beside a 2 ms sync loop: worst sync 30–56 ms at
/// once, 9–23 ms paced; docs/BENCHMARKS.md). Paced, a journal sync waits for about one chunk.
///
/// `every = 0` writes straight through (`sync = none`: nothing is synced, nothing paced).
struct PacedFile {
    file: std::fs::File,
    /// 0: not paced.
    every: u64,
    written: u64,
    /// Bytes from the start already asked to be written back.
    paced: u64,
    /// How a range is written back (`write_back_range`; a failing one in tests).
    write_back_range: WriteBack,
    /// Ranges asked for, for the tests.
    #[cfg(test)]
    asked: Vec<(u64, u64)>,
}

type WriteBack = fn(&std::fs::File, u64, u64) -> std::io::Result<()>;

impl PacedFile {
    /// Paced every `every` bytes (0: never), if this system and file can be: probed once here
    /// (a call that does nothing), so that afterwards every error is a real one.
    fn new(file: std::fs::File, every: u64) -> PacedFile {
        let every = if every > 0 && write_back_supported(&file) {
            every
        } else {
            0
        };
        PacedFile::with(file, every, write_back_range)
    }

    fn with(file: std::fs::File, every: u64, write_back_range: WriteBack) -> PacedFile {
        PacedFile {
            file,
            every,
            written: 0,
            paced: 0,
            write_back_range,
            #[cfg(test)]
            asked: Vec::new(),
        }
    }

    /// Write back `[paced, written)` and wait for it. An I/O error is returned, not dropped:
    /// having been reported here, it would not be reported again by the final sync.
    fn write_back(&mut self) -> std::io::Result<()> {
        let (start, len) = (self.paced, self.written - self.paced);
        #[cfg(test)]
        self.asked.push((start, len));
        (self.write_back_range)(&self.file, start, len)?;
        self.paced = self.written;
        Ok(())
    }
}

impl Write for PacedFile {
    /// A full chunk is written back before more is written (so an error never follows bytes
    /// already accepted), and no write crosses the next chunk's end (so one large write, such as
    /// a whole encoded state, is paced like many small ones).
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.every == 0 {
            let n = self.file.write(buf)?;
            self.written += n as u64;
            return Ok(n);
        }
        if self.written - self.paced >= self.every {
            self.write_back()?;
        }
        let room = self.every - (self.written - self.paced);
        let take = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.file.write(&buf[..take])?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Whether `sync_file_range` can be used on this file: a call with no flags does nothing, and
/// fails only where the call is missing (`ENOSYS`) or refused (`EPERM`, e.g. by a seccomp
/// filter). Then the final sync writes everything, as it always did.
#[cfg(target_os = "linux")]
fn write_back_supported(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: `sync_file_range` reads no memory of ours; the descriptor is the open file's own;
    // with no flags it does nothing.
    unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, 0) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn write_back_supported(_file: &std::fs::File) -> bool {
    false
}

/// Start writing back a file range and wait until it is on disk (not the metadata: the final
/// `fsync` does that). Every error is the file's (the call itself was probed when the file was
/// opened): a lost write reported here would not be reported again by the final sync.
#[cfg(target_os = "linux")]
fn write_back_range(file: &std::fs::File, start: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(start), Ok(len)) = (libc::off64_t::try_from(start), libc::off64_t::try_from(len))
    else {
        return Ok(());
    };
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: `sync_file_range` reads no memory of ours; the descriptor is the open file's own.
    if unsafe { libc::sync_file_range(file.as_raw_fd(), start, len, flags) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn write_back_range(_file: &std::fs::File, _start: u64, _len: u64) -> std::io::Result<()> {
    Ok(())
}

/// Counts and checksums the payload on its way to the file, and keeps the first I/O error so
/// that an encoder's error message (which wraps it) can be reported as what it is.
struct ChecksumWriter<W: Write> {
    inner: W,
    crc: u32,
    len: u64,
    failed: Option<std::io::Error>,
}

impl<W: Write> Write for ChecksumWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.inner.write(buf) {
            Ok(n) => {
                self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
                self.len += n as u64;
                Ok(n)
            }
            Err(e) => {
                if self.failed.is_none() {
                    self.failed = Some(std::io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_payload_reads_back_with_a_valid_header() {
        let dir = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..3_000_000u32).map(|n| (n % 251) as u8).collect();
        let (path, len) = write_snapshot_streamed(dir.path(), 42, true, |out| {
            // Uneven pieces, larger and smaller than the writer's buffer.
            for piece in payload.chunks(1_234_567) {
                out.write_all(piece).map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(len, payload.len() as u64);
        assert_eq!(path, snapshot_path(dir.path(), 42));
        let (index, read) = read_snapshot(&path).unwrap();
        assert_eq!(index, 42);
        assert_eq!(read, payload);
        // Same bytes as the one-buffer writer gives.
        let other = tempfile::tempdir().unwrap();
        let whole = write_snapshot(other.path(), 42, &payload, false).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&whole).unwrap()
        );
    }

    /// The chunks written back: back to back from the start, each exactly `every` bytes, with at
    /// most one chunk left for the final sync.
    #[track_caller]
    fn assert_paced(file: &PacedFile, every: u64, total: usize) {
        let mut next = 0;
        for &(start, len) in &file.asked {
            assert_eq!(
                (start, len),
                (next, every),
                "ranges asked: {:?}",
                file.asked
            );
            next = start + len;
        }
        let left = total as u64 - next;
        assert!((1..=every).contains(&left), "{next} of {total} asked for");
    }

    #[test]
    fn a_snapshot_is_written_back_as_it_is_written_not_all_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..50_000u32).map(|n| (n % 253) as u8).collect();
        // Pieces smaller than a chunk, not aligned to it.
        let path = dir.path().join("paced");
        let mut file = PacedFile::new(std::fs::File::create(&path).unwrap(), 4096);
        for piece in payload.chunks(3_000) {
            file.write_all(piece).unwrap();
        }
        assert_paced(&file, 4096, payload.len());
        assert_eq!(file.asked.len(), 12);
        assert_eq!(std::fs::read(&path).unwrap(), payload);

        // One write of the whole state (the way a captured head or an encoded engine arrives)
        // is paced the same: it is not one range of 50,000 bytes.
        let whole = dir.path().join("whole");
        let mut file = PacedFile::new(std::fs::File::create(&whole).unwrap(), 4096);
        file.write_all(&payload).unwrap();
        assert_paced(&file, 4096, payload.len());
        assert_eq!(std::fs::read(&whole).unwrap(), payload);

        // Unsynced snapshots (`sync = none`) are not paced.
        let mut plain = PacedFile::new(std::fs::File::create(dir.path().join("p")).unwrap(), 0);
        plain.write_all(&payload).unwrap();
        assert!(plain.asked.is_empty());
    }

    #[test]
    fn a_write_back_error_fails_the_write_before_more_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("failing");
        let mut file = PacedFile::with(std::fs::File::create(&path).unwrap(), 4096, |_, _, _| {
            Err(std::io::Error::from_raw_os_error(libc::EIO))
        });
        let e = file.write_all(&[7; 10_000]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        // The first chunk went in; nothing after the failed write-back did.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096);
        assert_eq!((file.written, file.paced), (4096, 0));
    }

    #[test]
    fn a_snapshot_is_still_whole_when_paced() {
        // Through the real writer, larger than a chunk, in one write: the file reads back.
        let dir = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..(3 * WRITEBACK_EVERY as u32 + 12_345))
            .map(|n| (n % 241) as u8)
            .collect();
        let path = write_snapshot(dir.path(), 9, &payload, true).unwrap();
        assert_eq!(read_snapshot(&path).unwrap(), (9, payload));
    }

    #[test]
    fn a_failed_encoding_leaves_no_snapshot_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_snapshot_streamed(dir.path(), 7, false, |out| {
            out.write_all(b"half a state").map_err(|e| e.to_string())?;
            Err("the state refused".to_string())
        })
        .unwrap_err();
        assert!(
            matches!(&err, JournalError::SnapshotState { reason } if reason == "the state refused"),
            "{err:?}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
