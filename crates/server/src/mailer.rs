//! Delivering the outbox's password-reset messages: over SMTP (lettre), or, for
//! development on a loopback address, to the log.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Message, SmtpTransport, Transport};
use portcullis_domain::{Email, MailError, Mailer, ResetSecret};

/// `PORTCULLIS_MAILER`: where reset messages go.
#[derive(Clone, PartialEq, Eq)]
pub enum MailerSetting {
    /// `log`: written to the server's log, for development.
    Log,
    /// An SMTP URL in lettre's format: `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS), `smtps://…:465` (TLS), `smtp://host:25` (a local relay, plain).
    Smtp(String),
}

impl MailerSetting {
    /// Parses the setting; the URL is checked by building a transport from it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "log" {
            return Ok(Self::Log);
        }
        if !(text.starts_with("smtp://") || text.starts_with("smtps://")) {
            return Err("expected `log`, smtp://… or smtps://…".into());
        }
        SmtpTransport::from_url(text).map_err(|e| format!("not a usable SMTP URL: {e}"))?;
        Ok(Self::Smtp(text.to_owned()))
    }
}

impl fmt::Debug for MailerSetting {
    /// Never shows the URL, which may hold the SMTP password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Log => f.write_str("Log"),
            Self::Smtp(_) => f.write_str("Smtp(<redacted>)"),
        }
    }
}

/// Writes password-reset tokens to the server log at WARN: for development only, where
/// the log is the delivery channel. The server allows it only on a loopback address.
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
        tracing::warn!(
            email = %to,
            token = %secret.expose(),
            expires_at = %expires_at.to_rfc3339(),
            "password reset token issued (development mailer)"
        );
        Ok(())
    }
}

/// The reset message's subject and bodies, with `{link}`, `{email}` and `{expires_at}`
/// placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetTemplates {
    /// The subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part; the values put in are HTML-escaped.
    pub html: String,
}

impl Default for ResetTemplates {
    fn default() -> Self {
        Self {
            subject: "Reset your password".into(),
            text: "Someone asked to reset the password of the account {email}.\n\n\
                   To choose a new password, open this link before {expires_at}:\n\n{link}\n\n\
                   If it was not you, ignore this message: your password stays as it is.\n"
                .into(),
            html: "<p>Someone asked to reset the password of the account {email}.</p>\n\
                   <p>To choose a new password, open this link before {expires_at}:</p>\n\
                   <p><a href=\"{link}\">{link}</a></p>\n\
                   <p>If it was not you, ignore this message: your password stays as it is.</p>\n"
                .into(),
        }
    }
}

