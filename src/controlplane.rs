//! The version each proxy should run (DESIGN §2.2) and the gate that must hold before `run`
//! restarts anything.
//!
//! Each revision (`istio.io/rev`) has its own istiod and injector ConfigMap. The version a
//! restart yields is the injector's, so that is what pods are compared with; istiod's version
//! is what the gate checks the injector against.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use istio_injection::proxy::RevisionProxy;
use istio_injection::{InjectorConfig, WebhookConfiguration};

use crate::image::{Expected, ImageRef, parse_version};
use crate::inventory::{InjectorConfigMap, Inventory, IstiodPod, PodPhase, model};
use crate::{Error, Result};

/// The name of the revision of an istiod or pod that names none.
pub const DEFAULT_REVISION: &str = "default";

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub istio_namespace: String,
    pub expected_version: Option<String>,
    pub expected_image: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Revision {
    pub name: String,
    /// The version istiod runs, when all its pods agree.
    pub istiod_version: Option<semver::Version>,
    pub istiod_image: Option<String>,
    /// The proxy image the injector puts into new pods.
    pub injector_image: Option<ImageRef>,
    /// What this revision's pods are compared with.
    pub expected: Expected,
    /// What the injector puts beside the image: resources, CNI, native sidecars.
    pub proxy: Option<RevisionProxy>,
    /// The injector ConfigMap's `config`: its policy and selectors (Istio's defaults when the
    /// ConfigMap has none; `None` only when there is no ConfigMap or it cannot be read).
    pub injector_config: Option<InjectorConfig>,
    /// Why the ConfigMap's `config` cannot be read: which pods this revision injects is then
    /// not known, and its pods are left to a person rather than judged by a guess.
    pub config_error: Option<String>,
    /// Why the gate does not hold for this revision.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ControlPlane {
    pub revisions: BTreeMap<String, Revision>,
    pub default_revision: Option<String>,
    /// `--expected-version` / `--expected-image`: every pod is compared with this.
    pub overridden: Option<Expected>,
    /// Where the expected version came from, for the report.
    pub source: String,
    pub istio_namespace: String,
    /// Istio's webhook configurations and the namespace labels they read: which revision
    /// injects a pod now (DESIGN §2.2). `None` when the inventory has no configuration or one
    /// reads labels the inventory does not keep: pods are then held to their own revision.
    pub injection: Option<Injection>,
    /// What the report's reader should know about how pods were judged.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Injection {
    pub configurations: Vec<WebhookConfiguration>,
    /// Each namespace's kept labels.
    pub namespaces: HashMap<String, Box<[(String, String)]>>,
}

/// The outcome of the gate: `run` restarts nothing unless it passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    pub passed: bool,
    pub problems: Vec<String>,
}

fn revision_of(rev: Option<&str>) -> String {
    match rev {
        None | Some("") => DEFAULT_REVISION.to_string(),
        Some(r) => r.to_string(),
    }
}

impl Revision {
    fn new(name: &str) -> Revision {
        Revision {
            name: name.to_string(),
            istiod_version: None,
            istiod_image: None,
            injector_image: None,
            expected: Expected {
                version: None,
                image: None,
            },
            problems: Vec::new(),
            proxy: None,
            injector_config: None,
            config_error: None,
        }
    }

    /// The version the injector's image carries.
    fn injected_version(&self) -> Option<semver::Version> {
        self.injector_image
            .as_ref()
            .and_then(|i| i.version())
            .map(|v| v.version)
    }
}

/// What the Istio namespace holds, by revision, sorted by name.
struct Found<'a> {
    pods: BTreeMap<String, Vec<&'a IstiodPod>>,
    injectors: Vec<&'a InjectorConfigMap>,
    /// Each revision's istiod `ENABLE_NATIVE_SIDECARS`, when its Deployment sets it.
    native_sidecars_env: BTreeMap<String, Option<&'a str>>,
}

