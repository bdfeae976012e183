//! cbs response bodies.

use chrono::{DateTime, TimeDelta, Utc};
use portcullis_domain::{AuthConfig, IssuedToken, TokenPair};
use serde::Serialize;

use super::error::ResultCode;

/// What `*_expires_in` is measured against: when the request arrived and the
/// configured lifetimes.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    arrived: DateTime<Utc>,
    access_ttl: TimeDelta,
    refresh_ttl: TimeDelta,
}

impl Lifetimes {
    pub fn new(arrived: DateTime<Utc>, config: &AuthConfig) -> Self {
        Self {
            arrived,
            access_ttl: config.access_ttl,
            refresh_ttl: config.refresh_ttl,
        }
    }
}

/// Whole seconds from the request's arrival (its second) until `token` expires, at
/// most `ttl`: the configured lifetime, unless the session's absolute lifetime cut the
/// token short, when it is the time the session has left, rounded up.
fn expires_in(token: &IssuedToken, arrived: DateTime<Utc>, ttl: TimeDelta) -> i64 {
    (token.expires_at.timestamp() - arrived.timestamp())
        .min(ttl.num_seconds())
        .max(0)
}

/// The login result model; with `code` and `desc` added, refresh's too.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokensBody {
    pub token_type: &'static str,
    pub access_token: String,
    pub access_token_expires_in: i64,
    pub refresh_token: String,
    pub refresh_token_expires_in: i64,
}

impl TokensBody {
    pub fn new(pair: &TokenPair, lifetimes: Lifetimes) -> Self {
        Self {
            token_type: "Bearer",
            access_token: pair.access.token.clone(),
            access_token_expires_in: expires_in(
                &pair.access,
                lifetimes.arrived,
                lifetimes.access_ttl,
            ),
            refresh_token: pair.refresh.token.clone(),
            refresh_token_expires_in: expires_in(
                &pair.refresh,
                lifetimes.arrived,
                lifetimes.refresh_ttl,
            ),
        }
    }
}

/// Where a client must send the user next: the password change form.
pub const REDIRECT_PASSWORD_RESET: &str = "pw/reset";

/// `{"code": 0, "result": {...}, "redirect"?: "pw/reset"}` of a login.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginBody {
    pub code: u16,
    pub result: TokensBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<&'static str>,
}

impl LoginBody {
    pub fn new(tokens: TokensBody, must_change_password: bool) -> Self {
        Self {
            code: ResultCode::Ok.code(),
            result: tokens,
            redirect: must_change_password.then_some(REDIRECT_PASSWORD_RESET),
        }
    }
}

/// The common result model, `{"code": 0, "desc": "Ok"}`, with the rotated pair.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RefreshResult {
    pub code: u16,
    pub desc: &'static str,
    #[serde(flatten)]
    pub tokens: TokensBody,
}

/// `{"result": RefreshResult}` of a refresh.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RefreshBody {
    pub result: RefreshResult,
}

impl RefreshBody {
    pub fn new(tokens: TokensBody) -> Self {
        Self {
            result: RefreshResult {
                code: ResultCode::Ok.code(),
                desc: "Ok",
                tokens,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, millis: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::seconds(seconds) + TimeDelta::milliseconds(millis)
    }

    fn token(expires_at: DateTime<Utc>) -> IssuedToken {
        IssuedToken {
            token: "t".into(),
            expires_at,
        }
    }

    #[test]
    fn a_full_lifetime_is_the_configured_ttl_even_across_a_second_boundary() {
        let ttl = TimeDelta::seconds(1800);
        // Issued in the arrival's second, or in the next one.
        assert_eq!(
            expires_in(&token(at(1000 + 1800, 0)), at(1000, 900), ttl),
            1800
        );
        assert_eq!(
            expires_in(&token(at(1001 + 1800, 0)), at(1000, 900), ttl),
            1800
        );
    }

    #[test]
    fn a_token_cut_short_by_its_session_reports_what_is_left() {
        let ttl = TimeDelta::seconds(1800);
        assert_eq!(expires_in(&token(at(1600, 0)), at(1000, 250), ttl), 600);
        assert_eq!(expires_in(&token(at(900, 0)), at(1000, 0), ttl), 0);
    }
}
