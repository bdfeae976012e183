//! Access and refresh tokens as JWTs: the claim rules and the signing and verifying
//! every codec shares, and [`JwtCodec`], the codec of one fixed HS256 key
//! (`PORTCULLIS_JWT_SECRET`).

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use portcullis_domain::{Claims, KeyAlgorithm, TokenKind};
use portcullis_domain::{SessionId, TokenId, UserId};
use portcullis_domain::{TokenCodec, TokenIssueError, TokenVerifyError};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::ConfigError;

/// The claims the codec itself writes or judges. An entry of [`Claims::extra`] under
/// one of these names is dropped on issue, so a dialect's extras can never forge the
/// subject, session, expiry, issuer, audience or kind; on verify these names never
/// reach `extra`.
const REGISTERED: [&str; 9] = [
    "sub", "sid", "jti", "iat", "exp", "iss", "aud", "typ", "nbf",
];

/// Tokens longer than this are refused before any decoding, so that an oversized
/// one costs nothing to turn away: ours are a few hundred bytes plus their extras.
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Base64 decoders for secrets in configuration: operators paste whatever their tool
/// printed, so padding is optional and both alphabets are accepted.
pub(crate) const STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
pub(crate) const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The HMAC key that signs tokens. `Debug` never shows it.
#[derive(Clone)]
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    /// The shortest key accepted: 256 bits, HS256's own output size (RFC 7518 §3.2).
    pub const MIN_BYTES: usize = 32;

    /// Wraps raw key bytes; fails when there are fewer than [`Self::MIN_BYTES`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ConfigError> {
        if bytes.len() < Self::MIN_BYTES {
            return Err(ConfigError::SecretTooShort { bytes: bytes.len() });
        }
        Ok(Self(bytes))
    }

    /// A fresh key of [`Self::MIN_BYTES`] bytes from the operating system's generator,
    /// for deployments that accept every token being invalidated by a restart.
    pub fn generate() -> Result<Self, ConfigError> {
        let mut bytes = vec![0u8; Self::MIN_BYTES];
        getrandom::fill(&mut bytes).map_err(ConfigError::Random)?;
        Ok(Self(bytes))
    }

    /// Parses the configuration form: base64, standard or URL-safe alphabet, padded or
    /// not, surrounding whitespace ignored, decoding to at least [`Self::MIN_BYTES`].
    /// Errors never quote the text, as it may be the real secret with a typo in it.
    pub fn from_config_str(text: &str) -> Result<Self, ConfigError> {
        let text = text.trim();
        let bytes = STANDARD_ANY_PADDING
            .decode(text)
            .or_else(|_| URL_SAFE_ANY_PADDING.decode(text))
            .map_err(|_| ConfigError::SecretNotBase64)?;
        Self::from_bytes(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}

/// What a [`JwtCodec`] needs: its key, the `iss` and `aud` it writes and demands, and
/// how much clock skew it forgives when judging `exp`.
#[derive(Clone, Debug)]
pub struct JwtConfig {
    /// The HS256 key.
    pub secret: JwtSecret,
    /// Written as `iss` and demanded on verify, e.g. the server's public URL.
    pub issuer: String,
    /// Written as `aud` and demanded on verify: who the tokens are for.
    pub audience: String,
    /// Seconds a token stays acceptable past its `exp` (and before its `nbf`).
    pub leeway_seconds: u64,
}

impl JwtConfig {
    /// Default leeway: enough for skew between servers, too little to matter as a
    /// lifetime extension.
    pub const DEFAULT_LEEWAY_SECONDS: u64 = 5;

    /// The largest leeway accepted. Leeway is for clock skew; anything longer is
    /// a token lifetime in disguise and belongs in the TTL settings.
    pub const MAX_LEEWAY_SECONDS: u64 = 300;

    /// A configuration with [`Self::DEFAULT_LEEWAY_SECONDS`].
    pub fn new(secret: JwtSecret, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            secret,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_seconds: Self::DEFAULT_LEEWAY_SECONDS,
        }
    }
}

/// What every codec writes and demands besides the signature: `iss`, `aud`, the kind,
/// and `exp`/`nbf` judged with a leeway.
#[derive(Clone, Debug)]
pub(crate) struct ClaimRules {
    issuer: String,
    audience: String,
    leeway: TimeDelta,
}

