//! Pod verdicts (DESIGN §2.4): a pure function of one pod, its context and the control plane.

use serde::{Deserialize, Serialize};

use crate::drift::{Aim, Judgement, Reason, Reasons};
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
    /// What the pod's target revision expects, or why nothing can be expected.
    pub expected: Result<&'a Expected, String>,
    /// What a pod created now would get beyond the version, and from which revision.
    pub judgement: &'a Judgement,
    /// `--drift`: the reasons that act; a pod with only others is `excluded`.
    pub selected: Reasons,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub verdict: Verdict,
    pub reason: String,
    /// The version in the proxy's tag, when it has one.
    pub proxy_version: Option<String>,
    /// Why the pod differs from what a restart gives it (DESIGN §2.3a).
    pub drift: Reasons,
}

/// Why a pod held to a revision no webhook configuration serves is not judged.
pub fn unserved(revision: &str) -> String {
    format!(
        "istio.io/rev asks for revision {revision}, but no Istio webhook configuration serves it, \
         so a new pod would get no proxy"
    )
}

pub fn classify(pod: &PodRecord, context: &PodContext) -> Classified {
    let parsed = pod.proxy_image.as_deref().map(ImageRef::parse);
    let proxy_version = match &parsed {
        Some(Ok(image)) => image.version().map(|v| v.version.to_string()),
        _ => None,
    };
    // Every reason first, the version among them, so that a pod not judged further (skipped,
    // excluded, pinned, terminating, completed) still reports all it differs by.
    let mut drift = context.judgement.reasons;
    let mut details = context.judgement.details.clone();
    // What keeps the pod from being judged at all: no control plane for its revision, an
    // image that cannot be read, two revisions selecting it.
    let mut problem = None;
    match &context.judgement.aim {
        Aim::Conflict(why) => problem = Some(why.clone()),
        Aim::Unserved(revision) => problem = Some(unserved(revision)),
        Aim::NoProxy(_) => {}
        Aim::Revision(_) if !pod.has_proxy() => {}
        Aim::Revision(_) => match (&parsed, &context.expected) {
            (_, Err(why)) => problem = Some(why.clone()),
            (None, _) => problem = Some("the proxy container names no image".into()),
            (Some(Err(error)), _) => problem = Some(error.to_string()),
            (Some(Ok(image)), Ok(expected)) => {
                if let Comparison::Drift(why) = compare(image, expected) {
                    drift.insert(Reason::Version);
                    details.insert(0, why);
                }
            }
        },
    }
    let done = |verdict, reason: String, drift| Classified {
        verdict,
        reason,
        proxy_version: proxy_version.clone(),
        drift,
    };

    if pod.skip {
        let why = format!("the pod carries {}", crate::inventory::SKIP_KEY);
        return done(Verdict::Excluded, why, drift);
    }
    if let Some(why) = &context.excluded_by {
        return done(Verdict::Excluded, why.clone(), drift);
    }
    if let Some(image) = &pod.custom_proxy_image {
        let why = format!("sidecar.istio.io/proxyImage pins the proxy to {image}");
        return done(Verdict::CustomImage, why, drift);
    }
    if pod.terminating {
        return done(
            Verdict::Terminating,
            "the pod is being deleted".into(),
            drift,
        );
    }
    if pod.phase == PodPhase::Succeeded {
        return done(Verdict::Completed, "the pod has completed".into(), drift);
    }

    if problem.is_none() && drift.is_empty() {
        return done(Verdict::UpToDate, String::new(), drift);
    }
    if problem.is_none() && drift.intersection(context.selected).is_empty() {
        let why = format!("drift {} is not selected by --drift", drift.join());
        return done(Verdict::Excluded, why, drift);
    }
    let drift_text = problem
        .into_iter()
        .chain(details)
        .collect::<Vec<_>>()
        .join("; ");
    let (verdict, state) = match pod.phase {
        PodPhase::Pending => (Verdict::Pending, "the pod is Pending"),
        PodPhase::Failed => (Verdict::Failed, "the pod has Failed"),
        PodPhase::Unknown => (Verdict::Unknown, "the pod's phase is Unknown"),
        PodPhase::Running if !pod.ready => (Verdict::NotReady, "the pod is not Ready"),
        PodPhase::Running => (Verdict::Outdated, ""),
        PodPhase::Succeeded => unreachable!("completed pods are decided above"),
    };
    let reason = match (state.is_empty(), &pod.phase_reason) {
        (true, _) => drift_text,
        (false, Some(why)) => format!("{drift_text}; {state} ({why})"),
        (false, None) => format!("{drift_text}; {state}"),
    };
    done(verdict, reason, drift)
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

    fn judged(aim: Aim, reasons: &[Reason]) -> Judgement {
        Judgement {
            aim,
            reasons: reasons.iter().copied().collect(),
            details: reasons.iter().map(|r| format!("{r} differs")).collect(),
        }
    }

    fn expected_1_24_1() -> Expected {
        Expected {
            version: parse_version("1.24.1"),
            image: None,
        }
    }

    /// Every reason selected, nothing excluded.
    fn judged_against<'a>(expected: &'a Expected, judgement: &'a Judgement) -> PodContext<'a> {
        PodContext {
            excluded_by: None,
            expected: Ok(expected),
            judgement,
            selected: Reasons::all(),
        }
    }

    const OLD: &str = "docker.io/istio/proxyv2:1.23.2";
    const NEW: &str = "mirror.local/istio/proxyv2:1.24.1-distroless";

    #[test]
    fn one_row_per_verdict_in_order() {
        let expected = expected_1_24_1();
        let current = judged(Aim::Revision("default".into()), &[]);
        let ok = judged_against(&expected, &current);
        let by_namespace = PodContext {
            excluded_by: Some("namespace shop carries the skip label".into()),
            expected: Ok(&expected),
            judgement: &current,
            selected: Reasons::all(),
        };
        let no_revision = PodContext {
            excluded_by: None,
            expected: Err("revision 1-22 has no istiod".into()),
            judgement: &current,
            selected: Reasons::all(),
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
        // Beyond the version (DESIGN §2.3a): each reason makes a pod drift, alone.
        let resources = judged(Aim::Revision("default".into()), &[Reason::Resources]);
        let unwanted = judged(Aim::NoProxy("no webhook".into()), &[Reason::UnwantedProxy]);
        let missing = judged(Aim::Revision("1-24".into()), &[Reason::MissingProxy]);
        let conflict = judged(Aim::Conflict("two revisions".into()), &[]);
        let quiet = judged(Aim::NoProxy("no webhook".into()), &[]);
        let context = |judgement| judged_against(&expected, judgement);
        let (resources, unwanted, missing, conflict, quiet) = (
            context(&resources),
            context(&unwanted),
            context(&missing),
            context(&conflict),
            context(&quiet),
        );
        let version_only = PodContext {
            selected: [Reason::Version].into_iter().collect(),
            ..resources.clone()
        };
        let no_proxy = with(&|p| {
            p.proxy = None;
            p.proxy_image = None
        });
        let cases = cases.into_iter().chain([
            (
                pod(NEW, PodPhase::Running, true),
                &resources,
                Verdict::Outdated,
            ),
            (
                pod(NEW, PodPhase::Running, false),
                &resources,
                Verdict::NotReady,
            ),
            (
                pod(NEW, PodPhase::Running, true),
                &unwanted,
                Verdict::Outdated,
            ),
            (no_proxy.clone(), &missing, Verdict::Outdated),
            (
                pod(NEW, PodPhase::Running, true),
                &conflict,
                Verdict::Outdated,
            ),
            // the version is not compared when no revision would inject the pod
            (pod(OLD, PodPhase::Running, true), &quiet, Verdict::UpToDate),
            (no_proxy, &ok, Verdict::UpToDate),
            // --drift version: a pod with only resources drift is left alone
            (
                pod(NEW, PodPhase::Running, true),
                &version_only,
                Verdict::Excluded,
            ),
            (
                pod(OLD, PodPhase::Running, true),
                &version_only,
                Verdict::Outdated,
            ),
        ]);
        for (i, (pod, context, verdict)) in cases.enumerate() {
            let classified = classify(&pod, context);
            assert_eq!(classified.verdict, verdict, "row {i}: {classified:?}");
            if verdict.is_drift() {
                assert!(
                    !classified.reason.is_empty(),
                    "row {i}: a drift needs a reason"
                );
            }
        }
    }

    /// A pod decided before it is judged further still reports every reason it differs by,
    /// the version among them (DESIGN §4: `drift` lists a pod's reasons).
    #[test]
    fn pods_not_judged_further_still_report_their_version_drift() {
        let expected = expected_1_24_1();
        let current = judged(Aim::Revision("default".into()), &[]);
        let context = judged_against(&expected, &current);
        type Edit = (&'static str, fn(&mut PodRecord), Verdict);
        let edits: [Edit; 4] = [
            ("skipped", |p| p.skip = true, Verdict::Excluded),
            (
                "pinned",
                |p| p.custom_proxy_image = Some("my/proxy:1.23.2".into()),
                Verdict::CustomImage,
            ),
            (
                "terminating",
                |p| p.terminating = true,
                Verdict::Terminating,
            ),
            (
                "completed",
                |p| p.phase = PodPhase::Succeeded,
                Verdict::Completed,
            ),
        ];
        for (name, edit, verdict) in edits {
            let mut stale = pod(OLD, PodPhase::Running, true);
            edit(&mut stale);
            let classified = classify(&stale, &context);
            assert_eq!(classified.verdict, verdict, "{name}");
            assert_eq!(
                classified.drift,
                [Reason::Version].into_iter().collect(),
                "{name}"
            );
            let mut current = pod(NEW, PodPhase::Running, true);
            edit(&mut current);
            assert!(classify(&current, &context).drift.is_empty(), "{name}");
        }
    }

    #[test]
    fn reasons_say_what_and_why() {
        let expected = expected_1_24_1();
        let current = judged(Aim::Revision("default".into()), &[]);
        let context = judged_against(&expected, &current);
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
