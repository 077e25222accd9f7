//! What a run measured: latency histograms, answers by status, and the JSON result file.
//!
//! Owns the arithmetic from raw timings to the published figures (percentiles, achieved rate, the
//! "sustained" verdict). Every sender keeps its own `Recorder` (no lock on the hot path) and they
//! are merged at the end. It must never drop a sample it was given: an answer that does not fit
//! the histogram's range is clamped to its top and counted, not discarded.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histograms hold exactly: one minute, in microseconds.
pub const HIGHEST_US: u64 = 60_000_000;
/// Significant decimal digits kept (0.1 % relative error).
const SIGFIG: u8 = 3;

/// Why a slot got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// Could not open a TCP connection.
    Connect,
    /// The connection broke while sending or reading.
    Io,
    /// No answer within `--timeout`.
    Timeout,
    /// The drain deadline passed before a sender took the slot: never sent.
    Unsent,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Io => "io",
            Failure::Timeout => "timeout",
            Failure::Unsent => "unsent",
        }
    }
}

/// One sender's tallies.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Intended send time → answer: what a caller would have seen (the figure we publish).
    /// A slot without an answer counts too, up to when the generator gave up on it.
    pub latency: Histogram<u64>,
    /// Actual send → answer: the server's share alone.
    pub service: Histogram<u64>,
    /// Intended → actual send: the generator's own lag (pacing, busy connections).
    pub send_lag: Histogram<u64>,
    /// HTTP answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Slots without an answer, by reason.
    pub failures: BTreeMap<&'static str, u64>,
    /// Events sent, by `type`.
    pub sent_by_type: BTreeMap<&'static str, u64>,
    /// Samples above `HIGHEST_US`, recorded as `HIGHEST_US`, counted per histogram (an answer
    /// after two minutes is clamped in `latency` and usually in `service` too: 2).
    pub clamped: u64,
    /// Latest answer, measured from the start of the measured phase.
    pub last_answer: Duration,
    /// Per `TIMELINE_STEP` of intended send time: answers, and the slowest latency and service
    /// time among them (µs). Shows whether a tail is a few stalls or spread over the run.
    pub timeline: Vec<Slice>,
}

/// Width of one `Recorder::timeline` entry.
pub const TIMELINE_STEP: Duration = Duration::from_millis(100);

/// Most timeline entries kept (an hour); later slots are folded into the last one.
const TIMELINE_MAX: usize = 36_000;

