//! `POST /v1/events`: the webhook intake.
//!
//! Order of checks: content type (415) → body size (413) → signature (401) → JSON syntax (400,
//! with line and column) → array length (413, `MAX_BATCH_EVENTS`) → each event's envelope and
//! fields (422, naming the field) → the engine (409/422/503). A body is one event object or an
//! array of them; an array is applied in order in one command, and each element gets its own
//! result, so one bad element never blocks the others. A single rejected event answers with the
//! error status itself.
//!
//! Parsing is one pass on the hot path: the body is deserialized straight into envelope ids and
//! engine `Event`s (`EventsBody`), without a `serde_json::Value` tree in between. Only a body
//! that pass refuses is parsed again, the slow way (`Value`, then each element on its own), and
//! that second parse alone writes the error answer, so every message (what, where, why) and the
//! per-element results of a batch are exactly what they would be without the fast path.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Error as _, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::daemon::core::{FirstDelivery, Input, Outcome};
use crate::daemon::decision_log::{Cause, CausedDecisions, LoggedDecision};
use crate::daemon::task::EngineHandle;
use crate::engine::Event;

use super::auth::{SignatureError, SIGNATURE_HEADER};
use super::error::{field_named, from_object, ApiError, Entry, ErrorBody};
use super::{read_body, require_content_type, AppState};

/// Longest accepted event id.
pub const MAX_EVENT_ID_LEN: usize = 256;

/// Most elements in one event array. The answer holds a result for each (about 100 bytes even
/// for a rejected `{}`), and the valid ones go to the engine as one command: without a bound, a
/// body of tiny elements would be answered with some 60 times its size, built in memory.
pub const MAX_BATCH_EVENTS: usize = 10_000;

