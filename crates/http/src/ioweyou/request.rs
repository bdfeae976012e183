//! ioweyou request bodies, checked as the original's Joi schema checked them:
//! `{username: Joi.string().max(254).required(), password: Joi.string().max(<policy max>)}`,
//! reporting only the first failing rule.

use portcullis_domain::Password;

use super::error::IoweyouError;
use crate::body::{FieldProblem, JsonObject, joi_message};

/// The longest login name accepted (an email address's maximum).
pub(crate) const USERNAME_MAX_CHARS: usize = 254;

/// `POST /users/login` and `POST /api/login`.
pub struct LoginRequest {
    /// A username or an email address.
    pub username: String,
    /// Absent: the `access_tokens` cookie's refresh token is used instead.
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
