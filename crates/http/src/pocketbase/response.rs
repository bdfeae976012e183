//! pocketbase response bodies and the `pb_auth` cookie.

use chrono::{DateTime, Utc};
use portcullis_domain::{Profile, User};
use serde::Serialize;
use serde_json::{Number, Value};

use crate::cookie::{encode_uri_component, http_date};

/// The id of PocketBase's built-in `users` auth collection.
pub(crate) const COLLECTION_ID: &str = "_pb_users_auth_";
/// The name of PocketBase's built-in `users` auth collection.
pub(crate) const COLLECTION_NAME: &str = "users";
/// The token `type` claim of a PocketBase auth-record token.
pub(crate) const TOKEN_TYPE: &str = "authRecord";

/// The cookie the PocketBase JS SDK keeps its auth store in.
pub(crate) const COOKIE_NAME: &str = "pb_auth";
/// Past this many bytes the SDK strips the cookie's record to its bare minimum
/// (RFC 6265's recommended cookie size).
const COOKIE_SIZE_LIMIT: usize = 4096;

/// `{"record": Record, "token": "<jwt>"}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuthBody {
    pub record: RecordBody,
    pub token: String,
}

/// A `users` auth record. The fields are declared in alphabetical order, the order
/// PocketBase writes them in (serde keeps declaration order).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordBody {
    pub avatar: String,
    pub collection_id: &'static str,
    pub collection_name: &'static str,
    pub created: String,
    pub email: String,
    pub email_visibility: bool,
    pub id: String,
    pub language: String,
    pub location: Location,
    pub token: String,
    pub unit: String,
    pub updated: String,
    pub username: String,
    pub verified: bool,
}

/// The record's `location` field.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Location {
    #[schema(value_type = f64)]
    pub lat: Number,
    #[schema(value_type = f64)]
    pub lon: Number,
    pub name: String,
}

impl From<&User> for RecordBody {
    fn from(user: &User) -> Self {
        let profile = &user.profile;
        Self {
            avatar: text(profile, "avatar", ""),
            collection_id: COLLECTION_ID,
            collection_name: COLLECTION_NAME,
            created: pocketbase_date(user.created_at),
            // PocketBase shows the email to the record's owner whatever
            // `emailVisibility` says, and the caller of a login is the owner; an account
            // without one has "", as in PocketBase.
            email: user
                .email
                .as_ref()
                .map(|e| e.as_str().to_owned())
                .unwrap_or_default(),
            email_visibility: profile
                .get("emailVisibility")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            id: user.id.to_string(),
            language: text(profile, "language", "en"),
            location: Location::from_profile(profile),
            token: text(profile, "token", ""),
            unit: text(profile, "unit", "metric"),
            updated: pocketbase_date(user.updated_at),
            username: user
                .username
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default(),
            verified: user.email_verified,
        }
    }
}

