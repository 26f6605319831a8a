//! The slice of each Kubernetes object the planner reads, deserialised straight from JSON.
//!
//! Deliberately not the `k8s-openapi` types: a real pod is ~6 KB of JSON (managedFields,
//! probes, env) of which the plan needs a few hundred bytes. Deserialising into these types
//! skips everything else without allocating it, so a page of pods (or a 130 MB snapshot) costs
//! little more than scanning its bytes (DESIGN §6). Labels and annotations keep only the keys
//! the decision rules look at.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

/// Labels and annotations with only the keys the planner reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptMap(pub Vec<(String, String)>);

impl KeptMap {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The label and annotation keys that matter to a decision rule; everything else is skipped
/// while parsing (`last-applied-configuration` alone can be many kilobytes).
pub fn is_kept_key(key: &str) -> bool {
    is_kept_key_bytes(key.as_bytes())
}

fn is_kept_key_bytes(key: &[u8]) -> bool {
    key == b"app"
        || key == b"istio-injection"
        || key.starts_with(b"istio.io/")
        || key.starts_with(b"sidecar.istio.io/")
        || key == b"inject.istio.io/templates"
        || key.starts_with(b"istio-proxy-reset.kyma-project.io/")
        || key.starts_with(b"kyma-project.io/")
}

thread_local! {
    static NAMED_KEYS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `parse` with map keys read as text, which `serde_path_to_error` needs to name the field
/// that broke. Otherwise keys are read as bytes (see `Key`).
pub fn with_named_keys<T>(parse: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            NAMED_KEYS.with(|k| k.set(false));
        }
    }
    NAMED_KEYS.with(|k| k.set(true));
    let _reset = Reset;
    parse()
}

/// A map key as raw bytes. serde_json checks that every `str` it hands out is UTF-8; the keys
/// the rules match are ASCII and most keys are skipped, so reading them as bytes saves checking
/// the many keys of a pod (UTF-8 checks were 8% of the instructions of reading a snapshot). A
/// key that is kept is checked when it becomes a `String`.
struct Key<'de>(Cow<'de, [u8]>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_vec())))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v.as_bytes())))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.as_bytes().to_vec())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.into_bytes())))
            }
        }
        if NAMED_KEYS.with(|k| k.get()) {
            deserializer.deserialize_str(KeyVisitor)
        } else {
            deserializer.deserialize_bytes(KeyVisitor)
        }
    }
}

