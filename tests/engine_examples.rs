//! Readable examples of every routing rule in `docs/ROUTING.md`, one scenario per test, named in
//! the contact centre's words. Each test drives the engine in virtual time through its public API
//! and asserts on the decisions it makes and the state its views show.

mod support;

use tierline::config::{AgentConfig, Channel, QueueConfig, Strategy};
use tierline::engine::{
    Activity, AgentStatus, DecisionKind, DeclineReason, EngineError, Fact, InteractionState, Owner,
    RejectReason, RevokeReason, SlotPhase, Why,
};

use support::*;

/// `support` with the L1 → L1+L2 → L1+L2+L3 ladder at 0/30/60 s and one agent per tier.
fn support_desk() -> Driver {
    Driver::new(config(
        vec![queue("support", support_ladder())],
        vec![
            agent("l1", &[("support", 1)]),
            agent("l2", &[("support", 2)]),
            agent("l3", &[("support", 3)]),
        ],
    ))
}

/// `q` (the `support` queue) with one L1 agent, `l1`, and one L2, `l2`.
fn l1_and_l2(q: QueueConfig) -> Driver {
    Driver::new(config(
        vec![q],
        vec![
            agent("l1", &[("support", 1)]),
            agent("l2", &[("support", 2)]),
        ],
    ))
}

// ---------------------------------------------------------------------------------------------
// Tiers and the escalation ladder
// ---------------------------------------------------------------------------------------------

#[test]
fn an_l1_agent_gets_the_call_at_once() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    let ds = d.at(secs(1), call("c1", "support"));
    assert_eq!(offers(&ds), vec![("c1".into(), "l1".into())]);
    match &offer_of(&ds, "c1").unwrap().kind {
        DecisionKind::Offer {
            address,
            queue,
            expires_at,
            ..
        } => {
            assert_eq!(&**address, "sip:l1@pbx");
            assert_eq!(&**queue, "support");
            assert_eq!(
                *expires_at,
                secs(1) + secs(15),
                "expiry = now + offer_timeout"
            );
        }
        other => panic!("expected an offer, got {other:?}"),
    }
    let c1 = d.interaction("c1");
    assert_eq!(c1.state, InteractionState::Offered);
    assert_eq!(c1.owner, Owner::Agent("l1".into()));
    assert_eq!(d.agent("l1").activity, Activity::Offered);
}

#[test]
fn an_l2_agent_gets_the_call_after_30_seconds() {
    let mut d = support_desk();
    d.at(0, login("l2"));
    let ds = d.at(secs(5), call("c1", "support"));
    assert_eq!(
        kinds(&ds),
        vec!["queued"],
        "an L2 agent is not eligible at step 0"
    );
    assert!(d.advance(secs(35) - 1).is_empty(), "nothing before 30 s");
    let ds = d.advance(secs(35));
    assert_eq!(kinds(&ds), vec!["escalated", "offer"]);
    assert_eq!(steps_reached(&ds), vec![("c1".into(), 1, secs(35))]);
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l2"));
    assert!(ds.iter().all(|x| x.at == secs(35)));
    assert_eq!(d.interaction("c1").step, Some(1));
}

#[test]
fn the_ladder_step_fires_exactly_at_its_deadline() {
    let mut d = support_desk();
    d.at(secs(2), call("c1", "support"));
    assert_eq!(d.engine.next_deadline(), Some(secs(32)));
    // One big clock jump: each step still fires at its own deadline, in order.
    let ds = d.advance(secs(500));
    assert_eq!(
        steps_reached(&ds),
        vec![("c1".into(), 1, secs(32)), ("c1".into(), 2, secs(62))]
    );
    assert_eq!(d.interaction("c1").step, Some(2));
    assert_eq!(d.engine.next_deadline(), None, "the ladder is exhausted");
    // The history records each step as waiting → waiting.
    let reached: Vec<_> = d
        .interaction("c1")
        .history
        .iter()
        .filter_map(|t| match &t.why {
            Why::StepReached { queue, step } => {
                assert_eq!(t.from, Some(InteractionState::Waiting));
                assert_eq!(t.to, InteractionState::Waiting);
                Some((queue.to_string(), *step, t.at))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        reached,
        vec![
            ("support".into(), 1, secs(32)),
            ("support".into(), 2, secs(62))
        ]
    );
}

#[test]
fn a_step_reached_while_ringing_applies_when_the_call_comes_back() {
    let mut q = queue("support", support_ladder());
    q.offer_timeout_ms = secs(40);
    let mut d = l1_and_l2(q);
    d.at(0, login("l1"));
    d.at(0, login("l2"));
    d.at(0, call("c1", "support"));
    // Ringing l1 until 40 s; step 1 (L1+L2) is reached at 30 s while ringing.
    let ds = d.advance(secs(30));
    assert_eq!(steps_reached(&ds), vec![("c1".into(), 1, secs(30))]);
    assert!(offers(&ds).is_empty(), "the call is ringing, not waiting");
    let ds = d.advance(secs(40));
    assert_eq!(
        revocations(&ds),
        vec![("c1".into(), "l1".into(), RevokeReason::Expired)]
    );
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l2"));
}

#[test]
fn priority_boost_is_applied_once() {
    let mut ladder = support_ladder();
    ladder[0].priority_boost = 2;
    ladder[2].priority_boost = 5;
    let mut d = Driver::new(config(
        vec![queue("support", ladder)],
        vec![agent("l3", &[("support", 3)])],
    ));
    d.at(0, Arrival::new("c1").queue("support").priority(1).event());
    assert_eq!(
        d.interaction("c1").priority,
        3,
        "step 0's boost applies on arrival"
    );
    d.at(secs(50), login("l3"));
    let ds = d.advance(secs(60));
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l3"));
    assert_eq!(d.interaction("c1").priority, 8);
    // Back in the queue after a decline and past every deadline: still boosted only once.
    d.at(secs(61), decline("c1", "l3", DeclineReason::Rejected));
    d.advance(secs(300));
    assert_eq!(d.interaction("c1").priority, 8);
}

#[test]
fn skip_if_no_agents_moves_on_when_no_l1_is_logged_in() {
    let mut ladder = vec![step(0, &[1]), step(30, &[2])];
    ladder[0].skip_if_no_agents = true;
    let mut d = l1_and_l2(queue("support", ladder));
    d.at(0, login("l2"));
    let ds = d.at(secs(4), call("c1", "support"));
    assert_eq!(steps_reached(&ds), vec![("c1".into(), 1, secs(4))]);
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l2"));
    assert_eq!(d.interaction("c1").step, Some(1));
}

/// An L1 who signs off during a call keeps it (and its wrap-up) and counts as busy, then
/// wrap-up, in the queue's census until they end, as one on a break does; but it is not logged
/// in, so a step of L1s with `skip_if_no_agents` is passed over for the next caller.
#[test]
fn an_agent_signed_off_during_a_call_is_busy_until_it_ends_but_not_logged_in() {
    let mut ladder = vec![step(0, &[1]), step(30, &[2])];
    ladder[0].skip_if_no_agents = true;
    let mut support = queue("support", ladder);
    support.wrap_up_ms = secs(10);
    let mut d = l1_and_l2(support);
    d.at(0, login("l1"));
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), accept("c1", "l1"));
    d.at(secs(3), logout("l1"));
    let l1 = d.agent("l1");
    assert_eq!(
        (l1.status, l1.activity),
        (AgentStatus::Offline, Activity::Busy)
    );
    let busy = |d: &Driver, activity| {
        d.engine
            .queue_load("support")
            .map(|l| l.agents.count(1, activity))
    };
    assert_eq!(busy(&d, Activity::Busy), Some(1));
    assert_eq!(busy(&d, Activity::Offline), Some(0));
    d.at(secs(4), login("l2"));
    let ds = d.at(secs(5), call("c2", "support"));
    assert_eq!(
        steps_reached(&ds),
        vec![("c2".into(), 1, secs(5))],
        "no L1 is logged in"
    );
    assert_eq!(offered_to(&ds, "c2").as_deref(), Some("l2"));
    d.at(secs(6), end("c1"));
    assert_eq!(d.agent("l1").activity, Activity::WrapUp);
    assert_eq!(busy(&d, Activity::WrapUp), Some(1));
    d.advance(secs(16));
    let l1 = d.agent("l1");
    assert_eq!(
        (l1.status, l1.activity),
        (AgentStatus::Offline, Activity::Offline)
    );
    assert_eq!(busy(&d, Activity::Offline), Some(1));
    d.engine.check_consistency().unwrap();
}

#[test]
fn skip_if_no_agents_waits_for_a_logged_in_l1_who_is_not_ready() {
    let mut ladder = vec![step(0, &[1]), step(30, &[2])];
    ladder[0].skip_if_no_agents = true;
    let mut d = l1_and_l2(queue("support", ladder));
    d.at(0, login("l1"));
    d.at(0, not_ready("l1", "lunch"));
    d.at(0, login("l2"));
    let ds = d.at(secs(4), call("c1", "support"));
    assert_eq!(
        kinds(&ds),
        vec!["queued"],
        "a not_ready L1 is still logged in"
    );
    assert_eq!(d.interaction("c1").step, Some(0));
    let ds = d.advance(secs(34));
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l2"));
}

// ---------------------------------------------------------------------------------------------
// Routing rules, rejections, schedules, overflow
// ---------------------------------------------------------------------------------------------

#[test]
fn a_complaint_rule_routes_to_complaints_with_priority() {
    let mut cfg = config(
        vec![
            queue("support", support_ladder()),
            queue("complaints", vec![step(0, &[3])]),
        ],
        vec![agent("l3", &[("complaints", 3)])],
    );
    cfg.rules = vec![
        rule(&[("category", "complaint")], "complaints", Some(10)),
        rule(&[("channel", "voice")], "support", None),
    ];
    let mut d = Driver::new(cfg);
    let ds = d.at(0, Arrival::new("c1").attr("category", "complaint").event());
    assert_eq!(
        kinds(&ds),
        vec!["queued"],
        "nobody for complaints is logged in yet"
    );
    let c1 = d.interaction("c1");
    assert_eq!(c1.queue.as_deref(), Some("complaints"));
    assert_eq!(c1.priority, 10);
    assert_eq!(
        c1.history[0].why,
        Why::Arrived {
            queue: "complaints".into(),
            rule: Some(0)
        }
    );
    // The second rule catches the other voice calls; the arrival's own priority beats a rule's.
    d.at(1, Arrival::new("c2").attr("category", "billing").event());
    assert_eq!(d.interaction("c2").queue.as_deref(), Some("support"));
    d.at(
        2,
        Arrival::new("c3")
            .attr("category", "complaint")
            .priority(3)
            .event(),
    );
    assert_eq!(d.interaction("c3").priority, 3);
    // Naming the queue skips the rules.
    d.at(
        3,
        Arrival::new("c4")
            .queue("support")
            .attr("category", "complaint")
            .event(),
    );
    assert_eq!(d.interaction("c4").queue.as_deref(), Some("support"));
    let ds = d.at(4, login("l3"));
    assert_eq!(
        offers(&ds),
        vec![("c1".into(), "l3".into())],
        "priority 10 goes first"
    );
}

#[test]
fn no_route_is_rejected() {
    let mut cfg = config(vec![queue("support", support_ladder())], vec![]);
    cfg.rules = vec![rule(&[("category", "complaint")], "support", None)];
    let mut d = Driver::new(cfg);
    let ds = d.at(0, Arrival::new("c1").attr("category", "sales").event());
    assert_eq!(ds.len(), 1);
    assert_eq!(
        ds[0].kind,
        DecisionKind::Rejected {
            interaction: "c1".into(),
            reason: RejectReason::NoRoute,
            target: None
        }
    );
    let c1 = d.interaction("c1");
    assert_eq!(c1.state, InteractionState::Rejected);
    assert_eq!(c1.owner, Owner::None);
    assert_eq!(d.engine.counts().rejected, 1);
    assert_eq!(d.engine.counts().arrived, 1);
}

/// A rule takes only the channels its queue serves: a chat complaint passes over the voice-only
/// complaints rule to the next rule met, then to the default queue, else it is rejected
/// `no_route`; a voice complaint is the complaints rule's.
#[test]
fn a_rule_passes_over_a_channel_its_queue_does_not_serve() {
    let mut cfg = config(
        vec![
            queue("complaints", support_ladder()),
            with_channels(queue("web", support_ladder()), &[Channel::Chat]),
            with_channels(
                queue("general", support_ladder()),
                &[Channel::Voice, Channel::Chat],
            ),
        ],
        vec![],
    );
    cfg.rules = vec![
        rule(&[("category", "complaint")], "complaints", Some(9)),
        rule(&[("lang", "de")], "web", Some(3)),
    ];
    let mut d = Driver::new(cfg.clone());
    let complaint = |id: &str, channel: Channel| {
        Arrival::new(id)
            .channel(channel)
            .attr("category", "complaint")
            .attr("lang", "de")
            .event()
    };
    d.at(0, complaint("v1", Channel::Voice));
    d.at(0, complaint("ch1", Channel::Chat));
    assert_eq!(d.waiting("complaints"), vec!["v1"]);
    assert_eq!(d.waiting("web"), vec!["ch1"]);
    assert_eq!(d.interaction("ch1").priority, 3, "the rule that took it");
    // No later rule met: the default queue.
    cfg.rules.truncate(1);
    cfg.default_queue = Some("general".into());
    let mut d = Driver::new(cfg.clone());
    d.at(0, complaint("ch2", Channel::Chat));
    assert_eq!(d.waiting("general"), vec!["ch2"]);
    // Nor a default queue: rejected, not refused.
    cfg.default_queue = None;
    let mut d = Driver::new(cfg);
    let ds = d.at(0, complaint("ch3", Channel::Chat));
    assert_eq!(
        ds[0].kind,
        DecisionKind::Rejected {
            interaction: "ch3".into(),
            reason: RejectReason::NoRoute,
            target: None
        }
    );
}

#[test]
fn the_default_queue_takes_what_no_rule_matches() {
    let mut cfg = config(vec![queue("support", support_ladder())], vec![]);
    cfg.rules = vec![rule(&[("category", "complaint")], "support", Some(9))];
    cfg.default_queue = Some("support".into());
    let mut d = Driver::new(cfg);
    let ds = d.at(0, Arrival::new("c1").attr("category", "sales").event());
    assert_eq!(kinds(&ds), vec!["queued"]);
    let c1 = d.interaction("c1");
    assert_eq!(c1.queue.as_deref(), Some("support"));
    assert_eq!(c1.priority, 0);
}

#[test]
fn a_closed_queue_rejects_with_its_target() {
    let mut closed = queue("support", support_ladder());
    closed.schedule = Some(never_open());
    closed.closed_target = Some("sip:voicemail@pbx".into());
    let mut open = queue("sales", support_ladder());
    open.schedule = Some(always_open());
    let mut d = Driver::new(config(vec![closed, open], vec![]));
    let ds = d.at(secs(1), call("c1", "support"));
    assert_eq!(
        ds.iter().map(|x| x.kind.clone()).collect::<Vec<_>>(),
        vec![DecisionKind::Rejected {
            interaction: "c1".into(),
            reason: RejectReason::Closed,
            target: Some("sip:voicemail@pbx".into())
        }]
    );
    assert_eq!(d.interaction("c1").state, InteractionState::Rejected);
    assert!(!d.engine.queue("support").unwrap().open);
    let ds = d.at(secs(2), call("c2", "sales"));
    assert_eq!(kinds(&ds), vec!["queued"]);
}

#[test]
fn queue_full_rejects_the_arrival() {
    let mut q = queue("support", support_ladder());
    q.max_waiting = Some(2);
    let mut d = Driver::new(config(vec![q], vec![agent("l1", &[("support", 1)])]));
    d.at(0, call("c1", "support"));
    d.at(1, call("c2", "support"));
    let ds = d.at(2, call("c3", "support"));
    assert_eq!(
        ds.iter().map(|x| x.kind.clone()).collect::<Vec<_>>(),
        vec![DecisionKind::Rejected {
            interaction: "c3".into(),
            reason: RejectReason::QueueFull,
            target: None
        }]
    );
    assert_eq!(d.waiting("support"), vec!["c1", "c2"]);
    assert_eq!(d.engine.counts().rejected, 1);
}

#[test]
fn a_full_queue_still_takes_an_arrival_an_agent_can_answer_at_once() {
    let mut q = queue("support", support_ladder());
    q.max_waiting = Some(1);
    let mut d = Driver::new(config(vec![q], vec![agent("l1", &[("support", 1)])]));
    d.at(
        0,
        Arrival::new("c1").queue("support").skills(&["zh"]).event(),
    );
    d.at(1, login("l1"));
    let ds = d.at(2, call("c2", "support"));
    assert_eq!(offered_to(&ds, "c2").as_deref(), Some("l1"));
}

