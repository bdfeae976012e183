//! The server's configuration: read once from the environment, typed, with defaults.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::TimeDelta;
use portcullis_crypto::{Argon2Params, JwtSecret};
use portcullis_domain::{AuthConfig, PasswordPolicy};
use portcullis_http::{DialectMount, DialectName, HttpConfig, PocketbaseConfig};

/// A variable that is set but unusable. Start-up stops with this message.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// Everything the server reads from its environment. See the README's table.
#[derive(Clone, Debug)]
pub struct Config {
    /// `PORTCULLIS_BIND`, default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// `DATABASE_URL`, default `portcullis.db` (SQLite in the working directory).
    pub database_url: String,
    /// `PORTCULLIS_DB_POOL_SIZE`, default 10.
    pub pool_size: u32,
    /// `PORTCULLIS_MIGRATE_ON_START`, default true.
    pub migrate_on_start: bool,
    /// `PORTCULLIS_JWT_SECRET` (base64, at least 32 bytes). Unset: generated once and
    /// kept in the database.
    pub jwt_secret: Option<JwtSecret>,
    /// `PORTCULLIS_JWT_ISSUER`, default `portcullis`.
    pub issuer: String,
    /// `PORTCULLIS_JWT_AUDIENCE`, default `portcullis`.
    pub audience: String,
    /// `PORTCULLIS_JWT_LEEWAY_SECS`, default 5.
    pub jwt_leeway_seconds: u64,
    pub auth: AuthConfig,
    pub argon2: Argon2Params,
    /// `PORTCULLIS_WORKERS`, default: one per core.
    pub workers: Option<usize>,
    /// `PORTCULLIS_SHUTDOWN_TIMEOUT_SECS`, default 30: how long in-flight requests get
    /// to finish after SIGINT/SIGTERM.
    pub shutdown_timeout: Duration,
    /// `PORTCULLIS_DIALECTS` (comma-separated, default all), `PORTCULLIS_<DIALECT>_PREFIX`
    /// (default none), `PORTCULLIS_COOKIE_SECURE` (default true),
    /// `PORTCULLIS_POCKETBASE_TOKEN_TTL_SECS` (default 1209600) and
    /// `PORTCULLIS_POCKETBASE_COOKIE` (default true).
    pub http: HttpConfig,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(&lookup);
        let defaults = AuthConfig::default();
        let policy = PasswordPolicy::default();
        let argon2 = Argon2Params::default();
        let auth = AuthConfig {
            access_ttl: vars.seconds("PORTCULLIS_ACCESS_TOKEN_TTL_SECS", defaults.access_ttl)?,
            refresh_ttl: vars.seconds("PORTCULLIS_REFRESH_TOKEN_TTL_SECS", defaults.refresh_ttl)?,
            session_lifetime: vars
                .seconds("PORTCULLIS_SESSION_TTL_SECS", defaults.session_lifetime)?,
            reset_token_ttl: vars
                .seconds("PORTCULLIS_RESET_TOKEN_TTL_SECS", defaults.reset_token_ttl)?,
            password_policy: PasswordPolicy {
                min_chars: vars.parse("PORTCULLIS_PASSWORD_MIN_LENGTH", policy.min_chars)?,
                max_chars: vars.parse("PORTCULLIS_PASSWORD_MAX_LENGTH", policy.max_chars)?,
            },
        };
        if auth.password_policy.min_chars == 0
            || auth.password_policy.min_chars > auth.password_policy.max_chars
            || auth.password_policy.max_chars > 4096
        {
            return Err(ConfigError {
                variable: "PORTCULLIS_PASSWORD_MIN_LENGTH",
                problem: "need 1 <= min length <= max length <= 4096".into(),
            });
        }
        let jwt_secret = vars
            .text("PORTCULLIS_JWT_SECRET")
            .map(|text| {
                JwtSecret::from_config_str(&text).map_err(|e| ConfigError {
                    variable: "PORTCULLIS_JWT_SECRET",
                    problem: e.to_string(),
                })
            })
            .transpose()?;
        let pool_size = vars.parse("PORTCULLIS_DB_POOL_SIZE", 10u32)?;
        if pool_size == 0 {
            return Err(ConfigError {
                variable: "PORTCULLIS_DB_POOL_SIZE",
                problem: "must be at least 1".into(),
            });
        }
        Ok(Self {
            bind: vars.parse("PORTCULLIS_BIND", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            database_url: vars
                .text("DATABASE_URL")
                .unwrap_or_else(|| "portcullis.db".to_owned()),
            pool_size,
            migrate_on_start: vars.flag("PORTCULLIS_MIGRATE_ON_START", true)?,
            jwt_secret,
            issuer: vars
                .text("PORTCULLIS_JWT_ISSUER")
                .unwrap_or_else(|| "portcullis".into()),
            audience: vars
                .text("PORTCULLIS_JWT_AUDIENCE")
                .unwrap_or_else(|| "portcullis".into()),
            jwt_leeway_seconds: vars.parse("PORTCULLIS_JWT_LEEWAY_SECS", 5u64)?,
            auth,
            argon2: Argon2Params {
                memory_kib: vars.parse("PORTCULLIS_ARGON2_MEMORY_KIB", argon2.memory_kib)?,
                iterations: vars.parse("PORTCULLIS_ARGON2_ITERATIONS", argon2.iterations)?,
                parallelism: vars.parse("PORTCULLIS_ARGON2_PARALLELISM", argon2.parallelism)?,
            },
            workers: vars
                .text("PORTCULLIS_WORKERS")
                .map(|_| vars.parse("PORTCULLIS_WORKERS", 1usize))
                .transpose()?,
            shutdown_timeout: Duration::from_secs(
                vars.parse("PORTCULLIS_SHUTDOWN_TIMEOUT_SECS", 30u64)?,
            ),
            http: http_config(&vars)?,
        })
    }
}

