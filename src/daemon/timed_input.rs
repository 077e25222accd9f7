//! Reading a journaled `TimedInput` back, fast.
//!
//! The journal stores `{"at":…,"input":"event","id":…,"event":{…}}`: the input's fields flattened
//! beside its time (see `TimedInput`'s derived `Serialize`). serde's derived reader for that shape
//! (`#[serde(flatten)]` over an internally tagged enum) first buffers the whole object into a
//! generic tree, then reads the enum from the tree, which buffers it again. This reader takes
//! each field straight from the JSON instead (a quarter less decoding CPU in recovery). It
//! accepts exactly what the derived reader accepted: fields in any order, unknown fields ignored,
//! `reason` and `resolved` optional; a missing or repeated field is an error naming it.
//!
//! Recovery goes one step further (`decode_replay`): the event inside is internally tagged
//! (`{"type": "interaction.arrived", …}`), for which serde's derived reader buffers the whole
//! object into a generic tree before reading the variant. The journal always writes `type` first,
//! so the fast path reads the tag and then the variant's fields straight from the JSON
//! (`FastEvent`, one plain struct per variant). Anything the fast path does not take (`type` not
//! first, an escaped key, any error) is read again by the derived readers, so what is accepted and
//! every error message are exactly theirs. It also hashes the event id for the idempotency window
//! there, on the decoding thread, so the replaying thread does not.

use std::collections::BTreeMap;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::config::{Channel, Millis, Tier};
use crate::engine::{DeclineReason, Event, RequestedState};

use super::core::{Input, ResolvedConfig, TimedInput};
use super::idempotency::HashedId;

/// Every field any input kind has.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    At,
    Input,
    Id,
    Event,
    Source,
    Origin,
    Resolved,
    Agent,
    State,
    Reason,
    #[serde(other)]
    Unknown,
}

/// The `input` tag.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Event,
    Advance,
    Reconfigure,
    AgentState,
}

impl<'de> Deserialize<'de> for TimedInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TimedInput, D::Error> {
        let (timed, _) = deserializer.deserialize_map(TimedInputVisitor { fast: false })?;
        Ok(timed)
    }
}

/// Reads a `TimedInput`. With `fast`, its event goes through `FastEvent` and an event's id is
/// read borrowed and hashed straight into the returned `HashedId` (one allocation instead of
/// two); the `TimedInput`'s own `id` is then left empty.
struct TimedInputVisitor {
    fast: bool,
}

/// Set a field once; a second occurrence is an error, as with the derived reader.
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}

