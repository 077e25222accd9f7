//! Scenario files: a TOML-level error (a wrong type, an unknown field) names the field where it
//! is, like every later check, with its line and column.

use tierline::config::{QueueConfig, RoutingConfig};
use tierline::sim::scenario;

fn cfg() -> RoutingConfig {
    let mut c = RoutingConfig::empty();
    c.queues = vec![QueueConfig::with_defaults("support")];
    c
}

/// "every problem is printed as `file:line:column: field: message`"
#[test]
fn a_type_error_names_its_field() {
    let text = "duration_s = \"x\"\n[[arrivals]]\nqueue = \"support\"\nrate_per_hour = 1\nhandle = { dist = \"fixed\", s = 1 }\n[[agents]]\ncount = 1\ntiers = { support = 1 }\n";
    let e = scenario::parse(text, "s.toml", &cfg()).unwrap_err();
    assert_eq!(e.0[0].field, "duration_s", "{e}");
    assert_eq!((e.0[0].line, e.0[0].column), (Some(1), Some(14)), "{e}");
}

#[test]
fn an_unknown_field_in_a_stream_names_where_it_is() {
    let text = "duration_s = 10\n[[arrivals]]\nqueue = \"support\"\nrate_per_hour = 1\nhandel = { dist = \"fixed\", s = 1 }\nhandle = { dist = \"fixed\", s = 1 }\n[[agents]]\ncount = 1\ntiers = { support = 1 }\n";
    let e = scenario::parse(text, "s.toml", &cfg()).unwrap_err();
    assert!(e.0[0].field.starts_with("arrivals[0]"), "{e}");
    assert!(e.0[0].message.contains("handel"), "{e}");
}

/// A value the checks refuse (an unknown queue, a negative rate, overlapping shifts) is located
/// too, like the routing config's own checks do: `file:line:column: field: message`, pointing at
/// the field's key (or the nearest enclosing thing written in the file).
#[test]
fn a_refused_value_names_its_line_and_column() {
    let text = "duration_s = 3600\n\
                [[arrivals]]\n\
                queue = \"sales\"\n\
                rate_per_hour = -5\n\
                handle = { dist = \"fixed\", s = 1 }\n\
                [[agents]]\n\
                count = 2\n\
                tiers = { support = 1 }\n\
                shifts = [ { login_s = 0, logout_s = 100 }, { login_s = 50, logout_s = 200 } ]\n";
    let e = scenario::parse(text, "s.toml", &cfg()).unwrap_err();
    let at = |field: &str| {
        e.0.iter()
            .find(|p| p.field == field)
            .map(|p| (p.line, p.column))
            .unwrap_or_else(|| panic!("no problem with field `{field}` in:\n{e}"))
    };
    assert_eq!(at("arrivals[0].queue"), (Some(3), Some(1)), "{e}");
    assert_eq!(at("arrivals[0].rate_per_hour"), (Some(4), Some(1)), "{e}");
    assert_eq!(at("agents[0].shifts[1]"), (Some(9), Some(45)), "{e}");
    let printed = e.to_string();
    assert!(
        printed.contains("s.toml:3:1: arrivals[0].queue: unknown queue `sales`"),
        "{printed}"
    );
}

