//! cbs request bodies, parsed from the JSON object at the edge.

use portcullis_domain::Password;

use super::error::CbsError;
use crate::body::{Fields, JsonObject};

/// The longest `user` accepted: an email address's maximum (no account has a longer
/// name), so an attacker's megabyte of name is refused before any lookup.
const USER_MAX_CHARS: usize = 254;

/// `{user, password}` of `POST /api/v1/auth/login`. `user` is a username or an email.
#[derive(utoipa::ToSchema)]
pub struct LoginRequest {
    pub user: String,
    #[schema(value_type = String)]
    pub password: Password,
}

impl TryFrom<&JsonObject> for LoginRequest {
    type Error = CbsError;

    fn try_from(object: &JsonObject) -> Result<Self, CbsError> {
        let mut fields = Fields::new(object);
        let user = fields.required("user");
        let password = fields.required("password");
        fields.finish().map_err(CbsError::fields)?;
        if user.chars().count() > USER_MAX_CHARS {
            return Err(CbsError::invalid_request(format!(
                "\"user\" length must be less than or equal to {USER_MAX_CHARS} characters long"
            )));
        }
        Ok(Self {
            user: user.to_owned(),
            password: Password::new(password),
        })
    }
}

/// `{refresh_token}` of `POST /api/v1/auth/refresh` (and of the login path).
#[derive(utoipa::ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

impl RefreshRequest {
    /// Whether a body sent to the login path is a refresh: it has a `refresh_token` and
    /// no `user`.
    pub fn is_refresh(object: &JsonObject) -> bool {
        object.has("refresh_token") && !object.has("user")
    }
}

impl TryFrom<&JsonObject> for RefreshRequest {
    type Error = CbsError;

    fn try_from(object: &JsonObject) -> Result<Self, CbsError> {
        let mut fields = Fields::new(object);
        let token = fields.required("refresh_token");
        fields.finish().map_err(CbsError::fields)?;
        Ok(Self {
            refresh_token: token.to_owned(),
        })
    }
}
