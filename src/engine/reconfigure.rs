//! Installing a routing config: at start, and live (`reconfigure`).
//!
//! Queue keys are stable for the engine's life: a queue keeps its key across reloads, and a
//! removed queue is retired rather than deleted, so nothing that refers to it dangles. A live
//! reload re-derives every waiting interaction's ladder step and timers from its
//! `entered_queue_at` under the new config, rebuilds the indexes, and re-matches at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{Channel, RoutingConfig};
use crate::engine::decision::{Decision, Fact, RevokeReason};
use crate::engine::error::{ReconfigureError, StateProblem};
use crate::engine::model::{QKey, QueueRt, WaitKey};
use crate::engine::timers::{IKey, Timer};
use crate::engine::view::{InteractionState, Why};
use crate::engine::Engine;

/// How much of the live state a config change re-derives (`install_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Every live interaction: a fresh engine, and the reference the tests compare with.
    Whole,
    /// The queues the change touches; everything when it removes a queue or changes a channel.
    Touched,
}

/// The most retained finished interactions the engine makes room for before they exist
/// (`reserve_retained`); a larger `retain_finished` grows beyond it as before.
const PRESIZED_RETAINED: usize = 1 << 20;

impl Engine {
    /// Apply a new routing config live. Never drops a waiting interaction or logs an agent out;
    /// keeps every interaction's place and waiting time; ladder and timers of waiting interactions
    /// are re-derived from their `entered_queue_at` under the new config; eligibility is
    /// re-evaluated at once (decisions returned). Removing a queue with live interactions is
    /// refused unless the old queue names `drain_to`, and so is a roster that would make the
    /// engine hold more than `limits.max_agents` agents. Roster agents are added, and updated in
    /// the fields (address, tiers, skills, capacity) whose roster entry changed, so a login's
    /// overrides of the others stay; agents missing from the new roster keep their state.
    ///
    /// Only the queues the change touches are re-derived (`install_config`): at 500,000 waiting
    /// a change to one queue no longer stalls routing for the whole population's re-derivation.
    pub fn reconfigure(
        &mut self,
        now: u64,
        config: RoutingConfig,
    ) -> Result<Vec<Decision>, ReconfigureError> {
        self.reconfigure_in(now, config, Scope::Touched)
    }

    /// `reconfigure` re-deriving every live interaction, as it did before changes were applied
    /// to the touched queues only: the reference the property tests compare that against (same
    /// decisions, same state). Not for production use.
    #[doc(hidden)]
    pub fn reconfigure_whole(
        &mut self,
        now: u64,
        config: RoutingConfig,
    ) -> Result<Vec<Decision>, ReconfigureError> {
        self.reconfigure_in(now, config, Scope::Whole)
    }

    fn reconfigure_in(
        &mut self,
        now: u64,
        config: RoutingConfig,
        scope: Scope,
    ) -> Result<Vec<Decision>, ReconfigureError> {
        let now = now.max(self.now);
        if let Some(due) = self.timers.next_deadline() {
            if due <= now {
                return Err(ReconfigureError {
                    problems: vec![StateProblem::new(
                        "",
                        format!(
                            "timers due at {due} must fire first: call advance({now}) before \
                             reconfigure()"
                        ),
                    )],
                });
            }
        }
        let problems = self.reconfigure_problems(&config);
        if !problems.is_empty() {
            return Err(ReconfigureError { problems });
        }
        self.now = now;
        if config.seed != self.config.seed {
            // A new seed takes effect from the change on. The change is journaled with the
            // config it applied, so a replay reseeds at the same point and draws the same.
            self.rng = ChaCha8Rng::seed_from_u64(config.seed);
        }
        self.install_config(config, scope);
        self.end_step();
        Ok(std::mem::take(&mut self.out))
    }