impl ClaimRules {
    /// Fails on an empty issuer or audience (a token must name both to be bound to
    /// this deployment) or a leeway over [`JwtConfig::MAX_LEEWAY_SECONDS`].
    pub(crate) fn new(
        issuer: String,
        audience: String,
        leeway_seconds: u64,
    ) -> Result<Self, ConfigError> {
        if issuer.is_empty() {
            return Err(ConfigError::EmptyIssuer);
        }
        if audience.is_empty() {
            return Err(ConfigError::EmptyAudience);
        }
        let leeway = Some(leeway_seconds)
            .filter(|&seconds| seconds <= JwtConfig::MAX_LEEWAY_SECONDS)
            .and_then(|seconds| TimeDelta::try_seconds(i64::try_from(seconds).ok()?))
            .ok_or(ConfigError::LeewayTooLarge {
                seconds: leeway_seconds,
                max: JwtConfig::MAX_LEEWAY_SECONDS,
            })?;
        Ok(Self {
            issuer,
            audience,
            leeway,
        })
    }

    pub(crate) fn leeway(&self) -> TimeDelta {
        self.leeway
    }

    /// Everything but the signature and expiry: the parsed claims, or `None` if any
    /// registered claim is missing, mistyped or wrong for these rules and `kind`.
    /// Also returns the `nbf` deadline, if there is one.
    fn read_claims(
        &self,
        mut json: Map<String, Value>,
        kind: TokenKind,
    ) -> Option<(Claims, Option<DateTime<Utc>>)> {
        let mut take = |name: &str| json.remove(name);
        let iss = take("iss")?;
        let aud = take("aud")?;
        let typ = take("typ")?;
        let audience_matches = match &aud {
            Value::String(aud) => *aud == self.audience,
            // RFC 7519 §4.1.3 allows a list; we must be in it.
            Value::Array(list) => list.iter().any(|a| a.as_str() == Some(&self.audience)),
            _ => false,
        };
        if iss.as_str() != Some(&self.issuer)
            || !audience_matches
            || typ.as_str() != Some(kind.as_str())
        {
            return None;
        }
        let subject = UserId::parse(take("sub")?.as_str()?).ok()?;
        let session = SessionId::parse(take("sid")?.as_str()?).ok()?;
        let token_id = TokenId::parse(take("jti")?.as_str()?).ok()?;
        let issued_at = timestamp(&take("iat")?)?;
        let expires_at = timestamp(&take("exp")?)?;
        let not_before = match take("nbf") {
            Some(nbf) => Some(timestamp(&nbf)?),
            None => None,
        };
        let claims = Claims {
            subject,
            session,
            token_id,
            kind,
            issued_at,
            expires_at,
            extra: json,
        };
        Some((claims, not_before))
    }

    /// The payload of a token for `claims`.
    fn payload(&self, claims: &Claims) -> Map<String, Value> {
        let mut json: Map<String, Value> = claims
            .extra
            .iter()
            .filter(|(name, _)| !REGISTERED.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        json.insert("sub".into(), claims.subject.to_string().into());
        json.insert("sid".into(), claims.session.to_string().into());
        json.insert("jti".into(), claims.token_id.to_string().into());
        json.insert("iat".into(), claims.issued_at.timestamp().into());
        json.insert("exp".into(), claims.expires_at.timestamp().into());
        json.insert("iss".into(), self.issuer.clone().into());
        json.insert("aud".into(), self.audience.clone().into());
        json.insert("typ".into(), claims.kind.as_str().into());
        json
    }
}

/// A NumericDate claim as whole unix seconds; fractions and out-of-range values are
/// refused, as we never write them.
fn timestamp(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(value.as_i64()?, 0)
}

/// The library's name for `algorithm`.
pub(crate) fn jws_algorithm(algorithm: KeyAlgorithm) -> Algorithm {
    match algorithm {
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        KeyAlgorithm::HS256 => Algorithm::HS256,
    }
}

/// One usable key: its id, its algorithm (the only one it verifies), and the library's
/// keys for it. `Debug` shows only the id and algorithm.
pub(crate) struct KeyMaterial {
    pub(crate) kid: String,
    pub(crate) algorithm: KeyAlgorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Accepts tokens without a `kid`: the key that signed before tokens had ids.
    pub(crate) legacy: bool,
    validation: Validation,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("legacy", &self.legacy)
            .finish_non_exhaustive()
    }
}

