//! The daemon's clock: Unix milliseconds for the engine, derived from a monotonic instant.
//!
//! It reads the wall clock exactly once (at start) and from then on adds the elapsed
//! `tokio::time::Instant`. So engine time never jumps backwards when NTP steps the wall clock,
//! and under `tokio::time::pause()` (tests) every timer runs in virtual time. Nothing else in
//! the daemon may read the wall clock for routing purposes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::config::Millis;

/// Wall-clock milliseconds at a fixed monotonic origin.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin_ms: Millis,
    origin: Instant,
}

impl Clock {
    /// A clock starting at the current wall-clock time.
    pub fn from_system_time() -> Clock {
        let origin_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0);
        Clock::starting_at(origin_ms)
    }

    /// A clock that reads `origin_ms` now (tests pick a round number).
    pub fn starting_at(origin_ms: Millis) -> Clock {
        Clock {
            origin_ms,
            origin: Instant::now(),
        }
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> Millis {
        self.origin_ms + self.origin.elapsed().as_millis() as Millis
    }

    /// Unix seconds now (for webhook signature timestamps).
    pub fn now_s(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// This clock, moved forward so that it reads at least `floor_ms` now; how far it moved
    /// (0 when it already did). The daemon starts engine time here after recovery: engine time
    /// never goes backwards, so a wall clock behind the journal's last engine time (stepped
    /// back by NTP while the daemon was down, or a journal restored on another host) would
    /// otherwise stamp every input with that last time, and hold every timer, until the wall
    /// clock caught up.
    pub fn not_before(&self, floor_ms: Millis) -> (Clock, Millis) {
        let behind = floor_ms.saturating_sub(self.now_ms());
        let clock = Clock {
            origin_ms: self.origin_ms + behind,
            origin: self.origin,
        };
        (clock, behind)
    }

    /// The monotonic instant at which the clock reads `ms` (the origin for times before it).
    pub fn instant_at(&self, ms: Millis) -> Instant {
        self.origin + Duration::from_millis(ms.saturating_sub(self.origin_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_clock_follows_virtual_time() {
        let clock = Clock::starting_at(1_000_000);
        assert_eq!(clock.now_ms(), 1_000_000);
        tokio::time::advance(Duration::from_millis(1_500)).await;
        assert_eq!(clock.now_ms(), 1_001_500);
        assert_eq!(clock.now_s(), 1_001);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clock_behind_the_floor_moves_forward_and_keeps_running() {
        let wall = Clock::starting_at(1_000_000);
        tokio::time::advance(Duration::from_millis(500)).await;
        // The journal's engine time is 10 minutes ahead of the wall clock.
        let (engine, behind) = wall.not_before(1_600_500);
        assert_eq!(behind, 600_000);
        assert_eq!(engine.now_ms(), 1_600_500);
        // Time runs on from there, and a deadline 1 s ahead is 1 s of (virtual) time away.
        let at = engine.instant_at(1_601_500);
        tokio::time::sleep_until(at).await;
        assert_eq!(engine.now_ms(), 1_601_500);
        assert_eq!(
            wall.now_ms(),
            1_001_500,
            "the wall clock itself is unchanged"
        );
        // A floor already passed changes nothing.
        let (same, behind) = wall.not_before(1_000_000);
        assert_eq!((same.now_ms(), behind), (wall.now_ms(), 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_maps_to_the_instant_it_falls_due() {
        let clock = Clock::starting_at(10_000);
        let at = clock.instant_at(12_500);
        tokio::time::sleep_until(at).await;
        assert_eq!(clock.now_ms(), 12_500);
        // A deadline already past maps to the origin (fires at once).
        assert!(clock.instant_at(5_000) <= Instant::now());
    }
}
