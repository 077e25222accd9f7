//! `GET /v1/queues` reports whether a queue is open *now*, not as of the engine's last event:
//! engine time moves only on events and timers, while a read between them asks about the
//! present (review finding: at 09:00:00.5 a queue opening at 09:00 was still shown closed, while
//! an arrival at that moment was accepted). The read passes its clock reading to
//! `Engine::queue_open_at` (`src/api/read.rs`); this checks that method in engine time.

use chrono::TimeZone;
use tierline::config::parse;
use tierline::engine::Engine;

fn utc(h: u32, min: u32, s: u32) -> u64 {
    // Monday 2024-01-08.
    chrono::Utc
        .with_ymd_and_hms(2024, 1, 8, h, min, s)
        .unwrap()
        .timestamp_millis() as u64
}

#[test]
fn a_queue_is_open_at_the_time_asked_not_at_the_last_event() {
    let loaded = parse(
        "[[queue]]\nid = \"q\"\nschedule = { tz = \"UTC\", mon = [\"09:00-17:00\"] }\n",
        "t.toml",
    )
    .unwrap();
    // The engine's last event was at 08:59:58.5.
    let engine = Engine::new(loaded.routing, utc(8, 59, 58) + 500);
    assert_eq!(engine.queue("q").map(|v| v.open), Some(false));
    assert_eq!(engine.queue_open_at("q", utc(8, 59, 59)), Some(false));
    assert_eq!(engine.queue_open_at("q", utc(9, 0, 0) + 500), Some(true));
    assert_eq!(engine.queue_open_at("q", utc(17, 0, 0)), Some(false));
    // A time before the engine's own is read as the engine's (time never goes back).
    let later = Engine::new(
        parse(
            "[[queue]]\nid = \"q\"\nschedule = { tz = \"UTC\", mon = [\"09:00-17:00\"] }\n",
            "t.toml",
        )
        .unwrap()
        .routing,
        utc(10, 0, 0),
    );
    assert_eq!(later.queue_open_at("q", utc(8, 0, 0)), Some(true));
    assert_eq!(later.queue_open_at("nowhere", utc(10, 0, 0)), None);
}