impl KeyMaterial {
    fn new(
        kid: String,
        algorithm: KeyAlgorithm,
        encoding: EncodingKey,
        decoding: DecodingKey,
        legacy: bool,
    ) -> Self {
        // The library checks only the algorithm and the signature, and the algorithm
        // is pinned to this key's own: a token naming another (`none`, HS256 signed
        // with an Ed25519 public key as its secret, ...) is refused. The library's time
        // checks read the system clock and its `iss`/`aud` checks pass a token that
        // omits them, so every claim is judged by `ClaimRules` instead.
        let mut validation = Validation::new(jws_algorithm(algorithm));
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Self {
            kid,
            algorithm,
            encoding,
            decoding,
            legacy,
            validation,
        }
    }

    /// An HS256 key.
    pub(crate) fn hmac(kid: String, secret: &[u8], legacy: bool) -> Self {
        Self::new(
            kid,
            KeyAlgorithm::HS256,
            EncodingKey::from_secret(secret),
            DecodingKey::from_secret(secret),
            legacy,
        )
    }

    /// An Ed25519 key from its 32-byte seed (the private key). Also returns the public
    /// key it derives, to compare with the stored one.
    pub(crate) fn ed25519(kid: String, seed: &[u8]) -> Option<(Self, [u8; 32])> {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;

        let seed = <&[u8; 32]>::try_from(seed).ok()?;
        let signing = ed25519_dalek::SigningKey::from_bytes(seed);
        let public = signing.verifying_key().to_bytes();
        // The library takes the private key as PKCS#8 DER (zeroized when dropped).
        let der = signing.to_pkcs8_der().ok()?;
        let material = Self::new(
            kid,
            KeyAlgorithm::EdDSA,
            EncodingKey::from_ed_der(der.as_bytes()),
            DecodingKey::from_ed_der(&public),
            false,
        );
        Some((material, public))
    }
}

/// Encodes `claims` under `key`, with `kid` and the kind's `typ` in the header.
pub(crate) fn issue_with(
    rules: &ClaimRules,
    key: &KeyMaterial,
    claims: &Claims,
) -> Result<String, TokenIssueError> {
    let mut header = Header::new(jws_algorithm(key.algorithm));
    header.kid = Some(key.kid.clone());
    header.typ = Some(claims.kind.header_typ().to_owned());
    jsonwebtoken::encode(&header, &rules.payload(claims), &key.encoding)
        .map_err(|e| TokenIssueError(e.to_string()))
}

/// Verifies `token` as a token of `kind` with the key `find` returns for its header's
/// `kid` (`None`: the token has no `kid`; `find` MUST then return only a legacy key).
/// Returns the claims and the key that verified them.
///
/// Refused as [`TokenVerifyError::Invalid`]: an unknown `kid`; a header `alg` other
/// than the key's; a header `typ` other than the kind's (`at+jwt`, `rt+jwt`; a token
/// without `kid`, from before tokens had one, may carry the generic `JWT`); a bad
/// signature; any wrong or missing claim.
pub(crate) fn verify_with(
    rules: &ClaimRules,
    token: &str,
    kind: TokenKind,
    now: DateTime<Utc>,
    find: impl FnOnce(Option<&str>) -> Option<Arc<KeyMaterial>>,
) -> Result<(Claims, Arc<KeyMaterial>), TokenVerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenVerifyError::Invalid);
    }
    // `alg: none` (or any algorithm the library does not know) fails here already.
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenVerifyError::Invalid)?;
    let typ = header.typ.as_deref();
    let key = match header.kid.as_deref() {
        Some(kid) => {
            if typ != Some(kind.header_typ()) {
                return Err(TokenVerifyError::Invalid);
            }
            find(Some(kid))
        }
        None => {
            if !matches!(typ, None | Some("JWT")) {
                return Err(TokenVerifyError::Invalid);
            }
            find(None).filter(|key| key.legacy)
        }
    }
    .ok_or(TokenVerifyError::Invalid)?;
    if header.alg != jws_algorithm(key.algorithm) {
        return Err(TokenVerifyError::Invalid);
    }
    let json = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &key.validation)
        .map_err(|_| TokenVerifyError::Invalid)?
        .claims;
    let (claims, not_before) = rules
        .read_claims(json, kind)
        .ok_or(TokenVerifyError::Invalid)?;
    // Valid while `now < exp + leeway`: `exp` is the first instant the token is no
    // longer accepted (RFC 7519 §4.1.4), as a session's `expires_at` is.
    let deadline = claims
        .expires_at
        .checked_add_signed(rules.leeway)
        .ok_or(TokenVerifyError::Invalid)?;
    let earliest = not_before.and_then(|nbf| nbf.checked_sub_signed(rules.leeway));
    if earliest.is_some_and(|earliest| now < earliest) {
        return Err(TokenVerifyError::Invalid);
    }
    if now >= deadline {
        return Err(TokenVerifyError::Expired(Box::new(claims)));
    }
    Ok((claims, key))
}

