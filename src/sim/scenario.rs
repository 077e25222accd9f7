//! The scenario file: TOML → a validated, resolved [`Plan`] in engine milliseconds.
//!
//! A scenario says what traffic arrives and which agents are there to take it; the routing config
//! (a separate file) says how tierline routes it. This module owns the file format and every check
//! on it. It never runs anything: checking a scenario against a routing config is pure. Like the
//! config parser, it never half-accepts a file: either every check passes, or every problem found
//! is returned with its file, line (when known) and field. See `docs/SIMULATOR.md` for the format.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::locate::{FieldPath, Locator};
use crate::config::{Channel, ConfigError, ConfigErrors, Millis, RoutingConfig, Tier};
use crate::engine::event::{MAX_ATTRIBUTE_LEN, MAX_ID_LEN};
use crate::sim::dist::Dist;

/// The default virtual start: Monday 2024-01-01 00:00:00 UTC (queue schedules see this date).
pub const DEFAULT_START_MS: Millis = 1_704_067_200_000;

/// How long the run goes on after `duration_s` for calls still in the system, unless given.
pub const DEFAULT_DRAIN_S: f64 = 3_600.0;

/// Upper bound on the run length (one year of virtual time, 365 days, as the routing config's
/// longest time): a typo must not run for ever.
pub const MAX_DURATION_S: f64 = 365.0 * 86_400.0;
/// Highest arrival rate of a stream: a million a second. Beyond it the gaps between arrivals
/// vanish in floating point and the clock would stop advancing.
pub const MAX_RATE_PER_HOUR: f64 = 3.6e9;
/// Most arrivals a stream may be expected to make (its highest rate × the run's duration, drain
/// excluded): a typo in a rate must not run for days.
pub const MAX_ARRIVALS_PER_STREAM: f64 = 1e8;

/// Upper bound on agents in one scenario; beyond it the file is refused.
pub const MAX_AGENTS: usize = 200_000;

// ---------------------------------------------------------------------------------------------
// The file as written.

/// The scenario file as written (seconds, names). See `docs/SIMULATOR.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Arrivals are generated in `[0, duration_s)`; figures cover `[warm_up_s, duration_s)`.
    pub duration_s: f64,
    #[serde(default)]
    pub warm_up_s: f64,
    /// After `duration_s`, keep running at most this long so interactions already in the system
    /// can finish; whatever is still live then is reported as `unfinished`.
    pub drain_s: Option<f64>,
    /// RNG seed; `--seed` overrides it. Default 1.
    pub seed: Option<u64>,
    /// Virtual wall-clock time of second 0 (RFC 3339); matters for queue schedules. A quoted
    /// string or a TOML date-time (`start = 2026-11-23T08:00:00Z`), read the same.
    #[serde(default, deserialize_with = "text_or_datetime")]
    pub start: Option<String>,
    /// Log in every agent of the routing config's roster for the whole run.
    #[serde(default)]
    pub use_roster: bool,
    /// Agent behaviour unless an agent group overrides it.
    #[serde(default)]
    pub behaviour: BehaviourSpec,
    #[serde(default)]
    pub arrivals: Vec<ArrivalSpec>,
    #[serde(default)]
    pub agents: Vec<AgentSpec>,
}

/// One arrival stream: Poisson arrivals into a queue (or through the routing rules).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalSpec {
    /// Names the queue directly (routing rules are skipped).
    pub queue: Option<String>,
    /// Attributes sent with each arrival; with no `queue` the routing rules pick the queue.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Constant Poisson rate.
    pub rate_per_hour: Option<f64>,
    /// A day shape: piecewise-constant rates, each from its `from_s` until the next one.
    pub rates: Option<Vec<RateSpec>>,
    /// Repeat the `rates` pattern every this many seconds (e.g. 86400 for a daily shape).
    pub repeat_s: Option<f64>,
    /// Channel mix as weights (normalised); default all voice.
    pub channels: Option<BTreeMap<Channel, f64>>,
    /// Connected time (from accept to `interaction.ended`).
    pub handle: Dist,
    /// When the agent presses "wrap-up done" (capped by the queue's `wrap_up_s`); default never:
    /// wrap-up lasts the queue's `wrap_up_s`.
    pub wrap_up: Option<Dist>,
    /// How long the customer waits before hanging up; default `none` (never abandons).
    pub patience: Option<Dist>,
    pub priority: Option<i32>,
    #[serde(default)]
    pub skills: Vec<String>,
}

/// One piece of a day shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    pub from_s: f64,
    pub per_hour: f64,
}

/// What agents do when offered an interaction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviourSpec {
    /// Time from the offer to the agent's accept or decline. Default 0.
    #[serde(default = "Dist::zero")]
    pub answer_delay: Dist,
    /// Probability the agent never answers (the offer expires after `offer_timeout_s`).
    #[serde(default)]
    pub no_answer_prob: f64,
    /// Probability the agent declines (reason `rejected`) after the answer delay.
    #[serde(default)]
    pub decline_prob: f64,
}

