//! What a revision injects (DESIGN §2.2.3), read from its injector ConfigMap's `data.values`
//! and istiod: the image, the proxy's resources, Istio CNI, native sidecars; and what a given
//! pod gets of it once its own annotations are applied.

use serde_json::Value;

use crate::quantity;

/// The pod annotation that overrides the revision's native-sidecar setting.
pub const NATIVE_SIDECAR_ANNOTATION: &str = "sidecar.istio.io/nativeSidecar";
/// The pod annotations that replace the revision's proxy resources: each field they give, and
/// no other (an absent one is unset).
pub const RESOURCE_ANNOTATIONS: [(&str, Field); 4] = [
    ("sidecar.istio.io/proxyCPU", Field::RequestsCpu),
    ("sidecar.istio.io/proxyMemory", Field::RequestsMemory),
    ("sidecar.istio.io/proxyCPULimit", Field::LimitsCpu),
    ("sidecar.istio.io/proxyMemoryLimit", Field::LimitsMemory),
];
/// The init container that sets up traffic redirection without Istio CNI.
pub const INIT_CONTAINER: &str = "istio-init";
/// The init container that checks CNI's redirection, with Istio CNI.
pub const VALIDATION_CONTAINER: &str = "istio-validation";

/// One of the four resource fields of the proxy container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    RequestsCpu,
    RequestsMemory,
    LimitsCpu,
    LimitsMemory,
}

impl Field {
    pub const ALL: [Field; 4] = [
        Field::RequestsCpu,
        Field::RequestsMemory,
        Field::LimitsCpu,
        Field::LimitsMemory,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Field::RequestsCpu => "requests.cpu",
            Field::RequestsMemory => "requests.memory",
            Field::LimitsCpu => "limits.cpu",
            Field::LimitsMemory => "limits.memory",
        }
    }
}

/// The proxy container's cpu and memory requests and limits, as written (quantities).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub requests_cpu: Option<String>,
    pub requests_memory: Option<String>,
    pub limits_cpu: Option<String>,
    pub limits_memory: Option<String>,
}

impl Resources {
    pub fn get(&self, field: Field) -> Option<&str> {
        match field {
            Field::RequestsCpu => self.requests_cpu.as_deref(),
            Field::RequestsMemory => self.requests_memory.as_deref(),
            Field::LimitsCpu => self.limits_cpu.as_deref(),
            Field::LimitsMemory => self.limits_memory.as_deref(),
        }
    }

    fn slot(&mut self, field: Field) -> &mut Option<String> {
        match field {
            Field::RequestsCpu => &mut self.requests_cpu,
            Field::RequestsMemory => &mut self.requests_memory,
            Field::LimitsCpu => &mut self.limits_cpu,
            Field::LimitsMemory => &mut self.limits_memory,
        }
    }

    /// A container's `resources` object (`{requests: {cpu, memory}, limits: {…}}`).
    pub fn from_json(resources: &Value) -> Resources {
        let mut read = Resources::default();
        for field in Field::ALL {
            let (group, name) = field.path().split_once('.').expect("group.name");
            *read.slot(field) = quantity_text(&resources[group][name]);
        }
        read
    }

    /// As a container's `resources` object.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::json!({});
        for field in Field::ALL {
            if let Some(value) = self.get(field) {
                let (group, name) = field.path().split_once('.').expect("group.name");
                out[group][name] = Value::String(value.to_string());
            }
        }
        out
    }

    /// As the API server stores them: a request left unset takes its limit.
    pub fn defaulted(mut self) -> Resources {
        for (request, limit) in [
            (Field::RequestsCpu, Field::LimitsCpu),
            (Field::RequestsMemory, Field::LimitsMemory),
        ] {
            if self.get(request).is_none() {
                *self.slot(request) = self.get(limit).map(str::to_string);
            }
        }
        self
    }

    /// The fields whose amounts differ (`100m` and `0.1` do not), as `limits.cpu 2 → 1`.
    pub fn differences(&self, target: &Resources) -> Vec<String> {
        Field::ALL
            .into_iter()
            .filter_map(|field| {
                let (have, want) = (self.get(field), target.get(field));
                let same = match (have, want) {
                    (None, None) => true,
                    (Some(a), Some(b)) => quantity::same(a, b),
                    _ => false,
                };
                (!same).then(|| {
                    format!(
                        "{} {} → {}",
                        field.path(),
                        have.unwrap_or("unset"),
                        want.unwrap_or("unset")
                    )
                })
            })
            .collect()
    }
}

