//! The config file as written: raw serde structs, one per TOML section, and reading them out of
//! the parsed document.
//!
//! Everything here mirrors the file's shape and names exactly, with `deny_unknown_fields` so a
//! typo is an error naming the field. Values stay as the user wrote them (strings for channels and
//! strategies, signed integers, seconds as numbers) so `super::validate` can say precisely what is
//! wrong with each. Each section and each `[[queue]]`/`[[agent]]`/`[[rule]]` entry is read on its
//! own, so one broken entry never hides the problems in the others. Nothing here resolves
//! defaults or cross-checks ids.

use std::collections::BTreeMap;

use serde::de::{self, DeserializeOwned, IntoDeserializer};
use serde::Deserialize;
use toml_edit::{ImDocument, Item, Value};

use super::daemon::{AuthConfig, JournalConfig, MetricsConfig, ServerConfig, SubscriberConfig};
use super::locate::{FieldPath, Locator, Segment};
use super::ConfigError;

/// A duration in seconds as written: an integer or a float (`0.2` is fine), possibly negative
/// (validation says so rather than the deserializer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Seconds(pub f64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of seconds (integer or float)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Ok(Seconds(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[defaults]`: applies to every queue that does not set the field itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    pub offer_timeout_s: Option<Seconds>,
    pub wrap_up_s: Option<Seconds>,
    pub sla_s: Option<Seconds>,
    pub max_no_answer: Option<i64>,
    pub count_declines: Option<bool>,
    pub short_abandon_s: Option<Seconds>,
    pub reject_delay_s: Option<Seconds>,
    pub busy_delay_s: Option<Seconds>,
    pub no_answer_delay_s: Option<Seconds>,
    pub escalation_priority_boost: Option<i32>,
}

/// `[channels.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChannel {
    pub capacity: Option<i64>,
    pub exclusive: Option<bool>,
}

/// How a TOML datetime reaches serde: a map of one entry under this private key, the datetime as
/// text its value. No field of the file takes a datetime, so a struct would refuse it as an
/// unknown field by that name, a map would take it as a key, and a plain value says "map": each
/// reader that can see it names it a datetime instead.
const DATETIME_KEY: &str = "$__toml_private_datetime";

/// A table nested in an entry (a ladder step, `overflow`, `schedule`), read by its keys only.
/// serde would also read an array into a struct, element by element in field declaration order
/// (`steps = [[0, [1], 5, true]]` as after_s, tiers, priority_boost, skip_if_no_agents): no
/// names, so no typo or swapped value could ever be caught. As for sections and entries
/// (`read_entry`), anything but a table is refused.
trait NestedTable: DeserializeOwned {
    /// How the table is written, for the error: "`{ … }` or …".
    const WRITTEN: &'static str;
}

struct Nested<T>(T);

