//! One handler per event type. Each validates everything first and only then changes state, so
//! a refused event leaves the engine exactly as it was.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Channel, Tier};
use crate::engine::decision::{
    AgentStatus, DecisionKind, Fact, OfferResult, RejectReason, RevokeReason,
};
use crate::engine::error::EngineError;
use crate::engine::event::{DeclineReason, Event, RequestedState};
use crate::engine::model::{Agent, Class, Interaction, QKey};
use crate::engine::timers::{AKey, IKey};
use crate::engine::view::{InteractionState, SlotPhase, Why};
use crate::engine::Engine;

/// Where an arrival goes.
enum Route {
    Queue {
        q: QKey,
        priority: i32,
        rule: Option<usize>,
    },
    NoRoute,
}

impl Engine {
    pub(super) fn apply(&mut self, event: &Event) -> Result<(), EngineError> {
        match event {
            Event::InteractionArrived {
                interaction,
                channel,
                queue,
                priority,
                skills,
                customer,
                attributes,
            } => self.on_arrived(
                interaction,
                *channel,
                queue.as_deref(),
                *priority,
                skills,
                customer.as_deref(),
                attributes,
            ),
            Event::InteractionAbandoned { interaction } => self.on_abandoned(interaction),
            Event::InteractionEnded {
                interaction,
                resolved,
            } => self.on_ended(interaction, *resolved),
            Event::InteractionRated { interaction, score } => self.on_rated(interaction, *score),
            Event::InteractionTransferred { interaction, queue } => {
                self.on_transferred(interaction, queue)
            }
            Event::InteractionEscalated {
                interaction,
                min_tier,
            } => self.on_escalated(interaction, *min_tier),
            Event::OfferAccepted { interaction, agent } => self.on_accepted(interaction, agent),
            Event::OfferDeclined {
                interaction,
                agent,
                reason,
            } => self.on_declined(interaction, agent, *reason),
            Event::AgentLogin {
                agent,
                address,
                tiers,
                skills,
                capacity,
            } => self.on_login(
                agent,
                address.as_deref(),
                tiers.as_ref(),
                skills.as_deref(),
                capacity.as_ref(),
            ),
            Event::AgentState {
                agent,
                state,
                reason,
            } => self.on_agent_state(agent, *state, reason.as_deref()),
            Event::AgentLogout { agent } => {
                self.on_agent_state(agent, RequestedState::Offline, None)
            }
            Event::AgentWrapupDone { agent } => self.on_wrapup_done(agent),
        }
    }

