//! The dialects' settings on the command line and in the environment, derived from
//! each dialect's name so that no dialect is named outside its own module:
//!
//! - `--dialects` / `PORTCULLIS_DIALECTS`: the dialects served (default: all);
//! - for each dialect, `--<name>-prefix` / `PORTCULLIS_<NAME>_PREFIX`, a path prefix;
//! - for each of a dialect's own settings with local id `<key>`, `--<name>-<key>` /
//!   `PORTCULLIS_<NAME>_<KEY>` (upper case, `-` as `_`).
//!
//! The server adds [`args`] to its command line and builds the mounts with [`mounts`];
//! both take the list of dialects ([`crate::DIALECTS`] in the server).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use clap::{Arg, ArgMatches, Command};

use crate::dialect::Dialect;

/// The one value a dialect module exports to describe itself. The list of dialects
/// ([`crate::DIALECTS`]) holds these.
pub struct DialectSpec {
    /// Lower-case ASCII letters: the name in `PORTCULLIS_DIALECTS`, and the stem of its
    /// settings' flags and variables (`--<name>-prefix`, `PORTCULLIS_<NAME>_PREFIX`).
    pub name: &'static str,
    /// Its own settings besides the prefix every dialect has, as clap arguments with
    /// local ids (`token-ttl-secs`), a default and a value parser that checks the
    /// range; [`args`] derives their flags and variables from the name.
    pub settings: fn() -> Vec<clap::Arg>,
    /// Builds the dialect from its settings' values.
    pub build: fn(&DialectSettings) -> Result<Arc<dyn Dialect>, SettingsError>,
}

/// For a [`DialectSpec`] of a dialect without settings of its own.
pub fn no_settings() -> Vec<clap::Arg> {
    Vec::new()
}

/// A dialect's setting that could not be used. Start-up stops with this message.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct SettingsError {
    /// The environment variable of the setting.
    pub variable: String,
    /// What is wrong with it.
    pub problem: String,
}

/// One enabled dialect, built, and where it is mounted.
#[derive(Clone)]
pub struct DialectMount {
    /// The dialect, built from its settings.
    pub dialect: Arc<dyn Dialect>,
    /// Prepended to every path of the dialect, e.g. `/api/v1`; empty for none.
    pub prefix: String,
}

impl fmt::Debug for DialectMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DialectMount")
            .field("dialect", &self.dialect.name())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl DialectMount {
    /// `spec` built with its default settings, at its documented paths.
    pub fn with_defaults(spec: &DialectSpec) -> Result<Self, SettingsError> {
        let settings = DialectSettings::defaults(spec)?;
        Ok(Self {
            dialect: (spec.build)(&settings)?,
            prefix: String::new(),
        })
    }
}

/// The values of one dialect's settings, as parsed from the command line and
/// environment (or their defaults), looked up by the setting's local id.
pub struct DialectSettings {
    dialect: &'static str,
    matches: ArgMatches,
}

impl DialectSettings {
    /// The defaults of `spec`'s settings, whatever the environment says.
    pub fn defaults(spec: &DialectSpec) -> Result<Self, SettingsError> {
        let args = (spec.settings)()
            .into_iter()
            .map(|arg| scoped(spec.name, arg).env(None::<&str>));
        let matches = Command::new(spec.name)
            .no_binary_name(true)
            .args(args)
            .try_get_matches_from(std::iter::empty::<String>())
            .map_err(|error| SettingsError {
                variable: variable(spec.name, "*"),
                problem: format!("the defaults do not parse: {error}"),
            })?;
        Ok(Self {
            dialect: spec.name,
            matches,
        })
    }

    /// The value of the setting with local id `key`.
    pub fn get<T: Any + Clone + Send + Sync + 'static>(
        &self,
        key: &str,
    ) -> Result<T, SettingsError> {
        let fail = |problem: String| SettingsError {
            variable: variable(self.dialect, key),
            problem,
        };
        match self.matches.try_get_one::<T>(&flag(self.dialect, key)) {
            Ok(Some(value)) => Ok(value.clone()),
            Ok(None) => Err(fail("no value and no default".into())),
            Err(error) => Err(fail(error.to_string())),
        }
    }
}

