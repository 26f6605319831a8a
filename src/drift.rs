//! Drift beyond the version (DESIGN §2.3a): what a pod created now would get, against what the
//! pod has. Pure: the inventory's pod and the resolved control plane in, a judgement out.
//!
//! The version itself is compared in `classify`, against the target revision named here.

use std::fmt;
use std::str::FromStr;

use istio_injection::proxy::PodProxy;
use istio_injection::{NamespaceLabels, PodFacts, Selected, Target};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::controlplane::{ControlPlane, DEFAULT_REVISION, Injection};
use crate::inventory::{PodRecord, ProxyOrigin};

/// Why a pod's proxy differs from what a restart gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Version,
    Revision,
    Resources,
    Cni,
    NativeSidecar,
    MissingProxy,
    UnwantedProxy,
}

impl Reason {
    pub const ALL: [Reason; 7] = [
        Reason::Version,
        Reason::Revision,
        Reason::Resources,
        Reason::Cni,
        Reason::NativeSidecar,
        Reason::MissingProxy,
        Reason::UnwantedProxy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Version => "version",
            Reason::Revision => "revision",
            Reason::Resources => "resources",
            Reason::Cni => "cni",
            Reason::NativeSidecar => "native-sidecar",
            Reason::MissingProxy => "missing-proxy",
            Reason::UnwantedProxy => "unwanted-proxy",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = String;

    fn from_str(text: &str) -> Result<Reason, String> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| format!("{text:?} is not a drift reason"))
    }
}

/// A set of reasons: one byte per pod, however many pods the plan lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Reasons(u8);

impl Reasons {
    pub fn all() -> Reasons {
        Reason::ALL.into_iter().collect()
    }

    pub fn insert(&mut self, reason: Reason) {
        self.0 |= reason.bit();
    }

    pub fn contains(self, reason: Reason) -> bool {
        self.0 & reason.bit() != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: Reasons) -> Reasons {
        Reasons(self.0 | other.0)
    }

    pub fn intersection(self, other: Reasons) -> Reasons {
        Reasons(self.0 & other.0)
    }

