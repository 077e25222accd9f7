//! Brute-force oracles over the engine's public views, straight from docs/ROUTING.md.
//!
//! Everything here reads views only (`agents()`, `interaction()`, `counts()`, `waiting_in()`) and
//! recomputes what must hold with deliberately naive scans. It must never look at engine
//! internals or share code with the engine: an oracle that reuses the implementation cannot
//! disagree with it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use tierline::config::{Channel, Millis, QueueConfig, RoutingConfig, Strategy};
use tierline::engine::{
    AgentStatus, AgentView, Counts, Engine, InteractionState, InteractionView, Owner, SlotPhase,
    Transition, Why,
};

// =============================================================================================
// What the views show
// =============================================================================================

/// Everything observable at one moment, read through the public views.
#[derive(Debug, Clone)]
pub struct Observed {
    pub now: Millis,
    pub next_seq: u64,
    pub next_deadline: Option<Millis>,
    pub counts: Counts,
    pub agents: Vec<AgentView>,
    /// queue → ids, most urgent first
    pub waiting: BTreeMap<String, Vec<String>>,
    pub interactions: BTreeMap<String, InteractionView>,
}

impl Observed {
    pub fn take(engine: &Engine, cfg: &RoutingConfig, known: &[String]) -> Observed {
        Observed {
            now: engine.now(),
            next_seq: engine.next_seq(),
            next_deadline: engine.next_deadline(),
            counts: engine.counts(),
            agents: engine.agents(),
            waiting: cfg
                .queues
                .iter()
                .map(|q| {
                    (
                        q.id.clone(),
                        engine
                            .waiting_in(&q.id)
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                    )
                })
                .collect(),
            interactions: known
                .iter()
                .filter_map(|id| engine.interaction(id).map(|v| (id.clone(), v)))
                .collect(),
        }
    }

    pub fn fingerprint(&self) -> String {
        json!({
            "now": self.now,
            "next_seq": self.next_seq,
            "next_deadline": self.next_deadline,
            "counts": self.counts,
            "agents": self.agents,
            "waiting": self.waiting,
            "interactions": self.interactions,
        })
        .to_string()
    }

    pub fn agent(&self, id: &str) -> Option<&AgentView> {
        self.agents.iter().find(|a| &*a.id == id)
    }

    pub fn waiting_ids(&self) -> impl Iterator<Item = &String> {
        self.waiting.values().flatten()
    }

    /// (interaction, agent) for every slot in `phase`.
    pub fn slots_in(&self, phase: SlotPhase) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for a in &self.agents {
            for s in &a.slots {
                if s.phase == phase {
                    if let Some(i) = &s.interaction {
                        out.push((i.to_string(), a.id.to_string()));
                    }
                }
            }
        }
        out
    }
}

pub fn slot_channels(a: &AgentView) -> Vec<Channel> {
    a.slots.iter().map(|s| s.channel).collect()
}

// =============================================================================================
// The oracles
// =============================================================================================

pub fn capacity(cfg: &RoutingConfig, a: &AgentView, c: Channel) -> u32 {
    a.capacity
        .get(&c)
        .copied()
        .unwrap_or(cfg.channels[c.index()].capacity)
}

pub fn exclusive(cfg: &RoutingConfig, c: Channel) -> bool {
    cfg.channels[c.index()].exclusive
}

/// docs/ROUTING.md "Eligibility", for an agent holding slots of `slots` channels.
pub fn eligible(
    cfg: &RoutingConfig,
    now: Millis,
    a: &AgentView,
    slots: &[Channel],
    i: &InteractionView,
) -> bool {
    if a.status != AgentStatus::Available || a.backoff_until.is_some_and(|b| now < b) {
        return false;
    }
    let Some(qid) = &i.queue else { return false };
    let Some(q) = cfg.queue(qid) else {
        return false;
    };
    let Some(&tier) = a.tiers.get(qid) else {
        return false;
    };
    let tier_ok = match i.min_tier {
        Some(min) => tier >= min,
        None => i
            .step
            .and_then(|k| q.steps.get(k))
            .is_some_and(|s| s.tiers.contains(&tier)),
    };
    if !tier_ok || !i.skills.iter().all(|s| a.skills.contains(s)) {
        return false;
    }
    let c = i.channel;
    let load = slots.iter().filter(|&&x| x == c).count() as u32;
    if !q.channels.contains(&c) || load >= capacity(cfg, a, c) {
        return false;
    }
    if slots.iter().any(|&x| exclusive(cfg, x)) {
        return false;
    }
    !exclusive(cfg, c) || slots.is_empty()
}

