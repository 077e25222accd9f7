//! The interaction flows shared by several events and timers: entering a queue, climbing the
//! ladder, returning to the queue after a failed offer, overflowing, finishing, freeing slots.
//!
//! Every state change goes through `transition`, which keeps the per-state counts and the history
//! in step, so "nothing lost" holds by construction.

use std::sync::Arc;

use crate::config::{Channel, Overflow};
use crate::engine::decision::{AgentStatus, DecisionKind, Fact};
use crate::engine::model::{Class, Interaction, QKey, SkillSetId, Slot, WaitKey};
use crate::engine::timers::{AKey, IKey, Timer, TimerKey};
use crate::engine::view::{Counts, InteractionState, Transition, Why};
use crate::engine::{warm, Engine};

fn count_of(counts: &mut Counts, state: InteractionState) -> &mut u64 {
    match state {
        InteractionState::Waiting => &mut counts.waiting,
        InteractionState::Offered => &mut counts.offered,
        InteractionState::Connected => &mut counts.connected,
        InteractionState::WrapUp => &mut counts.wrap_up,
        InteractionState::Done => &mut counts.done,
        InteractionState::Abandoned => &mut counts.abandoned,
        InteractionState::Overflowed => &mut counts.overflowed,
        InteractionState::Rejected => &mut counts.rejected,
    }
}

impl Engine {
    /// Move an interaction to `to`, counting and recording why. `from == to` records an event
    /// that does not change the state (a ladder step).
    pub(super) fn transition(&mut self, ik: IKey, to: InteractionState, why: Why) {
        let now = self.now;
        let from = self.ix(ik).state;
        *count_of(&mut self.counts, from) -= 1;
        *count_of(&mut self.counts, to) += 1;
        if from != to {
            if from == InteractionState::Offered {
                self.unring(ik);
            } else if to == InteractionState::Offered {
                self.ring(ik);
            }
        }
        // A brand-new interaction has no history yet: its first entry comes from nowhere.
        let from = (!self.ix(ik).history.is_empty()).then_some(from);
        self.push_history(ik, from, to, why, now);
        self.ix_mut(ik).state = to;
    }

    pub(super) fn push_history(
        &mut self,
        ik: IKey,
        from: Option<InteractionState>,
        to: InteractionState,
        why: Why,
        at: u64,
    ) {
        let max = self.config.limits.max_history.max(2);
        let i = self.ix_mut(ik);
        if i.history.len() >= max {
            // Keep the arrival entry; drop the oldest after it (more than one when a reload
            // lowered the limit below this history's length).
            let excess = i.history.len() + 1 - max;
            i.history.drain(1..1 + excess);
            i.history_dropped = i
                .history_dropped
                .saturating_add(u32::try_from(excess).unwrap_or(u32::MAX));
        }
        i.history.push(Transition { at, from, to, why });
    }

    /// Whether `skip_if_no_agents` passes over step `k` of queue `q` now: a step before the
    /// last, flagged, with no agent of its tiers logged in (not offline) for the queue.
    pub(super) fn passes_over(&self, q: QKey, k: usize) -> bool {
        let queue = &self.queues[q as usize];
        let steps = &queue.cfg().steps;
        k + 1 < steps.len()
            && steps[k].skip_if_no_agents
            && !steps[k]
                .tiers
                .iter()
                .any(|t| queue.census.logged_in(*t) > 0)
    }

    /// The ladder step a new entry into `q` at `now` starts on, after `skip_if_no_agents`.
    /// Pure: used to decide `queue_full` before anything changes.
    pub(super) fn entry_step(&self, q: QKey) -> u16 {
        let mut k = 0usize;
        while self.passes_over(q, k) {
            k += 1;
        }
        k as u16
    }