#[test]
fn max_wait_overflows_to_the_target() {
    let q = overflow_to_target(
        queue("support", vec![step(0, &[1])]),
        45,
        "sip:voicemail@pbx",
    );
    let mut d = Driver::new(config(vec![q], vec![]));
    d.at(secs(1), call("c1", "support"));
    assert_eq!(d.engine.next_deadline(), Some(secs(46)));
    assert!(d.advance(secs(46) - 1).is_empty());
    let ds = d.advance(secs(100));
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].at, secs(46));
    assert_eq!(
        ds[0].kind,
        DecisionKind::Overflow {
            interaction: "c1".into(),
            queue: None,
            target: Some("sip:voicemail@pbx".into())
        }
    );
    let c1 = d.interaction("c1");
    assert_eq!(c1.state, InteractionState::Overflowed);
    assert_eq!(c1.owner, Owner::None);
    assert!(d.waiting("support").is_empty());
    assert_eq!(d.engine.counts().overflowed, 1);
}

/// `max_wait_s = 0`: "if nobody is free, straight to the target". A call nobody free can take
/// overflows in the instant it arrives, told `overflow` alone: it was announced `queued` first,
/// and the PBX started the queue's music only to be told to move the call in the same
/// millisecond. One an agent can take is offered as usual; into another queue, it is announced
/// there.
#[test]
fn with_max_wait_zero_a_call_nobody_can_take_overflows_at_once_unannounced() {
    let q = overflow_to_target(
        queue("support", vec![step(0, &[1])]),
        0,
        "sip:voicemail@pbx",
    );
    let mut d = Driver::new(config(vec![q], vec![agent("a", &[("support", 1)])]));
    d.at(0, login("a"));
    let ds = d.at(secs(1), call("c1", "support"));
    assert_eq!(offers(&ds), vec![("c1".into(), "a".into())]);
    let ds = d.at(secs(2), call("c2", "support"));
    assert_eq!(
        ds.iter().map(|d| d.kind.clone()).collect::<Vec<_>>(),
        vec![DecisionKind::Overflow {
            interaction: "c2".into(),
            queue: None,
            target: Some("sip:voicemail@pbx".into())
        }]
    );
    assert_eq!(d.interaction("c2").state, InteractionState::Overflowed);
    assert_eq!(
        d.engine.next_deadline(),
        Some(secs(16)),
        "only c1's offer expiry"
    );
    assert!(d.advance(secs(2)).is_empty());

    let front = overflow_to_queue(queue("front", vec![step(0, &[1])]), 0, "back");
    let back = queue("back", vec![step(0, &[1])]);
    let mut d = Driver::new(config(vec![front, back], vec![]));
    let ds = d.at(secs(1), call("c1", "front"));
    assert_eq!(kinds(&ds), vec!["overflow", "queued"]);
    assert_eq!(
        ds[1].kind,
        DecisionKind::Queued {
            interaction: "c1".into(),
            queue: "back".into(),
            position: Some(1)
        }
    );
    assert_eq!(d.waiting("back"), vec!["c1"]);
}

#[test]
fn overflow_to_a_queue_keeps_arrival_time_and_history() {
    let support = overflow_to_queue(queue("support", vec![step(0, &[1])]), 45, "backup");
    let mut backup = queue("backup", vec![step(0, &[1])]);
    backup.max_waiting = Some(1);
    let mut d = Driver::new(config(
        vec![support, backup],
        vec![agent("b1", &[("backup", 1)])],
    ));
    d.at(0, call("x", "backup"));
    d.at(secs(1), call("c1", "support"));
    let ds = d.advance(secs(46));
    assert_eq!(
        ds[0].kind,
        DecisionKind::Overflow {
            interaction: "c1".into(),
            queue: Some("backup".into()),
            target: None
        }
    );
    assert_eq!(ds[0].at, secs(46));
    let c1 = d.interaction("c1");
    assert_eq!(
        c1.state,
        InteractionState::Waiting,
        "backup's max_waiting does not refuse an overflow"
    );
    assert_eq!(c1.owner, Owner::Queue("backup".into()));
    assert_eq!(c1.queue.as_deref(), Some("backup"));
    assert_eq!(c1.arrived_at, secs(1));
    assert_eq!(c1.entered_queue_at, secs(46));
    assert_eq!(c1.step, Some(0));
    assert_eq!(
        c1.history[0].why,
        Why::Arrived {
            queue: "support".into(),
            rule: None
        }
    );
    assert!(c1.history.iter().any(|t| t.at == secs(46)
        && t.why
            == Why::Overflow {
                queue: Some("backup".into()),
                target: None
            }));
    assert_eq!(d.waiting("backup"), vec!["x", "c1"]);
    let ds = d.at(secs(50), login("b1"));
    assert_eq!(
        offered_to(&ds, "x").as_deref(),
        Some("b1"),
        "x entered backup first"
    );
}

/// A short abandon is judged from the arrival, not from the entry into the queue the
/// customer left: one who waited 45 s in support and hung up 1 s after the overflow to backup
/// abandoned after a real wait.
#[test]
fn an_abandon_soon_after_an_overflow_is_not_a_short_abandon() {
    let support = overflow_to_queue(queue("support", vec![step(0, &[1])]), 45, "backup");
    let backup = queue("backup", vec![step(0, &[1])]);
    assert_eq!(backup.short_abandon_ms, secs(5));
    let mut d = Driver::new(config(vec![support, backup], vec![]));
    d.engine.set_record_facts(true);
    d.at(0, call("quick", "support"));
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), abandon("quick"));
    d.advance(secs(46));
    assert_eq!(d.interaction("c1").entered_queue_at, secs(46));
    d.at(secs(47), abandon("c1"));
    let abandons: Vec<(String, String, u64, bool)> = d
        .engine
        .take_facts()
        .into_iter()
        .filter_map(|f| match f {
            Fact::Abandoned {
                interaction,
                queue,
                wait_ms,
                short,
                ..
            } => Some((interaction.to_string(), queue.to_string(), wait_ms, short)),
            _ => None,
        })
        .collect();
    assert_eq!(
        abandons,
        vec![
            ("quick".to_string(), "support".to_string(), secs(2), true),
            // The wait in backup is 1 s (its wait histogram's sample); not short.
            ("c1".to_string(), "backup".to_string(), secs(1), false),
        ]
    );
}

#[test]
fn an_offered_call_overflows_as_soon_as_it_comes_back() {
    let mut q = overflow_to_target(queue("support", vec![step(0, &[1])]), 20, "sip:vm@pbx");
    q.offer_timeout_ms = secs(60);
    let mut d = Driver::new(config(vec![q], vec![agent("l1", &[("support", 1)])]));
    d.at(secs(10), call("c1", "support"));
    let ds = d.at(secs(10), login("l1"));
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l1"));
    // Ringing at 30 s (max wait): it stays with l1.
    let ds = d.advance(secs(30));
    assert!(ds.iter().all(|x| x.kind.type_name() != "overflow"));
    assert_eq!(d.interaction("c1").state, InteractionState::Offered);
    let ds = d.at(secs(22), decline("c1", "l1", DeclineReason::Busy));
    assert_eq!(
        ds.iter().map(|x| x.kind.clone()).collect::<Vec<_>>(),
        vec![DecisionKind::Overflow {
            interaction: "c1".into(),
            queue: None,
            target: Some("sip:vm@pbx".into())
        }]
    );
    assert_eq!(d.interaction("c1").state, InteractionState::Overflowed);
}

#[test]
fn a_call_overdue_for_overflow_leaves_without_climbing_the_ladder_when_its_offer_fails() {
    // L1 only, passed over when no L1 is logged in; max wait 20 s, then voicemail.
    let mut ladder = vec![step(0, &[1]), step(60, &[1, 2])];
    ladder[0].skip_if_no_agents = true;
    let mut q = overflow_to_target(queue("support", ladder), 20, "sip:vm@pbx");
    q.offer_timeout_ms = secs(60);
    let mut d = Driver::new(config(vec![q], vec![agent("l1", &[("support", 1)])]));
    d.at(0, login("l1"));
    let ds = d.at(secs(1), call("c1", "support"));
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l1"));
    // Max wait passes while it rings: it stays with l1.
    assert!(kinds(&d.advance(secs(25))).is_empty());
    // l1 logs out: the offer is revoked and the call is back on a step with no L1 logged in.
    // It is overdue, so it overflows at once; it does not first move on to the next step.
    let ds = d.at(secs(26), logout("l1"));
    assert!(steps_reached(&ds).is_empty(), "{ds:?}");
    assert!(
        ds.iter().any(|x| x.kind
            == DecisionKind::Overflow {
                interaction: "c1".into(),
                queue: None,
                target: Some("sip:vm@pbx".into())
            }),
        "{ds:?}"
    );
    let c1 = d.interaction("c1");
    assert_eq!(c1.state, InteractionState::Overflowed);
    let last: Vec<_> = c1.history.iter().rev().take(2).map(|t| t.to).collect();
    assert_eq!(
        last,
        vec![InteractionState::Overflowed, InteractionState::Waiting],
        "{:?}",
        c1.history
    );
    d.engine.check_consistency().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Channels and capacity
// ---------------------------------------------------------------------------------------------

fn mixed_desk(strategy: Strategy) -> Driver {
    Driver::new(config(
        vec![with_strategy(
            with_channels(
                queue("web", vec![step(0, &[1])]),
                &[Channel::Voice, Channel::Chat],
            ),
            strategy,
        )],
        vec![agent("a", &[("web", 1)]), agent("b", &[("web", 1)])],
    ))
}

#[test]
fn a_chat_agent_takes_three_chats_but_no_call() {
    let mut d = mixed_desk(Strategy::LongestIdle);
    d.at(0, login("a"));
    for (t, id) in ["ch1", "ch2", "ch3"].iter().enumerate() {
        let ds = d.at(secs(t as u64 + 1), chat(id, "web"));
        assert_eq!(offered_to(&ds, id).as_deref(), Some("a"));
    }
    assert_eq!(d.agent("a").load.get(&Channel::Chat).copied(), Some(3));
    let ds = d.at(secs(5), chat("ch4", "web"));
    assert_eq!(kinds(&ds), vec!["queued"], "chat capacity is 3");
    let ds = d.at(secs(6), call("v1", "web"));
    assert_eq!(
        kinds(&ds),
        vec!["queued"],
        "a call needs an agent holding nothing"
    );
    // One chat done (wrap-up 10 s): the waiting chat takes the slot, never the call.
    for id in ["ch1", "ch2", "ch3"] {
        d.at(secs(7), accept(id, "a"));
    }
    d.at(secs(8), end("ch1"));
    let ds = d.advance(secs(18));
    assert_eq!(offers(&ds), vec![("ch4".into(), "a".into())]);
    assert_eq!(d.interaction("v1").state, InteractionState::Waiting);
}

#[test]
fn a_voice_call_blocks_other_offers() {
    let mut d = mixed_desk(Strategy::LongestIdle);
    d.at(0, login("a"));
    d.at(secs(1), call("v1", "web"));
    let ds = d.at(secs(2), chat("ch1", "web"));
    assert_eq!(kinds(&ds), vec!["queued"], "ringing with a call");
    d.at(secs(3), accept("v1", "a"));
    assert_eq!(
        d.interaction("ch1").state,
        InteractionState::Waiting,
        "on a call"
    );
    d.at(secs(60), end("v1"));
    assert_eq!(d.agent("a").activity, Activity::WrapUp);
    assert_eq!(
        d.interaction("ch1").state,
        InteractionState::Waiting,
        "in wrap-up"
    );
    let ds = d.advance(secs(70));
    assert_eq!(offers(&ds), vec![("ch1".into(), "a".into())]);
    assert_eq!(ds[0].at, secs(70));
}

#[test]
fn fewer_active_chats_are_preferred() {
    let mut d = mixed_desk(Strategy::LongestIdle);
    d.at(0, login("b"));
    d.at(secs(1), login("a"));
    let ds = d.at(secs(2), chat("ch1", "web"));
    assert_eq!(offered_to(&ds, "ch1").as_deref(), Some("b"), "longest idle");
    let ds = d.at(secs(3), chat("ch2", "web"));
    assert_eq!(
        offered_to(&ds, "ch2").as_deref(),
        Some("a"),
        "fewer active chats"
    );
    let ds = d.at(secs(4), chat("ch3", "web"));
    assert_eq!(
        offered_to(&ds, "ch3").as_deref(),
        Some("b"),
        "tie on load: longest idle"
    );
}

#[test]
fn a_chat_agent_with_a_capacity_override_takes_only_that_many() {
    let mut d = Driver::new(config(
        vec![with_channels(
            queue("web", vec![step(0, &[1])]),
            &[Channel::Chat],
        )],
        vec![with_capacity(agent("a", &[("web", 1)]), Channel::Chat, 1)],
    ));
    d.at(0, login("a"));
    d.at(1, chat("ch1", "web"));
    let ds = d.at(2, chat("ch2", "web"));
    assert_eq!(kinds(&ds), vec!["queued"]);
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn strategy_desk(strategy: Strategy, agents: &[(&str, u8)]) -> Driver {
    let mut q = with_strategy(queue("q", vec![step(0, &[1, 2, 3])]), strategy);
    q.wrap_up_ms = 0;
    Driver::new(config(
        vec![q],
        agents
            .iter()
            .map(|(id, t)| agent(id, &[("q", *t)]))
            .collect(),
    ))
}

/// Offer, accept, end with no wrap-up: the agent is free again at `t`.
fn handle_call(d: &mut Driver, t: u64, id: &str) -> String {
    let ds = d.at(t, call(id, "q"));
    let who = offered_to(&ds, id).unwrap_or_else(|| panic!("{id} was not offered: {ds:?}"));
    d.at(t, accept(id, &who));
    d.at(t, end(id));
    who
}

#[test]
fn longest_idle_offers_the_agent_free_the_longest() {
    let mut d = strategy_desk(Strategy::LongestIdle, &[("a", 1), ("b", 1), ("c", 1)]);
    d.at(secs(2), login("a"));
    d.at(secs(2), login("b"));
    d.at(secs(3), login("c"));
    assert_eq!(d.agent("b").idle_since, secs(2));
    assert_eq!(
        handle_call(&mut d, secs(10), "c1"),
        "a",
        "a and b tie at 2 s: by id"
    );
    assert_eq!(
        d.agent("a").idle_since,
        secs(10),
        "free again after the call"
    );
    assert_eq!(handle_call(&mut d, secs(11), "c2"), "b");
    assert_eq!(handle_call(&mut d, secs(12), "c3"), "c");
    assert_eq!(handle_call(&mut d, secs(13), "c4"), "a");
}

/// Longest idle counts from when the agent last became free; a decline is not that.
#[test]
fn a_decline_does_not_reset_the_agents_idle_time() {
    let mut q = queue("support", vec![step(0, &[1])]);
    q.reject_delay_ms = secs(2);
    let mut d = Driver::new(config(
        vec![q],
        vec![agent("a", &[("support", 1)]), agent("b", &[("support", 1)])],
    ));
    d.at(0, login("a"));
    d.at(secs(5), login("b"));
    let ds = d.at(secs(10), call("c1", "support"));
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("a"));
    let ds = d.at(secs(11), decline("c1", "a", DeclineReason::Rejected));
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("b"));
    // The caller hangs up while b's phone rings: b is free again, as idle as before.
    d.at(secs(12), abandon("c1"));
    assert_eq!(
        d.agent("a").idle_since,
        0,
        "a declined, it did not become free"
    );
    assert_eq!(d.agent("b").idle_since, secs(5));
    // a's back-off is over: a (free since 0) has been idle longer than b (free since 5 s).
    let ds = d.at(secs(20), call("c2", "support"));
    assert_eq!(offered_to(&ds, "c2").as_deref(), Some("a"));
}

#[test]
fn round_robin_rotates_after_the_last_agent_offered() {
    let mut d = strategy_desk(Strategy::RoundRobin, &[("a", 1), ("b", 1), ("c", 1)]);
    d.at(0, login("c"));
    d.at(0, login("b"));
    d.at(0, login("a"));
    assert_eq!(
        handle_call(&mut d, secs(1), "c1"),
        "a",
        "nobody offered yet: smallest id"
    );
    assert_eq!(handle_call(&mut d, secs(2), "c2"), "b");
    // c is busy: the rotation skips it and wraps.
    d.at(secs(3), call("x", "q"));
    d.at(secs(3), accept("x", "c"));
    assert_eq!(handle_call(&mut d, secs(4), "c3"), "a");
    assert_eq!(handle_call(&mut d, secs(5), "c4"), "b");
}