impl<'de> Deserialize<'de> for KeptMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeptMapVisitor;
        impl<'de> Visitor<'de> for KeptMapVisitor {
            type Value = KeptMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeptMap, E> {
                Ok(KeptMap::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeptMap, A::Error> {
                let mut kept = Vec::new();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if is_kept_key_bytes(&key) {
                        let key = String::from_utf8(key.into_owned())
                            .map_err(|_| de::Error::custom("a key is not valid UTF-8"))?;
                        let value: Option<String> = map.next_value()?;
                        kept.push((key, value.unwrap_or_default()));
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(KeptMap(kept))
            }
        }
        deserializer.deserialize_any(KeptMapVisitor)
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    #[serde(default)]
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub controller: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Metadata {
    pub name: Option<String>,
    pub namespace: Option<String>,
    /// `deletionTimestamp` is set: the object is being deleted.
    #[serde(rename = "deletionTimestamp", deserialize_with = "a_string_is_set")]
    pub deleting: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: KeptMap,
    #[serde(deserialize_with = "null_as_default")]
    pub annotations: KeptMap,
    #[serde(deserialize_with = "null_as_default")]
    pub owner_references: Vec<OwnerReference>,
}

impl Metadata {
    /// The owner reference with `controller: true`, the one the decision rules follow.
    pub fn controller(&self) -> Option<&OwnerReference> {
        self.owner_references
            .iter()
            .find(|o| o.controller == Some(true))
    }
}

/// A container: `name` is required, `image` and `restartPolicy` may be missing or null.
#[derive(Debug, Clone, Default)]
pub struct Container {
    pub name: String,
    pub image: Option<String>,
    /// `restartPolicy: Always`: an init container that is a native sidecar.
    pub restart_always: bool,
    /// cpu and memory requests and limits, as written.
    pub resources: Option<Box<istio_injection::proxy::Resources>>,
    /// The `ENABLE_NATIVE_SIDECARS` env (istiod's `discovery` container reads it).
    pub native_sidecars_env: Option<Box<str>>,
}

/// `resources` of a container: the quantities of cpu and memory.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ContainerResources {
    #[serde(deserialize_with = "null_as_default")]
    requests: CpuMemory,
    #[serde(deserialize_with = "null_as_default")]
    limits: CpuMemory,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CpuMemory {
    cpu: Option<String>,
    memory: Option<String>,
}

impl ContainerResources {
    fn into_resources(self) -> Option<Box<istio_injection::proxy::Resources>> {
        let resources = istio_injection::proxy::Resources {
            requests_cpu: self.requests.cpu,
            requests_memory: self.requests.memory,
            limits_cpu: self.limits.cpu,
            limits_memory: self.limits.memory,
        };
        (resources != Default::default()).then(|| Box::new(resources))
    }
}

/// One `env` entry, reduced to `ENABLE_NATIVE_SIDECARS`'s value.
struct NativeSidecarsEnv(Option<Box<str>>);

impl<'de> Deserialize<'de> for NativeSidecarsEnv {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvVisitor;
        impl<'de> Visitor<'de> for EnvVisitor {
            type Value = NativeSidecarsEnv;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an env entry")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut wanted, mut value) = (false, None);
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    match key.as_ref() {
                        b"name" => wanted = map.next_value::<Text>()?.0 == "ENABLE_NATIVE_SIDECARS",
                        b"value" => value = map.next_value::<Option<Text>>()?.map(|t| t.0),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(NativeSidecarsEnv(
                    value.filter(|_| wanted).map(|v| Box::from(v.as_ref())),
                ))
            }
        }
        deserializer.deserialize_map(EnvVisitor)
    }
}

/// Reads a container's `env` for `ENABLE_NATIVE_SIDECARS`.
struct EnvSeed;

impl<'de> de::DeserializeSeed<'de> for EnvSeed {
    type Value = Option<Box<str>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        native_sidecars_env(deserializer)
    }
}

/// A container's `env`, for `ENABLE_NATIVE_SIDECARS`.
fn native_sidecars_env<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Box<str>>, D::Error> {
    let env: Option<Vec<NativeSidecarsEnv>> = Option::deserialize(deserializer)?;
    Ok(env.unwrap_or_default().into_iter().find_map(|e| e.0))
}

/// A string value that is only looked at, borrowed from the input when it has no escapes
/// (serde's own `Cow` always copies). Saves an allocation per field on every pod.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

// By hand rather than derived: a pod has several containers of a dozen keys each, and these
// keys are read as bytes (see `Key`).
impl<'de> Deserialize<'de> for Container {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContainerVisitor;
        impl<'de> Visitor<'de> for ContainerVisitor {
            type Value = Container;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct Container")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Container, A::Error> {
                let mut name = None;
                let mut image = None;
                let mut restart_always = false;
                let mut resources = None;
                let mut native_env = None;
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    match key.as_ref() {
                        b"name" => name = Some(map.next_value::<String>()?),
                        b"image" => image = map.next_value::<Option<String>>()?,
                        b"restartPolicy" => {
                            restart_always = map
                                .next_value::<Option<Text>>()?
                                .is_some_and(|p| p.0 == "Always")
                        }
                        b"resources" => {
                            resources = map
                                .next_value::<Option<ContainerResources>>()?
                                .and_then(ContainerResources::into_resources)
                        }
                        b"env" => {
                            native_env = map.next_value_seed(EnvSeed)?;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Container {
                    name: name.ok_or_else(|| de::Error::missing_field("name"))?,
                    image,
                    restart_always,
                    resources,
                    native_sidecars_env: native_env,
                })
            }
        }
        deserializer.deserialize_map(ContainerVisitor)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    #[serde(deserialize_with = "null_as_default")]
    pub containers: Vec<Container>,
    #[serde(deserialize_with = "null_as_default")]
    pub init_containers: Vec<Container>,
    /// `hostNetwork: true`: Istio never injects such a pod.
    pub host_network: bool,
}

/// A pod condition, reduced to the one question the rules ask of it.
#[derive(Debug, Clone, Copy, Default)]
struct Condition {
    /// `type: Ready` with `status: "True"`.
    ready: bool,
}

// By hand for the same reason as `Container`: a pod has several conditions.
impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConditionVisitor;
        impl<'de> Visitor<'de> for ConditionVisitor {
            type Value = Condition;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("struct Condition")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Condition, A::Error> {
                let (mut is_ready, mut is_true) = (false, false);
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    match key.as_ref() {
                        b"type" => is_ready = map.next_value::<Text>()?.0 == "Ready",
                        b"status" => is_true = map.next_value::<Text>()?.0 == "True",
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Condition {
                    ready: is_ready && is_true,
                })
            }
        }
        deserializer.deserialize_map(ConditionVisitor)
    }
}