impl ResetTemplates {
    /// The defaults, each replaced by its file in `dir` if there is one:
    /// `reset-subject.txt`, `reset.txt`, `reset.html`.
    pub fn load(dir: Option<&Path>) -> std::io::Result<Self> {
        let mut templates = Self::default();
        let Some(dir) = dir else {
            return Ok(templates);
        };
        for (name, slot) in [
            ("reset-subject.txt", &mut templates.subject),
            ("reset.txt", &mut templates.text),
            ("reset.html", &mut templates.html),
        ] {
            match std::fs::read_to_string(dir.join(name)) {
                Ok(text) => *slot = text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        templates.subject = templates.subject.trim().to_owned();
        Ok(templates)
    }

    fn fill(template: &str, link: &str, email: &str, expires_at: &str) -> String {
        template
            .replace("{link}", link)
            .replace("{email}", email)
            .replace("{expires_at}", expires_at)
    }
}

/// Escapes text for HTML.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Sends reset messages over SMTP, with the link built from `PORTCULLIS_RESET_URL`.
pub struct SmtpMailer {
    transport: SmtpTransport,
    from: Mailbox,
    reset_url: String,
    templates: ResetTemplates,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// How long one SMTP conversation may take: a sender never blocks longer on one message.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

impl SmtpMailer {
    /// A mailer for `url` (see [`MailerSetting::Smtp`]), sending from `from`, with
    /// links `reset_url` where `{token}` stands for the secret.
    pub fn new(
        url: &str,
        from: Mailbox,
        reset_url: String,
        templates: ResetTemplates,
    ) -> Result<Self, lettre::transport::smtp::Error> {
        let transport = SmtpTransport::from_url(url)?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self {
            transport,
            from,
            reset_url,
            templates,
        })
    }

    /// The text and HTML bodies for `to` with `secret`'s link.
    fn bodies(
        &self,
        to: &Email,
        secret: &ResetSecret,
        expires_at: DateTime<Utc>,
    ) -> (String, String) {
        let link = self.reset_url.replace("{token}", secret.expose());
        let expires = expires_at.format("%Y-%m-%d %H:%M UTC").to_string();
        let templates = &self.templates;
        let text = ResetTemplates::fill(&templates.text, &link, to.as_str(), &expires);
        let html = ResetTemplates::fill(
            &templates.html,
            &escape_html(&link),
            &escape_html(to.as_str()),
            &escape_html(&expires),
        );
        (text, html)
    }

    /// The message for `to` with `secret`'s link.
    fn message(
        &self,
        to: &Email,
        secret: &ResetSecret,
        expires_at: DateTime<Utc>,
    ) -> Result<Message, MailError> {
        let recipient: Mailbox = to
            .as_str()
            .parse()
            .map_err(|e| MailError(format!("recipient: {e}")))?;
        let (text, html) = self.bodies(to, secret, expires_at);
        Message::builder()
            .from(self.from.clone())
            .to(recipient)
            .subject(self.templates.subject.clone())
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| MailError(format!("building the message: {e}")))
    }
}

impl Mailer for SmtpMailer {
    fn send_password_reset(
        &self,
        to: &Email,
        secret: &ResetSecret,
        expires_at: DateTime<Utc>,
    ) -> Result<(), MailError> {
        let message = self.message(to, secret, expires_at)?;
        self.transport
            .send(&message)
            .map(drop)
            .map_err(|e| MailError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_setting_is_log_or_an_smtp_url_and_never_shows_it() {
        assert_eq!(MailerSetting::parse("log"), Ok(MailerSetting::Log));
        let url = "smtp://user:hunter2@mail.example:587?tls=required";
        let setting = MailerSetting::parse(url).unwrap();
        assert_eq!(setting, MailerSetting::Smtp(url.into()));
        assert!(!format!("{setting:?}").contains("hunter2"));
        assert!(MailerSetting::parse("smtps://mail.example:465").is_ok());
        assert!(MailerSetting::parse("http://mail.example").is_err());
        assert!(MailerSetting::parse("sendmail").is_err());
    }

    #[test]
    fn the_message_has_the_link_in_both_parts_escaped_in_html() {
        let mailer = SmtpMailer::new(
            "smtp://127.0.0.1:2525",
            "Portcullis <noreply@example.com>".parse().unwrap(),
            "https://app.example/reset?token={token}&from=mail".into(),
            ResetTemplates::default(),
        )
        .unwrap();
        let to = Email::parse("ada@example.com").unwrap();
        let secret = ResetSecret::from_presented("s3cr3t-token");
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let (text, html) = mailer.bodies(&to, &secret, at);
        assert!(
            text.contains("\nhttps://app.example/reset?token=s3cr3t-token&from=mail\n"),
            "{text}"
        );
        assert!(text.contains("ada@example.com"), "{text}");
        assert!(
            html.contains(
                r#"<a href="https://app.example/reset?token=s3cr3t-token&amp;from=mail">"#
            ),
            "{html}"
        );
        let message = mailer.message(&to, &secret, at).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("Subject: Reset your password"), "{raw}");
        assert!(raw.contains("To: ada@example.com"), "{raw}");
        assert!(
            raw.contains("text/html") && raw.contains("text/plain"),
            "{raw}"
        );
    }

    #[test]
    fn template_files_replace_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("reset-subject.txt"), "Your link\n").unwrap();
        let loaded = ResetTemplates::load(Some(dir.path())).unwrap();
        assert_eq!(loaded.subject, "Your link");
        assert_eq!(loaded.text, ResetTemplates::default().text);
        assert_eq!(
            ResetTemplates::load(None).unwrap(),
            ResetTemplates::default()
        );
    }
}
