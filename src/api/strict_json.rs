//! JSON into a `serde_json::Value`, refusing an object that names a key twice.
//!
//! `serde_json::Value` keeps the last of two equal keys and says nothing, so
//! `{"type":"agent.logout","type":"agent.login"}` would log an agent in. JSON (RFC 8259) only
//! says names SHOULD be unique; tierline refuses such a body with 422 `duplicate_field`, naming
//! the key and where it is, as it refuses any other field it cannot take at face value.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::error::ApiError;

/// Parse `bytes` as JSON (400 `malformed_json` on a syntax error, 422 `duplicate_field` when an
/// object repeats a key). A leading UTF-8 byte order mark is skipped, as RFC 8259 §8.1 lets a
/// parser do (some Windows tools write one); positions in errors count from after it.
pub fn from_slice(bytes: &[u8]) -> Result<Value, ApiError> {
    let whole = bytes.len();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // serde_json would call a stray byte outside a string a syntax error ("invalid unicode code
    // point", "expected value"); say what it is. Only bodies the callers' fast parse refused get
    // here, so valid ones never pay for this pass.
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ApiError::bad_request(
            "invalid_utf8",
            format!(
                "the body is not UTF-8: the bytes at offset {} are not a UTF-8 character",
                whole - bytes.len() + e.valid_up_to()
            ),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::empty_json());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    value.map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::unprocessable(
            "duplicate_field",
            format!(
                "line {}, column {}: {}",
                e.line(),
                e.column(),
                super::error::strip_position(&e.to_string())
            ),
        ),
        _ => ApiError::malformed_json(&e),
    })
}

struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "field `{key}` appears twice in one object; send it once"
                )));
            }
            let value = map.next_value_seed(StrictValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_empty_body_is_named_empty_not_column_0() {
        let api = from_slice(b"").unwrap_err();
        assert_eq!(api.body.code, "malformed_json");
        assert_eq!(
            api.body.message,
            "malformed JSON: the body is empty (expected a JSON value)"
        );
        // A body that ends early elsewhere keeps its position.
        let message = from_slice(b"{\"id\": ").unwrap_err().body.message;
        assert!(
            message.starts_with("malformed JSON at line 1, column 7:"),
            "{message}"
        );
    }

    #[test]
    fn values_read_as_serde_json_reads_them() {
        let text = br#"{"a":[1,-2,3.5,"x",true,null,{"b":{}}],"c":18446744073709551615}"#;
        assert_eq!(
            from_slice(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
    }

    #[test]
    fn a_repeated_key_is_refused_naming_it_at_any_depth() {
        for (text, key) in [
            (r#"{"type":"agent.logout","type":"agent.login"}"#, "type"),
            (r#"[{"id":"e1"},{"attributes":{"k":"a","k":"b"}}]"#, "k"),
        ] {
            let e = from_slice(text.as_bytes()).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(e.body.code, "duplicate_field", "{text}");
            let message = &e.body.message;
            assert!(message.contains(&format!("`{key}`")), "{message}");
            assert!(message.starts_with("line 1, column "), "{message}");
        }
        // Equal keys in different objects are fine.
        assert_eq!(
            from_slice(br#"[{"k":1},{"k":2}]"#).unwrap(),
            json!([{"k":1},{"k":2}])
        );
    }

    #[test]
    fn syntax_errors_stay_malformed_json() {
        for text in [&br#"{"a":1,}"#[..], br#"{"a":1} x"#, b""] {
            let e = from_slice(text).unwrap_err();
            assert_eq!(e.body.code, "malformed_json", "{e:?}");
        }
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped_but_not_one_elsewhere() {
        assert_eq!(
            from_slice(b"\xEF\xBB\xBF{\"a\":1}").unwrap(),
            json!({"a": 1})
        );
        let e = from_slice(b"{\"a\":1}\xEF\xBB\xBF").unwrap_err();
        assert_eq!(e.body.code, "malformed_json", "{e:?}");
    }
}
