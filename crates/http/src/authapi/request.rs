//! authapi request bodies, parsed from the JSON object at the edge.

use portcullis_domain::{Email, Password};

use super::error::ApiError;
use crate::body::{Fields, JsonObject};

/// `POST /auth/register`.
#[derive(utoipa::ToSchema)]
pub struct RegisterRequest {
    pub name: String,
    pub bio: Option<String>,
    pub email: String,
    #[schema(value_type = String)]
    pub password: Password,
    #[schema(value_type = String)]
    pub confirm: Password,
}

impl TryFrom<&JsonObject> for RegisterRequest {
    type Error = ApiError;

    fn try_from(object: &JsonObject) -> Result<Self, ApiError> {
        let mut fields = Fields::new(object);
        let name = fields.required("name");
        let bio = fields.optional("bio");
        let email = fields.required("email");
        let password = fields.required("password");
        let confirm = fields.required("confirm");
        fields.finish().map_err(ApiError::fields)?;
        Ok(Self {
            name: name.to_owned(),
            bio: bio.map(str::to_owned),
            email: email.to_owned(),
            password: Password::new(password),
            confirm: Password::new(confirm),
        })
    }
}

/// `POST /auth/login`.
#[derive(utoipa::ToSchema)]
pub struct LoginRequest {
    pub email: String,
    #[schema(value_type = String)]
    pub password: Password,
}

impl TryFrom<&JsonObject> for LoginRequest {
    type Error = ApiError;

    fn try_from(object: &JsonObject) -> Result<Self, ApiError> {
        let mut fields = Fields::new(object);
        let email = fields.required("email");
        let password = fields.required("password");
        fields.finish().map_err(ApiError::fields)?;
        Ok(Self {
            email: email.to_owned(),
            password: Password::new(password),
        })
    }
}

/// `{refreshToken}` of `POST /auth/logout` and `POST /auth/refresh-tokens`.
#[derive(utoipa::ToSchema)]
pub struct RefreshTokenRequest {
    #[schema(rename = "refreshToken")]
    pub refresh_token: String,
}

impl TryFrom<&JsonObject> for RefreshTokenRequest {
    type Error = ApiError;

    fn try_from(object: &JsonObject) -> Result<Self, ApiError> {
        let mut fields = Fields::new(object);
        let token = fields.required("refreshToken");
        fields.finish().map_err(ApiError::fields)?;
        Ok(Self {
            refresh_token: token.to_owned(),
        })
    }
}

/// `POST /auth/forgot-password`.
#[derive(utoipa::ToSchema)]
pub struct ForgotPasswordRequest {
    #[schema(value_type = String)]
    pub email: Email,
}

impl TryFrom<&JsonObject> for ForgotPasswordRequest {
    type Error = ApiError;

    fn try_from(object: &JsonObject) -> Result<Self, ApiError> {
        let mut fields = Fields::new(object);
        let email = fields.required("email");
        fields.finish().map_err(ApiError::fields)?;
        Email::parse(email)
            .map(|email| Self { email })
            .map_err(|e| {
                ApiError::validation(&portcullis_domain::ValidationErrors::single(
                    "email",
                    e.to_string(),
                ))
            })
    }
}

/// The body of `POST /auth/reset-password?token=T`.
#[derive(utoipa::ToSchema)]
pub struct ResetPasswordRequest {
    #[schema(value_type = String)]
    pub password: Password,
    /// The reset token, when the client sends it in the body rather than in the query
    /// string (which ends up in proxies' logs).
    pub token: Option<String>,
}

impl TryFrom<&JsonObject> for ResetPasswordRequest {
    type Error = ApiError;

    fn try_from(object: &JsonObject) -> Result<Self, ApiError> {
        let mut fields = Fields::new(object);
        let password = fields.required("password");
        let token = fields.optional("token");
        fields.finish().map_err(ApiError::fields)?;
        Ok(Self {
            password: Password::new(password),
            token: token.filter(|t| !t.is_empty()).map(str::to_owned),
        })
    }
}
