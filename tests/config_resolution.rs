//! What a valid config file resolves to: the shipped `config/tierline.toml`, the defaults chain
//! (queue field → `[defaults]` → built-in), seconds → milliseconds, and opening hours.

use std::collections::BTreeMap;
use std::path::Path;

use tierline::config::daemon::{DaemonConfig, SyncMode};
use tierline::config::{
    load, parse, summary, Channel, ChannelSettings, Limits, Overflow, QueueConfig, Rule, Step,
    Strategy,
};

fn step(after_ms: u64, tiers: &[u8], priority_boost: i32, skip_if_no_agents: bool) -> Step {
    Step {
        after_ms,
        tiers: tiers.to_vec(),
        priority_boost,
        skip_if_no_agents,
    }
}

fn shipped() -> tierline::config::LoadedConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tierline.toml");
    match load(&path) {
        Ok(c) => c,
        Err(e) => panic!("the shipped config must be valid:\n{e}"),
    }
}

#[test]
fn the_shipped_support_queue_climbs_l1_l2_l3_at_0_30_60_seconds() {
    let config = shipped();
    let support = config.routing.queue("support").expect("support queue");
    let mut expected = QueueConfig::with_defaults("support");
    expected.channels = vec![Channel::Voice, Channel::Chat, Channel::Email];
    expected.steps = vec![
        step(0, &[1], 0, false),
        step(30_000, &[1, 2], 0, false),
        step(60_000, &[1, 2, 3], 5, false),
    ];
    expected.max_wait_ms = Some(600_000);
    expected.overflow = Some(Overflow::Target("sip:voicemail@pbx".into()));
    expected.max_waiting = Some(500);
    expected.escalation_priority_boost = 3;
    assert_eq!(support, &expected);
}

#[test]
fn the_shipped_complaints_queue_starts_at_l3_and_gets_priority_from_a_rule() {
    let config = shipped();
    let complaints = config
        .routing
        .queue("complaints")
        .expect("complaints queue");
    assert_eq!(complaints.steps[0], step(0, &[3], 0, false));
    assert_eq!(complaints.strategy, Strategy::TierOrder);
    assert_eq!(complaints.sla_ms, 60_000);
    assert_eq!(complaints.wrap_up_ms, 30_000);
    assert_eq!(complaints.overflow, Some(Overflow::Queue("support".into())));
    assert_eq!(
        config.routing.rules[0],
        Rule {
            when: BTreeMap::from([("category".to_string(), "complaint".to_string())]),
            queue: "complaints".into(),
            priority: Some(10),
        }
    );
    assert_eq!(config.routing.default_queue.as_deref(), Some("support"));
}

#[test]
fn the_shipped_sales_queue_keeps_london_office_hours() {
    let config = shipped();
    let sales = config.routing.queue("sales").expect("sales queue");
    let schedule = sales.schedule.as_ref().expect("sales has a schedule");
    assert_eq!(schedule.tz, chrono_tz::Europe::London);
    // Monday 2024-01-08 (GMT = UTC in winter): 09:00 open, 18:00 closed; Sunday closed.
    assert!(schedule.is_open(1_704_704_400_000));
    assert!(!schedule.is_open(1_704_736_800_000));
    assert!(!schedule.is_open(1_704_618_000_000));
    // Monday 2024-07-08 08:30 BST is 07:30 UTC: open in London time.
    assert!(schedule.is_open(1_720_423_800_000));
    assert_eq!(
        sales.closed_target.as_deref(),
        Some("sip:sales-voicemail@pbx")
    );
}

#[test]
fn the_shipped_roster_has_eight_agents_with_mixed_tiers_and_languages() {
    let config = shipped();
    let agents = &config.routing.agents;
    assert_eq!(agents.len(), 8);
    assert_eq!(
        summary::agents_per_tier("support", agents),
        "L1=3 L2=2 L3=1"
    );
    for lang in ["en", "zh", "es"] {
        assert!(
            agents.iter().any(|a| a.skills.iter().any(|s| s == lang)),
            "someone speaks {lang}"
        );
    }
    let a1002 = agents.iter().find(|a| a.id == "a1002").expect("a1002");
    assert_eq!(a1002.capacity, BTreeMap::from([(Channel::Chat, 2)]));
}