impl ControlPlane {
    /// Finds the control plane in the inventory. Fails only when there is nothing to compare
    /// with: no override and no istiod or injector at all.
    pub fn resolve(inventory: &Inventory, options: &Options) -> Result<ControlPlane> {
        let overridden = expected_override(options)?;
        let ns = options.istio_namespace.as_str();
        let (mut revisions, found) = find_revisions(inventory, ns);
        for revision in revisions.values_mut() {
            let pods = found
                .pods
                .get(&revision.name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            check_istiod(revision, pods, ns);
            let injector = found
                .injectors
                .iter()
                .find(|c| revision_of(c.revision.as_deref()) == revision.name);
            let native = found
                .native_sidecars_env
                .get(&revision.name)
                .and_then(|env| env.as_deref());
            read_injector(revision, injector.copied(), native, ns);
            revision.expected = expected_of(revision, overridden.as_ref());
            check_injected_version(revision, overridden.as_ref());
        }

        let default_revision = if revisions.contains_key(DEFAULT_REVISION) {
            Some(DEFAULT_REVISION.to_string())
        } else if revisions.len() == 1 {
            revisions.keys().next().cloned()
        } else {
            None
        };
        let source = source_of(options, overridden.as_ref(), &revisions, &default_revision);
        if overridden.is_none()
            && revisions
                .values()
                .all(|r| r.expected.version.is_none() && r.expected.image.is_none())
        {
            return Err(Error::NoControlPlane {
                namespace: ns.to_string(),
            });
        }
        let (injection, mut warnings) = injection_of(inventory, &revisions);
        for revision in revisions.values() {
            let skipped = revision.injector_config.iter().flat_map(|c| &c.skipped);
            warnings.extend(skipped.map(|why| {
                format!(
                    "revision {}: the injector config's {why}; Istio skips that selector, and so \
                     does the tool",
                    revision.name
                )
            }));
        }
        Ok(ControlPlane {
            revisions,
            default_revision,
            overridden,
            source,
            istio_namespace: ns.to_string(),
            injection,
            warnings,
        })
    }

    /// What a pod of `revision` is compared with; `Err` says why there is nothing to compare with.
    pub fn expected_for(&self, revision: Option<&str>) -> std::result::Result<&Expected, String> {
        if let Some(error) = revision
            .and_then(|name| self.revisions.get(name))
            .and_then(|r| r.config_error.as_ref())
        {
            return Err(error.clone());
        }
        if let Some(expected) = &self.overridden {
            return Ok(expected);
        }
        let name = match revision {
            Some(r) if !r.is_empty() => r,
            _ => match &self.default_revision {
                Some(r) => r.as_str(),
                None => {
                    return Err(format!(
                        "the pod names no revision and {} has no default revision",
                        self.istio_namespace
                    ));
                }
            },
        };
        match self.revisions.get(name) {
            Some(r) if r.expected.version.is_some() || r.expected.image.is_some() => {
                Ok(&r.expected)
            }
            Some(_) => Err(format!("revision {name} names no proxy version")),
            None => Err(format!(
                "revision {name} has no istiod or injector in {}",
                self.istio_namespace
            )),
        }
    }

    /// The version the report shows: the override, else the default revision's.
    pub fn headline(&self) -> Option<&Expected> {
        self.overridden.as_ref().or_else(|| {
            self.default_revision
                .as_ref()
                .and_then(|r| self.revisions.get(r))
                .map(|r| &r.expected)
        })
    }

    /// DESIGN §2.2: every revision's istiod Running, Ready and on one version, and its injector
    /// injecting that version. With an override and no istiod to be seen, there is nothing to
    /// check, and the operator's word is taken.
    pub fn gate(&self) -> Gate {
        self.gate_for(&BTreeSet::new())
    }

    /// The gate over the revisions that are some pod's target (DESIGN §2.2.4): a revision no
    /// pod is held to cannot break a restart. With no target at all, over every revision.
    pub fn gate_for(&self, targets: &BTreeSet<String>) -> Gate {
        let problems: Vec<String> = self
            .revisions
            .values()
            .filter(|r| targets.is_empty() || targets.contains(&r.name))
            .flat_map(|r| r.problems.iter().cloned())
            .collect();
        Gate {
            passed: problems.is_empty(),
            problems,
        }
    }
}

/// The revisions that exist: announced by istiod Deployments, istiod pods and injector
/// ConfigMaps in `ns`; with each its istiod Deployment's image.
fn find_revisions<'a>(
    inventory: &'a Inventory,
    ns: &str,
) -> (BTreeMap<String, Revision>, Found<'a>) {
    let mut revisions: BTreeMap<String, Revision> = BTreeMap::new();
    let mut deployments: Vec<_> = inventory
        .workloads
        .values()
        .filter(|w| {
            &*w.kind == "Deployment"
                && &*w.namespace == ns
                && (w.app.as_deref() == Some("istiod") || w.discovery_image.is_some())
        })
        .collect();
    deployments.sort_by(|a, b| a.name.cmp(&b.name));
    let mut native_sidecars_env = BTreeMap::new();
    for deployment in deployments {
        let name = revision_of(deployment.revision.as_deref());
        let revision = revisions
            .entry(name.clone())
            .or_insert_with(|| Revision::new(&name));
        if revision.istiod_image.is_none() {
            revision.istiod_image = deployment.discovery_image.as_deref().map(str::to_string);
        }
        native_sidecars_env
            .entry(name)
            .or_insert(deployment.discovery_native_sidecars.as_deref());
    }

    let mut pods: Vec<_> = inventory
        .istiod_pods
        .iter()
        .filter(|p| p.namespace == ns && !p.terminating)
        .collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    let mut by_revision: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for pod in pods {
        by_revision
            .entry(revision_of(pod.revision.as_deref()))
            .or_default()
            .push(pod);
    }

    let mut injectors: Vec<_> = inventory
        .injectors
        .iter()
        .filter(|c| c.namespace == ns)
        .collect();
    injectors.sort_by(|a, b| a.name.cmp(&b.name));
    let named = by_revision
        .keys()
        .cloned()
        .chain(injectors.iter().map(|c| revision_of(c.revision.as_deref())));
    for name in named.collect::<Vec<_>>() {
        revisions
            .entry(name.clone())
            .or_insert_with(|| Revision::new(&name));
    }
    let found = Found {
        pods: by_revision,
        injectors,
        native_sidecars_env,
    };
    (revisions, found)
}