/// `status.conditions`, read for whether one says the pod is Ready.
fn ready_condition<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct ConditionsVisitor;
    impl<'de> Visitor<'de> for ConditionsVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of conditions")
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut ready = false;
            while let Some(condition) = seq.next_element::<Condition>()? {
                ready |= condition.ready;
            }
            Ok(ready)
        }
    }
    deserializer.deserialize_any(ConditionsVisitor)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodStatus {
    pub phase: Option<String>,
    pub reason: Option<String>,
    /// A condition of type `Ready` is `"True"`.
    #[serde(rename = "conditions", deserialize_with = "ready_condition")]
    pub ready: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TemplateMetadata {
    #[serde(deserialize_with = "null_as_default")]
    pub labels: KeptMap,
    #[serde(deserialize_with = "null_as_default")]
    pub annotations: KeptMap,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodTemplate {
    #[serde(deserialize_with = "null_as_default")]
    pub metadata: TemplateMetadata,
    #[serde(deserialize_with = "null_as_default")]
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UpdateStrategy {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub rolling_update: Option<RollingUpdate>,
}

/// `spec.updateStrategy.rollingUpdate` of a StatefulSet: ordinals below `partition` keep
/// their revision.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RollingUpdate {
    pub partition: Option<i64>,
}

/// The spec fields of Deployments, ReplicaSets, StatefulSets, DaemonSets,
/// ReplicationControllers, Jobs, CronJobs and Argo Rollouts that the planner reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadSpec {
    pub paused: Option<bool>,
    pub replicas: Option<i64>,
    pub update_strategy: Option<UpdateStrategy>,
    /// StatefulSets: `OrderedReady` (the default) or `Parallel`.
    pub pod_management_policy: Option<String>,
    /// StatefulSets: `spec.ordinals`, where the ordinals start.
    pub ordinals: Option<Ordinals>,
    pub template: Option<PodTemplate>,
}

/// `spec.ordinals` of a StatefulSet: its pods are numbered from `start` (0 when absent).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Ordinals {
    pub start: Option<i64>,
}

/// The status fields of workloads the rules read: istiod's for the gate, Argo Rollouts' for
/// whether a restart can happen.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadStatus {
    pub ready_replicas: Option<i64>,
    /// ReplicaSets of Argo Rollouts: Argo restarts only when each is fully available.
    pub available_replicas: Option<i64>,
    /// Argo Rollouts: why the controller holds the Rollout (canary pause steps and the like).
    #[serde(deserialize_with = "null_as_default")]
    pub pause_conditions: Vec<serde::de::IgnoredAny>,
    /// Argo Rollouts: paused by the controller itself.
    pub controller_pause: Option<bool>,
}

/// ConfigMap data: only the keys the injector configuration uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InjectorData {
    pub values: Option<String>,
    /// The injector's `config` (YAML): `policy` and the inject selectors.
    pub config: Option<String>,
}

/// The kind-specific body of an object.
#[derive(Debug, Clone)]
pub enum Body {
    Pod {
        spec: PodSpec,
        status: PodStatus,
    },
    Workload {
        spec: WorkloadSpec,
        status: WorkloadStatus,
    },
    ConfigMap {
        data: InjectorData,
    },
    /// A MutatingWebhookConfiguration's webhooks, with their selectors.
    Webhooks {
        webhooks: Vec<istio_injection::webhooks::Webhook>,
    },
    /// Namespaces and anything whose body the planner does not read.
    None,
}

/// One item of a snapshot or of a list page.
#[derive(Debug, Clone)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub body: Body,
}

/// The kinds whose body the planner reads.
pub fn is_workload_kind(kind: &str) -> bool {
    matches!(
        kind,
        "Deployment"
            | "ReplicaSet"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicationController"
            | "Job"
            | "CronJob"
            | "Rollout"
    )
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor { kind_hint: None })
    }
}

/// Deserialises an object whose `kind` is known from its list (`PodList` items carry no kind).
pub struct ObjectSeed<'a> {
    pub kind: &'a str,
    pub api_version: &'a str,
}

impl<'de> de::DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = Object;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Object, D::Error> {
        let mut object = deserializer.deserialize_map(ObjectVisitor {
            kind_hint: Some(self.kind),
        })?;
        if object.api_version.is_empty() {
            object.api_version = self.api_version.to_string();
        }
        Ok(object)
    }
}

struct ObjectVisitor<'a> {
    kind_hint: Option<&'a str>,
}