/// One mistake, one error: a refused agent group is not also "a scenario needs agents", a
/// negative duration is not reported twice, and a huge one is shown as written.
#[test]
fn one_mistake_gives_one_error_shown_as_written() {
    let stream = "[[arrivals]]\nqueue = \"support\"\nrate_per_hour = 1\nhandle = { dist = \"fixed\", s = 1 }\n";
    let group = "[[agents]]\ncount = 1\ntiers = { support = 1 }\n";
    let only = |text: String| {
        let e = scenario::parse(&text, "s.toml", &cfg()).unwrap_err().0;
        assert_eq!(e.len(), 1, "{e:#?}");
        e.into_iter().next().unwrap()
    };
    let e = only(format!(
        "duration_s = 3600\n{stream}[[agents]]\ncount = 200001\ntiers = {{ support = 1 }}\n"
    ));
    assert_eq!(e.field, "agents[0].count", "{e}");
    let e = only(format!("duration_s = -5\n{stream}{group}"));
    assert_eq!(e.field, "duration_s", "{e}");
    let e = only(format!("duration_s = 1e300\n{stream}{group}"));
    assert!(e.message.ends_with("got 1e300"), "{e}");
    let e = only(format!(
        "duration_s = 3600\n{stream}{group}breaks = [ {{ at_s = 200, duration_s = -10 }} ]\n"
    ));
    assert_eq!(e.field, "agents[0].breaks[0].duration_s", "{e}");
    // A time past a year is not also "out of order" or "before login" (it was read as 0).
    let e = only(format!(
        "duration_s = 3600\n[[arrivals]]\nqueue = \"support\"\n\
         rates = [ {{ from_s = 0, per_hour = 5 }}, {{ from_s = 999999999, per_hour = 5 }} ]\n\
         handle = {{ dist = \"fixed\", s = 1 }}\n{group}"
    ));
    assert_eq!(e.field, "arrivals[0].rates[1].from_s", "{e}");
    assert!(e.message.contains("at most"), "{e}");
    let e = only(format!(
        "duration_s = 3600\n{stream}{group}shifts = [ {{ login_s = 0, logout_s = 4e7 }} ]\n"
    ));
    assert_eq!(e.field, "agents[0].shifts[0].logout_s", "{e}");
    // … nor, with a break in that shift, "the break is not within one shift".
    let e = only(format!(
        "duration_s = 3600\n{stream}{group}shifts = [ {{ login_s = 0, logout_s = 4e7 }} ]\n\
         breaks = [ {{ at_s = 100, duration_s = 10 }} ]\n"
    ));
    assert_eq!(e.field, "agents[0].shifts[0].logout_s", "{e}");
    // `use_roster` with a config that has no roster says so, not "needs agents".
    let e = only(format!("use_roster = true\nduration_s = 3600\n{stream}"));
    assert_eq!(e.field, "use_roster", "{e}");
    assert!(e.message.contains("no [[agent]] roster"), "{e}");
}

/// Agents that could never work as written are refused: a group with `tiers = {}` serves no
/// queue, and a break outside every shift falls while the agent is logged out.
#[test]
fn agents_that_could_never_work_as_written_are_refused() {
    let stream = "[[arrivals]]\nqueue = \"support\"\nrate_per_hour = 1\nhandle = { dist = \"fixed\", s = 1 }\n";
    let errors = |text: String| scenario::parse(&text, "s.toml", &cfg()).unwrap_err().0;
    let e = errors(format!(
        "duration_s = 3600\n{stream}[[agents]]\ncount = 1\ntiers = {{}}\n"
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].field, "agents[0].tiers");
    assert!(e[0].message.contains("at least one queue"), "{}", e[0]);
    let e = errors(format!(
        "duration_s = 3600\n{stream}[[agents]]\ncount = 1\ntiers = {{ support = 1 }}\n\
         shifts = [ {{ login_s = 0, logout_s = 1000 }} ]\n\
         breaks = [ {{ at_s = 900, duration_s = 200 }} ]\n"
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].field, "agents[0].breaks[0]");
    assert!(
        e[0].message
            .contains("900 s to 1100 s is not within one shift"),
        "{}",
        e[0]
    );
    // Within a shift, or with no shifts (logged in all along): fine.
    for extra in [
        "shifts = [ { login_s = 0, logout_s = 1000 } ]\nbreaks = [ { at_s = 800, duration_s = 200 } ]\n",
        "breaks = [ { at_s = 900, duration_s = 200 } ]\n",
    ] {
        let text =
            format!("duration_s = 3600\n{stream}[[agents]]\ncount = 1\ntiers = {{ support = 1 }}\n{extra}");
        assert!(scenario::parse(&text, "s.toml", &cfg()).is_ok(), "{extra}");
    }
}

/// `start` may be a quoted RFC 3339 string or a TOML date-time, read the same; one without a
/// UTC offset is refused naming the field, not as "invalid type: map".
#[test]
fn start_is_read_quoted_or_as_a_toml_date_time() {
    let rest = "duration_s = 60\n[[arrivals]]\nqueue = \"support\"\nrate_per_hour = 1\n\
                handle = { dist = \"fixed\", s = 1 }\n[[agents]]\ncount = 1\n\
                tiers = { support = 1 }\n";
    let quoted = scenario::parse(
        &format!("start = \"2026-11-23T08:00:00Z\"\n{rest}"),
        "s.toml",
        &cfg(),
    )
    .expect("quoted start");
    let bare = scenario::parse(
        &format!("start = 2026-11-23T08:00:00Z\n{rest}"),
        "s.toml",
        &cfg(),
    )
    .expect("TOML date-time start");
    assert_eq!(quoted.start_ms, bare.start_ms);
    assert_eq!(bare.start_ms, 1_795_420_800_000);
    let e = scenario::parse(
        &format!("start = 2026-11-23T08:00:00\n{rest}"),
        "s.toml",
        &cfg(),
    )
    .unwrap_err()
    .0;
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].field, "start", "{}", e[0]);
    assert!(!e[0].message.contains("map"), "{}", e[0]);
}