impl<'de> Visitor<'de> for TimedInputVisitor {
    type Value = (TimedInput, Option<HashedId>);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a journaled input ({\"at\": …, \"input\": …})")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut hashed: Option<HashedId> = None;
        let mut at: Option<u64> = None;
        let mut kind: Option<Kind> = None;
        let mut id: Option<String> = None;
        let mut event: Option<Event> = None;
        let mut source: Option<String> = None;
        let mut origin: Option<String> = None;
        let mut resolved: Option<Option<Box<ResolvedConfig>>> = None;
        let mut agent: Option<String> = None;
        let mut state: Option<RequestedState> = None;
        let mut reason: Option<Option<String>> = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::At => once(&mut at, map.next_value()?, "at")?,
                Field::Input => once(&mut kind, map.next_value()?, "input")?,
                Field::Id if self.fast => {
                    let value = HashedId::new(map.next_value::<&'de str>()?);
                    once(&mut hashed, value, "id")?
                }
                Field::Id => once(&mut id, map.next_value()?, "id")?,
                Field::Event => {
                    let value = if self.fast {
                        map.next_value_seed(FastEvent)?
                    } else {
                        map.next_value()?
                    };
                    once(&mut event, value, "event")?
                }
                Field::Source => once(&mut source, map.next_value()?, "source")?,
                Field::Origin => once(&mut origin, map.next_value()?, "origin")?,
                Field::Resolved => once(&mut resolved, map.next_value()?, "resolved")?,
                Field::Agent => once(&mut agent, map.next_value()?, "agent")?,
                Field::State => once(&mut state, map.next_value()?, "state")?,
                Field::Reason => once(&mut reason, map.next_value()?, "reason")?,
                Field::Unknown => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let at = at.ok_or_else(|| de::Error::missing_field("at"))?;
        let need =
            |v: Option<String>, name: &'static str| v.ok_or_else(|| de::Error::missing_field(name));
        let input = match kind.ok_or_else(|| de::Error::missing_field("input"))? {
            Kind::Event => Input::Event {
                id: match &hashed {
                    Some(_) => String::new(),
                    None => need(id, "id")?,
                },
                event: event.ok_or_else(|| de::Error::missing_field("event"))?,
            },
            Kind::Advance => Input::Advance,
            Kind::Reconfigure => Input::Reconfigure {
                source: need(source, "source")?,
                origin: need(origin, "origin")?,
                resolved: resolved.flatten(),
            },
            Kind::AgentState => Input::AgentState {
                agent: need(agent, "agent")?,
                state: state.ok_or_else(|| de::Error::missing_field("state"))?,
                reason: reason.flatten(),
            },
        };
        Ok((TimedInput { at, input }, hashed))
    }
}

/// A journaled input as recovery hands it to `Core::replay`: an event's id comes hashed for the
/// idempotency window (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayInput {
    Event {
        at: Millis,
        id: HashedId,
        event: Event,
    },
    /// Every other input, as journaled.
    Other(TimedInput),
}

impl From<TimedInput> for ReplayInput {
    fn from(timed: TimedInput) -> ReplayInput {
        match timed.input {
            Input::Event { id, event } => ReplayInput::Event {
                at: timed.at,
                id: HashedId::new(&id),
                event,
            },
            input => ReplayInput::Other(TimedInput {
                at: timed.at,
                input,
            }),
        }
    }
}

/// Decode one journal record for replay: the fast path, else the derived readers (whose error
/// is the one returned).
pub fn decode_replay(payload: &[u8]) -> Result<ReplayInput, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let fast = de
        .deserialize_map(TimedInputVisitor { fast: true })
        .and_then(|read| de.end().map(|()| read));
    match fast {
        Ok((
            TimedInput {
                at,
                input: Input::Event { event, .. },
            },
            Some(id),
        )) => Ok(ReplayInput::Event { at, id, event }),
        Ok((timed, None)) if !matches!(timed.input, Input::Event { .. }) => {
            Ok(ReplayInput::Other(timed))
        }
        // An id on an input that is not an event (ignored, as the derived reader does), or the
        // fast path declined: read it again the derived way.
        _ => serde_json::from_slice::<TimedInput>(payload).map(ReplayInput::from),
    }
}

/// Reads an `Event` whose `type` is its first field without buffering it. Fails (for the caller
/// to fall back to `Event`'s derived reader) on anything else.
struct FastEvent;