    /// Everything that makes `config` unsafe to apply now (what `reconfigure` would refuse it
    /// for, timers aside); changes nothing. O(queues + roster).
    pub fn reconfigure_problems(&self, config: &RoutingConfig) -> Vec<StateProblem> {
        // Every section has defaults, so a file caught half-written (a comment, a `[routing]`
        // header) is a valid config with no queues: applied, it would remove every queue and
        // reject every arrival. A live change must keep one (a start may have none). Reported
        // alone: what each removed queue would need is beside the point.
        let queues_now = self.queues.iter().filter(|q| !q.retired).count();
        if config.queues.is_empty() && queues_now > 0 {
            return vec![StateProblem::new(
                "queue",
                format!(
                    "the new config has no [[queue]]: it would remove all {queues_now} queue(s) \
                     and every arrival would be rejected `no_route`. A config caught half-written \
                     is likelier than that intent: send or write the whole file. A live change \
                     must keep at least one queue; to stop routing, stop the daemon"
                ),
            )];
        }
        let mut problems = Vec::new();
        // Each queue with its place in the new config, for the field a problem names.
        let new_ids: BTreeMap<&str, (usize, &crate::config::QueueConfig)> = config
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| (q.id.as_str(), (i, q)))
            .collect();
        // What waits or rings in each queue, per channel: its counts and ringing list (a scan
        // of every interaction took ≈ 70 ms at 500,000 waiting, stalling routing as long).
        let mut live_by_queue: BTreeMap<QKey, BTreeMap<Channel, usize>> = BTreeMap::new();
        for (q, queue) in self.queues.iter().enumerate() {
            let mut by_channel: BTreeMap<Channel, usize> = BTreeMap::new();
            for c in Channel::ALL {
                let ringing = queue.ringing.iter().filter(|r| r.2 == c).count();
                let n = queue.waiting_by_channel[c.index()] as usize + ringing;
                if n > 0 {
                    by_channel.insert(c, n);
                }
            }
            if !by_channel.is_empty() {
                live_by_queue.insert(q as QKey, by_channel);
            }
        }
        for (q, by_channel) in &live_by_queue {
            let queue = &self.queues[*q as usize];
            let total: usize = by_channel.values().sum();
            let target = match new_ids.get(queue.cfg().id.as_str()) {
                Some(cfg) => Some(*cfg),
                None => match &queue.cfg().drain_to {
                    None => {
                        problems.push(StateProblem::new(
                            "queue",
                            format!(
                                "queue `{id}` is removed but {total} interaction(s) wait in it and \
                                 it names no drain_to: first apply a config in which queue `{id}` \
                                 has `drain_to = \"<another queue>\"`, then remove it (its \
                                 waiting interactions move there, keeping their place and \
                                 waiting time)",
                                id = queue.cfg().id
                            ),
                        ));
                        None
                    }
                    Some(d) => match new_ids.get(d.as_str()) {
                        Some(cfg) => Some(*cfg),
                        None => {
                            problems.push(StateProblem::new(
                                "queue",
                                self.drain_target_removed(&queue.cfg().id, d, total),
                            ));
                            None
                        }
                    },
                },
            };
            if let Some((index, target)) = target {
                for (channel, n) in by_channel {
                    if !target.channels.contains(channel) {
                        problems.push(StateProblem::new(
                            format!("queue[{index}].channels"),
                            format!(
                                "{n} {channel} interaction(s) wait in queue `{}` but `{}` would \
                                 no longer serve {channel}",
                                queue.cfg().id,
                                target.id
                            ),
                        ));
                    }
                }
            }
        }
        // Agents stay once known (roster or login), so a roster's new agents add to those held.
        let added = config
            .agents
            .iter()
            .filter(|a| !self.agent_ids.contains_key(a.id.as_str()))
            .count();
        let held = self.agents.len();
        if added > 0 && held.saturating_add(added) > config.limits.max_agents {
            problems.push(StateProblem::new(
                "limits.max_agents",
                format!(
                    "the roster adds {added} agent(s) to the {held} the engine holds (agents \
                     stay until a restart with a roster without them), more than \
                     limits.max_agents = {}: raise it",
                    config.limits.max_agents
                ),
            ));
        }
        problems
    }

    /// Why queue `id`, removed with `total` interactions waiting in it, cannot drain into
    /// `target`, which the new config removes too, and what to do instead: one change at a time
    /// works only when `target` drains somewhere itself.
    fn drain_target_removed(&self, id: &str, target: &str, total: usize) -> String {
        let target_drains = self
            .queue_ids
            .get(target)
            .is_some_and(|&k| self.queues[k as usize].cfg().drain_to.is_some());
        let steps = if target_drains {
            format!(
                "remove them one change at a time (first `{id}`, whose interactions move to \
                 `{target}`, then `{target}`), or "
            )
        } else {
            String::new()
        };
        format!(
            "queue `{id}` is removed and drains to `{target}`, which the new config does not \
             have either, but {total} interaction(s) wait in it: {steps}first point `{id}`'s \
             drain_to at a queue the new config keeps"
        )
    }

    /// Room, up front, for the finished interactions the config retains (at most
    /// `PRESIZED_RETAINED`) beside the live ones, in the id index and the eviction order: grown
    /// as interactions finished, the index re-hashed every id through the slab at each doubling
    /// (a cache miss per interaction: 5–15 ms at 7,000–28,000 held, on the engine thread, in a
    /// daemon's first minutes). About 5 bytes per retained interaction (100,000 by default).
    pub(super) fn reserve_retained(&mut self) {
        // A step may finish a few beyond the bound before its end evicts them.
        let retained = self.config.limits.retain_finished.min(PRESIZED_RETAINED) + 64;
        self.interaction_ids
            .reserve_total(&self.interactions, retained + self.live);
        self.finished
            .reserve(retained.saturating_sub(self.finished.len()));
    }

    /// Install `config` (fresh engine or validated live change) and re-route.
    ///
    /// `Scope::Touched` re-derives only the interactions waiting or ringing in the queues the
    /// change touches (`touched` below); the rest keep their indexes, steps and timers, which
    /// the full re-derivation would rebuild as they are. The free-agent sets and the census
    /// are rebuilt for every agent either way (O(agents), ≈ 10 ms at 15,000).
    pub(super) fn install_config(&mut self, config: RoutingConfig, scope: Scope) {
        let now = self.now;
        // Queues: update in place by id, add new ones, retire removed ones.
        let mut seen = vec![false; self.queues.len()];
        // Per queue, how many leading steps of its ladder this change leaves as they were: an
        // interaction that reached one of them keeps it, even one reached early through
        // `skip_if_no_agents` (a change to a later step does not move it back down).
        let mut kept_steps = vec![0; self.queues.len()];
        // Queues whose interactions the change may move, re-rank or make eligible for an agent:
        // new or changed in any setting, or served (before or after) by a roster agent whose
        // tiers, skills or capacity change. An agent's eligibility changes nowhere else: a
        // queue untouched by both has the same waiting order, steps and timers, and no agent
        // newly able to take its work (work conservation held before the change).
        let mut touched = vec![false; self.queues.len()];
        // Every queue ever configured (retired ones too: one coming back takes its old key), by
        // id: one lookup per new queue, not a scan of the table (5,000 queues made that 25
        // million string comparisons per change).
        let by_id: std::collections::HashMap<&str, QKey> = self
            .queues
            .iter()
            .enumerate()
            .map(|(k, q)| (q.cfg().id.as_str(), k as QKey))
            .collect();
        let found: Vec<Option<QKey>> = config
            .queues
            .iter()
            .map(|qc| by_id.get(qc.id.as_str()).copied())
            .collect();
        let fields: Vec<[u64; 4]> = config.agents.iter().map(roster_fields).collect();
        for (ac, f) in config.agents.iter().zip(&fields) {
            let ak = self.agent_ids.get(ac.id.as_str()).copied();
            if let Some(ak) = ak {
                let was = self.agents[ak as usize].roster_fields;
                if was[1..] == f[1..] {
                    continue;
                }
                for &(q, _) in &self.agents[ak as usize].tiers {
                    touched[q as usize] = true;
                }
            }
            for name in ac.tiers.keys() {
                if let Some(&q) = by_id.get(name.as_str()) {
                    touched[q as usize] = true;
                }
            }
        }
        drop(by_id);
        for (qc, existing) in config.queues.iter().zip(found) {
            match existing {
                Some(q) => {
                    let rt = &mut self.queues[q as usize];
                    if rt.retired {
                        touched[q as usize] = true;
                    } else {
                        kept_steps[q as usize] = rt
                            .cfg()
                            .steps
                            .iter()
                            .zip(&qc.steps)
                            .take_while(|(old, new)| old == new)
                            .count();
                        if rt.cfg() != qc {
                            touched[q as usize] = true;
                        }
                    }
                    rt.set_cfg(qc.clone());
                    rt.retired = false;
                    seen[q as usize] = true;
                }
                None => {
                    self.queues.push(QueueRt::new(qc.clone()));
                    seen.push(true);
                    touched.push(true);
                }
            }
        }
        // A removed queue drains its interactions into another, and a channel setting
        // (capacity, `exclusive`) changes every agent's room: both re-derive everything.
        let removes_a_queue = self
            .queues
            .iter()
            .zip(&seen)
            .any(|(rt, &seen)| !rt.retired && !seen);
        let whole =
            scope == Scope::Whole || removes_a_queue || config.channels != self.config.channels;
        // The live interactions re-derived, in slab order (the order the whole re-derivation
        // takes them in, so both decide the same).
        let live: Vec<IKey> = if whole {
            self.interactions
                .iter()
                .enumerate()
                .filter_map(|(k, i)| match i {
                    Some(i) if !i.state.is_final() => Some(k as IKey),
                    _ => None,
                })
                .collect()
        } else {
            // No queue is removed, so none drains: what the change can touch waits or rings.
            let mut live: Vec<IKey> = Vec::new();
            for (rt, _) in self.queues.iter().zip(&touched).filter(|(_, &t)| t) {
                for (_, set) in rt.waiting.iter() {
                    live.extend(set.iter().map(|k| k.ikey()));
                }
                live.extend(rt.ringing.iter().map(|&(_, ik, _)| ik));
            }
            live.sort_unstable();
            live
        };
        self.queue_ids.clear();
        for (q, rt) in self.queues.iter_mut().enumerate() {
            rt.retired = !seen[q];
            if !rt.retired {
                self.queue_ids.insert(rt.name.clone(), q as QKey);
            }
            if whole || touched[q] {
                rt.waiting = Default::default();
                rt.waiting_count = 0;
                rt.waiting_by_channel = [0; 4];
                rt.ringing.clear();
                rt.by_priority = Default::default();
            }
            rt.clear_free();
            rt.census = Default::default();
        }
        // The roster becomes agent state below; the engine keeps no second copy of it as config.
        let mut config = config;
        let roster = std::mem::take(&mut config.agents);
        self.config = config;

        // Agents: roster entries add or update; everyone is re-resolved and re-counted.
        for (ac, &fields) in roster.iter().zip(&fields) {
            let ak = match self.agent_ids.get(ac.id.as_str()) {
                Some(&ak) => ak,
                None => self.add_agent(&ac.id, &ac.address),
            };
            // Only the fields whose roster entry changed: a login's overrides of the others
            // stay (docs/ROUTING.md, "Agents").
            let was = self.agents[ak as usize].roster_fields;
            let changed = |k: usize| was[k] != fields[k];
            if changed(2) {
                self.set_agent_skills(ak, &ac.skills);
            }
            let tiers = changed(1).then(|| self.named_tiers(&ac.tiers));
            let a = &mut self.agents[ak as usize];
            if changed(0) {
                a.address = Arc::from(ac.address.as_str());
            }
            if let Some(tiers) = tiers {
                a.tiers_by_name = tiers;
            }
            if changed(3) {
                a.capacity_overrides = ac.capacity.clone();
            }
            a.roster_fields = fields;
        }
        self.rebuild_agent_indexes();

        // Interactions: drain retired queues, re-derive ladders and timers, re-index.
        // Offers taken back: announced `queued` at the end if nobody takes them meanwhile.
        let mut withdrawn = Vec::new();
        for &ik in &live {
            let Some(q) = self.ix(ik).queue else { continue };
            let mut kept = kept_steps.get(q as usize).copied().unwrap_or(0);
            if self.queues[q as usize].retired {
                kept = 0;
                let target = self.queues[q as usize]
                    .cfg()
                    .drain_to
                    .as_deref()
                    .and_then(|d| self.queue_ids.get(d).copied());
                if let Some(q2) = target {
                    let name = self.queues[q2 as usize].name.clone();
                    let from_queue = self.queues[q as usize].name.clone();
                    self.ix_mut(ik).queue = Some(q2);
                    let state = self.ix(ik).state;
                    // An offer still ringing moves with it: if answered, the call is answered
                    // in `q2`, and wraps up by `q2`'s config, not by that of a removed queue.
                    if let (InteractionState::Offered, Some(ak), Some(slot)) =
                        (state, self.ix(ik).agent, self.ix(ik).slot)
                    {
                        if let Some(s) = self.agents[ak as usize]
                            .slots
                            .iter_mut()
                            .find(|s| s.id == slot)
                        {
                            s.queue = q2;
                        }
                    }
                    let to_queue = name.clone();
                    self.push_history(ik, Some(state), state, Why::Drained { queue: name }, now);
                    let interaction = self.ix(ik).id.clone();
                    let waiting =
                        matches!(state, InteractionState::Waiting | InteractionState::Offered);
                    self.fact(|| Fact::Drained {
                        interaction,
                        from_queue,
                        to_queue,
                        waiting,
                        at: now,
                    });
                }
            }
            let state = self.ix(ik).state;
            if matches!(state, InteractionState::Waiting | InteractionState::Offered) {
                let drained = self.ix(ik).queue != Some(q);
                self.rederive_ladder(ik, kept, drained);
            }
            // An offer ringing an agent who no longer serves the queue it is in (its tier there
            // was removed, or the queue drained into one it has no tier in) is taken back.
            let i = self.ix(ik);
            if let (InteractionState::Offered, Some(ak), Some(slot), Some(q)) =
                (i.state, i.agent, i.slot, i.queue)
            {
                if self.agents[ak as usize].tier_in(q).is_none() {
                    self.withdraw_offer(ak, slot, ik, RevokeReason::Reconfigured);
                    self.reindex_agent(ak);
                    withdrawn.push((ik, q));
                    // Waiting again: a step left with nobody while it rang is passed over now,
                    // as when an offer comes back without a change; not by one due to
                    // overflow, which leaves below (no `escalated` just before its `overflow`).
                    let i = self.ix(ik);
                    if i.state == InteractionState::Waiting && !i.overflow_due {
                        let kept = self.ix_mut(ik).step_timer.take();
                        self.settle_steps_with(ik, kept, true);
                    }
                }
            }
        }
        // What still rings, in the queue it is in now (a drained offer moved with its call).
        for &ik in &live {
            if self.ix(ik).state == InteractionState::Offered {
                self.ring(ik);
            }
        }
        let mut waiting: Vec<WaitKey> = live
            .iter()
            .filter(|&&ik| self.ix(ik).state == InteractionState::Waiting)
            .map(|&ik| self.wait_key(ik))
            .collect();
        for k in &waiting {
            self.index_waiting(k.ikey());
        }
        // Overflows that fell due under the new max_wait, then re-match in urgency order.
        waiting.sort();
        for k in waiting {
            let i = self.ix(k.ikey());
            if i.state != InteractionState::Waiting {
                continue;
            }
            if !(i.overflow_due && self.overflow(k.ikey())) {
                self.try_place(k.ikey());
            }
        }
        // Not one that overflowed into another queue meanwhile: announced there (`queued`
        // with its position, or an offer).
        for (ik, q) in withdrawn {
            if self.ix(ik).queue == Some(q) {
                self.announce_waiting_again(ik);
            }
        }
        self.reserve_retained();
    }

    /// Re-resolve every agent against the queue table and rebuild the free sets and the census
    /// (which must be empty when this is called).
    pub(super) fn rebuild_agent_indexes(&mut self) {
        let exclusive = self.config.channels.map(|c| c.exclusive);
        // Every agent is counted in again below.
        self.centre = [0; 6];
        for ak in 0..self.agents.len() {
            let a = &mut self.agents[ak];
            a.free_entries.clear();
            // A live change may have turned a channel's `exclusive` on or off under slots held
            // now: count them by the rule in force, which is the one `remove_slot` will apply.
            a.exclusive_held = a
                .slots
                .iter()
                .filter(|s| exclusive[s.channel.index()])
                .count() as u32;
            self.resolve_agent(ak as u32);
            self.census_in(ak as u32);
        }
        self.mark_all_changed();
        for ak in 0..self.agents.len() {
            self.reindex_agent(ak as u32);
        }
    }

    /// Recompute ladder step, priority and timers of a waiting/offered interaction from its
    /// `entered_queue_at` under the current config. `kept`: how many leading steps of its
    /// queue's ladder the change left as they were; if the step it reached is one of them, it
    /// stands (a step is reached once: never lower, and never entered, announced or boosted
    /// twice). `drained`: it just moved to another queue (its step was the old queue's: it
    /// starts that queue's ladder afresh, and no step of it was reached before).
    fn rederive_ladder(&mut self, ik: IKey, kept: usize, drained: bool) {
        let now = self.now;
        let (q, old_step, entered, step_timer, wait_timer, escalated, waiting) = {
            let i = self.ix_mut(ik);
            (
                i.queue.unwrap_or(0),
                i.step,
                i.entered_queue_at,
                i.step_timer.take(),
                i.wait_timer.take(),
                i.min_tier.is_some(),
                i.state == InteractionState::Waiting,
            )
        };
        // Timers whose deadline stands are kept (`settle_steps_with`), not made anew.
        let cfg = self.queues[q as usize].cfg().clone();
        {
            let i = self.ix_mut(ik);
            i.priority = i.base_priority;
        }
        if !escalated {
            let old = if drained {
                0
            } else {
                old_step.map_or(0, usize::from)
            };
            let by_time = cfg
                .steps
                .iter()
                .rposition(|s| entered.saturating_add(s.after_ms) <= now)
                .unwrap_or(0);
            let reached = if old < kept {
                by_time.max(old)
            } else {
                by_time
            };
            {
                let i = self.ix_mut(ik);
                i.step = Some(0);
                i.priority = i.priority.saturating_add(cfg.steps[0].priority_boost);
            }
            for k in 1..=reached {
                if k > old {
                    self.enter_step(ik, k as u16);
                } else {
                    let i = self.ix_mut(ik);
                    i.step = Some(k as u16);
                    i.priority = i.priority.saturating_add(cfg.steps[k].priority_boost);
                }
            }
            // Steps up to the old one that it passes over again (`skip_if_no_agents`, nobody
            // there) were reached before too: taken silently, like those reached by time.
            let mut k = reached;
            while k < old && k + 1 < cfg.steps.len() && self.passes_over(q, k) {
                k += 1;
                let i = self.ix_mut(ik);
                i.step = Some(k as u16);
                i.priority = i.priority.saturating_add(cfg.steps[k].priority_boost);
            }
            self.settle_steps_with(ik, step_timer, waiting);
            // Moved back (the change put its step's deadline later, or removed steps): recorded,
            // since the steps after it will be entered and announced again.
            let (state, now_at) = {
                let i = self.ix(ik);
                (i.state, i.step.map_or(0, usize::from))
            };
            if old_step.is_some() && now_at < old {
                let queue = self.queues[q as usize].name.clone();
                self.push_history(
                    ik,
                    Some(state),
                    state,
                    Why::StepMovedBack {
                        queue,
                        step: now_at,
                    },
                    now,
                );
            }
        } else {
            // An escalated interaction has no ladder, so no step timer; cancelled all the same.
            self.timers.cancel(step_timer);
        }
        // Due or not is judged again under the new config: a queue that lost its overflow (or
        // whose max_wait grew) no longer sends away an interaction that was due under the old.
        // (`ix_mut` copies an interaction a snapshot capture still shares: write only a change.)
        if self.ix(ik).overflow_due {
            self.ix_mut(ik).overflow_due = false;
        }
        let deadline = match (&cfg.overflow, cfg.max_wait_ms) {
            (Some(_), Some(ms)) => Some(entered.saturating_add(ms)),
            _ => None,
        };
        match deadline {
            Some(deadline) if deadline > now => {
                let key = self.timers.keep_or_schedule(
                    self.now,
                    wait_timer,
                    deadline,
                    Timer::MaxWait(ik),
                );
                self.ix_mut(ik).wait_timer = Some(key);
            }
            due => {
                self.timers.cancel(wait_timer);
                if due.is_some() {
                    self.ix_mut(ik).overflow_due = true;
                }
            }
        }
    }
}