/// istiod: every pod Running and Ready, and one version among them.
fn check_istiod(revision: &mut Revision, pods: &[&IstiodPod], ns: &str) {
    if pods.is_empty() {
        revision
            .problems
            .push(format!("revision {}: no istiod pod in {ns}", revision.name));
    }
    let mut versions: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for pod in pods {
        if pod.phase != PodPhase::Running || !pod.ready {
            revision.problems.push(format!(
                "revision {}: istiod pod {ns}/{} is not Running and Ready",
                revision.name, pod.name
            ));
        }
        let version = pod
            .image
            .as_deref()
            .and_then(|i| ImageRef::parse(i).ok())
            .and_then(|i| i.version())
            .map(|v| v.version.to_string())
            .unwrap_or_else(|| pod.image.clone().unwrap_or_else(|| "no image".into()));
        versions.entry(version).or_default().push(&pod.name);
    }
    if versions.len() > 1 {
        let listed: Vec<String> = versions
            .iter()
            .map(|(v, pods)| format!("{v} ({})", pods.join(", ")))
            .collect();
        revision.problems.push(format!(
            "revision {}: istiod pods run different versions: {}",
            revision.name,
            listed.join("; ")
        ));
    } else if let Some(version) = versions.keys().next() {
        revision.istiod_version = parse_version(version);
    }
    if revision.istiod_version.is_none() {
        revision.istiod_version = revision
            .istiod_image
            .as_deref()
            .and_then(|i| ImageRef::parse(i).ok())
            .and_then(|i| i.version())
            .map(|v| v.version);
    }
}

