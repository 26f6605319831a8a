//! The object store: every object of the cluster as Kubernetes JSON, one global resourceVersion
//! counter, a bounded history of changes (for watch resumption and consistent paginated lists),
//! and a broadcast of every change for watchers and controllers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

pub use crate::error::ApiError;
pub use crate::error::Error as StoreError;

/// A kind of object the API serves.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

impl ResourceType {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const fn rt(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        kind,
        plural,
        namespaced,
    }
}

/// Every resource the simulation serves, in discovery order.
pub static RESOURCES: &[ResourceType] = &[
    rt("", "v1", "Pod", "pods", true),
    rt("", "v1", "Namespace", "namespaces", false),
    rt("", "v1", "Node", "nodes", false),
    rt("", "v1", "ConfigMap", "configmaps", true),
    rt("", "v1", "Secret", "secrets", true),
    rt("", "v1", "Service", "services", true),
    rt("", "v1", "ServiceAccount", "serviceaccounts", true),
    rt("", "v1", "Event", "events", true),
    rt(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        true,
    ),
    rt("apps", "v1", "Deployment", "deployments", true),
    rt("apps", "v1", "ReplicaSet", "replicasets", true),
    rt("apps", "v1", "StatefulSet", "statefulsets", true),
    rt("apps", "v1", "DaemonSet", "daemonsets", true),
    rt(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        true,
    ),
    rt("batch", "v1", "Job", "jobs", true),
    rt("batch", "v1", "CronJob", "cronjobs", true),
    rt(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    rt("events.k8s.io", "v1", "Event", "events", true),
    rt("argoproj.io", "v1alpha1", "Rollout", "rollouts", true),
    rt("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    rt(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
];

/// The resource of objects with this `apiVersion` and `kind`, e.g. `("apps/v1", "Deployment")`.
pub fn resource_for_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// The resource named `plural` in API group `group` (`""` for core), e.g. `("apps", "deployments")`.
pub fn resource_for_plural(group: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
}

/// One change of one object, as watchers see it.
#[derive(Debug, Clone)]
pub struct StoreEvent {
    pub kind: WatchEventType,
    pub resource: &'static ResourceType,
    pub object: Value,
}

impl StoreEvent {
    /// The resourceVersion of the change.
    pub fn resource_version(&self) -> u64 {
        object_rv(&self.object).unwrap_or(0)
    }
}

/// Objects of one resource by (namespace, name); cluster-scoped objects have namespace `""`.
type ObjectKey = (String, String);
type ObjectMap = BTreeMap<ObjectKey, Arc<Value>>;

/// One recorded change: enough to replay it to a watcher or to undo it for an older snapshot.
struct Change {
    rv: u64,
    kind: WatchEventType,
    resource: &'static ResourceType,
    key: ObjectKey,
    before: Option<Arc<Value>>,
    after: Arc<Value>,
}

/// How many changes the store keeps by default (the real server keeps about five minutes).
pub const DEFAULT_HISTORY_LIMIT: usize = 20_000;
const BROADCAST_CAPACITY: usize = 16_384;

struct Inner {
    rv: u64,
    objects: HashMap<&'static ResourceType, ObjectMap>,
    history: VecDeque<Change>,
    history_limit: usize,
    /// The oldest resourceVersion whose state can still be rebuilt from `history`.
    oldest_rv: u64,
}

/// The cluster state. Shared as `Arc<Store>`; every method is atomic.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<StoreEvent>,
}

/// One page of a list, at a fixed resourceVersion.
#[derive(Debug, Clone)]
pub struct ListPage {
    /// Shared with the store: the objects are not copied until they are written out.
    pub items: Vec<Arc<Value>>,
    pub resource_version: u64,
    /// Where the next page starts, when there is one.
    pub continue_token: Option<ContinueToken>,
}

/// A position in a paginated list: the snapshot it reads and the last key it returned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContinueToken {
    pub rv: u64,
    pub namespace: String,
    pub name: String,
}

