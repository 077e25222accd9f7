//! Live config changes (`Engine::reconfigure`) while calls are offered, connected and waiting:
//! a change keeps every interaction's place, re-evaluates eligibility at once, and never leaves
//! an interaction where no agent can reach it. Each test ends with the engine's own
//! consistency check (indexes and counters rebuilt from scratch and compared).

mod support;

use tierline::config::{Channel, RoutingConfig};
use tierline::engine::{
    DeclineReason, EngineError, InteractionState, Owner, RevokeReason, SlotPhase, Why,
};

use support::*;

fn one_queue(agents: &[(&str, u8)]) -> RoutingConfig {
    config(
        vec![queue("support", vec![step(0, &[1, 2])])],
        agents
            .iter()
            .map(|(id, tier)| agent(id, &[("support", *tier)]))
            .collect(),
    )
}

/// L1 at once, skipped when no L1 is logged in; L2 after 30 s with +5.
fn skipping_desk() -> RoutingConfig {
    let mut ladder = vec![step(0, &[1]), step(30, &[2]).boosted(5)];
    ladder[0].skip_if_no_agents = true;
    config(
        vec![queue("support", ladder)],
        vec![
            agent("l1", &[("support", 1)]),
            agent("l2", &[("support", 2)]),
        ],
    )
}

fn consistent(d: &Driver) {
    if let Err(e) = d.engine.check_consistency() {
        panic!("inconsistent after the change: {e}");
    }
}

#[test]
fn voice_made_non_exclusive_during_a_call_frees_the_agent_for_the_next_call() {
    let cfg = one_queue(&[("a1", 1)]);
    let mut d = Driver::new(cfg.clone());
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), accept("c1", "a1"));
    let mut relaxed = cfg.clone();
    relaxed.channels[Channel::Voice.index()].exclusive = false;
    d.reload(secs(3), relaxed);
    consistent(&d);
    d.at(secs(4), end("c1"));
    d.at(secs(5), wrapup_done("a1"));
    let ds = d.at(secs(6), call("c2", "support"));
    assert_eq!(offered_to(&ds, "c2").as_deref(), Some("a1"));
    consistent(&d);
}

#[test]
fn voice_made_exclusive_during_a_call_holds_the_agent_until_it_ends() {
    let mut cfg = config(
        vec![with_channels(
            queue("support", vec![step(0, &[1])]),
            &[Channel::Voice, Channel::Chat],
        )],
        vec![agent("a1", &[("support", 1)])],
    );
    cfg.channels[Channel::Voice.index()].exclusive = false;
    let mut d = Driver::new(cfg.clone());
    d.at(0, login("a1"));
    d.at(secs(1), chat("k1", "support"));
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), accept("c1", "a1"));
    let mut strict = cfg.clone();
    strict.channels[Channel::Voice.index()].exclusive = true;
    d.reload(secs(3), strict);
    consistent(&d);
    // The held call is exclusive now: no chat for a1 while it lasts.
    let ds = d.at(secs(4), chat("k2", "support"));
    assert_eq!(kinds(&ds), vec!["queued"]);
    d.at(secs(5), end("c1"));
    let ds = d.at(secs(6), wrapup_done("a1"));
    assert_eq!(offered_to(&ds, "k2").as_deref(), Some("a1"), "{ds:?}");
    consistent(&d);
}

#[test]
fn escalating_a_call_whose_queue_was_removed_is_refused_and_the_agent_keeps_it() {
    let cfg = config(
        vec![
            queue("old", vec![step(0, &[1, 2])]),
            queue("other", vec![step(0, &[1])]),
        ],
        vec![agent("a1", &[("old", 1)]), agent("a2", &[("old", 2)])],
    );
    let mut d = Driver::new(cfg.clone());
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "old"));
    d.at(secs(2), accept("c1", "a1"));
    let mut without_old = cfg.clone();
    without_old.queues.retain(|q| q.id != "old");
    without_old.agents = vec![agent("a1", &[("other", 1)]), agent("a2", &[("other", 2)])];
    // Allowed: nothing waits in `old`, its only call is connected.
    d.reload(secs(3), without_old);
    let refused = d.try_at(secs(4), escalate("c1", 2));
    assert!(
        matches!(&refused, Err(EngineError::QueueRemoved { queue, interaction }) if queue == "old" && interaction == "c1"),
        "{refused:?}"
    );
    assert_eq!(refused.unwrap_err().code(), "queue_removed");
    let c1 = d.interaction("c1");
    assert_eq!(c1.state, InteractionState::Connected);
    assert_eq!(c1.owner, Owner::Agent("a1".into()));
    // A transfer to a queue that exists still works.
    let ds = d.at(secs(5), transfer("c1", "other"));
    assert_eq!(kinds(&ds), vec!["queued"]);
    consistent(&d);
}