    fn route(
        &self,
        channel: Channel,
        queue: Option<&str>,
        priority: Option<i32>,
        attributes: &BTreeMap<String, String>,
    ) -> Result<Route, EngineError> {
        let chosen = if let Some(name) = queue {
            Some((self.lookup_queue(name)?, None, None))
        } else if let Some((n, rule)) = self.config.rules.iter().enumerate().find(|(_, r)| {
            r.when.iter().all(|(k, v)| {
                if k == "channel" {
                    channel.as_str() == v
                } else {
                    attributes.get(k) == Some(v)
                }
            })
        }) {
            Some((self.lookup_queue(&rule.queue)?, rule.priority, Some(n)))
        } else if let Some(name) = &self.config.default_queue {
            Some((self.lookup_queue(name)?, None, None))
        } else {
            None
        };
        let Some((q, rule_priority, rule)) = chosen else {
            return Ok(Route::NoRoute);
        };
        let queue = &self.queues[q as usize];
        if !queue.serves[channel.index()] {
            return Err(EngineError::ChannelNotServed {
                queue: queue.cfg.id.clone(),
                channel,
            });
        }
        Ok(Route::Queue {
            q,
            priority: priority.or(rule_priority).unwrap_or(0),
            rule,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn on_arrived(
        &mut self,
        id: &str,
        channel: Channel,
        queue: Option<&str>,
        priority: Option<i32>,
        skills: &[String],
        customer: Option<&str>,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        if id.is_empty() {
            return Err(EngineError::InvalidValue {
                field: "interaction",
                message: "an interaction id must not be empty".into(),
            });
        }
        if let Some(&ik) = self.interaction_ids.get(id) {
            return Err(EngineError::DuplicateInteraction {
                interaction: id.to_string(),
                state: self.ix(ik).state.as_str(),
            });
        }
        if self.live >= self.config.limits.max_live_interactions {
            return Err(EngineError::AtCapacity {
                interaction: id.to_string(),
                limit: self.config.limits.max_live_interactions,
            });
        }
        let route = self.route(channel, queue, priority, attributes)?;
        // Validated: from here on nothing fails.
        let now = self.now;
        let skill_ids = self.skill_ids_of(skills);
        let skills = self.skill_set(skill_ids);
        let id: Arc<str> = Arc::from(id);
        let (q, priority) = match route {
            Route::Queue { q, priority, .. } => (Some(q), priority),
            Route::NoRoute => (None, priority.unwrap_or(0)),
        };
        let interaction = Interaction {
            id: id.clone(),
            channel,
            state: InteractionState::Waiting,
            queue: q,
            base_priority: priority,
            priority,
            arrived_at: now,
            entered_queue_at: now,
            order: 0,
            step: None,
            min_tier: None,
            skills,
            customer: customer.map(Arc::from),
            attributes: attributes
                .iter()
                .map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str())))
                .collect(),
            history: Vec::with_capacity(2),
            history_dropped: 0,
            rating: None,
            resolved: None,
            agent: None,
            slot: None,
            offer: None,
            step_timer: None,
            wait_timer: None,
            overflow_due: false,
        };
        let ik = match self.free_ikeys.pop() {
            Some(k) => {
                self.interactions[k as usize] = Some(interaction);
                k
            }
            None => {
                self.interactions.push(Some(interaction));
                (self.interactions.len() - 1) as IKey
            }
        };
        self.interaction_ids.insert(id.clone(), ik);
        self.live += 1;
        let queue_name = q.map(|q| self.queues[q as usize].name.clone());
        let category = attributes.get("category").map(|c| Arc::from(c.as_str()));
        self.fact(|| Fact::Arrived {
            interaction: id.clone(),
            queue: queue_name.clone(),
            channel,
            at: now,
            category,
        });

        let reject = match route {
            Route::NoRoute => Some((RejectReason::NoRoute, None)),
            Route::Queue { q, .. } => {
                let cfg = &self.queues[q as usize].cfg;
                if cfg.schedule.as_ref().is_some_and(|s| !s.is_open(now)) {
                    Some((
                        RejectReason::Closed,
                        cfg.closed_target.as_deref().map(Arc::from),
                    ))
                } else {
                    let class = Class::Step(self.entry_step(q));
                    if self.would_be_full(q, channel, class, skills) {
                        Some((RejectReason::QueueFull, None))
                    } else {
                        None
                    }
                }
            }
        };
        match (reject, route) {
            (Some((reason, target)), _) => {
                // Counted as arrived and, at once, rejected (history: none → rejected).
                self.counts.arrived += 1;
                self.counts.waiting += 1;
                self.emit(DecisionKind::Rejected {
                    interaction: id.clone(),
                    reason,
                    target,
                });
                self.fact(|| Fact::Rejected {
                    interaction: id,
                    queue: queue_name,
                    channel,
                    reason,
                    at: now,
                });
                self.finish(ik, InteractionState::Rejected, Why::Rejected { reason });
            }
            (None, Route::Queue { q, rule, .. }) => {
                let why = Why::Arrived {
                    queue: self.queues[q as usize].name.clone(),
                    rule,
                };
                // Counted as arrived; enter_queue records none → waiting.
                self.counts.arrived += 1;
                self.counts.waiting += 1;
                self.enter_queue(ik, q, None, why);
            }
            (None, Route::NoRoute) => {}
        }
        Ok(())
    }