impl Default for BehaviourSpec {
    fn default() -> Self {
        BehaviourSpec {
            answer_delay: Dist::zero(),
            no_answer_prob: 0.0,
            decline_prob: 0.0,
        }
    }
}

/// One agent (`id`) or a group of identical agents (`count`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub id: Option<String>,
    pub count: Option<u32>,
    /// Group ids are `{id_prefix}{n}` with n from 1, zero-padded; default `g{group}-`.
    pub id_prefix: Option<String>,
    /// Tier per queue. Absent for an `id` of the routing config's roster (its tiers apply).
    pub tiers: Option<BTreeMap<String, Tier>>,
    pub skills: Option<Vec<String>>,
    pub capacity: Option<BTreeMap<Channel, u32>>,
    /// When the agents are logged in; default the whole run.
    #[serde(default)]
    pub shifts: Vec<ShiftSpec>,
    /// Not-ready periods (reason `break`).
    #[serde(default)]
    pub breaks: Vec<BreakSpec>,
    pub behaviour: Option<BehaviourSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftSpec {
    pub login_s: f64,
    pub logout_s: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakSpec {
    pub at_s: f64,
    pub duration_s: f64,
}

// ---------------------------------------------------------------------------------------------
// The resolved plan the runner executes.

/// `start` as written: a string, or a TOML date-time as its text (RFC 3339, which `start` is
/// parsed as afterwards; a local one without an offset is refused there, naming the field).
fn text_or_datetime<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Start;
    impl<'de> serde::de::Visitor<'de> for Start {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(
                "an RFC 3339 date-time with its UTC offset, quoted (\"2026-11-23T08:00:00Z\") or \
                 not",
            )
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        // A TOML date-time reaches serde as a one-entry map.
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<String, A::Error> {
            let dt = toml::value::Datetime::deserialize(
                serde::de::value::MapAccessDeserializer::new(map),
            )?;
            Ok(dt.to_string())
        }
    }
    d.deserialize_any(Start).map(Some)
}

/// 2100-01-01T00:00:00Z: a scheduled queue's opening hours are known up to here (see `resolve`).
const SCHEDULES_KNOWN_UNTIL_MS: Millis = 4_102_444_800_000;

/// A validated scenario, in milliseconds relative to `start_ms` (engine time = start + offset).
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub start_ms: Millis,
    pub duration_ms: Millis,
    pub warm_up_ms: Millis,
    pub drain_ms: Millis,
    pub streams: Vec<Stream>,
    pub agents: Vec<PlannedAgent>,
    /// Distinct behaviours; agents refer to them by index.
    pub behaviours: Vec<Behaviour>,
    /// Settings that are legal but likely not meant, each `field: why` (an agent group whose
    /// tier no step of the queue offers, a shift that starts after the run): `simulate` prints
    /// them as warnings before the report.
    pub warnings: Vec<String>,
    /// Steps (events and timer firings) at one virtual millisecond after which the run counts
    /// as stuck (`SimError::NoProgress`); `None`: the runner's bound, which grows with the
    /// agents. A test sets a small one.
    pub stuck_after: Option<u64>,
}

/// A resolved arrival stream.
#[derive(Debug, Clone)]
pub struct Stream {
    pub queue: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// Piecewise-constant rate (arrivals per ms) from each offset on; first piece starts at 0.
    pub rates: Vec<(Millis, f64)>,
    /// The pattern repeats with this period (ms), if set.
    pub repeat_ms: Option<Millis>,
    /// Cumulative channel weights (last = 1.0).
    pub channels: Vec<(Channel, f64)>,
    pub handle: Dist,
    pub wrap_up: Dist,
    pub patience: Dist,
    pub priority: Option<i32>,
    pub skills: Vec<String>,
}

/// A resolved agent behaviour.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub answer_delay: Dist,
    pub no_answer_prob: f64,
    pub decline_prob: f64,
}

/// One agent the simulator logs in.
#[derive(Debug, Clone)]
pub struct PlannedAgent {
    pub id: String,
    /// Sent with `agent.login` (None: the roster's values apply).
    pub address: Option<String>,
    pub tiers: Option<BTreeMap<String, Tier>>,
    pub skills: Option<Vec<String>>,
    pub capacity: Option<BTreeMap<Channel, u32>>,
    /// The tiers in force for reporting (from the scenario or the roster).
    pub effective_tiers: BTreeMap<String, Tier>,
    /// `(login, logout)` offsets, sorted, non-overlapping; `None` logout = never.
    pub shifts: Vec<(Millis, Option<Millis>)>,
    /// `(start, end)` offsets of not-ready breaks, sorted.
    pub breaks: Vec<(Millis, Millis)>,
    pub behaviour: usize,
    /// Presence events sent as they are at these offsets (a replay's recorded logins, logouts
    /// and state changes); empty for scenario agents.
    pub recorded: Vec<(Millis, crate::engine::Event)>,
}