/// One `TIMELINE_STEP` of the measured phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slice {
    pub answers: u64,
    pub max_latency_us: u64,
    pub max_service_us: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; a failure here is a programming error.
    Histogram::new_with_bounds(1, HIGHEST_US, SIGFIG).expect("valid histogram bounds")
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            latency: histogram(),
            service: histogram(),
            send_lag: histogram(),
            statuses: BTreeMap::new(),
            failures: BTreeMap::new(),
            sent_by_type: BTreeMap::new(),
            clamped: 0,
            last_answer: Duration::ZERO,
            timeline: Vec::new(),
        }
    }

    fn slice_at(&mut self, intended: Duration) -> &mut Slice {
        let at = (intended.as_millis() / TIMELINE_STEP.as_millis()).min(TIMELINE_MAX as u128 - 1);
        let at = at as usize;
        if self.timeline.len() <= at {
            self.timeline.resize(at + 1, Slice::default());
        }
        &mut self.timeline[at]
    }

    fn put(histogram: &mut Histogram<u64>, clamped: &mut u64, d: Duration) {
        let us = micros(d);
        if us > HIGHEST_US {
            *clamped += 1;
        }
        // Values below 1 µs are recorded as 1 µs: the histogram's lowest discernible value.
        histogram.saturating_record(us.clamp(1, HIGHEST_US));
    }

    /// An event of `kind` went out `sent` after start for a slot due at `intended`.
    pub fn sent(&mut self, kind: &'static str, intended: Duration, sent: Duration) {
        *self.sent_by_type.entry(kind).or_default() += 1;
        Recorder::put(
            &mut self.send_lag,
            &mut self.clamped,
            sent.saturating_sub(intended),
        );
    }

    /// The answer to that event arrived at `answered` with `status`.
    pub fn answered(
        &mut self,
        intended: Duration,
        sent: Duration,
        answered: Duration,
        status: u16,
    ) {
        Recorder::put(
            &mut self.latency,
            &mut self.clamped,
            answered.saturating_sub(intended),
        );
        Recorder::put(
            &mut self.service,
            &mut self.clamped,
            answered.saturating_sub(sent),
        );
        *self.statuses.entry(status).or_default() += 1;
        self.last_answer = self.last_answer.max(answered);
        let latency = micros(answered.saturating_sub(intended));
        let service = micros(answered.saturating_sub(sent));
        let slice = self.slice_at(intended);
        slice.answers += 1;
        slice.max_latency_us = slice.max_latency_us.max(latency);
        slice.max_service_us = slice.max_service_us.max(service);
    }

    /// A slot due at `intended` got no answer; the generator gave up on it at `gave_up`. Its
    /// latency is recorded as `gave_up - intended`: a lower bound (the caller never got an
    /// answer at all), so a server that answers nothing cannot show a low p99.
    pub fn failed(&mut self, failure: Failure, intended: Duration, gave_up: Duration) {
        *self.failures.entry(failure.as_str()).or_default() += 1;
        Recorder::put(
            &mut self.latency,
            &mut self.clamped,
            gave_up.saturating_sub(intended),
        );
    }

    /// Fold another sender's tallies into this one.
    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        let _ = self.send_lag.add(&other.send_lag);
        for (k, v) in &other.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for (k, v) in &other.failures {
            *self.failures.entry(k).or_default() += v;
        }
        for (k, v) in &other.sent_by_type {
            *self.sent_by_type.entry(k).or_default() += v;
        }
        self.clamped += other.clamped;
        self.last_answer = self.last_answer.max(other.last_answer);
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), Slice::default());
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(&other.timeline) {
            mine.answers += theirs.answers;
            mine.max_latency_us = mine.max_latency_us.max(theirs.max_latency_us);
            mine.max_service_us = mine.max_service_us.max(theirs.max_service_us);
        }
    }

    pub fn answers(&self) -> u64 {
        self.statuses.values().sum()
    }

    /// Answers that mean the server could not take the event (5xx), plus every failure.
    pub fn server_errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(status, _)| **status >= 500)
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.failures.values().sum::<u64>()
    }
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub p99_99: f64,
    pub max: f64,
}

/// Microseconds as milliseconds with three decimals (the histogram's unit is 1 µs).
fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles {
                count: 0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p99_9: 0.0,
                p99_99: 0.0,
                max: 0.0,
            };
        }
        Percentiles {
            count: h.len(),
            mean: (h.mean()).round() / 1000.0,
            p50: us_to_ms(h.value_at_quantile(0.50)),
            p90: us_to_ms(h.value_at_quantile(0.90)),
            p99: us_to_ms(h.value_at_quantile(0.99)),
            p99_9: us_to_ms(h.value_at_quantile(0.999)),
            p99_99: us_to_ms(h.value_at_quantile(0.9999)),
            max: us_to_ms(h.max()),
        }
    }
}

/// The run's settings, echoed into the result so a file explains itself.
#[derive(Debug, Clone, Serialize)]
pub struct RunSettings {
    pub mode: &'static str,
    pub url: String,
    pub target_rate: f64,
    pub duration_s: f64,
    pub arrivals: super::schedule::Arrivals,
    pub connections: usize,
    pub agents: u32,
    pub queues: u32,
    pub seed: u64,
    /// A run is `sustained` when p99 latency from the intended send time stays under this.
    pub sustained_p99_ms: f64,
}

