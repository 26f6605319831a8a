//! The kubeconfig a simulated cluster writes for its clients.
//!
//! It has two contexts on one cluster: `kube-sim` (current), whose token acts as the configured
//! user (`--as`, subject to `--rbac`), and `kube-sim-admin`, whose token is never subject to RBAC,
//! for tests that observe or arrange the cluster while the user under test is restricted.

use base64::Engine;
use serde_json::json;

/// The context whose token is never subject to RBAC.
pub const ADMIN_CONTEXT: &str = "kube-sim-admin";
/// The current context: the configured user.
pub const USER_CONTEXT: &str = "kube-sim";

/// Renders the kubeconfig as YAML.
pub fn render(url: &str, ca_pem: Option<&str>, user_token: &str, admin_token: &str) -> String {
    let mut cluster = json!({"server": url});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let context = |user: &str| json!({"cluster": "kube-sim", "user": user, "namespace": "default"});
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kube-sim", "cluster": cluster}],
        "users": [
            {"name": USER_CONTEXT, "user": {"token": user_token}},
            {"name": ADMIN_CONTEXT, "user": {"token": admin_token}},
        ],
        "contexts": [
            {"name": USER_CONTEXT, "context": context(USER_CONTEXT)},
            {"name": ADMIN_CONTEXT, "context": context(ADMIN_CONTEXT)},
        ],
        "current-context": USER_CONTEXT,
        "preferences": {},
    });
    serde_saphyr::to_string(&config).unwrap_or_else(|_| config.to_string())
}