#[test]
fn the_shipped_daemon_sections_are_the_documented_defaults() {
    let config = shipped();
    assert_eq!(config.daemon, DaemonConfig::default());
    assert_eq!(config.daemon.server.listen, "127.0.0.1:8080");
    assert_eq!(config.daemon.metrics.listen, "127.0.0.1:9464");
    assert_eq!(config.daemon.journal.dir, Path::new("data"));
    assert_eq!(config.daemon.journal.sync, SyncMode::Batch);
    assert_eq!(config.routing.limits, Limits::default());
    assert_eq!(
        config.routing.channels,
        Channel::ALL.map(ChannelSettings::default_for)
    );
}

#[test]
fn the_loaded_config_keeps_its_source_text() {
    let text = "[[queue]]\nid = \"q\"\n";
    let config = parse(text, "t.toml").expect("valid");
    assert_eq!(config.source, text);
}

#[test]
fn a_bare_queue_gets_exactly_the_built_in_defaults() {
    let config = parse("[[queue]]\nid = \"q\"\n", "t.toml").expect("valid");
    assert_eq!(config.routing.queues, vec![QueueConfig::with_defaults("q")]);
    assert_eq!(config.routing.seed, 0);
    assert_eq!(config.routing.default_queue, None);
    assert_eq!(config.daemon, DaemonConfig::default());
}

#[test]
fn an_empty_file_is_a_valid_config_with_no_queues() {
    let config = parse("", "t.toml").expect("valid");
    assert!(config.routing.queues.is_empty());
    assert_eq!(config.routing.limits, Limits::default());
}

#[test]
fn a_queue_value_beats_defaults_which_beat_built_ins() {
    let text = r#"
[defaults]
offer_timeout_s = 20
wrap_up_s = 0
max_no_answer = 0
count_declines = false
escalation_priority_boost = 4
reject_delay_s = 1

[[queue]]
id = "own"
offer_timeout_s = 8
max_no_answer = 2
count_declines = true

[[queue]]
id = "inherits"
"#;
    let config = parse(text, "t.toml").expect("valid");
    let own = config.routing.queue("own").expect("own");
    let inherits = config.routing.queue("inherits").expect("inherits");
    assert_eq!(own.offer_timeout_ms, 8_000);
    assert_eq!(inherits.offer_timeout_ms, 20_000);
    assert_eq!(own.max_no_answer, 2);
    assert_eq!(inherits.max_no_answer, 0);
    assert!(own.count_declines);
    assert!(!inherits.count_declines);
    assert_eq!(inherits.wrap_up_ms, 0);
    assert_eq!(inherits.escalation_priority_boost, 4);
    assert_eq!(inherits.reject_delay_ms, 1_000);
    // Not in [defaults]: the built-in values.
    assert_eq!(inherits.sla_ms, 30_000);
    assert_eq!(inherits.busy_delay_ms, 10_000);
    assert_eq!(inherits.no_answer_delay_ms, 10_000);
    assert_eq!(inherits.short_abandon_ms, 5_000);
}

#[test]
fn short_test_timers_in_fractions_of_a_second_become_milliseconds() {
    let text = r#"
[[queue]]
id = "fast"
offer_timeout_s = 0.2
wrap_up_s = 0.05
max_wait_s = 1.5
overflow = { target = "sip:vm@pbx" }
steps = [{ after_s = 0, tiers = [1] }, { after_s = 0.3, tiers = [2, 1, 2] }]
"#;
    let config = parse(text, "t.toml").expect("valid");
    let q = config.routing.queue("fast").expect("fast");
    assert_eq!(q.offer_timeout_ms, 200);
    assert_eq!(q.wrap_up_ms, 50);
    assert_eq!(q.max_wait_ms, Some(1_500));
    // Tiers come out sorted and deduplicated.
    assert_eq!(q.steps[1], step(300, &[1, 2], 0, false));
}

