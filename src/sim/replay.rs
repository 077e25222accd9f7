//! `tierline simulate --replay JOURNAL_DIR --config NEW.toml`: what-if on recorded traffic.
//!
//! The "old" column is the journal's own inputs replayed through the daemon's `Core` with the
//! journal's own config (`playback`): exactly what happened. The "new" column re-drives what the
//! recording shows about the customers and the agents through the simulator loop (`run`) with
//! the new config: arrivals at their recorded times with their channel, queue or attributes,
//! priority and skills; each interaction's observed handle time and wrap-up; each agent's recorded
//! logins, logouts and state changes; each recorded answer to an offer when the same agent is
//! offered the same interaction again, and otherwise that agent's observed answering behaviour.
//!
//! Patience is only partly observed: an abandon gives it exactly, an answer only says it exceeded
//! the wait (right-censored). Per queue an exponential patience is fitted by maximum likelihood
//! with censoring (mean = total time at risk / abandons), and a caller who did not abandon gets
//! their wait plus a draw from it (memoryless: the conditional law given patience > wait).
//!
//! Everything random is drawn from ChaCha8 streams of `--seed`, so the same journal, config and
//! seed give a byte-identical report. It never writes to the journal directory.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::config::{Channel, Millis, RoutingConfig};
use crate::engine::Event;
use crate::sim::dist::Dist;
use crate::sim::playback::{Playback, Played, RecordedAgent, RecordedOutcome};
use crate::sim::recording::{self, Begin, RecordingError};
use crate::sim::report::{Figures, Report};
use crate::sim::run::{self, RunOptions};
use crate::sim::scenario::{Behaviour, Plan, PlannedAgent};
use crate::sim::traffic::{Arrival, Recorded};
use crate::sim::SimError;

/// Fewer resolved offers than this: an agent's answering is taken from all agents pooled.
pub const MIN_OFFERS_FOR_OWN_BEHAVIOUR: u64 = 10;

/// RNG streams of the seed (the runner's agent behaviour uses stream 0).
const PATIENCE_STREAM: u64 = 101;
const HANDLE_STREAM: u64 = 102;

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error("the new config's run failed: {0}")]
    Sim(#[from] SimError),
}

/// Options beside the journal and the new config.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    pub seed: u64,
    /// Per-agent figures in both reports.
    pub agents: bool,
    /// Log in, for the whole replay, the agents of the new config's roster that never appear in
    /// the recording (the what-if "more staff").
    pub add_roster_agents: bool,
}

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
    pub agents: u64,
    /// Agents whose answering is their own (≥ `MIN_OFFERS_FOR_OWN_BEHAVIOUR` offers); the others
    /// use all agents' pooled.
    pub agents_with_own_behaviour: u64,
    /// Agents of the new roster logged in for the whole replay (`--add-roster-agents`).
    pub added_agents: Vec<String>,
    /// Recorded presence events the engine refused in the new run.
    pub refused_in_new_run: u64,
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

/// Replay the journal in `dir` with its own config (old) and with `new` (new).
pub fn replay(
    dir: &Path,
    new: RoutingConfig,
    options: &ReplayOptions,
) -> Result<ReplayReport, ReplayError> {
    let (played, summary) = play_recording(dir, options.seed)?;
    let mut notes = summary;
    let fitted = Fitted::from(&played);
    let NewRun {
        plan,
        arrivals,
        added,
        own_behaviour,
        handle_drawn,
    } = build_plan(&played, &fitted, &new, options);
    let outcome = run::run_with(
        new,
        &plan,
        Recorded::new(arrivals),
        RunOptions {
            seed: options.seed,
            agents: options.agents,
            observer: None,
        },
    )?;
    let mut old = played.report.clone();
    if !options.agents {
        old.agents = None;
    }
    let new_report = outcome.report;
    let difference = differences(&old, &new_report);
    let end = played.end_ms;
    let mut t = TrafficSummary {
        interactions: played.interactions.len() as u64,
        answered: 0,
        abandoned: 0,
        overflowed: 0,
        rejected: 0,
        unfinished: 0,
        handle_drawn,
        agents: plan.agents.len() as u64,
        agents_with_own_behaviour: own_behaviour,
        added_agents: added,
        refused_in_new_run: outcome.refused_recorded,
        transfers_not_replayed: played.counts.transfers + played.counts.agent_escalations,
        patience: fitted.patience_report(),
    };
    for r in &played.interactions {
        match r.outcome(end) {
            RecordedOutcome::Answered { .. } => t.answered += 1,
            RecordedOutcome::Abandoned { .. } => t.abandoned += 1,
            RecordedOutcome::Overflowed { .. } => t.overflowed += 1,
            RecordedOutcome::Rejected => t.rejected += 1,
            RecordedOutcome::Unfinished { .. } => t.unfinished += 1,
        }
    }
    notes.refused_inputs = played.counts.refused;
    notes.duplicate_events = played.counts.duplicates;
    notes.reloads = played.counts.reloads;
    notes.in_flight_at_start = played.counts.in_flight_at_start;
    Ok(ReplayReport {
        seed: options.seed,
        recording: notes,
        traffic: t,
        old,
        new: new_report,
        difference,
    })
}