#[test]
fn fewest_interactions_prefers_the_agent_with_fewer_accepted_calls() {
    let mut d = strategy_desk(Strategy::FewestInteractions, &[("a", 1), ("b", 1)]);
    d.at(0, login("a"));
    assert_eq!(handle_call(&mut d, secs(5), "c1"), "a");
    d.at(secs(10), login("b"));
    // a has been idle since 5 s, b since 10 s, but a has accepted one call and b none.
    assert_eq!(handle_call(&mut d, secs(20), "c2"), "b");
    // Now both have one: longest idle (a since 5 s, b since 20 s).
    assert_eq!(handle_call(&mut d, secs(30), "c3"), "a");
    // A fresh login resets the count.
    d.at(secs(40), logout("a"));
    d.at(secs(41), login("a"));
    assert_eq!(d.agent("a").accepted_since_login, 0);
    assert_eq!(handle_call(&mut d, secs(50), "c4"), "a");
}

#[test]
fn fewest_interactions_breaks_a_tie_by_longest_idle_not_by_id() {
    let mut d = strategy_desk(Strategy::FewestInteractions, &[("a", 1), ("b", 1)]);
    d.at(0, login("b"));
    d.at(secs(5), login("a"));
    // Neither has accepted a call yet: b has been free longer, though a comes first by id.
    assert_eq!(handle_call(&mut d, secs(10), "c1"), "b");
}

#[test]
fn tier_order_prefers_the_lowest_tier_even_after_the_ladder_widened() {
    let mut q = with_strategy(
        queue("q", vec![step(0, &[1]), step(30, &[1, 2, 3])]),
        Strategy::TierOrder,
    );
    q.wrap_up_ms = 0;
    let mut d = Driver::new(config(
        vec![q],
        vec![
            agent("l1", &[("q", 1)]),
            agent("l2", &[("q", 2)]),
            agent("l3", &[("q", 3)]),
        ],
    ));
    d.at(0, login("l3"));
    d.at(secs(5), login("l2"));
    d.at(secs(6), login("l1"));
    d.at(secs(6), call("busy", "q"));
    d.at(secs(6), accept("busy", "l1"));
    d.at(secs(10), call("c1", "q"));
    let ds = d.advance(secs(40));
    assert_eq!(
        offered_to(&ds, "c1").as_deref(),
        Some("l2"),
        "l3 has been idle longer, but tier 2 comes first"
    );
}

#[test]
fn random_strategy_is_deterministic_for_a_seed() {
    let script = |seed: u64| {
        let mut d = random_desk(seed, &["a", "b", "c", "d", "e"]);
        let mut picked = Vec::new();
        for n in 0..8 {
            picked.push(handle_call(&mut d, secs(n + 1), &format!("c{n}")));
        }
        (to_json_lines(&d.log), picked)
    };
    let (first, _) = script(7);
    let (again, _) = script(7);
    assert_eq!(first, again, "same seed, same decisions");
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..10 {
        seen.extend(script(seed).1);
    }
    assert!(seen.len() >= 3, "random spreads calls, saw only {seen:?}");
}

/// Pearson's chi-square statistic of `counts` against a uniform spread over `agents`, and how
/// many picks fell outside them.
fn chi_square(counts: &std::collections::BTreeMap<String, u32>, agents: &[&str]) -> (f64, u32) {
    let n: u32 = counts.values().sum();
    let expected = f64::from(n) / agents.len() as f64;
    let chi2 = agents
        .iter()
        .map(|a| {
            let observed = f64::from(counts.get(*a).copied().unwrap_or(0));
            (observed - expected).powi(2) / expected
        })
        .sum();
    let outside = counts
        .iter()
        .filter(|(a, _)| !agents.contains(&a.as_str()))
        .map(|(_, n)| n)
        .sum();
    (chi2, outside)
}

/// `picks` arrivals into `q` at one instant, each abandoned while offered, so every one sees the
/// same free agents; how often each agent was offered.
fn random_picks(
    d: &mut Driver,
    picks: u32,
    skills: &[&str],
) -> std::collections::BTreeMap<String, u32> {
    let mut counts = std::collections::BTreeMap::new();
    for n in 0..picks {
        let id = format!("c{n}");
        let ds = d.at(1, Arrival::new(&id).queue("q").skills(skills).event());
        let who = offered_to(&ds, &id).unwrap_or_else(|| panic!("{id} was not offered: {ds:?}"));
        *counts.entry(who).or_insert(0) += 1;
        d.at(1, abandon(&id));
    }
    counts
}

/// 99.9th percentile of chi-square with 4 and 2 degrees of freedom: a uniform pick exceeds it
/// once in a thousand seeds; a pick that favours one agent by a fifth, or never picks one, far
/// exceeds it over thousands of picks.
const CHI2_4_DF: f64 = 18.47;
const CHI2_2_DF: f64 = 13.82;

#[test]
fn random_strategy_picks_uniformly_across_the_allowed_tiers() {
    // Five free agents in three tiers (each tier its own range of the pool), all at load 0.
    let agents = [("a", 1), ("b", 1), ("c", 2), ("d", 3), ("e", 3)];
    let mut d = strategy_desk(Strategy::Random, &agents);
    for (id, _) in agents {
        d.at(0, login(id));
    }
    let counts = random_picks(&mut d, 5_000, &[]);
    let (chi2, outside) = chi_square(&counts, &["a", "b", "c", "d", "e"]);
    assert_eq!(outside, 0, "{counts:?}");
    assert!(chi2 < CHI2_4_DF, "chi-square {chi2:.1} for {counts:?}");
}

#[test]
fn random_strategy_picks_uniformly_among_the_skilled() {
    // 3 skilled among 60: 16 blind draws all miss for 44 % of the picks, which then list the
    // skilled agents and draw among them; both ways must add up to a uniform pick.
    let mut q = with_strategy(queue("q", vec![step(0, &[1, 2])]), Strategy::Random);
    q.wrap_up_ms = 0;
    let skilled = ["s07", "s31", "s52"];
    let agents: Vec<String> = (0..60).map(|n| format!("s{n:02}")).collect();
    let mut d = Driver::new(config(
        vec![q],
        agents
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let a = agent(id, &[("q", 1 + (n % 2) as u8)]);
                if skilled.contains(&id.as_str()) {
                    with_skills(a, &["fr"])
                } else {
                    a
                }
            })
            .collect(),
    ));
    for id in &agents {
        d.at(0, login(id));
    }
    let counts = random_picks(&mut d, 3_000, &["fr"]);
    let (chi2, outside) = chi_square(&counts, &skilled);
    assert_eq!(
        outside, 0,
        "an agent without the skill was picked: {counts:?}"
    );
    assert!(chi2 < CHI2_2_DF, "chi-square {chi2:.1} for {counts:?}");
}

#[test]
fn random_strategy_still_prefers_fewer_active_chats() {
    let mut q = with_strategy(
        with_channels(queue("web", vec![step(0, &[1])]), &[Channel::Chat]),
        Strategy::Random,
    );
    q.wrap_up_ms = 0;
    for seed in 0..8 {
        let mut cfg = config(
            vec![q.clone()],
            vec![agent("a", &[("web", 1)]), agent("b", &[("web", 1)])],
        );
        cfg.seed = seed;
        let mut d = Driver::new(cfg);
        d.at(0, login("a"));
        d.at(0, login("b"));
        let first = offered_to(&d.at(1, chat("ch1", "web")), "ch1").unwrap();
        let second = offered_to(&d.at(2, chat("ch2", "web")), "ch2").unwrap();
        assert_ne!(
            first, second,
            "seed {seed}: the agent with no chat comes first"
        );
    }
}

#[test]
fn round_robin_still_prefers_fewer_active_chats() {
    let mut q = with_strategy(
        with_channels(queue("web", vec![step(0, &[1])]), &[Channel::Chat]),
        Strategy::RoundRobin,
    );
    q.wrap_up_ms = 0;
    let mut d = Driver::new(config(
        vec![q],
        vec![agent("a", &[("web", 1)]), agent("b", &[("web", 1)])],
    ));
    d.at(0, login("a"));
    d.at(0, login("b"));
    assert_eq!(
        offered_to(&d.at(1, chat("ch1", "web")), "ch1").as_deref(),
        Some("a")
    );
    assert_eq!(
        offered_to(&d.at(2, chat("ch2", "web")), "ch2").as_deref(),
        Some("b")
    );
    d.at(3, accept("ch2", "b"));
    d.at(3, end("ch2"));
    // The rotation would come back to a, but a holds a chat and b none: b first.
    let ds = d.at(4, chat("ch3", "web"));
    assert_eq!(
        offered_to(&ds, "ch3").as_deref(),
        Some("b"),
        "fewer active chats"
    );
    // One chat each again: the rotation goes on after b.
    let ds = d.at(5, chat("ch4", "web"));
    assert_eq!(
        offered_to(&ds, "ch4").as_deref(),
        Some("a"),
        "after the last offered"
    );
}

// ---------------------------------------------------------------------------------------------
// Waiting order
// ---------------------------------------------------------------------------------------------

#[test]
fn priority_then_wait_time_orders_the_queue() {
    let mut d = support_desk();
    let position = |ds: &[tierline::engine::Decision]| match &ds[0].kind {
        DecisionKind::Queued {
            position: Some(position),
            ..
        } => *position,
        other => panic!("expected queued with a position, got {other:?}"),
    };
    let ds = d.at(0, call("c1", "support"));
    assert_eq!(position(&ds), 1);
    let ds = d.at(1, Arrival::new("c2").queue("support").priority(5).event());
    assert_eq!(position(&ds), 1);
    let ds = d.at(2, call("c3", "support"));
    assert_eq!(position(&ds), 3);
    let ds = d.at(3, Arrival::new("c4").queue("support").priority(5).event());
    assert_eq!(position(&ds), 2);
    assert_eq!(d.waiting("support"), vec!["c2", "c4", "c1", "c3"]);
    let ds = d.at(4, login("l1"));
    assert_eq!(offers(&ds), vec![("c2".into(), "l1".into())]);
}

#[test]
fn an_agent_in_two_queues_takes_the_most_urgent() {
    let mut q1 = queue("q1", vec![step(0, &[1])]);
    q1.wrap_up_ms = 0;
    let mut q2 = queue("q2", vec![step(0, &[1])]);
    q2.wrap_up_ms = 0;
    let mut d = Driver::new(config(
        vec![q1, q2],
        vec![agent("a", &[("q1", 1), ("q2", 1)])],
    ));
    d.at(0, call("c1", "q1"));
    d.at(secs(5), call("c2", "q2"));
    d.at(secs(10), Arrival::new("c3").queue("q2").priority(2).event());
    let ds = d.at(secs(20), login("a"));
    assert_eq!(
        offers(&ds),
        vec![("c3".into(), "a".into())],
        "highest priority"
    );
    d.at(secs(21), accept("c3", "a"));
    let ds = d.at(secs(22), end("c3"));
    assert_eq!(
        offers(&ds),
        vec![("c1".into(), "a".into())],
        "then the longest waiting"
    );
    d.at(secs(23), accept("c1", "a"));
    let ds = d.at(secs(24), end("c1"));
    assert_eq!(offers(&ds), vec![("c2".into(), "a".into())]);
}

#[test]
fn an_agent_in_two_queues_takes_the_call_that_entered_first_whichever_queue_it_is_in() {
    let mut q1 = queue("q1", vec![step(0, &[1])]);
    q1.wrap_up_ms = 0;
    let mut q2 = queue("q2", vec![step(0, &[1])]);
    q2.wrap_up_ms = 0;
    let mut d = Driver::new(config(
        vec![q1, q2],
        vec![agent("a", &[("q1", 1), ("q2", 1)])],
    ));
    d.at(0, call("x2", "q2"));
    d.at(secs(1), call("x1", "q1"));
    d.at(secs(2), call("y1", "q1"));
    d.at(secs(3), call("y2", "q2"));
    // Same priority everywhere: oldest entry first, back and forth between the queues.
    let mut taken = Vec::new();
    let mut ds = d.at(secs(10), login("a"));
    for t in 11..=14 {
        let (call_id, _) = offers(&ds).first().cloned().expect("an offer");
        d.at(secs(t), accept(&call_id, "a"));
        ds = d.at(secs(t), end(&call_id));
        taken.push(call_id);
    }
    assert_eq!(taken, vec!["x2", "x1", "y1", "y2"]);
}

#[test]
fn a_declined_call_keeps_its_place_in_the_queue() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), call("c2", "support"));
    d.at(secs(3), decline("c1", "l1", DeclineReason::Rejected));
    assert_eq!(d.waiting("support"), vec!["c1", "c2"]);
    assert_eq!(d.interaction("c1").entered_queue_at, secs(1));
}

/// With no reject delay the declining agent is free again at once: it takes the most urgent
/// call waiting (here a priority-10 call), and the declined one goes back to its place.
#[test]
fn with_no_reject_delay_the_declining_agent_takes_the_most_urgent_call() {
    let mut q = queue("support", vec![step(0, &[1])]);
    q.reject_delay_ms = 0;
    let mut d = Driver::new(config(vec![q], vec![agent("a1", &[("support", 1)])]));
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "support"));
    d.at(
        secs(2),
        Arrival::new("vip").queue("support").priority(10).event(),
    );
    let ds = d.at(secs(3), decline("c1", "a1", DeclineReason::Rejected));
    assert_eq!(offers(&ds), vec![("vip".into(), "a1".into())]);
    assert_eq!(d.waiting("support"), vec!["c1"]);
    assert_eq!(d.interaction("c1").entered_queue_at, secs(1));
}

// ---------------------------------------------------------------------------------------------
// Offers: expiry, declines, no-answers
// ---------------------------------------------------------------------------------------------

#[test]
fn an_unanswered_offer_expires_and_goes_to_the_next_agent() {
    let mut q = queue("support", vec![step(0, &[1])]);
    q.offer_timeout_ms = secs(20);
    let mut d = Driver::new(config(
        vec![q],
        vec![agent("a", &[("support", 1)]), agent("b", &[("support", 1)])],
    ));
    d.at(0, login("a"));
    d.at(secs(1), login("b"));
    let ds = d.at(secs(2), call("c1", "support"));
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("a"));
    assert_eq!(d.engine.next_deadline(), Some(secs(22)));
    assert!(d.advance(secs(22) - 1).is_empty());
    let ds = d.advance(secs(22));
    assert_eq!(kinds(&ds), vec!["offer_revoked", "offer"]);
    assert_eq!(
        revocations(&ds),
        vec![("c1".into(), "a".into(), RevokeReason::Expired)]
    );
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("b"));
    assert!(ds.iter().all(|x| x.at == secs(22)));
    let a = d.agent("a");
    assert_eq!(a.consecutive_missed_offers, 1);
    assert_eq!(a.backoff_until, Some(secs(22) + secs(10)));
    assert!(a.slots.is_empty());
    assert_eq!(d.interaction("c1").entered_queue_at, secs(2));
}

/// A call whose offer ends (declined, or expired) with nobody else free waits again, and the
/// PBX is told so (`queued` without a position: the call keeps its place, ahead of those of its
/// priority that came after it), to resume the queue treatment. Offered again at once instead
/// when someone can take it: then no `queued`.
#[test]
fn a_call_whose_offer_ends_with_nobody_free_is_queued_again() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    d.at(secs(1), call("c2", "support"));
    let ds = d.at(secs(2), decline("c1", "l1", DeclineReason::Rejected));
    let again = |interaction: &str| DecisionKind::Queued {
        interaction: interaction.into(),
        queue: "support".into(),
        position: None,
    };
    assert_eq!(
        ds.iter().map(|d| d.kind.clone()).collect::<Vec<_>>(),
        vec![again("c1")],
        "l1 is backing off: c1 waits, in front of c2"
    );
    assert_eq!(d.waiting("support"), vec!["c1", "c2"]);
    // l1's back-off ends at 7 s: c1 rings it again, and expires unanswered at 22 s.
    let ds = d.advance(secs(7));
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l1"));
    let ds = d.advance(secs(22));
    assert_eq!(kinds(&ds), vec!["offer_revoked", "queued"], "{ds:?}");
    assert_eq!(ds[1].kind, again("c1"));
    // With another agent free, a call that comes back is offered again at once: no `queued`.
    let mut d = Driver::new(config(
        vec![queue("support", support_ladder())],
        vec![
            agent("l1", &[("support", 1)]),
            agent("m1", &[("support", 1)]),
        ],
    ));
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    d.at(secs(1), login("m1"));
    let ds = d.at(secs(2), decline("c1", "l1", DeclineReason::Rejected));
    assert_eq!(kinds(&ds), vec!["offer"], "{ds:?}");
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("m1"));
}

