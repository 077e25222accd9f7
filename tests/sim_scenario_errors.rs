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
