//! Every validation rule of the config file: each bad file must be refused with the right message,
//! on the line of the offending key, and without spurious extra errors.

use tierline::config::{parse, ConfigError};

/// Join lines with `\n`, so line N of the file is element N-1 (the `/* N */` comments say which).
fn file(lines: &[&str]) -> String {
    lines.join("\n") + "\n"
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text, "test.toml") {
        Ok(_) => panic!("expected the config to be refused:\n{text}"),
        Err(e) => e.0,
    }
}

/// The single error of a file with exactly one problem.
fn only_error(text: &str) -> ConfigError {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "expected exactly one error, got {all:#?}");
    all.remove(0)
}

#[track_caller]
fn assert_error(e: &ConfigError, line: usize, field: &str, message_part: &str) {
    assert_eq!(e.line, Some(line), "line of {e}");
    assert_eq!(e.field, field, "field of {e}");
    assert!(
        e.message.contains(message_part),
        "message of `{e}` should contain `{message_part}`"
    );
}

#[test]
fn a_toml_syntax_error_gives_its_line_and_column() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"channels = ["voice", "chat""#,
        /* 4 */ r#"strategy = "longest-idle""#,
    ]));
    assert_eq!(e.file, "test.toml");
    assert_eq!(e.line, Some(4));
    assert!(e.column.is_some());
    assert!(e.message.starts_with("TOML syntax error"), "{e}");
}

#[test]
fn a_key_written_twice_is_a_syntax_error_on_the_second() {
    let e = only_error(&file(&[
        /* 1 */ "[defaults]",
        /* 2 */ "sla_s = 30",
        /* 3 */ "sla_s = 20",
    ]));
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("duplicate key"), "{e}");
}

#[test]
fn a_misspelled_queue_field_is_named_with_what_was_expected() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "offer_timout_s = 20",
    ]));
    assert_error(
        &e,
        3,
        "queue[0].offer_timout_s",
        "unknown field `offer_timout_s`, expected one of",
    );
    assert!(e.message.contains("`offer_timeout_s`"), "{e}");
}

#[test]
fn a_misspelled_top_level_section_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[defaults]",
        /* 2 */ "sla_s = 30",
        /* 3 */ "[limit]",
        /* 4 */ "max_history = 10",
    ]));
    assert_error(&e, 3, "limit", "unknown section `limit`");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let all = errors(&file(&[
        /* 1 */ "[defaults]",
        /* 2 */ "wrap_up_secs = 10",
        /* 3 */ "sla_s = -1",
        /* 4 */ "[[queue]]",
        /* 5 */ r#"id = "support""#,
        /* 6 */ r#"strategy = "fastest""#,
        /* 7 */ "colour = 1",
        /* 8 */ "[[queue]]",
        /* 9 */ r#"id = "support""#,
    ]));
    let located: Vec<(Option<usize>, &str)> =
        all.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        located,
        vec![
            (Some(2), "defaults.wrap_up_secs"),
            (Some(3), "defaults.sla_s"),
            (Some(6), "queue[0].strategy"),
            (Some(7), "queue[0].colour"),
            (Some(9), "queue[1].id"),
        ]
    );
}

#[test]
fn errors_print_as_file_line_column_field_message() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"strategy = "fastest""#,
    ]));
    assert_eq!(
        e.to_string(),
        "test.toml:3:1: queue[0].strategy: unknown strategy `fastest` (expected longest-idle, \
         round-robin, fewest-interactions, tier-order or random)"
    );
}

#[test]
fn two_queues_with_the_same_id_are_refused_at_the_second() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[[queue]]",
        /* 4 */ r#"id = "sales""#,
        /* 5 */ "[[queue]]",
        /* 6 */ r#"id = "support""#,
    ]));
    assert_error(
        &e,
        6,
        "queue[2].id",
        "duplicate queue id `support` (already used by queue[0])",
    );
}

#[test]
fn two_agents_with_the_same_id_are_refused_at_the_second() {
    let e = only_error(&file(&[
        /* 1 */ "[[agent]]",
        /* 2 */ r#"id = "a1001""#,
        /* 3 */ r#"address = "sip:1001@pbx""#,
        /* 4 */ "[[agent]]",
        /* 5 */ r#"id = "a1001""#,
        /* 6 */ r#"address = "sip:1002@pbx""#,
    ]));
    assert_error(&e, 5, "agent[1].id", "duplicate agent id `a1001`");
}

#[test]
fn an_overflow_to_an_unknown_queue_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "max_wait_s = 600",
        /* 4 */ r#"overflow = { queue = "suport" }"#,
    ]));
    assert_error(
        &e,
        4,
        "queue[0].overflow.queue",
        "unknown queue `suport` (queues: support)",
    );
}

#[test]
fn a_rule_to_an_unknown_queue_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[[rule]]",
        /* 4 */ r#"when = { category = "complaint" }"#,
        /* 5 */ r#"queue = "complaints""#,
    ]));
    assert_error(&e, 5, "rule[0].queue", "unknown queue `complaints`");
}

#[test]
fn an_agent_tier_for_an_unknown_queue_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[[agent]]",
        /* 4 */ r#"id = "a1001""#,
        /* 5 */ r#"address = "sip:1001@pbx""#,
        /* 6 */ "tiers = { support = 1, sales = 2 }",
    ]));
    assert_error(&e, 6, "agent[0].tiers.sales", "unknown queue `sales`");
}

/// A roster entry longer than events accept could never log in (agent id), be sent again in a
/// login (address), or be required by an interaction (skill): refused where it is written.
#[test]
fn roster_ids_addresses_and_skills_have_the_length_limits_of_events() {
    let long_id = "a".repeat(tierline::engine::event::MAX_ID_LEN + 1);
    let long_address = format!(
        "sip:{}@pbx",
        "1".repeat(tierline::engine::event::MAX_ATTRIBUTE_LEN)
    );
    let long_skill = "s".repeat(tierline::engine::event::MAX_ID_LEN + 1);
    let just_fits = "b".repeat(tierline::engine::event::MAX_ID_LEN);
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[[agent]]",
        /* 4 */ &format!(r#"id = "{long_id}""#),
        /* 5 */ &format!(r#"address = "{long_address}""#),
        /* 6 */ &format!(r#"skills = ["en", "{long_skill}"]"#),
        /* 7 */ "[[agent]]",
        /* 8 */ &format!(r#"id = "{just_fits}""#),
        /* 9 */ r#"address = "sip:1002@pbx""#,
    ]));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_error(&all[0], 4, "agent[0].id", "257 bytes long; at most 256");
    assert_error(&all[1], 5, "agent[0].address", "at most 1024");
    assert_error(
        &all[2],
        6,
        "agent[0].skills[1]",
        "257 bytes long; at most 256",
    );
}

#[test]
fn drain_to_an_unknown_queue_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"drain_to = "general""#,
    ]));
    assert_error(&e, 3, "queue[0].drain_to", "unknown queue `general`");
}

#[test]
fn an_unknown_default_queue_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[routing]",
        /* 4 */ r#"default_queue = "general""#,
    ]));
    assert_error(&e, 4, "routing.default_queue", "unknown queue `general`");
}

#[test]
fn a_cycle_of_queue_overflows_is_refused_and_named() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "front""#,
        /* 3 */ "max_wait_s = 60",
        /* 4 */ r#"overflow = { queue = "support" }"#,
        /* 5 */ "[[queue]]",
        /* 6 */ r#"id = "support""#,
        /* 7 */ "max_wait_s = 60",
        /* 8 */ r#"overflow = { queue = "sales" }"#,
        /* 9 */ "[[queue]]",
        /* 10 */ r#"id = "sales""#,
        /* 11 */ "max_wait_s = 60",
        /* 12 */ r#"overflow = { queue = "support" }"#,
    ]));
    assert_error(
        &e,
        8,
        "queue[1].overflow.queue",
        "overflow cycle: support → sales → support",
    );
}

#[test]
fn a_queue_overflowing_into_itself_is_a_cycle() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "max_wait_s = 60",
        /* 4 */ r#"overflow = { queue = "support" }"#,
    ]));
    assert_error(
        &e,
        4,
        "queue[0].overflow.queue",
        "overflow cycle: support → support",
    );
}

#[test]
fn an_overflow_naming_both_a_queue_and_a_target_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "max_wait_s = 60",
        /* 4 */ r#"overflow = { queue = "support", target = "sip:vm@pbx" }"#,
    ]));
    assert_error(&e, 4, "queue[0].overflow", "not both");
}

