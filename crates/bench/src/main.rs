//! `portcullis-bench`: the baselines `make bench` (scripts/bench.py) measures Portcullis
//! against, on the same machine and in the same run:
//!
//! - `argon2`: raw argon2id verifications per second on every core, with the
//!   parameters the server uses (its `PORTCULLIS_ARGON2_*` settings and defaults);
//! - `bare-jwt`: an actix-web server whose `POST /auth` only verifies an HS256 JWT
//!   (`mint-jwt` makes tokens for it);
//! - `bare-write`: an actix-web server whose `POST /write` runs one single-statement
//!   write transaction through Diesel and r2d2, on SQLite or PostgreSQL;
//! - `create-db` / `drop-db`: a fresh PostgreSQL database for a run, through the test
//!   role of `TEST_DATABASE_URL`.
//!
//! Every command that reports prints one JSON object on a line of standard output.

mod argon2_rate;
mod bare_jwt;
mod bare_write;
mod pg;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "portcullis-bench",
    version,
    about = "Baselines for Portcullis's HTTP benchmark (make bench)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Raw argon2id verifications per second, one thread per core.
    Argon2(argon2_rate::Args),
    /// A bare HTTP server: `POST /auth` verifies an HS256 bearer JWT, nothing else.
    BareJwt(bare_jwt::ServeArgs),
    /// Print tokens the bare JWT server accepts, one per line.
    MintJwt(bare_jwt::MintArgs),
    /// A bare HTTP server: `POST /write` inserts one row (one write transaction).
    BareWrite(bare_write::Args),
    /// Create a fresh PostgreSQL database; prints `{"name", "url"}`.
    CreateDb(pg::CreateArgs),
    /// Drop a database `create-db` made.
    DropDb(pg::DropArgs),
}

/// Writes `value` as one line of JSON to standard output.
pub(crate) fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}")?;
    out.flush()?;
    Ok(())
}

/// One worker per core unless told otherwise, as the server counts them.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Argon2(args) => argon2_rate::run(&args),
        Command::BareJwt(args) => bare_jwt::serve(&args),
        Command::MintJwt(args) => bare_jwt::mint(&args),
        Command::BareWrite(args) => bare_write::serve(&args),
        Command::CreateDb(args) => pg::create(&args),
        Command::DropDb(args) => pg::drop(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("portcullis-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