impl<'de, T: NestedTable> Deserialize<'de> for Nested<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<T: NestedTable> V<T> {
            fn not_a_table<E: de::Error>(found: &str) -> E {
                E::custom(format!("must be a table ({}), not {found}", T::WRITTEN))
            }
        }
        impl<'de, T: NestedTable> de::Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a table ({})", T::WRITTEN)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                // A datetime is refused as an unknown field by its private key (every nested
                // table denies unknown fields): it is not a table, like any other value.
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map_err(|e| {
                    if e.to_string()
                        .contains(&format!("unknown field `{DATETIME_KEY}`"))
                    {
                        Self::not_a_table("datetime")
                    } else {
                        e
                    }
                })
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<T, A::Error> {
                Err(Self::not_a_table("array"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<T, E> {
                Err(Self::not_a_table("string"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
                Err(Self::not_a_table("integer"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
                Err(Self::not_a_table("integer"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
                Err(Self::not_a_table("float"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
                Err(Self::not_a_table("boolean"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData)).map(Nested)
    }
}

/// `deserialize_with` for a table of names (an agent's `tiers` and `capacity`, a rule's `when`):
/// serde would read a datetime as one name, the private key (`when = 1979-05-27` would match an
/// attribute nobody sets); it is refused as the datetime it is.
fn names<'de, D: de::Deserializer<'de>, V: Deserialize<'de>>(
    d: D,
) -> Result<BTreeMap<String, V>, D::Error> {
    struct Names<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> de::Visitor<'de> for Names<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            // serde's own wording for a map, as in every other "expected" here.
            f.write_str("a map")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(name) = map.next_key::<String>()? {
                if name == DATETIME_KEY {
                    let written: String = map.next_value()?;
                    let found = format!("datetime `{written}`");
                    return Err(de::Error::invalid_type(
                        de::Unexpected::Other(&found),
                        &self,
                    ));
                }
                out.insert(name, map.next_value()?);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Names(std::marker::PhantomData))
}

/// `deserialize_with` for an optional nested table.
fn nested<'de, D: de::Deserializer<'de>, T: NestedTable>(d: D) -> Result<Option<T>, D::Error> {
    Nested::<T>::deserialize(d).map(|t| Some(t.0))
}

/// `deserialize_with` for an optional array of nested tables.
fn nested_list<'de, D: de::Deserializer<'de>, T: NestedTable>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    Vec::<Nested<T>>::deserialize(d).map(|v| Some(v.into_iter().map(|t| t.0).collect()))
}

/// `overflow = { queue = "…" }` or `overflow = { target = "…" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverflow {
    pub queue: Option<String>,
    pub target: Option<String>,
}

impl NestedTable for RawOverflow {
    const WRITTEN: &'static str = r#"`{ queue = "…" }` or `{ target = "…" }`"#;
}

/// `schedule = { tz = "…", mon = ["08:00-18:00"], … }`; a missing day is closed all day. `tz` is
/// required, but read as optional (like an agent's `id`) so that without it the hours are still
/// checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    pub tz: Option<String>,
    pub mon: Option<Vec<String>>,
    pub tue: Option<Vec<String>>,
    pub wed: Option<Vec<String>>,
    pub thu: Option<Vec<String>>,
    pub fri: Option<Vec<String>>,
    pub sat: Option<Vec<String>>,
    pub sun: Option<Vec<String>>,
}

impl NestedTable for RawSchedule {
    const WRITTEN: &'static str = r#"`{ tz = "…", mon = ["08:00-18:00"], … }`"#;
}

impl RawSchedule {
    /// The days in week order (Monday first), with their field names.
    pub(crate) fn days(&self) -> [(&'static str, Option<&Vec<String>>); 7] {
        [
            ("mon", self.mon.as_ref()),
            ("tue", self.tue.as_ref()),
            ("wed", self.wed.as_ref()),
            ("thu", self.thu.as_ref()),
            ("fri", self.fri.as_ref()),
            ("sat", self.sat.as_ref()),
            ("sun", self.sun.as_ref()),
        ]
    }
}

/// One rung of `steps = [...]`. `after_s` and `tiers` are required, but read as optional (like
/// an agent's `id`) so that a step missing one still has the rest of the ladder checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub after_s: Option<Seconds>,
    pub tiers: Option<Vec<i64>>,
    pub priority_boost: Option<i32>,
    pub skip_if_no_agents: Option<bool>,
}

impl NestedTable for RawStep {
    const WRITTEN: &'static str = "`{ after_s = 0, tiers = [1] }` or a `[[queue.steps]]` section";
}

/// One `[[queue]]`. `id` is required, but read as optional (like an agent's) so that one that
/// cannot be read leaves the rest of the queue readable and checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueue {
    pub id: Option<String>,
    pub channels: Option<Vec<String>>,
    pub strategy: Option<String>,
    pub sla_s: Option<Seconds>,
    pub offer_timeout_s: Option<Seconds>,
    pub wrap_up_s: Option<Seconds>,
    pub short_abandon_s: Option<Seconds>,
    pub max_wait_s: Option<Seconds>,
    #[serde(default, deserialize_with = "nested")]
    pub overflow: Option<RawOverflow>,
    pub max_waiting: Option<i64>,
    #[serde(default, deserialize_with = "nested")]
    pub schedule: Option<RawSchedule>,
    pub closed_target: Option<String>,
    #[serde(default, deserialize_with = "nested_list")]
    pub steps: Option<Vec<RawStep>>,
    pub escalation_priority_boost: Option<i32>,
    pub reject_delay_s: Option<Seconds>,
    pub busy_delay_s: Option<Seconds>,
    pub no_answer_delay_s: Option<Seconds>,
    pub max_no_answer: Option<i64>,
    pub count_declines: Option<bool>,
    pub drain_to: Option<String>,
}

/// One `[[agent]]` of the roster. `id` and `address` are required, but read as optional (and
/// reported missing by validation) so that one that cannot be read leaves the rest of the agent
/// readable and checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    pub id: Option<String>,
    pub address: Option<String>,
    #[serde(default, deserialize_with = "names")]
    pub tiers: BTreeMap<String, i64>,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default, deserialize_with = "names")]
    pub capacity: BTreeMap<String, i64>,
}

/// One `[[rule]]`. `queue` is required, but read as optional (like an agent's `id`) so that one
/// that cannot be read leaves `when` checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    #[serde(default, deserialize_with = "names")]
    pub when: BTreeMap<String, String>,
    pub queue: Option<String>,
    pub priority: Option<i32>,
}

/// One `[[subscriber]]`: `SubscriberConfig` as written. `url` is required, but read as optional
/// (like an agent's `id`) so that one that cannot be read leaves the rest of the subscriber
/// checked; the other fields and their defaults are `SubscriberConfig`'s.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubscriber {
    pub name: Option<String>,
    pub url: Option<String>,
    pub secret_env: Option<String>,
    pub secret_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub types: Vec<String>,
    pub retry_initial_ms: Option<u64>,
    pub retry_max_ms: Option<u64>,
    pub batch_max: Option<usize>,
    pub timeout_ms: Option<u64>,
}