// ---------------------------------------------------------------------------------------------

/// Parse scenario text and check it against the routing config it will run with.
pub fn parse(text: &str, origin: &str, config: &RoutingConfig) -> Result<Plan, ConfigErrors> {
    // Through serde_path_to_error so that a type error or an unknown field names where it is
    // (`arrivals[0].handle`), as every later check does.
    let file: ScenarioFile = serde_path_to_error::deserialize(toml::Deserializer::new(text))
        .map_err(|e| {
            let path = e.path().to_string();
            let e = e.into_inner();
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            let message = crate::config::file::one_line(e.message());
            // At the top level the path is "."; a missing or unknown key names itself.
            let named = ["missing field `", "unknown field `"]
                .iter()
                .find_map(|p| message.strip_prefix(p)?.split('`').next());
            let field = match (path.as_str(), named) {
                (".", Some(name)) => name.to_string(),
                (".", None) => String::new(),
                _ => path,
            };
            let message = if field.is_empty() && e.span().is_some() {
                format!("TOML syntax error: {message}")
            } else {
                message
            };
            ConfigErrors(vec![ConfigError {
                file: origin.to_string(),
                line,
                column,
                field,
                message,
            }])
        })?;
    resolve(&file, origin, config).map_err(|errors| locate(errors, text, origin))
}

/// Give each problem found by the checks (which speak in field paths, `arrivals[0].queue`) the
/// line and column of that field in the text, as the routing config's checks do.
fn locate(mut errors: ConfigErrors, text: &str, origin: &str) -> ConfigErrors {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else {
        return errors;
    };
    let locator = Locator::new(origin, text, &doc);
    for e in errors.0.iter_mut().filter(|e| e.line.is_none()) {
        if let Some(path) = FieldPath::parse(&e.field) {
            let found = locator.error(&path, "");
            (e.line, e.column) = (found.line, found.column);
        }
    }
    errors
}

/// Read a scenario file and check it against the routing config.
pub fn load(path: &std::path::Path, config: &RoutingConfig) -> Result<Plan, ConfigErrors> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &origin, config),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file: origin,
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read scenario file: {e}"),
        }])),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

/// Collects every problem with its field path.
struct Problems<'a> {
    origin: &'a str,
    list: Vec<ConfigError>,
    /// Legal but likely not meant (`Plan::warnings`).
    warnings: Vec<String>,
}

impl Problems<'_> {
    fn warn(&mut self, field: &str, message: impl std::fmt::Display) {
        self.warnings.push(format!("{field}: {message}"));
    }

    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.list.push(ConfigError {
            file: self.origin.to_string(),
            line: None,
            column: None,
            field: field.into(),
            message: message.into(),
        });
    }

    /// An id the engine takes: not empty, at most `MAX_ID_LEN` bytes.
    fn id_len(&mut self, field: &str, id: &str) {
        if id.is_empty() {
            self.add(field, "must not be empty");
        } else if id.len() > MAX_ID_LEN {
            self.add(
                field,
                format!(
                    "`{}…` is {} bytes long; the engine takes at most {MAX_ID_LEN}",
                    id.chars().take(16).collect::<String>(),
                    id.len()
                ),
            );
        }
    }

    /// `secs`, or `None` when it was reported as wrong (so the checks that compare it with its
    /// neighbours do not add a second, false problem about a value read as 0).
    fn secs_ok(&mut self, field: &str, s: f64) -> Option<Millis> {
        let before = self.list.len();
        let ms = self.secs(field, s);
        (self.list.len() == before).then_some(ms)
    }

    /// Seconds → ms, checking it is finite, ≥ 0 and at most `MAX_DURATION_S` (one year: no
    /// time in a scenario is longer than the run may be).
    fn secs(&mut self, field: &str, s: f64) -> Millis {
        if !s.is_finite() || s < 0.0 {
            self.add(
                field,
                format!(
                    "must be a non-negative number of seconds, got {}",
                    crate::config::show_number(s)
                ),
            );
            return 0;
        }
        if s > MAX_DURATION_S {
            self.add(
                field,
                format!(
                    "must be at most {MAX_DURATION_S} s (one year), got {}",
                    crate::config::show_number(s)
                ),
            );
            return 0;
        }
        (s * 1000.0).round() as Millis
    }

    fn prob(&mut self, field: &str, p: f64) {
        if !(0.0..=1.0).contains(&p) {
            self.add(field, format!("must be a probability in [0, 1], got {p}"));
        }
    }

    fn dist(&mut self, field: &str, d: &Dist, allow_never: bool) {
        if let Err(msg) = d.check(allow_never) {
            self.add(field, msg);
        }
    }
}

