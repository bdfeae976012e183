//! What a dialect is, for the routing and middleware that serve every dialect alike.
//!
//! A dialect module exports one [`crate::DialectSpec`] (its name, its settings, how to
//! build it from them); built, it is a [`Dialect`]: its endpoints and its own wording of
//! the refusals every dialect must be able to answer ([`Refusal`]). This module names
//! no dialect, so dialects depend on it and never the other way round.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use portcullis_domain::Client;

use crate::body::{BodyError, JsonObject};
use crate::openapi::{BodySchema, EndpointDoc};
use crate::origin::client_of;
use crate::state::AppState;

/// What a handler gets: the state, the request and its body, already read.
pub struct Call {
    /// The server's shared state.
    pub state: web::Data<AppState>,
    /// The request, without its body.
    pub request: HttpRequest,
    /// The body as a JSON object, or why it is not one. Handlers that take no body
    /// ignore it.
    pub body: Result<JsonObject, BodyError>,
    /// The name of the dialect whose endpoint it is.
    pub dialect: &'static str,
}

impl Call {
    /// Who is asking, for the throttles and the security event log: the client's
    /// address (see [`crate::origin`]), its `User-Agent` and this dialect.
    pub fn client(&self) -> Client {
        client_of(&self.request, &self.state.config, self.dialect)
    }
}

pub(crate) type BoxedHandler = Rc<dyn Fn(Call) -> Pin<Box<dyn Future<Output = HttpResponse>>>>;

/// One endpoint of a dialect: a method, a path (before the dialect's prefix) and its
/// handler.
pub struct Endpoint {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    /// The top-level body key that claims a request on a path shared with another
    /// dialect.
    pub(crate) body_key: Option<&'static str>,
    /// Whether it reads or sets a session cookie, so a cross-site request is refused.
    pub(crate) session_cookie: bool,
    pub(crate) handler: BoxedHandler,
    /// What its OpenAPI document says of it ([`crate::openapi`]).
    pub(crate) doc: EndpointDoc,
}

impl Endpoint {
    /// An endpoint whose handler answers with a response or with the dialect's error.
    pub fn new<F, Fut, E>(method: Method, path: &'static str, handler: F) -> Self
    where
        F: Fn(Call) -> Fut + 'static,
        Fut: Future<Output = Result<HttpResponse, E>> + 'static,
        E: ResponseError + 'static,
    {
        Self {
            method,
            path,
            body_key: None,
            session_cookie: false,
            doc: EndpointDoc::new(""),
            handler: Rc::new(move |call| {
                let future = handler(call);
                Box::pin(async move { future.await.unwrap_or_else(|e| e.error_response()) })
            }),
        }
    }

    /// Describes it for the dialect's OpenAPI document.
    pub fn documented(mut self, doc: EndpointDoc) -> Self {
        self.doc = doc;
        self
    }

    /// Its summary in the OpenAPI document (empty until [`Endpoint::documented`]).
    pub fn summary(&self) -> &'static str {
        self.doc.summary()
    }

    /// Claims requests on a shared path whose body has `key`.
    pub fn claiming(mut self, key: &'static str) -> Self {
        self.body_key = Some(key);
        self
    }

    /// Marks an endpoint that reads or sets a session cookie: a browser attaches the
    /// cookie whichever site made the request, so a cross-site one is refused with 403
    /// (login CSRF, a logout from a link) unless its origin is allowed.
    pub fn with_session_cookie(mut self) -> Self {
        self.session_cookie = true;
        self
    }
}

/// A request turned away before (or instead of) its handler. Every dialect words each
/// one in its own error format; [`refuse`] adds the headers they all carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 405: the path exists, not with this method. Routing adds `Allow`.
    MethodNotAllowed,
    /// 400 or 413: the body is not a readable JSON object.
    UnreadableBody(BodyError),
    /// 429: the client is throttled; it may retry after the delay.
    TooManyRequests {
        /// When the client may try again.
        retry_after: Duration,
    },
    /// 503: the server is overloaded or its database is down; retry after the delay.
    Busy {
        /// When the client may try again.
        retry_after: Duration,
    },
    /// 403: the request is refused whoever sends it (e.g. a cross-site request).
    Forbidden,
}

impl Refusal {
    /// A throttled client, which may retry after `retry_after` (a domain duration).
    pub fn throttled(retry_after: chrono::TimeDelta) -> Self {
        Self::TooManyRequests {
            retry_after: retry_after.to_std().unwrap_or(Duration::ZERO),
        }
    }

    /// The HTTP status every dialect answers the refusal with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnreadableBody(error) => error.status(),
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Forbidden => StatusCode::FORBIDDEN,
        }
    }

    /// When the client may retry, for the refusals that say so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::TooManyRequests { retry_after } | Self::Busy { retry_after } => {
                Some(*retry_after)
            }
            Self::MethodNotAllowed | Self::UnreadableBody(_) | Self::Forbidden => None,
        }
    }
}

/// A dialect, built from its settings: what routing and middleware need of it.
pub trait Dialect: Send + Sync + 'static {
    /// Its name, as in [`crate::DialectSpec::name`].
    fn name(&self) -> &'static str;

    /// Its endpoints, at their documented paths.
    fn endpoints(&self) -> Vec<Endpoint>;

    /// Its error response to `refusal`, with [`Refusal::status`]. Headers that every
    /// dialect's answer carries (`Retry-After`, `Allow`) are added by the caller.
    fn refusal(&self, request: &HttpRequest, refusal: &Refusal) -> HttpResponse;

    /// The schema of its error body (of every [`Refusal`] and of its endpoints'
    /// failures), for its OpenAPI document.
    fn error_schema(&self) -> BodySchema;

    /// The longest lifetime of a token it issues by a setting of its own (beyond the
    /// server's access and refresh lifetimes), if any: a superseded signing key keeps
    /// verifying at least this long, so no such token dies with a rotation.
    fn longest_token_ttl(&self) -> Option<chrono::TimeDelta> {
        None
    }
}

/// What a client is told to wait ([`Refusal::Busy`]) when a use case found the machinery
/// temporarily unavailable: the password hasher at capacity or the database
/// unreachable ([`portcullis_domain::InternalError::is_unavailable`]).
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// `dialect`'s answer to `refusal`, with `Retry-After` (whole seconds, at least 1) when
/// the client may retry.
pub fn refuse(dialect: &dyn Dialect, request: &HttpRequest, refusal: &Refusal) -> HttpResponse {
    let mut response = dialect.refusal(request, refusal);
    set_retry_after(&mut response, refusal.retry_after());
    response
}

/// Sets `Retry-After` to `delay` in whole seconds, rounded up, at least 1; nothing when
/// `delay` is `None`. Dialect errors built from a [`Refusal`] call it in their
/// `error_response`, so a refusal met inside a handler carries the header too.
pub(crate) fn set_retry_after(response: &mut HttpResponse, delay: Option<Duration>) {
    if let Some(delay) = delay {
        let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
}