/// Timer lateness read from the daemon's Prometheus endpoint (`loadgen::scrape`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimerLateness {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Upper bound of the highest bucket holding a sample (`+Inf` ⇒ null).
    pub max_bucket_ms: Option<f64>,
    /// Which timers these are.
    pub scope: LatenessScope,
}

/// Which timers a lateness figure covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatenessScope {
    /// Those fired during the run: from just before the clock started to after the last answer
    /// (the page scraped then, minus the one scraped before).
    Run,
    /// Every timer since the daemon started (no page from before the run, or the exporter
    /// renders the histogram as a summary, or the daemon restarted during the run).
    DaemonLifetime,
}

/// The JSON result file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub settings: RunSettings,
    /// Agents logged in during setup (not part of the measured phase).
    pub setup_events: u64,
    /// Slots the schedule produced for the measured phase.
    pub scheduled: u64,
    /// Events actually sent (every type counts).
    pub sent: u64,
    /// Events that got an HTTP answer, whatever its status.
    pub answered: u64,
    /// From the start of the measured phase to the last answer (at least the duration).
    pub elapsed_s: f64,
    /// Answers other than 5xx over `elapsed_s`: the rate the server actually kept up with (a
    /// 503 "overloaded" is an answer, but not work done).
    pub achieved_rate: f64,
    /// Latency from the intended send time (the published figure), over every slot the
    /// generator handled: an answered one up to its answer, an unanswered one (`failures`) up to
    /// when the generator gave up on it (a lower bound). So `latency_ms.count` is `answered`
    /// plus the failures, and a server that stops answering shows it in the percentiles.
    pub latency_ms: Percentiles,
    /// Latency from the actual send time (the server's share).
    pub service_ms: Percentiles,
    /// How late the generator sent relative to the schedule.
    pub send_lag_ms: Percentiles,
    /// HTTP answers by status code.
    pub statuses: BTreeMap<String, u64>,
    /// Slots without an answer, by reason (connect, io, timeout, unsent).
    pub failures: BTreeMap<String, u64>,
    /// 5xx answers plus failures.
    pub server_errors: u64,
    /// Events sent by type.
    pub sent_by_type: BTreeMap<String, u64>,
    /// Per-event results inside 200 answers: applied / duplicate / rejected.
    pub results: BTreeMap<String, u64>,
    /// Decisions the generator saw (responses and the long-poll feed), by type.
    pub decisions_seen: BTreeMap<String, u64>,
    /// Samples longer than a histogram's range (60 s), recorded at its top; counted once per
    /// histogram they were clamped in (latency, service, send lag).
    pub clamped_samples: u64,
    /// Slots the pacer released more than `--pace-quantum` + 1 ms after their intended time (the
    /// generator itself was held up).
    pub released_late: u64,
    pub timer_lateness: Option<TimerLateness>,
    /// The generator's own CPU time (user + system, all its threads) during the measured phase,
    /// so its cost per event can be set beside the server's.
    pub generator_cpu_s: Option<f64>,
    /// `generator_cpu_s` per answered event, in microseconds.
    pub generator_cpu_us_per_event: Option<f64>,
    /// The server's CPU time (user + system) during the measured phase, read from
    /// `/proc/PID/stat` with `--server-pid`: neither the setup before it nor the scrape after.
    pub server_cpu_s: Option<f64>,
    /// `server_cpu_s` per answered event, in microseconds.
    pub server_cpu_us_per_event: Option<f64>,
    /// Why a figure asked for (`--server-pid`, `--metrics-url`) is null, or why the lateness
    /// may cover the daemon's whole life (no page before the run); also printed on stderr as
    /// they happen. `timer_lateness.scope` says which the lateness covers in every case.
    pub warnings: Vec<String>,
    /// Every slot answered without a 5xx or failure, and p99 under `sustained_p99_ms`.
    pub sustained: bool,
    /// The `SLOWEST_SLICES` 100 ms slices of intended send time with the slowest answer, in
    /// time order: a tail made of a few stalls shows here as a few slices far above the rest.
    pub slowest_100ms: Vec<SliceReport>,
}

