//! Cookie authentication: the one code path behind `GET /api/user`, the
//! [`require_user`] middleware and the [`IoweyouUser`] extractor.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, SET_COOKIE};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use portcullis_domain::{AuthenticateError, Principal, RefreshGuard, TokenPair, User};

use super::error::IoweyouError;
use super::session_cookie;
use crate::origin::client_of;
use crate::state::AppState;

/// Whether an expired access token may be renewed with the cookie's refresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// Rotate, and hand back the new cookie for the response.
    Allowed,
    /// No response to carry a new cookie: an expired access token is refused.
    Refused,
}

/// An authenticated cookie, and the new cookie to send when it was renewed.
pub(crate) struct CookieSession {
    pub principal: Principal,
    pub renewed: Option<HeaderValue>,
}

/// Authenticates the request's `access_tokens` cookie: its access token, or, once that
/// has expired and `renewal` allows, a rotation with its refresh token (which must be of
/// the access token's session). Every refusal is 401 `Not authenticated.`.
pub(crate) async fn authenticate_cookie(
    state: &AppState,
    request: &HttpRequest,
    renewal: Renewal,
) -> Result<CookieSession, IoweyouError> {
    let tokens = session_cookie::read(request).ok_or_else(IoweyouError::not_authenticated)?;
    let access = tokens
        .access_token
        .ok_or_else(IoweyouError::not_authenticated)?;
    let refresh = match renewal {
        Renewal::Allowed => tokens.refresh_token,
        Renewal::Refused => None,
    };
    if let Some(Ok(principal)) = state.try_in_memory(|auth| auth.authenticate(&access)) {
        return Ok(CookieSession {
            principal,
            renewed: None,
        });
    }
    let client = client_of(request, &state.config, super::DIALECT.name);
    let metrics = state.metrics.clone();
    let (principal, rotated) = state
        .run(
            move |auth| -> Result<(Principal, Option<TokenPair>), IoweyouError> {
                match auth.authenticate(&access) {
                    Ok(principal) => Ok((principal, None)),
                    Err(AuthenticateError::Expired) => {
                        let refresh = refresh.ok_or_else(IoweyouError::not_authenticated)?;
                        let refreshed = auth.refresh_from(
                            &client,
                            &refresh,
                            RefreshGuard {
                                account: None,
                                access_token: Some(&access),
                            },
                        );
                        if let Some(metrics) = &metrics {
                            metrics.refresh(&refreshed);
                        }
                        let refreshed = refreshed?;
                        let principal = auth.authenticate(&refreshed.tokens.access.token)?;
                        Ok((principal, Some(refreshed.tokens)))
                    }
                    Err(error) => Err(error.into()),
                }
            },
        )
        .await??;
    let renewed = rotated
        .map(|tokens| session_cookie::set_cookie(state, &tokens))
        .transpose()?;
    Ok(CookieSession { principal, renewed })
}

fn app_state(request: &HttpRequest) -> Result<web::Data<AppState>, IoweyouError> {
    request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| {
            IoweyouError::internal(
                &"ioweyou cookie authentication: no web::Data<AppState> in the app data",
            )
        })
}

/// Middleware (for [`actix_web::middleware::from_fn`]) that lets through only requests
/// with a valid `access_tokens` cookie, as the original application protected its
/// endpoints.
///
/// - A live access token passes; the [`Principal`] it speaks for is put into the request
///   extensions (`req.extensions().get::<Principal>()`, or the [`IoweyouUser`]
///   extractor).
/// - An expired access token is renewed with the cookie's refresh token (rotation and
///   reuse detection as everywhere): the request passes and the response carries the
///   new cookie in an extra `Set-Cookie`.
/// - Anything else is answered here with 401 `{"errors": ["Not authenticated."]}`; the
///   wrapped service is not called. An unreachable database is 503 with `Retry-After`;
///   other internal failures are 500 `{"errors": ["Internal server error"]}`.
///
/// Needs [`AppState`] as `web::Data<AppState>` in the app data, as
/// [`crate::configure`] registers it.
///
/// ```no_run
/// use actix_web::middleware::from_fn;
/// use actix_web::{App, HttpResponse, HttpServer, web};
/// use portcullis_http::AppState;
/// use portcullis_http::ioweyou::{IoweyouUser, require_user};
///
/// async fn debts(user: IoweyouUser) -> HttpResponse {
///     HttpResponse::Ok().json(serde_json::json!({ "owed_by": user.user().id.to_string() }))
/// }
///
/// async fn serve(state: AppState) -> std::io::Result<()> {
///     HttpServer::new(move || {
///         App::new()
///             // Portcullis's own routes; this also registers `web::Data<AppState>`.
///             .configure(portcullis_http::configure(state.clone(), portcullis_http::all_dialects()))
///             // The embedding service's routes, behind the cookie.
///             .service(
///                 web::scope("/api/debts")
///                     .wrap(from_fn(require_user))
///                     .route("", web::get().to(debts)),
///             )
///     })
///     .bind(("127.0.0.1", 8080))?
///     .run()
///     .await
/// }
/// ```
pub async fn require_user<B>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error>
where
    B: MessageBody + 'static,
{
    let authenticated = match app_state(request.request()) {
        Ok(state) => authenticate_cookie(&state, request.request(), Renewal::Allowed).await,
        Err(error) => Err(error),
    };
    let session = match authenticated {
        Ok(session) => session,
        Err(error) => {
            return Ok(request
                .into_response(error.error_response())
                .map_into_right_body());
        }
    };
    request.extensions_mut().insert(session.principal);
    match (next.call(request).await, session.renewed) {
        (Ok(response), None) => Ok(response.map_into_left_body()),
        (Ok(mut response), Some(cookie)) => {
            response.headers_mut().append(SET_COOKIE, cookie);
            Ok(response.map_into_left_body())
        }
        (Err(error), None) => Err(error),
        // The refresh token is spent: the new cookie must reach the client with the error.
        (Err(error), Some(cookie)) => Err(WithCookie { error, cookie }.into()),
    }
}

/// An error of the wrapped service whose response also renews the cookie.
struct WithCookie {
    error: actix_web::Error,
    cookie: HeaderValue,
}

impl fmt::Debug for WithCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error, f)
    }
}

impl fmt::Display for WithCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for WithCookie {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.error.error_response();
        response
            .headers_mut()
            .append(SET_COOKIE, self.cookie.clone());
        response
    }
}

/// The user of the request's `access_tokens` cookie, as an extractor.
///
/// Behind [`require_user`] it is the principal the middleware authenticated (with
/// transparent renewal). Used alone it authenticates the cookie's access token itself,
/// but cannot renew an expired one (an extractor cannot set the new cookie): that is
/// 401 `Not authenticated.`, so put [`require_user`] on routes whose clients rely on
/// renewal.
#[derive(Clone, Debug)]
pub struct IoweyouUser(pub Principal);

impl IoweyouUser {
    pub fn principal(&self) -> &Principal {
        &self.0
    }

    pub fn user(&self) -> &User {
        &self.0.user
    }

    pub fn into_inner(self) -> Principal {
        self.0
    }
}

impl FromRequest for IoweyouUser {
    type Error = IoweyouError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, IoweyouError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(principal) = request.extensions().get::<Principal>() {
            let principal = principal.clone();
            return Box::pin(async move { Ok(Self(principal)) });
        }
        let request = request.clone();
        Box::pin(async move {
            let state = app_state(&request)?;
            let session = authenticate_cookie(&state, &request, Renewal::Refused).await?;
            Ok(Self(session.principal))
        })
    }
}