#[test]
fn channel_settings_override_only_what_they_name() {
    let text = "[channels.chat]\ncapacity = 5\n[channels.voice]\nexclusive = false\n";
    let config = parse(text, "t.toml").expect("valid");
    let chat = config.routing.channels[Channel::Chat.index()];
    let voice = config.routing.channels[Channel::Voice.index()];
    assert_eq!(
        chat,
        ChannelSettings {
            capacity: 5,
            exclusive: false
        }
    );
    assert_eq!(
        voice,
        ChannelSettings {
            capacity: 1,
            exclusive: false
        }
    );
}

#[test]
fn an_all_day_schedule_is_open_at_midnight_and_a_missing_day_is_closed() {
    let text = r#"
[[queue]]
id = "q"
schedule = { tz = "UTC", mon = ["00:00-24:00"] }
"#;
    let config = parse(text, "t.toml").expect("valid");
    let s = config.routing.queues[0]
        .schedule
        .as_ref()
        .expect("schedule");
    assert_eq!(s.open[0], vec![(0, 1440)]);
    assert!(s.open[1..].iter().all(Vec::is_empty));
    // Monday 2024-01-08 00:00 UTC and 23:59 UTC are open; Tuesday 00:00 is not.
    assert!(s.is_open(1_704_672_000_000));
    assert!(s.is_open(1_704_758_340_000));
    assert!(!s.is_open(1_704_758_400_000));
}

#[test]
fn rules_and_routing_resolve_in_file_order() {
    let text = r#"
[[queue]]
id = "support"
channels = ["voice", "chat"]
[[queue]]
id = "vip"
channels = ["chat"]
[[rule]]
when = { channel = "chat", customer_tier = "vip" }
queue = "vip"
[[rule]]
queue = "support"
priority = -1
[routing]
seed = 42
default_queue = "support"
"#;
    let config = parse(text, "t.toml").expect("valid");
    let r = &config.routing;
    assert_eq!(r.seed, 42);
    assert_eq!(r.rules.len(), 2);
    assert_eq!(r.rules[0].queue, "vip");
    assert_eq!(
        r.rules[0].when.get("channel").map(String::as_str),
        Some("chat")
    );
    assert!(r.rules[1].when.is_empty());
    assert_eq!(r.rules[1].priority, Some(-1));
}

#[test]
fn the_shipped_config_routes_a_complaint_to_an_l3_expert_and_the_rest_to_support() {
    use tierline::engine::{DecisionKind, Engine, Event};
    let mut engine = Engine::new(shipped().routing, 0);
    for agent in ["a1001", "a1006"] {
        let login = Event::AgentLogin {
            agent: agent.into(),
            address: None,
            tiers: None,
            skills: None,
            capacity: None,
        };
        engine.handle(0, &login).expect("login");
    }
    let arrive = |id: &str, attributes: &[(&str, &str)]| Event::InteractionArrived {
        interaction: id.into(),
        channel: Channel::Voice,
        queue: None,
        priority: None,
        skills: vec![],
        customer: None,
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let d = engine
        .handle(1_000, &arrive("c1", &[("category", "complaint")]))
        .expect("arrival");
    assert!(
        matches!(&d[0].kind, DecisionKind::Offer { agent, queue, .. }
            if &**agent == "a1006" && &**queue == "complaints"),
        "{d:?}"
    );
    let d = engine.handle(2_000, &arrive("c2", &[])).expect("arrival");
    assert!(
        matches!(&d[0].kind, DecisionKind::Offer { agent, queue, .. }
            if &**agent == "a1001" && &**queue == "support"),
        "{d:?}"
    );
}
