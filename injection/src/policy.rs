//! The injector's own rules, once a webhook has called it (DESIGN §2.2.2), in Istio's order:
//! hostNetwork, the ignored namespaces, the pod's `sidecar.istio.io/inject`, then the injector
//! ConfigMap's `config`: `neverInjectSelector`, `alwaysInjectSelector`, `policy`.

use serde::Deserialize;

use crate::selector::{LabelSelector, Labels};

/// The pod label and annotation that ask for, or refuse, injection.
pub const INJECT_KEY: &str = "sidecar.istio.io/inject";
/// Namespaces Istio's injector never injects, whatever the webhooks select.
pub const IGNORED_NAMESPACES: [&str; 4] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "local-path-storage",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Enabled,
    Disabled,
}

/// The part of the injector ConfigMap's `data.config` the decision reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectorConfig {
    pub policy: Policy,
    pub never_inject_selector: Vec<LabelSelector>,
    pub always_inject_selector: Vec<LabelSelector>,
    /// Selectors Istio would skip as invalid (`neverInjectSelector[0]: …`), left out of the
    /// two lists above; the run warns of each.
    pub skipped: Vec<String>,
}

impl Default for InjectorConfig {
    /// Istio's defaults: `policy: enabled`, no selectors.
    fn default() -> Self {
        InjectorConfig {
            policy: Policy::Enabled,
            never_inject_selector: Vec::new(),
            always_inject_selector: Vec::new(),
            skipped: Vec::new(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawConfig {
    policy: Option<String>,
    never_inject_selector: Option<Vec<LabelSelector>>,
    always_inject_selector: Option<Vec<LabelSelector>>,
}

impl InjectorConfig {
    /// Parses `data.config` (YAML). Absent: Istio's defaults. A `policy` other than `enabled` or
    /// `disabled` is refused: Istio's injector then injects nothing, which is surely not meant.
    pub fn parse(config: Option<&str>) -> Result<InjectorConfig, String> {
        let Some(text) = config else {
            return Ok(InjectorConfig::default());
        };
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let policy = match raw.policy.as_deref() {
            None | Some("enabled") => Policy::Enabled,
            Some("disabled") => Policy::Disabled,
            Some(other) => {
                return Err(format!(
                    "policy: {other:?} is neither \"enabled\" nor \"disabled\""
                ));
            }
        };
        // Istio skips an invalid selector with a warning and keeps the rest.
        let mut skipped = Vec::new();
        let mut valid = |field: &str, selectors: Option<Vec<LabelSelector>>| {
            let mut kept = Vec::new();
            for (i, selector) in selectors.unwrap_or_default().into_iter().enumerate() {
                match selector.check() {
                    Ok(()) => kept.push(selector),
                    Err(e) => skipped.push(format!("{field}[{i}]: {e}")),
                }
            }
            kept
        };
        let never_inject_selector = valid("neverInjectSelector", raw.never_inject_selector);
        let always_inject_selector = valid("alwaysInjectSelector", raw.always_inject_selector);
        let config = InjectorConfig {
            policy,
            never_inject_selector,
            always_inject_selector,
            skipped,
        };
        Ok(config)
    }

    /// The label keys its selectors read.
    pub fn selector_keys(&self) -> impl Iterator<Item = &str> {
        self.never_inject_selector
            .iter()
            .chain(&self.always_inject_selector)
            .flat_map(LabelSelector::keys)
    }
}

/// What the injector reads of a pod.
pub struct PodFacts<'a, L: Labels> {
    pub namespace: &'a str,
    pub labels: L,
    /// The annotation `sidecar.istio.io/inject` (the label of that name wins over it).
    pub inject_annotation: Option<&'a str>,
    pub host_network: bool,
}

/// Why the injector injects a pod, or does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Inject,
    HostNetwork,
    IgnoredNamespace,
    OptedOut,
    NeverInjectSelector,
    PolicyDisabled,
}

impl Decision {
    pub fn injects(self) -> bool {
        self == Decision::Inject
    }

    /// Why nothing is injected, for a report.
    pub fn why_not(self) -> &'static str {
        match self {
            Decision::Inject => "",
            Decision::HostNetwork => "the pod uses the host's network",
            Decision::IgnoredNamespace => "Istio never injects this namespace",
            Decision::OptedOut => "the pod says sidecar.istio.io/inject: false",
            Decision::NeverInjectSelector => "the injector's neverInjectSelector matches the pod",
            Decision::PolicyDisabled => "the injector's policy is disabled and nothing asks for it",
        }
    }
}

/// Istio's `injectRequired`.
pub fn decide(pod: &PodFacts<impl Labels>, config: &InjectorConfig) -> Decision {
    if pod.host_network {
        return Decision::HostNetwork;
    }
    if IGNORED_NAMESPACES.contains(&pod.namespace) {
        return Decision::IgnoredNamespace;
    }
    let asked = pod.labels.label(INJECT_KEY).or(pod.inject_annotation);
    match asked.map(str::to_ascii_lowercase).as_deref() {
        Some("y" | "yes" | "true" | "on") => return Decision::Inject,
        None | Some("") => {}
        Some(_) => return Decision::OptedOut,
    }
    // Istio skips an empty selector here, where the API server's webhook selectors match all.
    let matches = |selectors: &[LabelSelector]| {
        selectors
            .iter()
            .any(|s| !s.is_empty() && s.matches(&pod.labels))
    };
    if matches(&config.never_inject_selector) {
        return Decision::NeverInjectSelector;
    }
    if matches(&config.always_inject_selector) {
        return Decision::Inject;
    }
    match config.policy {
        Policy::Enabled => Decision::Inject,
        Policy::Disabled => Decision::PolicyDisabled,
    }
}
