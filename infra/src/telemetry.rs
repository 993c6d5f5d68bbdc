//! Logging: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` for structured output.

use std::io::IsTerminal;
use tracing_subscriber::{fmt, EnvFilter};

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // `try_init` so that tests, which build many apps in one process, can call it repeatedly.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