    fn on_abandoned(&mut self, id: &str) -> Result<(), EngineError> {
        let ik = self.lookup_interaction(id)?;
        let state = self.ix(ik).state;
        if !matches!(state, InteractionState::Waiting | InteractionState::Offered) {
            return Err(EngineError::InvalidTransition {
                interaction: id.to_string(),
                event: "interaction.abandoned",
                state: state.as_str(),
                expected: "waiting or offered",
            });
        }
        let now = self.now;
        let (state, q, channel, entered, agent, slot, offer) = {
            let i = self.ix(ik);
            (
                i.state,
                i.queue,
                i.channel,
                i.entered_queue_at,
                i.agent,
                i.slot,
                i.offer.clone(),
            )
        };
        let q = q.unwrap_or(0);
        let wait_ms = now.saturating_sub(entered);
        let short = wait_ms < self.queues[q as usize].cfg.short_abandon_ms;
        let queue = self.queues[q as usize].name.clone();
        let interaction = self.ix(ik).id.clone();
        match state {
            InteractionState::Waiting => {
                self.unindex_waiting(ik);
            }
            InteractionState::Offered => {
                let (Some(ak), Some(slot), Some(offer)) = (agent, slot, offer) else {
                    return Ok(());
                };
                let agent = self.agents[ak as usize].id.clone();
                self.emit(DecisionKind::OfferRevoked {
                    interaction: interaction.clone(),
                    agent: agent.clone(),
                    offer,
                    reason: RevokeReason::Abandoned,
                });
                self.fact(|| Fact::OfferEnded {
                    queue: queue.clone(),
                    agent,
                    result: OfferResult::Revoked,
                    at: now,
                });
                self.remove_slot(ak, slot);
                self.fact(|| Fact::Abandoned {
                    interaction: interaction.clone(),
                    queue: queue.clone(),
                    channel,
                    wait_ms,
                    short,
                    at: now,
                });
                self.finish(ik, InteractionState::Abandoned, Why::Abandoned);
                self.reindex_agent(ak);
                self.agent_take_work(ak);
                return Ok(());
            }
            _ => return Ok(()),
        }
        self.fact(|| Fact::Abandoned {
            interaction,
            queue,
            channel,
            wait_ms,
            short,
            at: now,
        });
        self.finish(ik, InteractionState::Abandoned, Why::Abandoned);
        Ok(())
    }

    /// The agent and slot of a connected interaction, or the error for `event`.
    fn connected(&self, id: &str, event: &'static str) -> Result<(IKey, AKey, u64), EngineError> {
        let ik = self.lookup_interaction(id)?;
        let i = self.ix(ik);
        match (i.state, i.agent, i.slot) {
            (InteractionState::Connected, Some(ak), Some(slot)) => Ok((ik, ak, slot)),
            (state, _, _) => Err(EngineError::InvalidTransition {
                interaction: id.to_string(),
                event,
                state: state.as_str(),
                expected: "connected",
            }),
        }
    }

    fn on_ended(&mut self, id: &str, resolved: Option<bool>) -> Result<(), EngineError> {
        let (ik, ak, slot_id) = self.connected(id, "interaction.ended")?;
        let now = self.now;
        let connected_at = self.agents[ak as usize]
            .slots
            .iter()
            .find(|s| s.id == slot_id)
            .and_then(|s| s.connected_at)
            .unwrap_or(now);
        self.ix_mut(ik).resolved = resolved;
        let (interaction, channel, q) = {
            let i = self.ix(ik);
            (i.id.clone(), i.channel, i.queue.unwrap_or(0))
        };
        let queue = self.queues[q as usize].name.clone();
        let agent = self.agents[ak as usize].id.clone();
        self.fact(|| Fact::Ended {
            interaction,
            queue,
            channel,
            agent,
            resolved,
            connected_ms: now.saturating_sub(connected_at),
            at: now,
        });
        self.transition(ik, InteractionState::WrapUp, Why::Ended { resolved });
        if self.start_wrap_up(ak, slot_id, true) {
            self.finish(ik, InteractionState::Done, Why::WrapUpEnded);
            self.reindex_agent(ak);
            self.agent_take_work(ak);
        }
        Ok(())
    }

    fn on_rated(&mut self, id: &str, score: u8) -> Result<(), EngineError> {
        let ik = self.lookup_interaction(id)?;
        if !(1..=5).contains(&score) {
            return Err(EngineError::InvalidValue {
                field: "score",
                message: format!("score must be 1–5, got {score} (interaction `{id}`)"),
            });
        }
        let i = self.ix(ik);
        let was_connected = matches!(
            i.state,
            InteractionState::Connected | InteractionState::WrapUp | InteractionState::Done
        ) || i
            .history
            .iter()
            .any(|t| t.to == InteractionState::Connected);
        if !was_connected {
            return Err(EngineError::InvalidTransition {
                interaction: id.to_string(),
                event: "interaction.rated",
                state: i.state.as_str(),
                expected: "connected at some point",
            });
        }
        let now = self.now;
        let queue = self.queues[i.queue.unwrap_or(0) as usize].name.clone();
        let agent = i
            .agent
            .map(|a| self.agents[a as usize].id.clone())
            .or_else(|| {
                i.history.iter().rev().find_map(|t| match &t.why {
                    Why::Accepted { agent } => Some(agent.clone()),
                    _ => None,
                })
            });
        let interaction = i.id.clone();
        self.ix_mut(ik).rating = Some(score);
        self.fact(|| Fact::Rated {
            interaction,
            queue,
            agent,
            score,
            at: now,
        });
        Ok(())
    }

