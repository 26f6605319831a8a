//! Istio's MutatingWebhookConfigurations: which revision's webhook the API server calls for a
//! pod created now (DESIGN §2.2.2), and the configurations Istio installs, which kube-sim serves
//! and the upstream control plane installs.

use serde::{Deserialize, Serialize};

use crate::selector::{LabelSelector, Labels, Operator, Requirement};
use crate::{DEFAULT_REVISION, REVISION_LABEL};

/// Istio's injection webhooks are named `…sidecar-injector.istio.io`.
pub const WEBHOOK_SUFFIX: &str = "sidecar-injector.istio.io";
/// The label a revision tag's configuration carries, naming the tag.
pub const TAG_LABEL: &str = "istio.io/tag";
/// The label the API server sets on every namespace, naming it.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// One `admissionregistration.k8s.io/v1` MutatingWebhookConfiguration, the fields the decision
/// reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookConfiguration {
    pub metadata: Metadata,
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub name: String,
    /// Absent: every namespace, as the API server defaults it.
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    /// Absent: every object.
    #[serde(default)]
    pub object_selector: Option<LabelSelector>,
}

impl Webhook {
    fn selects(&self, namespace: &impl Labels, pod: &impl Labels) -> bool {
        self.namespace_selector
            .as_ref()
            .is_none_or(|s| s.matches(namespace))
            && self.object_selector.as_ref().is_none_or(|s| s.matches(pod))
    }

    fn selectors(&self) -> impl Iterator<Item = (&'static str, &LabelSelector)> {
        [
            ("namespaceSelector", self.namespace_selector.as_ref()),
            ("objectSelector", self.object_selector.as_ref()),
        ]
        .into_iter()
        .filter_map(|(field, s)| s.map(|s| (field, s)))
    }
}

impl WebhookConfiguration {
    /// Holds at least one of Istio's injection webhooks.
    pub fn is_istio_injector(&self) -> bool {
        self.webhooks
            .iter()
            .any(|w| w.name.ends_with(WEBHOOK_SUFFIX))
    }

    /// The revision it injects for: its `istio.io/rev` label (a tag's names the revision the tag
    /// points at), else the one its name says (`istio-sidecar-injector-<rev>`), else `default`.
    pub fn revision(&self) -> String {
        if let Some(rev) = self
            .metadata
            .labels
            .get(REVISION_LABEL)
            .filter(|r| !r.is_empty())
        {
            return rev.clone();
        }
        self.metadata
            .name
            .strip_prefix("istio-sidecar-injector-")
            .unwrap_or(DEFAULT_REVISION)
            .to_string()
    }

    /// Why the API server would refuse it, naming the webhook and the field.
    pub fn check(&self) -> Result<(), String> {
        for webhook in &self.webhooks {
            for (field, selector) in webhook.selectors() {
                selector
                    .check()
                    .map_err(|e| format!("webhooks[{}].{field}: {e}", webhook.name))?;
            }
        }
        Ok(())
    }

    /// The label keys its Istio webhooks' selectors read, with where: `namespaceSelector` or
    /// `objectSelector`.
    pub fn selector_keys(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.istio_webhooks()
            .flat_map(|w| w.selectors())
            .flat_map(|(field, s)| s.keys().map(move |k| (field, k)))
    }

    fn istio_webhooks(&self) -> impl Iterator<Item = &Webhook> {
        self.webhooks
            .iter()
            .filter(|w| w.name.ends_with(WEBHOOK_SUFFIX))
    }

    /// Whether any of its Istio webhooks would be called for the pod.
    pub fn selects(&self, namespace: &impl Labels, pod: &impl Labels) -> bool {
        self.istio_webhooks().any(|w| w.selects(namespace, pod))
    }
}

/// A namespace's labels as a webhook's `namespaceSelector` sees them: with the name label the
/// API server sets on every namespace, whether or not a snapshot kept it.
pub struct NamespaceLabels<'a, L: Labels> {
    pub name: &'a str,
    pub labels: L,
}

impl<L: Labels> Labels for NamespaceLabels<'_, L> {
    fn label(&self, key: &str) -> Option<&str> {
        match self.labels.label(key) {
            None if key == NAMESPACE_NAME_LABEL => Some(self.name),
            found => found,
        }
    }
}

/// Which revisions' webhooks the API server calls for a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selected {
    /// No Istio webhook selects the pod.
    None,
    /// One revision's (perhaps through several webhooks or configurations).
    Revision {
        revision: String,
        configuration: String,
    },
    /// Webhooks of two revisions: which proxy the pod gets depends on the call order.
    Conflict {
        first: (String, String),
        second: (String, String),
    },
}

