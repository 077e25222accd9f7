//! KPI reports for `GET /v1/queues/{id}/stats` and `GET /v1/agents/{id}/stats`, with the exact
//! definitions of `docs/METRICS.md` (contact-centre practice, domain reference §3).
//!
//! Owns the bounded windows the reports are computed from: per queue a ring of per-minute tallies
//! covering 24 hours; per agent a ledger of state spans and marks (offers, hand-offs, ratings)
//! covering 24 hours and at most a fixed number of entries. Must never grow with traffic beyond
//! those bounds, and never read a clock: every query names its `now`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use super::since_start::QueueTally;
use crate::config::{Channel, Millis};
use crate::engine::decision::rfc3339_ms;
use crate::engine::event::Named;
use crate::engine::{Activity, AgentStatus};

/// How far back statistics reach.
pub const RETENTION_MS: Millis = 24 * 60 * 60 * 1000;
const MINUTE_MS: Millis = 60_000;
/// Per agent: state spans kept (a span is one state change); the oldest go first.
pub const MAX_AGENT_SPANS: usize = 2048;
/// Per agent: marks kept (offers, ends, hand-offs, ratings…); the oldest go first.
pub const MAX_AGENT_MARKS: usize = 4096;

/// Why a statistics query was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StatsError {
    #[error("unknown queue {}", Named(queue))]
    UnknownQueue { queue: String },
    #[error("unknown agent {}", Named(agent))]
    UnknownAgent { agent: String },
    #[error("invalid window {}: {reason}", Named(window))]
    InvalidWindow { window: String, reason: String },
    #[error(
        "`since` ({}) is after now ({})",
        crate::engine::decision::rfc3339_ms::format(*.since),
        crate::engine::decision::rfc3339_ms::format(*.now)
    )]
    SinceInFuture { since: Millis, now: Millis },
}

impl StatsError {
    /// Stable code for the `{"error":{"code":…}}` body.
    pub fn code(&self) -> &'static str {
        match self {
            StatsError::UnknownQueue { .. } => "unknown_queue",
            StatsError::UnknownAgent { .. } => "unknown_agent",
            StatsError::InvalidWindow { .. } => "invalid_window",
            StatsError::SinceInFuture { .. } => "invalid_since",
        }
    }

    /// 404 for unknown ids, 422 for bad parameters.
    pub fn http_status(&self) -> u16 {
        match self {
            StatsError::UnknownQueue { .. } | StatsError::UnknownAgent { .. } => 404,
            _ => 422,
        }
    }
}

/// Parse a window like `90s`, `15m`, `2h` (1 minute to 24 hours, whole minutes).
pub fn parse_window(text: &str) -> Result<Millis, StatsError> {
    let bad = |reason: &str| StatsError::InvalidWindow {
        window: text.to_string(),
        reason: reason.to_string(),
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| bad("needs a unit: s, m or h (e.g. 15m)"))?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| bad("expected a number followed by s, m or h (e.g. 15m)"))?;
    let unit_ms = match unit {
        "s" => 1000,
        "m" => MINUTE_MS,
        "h" => 60 * MINUTE_MS,
        _ => {
            return Err(bad(
                "expected a whole number followed by one unit, s, m or h (e.g. 90m, not 1.5h \
                 or 1h30m)",
            ))
        }
    };
    let ms = n.saturating_mul(unit_ms);
    check_window(ms).map_err(|reason| bad(&reason))?;
    Ok(ms)
}

fn check_window(ms: Millis) -> Result<(), String> {
    if !(MINUTE_MS..=RETENTION_MS).contains(&ms) {
        return Err("must be between 1m and 24h".into());
    }
    if ms % MINUTE_MS != 0 {
        return Err("must be a whole number of minutes (statistics are kept per minute)".into());
    }
    Ok(())
}

/// Counts for one queue in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub arrived: u32,
    pub rejected: u32,
    /// Re-entries: overflow or transfer into this queue, escalation back into it.
    pub entered_again: u32,
    pub answered: u32,
    pub answered_within_sla: u32,
    pub answered_wait_ms: u64,
    pub abandoned: u32,
    pub short_abandoned: u32,
    pub overflowed: u32,
    pub ended: u32,
    pub resolved: u32,
    pub ratings: u32,
    pub satisfied: u32,
    pub complaints: u32,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.arrived += o.arrived;
        self.rejected += o.rejected;
        self.entered_again += o.entered_again;
        self.answered += o.answered;
        self.answered_within_sla += o.answered_within_sla;
        self.answered_wait_ms += o.answered_wait_ms;
        self.abandoned += o.abandoned;
        self.short_abandoned += o.short_abandoned;
        self.overflowed += o.overflowed;
        self.ended += o.ended;
        self.resolved += o.resolved;
        self.ratings += o.ratings;
        self.satisfied += o.satisfied;
        self.complaints += o.complaints;
    }
}