#[test]
fn an_accept_exactly_at_expiry_finds_the_offer_revoked() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    let err = d.try_at(secs(15), accept("c1", "l1")).unwrap_err();
    assert_eq!(
        err,
        EngineError::NoSuchOffer {
            interaction: "c1".into(),
            agent: "l1".into(),
            now: "it is waiting in queue `support`, offered to nobody (an offer to this agent expired, was declined or was taken back, or was never made); if this agent's phone answered it all the same, send `interaction.answered`".into(),
        }
    );
    assert_eq!(d.interaction("c1").state, InteractionState::Waiting);
}

/// An answer to an offer that is not pending says where the call is instead, so a PBX tells a
/// repeated accept (harmless) from an offer that ended (the caller is elsewhere).
#[test]
fn a_late_answer_is_told_where_the_call_is_now() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    d.at(0, login("l2"));
    d.at(0, call("c1", "support"));
    let offered_to = match d.interaction("c1").owner {
        tierline::engine::Owner::Agent(a) => a.to_string(),
        other => panic!("c1 is not offered: {other:?}"),
    };
    let other = if offered_to == "l1" { "l2" } else { "l1" };
    let now = |e: EngineError| match e {
        EngineError::NoSuchOffer { now, .. } => now,
        other => panic!("expected NoSuchOffer, got {other:?}"),
    };
    assert_eq!(
        now(d.try_at(1, accept("c1", other)).unwrap_err()),
        format!(
            "it is being offered to agent `{offered_to}` now; if this agent's phone answered it \
             all the same, send `interaction.answered`"
        )
    );
    // A decline is told where the call is, not to connect it: its agent did not take it.
    assert_eq!(
        now(d
            .try_at(1, decline("c1", other, DeclineReason::NoAnswer))
            .unwrap_err()),
        format!("it is being offered to agent `{offered_to}` now")
    );
    d.at(2, accept("c1", &offered_to));
    assert_eq!(
        now(d.try_at(3, accept("c1", &offered_to)).unwrap_err()),
        "it is connected to this agent already (the offer was accepted)"
    );
    assert_eq!(
        now(d.try_at(3, accept("c1", other)).unwrap_err()),
        format!("it is connected to agent `{offered_to}`")
    );
}

fn backoff_desk() -> Driver {
    let mut q = queue("support", vec![step(0, &[1])]);
    q.reject_delay_ms = secs(3);
    q.busy_delay_ms = secs(7);
    q.no_answer_delay_ms = secs(11);
    Driver::new(config(vec![q], vec![agent("a", &[("support", 1)])]))
}

fn decline_backs_off(reason: DeclineReason, delay: u64) {
    let mut d = backoff_desk();
    d.at(0, login("a"));
    d.at(secs(1), call("c1", "support"));
    let ds = d.at(secs(2), decline("c1", "a", reason));
    assert!(offers(&ds).is_empty(), "{reason:?}: a is backing off");
    assert_eq!(d.interaction("c1").state, InteractionState::Waiting);
    assert_eq!(d.agent("a").backoff_until, Some(secs(2) + delay));
    assert_eq!(d.agent("a").status, AgentStatus::Available);
    assert!(d.advance(secs(2) + delay - 1).is_empty());
    let ds = d.advance(secs(2) + delay);
    assert_eq!(offers(&ds), vec![("c1".into(), "a".into())], "{reason:?}");
    assert_eq!(
        ds[0].at,
        secs(2) + delay,
        "re-offered exactly when the back-off ends"
    );
    assert_eq!(
        d.agent("a").consecutive_missed_offers,
        1,
        "{reason:?}: every decline is a missed offer by default"
    );
}

#[test]
fn a_rejecting_agent_backs_off_for_reject_delay() {
    decline_backs_off(DeclineReason::Rejected, secs(3));
}

#[test]
fn a_busy_agent_backs_off_for_busy_delay() {
    decline_backs_off(DeclineReason::Busy, secs(7));
}

#[test]
fn a_no_answer_backs_off_for_no_answer_delay_and_counts() {
    decline_backs_off(DeclineReason::NoAnswer, secs(11));
}

#[test]
fn max_no_answer_makes_the_agent_not_ready() {
    let mut q = queue("support", vec![step(0, &[1])]);
    q.max_no_answer = 2;
    let mut d = Driver::new(config(
        vec![q],
        vec![agent("a", &[("support", 1)]), agent("b", &[("support", 1)])],
    ));
    d.at(0, login("a"));
    d.at(0, call("c1", "support"));
    let ds = d.advance(secs(15));
    assert_eq!(
        kinds(&ds),
        vec!["offer_revoked", "queued"],
        "first no-answer: back-off only, the call waits again"
    );
    let ds = d.advance(secs(25));
    assert_eq!(offers(&ds), vec![("c1".into(), "a".into())]);
    d.at(secs(30), login("b"));
    let ds = d.advance(secs(40));
    assert_eq!(kinds(&ds), vec!["offer_revoked", "agent_state", "offer"]);
    assert_eq!(
        ds[1].kind,
        DecisionKind::AgentState {
            agent: "a".into(),
            state: AgentStatus::NotReady,
            reason: Some("no_answer".into())
        }
    );
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("b"));
    let a = d.agent("a");
    assert_eq!(a.status, AgentStatus::NotReady);
    assert_eq!(a.reason.as_deref(), Some("no_answer"));
    assert_eq!(a.activity, Activity::NotReady);
}

/// The count makes an available agent not ready; one already not ready (here it went to lunch
/// while the phone rang) keeps its own reason, and the PBX is told nothing new.
#[test]
fn an_agent_already_not_ready_keeps_its_reason_when_its_ringing_offer_expires() {
    let mut q = queue("support", vec![step(0, &[1])]);
    q.max_no_answer = 1;
    let mut d = Driver::new(config(vec![q], vec![agent("a", &[("support", 1)])]));
    d.at(0, login("a"));
    d.at(0, call("c1", "support"));
    d.at(secs(1), not_ready("a", "lunch"));
    assert_eq!(d.interaction("c1").state, InteractionState::Offered);
    let ds = d.advance(secs(15));
    assert_eq!(kinds(&ds), vec!["offer_revoked", "queued"], "{ds:?}");
    let a = d.agent("a");
    assert_eq!(a.status, AgentStatus::NotReady);
    assert_eq!(a.reason.as_deref(), Some("lunch"));
}

/// A phone on do-not-disturb answers every offer with 486 at once: without counting declines the
/// caller would bounce between it and the queue forever.
#[test]
fn consecutive_busy_declines_make_the_agent_not_ready_with_reason_declined() {
    let mut q = queue("support", vec![step(0, &[1])]);
    q.max_no_answer = 2;
    q.busy_delay_ms = 0;
    let mut d = Driver::new(config(
        vec![q],
        vec![agent("a", &[("support", 1)]), agent("b", &[("support", 1)])],
    ));
    d.at(0, login("a"));
    d.at(0, call("c1", "support"));
    let ds = d.at(secs(1), decline("c1", "a", DeclineReason::Busy));
    assert_eq!(
        offers(&ds),
        vec![("c1".into(), "a".into())],
        "one miss: offered again"
    );
    let ds = d.at(secs(2), decline("c1", "a", DeclineReason::Busy));
    assert_eq!(kinds(&ds), vec!["agent_state", "queued"]);
    assert_eq!(
        ds[0].kind,
        DecisionKind::AgentState {
            agent: "a".into(),
            state: AgentStatus::NotReady,
            reason: Some("declined".into())
        }
    );
    assert_eq!(d.interaction("c1").state, InteractionState::Waiting);
    let ds = d.at(secs(3), login("b"));
    assert_eq!(offers(&ds), vec![("c1".into(), "b".into())]);
}

#[test]
fn with_count_declines_off_only_no_answers_count() {
    let mut q = queue("support", vec![step(0, &[1])]);
    q.max_no_answer = 1;
    q.count_declines = false;
    q.reject_delay_ms = 0;
    let mut d = Driver::new(config(vec![q], vec![agent("a", &[("support", 1)])]));
    d.at(0, login("a"));
    d.at(0, call("c1", "support"));
    for t in 1..=3 {
        let ds = d.at(secs(t), decline("c1", "a", DeclineReason::Rejected));
        assert_eq!(offers(&ds), vec![("c1".into(), "a".into())], "reject {t}");
    }
    assert_eq!(d.agent("a").consecutive_missed_offers, 0);
    let ds = d.at(secs(4), decline("c1", "a", DeclineReason::NoAnswer));
    assert_eq!(kinds(&ds), vec!["agent_state", "queued"]);
    assert_eq!(d.agent("a").reason.as_deref(), Some("no_answer"));
}

/// Agent `a` alone on `support`, taken out after 2 missed offers and offered again at once
/// (no back-off); `c1` has just rung it unanswered once.
fn one_miss_of_two() -> Driver {
    let mut q = queue("support", vec![step(0, &[1])]);
    q.max_no_answer = 2;
    q.no_answer_delay_ms = 0;
    let mut d = Driver::new(config(vec![q], vec![agent("a", &[("support", 1)])]));
    d.at(0, login("a"));
    d.at(0, call("c1", "support"));
    d.at(secs(1), decline("c1", "a", DeclineReason::NoAnswer));
    d
}

#[test]
fn an_accept_resets_the_no_answer_count() {
    let mut d = one_miss_of_two();
    assert_eq!(d.agent("a").consecutive_missed_offers, 1);
    // No back-off: offered again at once, and this time answered.
    assert_eq!(d.interaction("c1").state, InteractionState::Offered);
    d.at(secs(2), accept("c1", "a"));
    assert_eq!(d.agent("a").consecutive_missed_offers, 0);
    assert_eq!(d.agent("a").accepted_since_login, 1);
}

/// A supervisor (or the agent) putting an agent made not ready by `max_no_answer` back to
/// available starts a fresh count: one more miss does not take it out again at once.
#[test]
fn an_agent_made_available_again_after_no_answer_starts_a_fresh_count() {
    let mut d = one_miss_of_two();
    let ds = d.at(secs(2), decline("c1", "a", DeclineReason::NoAnswer));
    assert_eq!(kinds(&ds), vec!["agent_state", "queued"]);
    assert_eq!(d.agent("a").status, AgentStatus::NotReady);
    assert_eq!(d.agent("a").consecutive_missed_offers, 2);

    let ds = d.at(secs(60), available("a"));
    assert_eq!(offers(&ds), vec![("c1".into(), "a".into())]);
    assert_eq!(d.agent("a").consecutive_missed_offers, 0);
    let ds = d.at(secs(61), decline("c1", "a", DeclineReason::NoAnswer));
    assert_eq!(
        offers(&ds),
        vec![("c1".into(), "a".into())],
        "one miss after coming back: offered again, still available"
    );
    assert_eq!(d.agent("a").status, AgentStatus::Available);
    assert_eq!(d.agent("a").consecutive_missed_offers, 1);
}

/// ROUTING.md: an administrator's forced `available` resets the no-answer count, of an agent
/// already available too; the agent's own `available` or a login repeated while available (an
/// integration sending one on every phone registration) does not, or a phone that never
/// answers would never be taken out of rotation. It reset only on a change of status, so the
/// administrator's reset did nothing for an agent still available.
#[test]
fn only_an_administrator_resets_the_no_answer_count_of_an_agent_already_available() {
    for (what, forced) in [
        ("forced available", true),
        ("login", false),
        ("available", false),
    ] {
        let mut d = one_miss_of_two();
        assert_eq!(d.agent("a").status, AgentStatus::Available);
        assert_eq!(d.agent("a").consecutive_missed_offers, 1);
        if forced {
            d.advance(secs(2));
            let ds = d
                .engine
                .force_state(
                    secs(2),
                    "a",
                    tierline::engine::RequestedState::Available,
                    None,
                )
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(kinds(&ds), vec!["agent_state"], "{what}");
        } else if what == "login" {
            d.at(secs(2), login("a"));
        } else {
            d.at(secs(2), available("a"));
        }
        let expected = if forced { 0 } else { 1 };
        assert_eq!(d.agent("a").consecutive_missed_offers, expected, "{what}");
        assert_eq!(d.interaction("c1").state, InteractionState::Offered);
        d.at(secs(3), decline("c1", "a", DeclineReason::NoAnswer));
        let status = if forced {
            AgentStatus::Available
        } else {
            AgentStatus::NotReady
        };
        assert_eq!(d.agent("a").status, status, "{what}: the second miss");
    }
}

// ---------------------------------------------------------------------------------------------
// Abandons, wrap-up, transfer, escalation, agent state
// ---------------------------------------------------------------------------------------------

#[test]
fn a_caller_who_hangs_up_while_waiting_is_abandoned() {
    let mut d = support_desk();
    d.at(0, call("c1", "support"));
    d.at(0, call("c2", "support"));
    let ds = d.at(secs(8), abandon("c1"));
    assert!(revocations(&ds).is_empty());
    let c1 = d.interaction("c1");
    assert_eq!(c1.state, InteractionState::Abandoned);
    assert_eq!(c1.owner, Owner::None);
    assert_eq!(d.waiting("support"), vec!["c2"]);
    assert_eq!(d.engine.counts().abandoned, 1);
}

#[test]
fn a_caller_who_hangs_up_while_ringing_frees_the_agent_at_once() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    d.at(secs(1), call("c2", "support"));
    let ds = d.at(secs(3), abandon("c1"));
    assert_eq!(kinds(&ds), vec!["offer_revoked", "offer"]);
    assert_eq!(
        revocations(&ds),
        vec![("c1".into(), "l1".into(), RevokeReason::Abandoned)]
    );
    assert_eq!(offered_to(&ds, "c2").as_deref(), Some("l1"));
    assert_eq!(d.interaction("c1").state, InteractionState::Abandoned);
    assert_eq!(d.agent("l1").backoff_until.filter(|&b| b > secs(3)), None);
}

#[test]
fn abandoning_a_connected_call_is_refused() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    d.at(1, accept("c1", "l1"));
    d.advance(2);
    let before = d.snapshot(&["c1"]);
    let err = d.try_at(2, abandon("c1")).unwrap_err();
    match err {
        EngineError::InvalidTransition {
            interaction,
            event,
            state,
            ..
        } => {
            assert_eq!(interaction, "c1");
            assert_eq!(event, "interaction.abandoned");
            assert_eq!(state, "connected");
        }
        other => panic!("expected InvalidTransition, got {other:?}"),
    }
    assert_eq!(d.snapshot(&["c1"]), before);
}

/// `support` with a single step (L1 only), so no ladder timer gets in the way.
fn simple_desk() -> Driver {
    Driver::new(config(
        vec![queue("support", vec![step(0, &[1])])],
        vec![
            agent("l1", &[("support", 1)]),
            agent("l2", &[("support", 1)]),
        ],
    ))
}

#[test]
fn a_call_ends_then_wraps_up_then_is_done() {
    let mut d = simple_desk();
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    assert_eq!(d.agent("l1").slots[0].phase, SlotPhase::Offered);
    assert_eq!(d.agent("l1").slots[0].since, 0);
    d.at(secs(2), accept("c1", "l1"));
    assert_eq!(d.interaction("c1").state, InteractionState::Connected);
    assert_eq!(d.agent("l1").activity, Activity::Busy);
    // Each phase's `since` is when the slot entered it.
    assert_eq!(d.agent("l1").slots[0].since, secs(2));
    d.at(secs(3), call("c2", "support"));
    d.at(
        secs(60),
        tierline::engine::Event::InteractionEnded {
            interaction: "c1".into(),
            resolved: Some(true),
        },
    );
    let c1 = d.interaction("c1");
    assert_eq!(c1.state, InteractionState::WrapUp);
    assert_eq!(c1.resolved, Some(true));
    let l1 = d.agent("l1");
    assert_eq!(l1.activity, Activity::WrapUp);
    assert_eq!(l1.slots.len(), 1);
    assert_eq!(l1.slots[0].phase, SlotPhase::WrapUp);
    assert_eq!(l1.slots[0].since, secs(60));
    assert_eq!(l1.slots[0].until, Some(secs(70)));
    assert!(d.advance(secs(70) - 1).is_empty());
    let ds = d.advance(secs(70));
    assert_eq!(offers(&ds), vec![("c2".into(), "l1".into())]);
    assert_eq!(ds[0].at, secs(70));
    assert_eq!(d.interaction("c1").state, InteractionState::Done);
    assert_eq!(d.interaction("c1").owner, Owner::None);
    assert_eq!(d.agent("l1").idle_since, secs(70));
}