fn resolve(
    file: &ScenarioFile,
    origin: &str,
    config: &RoutingConfig,
) -> Result<Plan, ConfigErrors> {
    let mut p = Problems {
        origin,
        list: Vec::new(),
        warnings: Vec::new(),
    };

    // One error for a duration out of range (`secs` would add a second for a negative one).
    let duration_ms = if file.duration_s > 0.0 && file.duration_s <= MAX_DURATION_S {
        p.secs("duration_s", file.duration_s)
    } else {
        p.add(
            "duration_s",
            format!(
                "must be > 0 and at most {MAX_DURATION_S} s (one year), got {}",
                crate::config::show_number(file.duration_s)
            ),
        );
        0
    };
    let warm_up_ms = p.secs("warm_up_s", file.warm_up_s);
    if warm_up_ms >= duration_ms && duration_ms > 0 {
        p.add(
            "warm_up_s",
            format!(
                "must be shorter than duration_s ({} s), got {} s",
                file.duration_s, file.warm_up_s
            ),
        );
    }
    let drain_s = file.drain_s.unwrap_or(DEFAULT_DRAIN_S);
    if drain_s > MAX_DURATION_S {
        p.add("drain_s", format!("must be at most {MAX_DURATION_S} s"));
    }
    let drain_ms = p.secs("drain_s", drain_s.min(MAX_DURATION_S));
    let start_ms = match &file.start {
        None => DEFAULT_START_MS,
        Some(s) => match crate::engine::decision::rfc3339_ms::parse(s) {
            Ok(ms) => ms,
            Err(e) => {
                p.add("start", e);
                DEFAULT_START_MS
            }
        },
    };

    // chrono-tz's tables hold each zone's changes through 2099 only: a day later every zone keeps
    // its last offset, so opening hours would be an hour off half the year.
    let end_ms = start_ms
        .saturating_add(duration_ms)
        .saturating_add(drain_ms);
    if end_ms > SCHEDULES_KNOWN_UNTIL_MS && config.queues.iter().any(|q| q.schedule.is_some()) {
        p.add(
            "start",
            format!(
                "this run reaches {}, and opening hours are known only through 2099 (the time \
                 zone tables tierline uses end there, so daylight saving time would stop): start \
                 before 2100 minus the run's duration and drain",
                crate::engine::decision::rfc3339_ms::format(end_ms)
            ),
        );
    }

    let mut behaviours = vec![resolve_behaviour(&mut p, "behaviour", &file.behaviour)];
    // Where each behaviour is written, for a warning about it.
    let mut behaviour_fields = vec!["behaviour".to_string()];

    if file.arrivals.is_empty() {
        p.add(
            "arrivals",
            "a scenario needs at least one [[arrivals]] stream",
        );
    }
    let streams: Vec<Stream> = file
        .arrivals
        .iter()
        .enumerate()
        .map(|(i, a)| resolve_stream(&mut p, &format!("arrivals[{i}]"), a, config, duration_ms))
        .collect();

    let mut agents = Vec::new();
    // Where each agent was planned: the roster (`use_roster`) or an `[[agents]]` group, by the
    // index of its first agent.
    let mut from: Vec<(usize, String)> = vec![(0, "use_roster".to_string())];
    if file.use_roster {
        for a in &config.agents {
            agents.push(PlannedAgent {
                id: a.id.clone(),
                address: None,
                tiers: None,
                skills: None,
                capacity: None,
                effective_tiers: a.tiers.clone(),
                shifts: vec![(0, None)],
                breaks: Vec::new(),
                behaviour: 0,
                recorded: Vec::new(),
            });
        }
    }
    for (g, spec) in file.agents.iter().enumerate() {
        let field = format!("agents[{g}]");
        from.push((agents.len(), field.clone()));
        let behaviour = match &spec.behaviour {
            None => 0,
            Some(b) => {
                behaviours.push(resolve_behaviour(&mut p, &format!("{field}.behaviour"), b));
                behaviour_fields.push(format!("{field}.behaviour"));
                behaviours.len() - 1
            }
        };
        let run_end_ms = duration_ms.saturating_add(drain_ms);
        resolve_agents(
            &mut p,
            &field,
            g,
            spec,
            behaviour,
            config,
            run_end_ms,
            &mut agents,
        );
        if agents.len() > MAX_AGENTS {
            p.add(
                &field,
                format!("the scenario has more than {MAX_AGENTS} agents, the simulator's limit"),
            );
            break;
        }
    }
    // Each id once: the entry that repeats one is named, with where it first came from.
    let entry_of = |i: usize| {
        from.iter()
            .rev()
            .find(|(start, _)| *start <= i)
            .map_or("agents", |(_, f)| f.as_str())
    };
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, a) in agents.iter().enumerate() {
        if let Some(&was) = first.get(a.id.as_str()) {
            let (here, there) = (entry_of(i), entry_of(was));
            let message = if here == there {
                format!("agent `{}` appears more than once in this entry", a.id)
            } else {
                format!(
                    "agent `{}` is also planned by {there}: ids must be unique",
                    a.id
                )
            };
            p.add(here, message);
        } else {
            first.insert(&a.id, i);
        }
    }
    // A group refused above already says what is wrong with the agents the file has.
    if agents.is_empty() && !p.list.iter().any(|e| e.field.starts_with("agents")) {
        if file.use_roster {
            p.add(
                "use_roster",
                "the routing config has no [[agent]] roster to use: add [[agent]] entries to it, \
                 or [[agents]] groups to the scenario",
            );
        } else {
            p.add(
                "agents",
                "a scenario needs agents: [[agents]] entries or use_roster = true",
            );
        }
    }

    warn_never_answered(&mut p, &agents, &behaviours, &behaviour_fields, config);
    warn_skills_nobody_has(&mut p, &streams, &agents, config);

    if !p.list.is_empty() {
        return Err(ConfigErrors(p.list));
    }
    Ok(Plan {
        seed: file.seed.unwrap_or(1),
        start_ms,
        duration_ms,
        warm_up_ms,
        drain_ms,
        streams,
        agents,
        behaviours,
        warnings: p.warnings,
        stuck_after: None,
    })
}