/// Slices listed in `Report::slowest_100ms`.
pub const SLOWEST_SLICES: usize = 10;

/// One slice of `Report::slowest_100ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SliceReport {
    /// Start of the slice, seconds into the measured phase (intended send time).
    pub from_s: f64,
    pub answers: u64,
    pub max_latency_ms: f64,
    pub max_service_ms: f64,
}

/// The `n` slices with the slowest answer, in time order.
fn slowest(timeline: &[Slice], n: usize) -> Vec<SliceReport> {
    let mut at: Vec<usize> = (0..timeline.len())
        .filter(|i| timeline[*i].answers > 0)
        .collect();
    at.sort_by_key(|i| std::cmp::Reverse(timeline[*i].max_latency_us));
    at.truncate(n);
    at.sort_unstable();
    at.into_iter()
        .map(|i| SliceReport {
            from_s: (i as u128 * TIMELINE_STEP.as_millis()) as f64 / 1000.0,
            answers: timeline[i].answers,
            max_latency_ms: us_to_ms(timeline[i].max_latency_us),
            max_service_ms: us_to_ms(timeline[i].max_service_us),
        })
        .collect()
}

/// What the rest of the run contributes to the report besides the merged recorder.
#[derive(Debug, Clone, Default)]
pub struct RunTotals {
    pub setup_events: u64,
    pub scheduled: u64,
    pub released_late: u64,
    pub results: BTreeMap<String, u64>,
    pub decisions_seen: BTreeMap<String, u64>,
    pub timer_lateness: Option<TimerLateness>,
    /// The generator's CPU seconds during the measured phase (`None` if it could not be read).
    pub generator_cpu_s: Option<f64>,
    /// The server's CPU seconds during the measured phase (`None` without `--server-pid`).
    pub server_cpu_s: Option<f64>,
    /// What could not be measured as asked (`Report::warnings`).
    pub warnings: Vec<String>,
}

impl Report {
    pub fn build(
        settings: RunSettings,
        recorder: &Recorder,
        totals: RunTotals,
        duration: Duration,
    ) -> Report {
        let answered = recorder.answers();
        let sent: u64 = recorder.sent_by_type.values().sum();
        let elapsed = recorder.last_answer.max(duration);
        let elapsed_s = elapsed.as_secs_f64();
        let served: u64 = recorder
            .statuses
            .iter()
            .filter(|(status, _)| **status < 500)
            .map(|(_, n)| n)
            .sum();
        let achieved_rate = if elapsed_s > 0.0 {
            served as f64 / elapsed_s
        } else {
            0.0
        };
        let latency_ms = Percentiles::of(&recorder.latency);
        let server_errors = recorder.server_errors();
        let sustained = totals.scheduled > 0
            && answered == totals.scheduled
            && server_errors == 0
            && latency_ms.p99 <= settings.sustained_p99_ms;
        Report {
            settings,
            setup_events: totals.setup_events,
            scheduled: totals.scheduled,
            sent,
            answered,
            elapsed_s: (elapsed_s * 1000.0).round() / 1000.0,
            achieved_rate: achieved_rate.round(),
            latency_ms,
            service_ms: Percentiles::of(&recorder.service),
            send_lag_ms: Percentiles::of(&recorder.send_lag),
            statuses: recorder
                .statuses
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            failures: recorder
                .failures
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            server_errors,
            sent_by_type: recorder
                .sent_by_type
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            results: totals.results,
            decisions_seen: totals.decisions_seen,
            clamped_samples: recorder.clamped,
            released_late: totals.released_late,
            timer_lateness: totals.timer_lateness,
            generator_cpu_s: totals
                .generator_cpu_s
                .map(|s| (s * 1000.0).round() / 1000.0),
            generator_cpu_us_per_event: totals
                .generator_cpu_s
                .filter(|_| answered > 0)
                .map(|s| (s * 1e6 / answered as f64 * 10.0).round() / 10.0),
            server_cpu_s: totals.server_cpu_s.map(|s| (s * 1000.0).round() / 1000.0),
            server_cpu_us_per_event: totals
                .server_cpu_s
                .filter(|_| answered > 0)
                .map(|s| (s * 1e6 / answered as f64 * 10.0).round() / 10.0),
            warnings: totals.warnings,
            sustained,
            slowest_100ms: slowest(&recorder.timeline, SLOWEST_SLICES),
        }
    }