/// The `kid` of a fixed HS256 key: a fingerprint (SHA-256 with a fixed prefix,
/// truncated to 64 bits, hex), so every instance configured with the same key names it
/// the same without storing anything. A one-way hash of a 256-bit random key gives
/// nothing away.
pub(crate) fn fingerprint_kid(secret: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"portcullis kid\0")
        .chain_update(secret)
        .finalize();
    format!("hs-{}", hex::encode(&digest[..8]))
}

/// The [`TokenCodec`] port with one fixed HS256 key (`PORTCULLIS_JWT_SECRET`, managed
/// outside Portcullis), whose `kid` is its fingerprint.
///
/// A token carries `sub` (user id), `sid` (session id), `jti`, `iat`, `exp` (unix
/// seconds), `iss`, `aud`, `typ` (`"access"` or `"refresh"`), and every entry of
/// [`Claims::extra`] at the top level, except extras named like one of those claims or
/// `nbf`, which are silently skipped: the codec's own values always win, so a
/// dialect's extras cannot forge a token's subject, lifetime or kind. Its header
/// carries `alg: HS256`, the key's `kid` and `typ` `at+jwt` or `rt+jwt`. Verification
/// pins the algorithm to HS256, demands this codec's `iss` and `aud` and the requested
/// kind (header and claim), judges `exp` (and `nbf`, if present) against the caller's
/// `now` with the configured leeway, and returns every other claim in `extra`. Tokens
/// without a `kid` (issued before tokens had one, with the same key) are accepted too,
/// so configuring the same key across the upgrade logs no one out.
#[derive(Clone)]
pub struct JwtCodec {
    key: Arc<KeyMaterial>,
    rules: ClaimRules,
}

impl JwtCodec {
    /// Builds the codec. Fails on an empty issuer or audience (a token must name both
    /// to be bound to this deployment) or a leeway over
    /// [`JwtConfig::MAX_LEEWAY_SECONDS`].
    pub fn new(config: JwtConfig) -> Result<Self, ConfigError> {
        let rules = ClaimRules::new(config.issuer, config.audience, config.leeway_seconds)?;
        let secret = config.secret.as_bytes();
        Ok(Self {
            key: Arc::new(KeyMaterial::hmac(fingerprint_kid(secret), secret, true)),
            rules,
        })
    }

    /// The `kid` its tokens carry.
    pub fn kid(&self) -> &str {
        &self.key.kid
    }
}

impl fmt::Debug for JwtCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtCodec")
            .field("kid", &self.key.kid)
            .field("issuer", &self.rules.issuer)
            .field("audience", &self.rules.audience)
            .field("leeway", &self.rules.leeway)
            .finish_non_exhaustive()
    }
}

impl TokenCodec for JwtCodec {
    fn issue(&self, claims: &Claims) -> Result<String, TokenIssueError> {
        issue_with(&self.rules, &self.key, claims)
    }