/// Conditions that a delete must meet (`DeleteOptions.preconditions`).
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

impl Store {
    pub fn new() -> Arc<Store> {
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        Arc::new(Store {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: HashMap::new(),
                history: VecDeque::new(),
                history_limit: DEFAULT_HISTORY_LIMIT,
                oldest_rv: 1,
            }),
            events,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the maps consistent (every write is one insert),
        // so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many changes are kept for watch resumption and `continue` tokens. Older ones expire (410).
    pub fn set_history_limit(&self, limit: usize) {
        let mut inner = self.lock();
        inner.history_limit = limit.max(1);
        inner.trim_history();
    }

    /// Loads a `kind: List` as initial state. Objects keep their fields; missing uid, resourceVersion,
    /// creationTimestamp and generation are filled in. Items of kinds the simulation does not serve
    /// are skipped with a warning.
    pub fn load_list(&self, list: &Value) -> Result<(), StoreError> {
        self.load_owned_list(list.clone())
    }

    /// [`Store::load_list`] without copying the objects.
    pub fn load_owned_list(&self, list: Value) -> Result<(), StoreError> {
        let Value::Object(mut list) = list else {
            return Err(StoreError::InvalidState(
                "expected a `kind: List` object".into(),
            ));
        };
        let Some(Value::Array(items)) = list.remove("items") else {
            return Err(StoreError::InvalidState(
                "expected a `kind: List` with `items`".into(),
            ));
        };
        let mut inner = self.lock();
        for (index, item) in items.into_iter().enumerate() {
            let field = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or_default();
            let (api_version, kind) = (field("apiVersion").to_string(), field("kind").to_string());
            let Some(r) = resource_for_kind(&api_version, &kind) else {
                tracing::warn!(
                    index,
                    api_version,
                    kind,
                    "skipping an object of a kind the simulation does not serve"
                );
                continue;
            };
            let mut obj = item;
            let name = meta_str(&obj, "name").map(str::to_string).ok_or_else(|| {
                StoreError::InvalidState(format!("items[{index}] ({kind}) has no metadata.name"))
            })?;
            let namespace = if r.namespaced {
                meta_str(&obj, "namespace").unwrap_or("default").to_string()
            } else {
                String::new()
            };
            if r.namespaced {
                obj["metadata"]["namespace"] = json!(namespace);
            }
            let rv = match object_rv(&obj) {
                Some(rv) => rv,
                None => {
                    inner.rv += 1;
                    obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
                    inner.rv
                }
            };
            inner.rv = inner.rv.max(rv);
            fill_identity(&mut obj);
            let obj = Arc::new(obj);
            inner
                .objects
                .entry(r)
                .or_default()
                .insert((namespace, name), obj.clone());
            if self.events.receiver_count() > 0 {
                let _ = self.events.send(StoreEvent {
                    kind: WatchEventType::Added,
                    resource: r,
                    object: (*obj).clone(),
                });
            }
        }
        // Loading writes no history: older versions cannot be watched from.
        inner.oldest_rv = inner.rv;
        inner.history.clear();
        Ok(())
    }

    pub fn get(&self, r: &ResourceType, ns: Option<&str>, name: &str) -> Option<Value> {
        let inner = self.lock();
        inner.get(r, &key(r, ns, name)).map(|o| (**o).clone())
    }

    /// All objects of `r` (in namespace `ns`, or all namespaces), sorted by namespace and name.
    pub fn list(&self, r: &ResourceType, ns: Option<&str>) -> Vec<Value> {
        // Copied outside the lock: only the shared handles are taken under it.
        self.list_shared(r, ns)
            .into_iter()
            .map(|o| (*o).clone())
            .collect()
    }

    /// Like [`Store::list`], but shares the objects with the store instead of copying them.
    pub fn list_shared(&self, r: &ResourceType, ns: Option<&str>) -> Vec<Arc<Value>> {
        let inner = self.lock();
        let Some(map) = inner.objects.get(r) else {
            return Vec::new();
        };
        match ns.filter(|_| r.namespaced) {
            Some(ns) => map
                .range(namespace_range(ns))
                .map(|(_, o)| o.clone())
                .collect(),
            None => map.values().cloned().collect(),
        }
    }

    /// One page of a list: objects of `r` in `ns` for which `filter` holds, after `start` (a token
    /// from the previous page) and at the snapshot the token pins; at most `limit` (0: all).
    /// 410 Expired when the token's snapshot is older than the kept history.
    pub fn list_page(
        &self,
        r: &ResourceType,
        ns: Option<&str>,
        filter: &dyn Fn(&Value) -> bool,
        limit: usize,
        start: Option<&ContinueToken>,
    ) -> Result<ListPage, ApiError> {
        let inner = self.lock();
        let snapshot_rv = start.map_or(inner.rv, |t| t.rv);
        if snapshot_rv < inner.oldest_rv || snapshot_rv > inner.rv {
            return Err(ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. \
                 You can start a new list without the continue parameter.",
            ));
        }
        // The state at `snapshot_rv` is the current state with every later change undone.
        let mut undone: BTreeMap<&ObjectKey, Option<&Arc<Value>>> = BTreeMap::new();
        for change in inner
            .history
            .iter()
            .rev()
            .take_while(|c| c.rv > snapshot_rv)
        {
            if change.resource == r {
                undone.insert(&change.key, change.before.as_ref());
            }
        }
        let ns = ns.filter(|_| r.namespaced);
        let lower: Bound<ObjectKey> = match (start, ns) {
            (Some(t), _) => Bound::Excluded((t.namespace.clone(), t.name.clone())),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let empty = ObjectMap::new();
        let map = inner.objects.get(r).unwrap_or(&empty);
        let mut current = map.range((lower.clone(), Bound::Unbounded)).peekable();
        let mut overlay = undone
            .iter()
            .filter(|(k, _)| in_lower_bound(k, &lower))
            .map(|(k, v)| (*k, *v))
            .peekable();

        let mut items = Vec::new();
        let mut last_key: Option<ObjectKey> = None;
        let mut continue_token = None;
        loop {
            // Merge the current objects with the undone ones, in key order; an undone entry
            // (the object as it was, or None when it did not exist) replaces the current one.
            let next: Option<(&ObjectKey, Option<&Arc<Value>>)> =
                match (current.peek(), overlay.peek()) {
                    (None, None) => None,
                    (Some(_), None) => current.next().map(|(k, v)| (k, Some(v))),
                    (None, Some(_)) => overlay.next(),
                    (Some((ck, _)), Some((ok, _))) => {
                        if *ck < *ok {
                            current.next().map(|(k, v)| (k, Some(v)))
                        } else if *ck == *ok {
                            current.next();
                            overlay.next()
                        } else {
                            overlay.next()
                        }
                    }
                };
            let Some((k, obj)) = next else { break };
            if let Some(ns) = ns
                && k.0 != ns
            {
                if k.0.as_str() > ns {
                    break;
                }
                continue;
            }
            let Some(obj) = obj else { continue };
            if !filter(obj) {
                continue;
            }
            if limit > 0 && items.len() == limit {
                let (namespace, name) = last_key.take().unwrap_or_default();
                continue_token = Some(ContinueToken {
                    rv: snapshot_rv,
                    namespace,
                    name,
                });
                break;
            }
            items.push(Arc::clone(obj));
            last_key = Some(k.clone());
        }
        Ok(ListPage {
            items,
            resource_version: snapshot_rv,
            continue_token,
        })
    }

    /// Creates an object: sets uid, resourceVersion, creationTimestamp and generation 1, and a name
    /// from `metadata.generateName` when it has none. 409 AlreadyExists when the name is taken.
    pub fn create(&self, r: &ResourceType, mut obj: Value) -> Result<Value, ApiError> {
        let r = canonical(r);
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request is not an object",
            ));
        }
        let mut inner = self.lock();
        let ns = object_namespace(r, &obj);
        if meta_str(&obj, "name").is_none_or(str::is_empty) {
            match meta_str(&obj, "generateName").filter(|g| !g.is_empty()) {
                Some(prefix) => {
                    let prefix = prefix.to_string();
                    let name = loop {
                        let candidate = format!("{prefix}{}", random_suffix(5));
                        if inner.get(r, &key(r, ns.as_deref(), &candidate)).is_none() {
                            break candidate;
                        }
                    };
                    obj["metadata"]["name"] = json!(name);
                }
                None => {
                    return Err(ApiError::invalid(
                        r,
                        "",
                        "metadata.name",
                        "name or generateName is required",
                    ));
                }
            }
        }
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let k = key(r, ns.as_deref(), &name);
        if inner.get(r, &k).is_some() {
            return Err(ApiError::already_exists(r, &name));
        }
        let meta = &mut obj["metadata"];
        meta["uid"] = json!(new_uid());
        meta["creationTimestamp"] = json!(now());
        meta["generation"] = json!(1);
        if let Some(m) = meta.as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
        }
        match &ns {
            Some(ns) => meta["namespace"] = json!(ns),
            None => {
                if let Some(m) = meta.as_object_mut() {
                    m.remove("namespace");
                }
            }
        }
        obj["apiVersion"] = json!(r.api_version());
        obj["kind"] = json!(r.kind);
        Ok(self.write(&mut inner, r, k, WatchEventType::Added, None, obj))
    }

    /// Replaces an object's spec and metadata; its status is kept. 409 Conflict when
    /// `metadata.resourceVersion` is set and stale. Bumps generation when the spec changed.
    pub fn update(&self, r: &ResourceType, obj: Value) -> Result<Value, ApiError> {
        self.replace(r, obj, |old, new| {
            match old.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            };
        })
    }

    /// Replaces only an object's status; no generation bump. Conflict check as [`Store::update`].
    pub fn update_status(&self, r: &ResourceType, obj: Value) -> Result<Value, ApiError> {
        self.replace(r, obj, |old, new| {
            let status = new.get("status").cloned();
            *new = old.clone();
            match status {
                Some(status) => new["status"] = status,
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        })
    }

    fn replace(
        &self,
        r: &ResourceType,
        mut obj: Value,
        merge: impl FnOnce(&Value, &mut Value),
    ) -> Result<Value, ApiError> {
        let r = canonical(r);
        let ns = object_namespace(r, &obj);
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let mut inner = self.lock();
        let k = key(r, ns.as_deref(), &name);
        let old = inner
            .get(r, &k)
            .cloned()
            .ok_or_else(|| ApiError::not_found(r, &name))?;
        if let Some(rv) = meta_str(&obj, "resourceVersion").filter(|rv| !rv.is_empty())
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                r,
                &name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        merge(&old, &mut obj);
        Ok(self.write_update(&mut inner, r, k, old, obj))
    }

    /// Atomically reads, changes and writes an object (no conflict check). Bumps generation when the
    /// spec changed. 404 when it does not exist.
    pub fn modify(
        &self,
        r: &ResourceType,
        ns: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Result<Value, ApiError> {
        let r = canonical(r);
        let mut inner = self.lock();
        let k = key(r, ns, name);
        let old = inner
            .get(r, &k)
            .cloned()
            .ok_or_else(|| ApiError::not_found(r, name))?;
        let mut obj = (*old).clone();
        f(&mut obj);
        Ok(self.write_update(&mut inner, r, k, old, obj))
    }

    /// Like [`Store::modify`], but `f` may refuse the change with an error (nothing is written).
    pub fn try_modify(
        &self,
        r: &ResourceType,
        ns: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        let r = canonical(r);
        let mut inner = self.lock();
        let k = key(r, ns, name);
        let old = inner
            .get(r, &k)
            .cloned()
            .ok_or_else(|| ApiError::not_found(r, name))?;
        let mut obj = (*old).clone();
        f(&mut obj)?;
        Ok(self.write_update(&mut inner, r, k, old, obj))
    }

    /// Deletes an object and returns it as it was last. An object with finalizers is only marked
    /// (`deletionTimestamp`) and goes when its last finalizer is removed.
    pub fn delete(
        &self,
        r: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.delete_with(r, ns, name, &Preconditions::default())
    }

    /// [`Store::delete`] with preconditions: 409 Conflict when the uid or resourceVersion differ.
    pub fn delete_with(
        &self,
        r: &ResourceType,
        ns: Option<&str>,
        name: &str,
        pre: &Preconditions,
    ) -> Result<Value, ApiError> {
        let r = canonical(r);
        let mut inner = self.lock();
        let k = key(r, ns, name);
        let old = inner
            .get(r, &k)
            .cloned()
            .ok_or_else(|| ApiError::not_found(r, name))?;
        if let Some(uid) = &pre.uid
            && Some(uid.as_str()) != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                r,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&old, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &pre.resource_version
            && Some(rv.as_str()) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                r,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&old, "resourceVersion").unwrap_or_default()
                ),
            ));
        }
        let has_finalizers = old["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if old["metadata"].get("deletionTimestamp").is_some() {
                return Ok((*old).clone());
            }
            let mut obj = (*old).clone();
            obj["metadata"]["deletionTimestamp"] = json!(now());
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            return Ok(self.write(&mut inner, r, k, WatchEventType::Modified, Some(old), obj));
        }
        Ok(self.remove(&mut inner, r, k, old))
    }

    /// Receives every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    /// Starts a watch of `r` atomically with the store: the events to send first and a receiver of
    /// every later change. Without `since`, the first events are an ADDED for each current object
    /// (as a watch without resourceVersion starts); with it, the recorded changes after `since`.
    /// 410 Expired when `since` is older than the kept history.
    pub fn watch(
        &self,
        r: &ResourceType,
        since: Option<u64>,
    ) -> Result<(Vec<StoreEvent>, broadcast::Receiver<StoreEvent>), ApiError> {
        let r = canonical(r);
        let inner = self.lock();
        let receiver = self.events.subscribe();
        let first = match since {
            None => inner
                .objects
                .get(r)
                .map(|m| {
                    m.values()
                        .map(|o| StoreEvent {
                            kind: WatchEventType::Added,
                            resource: r,
                            object: (**o).clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Some(since) if since < inner.oldest_rv => {
                return Err(ApiError::expired(format!(
                    "too old resource version: {since} ({})",
                    inner.oldest_rv
                )));
            }
            Some(since) => inner
                .history
                .iter()
                .filter(|c| c.rv > since && c.resource == r)
                .map(|c| StoreEvent {
                    kind: c.kind,
                    resource: r,
                    object: (*c.after).clone(),
                })
                .collect(),
        };
        Ok((first, receiver))
    }

    /// Every namespace that holds an object.
    pub fn namespaces_in_use(&self) -> std::collections::BTreeSet<String> {
        let inner = self.lock();
        inner
            .objects
            .iter()
            .filter(|(r, _)| r.namespaced)
            .flat_map(|(_, map)| map.keys().map(|(ns, _)| ns.clone()))
            .collect()
    }

    /// The resourceVersion of the latest change.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    fn write_update(
        &self,
        inner: &mut Inner,
        r: &'static ResourceType,
        k: ObjectKey,
        old: Arc<Value>,
        mut obj: Value,
    ) -> Value {
        // Identity fields are the server's, whatever the writer sent.
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
        ] {
            match old["metadata"].get(field) {
                Some(v) => obj["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = obj["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        obj["apiVersion"] = json!(r.api_version());
        obj["kind"] = json!(r.kind);
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        let generation = if spec_changed(&old, &obj) {
            generation + 1
        } else {
            generation
        };
        obj["metadata"]["generation"] = json!(generation);
        let finalized = old["metadata"].get("deletionTimestamp").is_some()
            && obj["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty());
        if finalized {
            return self.remove(inner, r, k, old);
        }
        self.write(inner, r, k, WatchEventType::Modified, Some(old), obj)
    }

    fn write(
        &self,
        inner: &mut Inner,
        r: &'static ResourceType,
        k: ObjectKey,
        kind: WatchEventType,
        before: Option<Arc<Value>>,
        mut obj: Value,
    ) -> Value {
        inner.rv += 1;
        let rv = inner.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let after = Arc::new(obj);
        inner
            .objects
            .entry(r)
            .or_default()
            .insert(k.clone(), after.clone());
        inner.record(Change {
            rv,
            kind,
            resource: r,
            key: k,
            before,
            after: after.clone(),
        });
        let _ = self.events.send(StoreEvent {
            kind,
            resource: r,
            object: (*after).clone(),
        });
        (*after).clone()
    }

    fn remove(
        &self,
        inner: &mut Inner,
        r: &'static ResourceType,
        k: ObjectKey,
        old: Arc<Value>,
    ) -> Value {
        inner.rv += 1;
        let rv = inner.rv;
        if let Some(map) = inner.objects.get_mut(r) {
            map.remove(&k);
        }
        let mut gone = (*old).clone();
        gone["metadata"]["resourceVersion"] = json!(rv.to_string());
        let gone = Arc::new(gone);
        inner.record(Change {
            rv,
            kind: WatchEventType::Deleted,
            resource: r,
            key: k,
            before: Some(old),
            after: gone.clone(),
        });
        let _ = self.events.send(StoreEvent {
            kind: WatchEventType::Deleted,
            resource: r,
            object: (*gone).clone(),
        });
        (*gone).clone()
    }
}

impl Inner {
    fn get(&self, r: &ResourceType, k: &ObjectKey) -> Option<&Arc<Value>> {
        self.objects.get(r)?.get(k)
    }

    fn record(&mut self, change: Change) {
        self.history.push_back(change);
        self.trim_history();
    }

    fn trim_history(&mut self) {
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.oldest_rv = dropped.rv;
            }
        }
    }
}

/// The static entry for `r`, so that callers may pass copies.
fn canonical(r: &ResourceType) -> &'static ResourceType {
    RESOURCES.iter().find(|c| *c == r).unwrap_or_else(|| {
        panic!(
            "resource {}/{} is not one the store serves",
            r.group, r.plural
        )
    })
}

fn key(r: &ResourceType, ns: Option<&str>, name: &str) -> ObjectKey {
    let ns = if r.namespaced {
        ns.unwrap_or("default")
    } else {
        ""
    };
    (ns.to_string(), name.to_string())
}

fn namespace_range(ns: &str) -> (Bound<ObjectKey>, Bound<ObjectKey>) {
    // Keys of one namespace are ("ns", *); the next namespace in order starts with "ns\0".
    (
        Bound::Included((ns.to_string(), String::new())),
        Bound::Excluded((format!("{ns}\0"), String::new())),
    )
}

fn in_lower_bound(k: &ObjectKey, lower: &Bound<ObjectKey>) -> bool {
    match lower {
        Bound::Included(b) => k >= b,
        Bound::Excluded(b) => k > b,
        Bound::Unbounded => true,
    }
}

fn object_namespace(r: &ResourceType, obj: &Value) -> Option<String> {
    r.namespaced
        .then(|| meta_str(obj, "namespace").unwrap_or("default").to_string())
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn object_rv(obj: &Value) -> Option<u64> {
    meta_str(obj, "resourceVersion")?.parse().ok()
}

/// Whether anything but metadata and status differs: what makes the generation go up.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let ignored = ["metadata", "status", "apiVersion", "kind"];
    let fields = |v: &Value| -> Vec<(String, Value)> {
        v.as_object()
            .map(|m| {
                let mut f: Vec<_> = m
                    .iter()
                    .filter(|(k, _)| !ignored.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                f.sort_by(|a, b| a.0.cmp(&b.0));
                f
            })
            .unwrap_or_default()
    };
    fields(old) != fields(new)
}

fn fill_identity(obj: &mut Value) {
    let meta = &mut obj["metadata"];
    if meta.get("uid").and_then(Value::as_str).is_none() {
        meta["uid"] = json!(new_uid());
    }
    if meta
        .get("creationTimestamp")
        .and_then(Value::as_str)
        .is_none()
    {
        meta["creationTimestamp"] = json!(now());
    }
    if meta.get("generation").and_then(Value::as_i64).is_none() {
        meta["generation"] = json!(1);
    }
}

/// The current time as the API server writes timestamps (RFC 3339, seconds, UTC).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A random version-4 UUID.
pub fn new_uid() -> String {
    let hex: String = (0..32)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
        .collect();
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        ["8", "9", "a", "b"][fastrand::usize(0..4)],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The random suffix of `generateName`, from the alphabet the API server uses (no vowels).
pub fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..len)
        .map(|_| ALPHABET[fastrand::usize(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns"},
               "spec": {"containers": [{"name": "c", "image": "i"}]}})
    }

    fn pods() -> &'static ResourceType {
        resource_for_kind("v1", "Pod").unwrap()
    }

    #[test]
    fn pages_stay_consistent_while_the_store_changes() {
        let store = Store::new();
        for i in 0..10 {
            store.create(pods(), pod(&format!("p{i}"))).unwrap();
        }
        let first = store.list_page(pods(), None, &|_| true, 4, None).unwrap();
        assert_eq!(first.items.len(), 4);
        store.delete(pods(), Some("ns"), "p5").unwrap();
        store.create(pods(), pod("p55")).unwrap();
        store
            .modify(pods(), Some("ns"), "p7", |p| p["spec"]["x"] = json!(1))
            .unwrap();
        let token = first.continue_token.unwrap();
        let second = store
            .list_page(pods(), None, &|_| true, 100, Some(&token))
            .unwrap();
        let names: Vec<_> = second
            .items
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["p4", "p5", "p6", "p7", "p8", "p9"]);
        assert!(second.items[3]["spec"].get("x").is_none());
        assert!(second.continue_token.is_none());
    }

    #[test]
    fn continue_tokens_expire_with_the_history() {
        let store = Store::new();
        store.set_history_limit(3);
        for i in 0..5 {
            store.create(pods(), pod(&format!("p{i}"))).unwrap();
        }
        let first = store.list_page(pods(), None, &|_| true, 2, None).unwrap();
        // Three kept changes can undo three; the fourth loses the snapshot.
        for i in 0..4 {
            store
                .modify(pods(), Some("ns"), &format!("p{i}"), |p| {
                    p["spec"]["x"] = json!(1)
                })
                .unwrap();
        }
        let err = store
            .list_page(pods(), None, &|_| true, 2, first.continue_token.as_ref())
            .unwrap_err();
        assert_eq!(err.code, 410);
    }

    #[test]
    fn stale_update_conflicts_and_spec_change_bumps_generation() {
        let store = Store::new();
        let created = store.create(pods(), pod("a")).unwrap();
        let mut changed = created.clone();
        changed["spec"]["x"] = json!(1);
        let updated = store.update(pods(), changed.clone()).unwrap();
        assert_eq!(updated["metadata"]["generation"], 2);
        assert_eq!(store.update(pods(), changed).unwrap_err().code, 409);
        let mut labelled = updated.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        assert_eq!(
            store.update(pods(), labelled).unwrap()["metadata"]["generation"],
            2
        );
    }
}
