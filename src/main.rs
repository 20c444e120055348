use std::path::Path;

use clap::Parser;

use switchboard::cli::{Cli, Command};
use switchboard::{app, auth, portable, seed, shutdown, telemetry};
use switchboard_handlers::core::ids::ProjectId;

// glibc malloc serialises frees of memory another thread allocated (arena locks: the busiest
// futex in a `rooms` profile); jemalloc frees to thread caches. docs/performance.md, Allocator.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.config.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("switchboard: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = app::build(&config).await?;
            let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
                .await
                .map_err(|e| anyhow::anyhow!("cannot bind {}:{}: {e}", config.host, config.port))?;
            let addr = listener.local_addr()?;
            // Scripts and tests read this line to learn the port (PORT=0 picks a free one).
            println!("switchboard listening on http://{addr}");
            println!("data: {}", app.data);
            if config.uses_dev_secret() {
                println!(
                    "dev token: cargo run -- token --user alice   (or: switchboard token --user alice)"
                );
            }
            app::serve(listener, app, shutdown::signal()).await
        }
        Command::Seed => {
            config.validate()?;
            let store = app::connect_store(&config).await?;
            let r = seed::load(store.as_ref(), Path::new(&config.seeds_dir)).await?;
            println!(
                "seeded {} project(s), {} message(s), {} document(s) from {} file(s)",
                r.projects, r.messages, r.documents, r.files
            );
            Ok(())
        }
        Command::Contracts { root } => {
            for path in switchboard::contracts::write_all(&root)? {
                println!("wrote {}", root.join(path).display());
            }
            Ok(())
        }
        Command::Export { project, out } => {
            let project = project
                .map(ProjectId::try_from)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--project: {e}"))?;
            let n = portable::export_file(&config, project.as_ref(), &out).await?;
            eprintln!("exported {n} record(s)");
            Ok(())
        }
        Command::Import { file } => {
            let r = portable::import_file(&config, &file).await?;
            eprintln!(
                "imported {} record(s), {} of them already stored",
                r.records, r.skipped
            );
            Ok(())
        }
        Command::Token {
            user,
            role,
            ttl,
            name,
        } => {
            if role != "user" && role != "admin" {
                anyhow::bail!("--role must be user or admin");
            }
            // The server would refuse such a token: say so now rather than at the handshake.
            config.validate_jwt_secret()?;
            if let Some(prefix) = auth::reserved_id(&user) {
                anyhow::bail!("--user: ids starting with {prefix} are reserved");
            }
            if ttl > config.jwt_max_ttl_secs {
                anyhow::bail!(
                    "--ttl exceeds JWT_MAX_TTL_SECS ({} s)",
                    config.jwt_max_ttl_secs
                );
            }
            let role = (role == "admin").then_some("admin");
            println!(
                "{}",
                auth::mint(config.jwt_secret(), &user, role, ttl, name.as_deref())?
            );
            Ok(())
        }
    }
}