fn http_config(vars: &Vars<'_>) -> Result<HttpConfig, ConfigError> {
    let defaults = HttpConfig::default();
    let enabled = match vars.text("PORTCULLIS_DIALECTS") {
        None => DialectName::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                DialectName::parse(&name.to_ascii_lowercase()).ok_or_else(|| ConfigError {
                    variable: "PORTCULLIS_DIALECTS",
                    problem: format!(
                        "unknown dialect {name:?}; known: {}",
                        DialectName::ALL.map(DialectName::as_str).join(", ")
                    ),
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut dialects = Vec::new();
    for dialect in DialectName::ALL.into_iter().filter(|d| enabled.contains(d)) {
        let variable = prefix_variable(dialect);
        let prefix = vars.text(variable).unwrap_or_default();
        let prefix = prefix.trim().trim_end_matches('/');
        if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.contains(char::is_whitespace))
        {
            return Err(ConfigError {
                variable,
                problem: format!("cannot use {prefix:?}: a prefix is a path such as /api/v1"),
            });
        }
        dialects.push(DialectMount {
            dialect,
            prefix: prefix.to_owned(),
        });
    }
    Ok(HttpConfig {
        dialects,
        cookie_secure: vars.flag("PORTCULLIS_COOKIE_SECURE", defaults.cookie_secure)?,
        pocketbase: PocketbaseConfig {
            token_ttl: vars.seconds(
                "PORTCULLIS_POCKETBASE_TOKEN_TTL_SECS",
                defaults.pocketbase.token_ttl,
            )?,
            cookie: vars.flag("PORTCULLIS_POCKETBASE_COOKIE", defaults.pocketbase.cookie)?,
        },
        ..defaults
    })
}

fn prefix_variable(dialect: DialectName) -> &'static str {
    match dialect {
        DialectName::Authapi => "PORTCULLIS_AUTHAPI_PREFIX",
        DialectName::Ioweyou => "PORTCULLIS_IOWEYOU_PREFIX",
        DialectName::Cbs => "PORTCULLIS_CBS_PREFIX",
        DialectName::Pocketbase => "PORTCULLIS_POCKETBASE_PREFIX",
    }
}

struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    /// The value, if set and not blank.
    fn text(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn parse<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self.text(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|e| ConfigError {
                variable: name,
                problem: format!("cannot use {raw:?}: {e}"),
            }),
        }
    }

    fn seconds(&self, name: &'static str, default: TimeDelta) -> Result<TimeDelta, ConfigError> {
        let seconds: i64 = self.parse(name, default.num_seconds())?;
        if seconds <= 0 {
            return Err(ConfigError {
                variable: name,
                problem: "must be a positive number of seconds".into(),
            });
        }
        Ok(TimeDelta::seconds(seconds))
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.text(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(ConfigError {
                variable: name,
                problem: format!("cannot use {v:?}: expected true or false"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_need_no_configuration() {
        let config = config(&[]).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url, "portcullis.db");
        assert!(config.jwt_secret.is_none());
        assert!(config.migrate_on_start);
        assert_eq!(config.auth, AuthConfig::default());
        assert_eq!(config.argon2, Argon2Params::default());
    }

    #[test]
    fn values_override_defaults() {
        let config = config(&[
            ("PORTCULLIS_BIND", "0.0.0.0:9000"),
            ("DATABASE_URL", "postgres://u:p@db/auth"),
            ("PORTCULLIS_ACCESS_TOKEN_TTL_SECS", "60"),
            ("PORTCULLIS_MIGRATE_ON_START", "false"),
            (
                "PORTCULLIS_JWT_SECRET",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
        ])
        .unwrap();
        assert_eq!(config.bind.port(), 9000);
        assert_eq!(config.auth.access_ttl, TimeDelta::seconds(60));
        assert!(!config.migrate_on_start);
        assert!(config.jwt_secret.is_some());
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (name, value) in [
            ("PORTCULLIS_BIND", "nowhere"),
            ("PORTCULLIS_ACCESS_TOKEN_TTL_SECS", "-5"),
            ("PORTCULLIS_DB_POOL_SIZE", "0"),
            ("PORTCULLIS_MIGRATE_ON_START", "maybe"),
            ("PORTCULLIS_JWT_SECRET", "c2hvcnQ="),
            ("PORTCULLIS_ARGON2_MEMORY_KIB", "lots"),
        ] {
            let error = config(&[(name, value)]).unwrap_err();
            assert_eq!(error.variable, name);
            assert!(error.to_string().starts_with(name));
        }
    }

    #[test]
    fn dialects_and_prefixes() {
        let all = config(&[]).unwrap().http;
        assert_eq!(all.dialects, DialectMount::all_at_documented_paths());
        assert!(all.cookie_secure);
        let some = config(&[
            ("PORTCULLIS_DIALECTS", "pocketbase, AUTHAPI"),
            ("PORTCULLIS_POCKETBASE_PREFIX", "/api/v1/"),
            ("PORTCULLIS_COOKIE_SECURE", "false"),
            ("PORTCULLIS_POCKETBASE_TOKEN_TTL_SECS", "60"),
            ("PORTCULLIS_POCKETBASE_COOKIE", "off"),
        ])
        .unwrap()
        .http;
        let mounted: Vec<_> = some
            .dialects
            .iter()
            .map(|m| (m.dialect, m.prefix.as_str()))
            .collect();
        assert_eq!(
            mounted,
            [
                (DialectName::Authapi, ""),
                (DialectName::Pocketbase, "/api/v1")
            ]
        );
        assert!(!some.cookie_secure);
        assert!(!some.pocketbase.cookie);
        assert_eq!(some.pocketbase.token_ttl, TimeDelta::seconds(60));
        for (name, value) in [
            ("PORTCULLIS_DIALECTS", "authapi,soap"),
            ("PORTCULLIS_CBS_PREFIX", "api"),
            ("PORTCULLIS_COOKIE_SECURE", "sometimes"),
        ] {
            assert_eq!(config(&[(name, value)]).unwrap_err().variable, name);
        }
    }

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let config = config(&[(
            "PORTCULLIS_JWT_SECRET",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )])
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"));
        assert!(!shown.contains("0123456789abcdef"));
    }
}