/// Errors the TOML reader finds are reported like the routing config's: one line, the field
/// named when there is one (a missing or unknown top-level key names itself).
#[test]
fn reader_errors_are_one_line_and_name_the_field() {
    let one = |text: &str| {
        let e = scenario::parse(text, "s.toml", &cfg()).unwrap_err().0;
        assert_eq!(e.len(), 1, "{e:#?}");
        e.into_iter().next().unwrap()
    };
    let e = one("duration_s = 60\n[arrivals\n");
    assert_eq!(e.field, "", "{e}");
    assert!(e.message.starts_with("TOML syntax error: "), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
    let e = one("seed = 1\n");
    assert_eq!(e.field, "duration_s", "{e}");
    assert!(e.message.contains("missing field"), "{e}");
    let e = one("colour = 1\nduration_s = 60\n");
    assert_eq!(e.field, "colour", "{e}");
}

/// Legal but likely not meant: a group whose tier no step of the queue offers (it would never
/// take a call), a shift that starts when the run is over. Warned about, not refused.
#[test]
fn a_tier_no_step_offers_and_a_shift_after_the_run_are_warned_about() {
    let stream = "[[arrivals]]\nqueue = \"support\"\nrate_per_hour = 1\nhandle = { dist = \"fixed\", s = 1 }\n";
    let plan = scenario::parse(
        &format!(
            "duration_s = 3600\ndrain_s = 600\n{stream}\
             [[agents]]\ncount = 1\ntiers = {{ support = 7 }}\n\
             [[agents]]\ncount = 1\ntiers = {{ support = 1 }}\n\
             shifts = [ {{ login_s = 0, logout_s = 60 }}, {{ login_s = 4200, logout_s = 5000 }} ]\n"
        ),
        "s.toml",
        &cfg(),
    )
    .expect("legal");
    assert_eq!(plan.warnings.len(), 2, "{:#?}", plan.warnings);
    assert!(
        plan.warnings[0]
            .starts_with("agents[0].tiers.support: no step of queue `support` offers tier 7"),
        "{}",
        plan.warnings[0]
    );
    assert!(
        plan.warnings[1].starts_with("agents[1].shifts[1]: starts at 4200 s, when the run is over")
            && plan.warnings[1].ends_with("this shift never begins"),
        "{}",
        plan.warnings[1]
    );
    // The shipped example warns about nothing.
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/scenarios/support-ladder.toml"
    );
    let routing = tierline::config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/scenarios/support-ladder.routing.toml"
    )))
    .expect("shipped routing config")
    .routing;
    let plan = scenario::load(std::path::Path::new(shipped), &routing).expect("shipped scenario");
    assert!(plan.warnings.is_empty(), "{:#?}", plan.warnings);
}

/// A stream without a `queue` goes where the config's routing sends it, and its attributes are
/// fixed. A rule takes only the channels its queue serves: the chat arrivals a voice-only rule
/// passes over, with no default queue, are all rejected `no_route` (warned about). A default
/// queue that does not serve a channel would have the engine refuse every such arrival mid-run
/// (the run used to stop there, exit 1, as a bug): found before the run, naming the stream's
/// channel and the queue; the voice arrivals the queue serves are fine.
#[test]
fn a_stream_routed_to_a_queue_not_serving_a_channel_is_refused_or_warned_about() {
    let mut config = cfg();
    let mut voice_only = QueueConfig::with_defaults("b");
    voice_only.channels = vec![tierline::config::Channel::Voice];
    config.queues.push(voice_only);
    config.rules.push(tierline::config::Rule {
        when: [("x".to_string(), "y".to_string())].into(),
        queue: "b".into(),
        priority: None,
    });
    let text = "duration_s = 3600\n\
                [[arrivals]]\n\
                attributes = { x = \"y\" }\n\
                rate_per_hour = 30\n\
                channels = { voice = 0.5, chat = 0.5 }\n\
                handle = { dist = \"fixed\", s = 60 }\n\
                [[agents]]\n\
                count = 2\n\
                tiers = { b = 1 }\n";
    let plan = scenario::parse(text, "s.toml", &config).expect("chats fall through the rule");
    assert_eq!(
        plan.warnings,
        [
            "arrivals[0].channels.chat: no rule whose queue serves chat takes this stream's chat \
          arrivals and there is no default queue: every one is rejected (`no_route`)"
        ],
    );
    config.rules.clear();
    config.default_queue = Some("b".into());
    let e = scenario::parse(text, "s.toml", &config).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(e.0[0].field, "arrivals[0].channels.chat", "{e}");
    assert!(
        e.0[0]
            .message
            .starts_with("chat arrivals of this stream go to queue `b` (the default queue of the routing config), which does not serve chat"),
        "{e}"
    );
    // Voice alone passes.
    let voice = text.replace("voice = 0.5, chat = 0.5", "voice = 1");
    scenario::parse(&voice, "s.toml", &config).expect("voice arrivals are served");
}

