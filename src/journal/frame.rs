//! Frames: how a batch of records is laid out on disk, and how a damaged one is recognised.
//!
//! One `append_batch` is one frame, written with one `write` and made durable with one sync:
//!
//! ```text
//! [body_len u32 LE][crc32c u32 LE][body]
//! body = [first_index u64 LE][count u32 LE] count × ([record_len u32 LE][payload])
//! crc32c covers body_len and the whole body.
//! ```
//!
//! A frame is answered only once a sync covers it, and one sync covers every byte written before
//! it, so a crash can only damage the unsynced end of the newest segment. That is what lets
//! recovery tell a torn tail (truncate it, warn) from damage to acknowledged data (a bad frame
//! with a good one after it: refuse to start). With several frames written and unsynced, the end
//! can also hold a zero-filled hole (a lost page) with valid frames after it: a torn tail too
//! (`segment::zero_hole`).
//! This module only encodes and decodes bytes; it never touches a file.

/// Bytes before the body: length and checksum.
pub const HEADER_BYTES: usize = 8;
/// Bytes of the body before its first record: first index and record count.
pub const BODY_PREFIX_BYTES: usize = 12;
/// Bytes before each record's payload: its length.
pub const RECORD_PREFIX_BYTES: usize = 4;
/// The largest frame body. A larger length field is damage, not data; `append_batch` splits a
/// batch into several frames (synced one by one) to stay under it.
pub const MAX_BODY_BYTES: usize = 32 << 20;
/// The largest single record (one serialized input).
pub const MAX_RECORD_BYTES: usize = MAX_BODY_BYTES - BODY_PREFIX_BYTES - RECORD_PREFIX_BYTES;

/// Encoded size of a frame holding records of these sizes.
pub fn frame_len(payload_lens: impl IntoIterator<Item = usize>) -> usize {
    HEADER_BYTES
        + BODY_PREFIX_BYTES
        + payload_lens
            .into_iter()
            .map(|l| RECORD_PREFIX_BYTES + l)
            .sum::<usize>()
}

/// Append one frame holding `payloads` (numbered from `first_index`) to `out`.
///
/// The caller keeps the body under `MAX_BODY_BYTES` and every payload non-empty.
pub fn encode(out: &mut Vec<u8>, first_index: u64, payloads: &[&[u8]]) {
    let start = out.len();
    let body_len = frame_len(payloads.iter().map(|p| p.len())) - HEADER_BYTES;
    debug_assert!(body_len <= MAX_BODY_BYTES);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&first_index.to_le_bytes());
    out.extend_from_slice(&(payloads.len() as u32).to_le_bytes());
    for p in payloads {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    let crc = checksum(&out[start..start + 4], &out[start + HEADER_BYTES..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(len_bytes: &[u8], body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len_bytes), body)
}

/// A frame that checked out: where its records are and how many bytes it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    pub first_index: u64,
    pub count: u32,
    /// Total bytes, header included.
    pub len: usize,
}

/// Why the bytes at some offset are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The file ends inside the header or the body.
    Truncated { have: usize, need: usize },
    /// The length field is outside `[BODY_PREFIX_BYTES, MAX_BODY_BYTES]`.
    BadLength(u32),
    /// The checksum does not match.
    BadChecksum,
    /// The checksum matches but the records inside do not add up (a bug, not a torn write).
    BadLayout(&'static str),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Truncated { have, need } => {
                write!(f, "frame cut short ({have} of {need} bytes)")
            }
            Damage::BadLength(l) => write!(f, "impossible frame length {l}"),
            Damage::BadChecksum => write!(f, "checksum mismatch"),
            Damage::BadLayout(why) => write!(f, "frame layout is wrong: {why}"),
        }
    }
}