#[test]
fn a_ladder_must_start_at_zero_seconds() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "steps = [",
        /* 4 */ "  { after_s = 10, tiers = [1] },",
        /* 5 */ "  { after_s = 30, tiers = [1, 2] },",
        /* 6 */ "]",
    ]));
    assert_error(
        &e,
        4,
        "queue[0].steps[0].after_s",
        "the first step must start at 0 s (found 10 s)",
    );
}

#[test]
fn ladder_steps_must_be_strictly_increasing() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "steps = [",
        /* 4 */ "  { after_s = 0, tiers = [1] },",
        /* 5 */ "  { after_s = 30, tiers = [1, 2] },",
        /* 6 */ "  { after_s = 30, tiers = [1, 2, 3] },",
        /* 7 */ "]",
    ]));
    assert_error(
        &e,
        6,
        "queue[0].steps[2].after_s",
        "steps must be strictly increasing: 30 s is not after the previous step's 30 s",
    );
}

#[test]
fn an_empty_ladder_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "steps = []",
    ]));
    assert_error(&e, 3, "queue[0].steps", "a queue needs at least one step");
}

#[test]
fn a_step_with_no_tiers_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "steps = [",
        /* 4 */ "  { after_s = 0, tiers = [1] },",
        /* 5 */ "  { after_s = 30, tiers = [] },",
        /* 6 */ "]",
    ]));
    assert_error(
        &e,
        5,
        "queue[0].steps[1].tiers",
        "a step needs at least one tier",
    );
}

#[test]
fn tier_zero_does_not_exist() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "steps = [{ after_s = 0, tiers = [0, 1] }]",
        /* 4 */ "[[agent]]",
        /* 5 */ r#"id = "a1001""#,
        /* 6 */ r#"address = "sip:1001@pbx""#,
        /* 7 */ "tiers = { support = 0 }",
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(
        &all[0],
        3,
        "queue[0].steps[0].tiers[0]",
        "tier 0 does not exist; tiers start at 1",
    );
    assert_error(
        &all[1],
        7,
        "agent[0].tiers.support",
        "tier 0 does not exist",
    );
}

#[test]
fn an_unknown_strategy_is_refused_with_the_valid_ones() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"strategy = "least-recent""#,
    ]));
    assert_error(
        &e,
        3,
        "queue[0].strategy",
        "unknown strategy `least-recent` (expected longest-idle, round-robin",
    );
}

#[test]
fn an_unknown_channel_in_a_queue_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"channels = ["voice", "sms"]"#,
    ]));
    assert_error(
        &e,
        3,
        "queue[0].channels[1]",
        "unknown channel `sms` (expected voice, chat, email or callback)",
    );
}

#[test]
fn an_unknown_channel_section_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[channels.chat]",
        /* 2 */ "capacity = 3",
        /* 3 */ "[channels.fax]",
        /* 4 */ "capacity = 1",
    ]));
    assert_error(&e, 3, "channels.fax", "unknown channel `fax`");
}

#[test]
fn an_unknown_channel_in_an_agent_capacity_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[agent]]",
        /* 2 */ r#"id = "a1001""#,
        /* 3 */ r#"address = "sip:1001@pbx""#,
        /* 4 */ "capacity = { sms = 2 }",
    ]));
    assert_error(&e, 4, "agent[0].capacity.sms", "unknown channel `sms`");
}

#[test]
fn a_channel_capacity_of_zero_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[channels.chat]",
        /* 2 */ "capacity = 0",
    ]));
    assert_error(
        &e,
        2,
        "channels.chat.capacity",
        "capacity must be at least 1 (found 0)",
    );
}

#[test]
fn an_agent_capacity_of_zero_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[agent]]",
        /* 2 */ r#"id = "a1001""#,
        /* 3 */ r#"address = "sip:1001@pbx""#,
        /* 4 */ "capacity = { chat = 0 }",
    ]));
    assert_error(
        &e,
        4,
        "agent[0].capacity.chat",
        "capacity must be at least 1 (found 0)",
    );
}

#[test]
fn max_wait_without_an_overflow_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "max_wait_s = 600",
    ]));
    assert_error(
        &e,
        3,
        "queue[0].max_wait_s",
        "max_wait_s is set but the queue has no overflow",
    );
}

/// The engine overflows after `max_wait_s`; an overflow without it would never happen.
#[test]
fn an_overflow_without_max_wait_is_refused() {
    for overflow in [
        r#"overflow = { queue = "general" }"#,
        r#"overflow = { target = "sip:vm@pbx" }"#,
    ] {
        let e = only_error(&file(&[
            /* 1 */ "[[queue]]",
            /* 2 */ r#"id = "support""#,
            /* 3 */ overflow,
            /* 4 */ "[[queue]]",
            /* 5 */ r#"id = "general""#,
        ]));
        assert_error(
            &e,
            3,
            "queue[0].overflow",
            "overflow is set but the queue has no max_wait_s",
        );
    }
}

/// `[defaults]` carries neither `max_wait_s` nor `overflow`: setting one there is refused as an
/// unknown field, and does not complete a queue that sets only the other.
#[test]
fn defaults_cannot_supply_the_other_half_of_max_wait_and_overflow() {
    let all = errors(&file(&[
        /* 1 */ "[defaults]",
        /* 2 */ "max_wait_s = 600",
        /* 3 */ "[[queue]]",
        /* 4 */ r#"id = "support""#,
        /* 5 */ r#"overflow = { target = "sip:vm@pbx" }"#,
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(
        &all[0],
        2,
        "defaults.max_wait_s",
        "unknown field `max_wait_s`",
    );
    assert_error(&all[1], 5, "queue[0].overflow", "has no max_wait_s");

    let all = errors(&file(&[
        /* 1 */ "[defaults]",
        /* 2 */ r#"overflow = { target = "sip:vm@pbx" }"#,
        /* 3 */ "[[queue]]",
        /* 4 */ r#"id = "support""#,
        /* 5 */ "max_wait_s = 600",
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(&all[0], 2, "defaults.overflow", "unknown field `overflow`");
    assert_error(&all[1], 5, "queue[0].max_wait_s", "has no overflow");
}

#[test]
fn a_malformed_max_wait_is_not_also_reported_as_missing() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"max_wait_s = "ten minutes""#,
        /* 4 */ r#"overflow = { target = "sip:vm@pbx" }"#,
    ]));
    assert_error(&e, 3, "queue[0].max_wait_s", "invalid type: string");
}

#[test]
fn a_malformed_overflow_is_not_also_reported_as_missing() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "max_wait_s = 600",
        /* 4 */ r#"overflow = "sip:vm@pbx""#,
    ]));
    assert_eq!(e.line, Some(4));
    assert_eq!(e.field, "queue[0].overflow");
}

#[test]
fn a_queue_with_no_channels_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "channels = []",
    ]));
    assert_error(
        &e,
        3,
        "queue[0].channels",
        "a queue must serve at least one channel",
    );
}

#[test]
fn a_schedule_in_an_unknown_time_zone_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "sales""#,
        /* 3 */ r#"schedule = { tz = "Europe/Londn", mon = ["08:00-18:00"] }"#,
    ]));
    assert_error(
        &e,
        3,
        "queue[0].schedule.tz",
        "unknown time zone `Europe/Londn`",
    );
}

#[test]
fn a_closed_target_or_overflow_target_longer_than_an_address_or_with_a_line_break_is_noted() {
    // Notes, not errors: configs holding one ran before, and journals replay them.
    let long = format!(r#"closed_target = "sip:{}@pbx""#, "x".repeat(1020));
    let text = file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "sales""#,
        /* 3 */ &long,
        /* 4 */ r#"schedule = { tz = "UTC", mon = ["08:00-18:00"] }"#,
        /* 5 */ r#"overflow = { target = "sip:vm@pbx\r\nX-Evil: 1" }"#,
        /* 6 */ "max_wait_s = 60",
    ]);
    let config = parse(&text, "test.toml").expect("legal, with notes");
    let notes = tierline::config::summary::notes(&config.routing);
    assert_eq!(
        notes,
        [
            "queue `sales`: the closed_target is 1028 bytes long, more than the 1024 an agent's \
             address may have: a PBX may refuse or cut it",
            "queue `sales`: the overflow target contains a control character (U+000D): it is \
             handed to the PBX as it is, where a line break ends a SIP header or a JSON line",
        ]
    );
}

#[test]
fn a_time_zone_name_with_spaces_around_it_is_taken_as_the_hours_are() {
    let text = file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "sales""#,
        /* 3 */ r#"schedule = { tz = " Europe/London ", mon = [" 08:00 - 18:00 "] }"#,
    ]);
    let config = parse(&text, "test.toml");
    assert!(config.is_ok(), "{:?}", config.err());
}