    fn verify(
        &self,
        token: &str,
        kind: TokenKind,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenVerifyError> {
        verify_with(&self.rules, token, kind, now, |kid| match kid {
            Some(kid) if kid != self.key.kid => None,
            _ => Some(self.key.clone()),
        })
        .map(|(claims, _)| claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    use serde_json::json;

    use super::*;

    const SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
    const ISSUER: &str = "https://auth.example.com";
    const AUDIENCE: &str = "example-api";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn secret() -> JwtSecret {
        JwtSecret::from_bytes(SECRET.to_vec()).unwrap()
    }

    fn codec() -> JwtCodec {
        JwtCodec::new(JwtConfig::new(secret(), ISSUER, AUDIENCE)).unwrap()
    }

    const IAT: i64 = 1_700_000_000;
    const EXP: i64 = IAT + 900;

    fn claims(kind: TokenKind) -> Claims {
        Claims {
            subject: UserId::generate(at(IAT - 100)),
            session: SessionId::generate(at(IAT - 50)),
            token_id: TokenId::generate(at(IAT)),
            kind,
            issued_at: at(IAT),
            expires_at: at(EXP),
            extra: Map::new(),
        }
    }

    fn parts(token: &str) -> (Value, Map<String, Value>, String) {
        let mut it = token.split('.');
        let json = |part: Option<&str>| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part.unwrap()).unwrap()).unwrap()
        };
        let header = json(it.next());
        let Value::Object(payload) = json(it.next()) else {
            panic!("payload is not an object")
        };
        (header, payload, it.next().unwrap().to_owned())
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    /// A token signed by `key` with `alg`, carrying `payload` verbatim.
    fn forge(alg: Algorithm, payload: &Map<String, Value>, key: &[u8]) -> String {
        jsonwebtoken::encode(&Header::new(alg), payload, &EncodingKey::from_secret(key)).unwrap()
    }

    /// The payload a correct access token for [`claims`] carries.
    fn good_payload() -> (Claims, Map<String, Value>) {
        let claims = claims(TokenKind::Access);
        let (_, payload, _) = parts(&codec().issue(&claims).unwrap());
        (claims, payload)
    }

    fn verify(token: &str) -> Result<Claims, TokenVerifyError> {
        codec().verify(token, TokenKind::Access, at(IAT + 1))
    }

    fn assert_invalid(result: Result<Claims, TokenVerifyError>, what: &str) {
        assert!(
            matches!(result, Err(TokenVerifyError::Invalid)),
            "{what}: {result:?}"
        );
    }

    #[test]
    fn round_trip_with_extras() {
        let codec = codec();
        let mut claims = claims(TokenKind::Refresh);
        claims.extra.insert("username".into(), json!("ada"));
        claims
            .extra
            .insert("collectionId".into(), json!("_pb_users_auth_"));
        claims
            .extra
            .insert("nested".into(), json!({"a": [1, 2, null]}));
        let token = codec.issue(&claims).unwrap();
        let back = codec
            .verify(&token, TokenKind::Refresh, at(IAT + 10))
            .unwrap();
        assert_eq!(back, claims);
    }

    #[test]
    fn wire_format() {
        let codec = codec();
        let claims = claims(TokenKind::Access);
        let (header, payload, _) = parts(&codec.issue(&claims).unwrap());
        assert_eq!(header["alg"], "HS256");
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["kid"], codec.kid());
        assert!(codec.kid().starts_with("hs-"));
        // The kid is a fingerprint: stable for the key, not the key.
        assert_eq!(codec.kid(), self::codec().kid());
        assert!(!codec.kid().contains("0123456789abcdef"));
        assert_eq!(
            Value::Object(payload),
            json!({
                "sub": claims.subject.to_string(),
                "sid": claims.session.to_string(),
                "jti": claims.token_id.to_string(),
                "iat": IAT,
                "exp": EXP,
                "iss": ISSUER,
                "aud": AUDIENCE,
                "typ": "access",
            })
        );
    }

    #[test]
    fn extras_cannot_override_registered_claims() {
        let codec = codec();
        let mut claims = claims(TokenKind::Access);
        for name in REGISTERED {
            claims.extra.insert(name.into(), json!("forged"));
        }
        claims.extra.insert("role".into(), json!("user"));
        let token = codec.issue(&claims).unwrap();
        let (_, payload, _) = parts(&token);
        assert!(!payload.contains_key("nbf"));
        assert_eq!(payload["exp"], EXP);
        assert_eq!(payload["typ"], "access");
        let back = codec.verify(&token, TokenKind::Access, at(IAT)).unwrap();
        assert_eq!(back.subject, claims.subject);
        assert_eq!(back.expires_at, claims.expires_at);
        assert_eq!(Value::Object(back.extra), json!({"role": "user"}));
    }

    #[test]
    fn sub_second_times_are_truncated_to_whole_seconds() {
        let codec = codec();
        let mut claims = claims(TokenKind::Access);
        claims.issued_at = DateTime::from_timestamp(IAT, 999_000_000).unwrap();
        let back = codec
            .verify(&codec.issue(&claims).unwrap(), TokenKind::Access, at(IAT))
            .unwrap();
        assert_eq!(back.issued_at, at(IAT));
    }

    #[test]
    fn wrong_secret_is_invalid() {
        let token = codec().issue(&claims(TokenKind::Access)).unwrap();
        let other = JwtCodec::new(JwtConfig::new(
            JwtSecret::from_bytes(vec![7; 32]).unwrap(),
            ISSUER,
            AUDIENCE,
        ))
        .unwrap();
        assert_invalid(
            other.verify(&token, TokenKind::Access, at(IAT)),
            "other key",
        );
    }