#[test]
fn escalating_a_voice_call_in_a_queue_that_stopped_serving_voice_is_refused() {
    let cfg = one_queue(&[("a1", 1), ("a2", 2)]);
    let mut d = Driver::new(cfg.clone());
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), accept("c1", "a1"));
    let mut chat_only = cfg.clone();
    chat_only.queues[0].channels = vec![Channel::Chat];
    d.reload(secs(3), chat_only);
    let refused = d.try_at(secs(4), escalate("c1", 2));
    assert!(
        matches!(&refused, Err(EngineError::ChannelNotServed { queue, channel: Channel::Voice, interaction }) if queue == "support" && interaction == "c1"),
        "{refused:?}"
    );
    assert_eq!(d.interaction("c1").state, InteractionState::Connected);
    consistent(&d);
}

/// A change under which waiting calls would sit in a queue that no longer serves their channel
/// is refused, naming the new config's field: `queue[i].channels` of that queue.
#[test]
fn a_queue_dropping_the_channel_of_its_waiting_calls_is_refused_at_its_channels() {
    let cfg = one_queue(&[("a1", 1)]);
    let mut d = Driver::new(cfg.clone());
    d.at(secs(1), call("c1", "support"));
    let mut chat_only = cfg.clone();
    chat_only.queues[0].channels = vec![Channel::Chat];
    let problems = d.engine.reconfigure_problems(&chat_only);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "queue[0].channels");
    assert!(
        problems[0]
            .message
            .contains("1 voice interaction(s) wait in queue `support`"),
        "{problems:?}"
    );
    assert!(d.engine.reconfigure(secs(2), chat_only).is_err());
    assert_eq!(d.interaction("c1").state, InteractionState::Waiting);
}

#[test]
fn reloading_an_unchanged_ladder_keeps_a_step_reached_by_skipping() {
    let cfg = skipping_desk();
    let mut d = Driver::new(cfg.clone());
    // No L1 logged in: straight to step 1 (+5).
    let ds = d.at(secs(1), call("c1", "support"));
    assert_eq!(steps_reached(&ds), vec![("c1".into(), 1, secs(1))]);
    d.at(secs(2), login("l1"));
    d.at(secs(3), not_ready("l1", "break"));
    let ds = d.reload(secs(4), cfg.clone());
    assert!(steps_reached(&ds).is_empty(), "{ds:?}");
    let c1 = d.interaction("c1");
    assert_eq!((c1.step, c1.priority), (Some(1), 5));
    // Step 1's own deadline passes without it being entered (or boosted) a second time.
    let later = d.advance(secs(40));
    assert!(steps_reached(&later).is_empty(), "{later:?}");
    assert_eq!(d.interaction("c1").priority, 5);
    consistent(&d);
}

/// A change to a later step of the ladder leaves the steps an interaction already reached as
/// they were, so it keeps the step (here one reached early by skipping): not moved back down,
/// offered to a tier that step no longer allows, and announced and boosted a second time.
#[test]
fn changing_a_later_step_keeps_a_step_reached_by_skipping() {
    let mut cfg = skipping_desk();
    cfg.queues[0].steps.push(step(60, &[1, 2, 3]).boosted(2));
    let mut d = Driver::new(cfg.clone());
    // No L1 logged in: straight to step 1 (+5), which only L2 may take.
    let ds = d.at(secs(1), call("c1", "support"));
    assert_eq!(steps_reached(&ds), vec![("c1".into(), 1, secs(1))]);
    d.at(secs(2), login("l1"));
    assert_eq!(d.interaction("c1").state, InteractionState::Waiting);
    // Only the last step changes (its boost).
    let mut retuned = cfg.clone();
    retuned.queues[0].steps[2].priority_boost = 3;
    let ds = d.reload(secs(4), retuned);
    assert!(offers(&ds).is_empty(), "step 1 does not allow L1: {ds:?}");
    let c1 = d.interaction("c1");
    assert_eq!(
        (c1.state, c1.step, c1.priority),
        (InteractionState::Waiting, Some(1), 5)
    );
    // Step 1's own deadline passes without it being entered a second time; step 2 comes on time.
    let later = d.advance(secs(61));
    assert_eq!(steps_reached(&later), vec![("c1".into(), 2, secs(61))]);
    assert_eq!(d.interaction("c1").priority, 8);
    consistent(&d);
}

