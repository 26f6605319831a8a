//! A realistic, large and consistent Kyma cluster snapshot, for benchmarks and load tests.
//!
//! The cluster has just had Istio upgraded to [`CURRENT_VERSION`]: istiod and the injector
//! ConfigMap are at that version, while about 70% of the workloads still run proxies of older
//! versions, a few run a newer one, and a few run the current version from a mirror registry.
//! Namespaces, Nodes, Deployments with their ReplicaSets (and empty old revisions), StatefulSets,
//! DaemonSets, CronJobs with their Jobs, Argo Rollouts, a ReplicationController and bare pods hold
//! the requested number of pods, most Running and Ready, a few Pending, crash-looping or Failed.
//!
//! Pods look as a real API server returns them (labels, annotations, managedFields, several
//! containers with env, probes, resources and volume mounts, the injected sidecar, a full
//! status), about 9 KB of JSON each (11 KB of file per pod, owners included). [`Shape::Lean`] makes a cluster shaped otherwise: pods of
//! about 6 KB, exactly one ReplicaSet per Deployment, many small Deployments, so that owner
//! objects (workloads and ReplicaSets) are about 0.6 of the pods. The snapshot is consistent: every owner reference resolves
//! by uid, ReplicaSet templates equal their Deployment's apart from `pod-template-hash`, status
//! counts match the pods, so serving it starts no rollout. The same seed gives the same bytes.

use std::io::{self, Write};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::controllers::meta::{self, template_hash};
use crate::injector;

/// The Istio version of the control plane in the generated cluster.
pub const CURRENT_VERSION: &str = "1.24.1";
const HUB: &str = "europe-docker.pkg.dev/kyma-project/prod/external/istio";
const MIRROR_HUB: &str = "registry.mirror.example.com/kyma/istio";

/// How the generated cluster is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// Kyma as [`generate`] has always made it: pods of about 9 KB of JSON (several env vars,
    /// a log shipper now and then, managedFields, `istio-init`), a third of the Deployments with
    /// old revisions (several ReplicaSets).
    #[default]
    Kyma,
    /// Leaner pods (about 6.5 KB: one env var, no log shipper, no managedFields as `kubectl get
    /// -o json` prints them, Istio CNI so no `istio-init`), exactly one ReplicaSet per
    /// Deployment and many small Deployments: owner objects (workloads and ReplicaSets) are
    /// about 0.6 of the pods.
    Lean,
}

impl Shape {
    pub const ALL: [Shape; 2] = [Shape::Kyma, Shape::Lean];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Kyma => "kyma",
            Shape::Lean => "lean",
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Shape {
    type Err = String;

    fn from_str(text: &str) -> Result<Shape, String> {
        Shape::ALL
            .into_iter()
            .find(|s| s.name() == text.trim())
            .ok_or_else(|| format!("unknown shape {text:?}: kyma or lean"))
    }
}

/// Generates a snapshot (`kind: List`) with `pods` pods, deterministic by `seed`.
pub fn generate(pods: usize, seed: u64) -> Value {
    generate_shaped(pods, seed, Shape::Kyma)
}

/// [`generate`] with the cluster shaped by `shape`.
pub fn generate_shaped(pods: usize, seed: u64, shape: Shape) -> Value {
    let mut items = Vec::new();
    Generator::new(pods, seed, shape)
        .run(&mut |item| {
            items.push(item);
            Ok(())
        })
        .expect("collecting into memory cannot fail");
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items})
}

/// Writes the snapshot of [`generate`] to `writer` item by item, without holding it in memory.
pub fn generate_to(writer: &mut dyn Write, pods: usize, seed: u64) -> io::Result<()> {
    generate_to_shaped(writer, pods, seed, Shape::Kyma)
}

/// Writes the snapshot of [`generate_shaped`] to `writer` item by item.
pub fn generate_to_shaped(
    writer: &mut dyn Write,
    pods: usize,
    seed: u64,
    shape: Shape,
) -> io::Result<()> {
    writer.write_all(b"{\"apiVersion\":\"v1\",\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"\"},\"items\":[\n")?;
    let mut first = true;
    Generator::new(pods, seed, shape).run(&mut |item| {
        if !first {
            writer.write_all(b",\n")?;
        }
        first = false;
        serde_json::to_writer(&mut *writer, &item).map_err(io::Error::other)
    })?;
    writer.write_all(b"\n]}\n")
}

/// A small, fast, seedable generator (SplitMix64): the snapshot must not depend on a crate's
/// algorithm changing between versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn uid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }

    /// A pod-name suffix in the alphabet Kubernetes uses for generated names.
    fn suffix(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
}

/// The proxy a workload's pods run.
#[derive(Clone)]
struct Proxy {
    image: String,
    native: bool,
}

/// What state a generated pod is in.
#[derive(Clone, Copy, PartialEq)]
enum PodState {
    Ready,
    Pending,
    CrashLoop,
    Failed,
    Succeeded,
}

const APPS: &[&str] = &[
    "orders",
    "payments",
    "catalog",
    "cart",
    "checkout",
    "inventory",
    "shipping",
    "search",
    "reviews",
    "accounts",
    "billing",
    "notifications",
    "recommendations",
    "pricing",
    "auth",
    "gateway",
    "reports",
    "ledger",
    "frontend",
    "backend",
    "worker",
    "scheduler",
    "importer",
    "exporter",
    "media",
    "profile",
];
const TEAMS: &[&str] = &[
    "shop",
    "finance",
    "logistics",
    "crm",
    "analytics",
    "platform",
    "web",
    "mobile",
    "data",
    "iot",
];
const STALE_VERSIONS: &[&str] = &["1.23.2", "1.23.2", "1.23.2", "1.23.1", "1.22.5", "1.23.3"];

struct Generator<'a> {
    rng: Rng,
    budget: usize,
    now: DateTime<Utc>,
    nodes: Vec<String>,
    resource_version: u64,
    emit: Option<&'a mut dyn FnMut(Value) -> io::Result<()>>,
    /// Every pod generated while set is Running and Ready (the control plane is healthy).
    all_ready: bool,
    shape: Shape,
}