#[test]
fn a_schedule_with_bad_hours_is_refused() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "sales""#,
        /* 3 */ "[queue.schedule]",
        /* 4 */ r#"tz = "Europe/London""#,
        /* 5 */ r#"mon = ["8:00-18:00"]"#,
        /* 6 */ r#"tue = ["22:00-02:00"]"#,
        /* 7 */ r#"wed = ["08:00-12:00", "11:00-18:00"]"#,
        /* 8 */ r#"thu = ["08:00-25:00"]"#,
    ]));
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_error(
        &all[0],
        5,
        "queue[0].schedule.mon[0]",
        "bad opening hours `8:00-18:00`: `8:00` is not HH:MM",
    );
    assert_error(
        &all[1],
        6,
        "queue[0].schedule.tue[0]",
        "the end must be after the start",
    );
    assert_error(
        &all[2],
        7,
        "queue[0].schedule.wed",
        "opening hours 08:00-12:00 and 11:00-18:00 overlap",
    );
    assert_error(
        &all[3],
        8,
        "queue[0].schedule.thu[0]",
        "`25:00` is not a time of day",
    );
}

#[test]
fn a_negative_time_is_refused() {
    let all = errors(&file(&[
        /* 1 */ "[defaults]",
        /* 2 */ "reject_delay_s = -5",
        /* 3 */ "[[queue]]",
        /* 4 */ r#"id = "support""#,
        /* 5 */ "wrap_up_s = -0.5",
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(
        &all[0],
        2,
        "defaults.reject_delay_s",
        "must not be negative (found -5 s)",
    );
    assert_error(
        &all[1],
        5,
        "queue[0].wrap_up_s",
        "must not be negative (found -0.5 s)",
    );
}

#[test]
fn an_offer_timeout_of_zero_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "offer_timeout_s = 0",
    ]));
    assert_error(
        &e,
        3,
        "queue[0].offer_timeout_s",
        "must be greater than 0 s",
    );
}

#[test]
fn a_time_given_as_text_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"sla_s = "30s""#,
    ]));
    assert_error(
        &e,
        3,
        "queue[0].sla_s",
        "expected a number of seconds (integer or float)",
    );
}

#[test]
fn a_rule_with_an_empty_queue_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[[rule]]",
        /* 4 */ r#"when = { category = "complaint" }"#,
        /* 5 */ r#"queue = """#,
    ]));
    assert_error(&e, 5, "rule[0].queue", "must name a queue (it is empty)");
}

#[test]
fn a_rule_without_a_queue_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[[rule]]",
        /* 4 */ r#"when = { category = "complaint" }"#,
    ]));
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("missing field `queue`"), "{e}");
}

#[test]
fn a_rule_matching_a_channel_that_does_not_exist_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[[rule]]",
        /* 4 */ r#"when = { channel = "whatsapp" }"#,
        /* 5 */ r#"queue = "support""#,
    ]));
    assert_error(&e, 4, "rule[0].when.channel", "unknown channel `whatsapp`");
}

#[test]
fn an_agent_without_an_address_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[agent]]",
        /* 2 */ r#"id = "a1001""#,
        /* 3 */ "tiers = {}",
    ]));
    assert_eq!(e.line, Some(1));
    assert!(e.message.contains("missing field `address`"), "{e}");
}

#[test]
fn an_agent_without_an_id_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[agent]]",
        /* 2 */ r#"address = "sip:1001@pbx""#,
    ]));
    assert_error(&e, 1, "agent[0]", "missing field `id`");
}

/// A malformed address (or id) must not hide the agent's other problems until it is fixed.
#[test]
fn a_malformed_agent_address_does_not_hide_the_agents_other_problems() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[[agent]]",
        /* 4 */ r#"id = "a1""#,
        /* 5 */ "address = 1001",
        /* 6 */ "tiers = { suport = 1 }",
        /* 7 */ "capacity = { chat = 0 }",
        /* 8 */ "[[agent]]",
        /* 9 */ "id = 2",
        /* 10 */ r#"address = "sip:2@pbx""#,
        /* 11 */ "tiers = { support = 0 }",
    ]));
    assert_eq!(all.len(), 5, "{all:#?}");
    assert_error(
        &all[0],
        5,
        "agent[0].address",
        "invalid type: integer `1001`, expected a string",
    );
    assert_error(
        &all[1],
        6,
        "agent[0].tiers.suport",
        "unknown queue `suport`",
    );
    assert_error(
        &all[2],
        7,
        "agent[0].capacity.chat",
        "capacity must be at least 1",
    );
    assert_error(&all[3], 9, "agent[1].id", "invalid type: integer `2`");
    assert_error(
        &all[4],
        11,
        "agent[1].tiers.support",
        "tier 0 does not exist",
    );
}

#[test]
fn references_to_a_queue_with_a_broken_field_are_not_called_unknown() {
    // The queue has its own problem; the rule and agent naming it must not add noise.
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"steps = "all of them""#,
        /* 4 */ "[[rule]]",
        /* 5 */ r#"queue = "support""#,
        /* 6 */ "[[agent]]",
        /* 7 */ r#"id = "a1""#,
        /* 8 */ r#"address = "sip:1@pbx""#,
        /* 9 */ "tiers = { support = 1 }",
    ]));
    assert_error(&e, 3, "queue[0].steps", "invalid type: string");
}

/// When a queue's `channels` cannot be read, what it serves is unknown (the default, voice, stands
/// in for it): the rule routing chat to it, the overflow into it and its `drain_to` to a chat-only
/// queue must not be called "does not serve …". Only the real problem is reported.
#[test]
fn a_malformed_channels_value_is_the_only_error_not_also_does_not_serve() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"channels = "chat""#,
        /* 4 */ r#"drain_to = "web""#,
        /* 5 */ "[[queue]]",
        /* 6 */ r#"id = "web""#,
        /* 7 */ r#"channels = ["chat"]"#,
        /* 8 */ "max_wait_s = 60",
        /* 9 */ r#"overflow = { queue = "support" }"#,
        /* 10 */ "[[rule]]",
        /* 11 */ r#"when = { channel = "chat" }"#,
        /* 12 */ r#"queue = "support""#,
    ]));
    assert_error(
        &e,
        3,
        "queue[0].channels",
        r#"invalid type: string "chat", expected a list"#,
    );
}

/// The same for a misspelt channel: the queue may serve more than the channels that could be
/// read, so a rule or an overflow for chat is not refused on their account.
#[test]
fn a_misspelt_channel_is_the_only_error_not_also_does_not_serve() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"channels = ["voice", "chta"]"#,
        /* 4 */ "[[queue]]",
        /* 5 */ r#"id = "web""#,
        /* 6 */ r#"channels = ["chat"]"#,
        /* 7 */ "max_wait_s = 60",
        /* 8 */ r#"overflow = { queue = "support" }"#,
        /* 9 */ "[[rule]]",
        /* 10 */ r#"when = { channel = "chat" }"#,
        /* 11 */ r#"queue = "support""#,
    ]));
    assert_error(&e, 3, "queue[0].channels[1]", "unknown channel `chta`");
}

/// A misspelt channel does not excuse the channels that were read: `web` does not serve voice,
/// which `support` does.
#[test]
fn the_channels_that_could_be_read_are_still_checked() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"channels = ["voice", "chta"]"#,
        /* 4 */ "max_wait_s = 60",
        /* 5 */ r#"overflow = { queue = "web" }"#,
        /* 6 */ "[[queue]]",
        /* 7 */ r#"id = "web""#,
        /* 8 */ r#"channels = ["chat"]"#,
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(&all[0], 3, "queue[0].channels[1]", "unknown channel `chta`");
    assert_error(
        &all[1],
        5,
        "queue[0].overflow.queue",
        "queue `web` does not serve voice",
    );
}

#[test]
fn limits_must_leave_room_for_work() {
    let all = errors(&file(&[
        /* 1 */ "[limits]",
        /* 2 */ "max_live_interactions = 0",
        /* 3 */ "retain_finished = -1",
        /* 4 */ "max_history = 1",
    ]));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_error(
        &all[0],
        2,
        "limits.max_live_interactions",
        "must be at least 1",
    );
    assert_error(&all[1], 3, "limits.retain_finished", "must not be negative");
    assert_error(&all[2], 4, "limits.max_history", "must be at least 2");
}