    fn on_transferred(&mut self, id: &str, queue: &str) -> Result<(), EngineError> {
        let (ik, ak, slot_id) = self.connected(id, "interaction.transferred")?;
        let q2 = self.lookup_queue(queue)?;
        let (channel, skills) = {
            let i = self.ix(ik);
            (i.channel, i.skills)
        };
        let target = &self.queues[q2 as usize];
        if !target.serves[channel.index()] {
            return Err(EngineError::ChannelNotServed {
                queue: queue.to_string(),
                channel,
            });
        }
        let class = Class::Step(self.entry_step(q2));
        if self.would_be_full(q2, channel, class, skills) {
            return Err(EngineError::QueueFull {
                queue: queue.to_string(),
                max_waiting: self.queues[q2 as usize].cfg.max_waiting.unwrap_or(0),
            });
        }
        let now = self.now;
        let by = self.agents[ak as usize].id.clone();
        let from_queue = self.queues[self.ix(ik).queue.unwrap_or(0) as usize]
            .name
            .clone();
        let to_queue = self.queues[q2 as usize].name.clone();
        self.fact(|| Fact::Transferred {
            from_queue,
            to_queue: to_queue.clone(),
            agent: by.clone(),
            at: now,
        });
        self.release_connected(ik, ak, slot_id, |e| {
            e.enter_queue(
                ik,
                q2,
                None,
                Why::Transferred {
                    by,
                    queue: to_queue,
                },
            )
        });
        Ok(())
    }

    fn on_escalated(&mut self, id: &str, min_tier: Tier) -> Result<(), EngineError> {
        let (ik, ak, slot_id) = self.connected(id, "interaction.escalated")?;
        if min_tier == 0 {
            return Err(EngineError::InvalidValue {
                field: "min_tier",
                message: format!("min_tier must be ≥ 1 (interaction `{id}`)"),
            });
        }
        let now = self.now;
        let q = self.ix(ik).queue.unwrap_or(0);
        let boost = self.queues[q as usize].cfg.escalation_priority_boost;
        let by = self.agents[ak as usize].id.clone();
        let queue = self.queues[q as usize].name.clone();
        let interaction = self.ix(ik).id.clone();
        {
            let i = self.ix_mut(ik);
            i.priority = i.priority.saturating_add(boost);
        }
        self.emit(DecisionKind::Escalated {
            interaction,
            queue: queue.clone(),
            step: None,
            by: Some(by.clone()),
            min_tier: Some(min_tier),
        });
        self.fact(|| Fact::EscalatedByAgent {
            queue,
            agent: by.clone(),
            min_tier,
            at: now,
        });
        self.release_connected(ik, ak, slot_id, |e| {
            e.enter_queue(
                ik,
                q,
                Some(min_tier),
                Why::EscalatedByAgent { by, min_tier },
            )
        });
        Ok(())
    }

    /// The agent hands a connected interaction back (transfer, escalation): the slot goes to
    /// wrap-up without it, `requeue_it` puts it in its new queue, then the agent may take work.
    fn release_connected(
        &mut self,
        ik: IKey,
        ak: AKey,
        slot_id: u64,
        requeue_it: impl FnOnce(&mut Engine),
    ) {
        let freed = self.start_wrap_up(ak, slot_id, false);
        {
            let i = self.ix_mut(ik);
            i.agent = None;
            i.slot = None;
            i.offer = None;
        }
        self.reindex_agent(ak);
        requeue_it(self);
        if freed {
            self.agent_take_work(ak);
        }
    }

