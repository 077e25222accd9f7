//! The answer of `tierline simulate --replay`: the old and new reports side by side, their
//! differences per queue and overall, and how the recording was read and modelled; as JSON (the
//! schema in `docs/SIMULATOR.md`) or as a table for a terminal. Computed by `sim::replay`.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::sim::report::{pct, pretty_json, truncate, Figures, Report};

/// The replay's answer: old and new side by side. Schema in `docs/SIMULATOR.md`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReplayReport {
    pub seed: u64,
    pub recording: RecordingSummary,
    pub traffic: TrafficSummary,
    /// The recording replayed with its own config.
    pub old: Report,
    /// The recorded traffic through the new config.
    pub new: Report,
    /// `new - old`.
    pub difference: Differences,
}

/// What was read and from where the replay started.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecordingSummary {
    pub dir: PathBuf,
    /// How the starting state was chosen.
    pub start_from: String,
    /// Records older than the first replayed one exist or existed but are not replayed.
    pub history_incomplete: bool,
    pub first_record: u64,
    pub records: u64,
    pub start: String,
    pub end: String,
    pub duration_s: f64,
    pub refused_inputs: u64,
    pub duplicate_events: u64,
    pub reloads: u64,
    pub in_flight_at_start: u64,
    /// A torn tail at the end of the newest segment (not replayed).
    pub torn_tail: Option<String>,
    /// Starts that were tried and rejected, and why.
    pub notes: Vec<String>,
}

/// What was extracted from the recording and how it was modelled.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrafficSummary {
    pub interactions: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub overflowed: u64,
    pub rejected: u64,
    pub unfinished: u64,
    /// Never answered in the recording: handle time drawn from the observed ones.
    pub handle_drawn: u64,
    /// Answered and still connected when the recording ends: connected to the end of the run
    /// (their handle time is only known to exceed what the recording saw).
    pub handle_open: u64,
    pub agents: u64,
    /// Agents whose answering is their own (≥ `sim::replay::MIN_OFFERS_FOR_OWN_BEHAVIOUR` offers); the others
    /// use all agents' pooled.
    pub agents_with_own_behaviour: u64,
    /// Agents of the new roster logged in for the whole replay (`--add-roster-agents`).
    pub added_agents: Vec<String>,
    /// Recorded presence events the engine refused in the new run.
    pub refused_in_new_run: u64,
    /// Arrivals that named a queue the new config removed: its rules (or `default_queue`)
    /// routed them instead, else they were rejected `no_route`.
    pub queue_not_in_new: u64,
    /// Agents whose recorded logins had tiers in queues the new config removed: those tiers
    /// were left out, the rest applied.
    pub tiers_not_in_new: u64,
    /// Transfers and agent escalations: in the new run an interaction ends after its recorded
    /// handle time with the first agent.
    pub transfers_not_replayed: u64,
    /// Fitted patience per queue the recording routed to (`*` = all queues pooled).
    pub patience: Vec<PatienceFit>,
}

/// An exponential patience fitted with right-censoring.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PatienceFit {
    pub queue: String,
    pub abandons: u64,
    /// Seconds waited by everyone (abandons: until they left; others: until answered,
    /// overflowed or the recording ended).
    pub at_risk_s: f64,
    /// at_risk_s / abandons; `None` without abandons.
    pub mean_s: Option<f64>,
}

/// Differences `new - old`, per queue and overall.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Differences {
    pub overall: Delta,
    pub queues: Vec<QueueDelta>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueueDelta {
    pub queue: String,
    #[serde(flatten)]
    pub delta: Delta,
}

/// `new - old` of the headline figures (`None` when either side has none).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Delta {
    pub offered: i64,
    pub answered: i64,
    pub abandoned: i64,
    pub overflowed: i64,
    pub rejected: i64,
    pub service_level: Option<f64>,
    pub asa_s: Option<f64>,
    pub wait_p90_s: Option<f64>,
    pub abandon_rate: Option<f64>,
}

fn delta(old: &Figures, new: &Figures) -> Delta {
    let d = |o: Option<f64>, n: Option<f64>| match (o, n) {
        (Some(o), Some(n)) => Some(n - o),
        _ => None,
    };
    let i = |o: u64, n: u64| n as i64 - o as i64;
    Delta {
        offered: i(old.offered, new.offered),
        answered: i(old.answered, new.answered),
        abandoned: i(old.abandoned, new.abandoned),
        overflowed: i(old.overflowed, new.overflowed),
        rejected: i(old.rejected, new.rejected),
        service_level: d(old.service_level, new.service_level),
        asa_s: d(old.asa_s, new.asa_s),
        wait_p90_s: d(old.wait_s.p90, new.wait_s.p90),
        abandon_rate: d(old.abandon_rate, new.abandon_rate),
    }
}

