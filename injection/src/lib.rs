//! Which Istio revision injects a pod created now, and what it injects (DESIGN §2.2): the one
//! place these rules are written. istio-proxy-reset judges pods by them; kube-sim injects pods by
//! them, in its own admission and as the webhook of the upstream control plane. Pure: no I/O.

pub mod policy;
pub mod proxy;
pub mod quantity;
pub mod selector;
pub mod webhooks;

pub use policy::{Decision, InjectorConfig, PodFacts};
pub use selector::{LabelSelector, Labels};
pub use webhooks::{NamespaceLabels, Selected, WebhookConfiguration};

/// The revision of configurations, istiods and pods that name none.
pub const DEFAULT_REVISION: &str = "default";
/// Names a revision on namespaces, pods, istiods and webhook configurations.
pub const REVISION_LABEL: &str = "istio.io/rev";

/// What a pod created now would get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `revision` injects it, called through `configuration`.
    Revision {
        revision: String,
        configuration: String,
    },
    /// Nothing is injected, and why.
    NoProxy(String),
    /// Webhooks of two revisions select it: a misconfiguration, said in full.
    Conflict(String),
}

/// DESIGN §2.2.2: the webhooks the API server would call, then the called revision's injector
/// rules (`config_of` gives its ConfigMap's `config`; none: Istio's defaults).
pub fn target<'c>(
    configurations: &[WebhookConfiguration],
    namespace: &impl Labels,
    pod: &PodFacts<impl Labels>,
    config_of: impl Fn(&str) -> Option<&'c InjectorConfig>,
) -> Target {
    match webhooks::select(configurations, namespace, &pod.labels) {
        Selected::None => Target::NoProxy("no Istio webhook selects the pod".into()),
        Selected::Conflict { first, second } => Target::Conflict(format!(
            "webhooks of two revisions select the pod: {} (MutatingWebhookConfiguration {}) and \
             {} (MutatingWebhookConfiguration {})",
            first.0, first.1, second.0, second.1
        )),
        Selected::Revision {
            revision,
            configuration,
        } => {
            let default = InjectorConfig::default();
            let config = config_of(&revision).unwrap_or(&default);
            match policy::decide(pod, config) {
                Decision::Inject => Target::Revision {
                    revision,
                    configuration,
                },
                other => Target::NoProxy(format!(
                    "{} (the webhook of revision {revision} selects it)",
                    other.why_not()
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests;