/// Strictly more urgent: higher priority, or equal priority and entered the queue earlier.
pub fn more_urgent(j: &InteractionView, i: &InteractionView) -> bool {
    j.priority > i.priority || (j.priority == i.priority && j.entered_queue_at < i.entered_queue_at)
}

/// The agents the queue's strategy may pick among `eligible` (one, except for `random`).
pub fn strategy_choice(
    q: &QueueConfig,
    channel: Channel,
    eligible: &[&AgentView],
    last_offered: Option<&str>,
) -> BTreeSet<String> {
    let load = |a: &AgentView| a.slots.iter().filter(|s| s.channel == channel).count();
    let Some(min_load) = eligible.iter().map(|a| load(a)).min() else {
        return BTreeSet::new();
    };
    let mut pool: Vec<&AgentView> = eligible
        .iter()
        .copied()
        .filter(|a| load(a) == min_load)
        .collect();
    pool.sort_by(|a, b| a.id.cmp(&b.id));
    let pick: Option<&AgentView> = match q.strategy {
        Strategy::LongestIdle => pool
            .iter()
            .copied()
            .min_by_key(|a| (a.idle_since, a.id.clone())),
        Strategy::FewestInteractions => pool
            .iter()
            .copied()
            .min_by_key(|a| (a.accepted_since_login, a.idle_since, a.id.clone())),
        Strategy::TierOrder => pool.iter().copied().min_by_key(|a| {
            (
                a.tiers.get(q.id.as_str()).copied(),
                a.idle_since,
                a.id.clone(),
            )
        }),
        Strategy::RoundRobin => match last_offered {
            Some(last) => pool
                .iter()
                .copied()
                .find(|a| &*a.id > last)
                .or_else(|| pool.first().copied()),
            None => pool.first().copied(),
        },
        Strategy::Random => return pool.iter().map(|a| a.id.to_string()).collect(),
    };
    pick.into_iter().map(|a| a.id.to_string()).collect()
}

