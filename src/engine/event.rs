//! Inputs to the engine: what the PBX, chat platform or an admin says happened.
//!
//! These are the `type`-tagged JSON objects of `POST /v1/events` minus the envelope `id` (the
//! idempotency key belongs to the daemon, not the engine). Unknown fields are refused so a typo
//! never passes silently.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::config::{Channel, Tier};

/// Why an agent declined an offer. Each reason has its own back-off delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The agent pressed "reject" (`reject_delay_s`).
    Rejected,
    /// The agent's device was busy (`busy_delay_s`).
    Busy,
    /// Nobody answered (`no_answer_delay_s`, counts towards `max_no_answer`).
    NoAnswer,
}

/// The states an agent (or an admin) can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestedState {
    Available,
    NotReady,
    Offline,
}

/// Longest id an event may create (interaction, agent, customer, skill name, attribute key): ids
/// are kept for the life of the interaction or agent and travel in every decision and read, so
/// each has a bound, like the envelope's event id.
pub const MAX_ID_LEN: usize = 256;

/// Longest attribute value (a caller's URI, a CRM reference…).
pub const MAX_ATTRIBUTE_LEN: usize = 1024;

/// The first 32 characters of a text a caller sent, for a message that must stay short whatever
/// the request carried (`(it starts `…`)`).
pub(crate) fn start_of(value: &str) -> &str {
    match value.char_indices().nth(32) {
        Some((end, _)) => &value[..end],
        None => value,
    }
}

/// A name a caller sent, as an error message shows it: in full between backticks when no longer
/// than any id the engine keeps (`MAX_ID_LEN`), else its length and its start, so an unknown
/// 900 KB queue name makes a short answer, not a 900 KB one. Control characters are escaped
/// (`Printable`).
pub(crate) struct Named<'a>(pub &'a str);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= MAX_ID_LEN {
            write!(f, "`{}`", Printable(self.0))
        } else {
            write!(
                f,
                "of {} bytes (it starts `{}`)",
                self.0.len(),
                Printable(start_of(self.0))
            )
        }
    }
}

/// Text a caller sent, with each control character escaped as Rust writes it (`\n`, `\u{0}`):
/// an error message echoing an unknown name goes to logs and terminals, where a raw newline
/// would split the line and an escape sequence would drive the terminal.
pub(crate) struct Printable<'a>(pub &'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in self.0.split_inclusive(char::is_control) {
            match part.char_indices().last() {
                Some((at, c)) if c.is_control() => {
                    f.write_str(&part[..at])?;
                    write!(f, "{}", c.escape_default())?;
                }
                _ => f.write_str(part)?,
            }
        }
        Ok(())
    }
}

/// `InvalidValue` unless `value` is at most `max` bytes.
pub(crate) fn check_len(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), super::EngineError> {
    check_part_len(field, || format!("`{field}`"), value, max)
}

/// `check_len` for entry `index` of list `field`: the message names the entry (`skills[2]`).
pub(crate) fn check_item_len(
    field: &'static str,
    index: usize,
    value: &str,
    max: usize,
) -> Result<(), super::EngineError> {
    check_part_len(field, || format!("`{field}[{index}]`"), value, max)
}

/// `check_len` for a key and its value in map `field`: the message names the entry
/// (`attributes.note`), or for a key over `max_key` says it is a key and how it starts.
pub(crate) fn check_entry_len(
    field: &'static str,
    key: &str,
    value: &str,
    max_key: usize,
    max_value: usize,
) -> Result<(), super::EngineError> {
    check_part_len(field, || format!("a key of `{field}`"), key, max_key)?;
    check_part_len(field, || format!("`{field}.{key}`"), value, max_value)
}

/// `InvalidValue` for `field` unless `value` is at most `max` bytes; `what` names the value in
/// the message: the field, or which of its entries.
fn check_part_len(
    field: &'static str,
    what: impl FnOnce() -> String,
    value: &str,
    max: usize,
) -> Result<(), super::EngineError> {
    if value.len() > max {
        return Err(super::EngineError::InvalidValue {
            field,
            message: format!(
                "{} is {} bytes long; at most {max} are accepted (it starts `{}`)",
                what(),
                value.len(),
                Printable(start_of(value))
            ),
        });
    }
    // Ids (and keys, reasons) go to the PBX, to logs and into metric labels as they are: a
    // control character there (a NUL, a newline) is never meant, and splits a log line.
    if max <= MAX_ID_LEN {
        check_no_control(field, what, value)?;
    }
    Ok(())
}