/// The injector: what a restarted pod will get. `native_env` is istiod's
/// `ENABLE_NATIVE_SIDECARS`, which the values may override.
fn read_injector(
    revision: &mut Revision,
    injector: Option<&InjectorConfigMap>,
    native_env: Option<&str>,
    ns: &str,
) {
    let Some(configmap) = injector else {
        revision.problems.push(format!(
            "revision {}: no injector ConfigMap {}",
            revision.name,
            injector_name(&revision.name)
        ));
        return;
    };
    let mut problem = |why: String| {
        revision.problems.push(format!(
            "revision {}: ConfigMap {ns}/{}: {why}",
            revision.name, configmap.name
        ))
    };
    match InjectorConfig::parse(configmap.config.as_deref()) {
        Ok(config) => revision.injector_config = Some(config),
        Err(why) => {
            let why = format!("data.config: {why}");
            revision.config_error = Some(format!(
                "revision {}'s injector ConfigMap {ns}/{}: {why}",
                revision.name, configmap.name
            ));
            problem(why)
        }
    }
    match injector_values(configmap.values.as_deref()) {
        Ok(values) => {
            revision.proxy = Some(RevisionProxy::from_values(&values, native_env));
            match injector_image(&values) {
                Ok(image) => revision.injector_image = Some(image),
                Err(why) => problem(why),
            }
        }
        Err(why) => problem(why),
    }
}

/// DESIGN §2.2: the webhook configurations, when every label their selectors and the
/// injectors' selectors read is one the inventory keeps; else a warning, and pods are held to
/// their own revision, as without configurations.
fn injection_of(
    inventory: &Inventory,
    revisions: &BTreeMap<String, Revision>,
) -> (Option<Injection>, Vec<String>) {
    let configurations = &inventory.webhook_configurations;
    if configurations.is_empty() {
        return (None, Vec::new());
    }
    let kept = |field: &str, key: &str| {
        model::is_kept_key(key)
            || (field == "namespaceSelector"
                && key == istio_injection::webhooks::NAMESPACE_NAME_LABEL)
    };
    let mut unread: Vec<String> = Vec::new();
    for configuration in configurations {
        if let Err(why) = configuration.check() {
            unread.push(format!(
                "MutatingWebhookConfiguration {}: {why}",
                configuration.metadata.name
            ));
        }
        for (field, key) in configuration.selector_keys() {
            if !kept(field, key) {
                unread.push(format!(
                    "MutatingWebhookConfiguration {}: a {field} reads label {key}",
                    configuration.metadata.name
                ));
            }
        }
    }
    for revision in revisions.values() {
        let keys = revision
            .injector_config
            .iter()
            .flat_map(|c| c.selector_keys());
        for key in keys.filter(|k| !model::is_kept_key(k)) {
            unread.push(format!(
                "revision {}: the injector's config selects pods by label {key}",
                revision.name
            ));
        }
    }
    if !unread.is_empty() {
        unread.sort();
        unread.dedup();
        let warning = format!(
            "which revision injects a pod is not judged, and pods are held to their own \
             revision: {} (the tool reads only app, istio-injection, istio.io/*, \
             sidecar.istio.io/* and kyma-project.io/* labels)",
            unread.join("; ")
        );
        return (None, vec![warning]);
    }
    let namespaces = inventory
        .namespaces
        .iter()
        .map(|(name, record)| (name.clone(), record.labels.clone()))
        .collect();
    let injection = Injection {
        configurations: configurations.clone(),
        namespaces,
    };
    (Some(injection), Vec::new())
}

