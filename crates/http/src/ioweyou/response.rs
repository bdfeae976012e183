//! ioweyou response bodies.

use portcullis_domain::User;
use serde::Serialize;

/// `{}`: the body of every success without data.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EmptyBody {}

/// `GET /api/user`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserBody {
    /// The account's username, or its email when it has none (an account has one or
    /// the other).
    pub username: String,
    /// The user's name.
    pub display_name: String,
}

impl From<&User> for UserBody {
    fn from(user: &User) -> Self {
        Self {
            username: user
                .username
                .as_ref()
                .map(|name| name.as_str())
                .or(user.email.as_ref().map(|email| email.as_str()))
                .unwrap_or_default()
                .to_owned(),
            display_name: user.name.as_str().to_owned(),
        }
    }
}