/// A body field met before `kind`: kept as JSON and typed once the kind is known.
/// kubectl and sorted JSON both print `kind` first, so this is the rare path.
#[derive(Default)]
struct Deferred {
    spec: Option<serde_json::Value>,
    status: Option<serde_json::Value>,
    data: Option<serde_json::Value>,
    webhooks: Option<serde_json::Value>,
}

/// The kind whose `webhooks` the rules read.
pub const WEBHOOK_CONFIGURATION: &str = "MutatingWebhookConfiguration";

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = Object;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
        let mut api_version = String::new();
        let mut kind: Option<String> = self.kind_hint.map(str::to_string);
        let mut metadata = Metadata::default();
        let mut pod_spec = None;
        let mut pod_status = None;
        let mut workload_spec = None;
        let mut workload_status = None;
        let mut data = None;
        let mut webhooks = None;
        let mut deferred = Deferred::default();

        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "apiVersion" => api_version = map.next_value()?,
                "kind" => {
                    let value: String = map.next_value()?;
                    // A list's item kind wins over nothing, the item's own over the list's.
                    kind = Some(value);
                }
                "metadata" => metadata = map.next_value()?,
                "webhooks" => match kind.as_deref() {
                    None => deferred.webhooks = Some(map.next_value()?),
                    Some(WEBHOOK_CONFIGURATION) => webhooks = map.next_value()?,
                    Some(_) => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
                field @ ("spec" | "status" | "data") => match kind.as_deref() {
                    None => {
                        let value = Some(map.next_value::<serde_json::Value>()?);
                        match field {
                            "spec" => deferred.spec = value,
                            "status" => deferred.status = value,
                            _ => deferred.data = value,
                        }
                    }
                    // `null` is read as absent, as Kubernetes means it.
                    Some("Pod") if field == "spec" => pod_spec = map.next_value()?,
                    Some("Pod") if field == "status" => pod_status = map.next_value()?,
                    Some(k) if is_workload_kind(k) && field == "spec" => {
                        workload_spec = map.next_value()?
                    }
                    Some(k) if is_workload_kind(k) && field == "status" => {
                        workload_status = map.next_value()?
                    }
                    Some("ConfigMap") if field == "data" => data = map.next_value()?,
                    Some(_) => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }

        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        fn typed<T: de::DeserializeOwned, E: de::Error>(
            value: Option<serde_json::Value>,
            field: &str,
        ) -> Result<Option<T>, E> {
            match value {
                Some(serde_json::Value::Null) | None => Ok(None),
                Some(value) => serde_json::from_value(value)
                    .map(Some)
                    .map_err(|e| E::custom(format!("{field}: {e}"))),
            }
        }
        let body = match kind.as_str() {
            "Pod" => Body::Pod {
                spec: pod_spec
                    .or(typed::<_, A::Error>(deferred.spec, "spec")?)
                    .unwrap_or_default(),
                status: pod_status
                    .or(typed::<_, A::Error>(deferred.status, "status")?)
                    .unwrap_or_default(),
            },
            k if is_workload_kind(k) => Body::Workload {
                spec: workload_spec
                    .or(typed::<_, A::Error>(deferred.spec, "spec")?)
                    .unwrap_or_default(),
                status: workload_status
                    .or(typed::<_, A::Error>(deferred.status, "status")?)
                    .unwrap_or_default(),
            },
            "ConfigMap" => Body::ConfigMap {
                data: data
                    .or(typed::<_, A::Error>(deferred.data, "data")?)
                    .unwrap_or_default(),
            },
            WEBHOOK_CONFIGURATION => Body::Webhooks {
                webhooks: webhooks
                    .or(typed::<_, A::Error>(deferred.webhooks, "webhooks")?)
                    .unwrap_or_default(),
            },
            _ => Body::None,
        };
        Ok(Object {
            api_version,
            kind,
            metadata,
            body,
        })
    }
}

/// A string field that is only looked at for being there (`null` is not).
fn a_string_is_set<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(Option::<Text<'de>>::deserialize(deserializer)?.is_some())
}

