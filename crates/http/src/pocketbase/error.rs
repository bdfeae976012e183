//! pocketbase's error body: a PocketBase API error (`{"code", "message", "data"}`) as
//! the PocketBase JS SDK's `ClientResponseError` serialises it:
//!
//! ```json
//! {"url": "<request URL>", "status": 400,
//!  "response": {"code": 400, "message": "...", "data": {...}},
//!  "isAbort": false,
//!  "originalError": {"url": "<request URL>", "status": 400,
//!                    "data": {"code": 400, "message": "...", "data": {...}}},
//!  "name": "ClientResponseError 400",
//!  "code": 400, "message": "...", "data": {...}}
//! ```
//!
//! The last three keys repeat PocketBase's own error body at the top level. The SDK
//! hands a failed request's whole body to `ClientResponseError` as its `response`, so
//! without them a client of this server would find `err.response.message` undefined;
//! with them both the documented shape and the SDK's reading hold.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use portcullis_domain::LoginError;
use serde::Serialize;

use crate::body::{BodyError, FieldProblem};
use crate::dialect::{Refusal, set_retry_after};

/// Wrong password, unknown account.
pub(crate) const FAILED_TO_AUTHENTICATE: &str = "Failed to authenticate.";
/// PocketBase's message for a request that failed validation, and for its 500s.
pub(crate) const SOMETHING_WENT_WRONG: &str = "Something went wrong while processing your request.";
/// A body that is not a JSON object.
pub(crate) const INVALID_JSON: &str = "Invalid json";
/// A body over the configured limit (413).
pub(crate) const TOO_LARGE: &str = "Request entity too large";

/// One field's problem in `data`, as PocketBase's validators word it.
#[derive(Clone, Copy, Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FieldError {
    code: &'static str,
    message: &'static str,
}

const REQUIRED: FieldError = FieldError {
    code: "validation_required",
    message: "Cannot be blank.",
};

/// A pocketbase error response. `url` is set by the handler ([`PbError::at`]).
#[derive(Debug)]
pub struct PbError {
    status: StatusCode,
    message: &'static str,
    /// Field name to problem; a `BTreeMap`, so in key order as PocketBase (Go) writes it.
    data: BTreeMap<&'static str, FieldError>,
    url: String,
    /// `Retry-After`, for a refusal the client may retry.
    retry_after: Option<Duration>,
}

impl PbError {
    fn new(status: StatusCode, message: &'static str) -> Self {
        Self {
            status,
            message,
            data: BTreeMap::new(),
            url: String::new(),
            retry_after: None,
        }
    }

    /// PocketBase's wording of a refusal.
    pub(crate) fn refused(refusal: &Refusal) -> Self {
        let message = match refusal {
            Refusal::MethodNotAllowed => "Method not allowed.",
            Refusal::UnreadableBody(BodyError::TooLarge { .. }) => TOO_LARGE,
            Refusal::UnreadableBody(BodyError::TimedOut) => "Request timeout.",
            Refusal::UnreadableBody(_) => INVALID_JSON,
            Refusal::TooManyRequests { .. } => "Too many requests.",
            Refusal::Busy { .. } => "Service Unavailable.",
            Refusal::Forbidden => "You are not allowed to perform this request.",
        };
        Self {
            retry_after: refusal.retry_after(),
            ..Self::new(refusal.status(), message)
        }
    }

    pub(crate) fn bad_request(message: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// Logs the cause and hides it from the client.
    pub(crate) fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, SOMETHING_WENT_WRONG)
    }

    /// A 400 naming each field that is missing, not a string or empty: PocketBase says
    /// "Cannot be blank." for all three.
    pub(crate) fn fields(problems: Vec<(&'static str, FieldProblem)>) -> Self {
        let mut error = Self::bad_request(SOMETHING_WENT_WRONG);
        error.data = problems
            .into_iter()
            .map(|(field, _problem)| (field, REQUIRED))
            .collect();
        error
    }

    /// The error as answered to a request for `url`.
    pub(crate) fn at(mut self, url: String) -> Self {
        self.url = url;
        self
    }
}