/// `InvalidValue` for `field` if `value` holds a control character (Unicode category Cc: C0,
/// DEL, C1), naming the first and its byte offset.
pub(crate) fn check_no_control(
    field: &'static str,
    what: impl FnOnce() -> String,
    value: &str,
) -> Result<(), super::EngineError> {
    match control_character(value) {
        None => Ok(()),
        Some(held) => Err(super::EngineError::InvalidValue {
            field,
            message: format!(
                "{} {held}: ids, keys, reasons and addresses are printable text",
                what()
            ),
        }),
    }
}

/// The first control character (Unicode category Cc) in `value` and its byte offset.
pub(crate) fn first_control(value: &str) -> Option<(usize, char)> {
    value.char_indices().find(|(_, c)| c.is_control())
}

/// `holds a control character (U+000A at byte 3)` for the first in `value`, if any: how every
/// refusal of an id, key, reason or address says it.
pub(crate) fn control_character(value: &str) -> Option<String> {
    first_control(value).map(|(at, c)| {
        format!(
            "holds a control character (U+{:04X} at byte {at})",
            c as u32
        )
    })
}

/// One input event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Event {
    /// A call or chat has arrived and wants an agent.
    #[serde(rename = "interaction.arrived")]
    InteractionArrived {
        interaction: String,
        channel: Channel,
        /// Names the queue directly (routing rules are skipped).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<i32>,
        /// An agent must have all of these (`null` = none).
        #[serde(
            default,
            deserialize_with = "null_as_empty",
            skip_serializing_if = "Vec::is_empty"
        )]
        skills: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        customer: Option<String>,
        /// Distinct keys (`null` = none).
        #[serde(
            default,
            deserialize_with = "unique_keys",
            skip_serializing_if = "BTreeMap::is_empty"
        )]
        attributes: BTreeMap<String, String>,
    },
    /// The customer hung up or left the chat before it ended normally.
    #[serde(rename = "interaction.abandoned")]
    InteractionAbandoned { interaction: String },
    /// A connected interaction ended; wrap-up starts on the agent's slot.
    #[serde(rename = "interaction.ended")]
    InteractionEnded {
        interaction: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resolved: Option<bool>,
    },
    /// A satisfaction score (1–5) for an interaction that was connected.
    #[serde(rename = "interaction.rated")]
    InteractionRated { interaction: String, score: u8 },
    /// The agent moved a connected interaction to another queue.
    #[serde(rename = "interaction.transferred")]
    InteractionTransferred { interaction: String, queue: String },
    /// The agent sends a connected interaction back to its queue for tiers ≥ `min_tier`.
    #[serde(rename = "interaction.escalated")]
    InteractionEscalated { interaction: String, min_tier: Tier },
    /// `offer`: the offer id of the `offer` decision, when the PBX has it. Given, it must be the
    /// pending offer: a late answer to an earlier offer of the same call to the same agent is
    /// refused instead of being taken for the current one.
    #[serde(rename = "offer.accepted")]
    OfferAccepted {
        interaction: String,
        agent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offer: Option<String>,
    },
    /// The agent answered the interaction without a pending offer of it to that agent: a phone
    /// that rang on after tierline let go of the offer (expired, revoked), or a call the PBX
    /// connected on its own. A waiting or offered interaction is connected to the agent (an offer
    /// of it to another agent is revoked, `answered_elsewhere`); the agent must have room for it,
    /// except that an agent holding only ringing offers that answers an exclusive interaction
    /// has those offers taken back (`agent_answered_other`).
    #[serde(rename = "interaction.answered")]
    InteractionAnswered { interaction: String, agent: String },
    #[serde(rename = "offer.declined")]
    OfferDeclined {
        interaction: String,
        agent: String,
        reason: DeclineReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offer: Option<String>,
    },
    /// An agent logs in (becomes available). Fields given here override the roster.
    #[serde(rename = "agent.login")]
    AgentLogin {
        agent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        #[serde(
            default,
            deserialize_with = "unique_keys_or_null",
            skip_serializing_if = "Option::is_none"
        )]
        tiers: Option<BTreeMap<String, Tier>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skills: Option<Vec<String>>,
        #[serde(
            default,
            deserialize_with = "unique_keys_or_null",
            skip_serializing_if = "Option::is_none"
        )]
        capacity: Option<BTreeMap<Channel, u32>>,
    },
    #[serde(rename = "agent.state")]
    AgentState {
        agent: String,
        state: RequestedState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    #[serde(rename = "agent.logout")]
    AgentLogout { agent: String },
    /// The agent finished wrap-up early (all of its wrap-up slots end now).
    #[serde(rename = "agent.wrapup_done")]
    AgentWrapupDone { agent: String },
}