impl RawSubscriber {
    /// The subscriber with `url`, every field not written taking `SubscriberConfig`'s default.
    pub(crate) fn resolve(&self, url: &str) -> SubscriberConfig {
        let d = SubscriberConfig::new(url);
        SubscriberConfig {
            name: self.name.clone(),
            url: url.to_string(),
            secret_env: self.secret_env.clone(),
            secret_file: self.secret_file.clone(),
            types: self.types.clone(),
            retry_initial_ms: self.retry_initial_ms.unwrap_or(d.retry_initial_ms),
            retry_max_ms: self.retry_max_ms.unwrap_or(d.retry_max_ms),
            batch_max: self.batch_max.unwrap_or(d.batch_max),
            timeout_ms: self.timeout_ms.unwrap_or(d.timeout_ms),
        }
    }
}

/// `[routing]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouting {
    pub seed: Option<u64>,
    pub default_queue: Option<String>,
}

/// `[limits]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub max_live_interactions: Option<i64>,
    pub retain_finished: Option<i64>,
    pub max_history: Option<i64>,
    pub max_agents: Option<i64>,
}

/// An entry of an array section. `value` is `None` when the entry could not be read even without
/// its broken fields (their errors are already reported); `id_hint` is then its `id` if one could
/// be seen anyway, so references to a broken entry are not reported again as "unknown".
#[derive(Debug, Clone)]
pub(crate) struct Entry<T> {
    pub value: Option<T>,
    pub id_hint: Option<String>,
    /// Fields that were set but could not be read (already reported); validation must not treat
    /// them as absent (e.g. "max_wait_s without overflow" when `overflow` is merely malformed).
    /// Paths below the entry: `overflow`, or for a table read field by field (`FIELD_BY_FIELD`)
    /// the nested field (`schedule.tz`, `steps[2].after_s`, `tiers.support`) or a step that is
    /// not a table (`steps[1]`).
    pub broken: Vec<String>,
}

impl<T> Entry<T> {
    pub(crate) fn is_broken(&self, field: &str) -> bool {
        self.broken.iter().any(|b| b == field)
    }
}