    /// The pending offer of `id` to `agent`, or `NoSuchOffer`.
    fn pending_offer(&self, id: &str, agent: &str) -> Result<(IKey, AKey, u64), EngineError> {
        let ik = self.lookup_interaction(id)?;
        let ak = self.lookup_agent(agent)?;
        let i = self.ix(ik);
        match (i.state, i.agent, i.slot) {
            (InteractionState::Offered, Some(a), Some(slot)) if a == ak => Ok((ik, ak, slot)),
            _ => Err(EngineError::NoSuchOffer {
                interaction: id.to_string(),
                agent: agent.to_string(),
            }),
        }
    }

    fn on_accepted(&mut self, id: &str, agent: &str) -> Result<(), EngineError> {
        let (ik, ak, slot_id) = self.pending_offer(id, agent)?;
        let now = self.now;
        let mut expiry = None;
        if let Some(slot) = self.agents[ak as usize]
            .slots
            .iter_mut()
            .find(|s| s.id == slot_id)
        {
            slot.phase = SlotPhase::Connected;
            slot.connected_at = Some(now);
            slot.since = now;
            slot.until = None;
            expiry = slot.timer.take();
        }
        self.timers.cancel(expiry);
        let (a, b) = {
            let i = self.ix_mut(ik);
            (i.step_timer.take(), i.wait_timer.take())
        };
        self.timers.cancel(a);
        self.timers.cancel(b);
        let tier;
        {
            let q = self.ix(ik).queue.unwrap_or(0);
            let a = &mut self.agents[ak as usize];
            a.consecutive_no_answers = 0;
            a.accepted_since_login += 1;
            tier = a.tier_in(q);
        }
        let agent_id = self.agents[ak as usize].id.clone();
        self.transition(
            ik,
            InteractionState::Connected,
            Why::Accepted {
                agent: agent_id.clone(),
            },
        );
        self.reindex_agent(ak);
        let i = self.ix(ik);
        let (interaction, channel, wait_ms) = (
            i.id.clone(),
            i.channel,
            now.saturating_sub(i.entered_queue_at),
        );
        let queue = self.queues[i.queue.unwrap_or(0) as usize].name.clone();
        self.fact(|| Fact::OfferEnded {
            queue: queue.clone(),
            agent: agent_id.clone(),
            result: OfferResult::Accepted,
            at: now,
        });
        self.fact(|| Fact::Answered {
            interaction,
            queue,
            channel,
            agent: agent_id,
            tier,
            wait_ms,
            at: now,
        });
        Ok(())
    }

    fn on_declined(
        &mut self,
        id: &str,
        agent: &str,
        reason: DeclineReason,
    ) -> Result<(), EngineError> {
        let (ik, ak, slot_id) = self.pending_offer(id, agent)?;
        self.offer_failed(ik, ak, slot_id, reason, None);
        Ok(())
    }

    /// The offer's expiry timer fired.
    pub(super) fn on_offer_expired(&mut self, ik: IKey) {
        let Some(Some(i)) = self.interactions.get(ik as usize) else {
            return;
        };
        let (InteractionState::Offered, Some(ak), Some(slot)) = (i.state, i.agent, i.slot) else {
            return;
        };
        if let Some(s) = self.agents[ak as usize]
            .slots
            .iter_mut()
            .find(|s| s.id == slot)
        {
            s.timer = None;
        }
        self.offer_failed(
            ik,
            ak,
            slot,
            DeclineReason::NoAnswer,
            Some(RevokeReason::Expired),
        );
    }