impl fmt::Display for PbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

/// PocketBase's own error body.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ApiErrorBody<'a> {
    code: u16,
    message: &'a str,
    data: &'a BTreeMap<&'static str, FieldError>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct OriginalError<'a> {
    url: &'a str,
    status: u16,
    data: ApiErrorBody<'a>,
}

/// `JSON.stringify(clientResponseError)`, in the document's key order.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClientResponseErrorBody<'a> {
    url: &'a str,
    status: u16,
    response: ApiErrorBody<'a>,
    is_abort: bool,
    original_error: OriginalError<'a>,
    name: String,
    #[serde(flatten)]
    native: ApiErrorBody<'a>,
}

impl ResponseError for PbError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status.as_u16();
        let api_error = || ApiErrorBody {
            code: status,
            message: self.message,
            data: &self.data,
        };
        let mut response = HttpResponse::build(self.status).json(ClientResponseErrorBody {
            url: &self.url,
            status,
            response: api_error(),
            is_abort: false,
            original_error: OriginalError {
                url: &self.url,
                status,
                data: api_error(),
            },
            name: format!("ClientResponseError {status}"),
            native: api_error(),
        });
        set_retry_after(&mut response, self.retry_after);
        response
    }
}

impl From<BodyError> for PbError {
    fn from(error: BodyError) -> Self {
        Self::refused(&Refusal::UnreadableBody(error))
    }
}

internal_failures!(PbError);

impl From<LoginError> for PbError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::InvalidCredentials => Self::bad_request(FAILED_TO_AUTHENTICATE),
            LoginError::Throttled { retry_after } => {
                Self::refused(&Refusal::throttled(retry_after))
            }
            LoginError::Internal(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use serde_json::{Value, json};

    use super::*;

    fn body_of(error: &PbError) -> (u16, String) {
        let response = error.error_response();
        let status = response.status().as_u16();
        let bytes = response.into_body().try_into_bytes().unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[test]
    fn serialises_like_the_sdk_in_its_key_order() {
        let error = PbError::bad_request(FAILED_TO_AUTHENTICATE).at("http://h/auth/login".into());
        let (status, text) = body_of(&error);
        assert_eq!(status, 400);
        assert_eq!(
            text,
            r#"{"url":"http://h/auth/login","status":400,"response":{"code":400,"message":"Failed to authenticate.","data":{}},"isAbort":false,"originalError":{"url":"http://h/auth/login","status":400,"data":{"code":400,"message":"Failed to authenticate.","data":{}}},"name":"ClientResponseError 400","code":400,"message":"Failed to authenticate.","data":{}}"#
        );
    }

    #[test]
    fn field_problems_all_read_cannot_be_blank() {
        let error = PbError::fields(vec![
            ("username", FieldProblem::NotAString),
            ("password", FieldProblem::Empty),
        ]);
        let (_, text) = body_of(&error);
        let body: Value = serde_json::from_str(&text).unwrap();
        let blank = json!({"code": "validation_required", "message": "Cannot be blank."});
        assert_eq!(
            body["response"]["data"],
            json!({"password": blank, "username": blank})
        );
        assert_eq!(body["response"]["message"], SOMETHING_WENT_WRONG);
        assert_eq!(body["originalError"]["data"], body["response"]);
    }

    #[test]
    fn body_errors() {
        let too_large = PbError::from(BodyError::TooLarge { limit: 1 });
        let (status, text) = body_of(&too_large);
        assert_eq!(status, 413);
        assert!(
            text.contains(r#""name":"ClientResponseError 413""#),
            "{text}"
        );
        assert!(text.contains(TOO_LARGE), "{text}");
        for error in [
            BodyError::Malformed,
            BodyError::NotAnObject,
            BodyError::Incomplete,
        ] {
            let (status, text) = body_of(&PbError::from(error));
            assert_eq!(status, 400);
            assert!(text.contains(INVALID_JSON), "{text}");
        }
    }
}