#[test]
fn wrapup_done_ends_the_wrap_up_early() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    d.at(secs(2), accept("c1", "l1"));
    d.at(secs(20), end("c1"));
    d.at(secs(21), call("c2", "support"));
    let ds = d.at(secs(22), wrapup_done("l1"));
    assert_eq!(offers(&ds), vec![("c2".into(), "l1".into())]);
    assert_eq!(d.interaction("c1").state, InteractionState::Done);
    assert_eq!(d.agent("l1").idle_since, secs(22));
}

#[test]
fn wrapup_done_ends_every_wrap_up_the_agent_has() {
    let mut d = mixed_desk(Strategy::LongestIdle);
    d.at(0, login("a"));
    d.at(secs(1), chat("ch1", "web"));
    d.at(secs(1), chat("ch2", "web"));
    d.at(secs(2), accept("ch1", "a"));
    d.at(secs(2), accept("ch2", "a"));
    d.at(secs(5), end("ch1"));
    d.at(secs(6), end("ch2"));
    assert_eq!(d.agent("a").load.get(&Channel::Chat).copied(), Some(2));
    d.at(secs(7), call("v1", "web"));
    // Both chats' wrap-ups end now: a holds nothing, so it can take the call.
    let ds = d.at(secs(8), wrapup_done("a"));
    assert_eq!(d.interaction("ch1").state, InteractionState::Done);
    assert_eq!(d.interaction("ch2").state, InteractionState::Done);
    assert_eq!(offers(&ds), vec![("v1".into(), "a".into())]);
}

#[test]
fn wrapup_done_without_a_wrap_up_changes_nothing() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    let before = d.snapshot(&[]);
    let ds = d.at(0, wrapup_done("l1"));
    assert!(ds.is_empty());
    assert_eq!(d.snapshot(&[]), before);
}

#[test]
fn no_wrap_up_time_means_done_at_once() {
    let mut q = queue("support", vec![step(0, &[1])]);
    q.wrap_up_ms = 0;
    let mut d = Driver::new(config(vec![q], vec![agent("l1", &[("support", 1)])]));
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    d.at(secs(1), call("c2", "support"));
    d.at(secs(2), accept("c1", "l1"));
    let ds = d.at(secs(9), end("c1"));
    assert_eq!(d.interaction("c1").state, InteractionState::Done);
    assert_eq!(offers(&ds), vec![("c2".into(), "l1".into())]);
}

fn two_queue_desk() -> Driver {
    let mut billing = queue("billing", vec![step(0, &[1])]);
    billing.max_waiting = Some(1);
    Driver::new(config(
        vec![queue("support", support_ladder()), billing],
        vec![
            agent("l1", &[("support", 1)]),
            agent("l2", &[("support", 2)]),
            agent("b1", &[("billing", 1)]),
        ],
    ))
}

#[test]
fn a_transfer_moves_the_call_and_keeps_its_arrival_time_and_history() {
    let mut d = two_queue_desk();
    d.at(0, login("l1"));
    d.at(0, Arrival::new("c1").queue("support").priority(4).event());
    d.at(secs(1), accept("c1", "l1"));
    d.at(secs(5), login("b1"));
    let ds = d.at(secs(20), transfer("c1", "billing"));
    assert_eq!(offers(&ds), vec![("c1".into(), "b1".into())]);
    let c1 = d.interaction("c1");
    assert_eq!(c1.queue.as_deref(), Some("billing"));
    assert_eq!(c1.arrived_at, 0);
    assert_eq!(c1.entered_queue_at, secs(20));
    assert_eq!(c1.priority, 4);
    assert_eq!(c1.step, Some(0));
    assert!(c1.history.iter().any(|t| t.at == secs(20)
        && t.from == Some(InteractionState::Connected)
        && t.to == InteractionState::Waiting
        && t.why
            == Why::Transferred {
                by: "l1".into(),
                queue: "billing".into()
            }));
    let l1 = d.agent("l1");
    assert_eq!(l1.slots.len(), 1);
    assert_eq!(l1.slots[0].phase, SlotPhase::WrapUp);
    assert_eq!(l1.slots[0].interaction, None);
    assert_eq!(l1.slots[0].until, Some(secs(30)), "support's wrap-up");
}

#[test]
fn a_transfer_into_a_full_queue_is_refused() {
    let mut d = two_queue_desk();
    d.at(0, call("waiting", "billing"));
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    d.at(secs(1), accept("c1", "l1"));
    d.advance(secs(2));
    let before = d.snapshot(&["c1", "waiting"]);
    let err = d.try_at(secs(2), transfer("c1", "billing")).unwrap_err();
    assert_eq!(
        err,
        EngineError::QueueFull {
            queue: "billing".into(),
            max_waiting: 1,
            interaction: "c1".into(),
        }
    );
    assert_eq!(d.snapshot(&["c1", "waiting"]), before);
}

#[test]
fn an_escalation_into_a_full_queue_is_refused_like_a_transfer() {
    let mut q = queue("support", vec![step(0, &[1, 2])]);
    q.max_waiting = Some(1);
    let mut d = l1_and_l2(q);
    d.at(0, login("l1"));
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), accept("c1", "l1"));
    d.at(secs(3), call("waiting", "support"));
    d.advance(secs(4));
    let before = d.snapshot(&["c1", "waiting"]);
    let err = d.try_at(secs(4), escalate("c1", 2)).unwrap_err();
    assert_eq!(
        err,
        EngineError::QueueFull {
            queue: "support".into(),
            max_waiting: 1,
            interaction: "c1".into(),
        }
    );
    assert_eq!(d.snapshot(&["c1", "waiting"]), before);
    // Once there is room (an L2 logs in and takes the waiting call) it goes through.
    let ds = d.at(secs(5), login("l2"));
    assert_eq!(offers(&ds), vec![("waiting".into(), "l2".into())]);
    let ds = d.at(secs(6), escalate("c1", 2));
    assert_eq!(kinds(&ds), vec!["escalated", "queued"]);
}

/// A desk of voice and email with room for one waiting interaction and no wrap-up: `a1`
/// holds an email while a priority-9 French call waits for an agent free of everything.
fn full_desk_with_an_urgent_call(roster: Vec<AgentConfig>) -> Driver {
    let mut q = with_channels(
        queue("desk", vec![step(0, &[1])]),
        &[Channel::Voice, Channel::Email],
    );
    q.max_waiting = Some(1);
    q.wrap_up_ms = 0;
    let mut d = Driver::new(config(vec![q], roster));
    d.at(0, login("a1"));
    d.at(
        0,
        Arrival::new("e1")
            .channel(Channel::Email)
            .queue("desk")
            .event(),
    );
    d.at(secs(1), accept("e1", "a1"));
    let ds = d.at(
        secs(2),
        Arrival::new("v1")
            .queue("desk")
            .priority(9)
            .skills(&["fr"])
            .event(),
    );
    assert_eq!(
        kinds(&ds),
        vec!["queued"],
        "a1 holds an email: no voice call"
    );
    d
}

#[test]
fn a_transfer_into_a_full_queue_does_not_count_the_agent_handing_it_over() {
    // a1 has room for more email, but once free it takes the more urgent call first (voice is
    // exclusive): the email would wait beyond max_waiting. Nobody else could take it: refused.
    let mut d =
        full_desk_with_an_urgent_call(vec![with_skills(agent("a1", &[("desk", 1)]), &["fr"])]);
    d.advance(secs(3));
    let before = d.snapshot(&["e1", "v1"]);
    let err = d.try_at(secs(3), transfer("e1", "desk")).unwrap_err();
    assert_eq!(
        err,
        EngineError::QueueFull {
            queue: "desk".into(),
            max_waiting: 1,
            interaction: "e1".into(),
        }
    );
    assert_eq!(err.code(), "queue_full");
    assert!(
        err.to_string()
            .contains("no agent other than the one handing interaction `e1` over is free"),
        "{err}"
    );
    assert_eq!(d.snapshot(&["e1", "v1"]), before);
    assert_eq!(d.waiting("desk"), vec!["v1".to_string()]);
}

#[test]
fn a_transfer_into_a_full_queue_goes_through_when_another_agent_can_take_it() {
    // b1 speaks no French (so the call waits) but can take the email: let in, and it does not
    // wait: a1 takes the urgent call, b1 the email.
    let mut d = full_desk_with_an_urgent_call(vec![
        with_skills(agent("a1", &[("desk", 1)]), &["fr"]),
        agent("b1", &[("desk", 1)]),
    ]);
    d.at(secs(2), login("b1"));
    let ds = d.at(secs(3), transfer("e1", "desk"));
    assert_eq!(
        offers(&ds),
        vec![("v1".into(), "a1".into()), ("e1".into(), "b1".into())]
    );
    assert!(d.waiting("desk").is_empty());
}

#[test]
fn a_transfer_into_a_full_queue_counts_the_agent_handing_it_over_when_it_goes_to_wrap_up() {
    // `front` has a wrap-up: a1 keeps that slot and its spare chat room, so the chat it hands
    // to the full `desk` is offered back to it at once, not refused.
    let mut front = with_channels(queue("front", vec![step(0, &[1])]), &[Channel::Chat]);
    front.wrap_up_ms = secs(30);
    let mut desk = with_channels(
        queue("desk", vec![step(0, &[1])]),
        &[Channel::Voice, Channel::Chat],
    );
    desk.max_waiting = Some(1);
    let mut d = Driver::new(config(
        vec![front, desk],
        vec![agent("a1", &[("front", 1), ("desk", 1)])],
    ));
    d.at(0, login("a1"));
    d.at(
        0,
        Arrival::new("c1")
            .channel(Channel::Chat)
            .queue("front")
            .event(),
    );
    d.at(secs(1), accept("c1", "a1"));
    let ds = d.at(secs(2), call("v1", "desk"));
    assert_eq!(kinds(&ds), vec!["queued"], "a1 holds a chat: no voice call");
    let ds = d.at(secs(3), transfer("c1", "desk"));
    assert_eq!(offers(&ds), vec![("c1".into(), "a1".into())]);
    assert_eq!(d.waiting("desk"), vec!["v1".to_string()]);
}

#[test]
fn a_transfer_into_a_closed_queue_is_refused_naming_its_closed_target() {
    let mut night = queue("night", vec![step(0, &[1])]);
    night.schedule = Some(never_open());
    night.closed_target = Some("sip:voicemail@pbx".into());
    let mut d = Driver::new(config(
        vec![queue("support", vec![step(0, &[1])]), night],
        vec![agent("a1", &[("support", 1), ("night", 1)])],
    ));
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), accept("c1", "a1"));
    d.advance(secs(3));
    let before = d.snapshot(&["c1"]);
    let err = d.try_at(secs(3), transfer("c1", "night")).unwrap_err();
    assert_eq!(
        err,
        EngineError::QueueClosed {
            queue: "night".into(),
            closed_target: Some("sip:voicemail@pbx".into()),
            interaction: "c1".into(),
        }
    );
    assert_eq!(err.code(), "queue_closed");
    assert!(err.to_string().contains("sip:voicemail@pbx"), "{err}");
    assert_eq!(d.snapshot(&["c1"]), before);
}

/// With no wrap-up the agent who hands a call back is free in the same instant: like any freed
/// agent it takes the most urgent waiting call, not the one it just handed over.
#[test]
fn an_agent_freed_by_its_own_transfer_takes_the_most_urgent_call_first() {
    let mut support = queue("support", vec![step(0, &[1])]);
    support.wrap_up_ms = 0;
    let mut d = Driver::new(config(
        vec![support, queue("sales", vec![step(0, &[1])])],
        vec![
            agent("a1", &[("support", 1), ("sales", 1)]),
            agent("a2", &[("sales", 1)]),
        ],
    ));
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), accept("c1", "a1"));
    d.at(
        secs(3),
        Arrival::new("vip").queue("sales").priority(10).event(),
    );
    let ds = d.at(secs(10), transfer("c1", "sales"));
    assert_eq!(offers(&ds), vec![("vip".into(), "a1".into())]);
    assert_eq!(kinds(&ds), vec!["offer", "queued"]);
    assert_eq!(d.waiting("sales"), vec!["c1"]);
    // The transferred call then goes to the next free agent.
    let ds = d.at(secs(11), login("a2"));
    assert_eq!(offers(&ds), vec![("c1".into(), "a2".into())]);
}

#[test]
fn an_agent_freed_by_its_own_escalation_takes_the_most_urgent_call_first() {
    let mut support = queue("support", vec![step(0, &[1, 2])]);
    support.wrap_up_ms = 0;
    let mut d = Driver::new(config(vec![support], vec![agent("a1", &[("support", 2)])]));
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), accept("c1", "a1"));
    d.at(
        secs(3),
        Arrival::new("vip").queue("support").priority(10).event(),
    );
    let ds = d.at(secs(10), escalate("c1", 1));
    assert_eq!(offers(&ds), vec![("vip".into(), "a1".into())]);
    assert_eq!(d.waiting("support"), vec!["c1"]);
}

/// When nothing more urgent waits, the freed agent may get the call straight back: with no
/// wrap-up and no back-off that is the configured behaviour.
#[test]
fn an_agent_freed_by_its_own_transfer_gets_it_back_when_nothing_else_waits() {
    let mut support = queue("support", vec![step(0, &[1])]);
    support.wrap_up_ms = 0;
    let mut d = Driver::new(config(
        vec![support, queue("sales", vec![step(0, &[1])])],
        vec![agent("a1", &[("support", 1), ("sales", 1)])],
    ));
    d.at(0, login("a1"));
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), accept("c1", "a1"));
    let ds = d.at(secs(10), transfer("c1", "sales"));
    assert_eq!(offers(&ds), vec![("c1".into(), "a1".into())]);
    assert_eq!(kinds(&ds), vec!["offer"]);
}

#[test]
fn an_agent_escalates_a_call_to_l2_with_a_priority_boost() {
    let mut q = queue("support", support_ladder());
    q.escalation_priority_boost = 3;
    q.wrap_up_ms = 0;
    let mut d = l1_and_l2(q);
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    d.at(secs(1), accept("c1", "l1"));
    let ds = d.at(secs(10), escalate("c1", 2));
    assert_eq!(
        ds[0].kind,
        DecisionKind::Escalated {
            interaction: "c1".into(),
            queue: "support".into(),
            step: None,
            by: Some("l1".into()),
            min_tier: Some(2)
        }
    );
    assert!(offers(&ds).is_empty(), "l1 is tier 1 and l2 is offline");
    let c1 = d.interaction("c1");
    assert_eq!(c1.state, InteractionState::Waiting);
    assert_eq!(c1.min_tier, Some(2));
    assert_eq!(c1.priority, 3);
    assert_eq!(c1.entered_queue_at, secs(10));
    assert!(c1.history.iter().any(|t| t.why
        == Why::EscalatedByAgent {
            by: "l1".into(),
            min_tier: 2
        }));
    // The ladder no longer applies: past 60 s there is no step, and l1 still never gets it.
    let ds = d.advance(secs(200));
    assert!(steps_reached(&ds).is_empty());
    assert_eq!(d.interaction("c1").state, InteractionState::Waiting);
    let ds = d.at(secs(201), login("l2"));
    assert_eq!(offers(&ds), vec![("c1".into(), "l2".into())]);
}

#[test]
fn an_escalated_call_keeps_its_priority_and_gains_the_boost() {
    // docs/ROUTING.md: explicit escalation is "as a transfer back into the same queue" (which
    // keeps the priority) and "the queue's escalation_priority_boost is added".
    let mut ladder = support_ladder();
    ladder[0].priority_boost = 2;
    let mut q = queue("support", ladder);
    q.escalation_priority_boost = 3;
    let mut d = l1_and_l2(q);
    d.at(0, login("l1"));
    d.at(0, Arrival::new("c1").queue("support").priority(1).event());
    assert_eq!(d.interaction("c1").priority, 3);
    d.at(secs(1), accept("c1", "l1"));
    d.at(secs(5), escalate("c1", 2));
    assert_eq!(d.interaction("c1").priority, 3 + 3);
}

#[test]
fn a_transfer_keeps_the_priority_earned_on_the_ladder() {
    // docs/ROUTING.md: a transferred interaction keeps "its arrival time, priority and history".
    let mut ladder = support_ladder();
    ladder[1].priority_boost = 5;
    let mut d = Driver::new(config(
        vec![
            queue("support", ladder),
            queue("billing", vec![step(0, &[1])]),
        ],
        vec![agent("l2", &[("support", 2)])],
    ));
    d.at(0, call("c1", "support"));
    d.advance(secs(30));
    assert_eq!(d.interaction("c1").priority, 5);
    d.at(secs(31), login("l2"));
    d.at(secs(32), accept("c1", "l2"));
    d.at(secs(40), transfer("c1", "billing"));
    assert_eq!(d.interaction("c1").priority, 5);
}