    /// A declined or expired offer: free the slot, back off, count no-answers (maybe make the
    /// agent not_ready), and put the interaction back in its place.
    fn offer_failed(
        &mut self,
        ik: IKey,
        ak: AKey,
        slot_id: u64,
        reason: DeclineReason,
        revoke: Option<RevokeReason>,
    ) {
        let now = self.now;
        let agent_id = self.agents[ak as usize].id.clone();
        let Some(slot) = self.remove_slot(ak, slot_id) else {
            return;
        };
        let cfg = &self.queues[slot.queue as usize].cfg;
        let (reject_delay, busy_delay, no_answer_delay, max_no_answer) = (
            cfg.reject_delay_ms,
            cfg.busy_delay_ms,
            cfg.no_answer_delay_ms,
            cfg.max_no_answer,
        );
        let queue = self.queues[slot.queue as usize].name.clone();
        if let (Some(revoke), Some(offer)) = (revoke, slot.offer.clone()) {
            let interaction = self.ix(ik).id.clone();
            self.emit(DecisionKind::OfferRevoked {
                interaction,
                agent: agent_id.clone(),
                offer,
                reason: revoke,
            });
        }
        let result = if revoke.is_some() {
            OfferResult::TimedOut
        } else {
            OfferResult::Declined(reason)
        };
        self.fact(|| Fact::OfferEnded {
            queue,
            agent: agent_id.clone(),
            result,
            at: now,
        });
        let delay = match reason {
            DeclineReason::Rejected => reject_delay,
            DeclineReason::Busy => busy_delay,
            DeclineReason::NoAnswer => no_answer_delay,
        };
        self.back_off(ak, delay);
        if reason == DeclineReason::NoAnswer {
            let a = &mut self.agents[ak as usize];
            a.consecutive_no_answers += 1;
            if max_no_answer > 0
                && a.consecutive_no_answers >= max_no_answer
                && a.status == AgentStatus::Available
            {
                let why: Arc<str> = Arc::from("no_answer");
                self.set_status(ak, AgentStatus::NotReady, Some(why.clone()));
                self.emit(DecisionKind::AgentState {
                    agent: agent_id.clone(),
                    state: AgentStatus::NotReady,
                    reason: Some(why),
                });
            }
        }
        self.reindex_agent(ak);
        let why = match revoke {
            Some(reason) => Why::Revoked {
                agent: agent_id,
                reason,
            },
            None => Why::Declined {
                agent: agent_id,
                reason,
            },
        };
        self.requeue(ik, why);
        self.agent_take_work(ak);
    }

    fn on_login(
        &mut self,
        id: &str,
        address: Option<&str>,
        tiers: Option<&BTreeMap<String, Tier>>,
        skills: Option<&[String]>,
        capacity: Option<&BTreeMap<Channel, u32>>,
    ) -> Result<(), EngineError> {
        let existing = self.agent_ids.get(id).copied();
        if id.is_empty() {
            return Err(EngineError::InvalidValue {
                field: "agent",
                message: "an agent id must not be empty".into(),
            });
        }
        if existing.is_none() && address.is_none() {
            return Err(EngineError::AgentNeedsAddress {
                agent: id.to_string(),
            });
        }
        if let Some(tiers) = tiers {
            for (queue, tier) in tiers {
                if !self.queue_ids.contains_key(queue.as_str()) {
                    return Err(EngineError::AgentUnknownQueue {
                        agent: id.to_string(),
                        queue: queue.clone(),
                    });
                }
                if *tier == 0 {
                    return Err(EngineError::InvalidValue {
                        field: "tiers",
                        message: format!("tier for queue `{queue}` must be ≥ 1 (agent `{id}`)"),
                    });
                }
            }
        }
        if let Some(capacity) = capacity {
            if let Some((c, _)) = capacity.iter().find(|(_, n)| **n == 0) {
                return Err(EngineError::InvalidValue {
                    field: "capacity",
                    message: format!("capacity for {c} must be ≥ 1 (agent `{id}`)"),
                });
            }
        }
        let ak = match existing {
            Some(ak) => ak,
            None => self.add_agent(id, address.unwrap_or_default()),
        };
        // Tier changes move logged-in counts: count the agent out, change, count it back in.
        self.count_logged_in(ak, -1);
        {
            let a = &mut self.agents[ak as usize];
            if let Some(addr) = address {
                a.address = Arc::from(addr);
            }
            if let Some(tiers) = tiers {
                a.tiers_by_name = tiers
                    .iter()
                    .map(|(q, t)| (Arc::from(q.as_str()), *t))
                    .collect();
            }
            if let Some(capacity) = capacity {
                a.capacity_overrides = capacity.clone();
            }
        }
        if let Some(skills) = skills {
            let ids = self.skill_ids_of(skills);
            self.agents[ak as usize].skills = ids;
        }
        self.resolve_agent(ak);
        self.count_logged_in(ak, 1);
        self.set_status(ak, AgentStatus::Available, None);
        self.reindex_agent(ak);
        self.agent_take_work(ak);
        Ok(())
    }