    /// One human line for the terminal.
    pub fn summary_line(&self) -> String {
        format!(
            "{mode}: target {target}/s, achieved {achieved}/s ({answered}/{scheduled} answered), \
             latency p50 {p50} ms p99 {p99} ms p99.9 {p999} ms max {max} ms, 5xx {errors_5xx}, \
             unanswered {unanswered} (timeouts, connection errors, unsent), sustained {sustained}",
            mode = self.settings.mode,
            target = self.settings.target_rate,
            achieved = self.achieved_rate,
            answered = self.answered,
            scheduled = self.scheduled,
            p50 = self.latency_ms.p50,
            p99 = self.latency_ms.p99,
            p999 = self.latency_ms.p99_9,
            max = self.latency_ms.max,
            errors_5xx =
                self.server_errors - self.failures.values().sum::<u64>().min(self.server_errors),
            unanswered = self.failures.values().sum::<u64>(),
            sustained = self.sustained,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn settings() -> RunSettings {
        RunSettings {
            mode: "baseline",
            url: "http://127.0.0.1:1".into(),
            target_rate: 100.0,
            duration_s: 1.0,
            arrivals: super::super::schedule::Arrivals::Constant,
            connections: 1,
            agents: 1,
            queues: 1,
            seed: 0,
            sustained_p99_ms: 50.0,
        }
    }

    #[test]
    fn latency_counts_from_the_intended_time_and_service_from_the_send() {
        let mut r = Recorder::new();
        // Due at 10 ms, sent at 30 ms (the connection was busy), answered at 31 ms.
        r.sent("interaction.arrived", ms(10), ms(30));
        r.answered(ms(10), ms(30), ms(31), 200);
        assert_eq!(r.latency.max(), r.latency.highest_equivalent(21_000));
        assert_eq!(r.service.max(), r.service.highest_equivalent(1_000));
        assert_eq!(r.send_lag.max(), r.send_lag.highest_equivalent(20_000));
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut r = Recorder::new();
        // 1..=1000 µs, one each.
        for us in 1..=1000u64 {
            r.answered(
                Duration::ZERO,
                Duration::ZERO,
                Duration::from_micros(us),
                200,
            );
        }
        let p = Percentiles::of(&r.latency);
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50, 0.5);
        assert_eq!(p.p90, 0.9);
        assert_eq!(p.p99, 0.99);
        assert_eq!(p.p99_9, 0.999);
        assert_eq!(p.max, 1.0);
        assert_eq!(p.mean, 0.501);
    }

    #[test]
    fn a_sample_beyond_a_minute_is_clamped_and_counted_not_lost() {
        let mut r = Recorder::new();
        r.answered(
            Duration::ZERO,
            Duration::ZERO,
            Duration::from_secs(120),
            200,
        );
        assert_eq!(r.latency.len(), 1);
        assert_eq!(r.clamped, 2); // latency and service both exceeded the range
        assert!(r.latency.max() >= HIGHEST_US);
    }

    #[test]
    fn unanswered_slots_count_in_the_latency_up_to_when_the_generator_gave_up() {
        let mut r = Recorder::new();
        // 98 answered in 1 ms; one timed out after 5 s; one never sent, given up 8 s late.
        for k in 0..98 {
            r.sent("interaction.arrived", ms(k), ms(k));
            r.answered(ms(k), ms(k), ms(k + 1), 200);
        }
        r.sent("interaction.arrived", ms(100), ms(100));
        r.failed(Failure::Timeout, ms(100), ms(5_100));
        r.failed(Failure::Unsent, ms(200), ms(8_200));
        let p = Percentiles::of(&r.latency);
        assert_eq!(p.count, 100, "every slot handled is in the latency");
        assert_eq!(p.p50, 1.0);
        // A server that stops answering cannot look fast: the two unanswered slots are the 1 %.
        assert!(p.p99 >= 5_000.0, "p99 {} ms hides the timeout", p.p99);
        assert!(p.max >= 8_000.0, "max {} ms hides the unsent slot", p.max);
        // The server's share only covers answers.
        assert_eq!(Percentiles::of(&r.service).count, 98);
        assert_eq!(r.server_errors(), 2);
    }

    #[test]
    fn the_slowest_slices_show_when_a_stall_happened() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        // Every 10 ms for 2 s, answered in 1 ms, except a 40 ms stall at 0.75 s (on `b`) and a
        // 5 ms answer at 1.95 s.
        for slot in 0..200u64 {
            let at = ms(slot * 10);
            let took = match slot {
                75 => 40,
                195 => 5,
                _ => 1,
            };
            let r = if slot % 2 == 0 { &mut a } else { &mut b };
            r.answered(at, at + ms(took / 2), at + ms(took), 200);
        }
        a.merge(&b);
        assert_eq!(a.timeline.len(), 20);
        assert!(a.timeline.iter().all(|s| s.answers == 10));
        assert_eq!(a.timeline[7].max_latency_us, 40_000);
        assert_eq!(a.timeline[7].max_service_us, 20_000);
        let report = Report::build(settings(), &a, RunTotals::default(), ms(2000));
        assert_eq!(report.slowest_100ms.len(), SLOWEST_SLICES);
        // In time order, the stall's slice and the 5 ms one among them.
        let starts: Vec<f64> = report.slowest_100ms.iter().map(|s| s.from_s).collect();
        assert!(starts.windows(2).all(|w| w[0] < w[1]), "{starts:?}");
        let stall = report.slowest_100ms.iter().find(|s| s.from_s == 0.7);
        assert_eq!(stall.map(|s| s.max_latency_ms), Some(40.0));
        let late = report.slowest_100ms.iter().find(|s| s.from_s == 1.9);
        assert_eq!(late.map(|s| s.max_latency_ms), Some(5.0));
    }

