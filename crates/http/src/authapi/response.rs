//! authapi response bodies.

use chrono::{DateTime, SecondsFormat, Utc};
use portcullis_domain::{Authenticated, IssuedToken, TokenPair, User};
use serde::Serialize;

/// The `User` schema, plus the id; never a hash.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserBody {
    pub id: String,
    pub name: String,
    pub bio: Option<String>,
    /// `null` for an account without one (signed up elsewhere with a username alone).
    pub email: Option<String>,
}

impl From<&User> for UserBody {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            name: user.name.as_str().to_owned(),
            bio: user.bio.as_ref().map(|b| b.as_str().to_owned()),
            email: user.email.as_ref().map(|e| e.as_str().to_owned()),
        }
    }
}

/// The document's `User` schema exactly, for `POST /auth`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProfileBody {
    pub name: String,
    pub bio: Option<String>,
    pub email: Option<String>,
}

impl From<&User> for ProfileBody {
    fn from(user: &User) -> Self {
        let UserBody {
            name, bio, email, ..
        } = UserBody::from(user);
        Self { name, bio, email }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenBody {
    pub token: String,
    /// RFC 3339 in UTC with milliseconds, as a JavaScript `Date` serialises.
    pub expires: String,
}

impl From<&IssuedToken> for TokenBody {
    fn from(issued: &IssuedToken) -> Self {
        Self {
            token: issued.token.clone(),
            expires: rfc3339(issued.expires_at),
        }
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokensBody {
    pub access: TokenBody,
    pub refresh: TokenBody,
}

impl From<&TokenPair> for TokensBody {
    fn from(pair: &TokenPair) -> Self {
        Self {
            access: (&pair.access).into(),
            refresh: (&pair.refresh).into(),
        }
    }
}

/// `{"user": User, "tokens": Tokens}` of register and login.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuthBody {
    pub user: UserBody,
    pub tokens: TokensBody,
}

impl From<&Authenticated> for AuthBody {
    fn from(done: &Authenticated) -> Self {
        Self {
            user: (&done.user).into(),
            tokens: (&done.tokens).into(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MessageBody {
    pub message: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WelcomeBody {
    pub message: &'static str,
    pub user: ProfileBody,
}