#[test]
fn a_changed_ladder_is_rederived_from_the_time_waited() {
    let cfg = skipping_desk();
    let mut d = Driver::new(cfg.clone());
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), login("l1"));
    d.at(secs(3), not_ready("l1", "break"));
    // The same steps at new times: the change says where c1 stands after 3 s of waiting.
    let mut slower = cfg.clone();
    slower.queues[0].steps[1].after_ms = secs(60);
    d.reload(secs(4), slower);
    let c1 = d.interaction("c1");
    assert_eq!((c1.step, c1.priority), (Some(0), 0));
    let later = d.advance(secs(61));
    assert_eq!(steps_reached(&later), vec![("c1".into(), 1, secs(61))]);
    consistent(&d);
}

/// A change that puts a step reached back behind the time waited moves the call back to the
/// earlier step, with its priority, and says so in its history; the step is entered and
/// announced again at its new deadline.
#[test]
fn a_step_moved_later_than_the_time_waited_moves_the_call_back_and_records_it() {
    let cfg = config(
        vec![queue(
            "support",
            vec![step(0, &[1]), step(30, &[2]).boosted(5)],
        )],
        vec![agent("l1", &[("support", 1)])],
    );
    let mut d = Driver::new(cfg.clone());
    d.at(secs(1), call("c1", "support"));
    let reached = d.advance(secs(31));
    assert_eq!(steps_reached(&reached), vec![("c1".into(), 1, secs(31))]);
    assert_eq!(d.interaction("c1").priority, 5);
    let mut slower = cfg.clone();
    slower.queues[0].steps[1].after_ms = secs(60);
    let ds = d.reload(secs(40), slower);
    assert!(ds.is_empty(), "{ds:?}");
    let c1 = d.interaction("c1");
    assert_eq!((c1.step, c1.priority), (Some(0), 0));
    let last = c1.history.last().expect("history");
    assert_eq!(last.at, secs(40));
    assert_eq!(
        last.why,
        Why::StepMovedBack {
            queue: "support".into(),
            step: 0
        }
    );
    let again = d.advance(secs(61));
    assert_eq!(steps_reached(&again), vec![("c1".into(), 1, secs(61))]);
    assert_eq!(d.interaction("c1").priority, 5);
    consistent(&d);
}

#[test]
fn an_overflow_removed_while_the_call_rang_past_its_max_wait_no_longer_applies() {
    let mut q = overflow_to_target(queue("support", vec![step(0, &[1])]), 10, "sip:vm@pbx");
    q.offer_timeout_ms = secs(60);
    let cfg = config(
        vec![q],
        vec![
            agent("a1", &[("support", 1)]),
            agent("a2", &[("support", 1)]),
        ],
    );
    let mut d = Driver::new(cfg.clone());
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "support"));
    // Max wait passes while a1's phone rings: c1 would overflow once back in the queue...
    d.advance(secs(11));
    let mut no_overflow = cfg.clone();
    no_overflow.queues[0].overflow = None;
    no_overflow.queues[0].max_wait_ms = None;
    d.reload(secs(12), no_overflow);
    d.at(secs(13), login("a2"));
    // ... but the queue has no overflow any more: declined, it goes to the free agent.
    let ds = d.at(secs(14), decline("c1", "a1", DeclineReason::Rejected));
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("a2"), "{ds:?}");
    consistent(&d);
}

#[test]
fn an_overflow_still_due_after_a_change_overflows_when_the_offer_fails() {
    let mut q = overflow_to_target(queue("support", vec![step(0, &[1])]), 10, "sip:vm@pbx");
    q.offer_timeout_ms = secs(60);
    let cfg = config(vec![q], vec![agent("a1", &[("support", 1)])]);
    let mut d = Driver::new(cfg.clone());
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "support"));
    d.advance(secs(11));
    // An unrelated change keeps the overflow: still due.
    let mut other = cfg.clone();
    other.queues[0].sla_ms = secs(20);
    d.reload(secs(12), other);
    let ds = d.at(secs(14), decline("c1", "a1", DeclineReason::Rejected));
    assert_eq!(kinds(&ds), vec!["overflow"], "{ds:?}");
    assert_eq!(d.interaction("c1").state, InteractionState::Overflowed);
    consistent(&d);
}