/// The whole file, section by section, as written.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawConfig {
    pub defaults: RawDefaults,
    /// `[channels.<name>]` in file order.
    pub channels: Vec<(String, RawChannel)>,
    pub queues: Vec<Entry<RawQueue>>,
    pub agents: Vec<Entry<RawAgent>>,
    pub rules: Vec<Entry<RawRule>>,
    pub routing: RawRouting,
    pub limits: RawLimits,
    pub server: ServerConfig,
    pub metrics: MetricsConfig,
    pub journal: JournalConfig,
    pub auth: AuthConfig,
    pub subscribers: Vec<Entry<RawSubscriber>>,
}

/// The tables nested in a `[[queue]]` that are read field by field: a field of theirs that cannot
/// be read is dropped (and reported) on its own, so it does not hide the problems of the rest of
/// the ladder or schedule. (An overflow has a single field to check; it is dropped whole.)
const QUEUE_FIELD_BY_FIELD: &[&str] = &["steps", "schedule"];

/// The same for an agent's maps and a rule's: one value that cannot be read (`tiers = { support =
/// "x" }`) is reported and dropped on its own, so the map's other values are still checked.
const AGENT_FIELD_BY_FIELD: &[&str] = &["tiers", "capacity"];
const RULE_FIELD_BY_FIELD: &[&str] = &["when"];

/// Every top-level name the file may use.
const SECTIONS: &[&str] = &[
    "defaults",
    "channels",
    "queue",
    "agent",
    "rule",
    "routing",
    "limits",
    "server",
    "metrics",
    "journal",
    "auth",
    "subscriber",
];

/// Read every section of the document, collecting every problem the deserializer finds.
pub(crate) fn read(doc: &ImDocument<&str>, loc: &Locator<'_>) -> (RawConfig, Vec<ConfigError>) {
    let mut raw = RawConfig::default();
    let mut errors = Vec::new();
    let root = FieldPath::root();
    for (name, item) in doc.as_table().iter() {
        let path = root.key(name);
        match name {
            "defaults" => read_one(item, &path, loc, &mut errors, &mut raw.defaults),
            "channels" => read_channels(item, &path, loc, &mut errors, &mut raw.channels),
            "queue" => raw.queues = read_many(item, &path, loc, &mut errors, QUEUE_FIELD_BY_FIELD),
            "agent" => raw.agents = read_many(item, &path, loc, &mut errors, AGENT_FIELD_BY_FIELD),
            "rule" => raw.rules = read_many(item, &path, loc, &mut errors, RULE_FIELD_BY_FIELD),
            "routing" => read_one(item, &path, loc, &mut errors, &mut raw.routing),
            "limits" => read_one(item, &path, loc, &mut errors, &mut raw.limits),
            "server" => read_one(item, &path, loc, &mut errors, &mut raw.server),
            "metrics" => read_one(item, &path, loc, &mut errors, &mut raw.metrics),
            "journal" => read_one(item, &path, loc, &mut errors, &mut raw.journal),
            "auth" => read_one(item, &path, loc, &mut errors, &mut raw.auth),
            "subscriber" => raw.subscribers = read_many(item, &path, loc, &mut errors, &[]),
            other => errors.push(loc.error(
                &path,
                format!(
                    "unknown section `{other}` (expected one of: {})",
                    SECTIONS.join(", ")
                ),
            )),
        }
    }
    (raw, errors)
}

/// Deserialize one table-like item (`[x]` or `x = { … }`) into `T`.
fn deserialize_item<T: DeserializeOwned>(item: &Item) -> Result<T, toml_edit::de::Error> {
    match item {
        Item::Table(t) => toml_edit::de::from_document(toml_edit::DocumentMut::from(t.clone())),
        Item::Value(v) => T::deserialize(v.clone().into_deserializer()),
        Item::ArrayOfTables(a) => {
            T::deserialize(Value::Array(a.clone().into_array()).into_deserializer())
        }
        Item::None => {
            T::deserialize(Value::from(toml_edit::InlineTable::new()).into_deserializer())
        }
    }
}

/// Bounds the nested fields `read_entry` drops one by one in an entry (a ladder's step fields);
/// its own fields are bounded by their number, as each is dropped once at most.
const MAX_BROKEN_FIELDS: usize = 64;