    /// Whether a new entry into `q` would be refused as `queue_full`: the queue is at
    /// `max_waiting` and no agent could take the interaction at once.
    ///
    /// `handing_over`: the agent transferring or escalating it when the hand-over frees it at
    /// once (no wrap-up). That agent does not count: free in the same instant, it takes the most
    /// urgent waiting work first, which may not be this interaction (a more urgent exclusive
    /// call leaves it waiting, beyond `max_waiting`). Any other agent that could take it now
    /// still can after the hand-over. (An agent going to wrap-up keeps what it could take.)
    pub(super) fn would_be_full(
        &self,
        q: QKey,
        channel: Channel,
        class: Class,
        skills: SkillSetId,
        handing_over: Option<AKey>,
    ) -> bool {
        let queue = &self.queues[q as usize];
        match queue.cfg().max_waiting {
            Some(max) if queue.waiting_count >= max => {
                !self.could_take_now(q, channel, class, skills, handing_over)
            }
            _ => false,
        }
    }

    /// Enter queue `q` as a new entry (arrival, overflow, transfer, explicit escalation):
    /// `entered_queue_at = now`, a new place at the back of its priority, ladder step 0 (or
    /// `min_tier` for an explicit escalation). Then offer it or announce `queued`.
    ///
    /// `freed`: the agent that handed it over and is free again in this same instant (wrap-up
    /// 0). That agent takes the most urgent waiting work first, this interaction included,
    /// as any freed agent does; only then does this interaction, if still waiting, go to the
    /// agent its queue's strategy picks.
    pub(super) fn enter_queue(
        &mut self,
        ik: IKey,
        q: QKey,
        min_tier: Option<u8>,
        why: Why,
        freed: Option<AKey>,
    ) {
        let now = self.now;
        let order = self.next_order;
        self.next_order += 1;
        let max_wait = {
            let queue = &self.queues[q as usize];
            match (&queue.cfg().overflow, queue.cfg().max_wait_ms) {
                (Some(_), Some(ms)) => Some(ms),
                _ => None,
            }
        };
        let (step_timer, wait_timer) = {
            let i = self.ix_mut(ik);
            i.queue = Some(q);
            i.entered_queue_at = now;
            i.order = order;
            i.overflow_due = false;
            i.min_tier = min_tier;
            i.step = if min_tier.is_some() { None } else { Some(0) };
            // Whatever it earned so far comes along; this queue's ladder adds to it.
            i.base_priority = i.priority;
            (i.step_timer.take(), i.wait_timer.take())
        };
        self.timers.cancel(step_timer);
        self.timers.cancel(wait_timer);
        if let Some(ms) = max_wait {
            let key = self
                .timers
                .schedule(now, now.saturating_add(ms), Timer::MaxWait(ik));
            self.ix_mut(ik).wait_timer = Some(key);
        }
        self.transition(ik, InteractionState::Waiting, why);
        if min_tier.is_none() {
            let boost = self.queues[q as usize].cfg().steps[0].priority_boost;
            let i = self.ix_mut(ik);
            i.priority = i.priority.saturating_add(boost);
            self.settle_steps(ik);
        }
        let placed = match freed {
            None => self.place_or_index(ik),
            Some(ak) => {
                self.index_waiting(ik);
                self.agent_take_work(ak);
                self.ix(ik).state != InteractionState::Waiting || self.try_place(ik)
            }
        };
        // `max_wait_s = 0`: nobody free takes it, so it overflows now, never announced
        // `queued` (the PBX would start the queue's music and be told to move it in the same
        // millisecond). An overflow that cannot happen leaves it waiting, announced.
        if !placed && max_wait == Some(0) && self.ix(ik).state == InteractionState::Waiting {
            let wait_timer = self.ix_mut(ik).wait_timer.take();
            self.timers.cancel(wait_timer);
            if self.overflow(ik) {
                return;
            }
        }
        if !placed {
            let position = self.position_of_newest(ik);
            let interaction = self.ix(ik).id.clone();
            let queue = self.queues[q as usize].name.clone();
            self.emit(DecisionKind::Queued {
                interaction,
                queue,
                position: Some(position),
            });
        }
    }

    /// Apply `skip_if_no_agents` and steps already due, then schedule the next step's timer.
    /// The interaction must not be in the waiting index while this runs.
    pub(super) fn settle_steps(&mut self, ik: IKey) {
        self.settle_steps_with(ik, None, true);
    }