#[test]
fn an_offer_to_an_agent_taken_out_of_the_queue_is_revoked_and_goes_to_another() {
    let cfg = config(
        vec![
            queue("support", vec![step(0, &[1])]),
            queue("other", vec![step(0, &[1])]),
        ],
        vec![
            agent("a1", &[("support", 1)]),
            agent("a2", &[("support", 1)]),
        ],
    );
    let mut d = Driver::new(cfg.clone());
    d.at(0, login("a1"));
    d.at(secs(1), login("a2"));
    d.at(secs(2), call("c1", "support"));
    assert_eq!(d.agent("a1").slots[0].phase, SlotPhase::Offered);
    let mut moved = cfg.clone();
    moved.agents = vec![agent("a1", &[("other", 1)]), agent("a2", &[("support", 1)])];
    let ds = d.reload(secs(3), moved);
    assert_eq!(
        revocations(&ds),
        vec![("c1".into(), "a1".into(), RevokeReason::Reconfigured)]
    );
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("a2"), "{ds:?}");
    assert!(d.agent("a1").slots.is_empty());
    let c1 = d.interaction("c1");
    assert!(c1.history.iter().any(|t| matches!(
        &t.why,
        Why::Revoked { agent, reason: RevokeReason::Reconfigured } if &**agent == "a1"
    )));
    // Its place is kept: it entered the queue at 2 s.
    assert_eq!(c1.entered_queue_at, secs(2));
    consistent(&d);
}

/// An offer a change takes back, with nobody else to take the call: `offer_revoked`, then
/// `queued` (no position: it keeps its place), so the PBX resumes the queue treatment.
#[test]
fn a_call_whose_offer_a_change_takes_back_is_queued_again_when_nobody_takes_it() {
    let cfg = config(
        vec![
            queue("support", vec![step(0, &[1])]),
            queue("other", vec![step(0, &[1])]),
        ],
        vec![agent("a1", &[("support", 1)])],
    );
    let mut d = Driver::new(cfg.clone());
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "support"));
    let mut moved = cfg.clone();
    moved.agents = vec![agent("a1", &[("other", 1)])];
    let ds = d.reload(secs(2), moved);
    assert_eq!(kinds(&ds), vec!["offer_revoked", "queued"], "{ds:?}");
    assert_eq!(
        ds[1].kind,
        tierline::engine::DecisionKind::Queued {
            interaction: "c1".into(),
            queue: "support".into(),
            position: None,
        }
    );
    assert_eq!(d.interaction("c1").state, InteractionState::Waiting);
    consistent(&d);
}

/// An offer a change takes back from a call whose max wait passed while it rang: the call
/// overflows into the next queue and is announced there (`queued` with its position), not
/// queued again in the queue it left as well.
#[test]
fn a_call_taken_back_past_its_max_wait_is_announced_only_where_it_overflows() {
    let mut support = overflow_to_queue(queue("support", vec![step(0, &[1])]), 60, "backup");
    support.offer_timeout_ms = secs(120);
    let cfg = config(
        vec![support, queue("backup", vec![step(0, &[1])])],
        vec![agent("a1", &[("support", 1)])],
    );
    let mut d = Driver::new(cfg.clone());
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "support"));
    d.advance(secs(62));
    assert_eq!(d.interaction("c1").state, InteractionState::Offered);
    let mut moved = cfg.clone();
    moved.agents = vec![agent("a1", &[("backup", 2)])];
    let ds = d.reload(secs(62), moved);
    assert_eq!(
        kinds(&ds),
        vec!["offer_revoked", "overflow", "queued"],
        "{ds:?}"
    );
    assert_eq!(
        ds[2].kind,
        tierline::engine::DecisionKind::Queued {
            interaction: "c1".into(),
            queue: "backup".into(),
            position: Some(1),
        }
    );
    consistent(&d);
}

#[test]
fn an_offer_to_an_agent_still_in_the_queue_keeps_ringing() {
    let cfg = one_queue(&[("a1", 1)]);
    let mut d = Driver::new(cfg.clone());
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "support"));
    let mut retiered = cfg.clone();
    retiered.agents = vec![agent("a1", &[("support", 2)])];
    let ds = d.reload(secs(2), retiered);
    assert!(revocations(&ds).is_empty(), "{ds:?}");
    assert_eq!(d.interaction("c1").state, InteractionState::Offered);
    consistent(&d);
}