/// Invariants 1, 2 and 4, and "no deadline missed", on one observation.
pub fn check_state(cfg: &RoutingConfig, obs: &Observed, arrivals: u64) -> Result<(), String> {
    let now = obs.now;
    // 1. One owner, capacities, exclusivity.
    let mut holder: BTreeMap<String, (String, SlotPhase)> = BTreeMap::new();
    for a in &obs.agents {
        let mut per: BTreeMap<Channel, u32> = BTreeMap::new();
        for s in &a.slots {
            *per.entry(s.channel).or_default() += 1;
            if let Some(i) = &s.interaction {
                let prev = holder.insert(i.to_string(), (a.id.to_string(), s.phase));
                ensure!(
                    prev.is_none(),
                    "one owner: `{i}` is held by {prev:?} and by agent `{}` ({:?})",
                    a.id,
                    s.phase
                );
            }
            match s.phase {
                SlotPhase::Offered => {
                    ensure!(
                        s.until.is_some_and(|u| u > now) && s.offer.is_some(),
                        "agent `{}` has an offered slot past its expiry at {now}: {s:?}",
                        a.id
                    );
                    ensure!(
                        a.status != AgentStatus::Offline,
                        "offline agent `{}` still has a pending offer {s:?}",
                        a.id
                    );
                }
                SlotPhase::WrapUp => ensure!(
                    s.until.is_some_and(|u| u > now),
                    "agent `{}` has a wrap-up slot past its end at {now}: {s:?}",
                    a.id
                ),
                SlotPhase::Connected => {}
            }
        }
        for (c, n) in &per {
            ensure!(
                *n <= capacity(cfg, a, *c),
                "agent `{}` holds {n} {c} slots, capacity {}",
                a.id,
                capacity(cfg, a, *c)
            );
        }
        for c in Channel::ALL {
            let shown = a.load.get(&c).copied().unwrap_or(0);
            let held = per.get(&c).copied().unwrap_or(0);
            ensure!(
                shown == held,
                "agent `{}` shows load {shown} on {c} but holds {held} slots",
                a.id
            );
        }
        if a.slots.iter().any(|s| exclusive(cfg, s.channel)) {
            ensure!(
                a.slots.len() == 1,
                "exclusive rule: agent `{}` holds an exclusive slot and others: {:?}",
                a.id,
                a.slots
            );
        }
    }
    let mut in_lists: BTreeMap<&str, &str> = BTreeMap::new();
    for (q, ids) in &obs.waiting {
        for id in ids {
            let prev = in_lists.insert(id, q);
            ensure!(prev.is_none(), "`{id}` waits in `{q}` and in {prev:?}");
        }
        for pair in ids.windows(2) {
            let (a, b) = (&obs.interactions[&pair[0]], &obs.interactions[&pair[1]]);
            ensure!(
                !more_urgent(b, a),
                "waiting order of `{q}`: `{}` (p{} at {}) listed after `{}` (p{} at {})",
                b.id,
                b.priority,
                b.entered_queue_at,
                a.id,
                a.priority,
                a.entered_queue_at
            );
        }
    }
    let mut tally = Counts::default();
    for (id, v) in &obs.interactions {
        let held = holder.get(id);
        match v.state {
            InteractionState::Waiting => {
                tally.waiting += 1;
                let q = v.queue.as_deref().unwrap_or("?");
                ensure!(
                    v.owner == Owner::Queue(q.into()) && in_lists.get(id.as_str()) == Some(&q),
                    "waiting `{id}` (queue {q}) has owner {:?}, waiting list {:?}",
                    v.owner,
                    in_lists.get(id.as_str())
                );
                ensure!(held.is_none(), "waiting `{id}` is held by {held:?}");
                let qc = cfg
                    .queue(q)
                    .ok_or(format!("`{id}` waits in unknown `{q}`"))?;
                ensure!(
                    qc.channels.contains(&v.channel),
                    "`{id}` ({}) waits in `{q}`, which does not serve it",
                    v.channel
                );
                ensure!(
                    v.min_tier.is_some() || v.step.is_some_and(|k| k < qc.steps.len()),
                    "waiting `{id}` has no valid ladder step: {:?}",
                    v.step
                );
                // `skip_if_no_agents`: nothing waits on a step (not the last) whose tiers have
                // nobody logged in for the queue, however that came about.
                if let (None, Some(k)) = (v.min_tier, v.step) {
                    let step = &qc.steps[k];
                    if step.skip_if_no_agents && k + 1 < qc.steps.len() {
                        let staffed = obs.agents.iter().any(|a| {
                            a.status != AgentStatus::Offline
                                && a.tiers.get(q).is_some_and(|t| step.tiers.contains(t))
                        });
                        ensure!(
                            staffed,
                            "waiting `{id}` sits on step {k} of `{q}` (skip_if_no_agents) with \
                             none of its tiers {:?} logged in",
                            step.tiers
                        );
                    }
                }
            }
            InteractionState::Offered | InteractionState::Connected | InteractionState::WrapUp => {
                let phase = match v.state {
                    InteractionState::Offered => {
                        tally.offered += 1;
                        SlotPhase::Offered
                    }
                    InteractionState::Connected => {
                        tally.connected += 1;
                        SlotPhase::Connected
                    }
                    _ => {
                        tally.wrap_up += 1;
                        SlotPhase::WrapUp
                    }
                };
                let Owner::Agent(owner) = &v.owner else {
                    return Err(format!(
                        "`{id}` is {:?} but owned by {:?}",
                        v.state, v.owner
                    ));
                };
                ensure!(
                    held == Some(&(owner.to_string(), phase)),
                    "`{id}` is {:?} owned by `{owner}`, but the slots say {held:?}",
                    v.state
                );
                ensure!(
                    !in_lists.contains_key(id.as_str()),
                    "{:?} `{id}` is also waiting",
                    v.state
                );
            }
            s => {
                match s {
                    InteractionState::Done => tally.done += 1,
                    InteractionState::Abandoned => tally.abandoned += 1,
                    InteractionState::Overflowed => tally.overflowed += 1,
                    _ => tally.rejected += 1,
                }
                ensure!(
                    v.owner == Owner::None && held.is_none() && !in_lists.contains_key(id.as_str()),
                    "finished `{id}` ({s:?}) still owned: {:?}, slot {held:?}",
                    v.owner
                );
            }
        }
    }
    ensure!(
        in_lists.keys().all(|id| obs.interactions.contains_key(*id)),
        "a waiting list names an interaction nobody arrived with: {in_lists:?}"
    );
    // 4. Nothing lost.
    let c = obs.counts;
    ensure!(
        c.arrived == c.sum_of_states(),
        "counts: arrived {} ≠ sum of states {} ({c:?})",
        c.arrived,
        c.sum_of_states()
    );
    ensure!(
        c.arrived == arrivals,
        "counts: arrived {} but we made {arrivals} arrivals",
        c.arrived
    );
    tally.arrived = arrivals;
    ensure!(
        c == tally,
        "counts {c:?} ≠ states of the interactions {tally:?}"
    );
    // 2. Work conservation.
    for id in obs.waiting_ids() {
        let i = &obs.interactions[id];
        for a in &obs.agents {
            ensure!(
                !eligible(cfg, now, a, &slot_channels(a), i),
                "work conservation at {now}: agent `{}` is free and eligible for waiting `{id}` \
                 (queue {:?}, step {:?}, min_tier {:?}, {}); agent {a:?}",
                a.id,
                i.queue,
                i.step,
                i.min_tier,
                i.channel
            );
        }
    }
    // No deadline missed: ladder steps and max wait.
    for (id, v) in &obs.interactions {
        if !matches!(
            v.state,
            InteractionState::Waiting | InteractionState::Offered
        ) {
            continue;
        }
        let Some(q) = v.queue.as_deref().and_then(|q| cfg.queue(q)) else {
            continue;
        };
        if v.min_tier.is_none() {
            let due = q
                .steps
                .iter()
                .rposition(|s| v.entered_queue_at + s.after_ms <= now)
                .unwrap_or(0);
            ensure!(
                v.step.is_some_and(|k| k >= due),
                "`{id}` entered `{}` at {} is at step {:?} at {now}, but step {due} was due",
                q.id,
                v.entered_queue_at,
                v.step
            );
        }
        if v.state == InteractionState::Waiting && q.overflow.is_some() {
            if let Some(w) = q.max_wait_ms {
                ensure!(
                    v.entered_queue_at + w > now,
                    "`{id}` still waits in `{}` at {now}, past its max wait at {}",
                    q.id,
                    v.entered_queue_at + w
                );
            }
        }
    }
    // The engine must not sleep past a deadline it has.
    let mut certain: Vec<Millis> = Vec::new();
    for a in &obs.agents {
        for s in &a.slots {
            if matches!(s.phase, SlotPhase::Offered | SlotPhase::WrapUp) {
                certain.extend(s.until);
            }
        }
    }
    for v in obs.interactions.values() {
        let Some(q) = v.queue.as_deref().and_then(|q| cfg.queue(q)) else {
            continue;
        };
        if matches!(
            v.state,
            InteractionState::Waiting | InteractionState::Offered
        ) && v.min_tier.is_none()
        {
            if let Some(next) = v.step.and_then(|k| q.steps.get(k + 1)) {
                certain.push(v.entered_queue_at + next.after_ms);
            }
        }
        if v.state == InteractionState::Waiting && q.overflow.is_some() {
            certain.extend(q.max_wait_ms.map(|w| v.entered_queue_at + w));
        }
    }
    if let Some(&first) = certain.iter().min() {
        ensure!(
            obs.next_deadline.is_some_and(|d| d <= first),
            "next_deadline() is {:?} but a timer is due at {first}",
            obs.next_deadline
        );
    }
    Ok(())
}

