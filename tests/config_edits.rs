//! Random edits of the default config file (`config/tierline.toml`): a value replaced by one of
//! another type or out of range, a line dropped, repeated or moved, a key misspelled. Whatever
//! the edit, `parse` answers without panicking (overflowing arithmetic included: the tests build
//! with overflow checks), the same way twice; a refusal names the file and a line inside it for
//! every error and says what is wrong; a file it accepts starts an engine that passes its own
//! consistency check and routes a call.

use proptest::prelude::*;
use tierline::config::parse;
use tierline::engine::{Engine, Event};

const DEFAULT: &str = include_str!("../config/tierline.toml");
const ORIGIN: &str = "edited.toml";

/// Values a sender of a config might write where another was expected.
const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "3",
    "10",
    "30",
    "600",
    "65535",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "1.5",
    "1e300",
    "nan",
    "true",
    "\"\"",
    "\"x\"",
    "\"support\"",
    "\"voice\"",
    "\"127.0.0.1:0\"",
    "\"Europe/Nowhere\"",
    "[]",
    "[0]",
    "[1, 1]",
    "[\"voice\", \"fax\"]",
    "[{ after_s = 0, tiers = [] }]",
    "[{ after_s = 5, tiers = [1] }]",
    "[{ after_s = 0, tiers = [1] }, { after_s = 0, tiers = [2] }]",
    "[{ after_s = 0, tiers = [1] }, { after_s = 9223372036854775807, tiers = [2] }]",
    "{}",
    "{ queue = \"nowhere\" }",
    "{ queue = \"support\" }",
    "{ target = \"\" }",
    "{ support = 0 }",
    "{ support = 4294967296 }",
    "{ chat = 0 }",
];

#[derive(Debug, Clone)]
enum Edit {
    /// Line `n`'s value (after its first `=`) becomes `VALUES[v]`.
    Value(usize, usize),
    Drop(usize),
    Repeat(usize),
    /// Line `n` moves to just before line `m`.
    Move(usize, usize),
    /// Line `n`'s key gets a letter more.
    Misspell(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => (any::<usize>(), 0..VALUES.len()).prop_map(|(n, v)| Edit::Value(n, v)),
        1 => any::<usize>().prop_map(Edit::Drop),
        1 => any::<usize>().prop_map(Edit::Repeat),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(n, m)| Edit::Move(n, m)),
        1 => any::<usize>().prop_map(Edit::Misspell),
    ]
}

/// The lines that set something (`key = value`), as indexes into `lines`.
fn settings(lines: &[String]) -> Vec<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|(i, _)| i)
        .collect()
}

fn apply(lines: &mut Vec<String>, edit: &Edit) {
    let set = settings(lines);
    if set.is_empty() || lines.is_empty() {
        return;
    }
    match *edit {
        Edit::Value(n, v) => {
            let at = set[n % set.len()];
            if let Some((key, _)) = lines[at].split_once('=') {
                lines[at] = format!("{key}= {}", VALUES[v]);
            }
        }
        Edit::Drop(n) => {
            lines.remove(set[n % set.len()]);
        }
        Edit::Repeat(n) => {
            let at = set[n % set.len()];
            let line = lines[at].clone();
            lines.insert(at + 1, line);
        }
        Edit::Move(n, m) => {
            let line = lines.remove(set[n % set.len()]);
            let to = m % (lines.len() + 1);
            lines.insert(to, line);
        }
        Edit::Misspell(n) => {
            let at = set[n % set.len()];
            if let Some((key, value)) = lines[at].split_once('=') {
                lines[at] = format!("{}q ={value}", key.trim_end());
            }
        }
    }
}

proptest! {
    #[test]
    fn any_edit_of_the_default_config_is_refused_with_its_place_or_accepted_and_runs(
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let mut lines: Vec<String> = DEFAULT.lines().map(str::to_string).collect();
        for e in &edits {
            apply(&mut lines, e);
        }
        let text = lines.join("\n") + "\n";
        let first = parse(&text, ORIGIN);
        let again = parse(&text, ORIGIN);
        match (first, again) {
            (Err(errors), Err(again)) => {
                prop_assert_eq!(errors.to_string(), again.to_string());
                prop_assert!(!errors.0.is_empty(), "refused with no error:\n{}", text);
                for e in &errors.0 {
                    prop_assert_eq!(&e.file, ORIGIN);
                    prop_assert!(!e.message.trim().is_empty(), "empty message: {:?}", e);
                    let line = e.line;
                    prop_assert!(
                        line.is_some_and(|l| (1..=lines.len() + 1).contains(&l)),
                        "{} has no line inside the file ({} lines); edits {:?}",
                        e,
                        lines.len(),
                        edits
                    );
                }
            }
            (Ok(config), Ok(_)) => {
                let routing = config.routing;
                let mut engine = Engine::new(routing.clone(), 0);
                prop_assert_eq!(engine.check_consistency(), Ok(()));
                // A call to the first queue on its first channel (it may be refused: closed,
                // full); the engine answers and stays consistent either way.
                if let Some((q, channel)) = routing
                    .queues
                    .first()
                    .and_then(|q| q.channels.first().map(|c| (q, c)))
                {
                    let call: Event = serde_json::from_value(serde_json::json!({
                        "type": "interaction.arrived",
                        "interaction": "c1",
                        "channel": channel,
                        "queue": q.id,
                    }))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let _ = engine.handle(1_000, &call);
                    prop_assert_eq!(engine.check_consistency(), Ok(()));
                }
            }
            (first, again) => prop_assert!(
                false,
                "parsed differently twice: {:?} then {:?}",
                first.is_ok(),
                again.is_ok()
            ),
        }
    }
}
