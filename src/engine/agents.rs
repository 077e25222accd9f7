//! Agent events: login (creating or updating the agent), forced states, logout, wrap-up done;
//! and resolving an agent's tiers and capacities against the current config.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Channel, Tier};
use crate::engine::decision::{AgentStatus, DecisionKind, RevokeReason};
use crate::engine::error::EngineError;
use crate::engine::event::RequestedState;
use crate::engine::event::{
    check_item_len, check_len, check_no_control, MAX_ATTRIBUTE_LEN, MAX_ID_LEN,
};
use crate::engine::model::{Agent, QKey};
use crate::engine::timers::{AKey, IKey};
use crate::engine::view::SlotPhase;
use crate::engine::Engine;

impl Engine {
    pub(super) fn on_login(
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
        check_len("agent", id, MAX_ID_LEN)?;
        if let Some(a) = address {
            check_len("address", a, MAX_ATTRIBUTE_LEN)?;
            check_no_control("address", || "`address`".to_string(), a)?;
        }
        for (i, s) in skills.unwrap_or_default().iter().enumerate() {
            check_item_len("skills", i, s, MAX_ID_LEN)?;
        }
        if address.is_some_and(|a| a.trim().is_empty()) {
            // The PBX would dial nothing; the config refuses an empty roster address too.
            return Err(EngineError::InvalidValue {
                field: "address",
                message: format!("an agent's address must not be empty (agent `{id}`)"),
            });
        }
        if existing.is_none() && address.is_none() {
            return Err(EngineError::AgentNeedsAddress {
                agent: id.to_string(),
            });
        }
        if existing.is_none() && self.agents.len() >= self.config.limits.max_agents {
            return Err(EngineError::TooManyAgents {
                agent: id.to_string(),
                limit: self.config.limits.max_agents,
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
        // Tier changes move the census: count the agent out, change, count it back in.
        let queues_before = self.queues_of(ak);
        self.census_out(ak);
        let tiers = tiers.map(|t| self.named_tiers(t));
        {
            let a = &mut self.agents[ak as usize];
            if let Some(addr) = address {
                a.address = Arc::from(addr);
            }
            if let Some(tiers) = tiers {
                a.tiers_by_name = tiers;
            }
            if let Some(capacity) = capacity {
                a.capacity_overrides = capacity.clone();
            }
        }
        if let Some(skills) = skills {
            self.set_agent_skills(ak, skills);
        }
        self.resolve_agent(ak);
        self.census_in(ak);
        self.set_status(ak, AgentStatus::Available, None);
        // A login with other tiers takes back what rings the agent from a queue it no longer
        // serves, as a config change does: it could otherwise accept a call it is not for. The
        // agent takes its own work first (as any freed agent), then what it gave back is placed.
        let returned = self.take_back_offers(ak, RevokeReason::Reconfigured, |e, q| {
            e.agents[ak as usize].tier_in(q).is_none()
        });
        self.agent_take_work(ak);
        self.place_returned(returned);
        // A login with other tiers may leave a step of a queue it served with nobody.
        self.skip_steps_left_empty(&queues_before);
        Ok(())
    }

    /// `forced`: set by an administrator, so announced to the PBX first (`agent_state`).
    pub(super) fn on_agent_state(
        &mut self,
        id: &str,
        state: RequestedState,
        reason: Option<&str>,
        forced: bool,
    ) -> Result<(), EngineError> {
        let ak = self.lookup_agent(id)?;
        if let Some(r) = reason {
            // Kept on the agent, in every view and as a key of its not-ready time.
            check_len("reason", r, MAX_ID_LEN)?;
        }
        let reason: Option<Arc<str>> = reason.map(Arc::from);
        if forced {
            let status = match state {
                RequestedState::Available => AgentStatus::Available,
                RequestedState::NotReady => AgentStatus::NotReady,
                RequestedState::Offline => AgentStatus::Offline,
            };
            let agent = self.agents[ak as usize].id.clone();
            self.emit(DecisionKind::AgentState {
                agent,
                state: status,
                reason: reason.clone().filter(|_| status != AgentStatus::Available),
            });
        }
        match state {
            RequestedState::Available => {
                self.set_status(ak, AgentStatus::Available, None);
                // An administrator putting the agent back: a fresh no-answer count, of one
                // already available too. (The agent's own `available`, or a login, resets it
                // only from another status: an integration repeating either on every phone
                // registration would otherwise keep a phone that never answers in rotation.)
                if forced {
                    self.agents[ak as usize].consecutive_missed_offers = 0;
                }
                self.agent_take_work(ak);
            }
            RequestedState::NotReady => {
                self.set_status(ak, AgentStatus::NotReady, reason);
                self.reindex_agent(ak);
            }
            RequestedState::Offline => {
                self.set_status(ak, AgentStatus::Offline, reason);
                self.reindex_agent(ak);
                let returned = self.take_back_offers(ak, RevokeReason::AgentOffline, |_, _| true);
                self.place_returned(returned);
                self.reindex_agent(ak);
                let queues = self.queues_of(ak);
                self.skip_steps_left_empty(&queues);
            }
        }
        Ok(())
    }

    /// Take back every offer ringing `ak` for an interaction in a queue `take` selects, all of
    /// them (and the PBX told) before any is offered again. Returns them, for `place_returned`.
    pub(super) fn take_back_offers(
        &mut self,
        ak: AKey,
        reason: RevokeReason,
        take: impl Fn(&Self, QKey) -> bool,
    ) -> Vec<IKey> {
        let offered: Vec<(u64, IKey)> = self.agents[ak as usize]
            .slots
            .iter()
            .filter(|s| s.phase == SlotPhase::Offered)
            .filter_map(|s| s.interaction.map(|ik| (s.id, ik)))
            .filter(|&(_, ik)| self.ix(ik).queue.is_some_and(|q| take(self, q)))
            .collect();
        let mut returned: Vec<IKey> = Vec::with_capacity(offered.len());
        for (slot_id, ik) in offered {
            self.withdraw_offer(ak, slot_id, ik, reason);
            returned.push(ik);
        }
        if !returned.is_empty() {
            self.reindex_agent(ak);
        }
        returned
    }

    /// Put back interactions whose offers were taken back, most urgent first: the first one
    /// placed gets the pick of the free agents, so a priority-9 chat never loses the only free
    /// agent to a priority-0 one that happened to ring first.
    pub(super) fn place_returned(&mut self, mut returned: Vec<IKey>) {
        returned.sort_by_key(|&ik| self.wait_key(ik));
        for ik in returned {
            self.route_returned(ik, None);
        }
    }

    /// The queues the agent has a tier in.
    fn queues_of(&self, ak: AKey) -> Vec<QKey> {
        self.agents[ak as usize]
            .tiers
            .iter()
            .map(|(q, _)| *q)
            .collect()
    }

    pub(super) fn on_wrapup_done(&mut self, id: &str) -> Result<(), EngineError> {
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
            tiers_by_name: Box::default(),
            tiers: Vec::new(),
            skills: Vec::new(),
            capacity: [1; 4],
            capacity_overrides: BTreeMap::new(),
            load: [0; 4],
            exclusive_held: 0,
            slots: Vec::new(),
            idle_since: now,
            accepted_since_login: 0,
            consecutive_missed_offers: 0,
            backoff_until: None,
            backoff_timer: None,
            roster_fields: [0; 4],
            free_entries: Vec::new(),
            indexed_as: Default::default(),
            census_as: None,
        });
        self.agent_ids.insert(id, ak);
        self.resolve_agent(ak);
        ak
    }

    /// Tiers by queue name, in name order, sharing the queue table's name `Arc`s where the queue
    /// exists (an agent serving three queues then costs no name copies).
    pub(super) fn named_tiers(&self, tiers: &BTreeMap<String, Tier>) -> Box<[(Arc<str>, Tier)]> {
        tiers
            .iter()
            .map(|(q, t)| {
                let name = match self.queue_ids.get_key_value(q.as_str()) {
                    Some((name, _)) => name.clone(),
                    None => Arc::from(q.as_str()),
                };
                (name, *t)
            })
            .collect()
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
