//! The Portcullis server: configuration, wiring and start-up. `main.rs` adds the command
//! line; tests build the same [`Application`] the binary runs.

pub mod app;
pub mod config;
pub mod import;
pub mod logging;
pub mod mailer;

pub use app::{
    Application, PurgeConfig, build_service, build_service_with, mailer_for, open_database, purge,
    state_cache,
};
pub use config::{Config, ConfigError};
pub use mailer::{LogMailer, MailerSetting, ResetTemplates, SmtpMailer};