impl Event {
    /// The event's `type` string, as on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::InteractionArrived { .. } => "interaction.arrived",
            Event::InteractionAbandoned { .. } => "interaction.abandoned",
            Event::InteractionEnded { .. } => "interaction.ended",
            Event::InteractionRated { .. } => "interaction.rated",
            Event::InteractionTransferred { .. } => "interaction.transferred",
            Event::InteractionEscalated { .. } => "interaction.escalated",
            Event::OfferAccepted { .. } => "offer.accepted",
            Event::InteractionAnswered { .. } => "interaction.answered",
            Event::OfferDeclined { .. } => "offer.declined",
            Event::AgentLogin { .. } => "agent.login",
            Event::AgentState { .. } => "agent.state",
            Event::AgentLogout { .. } => "agent.logout",
            Event::AgentWrapupDone { .. } => "agent.wrapup_done",
        }
    }
}

#[cfg(test)]
impl Event {
    /// A voice call `interaction` arriving in `queue`, with nothing else set (unit tests).
    pub(crate) fn voice_call(interaction: &str, queue: &str) -> Event {
        Event::InteractionArrived {
            interaction: interaction.into(),
            channel: crate::config::Channel::Voice,
            queue: Some(queue.into()),
            priority: None,
            skills: vec![],
            customer: None,
            attributes: Default::default(),
        }
    }
}

/// A list where `null` means empty.
fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A map whose keys must be distinct: serde's maps keep the last of two equal keys without a
/// word, and `{"category":"complaint","category":"x"}` must not quietly route as `x`. `null` is
/// the empty map.
fn unique_keys<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + fmt::Debug,
    V: Deserialize<'de>,
{
    Ok(unique_keys_or_null(d)?.unwrap_or_default())
}

/// `unique_keys`, with `null` kept as `None`.
fn unique_keys_or_null<'de, D, K, V>(d: D) -> Result<Option<BTreeMap<K, V>>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + fmt::Debug,
    V: Deserialize<'de>,
{
    struct Unique<K, V>(PhantomData<(K, V)>);

    impl<'de, K, V> Visitor<'de> for Unique<K, V>
    where
        K: Deserialize<'de> + Ord + fmt::Debug,
        V: Deserialize<'de>,
    {
        type Value = Option<BTreeMap<K, V>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object with distinct keys, or null")
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<K>()? {
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format_args!(
                        "key {key:?} appears twice; send it once"
                    )));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(Some(out))
        }
    }

    d.deserialize_option(Unique(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::{Named, Printable};

    #[test]
    fn a_name_echoed_in_an_error_shows_its_control_characters_escaped() {
        assert_eq!(Printable("plain").to_string(), "plain");
        assert_eq!(
            Printable("a\nb\u{0}c\u{1b}[2J").to_string(),
            "a\\nb\\u{0}c\\u{1b}[2J"
        );
        assert_eq!(Printable("\t").to_string(), "\\t");
        assert_eq!(Printable("é\u{85}").to_string(), "é\\u{85}");
        let unknown = crate::engine::EngineError::UnknownAgent {
            agent: "bob\r\nX-Injected: 1".into(),
        };
        assert_eq!(
            unknown.to_string(),
            "unknown agent `bob\\r\\nX-Injected: 1`"
        );
        let long = format!("\n{}", "q".repeat(300));
        let shown = Named(&long).to_string();
        assert!(
            shown.starts_with("of 301 bytes (it starts `\\nqqq"),
            "{shown}"
        );
    }
}