#[test]
fn server_limits_must_leave_room_for_work() {
    let all = errors(&file(&[
        /* 1 */ "[server]",
        /* 2 */ "event_queue_depth = 0",
        /* 3 */ "max_connections = 0",
        /* 4 */ "idle_timeout_ms = 0",
    ]));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_error(&all[0], 2, "server.event_queue_depth", "must be at least 1");
    assert_error(&all[1], 3, "server.max_connections", "must be at least 1");
    assert_error(&all[2], 4, "server.idle_timeout_ms", "must be at least 1");
}

#[test]
fn server_limits_have_a_ceiling_so_a_huge_one_is_refused_rather_than_failing_at_start() {
    // Both become semaphore sizes; tokio panics above `usize::MAX >> 3`.
    let all = errors(&file(&[
        /* 1 */ "[server]",
        /* 2 */ "event_queue_depth = 4611686018427387904",
        /* 3 */ "max_connections = 1048577",
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(
        &all[0],
        2,
        "server.event_queue_depth",
        "must be at most 1048576",
    );
    assert_error(
        &all[1],
        3,
        "server.max_connections",
        "must be at most 1048576",
    );
    let at_the_limit = "[server]\nevent_queue_depth = 1048576\nmax_connections = 1048576\n";
    assert!(tierline::config::parse(at_the_limit, "t.toml").is_ok());
}

#[test]
fn the_decision_log_holds_at_least_one_decision_and_at_most_ten_million() {
    let all = errors(&file(&[
        /* 1 */ "[server]",
        /* 2 */ "decision_log = 0",
    ]));
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_error(&all[0], 2, "server.decision_log", "must be at least 1");
    let e = only_error(&file(&[
        /* 1 */ "[server]",
        /* 2 */ "decision_log = 10000001",
    ]));
    assert_error(&e, 2, "server.decision_log", "must be at most 10000000");
    let read = tierline::config::parse("[server]\ndecision_log = 10000000\n", "t.toml");
    assert_eq!(
        read.map(|c| c.daemon.server.decision_log).ok(),
        Some(10_000_000)
    );
}

#[test]
fn the_body_limit_stays_within_what_one_journal_record_holds() {
    // A config PUT is journaled as one record; a larger body could never be written.
    let e = only_error(&file(&[
        /* 1 */ "[server]",
        /* 2 */ "body_limit_bytes = 16777217",
    ]));
    assert_error(&e, 2, "server.body_limit_bytes", "must be at most 16777216");
    assert!(tierline::config::parse("[server]\nbody_limit_bytes = 16777216\n", "t.toml").is_ok());
}

#[test]
fn listen_addresses_must_be_host_and_port() {
    let all = errors(&file(&[
        /* 1 */ "[server]",
        /* 2 */ r#"listen = "nope""#,
        /* 3 */ "[metrics]",
        /* 4 */ r#"listen = "127.0.0.1:99999""#,
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(&all[0], 2, "server.listen", "`nope` is not host:port");
    assert_error(&all[1], 4, "metrics.listen", "is not host:port");
    for good in [
        "127.0.0.1:0",
        "[::1]:8080",
        "localhost:8080",
        "0.0.0.0:8081",
    ] {
        let text = format!("[server]\nlisten = \"{good}\"\n");
        assert!(
            tierline::config::parse(&text, "t.toml").is_ok(),
            "{good} should be accepted"
        );
    }
}

#[test]
fn daemon_sections_refuse_typos_and_half_tls() {
    let all = errors(&file(&[
        /* 1 */ "[server]",
        /* 2 */ r#"listen = "0.0.0.0:8080""#,
        /* 3 */ r#"tls_cert = "cert.pem""#,
        /* 4 */ "[journal]",
        /* 5 */ r#"sync = "sometimes""#,
        /* 6 */ "[[subscriber]]",
        /* 7 */ r#"url = "ftp://example""#,
    ]));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_error(
        &all[0],
        3,
        "server.tls_cert",
        "HTTPS needs both tls_cert and tls_key; tls_key is missing",
    );
    assert_error(&all[1], 5, "journal.sync", "unknown value `sometimes`");
    assert_error(
        &all[2],
        7,
        "subscriber[0].url",
        "is not an http:// or https:// URL",
    );
}

#[test]
fn an_overflow_queue_must_serve_the_channels_of_its_source() {
    let text = r#"
[[queue]]
id = "chats"
channels = ["chat"]
max_wait_s = 60
overflow = { queue = "phones" }

[[queue]]
id = "phones"
channels = ["voice"]
"#;
    let errors = tierline::config::parse(text, "t.toml").unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, Some(6));
    assert_eq!(errors[0].field, "queue[0].overflow.queue");
    assert!(
        errors[0].message.contains("does not serve chat"),
        "{}",
        errors[0].message
    );
}

#[test]
fn a_secret_from_both_an_env_var_and_a_file_is_refused_on_the_file_line() {
    let all = errors(&file(&[
        /* 1 */ "[auth]",
        /* 2 */ r#"read_tokens_env = "TIERLINE_READ_TOKENS""#,
        /* 3 */ r#"admin_tokens_file = "/run/secrets/admin""#,
        /* 4 */ r#"read_tokens_file = "/run/secrets/read""#,
        /* 5 */ "[[subscriber]]",
        /* 6 */ r#"url = "http://pbx/hook""#,
        /* 7 */ r#"secret_file = "pbx.secret""#,
        /* 8 */ r#"secret_env = "PBX_SECRET""#,
        /* 9 */ "[[subscriber]]",
        /* 10 */ r#"url = "http://crm/hook""#,
        /* 11 */ r#"secret_file = """#,
    ]));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_error(
        &all[0],
        4,
        "auth.read_tokens_file",
        "auth.read_tokens_env and auth.read_tokens_file are both set",
    );
    assert_eq!(
        all[0].to_string(),
        "test.toml:4:1: auth.read_tokens_file: auth.read_tokens_env and auth.read_tokens_file \
         are both set; a secret comes from an environment variable or a file, not both"
    );
    assert_error(
        &all[1],
        7,
        "subscriber[0].secret_file",
        "subscriber[0].secret_env and subscriber[0].secret_file are both set",
    );
    assert_error(
        &all[2],
        11,
        "subscriber[1].secret_file",
        "must be the path of a file holding the secret (it is empty)",
    );
}

#[test]
fn secret_files_alone_are_valid_and_kept_as_written() {
    let loaded = parse(
        &file(&[
            "[auth]",
            r#"webhook_secrets_file = "/run/secrets/webhook""#,
            r#"admin_tokens_env = "TIERLINE_ADMIN_TOKENS""#,
            "[[subscriber]]",
            r#"url = "http://pbx/hook""#,
            r#"secret_file = "secrets/pbx""#,
        ]),
        "test.toml",
    )
    .expect("valid");
    let auth = &loaded.daemon.auth;
    assert_eq!(
        auth.webhook_secrets_file.as_deref(),
        Some(std::path::Path::new("/run/secrets/webhook"))
    );
    assert_eq!(
        auth.admin_tokens_env.as_deref(),
        Some("TIERLINE_ADMIN_TOKENS")
    );
    assert_eq!(
        loaded.daemon.subscribers[0].secret_file.as_deref(),
        Some(std::path::Path::new("secrets/pbx"))
    );
}

#[test]
fn the_roster_must_fit_in_max_agents() {
    let e = only_error(&file(&[
        /* 1 */ "[limits]",
        /* 2 */ "max_agents = 1",
        /* 3 */ "[[queue]]",
        /* 4 */ r#"id = "support""#,
        /* 5 */ "[[agent]]",
        /* 6 */ r#"id = "a1""#,
        /* 7 */ r#"address = "sip:1@pbx""#,
        /* 8 */ "tiers = { support = 1 }",
        /* 9 */ "[[agent]]",
        /* 10 */ r#"id = "a2""#,
        /* 11 */ r#"address = "sip:2@pbx""#,
        /* 12 */ "tiers = { support = 1 }",
    ]));
    assert_error(&e, 2, "limits.max_agents", "the roster has 2 agents");
}

/// A rule whose `when.channel` its queue does not serve would match every such arrival and then
/// refuse it (`channel_not_served`), never reaching a later rule or `default_queue`.
#[test]
fn a_rule_for_a_channel_its_queue_does_not_serve_is_refused() {
    let e = only_error(&file(&[
        "[[queue]]",
        "id = \"voice_only\"",
        "[[queue]]",
        "id = \"chats\"",
        "channels = [\"chat\"]",
        "[[rule]]",
        "when = { channel = \"chat\" }",
        "queue = \"voice_only\"",
        "[routing]",
        "default_queue = \"chats\"",
    ]));
    assert_error(&e, 8, "rule[0].queue", "does not serve chat");
    // The same rule for the queue that serves chat is fine.
    assert!(parse(
        &file(&[
            "[[queue]]",
            "id = \"chats\"",
            "channels = [\"chat\"]",
            "[[rule]]",
            "when = { channel = \"chat\" }",
            "queue = \"chats\"",
        ]),
        "test.toml"
    )
    .is_ok());
}

#[test]
fn a_subscriber_type_that_no_decision_has_is_refused_naming_the_valid_ones() {
    let e = only_error(&file(&[
        /* 1 */ "[[subscriber]]",
        /* 2 */ r#"url = "http://127.0.0.1:9000/hook""#,
        /* 3 */ r#"types = ["overflow", "offers"]"#,
    ]));
    assert_error(
        &e,
        3,
        "subscriber[0].types[1]",
        "`offers` is not a decision type",
    );
    assert!(e.message.contains("offer, queued, offer_revoked"), "{e}");
    let every_type = file(&[
        "[[subscriber]]",
        r#"url = "http://127.0.0.1:9000/hook""#,
        r#"types = ["offer", "queued", "offer_revoked", "overflow", "rejected", "escalated", "agent_state"]"#,
    ]);
    assert!(parse(&every_type, "test.toml").is_ok());
}

/// A retry ceiling below the first retry delay used to be raised to it without a word.
#[test]
fn a_subscriber_whose_longest_retry_is_shorter_than_its_first_is_refused() {
    let e = only_error(&file(&[
        /* 1 */ "[[subscriber]]",
        /* 2 */ r#"url = "http://127.0.0.1:9000/hook""#,
        /* 3 */ "retry_initial_ms = 2000",
        /* 4 */ "retry_max_ms = 1000",
    ]));
    assert_error(
        &e,
        4,
        "subscriber[0].retry_max_ms",
        "retry_max_ms (1000) is less than retry_initial_ms (2000)",
    );
    // Only the first delay written, above the ceiling's default of 30 s: named where written.
    let e = only_error(&file(&[
        /* 1 */ "[[subscriber]]",
        /* 2 */ r#"url = "http://127.0.0.1:9000/hook""#,
        /* 3 */ "retry_initial_ms = 60000",
    ]));
    assert_error(
        &e,
        3,
        "subscriber[0].retry_initial_ms",
        "retry_max_ms (30000, its default) is less than retry_initial_ms (60000)",
    );
    for ok in [
        ["retry_initial_ms = 1000", "retry_max_ms = 1000"],
        ["retry_initial_ms = 0", "retry_max_ms = 0"],
    ] {
        let text = file(&[
            "[[subscriber]]",
            r#"url = "http://127.0.0.1:9000/hook""#,
            ok[0],
            ok[1],
        ]);
        assert!(parse(&text, "test.toml").is_ok(), "{ok:?}");
    }
}

/// A subscriber URL may carry credentials (`http://user:password@host/…?token=…`): a problem
/// with it names it as logs and labels do, without them (the message goes to logs, to
/// `check-config`'s output and to API answers a read token can see).
#[test]
fn a_problem_with_a_subscriber_url_never_shows_its_credentials() {
    let url = r#"url = "http://u:pw@127.0.0.1:9000/x?token=abc""#;
    let e = only_error(&file(&[
        /* 1 */ "[[subscriber]]",
        /* 2 */ url,
        /* 3 */ "[[subscriber]]",
        /* 4 */ url,
    ]));
    assert_error(
        &e,
        4,
        "subscriber[1].url",
        "duplicate subscriber name `http://…@127.0.0.1:9000/x…` (already used by subscriber[0])",
    );
    for url in [
        r#"url = "ftp://u:pw@127.0.0.1/x?token=abc""#,
        // No scheme: `u` parses as one, and the password as a path.
        r#"url = "u:pw@127.0.0.1/x?token=abc""#,
    ] {
        let e = only_error(&file(&["[[subscriber]]", url]));
        assert!(
            !e.message.contains("pw") && !e.message.contains("abc"),
            "{e}"
        );
        assert!(
            e.message.contains("is not an http:// or https:// URL"),
            "{e}"
        );
    }
}

/// Two subscribers under one name (the same `name`, or the same `url` and no name) would share
/// one ack file: each would overwrite the other's cursor, so after a restart the slower one
/// would resume after decisions it was never sent (and their temp files would collide).
#[test]
fn two_subscribers_with_one_name_are_refused_naming_the_first() {
    let e = only_error(&file(&[
        /* 1 */ "[[subscriber]]",
        /* 2 */ r#"url = "http://127.0.0.1:9000/hook""#,
        /* 3 */ r#"types = ["offer"]"#,
        /* 4 */ "[[subscriber]]",
        /* 5 */ r#"url = "http://127.0.0.1:9000/hook""#,
        /* 6 */ r#"types = ["agent_state"]"#,
    ]));
    assert_error(
        &e,
        5,
        "subscriber[1].url",
        "duplicate subscriber name `http://127.0.0.1:9000/hook` (already used by subscriber[0])",
    );
    let e = only_error(&file(&[
        /* 1 */ "[[subscriber]]",
        /* 2 */ r#"name = "pbx""#,
        /* 3 */ r#"url = "http://127.0.0.1:9000/a""#,
        /* 4 */ "[[subscriber]]",
        /* 5 */ r#"name = "pbx""#,
        /* 6 */ r#"url = "http://127.0.0.1:9000/b""#,
    ]));
    assert_error(
        &e,
        5,
        "subscriber[1].name",
        "duplicate subscriber name `pbx`",
    );
    // A name equal to another subscriber's URL is the same name too.
    let e = only_error(&file(&[
        /* 1 */ "[[subscriber]]",
        /* 2 */ r#"url = "http://127.0.0.1:9000/a""#,
        /* 3 */ "[[subscriber]]",
        /* 4 */ r#"name = "http://127.0.0.1:9000/a""#,
        /* 5 */ r#"url = "http://127.0.0.1:9000/b""#,
    ]));
    assert_error(&e, 4, "subscriber[1].name", "already used by subscriber[0]");
    // The same URL under two names is fine: each has its own ack file.
    let named = file(&[
        "[[subscriber]]",
        r#"name = "offers""#,
        r#"url = "http://127.0.0.1:9000/hook""#,
        "[[subscriber]]",
        r#"name = "states""#,
        r#"url = "http://127.0.0.1:9000/hook""#,
    ]);
    assert!(parse(&named, "test.toml").is_ok());
}

#[test]
fn a_bad_first_step_does_not_make_the_second_one_the_first() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "q""#,
        /* 3 */ "steps = [",
        /* 4 */ "  { after_s = -1, tiers = [1] },",
        /* 5 */ "  { after_s = 30, tiers = [1, 2] },",
        /* 6 */ "]",
    ]));
    assert_eq!(e.field, "queue[0].steps[0].after_s", "{e}");
}

#[test]
fn a_byte_order_mark_is_not_counted_as_a_column() {
    let e = only_error("\u{feff}defaults.sla_s = -1\n");
    assert_eq!(e.field, "defaults.sla_s");
    assert_eq!((e.line, e.column), (Some(1), Some(10)), "{e}");
}

#[test]
fn the_default_config_shows_every_subscriber_option() {
    let text = include_str!("../config/tierline.toml");
    let subscribers = &text[text.find("# Decision subscribers").unwrap()..];
    for option in [
        "url",
        "name",
        "secret_env",
        "secret_file",
        "types",
        "retry_initial_ms",
        "retry_max_ms",
        "batch_max",
        "timeout_ms",
    ] {
        assert!(
            subscribers.contains(&format!("#   {option} ")),
            "config/tierline.toml does not describe [[subscriber]] {option}"
        );
    }
}

#[test]
fn an_array_where_a_section_or_entry_table_is_expected_is_refused() {
    // serde would read an array field by field in declaration order: no names, no typo caught.
    for (text, field) in [
        (
            file(&[r#"routing = [7, "q"]"#, "[[queue]]", r#"id = "q""#]),
            "routing",
        ),
        (file(&["limits = [1, 0, 2, 1]"]), "limits"),
        (file(&["[channels]", "chat = [2, true]"]), "channels.chat"),
        (
            file(&[
                r#"rule = [[{ vip = "yes" }, "q", 5]]"#,
                "[[queue]]",
                r#"id = "q""#,
            ]),
            "rule[0]",
        ),
        (
            file(&[
                r#"agent = [["a1", "sip:a1", { q = 1 }, ["en"], { chat = 2 }]]"#,
                "[[queue]]",
                r#"id = "q""#,
            ]),
            "agent[0]",
        ),
    ] {
        let all = errors(&text);
        let e = all
            .iter()
            .find(|e| e.field == field)
            .unwrap_or_else(|| panic!("no error on `{field}` in {all:#?}\n{text}"));
        assert!(e.message.contains("must be a table"), "{e}");
    }
}

/// The same inside an entry: a ladder step, an overflow or a schedule written as an array was read
/// by position (`[0, [1], 5, true]` as after_s, tiers, priority_boost, skip_if_no_agents).
#[test]
fn an_array_where_a_step_overflow_or_schedule_table_is_expected_is_refused() {
    let queue = |line: &str| {
        file(&[
            /* 1 */ "[[queue]]",
            /* 2 */ r#"id = "q""#,
            /* 3 */ line,
        ])
    };
    for (text, field, example) in [
        (
            queue("steps = [[0, [1], 5, true]]"),
            "queue[0].steps[0]",
            "`{ after_s = 0, tiers = [1] }`",
        ),
        (
            queue("steps = [{ after_s = 0, tiers = [1] }, [30, [1, 2]]]"),
            "queue[0].steps[1]",
            "`{ after_s = 0, tiers = [1] }`",
        ),
        (
            queue(r#"overflow = ["q2", "sip:vm@pbx"]"#),
            "queue[0].overflow",
            r#"`{ queue = "…" }` or `{ target = "…" }`"#,
        ),
        (
            queue(r#"schedule = ["UTC", ["08:00-18:00"]]"#),
            "queue[0].schedule",
            r#"`{ tz = "…", mon = ["08:00-18:00"], … }`"#,
        ),
    ] {
        let e = only_error(&text);
        assert_error(&e, 3, field, "must be a table (");
        assert!(e.message.contains(example), "{e}");
        assert!(e.message.ends_with("), not array"), "{e}");
    }
    // Not an array, not a table either: the same message, not serde's "expected struct RawStep".
    let e = only_error(&queue(r#"overflow = "sip:vm@pbx""#));
    assert_error(&e, 3, "queue[0].overflow", "must be a table (");
    assert!(e.message.ends_with("), not string"), "{e}");
}

/// Steps may also be written as `[[queue.steps]]` sections; they are tables like the inline ones.
#[test]
fn ladder_steps_written_as_sections_are_read_like_inline_ones() {
    let sections = parse(
        &file(&[
            "[[queue]]",
            r#"id = "q""#,
            "[[queue.steps]]",
            "after_s = 0",
            "tiers = [1]",
            "[[queue.steps]]",
            "after_s = 30",
            "tiers = [1, 2]",
            "priority_boost = 5",
        ]),
        "test.toml",
    )
    .expect("valid");
    let inline = parse(
        &file(&[
            "[[queue]]",
            r#"id = "q""#,
            "steps = [{ after_s = 0, tiers = [1] }, \
             { after_s = 30, tiers = [1, 2], priority_boost = 5 }]",
        ]),
        "test.toml",
    )
    .expect("valid");
    assert_eq!(sections.routing.queues, inline.routing.queues);
}

#[test]
fn journal_segment_size_and_commit_window_have_bounds() {
    let all = errors(&file(&[
        /* 1 */ "[journal]",
        /* 2 */ "segment_bytes = 0",
        /* 3 */ "max_batch_delay_ms = 60000",
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(
        &all[0],
        2,
        "journal.segment_bytes",
        "must be from 1048576 (1 MiB)",
    );
    assert_error(
        &all[1],
        3,
        "journal.max_batch_delay_ms",
        "must be at most 1000",
    );
    let at_the_bounds = "[journal]\nsegment_bytes = 1048576\nmax_batch_delay_ms = 1000\n";
    assert!(parse(at_the_bounds, "test.toml").is_ok());
}

/// Like an agent's id and address, the required fields of the other entries are read as optional:
/// one that is malformed (or missing) must not hide the entry's other problems until it is fixed.
#[test]
fn a_malformed_or_missing_queue_id_does_not_hide_the_queues_other_problems() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ "id = 7",
        /* 3 */ r#"strategy = "fastest""#,
        /* 4 */ "sla_s = -5",
        /* 5 */ "[[queue]]",
        /* 6 */ r#"channels = ["fax"]"#,
    ]));
    assert_eq!(all.len(), 5, "{all:#?}");
    assert_error(&all[0], 2, "queue[0].id", "invalid type: integer `7`");
    assert_error(
        &all[1],
        3,
        "queue[0].strategy",
        "unknown strategy `fastest`",
    );
    assert_error(&all[2], 4, "queue[0].sla_s", "must not be negative");
    assert_error(&all[3], 5, "queue[1]", "missing field `id`");
    assert_error(&all[4], 6, "queue[1].channels[0]", "unknown channel `fax`");
}

#[test]
fn a_malformed_rule_queue_does_not_hide_the_rules_other_problems() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[[rule]]",
        /* 4 */ r#"when = { channel = "fax" }"#,
        /* 5 */ "queue = 5",
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(&all[0], 4, "rule[0].when.channel", "unknown channel `fax`");
    assert_error(&all[1], 5, "rule[0].queue", "invalid type: integer `5`");
}

#[test]
fn a_step_without_after_s_or_tiers_does_not_hide_the_ladders_other_problems() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "q""#,
        /* 3 */ "steps = [",
        /* 4 */ "  { tiers = [0] },",
        /* 5 */ "  { after_s = 30 },",
        /* 6 */ "  { after_s = 20, tiers = [2] },",
        /* 7 */ "]",
    ]));
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_error(&all[0], 4, "queue[0].steps[0]", "missing field `after_s`");
    assert_error(
        &all[1],
        4,
        "queue[0].steps[0].tiers[0]",
        "tier 0 does not exist",
    );
    assert_error(&all[2], 5, "queue[0].steps[1]", "missing field `tiers`");
    assert_error(
        &all[3],
        6,
        "queue[0].steps[2].after_s",
        "strictly increasing",
    );
}

#[test]
fn a_schedule_without_a_time_zone_still_has_its_hours_checked() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "q""#,
        /* 3 */ r#"schedule = { mon = ["9-5"] }"#,
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(&all[0], 3, "queue[0].schedule", "missing field `tz`");
    assert_error(
        &all[1],
        3,
        "queue[0].schedule.mon[0]",
        "bad opening hours `9-5`",
    );
}