/// Lowering `limits.max_history` applies to interactions that already have longer histories:
/// their next transition trims them to the new limit (keeping the arrival entry), and every
/// entry dropped is counted.
#[test]
fn a_lowered_history_limit_trims_longer_histories_at_their_next_transition() {
    let ladder: Vec<_> = (0..10).map(|k| step(k, &[1])).collect();
    let mut cfg = config(vec![queue("support", ladder)], vec![]);
    cfg.limits.max_history = 50;
    let mut d = Driver::new(cfg.clone());
    d.at(0, call("c1", "support"));
    d.advance(secs(9));
    let before = d.interaction("c1");
    assert_eq!(before.history.len(), 10, "{:?}", before.history);
    assert_eq!(before.history_dropped, 0);

    cfg.limits.max_history = 4;
    d.reload(secs(10), cfg);
    d.at(secs(11), abandon("c1"));
    let after = d.interaction("c1");
    assert_eq!(after.history.len(), 4, "{:?}", after.history);
    assert_eq!(after.history_dropped, 7, "10 + 1 entries, 4 kept");
    assert_eq!(
        after.history[0], before.history[0],
        "the arrival entry stays"
    );
    assert_eq!(after.history[3].to, InteractionState::Abandoned);
    consistent(&d);
}

/// What a login set (skills and tiers here) survives a config change that leaves those fields of
/// the agent's roster entry alone, even one that rewrites another field of the same entry; a
/// change to the roster field itself wins.
#[test]
fn a_reload_keeps_login_overrides_of_roster_fields_it_does_not_change() {
    let roster = |address: &str, skills: &[&str]| {
        let mut a = with_skills(agent("a1", &[("support", 1)]), skills);
        a.address = address.to_string();
        a
    };
    let desk = |a1| config(vec![queue("support", vec![step(0, &[1, 2])])], vec![a1]);
    let mut d = Driver::new(desk(roster("sip:a1@old", &["en"])));
    d.at(
        0,
        tierline::engine::Event::AgentLogin {
            agent: "a1".into(),
            address: None,
            tiers: Some([("support".to_string(), 2)].into_iter().collect()),
            skills: Some(vec!["es".into()]),
            capacity: None,
        },
    );
    let skills = |d: &Driver| -> Vec<String> {
        d.agent("a1").skills.iter().map(|s| s.to_string()).collect()
    };
    assert_eq!(skills(&d), ["es"]);

    // The roster entry's address changes; its skills and tiers do not.
    d.reload(secs(1), desk(roster("sip:a1@new", &["en"])));
    let a1 = d.agent("a1");
    assert_eq!(&*a1.address, "sip:a1@new");
    assert_eq!(skills(&d), ["es"], "the login's skills stay");
    assert_eq!(a1.tiers.get("support"), Some(&2), "the login's tier stays");
    let ds = d.at(
        secs(2),
        Arrival::new("c1").queue("support").skills(&["es"]).event(),
    );
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("a1"));

    // Now the roster's skills change: the config wins for that field only.
    d.reload(secs(3), desk(roster("sip:a1@new", &["fr"])));
    assert_eq!(skills(&d), ["fr"]);
    assert_eq!(d.agent("a1").tiers.get("support"), Some(&2));
    consistent(&d);
}

/// `limits.max_agents` bounds the agents the engine holds, roster included, and agents stay
/// once known: a change whose roster adds agents beyond it is refused (saying how many are
/// held), not applied over the limit; one that adds none within it applies.
#[test]
fn a_roster_that_would_hold_more_agents_than_max_agents_is_refused() {
    let mut cfg = one_queue(&[("a1", 1), ("a2", 1)]);
    cfg.limits.max_agents = 3;
    let mut d = Driver::new(cfg.clone());
    // A third agent only through its login: the engine holds 3, its limit.
    d.at(
        0,
        tierline::engine::Event::AgentLogin {
            agent: "x1".into(),
            address: Some("sip:x1@pbx".into()),
            tiers: None,
            skills: None,
            capacity: None,
        },
    );
    // A roster of two new agents fits the limit by itself, but would make the engine hold 5.
    let mut renamed = one_queue(&[("b1", 1), ("b2", 1)]);
    renamed.limits.max_agents = 3;
    let problems = d.engine.reconfigure_problems(&renamed);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("max_agents"), "{problems:?}");
    assert_eq!(problems[0].field, "limits.max_agents");
    let before = d.snapshot(&[]);
    assert!(d.engine.reconfigure(secs(1), renamed.clone()).is_err());
    assert_eq!(d.snapshot(&[]), before, "a refused change changes nothing");
    assert_eq!(d.engine.agents().len(), 3);
    // Raised to fit, it applies.
    renamed.limits.max_agents = 5;
    d.reload(secs(2), renamed);
    assert_eq!(d.engine.agents().len(), 5);
    // A change that adds nobody applies even with the limit lowered below what is held.
    let mut lowered = one_queue(&[("b1", 1)]);
    lowered.limits.max_agents = 2;
    d.reload(secs(3), lowered);
    consistent(&d);
}