#[test]
fn a_transfer_to_a_queue_that_does_not_serve_the_channel_is_refused() {
    let mut d = Driver::new(config(
        vec![
            with_channels(queue("web", vec![step(0, &[1])]), &[Channel::Chat]),
            queue("phones", vec![step(0, &[1])]),
        ],
        vec![agent("a", &[("web", 1)])],
    ));
    d.at(0, login("a"));
    d.at(0, chat("ch1", "web"));
    d.at(1, accept("ch1", "a"));
    d.advance(2);
    let before = d.snapshot(&["ch1"]);
    assert_eq!(
        d.try_at(2, transfer("ch1", "phones")),
        Err(EngineError::ChannelNotServed {
            queue: "phones".into(),
            channel: Channel::Chat,
            interaction: "ch1".into(),
        })
    );
    assert_eq!(d.snapshot(&["ch1"]), before);
}

#[test]
fn an_agent_going_offline_revokes_its_pending_offer() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    d.at(secs(1), call("c1", "support"));
    let ds = d.at(secs(2), logout("l1"));
    assert_eq!(
        revocations(&ds),
        vec![("c1".into(), "l1".into(), RevokeReason::AgentOffline)]
    );
    let c1 = d.interaction("c1");
    assert_eq!(c1.state, InteractionState::Waiting);
    assert_eq!(c1.entered_queue_at, secs(1));
    assert_eq!(d.agent("l1").status, AgentStatus::Offline);
    assert_eq!(d.agent("l1").activity, Activity::Offline);
    // A not_ready agent keeps its pending offer.
    d.at(secs(3), login("l1"));
    assert_eq!(d.interaction("c1").state, InteractionState::Offered);
    let ds = d.at(secs(4), not_ready("l1", "break"));
    assert!(revocations(&ds).is_empty());
    assert_eq!(d.interaction("c1").state, InteractionState::Offered);
    d.at(secs(5), accept("c1", "l1"));
    // Offline keeps the connected call; it finishes normally.
    let ds = d.at(secs(6), logout("l1"));
    assert!(revocations(&ds).is_empty());
    assert_eq!(d.interaction("c1").state, InteractionState::Connected);
    d.at(secs(7), end("c1"));
    d.advance(secs(17));
    assert_eq!(d.interaction("c1").state, InteractionState::Done);
}

/// An agent leaving with two chats ringing: both offers are taken back before either is offered
/// again, and the more urgent chat gets the one free agent, wherever it was in the ringing
/// agent's slots.
#[test]
fn an_agent_going_offline_with_two_offers_hands_the_free_agent_the_more_urgent_one() {
    let mut d = Driver::new(config(
        vec![with_channels(
            queue("web", vec![step(0, &[1])]),
            &[Channel::Chat],
        )],
        vec![
            agent("a", &[("web", 1)]),
            with_capacity(agent("b", &[("web", 1)]), Channel::Chat, 1),
        ],
    ));
    d.at(0, login("a"));
    d.at(1, chat("low", "web"));
    let urgent = Arrival::new("urgent")
        .channel(Channel::Chat)
        .queue("web")
        .priority(9)
        .event();
    d.at(2, urgent);
    assert_eq!(d.interaction("low").state, InteractionState::Offered);
    assert_eq!(d.interaction("urgent").state, InteractionState::Offered);
    d.at(3, login("b"));
    let ds = d.at(secs(1), logout("a"));
    assert_eq!(
        kinds(&ds),
        vec!["offer_revoked", "offer_revoked", "offer", "queued"],
        "both taken back before either is offered again; the other waits again"
    );
    assert_eq!(offers(&ds), vec![("urgent".into(), "b".into())]);
    assert_eq!(d.interaction("low").state, InteractionState::Waiting);
    assert_eq!(d.interaction("low").entered_queue_at, 1);
}

/// A login that takes a queue out of the agent's tiers takes back the offer ringing it from
/// that queue (`reconfigured`, as a config change would), and the call goes to an agent who
/// still serves it; an offer from a queue it keeps rings on.
#[test]
fn a_login_that_drops_a_queue_takes_back_the_offer_from_it() {
    let mut d = Driver::new(config(
        vec![
            with_channels(queue("web", vec![step(0, &[1])]), &[Channel::Chat]),
            with_channels(queue("help", vec![step(0, &[1])]), &[Channel::Chat]),
        ],
        vec![
            agent("a", &[("web", 1), ("help", 1)]),
            agent("b", &[("web", 1)]),
        ],
    ));
    d.at(0, login("a"));
    d.at(1, chat("w1", "web"));
    d.at(2, chat("h1", "help"));
    d.at(3, login("b"));
    assert_eq!(d.interaction("w1").owner, Owner::Agent("a".into()));
    let only_help = tierline::engine::Event::AgentLogin {
        agent: "a".into(),
        address: None,
        tiers: Some([("help".to_string(), 1)].into_iter().collect()),
        skills: None,
        capacity: None,
    };
    let ds = d.at(4, only_help);
    assert_eq!(
        revocations(&ds),
        vec![("w1".into(), "a".into(), RevokeReason::Reconfigured)]
    );
    assert_eq!(offers(&ds), vec![("w1".into(), "b".into())]);
    assert_eq!(d.interaction("h1").state, InteractionState::Offered);
    assert_eq!(d.interaction("h1").owner, Owner::Agent("a".into()));
}

#[test]
fn a_not_ready_agent_gets_nothing_until_available_again() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    d.at(secs(1), not_ready("l1", "training"));
    assert_eq!(d.agent("l1").reason.as_deref(), Some("training"));
    let ds = d.at(secs(2), call("c1", "support"));
    assert_eq!(kinds(&ds), vec!["queued"]);
    let ds = d.at(secs(9), available("l1"));
    assert_eq!(offers(&ds), vec![("c1".into(), "l1".into())]);
    assert_eq!(d.agent("l1").idle_since, secs(9));
}

#[test]
fn required_skills_pick_the_agent_who_has_them_all() {
    let mut d = Driver::new(config(
        vec![queue("support", vec![step(0, &[1])])],
        vec![
            with_skills(agent("en", &[("support", 1)]), &["en"]),
            with_skills(agent("enzh", &[("support", 1)]), &["en", "zh"]),
        ],
    ));
    d.at(0, login("en"));
    let ds = d.at(
        1,
        Arrival::new("c1")
            .queue("support")
            .skills(&["zh", "en"])
            .event(),
    );
    assert_eq!(kinds(&ds), vec!["queued"], "en lacks zh");
    let ds = d.at(2, login("enzh"));
    assert_eq!(offers(&ds), vec![("c1".into(), "enzh".into())]);
}

#[test]
fn a_login_creates_an_agent_not_in_the_roster() {
    let mut d = support_desk();
    d.at(0, call("c1", "support"));
    let ds = d.at(
        secs(1),
        tierline::engine::Event::AgentLogin {
            agent: "temp".into(),
            address: Some("sip:temp@pbx".into()),
            tiers: Some([("support".to_string(), 1)].into_iter().collect()),
            skills: None,
            capacity: None,
        },
    );
    assert_eq!(offers(&ds), vec![("c1".into(), "temp".into())]);
    assert_eq!(&*d.agent("temp").address, "sip:temp@pbx");
}

#[test]
fn a_rating_is_taken_once_connected_and_counts_once() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    let err = d.try_at(1, rate("c1", 5)).unwrap_err();
    assert!(
        matches!(&err, EngineError::InvalidTransition { interaction, state, .. } if interaction == "c1" && *state == "offered"),
        "{err:?}"
    );
    d.at(2, accept("c1", "l1"));
    d.at(3, rate("c1", 2));
    assert_eq!(d.interaction("c1").rating, Some(2));
    // The same score again (a webhook delivered twice under two event ids): nothing changes.
    d.advance(4);
    let before = d.snapshot(&["c1"]);
    assert!(d.try_at(4, rate("c1", 2)).expect("same score").is_empty());
    assert_eq!(d.snapshot(&["c1"]), before);
    // A different score: refused, naming the first, and nothing changes.
    let err = d.try_at(4, rate("c1", 4)).unwrap_err();
    assert_eq!(
        err,
        EngineError::AlreadyRated {
            interaction: "c1".into(),
            score: 2
        }
    );
    assert_eq!(d.snapshot(&["c1"]), before);
    let err = d.try_at(5, rate("c1", 6)).unwrap_err();
    assert!(matches!(err, EngineError::InvalidValue { .. }), "{err:?}");
}

/// Whether a call was ever answered does not depend on how much history is kept: a call
/// answered, then transferred (waiting again) may be rated with a two-entry history too.
#[test]
fn a_transferred_call_may_be_rated_however_short_the_kept_history() {
    for max_history in [2usize, 100] {
        let mut cfg = config(
            vec![
                queue("support", vec![step(0, &[1])]),
                queue("sales", vec![step(0, &[1])]),
            ],
            vec![agent("a1", &[("support", 1)])],
        );
        cfg.limits.max_history = max_history;
        let mut d = Driver::new(cfg);
        d.at(0, login("a1"));
        d.at(secs(1), call("c1", "support"));
        d.at(secs(2), accept("c1", "a1"));
        d.at(secs(3), transfer("c1", "sales"));
        let c1 = d.interaction("c1");
        assert_eq!(c1.state, InteractionState::Waiting);
        assert!(c1.history.len() <= max_history, "{max_history}");
        assert!(
            d.try_at(secs(4), rate("c1", 5)).is_ok(),
            "max_history {max_history}"
        );
        assert_eq!(d.interaction("c1").rating, Some(5));
    }
}

// ---------------------------------------------------------------------------------------------
// Refused events change nothing
// ---------------------------------------------------------------------------------------------

#[test]
fn ids_an_event_would_create_have_a_length_limit() {
    let mut d = support_desk();
    d.advance(0);
    let long = "x".repeat(257);
    let cases = [
        (Arrival::new(&long).queue("support").event(), "interaction"),
        (
            Arrival::new("c1").queue("support").customer(&long).event(),
            "customer",
        ),
        (
            Arrival::new("c1").queue("support").attr(&long, "v").event(),
            "attributes",
        ),
        (
            Arrival::new("c1")
                .queue("support")
                .attr("k", &"v".repeat(1025))
                .event(),
            "attributes",
        ),
        (login(&long), "agent"),
    ];
    for (event, field) in cases {
        let before = d.snapshot(&["c1"]);
        let err = d.try_at(0, event).unwrap_err();
        assert!(
            matches!(&err, EngineError::InvalidValue { field: f, .. } if *f == field),
            "{err:?}"
        );
        assert_eq!(d.snapshot(&["c1"]), before);
    }
    // At the limit it is fine.
    let id = "y".repeat(256);
    assert_eq!(
        kinds(&d.at(0, Arrival::new(&id).queue("support").event())),
        vec!["queued"]
    );
}

#[test]
fn refused_events_return_the_typed_error_and_change_nothing() {
    let mut cfg = config(
        vec![
            queue("support", support_ladder()),
            with_channels(queue("web", vec![step(0, &[1])]), &[Channel::Chat]),
        ],
        vec![
            agent("l1", &[("support", 1)]),
            agent("l2", &[("support", 2)]),
        ],
    );
    cfg.limits.max_live_interactions = 3;
    let mut d = Driver::new(cfg);
    d.at(0, login("l1"));
    d.at(0, call("c1", "support")); // offered to l1
    d.at(0, call("c2", "support")); // waiting
    d.advance(secs(1));
    let ids = ["c1", "c2", "c3", "nope"];
    let cases: Vec<(tierline::engine::Event, EngineError)> = vec![
        (
            accept("c1", "ghost"),
            EngineError::UnknownAgent {
                agent: "ghost".into(),
            },
        ),
        (
            accept("nope", "l1"),
            EngineError::UnknownInteraction {
                interaction: "nope".into(),
            },
        ),
        (
            accept("c2", "l1"),
            EngineError::NoSuchOffer {
                interaction: "c2".into(),
                agent: "l1".into(),
                now: "it is waiting in queue `support`, offered to nobody (an offer to this agent expired, was declined or was taken back, or was never made); if this agent's phone answered it all the same, send `interaction.answered`".into(),
            },
        ),
        (
            accept("c1", "l2"),
            EngineError::NoSuchOffer {
                interaction: "c1".into(),
                agent: "l2".into(),
                now: "it is being offered to agent `l1` now; if this agent's phone answered it all \
                      the same, send `interaction.answered`"
                    .into(),
            },
        ),
        (
            call("c3", "nowhere"),
            EngineError::UnknownQueue {
                queue: "nowhere".into(),
                interaction: "c3".into(),
            },
        ),
        (
            call("c3", "web"),
            EngineError::ChannelNotServed {
                queue: "web".into(),
                channel: Channel::Voice,
                interaction: "c3".into(),
            },
        ),
        (
            call("c2", "support"),
            EngineError::DuplicateInteraction {
                interaction: "c2".into(),
                state: "waiting",
            },
        ),
        (
            login("stranger"),
            EngineError::AgentNeedsAddress {
                agent: "stranger".into(),
            },
        ),
        (
            tierline::engine::Event::AgentLogin {
                agent: "l2".into(),
                address: Some(" ".into()),
                tiers: None,
                skills: None,
                capacity: None,
            },
            EngineError::InvalidValue {
                field: "address",
                message: "an agent's address must not be empty (agent `l2`)".into(),
            },
        ),
        (
            tierline::engine::Event::AgentLogin {
                agent: "l2".into(),
                address: None,
                tiers: Some([("nowhere".to_string(), 1)].into_iter().collect()),
                skills: None,
                capacity: None,
            },
            EngineError::AgentUnknownQueue {
                agent: "l2".into(),
                queue: "nowhere".into(),
            },
        ),
        (
            logout("ghost"),
            EngineError::UnknownAgent {
                agent: "ghost".into(),
            },
        ),
    ];
    for (event, expected) in cases {
        let before = d.snapshot(&ids);
        let got = d.try_at(secs(1), event.clone());
        assert_eq!(got, Err(expected), "{event:?}");
        assert_eq!(d.snapshot(&ids), before, "{event:?} changed the state");
    }
    // Events that need another state name the interaction, the event and the state.
    for (event, state) in [
        (end("c2"), "waiting"),
        (end("c1"), "offered"),
        (transfer("c2", "support"), "waiting"),
        (escalate("c1", 2), "offered"),
    ] {
        let before = d.snapshot(&ids);
        let got = d.try_at(secs(1), event.clone());
        match got {
            Err(EngineError::InvalidTransition {
                interaction,
                event: name,
                state: s,
                ..
            }) => {
                assert_eq!(interaction, event_interaction(&event));
                assert_eq!(name, event.type_name());
                assert_eq!(s, state);
            }
            other => panic!("{event:?}: expected InvalidTransition, got {other:?}"),
        }
        assert_eq!(d.snapshot(&ids), before, "{event:?} changed the state");
    }
    // The live-interaction limit: a third arrival fits, a fourth is refused.
    d.at(secs(1), call("c3", "support"));
    let before = d.snapshot(&ids);
    let got = d.try_at(secs(1), call("c4", "support"));
    assert_eq!(
        got,
        Err(EngineError::AtCapacity {
            interaction: "c4".into(),
            limit: 3
        })
    );
    assert_eq!(d.snapshot(&ids), before);
}

fn event_interaction(event: &tierline::engine::Event) -> String {
    use tierline::engine::Event::*;
    match event {
        InteractionEnded { interaction, .. }
        | InteractionTransferred { interaction, .. }
        | InteractionEscalated { interaction, .. } => interaction.clone(),
        other => panic!("no interaction in {other:?}"),
    }
}

#[test]
fn an_event_after_an_unfired_deadline_is_refused_until_timers_fire() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    let before = d.snapshot(&["c1"]);
    let got = d.engine.handle(secs(20), &accept("c1", "l1"));
    assert_eq!(
        got,
        Err(EngineError::TimersPending {
            due_at: secs(15),
            now: secs(20)
        })
    );
    assert_eq!(d.snapshot(&["c1"]), before);
}

/// A timer due at T fires before an event at T: an event handled exactly at an unfired
/// deadline is refused too, so an accept can never slip in at the offer's last instant.
#[test]
fn an_event_exactly_at_an_unfired_deadline_is_refused_until_the_timer_fires() {
    let mut d = support_desk();
    d.at(0, login("l1"));
    d.at(0, call("c1", "support"));
    let before = d.snapshot(&["c1"]);
    let got = d.engine.handle(secs(15), &accept("c1", "l1"));
    assert_eq!(
        got,
        Err(EngineError::TimersPending {
            due_at: secs(15),
            now: secs(15)
        })
    );
    assert_eq!(d.snapshot(&["c1"]), before);
}