/// One event's result.
#[derive(Debug, Serialize)]
pub struct EventResult {
    pub id: String,
    /// `applied`, `duplicate` or `rejected`.
    pub status: &'static str,
    /// Decisions this event caused (timer decisions go to the decision feed only); for a
    /// duplicate, those its first delivery caused that the decision log still holds.
    pub decisions: ResultDecisions,
    /// A duplicate some of whose first delivery's decisions are no longer held (`decisions`
    /// has the rest). Only written when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub decisions_incomplete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// A result's decisions: made by this delivery, or (a duplicate's) taken from the decision log.
#[derive(Debug)]
pub enum ResultDecisions {
    /// With their cause, as the feed shows them.
    Made(CausedDecisions),
    /// Written exactly as logged: the JSON the first delivery's answer and the feed carried.
    Logged(Vec<LoggedDecision>),
}

impl ResultDecisions {
    pub fn len(&self) -> usize {
        match self {
            ResultDecisions::Made(d) => d.decisions.len(),
            ResultDecisions::Logged(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ResultDecisions {
    fn default() -> ResultDecisions {
        ResultDecisions::Made(CausedDecisions::default())
    }
}

impl Serialize for ResultDecisions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ResultDecisions::Made(decisions) => decisions.serialize(s),
            ResultDecisions::Logged(decisions) => {
                let mut seq = s.serialize_seq(Some(decisions.len()))?;
                for d in decisions {
                    let raw: &RawValue = serde_json::from_str(&d.json).map_err(S::Error::custom)?;
                    seq.serialize_element(raw)?;
                }
                seq.end()
            }
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EventsResponse {
    pub results: Vec<EventResult>,
}

pub async fn post_events(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_content_type(&headers, &["application/json"])?;
    let bytes = read_body(body, &headers, app.body_limit).await?;
    let mut signatures = headers.get_all(SIGNATURE_HEADER).iter();
    let signature = signatures.next().map(|v| v.to_str().unwrap_or("\u{0}"));
    let auth = app.auth();
    // Two headers: which one a proxy or a reader takes differs, so neither counts.
    if signatures.next().is_some() && auth.signatures_required() {
        return Err(SignatureError::Repeated.into());
    }
    auth.verify_signature(signature, &bytes, app.clock.now_s())?;
    // `tierline_events_refused_total{code}`, one per event refused once the body was read: a
    // batch's refused elements are inside a 200 and would show in no other series.
    let parsed = match parse_body(&bytes) {
        Ok(parsed) => parsed,
        Err(e) => {
            // A single event's own fields (the body-level refusals concern no event).
            if e.status == StatusCode::UNPROCESSABLE_ENTITY
                && !matches!(&*e.body.code, "duplicate_field" | "empty_batch")
            {
                app.metrics.events_refused(&e.body.code, 1);
            }
            return Err(e);
        }
    };
    let events = match &parsed {
        ParsedBody::Single(..) => 1,
        ParsedBody::Batch(items) => items.len(),
    };
    let answer = apply_parsed(&app.engine, parsed).await;
    match &answer {
        Ok(answer) => {
            for error in answer.results.iter().filter_map(|r| r.error.as_ref()) {
                app.metrics.events_refused(&error.code, 1);
            }
        }
        // The engine refused the single event, or the engine task every event of the request
        // (`overloaded`, `journal_unavailable`, `shutting_down`).
        Err(e) => app.metrics.events_refused(&e.body.code, events as u64),
    }
    Ok(Json(answer?).into_response())
}

/// Apply a parsed body through the engine task and build the answer (what `POST /v1/events`
/// does after its checks; public so in-process benchmarks take the handlers' path without HTTP).
/// A single event the engine refuses is the error itself; in a batch it is that element's result.
pub async fn apply_parsed(
    engine: &EngineHandle,
    parsed: ParsedBody,
) -> Result<EventsResponse, ApiError> {
    match parsed {
        ParsedBody::Single(id, event) => apply_single(engine, id, event).await,
        ParsedBody::Batch(slots) => apply_batch(engine, slots).await,
    }
}

/// A request body split into envelope ids and engine events.
#[derive(Debug)]
pub enum ParsedBody {
    /// One event object.
    Single(String, Event),
    /// An array (never empty), element by element.
    Batch(Vec<BatchItem>),
}

/// One element of an event array.
#[derive(Debug)]
pub enum BatchItem {
    /// Its envelope id and event, ready for the engine.
    Parsed(String, Event),
    /// It could not be parsed: its `rejected` result, in its place in the answer.
    Refused(EventResult),
}

/// Parse a `POST /v1/events` body (400 for JSON that is not one object or an array of them,
/// 422 for a single bad event or an empty array; a bad element of an array becomes its result).
///
/// One pass straight into events when the body is well formed (the hot path); otherwise the
/// slow path alone decides the error, so the answer does not depend on the fast path.
pub fn parse_body(bytes: &[u8]) -> Result<ParsedBody, ApiError> {
    match serde_json::from_slice::<EventsBody>(bytes) {
        Ok(EventsBody::Single(e)) if field_problem(&e.event).is_none() => {
            Ok(ParsedBody::Single(e.id, e.event))
        }
        Ok(EventsBody::Batch(items))
            if !items.is_empty() && items.iter().all(|e| field_problem(&e.event).is_none()) =>
        {
            Ok(ParsedBody::Batch(
                items
                    .into_iter()
                    .map(|e| BatchItem::Parsed(e.id, e.event))
                    .collect(),
            ))
        }
        Ok(_) | Err(_) => parse_body_slowly(bytes),
    }
}

/// A field value the event's type admits but the API refuses as `invalid_field`, like a value
/// out of its type's range: `min_tier` 0 (tiers start at 1; 256 is already refused by its
/// type), a `score` outside 1–5. Checked here, not in `Event`'s own deserialization, so that
/// journals which recorded such an event (the engine refused it) still read.
fn field_problem(event: &Event) -> Option<(&'static str, Option<Entry>, String)> {
    match event {
        Event::InteractionEscalated { min_tier: 0, .. } => Some((
            "min_tier",
            None,
            format!("invalid value: integer `0`, expected {TIER}"),
        )),
        Event::InteractionRated { score, .. } if !(1..=5).contains(score) => Some((
            "score",
            None,
            format!("invalid value: integer `{score}`, expected {SCORE}"),
        )),
        // As a value beyond the type's range is (`FIELD_RANGES`): one code for both ends.
        Event::AgentLogin {
            tiers, capacity, ..
        } => {
            let zero_tier = tiers.iter().flatten().find(|(_, &t)| t == 0).map(|(q, _)| {
                (
                    "tiers",
                    Some(Entry::Key(q.clone())),
                    format!("invalid value: integer `0`, expected {TIER}"),
                )
            });
            zero_tier.or_else(|| {
                let (channel, _) = capacity.iter().flatten().find(|(_, &c)| c == 0)?;
                Some((
                    "capacity",
                    Some(Entry::Key(channel.to_string())),
                    format!("invalid value: integer `0`, expected {CAPACITY}"),
                ))
            })
        }
        _ => None,
    }
}

const TIER: &str = "a tier from 1 to 255";
const SCORE: &str = "a score from 1 to 5";
const CAPACITY: &str = "a capacity from 1 to 4294967295";

/// What an event field with a narrower range than its type takes, for the message of any value
/// it refuses (`256` or `1.5` for a `min_tier` as for `0`).
pub(crate) const FIELD_RANGES: [(&str, &str); 4] = [
    ("min_tier", TIER),
    ("score", SCORE),
    // `agent.login`'s maps: a value of a tier or a capacity.
    ("tiers", TIER),
    ("capacity", CAPACITY),
];

/// The reference parse: JSON into a `Value`, then each event on its own. Used for every body
/// the one-pass parse refused, so that errors name exactly what, where and why.
fn parse_body_slowly(bytes: &[u8]) -> Result<ParsedBody, ApiError> {
    // Counted before the body becomes a `Value` tree, so an oversized array costs no more than
    // reading it once.
    if let Some(n) = array_len(bytes).filter(|n| *n > MAX_BATCH_EVENTS) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "the event array has {n} elements; at most {MAX_BATCH_EVENTS} are accepted in \
                 one request: send the rest in further requests"
            ),
        ));
    }
    let value: Value = super::strict_json::from_slice(bytes)?;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ApiError::unprocessable(
                    "empty_batch",
                    "the event array is empty",
                ));
            }
            let slots = items
                .into_iter()
                .enumerate()
                .map(|(index, item)| {
                    let id_hint = item
                        .get("id")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_default();
                    match parse_envelope(item, Some(index)) {
                        Ok((id, event)) => BatchItem::Parsed(id, event),
                        Err(e) => BatchItem::Refused(EventResult {
                            id: id_hint,
                            status: "rejected",
                            decisions: ResultDecisions::default(),
                            decisions_incomplete: false,
                            error: Some(e.body),
                        }),
                    }
                })
                .collect();
            Ok(ParsedBody::Batch(slots))
        }
        Value::Object(map) => {
            let (id, event) = parse_envelope(Value::Object(map), None)?;
            Ok(ParsedBody::Single(id, event))
        }
        _ => Err(ApiError::bad_request(
            "invalid_body",
            "the body must be one event object or an array of event objects",
        )),
    }
}