/// Kubernetes writes `null` for empty maps and lists now and then; treat it as empty.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_keys_the_rules_read() {
        let object: Object = serde_json::from_str(
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"n",
                "labels":{"app":"x","istio.io/rev":"1-24","team":"a"},
                "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{…}",
                               "sidecar.istio.io/status":"{}","istio-proxy-reset.kyma-project.io/skip":"true"},
                "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"u","controller":true}],
                "managedFields":[{"manager":"kubectl"}]},
               "spec":{"containers":[{"name":"app","image":"a:1","env":[{"name":"X","value":"1"}]}]},
               "status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
        )
        .unwrap();
        assert_eq!(object.metadata.labels.0.len(), 2);
        assert_eq!(object.metadata.labels.get("istio.io/rev"), Some("1-24"));
        assert_eq!(object.metadata.annotations.0.len(), 2);
        assert_eq!(object.metadata.controller().unwrap().name, "rs");
        match object.body {
            Body::Pod { spec, status } => {
                assert_eq!(spec.containers[0].image.as_deref(), Some("a:1"));
                assert_eq!(status.phase.as_deref(), Some("Running"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_pod_is_ready_when_a_ready_condition_says_true() {
        let ready = |conditions: &str| -> Result<bool, String> {
            let text = format!(
                r#"{{"kind":"Pod","metadata":{{"name":"p"}},"status":{{"conditions":{conditions}}}}}"#
            );
            match serde_json::from_str::<Object>(&text) {
                Ok(Object {
                    body: Body::Pod { status, .. },
                    ..
                }) => Ok(status.ready),
                Ok(other) => Err(format!("{other:?}")),
                Err(error) => Err(error.to_string()),
            }
        };
        assert_eq!(ready(r#"[{"type":"Ready","status":"True"}]"#), Ok(true));
        assert_eq!(
            ready(r#"[{"status":"True","type":"PodScheduled"},{"type":"Ready","status":"True"}]"#),
            Ok(true)
        );
        assert_eq!(ready(r#"[{"type":"Ready","status":"False"}]"#), Ok(false));
        assert_eq!(
            ready(r#"[{"type":"Re\u0061dy","status":"True"}]"#),
            Ok(true)
        );
        assert_eq!(
            ready(r#"[{"type":"PodScheduled","status":"True"}]"#),
            Ok(false)
        );
        assert_eq!(ready("[]"), Ok(false));
        assert_eq!(ready("null"), Ok(false));
        let error = ready(r#""Ready""#).unwrap_err();
        assert!(error.contains("a list of conditions"), "{error}");
        let error = ready(r#"[{"type":5}]"#).unwrap_err();
        assert!(error.contains("expected a string"), "{error}");
    }

    #[test]
    fn a_deletion_timestamp_marks_an_object_being_deleted() {
        let deleting = |value: &str| {
            let text = format!(r#"{{"kind":"Pod","metadata":{{"name":"p"{value}}}}}"#);
            serde_json::from_str::<Object>(&text)
                .map(|o| o.metadata.deleting)
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            deleting(r#","deletionTimestamp":"2026-11-26T10:00:00Z""#),
            Ok(true)
        );
        assert_eq!(deleting(r#","deletionTimestamp":null"#), Ok(false));
        assert_eq!(deleting(""), Ok(false));
        let error = deleting(r#","deletionTimestamp":false"#).unwrap_err();
        assert!(error.contains("expected a string"), "{error}");
    }

    #[test]
    fn an_init_container_that_always_restarts_is_a_native_sidecar() {
        let object: Object = serde_json::from_str(
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"initContainers":[
                {"name":"a","restartPolicy":"Always"},{"name":"b","restartPolicy":null},
                {"name":"c","restartPolicy":"OnFailure"},{"name":"d"}]}}"#,
        )
        .unwrap();
        let Body::Pod { spec, .. } = object.body else {
            panic!("not a pod");
        };
        let always: Vec<_> = spec
            .init_containers
            .iter()
            .map(|c| c.restart_always)
            .collect();
        assert_eq!(always, [true, false, false, false]);
    }

    #[test]
    fn reads_the_body_even_when_kind_comes_last() {
        let object: Object = serde_json::from_str(
            r#"{"spec":{"paused":true},"metadata":{"name":"d"},"kind":"Deployment"}"#,
        )
        .unwrap();
        assert!(
            matches!(object.body, Body::Workload { ref spec, .. } if spec.paused == Some(true))
        );
    }

    #[test]
    fn a_missing_kind_is_an_error_naming_the_field() {
        let error = serde_json::from_str::<Object>(r#"{"metadata":{"name":"x"}}"#).unwrap_err();
        assert!(error.to_string().contains("kind"), "{error}");
    }

    #[test]
    fn unknown_kinds_are_not_read() {
        // A Service's spec.selector is a plain map; it must not be read as anything.
        let object: Object = serde_json::from_str(
            r#"{"kind":"Service","metadata":{"name":"s"},"spec":{"selector":{"a":"b"},"paused":"odd"}}"#,
        )
        .unwrap();
        assert!(matches!(object.body, Body::None));
    }
}