impl Location {
    /// The profile's `location` object; each of `lat`, `lon` (numbers) and `name` (a
    /// string) that it lacks, or has with another type, takes its default (0, 0, "").
    fn from_profile(profile: &Profile) -> Self {
        let location = profile.get("location").and_then(Value::as_object);
        let field = |key: &str| location.and_then(|l| l.get(key));
        let number = |key: &str| match field(key) {
            Some(Value::Number(n)) => n.clone(),
            _ => Number::from(0),
        };
        Self {
            lat: number("lat"),
            lon: number("lon"),
            name: field("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// The profile's string under `key`, else `default`.
fn text(profile: &Profile, key: &str, default: &str) -> String {
    profile.get_str(key).unwrap_or(default).to_owned()
}

/// PocketBase's date format: UTC, milliseconds, a space, a `Z`
/// (`2024-01-26 15:05:23.262Z`).
pub(crate) fn pocketbase_date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
}

/// What the SDK stores in the cookie.
#[derive(Serialize)]
struct CookieData<'a, M> {
    token: &'a str,
    model: M,
}

/// The record as the SDK strips it to fit a cookie: `id` and `email`, then those of
/// `collectionId`, `collectionName` and `verified` it has, in the record's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StrippedRecord<'a> {
    id: &'a str,
    email: &'a str,
    collection_id: &'a str,
    collection_name: &'a str,
    verified: bool,
}

/// The `Set-Cookie` value the SDK's
/// `authStore.exportToCookie({httpOnly: false, secure})` writes:
/// `pb_auth=<encodeURIComponent(JSON {"token", "model"})>; Path=/; Expires=<token
/// expiry>[; Secure]; SameSite=Strict`. Not `HttpOnly`: the web client reads it from
/// `document.cookie`. A cookie over 4096 bytes carries the stripped record instead,
/// as the SDK does.
pub(crate) fn auth_cookie(
    token: &str,
    record: &RecordBody,
    expires_at: DateTime<Utc>,
    secure: bool,
) -> Result<String, serde_json::Error> {
    let attributes = format!(
        "; Path=/; Expires={}{}; SameSite=Strict",
        http_date(expires_at),
        if secure { "; Secure" } else { "" }
    );
    let cookie =
        |json: String| format!("{COOKIE_NAME}={}{attributes}", encode_uri_component(&json));
    let full = cookie(serde_json::to_string(&CookieData {
        token,
        model: record,
    })?);
    if full.len() <= COOKIE_SIZE_LIMIT {
        return Ok(full);
    }
    Ok(cookie(serde_json::to_string(&CookieData {
        token,
        model: StrippedRecord {
            id: &record.id,
            email: &record.email,
            collection_id: record.collection_id,
            collection_name: record.collection_name,
            verified: record.verified,
        },
    })?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cookie::decode_uri_component;

    fn record() -> RecordBody {
        RecordBody {
            avatar: String::new(),
            collection_id: COLLECTION_ID,
            collection_name: COLLECTION_NAME,
            created: "2024-01-26 15:05:23.262Z".into(),
            email: "ada@example.com".into(),
            email_visibility: false,
            id: "0190a0a0-0000-7000-8000-000000000000".into(),
            language: "en".into(),
            location: Location::from_profile(&Profile::default()),
            token: String::new(),
            unit: "metric".into(),
            updated: "2024-01-26 15:05:23.262Z".into(),
            username: "ada".into(),
            verified: true,
        }
    }

    fn epoch_plus(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn dates_have_milliseconds_a_space_and_a_z() {
        let at = DateTime::parse_from_rfc3339("2024-01-26T15:05:23.262917Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap();
        assert_eq!(pocketbase_date(at), "2024-01-26 15:05:23.262Z");
        assert_eq!(pocketbase_date(epoch_plus(0)), "1970-01-01 00:00:00.000Z");
    }

    #[test]
    fn location_defaults_fill_what_the_profile_lacks() {
        let mut profile = Profile::default();
        let default = serde_json::to_value(Location::from_profile(&profile)).ok();
        assert_eq!(default, Some(json!({"lat": 0, "lon": 0, "name": ""})));
        profile.set("location", json!({"lat": 52.52, "name": 7, "extra": true}));
        let partial = serde_json::to_value(Location::from_profile(&profile)).ok();
        assert_eq!(partial, Some(json!({"lat": 52.52, "lon": 0, "name": ""})));
    }

    #[test]
    fn the_cookie_is_the_sdks() {
        let record = record();
        let cookie = auth_cookie("a.b.c", &record, epoch_plus(0), false).unwrap();
        let (value, attributes) = cookie.split_once(';').unwrap();
        assert_eq!(
            attributes,
            " Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Strict"
        );
        let value = value.strip_prefix("pb_auth=").unwrap();
        assert!(!value.contains(['"', '{', ' ', ',', ';']), "{value}");
        let json = decode_uri_component(value).unwrap();
        let expected = format!(
            r#"{{"token":"a.b.c","model":{}}}"#,
            serde_json::to_string(&record).unwrap()
        );
        assert_eq!(json, expected);
        let secure = auth_cookie("a.b.c", &record, epoch_plus(0), true).unwrap();
        assert!(
            secure.ends_with("; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; SameSite=Strict"),
            "{secure}"
        );
    }

    #[test]
    fn an_oversized_cookie_carries_the_stripped_record() {
        let mut record = record();
        record.avatar = "a".repeat(4000);
        let cookie = auth_cookie("a.b.c", &record, epoch_plus(0), true).unwrap();
        let value = cookie
            .split_once(';')
            .and_then(|(v, _)| v.strip_prefix("pb_auth="))
            .unwrap();
        let json: Value = serde_json::from_str(&decode_uri_component(value).unwrap()).unwrap();
        assert_eq!(
            json,
            json!({"token": "a.b.c", "model": {
                "id": record.id, "email": "ada@example.com",
                "collectionId": "_pb_users_auth_", "collectionName": "users", "verified": true,
            }})
        );
    }
}