    /// `settle_steps`, for a live change's re-derivation: `keep`, the step timer the
    /// interaction had, stays when its deadline is the one due (a new timer at the same deadline
    /// would fire after every other timer due in that millisecond, reordering calls the change
    /// did not touch); `pass_over_empty` false leaves a step with nobody there to the time the
    /// interaction waits again (an offer ringing on such a step moves on when it comes back, as
    /// it does without a change).
    pub(super) fn settle_steps_with(
        &mut self,
        ik: IKey,
        keep: Option<TimerKey>,
        pass_over_empty: bool,
    ) {
        let now = self.now;
        loop {
            let i = self.ix(ik);
            let (Some(q), Some(k)) = (i.queue, i.step) else {
                self.timers.cancel(keep);
                return;
            };
            let entered = i.entered_queue_at;
            let steps = &self.queues[q as usize].cfg().steps;
            let k = k as usize;
            if k + 1 >= steps.len() {
                self.timers.cancel(keep);
                return;
            }
            let skip = pass_over_empty && self.passes_over(q, k);
            let deadline = entered.saturating_add(steps[k + 1].after_ms);
            if skip || deadline <= now {
                self.enter_step(ik, (k + 1) as u16);
                continue;
            }
            let key = self
                .timers
                .keep_or_schedule(self.now, keep, deadline, Timer::Step(ik));
            let old = self.ix_mut(ik).step_timer.replace(key);
            if old != Some(key) {
                self.timers.cancel(old);
            }
            return;
        }
    }

    /// `skip_if_no_agents` after the fact: the last logged-in agent of a step's tiers just left
    /// one of `queues` (logged out, went offline, logged in again with other tiers). What waits
    /// on such a step moves on at once, as it would have on entering the step with nobody
    /// there, most urgent first, and is offered to an agent the next step makes eligible.
    /// Costs a look at each queue's ladder, plus O(log n) per interaction that moves.
    pub(super) fn skip_steps_left_empty(&mut self, queues: &[QKey]) {
        for &q in queues {
            let steps = self.queues[q as usize].cfg().steps.len();
            let empty: Vec<u16> = (0..steps)
                .filter(|&k| self.passes_over(q, k))
                .map(|k| k as u16)
                .collect();
            if empty.is_empty() {
                continue;
            }
            let mut stuck: Vec<WaitKey> = self.queues[q as usize]
                .waiting
                .iter()
                .filter(|(id, _)| matches!(id.1, Class::Step(k) if empty.contains(&k)))
                .flat_map(|(_, set)| set.iter())
                .collect();
            stuck.sort_unstable();
            for key in stuck {
                let ik = key.ikey();
                // Only its class (and maybe priority) changes, as when a step timer fires.
                self.unindex_class(ik);
                self.leave_empty_step(ik);
                self.offer_or_reindex_class(ik);
            }
        }
    }

    /// `skip_if_no_agents` for one interaction coming back to its queue (not indexed yet): its
    /// step may have lost its last agent while it was offered, which `skip_steps_left_empty`
    /// does not see (it moves only what waits). It moves on as it would have on entering the
    /// step with nobody there; otherwise nothing changes, its step timer included.
    fn skip_step_left_empty(&mut self, ik: IKey) {
        let i = self.ix(ik);
        let (Some(q), Some(k), None) = (i.queue, i.step, i.min_tier) else {
            return;
        };
        if self.passes_over(q, usize::from(k)) {
            self.leave_empty_step(ik);
        }
    }

    /// Move an interaction (out of the waiting index) past the step it is on, which nobody can
    /// take: the timer of the step it skips to is dropped, and `settle_steps` enters the next
    /// steps and sets the timer after them.
    fn leave_empty_step(&mut self, ik: IKey) {
        let pending = self.ix_mut(ik).step_timer.take();
        self.timers.cancel(pending);
        self.settle_steps(ik);
    }

    /// After a waiting interaction's class changed (out of its class set, still counted in
    /// its queue): offer it to an agent the new class makes eligible, else file it under it.
    fn offer_or_reindex_class(&mut self, ik: IKey) {
        match self.find_agent_for(ik) {
            Some(ak) => {
                self.unindex_membership(ik);
                self.make_offer(ik, ak, false, true);
            }
            None => self.index_class(ik),
        }
    }