/// Read one table-like item, reporting every field the deserializer refuses: on each error, the
/// offending field is reported, dropped, and the rest is read again, so a typo in one field
/// neither hides a typo in the next nor the checks on the others. In the nested tables named in
/// `field_by_field` (and in each table of such an array) the offending nested field is dropped
/// rather than the whole table; a non-table element of such an array is emptied in its place.
fn read_entry<T: DeserializeOwned>(
    item: &Item,
    path: &FieldPath,
    loc: &Locator<'_>,
    errors: &mut Vec<ConfigError>,
    field_by_field: &[&str],
) -> (Option<T>, Vec<String>) {
    // A section or entry is a table. serde would also read an array, field by field in
    // declaration order (`routing = [7, "q"]` as `seed` and `default_queue`): no names, so no
    // typo could ever be caught.
    let table = matches!(
        item,
        Item::Table(_) | Item::None | Item::Value(Value::InlineTable(_))
    );
    if !table {
        // An element of an array of tables (`queue[0]`) is written `[[queue]]`; a section
        // (`defaults`, `channels.chat`) `[defaults]`.
        let shown = path.to_string();
        let written = match shown
            .strip_suffix(']')
            .and_then(|s| s.rsplit_once('['))
            .filter(|(_, i)| i.parse::<usize>().is_ok())
        {
            Some((array, _)) => format!("[[{array}]]"),
            None => format!("[{shown}]"),
        };
        errors.push(loc.error(
            path,
            format!(
                "must be a table (`{written}` or `{{ key = value, … }}`), not {}",
                item.type_name()
            ),
        ));
        return (None, Vec::new());
    }
    let mut current = item.clone();
    let mut broken: Vec<String> = Vec::new();
    loop {
        let e = match deserialize_item::<T>(&current) {
            Ok(v) => return (Some(v), broken),
            Err(e) => e,
        };
        let offset = e.span().or_else(|| item.span()).map(|s| s.start);
        let at = offset
            .map(|o| loc.path_at(o))
            .unwrap_or_else(|| path.clone());
        let at = if e.message().ends_with(", not array") {
            whole_array_of_tables(&current, path, at)
        } else {
            at
        };
        let follow_up = broken
            .iter()
            .any(|k| e.message() == format!("missing field `{k}`"));
        if !follow_up {
            let message = name_datetime(loc, &at, one_line(e.message()));
            errors.push(loc.error_at(offset, at.to_string(), message));
        }
        let below = at.below(path).unwrap_or_default();
        // The nested field (or non-table element) if its table is read field by field, then the
        // entry's own field.
        let nested = match below {
            [Segment::Key(k), Segment::Key(_), ..] if field_by_field.contains(&k.as_str()) => {
                Some(&below[..2])
            }
            [Segment::Key(k), Segment::Index(_), Segment::Key(_), ..]
                if field_by_field.contains(&k.as_str()) =>
            {
                Some(&below[..3])
            }
            [Segment::Key(k), Segment::Index(_)] if field_by_field.contains(&k.as_str()) => {
                Some(below)
            }
            _ => None,
        };
        let own = below.get(..1).filter(|s| matches!(s, [Segment::Key(_)]));
        // Nested drops are bounded; past the bound the entry's own field goes whole (as it
        // always could), so a ladder with many bad steps cannot hide the entry's other fields.
        let nested = nested.filter(|_| broken.len() < MAX_BROKEN_FIELDS);
        let dropped = [nested, own].into_iter().flatten().find_map(|culprit| {
            let name = FieldPath::of(culprit).to_string();
            (!broken.contains(&name) && remove_field(&mut current, culprit)).then_some(name)
        });
        match dropped {
            Some(name) => broken.push(name),
            None => return (None, broken),
        }
    }
}