/// How many elements `bytes` has if it is a well-formed JSON array (a leading byte order mark
/// skipped, as `strict_json` does); `None` for anything else, which the strict parse explains.
fn array_len(bytes: &[u8]) -> Option<usize> {
    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while seq.next_element::<de::IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // What the reference parse refuses with a 400 comes first (API.md's order of checks):
    // skipping values, the count reads neither strings as UTF-8 nor how deep values nest.
    if std::str::from_utf8(bytes).is_err() || nests_deeper_than(bytes, MAX_JSON_DEPTH) {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let n = de.deserialize_seq(Count).ok()?;
    de.end().ok().map(|()| n)
}

/// How deep the JSON reader (serde_json, which stops at 128) nests arrays and objects before a
/// body is refused `too_deeply_nested`.
pub(crate) const MAX_JSON_DEPTH: usize = 127;

/// Whether `json` opens more than `limit` arrays or objects inside one another, brackets in
/// strings aside. One pass over the bytes, nothing allocated.
fn nests_deeper_than(json: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

async fn apply_single(
    engine: &EngineHandle,
    id: String,
    event: Event,
) -> Result<EventsResponse, ApiError> {
    let kind = event.type_name();
    let mut outcomes = engine
        .apply(vec![Input::Event {
            id: id.clone(),
            event,
        }])
        .await?;
    let outcome = outcomes.pop().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the engine returned no outcome",
        )
    })?;
    let result = match outcome {
        Outcome::Rejected(e) => return Err(ApiError::from_engine(&e, Some(&id))),
        other => result_of(id, kind, other),
    };
    Ok(EventsResponse {
        results: vec![result],
    })
}

/// Send the valid elements in one command; the failures keep their place in the answer.
async fn apply_batch(
    engine: &EngineHandle,
    parsed: Vec<BatchItem>,
) -> Result<EventsResponse, ApiError> {
    let mut slots: Vec<Result<(String, &'static str), EventResult>> =
        Vec::with_capacity(parsed.len());
    let mut inputs = Vec::with_capacity(parsed.len());
    for item in parsed {
        match item {
            BatchItem::Parsed(id, event) => {
                slots.push(Ok((id.clone(), event.type_name())));
                inputs.push(Input::Event { id, event });
            }
            BatchItem::Refused(result) => slots.push(Err(result)),
        }
    }
    let mut outcomes = if inputs.is_empty() {
        Vec::new()
    } else {
        engine.apply(inputs).await?
    }
    .into_iter();
    let mut results = Vec::with_capacity(slots.len());
    for slot in slots {
        match slot {
            Err(result) => results.push(result),
            Ok((id, kind)) => match outcomes.next() {
                Some(outcome) => results.push(result_of(id, kind, outcome)),
                None => {
                    return Err(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "the engine returned fewer outcomes than events",
                    ))
                }
            },
        }
    }
    Ok(EventsResponse { results })
}

/// The result of the event `id` of type `kind`.
fn result_of(id: String, kind: &'static str, outcome: Outcome) -> EventResult {
    match outcome {
        Outcome::Applied(decisions) => EventResult {
            status: "applied",
            decisions: ResultDecisions::Made(CausedDecisions::new(
                decisions,
                Cause::Event { id: &id, kind },
            )),
            id,
            decisions_incomplete: false,
            error: None,
        },
        Outcome::Duplicate(FirstDelivery {
            decisions,
            incomplete,
        }) => EventResult {
            id,
            status: "duplicate",
            decisions: ResultDecisions::Logged(decisions),
            decisions_incomplete: incomplete,
            error: None,
        },
        Outcome::Rejected(e) => {
            let body = ApiError::from_engine(&e, Some(&id)).body;
            EventResult {
                id,
                status: "rejected",
                decisions: ResultDecisions::default(),
                decisions_incomplete: false,
                error: Some(body),
            }
        }
        Outcome::ConfigRefused(problems) => EventResult {
            id,
            status: "rejected",
            decisions: ResultDecisions::default(),
            decisions_incomplete: false,
            error: Some(ApiError::invalid_config(problems).body),
        },
    }
}

/// Split an event object into its envelope id and the engine `Event` (422 on any problem).
pub fn parse_envelope(value: Value, index: Option<usize>) -> Result<(String, Event), ApiError> {
    let at = match index {
        Some(i) => format!("event [{i}]"),
        None => "the event".to_string(),
    };
    let Value::Object(mut map) = value else {
        return Err(ApiError::unprocessable(
            "invalid_event",
            format!("{at} is not a JSON object"),
        ));
    };
    let id = match map.remove("id") {
        None => {
            return Err(ApiError::unprocessable(
                "missing_id",
                format!("{at} has no `id` (every event needs a unique id, the idempotency key)"),
            ))
        }
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_EVENT_ID_LEN => s,
        Some(other) => {
            let got = match &other {
                Value::String(s) if s.is_empty() => "an empty string".to_string(),
                Value::String(s) => format!("an id {}", crate::engine::event::Named(s)),
                Value::Null => "null".to_string(),
                Value::Bool(_) => "a boolean".to_string(),
                Value::Number(_) => "a number (quote it: ids are strings)".to_string(),
                Value::Array(_) => "an array".to_string(),
                Value::Object(_) => "an object".to_string(),
            };
            return Err(ApiError::unprocessable(
                "invalid_id",
                format!(
                    "{at}: `id` must be a non-empty string of at most {MAX_EVENT_ID_LEN} bytes, \
                     got {got}"
                ),
            ));
        }
    };
    // As every id the engine keeps: it is echoed in answers and logs.
    if let Some(held) = crate::engine::event::control_character(&id) {
        return Err(ApiError::unprocessable(
            "invalid_id",
            format!("{at}: `id` {held}: ids are printable text"),
        ));
    }
    let event: Event = from_object(&map, Some("type"), &format!("event `{id}`: "))?;
    if let Some((field, entry, why)) = field_problem(&event) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!(
                "event `{id}`: {}: {why}",
                field_named(field, entry.as_ref())
            ),
        ));
    }
    Ok((id, event))
}

