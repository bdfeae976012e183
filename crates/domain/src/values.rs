//! Value types. Each is parsed once at the edge and is valid for as long as it lives.

use std::fmt;

use chrono::{DateTime, Utc};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (UUID v7) id stamped with `now`.
            pub fn generate(now: DateTime<Utc>) -> Self {
                let seconds = u64::try_from(now.timestamp()).unwrap_or(0);
                let ts = uuid::Timestamp::from_unix(uuid::NoContext, seconds, now.timestamp_subsec_nanos());
                Self(Uuid::new_v7(ts))
            }

            /// Parses the hyphenated (or any standard) text form.
            pub fn parse(text: &str) -> Result<Self, uuid::Error> {
                Uuid::parse_str(text).map(Self)
            }

            /// Wraps a UUID, e.g. one read from storage.
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID, e.g. for storage.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A user's id.
    UserId
);
uuid_id!(
    /// A session's id: one login and the refresh-token family it starts.
    SessionId
);
uuid_id!(
    /// A token's `jti`.
    TokenId
);
uuid_id!(
    /// A message's id in the mail outbox.
    MailId
);
uuid_id!(
    /// A registered API client's id (its HTTP Basic user name).
    ClientId
);

/// Why a field did not parse; the text is fit to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub(crate) String);

impl ParseError {
    /// The message, fit to show to the client.
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// A syntactically valid email address, lower-cased (addresses are unique
/// case-insensitively, and one spelling keeps lookups index-friendly).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// The longest address accepted, in bytes (what SMTP can carry).
    pub const MAX_LEN: usize = 254;

    /// Trims `raw`, NFKC-normalises and lower-cases it, then checks its shape: no
    /// control, bidirectional-formatting or zero-width character anywhere; a local part
    /// of at most 64 bytes with no whitespace, none of `"(),:;<>@[\]` and no leading,
    /// trailing or doubled dot; `@`; a domain of two or more labels of letters, digits
    /// and inner hyphens, the last not all digits.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let invalid = || ParseError("Email must be a valid email address".into());
        let text = raw.trim().nfkc().collect::<String>().to_lowercase();
        if text.is_empty() {
            return Err(ParseError("Email is required".into()));
        }
        if text.len() > Self::MAX_LEN || text.chars().any(|c| hidden(c) || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = text.rsplit_once('@').ok_or_else(invalid)?;
        if !valid_local_part(local) || !valid_domain(domain) {
            return Err(invalid());
        }
        Ok(Self(text))
    }