impl<'a> Generator<'a> {
    fn new(pods: usize, seed: u64, shape: Shape) -> Generator<'a> {
        Generator {
            rng: Rng(seed ^ 0x6b75_6265_2d73_696d),
            budget: pods,
            now: Utc
                .with_ymd_and_hms(2026, 11, 20, 9, 0, 0)
                .single()
                .expect("valid date"),
            nodes: Vec::new(),
            resource_version: 100_000,
            emit: None,
            all_ready: false,
            shape,
        }
    }

    fn run(mut self, emit: &'a mut dyn FnMut(Value) -> io::Result<()>) -> io::Result<()> {
        self.emit = Some(emit);
        let node_count = (self.budget / 60).clamp(3, 400);
        self.nodes = (0..node_count)
            .map(|i| format!("shoot--kyma--c-{:07x}-worker-{i}", 0x3f2a1b0))
            .collect();
        for node in self.nodes.clone() {
            let n = self.node(&node);
            self.put(n)?;
        }
        for ns in ["kube-system", "istio-system", "kyma-system"] {
            let n = self.namespace(ns, false);
            self.put(n)?;
        }
        let injector = self.injector_configmap();
        self.put(injector)?;

        // The control plane: istiod at the current version, and the ingress gateway.
        let current = Proxy {
            image: format!("{HUB}/proxyv2:{CURRENT_VERSION}-distroless"),
            native: false,
        };
        // The upgrade itself went well: the control plane is healthy, so that the tool's gate passes.
        self.all_ready = true;
        let mut istiod = self.app_template("istiod", "istio-system", None);
        istiod["metadata"]["labels"] = json!({"app": "istiod", "istio": "pilot", "istio.io/rev": "default",
                                              "install.operator.istio.io/owning-resource": "default"});
        istiod["spec"]["containers"][0]["name"] = json!("discovery");
        istiod["spec"]["containers"][0]["image"] =
            json!(format!("{HUB}/pilot:{CURRENT_VERSION}-distroless"));
        self.deployment(
            "istio-system",
            "istiod",
            2.min(self.budget),
            istiod,
            None,
            &[],
        )?;
        if self.budget >= 2 {
            let gateway = self.app_template("istio-ingressgateway", "istio-system", None);
            self.deployment(
                "istio-system",
                "istio-ingressgateway",
                2,
                gateway,
                Some(current.clone()),
                &[],
            )?;
        }
        self.all_ready = false;

        // Node agents: one pod per node.
        if self.budget >= 2 * self.nodes.len() + 20 {
            let proxy = self.proxy_for_workload();
            for (ns, name, sidecar) in [
                ("kube-system", "kube-proxy", None),
                ("kyma-system", "telemetry-fluent-bit", Some(proxy)),
            ] {
                let template = self.app_template(name, ns, None);
                self.daemonset(ns, name, template, sidecar)?;
            }
        }

        // Kyma modules.
        let modules = [
            "eventing-manager",
            "telemetry-manager",
            "serverless-controller-manager",
            "api-gateway-controller-manager",
            "istio-controller-manager",
            "btp-manager-controller-manager",
            "keda-operator",
            "nats",
        ];
        for module in modules {
            if self.budget == 0 {
                break;
            }
            let sidecar = if self.rng.chance(50) {
                Some(self.proxy_for_workload())
            } else {
                None
            };
            let template = self.app_template(module, "kyma-system", Some(module));
            if module == "nats" {
                self.statefulset(
                    "kyma-system",
                    module,
                    3.min(self.budget),
                    template,
                    sidecar,
                    false,
                )?;
            } else {
                let replicas = 1 + self.rng.below(2) as usize;
                self.deployment(
                    "kyma-system",
                    module,
                    replicas.min(self.budget),
                    template,
                    sidecar,
                    &[("kyma-project.io/module", module)],
                )?;
            }
        }

        // Customer namespaces and workloads fill the rest.
        let namespace_count = (self.budget / 400).max(2);
        let mut namespaces = Vec::new();
        for i in 0..namespace_count {
            let name = format!("{}-{}", self.rng.pick(TEAMS), i + 1);
            // A few namespaces are not in the mesh.
            let injected = i % 10 != 9;
            let ns = self.namespace(&name, injected);
            self.put(ns)?;
            namespaces.push((name, injected));
        }
        let mut serial = 0;
        while self.budget > 0 {
            serial += 1;
            let (ns, injected) =
                namespaces[self.rng.below(namespaces.len() as u64) as usize].clone();
            let name = format!("{}-{serial}", self.rng.pick(APPS));
            let sidecar = if injected {
                Some(self.proxy_for_workload())
            } else {
                None
            };
            let template = self.app_template(&name, &ns, None);
            let roll = self.rng.below(100);
            let replicas = match self.shape {
                Shape::Kyma if self.rng.chance(10) => 5 + self.rng.below(20) as usize,
                Shape::Kyma => 1 + self.rng.below(4) as usize,
                // Mostly one or two replicas, a fifth of the workloads larger: about 2.9 pods
                // per Deployment, whose owners are the Deployment and its one ReplicaSet.
                Shape::Lean if self.rng.chance(20) => 5 + self.rng.below(8) as usize,
                Shape::Lean => 1 + self.rng.below(2) as usize,
            };
            let replicas = replicas.min(self.budget);
            match roll {
                0..=79 => self.deployment(&ns, &name, replicas, template, sidecar, &[])?,
                80..=87 => {
                    let on_delete = self.rng.chance(25);
                    self.statefulset(&ns, &name, replicas, template, sidecar, on_delete)?
                }
                88..=92 => self.cronjob(&ns, &name, template, sidecar)?,
                93..=96 => self.rollout(&ns, &name, replicas, template, sidecar)?,
                97 => self.replication_controller(&ns, &name, replicas, template, sidecar)?,
                _ => self.bare_pod(&ns, &name, template, sidecar)?,
            }
        }
        Ok(())
    }

    fn put(&mut self, mut item: Value) -> io::Result<()> {
        self.resource_version += 1 + self.rng.below(50);
        item["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        let emit = self.emit.as_mut().expect("running");
        emit(item)
    }

    /// A time some days before the snapshot was taken.
    fn past(&mut self, max_days: i64) -> DateTime<Utc> {
        self.now - Duration::seconds(3600 + self.rng.below((max_days * 86_400) as u64) as i64)
    }

    fn stamp(time: DateTime<Utc>) -> String {
        meta::format_time(time)
    }

    /// About 70% stale, 3% newer, 5% current from a mirror, the rest current.
    fn proxy_for_workload(&mut self) -> Proxy {
        let roll = self.rng.below(100);
        let native = self.rng.chance(5);
        let image = match roll {
            0..=69 => format!("{HUB}/proxyv2:{}-distroless", self.rng.pick(STALE_VERSIONS)),
            70..=72 => format!("{HUB}/proxyv2:1.25.0-distroless"),
            73..=77 => format!("{MIRROR_HUB}/proxyv2:{CURRENT_VERSION}-distroless"),
            _ => format!("{HUB}/proxyv2:{CURRENT_VERSION}-distroless"),
        };
        Proxy { image, native }
    }

    fn node(&mut self, name: &str) -> Value {
        let created = self.past(60);
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": name, "uid": self.rng.uid(), "creationTimestamp": Self::stamp(created),
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                           "node.kubernetes.io/instance-type": "m6i.xlarge", "topology.kubernetes.io/region": "eu-central-1",
                           "topology.kubernetes.io/zone": format!("eu-central-1{}", ["a", "b", "c"][self.rng.below(3) as usize]),
                           "worker.gardener.cloud/pool": "cpu-worker"},
            },
            "spec": {"providerID": format!("aws:///eu-central-1a/i-{:017x}", self.rng.next() >> 4), "podCIDR": "100.64.0.0/24"},
            "status": {
                "capacity": {"cpu": "4", "memory": "16073236Ki", "pods": "110", "ephemeral-storage": "50620216Ki"},
                "allocatable": {"cpu": "3920m", "memory": "14871060Ki", "pods": "110", "ephemeral-storage": "49243775742"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                                "lastHeartbeatTime": Self::stamp(self.now), "lastTransitionTime": Self::stamp(created)}],
                "nodeInfo": {"kubeletVersion": "v1.32.4", "containerRuntimeVersion": "containerd://1.7.27", "osImage": "Garden Linux 1592.9",
                             "architecture": "amd64", "operatingSystem": "linux", "kernelVersion": "6.6.83-cloud-amd64"},
            },
        })
    }

    fn namespace(&mut self, name: &str, injected: bool) -> Value {
        let mut labels = json!({"kubernetes.io/metadata.name": name});
        if injected {
            labels["istio-injection"] = json!("enabled");
        }
        if name == "kyma-system" || name == "istio-system" {
            labels["kyma-project.io/managed-by"] = json!("kyma");
        }
        json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": self.rng.uid(), "creationTimestamp": Self::stamp(self.past(90)), "labels": labels},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        })
    }

    fn injector_configmap(&mut self) -> Value {
        let values = json!({
            "global": {"hub": HUB, "tag": CURRENT_VERSION, "variant": "distroless", "proxy": {"image": "proxyv2"},
                       "imagePullPolicy": "IfNotPresent", "istioNamespace": "istio-system", "meshID": "cluster.local"},
            "revision": "", "sidecarInjectorWebhook": {"enableNamespacesByDefault": false},
        });
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system", "uid": self.rng.uid(),
                         "creationTimestamp": Self::stamp(self.past(5)),
                         "labels": {"app": "sidecar-injector", "istio.io/rev": "default", "operator.istio.io/component": "Pilot"}},
            "data": {"values": values.to_string(), "config": "policy: enabled\nalwaysInjectSelector: []\nneverInjectSelector: []\n"},
        })
    }

    /// A pod template as a real API server stores it: defaulted fields included.
    fn app_template(&mut self, name: &str, namespace: &str, module: Option<&str>) -> Value {
        let version = format!(
            "{}.{}.{}",
            1 + self.rng.below(3),
            self.rng.below(20),
            self.rng.below(10)
        );
        let registry = if namespace == "kyma-system" {
            "europe-docker.pkg.dev/kyma-project/prod"
        } else {
            "ghcr.io/acme"
        };
        let mut labels = json!({"app": name, "app.kubernetes.io/name": name, "app.kubernetes.io/version": version});
        if let Some(module) = module {
            labels["kyma-project.io/module"] = json!(module);
        }
        let settings = if self.shape == Shape::Lean {
            1
        } else {
            1 + self.rng.below(4)
        };
        let env: Vec<Value> = (0..settings)
            .map(|i| json!({"name": format!("{}_SETTING_{i}", name.to_uppercase().replace('-', "_")),
                            "value": format!("value-{:x}", self.rng.next() >> 40)}))
            .chain([json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}})])
            .collect();
        let probe = |path: &str, delay: u64| {
            json!({"httpGet": {"path": path, "port": 8080, "scheme": "HTTP"},
            "initialDelaySeconds": delay, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3})
        };
        let mut containers = vec![json!({
            "name": name,
            "image": format!("{registry}/{name}:{version}"),
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
            "env": env,
            "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "50m", "memory": "128Mi"}},
            "readinessProbe": probe("/readyz", 5),
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "volumeMounts": [
                {"mountPath": "/etc/config", "name": "config", "readOnly": true},
                {"mountPath": "/tmp", "name": "tmp"},
            ],
        })];
        if self.shape == Shape::Kyma && self.rng.chance(10) {
            containers.push(json!({
                "name": "log-shipper",
                "image": "europe-docker.pkg.dev/kyma-project/prod/external/fluent/fluent-bit:3.2.4",
                "imagePullPolicy": "IfNotPresent",
                "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "5m", "memory": "32Mi"}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": [{"mountPath": "/var/log/app", "name": "tmp"}],
            }));
        }
        json!({
            "metadata": {"labels": labels, "annotations": {"checksum/config": format!("{:016x}{:016x}", self.rng.next(), self.rng.next())}},
            "spec": {
                "containers": containers,
                "volumes": [
                    {"name": "config", "configMap": {"name": format!("{name}-config"), "defaultMode": 420}},
                    {"name": "tmp", "emptyDir": {}},
                ],
                "serviceAccountName": name,
                "serviceAccount": name,
                "securityContext": {"fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                "priorityClassName": if namespace == "kyma-system" { "kyma-system-priority" } else { "" },
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "schedulerName": "default-scheduler",
            },
        })
    }

    fn owner_ref(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
        json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true})
    }

    fn pod_state(&mut self) -> PodState {
        if self.all_ready {
            return PodState::Ready;
        }
        match self.rng.below(100) {
            0..=1 => PodState::Pending,
            2..=3 => PodState::CrashLoop,
            4 => PodState::Failed,
            _ => PodState::Ready,
        }
    }

    /// Emits one pod made from `template`, with the sidecar when given.
    #[allow(clippy::too_many_arguments)]
    fn pod(
        &mut self,
        namespace: &str,
        name: &str,
        template: &Value,
        owner: Option<Value>,
        sidecar: &Option<Proxy>,
        node: Option<&str>,
        state: PodState,
    ) -> io::Result<()> {
        if self.budget == 0 {
            return Ok(());
        }
        self.budget -= 1;
        let created = self.past(30);
        let uid = self.rng.uid();
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "creationTimestamp": Self::stamp(created),
                         "labels": template["metadata"]["labels"], "annotations": template["metadata"]["annotations"]},
            "spec": template["spec"],
        });
        if let Some(owner) = owner {
            // StatefulSet pods have fixed names; the others' names were generated.
            if owner["kind"] != "StatefulSet" {
                let prefix = name.rsplit_once('-').map_or(name, |(p, _)| p);
                pod["metadata"]["generateName"] = json!(format!("{prefix}-"));
            }
            pod["metadata"]["ownerReferences"] = json!([owner]);
        } else {
            let applied = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace,
                                 "labels": template["metadata"]["labels"]}, "spec": template["spec"]});
            meta::set_meta_entry(
                &mut pod,
                "annotations",
                "kubectl.kubernetes.io/last-applied-configuration",
                &applied.to_string(),
            );
        }
        if let Some(proxy) = sidecar {
            let placement = istio_injection::proxy::PodProxy {
                native_sidecar: Some(proxy.native),
                ..Default::default()
            };
            injector::add_sidecar(&mut pod, &proxy.image, "default", &placement);
            if self.shape == Shape::Lean {
                istio_cni(&mut pod);
            }
        }
        let scheduled = state != PodState::Pending;
        let node = node
            .map(str::to_string)
            .unwrap_or_else(|| self.rng.pick(&self.nodes).clone());
        if scheduled {
            pod["spec"]["nodeName"] = json!(node);
        }
        pod["spec"]["tolerations"] = json!([
            {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300},
        ]);
        pod["spec"]["enableServiceLinks"] = json!(true);
        pod["spec"]["preemptionPolicy"] = json!("PreemptLowerPriority");
        pod["status"] = self.pod_status(&pod, state, created);
        // A lean cluster's snapshot is what `kubectl get -o json` prints: no managedFields.
        if self.shape == Shape::Kyma {
            pod["metadata"]["managedFields"] = managed_fields(&pod, created, sidecar.is_some());
        }
        self.put(pod)
    }

    fn pod_status(&mut self, pod: &Value, state: PodState, created: DateTime<Utc>) -> Value {
        let started = Self::stamp(created + Duration::seconds(2));
        let t = |status: bool| if status { "True" } else { "False" };
        if state == PodState::Pending {
            return json!({
                "phase": "Pending", "qosClass": "Burstable",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastProbeTime": null,
                                "lastTransitionTime": Self::stamp(created),
                                "message": "0/6 nodes are available: 6 Insufficient memory. preemption: 0/6 nodes are available: 6 No preemption victims found for incoming pod."}],
            });
        }
        let ready = state == PodState::Ready;
        let phase = match state {
            PodState::Failed => "Failed",
            PodState::Succeeded => "Succeeded",
            _ => "Running",
        };
        let ip = format!("100.64.{}.{}", self.rng.below(250), 2 + self.rng.below(250));
        let host_ip = format!("10.250.{}.{}", self.rng.below(8), 2 + self.rng.below(250));
        let container_status = |rng: &mut Rng, c: &Value| {
            let name = c["name"].as_str().unwrap_or_default();
            let image = c["image"].as_str().unwrap_or_default();
            let crashing = state == PodState::CrashLoop && name != "istio-proxy";
            let mut s = json!({
                "name": name, "image": image,
                "imageID": format!("{}@sha256:{:016x}{:016x}{:016x}{:016x}", image.rsplit_once(':').map_or(image, |(r, _)| r), rng.next(), rng.next(), rng.next(), rng.next()),
                "containerID": format!("containerd://{:016x}{:016x}{:016x}{:016x}", rng.next(), rng.next(), rng.next(), rng.next()),
                "ready": ready || (state == PodState::CrashLoop && !crashing),
                "started": !crashing && phase == "Running",
                "restartCount": if crashing { 17 + rng.below(200) } else { 0 },
                "state": {"running": {"startedAt": started}},
            });
            match state {
                PodState::CrashLoop if crashing => {
                    s["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
                        "message": format!("back-off 5m0s restarting failed container={name} pod={}", meta::name(pod))}});
                    s["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": started}});
                }
                PodState::Failed | PodState::Succeeded => {
                    let (code, reason) = if state == PodState::Succeeded {
                        (0, "Completed")
                    } else {
                        (137, "Error")
                    };
                    s["ready"] = json!(false);
                    s["started"] = json!(false);
                    s["state"] = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": started}});
                }
                _ => {}
            }
            s
        };
        let containers: Vec<Value> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| container_status(&mut self.rng, c))
            .collect();
        let inits: Vec<Value> = pod["spec"]["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let mut s = container_status(&mut self.rng, c);
                if c["restartPolicy"] != "Always" {
                    s["ready"] = json!(true);
                    s["started"] = json!(false);
                    s["restartCount"] = json!(0);
                    s["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started}});
                    if let Some(m) = s.as_object_mut() {
                        m.remove("lastState");
                    }
                }
                s
            })
            .collect();
        let mut status = json!({
            "phase": phase,
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": t(phase == "Running"), "lastProbeTime": null, "lastTransitionTime": started},
                {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": started},
                {"type": "Ready", "status": t(ready), "lastProbeTime": null, "lastTransitionTime": started},
                {"type": "ContainersReady", "status": t(ready), "lastProbeTime": null, "lastTransitionTime": started},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": Self::stamp(created)},
            ],
            "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
            "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": Self::stamp(created),
            "containerStatuses": containers,
            "qosClass": "Burstable",
        });
        if !ready {
            for c in status["conditions"].as_array_mut().into_iter().flatten() {
                if c["status"] == "False" {
                    c["reason"] = json!(if phase == "Running" {
                        "ContainersNotReady"
                    } else {
                        "PodCompleted"
                    });
                }
            }
        }
        if state == PodState::Failed {
            status["reason"] = json!("Evicted");
            status["message"] = json!(
                "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91264Ki."
            );
        }
        if !inits.is_empty() {
            status["initContainerStatuses"] = json!(inits);
        }
        status
    }

    fn deployment(
        &mut self,
        namespace: &str,
        name: &str,
        replicas: usize,
        template: Value,
        sidecar: Option<Proxy>,
        extra_labels: &[(&str, &str)],
    ) -> io::Result<()> {
        let uid = self.rng.uid();
        let created = self.past(90);
        let old_revisions = if self.shape == Shape::Lean {
            0
        } else if self.rng.chance(30) {
            1 + self.rng.below(2) as usize
        } else {
            0
        };
        let revision = (old_revisions + 1).to_string();
        let mut labels = json!({"app": name});
        for (k, v) in extra_labels {
            labels[*k] = json!(v);
        }
        let mut deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "generation": 1 + old_revisions,
                         "creationTimestamp": Self::stamp(created), "labels": labels,
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {
                "replicas": replicas, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": template["metadata"]["labels"]["app"]}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": template,
            },
        });
        if self.rng.chance(40) {
            let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                                 "metadata": {"name": name, "namespace": namespace}, "spec": deployment["spec"]});
            meta::set_meta_entry(
                &mut deployment,
                "annotations",
                "kubectl.kubernetes.io/last-applied-configuration",
                &applied.to_string(),
            );
        }
        let owner = Self::owner_ref("apps/v1", "Deployment", name, &uid);
        // Old revisions: the same template with an earlier restart, scaled to zero.
        for old in 0..old_revisions {
            let mut old_template = template.clone();
            meta::set_meta_entry(
                &mut old_template,
                "annotations",
                "kubectl.kubernetes.io/restartedAt",
                &Self::stamp(created + Duration::days(old as i64 + 1)),
            );
            self.replica_set(
                namespace,
                name,
                &old_template,
                0,
                &owner,
                &(old + 1).to_string(),
                &None,
                "pod-template-hash",
            )?;
        }
        let (ready, available) = self.replica_set(
            namespace,
            name,
            &template,
            replicas,
            &owner,
            &revision,
            &sidecar,
            "pod-template-hash",
        )?;
        let desired = replicas as i64;
        let max_unavailable = meta::int_or_percent(&json!("25%"), desired, "25%", false);
        let time = Self::stamp(created);
        deployment["status"] = json!({
            "observedGeneration": 1 + old_revisions, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": ready, "availableReplicas": available,
            "conditions": [
                {"type": "Available", "status": if available >= desired - max_unavailable { "True" } else { "False" },
                 "reason": if available >= desired - max_unavailable { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                 "message": if available >= desired - max_unavailable { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
                 "lastUpdateTime": time, "lastTransitionTime": time},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": format!("ReplicaSet \"{name}-{}\" has successfully progressed.", template_hash(&template, 0)),
                 "lastUpdateTime": time, "lastTransitionTime": time},
            ],
        });
        if desired > available {
            deployment["status"]["unavailableReplicas"] = json!(desired - available);
        }
        prune_zero_counts(&mut deployment["status"]);
        self.put(deployment)
    }

    /// Emits `replicas` pods named `<name>-<suffix>` of `template`, owned by `owner`, each in a
    /// random state; returns how many are Ready.
    fn replica_pods(
        &mut self,
        namespace: &str,
        name: &str,
        template: &Value,
        owner: &Value,
        sidecar: &Option<Proxy>,
        replicas: usize,
    ) -> io::Result<i64> {
        let mut ready = 0;
        for _ in 0..replicas {
            let state = self.pod_state();
            if state == PodState::Ready {
                ready += 1;
            }
            let pod_name = format!("{name}-{}", self.rng.suffix(5));
            self.pod(
                namespace,
                &pod_name,
                template,
                Some(owner.clone()),
                sidecar,
                None,
                state,
            )?;
        }
        Ok(ready)
    }

    /// Emits a ReplicaSet of `template` and its pods; returns the (ready, available) counts.
    #[allow(clippy::too_many_arguments)]
    fn replica_set(
        &mut self,
        namespace: &str,
        owner_name: &str,
        template: &Value,
        replicas: usize,
        owner: &Value,
        revision: &str,
        sidecar: &Option<Proxy>,
        hash_label: &str,
    ) -> io::Result<(i64, i64)> {
        let hash = template_hash(template, 0);
        let name = format!("{owner_name}-{hash}");
        let uid = self.rng.uid();
        let mut rs_template = template.clone();
        rs_template["metadata"]["labels"][hash_label] = json!(hash);
        let mut selector = json!({"matchLabels": {"app": template["metadata"]["labels"]["app"]}});
        selector["matchLabels"][hash_label] = json!(hash);
        let rs_owner = Self::owner_ref("apps/v1", "ReplicaSet", &name, &uid);
        let ready =
            self.replica_pods(namespace, &name, &rs_template, &rs_owner, sidecar, replicas)?;
        let mut status = json!({"replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": ready,
                                "availableReplicas": ready, "observedGeneration": 1});
        prune_zero_counts(&mut status);
        let rs = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "generation": 1,
                         "creationTimestamp": Self::stamp(self.past(30)), "labels": rs_template["metadata"]["labels"],
                         "annotations": {revision_annotation(hash_label): revision,
                                         "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                                         "deployment.kubernetes.io/max-replicas": (replicas + replicas.div_ceil(4)).to_string()},
                         "ownerReferences": [owner]},
            "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
            "status": status,
        });
        self.put(rs)?;
        Ok((ready, ready))
    }

    fn statefulset(
        &mut self,
        namespace: &str,
        name: &str,
        replicas: usize,
        template: Value,
        sidecar: Option<Proxy>,
        on_delete: bool,
    ) -> io::Result<()> {
        let uid = self.rng.uid();
        let revision = format!("{name}-{}", template_hash(&template, 0));
        let pod_template = {
            let mut t = template.clone();
            t["metadata"]["labels"]["controller-revision-hash"] = json!(revision);
            t
        };
        let owner = Self::owner_ref("apps/v1", "StatefulSet", name, &uid);
        let mut ready = 0;
        for ordinal in 0..replicas {
            let pod_name = format!("{name}-{ordinal}");
            let mut t = pod_template.clone();
            t["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
            t["metadata"]["labels"]["apps.kubernetes.io/pod-index"] = json!(ordinal.to_string());
            t["spec"]["hostname"] = json!(pod_name);
            t["spec"]["subdomain"] = json!(name);
            // StatefulSet pods start in order; a stuck one is the last.
            let state = if ordinal + 1 == replicas {
                self.pod_state()
            } else {
                PodState::Ready
            };
            if state == PodState::Ready {
                ready += 1;
            }
            self.pod(
                namespace,
                &pod_name,
                &t,
                Some(owner.clone()),
                &sidecar,
                None,
                state,
            )?;
        }
        let strategy = if on_delete {
            json!({"type": "OnDelete"})
        } else {
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        };
        let mut status = json!({"observedGeneration": 1, "replicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
                                "currentReplicas": replicas, "updatedReplicas": replicas,
                                "currentRevision": revision, "updateRevision": revision});
        prune_zero_counts(&mut status);
        status["collisionCount"] = json!(0);
        let sts = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "generation": 1,
                         "creationTimestamp": Self::stamp(self.past(90)), "labels": {"app": name}},
            "spec": {"replicas": replicas, "serviceName": name, "podManagementPolicy": "OrderedReady",
                     "selector": {"matchLabels": {"app": template["metadata"]["labels"]["app"]}},
                     "updateStrategy": strategy, "revisionHistoryLimit": 10, "template": template,
                     "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}},
            "status": status,
        });
        self.put(sts)
    }

    fn daemonset(
        &mut self,
        namespace: &str,
        name: &str,
        template: Value,
        sidecar: Option<Proxy>,
    ) -> io::Result<()> {
        let uid = self.rng.uid();
        let hash = template_hash(&template, 0);
        let mut pod_template = template.clone();
        pod_template["metadata"]["labels"]["controller-revision-hash"] = json!(hash);
        pod_template["metadata"]["labels"]["pod-template-generation"] = json!("1");
        let owner = Self::owner_ref("apps/v1", "DaemonSet", name, &uid);
        let mut ready = 0;
        for node in self.nodes.clone() {
            let pod_name = format!("{name}-{}", self.rng.suffix(5));
            self.pod(
                namespace,
                &pod_name,
                &pod_template,
                Some(owner.clone()),
                &sidecar,
                Some(&node),
                PodState::Ready,
            )?;
            ready += 1;
        }
        let desired = self.nodes.len();
        let ds = json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "generation": 1,
                         "creationTimestamp": Self::stamp(self.past(90)), "labels": {"app": name}},
            "spec": {"selector": {"matchLabels": {"app": template["metadata"]["labels"]["app"]}}, "template": template,
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                     "revisionHistoryLimit": 10},
            "status": {"observedGeneration": 1, "desiredNumberScheduled": desired, "currentNumberScheduled": desired,
                       "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": desired},
        });
        self.put(ds)
    }

    /// A CronJob with one finished Job and its pod.
    fn cronjob(
        &mut self,
        namespace: &str,
        name: &str,
        mut template: Value,
        sidecar: Option<Proxy>,
    ) -> io::Result<()> {
        template["spec"]["restartPolicy"] = json!("Never");
        let cj_uid = self.rng.uid();
        let job_uid = self.rng.uid();
        let run = self.past(1);
        let job_name = format!("{name}-{}", run.timestamp() / 60);
        let mut pod_template = template.clone();
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", job_uid.as_str()),
            ("batch.kubernetes.io/job-name", job_name.as_str()),
            ("controller-uid", job_uid.as_str()),
            ("job-name", job_name.as_str()),
        ] {
            pod_template["metadata"]["labels"][k] = json!(v);
        }
        let job_owner = Self::owner_ref("batch/v1", "Job", &job_name, &job_uid);
        let pod_name = format!("{job_name}-{}", self.rng.suffix(5));
        self.pod(
            namespace,
            &pod_name,
            &pod_template,
            Some(job_owner),
            &sidecar,
            None,
            PodState::Succeeded,
        )?;
        let done = Self::stamp(run + Duration::seconds(40));
        let job = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name, "namespace": namespace, "uid": job_uid, "generation": 1,
                         "creationTimestamp": Self::stamp(run), "labels": pod_template["metadata"]["labels"],
                         "ownerReferences": [Self::owner_ref("batch/v1", "CronJob", name, &cj_uid)]},
            "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed", "suspend": false,
                     "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": job_uid}}, "template": pod_template},
            "status": {"startTime": Self::stamp(run), "completionTime": done, "succeeded": 1, "ready": 0, "terminating": 0,
                       "uncountedTerminatedPods": {},
                       "conditions": [
                           {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "lastProbeTime": done, "lastTransitionTime": done},
                           {"type": "Complete", "status": "True", "reason": "CompletionsReached", "lastProbeTime": done, "lastTransitionTime": done}]},
        });
        self.put(job)?;
        let cronjob = json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": namespace, "uid": cj_uid, "generation": 1, "creationTimestamp": Self::stamp(self.past(90))},
            "spec": {"schedule": format!("{} * * * *", self.rng.below(60)), "concurrencyPolicy": "Forbid", "suspend": false,
                     "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                     "jobTemplate": {"spec": {"backoffLimit": 6, "template": template}}},
            "status": {"lastScheduleTime": Self::stamp(run), "lastSuccessfulTime": done},
        });
        self.put(cronjob)
    }

    fn rollout(
        &mut self,
        namespace: &str,
        name: &str,
        replicas: usize,
        template: Value,
        sidecar: Option<Proxy>,
    ) -> io::Result<()> {
        let uid = self.rng.uid();
        let owner = Self::owner_ref("argoproj.io/v1alpha1", "Rollout", name, &uid);
        let (ready, available) = self.replica_set(
            namespace,
            name,
            &template,
            replicas,
            &owner,
            "1",
            &sidecar,
            "rollouts-pod-template-hash",
        )?;
        let hash = template_hash(&template, 0);
        let healthy = available == replicas as i64;
        let mut status = json!({"observedGeneration": "1", "replicas": replicas, "updatedReplicas": replicas,
                                "readyReplicas": ready, "availableReplicas": available, "HPAReplicas": replicas,
                                "currentPodHash": hash, "stableRS": hash,
                                "phase": if healthy { "Healthy" } else { "Progressing" },
                                "message": if healthy { "" } else { "more replicas need to be updated" }});
        prune_zero_counts(&mut status);
        let time = Self::stamp(self.past(30));
        status["conditions"] = json!([{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
            "message": format!("ReplicaSet \"{name}-{hash}\" has successfully progressed."),
            "lastUpdateTime": time, "lastTransitionTime": time}]);
        let rollout = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "generation": 1, "creationTimestamp": Self::stamp(self.past(90)),
                         "annotations": {"rollout.argoproj.io/revision": "1"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": template["metadata"]["labels"]["app"]}},
                     "strategy": {"canary": {"maxSurge": "25%", "maxUnavailable": 0}}, "template": template},
            "status": status,
        });
        self.put(rollout)
    }

    fn replication_controller(
        &mut self,
        namespace: &str,
        name: &str,
        replicas: usize,
        template: Value,
        sidecar: Option<Proxy>,
    ) -> io::Result<()> {
        let uid = self.rng.uid();
        let owner = Self::owner_ref("v1", "ReplicationController", name, &uid);
        let ready = self.replica_pods(namespace, name, &template, &owner, &sidecar, replicas)?;
        let mut status = json!({"replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": ready,
                                "availableReplicas": ready, "observedGeneration": 1});
        prune_zero_counts(&mut status);
        let rc = json!({
            "apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "generation": 1, "creationTimestamp": Self::stamp(self.past(90))},
            "spec": {"replicas": replicas, "selector": {"app": template["metadata"]["labels"]["app"]}, "template": template},
            "status": status,
        });
        self.put(rc)
    }

    fn bare_pod(
        &mut self,
        namespace: &str,
        name: &str,
        template: Value,
        sidecar: Option<Proxy>,
    ) -> io::Result<()> {
        let state = self.pod_state();
        self.pod(namespace, name, &template, None, &sidecar, None, state)
    }
}