/// Fingerprints of a roster entry's address, tiers, skills and capacity (never 0, which marks
/// "none applied yet"): FNV-1a over a length-prefixed encoding, so the same entry gives the same
/// fingerprint in every build and a journal replayed by a newer one decides as the live run did.
fn roster_fields(ac: &crate::config::AgentConfig) -> [u64; 4] {
    struct Fnv(u64);
    impl Fnv {
        fn new() -> Fnv {
            Fnv(0xcbf2_9ce4_8422_2325)
        }
        fn bytes(&mut self, bytes: &[u8]) -> &mut Fnv {
            for &b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
                self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            self
        }
        fn done(&self) -> u64 {
            self.0.max(1)
        }
    }
    let mut tiers = Fnv::new();
    for (queue, tier) in &ac.tiers {
        tiers.bytes(queue.as_bytes()).bytes(&[*tier]);
    }
    let mut skills = Fnv::new();
    for skill in &ac.skills {
        skills.bytes(skill.as_bytes());
    }
    let mut capacity = Fnv::new();
    for (channel, n) in &ac.capacity {
        capacity
            .bytes(channel.as_str().as_bytes())
            .bytes(&n.to_le_bytes());
    }
    [
        Fnv::new().bytes(ac.address.as_bytes()).done(),
        tiers.done(),
        skills.done(),
        capacity.done(),
    ]
}