    #[test]
    fn tampered_payload_is_invalid() {
        let token = codec().issue(&claims(TokenKind::Access)).unwrap();
        let (header, mut payload, signature) = parts(&token);
        payload.insert("sub".into(), json!(UserId::generate(at(1)).to_string()));
        let tampered = format!(
            "{}.{}.{signature}",
            b64(&header),
            b64(&Value::Object(payload))
        );
        assert_invalid(verify(&tampered), "tampered");
        // A changed signature character, too (the first: all its bits are data).
        let at_signature = token.rfind('.').unwrap() + 1;
        let mut flipped = token.clone();
        let other = if token[at_signature..].starts_with('A') {
            "B"
        } else {
            "A"
        };
        flipped.replace_range(at_signature..=at_signature, other);
        assert_invalid(verify(&flipped), "flipped signature");
    }

    #[test]
    fn alg_none_is_invalid() {
        let (_, payload) = good_payload();
        let payload = b64(&Value::Object(payload));
        for alg in ["none", "None", "NONE"] {
            let header = b64(&json!({"alg": alg, "typ": "JWT"}));
            assert_invalid(verify(&format!("{header}.{payload}.")), alg);
        }
    }

    #[test]
    fn other_algorithms_with_the_same_secret_are_invalid() {
        let (_, payload) = good_payload();
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            assert_invalid(verify(&forge(alg, &payload, SECRET)), &format!("{alg:?}"));
        }
        // An HS256 signature under a header claiming RS256 (algorithm confusion).
        let token = forge(Algorithm::HS256, &payload, SECRET);
        let (_, _, signature) = parts(&token);
        let header = b64(&json!({"alg": "RS256", "typ": "JWT"}));
        let payload = b64(&Value::Object(payload));
        assert_invalid(verify(&format!("{header}.{payload}.{signature}")), "RS256");
    }

    #[test]
    fn a_correctly_forged_payload_verifies() {
        // Guards the tests below: their tokens fail for the one change they make.
        let (claims, payload) = good_payload();
        assert_eq!(
            verify(&forge(Algorithm::HS256, &payload, SECRET)).unwrap(),
            claims
        );
    }

    #[test]
    fn wrong_or_missing_registered_claims_are_invalid() {
        let (_, good) = good_payload();
        let cases: Vec<(&str, Option<Value>)> = vec![
            ("iss", Some(json!("https://evil.example.com"))),
            ("iss", Some(json!([ISSUER]))),
            ("iss", None),
            ("aud", Some(json!("other-api"))),
            ("aud", Some(json!(["other-api"]))),
            ("aud", Some(json!(null))),
            ("aud", None),
            ("typ", Some(json!("refresh"))),
            ("typ", Some(json!("Access"))),
            ("typ", None),
            ("sub", Some(json!("not-a-uuid"))),
            ("sub", Some(json!(42))),
            ("sub", None),
            ("sid", Some(json!("not-a-uuid"))),
            ("sid", None),
            ("jti", Some(json!(""))),
            ("jti", None),
            ("iat", Some(json!("1700000000"))),
            ("iat", None),
            ("exp", Some(json!(1.5e9))),
            ("exp", Some(json!(i64::MAX))),
            ("exp", Some(json!(u64::MAX))),
            ("exp", None),
            ("nbf", Some(json!("soon"))),
            ("nbf", Some(json!(IAT + 60))),
        ];
        for (name, value) in cases {
            let mut payload = good.clone();
            match &value {
                Some(value) => payload.insert(name.into(), value.clone()),
                None => payload.remove(name),
            };
            let token = forge(Algorithm::HS256, &payload, SECRET);
            assert_invalid(verify(&token), &format!("{name} = {value:?}"));
        }
    }

    #[test]
    fn audience_list_containing_ours_and_past_nbf_are_accepted() {
        let (claims, mut payload) = good_payload();
        payload.insert("aud".into(), json!(["other-api", AUDIENCE]));
        payload.insert("nbf".into(), json!(IAT));
        assert_eq!(
            verify(&forge(Algorithm::HS256, &payload, SECRET)).unwrap(),
            claims
        );
        // `nbf` within the leeway of `now` passes too.
        payload.insert("nbf".into(), json!(IAT + 1 + 5));
        assert_eq!(
            verify(&forge(Algorithm::HS256, &payload, SECRET)).unwrap(),
            claims
        );
    }

    #[test]
    fn kind_must_match() {
        let codec = codec();
        let refresh = codec.issue(&claims(TokenKind::Refresh)).unwrap();
        let access = codec.issue(&claims(TokenKind::Access)).unwrap();
        assert_invalid(
            codec.verify(&refresh, TokenKind::Access, at(IAT)),
            "refresh as access",
        );
        assert_invalid(
            codec.verify(&access, TokenKind::Refresh, at(IAT)),
            "access as refresh",
        );
    }

    #[test]
    fn other_issuer_or_audience_codec_refuses() {
        let token = codec().issue(&claims(TokenKind::Access)).unwrap();
        for (issuer, audience) in [
            ("https://other.example.com", AUDIENCE),
            (ISSUER, "other-api"),
        ] {
            let other = JwtCodec::new(JwtConfig::new(secret(), issuer, audience)).unwrap();
            assert_invalid(other.verify(&token, TokenKind::Access, at(IAT)), issuer);
        }
    }

    #[test]
    fn expiry_is_judged_against_now_with_the_leeway() {
        let codec = codec();
        let claims = claims(TokenKind::Access);
        let token = codec.issue(&claims).unwrap();
        let leeway = i64::try_from(JwtConfig::DEFAULT_LEEWAY_SECONDS).unwrap();
        let just_inside = at(EXP + leeway) - TimeDelta::milliseconds(1);
        assert_eq!(
            codec.verify(&token, TokenKind::Access, at(EXP)).unwrap(),
            claims
        );
        assert_eq!(
            codec
                .verify(&token, TokenKind::Access, just_inside)
                .unwrap(),
            claims
        );
        for outside in [at(EXP + leeway), at(EXP + leeway + 1), at(EXP + 86_400)] {
            match codec.verify(&token, TokenKind::Access, outside) {
                Err(TokenVerifyError::Expired(expired)) => assert_eq!(*expired, claims),
                other => panic!("at {outside}: {other:?}"),
            }
        }
        // The system clock plays no part: long past tokens pass when `now` is earlier.
        let old = Claims {
            issued_at: at(1_000),
            expires_at: at(2_000),
            ..claims
        };
        let token = codec.issue(&old).unwrap();
        assert_eq!(
            codec.verify(&token, TokenKind::Access, at(1_500)).unwrap(),
            old
        );
    }

    #[test]
    fn zero_leeway_expires_at_exp() {
        let mut config = JwtConfig::new(secret(), ISSUER, AUDIENCE);
        config.leeway_seconds = 0;
        let codec = JwtCodec::new(config).unwrap();
        let token = codec.issue(&claims(TokenKind::Access)).unwrap();
        assert!(codec.verify(&token, TokenKind::Access, at(EXP - 1)).is_ok());
        assert!(matches!(
            codec.verify(&token, TokenKind::Access, at(EXP)),
            Err(TokenVerifyError::Expired(_))
        ));
    }

    #[test]
    fn expired_tokens_that_are_otherwise_wrong_are_invalid() {
        let codec = codec();
        let late = at(EXP + 3600);
        let refresh = codec.issue(&claims(TokenKind::Refresh)).unwrap();
        assert_invalid(
            codec.verify(&refresh, TokenKind::Access, late),
            "expired, wrong kind",
        );
        let (_, mut payload) = good_payload();
        payload.insert("iss".into(), json!("https://evil.example.com"));
        let token = forge(Algorithm::HS256, &payload, SECRET);
        assert_invalid(
            codec.verify(&token, TokenKind::Access, late),
            "expired, wrong iss",
        );
        let (_, payload) = good_payload();
        let token = forge(Algorithm::HS256, &payload, &[7; 32]);
        assert_invalid(
            codec.verify(&token, TokenKind::Access, late),
            "expired, wrong key",
        );
    }

    #[test]
    fn malformed_input_is_invalid_without_panicking() {
        let token = codec().issue(&claims(TokenKind::Access)).unwrap();
        let huge = "a".repeat(1 << 20);
        let huge_segments = format!("{huge}.{huge}.{huge}");
        let just_under_limit = format!("{}.{}.{}", "e".repeat(30_000), "e".repeat(30_000), "x");
        let not_json = format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode("{"),
            URL_SAFE_NO_PAD.encode("[")
        );
        let array_payload = forge(Algorithm::HS256, &Map::new(), SECRET)
            .replace(&b64(&json!({})), &b64(&json!([1, 2])));
        let cases = [
            "",
            ".",
            "..",
            "...",
            "a.b.c",
            "a.b.c.d",
            "garbage",
            "\u{0}\u{ffff}.é.🙂",
            "eyJhbGciOiJIUzI1NiJ9..",
            &huge,
            &huge_segments,
            &just_under_limit,
            &not_json,
            &array_payload,
            &format!("{token}."),
            &format!(".{token}"),
            &format!("{token}{token}"),
            &token[..token.len() - 1],
            &token.replace('.', ".."),
            &token.replacen('.', "=.", 1),
            &token.replace(|c: char| c.is_ascii_lowercase(), "!"),
        ];
        for case in cases {
            let shown: String = case.chars().take(40).collect();
            assert_invalid(verify(case), &shown);
        }
    }

    #[test]
    fn secret_length_is_enforced() {
        assert!(matches!(
            JwtSecret::from_bytes(vec![1; 31]),
            Err(ConfigError::SecretTooShort { bytes: 31 })
        ));
        assert!(JwtSecret::from_bytes(Vec::new()).is_err());
        assert_eq!(
            JwtSecret::from_bytes(vec![1; 32]).unwrap().as_bytes(),
            &[1; 32]
        );
    }

    #[test]
    fn generated_secrets_are_random_and_long_enough() {
        let a = JwtSecret::generate().unwrap();
        let b = JwtSecret::generate().unwrap();
        assert_eq!(a.as_bytes().len(), JwtSecret::MIN_BYTES);
        assert_ne!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn config_strings_in_any_base64_flavour() {
        // 0xfb 0xff bytes encode to '+' and '/' (standard) or '-' and '_' (URL-safe).
        let bytes: Vec<u8> = [0xfb, 0xff, 0xfe].repeat(11);
        let standard = STANDARD.encode(&bytes);
        assert!(standard.contains('+') && standard.contains('/'));
        let url = URL_SAFE.encode(&bytes);
        let forms = [
            standard.clone(),
            standard.trim_end_matches('=').to_owned(),
            url.clone(),
            url.trim_end_matches('=').to_owned(),
            format!("  {standard}\n"),
        ];
        for form in forms {
            assert_eq!(
                JwtSecret::from_config_str(&form).unwrap().as_bytes(),
                bytes,
                "{form}"
            );
        }
        let padded = STANDARD.encode([9u8; 32]);
        assert!(padded.ends_with('='));
        assert_eq!(
            JwtSecret::from_config_str(&padded).unwrap().as_bytes(),
            [9; 32]
        );
    }

    #[test]
    fn config_strings_that_are_not_base64_or_too_short_are_refused() {
        let short = STANDARD.encode([1u8; 31]);
        assert!(matches!(
            JwtSecret::from_config_str(&short),
            Err(ConfigError::SecretTooShort { bytes: 31 })
        ));
        let mixed = format!("{}-+", STANDARD.encode([1u8; 33]));
        for bad in [
            "",
            "   ",
            "this is not base64 at all, not even close!!",
            "my super secret password that is long enough",
            &mixed,
        ] {
            let err = JwtSecret::from_config_str(bad).unwrap_err();
            let message = err.to_string();
            assert!(message.contains("32"), "{message}");
            assert!(
                bad.trim().is_empty() || !message.contains(bad.trim()),
                "{message}"
            );
        }
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let secret = JwtSecret::from_bytes(b"a-very-recognisable-secret-value!".to_vec()).unwrap();
        assert_eq!(format!("{secret:?}"), "JwtSecret(<redacted>)");
        let config = JwtConfig::new(secret, ISSUER, AUDIENCE);
        let codec = JwtCodec::new(config.clone()).unwrap();
        for text in [
            format!("{config:?}"),
            format!("{codec:?}"),
            format!("{config:#?}"),
        ] {
            assert!(!text.contains("recognisable"), "{text}");
            assert!(!text.contains("97, 45"), "bytes leaked: {text}");
            assert!(text.contains(ISSUER), "{text}");
        }
    }

    #[test]
    fn bad_codec_settings_are_refused() {
        let with = |issuer: &str, audience: &str, leeway| {
            let mut config = JwtConfig::new(secret(), issuer, audience);
            config.leeway_seconds = leeway;
            JwtCodec::new(config)
        };
        assert!(matches!(
            with("", AUDIENCE, 5),
            Err(ConfigError::EmptyIssuer)
        ));
        assert!(matches!(
            with(ISSUER, "", 5),
            Err(ConfigError::EmptyAudience)
        ));
        assert!(with(ISSUER, AUDIENCE, JwtConfig::MAX_LEEWAY_SECONDS).is_ok());
        for leeway in [JwtConfig::MAX_LEEWAY_SECONDS + 1, u64::MAX] {
            assert!(matches!(
                with(ISSUER, AUDIENCE, leeway),
                Err(ConfigError::LeewayTooLarge { .. })
            ));
        }
    }
}