#[test]
fn a_malformed_or_missing_subscriber_url_does_not_hide_its_other_problems() {
    let all = errors(&file(&[
        /* 1 */ "[[subscriber]]",
        /* 2 */ "url = 8080",
        /* 3 */ r#"types = ["offered"]"#,
        /* 4 */ "[[subscriber]]",
        /* 5 */ r#"secret_env = "HOOK_SECRET""#,
        /* 6 */ r#"secret_file = "/run/secrets/hook""#,
    ]));
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_error(
        &all[0],
        2,
        "subscriber[0].url",
        "invalid type: integer `8080`",
    );
    assert_error(
        &all[1],
        3,
        "subscriber[0].types[0]",
        "`offered` is not a decision type",
    );
    assert_error(&all[2], 4, "subscriber[1]", "missing field `url`");
    assert_error(&all[3], 6, "subscriber[1].secret_file", "both set");
}

/// One bad field in a ladder step is that field's problem only: the other steps (and the rest of
/// the same step) are still checked, so every step's problems come out in one pass.
#[test]
fn every_ladder_step_is_checked_when_one_has_a_bad_field() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "q""#,
        /* 3 */ "steps = [",
        /* 4 */ r#"  { after_s = 0, tiers = "x" },"#,
        /* 5 */ "  { after_s = 30, tiers = [1, 2] },",
        /* 6 */ "  { after_s = 20, tiers = [0] },",
        /* 7 */ r#"  { after_s = "soon", tiers = [3] },"#,
        /* 8 */ "]",
    ]));
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_error(
        &all[0],
        4,
        "queue[0].steps[0].tiers",
        "invalid type: string \"x\", expected a list",
    );
    assert_error(
        &all[1],
        6,
        "queue[0].steps[2].after_s",
        "steps must be strictly increasing: 20 s is not after the previous step's 30 s",
    );
    assert_error(
        &all[2],
        6,
        "queue[0].steps[2].tiers[0]",
        "tier 0 does not exist",
    );
    assert_error(
        &all[3],
        7,
        "queue[0].steps[3].after_s",
        "invalid type: string \"soon\", expected a number of seconds",
    );
    // A step that is not a table at all does not hide the others either.
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "q""#,
        /* 3 */ "steps = [",
        /* 4 */ "  { after_s = 0, tiers = [1] },",
        /* 5 */ "  30,",
        /* 6 */ "  { after_s = 0, tiers = [2] },",
        /* 7 */ "]",
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(&all[0], 5, "queue[0].steps[1]", "must be a table (");
    assert_error(
        &all[1],
        6,
        "queue[0].steps[2].after_s",
        "strictly increasing",
    );
}

