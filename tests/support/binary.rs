//! The tool's built binary, run from the repository root and never configured by the
//! environment of the machine running the tests. Tests that need no cluster include this file
//! alone (`#[path = "support/binary.rs"]`), without the backends.

use std::path::PathBuf;
use std::process::Command;

/// The repository root, where the bundled example lives.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The environment variables that would configure the tool or its kubeconfig.
pub fn tool_settings_in_environment() -> Vec<String> {
    std::env::vars()
        .map(|(key, _)| key)
        .filter(|key| key.starts_with("ISTIO_PROXY_RESET_") || key == "KUBECONFIG")
        .collect()
}

/// The binary, from the repository root, without the environment's own settings.
pub fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_istio-proxy-reset"));
    command.current_dir(root());
    for key in tool_settings_in_environment() {
        command.env_remove(key);
    }
    command
}