/// SIMULATOR.md: `start` needs its UTC offset; without one the message says so and shows the
/// fix, not the date parser's "premature end of input".
#[test]
fn a_start_without_its_utc_offset_says_what_is_missing() {
    let text = "duration_s = 60\nstart = 2026-11-23T00:00:00\n[[arrivals]]\nqueue = \"support\"\nrate_per_hour = 1\nhandle = { dist = \"fixed\", s = 1 }\n[[agents]]\ncount = 1\ntiers = { support = 1 }\n";
    let e = scenario::parse(text, "s.toml", &cfg()).unwrap_err();
    assert_eq!(e.0[0].field, "start", "{e}");
    assert!(
        e.0[0].message.contains(
            "`2026-11-23T00:00:00` has no UTC offset, so it names no instant: add one, e.g. \
             `2026-11-23T00:00:00Z`"
        ),
        "{e}"
    );
}

/// Legal but a run that cannot answer: agents whose fixed answer delay outlasts the queue's
/// offer timeout (every offer expires), a stream requiring a skill no agent has. Warned about.
#[test]
fn answers_after_the_offer_expired_and_skills_nobody_has_are_warned_about() {
    let mut config = cfg();
    config.queues[0].offer_timeout_ms = 15_000;
    let plan = scenario::parse(
        "duration_s = 3600\n\
         [behaviour]\nanswer_delay = { dist = \"fixed\", s = 20 }\n\
         [[arrivals]]\nqueue = \"support\"\nrate_per_hour = 1\nskills = [\"fr\"]\n\
         handle = { dist = \"fixed\", s = 1 }\n\
         [[agents]]\ncount = 2\ntiers = { support = 1 }\nskills = [\"en\"]\n",
        "s.toml",
        &config,
    )
    .expect("legal");
    assert_eq!(
        plan.warnings,
        [
            "behaviour.answer_delay: agents answer after 20 s, when queue `support`'s offers \
             (offer_timeout_s = 15 s) have expired: they never answer its calls",
            "arrivals[0].skills: no agent of the scenario has every one of [\"fr\"]: these \
             arrivals can only wait, overflow or be abandoned",
        ]
    );
}

/// The time zone tables end with 2099: a run reaching 2100 with a scheduled queue is refused
/// (its opening hours would lose daylight saving time), one without schedules is not.
#[test]
fn a_run_past_2099_with_opening_hours_is_refused() {
    let text = "start = \"2099-12-31T23:00:00Z\"\nduration_s = 7200\ndrain_s = 0\n\
                [[arrivals]]\nqueue = \"support\"\nrate_per_hour = 1\n\
                handle = { dist = \"fixed\", s = 1 }\n[[agents]]\ncount = 1\n\
                tiers = { support = 1 }\n";
    assert!(scenario::parse(text, "s.toml", &cfg()).is_ok());
    let mut scheduled = cfg();
    scheduled.queues[0].schedule = Some(
        tierline::config::parse(
            "[[queue]]\nid = \"support\"\nschedule = { tz = \"Europe/London\", mon = [\"08:00-18:00\"] }\n",
            "r.toml",
        )
        .expect("a valid config")
        .routing
        .queues[0]
            .schedule
            .clone()
            .expect("a schedule"),
    );
    let e = scenario::parse(text, "s.toml", &scheduled).unwrap_err();
    assert_eq!(e.0[0].field, "start", "{e}");
    assert!(
        e.0[0]
            .message
            .contains("this run reaches 2100-01-01T01:00:00.000Z, and opening hours are known only through 2099"),
        "{e}"
    );
    let earlier = text.replace("2099-12-31T23:00:00Z", "2099-12-31T21:00:00Z");
    assert!(scenario::parse(&earlier, "s.toml", &scheduled).is_ok());
}