/// The same for opening hours: a malformed `tz` or day drops that field, not the whole schedule.
#[test]
fn every_schedule_field_is_checked_when_one_is_malformed() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "q""#,
        /* 3 */ "[queue.schedule]",
        /* 4 */ "tz = 1",
        /* 5 */ r#"mon = "08:00-18:00""#,
        /* 6 */ r#"tue = ["9-5"]"#,
    ]));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_error(
        &all[0],
        4,
        "queue[0].schedule.tz",
        "invalid type: integer `1`",
    );
    assert_error(&all[1], 5, "queue[0].schedule.mon", "invalid type: string");
    assert_error(
        &all[2],
        6,
        "queue[0].schedule.tue[0]",
        "bad opening hours `9-5`",
    );
}

/// A TOML datetime reaches serde as a map under a private key: where a step, overflow or schedule
/// table is expected it must get the same "must be a table" as any other value, not "unknown field
/// `$__toml_private_datetime`".
#[test]
fn a_datetime_where_a_step_overflow_or_schedule_table_is_expected_is_refused() {
    let queue = |line: &str| {
        file(&[
            /* 1 */ "[[queue]]",
            /* 2 */ r#"id = "q""#,
            /* 3 */ "max_wait_s = 60",
            /* 4 */ line,
        ])
    };
    for (text, field, example) in [
        (
            queue("overflow = 1979-05-27"),
            "queue[0].overflow",
            r#"`{ queue = "…" }` or `{ target = "…" }`"#,
        ),
        (
            queue("schedule = 07:00:00"),
            "queue[0].schedule",
            r#"`{ tz = "…", mon = ["08:00-18:00"], … }`"#,
        ),
        (
            queue("steps = [{ after_s = 0, tiers = [1] }, 1979-05-27T07:32:00Z]"),
            "queue[0].steps[1]",
            "`{ after_s = 0, tiers = [1] }`",
        ),
    ] {
        let all = errors(&text);
        let e = all
            .iter()
            .find(|e| e.field == field)
            .unwrap_or_else(|| panic!("no error on `{field}` in {all:#?}\n{text}"));
        assert_error(e, 4, field, "must be a table (");
        assert!(e.message.contains(example), "{e}");
        assert!(e.message.ends_with("), not datetime"), "{e}");
        assert!(
            !all.iter().any(|e| e.message.contains("$__toml")),
            "{all:#?}"
        );
    }
}