/// What the revision's pods are compared with: the override, else the injector's image (its
/// version when it has one, else the whole reference), else, without an injector image, the
/// version istiod runs.
fn expected_of(revision: &Revision, overridden: Option<&Expected>) -> Expected {
    if let Some(expected) = overridden {
        return expected.clone();
    }
    match &revision.injector_image {
        Some(image) => Expected {
            version: revision.injected_version(),
            image: Some(image.clone()),
        },
        None => Expected {
            version: revision.istiod_version.clone(),
            image: None,
        },
    }
}

/// The injector must inject the version istiod runs (or the one asked for), and that must be
/// confirmed: an injector image without a version (a tag such as `1.24`, a digest alone) says
/// nothing about what it injects. Only an override naming that very image confirms it.
fn check_injected_version(revision: &mut Revision, overridden: Option<&Expected>) {
    let Some(image) = &revision.injector_image else {
        return;
    };
    let wanted = match overridden {
        Some(expected) => expected.version.clone(),
        None => revision.istiod_version.clone(),
    };
    let whom = if overridden.is_some() {
        "the expected version"
    } else {
        "istiod"
    };
    let problem = match (revision.injected_version(), &wanted) {
        (Some(injected), Some(wanted)) if &injected != wanted => Some(format!(
            "the injector injects {injected} but {whom} is {wanted}"
        )),
        (Some(_), _) => None,
        (None, _) if overridden.and_then(|e| e.image.as_ref()) == Some(image) => None,
        (None, _) => Some(format!(
            "the injector's image {image} names no version, so the version it injects cannot \
             be confirmed (give global.tag a full version such as 1.24.1)"
        )),
    };
    if let Some(problem) = problem {
        revision
            .problems
            .push(format!("revision {}: {problem}", revision.name));
    }
}

/// Where the expected version came from, for the report.
fn source_of(
    options: &Options,
    overridden: Option<&Expected>,
    revisions: &BTreeMap<String, Revision>,
    default_revision: &Option<String>,
) -> String {
    let ns = &options.istio_namespace;
    match (overridden, options.expected_image.is_some()) {
        (Some(_), true) => "--expected-image".to_string(),
        (Some(_), false) => "--expected-version".to_string(),
        (None, _) => match default_revision.as_ref().and_then(|r| revisions.get(r)) {
            Some(revision) if revision.injector_image.is_some() => {
                format!("ConfigMap {ns}/{}", injector_name(&revision.name))
            }
            Some(revision) if revision.istiod_version.is_some() => {
                format!("istiod in {ns} (revision {})", revision.name)
            }
            _ => String::new(),
        },
    }
}

fn injector_name(revision: &str) -> String {
    if revision == DEFAULT_REVISION {
        "istio-sidecar-injector".into()
    } else {
        format!("istio-sidecar-injector-{revision}")
    }
}

fn expected_override(options: &Options) -> Result<Option<Expected>> {
    let image = match &options.expected_image {
        Some(text) => Some(ImageRef::parse(text).map_err(|e| Error::Usage {
            option: "--expected-image".into(),
            problem: e.to_string(),
        })?),
        None => None,
    };
    let version = match &options.expected_version {
        Some(text) => Some(parse_version(text).ok_or_else(|| Error::Usage {
            option: "--expected-version".into(),
            problem: format!("{text:?} is not a version such as 1.24.1"),
        })?),
        None => image.as_ref().and_then(|i| i.version()).map(|v| v.version),
    };
    if let (Some(image), Some(version)) = (&image, &version)
        && let Some(tagged) = image.version()
        && !tagged.same_version(version)
    {
        return Err(Error::Usage {
            option: "--expected-version".into(),
            problem: format!("{version} disagrees with --expected-image {image}"),
        });
    }
    Ok((image.is_some() || version.is_some()).then_some(Expected { version, image }))
}

/// The injector ConfigMap's `data.values`, parsed.
fn injector_values(values: Option<&str>) -> std::result::Result<serde_json::Value, String> {
    let values = values.ok_or("data.values: missing")?;
    serde_json::from_str(values).map_err(|e| format!("data.values: {e}"))
}

