//! Where arrivals come from: a [`Traffic`] source yields interactions in time order, each with the
//! customer's behaviour (handle time, patience, early wrap-up) already drawn.
//!
//! The runner only sees the trait, so a source that re-drives a recorded journal (the planned
//! `--replay` what-if) can stand in for the synthetic generator here. A source never looks at
//! routing: the same scenario and seed give the same arrivals whatever routing config is tested
//! (common random numbers), which makes side-by-side comparisons much less noisy.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Channel, Millis};
use crate::sim::scenario::{Plan, Stream};

/// One interaction to send to the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// Offset from the scenario start.
    pub at: Millis,
    pub channel: Channel,
    pub queue: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub priority: Option<i32>,
    pub skills: Vec<String>,
    /// Connected time, from accept to `interaction.ended`.
    pub handle_ms: Millis,
    /// The agent presses "wrap-up done" this long after the end (`None`: the queue's wrap-up).
    pub wrap_up_ms: Option<Millis>,
    /// The customer hangs up this long after arriving unless answered (`None`: never).
    pub patience_ms: Option<Millis>,
    /// How named agents answered this interaction's offers in a recording, oldest first; an
    /// offer to one of them uses (and uses up) that agent's first response. Empty for synthetic
    /// traffic: the agents' behaviour applies.
    pub responses: Vec<RecordedResponse>,
}

/// One recorded answer to an offer.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedResponse {
    pub agent: std::sync::Arc<str>,
    /// Offer → the answer.
    pub delay_ms: Millis,
    pub answer: Answer,
}

/// What the agent did with an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Decline(crate::engine::DeclineReason),
    /// Nothing: the phone rang until the offer expired or was taken back.
    Ring,
}

/// Recorded arrivals, already in time order (a replay builds them from a journal).
pub struct Recorded {
    arrivals: std::vec::IntoIter<Arrival>,
}

impl Recorded {
    /// `arrivals` are sorted by `at` here (stable: equal times keep their recorded order).
    pub fn new(mut arrivals: Vec<Arrival>) -> Recorded {
        arrivals.sort_by_key(|a| a.at);
        Recorded {
            arrivals: arrivals.into_iter(),
        }
    }
}

impl Traffic for Recorded {
    fn next_arrival(&mut self) -> Option<Arrival> {
        self.arrivals.next()
    }
}

/// A time-ordered source of arrivals.
pub trait Traffic {
    /// The next arrival (non-decreasing `at`), or `None` when there are no more.
    fn next_arrival(&mut self) -> Option<Arrival>;
}

/// Poisson arrivals from the scenario's streams, merged in time order.
pub struct Synthetic<'p> {
    plan: &'p Plan,
    /// Per stream: its own RNG and the (fractional) time of its next arrival.
    streams: Vec<StreamState>,
}

struct StreamState {
    rng: ChaCha8Rng,
    /// Next arrival time in ms (fractional, to avoid drift); `None` when past the end.
    next: Option<f64>,
}

impl<'p> Synthetic<'p> {
    /// Each stream draws from its own ChaCha8 stream of `seed`, so adding a stream never changes
    /// the arrivals of the others.
    pub fn new(plan: &'p Plan, seed: u64) -> Self {
        let mut streams = Vec::with_capacity(plan.streams.len());
        for (i, s) in plan.streams.iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(i as u64 + 1);
            let next = next_time(s, 0.0, plan.duration_ms as f64, &mut rng);
            streams.push(StreamState { rng, next });
        }
        Synthetic { plan, streams }
    }
}

impl Traffic for Synthetic<'_> {
    fn next_arrival(&mut self) -> Option<Arrival> {
        let (i, at) = self
            .streams
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.next.map(|t| (i, t)))
            .min_by(|a, b| a.1.total_cmp(&b.1))?;
        let spec = &self.plan.streams[i];
        let state = &mut self.streams[i];
        let rng = &mut state.rng;
        let u: f64 = rng.gen();
        let channel = spec
            .channels
            .iter()
            .find(|(_, cum)| u < *cum)
            .or(spec.channels.last())
            .map_or(Channel::Voice, |(c, _)| *c);
        let handle_ms = spec.handle.sample(rng).unwrap_or(0);
        let wrap_up_ms = spec.wrap_up.sample(rng);
        let patience_ms = spec.patience.sample(rng);
        state.next = next_time(spec, at, self.plan.duration_ms as f64, rng);
        Some(Arrival {
            at: at as Millis,
            channel,
            queue: spec.queue.clone(),
            attributes: spec.attributes.clone(),
            priority: spec.priority,
            skills: spec.skills.clone(),
            handle_ms,
            wrap_up_ms,
            patience_ms,
            responses: Vec::new(),
        })
    }
}

