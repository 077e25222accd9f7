//! One handler per event type. Each validates everything first and only then changes state, so
//! a refused event leaves the engine exactly as it was.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Channel, Tier};
use crate::engine::decision::{DecisionKind, Fact, OfferResult, RejectReason, RevokeReason};
use crate::engine::error::EngineError;
use crate::engine::event::{
    check_entry_len, check_item_len, check_len, MAX_ATTRIBUTE_LEN, MAX_ID_LEN,
};
use crate::engine::event::{Event, RequestedState};
use crate::engine::model::{Class, History, Interaction, QKey, SkillSetId};
use crate::engine::timers::{AKey, IKey};
use crate::engine::view::{InteractionState, Why};
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
    /// `forced`: an `agent.state` an administrator set (announced with `agent_state`).
    pub(super) fn apply(&mut self, event: &Event, forced: bool) -> Result<(), EngineError> {
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
            Event::OfferAccepted {
                interaction,
                agent,
                offer,
            } => self.on_accepted(interaction, agent, offer.as_deref()),
            Event::InteractionAnswered { interaction, agent } => {
                self.on_answered(interaction, agent)
            }
            Event::OfferDeclined {
                interaction,
                agent,
                reason,
                offer,
            } => self.on_declined(interaction, agent, *reason, offer.as_deref()),
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
            } => self.on_agent_state(agent, *state, reason.as_deref(), forced),
            Event::AgentLogout { agent } => {
                self.on_agent_state(agent, RequestedState::Offline, None, false)
            }
            Event::AgentWrapupDone { agent } => self.on_wrapup_done(agent),
        }
    }

    fn route(
        &self,
        id: &str,
        channel: Channel,
        queue: Option<&str>,
        priority: Option<i32>,
        attributes: &BTreeMap<String, String>,
    ) -> Result<Route, EngineError> {
        // The first rule met whose queue serves the channel (`RoutingConfig::matching_rule`).
        let mut ruled = None;
        if queue.is_none() {
            for (n, rule) in self.config.rules_met(channel, attributes) {
                let q = self.lookup_queue_for(id, &rule.queue)?;
                if self.queues[q as usize].serves[channel.index()] {
                    ruled = Some((q, rule.priority, Some(n)));
                    break;
                }
            }
        }
        let chosen = if let Some(name) = queue {
            Some((self.lookup_queue_for(id, name)?, None, None))
        } else if ruled.is_some() {
            ruled
        } else if let Some(name) = &self.config.default_queue {
            Some((self.lookup_queue_for(id, name)?, None, None))
        } else {
            None
        };
        let Some((q, rule_priority, rule)) = chosen else {
            return Ok(Route::NoRoute);
        };
        let queue = &self.queues[q as usize];
        if !queue.serves[channel.index()] {
            return Err(EngineError::ChannelNotServed {
                queue: queue.cfg().id.clone(),
                channel,
                interaction: id.to_string(),
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
        check_len("interaction", id, MAX_ID_LEN)?;
        if let Some(c) = customer {
            check_len("customer", c, MAX_ID_LEN)?;
        }
        for (i, s) in skills.iter().enumerate() {
            check_item_len("skills", i, s, MAX_ID_LEN)?;
        }
        for (k, v) in attributes {
            check_entry_len("attributes", k, v, MAX_ID_LEN, MAX_ATTRIBUTE_LEN)?;
        }
        if let Some(ik) = self.interaction_ids.get(&self.interactions, id) {
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
        let route = self.route(id, channel, queue, priority, attributes)?;
        // Validated: from here on nothing fails.
        let now = self.now;
        let skill_ids = self.skills.ids_of(skills);
        let skills = self.skills.set_of(skill_ids);
        self.skills.hold_set(skills);
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
            history: History::new(),
            history_dropped: 0,
            rating: None,
            resolved: None,
            agent: None,
            slot: None,
            offer: None,
            step_timer: None,
            wait_timer: None,
            overflow_due: false,
            answered_by: None,
        };
        let ik = match self.free_ikeys.pop() {
            Some(k) => {
                self.interactions[k as usize] = Some(Arc::new(interaction));
                k
            }
            None => {
                self.interactions.push(Some(Arc::new(interaction)));
                (self.interactions.len() - 1) as IKey
            }
        };
        self.interaction_ids.insert(&self.interactions, ik);
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
                let cfg = self.queues[q as usize].cfg();
                if cfg.schedule.as_ref().is_some_and(|s| !s.is_open(now)) {
                    Some((
                        RejectReason::Closed,
                        cfg.closed_target.as_deref().map(Arc::from),
                    ))
                } else {
                    let class = Class::Step(self.entry_step(q));
                    if self.would_be_full(q, channel, class, skills, None) {
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
                    target: target.clone(),
                });
                self.fact(|| Fact::Rejected {
                    interaction: id,
                    queue: queue_name,
                    channel,
                    reason,
                    at: now,
                });
                self.finish(
                    ik,
                    InteractionState::Rejected,
                    Why::Rejected { reason, target },
                );
            }
            (None, Route::Queue { q, rule, .. }) => {
                let why = Why::Arrived {
                    queue: self.queues[q as usize].name.clone(),
                    rule,
                };
                // Counted as arrived; enter_queue records none → waiting.
                self.counts.arrived += 1;
                self.counts.waiting += 1;
                self.enter_queue(ik, q, None, why, None);
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
        let (state, q, channel, arrived, entered, agent, slot, offer) = {
            let i = self.ix(ik);
            (
                i.state,
                i.queue,
                i.channel,
                i.arrived_at,
                i.entered_queue_at,
                i.agent,
                i.slot,
                i.offer.clone(),
            )
        };
        let q = q.unwrap_or(0);
        let wait_ms = now.saturating_sub(entered);
        // A short abandon (a misdial, a caller who changed their mind) is judged from the
        // arrival: a customer who waited in another queue before an overflow, or talked to an
        // agent before a transfer or an escalation, and then left this queue quickly, still
        // abandoned after a real wait. Without such a move, arrival and entry are the same.
        let short = now.saturating_sub(arrived) < self.queues[q as usize].cfg().short_abandon_ms;
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
        match i.rating {
            // A repeated delivery (under another event id): already counted, nothing changes.
            Some(first) if first == score => return Ok(()),
            Some(first) => {
                return Err(EngineError::AlreadyRated {
                    interaction: id.to_string(),
                    score: first,
                })
            }
            None => {}
        }
        if i.answered_by.is_none() {
            return Err(EngineError::InvalidTransition {
                interaction: id.to_string(),
                event: "interaction.rated",
                state: i.state.as_str(),
                expected: "connected at some point",
            });
        }
        let now = self.now;
        let queue = self.queues[i.queue.unwrap_or(0) as usize].name.clone();
        let agent = i.answered_by.map(|a| self.agents[a as usize].id.clone());
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
        let q2 = self.lookup_queue_for(id, queue)?;
        let (channel, skills) = {
            let i = self.ix(ik);
            (i.channel, i.skills)
        };
        let target = &self.queues[q2 as usize];
        if !target.serves[channel.index()] {
            return Err(EngineError::ChannelNotServed {
                queue: queue.to_string(),
                channel,
                interaction: id.to_string(),
            });
        }
        let cfg = target.cfg();
        if cfg.schedule.as_ref().is_some_and(|s| !s.is_open(self.now)) {
            return Err(EngineError::QueueClosed {
                queue: queue.to_string(),
                closed_target: cfg.closed_target.clone(),
                interaction: id.to_string(),
            });
        }
        self.refuse_if_full(
            id,
            q2,
            channel,
            Class::Step(self.entry_step(q2)),
            (ak, slot_id),
            skills,
        )?;
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
        self.release_connected(
            ik,
            ak,
            slot_id,
            q2,
            None,
            Why::Transferred {
                by,
                queue: to_queue,
            },
        );
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
        let (q, channel, skills) = {
            let i = self.ix(ik);
            (i.queue.unwrap_or(0), i.channel, i.skills)
        };
        // It goes back into the queue it was connected from, which a live change may have
        // removed or stopped serving its channel: refused as a transfer there would be.
        let queue = &self.queues[q as usize];
        if queue.retired {
            return Err(EngineError::QueueRemoved {
                queue: queue.name.to_string(),
                interaction: id.to_string(),
            });
        }
        if !queue.serves[channel.index()] {
            return Err(EngineError::ChannelNotServed {
                queue: queue.name.to_string(),
                channel,
                interaction: id.to_string(),
            });
        }
        self.refuse_if_full(
            id,
            q,
            channel,
            Class::MinTier(min_tier),
            (ak, slot_id),
            skills,
        )?;
        let boost = self.queues[q as usize].cfg().escalation_priority_boost;
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
        self.release_connected(
            ik,
            ak,
            slot_id,
            q,
            Some(min_tier),
            Why::EscalatedByAgent { by, min_tier },
        );
        Ok(())
    }

    /// A transfer or escalation into `q` by agent `by` from its slot `slot` is refused when `q`
    /// is at `max_waiting` and no agent could take the interaction at once (an arrival there
    /// would be rejected `queue_full`). An agent freed at once by the hand-over (no wrap-up)
    /// does not count: it takes the most urgent waiting work first, which may be another call.
    fn refuse_if_full(
        &self,
        id: &str,
        q: QKey,
        channel: Channel,
        class: Class,
        (by, slot): (AKey, u64),
        skills: SkillSetId,
    ) -> Result<(), EngineError> {
        let handing_over = self.frees_at_once(by, slot).then_some(by);
        if self.would_be_full(q, channel, class, skills, handing_over) {
            let queue = &self.queues[q as usize];
            return Err(EngineError::QueueFull {
                queue: queue.name.to_string(),
                max_waiting: queue.cfg().max_waiting.unwrap_or(0),
                interaction: id.to_string(),
            });
        }
        Ok(())
    }

    /// The agent hands a connected interaction back (transfer, escalation): the slot goes to
    /// wrap-up without it and the interaction enters queue `q`. With no wrap-up the agent is
    /// free in the same instant and takes the most urgent work first (`enter_queue`).
    fn release_connected(
        &mut self,
        ik: IKey,
        ak: AKey,
        slot_id: u64,
        q: QKey,
        min_tier: Option<Tier>,
        why: Why,
    ) {
        let freed = self.start_wrap_up(ak, slot_id, false);
        {
            let i = self.ix_mut(ik);
            i.agent = None;
            i.slot = None;
            i.offer = None;
        }
        self.reindex_agent(ak);
        self.enter_queue(ik, q, min_tier, why, freed.then_some(ak));
    }
}