/// The one-pass form of a body: an event object or an array of them, each deserialized straight
/// into its id and `Event`. Anything unusual (a missing, duplicate or non-string `id`, an id too
/// long, any field the `Event` refuses) is an error here, and `parse_body` then asks the slow path.
enum EventsBody {
    Single(FastEnvelope),
    Batch(Vec<FastEnvelope>),
}

/// An event object whose `id` was taken out on the way through.
struct FastEnvelope {
    id: String,
    event: Event,
}

impl<'de> Deserialize<'de> for EventsBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BodyVisitor;
        impl<'de> Visitor<'de> for BodyVisitor {
            type Value = EventsBody;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an event object or an array of event objects")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EventsBody, A::Error> {
                envelope_from_map(map).map(EventsBody::Single)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventsBody, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(1024));
                while let Some(item) = seq.next_element::<FastEnvelope>()? {
                    if items.len() == MAX_BATCH_EVENTS {
                        // The slow path counts them all and says so.
                        return Err(de::Error::custom("too many events"));
                    }
                    items.push(item);
                }
                Ok(EventsBody::Batch(items))
            }
        }
        deserializer.deserialize_any(BodyVisitor)
    }
}

impl<'de> Deserialize<'de> for FastEnvelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor;
        impl<'de> Visitor<'de> for EnvelopeVisitor {
            type Value = FastEnvelope;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FastEnvelope, A::Error> {
                envelope_from_map(map)
            }
        }
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

/// Hand every entry but `id` to `Event`'s own deserializer, keeping the `id` aside.
fn envelope_from_map<'de, A: MapAccess<'de>>(map: A) -> Result<FastEnvelope, A::Error> {
    let mut without_id = WithoutId {
        map,
        id: None,
        duplicate_id: false,
    };
    let event = Event::deserialize(de::value::MapAccessDeserializer::new(&mut without_id))?;
    if without_id.duplicate_id {
        return Err(de::Error::custom("duplicate `id`"));
    }
    match without_id.id {
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_EVENT_ID_LEN
                && crate::engine::event::first_control(&id).is_none() =>
        {
            Ok(FastEnvelope { id, event })
        }
        _ => Err(de::Error::custom("missing or unusable `id`")),
    }
}

/// A map with its `id` entry taken out (into `id`) as `Event` reads it.
struct WithoutId<A> {
    map: A,
    id: Option<String>,
    duplicate_id: bool,
}