/// The next arrival after `t` of a non-homogeneous Poisson process with piecewise-constant rate,
/// or `None` at or past `end`. Exact: the exponential is memoryless, so at each rate change a
/// fresh draw at the new rate is taken.
fn next_time(s: &Stream, mut t: f64, end: f64, rng: &mut ChaCha8Rng) -> Option<f64> {
    loop {
        if t >= end {
            return None;
        }
        let (rate, piece_end) = rate_at(s, t);
        let e: f64 = -(1.0 - rng.gen::<f64>()).ln();
        if rate > 0.0 {
            let candidate = t + e / rate;
            if candidate < piece_end {
                return (candidate < end).then_some(candidate);
            }
        }
        if !piece_end.is_finite() {
            return None;
        }
        t = piece_end;
    }
}

/// The rate (per ms) at `t` and the time the current piece ends.
fn rate_at(s: &Stream, t: f64) -> (f64, f64) {
    let (base, local) = match s.repeat_ms {
        Some(period) => {
            let p = period as f64;
            let base = (t / p).floor() * p;
            (base, t - base)
        }
        None => (0.0, t),
    };
    let idx = s
        .rates
        .iter()
        .rposition(|&(from, _)| from as f64 <= local)
        .unwrap_or(0);
    let rate = s.rates.get(idx).map_or(0.0, |r| r.1);
    let end = match (s.rates.get(idx + 1), s.repeat_ms) {
        (Some(&(from, _)), _) => base + from as f64,
        (None, Some(period)) => base + period as f64,
        (None, None) => f64::INFINITY,
    };
    (rate, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::dist::Dist;

    fn stream(rates: Vec<(Millis, f64)>, repeat_ms: Option<Millis>) -> Stream {
        Stream {
            queue: Some("q".into()),
            attributes: BTreeMap::new(),
            rates,
            repeat_ms,
            channels: vec![(Channel::Voice, 0.7), (Channel::Chat, 1.0)],
            handle: Dist::Exponential { mean_s: 60.0 },
            wrap_up: Dist::Never,
            patience: Dist::Never,
            priority: None,
            skills: Vec::new(),
        }
    }

    fn plan(streams: Vec<Stream>, duration_ms: Millis) -> Plan {
        Plan {
            seed: 1,
            start_ms: 0,
            duration_ms,
            warm_up_ms: 0,
            drain_ms: 0,
            streams,
            agents: Vec::new(),
            behaviours: Vec::new(),
            warnings: Vec::new(),
            stuck_after: None,
        }
    }

    fn all(plan: &Plan, seed: u64) -> Vec<Arrival> {
        let mut t = Synthetic::new(plan, seed);
        std::iter::from_fn(|| t.next_arrival()).collect()
    }

    #[test]
    fn a_day_shape_puts_the_arrivals_in_the_busy_hours() {
        // Quiet night (10/h for 8 h), busy day (200/h for 8 h), evening (50/h), repeating daily,
        // run for 10 days.
        let hour = 3_600_000;
        let s = stream(
            vec![
                (0, 10.0 / 3.6e6),
                (8 * hour, 200.0 / 3.6e6),
                (16 * hour, 50.0 / 3.6e6),
            ],
            Some(24 * hour),
        );
        let p = plan(vec![s], 240 * hour);
        let arrivals = all(&p, 3);
        let in_piece = |lo: u64, hi: u64| {
            arrivals
                .iter()
                .filter(|a| (lo..hi).contains(&(a.at % (24 * hour))))
                .count() as f64
        };
        let expected = [(0, 8, 10.0), (8, 16, 200.0), (16, 24, 50.0)];
        for (lo, hi, per_hour) in expected {
            let want = per_hour * 8.0 * 10.0;
            let got = in_piece(lo * hour, hi * hour);
            assert!(
                (got - want).abs() < 4.0 * want.sqrt() + 1.0,
                "{lo}h–{hi}h: {got} arrivals, expected about {want}"
            );
        }
    }

    #[test]
    fn arrivals_come_in_time_order_and_the_channel_mix_holds() {
        let p = plan(
            vec![
                stream(vec![(0, 100.0 / 3.6e6)], None),
                stream(vec![(0, 50.0 / 3.6e6)], None),
            ],
            1_000 * 3_600_000,
        );
        let arrivals = all(&p, 9);
        assert!(arrivals.windows(2).all(|w| w[0].at <= w[1].at));
        let n = arrivals.len() as f64;
        assert!((n - 150_000.0).abs() < 2_000.0, "{n} arrivals");
        let chat = arrivals
            .iter()
            .filter(|a| a.channel == Channel::Chat)
            .count() as f64;
        assert!((chat / n - 0.3).abs() < 0.01, "chat share {}", chat / n);
    }

    #[test]
    fn the_same_seed_gives_the_same_arrivals_and_another_seed_does_not() {
        let p = plan(vec![stream(vec![(0, 100.0 / 3.6e6)], None)], 10 * 3_600_000);
        assert_eq!(all(&p, 5), all(&p, 5));
        assert_ne!(all(&p, 5), all(&p, 6));
    }
}
