//! Offer outcomes: accepted, declined, expired. A failed offer backs the agent off, counts
//! no-answers (maybe making the agent not_ready) and returns the interaction to its place.

use std::sync::Arc;

use crate::config::Channel;
use crate::engine::decision::{AgentStatus, DecisionKind, Fact, OfferResult, RevokeReason};
use crate::engine::error::EngineError;
use crate::engine::event::DeclineReason;
use crate::engine::model::Slot;
use crate::engine::timers::{AKey, IKey};
use crate::engine::view::{InteractionState, SlotPhase, Why};
use crate::engine::Engine;

/// What `NoSuchOffer` adds for an interaction still waiting or ringing another agent: the event
/// for an answer that happened all the same.
const ANSWERED_ANYWAY: &str =
    "; if this agent's phone answered it all the same, send `interaction.answered`";

impl Engine {
    /// The pending offer of `id` to `agent` (and, when named, `offer` itself), or `NoSuchOffer`
    /// / `StaleOffer`. `accepting`: for an accept, whose `NoSuchOffer` points to
    /// `interaction.answered` (a decline's does not: the agent did not take the call).
    fn pending_offer(
        &self,
        id: &str,
        agent: &str,
        offer: Option<&str>,
        accepting: bool,
    ) -> Result<(IKey, AKey, u64), EngineError> {
        let ik = self.lookup_interaction(id)?;
        let ak = self.lookup_agent(agent)?;
        let i = self.ix(ik);
        match (i.state, i.agent, i.slot) {
            (InteractionState::Offered, Some(a), Some(slot)) if a == ak => {
                match (offer, i.offer.as_deref()) {
                    (Some(named), Some(pending)) if named != pending => {
                        Err(EngineError::StaleOffer {
                            interaction: id.to_string(),
                            agent: agent.to_string(),
                            offer: named.to_string(),
                        })
                    }
                    _ => Ok((ik, ak, slot)),
                }
            }
            _ => Err(EngineError::NoSuchOffer {
                interaction: id.to_string(),
                agent: agent.to_string(),
                now: self.where_instead(ik, ak, accepting),
            }),
        }
    }

    /// Where an interaction is, told to an agent `ak` whose offer of it is not pending: the
    /// message of `NoSuchOffer`; for an accept (`accepting`), with what to send if the phone
    /// answered all the same.
    fn where_instead(&self, ik: IKey, ak: AKey, accepting: bool) -> String {
        let i = self.ix(ik);
        let answered_anyway = if accepting { ANSWERED_ANYWAY } else { "" };
        let queue = |q: Option<u32>| {
            q.and_then(|q| self.queues.get(q as usize))
                .map_or_else(String::new, |q| format!(" in queue `{}`", q.name))
        };
        let holder = i.agent.and_then(|a| self.agents.get(a as usize));
        match (i.state, holder) {
            (InteractionState::Connected, Some(_)) if i.agent == Some(ak) => {
                "it is connected to this agent already (the offer was accepted)".to_string()
            }
            (InteractionState::Connected, Some(a)) => {
                format!("it is connected to agent `{}`", a.id)
            }
            // Offered to `ak` itself is `pending_offer`'s own case (or `StaleOffer`).
            (InteractionState::Offered, Some(a)) => {
                format!(
                    "it is being offered to agent `{}` now{answered_anyway}",
                    a.id
                )
            }
            (InteractionState::Waiting, _) => format!(
                "it is waiting{}, offered to nobody (an offer to this agent expired, was \
                 declined or was taken back, or was never made){answered_anyway}",
                queue(i.queue)
            ),
            (InteractionState::WrapUp, Some(a)) => {
                format!("it is in wrap-up with agent `{}`", a.id)
            }
            (state, _) if state.is_final() => {
                format!("it has finished (`{}`)", state.as_str())
            }
            (state, _) => format!("it is in state `{}`", state.as_str()),
        }
    }

    pub(super) fn on_accepted(
        &mut self,
        id: &str,
        agent: &str,
        offer: Option<&str>,
    ) -> Result<(), EngineError> {
        let (ik, ak, slot_id) = self.pending_offer(id, agent, offer, true)?;
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
        self.census_touch(ak);
        self.timers.cancel(expiry);
        let agent_id = self.agents[ak as usize].id.clone();
        let queue = self.queues[self.ix(ik).queue.unwrap_or(0) as usize]
            .name
            .clone();
        self.fact(|| Fact::OfferEnded {
            queue,
            agent: agent_id.clone(),
            result: OfferResult::Accepted,
            at: now,
        });
        self.connect(ik, ak, Why::Accepted { agent: agent_id });
        Ok(())
    }