/// An offer still ringing when its queue is removed and drained moves with its interaction: it
/// is answered in the queue it was drained to, so the call's wrap-up is that queue's, and the
/// agent's slot names that queue, not one the config no longer has.
#[test]
fn an_offer_drained_with_its_queue_is_answered_and_wrapped_up_in_the_new_queue() {
    let mut old = queue("old", vec![step(0, &[1])]);
    old.drain_to = Some("new".into());
    old.wrap_up_ms = secs(60);
    let mut new = queue("new", vec![step(0, &[1])]);
    new.wrap_up_ms = secs(5);
    let cfg = config(
        vec![old, new.clone()],
        vec![agent("a1", &[("old", 1), ("new", 1)])],
    );
    let mut d = Driver::new(cfg.clone());
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "old"));
    let without_old = config(vec![new], vec![agent("a1", &[("new", 1)])]);
    let ds = d.reload(secs(2), without_old);
    assert!(revocations(&ds).is_empty(), "a1 serves `new`: {ds:?}");
    assert_eq!(d.interaction("c1").queue.as_deref(), Some("new"));
    assert_eq!(&*d.agent("a1").slots[0].queue, "new");
    d.at(secs(3), accept("c1", "a1"));
    d.at(secs(10), end("c1"));
    let slot = &d.agent("a1").slots[0];
    assert_eq!((&*slot.queue, slot.until), ("new", Some(secs(15))));
    d.advance(secs(15));
    assert_eq!(d.interaction("c1").state, InteractionState::Done);
    assert!(d.agent("a1").slots.is_empty());
    consistent(&d);
}

/// A call drained into another queue starts that queue's ladder from the time it has waited:
/// the steps it reaches there are entered and announced (`escalated`, `step_reached` in the
/// history) like any other, and it is never said to have moved back, whatever step it had in
/// the queue that went away.
#[test]
fn a_drained_call_enters_the_steps_of_its_new_queue_it_has_waited_for() {
    let mut old = queue("old", vec![step(0, &[1]), step(5, &[1]), step(8, &[1])]);
    old.drain_to = Some("new".into());
    let new = queue("new", vec![step(0, &[1]), step(10, &[1])]);
    let cfg = config(
        vec![old, new.clone()],
        vec![agent("a1", &[("old", 2), ("new", 2)])],
    );
    let mut d = Driver::new(cfg);
    d.at(secs(1), call("c1", "old"));
    d.advance(secs(12));
    assert_eq!(d.interaction("c1").step, Some(2));
    let without_old = config(vec![new], vec![agent("a1", &[("new", 2)])]);
    let ds = d.reload(secs(12), without_old);
    assert_eq!(steps_reached(&ds), vec![("c1".into(), 1, secs(12))]);
    let c1 = d.interaction("c1");
    assert_eq!((c1.queue.as_deref(), c1.step), (Some("new"), Some(1)));
    let kinds: Vec<&Why> = c1.history.iter().map(|t| &t.why).collect();
    assert!(
        !kinds.iter().any(|w| matches!(w, Why::StepMovedBack { .. })),
        "{kinds:?}"
    );
    assert!(
        matches!(kinds.last(), Some(Why::StepReached { queue, step: 1 }) if &**queue == "new"),
        "{kinds:?}"
    );
    consistent(&d);
}

/// The agents picked for `n` calls, each ended at once so all five are free for the next.
fn random_picks(d: &mut Driver, n: u64) -> Vec<String> {
    (0..n)
        .map(|k| {
            let id = format!("c{k}");
            let t = secs(10 + k);
            let ds = d.at(t, call(&id, "q"));
            let who = offered_to(&ds, &id).unwrap_or_else(|| panic!("{id} not offered: {ds:?}"));
            d.at(t, accept(&id, &who));
            d.at(t, end(&id));
            who
        })
        .collect()
}

