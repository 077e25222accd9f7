//! The scenario file: what it accepts, and the error it gives for each kind of mistake.

use tierline::config::{Channel, QueueConfig, RoutingConfig};
use tierline::sim::scenario::{self, DEFAULT_START_MS};
use tierline::sim::Dist;

fn routing() -> RoutingConfig {
    let mut c = RoutingConfig::empty();
    let mut q = QueueConfig::with_defaults("support");
    q.channels = vec![Channel::Voice, Channel::Chat];
    c.queues.push(q);
    c.queues.push(QueueConfig::with_defaults("billing"));
    c
}

fn errors_of(text: &str) -> Vec<String> {
    match scenario::parse(text, "day.toml", &routing()) {
        Ok(_) => panic!("expected the scenario to be refused"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

const GOOD: &str = r#"
duration_s = 86400
warm_up_s = 3600
seed = 7
start = "2026-11-23T00:00:00Z"

[behaviour]
answer_delay = { dist = "fixed", s = 3 }
no_answer_prob = 0.02
decline_prob = 0.01

[[arrivals]]
queue = "support"
rates = [ { from_s = 0, per_hour = 20 }, { from_s = 28800, per_hour = 300 }, { from_s = 64800, per_hour = 60 } ]
repeat_s = 86400
channels = { voice = 0.8, chat = 0.2 }
handle = { dist = "lognormal", mean_s = 240, sd_s = 120 }
wrap_up = { dist = "exponential", mean_s = 20 }
patience = { dist = "exponential", mean_s = 90 }

[[arrivals]]
queue = "billing"
rate_per_hour = 40
handle = { dist = "exponential", mean_s = 180 }

[[agents]]
count = 12
id_prefix = "l1-"
tiers = { support = 1, billing = 1 }
shifts = [ { login_s = 28000, logout_s = 57600 } ]
breaks = [ { at_s = 36000, duration_s = 900 } ]

[[agents]]
id = "maria"
tiers = { support = 2 }
behaviour = { answer_delay = { dist = "fixed", s = 1 } }
"#;

#[test]
fn a_full_day_scenario_resolves_to_milliseconds() {
    let plan = scenario::parse(GOOD, "day.toml", &routing()).expect("valid scenario");
    assert_eq!(plan.seed, 7);
    assert_eq!(plan.duration_ms, 86_400_000);
    assert_eq!(plan.warm_up_ms, 3_600_000);
    assert_eq!(plan.start_ms, 1_795_392_000_000);
    assert_eq!(plan.streams.len(), 2);
    let support = &plan.streams[0];
    assert_eq!(support.rates[1].0, 28_800_000);
    assert!((support.rates[1].1 - 300.0 / 3_600_000.0).abs() < 1e-15);
    assert_eq!(support.repeat_ms, Some(86_400_000));
    assert_eq!(
        support.channels,
        vec![(Channel::Voice, 0.8), (Channel::Chat, 1.0)]
    );
    assert_eq!(support.patience, Dist::Exponential { mean_s: 90.0 });
    assert_eq!(plan.streams[1].patience, Dist::Never);
    assert_eq!(plan.agents.len(), 13);
    assert_eq!(plan.agents[0].id, "l1-01");
    assert_eq!(plan.agents[11].id, "l1-12");
    assert_eq!(plan.agents[0].shifts, vec![(28_000_000, Some(57_600_000))]);
    assert_eq!(plan.agents[0].breaks, vec![(36_000_000, 36_900_000)]);
    assert_eq!(plan.agents[12].id, "maria");
    assert_eq!(plan.agents[12].shifts, vec![(0, None)]);
    // maria has her own behaviour; the group uses the scenario's.
    assert_eq!(plan.agents[0].behaviour, 0);
    assert_eq!(
        plan.behaviours[plan.agents[12].behaviour].answer_delay,
        Dist::Fixed { s: 1.0 }
    );
    assert!((plan.behaviours[0].no_answer_prob - 0.02).abs() < 1e-12);
}

#[test]
fn defaults_are_a_monday_start_seed_one_and_an_hour_of_drain() {
    let plan = scenario::parse(
        r#"
        duration_s = 3600
        [[arrivals]]
        queue = "billing"
        rate_per_hour = 10
        handle = { dist = "fixed", s = 60 }
        [[agents]]
        count = 1
        tiers = { billing = 1 }
        "#,
        "s.toml",
        &routing(),
    )
    .expect("valid");
    assert_eq!(plan.start_ms, DEFAULT_START_MS);
    assert_eq!(plan.seed, 1);
    assert_eq!(plan.warm_up_ms, 0);
    assert_eq!(plan.drain_ms, 3_600_000);
}

#[test]
fn a_misspelt_field_is_refused_with_its_line() {
    let errors = errors_of(
        "duration_s = 60\n[[arrivals]]\nqueue = \"support\"\nrate_per_hr = 5\nhandle = { dist = \"fixed\", s = 1 }\n",
    );
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("day.toml:4:"), "{}", errors[0]);
    assert!(errors[0].contains("rate_per_hr"), "{}", errors[0]);
}

#[test]
fn an_unknown_distribution_is_refused() {
    let errors = errors_of(
        "duration_s = 60\n[[arrivals]]\nqueue = \"support\"\nrate_per_hour = 5\nhandle = { dist = \"gamma\", s = 1 }\n",
    );
    assert!(errors[0].contains("gamma"), "{}", errors[0]);
    assert!(errors[0].starts_with("day.toml:5:"), "{}", errors[0]);
}

#[test]
fn every_problem_is_reported_at_once_with_its_field() {
    let errors = errors_of(
        r#"
        duration_s = 600
        warm_up_s = 900
        [behaviour]
        no_answer_prob = 1.5
        [[arrivals]]
        queue = "sales"
        rate_per_hour = 10
        handle = { dist = "exponential", mean_s = 0 }
        [[arrivals]]
        queue = "billing"
        channels = { chat = 1 }
        handle = { dist = "none" }
        [[agents]]
        count = 3
        tiers = { sales = 1 }
        shifts = [ { login_s = 100, logout_s = 50 } ]
        "#,
    );
    let all = errors.join("\n");
    for expected in [
        "warm_up_s: must be shorter than duration_s",
        "behaviour.no_answer_prob: must be a probability",
        "arrivals[0].queue: unknown queue `sales`",
        "arrivals[0].handle: mean_s must be > 0",
        "arrivals[1]: needs an arrival rate",
        "arrivals[1].channels: queue `billing` does not serve channel chat",
        "arrivals[1].handle: `none` (never happens) is not allowed here",
        "agents[0].tiers.sales: unknown queue `sales`",
        "agents[0].shifts[0]: logout_s must be after login_s",
    ] {
        assert!(all.contains(expected), "missing `{expected}` in:\n{all}");
    }
    // Each one located at its field (`day.toml:LINE:COLUMN: field: …`).
    assert!(
        errors.iter().all(|e| e
            .strip_prefix("day.toml:")
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))),
        "{all}"
    );
}

