//! Pod verdicts (DESIGN §2.4): a pure function of one pod, its context and the control plane.

use serde::{Deserialize, Serialize};

use crate::image::{Comparison, Expected, ImageRef, compare};
use crate::inventory::{PodPhase, PodRecord};

/// The verdicts in the order they are decided: the first that applies wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Excluded,
    CustomImage,
    Terminating,
    Completed,
    UpToDate,
    Pending,
    Failed,
    Unknown,
    NotReady,
    Outdated,
}

impl Verdict {
    /// The proxy differs from the control plane and the pod is the plan's business.
    pub fn is_drift(self) -> bool {
        matches!(
            self,
            Verdict::Pending
                | Verdict::Failed
                | Verdict::Unknown
                | Verdict::NotReady
                | Verdict::Outdated
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Excluded => "excluded",
            Verdict::CustomImage => "custom-image",
            Verdict::Terminating => "terminating",
            Verdict::Completed => "completed",
            Verdict::UpToDate => "up-to-date",
            Verdict::Pending => "pending",
            Verdict::Failed => "failed",
            Verdict::Unknown => "unknown",
            Verdict::NotReady => "not-ready",
            Verdict::Outdated => "outdated",
        }
    }
}

/// What surrounds a pod: skip marks up its chain and what its revision expects.
#[derive(Debug, Clone)]
pub struct PodContext<'a> {
    /// Why the pod is excluded by something other than itself (namespace, workload, option).
    pub excluded_by: Option<String>,
    /// What the pod's revision expects, or why nothing can be expected.
    pub expected: Result<&'a Expected, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub verdict: Verdict,
    pub reason: String,
    /// The version in the proxy's tag, when it has one.
    pub proxy_version: Option<String>,
}