#[test]
fn the_clock_never_runs_backwards() {
    let mut d = support_desk();
    d.advance(secs(10));
    assert_eq!(d.engine.now(), secs(10));
    d.at(secs(5), call("c1", "support"));
    assert_eq!(d.engine.now(), secs(10));
    assert_eq!(d.interaction("c1").arrived_at, secs(10));
}

// ---------------------------------------------------------------------------------------------
// History, sequence numbers, deadlines
// ---------------------------------------------------------------------------------------------

#[test]
fn the_history_records_every_transition() {
    let q = queue("support", vec![step(0, &[1]), step(25, &[1, 2])]);
    let mut d = l1_and_l2(q);
    d.at(0, call("c1", "support"));
    d.at(secs(5), login("l1")); // offered until 20 s, then l1 backs off until 30 s
    d.advance(secs(25)); // step 1
    d.at(secs(26), login("l2"));
    let offered = offers(&d.log);
    assert_eq!(
        offered,
        vec![("c1".into(), "l1".into()), ("c1".into(), "l2".into())]
    );
    d.at(secs(27), accept("c1", "l2"));
    d.at(secs(40), end("c1"));
    d.advance(secs(50));
    use InteractionState::*;
    let got: Vec<_> = d
        .interaction("c1")
        .history
        .iter()
        .map(|t| (t.at, t.from, t.to, why_kind(&t.why)))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, None, Waiting, "arrived"),
            (secs(5), Some(Waiting), Offered, "offered"),
            (secs(20), Some(Offered), Waiting, "revoked"),
            (secs(25), Some(Waiting), Waiting, "step_reached"),
            (secs(26), Some(Waiting), Offered, "offered"),
            (secs(27), Some(Offered), Connected, "accepted"),
            (secs(40), Some(Connected), WrapUp, "ended"),
            (secs(50), Some(WrapUp), Done, "wrap_up_ended"),
        ]
    );
}

fn why_kind(why: &Why) -> &'static str {
    match why {
        Why::Arrived { .. } => "arrived",
        Why::Offered { .. } => "offered",
        Why::Accepted { .. } => "accepted",
        Why::Declined { .. } => "declined",
        Why::Revoked { .. } => "revoked",
        Why::Abandoned => "abandoned",
        Why::Ended { .. } => "ended",
        Why::WrapUpEnded => "wrap_up_ended",
        Why::StepReached { .. } => "step_reached",
        Why::Overflow { .. } => "overflow",
        Why::Rejected { .. } => "rejected",
        Why::Transferred { .. } => "transferred",
        Why::EscalatedByAgent { .. } => "escalated_by_agent",
        Why::Drained { .. } => "drained",
        Why::StepMovedBack { .. } => "step_moved_back",
        Why::AnsweredOutsideOffer { .. } => "answered_outside_offer",
    }
}

#[test]
fn decision_seq_is_gap_free() {
    let mut d = support_desk();
    let first = d.engine.next_seq();
    d.at(0, login("l1"));
    d.at(0, login("l2"));
    for n in 0..6 {
        d.at(secs(n), call(&format!("c{n}"), "support"));
    }
    d.at(secs(7), decline("c0", "l1", DeclineReason::Busy));
    d.advance(secs(200));
    assert!(d.log.len() > 10);
    for (k, x) in d.log.iter().enumerate() {
        assert_eq!(x.seq, first + k as u64, "decision {k}: {x:?}");
    }
    assert_eq!(d.engine.next_seq(), first + d.log.len() as u64);
}

#[test]
fn next_deadline_is_the_earliest_pending_timer() {
    let mut d = support_desk();
    assert_eq!(
        d.engine.next_deadline(),
        None,
        "an idle engine has no timer"
    );
    d.at(0, login("l1"));
    assert_eq!(d.engine.next_deadline(), None);
    d.at(secs(10), call("c1", "support"));
    // Offered to l1: expiry at 25 s comes before step 1 at 40 s.
    assert_eq!(d.engine.next_deadline(), Some(secs(25)));
    d.at(secs(11), accept("c1", "l1"));
    // Connected: the ladder timer of a connected call is gone.
    assert_eq!(d.engine.next_deadline(), None);
    d.at(secs(20), end("c1"));
    assert_eq!(d.engine.next_deadline(), Some(secs(30)), "wrap-up end");
    d.advance(secs(30));
    assert_eq!(d.engine.next_deadline(), None);
}

/// Cancelling is lazy (see `src/engine/timers.rs`): thousands of answered calls leave cancelled
/// step and expiry timers behind a live one. None of them fires, the next deadline stays the live
/// timer's, and compaction keeps the map bounded.
#[test]
fn cancelled_timers_never_fire_and_do_not_pile_up() {
    let mut busy = queue("support", vec![step(0, &[1]), step(3_600, &[1, 2])]);
    busy.wrap_up_ms = 0;
    let unstaffed = queue("billing", vec![step(0, &[1]), step(1_000, &[1, 2])]);
    let mut d = Driver::new(config(
        vec![busy, unstaffed],
        vec![agent("a", &[("support", 1)])],
    ));
    d.at(0, login("a"));
    d.at(0, call("waits", "billing"));
    for n in 0..6_000u64 {
        let t = 1 + n * 100;
        let id = format!("c{n}");
        let ds = d.at(t, call(&id, "support"));
        assert_eq!(offers(&ds), vec![(id.clone(), "a".into())]);
        d.at(t, accept(&id, "a"));
        d.at(t + 50, end(&id));
    }
    // 12,000 timers were cancelled (a step and an expiry per call); all but a bounded number
    // were compacted away, and the live step timer of `waits` is still the next deadline.
    assert!(
        d.engine.timer_entries() < 2 * 4_096 + 16,
        "{} timer entries",
        d.engine.timer_entries()
    );
    assert_eq!(d.engine.next_deadline(), Some(secs(1_000)));
    let fired = d.advance(secs(1_000));
    assert_eq!(kinds(&fired), vec!["escalated"]);
    assert_eq!(d.interaction("waits").step, Some(1));
    // Every cancelled step timer of the answered calls (due up to an hour later) stays silent.
    let later = d.advance(secs(5_000));
    assert!(later.is_empty(), "cancelled timers fired: {later:?}");
    assert_eq!(d.engine.next_deadline(), None);
}

/// `queues()` counts every queue's agents in one pass; it must agree with `queue(id)` for each.
#[test]
fn all_queue_views_at_once_equal_each_queue_view() {
    let mut d = Driver::new(config(
        vec![
            queue("support", vec![step(0, &[1]), step(30, &[1, 2])]),
            queue("billing", vec![step(0, &[1])]),
            queue("vip", vec![step(0, &[2])]),
        ],
        vec![
            agent("a", &[("support", 1), ("billing", 2)]),
            agent("b", &[("support", 2), ("vip", 2)]),
            agent("c", &[("billing", 1)]),
            agent("d", &[("vip", 2), ("support", 1)]),
        ],
    ));
    d.at(0, login("a"));
    d.at(0, login("b"));
    d.at(0, login("d"));
    d.at(secs(1), call("c1", "support"));
    d.at(secs(2), not_ready("b", "break"));
    d.at(secs(3), call("c2", "billing"));
    d.at(secs(4), call("c3", "billing"));
    let all = d.engine.queues();
    let one_by_one: Vec<_> = ["support", "billing", "vip"]
        .iter()
        .map(|id| d.engine.queue(id).expect("configured"))
        .collect();
    assert_eq!(all, one_by_one);
    assert_eq!(
        all[0]
            .agents
            .values()
            .map(|m| m.values().sum::<usize>())
            .sum::<usize>(),
        3
    );
}

// ---------------------------------------------------------------------------------------------
// Retention of finished interactions
// ---------------------------------------------------------------------------------------------

