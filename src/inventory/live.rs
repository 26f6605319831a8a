//! The inventory of a live cluster: a constant number of paginated lists, whatever the number
//! of pods (DESIGN §6). Pods are folded into the inventory page by page; nothing keeps a page.

use std::cell::RefCell;

use kube::Client;

use super::model::{self, Body, Object};
use super::{Inventory, InventoryBuilder};
use crate::Result;
use crate::cluster::list_pages;

/// A resource the inventory lists.
#[derive(Debug, Clone, Copy)]
pub struct Listed {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

impl Listed {
    /// `/api/v1/pods`, or `/apis/apps/v1/namespaces/shop/deployments` within a namespace.
    pub fn path(&self, namespace: Option<&str>) -> String {
        let base = if self.api_version.contains('/') {
            format!("/apis/{}", self.api_version)
        } else {
            format!("/api/{}", self.api_version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }
}

const fn listed(kind: &'static str, api_version: &'static str, plural: &'static str) -> Listed {
    Listed {
        kind,
        api_version,
        plural,
        namespaced: true,
    }
}

pub const NAMESPACES: Listed = Listed {
    kind: "Namespace",
    api_version: "v1",
    plural: "namespaces",
    namespaced: false,
};
/// Istio's injection webhooks: which revision injects a pod now (DESIGN §2.2.2). Cluster-scoped,
/// so listed only when the read is cluster-wide.
pub const WEBHOOK_CONFIGURATIONS: Listed = Listed {
    kind: model::WEBHOOK_CONFIGURATION,
    api_version: "admissionregistration.k8s.io/v1",
    plural: "mutatingwebhookconfigurations",
    namespaced: false,
};
pub const PODS: Listed = listed("Pod", "v1", "pods");
pub const CONFIGMAPS: Listed = listed("ConfigMap", "v1", "configmaps");
pub const ROLLOUTS: Listed = listed("Rollout", "argoproj.io/v1alpha1", "rollouts");
pub const DEPLOYMENTS: Listed = listed("Deployment", "apps/v1", "deployments");
/// The owners the inventory always lists.
pub const WORKLOADS: [Listed; 7] = [
    listed("ReplicaSet", "apps/v1", "replicasets"),
    DEPLOYMENTS,
    listed("StatefulSet", "apps/v1", "statefulsets"),
    listed("DaemonSet", "apps/v1", "daemonsets"),
    listed("ReplicationController", "v1", "replicationcontrollers"),
    listed("Job", "batch/v1", "jobs"),
    listed("CronJob", "batch/v1", "cronjobs"),
];

/// Where to look: every namespace, or only some (`--namespace`). The Istio namespace's istiod
/// and injector are always read.
#[derive(Debug, Clone)]
pub struct Scope {
    pub namespaces: Vec<String>,
    pub istio_namespace: String,
}

impl Scope {
    /// `None` lists cluster-wide; else one list per namespace (each once, however often named).
    fn namespaces(&self) -> Vec<Option<&str>> {
        if self.namespaces.is_empty() {
            vec![None]
        } else {
            self.named().into_iter().map(Some).collect()
        }
    }

    /// The namespaces `--namespace` names, each once, in the order given.
    fn named(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.namespaces
            .iter()
            .map(String::as_str)
            .filter(|n| seen.insert(*n))
            .collect()
    }

    fn covers_istio(&self) -> bool {
        self.namespaces.is_empty() || self.namespaces.contains(&self.istio_namespace)
    }
}

/// Told of every page listed: the kind and how many items it held.
pub type OnPage<'a> = &'a (dyn Fn(&str, usize) + Sync);

/// Reads the cluster's inventory.
pub async fn read(client: &Client, scope: &Scope, on_page: OnPage<'_>) -> Result<Inventory> {
    let mut builder = InventoryBuilder::with_scope(&scope.namespaces);
    // The pods are most of the pages; the owners are listed meanwhile, so that the run waits
    // on the longest list, not on the sum of them. Each side folds its pages into records as
    // they come; nothing keeps a page.
    let (owners, pods) = futures::join!(
        read_owners(client, scope, on_page),
        read_all_pods(client, scope, &mut builder, on_page)
    );
    pods?;
    builder.merge_owners(owners?);
    Ok(builder.finish())
}

/// Namespaces, workloads and the Istio namespace's ConfigMaps, each kind one list, all at once;
/// then Rollouts, only when a ReplicaSet names one.
async fn read_owners(
    client: &Client,
    scope: &Scope,
    on_page: OnPage<'_>,
) -> Result<InventoryBuilder> {
    let mut lists: Vec<(&Listed, Option<&str>, Option<&str>)> = Vec::new();
    if scope.namespaces.is_empty() {
        lists.push((&NAMESPACES, None, None));
        lists.push((&WEBHOOK_CONFIGURATIONS, None, None));
    } else {
        note_webhooks_not_listed();
    }
    for resource in &WORKLOADS {
        for namespace in scope.namespaces() {
            lists.push((resource, namespace, None));
        }
    }
    if !scope.covers_istio() {
        // istiod's Deployment, for the control plane.
        lists.push((
            &DEPLOYMENTS,
            Some(&scope.istio_namespace),
            Some("app=istiod"),
        ));
    }
    lists.push((&CONFIGMAPS, Some(&scope.istio_namespace), None));
    let owners = RefCell::new(InventoryBuilder::new());
    let named = async {
        for name in scope.named() {
            if let Some(namespace) = get_namespace(client, name).await? {
                on_page(NAMESPACES.kind, 1);
                add(&mut owners.borrow_mut(), namespace)?;
            }
        }
        Ok(())
    };
    let listed =
        futures::future::try_join_all(lists.into_iter().map(|(resource, namespace, selector)| {
            let list = collect(client, resource, namespace, selector, &owners, on_page);
            async move { list.await.map_err(|e| refused_list(resource, e)) }
        }));
    futures::try_join!(named, listed)?;

    if owners.borrow().names_a_rollout() {
        for namespace in scope.namespaces() {
            match collect(client, &ROLLOUTS, namespace, None, &owners, on_page).await {
                Ok(()) => {}
                // Without the Rollout CRD the ReplicaSets' owner is simply not in the inventory.
                Err(crate::Error::Kube { source, .. })
                    if crate::cluster::status_code(&source) == Some(404) =>
                {
                    tracing::warn!(
                        "a ReplicaSet names an Argo Rollout, but rollouts are not served"
                    );
                }
                Err(other) => return Err(other),
            }
        }
    }
    Ok(owners.into_inner())
}

async fn read_all_pods(
    client: &Client,
    scope: &Scope,
    builder: &mut InventoryBuilder,
    on_page: OnPage<'_>,
) -> Result<()> {
    for namespace in scope.namespaces() {
        read_pods(client, builder, namespace, None, on_page).await?;
    }
    if !scope.covers_istio() {
        read_pods(
            client,
            builder,
            Some(&scope.istio_namespace),
            Some("app=istiod"),
            on_page,
        )
        .await?;
    }
    Ok(())
}

/// One Namespace by name, or `None` when there is none: `--namespace` reads only the Namespaces
/// it names, so that it needs no right to list every Namespace of the cluster (a namespace-scoped
/// operator's dry run). A missing one is warned about once the plan is made.
async fn get_namespace_json(client: &Client, name: &str) -> Result<Option<String>> {
    let what = format!("reading Namespace {name}");
    let text = crate::cluster::retry(&what, || async {
        let request = kube::core::Request::new(NAMESPACES.path(None))
            .get(name, &kube::api::GetParams::default())
            .map_err(kube::Error::BuildRequest)?;
        client.request_text(request).await
    })
    .await;
    match text {
        Ok(text) => Ok(Some(text)),
        Err(source) if crate::cluster::status_code(&source) == Some(404) => Ok(None),
        Err(source) => Err(crate::Error::Kube {
            action: what,
            source,
        }),
    }
}

async fn get_namespace(client: &Client, name: &str) -> Result<Option<Object>> {
    let Some(text) = get_namespace_json(client, name).await? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| crate::Error::InvalidObject {
            object: format!("Namespace {name}"),
            field: "(the response)".into(),
            problem: e.to_string(),
        })
}

/// `--namespace` reads no cluster-wide list (a namespace-scoped operator may read only its
/// namespaces), so Istio's webhook configurations are not read: each pod's target revision is
/// its own, and pods without a proxy are not judged (DESIGN §2.2.2, as for an older snapshot).
fn note_webhooks_not_listed() {
    tracing::info!(
        "--namespace: Istio's MutatingWebhookConfigurations (cluster-scoped) are not listed; \
         each pod is compared with its own revision, and pods without a proxy are not judged"
    );
}

/// A list of Istio's webhook configurations refused (403) or not served (404): the error names
/// the resource, why it is read and the permission it takes, for whoever reads a failed Job.
fn refused_list(resource: &Listed, error: crate::Error) -> crate::Error {
    const RULE: &str = "`list` (and `watch`) on `mutatingwebhookconfigurations` in the API group \
                        `admissionregistration.k8s.io`, cluster-wide (job/base/clusterrole.yaml)";
    match error {
        crate::Error::Kube { action, source } if resource.kind == WEBHOOK_CONFIGURATIONS.kind => {
            let why = "Istio's MutatingWebhookConfigurations, which say which revision injects \
                       each pod now";
            let action = match crate::cluster::status_code(&source) {
                Some(403) => format!("{action} ({why}): the service account lacks {RULE}"),
                Some(404) => format!(
                    "{action} ({why}): the API server does not serve \
                     admissionregistration.k8s.io/v1 mutatingwebhookconfigurations, which the \
                     tool reads with {RULE}"
                ),
                _ => action,
            };
            crate::Error::Kube { action, source }
        }
        other => other,
    }
}

fn add(builder: &mut InventoryBuilder, object: Object) -> Result<()> {
    let origin = format!(
        "{} {}/{}",
        object.kind,
        object.metadata.namespace.as_deref().unwrap_or(""),
        object.metadata.name.as_deref().unwrap_or("?")
    );
    // Only the injector's ConfigMaps matter; the others are dropped without a look.
    if let Body::ConfigMap { .. } = object.body
        && !object
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("istio-sidecar-injector"))
    {
        return Ok(());
    }
    builder.add(object, &origin)
}

/// Lists one kind of owner into `owners`, page by page.
async fn collect(
    client: &Client,
    resource: &Listed,
    namespace: Option<&str>,
    label_selector: Option<&str>,
    owners: &RefCell<InventoryBuilder>,
    on_page: OnPage<'_>,
) -> Result<()> {
    list_pages(
        client,
        &resource.path(namespace),
        resource.kind,
        resource.api_version,
        label_selector,
        |items| {
            on_page(resource.kind, items.len());
            let mut owners = owners.borrow_mut();
            for object in items {
                add(&mut owners, object)?;
            }
            Ok(())
        },
        // A restarted list starts over: forget what the expired pass gave.
        || owners.borrow_mut().forget_listed(resource.kind, namespace),
    )
    .await
}

async fn read_pods(
    client: &Client,
    builder: &mut InventoryBuilder,
    namespace: Option<&str>,
    label_selector: Option<&str>,
    on_page: OnPage<'_>,
) -> Result<()> {
    // Pods go into the inventory page by page; a restarted list starts them over.
    let checkpoint = builder.pods_checkpoint();
    let shared = std::cell::RefCell::new(builder);
    list_pages(
        client,
        &PODS.path(namespace),
        PODS.kind,
        PODS.api_version,
        label_selector,
        |items| {
            on_page(PODS.kind, items.len());
            let mut builder = shared.borrow_mut();
            for object in items {
                add(&mut builder, object)?;
            }
            Ok(())
        },
        || shared.borrow_mut().rewind_pods(checkpoint),
    )
    .await
}

/// Writes the objects the inventory reads as one `kind: List` (what `plan --snapshot` reads),
/// page by page: managedFields stripped, only the injector's ConfigMaps, never a Secret.
/// Returns how many objects it wrote.
pub async fn write_snapshot(
    client: &Client,
    scope: &Scope,
    out: &mut impl std::io::Write,
) -> Result<usize> {
    let io = |source| crate::Error::Io {
        path: "stdout".into(),
        source,
    };
    out.write_all(b"{\"apiVersion\":\"v1\",\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"\"},\"items\":[")
        .map_err(io)?;
    let mut written = 0usize;
    for name in scope.named() {
        let Some(text) = get_namespace_json(client, name).await? else {
            continue;
        };
        let mut item: serde_json::Value = serde_json::from_str(&text)?;
        if let Some(meta) = item["metadata"].as_object_mut() {
            meta.remove("managedFields");
        }
        let separator: &[u8] = if written == 0 { b"\n" } else { b",\n" };
        out.write_all(separator)
            .and_then(|_| out.write_all(&serde_json::to_vec(&item)?))
            .map_err(io)?;
        written += 1;
    }
    let mut lists: Vec<(Listed, Option<String>, Option<&str>)> = Vec::new();
    if scope.namespaces.is_empty() {
        lists.push((NAMESPACES, None, None));
        lists.push((WEBHOOK_CONFIGURATIONS, None, None));
    } else {
        note_webhooks_not_listed();
    }
    for resource in WORKLOADS.iter().chain([&ROLLOUTS, &PODS]) {
        for namespace in scope.namespaces() {
            lists.push((*resource, namespace.map(str::to_string), None));
        }
    }
    if !scope.covers_istio() {
        lists.push((
            DEPLOYMENTS,
            Some(scope.istio_namespace.clone()),
            Some("app=istiod"),
        ));
        lists.push((
            PODS,
            Some(scope.istio_namespace.clone()),
            Some("app=istiod"),
        ));
    }
    lists.push((CONFIGMAPS, Some(scope.istio_namespace.clone()), None));

    for (resource, namespace, selector) in lists {
        // A list restarted after its continue token expired repeats items already written.
        let mut seen = std::collections::HashSet::new();
        let mut failure = None;
        let result = crate::cluster::list_raw_pages(
            client,
            &resource.path(namespace.as_deref()),
            selector,
            |items| {
                for mut item in items {
                    let name = item["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    if resource.kind == "ConfigMap" && !name.starts_with("istio-sidecar-injector") {
                        continue;
                    }
                    if resource.kind == WEBHOOK_CONFIGURATIONS.kind && !is_istio_injector(&item) {
                        continue;
                    }
                    let ns = item["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    if !seen.insert((ns, name)) {
                        continue;
                    }
                    item["kind"] = resource.kind.into();
                    item["apiVersion"] = resource.api_version.into();
                    if let Some(meta) = item["metadata"].as_object_mut() {
                        meta.remove("managedFields");
                    }
                    let separator: &[u8] = if written == 0 { b"\n" } else { b",\n" };
                    let line = serde_json::to_vec(&item)?;
                    if let Err(error) = out.write_all(separator).and_then(|_| out.write_all(&line))
                    {
                        failure = Some(error);
                        return Ok(());
                    }
                    written += 1;
                }
                Ok(())
            },
            || {},
        )
        .await;
        if let Some(error) = failure {
            return Err(io(error));
        }
        match result {
            Ok(()) => {}
            Err(crate::Error::Kube { source, .. })
                if resource.kind == "Rollout"
                    && crate::cluster::status_code(&source) == Some(404) => {}
            Err(other) => return Err(refused_list(&resource, other)),
        }
    }
    out.write_all(b"\n]}\n").map_err(io)?;
    Ok(written)
}

/// A MutatingWebhookConfiguration with one of Istio's injection webhooks
/// (`…sidecar-injector.istio.io`): the only ones the inventory keeps, so the only ones a
/// snapshot holds.
fn is_istio_injector(item: &serde_json::Value) -> bool {
    item["webhooks"].as_array().is_some_and(|webhooks| {
        webhooks.iter().any(|w| {
            w["name"]
                .as_str()
                .is_some_and(|n| n.ends_with(istio_injection::webhooks::WEBHOOK_SUFFIX))
        })
    })
}