    /// Record reaching ladder step `k`: boost, history, `escalated` decision, fact.
    pub(super) fn enter_step(&mut self, ik: IKey, k: u16) {
        let Some(q) = self.ix(ik).queue else { return };
        let boost = self.queues[q as usize]
            .cfg()
            .steps
            .get(k as usize)
            .map_or(0, |s| s.priority_boost);
        let queue = self.queues[q as usize].name.clone();
        let now = self.now;
        let state = {
            let i = self.ix_mut(ik);
            i.step = Some(k);
            i.priority = i.priority.saturating_add(boost);
            i.state
        };
        self.push_history(
            ik,
            Some(state),
            state,
            Why::StepReached {
                queue: queue.clone(),
                step: k as usize,
            },
            now,
        );
        let interaction = self.ix(ik).id.clone();
        self.emit(DecisionKind::Escalated {
            interaction,
            queue: queue.clone(),
            step: Some(k as usize),
            by: None,
            min_tier: None,
        });
        self.fact(|| Fact::StepReached {
            queue,
            step: k as usize,
            at: now,
        });
    }

    /// A step timer fired.
    pub(super) fn on_step_timer(&mut self, ik: IKey) {
        let Some(Some(i)) = self.interactions.get(ik as usize) else {
            return;
        };
        let (state, step) = (i.state, i.step);
        self.ix_mut(ik).step_timer = None;
        let Some(k) = step else { return };
        match state {
            InteractionState::Waiting => {
                // Only its class (and maybe priority) changes: it keeps its queue membership.
                self.unindex_class(ik);
                self.enter_step(ik, k + 1);
                self.settle_steps(ik);
                self.offer_or_reindex_class(ik);
            }
            InteractionState::Offered => {
                self.enter_step(ik, k + 1);
                self.settle_steps(ik);
            }
            _ => {}
        }
    }

    /// The max-wait timer fired.
    pub(super) fn on_max_wait(&mut self, ik: IKey) {
        let Some(Some(i)) = self.interactions.get(ik as usize) else {
            return;
        };
        let state = i.state;
        self.ix_mut(ik).wait_timer = None;
        match state {
            // Waiting means no eligible agent is free: if it cannot overflow, it just waits on.
            InteractionState::Waiting => {
                self.overflow(ik);
            }
            InteractionState::Offered => self.ix_mut(ik).overflow_due = true,
            _ => {}
        }
    }

    /// Overflow a waiting (indexed) interaction per its queue's `overflow`. Returns whether it
    /// left the queue; when it did not (no overflow configured), it is still indexed there and
    /// the caller routes it as any waiting interaction.
    pub(super) fn overflow(&mut self, ik: IKey) -> bool {
        let Some(q) = self.ix(ik).queue else {
            return false;
        };
        let Some(target) = self.queues[q as usize].cfg().overflow.clone() else {
            return false;
        };
        let now = self.now;
        self.unindex_waiting(ik);
        let (interaction, channel, wait_ms) = {
            let i = self.ix(ik);
            (
                i.id.clone(),
                i.channel,
                now.saturating_sub(i.entered_queue_at),
            )
        };
        let from_queue = self.queues[q as usize].name.clone();
        match target {
            Overflow::Queue(name) => {
                // Validation refuses such configs; if one slipped through, the interaction stays
                // where agents can still reach it rather than strand in a queue that can't serve it.
                let q2 = match self.queue_key(&name) {
                    Some(q2) if self.queues[q2 as usize].serves[channel.index()] => q2,
                    _ => {
                        self.index_waiting(ik);
                        return false;
                    }
                };
                let to: Arc<str> = self.queues[q2 as usize].name.clone();
                self.emit(DecisionKind::Overflow {
                    interaction: interaction.clone(),
                    queue: Some(to.clone()),
                    target: None,
                });
                self.fact(|| Fact::Overflowed {
                    interaction,
                    queue: from_queue,
                    channel,
                    wait_ms,
                    to_queue: Some(to.clone()),
                    at: now,
                });
                self.enter_queue(
                    ik,
                    q2,
                    None,
                    Why::Overflow {
                        queue: Some(to),
                        target: None,
                    },
                    None,
                );
                true
            }
            Overflow::Target(t) => {
                let target: Arc<str> = Arc::from(t.as_str());
                self.emit(DecisionKind::Overflow {
                    interaction: interaction.clone(),
                    queue: None,
                    target: Some(target.clone()),
                });
                self.fact(|| Fact::Overflowed {
                    interaction,
                    queue: from_queue,
                    channel,
                    wait_ms,
                    to_queue: None,
                    at: now,
                });
                self.finish(
                    ik,
                    InteractionState::Overflowed,
                    Why::Overflow {
                        queue: None,
                        target: Some(target),
                    },
                );
                true
            }
        }
    }