/// Agents whose fixed answer delay is at least the offer timeout of a queue they serve: every
/// offer from it expires unanswered (and after `max_no_answer` of them they go not_ready). Legal,
/// but a run that answers nothing is rarely the question asked. Once per behaviour and queue.
fn warn_never_answered(
    p: &mut Problems<'_>,
    agents: &[PlannedAgent],
    behaviours: &[Behaviour],
    fields: &[String],
    config: &RoutingConfig,
) {
    let mut told = std::collections::BTreeSet::new();
    for a in agents {
        let Some(Dist::Fixed { s }) = behaviours.get(a.behaviour).map(|b| &b.answer_delay) else {
            continue;
        };
        let delay_ms = (s * 1000.0).round() as Millis;
        for q in a.effective_tiers.keys() {
            let Some(qc) = config.queue(q) else { continue };
            if delay_ms >= qc.offer_timeout_ms && told.insert((a.behaviour, q.clone())) {
                let field = fields.get(a.behaviour).map_or("behaviour", String::as_str);
                p.warn(
                    &format!("{field}.answer_delay"),
                    format_args!(
                        "agents answer after {s} s, when queue `{q}`'s offers \
                         (offer_timeout_s = {} s) have expired: they never answer its calls",
                        qc.offer_timeout_ms as f64 / 1000.0
                    ),
                );
            }
        }
    }
}

/// Streams that require skills no planned agent has: their arrivals can only wait, overflow or
/// be abandoned.
fn warn_skills_nobody_has(
    p: &mut Problems<'_>,
    streams: &[Stream],
    agents: &[PlannedAgent],
    config: &RoutingConfig,
) {
    if streams.iter().all(|s| s.skills.is_empty()) {
        return;
    }
    // An agent's own skills, else its roster entry's (one lookup each: 200,000 agents on a
    // roster as large would be 4·10¹⁰ comparisons by a scan).
    let roster: std::collections::HashMap<&str, &[String]> = config
        .agents
        .iter()
        .map(|r| (r.id.as_str(), r.skills.as_slice()))
        .collect();
    let held: Vec<&[String]> = agents
        .iter()
        .map(|a| match &a.skills {
            Some(s) => s.as_slice(),
            None => roster.get(a.id.as_str()).copied().unwrap_or_default(),
        })
        .collect();
    for (i, stream) in streams.iter().enumerate() {
        if stream.skills.is_empty() {
            continue;
        }
        let someone = held
            .iter()
            .any(|h| stream.skills.iter().all(|s| h.contains(s)));
        if !someone {
            p.warn(
                &format!("arrivals[{i}].skills"),
                format_args!(
                    "no agent of the scenario has every one of {:?}: these arrivals can only \
                     wait, overflow or be abandoned",
                    stream.skills
                ),
            );
        }
    }
}

