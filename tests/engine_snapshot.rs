//! A restored snapshot makes byte-identical decisions to the engine it was taken from.

mod replayable;

use std::collections::BTreeMap;

use replayable::mixed_desk;
use tierline::config::{Channel, RoutingConfig, Strategy};
use tierline::engine::{DecisionKind, DeclineReason, Engine, Event, RejectReason, Why};

fn config() -> RoutingConfig {
    mixed_desk(7, 6)
}

/// A deterministic mixed workload: arrivals on two channels, accepts, declines, ends.
fn drive(e: &mut Engine, from: u64, to: u64) -> Vec<String> {
    let mut log = Vec::new();
    for n in from..to {
        let now = n * 1_500;
        let mut decisions = e.advance(now);
        let channel = if n % 3 == 0 {
            Channel::Chat
        } else {
            Channel::Voice
        };
        let ev = arrival(format!("i{n}"), channel, Some((n % 4) as i32));
        decisions.extend(e.handle(now, &ev).unwrap());
        // React to offers: accept most, decline every fifth, end older calls.
        let offers: Vec<(String, String)> = decisions
            .iter()
            .filter_map(|d| match &d.kind {
                DecisionKind::Offer {
                    interaction, agent, ..
                } => Some((interaction.to_string(), agent.to_string())),
                _ => None,
            })
            .collect();
        for (k, (i, a)) in offers.into_iter().enumerate() {
            let ev = if (n + k as u64) % 5 == 0 {
                Event::OfferDeclined {
                    interaction: i,
                    agent: a,
                    reason: DeclineReason::Busy,
                    offer: None,
                }
            } else {
                Event::OfferAccepted {
                    interaction: i,
                    agent: a,
                    offer: None,
                }
            };
            decisions.extend(e.handle(now, &ev).unwrap());
        }
        if n >= 4 {
            let _ = e
                .handle(
                    now,
                    &Event::InteractionEnded {
                        interaction: format!("i{}", n - 4),
                        resolved: None,
                    },
                )
                .map(|d| decisions.extend(d));
        }
        log.extend(decisions.iter().map(|d| serde_json::to_string(d).unwrap()));
    }
    log
}

/// The roster logged in and the workload driven for its first 40 steps.
fn staffed_and_driven() -> Engine {
    let mut engine = staffed(config());
    drive(&mut engine, 0, 40);
    engine
}

/// `a<n>` logs in with the roster's address, tiers, skills and capacity.
fn login(n: usize) -> Event {
    Event::AgentLogin {
        agent: format!("a{n}"),
        address: None,
        tiers: None,
        skills: None,
        capacity: None,
    }
}

/// An engine with the six agents of the desk logged in at 0.
fn staffed(config: RoutingConfig) -> Engine {
    let mut engine = Engine::new(config, 0);
    for n in 0..6 {
        engine.handle(0, &login(n)).unwrap();
    }
    engine
}

/// A `support` arrival on `channel` with no skills or attributes.
fn arrival(interaction: String, channel: Channel, priority: Option<i32>) -> Event {
    Event::InteractionArrived {
        interaction,
        channel,
        queue: Some("support".into()),
        priority,
        skills: vec![],
        customer: None,
        attributes: BTreeMap::new(),
    }
}

#[test]
fn a_restored_snapshot_decides_exactly_like_the_original() {
    let mut original = staffed_and_driven();
    let mut bytes = Vec::new();
    original.write_snapshot(&mut bytes).unwrap();
    let mut restored = Engine::read_snapshot(&mut bytes.as_slice()).unwrap();
    restored.check_consistency().unwrap();
    assert_eq!(original.counts(), restored.counts());
    assert_eq!(original.next_seq(), restored.next_seq());
    assert_eq!(original.next_deadline(), restored.next_deadline());
    let a = drive(&mut original, 40, 120);
    let b = drive(&mut restored, 40, 120);
    assert!(
        a.len() > 100,
        "the workload must decide things: {}",
        a.len()
    );
    assert_eq!(a, b);
}

/// The agents offered in `decisions`, in order.
fn offered(decisions: &[String]) -> Vec<String> {
    decisions
        .iter()
        .filter_map(|d| {
            let v: serde_json::Value = serde_json::from_str(d).ok()?;
            (v["type"] == "offer").then(|| v["agent"].as_str().map(str::to_string))?
        })
        .collect()
}