/// The image the injector puts into pods, by Istio's template (`istio_injection::proxy::image`).
fn injector_image(values: &serde_json::Value) -> std::result::Result<ImageRef, String> {
    let text = istio_injection::proxy::image(values)?;
    ImageRef::parse(&text).map_err(|e| format!("data.values: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{InjectorConfigMap, IstiodPod, WorkloadRecord};

    fn istiod_pod(name: &str, rev: Option<&str>, version: &str, ready: bool) -> IstiodPod {
        IstiodPod {
            namespace: "istio-system".into(),
            name: name.into(),
            revision: rev.map(str::to_string),
            image: Some(format!("docker.io/istio/pilot:{version}")),
            phase: PodPhase::Running,
            ready,
            terminating: false,
        }
    }

    fn injector(rev: Option<&str>, tag: &str) -> InjectorConfigMap {
        InjectorConfigMap {
            namespace: "istio-system".into(),
            name: match rev {
                Some(r) => format!("istio-sidecar-injector-{r}"),
                None => "istio-sidecar-injector".into(),
            },
            revision: rev.map(str::to_string),
            values: Some(format!(
                r#"{{"global":{{"hub":"docker.io/istio","tag":"{tag}","proxy":{{"image":"proxyv2"}}}}}}"#
            )),
            config: None,
        }
    }

    fn inventory(pods: Vec<IstiodPod>, injectors: Vec<InjectorConfigMap>) -> Inventory {
        let mut inventory = Inventory {
            istiod_pods: pods,
            injectors,
            ..Inventory::default()
        };
        inventory.workloads.insert(
            crate::inventory::ObjectKey {
                kind: "Deployment".into(),
                namespace: "istio-system".into(),
                name: "istiod".into(),
            },
            Box::new(WorkloadRecord {
                kind: "Deployment".into(),
                namespace: "istio-system".into(),
                name: "istiod".into(),
                app: Some("istiod".into()),
                discovery_image: Some("docker.io/istio/pilot:1.24.1".into()),
                ..WorkloadRecord::default()
            }),
        );
        inventory
    }

    const DIGEST_ONLY: &str = "docker.io/istio/proxyv2@sha256:0123456789abcdef0123456789abcdef";

    #[test]
    fn an_injector_image_without_a_version_is_compared_whole() {
        let inv = inventory(
            vec![istiod_pod("istiod-a", None, "1.24.1", true)],
            vec![InjectorConfigMap {
                values: Some(format!(
                    r#"{{"global":{{"proxy":{{"image":"{DIGEST_ONLY}"}}}}}}"#
                )),
                ..injector(None, "")
            }],
        );
        let cp = ControlPlane::resolve(&inv, &options()).unwrap();
        let expected = cp.expected_for(None).unwrap();
        assert_eq!(expected.version, None);
        assert_eq!(expected.image.as_ref().unwrap().to_string(), DIGEST_ONLY);
        // An override naming that very image confirms what the injector injects.
        let mut opts = options();
        opts.expected_image = Some(DIGEST_ONLY.into());
        let cp = ControlPlane::resolve(&inv, &opts).unwrap();
        assert!(cp.gate().passed, "{:?}", cp.gate());
    }

    fn options() -> Options {
        Options {
            istio_namespace: "istio-system".into(),
            ..Options::default()
        }
    }

    #[test]
    fn a_healthy_control_plane_passes_the_gate() {
        let inv = inventory(
            vec![
                istiod_pod("istiod-a", None, "1.24.1", true),
                istiod_pod("istiod-b", None, "1.24.1-distroless", true),
            ],
            vec![injector(None, "1.24.1-distroless")],
        );
        let cp = ControlPlane::resolve(&inv, &options()).unwrap();
        assert_eq!(
            cp.gate(),
            Gate {
                passed: true,
                problems: vec![]
            }
        );
        let expected = cp.expected_for(None).unwrap();
        assert_eq!(expected.version.as_ref().unwrap().to_string(), "1.24.1");
        assert_eq!(
            expected.image.as_ref().unwrap().to_string(),
            "docker.io/istio/proxyv2:1.24.1-distroless"
        );
        assert_eq!(cp.source, "ConfigMap istio-system/istio-sidecar-injector");
    }

    #[test]
    fn the_gate_covers_the_revisions_pods_are_held_to() {
        // The default revision is healthy; the canary 1-24's istiod is not Ready.
        let inv = inventory(
            vec![
                istiod_pod("istiod-a", None, "1.23.2", true),
                istiod_pod("istiod-1-24-a", Some("1-24"), "1.24.1", false),
            ],
            vec![injector(None, "1.23.2"), injector(Some("1-24"), "1.24.1")],
        );
        let cp = ControlPlane::resolve(&inv, &options()).unwrap();
        let targets = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        let canary = cp.gate_for(&targets(&["default", "1-24"]));
        assert!(!canary.passed);
        assert_eq!(canary.problems.len(), 1, "{canary:?}");
        assert!(canary.problems[0].contains("istiod-1-24-a is not Running and Ready"));
        // Before any namespace moves to it, no pod is held to the canary.
        assert!(cp.gate_for(&targets(&["default"])).passed);
        // With no pod at all, every revision counts.
        assert!(!cp.gate_for(&BTreeSet::new()).passed);
    }

    #[test]
    fn the_gate_names_each_problem() {
        let cases: Vec<(Vec<IstiodPod>, Vec<InjectorConfigMap>, &str)> = vec![
            (
                vec![
                    istiod_pod("istiod-a", None, "1.24.1", true),
                    istiod_pod("istiod-b", None, "1.23.2", true),
                ],
                vec![injector(None, "1.24.1")],
                "istiod pods run different versions: 1.23.2 (istiod-b); 1.24.1 (istiod-a)",
            ),
            (
                vec![istiod_pod("istiod-a", None, "1.24.1", false)],
                vec![injector(None, "1.24.1")],
                "istiod pod istio-system/istiod-a is not Running and Ready",
            ),
            (
                vec![istiod_pod("istiod-a", None, "1.24.1", true)],
                vec![injector(None, "1.23.2")],
                "the injector injects 1.23.2 but istiod is 1.24.1",
            ),
            (
                vec![istiod_pod("istiod-a", None, "1.24.1", true)],
                vec![],
                "no injector ConfigMap istio-sidecar-injector",
            ),
            (
                vec![],
                vec![injector(None, "1.24.1")],
                "no istiod pod in istio-system",
            ),
            (
                vec![istiod_pod("istiod-a", None, "1.24.1", true)],
                vec![injector(None, "1.24")],
                "the injector's image docker.io/istio/proxyv2:1.24 names no version",
            ),
            (
                vec![istiod_pod("istiod-a", None, "1.24.1", true)],
                vec![InjectorConfigMap {
                    values: Some(r#"{"global":{"hub":"docker.io/istio","tag":1.24}}"#.into()),
                    ..injector(None, "")
                }],
                "docker.io/istio/proxyv2:1.24 names no version",
            ),
            (
                vec![istiod_pod("istiod-a", None, "1.24.1", true)],
                vec![InjectorConfigMap {
                    values: Some(format!(
                        r#"{{"global":{{"proxy":{{"image":"{DIGEST_ONLY}"}}}}}}"#
                    )),
                    ..injector(None, "")
                }],
                "names no version, so the version it injects cannot be confirmed",
            ),
        ];
        for (pods, injectors, problem) in cases {
            let cp = ControlPlane::resolve(&inventory(pods, injectors), &options()).unwrap();
            let gate = cp.gate();
            assert!(!gate.passed);
            assert!(
                gate.problems.iter().any(|p| p.contains(problem)),
                "{problem}: {:?}",
                gate.problems
            );
        }
    }

    #[test]
    fn revisions_have_their_own_versions() {
        let inv = inventory(
            vec![
                istiod_pod("istiod-a", None, "1.24.1", true),
                istiod_pod("istiod-1-23-a", Some("1-23"), "1.23.2", true),
            ],
            vec![injector(None, "1.24.1"), injector(Some("1-23"), "1.23.2")],
        );
        let cp = ControlPlane::resolve(&inv, &options()).unwrap();
        assert!(cp.gate().passed, "{:?}", cp.gate());
        let v = |rev| {
            cp.expected_for(rev)
                .unwrap()
                .version
                .as_ref()
                .unwrap()
                .to_string()
        };
        assert_eq!(v(None), "1.24.1");
        assert_eq!(v(Some("default")), "1.24.1");
        assert_eq!(v(Some("1-23")), "1.23.2");
        assert!(
            cp.expected_for(Some("1-22"))
                .unwrap_err()
                .contains("revision 1-22")
        );
    }

    #[test]
    fn overrides_win_and_are_checked() {
        let inv = inventory(
            vec![istiod_pod("istiod-a", None, "1.24.1", true)],
            vec![injector(None, "1.24.1")],
        );
        let mut opts = options();
        opts.expected_version = Some("v1.25.0".into());
        let cp = ControlPlane::resolve(&inv, &opts).unwrap();
        assert_eq!(
            cp.expected_for(Some("any"))
                .unwrap()
                .version
                .as_ref()
                .unwrap()
                .to_string(),
            "1.25.0"
        );
        assert_eq!(cp.source, "--expected-version");
        assert!(
            cp.gate().problems[0].contains("injects 1.24.1 but the expected version is 1.25.0")
        );

        opts.expected_version = Some("one-two".into());
        assert!(matches!(
            ControlPlane::resolve(&inv, &opts),
            Err(Error::Usage { .. })
        ));
        opts.expected_version = Some("1.24.1".into());
        opts.expected_image = Some("istio/proxyv2:1.23.2".into());
        assert!(matches!(
            ControlPlane::resolve(&inv, &opts),
            Err(Error::Usage { .. })
        ));
    }

    #[test]
    fn nothing_to_compare_with_is_an_error() {
        let error = ControlPlane::resolve(&Inventory::default(), &options()).unwrap_err();
        assert!(error.to_string().contains("--expected-version"), "{error}");
    }

    #[test]
    fn builds_the_injected_image_as_istio_does() {
        let cases = [
            (
                r#"{"global":{"hub":"docker.io/istio","tag":"1.24.1","proxy":{"image":"proxyv2"}}}"#,
                "docker.io/istio/proxyv2:1.24.1",
            ),
            (
                r#"{"global":{"hub":"docker.io/istio","tag":"1.24.1","variant":"distroless","proxy":{"image":"proxyv2"}}}"#,
                "docker.io/istio/proxyv2:1.24.1-distroless",
            ),
            (
                r#"{"global":{"hub":"x.io/istio","tag":"1.24.1-distroless","variant":"distroless"}}"#,
                "x.io/istio/proxyv2:1.24.1-distroless",
            ),
            (
                r#"{"global":{"proxy":{"image":"mirror.io/p/proxyv2:1.24.1"}}}"#,
                "mirror.io/p/proxyv2:1.24.1",
            ),
        ];
        for (values, image) in cases {
            let values = injector_values(Some(values)).unwrap();
            assert_eq!(injector_image(&values).unwrap().to_string(), image);
        }
        assert!(
            injector_values(Some("{"))
                .unwrap_err()
                .contains("data.values")
        );
        let values = injector_values(Some(r#"{"global":{"hub":"h.io/x"}}"#)).unwrap();
        assert!(injector_image(&values).unwrap_err().contains("global.tag"));
    }
}