    /// `ik` is connected to `ak` on the slot it now holds: its ladder and max wait stop, the
    /// agent's missed offers reset and its accepted count rises, the history says `why`, the
    /// agent's free-set entries follow, and the answer is counted with the wait since it entered
    /// the queue (`Fact::Answered`). Shared by an accepted offer and an answer outside one.
    fn connect(&mut self, ik: IKey, ak: AKey, why: Why) {
        let now = self.now;
        let (a, b) = {
            let i = self.ix_mut(ik);
            i.answered_by = Some(ak);
            (i.step_timer.take(), i.wait_timer.take())
        };
        self.timers.cancel(a);
        self.timers.cancel(b);
        let q = self.ix(ik).queue.unwrap_or(0);
        let (agent_id, tier) = {
            let a = &mut self.agents[ak as usize];
            a.consecutive_missed_offers = 0;
            a.accepted_since_login += 1;
            (a.id.clone(), a.tier_in(q))
        };
        self.transition(ik, InteractionState::Connected, why);
        self.reindex_agent(ak);
        let i = self.ix(ik);
        let (interaction, channel, wait_ms) = (
            i.id.clone(),
            i.channel,
            now.saturating_sub(i.entered_queue_at),
        );
        let queue = self.queues[q as usize].name.clone();
        self.fact(|| Fact::Answered {
            interaction,
            queue,
            channel,
            agent: agent_id,
            tier,
            wait_ms,
            at: now,
        });
    }

    /// `interaction.answered`: `agent` answered the interaction outside a pending offer of it
    /// to that agent. A waiting interaction leaves its queue, an offer of it to another agent is
    /// revoked (`answered_elsewhere`, without blame), and it is connected on a new slot of the
    /// agent, whatever the agent's status (its phone is off the hook). An offer of it to this
    /// very agent is simply accepted.
    pub(super) fn on_answered(&mut self, id: &str, agent: &str) -> Result<(), EngineError> {
        let ik = self.lookup_interaction(id)?;
        let ak = self.lookup_agent(agent)?;
        let (state, holder, held_slot, channel) = {
            let i = self.ix(ik);
            (i.state, i.agent, i.slot, i.channel)
        };
        match state {
            InteractionState::Offered if holder == Some(ak) => {
                return self.on_accepted(id, agent, None);
            }
            InteractionState::Waiting | InteractionState::Offered => {}
            other => {
                return Err(EngineError::InvalidTransition {
                    interaction: id.to_string(),
                    event: "interaction.answered",
                    state: other.as_str(),
                    expected: "waiting or offered",
                })
            }
        }
        // An agent whose phone answered an exclusive call while tierline rang it for others,
        // and holds nothing else, is busy with the one it answered: those offers are taken back
        // (after this call's own ringing elsewhere), and go to other agents.
        let mut take_back = false;
        if let Some(holds) = self.no_room_for(ak, channel) {
            if !self.only_ringing(ak, channel) {
                return Err(EngineError::AgentBusy {
                    agent: agent.to_string(),
                    interaction: id.to_string(),
                    holds,
                });
            }
            take_back = true;
        }
        let now = self.now;
        let interaction = self.ix(ik).id.clone();
        let queue = self.queues[self.ix(ik).queue.unwrap_or(0) as usize]
            .name
            .clone();
        let mut ringing = None;
        match (holder, held_slot) {
            (Some(other), Some(slot_id)) if state == InteractionState::Offered => {
                if let Some(slot) = self.remove_slot(other, slot_id) {
                    let other_id = self.agents[other as usize].id.clone();
                    if let Some(offer) = slot.offer {
                        self.emit(DecisionKind::OfferRevoked {
                            interaction: interaction.clone(),
                            agent: other_id.clone(),
                            offer,
                            reason: RevokeReason::AnsweredElsewhere,
                        });
                    }
                    self.fact(|| Fact::OfferEnded {
                        queue: queue.clone(),
                        agent: other_id,
                        result: OfferResult::Revoked,
                        at: now,
                    });
                }
                ringing = Some(other);
            }
            _ => self.unindex_waiting(ik),
        }
        let returned = if take_back {
            self.take_back_offers(ak, RevokeReason::AgentAnsweredOther, |_, _| true)
        } else {
            Vec::new()
        };
        let slot_id = self.next_slot;
        self.next_slot += 1;
        let q = self.ix(ik).queue.unwrap_or(0);
        self.add_slot(
            ak,
            Slot {
                id: slot_id,
                channel,
                phase: SlotPhase::Connected,
                interaction: Some(ik),
                queue: q,
                offer: None,
                since: now,
                connected_at: Some(now),
                until: None,
                timer: None,
            },
        );
        {
            let i = self.ix_mut(ik);
            i.agent = Some(ak);
            i.slot = Some(slot_id);
            i.offer = None;
            i.overflow_due = false;
        }
        let agent_id = self.agents[ak as usize].id.clone();
        self.connect(ik, ak, Why::AnsweredOutsideOffer { agent: agent_id });
        // What rang the answering agent goes back to its place and to other agents, the agent
        // freed of this call among them (indexed first); then that agent takes other work.
        if let (Some(other), false) = (ringing, returned.is_empty()) {
            self.reindex_agent(other);
        }
        self.place_returned(returned);
        if let Some(other) = ringing {
            self.agent_take_work(other);
        }
        Ok(())
    }