/// Where a plain value or a table of names is expected, a datetime is named as such, with what
/// was expected (serde alone says "map", or takes the private key as a name).
#[test]
fn a_datetime_where_a_value_is_expected_is_named_a_datetime() {
    let all = errors(&file(&[
        /* 1 */ "[defaults]",
        /* 2 */ "sla_s = 1979-05-27",
        /* 3 */ "[[queue]]",
        /* 4 */ r#"id = "q""#,
        /* 5 */ "steps = [{ after_s = 0, tiers = [07:00:00] }]",
        /* 6 */ "[[agent]]",
        /* 7 */ r#"id = "a1""#,
        /* 8 */ "address = 07:00:00",
        /* 9 */ "tiers = 1979-05-27",
        /* 10 */ "[[rule]]",
        /* 11 */ "when = 1979-05-27",
        /* 12 */ r#"queue = "q""#,
    ]));
    assert_eq!(all.len(), 5, "{all:#?}");
    assert_error(
        &all[0],
        2,
        "defaults.sla_s",
        "invalid type: datetime `1979-05-27`, expected a number of seconds (integer or float)",
    );
    assert_error(
        &all[1],
        5,
        "queue[0].steps[0].tiers[0]",
        "invalid type: datetime `07:00:00`, expected a whole number",
    );
    assert_error(
        &all[2],
        8,
        "agent[0].address",
        "invalid type: datetime `07:00:00`, expected a string",
    );
    assert_error(
        &all[3],
        9,
        "agent[0].tiers",
        "invalid type: datetime `1979-05-27`, expected a map",
    );
    assert_error(
        &all[4],
        11,
        "rule[0].when",
        "invalid type: datetime `1979-05-27`, expected a map",
    );
}

/// Found by review: nested step fields are dropped one by one, up to a bound (64). Past it the
/// whole queue was given up: its other problems (here the negative `sla_s`) went unreported.
/// Now the ladder itself is dropped, as for any field, and the rest of the queue is checked.
#[test]
fn a_ladder_with_many_bad_steps_does_not_hide_the_queues_other_problems() {
    let steps: Vec<String> = (0..65)
        .map(|i| format!(r#"{{ after_s = "x{i}", tiers = [1] }}"#))
        .collect();
    let steps = format!("steps = [{}]", steps.join(", "));
    let text = file(&["[[queue]]", r#"id = "q""#, "sla_s = -1", &steps]);
    let all = errors(&text);
    assert!(
        all.iter()
            .any(|e| e.field == "queue[0].sla_s" && e.message.contains("must not be negative")),
        "the negative sla_s is not reported; {} errors, first: {:#?}",
        all.len(),
        all.first()
    );
    assert!(
        all.iter().any(|e| e.field == "queue[0].steps[63].after_s"),
        "the first 64 step errors are reported: {all:#?}"
    );
}

#[test]
fn one_unreadable_value_in_an_agent_or_rule_map_hides_none_of_the_others() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[[agent]]",
        /* 4 */ r#"id = "a1""#,
        /* 5 */ r#"address = "sip:a1@pbx""#,
        /* 6 */ r#"tiers = { support = "x", sales = 1 }"#,
        /* 7 */ r#"capacity = { voice = "one", chat = 0 }"#,
        /* 8 */ "[[rule]]",
        /* 9 */ r#"when = { category = 5, channel = "fax" }"#,
        /* 10 */ r#"queue = "support""#,
    ]));
    assert_eq!(all.len(), 6, "{all:#?}");
    // Each problem on its line; before, the first bad value dropped its whole map, and the
    // other value's problem went unreported.
    assert_error(&all[0], 6, "agent[0].tiers.support", "invalid type: string");
    assert_error(&all[1], 6, "agent[0].tiers.sales", "unknown queue `sales`");
    assert_error(
        &all[2],
        7,
        "agent[0].capacity.voice",
        "invalid type: string",
    );
    assert_error(
        &all[3],
        7,
        "agent[0].capacity.chat",
        "capacity must be at least 1",
    );
    assert_error(
        &all[4],
        9,
        "rule[0].when.category",
        "invalid type: integer `5`",
    );
    assert_error(&all[5], 9, "rule[0].when.channel", "unknown channel `fax`");
}

#[test]
fn a_schedule_written_as_an_array_of_tables_is_named_as_the_field_it_is() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"steps = [{ after_s = 0, tiers = [1] }]"#,
        /* 4 */ "",
        /* 5 */ "[[queue.schedule]]",
        /* 6 */ r#"tz = "Europe/London""#,
    ]));
    // Not `schedule[0]`: there is no array there to index, only a table written twice-bracketed.
    assert_error(&e, 5, "queue[0].schedule", "must be a table");
    assert!(e.message.ends_with("not array"), "{e}");
    // An element of `[[queue.steps]]` with a problem of its own is still named by its index.
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[[queue.steps]]",
        /* 4 */ "after_s = 0",
    ]));
    assert_eq!(e.field, "queue[0].steps[0]", "{e}");
}

#[test]
fn queue_and_agent_ids_are_refused_with_control_characters_spaces_around_or_past_256_bytes() {
    let long = "q".repeat(257);
    let text = file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "sa\nles""#,
        /* 3 */ "[[queue]]",
        /* 4 */ r#"id = " support""#,
        /* 5 */ "[[queue]]",
        /* 6 */ &format!(r#"id = "{long}""#),
        /* 7 */ "[[queue]]",
        /* 8 */ r#"id = "vip\u202e""#,
        /* 9 */ "[[agent]]",
        /* 10 */ r#"id = "a1\t""#,
        /* 11 */ r#"address = "sip:a1@pbx""#,
        /* 12 */ "[[agent]]",
        /* 13 */ r#"id = "a 2""#,
        /* 14 */ r#"address = "sip:a2@pbx""#,
    ]);
    let all = errors(&text);
    assert_eq!(all.len(), 5, "{all:#?}");
    assert_error(
        &all[0],
        2,
        "queue[0].id",
        "control or formatting characters",
    );
    assert!(all[0].message.contains("U+000A"), "{}", all[0]);
    assert_error(
        &all[1],
        4,
        "queue[1].id",
        "must not begin or end with a space",
    );
    assert_error(&all[2], 6, "queue[2].id", "is 257 bytes long; at most 256");
    assert_error(&all[3], 8, "queue[3].id", "U+202E");
    assert_error(&all[4], 10, "agent[0].id", "U+0009");
    // One error a line: the id is shown escaped, never with its line break.
    assert!(
        all.iter().all(|e| !e.to_string().contains('\n')),
        "{all:#?}"
    );
}