fn resolve_behaviour(p: &mut Problems<'_>, field: &str, b: &BehaviourSpec) -> Behaviour {
    p.dist(&format!("{field}.answer_delay"), &b.answer_delay, false);
    p.prob(&format!("{field}.no_answer_prob"), b.no_answer_prob);
    p.prob(&format!("{field}.decline_prob"), b.decline_prob);
    if b.no_answer_prob + b.decline_prob > 1.0 {
        p.add(
            field,
            format!(
                "no_answer_prob + decline_prob must be at most 1, got {}",
                b.no_answer_prob + b.decline_prob
            ),
        );
    }
    Behaviour {
        answer_delay: b.answer_delay.clone(),
        no_answer_prob: b.no_answer_prob,
        decline_prob: b.decline_prob,
    }
}

fn resolve_stream(
    p: &mut Problems<'_>,
    field: &str,
    a: &ArrivalSpec,
    config: &RoutingConfig,
    duration_ms: Millis,
) -> Stream {
    let per_ms = |per_hour: f64| per_hour / 3_600_000.0;
    let mut rates = Vec::new();
    match (a.rate_per_hour, &a.rates) {
        (Some(r), None) => {
            if !(r.is_finite() && (0.0..=MAX_RATE_PER_HOUR).contains(&r)) {
                p.add(
                    format!("{field}.rate_per_hour"),
                    format!(
                        "must be between 0 and {MAX_RATE_PER_HOUR} (a million a second), got {r}"
                    ),
                );
            }
            rates.push((0, per_ms(r.max(0.0))));
            if a.repeat_s.is_some() {
                p.add(format!("{field}.repeat_s"), "only applies to `rates`");
            }
        }
        (None, Some(list)) => {
            let mut last_from: Option<Millis> = None;
            for (i, r) in list.iter().enumerate() {
                let f = format!("{field}.rates[{i}]");
                let from = p.secs_ok(&format!("{f}.from_s"), r.from_s);
                if !(r.per_hour.is_finite() && (0.0..=MAX_RATE_PER_HOUR).contains(&r.per_hour)) {
                    p.add(
                        format!("{f}.per_hour"),
                        format!(
                            "must be between 0 and {MAX_RATE_PER_HOUR} (a million a second), got {}",
                            r.per_hour
                        ),
                    );
                }
                if i == 0 && from.is_some_and(|from| from != 0) {
                    p.add(format!("{f}.from_s"), "the first rate must start at 0");
                }
                // Compared with the previous rate only when both starts are valid.
                if let (Some(from), Some(prev)) = (from, last_from) {
                    if from <= prev {
                        p.add(
                            format!("{f}.from_s"),
                            "rates must be in strictly increasing from_s order",
                        );
                    }
                }
                last_from = from;
                rates.push((from.unwrap_or(0), per_ms(r.per_hour.max(0.0))));
            }
            if list.is_empty() {
                p.add(format!("{field}.rates"), "needs at least one rate");
            }
        }
        (Some(_), Some(_)) => p.add(field, "give either rate_per_hour or rates, not both"),
        (None, None) => p.add(field, "needs an arrival rate: rate_per_hour or rates"),
    }
    let peak_per_ms = rates.iter().map(|&(_, r)| r).fold(0.0, f64::max);
    let expected = peak_per_ms * duration_ms as f64;
    if expected > MAX_ARRIVALS_PER_STREAM {
        p.add(
            field,
            format!(
                "expects up to {expected:.0} arrivals (highest rate × duration_s); at most \
                 {MAX_ARRIVALS_PER_STREAM:.0} per stream are simulated"
            ),
        );
    }
    let repeat_ms = a.repeat_s.map(|r| p.secs(&format!("{field}.repeat_s"), r));
    if let Some(period) = repeat_ms {
        if period == 0 || rates.last().is_some_and(|&(from, _)| from >= period) {
            p.add(
                format!("{field}.repeat_s"),
                "must be > 0 and longer than the last rate's from_s",
            );
        }
    }

    let mix = a
        .channels
        .clone()
        .unwrap_or_else(|| BTreeMap::from([(Channel::Voice, 1.0)]));
    let total: f64 = mix.values().sum();
    let mut channels = Vec::new();
    if mix.values().any(|w| !(w.is_finite() && *w >= 0.0)) || total <= 0.0 || !total.is_finite() {
        p.add(
            format!("{field}.channels"),
            "weights must be ≥ 0 with a positive sum",
        );
    } else {
        let mut acc = 0.0;
        for (&c, &w) in &mix {
            if w > 0.0 {
                acc += w / total;
                channels.push((c, acc));
            }
        }
        if let Some(last) = channels.last_mut() {
            last.1 = 1.0;
        }
    }

    match &a.queue {
        Some(q) => match config.queue(q) {
            None => p.add(
                format!("{field}.queue"),
                format!("unknown queue `{q}` (not in the routing config)"),
            ),
            Some(qc) => {
                for (c, _) in &channels {
                    if !qc.channels.contains(c) {
                        p.add(
                            format!("{field}.channels"),
                            format!("queue `{q}` does not serve channel {c}"),
                        );
                    }
                }
            }
        },
        None => {
            if config.rules.is_empty() && config.default_queue.is_none() {
                p.add(
                    format!("{field}.queue"),
                    "no queue given and the routing config has no rules or default queue",
                );
            }
            // The stream's attributes are fixed, so where the rules send each channel is known
            // now. A rule only takes the channels its queue serves; the default queue is taken
            // as it is, and one that does not serve the channel would refuse every such arrival
            // mid-run.
            for (c, _) in &channels {
                let (by, queue) = match config.matching_rule(*c, &a.attributes) {
                    Some((n, rule)) => (format!("rule[{n}]"), Some(&rule.queue)),
                    None => (
                        "the default queue".to_string(),
                        config.default_queue.as_ref(),
                    ),
                };
                let Some(qc) = queue.and_then(|q| config.queue(q)) else {
                    if !config.rules.is_empty() {
                        p.warn(
                            &format!("{field}.channels.{c}"),
                            format!(
                                "no rule whose queue serves {c} takes this stream's {c} \
                                 arrivals and there is no default queue: every one is rejected \
                                 (`no_route`)"
                            ),
                        );
                    }
                    continue;
                };
                if !qc.channels.contains(c) {
                    p.add(
                        format!("{field}.channels.{c}"),
                        format!(
                            "{c} arrivals of this stream go to queue `{}` ({by} of the routing \
                             config), which does not serve {c}: the engine would refuse every \
                             one (`channel_not_served`); add a rule for {c}, or give the stream \
                             a `queue`",
                            qc.id
                        ),
                    );
                }
            }
        }
    }

    // What the engine would refuse mid-run is a scenario problem, found before the run.
    for (i, skill) in a.skills.iter().enumerate() {
        p.id_len(&format!("{field}.skills[{i}]"), skill);
    }
    for (key, value) in &a.attributes {
        p.id_len(&format!("{field}.attributes"), key);
        if value.len() > MAX_ATTRIBUTE_LEN {
            p.add(
                format!("{field}.attributes.{key}"),
                format!(
                    "is {} bytes long; the engine takes at most {MAX_ATTRIBUTE_LEN}",
                    value.len()
                ),
            );
        }
    }
    p.dist(&format!("{field}.handle"), &a.handle, false);
    let wrap_up = a.wrap_up.clone().unwrap_or(Dist::Never);
    p.dist(&format!("{field}.wrap_up"), &wrap_up, true);
    let patience = a.patience.clone().unwrap_or(Dist::Never);
    p.dist(&format!("{field}.patience"), &patience, true);

    Stream {
        queue: a.queue.clone(),
        attributes: a.attributes.clone(),
        rates,
        repeat_ms,
        channels,
        handle: a.handle.clone(),
        wrap_up,
        patience,
        priority: a.priority,
        skills: a.skills.clone(),
    }
}