#[test]
fn a_new_seed_applied_live_reseeds_the_random_strategy_from_then_on() {
    // Started with seed 7, then changed live to 99: from the change on it draws as a desk that
    // had seed 99 all along (no random pick was made before the change).
    let mut changed = random_desk(7, &["a", "b", "c", "d", "e"]);
    let mut cfg = changed.engine.config().clone();
    cfg.seed = 99;
    cfg.agents = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|id| agent(id, &[("q", 1)]))
        .collect();
    changed
        .engine
        .reconfigure(secs(1), cfg.clone())
        .unwrap_or_else(|e| panic!("refused: {e:?}"));
    let mut always = random_desk(99, &["a", "b", "c", "d", "e"]);
    always
        .engine
        .reconfigure(secs(1), cfg)
        .unwrap_or_else(|e| panic!("refused: {e:?}"));
    let mut unchanged = random_desk(7, &["a", "b", "c", "d", "e"]);
    let after_change = random_picks(&mut changed, 30);
    assert_eq!(after_change, random_picks(&mut always, 30));
    assert_ne!(
        after_change,
        random_picks(&mut unchanged, 30),
        "the old seed's draws would be these"
    );
    consistent(&changed);
}

/// A queue removed together with the queue it drains to: refused, saying how to do it (one change
/// at a time, or another drain target), and nothing changes.
#[test]
fn removing_a_queue_and_its_drain_target_at_once_is_refused_with_the_way_to_do_it() {
    let mut qa = queue("qa", vec![step(0, &[1])]);
    qa.drain_to = Some("qb".into());
    let mut qb = queue("qb", vec![step(0, &[1])]);
    qb.drain_to = Some("qc".into());
    let qc = queue("qc", vec![step(0, &[1])]);
    let mut d = Driver::new(config(vec![qa, qb.clone(), qc.clone()], vec![]));
    d.at(secs(1), call("c1", "qa"));
    let err = d
        .engine
        .reconfigure(secs(2), config(vec![qc.clone()], vec![]))
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(
            "queue `qa` is removed and drains to `qb`, which the new config does not have \
             either, but 1 interaction(s) wait in it: remove them one change at a time (first \
             `qa`, whose interactions move to `qb`, then `qb`)"
        ),
        "{message}"
    );
    assert_eq!(d.interaction("c1").queue.as_deref(), Some("qa"));
    // As it says: first qa, then qb.
    d.reload(secs(3), config(vec![qb, qc.clone()], vec![]));
    d.reload(secs(4), config(vec![qc], vec![]));
    assert_eq!(d.interaction("c1").queue.as_deref(), Some("qc"));
    consistent(&d);
}

/// A live change to a config with no queues is refused (it would remove them all); an engine
/// that has none takes one.
#[test]
fn a_live_change_may_not_remove_every_queue() {
    let mut d = Driver::new(config(vec![queue("q", vec![step(0, &[1])])], vec![]));
    let err = d
        .engine
        .reconfigure(secs(1), config(vec![], vec![]))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the new config has no [[queue]]: it would remove all 1 queue(s)"),
        "{err}"
    );
    assert_eq!(d.engine.config().queues.len(), 1);
    let mut empty = Driver::new(config(vec![], vec![]));
    assert!(empty
        .engine
        .reconfigure(secs(1), config(vec![], vec![]))
        .is_ok());
}

/// `support`: L1 at once; L2 after 10 s, passed over when no L2 is logged in; L2 and L3 after
/// 60 s. Offers ring 20 s. `sales` is another queue, for a change that leaves `support` alone.
fn mid_ladder_skip() -> RoutingConfig {
    let mut ladder = vec![step(0, &[1]), step(10, &[2]), step(60, &[2, 3])];
    ladder[1].skip_if_no_agents = true;
    let mut support = queue("support", ladder);
    support.offer_timeout_ms = secs(20);
    config(
        vec![support, queue("sales", vec![step(0, &[1])])],
        vec![
            agent("l1", &[("support", 1)]),
            agent("l2", &[("support", 2)]),
            agent("s1", &[("sales", 1)]),
        ],
    )
}

