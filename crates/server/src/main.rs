//! `portcullis`: serve, migrate, and manage users.

use std::ffi::OsString;
use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{SecondsFormat, TimeDelta};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use portcullis_crypto::KeyState;
use portcullis_domain::{
    AuthEvent, ClientId, ClientRepository as _, Clock as _, DisplayName, Email, EventFilter,
    EventRepository as _, MailOutbox as _, NewUser, Password, Profile, RegisterClientError,
    RegisterError, SystemClock, UserId, UserRepository as _, Username,
};
use portcullis_server::app::key_ring;
use portcullis_server::config::{naming_variable, with_settings};
use portcullis_server::import::{self, ImportCommand};
use portcullis_server::{
    Application, Config, LogMailer, PurgeConfig, build_service, mailer_for, open_database, purge,
};

/// Every setting is an option of every command that runs (see `portcullis serve
/// --help`), read from its flag, else its environment variable, else its default.
#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "An authentication server speaking four API dialects"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Delete now what can no longer matter (expired sessions and tokens, stale throttle
    /// counters, events and failed mail older than PORTCULLIS_EVENT_RETENTION_DAYS) and
    /// print how many of each; the server does it every PORTCULLIS_PURGE_INTERVAL_SECS.
    Purge,
    /// List security events (logins, registrations, refreshes, logouts, password
    /// resets, throttled attempts), newest first.
    Events {
        /// Only this account's: its email, or its user id.
        #[arg(long)]
        user: Option<String>,
        /// Only those of the last DURATION (e.g. `15m`, `24h`, `7d`).
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        /// At most this many.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        limit: u32,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The mail outbox (password-reset messages waiting to be delivered).
    Mail {
        #[command(subcommand)]
        action: MailCommand,
    },
    /// Manage the token-signing keys (kept in the database, encrypted under
    /// PORTCULLIS_SECRETS_KEY).
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Manage the API clients that may introspect and revoke tokens
    /// (POST /oauth/introspect, /oauth/revoke, with HTTP Basic).
    Client {
        #[command(subcommand)]
        action: ClientCommand,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Move another application's accounts in, with their password hashes (bcrypt,
    /// Django PBKDF2, argon2), upgraded to argon2id at each account's first login.
    Import {
        #[command(subcommand)]
        source: ImportCommand,
    },
}

#[derive(Subcommand)]
enum MailCommand {
    /// List the messages waiting to be delivered and those given up, oldest first.
    Status {
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List every signing key, oldest first: kid, algorithm, state, and when it was
    /// created, activated and retired.
    List,
    /// Make a new key (of PORTCULLIS_JWT_ALG) the one that signs, on every instance
    /// within 60 s. Older keys keep verifying until every token they signed has
    /// expired, then retire by themselves. Prints the new key's kid.
    Rotate,
    /// Retire a key now: the tokens it signed stop verifying. The active key cannot be
    /// retired (rotate first).
    Retire {
        /// The key's id (`portcullis keys list`).
        kid: String,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client; prints its id and its secret, which is shown this once.
    Create {
        #[arg(long)]
        name: String,
        /// Print `{"client_id": ..., "client_secret": ...}` instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the registered clients, oldest first (never their secrets).
    List,
    /// Remove a client: its credentials stop working at once.
    Delete {
        /// The client's id.
        id: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password is read from standard input (one line) or, on a
    /// terminal, prompted for without echo; never from the command line.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        username: Option<String>,
        /// Make the user change the password at next login.
        #[arg(long)]
        must_change_password: bool,
    },
    /// Print a password-reset token for an account (for operators).
    ResetToken {
        #[arg(long)]
        email: String,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    let command = command_line();
    let matches = command
        .clone()
        .try_get_matches_from(serve_by_default(&command, std::env::args_os().collect()))
        .map_err(|e| naming_variable(&command, e))
        .unwrap_or_else(|e| e.exit());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let (leaf, leaf_matches) = leaf(&command, &matches);
    let config = Config::from_matches(leaf, leaf_matches).unwrap_or_else(|e| e.exit());
    portcullis_server::logging::init(&config.log_filter, config.log_format);
    match cli.command {
        Command::Serve => actix_web::rt::System::new().block_on(serve(config)),
        Command::Migrate => {
            let mut config = config;
            config.migrate_on_start = true;
            open_database(&config)?;
            tracing::info!("database schema is up to date");
            Ok(())
        }
        Command::Purge => {
            let database = open_database(&config)?;
            let Some(purged) = purge(&database, &PurgeConfig::of(&config))? else {
                bail!("another instance is purging this database right now; try again");
            };
            let mut out = io::stdout().lock();
            writeln!(out, "sessions: {}", purged.sessions)?;
            writeln!(out, "refresh tokens: {}", purged.refresh_tokens)?;
            writeln!(out, "reset tokens: {}", purged.reset_tokens)?;
            writeln!(out, "events: {}", purged.events)?;
            writeln!(out, "throttle counters: {}", purged.throttles)?;
            writeln!(out, "failed mail: {}", purged.failed_mail)?;
            Ok(())
        }
        Command::Events {
            user,
            since,
            limit,
            json,
        } => list_events(&config, user.as_deref(), since, limit, json),
        Command::Mail {
            action: MailCommand::Status { json },
        } => mail_status(&config, json),
        Command::Keys { action } => manage_keys(&config, action),
        Command::Client { action } => manage_clients(&config, action),
        Command::User { action } => manage_user(&config, action),
        Command::Import { source } => return import::run(&config, source),
    }
    .map(|()| ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let mailer = mailer_for(&config)?;
    let application = Application::build(config, mailer).await?;
    tracing::info!(address = %application.local_addr(), "portcullis listening");
    application.run().await?;
    tracing::info!("portcullis stopped");
    Ok(())
}

fn manage_clients(config: &Config, action: ClientCommand) -> anyhow::Result<()> {
    let database = open_database(config)?;
    let mut out = io::stdout().lock();
    match action {
        ClientCommand::Create { name, json } => {
            let service = build_service(config, &database, Arc::new(LogMailer))?;
            let (client, secret) = match service.register_client(&name) {
                Ok(created) => created,
                Err(RegisterClientError::InvalidName) => {
                    bail!("--name: 1 to 100 characters, without control characters")
                }
                Err(RegisterClientError::Internal(error)) => return Err(error.into()),
            };
            if json {
                let object = serde_json::json!({
                    "client_id": client.id.to_string(),
                    "client_secret": secret.expose(),
                });
                writeln!(out, "{object}")?;
            } else {
                writeln!(out, "client_id: {}", client.id)?;
                writeln!(out, "client_secret: {}", secret.expose())?;
            }
        }
        ClientCommand::List => {
            for client in database.list_clients()? {
                writeln!(
                    out,
                    "{}  {}  created={}",
                    client.id,
                    client.name,
                    client.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)
                )?;
            }
        }
        ClientCommand::Delete { id } => {
            let id = ClientId::parse(&id).context("not a client id")?;
            if !database.delete_client(id)? {
                bail!("no client has this id");
            }
        }
    }
    Ok(())
}

fn manage_keys(config: &Config, action: KeysCommand) -> anyhow::Result<()> {
    if config.jwt_secret.is_some() {
        bail!(
            "PORTCULLIS_JWT_SECRET is set: tokens are signed with that fixed key, managed outside Portcullis; unset it to use keys kept in the database"
        );
    }
    let database = open_database(config)?;
    let ring = key_ring(config, &database)?;
    let now = SystemClock.now();
    let mut out = io::stdout().lock();
    match action {
        KeysCommand::List => {
            let time = |at: Option<chrono::DateTime<chrono::Utc>>| {
                at.map_or_else(
                    || "-".to_owned(),
                    |at| at.to_rfc3339_opts(SecondsFormat::Secs, true),
                )
            };
            writeln!(
                out,
                "{:<24} {:<9} {:<32} {:<20} {:<20} RETIRED",
                "KID", "ALGORITHM", "STATE", "CREATED", "ACTIVATED"
            )?;
            for key in ring.status(now)? {
                let state = match key.state {
                    KeyState::Active => "active (signing)".to_owned(),
                    KeyState::Verifying { until } => format!(
                        "verifying until {}",
                        until.to_rfc3339_opts(SecondsFormat::Secs, true)
                    ),
                    KeyState::Retired => "retired".to_owned(),
                };
                writeln!(
                    out,
                    "{:<24} {:<9} {:<32} {:<20} {:<20} {}",
                    key.kid,
                    key.algorithm.as_str(),
                    state,
                    time(Some(key.created_at)),
                    time(key.activated_at),
                    time(key.retired_at),
                )?;
            }
        }
        KeysCommand::Rotate => {
            let kid = ring.rotate(now)?;
            tracing::info!(kid, "signing key rotated");
            writeln!(out, "{kid}")?;
        }
        KeysCommand::Retire { kid } => {
            ring.retire(&kid, now)?;
            tracing::info!(kid, "signing key retired");
            writeln!(out, "{kid}")?;
        }
    }
    Ok(())
}

fn manage_user(config: &Config, action: UserCommand) -> anyhow::Result<()> {
    let database = open_database(config)?;
    let service = build_service(config, &database, Arc::new(LogMailer))?;
    let mut out = io::stdout().lock();
    match action {
        UserCommand::Create {
            email,
            name,
            username,
            must_change_password,
        } => {
            let new = NewUser {
                email: Some(Email::parse(&email).context("--email")?),
                username: username
                    .as_deref()
                    .map(Username::parse)
                    .transpose()
                    .context("--username")?,
                name: DisplayName::parse(&name).context("--name")?,
                bio: None,
                must_change_password,
                profile: Profile::default(),
            };
            let password = read_password()?;
            let user = match service.create_user(new, &password) {
                Ok(user) => user,
                Err(RegisterError::EmailTaken) => bail!("a user with this email already exists"),
                Err(RegisterError::UsernameTaken) => {
                    bail!("a user with this username already exists")
                }
                Err(RegisterError::Invalid(errors)) => bail!("{errors}"),
                Err(error @ RegisterError::Throttled { .. }) => return Err(error.into()),
                Err(RegisterError::Internal(e)) => return Err(e.into()),
            };
            writeln!(out, "{}", user.id)?;
        }
        UserCommand::ResetToken { email } => {
            let email = Email::parse(&email).context("--email")?;
            let Some(portcullis_domain::IssuedResetSecret { secret, expires_at }) =
                service.create_reset_secret(&email)?
            else {
                bail!("no user has this email");
            };
            writeln!(out, "{}", secret.expose())?;
            tracing::info!(expires_at = %expires_at.to_rfc3339(), "reset token created");
        }
    }
    Ok(())
}

/// Prints the outbox: pending messages, then given-up ones.
fn mail_status(config: &Config, json: bool) -> anyhow::Result<()> {
    let database = open_database(config)?;
    let status = database.status()?;
    let mut out = io::stdout().lock();
    let entries = [("pending", &status.pending), ("failed", &status.failed)];
    for (state, list) in entries {
        for entry in list {
            if json {
                let object = serde_json::json!({
                    "id": entry.id.to_string(),
                    "state": state,
                    "to": entry.to.as_str(),
                    "queued_at": entry.queued_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    "attempts": entry.attempts,
                    "at": entry.at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    "last_error": entry.last_error,
                });
                writeln!(out, "{object}")?;
            } else {
                let when = if state == "pending" {
                    "next"
                } else {
                    "given up"
                };
                writeln!(
                    out,
                    "{state:<8} {}  to={}  queued={}  attempts={}  {when}={}{}",
                    entry.id,
                    entry.to,
                    entry.queued_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    entry.attempts,
                    entry.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    entry
                        .last_error
                        .as_ref()
                        .map(|e| format!("  error={e:?}"))
                        .unwrap_or_default()
                )?;
            }
        }
    }
    if !json {
        writeln!(
            out,
            "{} pending, {} failed",
            status.pending.len(),
            status.failed.len()
        )?;
    }
    Ok(())
}

/// Prints the events selected, newest first: text, or one JSON object per line.
fn list_events(
    config: &Config,
    user: Option<&str>,
    since: Option<std::time::Duration>,
    limit: u32,
    json: bool,
) -> anyhow::Result<()> {
    let database = open_database(config)?;
    let user = match user {
        None => None,
        Some(user) => Some(match uuid::Uuid::parse_str(user) {
            Ok(id) => UserId::from_uuid(id),
            Err(_) => {
                let email = Email::parse(user).context("--user: neither an email nor a user id")?;
                database
                    .find_by_email(&email)?
                    .context("--user: no account has this email")?
                    .id
            }
        }),
    };
    let since = since
        .map(|ago| -> anyhow::Result<_> {
            let ago = TimeDelta::from_std(ago).context("--since: too long")?;
            SystemClock
                .now()
                .checked_sub_signed(ago)
                .context("--since: too long")
        })
        .transpose()?;
    let events = database.list(&EventFilter { user, since, limit })?;
    let mut out = io::stdout().lock();
    for event in events {
        if json {
            writeln!(out, "{}", event_json(&event))?;
        } else {
            writeln!(out, "{}", event_line(&event))?;
        }
    }
    Ok(())
}

/// One event as a JSON object; absent fields are `null`.
fn event_json(event: &AuthEvent) -> serde_json::Value {
    serde_json::json!({
        "time": event.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "kind": event.kind.as_str(),
        "outcome": event.outcome.as_str(),
        "dialect": event.dialect,
        "ip": event.ip.map(|ip| ip.to_string()),
        "user_id": event.user_id.map(|id| id.to_string()),
        "identifier_hash": event.identifier_hash,
        "session_id": event.session_id.map(|id| id.to_string()),
        "user_agent": event.user_agent,
    })
}

/// One event as a line of text: time, kind, outcome, then what is known as `name=value`
/// (the user agent quoted, as it may hold spaces).
fn event_line(event: &AuthEvent) -> String {
    let mut line = format!(
        "{}  {:<16} {:<14}",
        event.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        event.kind.as_str(),
        event.outcome.as_str()
    );
    let mut field = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            line.push_str(&format!(" {name}={value}"));
        }
    };
    field("dialect", event.dialect.clone());
    field("ip", event.ip.map(|ip| ip.to_string()));
    field("user", event.user_id.map(|id| id.to_string()));
    field("identifier", event.identifier_hash.clone());
    field("session", event.session_id.map(|id| id.to_string()));
    field(
        "agent",
        event.user_agent.as_ref().map(|ua| format!("{ua:?}")),
    );
    line
}

/// The command line: every leaf command takes every setting.
fn command_line() -> clap::Command {
    Cli::command()
        .mut_subcommand("serve", with_settings)
        .mut_subcommand("migrate", with_settings)
        .mut_subcommand("purge", with_settings)
        .mut_subcommand("events", with_settings)
        .mut_subcommand("mail", |mail| mail.mut_subcommand("status", with_settings))
        .mut_subcommand("client", |client| {
            client
                .mut_subcommand("create", with_settings)
                .mut_subcommand("list", with_settings)
                .mut_subcommand("delete", with_settings)
        })
        .mut_subcommand("keys", |keys| {
            keys.mut_subcommand("list", with_settings)
                .mut_subcommand("rotate", with_settings)
                .mut_subcommand("retire", with_settings)
        })
        .mut_subcommand("user", |user| {
            user.mut_subcommand("create", with_settings)
                .mut_subcommand("reset-token", with_settings)
        })
        .mut_subcommand("import", |import| {
            import
                .mut_subcommand("users", with_settings)
                .mut_subcommand("pocketbase", with_settings)
        })
}

/// `args` with `serve` inserted when they name no command: `portcullis` alone, or
/// followed by settings, serves.
fn serve_by_default(command: &clap::Command, mut args: Vec<OsString>) -> Vec<OsString> {
    let names_a_command = args.get(1).and_then(|arg| arg.to_str()).is_some_and(|arg| {
        command.find_subcommand(arg).is_some()
            || matches!(arg, "help" | "-h" | "--help" | "-V" | "--version")
    });
    if !names_a_command {
        args.insert(1.min(args.len()), "serve".into());
    }
    args
}

/// The innermost command given, and its matches: where the settings were parsed.
fn leaf<'a>(
    command: &'a clap::Command,
    matches: &'a clap::ArgMatches,
) -> (&'a clap::Command, &'a clap::ArgMatches) {
    match matches
        .subcommand()
        .and_then(|(name, sub)| Some((command.find_subcommand(name)?, sub)))
    {
        Some((sub_command, sub_matches)) => leaf(sub_command, sub_matches),
        None => (command, matches),
    }
}

/// One line from standard input, or a no-echo prompt (asked twice) on a terminal.
fn read_password() -> anyhow::Result<Password> {
    if io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            bail!("the passwords do not match");
        }
        return Ok(Password::new(&first));
    }
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(Password::new(password))
}