/// A key as the JSON parser gives it: borrowed from the body unless it had escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl<'de> Key<'de> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutId<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.map.next_key::<Key<'de>>()? else {
                return Ok(None);
            };
            if key.as_str() == "id" {
                let id: String = self.map.next_value()?;
                self.duplicate_id |= self.id.replace(id).is_some();
                continue;
            }
            return match key {
                Key::Borrowed(k) => seed
                    .deserialize(de::value::BorrowedStrDeserializer::new(k))
                    .map(Some),
                Key::Owned(k) => seed
                    .deserialize(de::value::StringDeserializer::new(k))
                    .map(Some),
            };
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// API.md's order of checks: a body the JSON reader refuses (400) is told so even when its
    /// array is also over the batch limit (413). The count skipped strings and nesting, so an
    /// over-long array with a stray byte or a value nested 128 deep was answered 413.
    #[test]
    fn an_over_long_array_that_is_not_json_tierline_reads_is_a_400_first() {
        let many = vec![&b"{}"[..]; MAX_BATCH_EVENTS + 1].join(&b","[..]);
        let body = |tail: &[u8]| [&b"["[..], &many, tail, b"]"].concat();
        let code = |bytes: &[u8]| match parse_body_slowly(bytes) {
            Err(e) => (e.status, e.body.code.to_string()),
            Ok(_) => (StatusCode::OK, String::new()),
        };
        let invalid = body(b",\"\xff\"");
        assert_eq!(
            code(&invalid),
            (StatusCode::BAD_REQUEST, "invalid_utf8".into())
        );
        let deep = [&b","[..], &b"[".repeat(128), &b"]".repeat(128)].concat();
        assert_eq!(
            code(&body(&deep)),
            (StatusCode::BAD_REQUEST, "too_deeply_nested".into())
        );
        // 127 levels inside the array's own is still read, so the array's length is told.
        let deep_enough = [&b","[..], &b"[".repeat(126), &b"]".repeat(126)].concat();
        assert_eq!(
            code(&body(&deep_enough)),
            (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large".into())
        );
    }

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert!(!nests_deeper_than(br#"[[["]]]]]][[[[[\"[[["]]]"#, 3));
        assert!(nests_deeper_than(br#"[{"a":[{}]}]"#, 3));
        assert!(!nests_deeper_than(br#"[{"a":[1]}]"#, 3));
        assert!(!nests_deeper_than(br#"["\\",{"x":"[[[["}]"#, 2));
    }

    #[test]
    fn the_envelope_id_is_split_from_the_event() {
        let (id, event) = parse_envelope(
            json!({"id": "e1", "type": "agent.logout", "agent": "a1"}),
            None,
        )
        .unwrap();
        assert_eq!(id, "e1");
        assert_eq!(event, Event::AgentLogout { agent: "a1".into() });
    }

    #[test]
    fn a_typo_in_a_field_is_a_422_naming_the_field() {
        let err = parse_envelope(
            json!({"id": "e1", "type": "agent.logout", "agent": "a1", "agnet": "x"}),
            None,
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.body.code, "unknown_field");
        assert!(err.body.message.contains("`agnet`"), "{}", err.body.message);
        assert!(err.body.message.starts_with("event `e1`:"));
    }

    #[test]
    fn an_unknown_type_and_a_missing_field_have_their_own_codes() {
        let err = parse_envelope(json!({"id": "e1", "type": "agent.dance"}), None).unwrap_err();
        assert_eq!(err.body.code, "unknown_type");
        let err = parse_envelope(json!({"id": "e1", "type": "agent.logout"}), None).unwrap_err();
        assert_eq!(err.body.code, "missing_field");
        assert!(err.body.message.contains("`agent`"));
        let err = parse_envelope(
            json!({"id": "e1", "type": "interaction.rated", "interaction": "c", "score": "five"}),
            None,
        )
        .unwrap_err();
        assert_eq!(err.body.code, "invalid_field");
    }

    #[test]
    fn a_bad_value_names_its_field_and_only_a_bad_type_is_unknown_type() {
        let cases = [
            (
                json!({"id": "e1", "type": "interaction.arrived", "interaction": "c",
                       "channel": "voice", "priority": 9_223_372_036_854_775_807_i64}),
                "invalid_field",
                "event `e1`: field `priority`: invalid value: integer `9223372036854775807`, expected a whole number from -2147483648 to 2147483647",
            ),
            (
                json!({"id": "e2", "type": "interaction.arrived", "interaction": "c", "channel": "fax"}),
                "invalid_field",
                "event `e2`: field `channel`: unknown value `fax`",
            ),
            (
                json!({"id": "e3", "type": "offer.declined", "interaction": "c", "agent": "a",
                       "reason": "bored"}),
                "invalid_field",
                "event `e3`: field `reason`: unknown value `bored`",
            ),
            (
                json!({"id": "e4", "type": "agent.login", "agent": "a",
                       "capacity": {"chat": 2, "voice": -1}}),
                "invalid_field",
                "event `e4`: field `capacity.voice`: invalid value: integer `-1`",
            ),
            (
                json!({"id": "e5", "type": "interaction.arrived", "interaction": "c",
                       "channel": "voice", "attributes": {"lang": 1}}),
                "invalid_field",
                "event `e5`: field `attributes.lang`: invalid type: integer `1`, expected a string",
            ),
            (
                json!({"id": "e8", "type": "agent.login", "agent": "a",
                       "tiers": {"support": 1, "sales": 256}}),
                "invalid_field",
                "event `e8`: field `tiers.sales`: invalid value: integer `256`, expected a tier from 1 to 255",
            ),
            (
                json!({"id": "e9", "type": "agent.login", "agent": "a",
                       "tiers": {"support": 1, "sales": 0}}),
                "invalid_field",
                "event `e9`: field `tiers.sales`: invalid value: integer `0`, expected a tier from 1 to 255",
            ),
            (
                json!({"id": "e10", "type": "agent.login", "agent": "a",
                       "capacity": {"voice": 1, "chat": 0}}),
                "invalid_field",
                "event `e10`: field `capacity.chat`: invalid value: integer `0`, expected a capacity from 1 to 4294967295",
            ),
            (
                json!({"id": "e11", "type": "agent.login", "agent": "a", "skills": ["en", 3]}),
                "invalid_field",
                "event `e11`: field `skills[1]`: invalid type: integer `3`, expected a string",
            ),
            (
                json!({"id": "e6", "type": "agent.dance", "agent": "a"}),
                "unknown_type",
                "event `e6`: unknown value `agent.dance`",
            ),
            (
                json!({"id": "e7", "type": 7, "agent": "a"}),
                "unknown_type",
                "event `e7`: invalid type: integer `7`",
            ),
        ];
        for (event, code, start) in cases {
            let err = parse_envelope(event.clone(), None).unwrap_err();
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{event}");
            assert_eq!(err.body.code, code, "{event}: {}", err.body.message);
            assert!(
                err.body.message.starts_with(start),
                "{event}: {}",
                err.body.message
            );
        }
    }

    /// One valid event of every type, every optional field present.
    fn every_type() -> Vec<Value> {
        vec![
            json!({"type": "interaction.arrived", "interaction": "c1", "channel": "voice",
                   "queue": "support", "priority": 3, "skills": ["en"], "customer": "k9",
                   "attributes": {"lang": "en"}}),
            json!({"type": "interaction.abandoned", "interaction": "c1"}),
            json!({"type": "interaction.ended", "interaction": "c1", "resolved": true}),
            json!({"type": "interaction.rated", "interaction": "c1", "score": 4}),
            json!({"type": "interaction.transferred", "interaction": "c1", "queue": "sales"}),
            json!({"type": "interaction.escalated", "interaction": "c1", "min_tier": 2}),
            json!({"type": "offer.accepted", "interaction": "c1", "agent": "a1"}),
            json!({"type": "offer.declined", "interaction": "c1", "agent": "a1",
                   "reason": "busy"}),
            json!({"type": "agent.login", "agent": "a1", "address": "sip:a1@pbx",
                   "tiers": {"support": 1}, "skills": ["en"], "capacity": {"chat": 2}}),
            json!({"type": "agent.state", "agent": "a1", "state": "not_ready",
                   "reason": "lunch"}),
            json!({"type": "agent.logout", "agent": "a1"}),
            json!({"type": "agent.wrapup_done", "agent": "a1"}),
        ]
    }

    proptest::proptest! {
        /// Oracle: spoil one field of a valid event with a value no field accepts; the 422 names
        /// exactly that field (`unknown_type` when it is `type`).
        #[test]
        fn the_field_named_is_the_field_spoiled(pick in 0usize..1_000, field in 0usize..1_000) {
            let events = every_type();
            let event = &events[pick % events.len()];
            proptest::prop_assert!(parse_envelope(with_id(event), None).is_ok(), "{}", event);
            let Value::Object(map) = event else { unreachable!("every_type gives objects") };
            let names: Vec<&String> = map.keys().collect();
            let spoiled = names[field % names.len()].clone();
            let mut bad = map.clone();
            bad.insert(spoiled.clone(), json!({"spoiled": true}));
            let err = parse_envelope(with_id(&Value::Object(bad)), None).unwrap_err();
            if spoiled == "type" {
                proptest::prop_assert_eq!(&*err.body.code, "unknown_type", "{}", err.body.message);
            } else {
                proptest::prop_assert_eq!(&*err.body.code, "invalid_field", "{}", err.body.message);
                // In a map, the entry: the one spoiled entry is the one at fault.
                let named = if ["tiers", "capacity", "attributes"].contains(&spoiled.as_str()) {
                    format!("event `e1`: field `{spoiled}.spoiled`: ")
                } else {
                    format!("event `e1`: field `{spoiled}`: ")
                };
                proptest::prop_assert!(err.body.message.starts_with(&named), "{}", err.body.message);
            }
        }
    }

    fn with_id(event: &Value) -> Value {
        let mut e = event.clone();
        e["id"] = json!("e1");
        e
    }

    #[test]
    fn with_two_bad_fields_the_one_named_is_the_one_described() {
        let err = parse_envelope(
            json!({"id": "e1", "type": "interaction.arrived", "interaction": "c",
                   "channel": "fax", "priority": "high"}),
            None,
        )
        .unwrap_err();
        let m = &err.body.message;
        assert_eq!(err.body.code, "invalid_field");
        let named_channel = m.starts_with("event `e1`: field `channel`: unknown value `fax`");
        let named_priority = m.starts_with("event `e1`: field `priority`: invalid type: string");
        assert!(named_channel || named_priority, "{m}");
    }

    #[test]
    fn an_event_without_a_usable_id_is_refused() {
        let err =
            parse_envelope(json!({"type": "agent.logout", "agent": "a1"}), Some(3)).unwrap_err();
        assert_eq!(err.body.code, "missing_id");
        assert!(err.body.message.starts_with("event [3]"));
        let err = parse_envelope(
            json!({"id": 7, "type": "agent.logout", "agent": "a1"}),
            None,
        )
        .unwrap_err();
        assert_eq!(err.body.code, "invalid_id");
        let err = parse_envelope(json!("agent.logout"), None).unwrap_err();
        assert_eq!(err.body.code, "invalid_event");
    }

    /// What a parse comes to, comparable across the two paths.
    fn outcome(parsed: Result<ParsedBody, ApiError>) -> String {
        match parsed {
            Ok(ParsedBody::Single(id, event)) => format!("single {id} {event:?}"),
            Ok(ParsedBody::Batch(slots)) => {
                let slots: Vec<String> = slots
                    .into_iter()
                    .map(|slot| match slot {
                        BatchItem::Parsed(id, event) => format!("ok {id} {event:?}"),
                        BatchItem::Refused(result) => {
                            format!("rejected {} {:?}", result.id, result.error)
                        }
                    })
                    .collect();
                format!("batch {slots:?}")
            }
            Err(e) => format!("error {} {:?}", e.status, e.body),
        }
    }

    const BODIES: &[&str] = &[
        r#"{"id":"e1","type":"agent.logout","agent":"a1"}"#,
        r#"{"type":"agent.logout","agent":"a1","id":"e1"}"#,
        r#"{"type":"interaction.arrived","interaction":"c1","channel":"voice","queue":"q0","priority":3,"skills":["en"],"attributes":{"k":"v","j":"w"},"id":"e\u0032"}"#,
        r#"{"id":"e1","type":"agent.login","agent":"a1","tiers":{"q0":1,"q1":2},"capacity":{"chat":2}}"#,
        r#"[{"id":"e1","type":"agent.logout","agent":"a1"},{"id":"e2","type":"agent.wrapup_done","agent":"a1"}]"#,
        // Everything below is refused by the one-pass parse and answered by the slow path.
        r#"{"type":"interaction.arrived","interaction":"c1","channel":"voice","attributes":{"k":"v","k":"w"},"id":"e2"}"#,
        r#"{"id":"e1","type":"agent.logout","type":"agent.login","agent":"a1"}"#,
        r#"{"id":"e1","type":"agent.login","agent":"a1","tiers":{"q0":1,"q0":2}}"#,
        r#"[{"id":"e1","type":"agent.logout","agent":"a1"},{"id":"e2","type":"agent.logout","agent":"a1","agent":"a2"}]"#,
        r#"{"id":"e1","type":"agent.logout","agent":"a1","agent":"a2"}"#,
        r#"{"id":"e1","id":"e2","type":"agent.logout","agent":"a1"}"#,
        r#"{"agent":"a1","type":"agent.dance","id":"e1"}"#,
        r#"{"type":"agent.logout","agnet":"a1","id":"e1"}"#,
        r#"{"type":"agent.logout","id":"e1"}"#,
        r#"{"type":"agent.logout","agent":"a1"}"#,
        r#"{"id":"","type":"agent.logout","agent":"a1"}"#,
        r#"{"id":7,"type":"agent.logout","agent":"a1"}"#,
        r#"{"id":null,"type":"agent.logout","agent":"a1"}"#,
        r#"{"id":"e1","type":"interaction.rated","interaction":"c","score":"five"}"#,
        r#"[{"id":"e1","type":"agent.logout","agent":"a1"},{"type":"agent.logout","agent":"a2"},"x",{"id":"e3","type":"agent.logout","agnet":"a3"}]"#,
        r#"[]"#,
        r#""agent.logout""#,
        r#"{"id":"e1","type":"agent.logout","agent":"a1"} x"#,
        "{\n  \"id\": ,\n}",
    ];

    #[test]
    fn the_one_pass_parse_answers_exactly_like_the_reference_parse() {
        for body in BODIES {
            assert_eq!(
                outcome(parse_body(body.as_bytes())),
                outcome(parse_body_slowly(body.as_bytes())),
                "{body}"
            );
        }
    }

    /// Whether `parse_body` answers `body` from the one-pass parse alone.
    fn one_pass(body: &str) -> bool {
        match serde_json::from_slice::<EventsBody>(body.as_bytes()) {
            Ok(EventsBody::Single(_)) => true,
            Ok(EventsBody::Batch(items)) => !items.is_empty(),
            Err(_) => false,
        }
    }

    #[test]
    fn well_formed_bodies_take_the_one_pass_path() {
        for body in &BODIES[..5] {
            assert!(one_pass(body), "{body}");
        }
        for body in &BODIES[5..] {
            assert!(!one_pass(body), "{body}");
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_wherever_it_is() {
        for (body, key) in [
            (
                r#"{"id":"e1","type":"agent.logout","type":"agent.login","agent":"a1"}"#,
                "type",
            ),
            (
                r#"{"id":"e1","id":"e2","type":"agent.logout","agent":"a1"}"#,
                "id",
            ),
            (
                r#"{"id":"e1","type":"agent.logout","agent":"a1","agent":"a2"}"#,
                "agent",
            ),
            (
                r#"{"id":"e1","type":"interaction.arrived","interaction":"c1","channel":"voice","attributes":{"category":"complaint","category":"x"}}"#,
                "category",
            ),
            (
                r#"{"id":"e1","type":"agent.login","agent":"a1","capacity":{"chat":2,"chat":3}}"#,
                "chat",
            ),
        ] {
            let err = parse_body(body.as_bytes()).unwrap_err();
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(err.body.code, "duplicate_field", "{body}");
            assert!(
                err.body.message.contains(&format!("`{key}`")),
                "{}",
                err.body.message
            );
        }
        // In a batch, the element with the repeated key is refused with the whole body: the
        // body is not read as the sender meant it anywhere.
        let batch = r#"[{"id":"e1","type":"agent.logout","agent":"a1"},{"id":"e2","type":"agent.logout","agent":"a1","agent":"a2"}]"#;
        assert_eq!(
            parse_body(batch.as_bytes()).unwrap_err().body.code,
            "duplicate_field"
        );
    }

    #[test]
    fn null_optional_lists_and_maps_are_empty() {
        let Ok(ParsedBody::Single(_, event)) = parse_body(
            br#"{"id":"e1","type":"interaction.arrived","interaction":"c1","channel":"voice","skills":null,"attributes":null}"#,
        ) else {
            panic!("not parsed");
        };
        let Event::InteractionArrived {
            skills, attributes, ..
        } = event
        else {
            panic!("{event:?}");
        };
        assert!(skills.is_empty() && attributes.is_empty());
    }

    #[test]
    fn the_id_is_taken_out_wherever_it_is_and_a_long_one_is_refused() {
        let Ok(ParsedBody::Single(id, event)) =
            parse_body(br#"{"type":"agent.logout","id":"e9","agent":"a1"}"#)
        else {
            panic!("not parsed");
        };
        assert_eq!(id, "e9");
        assert_eq!(event, Event::AgentLogout { agent: "a1".into() });
        let long = "x".repeat(MAX_EVENT_ID_LEN + 1);
        let body = format!(r#"{{"id":"{long}","type":"agent.logout","agent":"a1"}}"#);
        let err = parse_body(body.as_bytes()).unwrap_err();
        assert_eq!(err.body.code, "invalid_id");
    }

    /// An envelope id holding a control character is refused, as every id the engine keeps is:
    /// it is echoed in answers and logs. Before, `"t11\n"` was applied.
    #[test]
    fn an_id_holding_a_control_character_is_refused_naming_it() {
        let err = parse_body(br#"{"id":"t11\n","type":"agent.logout","agent":"a1"}"#).unwrap_err();
        assert_eq!(err.body.code, "invalid_id");
        assert!(
            err.body
                .message
                .contains("`id` holds a control character (U+000A at byte 3)"),
            "{}",
            err.body.message
        );
        // In a batch the event is refused on its own, in its result.
        let Ok(ParsedBody::Batch(results)) =
            parse_body(br#"[{"id":"i\u001bd","type":"agent.logout","agent":"a1"}]"#)
        else {
            panic!("not parsed as a batch");
        };
        let [BatchItem::Refused(refused)] = results.as_slice() else {
            panic!("{results:?}");
        };
        let error = refused.error.as_ref().expect("an error");
        assert_eq!(error.code, "invalid_id");
        assert!(
            error.message.contains("U+001B at byte 1"),
            "{}",
            error.message
        );
    }

    /// A JSON key as the sender might write it: plain, or with every character `\u`-escaped.
    fn key_text(key: &str, escaped: bool) -> String {
        if escaped {
            let mut text = String::from("\"");
            for c in key.chars() {
                text.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            text.push('"');
            text
        } else {
            Value::String(key.to_string()).to_string()
        }
    }

    /// What a sender can get wrong in one field, or write differently.
    #[derive(Debug, Clone)]
    enum Edit {
        Drop(usize),
        /// The field given again, with the same or another value.
        Twice(usize, bool),
        Unknown,
        Retype(usize, usize),
        Escape(usize),
        Swap(usize, usize),
    }

    /// Values of every JSON type and of shapes fields may or may not take.
    fn some_value(pick: usize) -> Value {
        let values = [
            Value::Null,
            json!(true),
            json!(0),
            json!(-1),
            json!(2.5),
            json!(1e30),
            json!(u64::MAX),
            json!(""),
            json!("voice"),
            json!("agent.logout"),
            json!([]),
            json!(["en", 1]),
            json!({}),
            json!({"support": 1}),
            json!({"k": "v"}),
        ];
        values[pick % values.len()].clone()
    }

    /// One event as text: a valid one of `every_type()` with the id, after `edits`.
    fn edited_event(pick: usize, id: Option<&str>, edits: &[Edit]) -> String {
        let events = every_type();
        let Value::Object(map) = &events[pick % events.len()] else {
            unreachable!("every_type gives objects")
        };
        let mut fields: Vec<(String, Value, bool)> = map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), false))
            .collect();
        if let Some(id) = id {
            fields.push(("id".into(), json!(id), false));
        }
        for edit in edits {
            let n = fields.len();
            match *edit {
                _ if n == 0 => {}
                Edit::Drop(i) => {
                    fields.remove(i % n);
                }
                Edit::Twice(i, same) => {
                    let (k, v, _) = fields[i % n].clone();
                    let v = if same { v } else { json!("other") };
                    fields.push((k, v, false));
                }
                Edit::Unknown => fields.push(("colour".into(), json!("red"), false)),
                Edit::Retype(i, v) => fields[i % n].1 = some_value(v),
                Edit::Escape(i) => fields[i % n].2 = true,
                Edit::Swap(i, j) => fields.swap(i % n, j % n),
            }
        }
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v, escaped)| format!("{}:{}", key_text(k, *escaped), v))
            .collect();
        format!("{{{}}}", body.join(","))
    }

    fn edit() -> impl proptest::strategy::Strategy<Value = Edit> {
        use proptest::prelude::*;
        prop_oneof![
            (0usize..16).prop_map(Edit::Drop),
            (0usize..16, any::<bool>()).prop_map(|(i, same)| Edit::Twice(i, same)),
            Just(Edit::Unknown),
            (0usize..16, 0usize..16).prop_map(|(i, v)| Edit::Retype(i, v)),
            (0usize..16).prop_map(Edit::Escape),
            (0usize..16, 0usize..16).prop_map(|(i, j)| Edit::Swap(i, j)),
        ]
    }

    /// An element of a body: an event (edited or not), or something that is not an object.
    fn element() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            8 => (
                0usize..100,
                prop::option::weighted(0.9, "[a-z0-9]{1,6}"),
                prop::collection::vec(edit(), 0..3),
            )
                .prop_map(|(pick, id, edits)| edited_event(pick, id.as_deref(), &edits)),
            1 => (0usize..16).prop_map(|v| some_value(v).to_string()),
        ]
    }

    proptest::proptest! {
        /// Oracle: the reference parse. Whatever the body (one event or a batch, fields
        /// dropped, repeated, retyped, reordered, escaped, unknown, elements that are not
        /// objects, the text cut short or followed by more), the hot path answers exactly as
        /// the reference parse does: the same events, or the same error, status and message.
        #[test]
        fn the_one_pass_parse_agrees_with_the_reference_on_any_body(
            batch in proptest::option::weighted(0.4, 0usize..4),
            elements in proptest::collection::vec(element(), 1..4),
            cut in proptest::option::weighted(0.1, 0usize..400),
            tail in proptest::option::weighted(0.05, "[ ,}x\\]]{1,2}"),
        ) {
            let mut body = match batch {
                Some(n) => format!("[{}]", elements[..n.min(elements.len())].join(",")),
                None => elements[0].clone(),
            };
            if let Some(cut) = cut {
                let mut at = cut.min(body.len());
                while !body.is_char_boundary(at) {
                    at -= 1;
                }
                body.truncate(at);
            }
            if let Some(tail) = tail {
                body.push_str(&tail);
            }
            proptest::prop_assert_eq!(
                outcome(parse_body(body.as_bytes())),
                outcome(parse_body_slowly(body.as_bytes())),
                "{}",
                body
            );
        }
    }
}