/// With the Istio CNI node agent (as Kyma runs it) the injection adds no `istio-init`
/// container: the pod keeps the proxy and its volumes, and the status annotation says so.
fn istio_cni(pod: &mut Value) {
    let spec = &mut pod["spec"];
    if let Some(inits) = spec["initContainers"].as_array_mut() {
        inits.retain(|c| c["name"] != "istio-init");
        if inits.is_empty()
            && let Some(spec) = spec.as_object_mut()
        {
            spec.remove("initContainers");
        }
    }
    let key = "sidecar.istio.io/status";
    if let Some(text) = pod["metadata"]["annotations"][key].as_str()
        && let Ok(mut status) = serde_json::from_str::<Value>(text)
    {
        let remaining: Vec<Value> = status["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| *c != "istio-init")
            .cloned()
            .collect();
        status["initContainers"] = if remaining.is_empty() {
            Value::Null
        } else {
            json!(remaining)
        };
        pod["metadata"]["annotations"][key] = json!(status.to_string());
    }
}

/// The annotation that numbers revisions: Argo Rollouts' own, or the Deployment one.
fn revision_annotation(hash_label: &str) -> &'static str {
    if hash_label == "rollouts-pod-template-hash" {
        "rollout.argoproj.io/revision"
    } else {
        "deployment.kubernetes.io/revision"
    }
}