/// Replay the recording from the best usable start (see `recording::candidates`).
fn play_recording(dir: &Path, seed: u64) -> Result<(Played, RecordingSummary), ReplayError> {
    let layout = recording::layout(dir)?;
    let mut notes = Vec::new();
    for candidate in recording::candidates(&layout)? {
        let mut playback = match candidate.begin {
            Begin::Snapshot(core) => Playback::from_core(*core),
            Begin::Fresh(config) => Playback::fresh(*config),
        };
        let check_at = candidate.check.as_ref().map(|(index, _)| *index);
        let mut reload_before_check = None;
        let mut state_at_check = None;
        let scan = recording::scan(dir, candidate.from, |index, input| {
            if check_at.is_some_and(|k| index <= k)
                && matches!(input.input, crate::daemon::core::Input::Reconfigure { .. })
                && reload_before_check.is_none()
            {
                reload_before_check = Some(index);
            }
            playback.input(input);
            if check_at == Some(index) {
                state_at_check = playback.core().map(|c| (c.next_seq(), c.engine().counts()));
            }
        })?;
        if let Some((k, snapshot)) = &candidate.check {
            let expected = (snapshot.next_seq(), snapshot.engine().counts());
            let why = if let Some(i) = reload_before_check {
                Some(format!(
                    "record {i} reloads the config before snapshot {k}, so the config the journal started with is unknown"
                ))
            } else if state_at_check != Some(expected) {
                Some(format!(
                    "the state rebuilt from record 1 does not match snapshot {k}"
                ))
            } else {
                None
            };
            if let Some(why) = why {
                notes.push(format!("not started from a fresh state: {why}"));
                continue;
            }
        }
        let Some(played) = playback.finish(seed) else {
            return Err(RecordingError::Empty(dir.to_path_buf()).into());
        };
        let summary = RecordingSummary {
            dir: dir.to_path_buf(),
            start_from: candidate.describe,
            history_incomplete: candidate.skipped_before,
            first_record: candidate.from,
            records: played.counts.records,
            start: crate::engine::decision::rfc3339_ms::format(played.start_ms),
            end: crate::engine::decision::rfc3339_ms::format(played.end_ms),
            duration_s: (played.end_ms - played.start_ms) as f64 / 1000.0,
            refused_inputs: 0,
            duplicate_events: 0,
            reloads: 0,
            in_flight_at_start: 0,
            torn_tail: scan.torn.map(|t| t.to_string()),
            notes,
        };
        return Ok((played, summary));
    }
    Err(RecordingError::NoStart {
        dir: dir.to_path_buf(),
        why: notes.join("; "),
    }
    .into())
}

/// Distributions fitted to the recording.
struct Fitted {
    /// Per routed queue (`*` pooled): (abandons, time at risk in ms).
    patience: BTreeMap<String, (u64, u128)>,
    /// Observed handle times per (queue, channel), per channel, and all.
    handle_by_queue: HashMap<(String, Channel), Vec<Millis>>,
    handle_by_channel: HashMap<Channel, Vec<Millis>>,
    handle_all: Vec<Millis>,
    /// Observed wrap-up outcomes (early "done" after ms, or the queue's timer) per queue.
    wrap_by_queue: HashMap<String, Vec<Option<Millis>>>,
}

const POOLED: &str = "*";

fn queue_key(q: Option<&str>) -> String {
    q.unwrap_or("(unrouted)").to_string()
}

impl Fitted {
    fn from(played: &Played) -> Fitted {
        let mut f = Fitted {
            patience: BTreeMap::new(),
            handle_by_queue: HashMap::new(),
            handle_by_channel: HashMap::new(),
            handle_all: Vec::new(),
            wrap_by_queue: HashMap::new(),
        };
        for r in &played.interactions {
            let q = queue_key(r.routed_to.as_deref());
            let (abandon, at_risk) = match r.outcome(played.end_ms) {
                RecordedOutcome::Abandoned { wait_ms } => (1, wait_ms),
                RecordedOutcome::Answered { wait_ms } | RecordedOutcome::Overflowed { wait_ms } => {
                    (0, wait_ms)
                }
                RecordedOutcome::Unfinished { waited_ms } => (0, waited_ms),
                RecordedOutcome::Rejected => (0, 0),
            };
            for key in [q.clone(), POOLED.to_string()] {
                let e = f.patience.entry(key).or_default();
                e.0 += abandon;
                e.1 += u128::from(at_risk);
            }
            if let (Some(h), Some(_)) = (r.handle_ms, r.ended_at) {
                f.handle_by_queue
                    .entry((q.clone(), r.channel))
                    .or_default()
                    .push(h);
                f.handle_by_channel.entry(r.channel).or_default().push(h);
                f.handle_all.push(h);
                f.wrap_by_queue.entry(q).or_default().push(r.wrap_up_ms);
            }
        }
        f
    }