/// A random queue's picks after a restore are the ones the live engine makes: the pool is a
/// function of the state (not of the order agents were filed in) and the generator's state is
/// in the snapshot. Twenty agents, most of them free at each arrival, in two tiers, with
/// logins and logouts before the snapshot so that the order agents were filed in is not the
/// order a restore files them in.
#[test]
fn a_restored_snapshot_draws_the_same_random_picks() {
    let mut config = mixed_desk(11, 20);
    config.queues[0].wrap_up_ms = 0;
    let mut original = Engine::new(config, 0);
    for n in (0..20).rev() {
        original.handle(0, &login(n)).unwrap();
    }
    for n in [3, 8, 15] {
        let logout = Event::AgentLogout {
            agent: format!("a{n}"),
        };
        original.handle(0, &logout).unwrap();
        original.handle(0, &login(n)).unwrap();
    }
    drive(&mut original, 0, 30);
    let mut bytes = Vec::new();
    original.write_snapshot(&mut bytes).unwrap();
    let mut restored = Engine::read_snapshot(&mut bytes.as_slice()).unwrap();
    restored.check_consistency().unwrap();
    let a = drive(&mut original, 30, 90);
    let b = drive(&mut restored, 30, 90);
    let picks = offered(&a);
    let distinct: std::collections::BTreeSet<&String> = picks.iter().collect();
    assert!(
        picks.len() >= 50 && distinct.len() >= 10,
        "the workload must make many random picks among many agents: {picks:?}"
    );
    assert_eq!(
        picks,
        offered(&b),
        "after the restore the random picks went another way"
    );
    assert_eq!(a, b);
}

/// Round-robin continues after the agent the original offered to last, not from the first.
#[test]
fn a_restored_snapshot_continues_the_round_robin_rotation() {
    let mut config = config();
    for q in &mut config.queues {
        q.strategy = Strategy::RoundRobin;
        q.wrap_up_ms = 0;
    }
    // Every call is taken and ended at once, so every agent is free at each arrival and only
    // the rotation decides who is offered.
    fn call(e: &mut Engine, n: u64) -> String {
        let now = n * 1_000;
        let arrived = arrival(format!("c{n}"), Channel::Voice, None);
        let decisions = e.handle(now, &arrived).unwrap();
        let agent = decisions
            .iter()
            .find_map(|d| match &d.kind {
                DecisionKind::Offer { agent, .. } => Some(agent.to_string()),
                _ => None,
            })
            .expect("a free agent is offered every call");
        for ev in [
            Event::OfferAccepted {
                interaction: format!("c{n}"),
                agent: agent.clone(),
                offer: None,
            },
            Event::InteractionEnded {
                interaction: format!("c{n}"),
                resolved: None,
            },
        ] {
            e.handle(now, &ev).unwrap();
        }
        agent
    }
    let mut original = staffed(config);
    let before: Vec<String> = (1..=4).map(|n| call(&mut original, n)).collect();
    let mut bytes = Vec::new();
    original.write_snapshot(&mut bytes).unwrap();
    let mut restored = Engine::read_snapshot(&mut bytes.as_slice()).unwrap();
    restored.check_consistency().unwrap();
    let a: Vec<String> = (5..=10).map(|n| call(&mut original, n)).collect();
    let b: Vec<String> = (5..=10).map(|n| call(&mut restored, n)).collect();
    // The rotation really rotates (over the three L1 agents): no agent twice in a row, and the
    // snapshot was taken after it came round to the first agent again, so starting over from
    // the first would differ.
    assert_eq!(before, ["a0", "a2", "a4", "a0"]);
    assert_eq!(a[..3], ["a2", "a4", "a0"]);
    assert_eq!(
        a, b,
        "after the restore the rotation went {b:?} instead of {a:?}"
    );
}

#[test]
fn a_capture_writes_the_state_of_its_moment_even_after_the_engine_moved_on() {
    let mut engine = staffed_and_driven();
    let mut then = Vec::new();
    engine.write_snapshot(&mut then).unwrap();
    let capture = engine.capture();
    let later = drive(&mut engine, 40, 80);
    assert!(
        !later.is_empty(),
        "the engine must change after the capture"
    );
    let mut now = Vec::new();
    engine.write_snapshot(&mut now).unwrap();
    let mut captured = Vec::new();
    capture.write_snapshot(&mut captured).unwrap();
    assert_eq!(
        captured, then,
        "the capture must encode the state at its moment"
    );
    assert_ne!(captured, now);
    let mut restored = Engine::read_snapshot(&mut captured.as_slice()).unwrap();
    restored.check_consistency().unwrap();
    assert_eq!(drive(&mut restored, 40, 80), later);
}

