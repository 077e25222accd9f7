//! When each event should be sent: the open-loop schedule and the pacer that keeps it.
//!
//! Owns the intended send time of every slot (constant rate or Poisson) and the loop that releases
//! slots at those times. It must never wait for a response or adjust a later slot because an
//! earlier one was late: intended times are fixed up front, so a stalled server shows up as latency
//! measured from the intended time instead of silently lowering the offered rate (no coordinated
//! omission).

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How the gaps between sends are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Evenly spaced: slot `i` at `i / rate`.
    Constant,
    /// Exponential gaps with mean `1 / rate` (a Poisson process), seeded.
    Poisson,
}

/// One send opportunity: the `index`-th event of the measured phase, due `intended` after start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub index: u64,
    pub intended: Duration,
}

/// A rate or duration the schedule cannot be built from.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    #[error("--rate must be a positive number of events per second, at most {MAX_RATE}, got {0}")]
    Rate(f64),
    #[error("--duration must be longer than zero")]
    Duration,
}

/// Highest `--rate`: ten million events a second, far past what one machine can send (the slot
/// count of a year-long run stays far inside `u64`).
pub const MAX_RATE: f64 = 1e7;

/// A slot's time, `secs` after the start; past any `Duration` (a tiny rate) is "never".
fn slot_time(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// The intended send times of one run, generated lazily (a run at 50,000/s for a minute would
/// otherwise hold three million timestamps).
#[derive(Debug, Clone)]
pub struct Schedule {
    rate: f64,
    arrivals: Arrivals,
    end: Duration,
    next_index: u64,
    /// Poisson only: the running sum of gaps, in seconds.
    poisson_at: f64,
    rng: ChaCha8Rng,
}

impl Schedule {
    /// `rate` events per second for `duration`; slots due at or after `duration` are not part of
    /// the run.
    pub fn new(
        rate: f64,
        duration: Duration,
        arrivals: Arrivals,
        seed: u64,
    ) -> Result<Schedule, ScheduleError> {
        if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
            return Err(ScheduleError::Rate(rate));
        }
        if duration.is_zero() {
            return Err(ScheduleError::Duration);
        }
        Ok(Schedule {
            rate,
            arrivals,
            end: duration,
            next_index: 0,
            poisson_at: 0.0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// How many slots a constant-rate run has (Poisson runs have this many on average):
    /// exactly the count `next_slot` makes, slot `i` being at `i / rate` while before `end`
    /// (`ceil(rate × secs)` alone is one too many when the product rounds up, e.g. 100/s for
    /// 1.1 s is 110.00000000000001).
    pub fn expected_slots(&self) -> u64 {
        let at = |i: u64| slot_time(i as f64 / self.rate);
        let mut n = (self.rate * self.end.as_secs_f64()).ceil() as u64;
        while n > 0 && at(n - 1) >= self.end {
            n -= 1;
        }
        while at(n) < self.end {
            n += 1;
        }
        n
    }

    /// The next slot, or `None` once the next intended time would be at or past the end.
    pub fn next_slot(&mut self) -> Option<Slot> {
        let at_secs = match self.arrivals {
            Arrivals::Constant => self.next_index as f64 / self.rate,
            Arrivals::Poisson => {
                let at = self.poisson_at;
                // Inverse-CDF draw of an exponential gap; `1 - u` keeps ln away from zero.
                let u: f64 = self.rng.gen();
                self.poisson_at += -(1.0 - u).ln() / self.rate;
                at
            }
        };
        let intended = slot_time(at_secs);
        if intended >= self.end {
            return None;
        }
        let slot = Slot {
            index: self.next_index,
            intended,
        };
        self.next_index += 1;
        Some(slot)
    }
}

/// Time as seen by the pacer, measured from the start of the measured phase. The real one is a
/// thread sleeping on `std::time::Instant`; tests use a fake that jumps.
pub trait PaceClock {
    fn now(&self) -> Duration;
    /// Block until `now() >= at`.
    fn sleep_until(&mut self, at: Duration);
    /// Block until the clock's zero, if that is still ahead.
    fn wait_for_zero(&mut self) {}
}

/// What the pacer did, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaceSummary {
    /// Slots handed to the senders.
    pub released: u64,
    /// Slots released late because the pacer was held up (a full channel, a descheduled thread).
    pub released_late: u64,
}

/// Release every slot of `schedule` at its intended time, or at once if that time has passed.
/// `release` returns false when nobody is listening any more, which ends the run early. A late
/// release never moves later slots: they keep their intended times.
///
/// `quantum` bounds how often the pacer sleeps: it wakes at most once per `quantum` and then
/// releases every slot already due, so a slot may go out up to `quantum` after its intended time
/// (and its latency, measured from that time, includes the wait). Zero sleeps to every slot's own
/// time. At 10,000/s a wake per slot is 10,000 thread wake-ups a second on top of the senders'.
pub fn pace(
    mut schedule: Schedule,
    clock: &mut impl PaceClock,
    quantum: Duration,
    mut release: impl FnMut(Slot) -> bool,
) -> PaceSummary {
    let mut summary = PaceSummary::default();
    let mut woke: Option<Duration> = None;
    // The clock's zero may still be ahead (`run` sets it after the senders are ready): no slot
    // goes out before it, not even the first, due at zero.
    clock.wait_for_zero();
    while let Some(slot) = schedule.next_slot() {
        let mut now = clock.now();
        if now < slot.intended {
            let earliest = woke.map_or(Duration::ZERO, |w| w + quantum);
            clock.sleep_until(slot.intended.max(earliest));
            now = clock.now();
            woke = Some(now);
        }
        // After a sleep too: a thread that oversleeps (descheduled on a busy machine) releases
        // the slot it slept for late as well as those due meanwhile.
        if now > slot.intended + quantum + LATE_RELEASE {
            summary.released_late += 1;
        }
        if !release(slot) {
            break;
        }
        summary.released += 1;
    }
    summary
}

/// A slot released more than this after its intended time counts as released late. Thread
/// wake-ups on Linux take tens of microseconds, so anything under a millisecond is normal.
pub const LATE_RELEASE: Duration = Duration::from_millis(1);

/// The pacer's real clock: a dedicated OS thread sleeping with the kernel's timer precision
/// (tens of microseconds), far finer than tokio's millisecond timer wheel, so the pacing itself
/// adds almost nothing to the measured latency.
#[derive(Debug, Clone, Copy)]
pub struct ThreadClock {
    pub start: std::time::Instant,
}

impl PaceClock for ThreadClock {
    /// Time since `start`; zero while `start` is still ahead.
    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    /// Sleeps until `start + at`, measured from `start` itself, so a clock whose `start` is
    /// still ahead (the run sets it a little in the future) waits for it too.
    fn sleep_until(&mut self, at: Duration) {
        let target = self.start + at;
        let now = Instant::now();
        if target > now {
            std::thread::sleep(target - now);
        }
    }

    fn wait_for_zero(&mut self) {
        self.sleep_until(Duration::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    /// A clock that only moves when the pacer sleeps or a test stalls it (shared, so a release
    /// callback can stall it).
    #[derive(Clone, Default)]
    struct FakeClock {
        now: Rc<Cell<Duration>>,
        sleeps: Rc<Cell<u32>>,
    }

    impl PaceClock for FakeClock {
        fn now(&self) -> Duration {
            self.now.get()
        }
        fn sleep_until(&mut self, at: Duration) {
            self.sleeps.set(self.sleeps.get() + 1);
            self.now.set(self.now.get().max(at));
        }
    }

    /// A run sets its clock's zero a little ahead; no slot, not even the first (due at zero),
    /// may go out before it. (The clock used to count from `start` only once it had passed, so
    /// the first slot went out at once, before the zero its latency is measured from.)
    #[test]
    fn no_slot_is_released_before_the_clocks_zero() {
        let start = Instant::now() + Duration::from_millis(30);
        let mut clock = ThreadClock { start };
        let schedule = Schedule::new(1000.0, Duration::from_millis(5), Arrivals::Constant, 1)
            .expect("a valid schedule");
        let mut released = Vec::new();
        let summary = pace(schedule, &mut clock, Duration::ZERO, |slot| {
            released.push((slot.intended, Instant::now()));
            true
        });
        assert_eq!(summary.released, 5);
        for (intended, at) in released {
            assert!(
                at >= start + intended,
                "slot due at {intended:?} went out early"
            );
        }
    }

    /// A rate so low that the second slot is past any `Duration`: one slot, at the start.
    #[test]
    fn a_tiny_rate_has_one_slot_at_the_start_and_the_rest_never() {
        for arrivals in [Arrivals::Constant, Arrivals::Poisson] {
            let mut s = Schedule::new(1e-30, Duration::from_secs(1), arrivals, 7).unwrap();
            if arrivals == Arrivals::Constant {
                assert_eq!(s.expected_slots(), 1);
            }
            let first = s.next_slot();
            assert!(first.is_none() || first.map(|f| f.intended) == Some(Duration::ZERO));
            assert!(s.next_slot().is_none());
        }
        assert!(matches!(
            Schedule::new(
                MAX_RATE * 10.0,
                Duration::from_secs(1),
                Arrivals::Constant,
                7
            ),
            Err(ScheduleError::Rate(_))
        ));
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_constant_rate_spaces_slots_evenly_and_stops_at_the_duration() {
        let mut s = Schedule::new(1000.0, ms(10), Arrivals::Constant, 1).unwrap();
        let slots: Vec<Slot> = std::iter::from_fn(|| s.next_slot()).collect();
        assert_eq!(slots.len(), 10);
        for (i, slot) in slots.iter().enumerate() {
            assert_eq!(slot.index, i as u64);
            assert_eq!(slot.intended, ms(i as u64));
        }
    }

    #[test]
    fn poisson_gaps_average_one_over_the_rate_and_are_reproducible_from_the_seed() {
        let run = |seed| {
            let mut s =
                Schedule::new(10_000.0, Duration::from_secs(10), Arrivals::Poisson, seed).unwrap();
            std::iter::from_fn(|| s.next_slot()).collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        // 100,000 expected; a Poisson count has a standard deviation of ~316.
        assert!((98_500..=101_500).contains(&a.len()), "{} slots", a.len());
        assert!(a.windows(2).all(|w| w[0].intended <= w[1].intended));
    }

    #[test]
    fn the_pacer_releases_each_slot_at_its_intended_time() {
        let schedule = Schedule::new(100.0, ms(100), Arrivals::Constant, 0).unwrap();
        let mut clock = FakeClock::default();
        let mut released = Vec::new();
        let summary = pace(schedule, &mut clock, Duration::ZERO, |slot| {
            released.push((slot.intended, slot.index));
            true
        });
        assert_eq!(summary.released, 10);
        assert_eq!(summary.released_late, 0);
        // The first slot is due at once; every other one needed a sleep to its own time.
        assert_eq!(clock.sleeps.get(), 9);
        assert_eq!(released.last(), Some(&(ms(90), 9)));
    }

    #[test]
    fn a_stall_does_not_move_later_intended_times() {
        // The sender blocks for 35 ms while taking slot 2 (a full channel): slots 3..=5 are
        // released at once with their original intended times, so their latency will include
        // the stall instead of the stall being forgotten.
        let schedule = Schedule::new(100.0, ms(100), Arrivals::Constant, 0).unwrap();
        let mut clock = FakeClock::default();
        let mut seen = Vec::new();
        let stalled = clock.clone();
        let summary = pace(schedule, &mut clock, Duration::ZERO, |slot| {
            seen.push((slot.index, slot.intended, stalled.now()));
            if slot.index == 2 {
                stalled.now.set(stalled.now() + ms(35));
            }
            true
        });
        assert_eq!(summary.released, 10);
        assert_eq!(seen[3], (3, ms(30), ms(55)));
        assert_eq!(seen[4], (4, ms(40), ms(55)));
        assert_eq!(seen[5], (5, ms(50), ms(55)));
        assert_eq!(seen[6], (6, ms(60), ms(60)));
        assert_eq!(summary.released_late, 3);
    }

    /// A clock whose thread oversleeps once: the sleep to `late_from` ends `by` later.
    struct OversleepingClock {
        now: Duration,
        late_from: Duration,
        by: Duration,
    }

    impl PaceClock for OversleepingClock {
        fn now(&self) -> Duration {
            self.now
        }
        fn sleep_until(&mut self, at: Duration) {
            let extra = if at == self.late_from {
                self.by
            } else {
                Duration::ZERO
            };
            self.now = self.now.max(at + extra);
        }
    }

    #[test]
    fn a_slot_released_by_an_oversleeping_pacer_counts_as_late() {
        // The sleep to slot 3 (30 ms) ends at 45 ms: slot 3 goes out 15 ms late and slot 4
        // (40 ms) 5 ms late; both are late, not only the one that did not need a sleep.
        let schedule = Schedule::new(100.0, ms(100), Arrivals::Constant, 0).unwrap();
        let mut clock = OversleepingClock {
            now: Duration::ZERO,
            late_from: ms(30),
            by: ms(15),
        };
        let summary = pace(schedule, &mut clock, Duration::ZERO, |_| true);
        assert_eq!(summary.released, 10);
        assert_eq!(summary.released_late, 2);

        // With a quantum, a slot may go out up to the quantum (plus 1 ms) after its time.
        let pace_oversleeping = |quantum: Duration, by: Duration| {
            let schedule = Schedule::new(100.0, ms(100), Arrivals::Constant, 0).unwrap();
            let mut clock = OversleepingClock {
                now: Duration::ZERO,
                late_from: ms(30),
                by,
            };
            pace(schedule, &mut clock, quantum, |_| true).released_late
        };
        // 5 ms: the sleep to slot 3 (30 ms) ends at 45 ms, 15 ms late; slot 4 is 5 ms late.
        assert_eq!(pace_oversleeping(ms(5), ms(15)), 1);
        // 20 ms: slot 2 (20 ms) waits for the wake at 30 ms, which ends at 35 ms: 15 ms, within
        // the quantum; ending at 55 ms, slot 2 is 35 ms late and slot 3 (30 ms) 25 ms: both late.
        assert_eq!(pace_oversleeping(ms(20), ms(5)), 0);
        assert_eq!(pace_oversleeping(ms(20), ms(25)), 2);
    }

    #[test]
    fn the_pacer_stops_when_nobody_takes_slots() {
        let schedule = Schedule::new(1000.0, ms(100), Arrivals::Constant, 0).unwrap();
        let mut clock = FakeClock::default();
        let summary = pace(schedule, &mut clock, Duration::ZERO, |slot| slot.index < 5);
        assert_eq!(summary.released, 5);
    }

    #[test]
    fn a_rate_of_zero_or_a_zero_duration_is_refused() {
        assert_eq!(
            Schedule::new(0.0, ms(1), Arrivals::Constant, 0).unwrap_err(),
            ScheduleError::Rate(0.0)
        );
        assert_eq!(
            Schedule::new(1.0, Duration::ZERO, Arrivals::Constant, 0).unwrap_err(),
            ScheduleError::Duration
        );
    }

    #[test]
    fn with_a_quantum_the_pacer_sleeps_at_most_once_per_quantum_and_never_releases_early() {
        // 1,000/s for 100 ms: a slot every millisecond, a wake at most every 5 ms.
        let schedule = Schedule::new(1000.0, ms(100), Arrivals::Constant, 0).unwrap();
        let mut clock = FakeClock::default();
        let seen = clock.clone();
        let mut released = Vec::new();
        let summary = pace(schedule, &mut clock, ms(5), |slot| {
            released.push((slot.intended, seen.now()));
            true
        });
        assert_eq!(summary.released, 100);
        assert_eq!(
            summary.released_late, 0,
            "waiting for the quantum is not lateness"
        );
        assert!(
            released
                .iter()
                .all(|&(intended, at)| at >= intended && at - intended <= ms(5)),
            "{released:?}"
        );
        // Slot 0 at once, slot 1 at its time, then a wake every 5 ms taking what is due:
        // 21 sleeps for 99 slots.
        assert_eq!(clock.sleeps.get(), 21);
        assert_eq!(released[1], (ms(1), ms(1)));
        assert_eq!(released[2], (ms(2), ms(6)));
        assert_eq!(released[6], (ms(6), ms(6)));
        assert_eq!(released[7], (ms(7), ms(11)));
    }

    /// The count a constant schedule announces is the count it makes, for awkward rates and
    /// durations too.
    #[test]
    fn expected_slots_is_the_number_of_slots_a_constant_schedule_makes() {
        for rate in [
            1.0, 3.0, 7.0, 100.0, 333.0, 700.0, 1234.5, 3000.0, 9999.0, 100_000.0,
        ] {
            for ms in [100u64, 250, 333, 700, 1000, 1100, 2300, 5000] {
                let end = Duration::from_millis(ms);
                let mut s = Schedule::new(rate, end, Arrivals::Constant, 1).unwrap();
                let expected = s.expected_slots();
                let mut made = 0u64;
                while s.next_slot().is_some() {
                    made += 1;
                }
                assert_eq!(expected, made, "rate {rate}/s for {ms} ms");
            }
        }
    }
}