impl<'de> DeserializeSeed<'de> for FastEvent {
    type Value = Event;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Event, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FastEvent {
    type Value = Event;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an event object whose first field is `type`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        if map.next_key::<&str>()? != Some("type") {
            return Err(de::Error::custom("`type` is not the first field"));
        }
        let tag = map.next_value::<&str>()?;
        let rest = MapAccessDeserializer::new(map);
        Ok(match tag {
            "interaction.arrived" => {
                let v = Arrived::deserialize(rest)?;
                Event::InteractionArrived {
                    interaction: v.interaction,
                    channel: v.channel,
                    queue: v.queue,
                    priority: v.priority,
                    skills: v.skills,
                    customer: v.customer,
                    attributes: v.attributes,
                }
            }
            "interaction.abandoned" => {
                let v = InteractionOnly::deserialize(rest)?;
                Event::InteractionAbandoned {
                    interaction: v.interaction,
                }
            }
            "interaction.ended" => {
                let v = Ended::deserialize(rest)?;
                Event::InteractionEnded {
                    interaction: v.interaction,
                    resolved: v.resolved,
                }
            }
            "interaction.rated" => {
                let v = Rated::deserialize(rest)?;
                Event::InteractionRated {
                    interaction: v.interaction,
                    score: v.score,
                }
            }
            "interaction.transferred" => {
                let v = Transferred::deserialize(rest)?;
                Event::InteractionTransferred {
                    interaction: v.interaction,
                    queue: v.queue,
                }
            }
            "interaction.escalated" => {
                let v = Escalated::deserialize(rest)?;
                Event::InteractionEscalated {
                    interaction: v.interaction,
                    min_tier: v.min_tier,
                }
            }
            "offer.accepted" => {
                let v = Accepted::deserialize(rest)?;
                Event::OfferAccepted {
                    interaction: v.interaction,
                    agent: v.agent,
                    offer: v.offer,
                }
            }
            "interaction.answered" => {
                let v = Answered::deserialize(rest)?;
                Event::InteractionAnswered {
                    interaction: v.interaction,
                    agent: v.agent,
                }
            }
            "offer.declined" => {
                let v = Declined::deserialize(rest)?;
                Event::OfferDeclined {
                    interaction: v.interaction,
                    agent: v.agent,
                    reason: v.reason,
                    offer: v.offer,
                }
            }
            "agent.login" => {
                let v = Login::deserialize(rest)?;
                Event::AgentLogin {
                    agent: v.agent,
                    address: v.address,
                    tiers: v.tiers,
                    skills: v.skills,
                    capacity: v.capacity,
                }
            }
            "agent.state" => {
                let v = AgentStateFields::deserialize(rest)?;
                Event::AgentState {
                    agent: v.agent,
                    state: v.state,
                    reason: v.reason,
                }
            }
            "agent.logout" => Event::AgentLogout {
                agent: AgentOnly::deserialize(rest)?.agent,
            },
            "agent.wrapup_done" => Event::AgentWrapupDone {
                agent: AgentOnly::deserialize(rest)?.agent,
            },
            _ => return Err(de::Error::custom("unknown event type")),
        })
    }
}