    /// The address, lower-cased.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The invisible characters that reorder or hide text (Trojan-Source style): the
/// bidirectional embeddings, overrides, isolates and marks.
fn bidi_formatting(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Bidirectional formatting and zero-width characters: never part of an address
/// anyone typed on purpose, and a way to make two addresses look alike.
fn hidden(c: char) -> bool {
    bidi_formatting(c) || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

fn valid_local_part(local: &str) -> bool {
    const FORBIDDEN: &[char] = &['"', '(', ')', ',', ':', ';', '<', '>', '@', '[', ']', '\\'];
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !FORBIDDEN.contains(&c))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A username: 2 to 150 characters of ASCII letters, digits, `_`, `.` and `-`, starting
/// with a letter, digit or `_`. Kept as written; unique and matched case-insensitively.
/// ASCII only, so that every database folds case the same way (SQLite's `lower()` folds
/// ASCII alone).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// The fewest characters a username may have.
    pub const MIN_LEN: usize = 2;
    /// The most characters a username may have.
    pub const MAX_LEN: usize = 150;

    /// Trims `raw` and checks it against the rules above.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let text = raw.trim();
        let count = text.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&count) {
            return Err(ParseError(format!(
                "Username must be {} to {} characters long",
                Self::MIN_LEN,
                Self::MAX_LEN
            )));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        let first_ok = text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !first_ok || !text.chars().all(allowed) {
            return Err(ParseError(
                "Username may only contain ASCII letters, digits, '_', '.' and '-', and must start with a letter, digit or '_'".into(),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The username, as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a login names the account by: an email address or a username.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginIdentifier {
    /// Text with an `@`.
    Email(Email),
    /// Text without one.
    Username(Username),
}

impl LoginIdentifier {
    /// `None` when the text can be neither; no account can match it.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.contains('@') {
            Email::parse(raw).ok().map(Self::Email)
        } else {
            Username::parse(raw).ok().map(Self::Username)
        }
    }
}

/// A user's display name: not blank, at most 100 characters, trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// The most characters a display name may have.
    pub const MAX_LEN: usize = 100;

    /// Trims `raw`; refuses it blank, too long, or with a control (NUL included) or
    /// bidirectional-formatting character.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(ParseError("Name is required".into()));
        }
        if text.chars().any(|c| c.is_control() || bidi_formatting(c)) {
            return Err(ParseError(
                "Name must not contain control or bidirectional formatting characters".into(),
            ));
        }
        if text.chars().count() > Self::MAX_LEN {
            return Err(ParseError(format!(
                "Name must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        Ok(Self(text.to_owned()))
    }

    /// The name, trimmed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A short free-text biography, at most 500 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bio(String);

impl Bio {
    /// The most characters a biography may have.
    pub const MAX_LEN: usize = 500;

    /// Refuses `raw` if too long or with a control character other than a line break
    /// or tab (NUL included) or a bidirectional-formatting one; otherwise keeps it
    /// exactly as written (even empty).
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let forbidden =
            |c: char| (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || bidi_formatting(c);
        if raw.chars().any(forbidden) {
            return Err(ParseError(
                "Bio must not contain control or bidirectional formatting characters".into(),
            ));
        }
        if raw.chars().count() > Self::MAX_LEN {
            return Err(ParseError(format!(
                "Bio must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The biography, as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A plaintext password, NFKC-normalised so that the same password typed on different
/// keyboards hashes the same. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Normalises `raw`. Any text is a `Password`: the use cases check the policy.
    pub fn new(raw: &str) -> Self {
        Self(raw.nfkc().collect())
    }

    /// The normalised text, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its length in characters (Unicode scalar values) after normalisation, as the
    /// policy counts.
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A password hash as the hasher encodes it (a PHC string for argon2).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

/// What an account without a password stores: no hasher produces it (PHC strings and
/// bcrypt start with `$`, Django's with its algorithm's name).
const UNUSABLE: &str = "!";

impl PasswordHash {
    /// Wraps a hash the hasher produced or the store returned.
    pub fn new(encoded: String) -> Self {
        Self(encoded)
    }

    /// The hash of an account that has no password (moved in without one): no password
    /// matches it, until a reset sets one.
    pub fn unusable() -> Self {
        Self(UNUSABLE.to_owned())
    }

    /// Whether this is [`PasswordHash::unusable`].
    pub fn is_unusable(&self) -> bool {
        self.0 == UNUSABLE
    }

    /// The encoded hash, for the store and the hasher.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_unusable_marker_is_unusable() {
        assert!(PasswordHash::unusable().is_unusable());
        for hash in ["", "!!", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"] {
            assert!(!PasswordHash::new(hash.to_owned()).is_unusable(), "{hash}");
        }
    }

    #[test]
    fn email_is_lower_cased_and_trimmed() {
        let email = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
    }

    #[test]
    fn email_rejects_malformed_addresses() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a..b@example.com",
            ".a@example.com",
            "a@-example.com",
            "a@example.123",
            "a@@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn names_and_bios_refuse_control_and_bidi_characters() {
        for bad in [
            "Ada\u{0}",
            "Ada\u{7}x",
            "Ada\u{202E}ecaloveL",
            "A\u{2066}da",
            "A\nda",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "nul\u{0}here",
            "bell\u{7}",
            "\u{202E}reversed",
            "mark\u{200F}",
        ] {
            assert!(Bio::parse(bad).is_err(), "{bad:?}");
        }
        assert!(DisplayName::parse("Ada Lovelace, née Byron").is_ok());
        assert_eq!(
            Bio::parse("Line one\nLine two\tand a tab")
                .unwrap()
                .as_str(),
            "Line one\nLine two\tand a tab"
        );
    }

    #[test]
    fn emails_are_nfkc_and_refuse_hidden_characters() {
        assert_eq!(
            Email::parse("ＡＤＡ@Example.com").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "a\u{200B}da@example.com",
            "ada@exa\u{200D}mple.com",
            "\u{202E}ada@example.com",
            "ada\u{FEFF}@example.com",
            "ada\u{0}@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn username_rules() {
        assert_eq!(Username::parse("Ada_99").unwrap().as_str(), "Ada_99");
        assert_eq!(Username::parse("ab").unwrap().as_str(), "ab");
        for bad in [
            "a",
            "-ada",
            "ada lovelace",
            "ada@x",
            "Ádá",
            &"a".repeat(151),
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn login_identifier_picks_email_or_username() {
        assert!(matches!(
            LoginIdentifier::parse("A@Example.com"),
            Some(LoginIdentifier::Email(e)) if e.as_str() == "a@example.com"
        ));
        assert!(matches!(
            LoginIdentifier::parse("ada"),
            Some(LoginIdentifier::Username(_))
        ));
        assert_eq!(LoginIdentifier::parse("a b"), None);
    }

    #[test]
    fn display_name_and_bio_limits() {
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"é".repeat(100)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(101)).is_err());
        assert!(Bio::parse(&"x".repeat(500)).is_ok());
        assert!(Bio::parse(&"x".repeat(501)).is_err());
    }

    #[test]
    fn password_never_prints_and_is_normalised() {
        let password = Password::new("ﬁsh-secret");
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
        assert_eq!(format!("{password}"), "<redacted>");
        // NFKC folds the "ﬁ" ligature into "fi".
        assert_eq!(password.expose(), "fish-secret");
    }

    #[test]
    fn ids_are_time_ordered_v7() {
        let earlier = UserId::generate(DateTime::from_timestamp(1_000, 0).unwrap());
        let later = UserId::generate(DateTime::from_timestamp(2_000, 0).unwrap());
        assert!(earlier < later);
        assert_eq!(earlier.as_uuid().get_version_num(), 7);
        assert_eq!(UserId::parse(&earlier.to_string()).unwrap(), earlier);
    }
}
