//! Subcommands: `serve` (default), `seed`, `token`, `contracts`, `export`, `import`.

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Realtime backend: Socket.IO v4 server for chat and collaboration"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Load seeds/ into the configured database (idempotent).
    Seed,
    /// Write the configured store's data (or one project's) to a JSON Lines file.
    Export {
        /// Only this project (its records, and the users who are its members).
        #[arg(long)]
        project: Option<String>,
        /// The file to write (`-`: standard output).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Load a file written by `export` into the configured store (idempotent).
    Import {
        /// The file to read (`-`: standard input).
        file: std::path::PathBuf,
    },
    /// Print a JWT signed with the configured secret.
    Token {
        /// The user id (the token's `sub`), e.g. alice.
        #[arg(long)]
        user: String,
        /// `user` or `admin`.
        #[arg(long, default_value = "user")]
        role: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
        /// Display name claim.
        #[arg(long)]
        name: Option<String>,
    },
    /// Write the generated client contracts (TypeScript, JSON Schemas, AsyncAPI, OpenAPI) under
    /// the repository root (docs/contracts.md).
    Contracts {
        /// The repository root the files' paths start from.
        #[arg(long, default_value = ".")]
        root: std::path::PathBuf,
    },
}