    /// Mean patience (ms) for a queue, or pooled when the queue saw no abandon.
    fn patience_mean_ms(&self, queue: &str) -> Option<f64> {
        let fit = |k: &str| {
            self.patience
                .get(k)
                .filter(|(n, _)| *n > 0)
                .map(|(n, t)| *t as f64 / *n as f64)
        };
        fit(queue).or_else(|| fit(POOLED))
    }

    fn patience_report(&self) -> Vec<PatienceFit> {
        self.patience
            .iter()
            .map(|(q, (n, t))| PatienceFit {
                queue: q.clone(),
                abandons: *n,
                at_risk_s: *t as f64 / 1000.0,
                mean_s: (*n > 0).then(|| *t as f64 / *n as f64 / 1000.0),
            })
            .collect()
    }

    fn draw_handle(&self, queue: &str, channel: Channel, rng: &mut ChaCha8Rng) -> Millis {
        let pool = self
            .handle_by_queue
            .get(&(queue.to_string(), channel))
            .or_else(|| self.handle_by_channel.get(&channel))
            .unwrap_or(&self.handle_all);
        if pool.is_empty() {
            0
        } else {
            pool[rng.gen_range(0..pool.len())]
        }
    }

    fn draw_wrap_up(&self, queue: &str, rng: &mut ChaCha8Rng) -> Option<Millis> {
        let pool = self.wrap_by_queue.get(queue)?;
        if pool.is_empty() {
            None
        } else {
            pool[rng.gen_range(0..pool.len())]
        }
    }
}

/// One exponential draw in ms with mean `mean_ms`.
fn exponential(mean_ms: f64, rng: &mut ChaCha8Rng) -> Millis {
    let u: f64 = rng.gen();
    (-(1.0 - u).ln() * mean_ms).round().max(0.0) as Millis
}

/// The new run's plan and arrivals.
struct NewRun {
    plan: Plan,
    arrivals: Vec<Arrival>,
    /// Agents logged in because of `--add-roster-agents`.
    added: Vec<String>,
    /// Agents with their own answering behaviour.
    own_behaviour: u64,
    /// Interactions whose handle time was drawn (never answered in the recording).
    handle_drawn: u64,
}

