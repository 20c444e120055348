//! Logging: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` for structured logs. Logs go to
//! stderr; stdout carries only the lines scripts read ("listening on ...").

use tracing_subscriber::EnvFilter;

pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let res = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already initialised (tests): keep the first subscriber.
    let _ = res;
}