pub fn classify(pod: &PodRecord, context: &PodContext) -> Classified {
    let parsed = pod.proxy_image.as_deref().map(ImageRef::parse);
    let proxy_version = match &parsed {
        Some(Ok(image)) => image.version().map(|v| v.version.to_string()),
        _ => None,
    };
    let done = |verdict, reason: String| Classified {
        verdict,
        reason,
        proxy_version: proxy_version.clone(),
    };

    if pod.skip {
        return done(
            Verdict::Excluded,
            format!("the pod carries {}", crate::inventory::SKIP_KEY),
        );
    }
    if let Some(why) = &context.excluded_by {
        return done(Verdict::Excluded, why.clone());
    }
    if let Some(image) = &pod.custom_proxy_image {
        return done(
            Verdict::CustomImage,
            format!("sidecar.istio.io/proxyImage pins the proxy to {image}"),
        );
    }
    if pod.terminating {
        return done(Verdict::Terminating, "the pod is being deleted".into());
    }
    if pod.phase == PodPhase::Succeeded {
        return done(Verdict::Completed, "the pod has completed".into());
    }

    let drift = match (&parsed, &context.expected) {
        (_, Err(why)) => why.clone(),
        (None, _) => "the proxy container names no image".into(),
        (Some(Err(error)), _) => error.to_string(),
        (Some(Ok(image)), Ok(expected)) => match compare(image, expected) {
            Comparison::Current => return done(Verdict::UpToDate, String::new()),
            Comparison::Drift(why) => why,
        },
    };
    let (verdict, state) = match pod.phase {
        PodPhase::Pending => (Verdict::Pending, "the pod is Pending"),
        PodPhase::Failed => (Verdict::Failed, "the pod has Failed"),
        PodPhase::Unknown => (Verdict::Unknown, "the pod's phase is Unknown"),
        PodPhase::Running if !pod.ready => (Verdict::NotReady, "the pod is not Ready"),
        PodPhase::Running => (Verdict::Outdated, ""),
        PodPhase::Succeeded => unreachable!("completed pods are decided above"),
    };
    let reason = match (state.is_empty(), &pod.phase_reason) {
        (true, _) => drift,
        (false, Some(why)) => format!("{drift}; {state} ({why})"),
        (false, None) => format!("{drift}; {state}"),
    };
    done(verdict, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::parse_version;
    use std::sync::Arc;

    fn pod(image: &str, phase: PodPhase, ready: bool) -> PodRecord {
        PodRecord {
            namespace: Arc::from("shop"),
            name: "orders-1".into(),
            phase,
            phase_reason: None,
            ready,
            terminating: false,
            controller: None,
            proxy_image: Some(Arc::from(image)),
            revision: None,
            skip: false,
            module_label: false,
            custom_proxy_image: None,
            proxy: Some(Box::default()),
            injection: Box::default(),
        }
    }

    const OLD: &str = "docker.io/istio/proxyv2:1.23.2";
    const NEW: &str = "mirror.local/istio/proxyv2:1.24.1-distroless";

    #[test]
    fn one_row_per_verdict_in_order() {
        let expected = Expected {
            version: parse_version("1.24.1"),
            image: None,
        };
        let ok = PodContext {
            excluded_by: None,
            expected: Ok(&expected),
        };
        let by_namespace = PodContext {
            excluded_by: Some("namespace shop carries the skip label".into()),
            expected: Ok(&expected),
        };
        let no_revision = PodContext {
            excluded_by: None,
            expected: Err("revision 1-22 has no istiod".into()),
        };
        let with = |f: &dyn Fn(&mut PodRecord)| {
            let mut p = pod(OLD, PodPhase::Running, true);
            f(&mut p);
            p
        };
        let cases: Vec<(PodRecord, &PodContext, Verdict)> = vec![
            (with(&|p| p.skip = true), &ok, Verdict::Excluded),
            (
                pod(OLD, PodPhase::Running, true),
                &by_namespace,
                Verdict::Excluded,
            ),
            // skip wins over everything after it
            (
                with(&|p| {
                    p.skip = true;
                    p.terminating = true
                }),
                &ok,
                Verdict::Excluded,
            ),
            (
                with(&|p| p.custom_proxy_image = Some("my/proxy:1".into())),
                &ok,
                Verdict::CustomImage,
            ),
            (with(&|p| p.terminating = true), &ok, Verdict::Terminating),
            (
                pod(OLD, PodPhase::Succeeded, false),
                &ok,
                Verdict::Completed,
            ),
            (pod(NEW, PodPhase::Running, true), &ok, Verdict::UpToDate),
            // up-to-date wins over a bad phase
            (pod(NEW, PodPhase::Pending, false), &ok, Verdict::UpToDate),
            (pod(OLD, PodPhase::Pending, false), &ok, Verdict::Pending),
            (pod(OLD, PodPhase::Failed, false), &ok, Verdict::Failed),
            (pod(OLD, PodPhase::Unknown, false), &ok, Verdict::Unknown),
            (pod(OLD, PodPhase::Running, false), &ok, Verdict::NotReady),
            (pod(OLD, PodPhase::Running, true), &ok, Verdict::Outdated),
            (
                pod("docker.io/istio/proxyv2:1.25.0", PodPhase::Running, true),
                &ok,
                Verdict::Outdated,
            ),
            (
                pod("NOT AN IMAGE", PodPhase::Running, true),
                &ok,
                Verdict::Outdated,
            ),
            (
                pod(NEW, PodPhase::Running, true),
                &no_revision,
                Verdict::Outdated,
            ),
        ];
        for (i, (pod, context, verdict)) in cases.iter().enumerate() {
            let classified = classify(pod, context);
            assert_eq!(classified.verdict, *verdict, "row {i}: {classified:?}");
            if verdict.is_drift() {
                assert!(
                    !classified.reason.is_empty(),
                    "row {i}: a drift needs a reason"
                );
            }
        }
    }

    #[test]
    fn reasons_say_what_and_why() {
        let expected = Expected {
            version: parse_version("1.24.1"),
            image: None,
        };
        let context = PodContext {
            excluded_by: None,
            expected: Ok(&expected),
        };
        let mut evicted = pod(OLD, PodPhase::Failed, false);
        evicted.phase_reason = Some("Evicted".into());
        let classified = classify(&evicted, &context);
        assert_eq!(
            classified.reason,
            "proxy 1.23.2 is older than 1.24.1; the pod has Failed (Evicted)"
        );
        assert_eq!(classified.proxy_version.as_deref(), Some("1.23.2"));
        let bad = classify(&pod("NOT AN IMAGE", PodPhase::Running, true), &context);
        assert!(
            bad.reason.contains("invalid image reference"),
            "{}",
            bad.reason
        );
        assert_eq!(bad.proxy_version, None);
    }
}
