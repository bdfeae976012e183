//! pocketbase request bodies, parsed from the JSON object at the edge.

use portcullis_domain::Password;

use super::error::PbError;
use crate::body::{Fields, JsonObject};

/// `POST /auth/login`: `username` holds a username or an email.
#[derive(utoipa::ToSchema)]
pub struct LoginRequest {
    pub username: String,
    #[schema(value_type = String)]
    pub password: Password,
}

impl TryFrom<&JsonObject> for LoginRequest {
    type Error = PbError;

    fn try_from(object: &JsonObject) -> Result<Self, PbError> {
        let mut fields = Fields::new(object);
        let username = fields.required("username");
        let password = fields.required("password");
        fields.finish().map_err(PbError::fields)?;
        Ok(Self {
            username: username.to_owned(),
            password: Password::new(password),
        })
    }
}
