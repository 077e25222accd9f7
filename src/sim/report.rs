//! The simulator's answer: figures per queue and overall, as JSON (schema in
//! `docs/SIMULATOR.md`) or as a table for people.
//!
//! Built from a finished [`Tally`]; holds only deterministic values (no wall-clock time), so the
//! same inputs give a byte-identical report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::config::Tier;
use crate::sim::tally::{QueueTally, Tally};

/// The whole report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub seed: u64,
    /// Virtual time of second 0 (RFC 3339).
    pub start: String,
    pub duration_s: f64,
    pub warm_up_s: f64,
    /// `duration_s - warm_up_s`: the window the figures cover.
    pub measured_s: f64,
    pub run: RunFigures,
    pub overall: Figures,
    pub queues: Vec<QueueFigures>,
    /// Per agent, only when asked for (`--agents`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<AgentFigures>>,
}

/// About the run itself.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RunFigures {
    /// Interactions sent to the engine (warm-up included).
    pub arrivals: u64,
    /// Simulator events handled (arrivals, accepts, ends, abandons, shifts…).
    pub events: u64,
    /// Engine timer firings (`advance` calls that found work).
    pub timer_firings: u64,
    pub decisions: u64,
    /// Counted interactions still live when the drain time ran out.
    pub unfinished: u64,
    /// Arrivals the engine refused (`channel_not_served`: the rules sent them to a queue that
    /// does not serve their channel), as a daemon answers them 422: a replay of recorded traffic
    /// under a new config can meet them (a scenario's are refused before the run).
    pub refused: u64,
    /// Virtual seconds from start to the last thing that happened.
    pub ended_at_s: f64,
}