/// Per-minute tallies of one queue over the last 24 hours. Sparse: quiet minutes cost nothing;
/// at most 1440 entries (~100 KB) for a queue busy every minute of the day.
#[derive(Debug, Default)]
pub(crate) struct QueueWindow {
    minutes: VecDeque<(u64, Tally)>,
    /// Nothing before this is known (the daemon started, or the queue appeared, then): a report
    /// whose window reaches further back starts here.
    known_from: Millis,
}

impl QueueWindow {
    /// A window that knows what happens from `known_from` on.
    pub fn known_from(known_from: Millis) -> QueueWindow {
        QueueWindow {
            minutes: VecDeque::new(),
            known_from,
        }
    }

    /// The tally of the minute containing `at`. Facts arrive in time order, so this is the last
    /// minute or a new one; an out-of-order `at` is counted in the latest minute.
    pub fn at(&mut self, at: Millis) -> &mut Tally {
        let minute = at / MINUTE_MS;
        let fresh = match self.minutes.back() {
            Some((last, _)) => minute > *last,
            None => true,
        };
        if fresh {
            self.minutes.push_back((minute, Tally::default()));
            let oldest_kept = minute.saturating_sub(RETENTION_MS / MINUTE_MS - 1);
            while self.minutes.front().is_some_and(|(m, _)| *m < oldest_kept) {
                self.minutes.pop_front();
            }
        }
        match self.minutes.back_mut() {
            Some((_, tally)) => tally,
            None => unreachable!("a minute was pushed above"),
        }
    }

    /// Sum of the minutes that start within `(now - window, now]`, i.e. the last `window / 1m`
    /// minutes counting the current one.
    fn sum(&self, window_ms: Millis, now: Millis) -> Tally {
        let current = now / MINUTE_MS;
        let first = (current + 1).saturating_sub(window_ms / MINUTE_MS);
        let mut total = Tally::default();
        for (_, t) in self
            .minutes
            .iter()
            .filter(|(m, _)| *m >= first && *m <= current)
        {
            total.add(t);
        }
        total
    }

    pub fn report(
        &self,
        q: QueueNow<'_>,
        window_ms: Millis,
        now: Millis,
    ) -> Result<QueueStats, StatsError> {
        check_window(window_ms).map_err(|reason| StatsError::InvalidWindow {
            window: format!("{}s", window_ms / 1000),
            reason,
        })?;
        let t = self.sum(window_ms, now);
        let offered = (t.arrived + t.entered_again).saturating_sub(t.rejected);
        let counts = QueueTally {
            arrived: t.arrived.into(),
            answered: t.answered.into(),
            answered_within_sla: t.answered_within_sla.into(),
            abandoned: t.abandoned.into(),
            short_abandoned: t.short_abandoned.into(),
            overflowed: t.overflowed.into(),
            rejected: t.rejected.into(),
        };
        let first_minute = ((now / MINUTE_MS) + 1).saturating_sub(window_ms / MINUTE_MS);
        Ok(QueueStats {
            queue: q.id.to_string(),
            // The period the figures cover: the window, or less if nothing was seen before.
            from: (first_minute * MINUTE_MS).max(self.known_from.min(now)),
            to: now,
            window_s: window_ms / 1000,
            sla_s: q.sla_ms as f64 / 1000.0,
            offered: u64::from(offered),
            service_level: counts.service_level(),
            asa_s: ratio(t.answered_wait_ms as f64 / 1000.0, t.answered.into()),
            abandon_rate: counts.abandon_rate(),
            counts,
            waiting: q.waiting,
            ringing: q.ringing,
            longest_wait_s: q
                .oldest_entered_at
                .map_or(0.0, |at| now.saturating_sub(at) as f64 / 1000.0),
            ended: u64::from(t.ended),
            resolved: u64::from(t.resolved),
            resolution_rate: ratio(t.resolved.into(), t.ended.into()),
            ratings: u64::from(t.ratings),
            satisfaction: ratio(t.satisfied.into(), t.ratings.into()),
            complaints: u64::from(t.complaints),
            complaint_share: ratio(t.complaints.into(), t.arrived.into()),
        })
    }
}