/// Leaves out zero counts, as the API server's `omitempty` does (`replicas` stays).
fn prune_zero_counts(status: &mut Value) {
    if let Some(map) = status.as_object_mut() {
        map.retain(|k, v| k == "replicas" || k == "observedGeneration" || v != &json!(0));
    }
}

/// The managedFields a real server records for a pod: the controller (or kubectl) owning the
/// metadata and spec, the webhook-injected sidecar, and the kubelet owning the status.
fn managed_fields(pod: &Value, created: DateTime<Utc>, injected: bool) -> Value {
    let owned_by_controller = pod["metadata"]["ownerReferences"].is_array();
    let manager = if owned_by_controller {
        "kube-controller-manager"
    } else {
        "kubectl-client-side-apply"
    };
    let mut spec_fields = Map::new();
    let mut metadata = Map::new();
    for key in ["labels", "ownerReferences", "generateName"] {
        if !pod["metadata"][key].is_null() {
            metadata.insert(format!("f:{key}"), fields_v1(&pod["metadata"][key], 1));
        }
    }
    spec_fields.insert("f:metadata".into(), Value::Object(metadata));
    spec_fields.insert("f:spec".into(), fields_v1(&pod["spec"], 1));
    let time = meta::format_time(created);
    let mut entries = vec![json!({
        "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": Value::Object(spec_fields),
        "manager": manager, "operation": "Update", "time": time,
    })];
    if injected {
        entries.push(json!({
            "apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "istio-sidecar-injector", "operation": "Update", "time": time,
            "fieldsV1": {"f:metadata": {"f:annotations": {"f:sidecar.istio.io/status": {}}}},
        }));
    }
    entries.push(json!({
        "apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kubelet", "operation": "Update", "subresource": "status",
        "time": meta::format_time(created + Duration::seconds(9)),
        "fieldsV1": {"f:status": fields_v1(&pod["status"], 1)},
    }));
    json!(entries)
}