/// Outcome figures (domain reference §3), per queue or overall.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figures {
    /// Interactions offered to the queue: arrivals routed to it and not rejected, plus overflows
    /// into it (docs/METRICS.md). Overall: every arrival in the window, rejected ones included.
    pub offered: u64,
    /// Offered and had to wait (no agent free at once).
    pub queued: u64,
    pub answered: u64,
    /// Abandons after the short-abandon threshold.
    pub abandoned: u64,
    pub short_abandoned: u64,
    /// Left by overflow (to another queue or a PBX target).
    pub overflowed: u64,
    pub rejected: u64,
    /// Answered within the queue's `sla_s` / (answered + abandoned).
    pub service_level: Option<f64>,
    /// Average speed of answer: mean wait of answered interactions.
    pub asa_s: Option<f64>,
    /// Waits of answered interactions.
    pub wait_s: WaitFigures,
    /// abandoned / (answered + abandoned), short abandons excluded.
    pub abandon_rate: Option<f64>,
    /// queued / offered: the empirical probability of waiting.
    pub queued_share: Option<f64>,
    /// Answered, by the answering agent's tier in the queue.
    pub answered_by_tier: BTreeMap<Tier, u64>,
    /// Ladder steps reached, by step index (≥ 1).
    pub escalations: BTreeMap<usize, u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WaitFigures {
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueueFigures {
    pub queue: String,
    pub sla_s: f64,
    #[serde(flatten)]
    pub figures: Figures,
    /// handling / (handling + available idle) of the agents of each tier in this queue.
    pub occupancy_by_tier: BTreeMap<Tier, Option<f64>>,
    /// Agents with each tier in this queue.
    pub agents_by_tier: BTreeMap<Tier, u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentFigures {
    pub agent: String,
    pub tiers: BTreeMap<String, Tier>,
    /// Interactions accepted that arrived in the window.
    pub answered: u64,
    pub handling_s: f64,
    pub staffed_s: f64,
    /// handling / staffed.
    pub utilisation: Option<f64>,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn figures(q: &QueueTally, offered: u64) -> Figures {
    let answered = q.answered;
    let some = |v: u64| (answered > 0).then(|| secs(v));
    let mean = (answered > 0).then(|| q.wait_sum_ms as f64 / answered as f64 / 1000.0);
    Figures {
        offered,
        queued: q.queued,
        answered,
        abandoned: q.abandoned,
        short_abandoned: q.short_abandoned,
        overflowed: q.overflowed,
        rejected: q.rejected,
        service_level: ratio(q.answered_in_sla, answered + q.abandoned),
        asa_s: mean,
        wait_s: WaitFigures {
            mean,
            p50: some(q.wait.value_at_quantile(0.5)),
            p90: some(q.wait.value_at_quantile(0.9)),
            max: some(q.wait.max()),
        },
        abandon_rate: ratio(q.abandoned, answered + q.abandoned),
        queued_share: ratio(q.queued, offered),
        answered_by_tier: q.answered_by_tier.clone(),
        escalations: q.steps.clone(),
    }
}

/// What the runner knows about the run, beside the tally.
pub struct RunInfo {
    pub seed: u64,
    pub start_ms: u64,
    pub duration_ms: u64,
    pub warm_up_ms: u64,
    pub run: RunFigures,
}

/// Turn a finished tally into the report.
pub fn build(tally: &Tally, info: RunInfo, with_agents: bool) -> Report {
    let mut overall = QueueTally::new("overall".into(), 0);
    let mut queues = Vec::new();
    for q in &tally.queues {
        overall.absorb(q);
        let mut occupancy: BTreeMap<Tier, (u64, u64)> = BTreeMap::new();
        let mut agents_by_tier: BTreeMap<Tier, u64> = BTreeMap::new();
        for a in &tally.agents {
            if let Some(&t) = a.tiers.get(&*q.id) {
                let o = occupancy.entry(t).or_default();
                o.0 += a.handling_ms;
                o.1 += a.staffed_ms;
                *agents_by_tier.entry(t).or_default() += 1;
            }
        }
        queues.push(QueueFigures {
            queue: q.id.to_string(),
            sla_s: secs(q.sla_ms),
            // Offered, as the daemon's stats count it: a rejected arrival never entered.
            figures: figures(q, q.entered.saturating_sub(q.rejected)),
            occupancy_by_tier: occupancy
                .into_iter()
                .map(|(t, (h, s))| (t, ratio(h, s)))
                .collect(),
            agents_by_tier,
        });
    }
    overall.rejected += tally.unrouted_rejected;
    // Overall counts each interaction once: overflows between queues are internal moves, and
    // an interaction that waited in two queues waited once.
    overall.queued = tally.queued_once;
    let internal_overflows = overall.overflowed_in;
    overall.overflowed -= internal_overflows.min(overall.overflowed);
    // The customer's wait: from the arrival, through every queue an overflow moved it to,
    // against the target of the queue it arrived in (each queue's row has its own wait).
    overall.answered_in_sla = tally.overall.answered_in_sla;
    overall.wait = tally.overall.wait.clone();
    overall.wait_sum_ms = tally.overall.wait_sum_ms;
    let overall_figures = figures(&overall, tally.arrivals);

    let agents = with_agents.then(|| {
        tally
            .agents
            .iter()
            .map(|a| AgentFigures {
                agent: a.id.to_string(),
                tiers: a.tiers.clone(),
                answered: a.answered,
                handling_s: secs(a.handling_ms),
                staffed_s: secs(a.staffed_ms),
                utilisation: a.utilisation(),
            })
            .collect()
    });

    Report {
        seed: info.seed,
        start: crate::engine::decision::rfc3339_ms::format(info.start_ms),
        duration_s: secs(info.duration_ms),
        warm_up_s: secs(info.warm_up_ms),
        measured_s: secs(info.duration_ms - info.warm_up_ms.min(info.duration_ms)),
        run: info.run,
        overall: overall_figures,
        queues,
        agents,
    }
}

impl Report {
    /// Pretty JSON (the documented schema).
    pub fn to_json(&self) -> String {
        pretty_json(self)
    }

    /// A fixed-width table for a terminal.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "seed {} · start {} · {} measured after {} warm-up · {} arrivals · {} events · {} unfinished",
            self.seed,
            self.start,
            hms(self.measured_s),
            hms(self.warm_up_s),
            self.run.arrivals,
            self.run.events,
            self.run.unfinished,
        );
        if self.run.refused > 0 {
            let _ = writeln!(
                out,
                "{} arrivals refused: the routing sends them to a queue that does not serve their \
                 channel, the default queue or the one they name (channel_not_served; a daemon \
                 answers them 422)",
                self.run.refused
            );
        }
        let _ = writeln!(
            out,
            "\n{:<16} {:>8} {:>8} {:>9} {:>6} {:>7} {:>6} {:>13} {:>7} {:>7} {:>7} {:>7}",
            "queue",
            "offered",
            "answered",
            "abandoned",
            "short",
            "overflw",
            "reject",
            "SL",
            "ASA s",
            "mean s",
            "p90 s",
            "aband%"
        );
        let row = |out: &mut String, name: &str, sla: Option<f64>, f: &Figures| {
            let sl = match (f.service_level, sla) {
                (Some(v), Some(t)) => format!("{:.1}%@{}s", v * 100.0, t),
                (Some(v), None) => format!("{:.1}%", v * 100.0),
                (None, _) => "–".into(),
            };
            let _ = writeln!(
                out,
                "{:<16} {:>8} {:>8} {:>9} {:>6} {:>7} {:>6} {:>13} {:>7} {:>7} {:>7} {:>7}",
                truncate(name, 16),
                f.offered,
                f.answered,
                f.abandoned,
                f.short_abandoned,
                f.overflowed,
                f.rejected,
                sl,
                opt(f.asa_s, 1),
                opt(f.wait_s.mean, 1),
                opt(f.wait_s.p90, 1),
                opt(f.abandon_rate.map(|r| r * 100.0), 1),
            );
        };
        for q in &self.queues {
            row(&mut out, &q.queue, Some(q.sla_s), &q.figures);
        }
        row(&mut out, "overall", None, &self.overall);

        let _ = writeln!(
            out,
            "\n{:<16} per tier: answered · occupancy · agents; escalations per step",
            "queue"
        );
        for q in &self.queues {
            let tiers: Vec<String> = q
                .agents_by_tier
                .iter()
                .map(|(t, n)| {
                    let answered = q.figures.answered_by_tier.get(t).copied().unwrap_or(0);
                    let occ = q.occupancy_by_tier.get(t).copied().flatten();
                    format!("L{t}: {answered} · {} · {n}", pct(occ))
                })
                .collect();
            let steps: Vec<String> = q
                .figures
                .escalations
                .iter()
                .map(|(s, n)| format!("step {s}: {n}"))
                .collect();
            let _ = writeln!(
                out,
                "{:<16} {}{}{}",
                truncate(&q.queue, 16),
                if tiers.is_empty() {
                    "no agents".to_string()
                } else {
                    tiers.join(" | ")
                },
                if steps.is_empty() { "" } else { "; " },
                steps.join(", ")
            );
        }

        if let Some(agents) = &self.agents {
            let _ = writeln!(
                out,
                "\n{:<20} {:>8} {:>11} {:>11} {:>6}",
                "agent", "answered", "handling s", "staffed s", "util"
            );
            for a in agents {
                let _ = writeln!(
                    out,
                    "{:<20} {:>8} {:>11.0} {:>11.0} {:>6}",
                    truncate(&a.agent, 20),
                    a.answered,
                    a.handling_s,
                    a.staffed_s,
                    pct(a.utilisation)
                );
            }
        }
        out
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

pub(crate) fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.1}%", v * 100.0))
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn hms(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}h{:02}m{:02}s", s / 3600, s % 3600 / 60, s % 60)
}

/// Pretty JSON of a report, or an error object in its place. Only maps with non-string keys could
/// fail; every key in the reports is a string or an integer.
pub(crate) fn pretty_json(report: &impl Serialize) -> String {
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\":{{\"code\":\"serialize\",\"message\":\"{e}\"}}}}"))
}