/// `arg`, a setting of `dialect` with a local id, under its flag, id and variable.
fn scoped(dialect: &str, arg: Arg) -> Arg {
    let key = arg.get_id().as_str().to_owned();
    arg.id(flag(dialect, &key))
        .long(flag(dialect, &key))
        .env(variable(dialect, &key))
}

/// `<name>-<key>`: a dialect setting's flag and id.
fn flag(dialect: &str, key: &str) -> String {
    format!("{dialect}-{key}")
}

/// `PORTCULLIS_<NAME>_<KEY>`: a dialect setting's environment variable.
pub fn variable(dialect: &str, key: &str) -> String {
    format!("PORTCULLIS_{}", flag(dialect, key))
        .to_ascii_uppercase()
        .replace('-', "_")
}

const DIALECTS_ID: &str = "dialects";
const PREFIX_KEY: &str = "prefix";

/// The settings of `dialects`, as arguments for the server's command line:
/// `--dialects`, then per dialect its prefix and its own settings, under a heading of
/// its own.
pub fn args(dialects: &'static [&'static DialectSpec]) -> Vec<Arg> {
    let names: Vec<&str> = dialects.iter().map(|spec| spec.name).collect();
    let mut args = vec![
        Arg::new(DIALECTS_ID)
            .long(DIALECTS_ID)
            .env("PORTCULLIS_DIALECTS")
            .value_name("NAMES")
            .help(format!(
                "The dialects served, comma-separated (any of {})",
                names.join(", ")
            ))
            .value_delimiter(',')
            .value_parser(move |text: &str| parse_dialect_name(dialects, text))
            .default_value(names.join(",")),
    ];
    for spec in dialects {
        let heading = format!("The {} dialect", spec.name);
        let prefix = Arg::new(PREFIX_KEY)
            .value_name("PATH")
            .help("A path prefix for the dialect's endpoints, such as /api/v1")
            .value_parser(parse_prefix)
            .default_value("");
        for arg in std::iter::once(prefix).chain((spec.settings)()) {
            args.push(scoped(spec.name, arg).help_heading(heading.clone()));
        }
    }
    args
}

fn parse_dialect_name(
    dialects: &'static [&'static DialectSpec],
    text: &str,
) -> Result<&'static str, String> {
    let wanted = text.trim().to_ascii_lowercase();
    dialects
        .iter()
        .map(|spec| spec.name)
        .find(|name| *name == wanted)
        .ok_or_else(|| {
            let known: Vec<&str> = dialects.iter().map(|spec| spec.name).collect();
            format!("unknown dialect {text:?}; known: {}", known.join(", "))
        })
}

fn parse_prefix(text: &str) -> Result<String, String> {
    let prefix = text.trim().trim_end_matches('/');
    if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.contains(char::is_whitespace)) {
        return Err(format!(
            "cannot use {prefix:?}: a prefix is a path such as /api/v1"
        ));
    }
    Ok(prefix.to_owned())
}

/// The enabled ones of `dialects`, built from their settings in `matches` (parsed with
/// [`args`]), in the list's order.
pub fn mounts(
    dialects: &[&DialectSpec],
    matches: &ArgMatches,
) -> Result<Vec<DialectMount>, SettingsError> {
    let enabled: Vec<&'static str> = matches
        .try_get_many::<&'static str>(DIALECTS_ID)
        .ok()
        .flatten()
        .map(|names| names.copied().collect())
        .unwrap_or_default();
    let mut mounts = Vec::new();
    for spec in dialects.iter().filter(|spec| enabled.contains(&spec.name)) {
        let settings = DialectSettings {
            dialect: spec.name,
            matches: matches.clone(),
        };
        mounts.push(DialectMount {
            prefix: settings.get::<String>(PREFIX_KEY)?,
            dialect: (spec.build)(&settings)?,
        });
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_derive_from_the_name() {
        assert_eq!(
            variable("pocketbase", "token-ttl-secs"),
            "PORTCULLIS_POCKETBASE_TOKEN_TTL_SECS"
        );
        assert_eq!(variable("cbs", "prefix"), "PORTCULLIS_CBS_PREFIX");
    }

    #[test]
    fn prefixes_are_paths() {
        assert_eq!(parse_prefix(" /api/v1/ ").unwrap(), "/api/v1");
        assert_eq!(parse_prefix("").unwrap(), "");
        assert!(parse_prefix("api").is_err());
        assert!(parse_prefix("/a b").is_err());
    }
}