#[test]
fn finished_calls_beyond_the_retention_are_forgotten_and_their_ids_may_come_back() {
    let mut cfg = config(
        vec![queue("support", support_ladder())],
        vec![agent("l1", &[("support", 1)])],
    );
    cfg.limits.retain_finished = 2;
    let mut d = Driver::new(cfg);
    // Nobody logged in: each call waits, then its caller hangs up.
    for (n, id) in ["c0", "c1", "c2", "c3", "c4"].into_iter().enumerate() {
        let t = secs(n as u64 + 1);
        d.at(t, call(id, "support"));
        d.at(t, abandon(id));
        d.engine.check_consistency().unwrap();
    }
    // The two most recent are kept for reads; the older three are gone.
    for gone in ["c0", "c1", "c2"] {
        assert!(d.engine.interaction(gone).is_none(), "{gone} still held");
        assert!(
            matches!(
                d.try_at(secs(10), abandon(gone)),
                Err(EngineError::UnknownInteraction { ref interaction }) if interaction == gone
            ),
            "{gone} is not unknown"
        );
    }
    assert_eq!(d.interaction("c3").state, InteractionState::Abandoned);
    assert_eq!(d.interaction("c4").state, InteractionState::Abandoned);
    // A kept id is still a duplicate; a forgotten one may arrive again, as a new call that
    // reuses the engine's storage of an evicted one.
    assert!(matches!(
        d.try_at(secs(11), call("c4", "support")),
        Err(EngineError::DuplicateInteraction { .. })
    ));
    d.at(secs(12), call("c1", "support"));
    d.engine.check_consistency().unwrap();
    assert_eq!(d.interaction("c1").state, InteractionState::Waiting);
    assert_eq!(d.interaction("c1").arrived_at, secs(12));
    d.at(secs(13), login("l1"));
    assert_eq!(d.interaction("c1").state, InteractionState::Offered);
    // Its arrival finished nothing, so c3 and c4 are still the ones kept.
    assert!(d.engine.interaction("c3").is_some());
    d.engine.check_consistency().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Refused events
// ---------------------------------------------------------------------------------------------

#[test]
fn a_refused_event_does_not_move_the_engine_clock() {
    let mut d = Driver::new(config(
        vec![queue("q", vec![step(0, &[1])])],
        vec![agent("a", &[("q", 1)])],
    ));
    d.at(0, login("a"));
    let err = d.engine.handle(secs(50), &logout("nobody")).unwrap_err();
    assert!(matches!(err, EngineError::UnknownAgent { .. }), "{err:?}");
    assert_eq!(d.engine.now(), 0, "engine time after a refused event");
    // So the next event, at 10 s, is decided at 10 s, not at the refused event's 50 s.
    let ds = d.engine.handle(secs(10), &call("c1", "q")).unwrap();
    assert_eq!(ds[0].at, secs(10), "offer made at {} ms", ds[0].at);
}

#[test]
fn a_refused_arrival_or_transfer_names_the_interaction() {
    let mut full = queue("full", vec![step(0, &[1])]);
    full.max_waiting = Some(0);
    let mut d = Driver::new(config(
        vec![queue("q1", vec![step(0, &[1])]), full],
        vec![agent("a", &[("q1", 1)])],
    ));
    d.at(0, login("a"));
    d.at(1, call("c1", "q1"));
    d.at(2, accept("c1", "a"));
    let err = d.try_at(3, transfer("c1", "full")).unwrap_err();
    assert!(err.to_string().contains("interaction `c1`"), "{err}");
    let err = d
        .try_at(
            4,
            Arrival::new("c2")
                .channel(Channel::Chat)
                .queue("q1")
                .event(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("interaction `c2`"), "{err}");
}

#[test]
fn a_refused_arrival_or_transfer_to_an_unknown_queue_names_the_interaction() {
    let mut d = Driver::new(config(
        vec![queue("q", vec![step(0, &[1])])],
        vec![agent("a", &[("q", 1)])],
    ));
    d.at(0, login("a"));
    d.at(secs(1), call("c1", "q"));
    d.at(secs(2), accept("c1", "a"));
    let err = d.try_at(secs(3), transfer("c1", "nowhere")).unwrap_err();
    assert_eq!(
        err,
        EngineError::UnknownQueue {
            queue: "nowhere".into(),
            interaction: "c1".into(),
        }
    );
    assert!(err.to_string().contains("interaction `c1`"), "{err}");
    let err = d.try_at(secs(4), call("c2", "nowhere")).unwrap_err();
    assert!(err.to_string().contains("interaction `c2`"), "{err}");
    // Neither changed anything: c1 still connected to `a`, c2 unknown.
    assert_eq!(d.interaction("c1").state, InteractionState::Connected);
    assert!(d.engine.interaction("c2").is_none());
}

#[test]
fn a_late_answer_to_an_earlier_offer_names_the_agent() {
    let mut d = Driver::new(config(
        vec![queue("q", vec![step(0, &[1])])],
        vec![agent("a", &[("q", 1)])],
    ));
    d.at(0, login("a"));
    let first = d.at(secs(1), call("c1", "q"));
    let Some(DecisionKind::Offer { offer: o1, .. }) =
        offer_of(&first, "c1").map(|x| x.kind.clone())
    else {
        panic!("c1 not offered: {first:?}")
    };
    d.at(secs(2), decline("c1", "a", DeclineReason::Rejected));
    // reject_delay_s = 5: offered to `a` again when the back-off ends.
    let again = d.advance(secs(7));
    assert_eq!(offered_to(&again, "c1").as_deref(), Some("a"));
    let late = tierline::engine::Event::OfferAccepted {
        interaction: "c1".into(),
        agent: "a".into(),
        offer: Some(o1.to_string()),
    };
    let err = d.try_at(secs(8), late).unwrap_err();
    assert_eq!(
        err,
        EngineError::StaleOffer {
            interaction: "c1".into(),
            agent: "a".into(),
            offer: o1.to_string(),
        }
    );
    assert!(err.to_string().contains("agent `a`"), "{err}");
}

/// `support` whose step 0 (L1) is skipped when no L1 is logged in, L1+L2 at 30 s; the only L1
/// logged in but not ready, the L2 free, and call `c1` waiting at step 0 since 1 s.
fn an_l1_desk_waiting_for_its_only_l1() -> Driver {
    let mut ladder = vec![step(0, &[1]), step(30, &[1, 2])];
    ladder[0].skip_if_no_agents = true;
    let mut d = l1_and_l2(queue("support", ladder));
    d.at(0, login("l1"));
    d.at(0, not_ready("l1", "lunch"));
    d.at(0, login("l2"));
    let ds = d.at(secs(1), call("c1", "support"));
    assert_eq!(kinds(&ds), vec!["queued"], "an L1 is logged in (not ready)");
    d
}

#[test]
fn when_the_last_l1_logs_out_a_waiting_call_skips_to_the_next_step_at_once() {
    let mut d = an_l1_desk_waiting_for_its_only_l1();
    // The only L1 logs out at 5 s: nobody can take step 0, so step 1 (L1+L2) starts now, not
    // at 31 s, and the idle L2 gets the call.
    let ds = d.at(secs(5), logout("l1"));
    assert_eq!(kinds(&ds), vec!["escalated", "offer"], "{ds:?}");
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l2"), "{ds:?}");
    let c1 = d.interaction("c1");
    assert!(matches!(
        c1.history.iter().find(|t| matches!(t.why, Why::StepReached { .. })),
        Some(t) if t.at == secs(5)
    ));
    // The step timer it had for 31 s is gone: nothing fires then.
    d.at(secs(6), accept("c1", "l2"));
    assert!(d.advance(secs(40)).is_empty());
}

#[test]
fn when_the_last_l1_logs_in_again_as_an_l2_a_waiting_call_skips_to_the_next_step_at_once() {
    let mut d = an_l1_desk_waiting_for_its_only_l1();
    // The only L1 logs in again at 5 s as an L2 of support: nobody can take step 0 any more,
    // so step 1 (L1+L2) starts now, not at 31 s, and l2 (free since 0 s) gets the call.
    let as_l2 = tierline::engine::Event::AgentLogin {
        agent: "l1".into(),
        address: None,
        tiers: Some([("support".to_string(), 2)].into_iter().collect()),
        skills: None,
        capacity: None,
    };
    let ds = d.at(secs(5), as_l2);
    assert_eq!(
        steps_reached(&ds),
        vec![("c1".into(), 1, secs(5))],
        "{ds:?}"
    );
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l2"), "{ds:?}");
    d.engine.check_consistency().unwrap();
}

#[test]
fn a_ringing_call_whose_skip_step_lost_its_last_agent_moves_on_when_the_offer_fails() {
    // L1 first; after 10 s only L2, skipped when no L2 is logged in; after 60 s everyone.
    let mut ladder = vec![step(0, &[1]), step(10, &[2]), step(60, &[1, 2, 3])];
    ladder[1].skip_if_no_agents = true;
    let mut d = Driver::new(config(
        vec![queue("support", ladder)],
        vec![
            agent("l1", &[("support", 1)]),
            agent("l2", &[("support", 2)]),
            agent("l3", &[("support", 3)]),
        ],
    ));
    d.at(0, login("l1"));
    d.at(0, login("l2"));
    d.at(0, login("l3"));
    let ds = d.at(secs(1), call("c1", "support"));
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l1"));
    // The L2 step starts while it rings; an L2 is logged in, so it stays there.
    let ds = d.advance(secs(11));
    assert_eq!(steps_reached(&ds), vec![("c1".into(), 1, secs(11))]);
    // The only L2 leaves while the call still rings l1: nothing waits, nothing moves yet.
    assert!(kinds(&d.at(secs(12), logout("l2"))).is_empty());
    // l1 does not answer (15 s): the call is back on the L2 step with no L2 logged in, so it
    // moves on to everyone at once instead of waiting until 61 s, and the idle L3 gets it
    // (l1 is in its no-answer back-off).
    let ds = d.advance(secs(16));
    assert_eq!(
        steps_reached(&ds),
        vec![("c1".into(), 2, secs(16))],
        "{ds:?}"
    );
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("l3"), "{ds:?}");
    d.engine.check_consistency().unwrap();
}

#[test]
fn skills_no_call_or_agent_holds_any_more_are_forgotten_and_matching_is_unchanged() {
    let mut cfg = config(
        vec![queue("support", support_ladder())],
        vec![with_skills(agent("l1", &[("support", 1)]), &["es"])],
    );
    cfg.limits.retain_finished = 1;
    let mut d = Driver::new(cfg);
    d.at(0, login("l1"));
    // Calls needing one-off skills come and go; each is abandoned and, two calls later, evicted.
    for n in 0..50u64 {
        let id = format!("x{n}");
        let skill = format!("one-off-{n}");
        d.at(
            secs(n),
            Arrival::new(&id).queue("support").skills(&[&skill]).event(),
        );
        d.at(secs(n), abandon(&id));
        d.engine.check_consistency().unwrap();
    }
    // Matching by skill still works after all that reuse of skill ids.
    let ds = d.at(
        secs(60),
        Arrival::new("fr").queue("support").skills(&["fr"]).event(),
    );
    assert_eq!(kinds(&ds), vec!["queued"], "l1 does not speak fr");
    let ds = d.at(
        secs(61),
        Arrival::new("es").queue("support").skills(&["es"]).event(),
    );
    assert_eq!(offered_to(&ds, "es").as_deref(), Some("l1"));
    assert_eq!(
        d.interaction("fr").skills,
        vec!["fr".into()] as Vec<std::sync::Arc<str>>
    );
    d.engine.check_consistency().unwrap();
    // A snapshot taken now restores to an engine that decides exactly the same from here on.
    let mut bytes = Vec::new();
    d.engine.write_snapshot(&mut bytes).unwrap();
    let mut restored = tierline::engine::Engine::read_snapshot(&mut bytes.as_slice()).unwrap();
    restored.check_consistency().unwrap();
    let next = Arrival::new("y")
        .queue("support")
        .skills(&["new-skill"])
        .event();
    let a = d.engine.handle(secs(62), &next).unwrap();
    let b = restored.handle(secs(62), &next).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    let (mut after_a, mut after_b) = (Vec::new(), Vec::new());
    d.engine.write_snapshot(&mut after_a).unwrap();
    restored.write_snapshot(&mut after_b).unwrap();
    assert!(after_a == after_b, "the restored engine's state drifted");
}

#[test]
fn many_skill_combinations_that_waited_and_left_leave_no_empty_sets_behind() {
    let mut d = Driver::new(config(
        vec![queue("support", support_ladder())],
        vec![with_skills(agent("l1", &[("support", 1)]), &["es"])],
    ));
    d.at(0, login("l1"));
    d.at(0, not_ready("l1", "meeting"));
    // 40 calls, each needing a combination of its own, wait and then hang up.
    for n in 0..40u64 {
        let id = format!("x{n}");
        let skills = [format!("lang-{n}"), "es".to_string()];
        d.at(
            secs(1),
            Arrival::new(&id)
                .queue("support")
                .skills(&[&skills[0], &skills[1]])
                .event(),
        );
    }
    for n in 0..40u64 {
        d.at(secs(2), abandon(&format!("x{n}")));
    }
    // check_consistency also checks that a queue with many (class, skills) sets keeps no empty
    // one (a freed agent would look at each of them).
    d.engine.check_consistency().unwrap();
    let ds = d.at(
        secs(3),
        Arrival::new("es").queue("support").skills(&["es"]).event(),
    );
    assert_eq!(kinds(&ds), vec!["queued"]);
    let ds = d.at(secs(4), available("l1"));
    assert_eq!(offered_to(&ds, "es").as_deref(), Some("l1"));
    d.engine.check_consistency().unwrap();
}

#[test]
fn a_login_beyond_the_agent_limit_is_refused_and_known_agents_still_log_in() {
    let mut cfg = config(
        vec![queue("support", support_ladder())],
        vec![agent("l1", &[("support", 1)])],
    );
    cfg.limits.max_agents = 2;
    let mut d = Driver::new(cfg);
    d.at(0, login("l1"));
    let walk_in = |id: &str| tierline::engine::Event::AgentLogin {
        agent: id.into(),
        address: Some(format!("sip:{id}@pbx")),
        tiers: Some([("support".to_string(), 1)].into()),
        skills: None,
        capacity: None,
    };
    d.at(1, walk_in("x1"));
    d.advance(2);
    let before = d.snapshot(&[]);
    let err = d.try_at(2, walk_in("x2")).unwrap_err();
    assert!(
        matches!(&err, EngineError::TooManyAgents { agent, limit: 2 } if agent == "x2"),
        "{err:?}"
    );
    assert_eq!(err.code(), "too_many_agents");
    assert_eq!(d.snapshot(&[]), before, "a refused login changes nothing");
    // Agents the engine already holds log out and in again as before.
    d.at(3, logout("x1"));
    d.at(4, walk_in("x1"));
    assert_eq!(d.agent("x1").status, AgentStatus::Available);
}

/// A login that lowers the chat capacity below the chats the agent holds takes none away; the
/// agent gets no new chat until it holds fewer than the new capacity (docs/ROUTING.md, rule 4).
#[test]
fn a_capacity_lowered_below_the_chats_held_blocks_new_chats_until_the_load_is_under_it() {
    let mut q = with_channels(queue("web", vec![step(0, &[1])]), &[Channel::Chat]);
    q.wrap_up_ms = 0;
    let mut d = Driver::new(config(vec![q], vec![agent("a", &[("web", 1)])]));
    d.at(0, login("a"));
    for id in ["ch1", "ch2", "ch3"] {
        let ds = d.at(secs(1), chat(id, "web"));
        assert_eq!(offered_to(&ds, id).as_deref(), Some("a"), "{ds:?}");
        d.at(secs(1), accept(id, "a"));
    }
    let down_to_one = tierline::engine::Event::AgentLogin {
        agent: "a".into(),
        address: None,
        tiers: None,
        skills: None,
        capacity: Some(std::collections::BTreeMap::from([(Channel::Chat, 1)])),
    };
    assert!(d.at(secs(2), down_to_one).is_empty());
    assert_eq!(
        d.interaction("ch1").state,
        InteractionState::Connected,
        "nothing is taken away"
    );
    assert_eq!(kinds(&d.at(secs(3), chat("ch4", "web"))), vec!["queued"]);
    // Two chats end: one held, capacity 1, still full.
    d.at(secs(4), end("ch1"));
    d.at(secs(4), end("ch2"));
    assert_eq!(d.interaction("ch4").state, InteractionState::Waiting);
    // The last one ends (no wrap-up): under capacity, so the waiting chat is offered at once.
    let ds = d.at(secs(5), end("ch3"));
    assert_eq!(offered_to(&ds, "ch4").as_deref(), Some("a"), "{ds:?}");
}

// ---------------------------------------------------------------------------------------------
// A phone that answers after tierline let go of its offer (`interaction.answered`)
// ---------------------------------------------------------------------------------------------

/// `support` (L1 only, 15 s offers), agents `a` and `b`; `c1` rang `a` from 1 s and the offer
/// expired at 16 s, so `a` is backed off and `c1` rings `b`.
fn a_call_ringing_b_after_a_missed_it() -> Driver {
    let mut d = Driver::new(config(
        vec![queue("support", vec![step(0, &[1])])],
        vec![agent("a", &[("support", 1)]), agent("b", &[("support", 1)])],
    ));
    d.engine.set_record_facts(true);
    d.at(0, login("a"));
    d.at(secs(1), login("b"));
    let ds = d.at(secs(1), call("c1", "support"));
    assert_eq!(
        offered_to(&ds, "c1").as_deref(),
        Some("a"),
        "a idle longest"
    );
    let ds = d.advance(secs(16));
    assert_eq!(
        revocations(&ds),
        vec![("c1".into(), "a".into(), RevokeReason::Expired)]
    );
    assert_eq!(offered_to(&ds, "c1").as_deref(), Some("b"), "{ds:?}");
    d
}

#[test]
fn a_phone_answering_after_its_offer_expired_takes_the_call_from_the_next_agent() {
    let mut d = a_call_ringing_b_after_a_missed_it();
    d.engine.take_facts();
    // a's phone rang on past the expiry and was answered at 16.3 s.
    let ds = d.at(16_300, answered("c1", "a"));
    assert_eq!(
        revocations(&ds),
        vec![("c1".into(), "b".into(), RevokeReason::AnsweredElsewhere)],
        "b's phone must stop ringing"
    );
    assert_eq!(
        kinds(&ds),
        vec!["offer_revoked"],
        "nothing else waits: {ds:?}"
    );
    let c1 = d.interaction("c1");
    assert_eq!(c1.state, InteractionState::Connected);
    assert_eq!(c1.owner, Owner::Agent("a".into()));
    assert!(matches!(
        c1.history.last().map(|t| (&t.why, t.at)),
        Some((Why::AnsweredOutsideOffer { agent }, 16_300)) if &**agent == "a"
    ));
    // a holds it connected; the expiry's missed offer is forgiven, the answer counted.
    let a = d.agent("a");
    assert_eq!(a.slots.len(), 1);
    assert_eq!(a.slots[0].phase, SlotPhase::Connected);
    assert_eq!(a.consecutive_missed_offers, 0);
    assert_eq!(a.accepted_since_login, 1);
    // b is not blamed: no back-off, no missed offer, and it is free at once.
    let b = d.agent("b");
    assert!(b.slots.is_empty());
    assert_eq!(b.backoff_until, None);
    assert_eq!(b.consecutive_missed_offers, 0);
    let ds = d.at(secs(17), call("c2", "support"));
    assert_eq!(offered_to(&ds, "c2").as_deref(), Some("b"));
    // Answered after a 15.3 s wait, not abandoned; b's offer ended as revoked.
    let facts = d.engine.take_facts();
    assert!(facts.iter().any(|f| matches!(f,
        Fact::Answered { interaction, agent, wait_ms, .. }
            if &**interaction == "c1" && &**agent == "a" && *wait_ms == 15_300)));
    assert!(!facts.iter().any(|f| matches!(f, Fact::Abandoned { .. })));
    // The call ends normally on a's slot.
    d.at(secs(18), accept("c2", "b"));
    let ds = d.at(secs(60), end("c1"));
    assert!(ds.is_empty(), "{ds:?}");
    assert_eq!(d.interaction("c1").state, InteractionState::WrapUp);
}

#[test]
fn a_waiting_call_answered_by_an_agent_leaves_the_queue_connected() {
    let mut d = Driver::new(config(
        vec![queue("support", support_ladder())],
        vec![
            agent("l1", &[("support", 1)]),
            agent("l3", &[("support", 3)]),
        ],
    ));
    d.at(0, login("l1"));
    d.at(0, not_ready("l1", "lunch"));
    d.at(secs(1), call("c1", "support"));
    assert_eq!(d.waiting("support"), vec!["c1"]);
    // The PBX connected it to l3 on its own (not a tier step 0 allows): tierline follows.
    let ds = d.at(secs(5), answered("c1", "l3"));
    assert!(ds.is_empty(), "{ds:?}");
    assert!(d.waiting("support").is_empty());
    let c1 = d.interaction("c1");
    assert_eq!(c1.state, InteractionState::Connected);
    assert_eq!(c1.owner, Owner::Agent("l3".into()));
    // Its ladder stopped: nothing fires at 30 s or 60 s.
    assert!(d.advance(secs(90)).is_empty());
    assert_eq!(
        d.agent("l3").status,
        AgentStatus::Offline,
        "its status is its own"
    );
}

#[test]
fn an_answer_to_the_offer_ringing_that_same_agent_is_an_accept() {
    let mut d = a_call_ringing_b_after_a_missed_it();
    let ds = d.at(secs(17), answered("c1", "b"));
    assert!(ds.is_empty(), "{ds:?}");
    let c1 = d.interaction("c1");
    assert_eq!(c1.owner, Owner::Agent("b".into()));
    assert!(matches!(
        c1.history.last().map(|t| &t.why),
        Some(Why::Accepted { .. })
    ));
}

#[test]
fn an_answer_the_agent_has_no_room_for_or_for_a_connected_call_is_refused_and_changes_nothing() {
    let mut d = a_call_ringing_b_after_a_missed_it();
    d.at(secs(17), accept("c1", "b"));
    d.at(secs(18), call("c2", "support"));
    d.advance(secs(19));
    let before = d.snapshot(&["c1", "c2"]);
    // b is on c1 (voice is exclusive): it cannot have answered c2 too.
    let err = d.try_at(secs(19), answered("c2", "b")).unwrap_err();
    assert_eq!(err.code(), "agent_busy");
    assert!(
        err.to_string()
            .contains("agent `b` has no room for interaction `c2`")
            && err.to_string().contains("1 exclusive"),
        "{err}"
    );
    // c1 is connected already: a second answer is not a transition.
    let err = d.try_at(secs(19), answered("c1", "a")).unwrap_err();
    assert_eq!(err.code(), "invalid_transition");
    assert!(err.to_string().contains("`interaction.answered`"), "{err}");
    let err = d.try_at(secs(19), answered("c2", "nobody")).unwrap_err();
    assert_eq!(err.code(), "unknown_agent");
    assert_eq!(d.snapshot(&["c1", "c2"]), before);
}

/// A phone that answers call `x` late (its offer expired and `x` now rings `b`) while tierline
/// rings it for `y`: the phone is busy with `x`, so `y` is taken back (`agent_answered_other`,
/// no blame) and placed by the queue's strategy among the free agents, `b` (free of `x` at once,
/// idle since 2 s) included: `b` before `c` (back from a break at 27 s).
#[test]
fn an_agent_whose_phone_answered_one_call_is_not_left_ringing_for_another() {
    let mut d = Driver::new(config(
        vec![queue("support", vec![step(0, &[1])])],
        vec![
            agent("a", &[("support", 1)]),
            agent("b", &[("support", 1)]),
            agent("c", &[("support", 1)]),
        ],
    ));
    d.at(0, login("a"));
    let ds = d.at(secs(1), call("x", "support"));
    assert_eq!(offered_to(&ds, "x").as_deref(), Some("a"));
    d.at(secs(2), login("b"));
    // x's offer expires at 16 s: a backs off (10 s), x rings b.
    let ds = d.advance(secs(16));
    assert_eq!(offered_to(&ds, "x").as_deref(), Some("b"), "{ds:?}");
    d.at(secs(20), login("c"));
    d.at(secs(20), not_ready("c", "coffee"));
    // a is back at 26 s and is rung for y at 27 s.
    let ds = d.at(secs(27), call("y", "support"));
    assert_eq!(offered_to(&ds, "y").as_deref(), Some("a"), "{ds:?}");
    d.at(secs(27), available("c"));
    // a's phone picks up x (the old ring) at 28 s.
    let ds = d.at(secs(28), answered("x", "a"));
    assert_eq!(
        revocations(&ds),
        vec![
            ("x".into(), "b".into(), RevokeReason::AnsweredElsewhere),
            ("y".into(), "a".into(), RevokeReason::AgentAnsweredOther),
        ],
        "{ds:?}"
    );
    assert_eq!(offered_to(&ds, "y").as_deref(), Some("b"), "{ds:?}");
    let x = d.interaction("x");
    assert_eq!(
        (x.state, x.owner),
        (InteractionState::Connected, Owner::Agent("a".into()))
    );
    let a = d.agent("a");
    assert_eq!(a.slots.len(), 1, "a holds x alone");
    assert_eq!(
        a.consecutive_missed_offers, 0,
        "no miss for the taken-back y"
    );
    assert_eq!(d.agent("b").backoff_until, None, "no blame for b either");
    assert!(d.agent("c").slots.is_empty());
}