    /// Return an interaction whose offer failed to its original place, then route it again
    /// (`route_returned`).
    pub(super) fn requeue(&mut self, ik: IKey, why: Why, freed: Option<AKey>) {
        self.return_to_queue(ik, why);
        self.route_returned(ik, freed);
    }

    /// An offered interaction is waiting again, in its original place (same entry time and
    /// order). Not indexed yet: the caller routes it.
    pub(super) fn return_to_queue(&mut self, ik: IKey, why: Why) {
        {
            let i = self.ix_mut(ik);
            i.agent = None;
            i.slot = None;
            i.offer = None;
        }
        self.transition(ik, InteractionState::Waiting, why);
    }

    /// Index a returned interaction and route it: overflow it if its max wait passed while it
    /// was offered, else offer it to an eligible free agent.
    ///
    /// `freed`: the agent whose offer failed, when it may take work again at once (the caller
    /// has applied its back-off). It takes the most urgent waiting work first, as any freed
    /// agent does (with no back-off that may be this interaction again); then this interaction,
    /// if still waiting, goes to the agent its queue's strategy picks.
    pub(super) fn route_returned(&mut self, ik: IKey, freed: Option<AKey>) {
        // An overdue overflow comes first: an interaction about to leave the queue does not
        // move up its ladder on the way out (no `escalated` just before the `overflow`).
        // `overflow_due` is only ever set in a queue that has an overflow.
        let leaving = self.ix(ik).overflow_due;
        if !leaving {
            self.skip_step_left_empty(ik);
        }
        self.index_waiting(ik);
        let moved = leaving && self.overflow(ik);
        if let Some(ak) = freed {
            self.agent_take_work(ak);
        }
        if !moved && self.ix(ik).state == InteractionState::Waiting {
            self.try_place(ik);
        }
        // One that overflowed into another queue was announced there (`queued` with its
        // position, or an offer).
        if !moved {
            self.announce_waiting_again(ik);
        }
    }

    /// An interaction whose offer ended waits again, nobody taking it: tell the PBX to resume
    /// queue treatment (`queued`, no position: see `DecisionKind::Queued`).
    pub(super) fn announce_waiting_again(&mut self, ik: IKey) {
        let i = self.ix(ik);
        if i.state != InteractionState::Waiting {
            return;
        }
        let (Some(q), interaction) = (i.queue, i.id.clone()) else {
            return;
        };
        let queue = self.queues[q as usize].name.clone();
        self.emit(DecisionKind::Queued {
            interaction,
            queue,
            position: None,
        });
    }

    /// Finish an interaction: cancel its timers, count it, remember it for reads (bounded).
    pub(super) fn finish(&mut self, ik: IKey, state: InteractionState, why: Why) {
        let (a, b) = {
            let i = self.ix_mut(ik);
            i.agent = None;
            i.slot = None;
            i.offer = None;
            (i.step_timer.take(), i.wait_timer.take())
        };
        self.timers.cancel(a);
        self.timers.cancel(b);
        self.transition(ik, state, why);
        self.live -= 1;
        self.finished.push_back(ik);
        if self.finished.len() > self.config.limits.retain_finished {
            self.warm_eviction();
        }
    }