    /// In the order of [`Reason::ALL`].
    pub fn iter(self) -> impl Iterator<Item = Reason> {
        Reason::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// `version, cni`, for reasons and logs.
    pub fn join(self) -> String {
        self.iter()
            .map(Reason::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl FromIterator<Reason> for Reasons {
    fn from_iter<I: IntoIterator<Item = Reason>>(iter: I) -> Reasons {
        let mut reasons = Reasons::default();
        for reason in iter {
            reasons.insert(reason);
        }
        reasons
    }
}

impl Serialize for Reasons {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Reasons {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Reasons, D::Error> {
        Ok(Vec::<Reason>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

/// Which revision a pod is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aim {
    /// This revision injects a pod created now (named by the webhooks, or, without them, the
    /// pod's own revision).
    Revision(String),
    /// Nothing would be injected, and why.
    NoProxy(String),
    /// Webhooks of two revisions select the pod, said in full.
    Conflict(String),
    /// The pod's namespace (or the pod) asks for this revision with `istio.io/rev`, but no
    /// webhook configuration serves it: nothing would inject a pod created now, yet the
    /// namespace still asks for a proxy. Left to a person: a restart would take the proxy away.
    Unserved(String),
}

/// What a pod created now would get, against what the pod has, beyond the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub aim: Aim,
    /// Every reason but `version`, which `classify` decides against the aimed revision.
    pub reasons: Reasons,
    /// One sentence per reason, for the pod's reason in the report.
    pub details: Vec<String>,
}

impl Judgement {
    pub fn target_revision(&self) -> Option<&str> {
        match &self.aim {
            Aim::Revision(revision) => Some(revision),
            _ => None,
        }
    }
}

/// DESIGN §2.2 and §2.3a for one pod. A reason only on evidence: without the webhook
/// configurations the pod is held to its own revision and no revision, missing or unwanted
/// proxy is judged; what the target revision's values do not say is not compared. A proxy that
/// was never injected (a gateway's own container) is judged by its version alone, and one
/// injected with other templates than `sidecar` not by the values' resources, CNI or placement.
pub fn judge(pod: &PodRecord, control_plane: &ControlPlane) -> Judgement {
    let aim = aim(pod, control_plane);
    let mut judgement = Judgement {
        aim,
        reasons: Reasons::default(),
        details: Vec::new(),
    };
    let mut add = |reason: Reason, detail: String| {
        judgement.reasons.insert(reason);
        judgement.details.push(detail);
    };
    match (&judgement.aim.clone(), pod.proxy.as_deref()) {
        (_, Some(proxy)) if proxy.origin == ProxyOrigin::Own => {}
        (Aim::Conflict(_) | Aim::Unserved(_), _) | (Aim::NoProxy(_), None) => {}
        (Aim::NoProxy(why), Some(_)) => add(
            Reason::UnwantedProxy,
            format!("the pod carries a proxy but none would be injected now: {why}"),
        ),
        // Without the webhooks, a pod's own revision is all there is to go by: one without a
        // proxy names none.
        (Aim::Revision(_), None) if control_plane.injection.is_none() => {}
        (Aim::Revision(revision), None) => add(
            Reason::MissingProxy,
            format!("the pod has no proxy but revision {revision} would inject one"),
        ),
        (Aim::Revision(revision), Some(proxy)) => {
            let own = proxy.revision.as_deref().unwrap_or(DEFAULT_REVISION);
            if control_plane.injection.is_some() && own != revision {
                add(
                    Reason::Revision,
                    format!(
                        "the proxy is revision {own}'s but revision {revision} would inject the \
                         pod now"
                    ),
                );
            }
            if proxy.origin == ProxyOrigin::Sidecar {
                let wanted = wanted_proxy(pod, control_plane, revision);
                compare_proxy(proxy, &wanted, &mut add);
            }
        }
    }
    judgement
}

/// The revision a pod is held to: the webhooks' choice when they are known, else (and for a
/// proxy that was never injected) its own: the `istio.io/rev` label, else the revision of its
/// sidecar status, else the default (DESIGN §2.2.2).
pub fn aim(pod: &PodRecord, control_plane: &ControlPlane) -> Aim {
    let own_revision = || {
        let label = pod.revision.as_deref();
        let status = pod.proxy.as_deref().and_then(|p| p.revision.as_deref());
        // A label may name a revision tag, which only the webhooks resolve: then the revision
        // that injected the proxy is the one there is.
        let known = |r: &&str| control_plane.revisions.contains_key(*r);
        let own = match (label, status) {
            (Some(label), Some(status)) if !known(&label) && known(&status) => status,
            _ => label.or(status).unwrap_or(DEFAULT_REVISION),
        };
        Aim::Revision(own.to_string())
    };
    let Some(injection) = &control_plane.injection else {
        return own_revision();
    };
    if pod
        .proxy
        .as_deref()
        .is_some_and(|p| p.origin == ProxyOrigin::Own)
    {
        return own_revision();
    }
    let no_labels: &[(String, String)] = &[];
    let namespace = NamespaceLabels {
        name: &pod.namespace,
        labels: injection
            .namespaces
            .get(&*pod.namespace)
            .map_or(no_labels, |l| &l[..]),
    };
    let facts = PodFacts {
        namespace: &pod.namespace,
        labels: &pod.injection.labels[..],
        inject_annotation: pod.annotation(istio_injection::policy::INJECT_KEY),
        host_network: pod.injection.host_network,
    };
    let config_of = |revision: &str| {
        control_plane
            .revisions
            .get(revision)
            .and_then(|r| r.injector_config.as_ref())
    };
    match istio_injection::target(&injection.configurations, &namespace, &facts, config_of) {
        Target::Revision { revision, .. } => Aim::Revision(revision),
        Target::NoProxy(why) => {
            let selected = istio_injection::webhooks::select(
                &injection.configurations,
                &namespace,
                &facts.labels,
            );
            let unserved = match selected {
                Selected::None if pod.has_proxy() => {
                    unserved_revision(injection, &namespace, &facts.labels)
                }
                _ => None,
            };
            match unserved {
                Some(revision) => Aim::Unserved(revision.to_string()),
                None => Aim::NoProxy(why),
            }
        }
        Target::Conflict(why) => Aim::Conflict(why),
    }
}

/// For a pod with a proxy that no webhook selects: the revision its namespace (else the pod)
/// asks for with `istio.io/rev` when no configuration serves it (the revision was removed, or
/// its webhooks are not installed yet). Such a pod is held to that revision, which has no
/// control plane, and left to a person: a restart would take its proxy away although its
/// namespace still asks for one.
fn unserved_revision<'a>(
    injection: &Injection,
    namespace: &'a impl istio_injection::Labels,
    pod: &'a impl istio_injection::Labels,
) -> Option<&'a str> {
    let asked = namespace
        .label(istio_injection::REVISION_LABEL)
        .or_else(|| pod.label(istio_injection::REVISION_LABEL))?;
    let served = injection.configurations.iter().any(|c| {
        c.revision() == asked
            || c.metadata
                .labels
                .get(istio_injection::webhooks::TAG_LABEL)
                .map(String::as_str)
                == Some(asked)
    });
    (!served).then_some(asked)
}

/// What `revision` would inject into this pod, as far as its values and the pod's annotations
/// say.
pub fn wanted_proxy(pod: &PodRecord, control_plane: &ControlPlane, revision: &str) -> PodProxy {
    control_plane
        .revisions
        .get(revision)
        .and_then(|r| r.proxy.as_ref())
        .map(|proxy| proxy.for_pod(|key| pod.annotation(key)))
        .unwrap_or_default()
}

fn compare_proxy(
    proxy: &crate::inventory::Proxy,
    wanted: &PodProxy,
    add: &mut impl FnMut(Reason, String),
) {
    if let Some(resources) = &wanted.resources {
        let differences = proxy.resources.differences(resources);
        if !differences.is_empty() {
            add(
                Reason::Resources,
                format!("the proxy's resources differ: {}", differences.join(", ")),
            );
        }
    }
    match wanted.cni {
        Some(true) if proxy.istio_init => add(
            Reason::Cni,
            "Istio CNI is on but the pod sets up its traffic with istio-init".into(),
        ),
        Some(false) if proxy.istio_validation => add(
            Reason::Cni,
            "Istio CNI is off but the pod relies on it (istio-validation)".into(),
        ),
        _ => {}
    }
    match wanted.native_sidecar {
        Some(true) if !proxy.native => add(
            Reason::NativeSidecar,
            "native sidecars are on but the proxy is a regular container".into(),
        ),
        Some(false) if proxy.native => add(
            Reason::NativeSidecar,
            "native sidecars are off but the proxy is a native sidecar".into(),
        ),
        _ => {}
    }
}

/// A short, stable fingerprint of what a revision injects beyond the version, for the target a
/// restart records: a re-run that finds the same target waits instead of restarting again, so
/// a new resources, CNI or native-sidecar setting must make a new target.
pub fn fingerprint(revision: &str, wanted: &PodProxy) -> String {
    let resources = wanted
        .resources
        .as_ref()
        .map(|r| r.to_json().to_string())
        .unwrap_or_default();
    let flag = |f: Option<bool>| match f {
        Some(true) => "1",
        Some(false) => "0",
        None => "-",
    };
    let hash = crate::sinks::fnv1a(&[
        revision,
        &resources,
        flag(wanted.cni),
        flag(wanted.native_sidecar),
    ]);
    format!("{revision}/{:08x}", hash as u32)
}

#[cfg(test)]
mod tests;