/// A field that must be one table but was written as an array of tables (`[[queue.schedule]]`):
/// the error's span is the first table's header, which names `schedule[0]`; the field at fault is
/// `schedule`. (An element of an array of tables is always a table, so "not array" there can only
/// be about the whole field.)
fn whole_array_of_tables(entry: &Item, path: &FieldPath, at: FieldPath) -> FieldPath {
    let Some(below) = at.below(path) else {
        return at;
    };
    if let [Segment::Key(k), Segment::Index(0)] = below {
        let is_array_of_tables = entry
            .as_table_like()
            .and_then(|t| t.get(k))
            .is_some_and(|i| matches!(i, Item::ArrayOfTables(_)));
        if is_array_of_tables {
            return path.key(k);
        }
    }
    at
}

/// Drop the field at `at` (below `item`); an array element (`steps[1]`, not a table) is emptied
/// instead, so that the elements after it keep their index.
fn remove_field(item: &mut Item, at: &[Segment]) -> bool {
    match (item, at) {
        (item, [Segment::Key(k)]) => item
            .as_table_like_mut()
            .is_some_and(|t| t.remove(k).is_some()),
        (item, [Segment::Key(k), rest @ ..]) => item
            .as_table_like_mut()
            .and_then(|t| t.get_mut(k))
            .is_some_and(|child| remove_field(child, rest)),
        (Item::ArrayOfTables(a), [Segment::Index(i), Segment::Key(k)]) => {
            a.get_mut(*i).is_some_and(|t| t.remove(k).is_some())
        }
        (Item::Value(Value::Array(a)), [Segment::Index(i), Segment::Key(k)]) => a
            .get_mut(*i)
            .and_then(Value::as_inline_table_mut)
            .is_some_and(|t| t.remove(k).is_some()),
        (Item::Value(Value::Array(a)), [Segment::Index(i)]) if *i < a.len() => {
            a.replace(*i, toml_edit::InlineTable::new());
            true
        }
        _ => false,
    }
}

/// serde says "invalid type: map" for a datetime where a plain value is expected (see
/// `DATETIME_KEY`); say what was written instead.
fn name_datetime(loc: &Locator<'_>, at: &FieldPath, message: String) -> String {
    match (
        message.strip_prefix("invalid type: map, "),
        loc.datetime_at(at),
    ) {
        (Some(expected), Some(written)) => {
            format!("invalid type: datetime `{written}`, {expected}")
        }
        _ => message,
    }
}