/// What a queue looks like right now (from the last engine batch).
pub(crate) struct QueueNow<'a> {
    pub id: &'a str,
    pub sla_ms: Millis,
    pub waiting: u64,
    pub ringing: u64,
    pub oldest_entered_at: Option<Millis>,
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// `GET /v1/queues/{id}/stats?window=15m`. Rates are `null` when their denominator is 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueStats {
    pub queue: String,
    /// Start of the first minute counted; minutes are whole. RFC 3339 on the wire, like every
    /// other time in the API.
    #[serde(serialize_with = "rfc3339_ms::serialize")]
    pub from: Millis,
    #[serde(serialize_with = "rfc3339_ms::serialize")]
    pub to: Millis,
    pub window_s: u64,
    pub sla_s: f64,
    /// Entered the queue to wait: arrivals not rejected, plus overflows, transfers and agent
    /// escalations into it.
    pub offered: u64,
    /// `arrived` … `rejected` in the window: the same counts as the since-start `sla` of
    /// `GET /v1/queues`, and the same JSON fields.
    #[serde(flatten)]
    pub counts: QueueTally,
    /// answered within sla_s / (answered + abandoned); short abandons excluded.
    pub service_level: Option<f64>,
    /// Mean wait of answered interactions, queue entry to accept.
    pub asa_s: Option<f64>,
    /// abandoned / (answered + abandoned); short abandons excluded.
    pub abandon_rate: Option<f64>,
    /// Waiting right now (in the queue, not being offered).
    pub waiting: u64,
    /// Being offered to an agent (ringing) right now: not answered yet, its caller still waits.
    pub ringing: u64,
    /// Time since the oldest unanswered interaction, waiting or ringing, entered the queue (0
    /// when none).
    pub longest_wait_s: f64,
    pub ended: u64,
    pub resolved: u64,
    /// resolved / ended (an end without `resolved` counts as not resolved).
    pub resolution_rate: Option<f64>,
    pub ratings: u64,
    /// ratings of 4 or 5 / all ratings.
    pub satisfaction: Option<f64>,
    pub complaints: u64,
    /// complaints / arrived.
    pub complaint_share: Option<f64>,
}

/// One period in which an agent's state did not change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Span {
    pub start: Millis,
    pub activity: Activity,
    pub status: AgentStatus,
    pub reason: Option<Arc<str>>,
}

/// Something an agent did, for counting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Mark {
    Offered,
    Answered,
    /// Declined with reason `rejected` or `busy`.
    Declined,
    /// Declined with reason `no_answer`, or the offer expired.
    NoAnswer,
    Ended {
        resolved: bool,
    },
    Finished {
        channel: Channel,
        handle_ms: Millis,
    },
    Escalated,
    Transferred,
    Rated {
        score: u8,
    },
}

/// The 24-hour record of one agent.
#[derive(Debug)]
pub(crate) struct AgentLedger {
    spans: VecDeque<Span>,
    marks: VecDeque<(Millis, Mark)>,
    /// Before this, nothing is known (telemetry started, or entries were dropped).
    known_from: Millis,
}

impl AgentLedger {
    /// A ledger whose knowledge starts at `known_from`, agent offline.
    pub fn new(known_from: Millis) -> Self {
        AgentLedger {
            spans: VecDeque::from([Span {
                start: known_from,
                activity: Activity::Offline,
                status: AgentStatus::Offline,
                reason: None,
            }]),
            marks: VecDeque::new(),
            known_from,
        }
    }

    pub fn current(&self) -> Option<&Span> {
        self.spans.back()
    }

    /// The agent's state is `span` from `span.start` on (a no-op if nothing changed).
    pub fn enter(&mut self, span: Span) {
        if let Some(last) = self.spans.back_mut() {
            if last.activity == span.activity
                && last.status == span.status
                && last.reason == span.reason
            {
                return;
            }
            if span.start <= last.start {
                // Same instant (or an out-of-order fact): the newer state replaces it.
                let start = last.start;
                *last = Span { start, ..span };
                return;
            }
        }
        self.spans.push_back(span);
        self.trim();
    }

    pub fn mark(&mut self, at: Millis, mark: Mark) {
        self.marks.push_back((at, mark));
        self.trim();
    }

    fn trim(&mut self) {
        let newest = self
            .spans
            .back()
            .map_or(0, |s| s.start)
            .max(self.marks.back().map_or(0, |m| m.0));
        let horizon = newest.saturating_sub(RETENTION_MS);
        // Keep the span in force at the horizon: it tells the state from then on.
        while self.spans.len() > MAX_AGENT_SPANS
            || (self.spans.len() > 1 && self.spans[1].start <= horizon)
        {
            self.spans.pop_front();
            if let Some(first) = self.spans.front() {
                self.known_from = self.known_from.max(first.start);
            }
        }
        while self.marks.len() > MAX_AGENT_MARKS
            || self.marks.front().is_some_and(|m| m.0 < horizon)
        {
            if let Some((at, _)) = self.marks.pop_front() {
                self.known_from = self.known_from.max(at);
            }
        }
    }