/// DESIGN §2.2.2: evaluate every Istio webhook's selectors against the namespace and the pod.
pub fn select(
    configurations: &[WebhookConfiguration],
    namespace: &impl Labels,
    pod: &impl Labels,
) -> Selected {
    let mut found: Option<(String, String)> = None;
    for configuration in configurations.iter().filter(|c| c.is_istio_injector()) {
        if !configuration.selects(namespace, pod) {
            continue;
        }
        let this = (
            configuration.revision(),
            configuration.metadata.name.clone(),
        );
        match &found {
            None => found = Some(this),
            Some(first) if first.0 == this.0 => {}
            Some(first) => {
                return Selected::Conflict {
                    first: first.clone(),
                    second: this,
                };
            }
        }
    }
    match found {
        None => Selected::None,
        Some((revision, configuration)) => Selected::Revision {
            revision,
            configuration,
        },
    }
}

/// The name of a revision's configuration as Istio installs it.
pub fn configuration_name(revision: &str) -> String {
    match revision {
        DEFAULT_REVISION | "" => "istio-sidecar-injector".to_string(),
        rev => format!("istio-sidecar-injector-{rev}"),
    }
}

/// The configuration Istio installs for `revision`: the pods of namespaces labelled
/// `istio.io/rev=<revision>`, and pods labelled so in unlabelled namespaces; the default
/// revision also `istio-injection=enabled` and the pod label `sidecar.istio.io/inject=true`.
pub fn revision_configuration(revision: &str) -> WebhookConfiguration {
    let mut configuration = tagged_configuration(
        configuration_name(revision),
        revision,
        revision,
        revision == DEFAULT_REVISION,
    );
    configuration
        .metadata
        .labels
        .insert("app".into(), "sidecar-injector".into());
    configuration
}

/// The configuration `istioctl tag set <tag> --revision <revision>` installs
/// (`istio-revision-tag-<tag>`): as a revision's, selecting on the tag's name. The tag
/// `default` also takes `istio-injection=enabled` and `sidecar.istio.io/inject=true`.
pub fn tag_configuration(tag: &str, revision: &str) -> WebhookConfiguration {
    let mut configuration = tagged_configuration(
        format!("istio-revision-tag-{tag}"),
        revision,
        tag,
        tag == DEFAULT_REVISION,
    );
    configuration
        .metadata
        .labels
        .insert(TAG_LABEL.into(), tag.into());
    configuration
}

/// What istiod makes of the default revision's configuration once a `default` tag exists: its
/// webhooks select nothing (`istio.io/deactivated In [never-match]`).
pub fn deactivated(mut configuration: WebhookConfiguration) -> WebhookConfiguration {
    let never = LabelSelector::of(vec![Requirement::new(
        "istio.io/deactivated",
        Operator::In,
        &["never-match"],
    )]);
    for webhook in &mut configuration.webhooks {
        webhook.namespace_selector = Some(never.clone());
        webhook.object_selector = Some(never.clone());
    }
    configuration
}

fn tagged_configuration(
    name: String,
    revision: &str,
    selects: &str,
    with_default_webhooks: bool,
) -> WebhookConfiguration {
    use Operator::*;
    let not_opted_out = Requirement::new("sidecar.istio.io/inject", NotIn, &["false"]);
    let absent = |key: &str| Requirement::new(key, DoesNotExist, &[]);
    let is = |key: &str, value: &str| Requirement::new(key, In, &[value]);
    let webhook = |name: &str, namespace: Vec<Requirement>, object: Vec<Requirement>| Webhook {
        name: name.to_string(),
        namespace_selector: Some(LabelSelector::of(namespace)),
        object_selector: Some(LabelSelector::of(object)),
    };
    let mut webhooks = vec![
        webhook(
            "rev.namespace.sidecar-injector.istio.io",
            vec![is(REVISION_LABEL, selects), absent("istio-injection")],
            vec![not_opted_out.clone()],
        ),
        webhook(
            "rev.object.sidecar-injector.istio.io",
            vec![absent(REVISION_LABEL), absent("istio-injection")],
            vec![not_opted_out.clone(), is(REVISION_LABEL, selects)],
        ),
    ];
    if with_default_webhooks {
        webhooks.push(webhook(
            "namespace.sidecar-injector.istio.io",
            vec![is("istio-injection", "enabled")],
            vec![not_opted_out],
        ));
        webhooks.push(webhook(
            "object.sidecar-injector.istio.io",
            vec![absent("istio-injection"), absent(REVISION_LABEL)],
            vec![
                is("sidecar.istio.io/inject", "true"),
                absent(REVISION_LABEL),
            ],
        ));
    }
    let labels = [(REVISION_LABEL.to_string(), revision.to_string())].into();
    WebhookConfiguration {
        metadata: Metadata { name, labels },
        webhooks,
    }
}