/// Deserializer messages can span several lines; an error report is one line, in the words of
/// the file rather than of Rust (`plain_words`).
pub(crate) fn one_line(message: &str) -> String {
    plain_words(
        &message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// serde's message with Rust's words put as a config or API user reads them: `unknown variant`
/// is an unknown value, `a sequence` a list, and a Rust integer type a whole number, with its
/// bounds where the type's are the field's (8, 16 and 32-bit signed; the maximum of 8 and
/// 16-bit unsigned, whose fields start at 0 or 1); for wider types the machine's maximum is no
/// limit of the field's (a field's own checks say its range), so only "not negative" is said.
/// Text the message quotes from the input (between backticks) is left as it is.
pub fn plain_words(message: &str) -> String {
    const TYPES: [(&str, &str); 12] = [
        ("u8", "a whole number up to 255"),
        ("u16", "a whole number up to 65535"),
        ("u32", "a whole number, not negative"),
        ("u64", "a whole number, not negative"),
        ("usize", "a whole number, not negative"),
        ("i8", "a whole number from -128 to 127"),
        ("i16", "a whole number from -32768 to 32767"),
        ("i32", "a whole number from -2147483648 to 2147483647"),
        ("i64", "a whole number"),
        ("f32", "a number"),
        ("f64", "a number"),
        ("a sequence", "a list"),
    ];
    let plain = |text: &str| {
        let mut out = text.replace("unknown variant", "unknown value").replace(
            "number too large to fit in target type",
            "a number too large for any setting (above 9223372036854775807)",
        );
        for (rust, plain) in TYPES {
            let word = format!("expected {rust}");
            let mut from = 0;
            while let Some(at) = out[from..].find(&word).map(|i| i + from) {
                let end = at + word.len();
                // A whole word only: `expected u8` but not `expected u8_thing`.
                if out[end..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
                {
                    from = end;
                    continue;
                }
                let plain = format!("expected {plain}");
                out.replace_range(at..end, &plain);
                from = at + plain.len();
            }
        }
        out
    };
    // Even pieces are outside backticks, odd ones quoted input.
    message
        .split('`')
        .enumerate()
        .map(|(k, piece)| {
            if k % 2 == 0 {
                plain(piece)
            } else {
                piece.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

fn read_one<T: DeserializeOwned>(
    item: &Item,
    path: &FieldPath,
    loc: &Locator<'_>,
    errors: &mut Vec<ConfigError>,
    out: &mut T,
) {
    if let (Some(v), _) = read_entry(item, path, loc, errors, &[]) {
        *out = v;
    }
}

fn read_channels(
    item: &Item,
    path: &FieldPath,
    loc: &Locator<'_>,
    errors: &mut Vec<ConfigError>,
    out: &mut Vec<(String, RawChannel)>,
) {
    let entries: Vec<(String, Item)> = match item {
        Item::Table(t) => t.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        Item::Value(Value::InlineTable(t)) => t
            .iter()
            .map(|(k, v)| (k.to_string(), Item::Value(v.clone())))
            .collect(),
        _ => {
            errors.push(loc.error(
                path,
                "must be a table of channels, e.g. `[channels.chat]` with `capacity = 3`",
            ));
            return;
        }
    };
    for (name, entry) in entries {
        if let (Some(c), _) = read_entry::<RawChannel>(&entry, &path.key(&name), loc, errors, &[]) {
            out.push((name, c));
        }
    }
}

fn read_many<T: DeserializeOwned>(
    item: &Item,
    path: &FieldPath,
    loc: &Locator<'_>,
    errors: &mut Vec<ConfigError>,
    field_by_field: &[&str],
) -> Vec<Entry<T>> {
    let entries: Vec<Item> = match item {
        Item::ArrayOfTables(a) => a.iter().map(|t| Item::Table(t.clone())).collect(),
        Item::Value(Value::Array(a)) => a.iter().map(|v| Item::Value(v.clone())).collect(),
        _ => {
            errors.push(loc.error(
                path,
                format!("must be an array of tables (`[[{path}]]`), one per entry"),
            ));
            return Vec::new();
        }
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let (value, broken) =
                read_entry::<T>(entry, &path.index(i), loc, errors, field_by_field);
            let id_hint = match entry {
                Item::Table(t) => t.get("id").and_then(Item::as_str),
                Item::Value(Value::InlineTable(t)) => t.get("id").and_then(Value::as_str),
                _ => None,
            };
            Entry {
                value,
                id_hint: id_hint.map(str::to_string),
                broken,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::plain_words;

    #[test]
    fn serde_messages_name_ranges_and_values_not_rust_types() {
        assert_eq!(
            plain_words("invalid value: integer `256`, expected u8"),
            "invalid value: integer `256`, expected a whole number up to 255"
        );
        assert_eq!(
            plain_words("invalid type: floating point `2.5`, expected i64; at x"),
            "invalid type: floating point `2.5`, expected a whole number; at x"
        );
        // The machine's maximum is no field's limit: not said.
        assert_eq!(
            plain_words("invalid value: integer `-1`, expected usize"),
            "invalid value: integer `-1`, expected a whole number, not negative"
        );
        assert_eq!(
            plain_words("unknown variant `fax`, expected one of `voice`, `chat`"),
            "unknown value `fax`, expected one of `voice`, `chat`"
        );
        assert_eq!(
            plain_words("invalid type: map, expected a sequence"),
            "invalid type: map, expected a list"
        );
        // Whole words only, and never inside what the input said.
        assert_eq!(plain_words("expected u8_x"), "expected u8_x");
        assert_eq!(
            plain_words("unknown variant `expected u8`, expected one of `voice`"),
            "unknown value `expected u8`, expected one of `voice`"
        );
        assert_eq!(
            plain_words("expected i32 or expected i32"),
            "expected a whole number from -2147483648 to 2147483647 or expected a whole number \
             from -2147483648 to 2147483647"
        );
    }
}
