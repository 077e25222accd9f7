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