#[test]
fn an_agent_outside_the_roster_needs_tiers_and_ids_must_be_unique() {
    let errors = errors_of(
        r#"
        duration_s = 600
        [[arrivals]]
        queue = "billing"
        rate_per_hour = 10
        handle = { dist = "fixed", s = 60 }
        [[agents]]
        id = "ghost"
        [[agents]]
        id = "x1"
        tiers = { billing = 1 }
        [[agents]]
        count = 1
        id_prefix = "x"
        tiers = { billing = 1 }
        "#,
    );
    let all = errors.join("\n");
    assert!(
        all.contains("agents[0].tiers: agent `ghost` is not in the roster"),
        "{all}"
    );
    // The repeating entry is named, with the one it repeats.
    assert!(
        all.contains("agents[2]: agent `x1` is also planned by agents[1]: ids must be unique"),
        "{all}"
    );
}

#[test]
fn a_scenario_without_traffic_or_agents_is_refused() {
    let all = errors_of("duration_s = 600\n").join("\n");
    assert!(all.contains("at least one [[arrivals]]"), "{all}");
    assert!(all.contains("a scenario needs agents"), "{all}");
}

#[test]
fn a_day_shape_must_start_at_zero_and_increase() {
    let all = errors_of(
        r#"
        duration_s = 600
        [[arrivals]]
        queue = "billing"
        rates = [ { from_s = 10, per_hour = 5 }, { from_s = 5, per_hour = 7 } ]
        repeat_s = 3
        handle = { dist = "fixed", s = 60 }
        [[agents]]
        count = 1
        tiers = { billing = 1 }
        "#,
    )
    .join("\n");
    assert!(
        all.contains("rates[0].from_s: the first rate must start at 0"),
        "{all}"
    );
    assert!(
        all.contains("rates[1].from_s: rates must be in strictly increasing"),
        "{all}"
    );
    assert!(
        all.contains("repeat_s: must be > 0 and longer than"),
        "{all}"
    );
}

/// Ids, skills and attributes the engine would refuse mid-run (an empty or over-long agent id,
/// a skill over 256 bytes, an attribute value over 1,024) are scenario problems, reported before
/// the run with the field, not an engine refusal (exit 1) minutes into it.
#[test]
fn ids_and_attributes_the_engine_would_refuse_are_scenario_problems() {
    let long = "x".repeat(300);
    let errors = errors_of(&format!(
        r#"
        duration_s = 600
        [[arrivals]]
        queue = "support"
        rate_per_hour = 10
        handle = {{ dist = "fixed", s = 1 }}
        skills = ["{long}"]
        attributes = {{ note = "{value}" }}
        [[agents]]
        id = ""
        tiers = {{ support = 1 }}
        [[agents]]
        count = 2
        id_prefix = "{long}"
        tiers = {{ support = 1 }}
        [[agents]]
        id = "a9"
        skills = ["{long}"]
        tiers = {{ support = 1 }}
        "#,
        value = "y".repeat(1100),
    ));
    let all = errors.join("\n");
    for expected in [
        "arrivals[0].skills[0]: `xxxxxxxxxxxxxxxx…` is 300 bytes long; the engine takes at most 256",
        "arrivals[0].attributes.note: is 1100 bytes long; the engine takes at most 1024",
        "agents[0].id: must not be empty",
        "agents[1].id_prefix: makes ids of 301 bytes; the engine takes at most 256",
        "agents[2].skills[0]: `xxxxxxxxxxxxxxxx…` is 300 bytes long",
    ] {
        assert!(all.contains(expected), "missing `{expected}` in:\n{all}");
    }
}