/// A call ringing on a step whose last agent left while it rang stays there until the offer
/// comes back (as without a change), whether a live change touches its queue or not, and
/// whether the change re-derives only what it touches or everything: re-deriving everything
/// escalated it at the change, for a change to another queue.
#[test]
fn a_change_elsewhere_leaves_a_call_ringing_on_a_step_left_empty_where_it_is() {
    let cfg = mid_ladder_skip();
    let mut other = cfg.clone();
    other.queues[1].wrap_up_ms = secs(3);
    for whole in [false, true] {
        let mut d = Driver::new(cfg.clone());
        d.at(0, login("l1"));
        d.at(0, login("l2"));
        let ds = d.at(secs(1), call("c1", "support"));
        assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l1"));
        d.advance(secs(11));
        assert_eq!(
            d.interaction("c1").step,
            Some(1),
            "step 1 entered while ringing"
        );
        d.at(secs(12), logout("l2"));
        assert_eq!(d.interaction("c1").step, Some(1), "ringing: not moved on");
        d.advance(secs(13));
        let decided = if whole {
            d.engine.reconfigure_whole(secs(13), other.clone())
        } else {
            d.engine.reconfigure(secs(13), other.clone())
        };
        assert_eq!(
            decided.map_err(|e| e.to_string()),
            Ok(vec![]),
            "whole: {whole}"
        );
        assert_eq!(d.interaction("c1").step, Some(1), "whole: {whole}");
        consistent(&d);
        // The offer expires: back to waiting, it passes over the empty step at once (and waits
        // on step 2, for an L2 or L3).
        let ds = d.advance(secs(21));
        assert_eq!(
            kinds(&ds),
            vec!["offer_revoked", "escalated", "queued"],
            "whole: {whole}: {ds:?}"
        );
        assert_eq!(d.interaction("c1").step, Some(2));
        consistent(&d);
    }
}

/// Two calls whose next steps fall due in the same millisecond fire in the order their timers
/// were made, after a live change as without one: re-deriving a call whose deadline stands
/// keeps its timer. Made anew, every re-derived timer went behind the kept ones (or, re-deriving
/// everything, into slab order), and the later call took the agent the earlier one was due.
#[test]
fn a_live_change_keeps_the_order_of_timers_due_in_the_same_millisecond() {
    let ladder = || vec![step(0, &[1]), step(30, &[1, 2])];
    let cfg = config(
        vec![queue("t", ladder()), queue("u", ladder())],
        vec![agent("x", &[("t", 2), ("u", 2)])],
    );
    let mut touch_t = cfg.clone();
    touch_t.queues[0].wrap_up_ms = secs(3);
    let mut channels = cfg.clone();
    channels.channels[Channel::Email.index()].capacity = 4;
    for (name, change) in [("touching t", touch_t), ("changing a channel", channels)] {
        for whole in [false, true] {
            let mut d = Driver::new(cfg.clone());
            d.at(0, login("x"));
            // `a` takes the first slab slot, `b` the second; `b`'s timer is made first.
            d.at(secs(1), call("b", "t"));
            d.at(secs(1), call("a", "u"));
            let decided = if whole {
                d.engine.reconfigure_whole(secs(5), change.clone())
            } else {
                d.engine.reconfigure(secs(5), change.clone())
            };
            assert!(decided.is_ok(), "{name}");
            let ds = d.advance(secs(31));
            assert_eq!(
                offered_to(&ds, "b").as_deref(),
                Some("x"),
                "{name}, whole: {whole}: b's step fell due first: {ds:?}"
            );
            consistent(&d);
        }
    }
}

/// A call whose max wait passed while it rang, taken back by a change (its agent lost the
/// queue), overflows without an `escalated` for the empty step it rang on, as when its offer
/// ends without a change.
#[test]
fn an_offer_taken_back_by_a_change_when_due_to_overflow_overflows_without_escalating() {
    let mut cfg = mid_ladder_skip();
    cfg.queues[0] = overflow_to_queue(cfg.queues[0].clone(), 30, "sales");
    cfg.queues[0].offer_timeout_ms = secs(40);
    let mut d = Driver::new(cfg.clone());
    d.at(0, login("l1"));
    d.at(0, login("l2"));
    let ds = d.at(secs(1), call("c1", "support"));
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l1"));
    d.at(secs(12), logout("l2"));
    d.advance(secs(31));
    assert_eq!(d.interaction("c1").state, InteractionState::Offered);
    let mut l1_elsewhere = cfg.clone();
    l1_elsewhere.agents[0] = agent("l1", &[]);
    let ds = d.reload(secs(32), l1_elsewhere);
    assert_eq!(
        kinds(&ds),
        vec!["offer_revoked", "overflow", "queued"],
        "{ds:?}"
    );
    assert_eq!(d.interaction("c1").queue.as_deref(), Some("sales"));
    consistent(&d);
}
