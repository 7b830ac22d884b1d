//! JSON request bodies, read so that each kind of mistake has its own answer: not JSON
//! (415 `unsupported_media_type`), too large (413), too slow to arrive (408), not valid JSON
//! (400 `malformed_json`), a key given twice (400 `duplicate_key`: which value was meant?), or
//! JSON of the wrong shape (422 `invalid_field`, with the field named in `details`).

use super::error::ApiError;
use super::Settings;
use crate::domain::refusal::Refusal;
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

pub struct Body<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    let Some(ct) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let timeout = req
            .app_data::<web::Data<Settings>>()
            .map_or(std::time::Duration::from_secs(10), |s| s.body_timeout);
        // The size limit is actix's PayloadConfig (see `configure`).
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json {
                return Err(Refusal::UnsupportedMediaType.into());
            }
            let bytes = tokio::time::timeout(timeout, bytes)
                .await
                .map_err(|_| Refusal::BodyTimeout {
                    secs: timeout.as_secs(),
                })?
                .map_err(|e| match e.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => Refusal::PayloadTooLarge { limit: 0 },
                    _ => Refusal::UnreadableBody,
                })?;
            Ok(Body(parse(&bytes)?))
        })
    }
}

/// Parses a body: strict JSON first (syntax, duplicate keys), then its shape.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Refusal> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict(&duplicate)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| match duplicate.take() {
            Some(key) => Refusal::DuplicateKey { key },
            None => Refusal::MalformedJson {
                problem: e.to_string(),
            },
        })?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.inner().to_string();
        let named = inner.split('`').nth(1).unwrap_or_default().to_owned();
        let path = e.path().to_string();
        let (field, message) = if inner.starts_with("unknown field") {
            (join(&path, &named), "不认识这个字段")
        } else if inner.starts_with("missing field") {
            (join(&path, &named), "缺少这一项")
        } else {
            (path, "这一项的值不符合要求")
        };
        Refusal::field(if field == "." { "body".into() } else { field }, message)
    })
}

/// `outer.inner`, or just `inner` at the top level (and `path` itself when it already names it).
fn join(path: &str, name: &str) -> String {
    match path {
        "." | "" => name.to_owned(),
        p if p == name || p.ends_with(&format!(".{name}")) => p.to_owned(),
        p => format!("{p}.{name}"),
    }
}

/// Builds a JSON value like serde_json's own, but refuses a key that appears twice in an
/// object (noting it in the cell), where serde_json would keep the last.
struct Strict<'a>(&'a RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
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

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict(self.0))? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Strict(self.0))?;
            if out.contains_key(&key) {
                *self.0.borrow_mut() = Some(key);
                return Err(de::Error::custom("duplicate key"));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        choices: Vec<String>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        answers: Vec<Inner>,
    }

    fn code_and_details(text: &str) -> (&'static str, Option<Value>) {
        let e = parse::<Outer>(text.as_bytes()).unwrap_err();
        (e.code(), e.details())
    }

    #[test]
    fn a_key_given_twice_is_refused_even_deep_inside() {
        let (code, details) = code_and_details(r#"{"name":"a","name":"b","answers":[]}"#);
        assert_eq!(code, "duplicate_key");
        assert_eq!(details, Some(serde_json::json!({"key": "name"})));
        let (code, _) =
            code_and_details(r#"{"name":"a","answers":[{"choices":[],"choices":["A"]}]}"#);
        assert_eq!(code, "duplicate_key");
    }

    #[test]
    fn syntax_and_shape_are_told_apart_and_the_field_is_named() {
        assert_eq!(code_and_details(r#"{"name": "#).0, "malformed_json");
        assert_eq!(
            code_and_details(r#"{"name":"a","answers":[]} x"#).0,
            "malformed_json"
        );
        let field = |t: &str| code_and_details(t).1.unwrap()["field"].clone();
        assert_eq!(field(r#"{"name":7,"answers":[]}"#), "name");
        assert_eq!(field(r#"{"answers":[]}"#), "name");
        assert_eq!(
            field(r#"{"name":"a","answers":[],"colour":"red"}"#),
            "colour"
        );
        assert_eq!(
            field(r#"{"name":"a","answers":[{"choices":[1]}]}"#),
            "answers[0].choices[0]"
        );
        assert_eq!(field("[]"), "body");
        assert_eq!(
            code_and_details(r#"{"name":7,"answers":[]}"#).0,
            "invalid_field"
        );
    }

    #[test]
    fn well_formed_bodies_parse() {
        let o: Outer = parse(br#"{"name":"a","answers":[{"choices":["A","B"]}]}"#).unwrap();
        assert_eq!(o.answers[0].choices, ["A", "B"]);
    }
}