#[test]
fn a_duplicated_queue_id_is_checked_as_its_first_definition_the_one_references_use() {
    // The first `support` serves email, so `complaints` may overflow its email there; only the
    // duplicate itself is wrong.
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ r#"channels = ["voice", "email"]"#,
        /* 4 */ "[[queue]]",
        /* 5 */ r#"id = "complaints""#,
        /* 6 */ r#"channels = ["voice", "email"]"#,
        /* 7 */ "max_wait_s = 60",
        /* 8 */ r#"overflow = { queue = "support" }"#,
        /* 9 */ "[[queue]]",
        /* 10 */ r#"id = "support""#,
        /* 11 */ r#"channels = ["voice"]"#,
    ]));
    assert_error(&e, 10, "queue[2].id", "duplicate queue id `support`");
}

#[test]
fn a_blank_queue_id_is_not_listed_among_the_known_queues() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "support""#,
        /* 3 */ "[[queue]]",
        /* 4 */ r#"id = "  ""#,
        /* 5 */ "[[rule]]",
        /* 6 */ r#"when = { category = "x" }"#,
        /* 7 */ r#"queue = "sales""#,
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(&all[1], 7, "rule[0].queue", "(queues: support)");
}

#[test]
fn a_section_written_as_an_array_of_tables_is_told_its_own_form() {
    let all = errors(&file(&[
        /* 1 */ "queue = [1]",
        /* 2 */ "[[defaults]]",
        /* 3 */ "sla_s = 5",
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].field, "queue[0]");
    assert!(
        all[0]
            .message
            .contains("must be a table (`[[queue]]` or `{ key = value, … }`)"),
        "{}",
        all[0]
    );
    assert_eq!(all[1].field, "defaults");
    assert!(
        all[1]
            .message
            .contains("must be a table (`[defaults]` or `{ key = value, … }`)"),
        "{}",
        all[1]
    );
}

#[test]
fn steps_closer_than_a_millisecond_are_explained_in_milliseconds() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "q""#,
        /* 3 */ "steps = [",
        /* 4 */ "  { after_s = 0, tiers = [1] },",
        /* 5 */ "  { after_s = 0.0004, tiers = [1, 2] },",
        /* 6 */ "]",
    ]));
    assert_error(
        &e,
        5,
        "queue[0].steps[1].after_s",
        "in whole milliseconds: 0.0004 s is 0 ms, not after the previous step's 0 ms",
    );
}

#[test]
fn huge_durations_are_shown_as_written_not_as_hundreds_of_digits() {
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "q""#,
        /* 3 */ "max_wait_s = 1e300",
        /* 4 */ r#"overflow = { target = "sip:vm@pbx" }"#,
        /* 5 */ "sla_s = -1e20",
    ]));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_error(&all[0], 3, "queue[0].max_wait_s", "1e300 s is too long");
    assert_error(
        &all[1],
        5,
        "queue[0].sla_s",
        "must not be negative (found -1e20 s)",
    );
}

#[test]
fn an_opening_interval_without_a_start_says_so() {
    let e = only_error(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "q""#,
        /* 3 */ r#"schedule = { tz = "Europe/London", mon = ["-1:00-18:00"] }"#,
    ]));
    assert_eq!(e.field, "queue[0].schedule.mon[0]");
    assert!(e.message.contains("the start is missing"), "{e}");
}

#[test]
fn daemon_settings_that_could_never_start_are_refused_by_check_config() {
    let all = errors(&file(&[
        /* 1 */ "[server]",
        /* 2 */ r#"listen = "0.0.0.0:18490""#,
        /* 3 */ "idempotency_ids = 9223372036854775807",
        /* 4 */ "workers = 100000",
        /* 5 */ "[metrics]",
        /* 6 */ r#"listen = "127.0.0.1:18490""#,
        /* 7 */ "[journal]",
        /* 8 */ r#"dir = """#,
        /* 9 */ "[auth]",
        /* 10 */ r#"read_tokens_env = """#,
        /* 11 */ "[[subscriber]]",
        /* 12 */ r#"url = "http://""#,
        /* 13 */ r#"name = """#,
    ]));
    assert_eq!(all.len(), 7, "{all:#?}");
    assert_error(
        &all[0],
        3,
        "server.idempotency_ids",
        "must be at most 100000000",
    );
    assert_error(&all[1], 4, "server.workers", "must be at most 1024");
    assert_error(&all[2], 6, "metrics.listen", "is also server.listen");
    assert_error(&all[3], 8, "journal.dir", "it is empty");
    assert_error(&all[4], 10, "auth.read_tokens_env", "it is empty");
    assert_error(&all[5], 12, "subscriber[0].url", "has no host");
    assert_error(&all[6], 13, "subscriber[0].name", "must not be empty");
    // Two listeners on different ports, or both on port 0 (a fresh port each), are fine.
    for (api, metrics) in [
        ("127.0.0.1:8080", "127.0.0.1:9464"),
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("127.0.0.1:9000", "127.0.0.2:9000"),
    ] {
        let text = format!("[server]\nlisten = \"{api}\"\n[metrics]\nlisten = \"{metrics}\"\n");
        assert!(parse(&text, "t.toml").is_ok(), "{api} / {metrics}");
    }
}

#[test]
fn a_config_file_that_is_blank_not_utf8_or_huge_is_refused_with_where_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let only = |path: &std::path::Path| {
        let mut e = tierline::config::load(path).expect_err("refused").0;
        assert_eq!(e.len(), 1, "{e:#?}");
        e.remove(0)
    };
    for blank in [&b""[..], b"  \n\n", b"\xEF\xBB\xBF\n"] {
        let e = only(&write("blank.toml", blank));
        assert!(e.message.contains("the config file is empty"), "{e}");
    }
    let e = only(&write("latin1.toml", b"[[queue]]\nid = \"caf\xE9\"\n"));
    assert_eq!((e.line, e.column), (Some(2), Some(10)), "{e}");
    assert!(e.message.contains("not UTF-8: byte 0xE9"), "{e}");
    let big = vec![b'#'; tierline::config::MAX_CONFIG_BYTES + 1];
    let e = only(&write("big.toml", &big));
    assert!(e.message.contains("larger than"), "{e}");
    // Comments alone are a deliberate (if empty) config, and check-config says what it means.
    let config = tierline::config::load(&write("comments.toml", b"# nothing yet\n")).unwrap();
    assert_eq!(
        tierline::config::summary::render(&config.routing),
        "no queues: every arrival would be rejected (`no_route`)\n"
    );
}

#[test]
fn a_rule_no_event_could_match_is_refused() {
    let long_key = "k".repeat(257);
    let long_value = "v".repeat(1025);
    let all = errors(&file(&[
        /* 1 */ "[[queue]]",
        /* 2 */ r#"id = "q""#,
        /* 3 */ "[[rule]]",
        /* 4 */ r#"when = { "" = "vip" }"#,
        /* 5 */ r#"queue = "q""#,
        /* 6 */ "[[rule]]",
        /* 7 */ &format!(r#"when = {{ {long_key} = "x" }}"#),
        /* 8 */ r#"queue = "q""#,
        /* 9 */ "[[rule]]",
        /* 10 */ &format!(r#"when = {{ tier = "{long_value}" }}"#),
        /* 11 */ r#"queue = "q""#,
    ]));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_error(
        &all[0],
        4,
        "rule[0].when",
        "an attribute name must not be empty",
    );
    assert_error(
        &all[1],
        7,
        &format!("rule[1].when.{long_key}"),
        "an attribute name is 257 bytes long; at most 256",
    );
    assert_error(
        &all[2],
        10,
        "rule[2].when.tier",
        "an attribute value is 1025 bytes long; at most 1024",
    );
}

#[test]
fn a_schedule_with_no_open_hours_is_shown_as_never_open() {
    let config = parse(
        "[[queue]]\nid = \"q\"\nschedule = { tz = \"Europe/London\" }\n",
        "t.toml",
    )
    .expect("a queue kept closed is legal");
    let line = tierline::config::summary::render(&config.routing);
    assert!(
        line.contains("schedule=Europe/London (never open)"),
        "{line}"
    );
}