#[allow(clippy::too_many_arguments)]
fn resolve_agents(
    p: &mut Problems<'_>,
    field: &str,
    group: usize,
    spec: &AgentSpec,
    behaviour: usize,
    config: &RoutingConfig,
    run_end_ms: Millis,
    out: &mut Vec<PlannedAgent>,
) {
    let mut shifts = Vec::new();
    let mut any_invalid_shift = false;
    for (i, s) in spec.shifts.iter().enumerate() {
        let f = format!("{field}.shifts[{i}]");
        let login = p.secs_ok(&format!("{f}.login_s"), s.login_s);
        let logout = p.secs_ok(&format!("{f}.logout_s"), s.logout_s);
        // A shift with a time reported as wrong is left out of every further check, so neither
        // it nor a break in it gets a second, false problem.
        let (Some(login), Some(logout)) = (login, logout) else {
            any_invalid_shift = true;
            continue;
        };
        if logout <= login {
            p.add(&f, "logout_s must be after login_s");
        }
        if let Some(&(_, Some(prev_out))) = shifts.last() {
            if login < prev_out {
                p.add(&f, "shifts must be in time order and must not overlap");
            }
        }
        if login >= run_end_ms {
            p.warn(
                &f,
                format_args!(
                    "starts at {} s, when the run is over (duration_s + drain_s = {} s): this \
                     shift never begins",
                    login / 1000,
                    run_end_ms / 1000
                ),
            );
        }
        shifts.push((login, Some(logout)));
    }
    if shifts.is_empty() {
        shifts.push((0, None));
    }
    let mut breaks = Vec::new();
    for (i, b) in spec.breaks.iter().enumerate() {
        let f = format!("{field}.breaks[{i}]");
        let at_ok = p.secs_ok(&format!("{f}.at_s"), b.at_s);
        let len_ok = p.secs_ok(&format!("{f}.duration_s"), b.duration_s);
        let (at, len) = (at_ok.unwrap_or(0), len_ok.unwrap_or(0));
        // A negative or huge one was reported by `secs_ok` (and read as 0).
        if len_ok == Some(0) {
            p.add(format!("{f}.duration_s"), "must be > 0");
        }
        if let (Some(_), Some(&(_, prev_end))) = (at_ok, breaks.last()) {
            if at < prev_end {
                p.add(&f, "breaks must be in time order and must not overlap");
            }
        }
        let end = at.saturating_add(len);
        let within_a_shift = shifts
            .iter()
            .any(|&(login, logout)| login <= at && logout.is_none_or(|out| end <= out));
        // (With no shifts the agent is logged in all along: every break is within.)
        if at_ok.is_some() && len > 0 && !within_a_shift && !any_invalid_shift {
            p.add(
                &f,
                format!(
                    "the break from {} s to {} s is not within one shift: the agent is logged \
                     out then, so it would never be taken",
                    at as f64 / 1000.0,
                    end as f64 / 1000.0
                ),
            );
        }
        breaks.push((at, end));
    }
    if spec.tiers.as_ref().is_some_and(BTreeMap::is_empty) {
        p.add(
            format!("{field}.tiers"),
            "must name at least one queue: agents with no tier serve nothing",
        );
    }

    if let Some(tiers) = &spec.tiers {
        for (q, &t) in tiers {
            if config.queue(q).is_none() {
                p.add(
                    format!("{field}.tiers.{q}"),
                    format!("unknown queue `{q}` (not in the routing config)"),
                );
            }
            if t == 0 {
                p.add(format!("{field}.tiers.{q}"), "tiers start at 1");
            }
            if let Some(queue) = config.queue(q) {
                if t > 0 && !queue.offers_tier(t) {
                    p.warn(
                        &format!("{field}.tiers.{q}"),
                        format_args!(
                            "no step of queue `{q}` offers tier {t}, so these agents never take \
                             its calls (only an explicit escalation would, and a scenario makes \
                             none)"
                        ),
                    );
                }
            }
        }
    }
    if let Some(skills) = &spec.skills {
        for (i, skill) in skills.iter().enumerate() {
            p.id_len(&format!("{field}.skills[{i}]"), skill);
        }
    }
    if let Some(cap) = &spec.capacity {
        for (c, &n) in cap {
            if n == 0 {
                p.add(format!("{field}.capacity.{c}"), "must be ≥ 1");
            }
        }
    }

    let mut push = |id: String, roster_tiers: Option<&BTreeMap<String, Tier>>| {
        let effective_tiers = spec
            .tiers
            .clone()
            .or_else(|| roster_tiers.cloned())
            .unwrap_or_default();
        out.push(PlannedAgent {
            address: Some(format!("sim:{id}")),
            id,
            tiers: spec.tiers.clone(),
            skills: spec.skills.clone(),
            capacity: spec.capacity.clone(),
            effective_tiers,
            shifts: shifts.clone(),
            breaks: breaks.clone(),
            behaviour,
            recorded: Vec::new(),
        });
    };
    match (&spec.id, spec.count) {
        (Some(id), None) => {
            if spec.id_prefix.is_some() {
                p.add(
                    format!("{field}.id_prefix"),
                    "only applies to a group (count)",
                );
            }
            p.id_len(&format!("{field}.id"), id);
            let roster = config.agents.iter().find(|a| &a.id == id);
            if roster.is_none() && spec.tiers.is_none() {
                p.add(
                    format!("{field}.tiers"),
                    format!("agent `{id}` is not in the roster, so it needs tiers"),
                );
            }
            push(id.clone(), roster.map(|a| &a.tiers));
        }
        (None, Some(count)) => {
            if spec.tiers.is_none() {
                p.add(format!("{field}.tiers"), "a group of agents needs tiers");
            }
            if count == 0 {
                p.add(format!("{field}.count"), "must be ≥ 1");
            }
            if count as usize > MAX_AGENTS {
                p.add(
                    format!("{field}.count"),
                    format!("at most {MAX_AGENTS} agents, got {count}"),
                );
                return;
            }
            let prefix = spec
                .id_prefix
                .clone()
                .unwrap_or_else(|| format!("g{group}-"));
            let width = count.to_string().len();
            if prefix.len() + width > MAX_ID_LEN {
                p.add(
                    format!("{field}.id_prefix"),
                    format!(
                        "makes ids of {} bytes; the engine takes at most {MAX_ID_LEN}",
                        prefix.len() + width
                    ),
                );
                return;
            }
            for n in 1..=count {
                push(format!("{prefix}{n:0width$}"), None);
            }
        }
        (Some(_), Some(_)) => p.add(
            field,
            "give either id (one agent) or count (a group), not both",
        ),
        (None, None) => p.add(field, "needs id (one agent) or count (a group)"),
    }
}