    pub fn report(
        &self,
        agent: &str,
        since: Millis,
        now: Millis,
    ) -> Result<AgentStats, StatsError> {
        if since > now {
            return Err(StatsError::SinceInFuture { since, now });
        }
        let from = since
            .max(self.known_from)
            .max(now.saturating_sub(RETENTION_MS));
        let mut activity_ms: BTreeMap<Activity, Millis> = BTreeMap::new();
        let mut status_ms: BTreeMap<&'static str, Millis> = BTreeMap::new();
        let mut reasons_ms: BTreeMap<String, Millis> = BTreeMap::new();
        for (i, span) in self.spans.iter().enumerate() {
            let end = self
                .spans
                .get(i + 1)
                .map_or(now, |next| next.start)
                .min(now);
            let start = span.start.max(from);
            if end <= start {
                continue;
            }
            let ms = end - start;
            *activity_ms.entry(span.activity).or_default() += ms;
            *status_ms.entry(span.status.as_str()).or_default() += ms;
            if span.status == AgentStatus::NotReady {
                let reason = span.reason.as_deref().unwrap_or("unspecified").to_string();
                *reasons_ms.entry(reason).or_default() += ms;
            }
        }
        let mut s = AgentStats::empty(agent, from, now);
        for (at, mark) in self
            .marks
            .iter()
            .filter(|(at, _)| *at >= from && *at <= now)
        {
            let _ = at;
            match *mark {
                Mark::Offered => s.offers += 1,
                Mark::Answered => s.answered += 1,
                Mark::Declined => s.declines += 1,
                Mark::NoAnswer => s.no_answers += 1,
                Mark::Ended { resolved } => {
                    s.ended += 1;
                    s.resolved += u64::from(resolved);
                }
                Mark::Finished { channel, handle_ms } => {
                    *s.handled.entry(channel).or_default() += 1;
                    s.handled_total += 1;
                    s.handle_s_total += handle_ms as f64 / 1000.0;
                }
                Mark::Escalated => s.escalations += 1,
                Mark::Transferred => s.transfers += 1,
                Mark::Rated { score } => {
                    s.ratings += 1;
                    s.rating_sum += u64::from(score);
                }
            }
        }
        let secs = |ms: Option<&Millis>| ms.copied().unwrap_or(0) as f64 / 1000.0;
        for a in Activity::ALL {
            s.activity_s.insert(a.as_str(), secs(activity_ms.get(&a)));
        }
        for st in [
            AgentStatus::Available,
            AgentStatus::NotReady,
            AgentStatus::Offline,
        ] {
            s.status_s
                .insert(st.as_str(), secs(status_ms.get(st.as_str())));
        }
        s.not_ready_reasons_s = reasons_ms
            .into_iter()
            .map(|(r, ms)| (r, ms as f64 / 1000.0))
            .collect();
        // Milliseconds added before the one division: 60.608, not 60.608000000000004.
        let ms = |status: &str| status_ms.get(status).copied().unwrap_or(0);
        s.logged_in_s = secs(Some(&(ms("available") + ms("not_ready"))));
        let handling =
            secs(activity_ms.get(&Activity::Busy)) + secs(activity_ms.get(&Activity::WrapUp));
        let idle =
            secs(activity_ms.get(&Activity::Available)) + secs(activity_ms.get(&Activity::Offered));
        s.occupancy = ratio(handling, handling + idle);
        s.aht_s = ratio(s.handle_s_total, s.handled_total as f64);
        s.resolution_rate = ratio(s.resolved as f64, s.ended as f64);
        s.average_rating = ratio(s.rating_sum as f64, s.ratings as f64);
        Ok(s)
    }
}

