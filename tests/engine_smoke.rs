//! A short end-to-end walk through the engine: L1 first, L2 after the 30 s step, offers, wrap-up.

use std::collections::BTreeMap;

use tierline::config::{AgentConfig, Channel, QueueConfig, RoutingConfig, Step};
use tierline::engine::{DecisionKind, Engine, Event, InteractionState};

fn agent(id: &str, tier: u8) -> AgentConfig {
    AgentConfig {
        id: id.into(),
        address: format!("sip:{id}@pbx"),
        tiers: BTreeMap::from([("support".to_string(), tier)]),
        skills: vec![],
        capacity: BTreeMap::new(),
    }
}

fn login(id: &str) -> Event {
    Event::AgentLogin {
        agent: id.into(),
        address: None,
        tiers: None,
        skills: None,
        capacity: None,
    }
}

fn arrive(id: &str) -> Event {
    Event::InteractionArrived {
        interaction: id.into(),
        channel: Channel::Voice,
        queue: Some("support".into()),
        priority: None,
        skills: vec![],
        customer: None,
        attributes: BTreeMap::new(),
    }
}

#[test]
fn l1_first_then_l2_after_the_step_then_wrap_up_frees_the_agent() {
    let mut q = QueueConfig::with_defaults("support");
    q.steps = vec![Step::new(0, &[1]), Step::new(30_000, &[1, 2]).boosted(5)];
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(q);
    cfg.agents = vec![agent("a1", 1), agent("a2", 2)];
    let mut e = Engine::new(cfg, 0);
    assert!(e.handle(0, &login("a1")).unwrap().is_empty());
    assert!(e.handle(0, &login("a2")).unwrap().is_empty());
    let d = e.handle(1_000, &arrive("c1")).unwrap();
    assert!(matches!(&d[0].kind, DecisionKind::Offer { agent, .. } if &**agent == "a1"));
    let d = e.handle(2_000, &arrive("c2")).unwrap();
    assert!(matches!(
        &d[0].kind,
        DecisionKind::Queued {
            position: Some(1),
            ..
        }
    ));
    assert_eq!(e.next_deadline(), Some(16_000)); // c1's offer expiry
    e.handle(
        3_000,
        &Event::OfferAccepted {
            interaction: "c1".into(),
            agent: "a1".into(),
            offer: None,
        },
    )
    .unwrap();
    assert_eq!(e.next_deadline(), Some(32_000));
    let fired = e.advance(40_000);
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert_eq!(fired[0].at, 32_000);
    assert!(matches!(
        &fired[0].kind,
        DecisionKind::Escalated { step: Some(1), .. }
    ));
    assert!(matches!(&fired[1].kind, DecisionKind::Offer { agent, .. } if &**agent == "a2"));
    e.handle(
        40_000,
        &Event::OfferAccepted {
            interaction: "c2".into(),
            agent: "a2".into(),
            offer: None,
        },
    )
    .unwrap();
    e.handle(
        41_000,
        &Event::InteractionEnded {
            interaction: "c1".into(),
            resolved: Some(true),
        },
    )
    .unwrap();
    assert_eq!(e.interaction("c1").unwrap().state, InteractionState::WrapUp);
    let fired = e.advance(51_000);
    assert!(fired.is_empty());
    assert_eq!(e.interaction("c1").unwrap().state, InteractionState::Done);
    let c = e.counts();
    assert_eq!(c.arrived, c.sum_of_states());
    e.check_consistency().unwrap();
    let seqs: Vec<u64> = (1..e.next_seq()).collect();
    assert_eq!(seqs.len(), 4);
}

#[test]
fn skip_if_no_agents_counts_logins_and_logouts() {
    let mut q = QueueConfig::with_defaults("support");
    q.steps = vec![
        Step {
            after_ms: 0,
            tiers: vec![1],
            priority_boost: 0,
            skip_if_no_agents: true,
        },
        Step::new(30_000, &[1, 2]),
    ];
    let mut cfg = RoutingConfig::empty();
    cfg.queues.push(q);
    cfg.agents = vec![agent("a1", 1), agent("a2", 2)];
    let mut e = Engine::new(cfg, 0);
    e.handle(0, &login("a2")).unwrap();
    // No L1 logged in: step 0 is skipped and the L2 agent gets the call at once.
    let d = e.handle(1, &arrive("c1")).unwrap();
    assert!(
        matches!(&d[0].kind, DecisionKind::Escalated { step: Some(1), .. }),
        "{d:?}"
    );
    assert!(matches!(&d[1].kind, DecisionKind::Offer { agent, .. } if &**agent == "a2"));
    e.handle(2, &login("a1")).unwrap();
    e.handle(
        3,
        &Event::AgentState {
            agent: "a1".into(),
            state: tierline::engine::RequestedState::NotReady,
            reason: Some("break".into()),
        },
    )
    .unwrap();
    // L1 logged in (not ready): step 0 is not skipped, c2 waits.
    let d = e.handle(4, &arrive("c2")).unwrap();
    assert!(matches!(&d[0].kind, DecisionKind::Queued { .. }), "{d:?}");
    e.handle(5, &Event::AgentLogout { agent: "a1".into() })
        .unwrap();
    let d = e.handle(6, &arrive("c3")).unwrap();
    assert!(
        matches!(&d[0].kind, DecisionKind::Escalated { step: Some(1), .. }),
        "{d:?}"
    );
    e.check_consistency().unwrap();
}
