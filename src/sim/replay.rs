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
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Channel, Millis, RoutingConfig};
use crate::engine::Event;
use crate::sim::dist::Dist;
use crate::sim::playback::{Playback, Played, RecordedAgent, RecordedOutcome};
use crate::sim::recording::{self, Begin, RecordingError};
use crate::sim::run::{self, RunOptions};
use crate::sim::scenario::{Behaviour, Plan, PlannedAgent};
use crate::sim::traffic::{Arrival, Recorded};
use crate::sim::SimError;

use crate::sim::replay_report::differences;
pub use crate::sim::replay_report::{
    Delta, Differences, PatienceFit, QueueDelta, RecordingSummary, ReplayReport, TrafficSummary,
};

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

/// Replay the journal in `dir` with its own config (old) and with `new` (new).
pub fn replay(
    dir: &Path,
    new: RoutingConfig,
    options: &ReplayOptions,
) -> Result<ReplayReport, ReplayError> {
    let (played, summary) = play_recording(dir, options.seed, options.agents)?;
    let mut notes = summary;
    let fitted = Fitted::from(&played);
    let NewRun {
        plan,
        arrivals,
        added,
        own_behaviour,
        handle_drawn,
        handle_open,
        queue_not_in_new,
        tiers_not_in_new,
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
        handle_open,
        agents: plan.agents.len() as u64,
        agents_with_own_behaviour: own_behaviour,
        added_agents: added,
        refused_in_new_run: outcome.refused_recorded,
        queue_not_in_new,
        tiers_not_in_new,
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
fn play_recording(
    dir: &Path,
    seed: u64,
    agents: bool,
) -> Result<(Played, RecordingSummary), ReplayError> {
    let layout = recording::layout(dir)?;
    let mut notes = Vec::new();
    let candidates = recording::candidates(&layout)?;
    let last = candidates.len().saturating_sub(1);
    for (k, candidate) in candidates.into_iter().enumerate() {
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
        });
        let scan = match scan {
            // Damage among the early records a fresh start needs, but a later start (from a
            // snapshot) reads past: try that one, as recovery would.
            Err(
                e @ (crate::journal::JournalError::Corrupt { .. }
                | crate::journal::JournalError::Gap { .. }),
            ) if k < last => {
                notes.push(format!("not started from record {}: {e}", candidate.from));
                continue;
            }
            other => other?,
        };
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
        let Some(played) = playback.finish(seed, agents) else {
            return Err(RecordingError::Empty(dir.to_path_buf()).into());
        };
        // A snapshot newer than the last record replayed proves records that are not on disk
        // (segments deleted or emptied): that is not "the whole history".
        let reached = candidate.from + played.counts.records;
        if let Some(&(snapshot, _)) = layout.snapshots.iter().max_by_key(|(index, _)| *index) {
            if snapshot >= reached {
                return Err(RecordingError::MissingRecords {
                    dir: dir.to_path_buf(),
                    snapshot,
                    reached,
                }
                .into());
            }
        }
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
    /// Interactions still connected when the recording ends: connected to the end of the run.
    handle_open: u64,
    /// Arrivals that named a queue the new config does not have (routed by its rules instead).
    queue_not_in_new: u64,
    /// Agents whose recorded logins named queues the new config does not have (those tiers left
    /// out).
    tiers_not_in_new: u64,
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
    let mut queue_not_in_new = 0u64;
    let mut tiers_not_in_new = 0u64;
    let mut drawn = 0;
    let mut open = 0;
    let run_end = played.end_ms.saturating_sub(start);
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
            // Answered and still connected when the recording ends: its handle time is only
            // known to exceed what the recording saw. Drawn, it could end early and free an
            // agent the recording kept busy (a replay with the journal's own config then
            // answered calls that overflowed); it stays connected to the end of the run.
            _ if r.answered_at.is_some() => {
                open += 1;
                (run_end + 1, None)
            }
            _ => {
                drawn += 1;
                (
                    fitted.draw_handle(&q, r.channel, &mut handle_rng),
                    fitted.draw_wrap_up(&q, &mut handle_rng),
                )
            }
        };
        // A queue the new config removed: the new config's rules (or default queue) route it, as
        // they would an arrival that names no queue.
        let queue = r.queue.clone().filter(|q| new.queue(q).is_some());
        queue_not_in_new += u64::from(queue.is_none() && r.queue.is_some());
        arrivals.push(Arrival {
            at: r.at - start,
            channel: r.channel,
            queue,
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
        let mut dropped_tiers = false;
        let recorded = a
            .timeline
            .iter()
            .map(|(at, e)| {
                let mut e = match (e, in_new_roster, &a.resolved_login) {
                    // The new roster no longer knows the agent: log in with what was in force.
                    (Event::AgentLogin { .. }, None, Some(resolved)) => resolved.clone(),
                    _ => e.clone(),
                };
                // Tiers in queues the new config removed would make the engine refuse the
                // whole login (and the agent would take nothing): leave those tiers out.
                if let Event::AgentLogin { tiers: Some(t), .. } = &mut e {
                    let before = t.len();
                    t.retain(|q, _| new.queue(q).is_some());
                    dropped_tiers |= t.len() != before;
                }
                (at - start, e)
            })
            .collect::<Vec<_>>();
        tiers_not_in_new += u64::from(dropped_tiers);
        let effective_tiers = a
            .timeline
            .iter()
            .rev()
            .find_map(|(_, e)| match e {
                Event::AgentLogin { tiers: Some(t), .. } => Some(t.clone()),
                _ => None,
            })
            .or_else(|| in_new_roster.map(|r| r.tiers.clone()))
            .unwrap_or_else(|| a.tiers.clone())
            .into_iter()
            .filter(|(q, _)| new.queue(q).is_some())
            .collect();
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
        warnings: Vec::new(),
        stuck_after: None,
    };
    NewRun {
        plan,
        arrivals,
        added,
        own_behaviour: own,
        handle_drawn: drawn,
        handle_open: open,
        queue_not_in_new,
        tiers_not_in_new,
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