// The fields of each `Event` variant, with the same serde attributes as `crate::engine::Event`.
// A field added there fails to compile in `FastEvent`; a changed attribute or tag is caught by
// `every_event_kind_takes_the_fast_path_and_reads_back_what_was_written`.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Arrived {
    interaction: String,
    channel: Channel,
    #[serde(default)]
    queue: Option<String>,
    #[serde(default)]
    priority: Option<i32>,
    #[serde(default)]
    skills: Vec<String>,
    #[serde(default)]
    customer: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InteractionOnly {
    interaction: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ended {
    interaction: String,
    #[serde(default)]
    resolved: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rated {
    interaction: String,
    score: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Transferred {
    interaction: String,
    queue: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Escalated {
    interaction: String,
    min_tier: Tier,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answered {
    interaction: String,
    agent: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Accepted {
    interaction: String,
    agent: String,
    #[serde(default)]
    offer: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Declined {
    interaction: String,
    agent: String,
    reason: DeclineReason,
    #[serde(default)]
    offer: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    agent: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    tiers: Option<BTreeMap<String, Tier>>,
    #[serde(default)]
    skills: Option<Vec<String>>,
    #[serde(default)]
    capacity: Option<BTreeMap<Channel, u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentStateFields {
    agent: String,
    state: RequestedState,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentOnly {
    agent: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: serde_json::Value) -> Result<TimedInput, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    /// A config with something of every kind in it, as `config::parse` resolves it.
    fn resolved_config() -> crate::config::LoadedConfig {
        let text = "[server]\nidempotency_ids = 9\n\n\
            [[queue]]\nid = \"q\"\nchannels = [\"voice\", \"chat\"]\nstrategy = \"round-robin\"\n\
            max_wait_s = 60\noverflow = { queue = \"r\" }\n\
            schedule = { tz = \"Europe/Berlin\", mon = [\"08:00-12:00\", \"13:00-17:30\"] }\n\
            steps = [ { after_s = 0, tiers = [1] }, { after_s = 30, tiers = [1, 2] } ]\n\n\
            [[queue]]\nid = \"r\"\nchannels = [\"voice\", \"chat\"]\n\n\
            [[agent]]\nid = \"a1\"\naddress = \"sip:a1@pbx\"\ntiers = { q = 1, r = 2 }\n\
            skills = [\"de\"]\ncapacity = { chat = 3 }\n\n\
            [[rule]]\nwhen = { channel = \"chat\", lang = \"de\" }\nqueue = \"r\"\npriority = 5\n";
        crate::config::parse(text, "tierline.toml").expect("valid test config")
    }

    #[test]
    fn every_input_kind_reads_back_what_was_written() {
        let inputs = [
            Input::Event {
                id: "e1".into(),
                event: Event::AgentLogout { agent: "a1".into() },
            },
            Input::Advance,
            Input::Reconfigure {
                source: "[[queue]]\nid = \"q\"\n".into(),
                origin: "tierline.toml".into(),
                resolved: None,
            },
            Input::reconfigure(&resolved_config(), "tierline.toml"),
            Input::AgentState {
                agent: "a1".into(),
                state: RequestedState::NotReady,
                reason: Some("lunch".into()),
            },
            Input::AgentState {
                agent: "a2".into(),
                state: RequestedState::Available,
                reason: None,
            },
        ];
        for (at, input) in inputs.into_iter().enumerate() {
            let timed = TimedInput {
                at: at as u64 * 1_000,
                input,
            };
            let text = serde_json::to_string(&timed).unwrap();
            let back: TimedInput = serde_json::from_str(&text).unwrap();
            assert_eq!(back, timed, "{text}");
            if !matches!(timed.input, Input::Event { .. }) {
                let replay = decode_replay(text.as_bytes()).unwrap();
                assert_eq!(replay, ReplayInput::Other(timed), "{text}");
            }
        }
    }

    /// A reconfigure record exactly as this build writes it (`resolved_config`, at 5). Later builds
    /// must read it back to the same routing config: a field added to `RoutingConfig` (or in it)
    /// without `#[serde(default)]` (an `Option` needs none) fails here, and would fail recovery.
    const RECONFIGURE_RECORD: &str = r#"{"at":5,"input":"reconfigure","source":"[server]\nidempotency_ids = 9\n\n[[queue]]\nid = \"q\"\nchannels = [\"voice\", \"chat\"]\nstrategy = \"round-robin\"\nmax_wait_s = 60\noverflow = { queue = \"r\" }\nschedule = { tz = \"Europe/Berlin\", mon = [\"08:00-12:00\", \"13:00-17:30\"] }\nsteps = [ { after_s = 0, tiers = [1] }, { after_s = 30, tiers = [1, 2] } ]\n\n[[queue]]\nid = \"r\"\nchannels = [\"voice\", \"chat\"]\n\n[[agent]]\nid = \"a1\"\naddress = \"sip:a1@pbx\"\ntiers = { q = 1, r = 2 }\nskills = [\"de\"]\ncapacity = { chat = 3 }\n\n[[rule]]\nwhen = { channel = \"chat\", lang = \"de\" }\nqueue = \"r\"\npriority = 5\n","origin":"tierline.toml","resolved":{"routing":{"seed":0,"channels":[{"capacity":1,"exclusive":true},{"capacity":3,"exclusive":false},{"capacity":5,"exclusive":false},{"capacity":1,"exclusive":false}],"queues":[{"id":"q","channels":["voice","chat"],"strategy":"round-robin","sla_ms":30000,"offer_timeout_ms":15000,"wrap_up_ms":10000,"short_abandon_ms":5000,"max_wait_ms":60000,"overflow":{"queue":"r"},"max_waiting":null,"schedule":{"tz":"Europe/Berlin","open":[[[480,720],[780,1050]],[],[],[],[],[],[]]},"closed_target":null,"steps":[{"after_ms":0,"tiers":[1],"priority_boost":0,"skip_if_no_agents":false},{"after_ms":30000,"tiers":[1,2],"priority_boost":0,"skip_if_no_agents":false}],"escalation_priority_boost":0,"reject_delay_ms":5000,"busy_delay_ms":10000,"no_answer_delay_ms":10000,"max_no_answer":3,"count_declines":true,"drain_to":null},{"id":"r","channels":["voice","chat"],"strategy":"longest-idle","sla_ms":30000,"offer_timeout_ms":15000,"wrap_up_ms":10000,"short_abandon_ms":5000,"max_wait_ms":null,"overflow":null,"max_waiting":null,"schedule":null,"closed_target":null,"steps":[{"after_ms":0,"tiers":[1],"priority_boost":0,"skip_if_no_agents":false}],"escalation_priority_boost":0,"reject_delay_ms":5000,"busy_delay_ms":10000,"no_answer_delay_ms":10000,"max_no_answer":3,"count_declines":true,"drain_to":null}],"agents":[{"id":"a1","address":"sip:a1@pbx","tiers":{"q":1,"r":2},"skills":["de"],"capacity":{"chat":3}}],"rules":[{"when":{"channel":"chat","lang":"de"},"queue":"r","priority":5}],"default_queue":null,"limits":{"max_live_interactions":2000000,"retain_finished":100000,"max_history":64,"max_agents":200000}},"idempotency_ids":9}}"#;

    #[test]
    fn a_reconfigure_record_of_this_build_stays_readable() {
        use crate::config::{Overflow, Strategy};
        let ReplayInput::Other(TimedInput {
            at: 5,
            input:
                Input::Reconfigure {
                    source,
                    origin,
                    resolved: Some(resolved),
                },
        }) = decode_replay(RECONFIGURE_RECORD.as_bytes()).unwrap()
        else {
            panic!("not a reconfigure with its resolved config");
        };
        assert!(
            source.starts_with("[server]\nidempotency_ids = 9\n"),
            "{source}"
        );
        assert_eq!(origin, "tierline.toml");
        assert_eq!(resolved.idempotency_ids, 9);
        assert!(
            resolved.daemon.is_none(),
            "daemon settings are never journaled"
        );
        let routing = &resolved.routing;
        let ids: Vec<&str> = routing.queues.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids, ["q", "r"]);
        let q = &routing.queues[0];
        assert_eq!(q.channels, [Channel::Voice, Channel::Chat]);
        assert_eq!(q.strategy, Strategy::RoundRobin);
        assert_eq!(q.max_wait_ms, Some(60_000));
        assert_eq!(q.overflow, Some(Overflow::Queue("r".into())));
        let schedule = q.schedule.as_ref().unwrap();
        assert_eq!(schedule.tz, chrono_tz::Europe::Berlin);
        assert_eq!(schedule.open[0], [(480, 720), (780, 1050)]);
        assert_eq!(q.steps.len(), 2);
        assert_eq!(q.steps[1].after_ms, 30_000);
        assert_eq!(routing.agents[0].capacity, [(Channel::Chat, 3)].into());
        assert_eq!(
            routing.agents[0].tiers,
            [("q".into(), 1), ("r".into(), 2)].into()
        );
        assert_eq!(routing.rules[0].priority, Some(5));
        assert_eq!(routing.limits, crate::config::Limits::default());
    }

    #[test]
    fn a_repeated_resolved_config_is_refused_and_a_null_one_is_none() {
        let record = r#"{"at":1,"input":"reconfigure","source":"","origin":"o","resolved":null}"#;
        let expected = ReplayInput::Other(TimedInput {
            at: 1,
            input: Input::Reconfigure {
                source: String::new(),
                origin: "o".into(),
                resolved: None,
            },
        });
        assert_eq!(decode_replay(record.as_bytes()).unwrap(), expected);
        let twice = r#"{"at":1,"input":"reconfigure","source":"","origin":"o","resolved":null,"resolved":null}"#;
        let err = decode_replay(twice.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("duplicate field `resolved`"), "{err}");
    }

    #[test]
    fn field_order_and_unknown_fields_do_not_matter() {
        let got = read(
            json!({"event": {"type": "agent.logout", "agent": "a1"}, "future": [1, 2],
                              "id": "e1", "input": "event", "at": 5}),
        )
        .unwrap();
        assert_eq!(
            got,
            TimedInput {
                at: 5,
                input: Input::Event {
                    id: "e1".into(),
                    event: Event::AgentLogout { agent: "a1".into() }
                }
            }
        );
    }

    #[test]
    fn a_missing_or_repeated_field_is_named() {
        let err = read(json!({"at": 5, "input": "event", "id": "e1"})).unwrap_err();
        assert!(err.contains("missing field `event`"), "{err}");
        let err = read(json!({"input": "advance"})).unwrap_err();
        assert!(err.contains("missing field `at`"), "{err}");
        let err = serde_json::from_str::<TimedInput>(r#"{"at":1,"at":2,"input":"advance"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate field `at`"), "{err}");
        let err = read(json!({"at": 1, "input": "teleport"})).unwrap_err();
        assert!(err.contains("unknown variant `teleport`"), "{err}");
    }

    fn fast(payload: &str) -> Result<TimedInput, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(payload);
        let (mut timed, hashed) = de.deserialize_map(TimedInputVisitor { fast: true })?;
        de.end()?;
        if let (Input::Event { id, .. }, Some(hashed)) = (&mut timed.input, hashed) {
            *id = hashed.as_str().to_string();
        }
        Ok(timed)
    }

    fn every_event_kind() -> Vec<Event> {
        let arrived = |full: bool| Event::InteractionArrived {
            interaction: "c1".into(),
            channel: crate::config::Channel::Chat,
            queue: full.then(|| "support".into()),
            priority: full.then_some(-3),
            skills: if full { vec!["de".into()] } else { vec![] },
            customer: full.then(|| "+49 30 1234".into()),
            attributes: if full {
                [("vip".to_string(), "yes \"really\"".to_string())].into()
            } else {
                Default::default()
            },
        };
        let login = |full: bool| Event::AgentLogin {
            agent: "a1".into(),
            address: full.then(|| "sip:a1@pbx".into()),
            tiers: full.then(|| [("support".to_string(), 2)].into()),
            skills: full.then(|| vec!["fr".into()]),
            capacity: full.then(|| [(crate::config::Channel::Voice, 1)].into()),
        };
        vec![
            arrived(true),
            arrived(false),
            Event::InteractionAbandoned {
                interaction: "c1".into(),
            },
            Event::InteractionEnded {
                interaction: "c1".into(),
                resolved: Some(false),
            },
            Event::InteractionEnded {
                interaction: "c1".into(),
                resolved: None,
            },
            Event::InteractionRated {
                interaction: "c1".into(),
                score: 4,
            },
            Event::InteractionTransferred {
                interaction: "c1".into(),
                queue: "billing".into(),
            },
            Event::InteractionEscalated {
                interaction: "c1".into(),
                min_tier: 2,
            },
            Event::OfferAccepted {
                interaction: "c1".into(),
                agent: "a1".into(),
                offer: None,
            },
            Event::OfferAccepted {
                interaction: "c1".into(),
                agent: "a1".into(),
                offer: Some("o7".into()),
            },
            Event::InteractionAnswered {
                interaction: "c1".into(),
                agent: "a1".into(),
            },
            Event::OfferDeclined {
                interaction: "c1".into(),
                agent: "a1".into(),
                reason: DeclineReason::NoAnswer,
                offer: None,
            },
            Event::OfferDeclined {
                interaction: "c1".into(),
                agent: "a1".into(),
                reason: DeclineReason::NoAnswer,
                offer: Some("o7".into()),
            },
            login(true),
            login(false),
            Event::AgentState {
                agent: "a1".into(),
                state: RequestedState::NotReady,
                reason: Some("lunch".into()),
            },
            Event::AgentState {
                agent: "a1".into(),
                state: RequestedState::Offline,
                reason: None,
            },
            Event::AgentLogout { agent: "a1".into() },
            Event::AgentWrapupDone { agent: "a1".into() },
        ]
    }

    #[test]
    fn every_event_kind_takes_the_fast_path_and_reads_back_what_was_written() {
        let kinds = every_event_kind();
        let mut names: Vec<&str> = kinds.iter().map(|e| e.type_name()).collect();
        names.dedup();
        assert_eq!(names.len(), 13, "a new Event kind needs a FastEvent arm");
        for (n, event) in kinds.into_iter().enumerate() {
            let timed = TimedInput {
                at: n as u64,
                input: Input::Event {
                    id: format!("e{n}"),
                    event,
                },
            };
            let text = serde_json::to_string(&timed).unwrap();
            // Not just decodable: decoded by the fast path itself, to the same value.
            assert_eq!(fast(&text).unwrap(), timed, "{text}");
            match decode_replay(text.as_bytes()).unwrap() {
                ReplayInput::Event { at, id, event } => {
                    assert_eq!(
                        TimedInput {
                            at,
                            input: Input::Event {
                                id: id.as_str().to_string(),
                                event
                            }
                        },
                        timed
                    );
                    assert_eq!(id, HashedId::new(&format!("e{n}")));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn what_the_fast_path_does_not_take_is_read_by_the_derived_reader() {
        // `type` not first: the fast path declines, the derived reader accepts.
        let late_tag =
            r#"{"at":7,"input":"event","id":"e1","event":{"agent":"a1","type":"agent.logout"}}"#;
        assert!(fast(late_tag).is_err());
        let expected = ReplayInput::Event {
            at: 7,
            id: HashedId::new("e1"),
            event: Event::AgentLogout { agent: "a1".into() },
        };
        assert_eq!(decode_replay(late_tag.as_bytes()).unwrap(), expected);
        // An escaped key: same.
        let escaped = r#"{"at":7,"input":"event","id":"e1","event":{"\u0074ype":"agent.logout","agent":"a1"}}"#;
        assert_eq!(decode_replay(escaped.as_bytes()).unwrap(), expected);
        // Inputs that are not events pass through unchanged.
        let advance = r#"{"at":9,"input":"advance"}"#;
        assert_eq!(
            decode_replay(advance.as_bytes()).unwrap(),
            ReplayInput::Other(TimedInput {
                at: 9,
                input: Input::Advance
            })
        );
    }

    #[test]
    fn a_bad_record_gets_the_derived_readers_error() {
        for bad in [
            r#"{"at":1,"input":"event","id":"e1","event":{"type":"agent.logout","agent":"a1","x":1}}"#,
            r#"{"at":1,"input":"event","id":"e1","event":{"type":"agent.teleport","agent":"a1"}}"#,
            r#"{"at":1,"input":"event","id":"e1","event":{"type":"offer.declined","interaction":"c","agent":"a"}}"#,
            r#"{"at":1,"input":"event","id":"e1","event":{"type":"agent.logout","agent":"a1"}} trailing"#,
            r#"{"at":1,"input":"event","id":"e1","event":{"type":"agent.logout","agent":"a1"}"#,
        ] {
            let derived = serde_json::from_str::<TimedInput>(bad)
                .unwrap_err()
                .to_string();
            let got = decode_replay(bad.as_bytes()).unwrap_err().to_string();
            assert_eq!(got, derived, "{bad}");
        }
    }
}
