//! ioweyou request bodies, checked as the original's Joi schema checked them:
//! `{username: Joi.string().max(254).required(), password: Joi.string().max(<policy max>)}`,
//! reporting only the first failing rule.

use portcullis_domain::Password;

use super::error::IoweyouError;
use crate::body::{FieldProblem, JsonObject, joi_message};

/// The longest login name accepted (an email address's maximum).
pub(crate) const USERNAME_MAX_CHARS: usize = 254;

/// `POST /users/login` and `POST /api/login`.
#[derive(utoipa::ToSchema)]
pub struct LoginRequest {
    /// A username or an email address.
    pub username: String,
    /// Absent: the `access_tokens` cookie's refresh token is used instead.
    #[schema(value_type = Option<String>)]
    pub password: Option<Password>,
}

impl LoginRequest {
    /// Parses `object`; `password_max` is the password policy's maximum, in characters.
    pub fn parse(object: &JsonObject, password_max: usize) -> Result<Self, IoweyouError> {
        let username = object
            .string("username")
            .map_err(|problem| joi("username", problem))?;
        check_max("username", username, USERNAME_MAX_CHARS)?;
        let password = match object.string("password") {
            Ok(password) => {
                check_max("password", password, password_max)?;
                Some(Password::new(password))
            }
            Err(FieldProblem::Missing) => None,
            Err(problem) => return Err(joi("password", problem)),
        };
        Ok(Self {
            username: username.to_owned(),
            password,
        })
    }
}

/// A field problem as the original's Joi schema answered it.
pub(crate) fn joi(field: &str, problem: FieldProblem) -> IoweyouError {
    IoweyouError::bad_request(joi_message(field, problem))
}

fn check_max(field: &str, value: &str, max: usize) -> Result<(), IoweyouError> {
    if value.chars().count() > max {
        return Err(IoweyouError::bad_request(format!(
            "\"{field}\" length must be less than or equal to {max} characters long"
        )));
    }
    Ok(())
}

/// Username and display-name lengths of the original's sign-up schema, in characters.
const SIGNUP_NAME_CHARS: std::ops::RangeInclusive<usize> = 2..=16;

/// `POST /api/signup`, checked as the original's Joi schema checked it
/// (`username: alphanum, 2–16`; `displayName: letters, digits and spaces, 2–16 after
/// trimming`; `password` required), reporting only the first failing rule. The
/// password's own rules are Portcullis's policy, applied by the use case.
#[derive(utoipa::ToSchema)]
pub struct SignupRequest {
    /// Letters and digits, as sent.
    pub username: String,
    /// Trimmed.
    #[schema(rename = "displayName")]
    pub display_name: String,
    /// As sent.
    #[schema(value_type = String)]
    pub password: Password,
}

impl SignupRequest {
    /// Parses `object`.
    pub fn parse(object: &JsonObject) -> Result<Self, IoweyouError> {
        let username = object
            .string("username")
            .map_err(|problem| joi("username", problem))?;
        if !username.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(IoweyouError::bad_request(
                "\"username\" must only contain alpha-numeric characters",
            ));
        }
        check_length("username", username)?;
        let display_name = object
            .string("displayName")
            .map_err(|problem| joi("displayName", problem))?
            .trim();
        if display_name.is_empty() {
            return Err(joi("displayName", FieldProblem::Empty));
        }
        if !display_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ')
        {
            return Err(IoweyouError::bad_request(
                "Display name can only contain letters, numbers and spaces",
            ));
        }
        check_length("displayName", display_name)?;
        let password = object
            .string("password")
            .map_err(|problem| joi("password", problem))?;
        Ok(Self {
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            password: Password::new(password),
        })
    }
}

/// Joi's `min(2).max(16)` on a sign-up name.
fn check_length(field: &str, value: &str) -> Result<(), IoweyouError> {
    if value.chars().count() < *SIGNUP_NAME_CHARS.start() {
        return Err(IoweyouError::bad_request(format!(
            "\"{field}\" length must be at least {} characters long",
            SIGNUP_NAME_CHARS.start()
        )));
    }
    check_max(field, value, *SIGNUP_NAME_CHARS.end())
}
