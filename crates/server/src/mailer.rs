//! The development mailer: until a real one is configured, reset tokens go to the log.

use chrono::{DateTime, Utc};
use portcullis_domain::{Email, MailError, Mailer, ResetSecret};

/// Writes password-reset tokens to the server log at INFO. For development only: the
/// server warns at start-up while it is in use.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send_password_reset(
        &self,
        to: &Email,
        secret: &ResetSecret,
        expires_at: DateTime<Utc>,
    ) -> Result<(), MailError> {
        // The one place a token reaches a log, deliberately: this is the delivery channel.
        tracing::info!(
            email = %to,
            token = %secret.expose(),
            expires_at = %expires_at.to_rfc3339(),
            "password reset token issued (development mailer)"
        );
        Ok(())
    }
}
