//! Where the upstream binaries come from: `KUBE_SIM_UPSTREAM_BIN`, or `sim/upstream/build.sh`,
//! which builds them from the pinned Go modules into a cache outside the clone.

use std::path::PathBuf;

use crate::error::Error;

/// The directory of the binaries: `KUBE_SIM_UPSTREAM_BIN`, or the one `sim/upstream/build.sh`
/// prints last (it builds first when its cache lacks them; its progress goes to stderr).
pub fn bin_dir() -> Result<PathBuf, Error> {
    if let Ok(dir) = std::env::var("KUBE_SIM_UPSTREAM_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("upstream/build.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::io(format!("cannot run {}", script.display()), e))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match (output.status.success(), stdout.lines().last()) {
        (true, Some(dir)) => Ok(PathBuf::from(dir.trim())),
        _ => Err(Error::Upstream(format!(
            "{} failed ({})",
            script.display(),
            output.status
        ))),
    }
}

/// Whether tests can have the upstream control plane here: binaries named by
/// `KUBE_SIM_UPSTREAM_BIN`, or Go to build them. Without, a test is skipped with a line on
/// stderr, except with `CI=true`, where this panics: nothing may skip silently in CI.
pub fn available_for_tests() -> bool {
    let have_binaries = std::env::var("KUBE_SIM_UPSTREAM_BIN").is_ok();
    let have_go = std::process::Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if have_binaries || have_go {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: the upstream control plane needs Go to build its components (sim/upstream/build.sh)"
    );
    eprintln!(
        "SKIPPED on the upstream control plane: no Go toolchain to build it (sim/upstream/build.sh)"
    );
    false
}