/// Queues of both sides, old order first, then queues only the new config has.
fn queue_names(old: &Report, new: &Report) -> Vec<String> {
    let mut names: Vec<String> = old.queues.iter().map(|q| q.queue.clone()).collect();
    for q in &new.queues {
        if !names.contains(&q.queue) {
            names.push(q.queue.clone());
        }
    }
    names
}

pub(crate) fn differences(old: &Report, new: &Report) -> Differences {
    fn find<'r>(r: &'r Report, q: &str) -> Option<&'r Figures> {
        r.queues.iter().find(|x| x.queue == q).map(|x| &x.figures)
    }
    let queues = queue_names(old, new)
        .into_iter()
        .filter_map(|q| {
            let (o, n) = (find(old, &q)?, find(new, &q)?);
            Some(QueueDelta {
                delta: delta(o, n),
                queue: q,
            })
        })
        .collect();
    Differences {
        overall: delta(&old.overall, &new.overall),
        queues,
    }
}

impl ReplayReport {
    /// Pretty JSON (the documented schema).
    pub fn to_json(&self) -> String {
        pretty_json(self)
    }

    /// Old, new and the difference per queue and overall, for a terminal.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let r = &self.recording;
        let _ = writeln!(
            out,
            "recording {} · {} → {} ({:.0} s) · {} records from {} · start: {}",
            r.dir.display(),
            r.start,
            r.end,
            r.duration_s,
            r.records,
            r.first_record,
            r.start_from
        );
        if r.history_incomplete {
            let _ = writeln!(
                out,
                "warning: the recording's oldest history is not replayed (see start)"
            );
        }
        if r.in_flight_at_start > 0 {
            let _ = writeln!(
                out,
                "warning: {} interactions were already in the system at the start; they are counted in neither column",
                r.in_flight_at_start
            );
        }
        if let Some(t) = &r.torn_tail {
            let _ = writeln!(out, "warning: torn tail not replayed: {t}");
        }
        if r.reloads > 0 {
            // The old column is what happened, every live change included; the new one runs
            // the one config given throughout, so the difference also holds those changes.
            let _ = writeln!(
                out,
                "note: the recording holds {} live config change{}: the old column ran each at \
                 its time, the new column runs the given config throughout",
                r.reloads,
                if r.reloads == 1 { "" } else { "s" }
            );
        }
        for n in &r.notes {
            let _ = writeln!(out, "note: {n}");
        }
        let t = &self.traffic;
        let patience: Vec<String> = t
            .patience
            .iter()
            .map(|p| {
                format!(
                    "{} {} ({} abandons)",
                    p.queue,
                    p.mean_s
                        .map_or_else(|| "none".to_string(), |m| format!("{m:.0} s")),
                    p.abandons
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "traffic: {} interactions ({} answered, {} abandoned, {} overflowed, {} rejected, {} unfinished) · {} agents · seed {}",
            t.interactions, t.answered, t.abandoned, t.overflowed, t.rejected, t.unfinished, t.agents, self.seed
        );
        let _ = writeln!(
            out,
            "patience (exponential, censored fit): {}",
            patience.join(", ")
        );
        if !t.added_agents.is_empty() {
            let _ = writeln!(out, "added agents: {}", t.added_agents.join(", "));
        }
        if t.refused_in_new_run > 0 || t.transfers_not_replayed > 0 {
            let _ = writeln!(
                out,
                "new run: {} recorded presence events refused, {} transfers/escalations not re-driven",
                t.refused_in_new_run, t.transfers_not_replayed
            );
        }
        if t.queue_not_in_new > 0 || t.tiers_not_in_new > 0 {
            let _ = writeln!(
                out,
                "new config lacks recorded queues: {} arrivals routed by its rules instead, {} \
                 agents' tiers there left out",
                t.queue_not_in_new, t.tiers_not_in_new
            );
        }
        let _ = writeln!(
            out,
            "\n{:<16} {:<4} {:>8} {:>8} {:>9} {:>7} {:>6} {:>8} {:>7} {:>7} {:>7}",
            "queue",
            "",
            "offered",
            "answered",
            "abandoned",
            "overflw",
            "reject",
            "SL",
            "ASA s",
            "p90 s",
            "aband%"
        );
        let find = |r: &Report, q: &str| {
            r.queues
                .iter()
                .find(|x| x.queue == q)
                .map(|x| x.figures.clone())
        };
        type Row = (String, Option<Figures>, Option<Figures>);
        let mut rows: Vec<Row> = queue_names(&self.old, &self.new)
            .into_iter()
            .map(|q| (q.clone(), find(&self.old, &q), find(&self.new, &q)))
            .collect();
        rows.push((
            "overall".into(),
            Some(self.old.overall.clone()),
            Some(self.new.overall.clone()),
        ));
        for (name, old, new) in rows {
            let label = |k: &str| {
                if k == "old" {
                    truncate(&name, 16)
                } else {
                    String::new()
                }
            };
            for (k, f) in [("old", &old), ("new", &new)] {
                match f {
                    Some(f) => figures_row(&mut out, &label(k), k, f),
                    None => {
                        let _ = writeln!(out, "{:<16} {:<4} (no such queue)", label(k), k);
                    }
                }
            }
            if let (Some(o), Some(n)) = (&old, &new) {
                let d = delta(o, n);
                let _ = writeln!(
                    out,
                    "{:<16} {:<4} {:>8} {:>8} {:>9} {:>7} {:>6} {:>8} {:>7} {:>7} {:>7}",
                    "",
                    "Δ",
                    signed(d.offered),
                    signed(d.answered),
                    signed(d.abandoned),
                    signed(d.overflowed),
                    signed(d.rejected),
                    d.service_level
                        .map_or("–".into(), |v| format!("{:+.1}pt", v * 100.0)),
                    d.asa_s.map_or("–".into(), |v| format!("{v:+.1}")),
                    d.wait_p90_s.map_or("–".into(), |v| format!("{v:+.1}")),
                    d.abandon_rate
                        .map_or("–".into(), |v| format!("{:+.1}pt", v * 100.0)),
                );
            }
        }
        agents_table(&mut out, &self.old, &self.new);
        out
    }
}

/// With `--agents`: each agent of either run, its answers and utilisation old and new.
fn agents_table(out: &mut String, old: &Report, new: &Report) {
    let (Some(old), Some(new)) = (&old.agents, &new.agents) else {
        return;
    };
    let mut names: Vec<&str> = old.iter().map(|a| a.agent.as_str()).collect();
    for a in new {
        if !names.contains(&a.agent.as_str()) {
            names.push(&a.agent);
        }
    }
    let _ = writeln!(
        out,
        "\n{:<20} {:>8} {:>8} {:>8} {:>8}",
        "agent", "answered", "", "util", ""
    );
    let _ = writeln!(
        out,
        "{:<20} {:>8} {:>8} {:>8} {:>8}",
        "", "old", "new", "old", "new"
    );
    type Agent = crate::sim::report::AgentFigures;
    fn find<'a>(list: &'a [Agent], name: &str) -> Option<&'a Agent> {
        list.iter().find(|a| a.agent == name)
    }
    let answered = |a: Option<&Agent>| a.map_or("–".to_string(), |a| a.answered.to_string());
    let util = |a: Option<&Agent>| a.map_or("–".to_string(), |a| pct(a.utilisation));
    for name in names {
        let (o, n) = (find(old, name), find(new, name));
        let _ = writeln!(
            out,
            "{:<20} {:>8} {:>8} {:>8} {:>8}",
            truncate(name, 20),
            answered(o),
            answered(n),
            util(o),
            util(n)
        );
    }
}

fn figures_row(out: &mut String, name: &str, column: &str, f: &Figures) {
    let sl = f
        .service_level
        .map_or("–".into(), |v| format!("{:.1}%", v * 100.0));
    let _ = writeln!(
        out,
        "{:<16} {:<4} {:>8} {:>8} {:>9} {:>7} {:>6} {:>8} {:>7} {:>7} {:>7}",
        name,
        column,
        f.offered,
        f.answered,
        f.abandoned,
        f.overflowed,
        f.rejected,
        sl,
        f.asa_s.map_or("–".into(), |v| format!("{v:.1}")),
        f.wait_s.p90.map_or("–".into(), |v| format!("{v:.1}")),
        f.abandon_rate
            .map_or("–".into(), |v| format!("{:.1}%", v * 100.0)),
    );
}

fn signed(n: i64) -> String {
    format!("{n:+}")
}