/// Check the frame at the start of `bytes` (its header, length and checksum).
pub fn check(bytes: &[u8]) -> Result<FrameInfo, Damage> {
    if bytes.len() < HEADER_BYTES {
        return Err(Damage::Truncated {
            have: bytes.len(),
            need: HEADER_BYTES,
        });
    }
    let body_len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if (body_len as usize) < BODY_PREFIX_BYTES || body_len as usize > MAX_BODY_BYTES {
        return Err(Damage::BadLength(body_len));
    }
    let len = HEADER_BYTES + body_len as usize;
    if bytes.len() < len {
        return Err(Damage::Truncated {
            have: bytes.len(),
            need: len,
        });
    }
    let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let body = &bytes[HEADER_BYTES..len];
    if checksum(&bytes[0..4], body) != crc {
        return Err(Damage::BadChecksum);
    }
    let first_index = u64::from_le_bytes(body[0..8].try_into().unwrap_or([0; 8]));
    let count = u32::from_le_bytes(body[8..12].try_into().unwrap_or([0; 4]));
    if count == 0 {
        return Err(Damage::BadLayout("a frame holds no records"));
    }
    Ok(FrameInfo {
        first_index,
        count,
        len,
    })
}

/// The records of a frame that passed `check`: `(index, payload)` in order.
pub fn records<'a>(
    frame: &'a [u8],
    info: FrameInfo,
) -> impl Iterator<Item = Result<(u64, &'a [u8]), Damage>> + 'a {
    let mut at = HEADER_BYTES + BODY_PREFIX_BYTES;
    let end = info.len;
    let mut n = 0u32;
    std::iter::from_fn(move || {
        if n == info.count {
            return (at != end).then_some(Err(Damage::BadLayout(
                "bytes left over after the last record",
            )));
        }
        if at + RECORD_PREFIX_BYTES > end {
            n = info.count;
            at = end;
            return Some(Err(Damage::BadLayout("record length runs past the frame")));
        }
        let len = u32::from_le_bytes(
            frame[at..at + RECORD_PREFIX_BYTES]
                .try_into()
                .unwrap_or([0; 4]),
        ) as usize;
        let start = at + RECORD_PREFIX_BYTES;
        if len == 0 || start + len > end {
            n = info.count;
            at = end;
            return Some(Err(Damage::BadLayout("record length runs past the frame")));
        }
        at = start + len;
        let index = info.first_index + u64::from(n);
        n += 1;
        Some(Ok((index, &frame[start..start + len])))
    })
}

/// Whether a complete, valid frame starts anywhere in `bytes` after offset 0. Used to tell a torn
/// tail (nothing valid after the damage) from damage in the middle of acknowledged data.
pub fn valid_frame_after(bytes: &[u8]) -> Option<usize> {
    (1..bytes
        .len()
        .saturating_sub(HEADER_BYTES + BODY_PREFIX_BYTES - 1))
        .find(|&at| check(&bytes[at..]).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_with_consecutive_indexes() {
        let mut buf = Vec::new();
        encode(&mut buf, 41, &[b"one", b"three"]);
        let info = check(&buf).unwrap();
        assert_eq!(
            info,
            FrameInfo {
                first_index: 41,
                count: 2,
                len: buf.len()
            }
        );
        let recs: Vec<_> = records(&buf, info).map(|r| r.unwrap()).collect();
        assert_eq!(recs, vec![(41, &b"one"[..]), (42, &b"three"[..])]);
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, &[b"interaction.arrived c1", b"agent.login a1"]);
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[byte] ^= 1 << bit;
                assert!(check(&bad).is_err(), "flip at byte {byte} bit {bit} passed");
            }
        }
    }

    #[test]
    fn zero_filled_space_is_not_a_frame() {
        assert_eq!(check(&[0u8; 64]), Err(Damage::BadLength(0)));
        assert_eq!(valid_frame_after(&[0u8; 4096]), None);
    }

    #[test]
    fn a_cut_frame_reports_how_much_is_missing() {
        let mut buf = Vec::new();
        encode(&mut buf, 1, &[b"abc"]);
        assert_eq!(
            check(&buf[..buf.len() - 1]),
            Err(Damage::Truncated {
                have: buf.len() - 1,
                need: buf.len()
            })
        );
    }

    #[test]
    fn a_valid_frame_after_damage_is_found() {
        let mut buf = vec![0xAB; 10];
        encode(&mut buf, 3, &[b"x"]);
        assert_eq!(valid_frame_after(&buf), Some(10));
    }
}