    /// Whether `ak` would have room for a `channel` interaction if its ringing offers were
    /// taken back, `channel` being exclusive and every slot it holds an offer: a phone that
    /// answered one call cannot answer the others it was rung for.
    fn only_ringing(&self, ak: AKey, channel: Channel) -> bool {
        let a = &self.agents[ak as usize];
        self.config.channels[channel.index()].exclusive
            && a.capacity[channel.index()] > 0
            && !a.slots.is_empty()
            && a.slots.iter().all(|s| s.phase == SlotPhase::Offered)
    }

    /// Why `ak` could not hold one more `channel` interaction, whatever its status: the
    /// capacity and exclusivity part of `agent_free_for`.
    fn no_room_for(&self, ak: AKey, channel: Channel) -> Option<String> {
        let a = &self.agents[ak as usize];
        let c = channel.index();
        if a.exclusive_held > 0 {
            Some(format!(
                "it holds {} exclusive interaction(s) (offered, connected or in wrap-up)",
                a.exclusive_held
            ))
        } else if a.load[c] >= a.capacity[c] {
            Some(format!(
                "it holds {} {} interaction(s), its capacity for the channel",
                a.load[c],
                channel.as_str()
            ))
        } else if self.config.channels[c].exclusive && a.total_load() > 0 {
            Some(format!(
                "{} is exclusive and it holds {} other interaction(s)",
                channel.as_str(),
                a.total_load()
            ))
        } else {
            None
        }
    }

    pub(super) fn on_declined(
        &mut self,
        id: &str,
        agent: &str,
        reason: DeclineReason,
        offer: Option<&str>,
    ) -> Result<(), EngineError> {
        let (ik, ak, slot_id) = self.pending_offer(id, agent, offer, false)?;
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
        let cfg = self.queues[slot.queue as usize].cfg();
        let (reject_delay, busy_delay, no_answer_delay, max_no_answer, count_declines) = (
            cfg.reject_delay_ms,
            cfg.busy_delay_ms,
            cfg.no_answer_delay_ms,
            cfg.max_no_answer,
            cfg.count_declines,
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
        if reason == DeclineReason::NoAnswer || count_declines {
            let a = &mut self.agents[ak as usize];
            a.consecutive_missed_offers += 1;
            if max_no_answer > 0
                && a.consecutive_missed_offers >= max_no_answer
                && a.status == AgentStatus::Available
            {
                let why: Arc<str> = Arc::from(match reason {
                    DeclineReason::NoAnswer => "no_answer",
                    DeclineReason::Busy | DeclineReason::Rejected => "declined",
                });
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
        self.requeue(ik, why, Some(ak));
    }

    /// Take back a pending offer the agent did not answer (it went offline, or a live change
    /// took it out of the queue): free the slot, tell the PBX (`offer_revoked`), and return the
    /// interaction to its place as waiting, not indexed yet (`route_returned` routes it).
    /// The agent's free-set entries are left to the caller.
    pub(super) fn withdraw_offer(
        &mut self,
        ak: AKey,
        slot_id: u64,
        ik: IKey,
        reason: RevokeReason,
    ) {
        let Some(slot) = self.remove_slot(ak, slot_id) else {
            return;
        };
        let now = self.now;
        let agent_id = self.agents[ak as usize].id.clone();
        let interaction = self.ix(ik).id.clone();
        let queue = self.queues[self.ix(ik).queue.unwrap_or(0) as usize]
            .name
            .clone();
        if let Some(offer) = slot.offer {
            self.emit(DecisionKind::OfferRevoked {
                interaction,
                agent: agent_id.clone(),
                offer,
                reason,
            });
        }
        self.fact(|| Fact::OfferEnded {
            queue,
            agent: agent_id.clone(),
            result: OfferResult::Revoked,
            at: now,
        });
        self.return_to_queue(
            ik,
            Why::Revoked {
                agent: agent_id,
                reason,
            },
        );
    }
}