/// `GET /v1/agents/{id}/stats?since=…`. Rates are `null` when their denominator is 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentStats {
    pub agent: String,
    /// Effective start: `since`, unless the record starts later (telemetry started, or older
    /// than 24 h / beyond the ledger's bounds). RFC 3339 on the wire.
    #[serde(serialize_with = "rfc3339_ms::serialize")]
    pub from: Millis,
    #[serde(serialize_with = "rfc3339_ms::serialize")]
    pub to: Millis,
    /// Time with status available or not_ready.
    pub logged_in_s: f64,
    /// Time per status: available, not_ready, offline.
    pub status_s: BTreeMap<&'static str, f64>,
    /// Time not_ready per reason (`unspecified` when none was given).
    pub not_ready_reasons_s: BTreeMap<String, f64>,
    /// Time per wallboard state: available, offered, busy, wrap_up, not_ready, offline.
    pub activity_s: BTreeMap<&'static str, f64>,
    /// Interactions finished (wrap-up ended) per channel.
    pub handled: BTreeMap<Channel, u64>,
    pub handled_total: u64,
    /// Mean handle time (connected + wrap-up) of the interactions finished.
    pub aht_s: Option<f64>,
    /// (busy + wrap_up) / (busy + wrap_up + available + offered).
    pub occupancy: Option<f64>,
    pub offers: u64,
    pub answered: u64,
    /// Offers declined as `rejected` or `busy`.
    pub declines: u64,
    /// Offers declined as `no_answer` or expired.
    pub no_answers: u64,
    /// Interactions the agent escalated (`interaction.escalated`).
    pub escalations: u64,
    pub transfers: u64,
    pub ended: u64,
    pub resolved: u64,
    /// resolved / ended.
    pub resolution_rate: Option<f64>,
    pub ratings: u64,
    pub average_rating: Option<f64>,
    #[serde(skip)]
    handle_s_total: f64,
    #[serde(skip)]
    rating_sum: u64,
}

impl AgentStats {
    fn empty(agent: &str, from: Millis, to: Millis) -> Self {
        AgentStats {
            agent: agent.to_string(),
            from,
            to,
            logged_in_s: 0.0,
            status_s: BTreeMap::new(),
            not_ready_reasons_s: BTreeMap::new(),
            activity_s: BTreeMap::new(),
            handled: BTreeMap::new(),
            handled_total: 0,
            aht_s: None,
            occupancy: None,
            offers: 0,
            answered: 0,
            declines: 0,
            no_answers: 0,
            escalations: 0,
            transfers: 0,
            ended: 0,
            resolved: 0,
            resolution_rate: None,
            ratings: 0,
            average_rating: None,
            handle_s_total: 0.0,
            rating_sum: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reaching_back_before_anything_was_seen_starts_when_seeing_started() {
        // The daemon (or this queue) started at 10:30 into the day.
        let started = 10 * MINUTE_MS + 30_000;
        let mut w = QueueWindow::known_from(started);
        w.at(started + 1_000).arrived += 1;
        let q = || QueueNow {
            id: "q",
            sla_ms: 30_000,
            waiting: 0,
            ringing: 0,
            oldest_entered_at: None,
        };
        let now = 20 * MINUTE_MS;
        // 15 minutes back would be 6:00: only 9.5 of them are known.
        let r = w.report(q(), 15 * MINUTE_MS, now).unwrap();
        assert_eq!((r.from, r.to, r.counts.arrived), (started, now, 1));
        // A window inside what is known starts at its first minute, as before.
        let r = w.report(q(), 5 * MINUTE_MS, now).unwrap();
        assert_eq!(r.from, 16 * MINUTE_MS);
    }

    #[test]
    fn a_queue_busy_all_day_and_more_keeps_at_most_one_day_of_minutes() {
        let mut w = QueueWindow::default();
        for minute in 0..3 * 1440u64 {
            w.at(minute * MINUTE_MS + 5).answered += 1;
        }
        assert_eq!(w.minutes.len(), 1440);
        let now = (3 * 1440 - 1) * MINUTE_MS + 30_000;
        assert_eq!(w.sum(RETENTION_MS, now).answered, 1440);
        assert_eq!(w.sum(15 * MINUTE_MS, now).answered, 15);
    }

    #[test]
    fn an_agent_ledger_is_bounded_and_says_from_when_it_knows() {
        let mut l = AgentLedger::new(0);
        for i in 0..(MAX_AGENT_SPANS as u64 + 100) {
            let activity = if i % 2 == 0 {
                Activity::Available
            } else {
                Activity::Busy
            };
            l.enter(Span {
                start: 1000 * (i + 1),
                activity,
                status: AgentStatus::Available,
                reason: None,
            });
            l.mark(1000 * (i + 1), Mark::Offered);
        }
        assert_eq!(l.spans.len(), MAX_AGENT_SPANS);
        let now = 1000 * (MAX_AGENT_SPANS as u64 + 101);
        let r = l.report("a", 0, now).unwrap();
        assert!(r.from > 0, "older spans were dropped, so `from` moves up");
        let covered: f64 = r.activity_s.values().sum();
        assert_eq!(covered, (now - r.from) as f64 / 1000.0);
    }
}