    #[test]
    fn merged_recorders_add_up() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        a.sent("offer.accepted", ms(0), ms(0));
        a.answered(ms(0), ms(0), ms(1), 200);
        b.sent("offer.accepted", ms(5), ms(5));
        b.answered(ms(5), ms(5), ms(9), 409);
        b.failed(Failure::Timeout, ms(7), ms(1007));
        a.merge(&b);
        assert_eq!(a.latency.len(), 3);
        assert_eq!(a.sent_by_type["offer.accepted"], 2);
        assert_eq!(a.statuses[&200], 1);
        assert_eq!(a.statuses[&409], 1);
        assert_eq!(a.failures["timeout"], 1);
        assert_eq!(a.last_answer, ms(9));
        // A 409 is the server answering; only the timeout is a server error.
        assert_eq!(a.server_errors(), 1);
    }

    #[test]
    fn achieved_rate_is_answers_over_the_time_to_the_last_answer() {
        let mut r = Recorder::new();
        for i in 0..100u64 {
            r.sent("interaction.arrived", ms(i * 10), ms(i * 10));
            r.answered(ms(i * 10), ms(i * 10), ms(i * 10 + 1), 200);
        }
        let totals = RunTotals {
            scheduled: 100,
            ..RunTotals::default()
        };
        let report = Report::build(settings(), &r, totals, Duration::from_secs(1));
        assert_eq!(report.answered, 100);
        assert_eq!(report.sent, 100);
        assert_eq!(report.elapsed_s, 1.0);
        assert_eq!(report.achieved_rate, 100.0);
        assert!(report.sustained);

        // The same answers spread over 2 s (a backlog drained after the schedule ended).
        r.answered(ms(1000), ms(1000), ms(2000), 200);
        let totals = RunTotals {
            scheduled: 101,
            ..RunTotals::default()
        };
        let report = Report::build(settings(), &r, totals, Duration::from_secs(1));
        assert_eq!(report.elapsed_s, 2.0);
        assert_eq!(report.achieved_rate, 51.0); // 101 answers / 2 s, rounded
    }

    /// A server that answers 503 to most events did not keep up with them: they are answers,
    /// but not part of the achieved rate.
    #[test]
    fn refusals_do_not_count_in_the_achieved_rate() {
        let mut r = Recorder::new();
        for i in 0..100u64 {
            r.sent("interaction.arrived", ms(i * 10), ms(i * 10));
            let status = if i % 10 == 0 { 200 } else { 503 };
            r.answered(ms(i * 10), ms(i * 10), ms(i * 10 + 1), status);
        }
        let totals = RunTotals {
            scheduled: 100,
            ..RunTotals::default()
        };
        let report = Report::build(settings(), &r, totals, Duration::from_secs(1));
        assert_eq!(report.answered, 100);
        assert_eq!(report.achieved_rate, 10.0);
        assert!(!report.sustained);
    }

    #[test]
    fn a_run_with_unanswered_slots_or_a_slow_p99_is_not_sustained() {
        let mut r = Recorder::new();
        for i in 0..100u64 {
            r.answered(ms(i), ms(i), ms(i + 1), 200);
        }
        let short = RunTotals {
            scheduled: 101,
            ..RunTotals::default()
        };
        assert!(!Report::build(settings(), &r, short, Duration::from_secs(1)).sustained);

        let mut slow = Recorder::new();
        for i in 0..100u64 {
            slow.answered(ms(i), ms(i), ms(i + 80), 200);
        }
        let all = RunTotals {
            scheduled: 100,
            ..RunTotals::default()
        };
        assert!(!Report::build(settings(), &slow, all, Duration::from_secs(1)).sustained);
    }

    /// The server's CPU time is over the measured phase only, so per event it is divided by
    /// the answered events alone (not the setup's logins).
    #[test]
    fn server_cpu_per_event_is_over_the_answered_events() {
        let mut r = Recorder::new();
        for i in 0..100u64 {
            r.answered(ms(i), ms(i), ms(i + 1), 200);
        }
        let totals = RunTotals {
            scheduled: 100,
            setup_events: 2000,
            server_cpu_s: Some(0.0031),
            warnings: Vec::new(),
            ..RunTotals::default()
        };
        let report = Report::build(settings(), &r, totals, Duration::from_secs(1));
        assert_eq!(report.server_cpu_s, Some(0.003));
        assert_eq!(report.server_cpu_us_per_event, Some(31.0));
        let none = Report::build(settings(), &r, RunTotals::default(), Duration::from_secs(1));
        assert_eq!(none.server_cpu_us_per_event, None);
    }

    #[test]
    fn the_report_serializes_with_the_documented_fields() {
        let mut r = Recorder::new();
        r.sent("agent.wrapup_done", ms(0), ms(0));
        r.answered(ms(0), ms(0), ms(1), 200);
        let totals = RunTotals {
            scheduled: 1,
            ..RunTotals::default()
        };
        let report = Report::build(settings(), &r, totals, Duration::from_secs(1));
        let v = serde_json::to_value(&report).unwrap();
        for key in [
            "settings",
            "scheduled",
            "sent",
            "answered",
            "elapsed_s",
            "achieved_rate",
            "latency_ms",
            "service_ms",
            "send_lag_ms",
            "statuses",
            "failures",
            "server_errors",
            "sent_by_type",
            "sustained",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["statuses"]["200"], 1);
        assert_eq!(v["latency_ms"]["count"], 1);
        assert_eq!(v["settings"]["arrivals"], "constant");
    }
}