/// Build the new run from what the recording shows.
fn build_plan(
    played: &Played,
    fitted: &Fitted,
    new: &RoutingConfig,
    options: &ReplayOptions,
) -> NewRun {
    let start = played.start_ms;
    let mut patience_rng = ChaCha8Rng::seed_from_u64(options.seed);
    patience_rng.set_stream(PATIENCE_STREAM);
    let mut handle_rng = ChaCha8Rng::seed_from_u64(options.seed);
    handle_rng.set_stream(HANDLE_STREAM);

    let mut arrivals = Vec::with_capacity(played.interactions.len());
    let mut drawn = 0;
    for r in &played.interactions {
        let q = queue_key(r.routed_to.as_deref());
        let mean = fitted.patience_mean_ms(&q);
        // A draw from the fitted law conditioned on exceeding `waited` (memoryless), at least
        // 1 ms past it so an answer recorded at `waited` still comes first.
        let beyond = |waited: Millis, rng: &mut ChaCha8Rng| {
            mean.map(|m| waited + exponential(m, rng).max(1))
        };
        let patience_ms = match r.outcome(played.end_ms) {
            RecordedOutcome::Abandoned { wait_ms } => Some(wait_ms),
            RecordedOutcome::Answered { wait_ms } | RecordedOutcome::Overflowed { wait_ms } => {
                beyond(wait_ms, &mut patience_rng)
            }
            RecordedOutcome::Unfinished { waited_ms } => beyond(waited_ms, &mut patience_rng),
            RecordedOutcome::Rejected => beyond(0, &mut patience_rng),
        };
        let (handle_ms, wrap_up_ms) = match (r.handle_ms, r.ended_at) {
            (Some(h), Some(_)) => (h, r.wrap_up_ms),
            _ => {
                drawn += 1;
                (
                    fitted.draw_handle(&q, r.channel, &mut handle_rng),
                    fitted.draw_wrap_up(&q, &mut handle_rng),
                )
            }
        };
        arrivals.push(Arrival {
            at: r.at - start,
            channel: r.channel,
            queue: r.queue.clone(),
            attributes: r.attributes.clone(),
            priority: r.priority,
            skills: r.skills.clone(),
            handle_ms,
            wrap_up_ms,
            patience_ms,
            responses: r.responses.clone(),
        });
    }

    // Agents: pooled behaviour first (index 0), then each agent with enough offers its own.
    let pooled = behaviour(played.agents.iter());
    let mut behaviours = vec![pooled];
    let roster: HashMap<&str, _> = new.agents.iter().map(|a| (a.id.as_str(), a)).collect();
    let mut agents = Vec::new();
    let mut own = 0;
    for a in &played.agents {
        if a.timeline.is_empty() {
            continue;
        }
        let behaviour_ix = if a.accepted + a.declined + a.no_answers >= MIN_OFFERS_FOR_OWN_BEHAVIOUR
        {
            own += 1;
            behaviours.push(behaviour(std::iter::once(a)));
            behaviours.len() - 1
        } else {
            0
        };
        let in_new_roster = roster.get(a.id.as_str());
        let recorded = a
            .timeline
            .iter()
            .map(|(at, e)| {
                let e = match (e, in_new_roster, &a.resolved_login) {
                    // The new roster no longer knows the agent: log in with what was in force.
                    (Event::AgentLogin { .. }, None, Some(resolved)) => resolved.clone(),
                    _ => e.clone(),
                };
                (at - start, e)
            })
            .collect::<Vec<_>>();
        let effective_tiers = a
            .timeline
            .iter()
            .rev()
            .find_map(|(_, e)| match e {
                Event::AgentLogin { tiers: Some(t), .. } => Some(t.clone()),
                _ => None,
            })
            .or_else(|| in_new_roster.map(|r| r.tiers.clone()))
            .unwrap_or_else(|| a.tiers.clone());
        agents.push(PlannedAgent {
            id: a.id.clone(),
            address: None,
            tiers: None,
            skills: None,
            capacity: None,
            effective_tiers,
            shifts: Vec::new(),
            breaks: Vec::new(),
            behaviour: behaviour_ix,
            recorded,
        });
    }
    let mut added = Vec::new();
    if options.add_roster_agents {
        let seen: std::collections::HashSet<&str> =
            played.agents.iter().map(|a| a.id.as_str()).collect();
        for r in &new.agents {
            if seen.contains(r.id.as_str()) {
                continue;
            }
            added.push(r.id.clone());
            agents.push(PlannedAgent {
                id: r.id.clone(),
                address: None,
                tiers: None,
                skills: None,
                capacity: None,
                effective_tiers: r.tiers.clone(),
                shifts: Vec::new(),
                breaks: Vec::new(),
                behaviour: 0,
                recorded: vec![(
                    0,
                    Event::AgentLogin {
                        agent: r.id.clone(),
                        address: None,
                        tiers: None,
                        skills: None,
                        capacity: None,
                    },
                )],
            });
        }
    }
    let plan = Plan {
        seed: options.seed,
        start_ms: start,
        duration_ms: played.end_ms + 1 - start,
        warm_up_ms: 0,
        // Both columns end at the last recorded moment: whatever is still waiting then is
        // unfinished in both.
        drain_ms: 0,
        streams: Vec::new(),
        agents,
        behaviours,
    };
    NewRun {
        plan,
        arrivals,
        added,
        own_behaviour: own,
        handle_drawn: drawn,
    }
}

/// Answering behaviour observed over `agents`: answer delays as observed (empirical), the share
/// of offers declined and the share not answered.
fn behaviour<'a>(agents: impl Iterator<Item = &'a RecordedAgent>) -> Behaviour {
    let (mut resolved, mut declined, mut no_answer) = (0u64, 0u64, 0u64);
    let mut delays = Vec::new();
    for a in agents {
        resolved += a.accepted + a.declined + a.no_answers;
        declined += a.declined;
        no_answer += a.no_answers;
        delays.extend_from_slice(&a.answer_delays_ms);
    }
    let share = |n: u64| {
        if resolved == 0 {
            0.0
        } else {
            n as f64 / resolved as f64
        }
    };
    Behaviour {
        answer_delay: if delays.is_empty() {
            Dist::zero()
        } else {
            Dist::Empirical { samples_ms: delays }
        },
        no_answer_prob: share(no_answer),
        decline_prob: share(declined),
    }
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

fn differences(old: &Report, new: &Report) -> Differences {
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
        serde_json::to_string_pretty(self).unwrap_or_else(|e| {
            format!("{{\"error\":{{\"code\":\"serialize\",\"message\":\"{e}\"}}}}")
        })
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
        out
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

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
