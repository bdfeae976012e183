//! Reading request bodies as JSON objects, with failures each dialect words its own way.
//!
//! Bodies are read by hand rather than with actix's `Json` extractor so that every
//! failure (too large, malformed, wrong shape) reaches the dialect's error mapping
//! instead of actix's plain-text defaults, and so that the content type is not
//! required (some clients omit it).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web;
use serde_json::{Map, Value};

/// Why a body could not be read as a JSON object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Longer than the configured limit (bytes).
    TooLarge { limit: usize },
    /// The connection failed mid-body.
    Incomplete,
    /// Not JSON.
    Malformed,
    /// JSON, but not an object.
    NotAnObject,
    /// The body did not arrive within the configured time (a stalled or trickling
    /// client holding a connection).
    TimedOut,
}

impl BodyError {
    /// The status a dialect without wording of its own answers with: 413 or 400.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::Incomplete | Self::Malformed | Self::NotAnObject => StatusCode::BAD_REQUEST,
        }
    }

    /// Plain wording, for dialects whose documents give none.
    pub fn message(&self) -> String {
        match self {
            Self::TooLarge { limit } => format!("Request body too large (limit {limit} bytes)"),
            Self::Incomplete => "Request body could not be read".into(),
            Self::Malformed => "Malformed JSON body".into(),
            Self::NotAnObject => "Request body must be a JSON object".into(),
            Self::TimedOut => "Request body not received in time".into(),
        }
    }
}

/// Reads the whole body, at most `limit` bytes within `timeout`, as a JSON object. An
/// empty body reads as `{}`, as body-parsing middleware commonly does, so that it gets
/// the same "field is required" errors as an empty object.
pub async fn read_json_object(
    payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<JsonObject, BodyError> {
    let bytes = actix_web::rt::time::timeout(timeout, payload.to_bytes_limited(limit))
        .await
        .map_err(|_| BodyError::TimedOut)?
        .map_err(|_| BodyError::TooLarge { limit })?
        .map_err(|_| BodyError::Incomplete)?;
    parse_json_object(&bytes)
}

/// Parses `bytes` as a JSON object (empty or blank input reads as `{}`).
pub fn parse_json_object(bytes: &[u8]) -> Result<JsonObject, BodyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(JsonObject(Map::new()));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(JsonObject(map)),
        Ok(_) => Err(BodyError::NotAnObject),
        Err(_) => Err(BodyError::Malformed),
    }
}

/// What is wrong with one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldProblem {
    Missing,
    NotAString,
    Empty,
}

/// Joi's wording of a field problem, which the Node applications of several dialects
/// answered with.
pub fn joi_message(field: &str, problem: FieldProblem) -> String {
    match problem {
        FieldProblem::Missing => format!("\"{field}\" is required"),
        FieldProblem::NotAString => format!("\"{field}\" must be a string"),
        FieldProblem::Empty => format!("\"{field}\" is not allowed to be empty"),
    }
}

/// A request body: a JSON object whose fields are taken out by name.
#[derive(Clone, Debug, Default)]
pub struct JsonObject(Map<String, Value>);

impl JsonObject {
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A required, non-empty string. `null` counts as the wrong type.
    pub fn string(&self, key: &str) -> Result<&str, FieldProblem> {
        match self.0.get(key) {
            None => Err(FieldProblem::Missing),
            Some(Value::String(s)) if s.is_empty() => Err(FieldProblem::Empty),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(FieldProblem::NotAString),
        }
    }

    /// An optional string: absent and `null` are `None`.
    pub fn optional_string(&self, key: &str) -> Result<Option<&str>, FieldProblem> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(FieldProblem::NotAString),
        }
    }
}

/// Collects every field problem of one body, so a client learns all of them at once.
pub struct Fields<'o> {
    object: &'o JsonObject,
    problems: Vec<(&'static str, FieldProblem)>,
}

impl<'o> Fields<'o> {
    pub fn new(object: &'o JsonObject) -> Self {
        Self {
            object,
            problems: Vec::new(),
        }
    }

    /// A required, non-empty string. On a problem it is recorded and `""` returned,
    /// which is never used: [`Fields::finish`] then fails.
    pub fn required(&mut self, key: &'static str) -> &'o str {
        self.object.string(key).unwrap_or_else(|problem| {
            self.problems.push((key, problem));
            ""
        })
    }

    pub fn optional(&mut self, key: &'static str) -> Option<&'o str> {
        self.object
            .optional_string(key)
            .map_err(|problem| self.problems.push((key, problem)))
            .ok()
            .flatten()
    }

    /// The problems in field order, or `Ok` when there were none.
    pub fn finish(self) -> Result<(), Vec<(&'static str, FieldProblem)>> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_blank_bodies_read_as_empty_objects() {
        assert!(!parse_json_object(b"").unwrap().has("x"));
        assert!(!parse_json_object(b" \n").unwrap().has("x"));
    }

    #[test]
    fn non_objects_and_garbage_are_refused() {
        assert_eq!(
            parse_json_object(b"[1]").unwrap_err(),
            BodyError::NotAnObject
        );
        assert_eq!(
            parse_json_object(b"\"s\"").unwrap_err(),
            BodyError::NotAnObject
        );
        assert_eq!(
            parse_json_object(b"{\"a\":").unwrap_err(),
            BodyError::Malformed
        );
        assert_eq!(
            parse_json_object(b"\xff").unwrap_err(),
            BodyError::Malformed
        );
    }

    #[test]
    fn fields_collects_every_problem_in_order() {
        let object = parse_json_object(br#"{"a": 1, "b": "", "c": null, "d": "ok"}"#).unwrap();
        let mut fields = Fields::new(&object);
        assert_eq!(fields.required("a"), "");
        assert_eq!(fields.required("b"), "");
        assert_eq!(fields.required("c"), "");
        assert_eq!(fields.required("d"), "ok");
        assert_eq!(fields.optional("c"), None);
        assert_eq!(fields.optional("zz"), None);
        assert_eq!(fields.required("missing"), "");
        assert_eq!(
            fields.finish().unwrap_err(),
            [
                ("a", FieldProblem::NotAString),
                ("b", FieldProblem::Empty),
                ("c", FieldProblem::NotAString),
                ("missing", FieldProblem::Missing),
            ]
        );
    }
}