/// Live interactions are bounded by `max_live_interactions` and finished ones by
/// `retain_finished`, so the state of an engine that holds at most 10 finished calls must not
/// grow with the number of calls it has seen. Each call's `skills` are interned for ever
/// (`skill_names`, `skill_sets`): memory and every snapshot grow by each distinct name a client
/// ever sent.
#[test]
fn state_does_not_grow_with_the_skill_names_of_calls_long_gone() {
    fn snapshot_after(n: usize) -> usize {
        let mut r = RoutingConfig::empty();
        r.queues
            .push(tierline::config::QueueConfig::with_defaults("support"));
        r.limits.retain_finished = 10;
        let mut e = Engine::new(r, 1_000);
        for i in 0..n {
            let id = format!("c{i}");
            e.handle(
                1_000,
                &Event::InteractionArrived {
                    interaction: id.clone(),
                    channel: Channel::Voice,
                    queue: Some("support".into()),
                    priority: None,
                    skills: vec![format!("skill-{i}-{}", "x".repeat(200))],
                    customer: None,
                    attributes: BTreeMap::new(),
                },
            )
            .unwrap();
            e.handle(1_000, &Event::InteractionAbandoned { interaction: id })
                .unwrap();
        }
        let mut out = Vec::new();
        e.write_snapshot(&mut out).unwrap();
        out.len()
    }
    let small = snapshot_after(100);
    let large = snapshot_after(5_000);
    assert!(
        large < small * 2,
        "snapshot after 100 calls: {small} B; after 5,000 calls: {large} B"
    );
}

/// Every history entry survives a snapshot as it was, including those whose optional fields
/// are absent: an overflow to a PBX target has no queue, a rejection for closed hours names
/// its target, an arrival sent to its queue by name has no rule.
#[test]
fn histories_read_back_from_a_snapshot_exactly_as_written() {
    let text = r#"
[[queue]]
id = "sales"
channels = ["voice"]
max_wait_s = 5
overflow = { target = "sip:vm@pbx" }
steps = [{ after_s = 0, tiers = [1] }]

[[queue]]
id = "night"
channels = ["voice"]
closed_target = "sip:closed@pbx"
schedule = { tz = "UTC" }
steps = [{ after_s = 0, tiers = [1] }]
"#;
    let cfg = tierline::config::parse(text, "snap.toml")
        .unwrap_or_else(|e| panic!("{e}"))
        .routing;
    let mut engine = Engine::new(cfg, 0);
    let arrive = |id: &str, queue: &str| Event::InteractionArrived {
        interaction: id.into(),
        channel: Channel::Voice,
        queue: Some(queue.into()),
        priority: None,
        skills: vec![],
        customer: None,
        attributes: BTreeMap::new(),
    };
    engine.handle(0, &arrive("gone", "sales")).unwrap();
    let overflowed = engine.advance(5_000);
    assert!(
        overflowed
            .iter()
            .any(|d| matches!(&d.kind, DecisionKind::Overflow { target: Some(t), .. } if &**t == "sip:vm@pbx")),
        "{overflowed:?}"
    );
    let refused = engine.handle(6_000, &arrive("late", "night")).unwrap();
    assert!(
        refused
            .iter()
            .any(|d| matches!(&d.kind, DecisionKind::Rejected { .. })),
        "{refused:?}"
    );
    let mut bytes = Vec::new();
    engine.write_snapshot(&mut bytes).unwrap();
    let restored = Engine::read_snapshot(&mut bytes.as_slice()).unwrap();
    for id in ["gone", "late"] {
        let before = engine.interaction(id).unwrap();
        let after = restored.interaction(id).unwrap();
        assert_eq!(before.history, after.history, "history of {id}");
    }
    let late = restored.interaction("late").unwrap();
    assert_eq!(
        late.history.last().map(|t| &t.why),
        Some(&Why::Rejected {
            reason: RejectReason::Closed,
            target: Some("sip:closed@pbx".into())
        })
    );
}
