//! The Istio sidecar injector, as a mutating webhook would apply it on pod creation.

use serde_json::Value;

use crate::store::Store;

/// Injects the Istio sidecar into `pod` when injection applies.
pub fn inject(store: &Store, pod: &mut Value, proxy_image_override: Option<&str>) {
    let _ = (store, pod, proxy_image_override);
}