    /// Evict the oldest finished interactions beyond `limits.retain_finished`: their records,
    /// ids and histories. Runs once at the end of each `handle`, `advance` and `reconfigure`
    /// rather than inside `finish`, so the memory it reads (cold by then: the oldest finished
    /// record) loads while the rest of the step runs. Three stages, each starting the loads
    /// the next one needs:
    /// 1. here, after evicting: the next victim's record (`warm::prefetch_arc`);
    /// 2. `warm_eviction`, when a finish makes an eviction due: that record's id and history;
    /// 3. here, before unfiling: the offer ids its history holds.
    pub(super) fn evict_finished(&mut self) {
        if self.finished.len() <= self.config.limits.retain_finished {
            return;
        }
        while self.finished.len() > self.config.limits.retain_finished {
            let Some(old) = self.finished.pop_front() else {
                break;
            };
            if let Some(Some(i)) = self.interactions.get_mut(old as usize).map(Option::take) {
                for t in &i.history {
                    if let Why::Offered { offer, .. } = &t.why {
                        warm::prefetch_arc_str(offer);
                    }
                }
                self.interaction_ids.remove(&i.id, old);
                self.skills.release_set(i.skills);
                self.free_ikeys.push(old);
            }
        }
        if let Some(next) = self.next_victim() {
            warm::prefetch_arc(next);
        }
    }

    /// Stage 2 of `evict_finished`: start loading the next victim's id and history.
    fn warm_eviction(&self) {
        if let Some(victim) = self.next_victim() {
            warm::prefetch_arc_str(&victim.id);
            warm::prefetch_slice(&victim.history);
        }
    }

    /// The record retention evicts next: the oldest finished interaction.
    fn next_victim(&self) -> Option<&std::sync::Arc<Interaction>> {
        let &k = self.finished.front()?;
        self.interactions.get(k as usize)?.as_ref()
    }

    /// Give an agent a slot (load, exclusivity, census): `remove_slot`'s counterpart. The caller
    /// reindexes.
    pub(super) fn add_slot(&mut self, ak: AKey, slot: Slot) {
        let c = slot.channel.index();
        let exclusive = self.config.channels[c].exclusive;
        let a = &mut self.agents[ak as usize];
        a.slots.push(slot);
        a.load[c] += 1;
        if exclusive {
            a.exclusive_held += 1;
        }
        self.census_touch(ak);
    }

    /// Remove a slot from an agent (load, exclusivity, its timer). The caller reindexes.
    pub(super) fn remove_slot(&mut self, ak: AKey, slot_id: u64) -> Option<Slot> {
        let a = &mut self.agents[ak as usize];
        let pos = a.slots.iter().position(|s| s.id == slot_id)?;
        let slot = a.slots.remove(pos);
        a.load[slot.channel.index()] -= 1;
        if self.config.channels[slot.channel.index()].exclusive {
            a.exclusive_held -= 1;
        }
        self.timers.cancel(slot.timer);
        self.census_touch(ak);
        Some(slot)
    }

    /// Whether ending slot `slot_id` of `ak` frees it at once: the slot's queue has no wrap-up
    /// (what `start_wrap_up` returns).
    pub(super) fn frees_at_once(&self, ak: AKey, slot_id: u64) -> bool {
        self.agents[ak as usize]
            .slots
            .iter()
            .find(|s| s.id == slot_id)
            .is_some_and(|s| self.queues[s.queue as usize].wrap_up_ms == 0)
    }

    /// Start wrap-up on a connected slot (or free it at once when the queue's wrap-up is 0).
    /// Returns whether the slot was freed.
    pub(super) fn start_wrap_up(&mut self, ak: AKey, slot_id: u64, keep_interaction: bool) -> bool {
        let now = self.now;
        let Some(pos) = self.agents[ak as usize]
            .slots
            .iter()
            .position(|s| s.id == slot_id)
        else {
            return false;
        };
        let q = self.agents[ak as usize].slots[pos].queue;
        let wrap = self.queues[q as usize].wrap_up_ms;
        if wrap == 0 {
            if let Some(slot) = self.remove_slot(ak, slot_id) {
                self.slot_released(ak, &slot);
            }
            return true;
        }
        let until = now.saturating_add(wrap);
        let timer = self
            .timers
            .schedule(self.now, until, Timer::WrapUp(ak, slot_id));
        let slot = &mut self.agents[ak as usize].slots[pos];
        slot.phase = crate::engine::view::SlotPhase::WrapUp;
        slot.since = now;
        slot.until = Some(until);
        slot.timer = Some(timer);
        if !keep_interaction {
            slot.interaction = None;
        }
        self.census_touch(ak);
        false
    }