    fn on_agent_state(
        &mut self,
        id: &str,
        state: RequestedState,
        reason: Option<&str>,
    ) -> Result<(), EngineError> {
        let ak = self.lookup_agent(id)?;
        let reason: Option<Arc<str>> = reason.map(Arc::from);
        match state {
            RequestedState::Available => {
                self.set_status(ak, AgentStatus::Available, None);
                self.reindex_agent(ak);
                self.agent_take_work(ak);
            }
            RequestedState::NotReady => {
                self.set_status(ak, AgentStatus::NotReady, reason);
                self.reindex_agent(ak);
            }
            RequestedState::Offline => {
                self.set_status(ak, AgentStatus::Offline, reason);
                self.reindex_agent(ak);
                let offered: Vec<(u64, IKey, Option<Arc<str>>)> = self.agents[ak as usize]
                    .slots
                    .iter()
                    .filter(|s| s.phase == SlotPhase::Offered)
                    .filter_map(|s| s.interaction.map(|ik| (s.id, ik, s.offer.clone())))
                    .collect();
                let agent_id = self.agents[ak as usize].id.clone();
                let now = self.now;
                for (slot_id, ik, offer) in offered {
                    self.remove_slot(ak, slot_id);
                    let interaction = self.ix(ik).id.clone();
                    let queue = self.queues[self.ix(ik).queue.unwrap_or(0) as usize]
                        .name
                        .clone();
                    if let Some(offer) = offer {
                        self.emit(DecisionKind::OfferRevoked {
                            interaction,
                            agent: agent_id.clone(),
                            offer,
                            reason: RevokeReason::AgentOffline,
                        });
                    }
                    self.fact(|| Fact::OfferEnded {
                        queue,
                        agent: agent_id.clone(),
                        result: OfferResult::Revoked,
                        at: now,
                    });
                    self.requeue(
                        ik,
                        Why::Revoked {
                            agent: agent_id.clone(),
                            reason: RevokeReason::AgentOffline,
                        },
                    );
                }
                self.reindex_agent(ak);
            }
        }
        Ok(())
    }

    fn on_wrapup_done(&mut self, id: &str) -> Result<(), EngineError> {
        let ak = self.lookup_agent(id)?;
        let wrapping: Vec<u64> = self.agents[ak as usize]
            .slots
            .iter()
            .filter(|s| s.phase == SlotPhase::WrapUp)
            .map(|s| s.id)
            .collect();
        for slot in wrapping {
            self.end_wrap_up(ak, slot);
        }
        self.reindex_agent(ak);
        self.agent_take_work(ak);
        Ok(())
    }

    /// Create an offline agent with no tiers (the caller fills them in).
    pub(super) fn add_agent(&mut self, id: &str, address: &str) -> AKey {
        let now = self.now;
        let id: Arc<str> = Arc::from(id);
        let ak = self.agents.len() as AKey;
        self.agents.push(Agent {
            id: id.clone(),
            address: Arc::from(address),
            status: AgentStatus::Offline,
            reason: None,
            status_since: now,
            logged_in_since: None,
            tiers_by_name: BTreeMap::new(),
            tiers: Vec::new(),
            skills: Vec::new(),
            capacity: [1; 4],
            capacity_overrides: BTreeMap::new(),
            load: [0; 4],
            exclusive_held: 0,
            slots: Vec::new(),
            idle_since: now,
            accepted_since_login: 0,
            consecutive_no_answers: 0,
            backoff_until: None,
            backoff_timer: None,
            free_entries: Vec::new(),
        });
        self.agent_ids.insert(id, ak);
        self.resolve_agent(ak);
        ak
    }

    /// Resolve an agent's queue tiers and capacities against the current config.
    pub(super) fn resolve_agent(&mut self, ak: AKey) {
        let channels = self.config.channels;
        let tiers: Vec<(QKey, Tier)> = self.agents[ak as usize]
            .tiers_by_name
            .iter()
            .filter_map(|(name, t)| self.queue_ids.get(name.as_ref()).map(|q| (*q, *t)))
            .collect();
        let a = &mut self.agents[ak as usize];
        a.tiers = tiers;
        for c in Channel::ALL {
            a.capacity[c.index()] = a
                .capacity_overrides
                .get(&c)
                .copied()
                .unwrap_or(channels[c.index()].capacity);
        }
    }
}