/// A quantity in values may be a number (`cpu: 2`).
fn quantity_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What a revision's injector puts into pods, as far as its values say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevisionProxy {
    /// `global.proxy.resources`; `None` when the values do not say.
    pub resources: Option<Resources>,
    /// Istio CNI: `pilot.cni.enabled`, else (before 1.24) `istio_cni.enabled`.
    pub cni: Option<bool>,
    /// `pilot.env.ENABLE_NATIVE_SIDECARS`, else istiod's env of that name; `auto` is not known.
    pub native_sidecars: Option<bool>,
}

impl RevisionProxy {
    /// Reads `data.values`; `istiod_native` is the `ENABLE_NATIVE_SIDECARS` env of istiod's
    /// `discovery` container, when known.
    pub fn from_values(values: &Value, istiod_native: Option<&str>) -> RevisionProxy {
        let resources = &values["global"]["proxy"]["resources"];
        // `istio_cni` only where `pilot.cni` is not set: releases from 1.24 read `pilot.cni`
        // alone, and a leftover `istio_cni` must not turn CNI on for them.
        let cni = values["pilot"]["cni"]["enabled"]
            .as_bool()
            .or_else(|| values["istio_cni"]["enabled"].as_bool());
        let native = match &values["pilot"]["env"]["ENABLE_NATIVE_SIDECARS"] {
            Value::Bool(b) => Some(*b),
            Value::String(s) => flag(s),
            _ => istiod_native.and_then(flag),
        };
        RevisionProxy {
            resources: resources
                .is_object()
                .then(|| Resources::from_json(resources)),
            cni,
            native_sidecars: native,
        }
    }

    /// What a pod with these annotations gets.
    pub fn for_pod<'a>(&self, annotation: impl Fn(&str) -> Option<&'a str>) -> PodProxy {
        let annotated: Vec<(Field, &str)> = RESOURCE_ANNOTATIONS
            .iter()
            .filter_map(|(key, field)| annotation(key).map(|v| (*field, v)))
            .collect();
        let resources = if annotated.is_empty() {
            self.resources.clone()
        } else {
            let mut resources = Resources::default();
            for (field, value) in annotated {
                *resources.slot(field) = Some(value.to_string());
            }
            Some(resources)
        };
        // The annotation overrides the revision. Istio's template asks whether it is other
        // than exactly `false`, so any other value (`False`, `yes`) means native.
        let native = match annotation(NATIVE_SIDECAR_ANNOTATION) {
            Some(value) => Some(value != "false"),
            None => self.native_sidecars,
        };
        PodProxy {
            resources: resources.map(Resources::defaulted),
            cni: self.cni,
            native_sidecar: native,
        }
    }
}

/// What one pod gets from its target revision: each part `None` when not known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodProxy {
    pub resources: Option<Resources>,
    pub cni: Option<bool>,
    pub native_sidecar: Option<bool>,
}

impl PodProxy {
    /// The init container injected beside the proxy.
    pub fn init_container(&self) -> &'static str {
        if self.cni == Some(true) {
            VALIDATION_CONTAINER
        } else {
            INIT_CONTAINER
        }
    }
}

/// `"true"` / `"false"` (any case); anything else (`auto`) says nothing.
fn flag(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The image the injector puts into pods, as Istio's template builds it: `proxy.image` when it
/// is a full reference, else `hub/proxy.image:tag[-variant]`. `Err` names the missing field.
pub fn image(values: &Value) -> Result<String, String> {
    let global = &values["global"];
    let image = global["proxy"]["image"].as_str().unwrap_or("proxyv2");
    if image.contains('/') {
        return Ok(image.to_string());
    }
    let hub = global["hub"]
        .as_str()
        .ok_or("data.values: global.hub: missing")?;
    let tag = match &global["tag"] {
        Value::String(tag) => tag.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err("data.values: global.tag: missing".into()),
    };
    // A tag that already ends in the variant (`1.24.1-distroless`) does not get it twice.
    let variant = global["variant"]
        .as_str()
        .filter(|v| !v.is_empty() && !tag.ends_with(&format!("-{v}")))
        .map(|v| format!("-{v}"))
        .unwrap_or_default();
    Ok(format!(
        "{}/{image}:{tag}{variant}",
        hub.trim_end_matches('/')
    ))
}