#[cfg(test)]
mod tests {
    use crate::config::{QueueConfig, RoutingConfig};
    use crate::engine::{Engine, Event};

    /// The id index and the eviction order hold `retain_finished` finished interactions without
    /// growing: each doubling re-hashed every id through the records on the engine thread.
    #[test]
    fn retained_finished_interactions_never_grow_the_id_index_or_the_eviction_order() {
        let mut config = RoutingConfig::empty();
        config.queues.push(QueueConfig::with_defaults("q"));
        config.limits.retain_finished = 2_000;
        let mut engine = Engine::new(config, 0);
        let (ids, order) = (
            engine.interaction_ids.capacity(),
            engine.finished.capacity(),
        );
        assert!(ids >= 2_000 && order >= 2_000, "{ids} {order}");
        for n in 0..5_000u64 {
            let id = format!("c{n}");
            let arrival = Event::InteractionArrived {
                interaction: id.clone(),
                channel: crate::config::Channel::Voice,
                queue: Some("q".into()),
                priority: None,
                skills: Vec::new(),
                customer: None,
                attributes: Default::default(),
            };
            engine.handle(n, &arrival).expect("arrives");
            engine
                .handle(n, &Event::InteractionAbandoned { interaction: id })
                .expect("abandons");
        }
        assert_eq!(engine.finished.len(), 2_000);
        assert_eq!(engine.interaction_ids.len(), 2_000);
        assert!(
            engine.interaction_ids.capacity() <= ids && engine.interaction_ids.capacity() > ids / 2,
            "the id index grew: {ids} → {}",
            engine.interaction_ids.capacity()
        );
        assert_eq!(engine.finished.capacity(), order, "the eviction order grew");
        engine.check_consistency().expect("consistent");
    }
}
