//! Opening hours as written (`tz` + `mon = ["08:00-18:00"]` …) → `routing::Schedule`.
//!
//! Owns the `HH:MM-HH:MM` grammar and the time-zone lookup. It reports what is wrong with each
//! interval; it never guesses (no overnight wrap, no silent merging of overlaps).

use std::str::FromStr;

use super::file::RawSchedule;
use super::locate::FieldPath;
use super::routing::Schedule;

/// Minutes in a day; `24:00` is allowed as the end of an interval.
const DAY_MINUTES: u16 = 24 * 60;

/// Resolve a schedule, or return every problem as (field, message). Without `tz` (reported by the
/// caller) the hours are still checked, and no schedule comes out.
pub(crate) fn resolve(
    raw: &RawSchedule,
    path: &FieldPath,
) -> Result<Schedule, Vec<(FieldPath, String)>> {
    let mut problems = Vec::new();
    let tz = raw
        .tz
        .as_deref()
        // Spaces around the name are forgiven, as around opening hours.
        .and_then(|name| match chrono_tz::Tz::from_str(name.trim()) {
            Ok(tz) => Some(tz),
            Err(_) => {
                problems.push((
                    path.key("tz"),
                    format!(
                        "unknown time zone `{name}` (use an IANA name such as `Europe/London` or \
                         `UTC`)"
                    ),
                ));
                None
            }
        });
    let mut open: [Vec<(u16, u16)>; 7] = Default::default();
    for (day, (name, intervals)) in raw.days().into_iter().enumerate() {
        let Some(intervals) = intervals else { continue };
        let day_path = path.key(name);
        let mut parsed = Vec::new();
        for (i, text) in intervals.iter().enumerate() {
            match parse_interval(text) {
                Ok(iv) => parsed.push(iv),
                Err(msg) => problems.push((day_path.index(i), msg)),
            }
        }
        parsed.sort_unstable();
        for pair in parsed.windows(2) {
            if pair[1].0 < pair[0].1 {
                problems.push((
                    day_path.clone(),
                    format!(
                        "opening hours {} and {} overlap",
                        show(pair[0]),
                        show(pair[1])
                    ),
                ));
            }
        }
        open[day] = parsed;
    }
    match tz {
        Some(tz) if problems.is_empty() => Ok(Schedule { tz, open }),
        _ => Err(problems),
    }
}

/// `"08:00-18:00"` → minutes `[480, 1080)`.
fn parse_interval(text: &str) -> Result<(u16, u16), String> {
    let bad = |why: &str| {
        format!("bad opening hours `{text}`: {why} (expected `HH:MM-HH:MM`, e.g. `08:00-18:00`)")
    };
    let Some((start, end)) = text.split_once('-') else {
        return Err(bad("missing `-` between start and end"));
    };
    if start.trim().is_empty() {
        return Err(bad(
            "the start is missing (times run from 00:00 to 24:00, never negative)",
        ));
    }
    if end.trim().is_empty() {
        return Err(bad(
            "the end is missing (the last time it is open, up to 24:00)",
        ));
    }
    let start = parse_clock(start.trim()).map_err(|why| bad(&why))?;
    let end = parse_clock(end.trim()).map_err(|why| bad(&why))?;
    if start == DAY_MINUTES {
        return Err(bad("24:00 can only end an interval"));
    }
    if end <= start {
        return Err(bad(
            "the end must be after the start; split overnight hours over two days",
        ));
    }
    Ok((start, end))
}

/// `"HH:MM"` → minutes after midnight (`24:00` = 1440).
fn parse_clock(s: &str) -> Result<u16, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not HH:MM"))?;
    let all_digits = |p: &str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(h) || !all_digits(m) {
        return Err(format!("`{s}` is not HH:MM"));
    }
    let h: u16 = h.parse().map_err(|_| format!("`{s}` is not HH:MM"))?;
    let m: u16 = m.parse().map_err(|_| format!("`{s}` is not HH:MM"))?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("`{s}` is not a time of day"));
    }
    Ok(h * 60 + m)
}

fn show((start, end): (u16, u16)) -> String {
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        start / 60,
        start % 60,
        end / 60,
        end % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn office_hours_become_minutes_after_midnight() {
        assert_eq!(parse_interval("08:00-18:30"), Ok((480, 1110)));
        assert_eq!(parse_interval("00:00-24:00"), Ok((0, 1440)));
    }

    #[test]
    fn overnight_and_malformed_hours_are_refused() {
        assert!(parse_interval("22:00-02:00")
            .unwrap_err()
            .contains("after the start"));
        assert!(parse_interval("8:00-18:00")
            .unwrap_err()
            .contains("not HH:MM"));
        assert!(parse_interval("08:60-18:00")
            .unwrap_err()
            .contains("not a time of day"));
        assert!(parse_interval("24:00-24:00")
            .unwrap_err()
            .contains("can only end"));
        assert!(parse_interval("0800").unwrap_err().contains("missing `-`"));
        assert!(parse_interval("08:00-")
            .unwrap_err()
            .contains("the end is missing"));
        assert!(parse_interval("-12:00")
            .unwrap_err()
            .contains("the start is missing"));
    }
}