/// History is append-only: what was readable before is still readable, unchanged.
pub fn check_history_kept(pre: &Observed, post: &Observed) -> Result<(), String> {
    for (id, before) in &pre.interactions {
        let after = post
            .interactions
            .get(id)
            .ok_or(format!("`{id}` disappeared from the read API"))?;
        ensure!(
            after.history.len() >= before.history.len()
                && after.history[..before.history.len()] == before.history[..],
            "history of `{id}` was rewritten: {:?} → {:?}",
            before.history,
            after.history
        );
        ensure!(
            after.arrived_at == before.arrived_at,
            "`{id}` arrival time changed"
        );
    }
    Ok(())
}

/// A finished history: a chain of transitions whose ladder steps and overflows happened exactly
/// at their deadlines.
pub fn check_history(cfg: &RoutingConfig, v: &InteractionView) -> Result<(), String> {
    let h = &v.history;
    ensure!(!h.is_empty(), "`{}` has no history", v.id);
    ensure!(
        h[0].from.is_none(),
        "`{}` history starts with {:?}",
        v.id,
        h[0]
    );
    let mut state = h[0].to;
    // (queue, entered at, ladder applies, step, step entered at)
    let mut place: Option<(String, Millis, bool, usize, Millis)> = None;
    let mut prev_at = h[0].at;
    for (n, t) in h.iter().enumerate() {
        ensure!(
            t.at >= prev_at,
            "`{}` history goes back in time at {n}: {h:?}",
            v.id
        );
        prev_at = t.at;
        if n > 0 {
            ensure!(
                t.from == Some(state),
                "`{}` history entry {n} starts from {:?} but the state was {state:?}: {t:?}",
                v.id,
                t.from
            );
            if matches!(t.why, Why::StepReached { .. }) {
                ensure!(
                    t.to == state,
                    "`{}` step entry {n} changes state: {t:?} (state {state:?})",
                    v.id
                );
            }
        }
        state = t.to;
        match &t.why {
            Why::Arrived { queue, .. } if t.to == InteractionState::Waiting => {
                place = Some((queue.to_string(), t.at, true, 0, t.at))
            }
            Why::Overflow { queue: Some(q), .. } | Why::Transferred { queue: q, .. } => {
                if let (Why::Overflow { .. }, Some((from_q, entered, ..))) = (&t.why, &place) {
                    check_overflow_time(cfg, v, h, n, from_q, *entered)?;
                }
                place = Some((q.to_string(), t.at, true, 0, t.at))
            }
            Why::Overflow { .. } => {
                if let Some((from_q, entered, ..)) = &place {
                    check_overflow_time(cfg, v, h, n, from_q, *entered)?;
                }
            }
            Why::EscalatedByAgent { .. } => {
                if let Some(p) = &mut place {
                    p.1 = t.at;
                    p.2 = false;
                }
            }
            Why::StepReached { queue, step } => {
                let Some((q, entered, ladder, prev, prev_at)) = &mut place else {
                    return Err(format!("`{}` reached a step outside a queue", v.id));
                };
                ensure!(
                    *ladder && q == &**queue && *step == *prev + 1,
                    "`{}` reached step {step} of `{queue}` at {}, but it is at step {prev} of `{q}` \
                     (ladder applies: {ladder})",
                    v.id,
                    t.at
                );
                let qc = cfg.queue(q).ok_or("unknown queue")?;
                let deadline = *entered + qc.steps[*step].after_ms;
                // Skipped: on entering the previous step with nobody there (same instant), or
                // when its last agent left later (before the deadline); which one is checked by
                // the waiting-state invariant, which sees who is logged in at every step.
                let skipped = qc.steps[*step - 1].skip_if_no_agents && t.at <= deadline;
                ensure!(
                    t.at == deadline || skipped,
                    "`{}` reached step {step} of `{q}` at {}, deadline {deadline} \
                     (entered {entered}, step {prev} at {prev_at})",
                    v.id,
                    t.at
                );
                *prev = *step;
                *prev_at = t.at;
            }
            _ => {}
        }
    }
    ensure!(
        state == v.state,
        "`{}` is {:?} but its history ends in {state:?}",
        v.id,
        v.state
    );
    Ok(())
}

pub fn check_overflow_time(
    cfg: &RoutingConfig,
    v: &InteractionView,
    h: &[Transition],
    n: usize,
    queue: &str,
    entered: Millis,
) -> Result<(), String> {
    let q = cfg.queue(queue).ok_or("unknown queue")?;
    let deadline = entered + q.max_wait_ms.ok_or("overflow without max_wait")?;
    let at = h[n].at;
    ensure!(
        at >= deadline,
        "`{}` overflowed from `{queue}` at {at}, before its max wait at {deadline}",
        v.id
    );
    if at > deadline {
        // Offered at the deadline: it must overflow the moment it came back.
        let back = &h[n - 1];
        ensure!(
            back.at == at
                && back.from == Some(InteractionState::Offered)
                && back.to == InteractionState::Waiting,
            "`{}` overflowed at {at}, after its deadline {deadline}, without just coming back \
             from an offer: {h:?}",
            v.id
        );
    }
    Ok(())
}