    /// Bookkeeping when a connected/wrap-up slot is released: idle time, handle-time fact.
    pub(super) fn slot_released(&mut self, ak: AKey, slot: &Slot) {
        let now = self.now;
        self.agents[ak as usize].idle_since = now;
        if let Some(connected_at) = slot.connected_at {
            let queue = self.queues[slot.queue as usize].name.clone();
            let agent = self.agents[ak as usize].id.clone();
            let channel = slot.channel;
            self.fact(|| Fact::WrapUpEnded {
                queue,
                channel,
                agent,
                handle_ms: now.saturating_sub(connected_at),
                at: now,
            });
        }
    }

    /// A wrap-up slot ended (timer or `agent.wrapup_done`): the interaction is done, the slot
    /// frees. The caller lets the agent take work.
    pub(super) fn end_wrap_up(&mut self, ak: AKey, slot_id: u64) {
        let Some(slot) = self.remove_slot(ak, slot_id) else {
            return;
        };
        if let Some(ik) = slot.interaction {
            if matches!(
                self.interactions.get(ik as usize),
                Some(Some(i)) if i.state == InteractionState::WrapUp
            ) {
                self.finish(ik, InteractionState::Done, Why::WrapUpEnded);
            }
        }
        self.slot_released(ak, &slot);
    }

    pub(super) fn on_wrap_up_end(&mut self, ak: AKey, slot_id: u64) {
        if let Some(slot) = self.agents[ak as usize]
            .slots
            .iter_mut()
            .find(|s| s.id == slot_id)
        {
            slot.timer = None;
        }
        self.end_wrap_up(ak, slot_id);
        self.agent_take_work(ak);
    }

    pub(super) fn on_backoff_end(&mut self, ak: AKey) {
        let a = &mut self.agents[ak as usize];
        a.backoff_until = None;
        a.backoff_timer = None;
        self.agent_take_work(ak);
    }

    /// Put the agent in back-off for `delay_ms` (extends, never shortens, a running one).
    pub(super) fn back_off(&mut self, ak: AKey, delay_ms: u64) {
        if delay_ms == 0 {
            return;
        }
        let until = self.now.saturating_add(delay_ms);
        let a = &self.agents[ak as usize];
        if a.backoff_until.is_some_and(|u| u >= until) {
            return;
        }
        let old = a.backoff_timer;
        self.timers.cancel(old);
        let key = self.timers.schedule(self.now, until, Timer::Backoff(ak));
        let a = &mut self.agents[ak as usize];
        a.backoff_until = Some(until);
        a.backoff_timer = Some(key);
    }

    /// Change an agent's status, keeping the census (and so the logged-in counts), login resets
    /// and facts in step.
    /// The caller reindexes and handles offers.
    pub(super) fn set_status(&mut self, ak: AKey, to: AgentStatus, reason: Option<Arc<str>>) {
        let now = self.now;
        let a = &mut self.agents[ak as usize];
        let from = a.status;
        if from == to && a.reason == reason {
            return;
        }
        // A change of reason alone (not_ready: lunch → training) is a fact too: the stats bill
        // the time from now on to the new reason.
        a.reason = reason.clone();
        let agent = a.id.clone();
        if from != to {
            if from == AgentStatus::Offline {
                a.logged_in_since = Some(now);
                a.accepted_since_login = 0;
                a.consecutive_missed_offers = 0;
            }
            if to == AgentStatus::Offline {
                a.logged_in_since = None;
            }
            if to == AgentStatus::Available {
                a.idle_since = now;
                // Made available again (by the agent or a supervisor, say after `no_answer`):
                // a fresh count, as mod_callcenter resets `no_answer_count` on Available, so
                // one more miss does not take the agent out again at once.
                a.consecutive_missed_offers = 0;
            }
            a.status = to;
            a.status_since = now;
            self.census_touch(ak);
        }
        self.fact(|| Fact::AgentStatusChanged {
            agent,
            from,
            to,
            reason,
            at: now,
        });
    }
}