/// The FieldsV1 set of a value: its fields as `f:<name>`, list items keyed by name (`k:{...}`),
/// down to `depth` levels (deeper fields are summarised by their parent, to keep pods compact).
fn fields_v1(value: &Value, depth: usize) -> Value {
    if depth == 0 {
        return json!({});
    }
    match value {
        Value::Object(map) => {
            let mut fields = Map::new();
            fields.insert(".".into(), json!({}));
            for (key, v) in map {
                fields.insert(format!("f:{key}"), fields_v1(v, depth - 1));
            }
            Value::Object(fields)
        }
        Value::Array(items) => {
            let mut fields = Map::new();
            for item in items {
                let key = match (
                    item.get("name"),
                    item.get("type"),
                    item.get("containerPort"),
                    item.get("ip"),
                ) {
                    (Some(name), _, _, _) => format!("k:{{\"name\":{name}}}"),
                    (_, Some(t), _, _) => format!("k:{{\"type\":{t}}}"),
                    (_, _, Some(port), _) => {
                        format!("k:{{\"containerPort\":{port},\"protocol\":\"TCP\"}}")
                    }
                    (_, _, _, Some(ip)) => format!("k:{{\"ip\":{ip}}}"),
                    _ => {
                        fields.insert(format!("v:{item}"), json!({}));
                        continue;
                    }
                };
                fields.insert(key, fields_v1(item, depth - 1));
            }
            Value::Object(fields)
        }
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_requested_pods() {
        for pods in [0, 1, 7, 50, 333] {
            let list = generate(pods, 1);
            let count = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["kind"] == "Pod")
                .count();
            assert_eq!(count, pods);
        }
    }

    /// Pods, owner objects (workloads and ReplicaSets) and the pods' average JSON size.
    fn shape_of(list: &Value) -> (usize, usize, f64) {
        let items = list["items"].as_array().unwrap();
        let pods: Vec<&Value> = items.iter().filter(|i| i["kind"] == "Pod").collect();
        let owners = items
            .iter()
            .filter(|i| {
                matches!(
                    i["kind"].as_str(),
                    Some(
                        "ReplicaSet"
                            | "Deployment"
                            | "StatefulSet"
                            | "DaemonSet"
                            | "ReplicationController"
                            | "Job"
                            | "CronJob"
                            | "Rollout"
                    )
                )
            })
            .count();
        let bytes: usize = pods
            .iter()
            .map(|p| serde_json::to_vec(p).unwrap().len())
            .sum();
        (pods.len(), owners, bytes as f64 / pods.len() as f64)
    }

    #[test]
    fn the_lean_shape_has_small_pods_and_many_owners() {
        for seed in [7, 8] {
            let list = generate_shaped(5_000, seed, Shape::Lean);
            let (pods, owners, average) = shape_of(&list);
            assert_eq!(pods, 5_000);
            assert!(
                (5_000.0..=7_000.0).contains(&average),
                "lean pods average {average:.0} bytes"
            );
            let ratio = owners as f64 / pods as f64;
            assert!(
                (0.5..=0.7).contains(&ratio),
                "lean: {owners} owners for {pods} pods ({ratio:.2})"
            );
            // Exactly one ReplicaSet per Deployment, and stale proxies left to restart.
            let items = list["items"].as_array().unwrap();
            let uid_kind: std::collections::HashMap<&str, &str> = items
                .iter()
                .map(|i| {
                    (
                        i["metadata"]["uid"].as_str().unwrap(),
                        i["kind"].as_str().unwrap(),
                    )
                })
                .collect();
            let mut sets_per_deployment = std::collections::HashMap::new();
            for rs in items.iter().filter(|i| i["kind"] == "ReplicaSet") {
                let owner = rs["metadata"]["ownerReferences"][0]["uid"]
                    .as_str()
                    .unwrap();
                if uid_kind[owner] == "Deployment" {
                    *sets_per_deployment.entry(owner).or_insert(0) += 1;
                }
            }
            // Consistent: every owner reference resolves by uid, kind and name, and each
            // ReplicaSet's template is its Deployment's with the hash label.
            let by_uid: std::collections::HashMap<&str, &Value> = items
                .iter()
                .map(|i| (i["metadata"]["uid"].as_str().unwrap(), i))
                .collect();
            for item in items {
                for reference in item["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let owner = by_uid[reference["uid"].as_str().unwrap()];
                    assert_eq!(owner["kind"], reference["kind"]);
                    assert_eq!(owner["metadata"]["name"], reference["name"]);
                }
                if item["kind"] == "ReplicaSet" {
                    let owner = by_uid[item["metadata"]["ownerReferences"][0]["uid"]
                        .as_str()
                        .unwrap()];
                    if owner["kind"] == "Deployment" {
                        let mut template = item["spec"]["template"].clone();
                        template["metadata"]["labels"]
                            .as_object_mut()
                            .unwrap()
                            .remove("pod-template-hash");
                        assert_eq!(template, owner["spec"]["template"]);
                    }
                }
            }
            let deployments = items.iter().filter(|i| i["kind"] == "Deployment").count();
            assert_eq!(sets_per_deployment.len(), deployments);
            assert!(sets_per_deployment.values().all(|&n| n == 1));
            let stale = items
                .iter()
                .filter(|i| i["kind"] == "Pod")
                .filter_map(|p| {
                    p["spec"]["containers"]
                        .as_array()
                        .into_iter()
                        .chain(p["spec"]["initContainers"].as_array())
                        .flatten()
                        .find(|c| c["name"] == "istio-proxy")
                })
                .filter(|c| !c["image"].as_str().unwrap().contains(CURRENT_VERSION))
                .count();
            assert!(stale > pods / 3, "{stale} stale proxies");
        }
    }

    #[test]
    fn the_kyma_shape_is_the_default_and_keeps_its_size() {
        assert_eq!(Shape::default(), Shape::Kyma);
        assert_eq!("lean".parse::<Shape>(), Ok(Shape::Lean));
        assert!("other".parse::<Shape>().is_err());
        let (_, _, average) = shape_of(&generate(2_000, 7));
        assert!(average > 9_000.0, "kyma pods average {average:.0} bytes");
        assert_eq!(generate_shaped(300, 3, Shape::Kyma), generate(300, 3));
    }

    #[test]
    fn streaming_and_in_memory_agree() {
        let mut bytes = Vec::new();
        generate_to(&mut bytes, 120, 9).unwrap();
        let streamed: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(streamed, generate(120, 9));
        let mut lean = Vec::new();
        generate_to_shaped(&mut lean, 120, 9, Shape::Lean).unwrap();
        let streamed: Value = serde_json::from_slice(&lean).unwrap();
        assert_eq!(streamed, generate_shaped(120, 9, Shape::Lean));
    }
}
