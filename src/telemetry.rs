//! Logs go to stderr: human lines on a terminal, JSON lines otherwise (a Job's log collector).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Sets up `tracing`. The filter comes from `ISTIO_PROXY_RESET_LOG` (or `RUST_LOG`), default `info`.
pub fn init() {
    let filter = std::env::var("ISTIO_PROXY_RESET_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Already initialised (tests) is fine: the first subscriber stays.
    if std::io::stderr().is_terminal() {
        let _ = builder.compact().without_time().try_init();
    } else {
        let _ = builder.json().flatten_event(true).try_init();
    }
}
