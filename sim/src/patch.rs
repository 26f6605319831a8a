//! The three patch types of the API: strategic merge (with the merge keys of the built-in types),
//! JSON merge (RFC 7386) and JSON patch (RFC 6902).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// A patch, by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    StrategicMerge,
    Merge,
    Json,
    /// Server-side apply; simulated as a JSON merge of the applied fields (no field ownership).
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        match content_type.split(';').next().unwrap_or_default().trim() {
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// Applies `body` (the raw request body) to `target`. 400 when the patch cannot be decoded,
/// 422 when it cannot be applied.
pub fn apply(patch_type: PatchType, target: &mut Value, body: &[u8]) -> Result<(), ApiError> {
    let decode_error =
        |e: &dyn std::fmt::Display| ApiError::bad_request(format!("error decoding patch: {e}"));
    match patch_type {
        PatchType::Json => {
            let patch: json_patch::Patch =
                serde_json::from_slice(body).map_err(|e| decode_error(&e))?;
            json_patch::patch(target, &patch)
                .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))
        }
        PatchType::Merge => {
            let patch: Value = serde_json::from_slice(body).map_err(|e| decode_error(&e))?;
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: a merge patch must be a JSON object",
                ));
            }
            json_patch::merge(target, &patch);
            Ok(())
        }
        PatchType::Apply => {
            let text = std::str::from_utf8(body).map_err(|e| decode_error(&e))?;
            let patch: Value = serde_saphyr::from_str(text).map_err(|e| decode_error(&e))?;
            json_patch::merge(target, &patch);
            Ok(())
        }
        PatchType::StrategicMerge => {
            let patch: Value = serde_json::from_slice(body).map_err(|e| decode_error(&e))?;
            let Value::Object(patch) = patch else {
                return Err(ApiError::bad_request(
                    "error decoding patch: a strategic merge patch must be a JSON object",
                ));
            };
            strategic_merge(target, &patch)
        }
    }
}

/// How a list field of the built-in types merges, by the field's name.
enum ListStrategy {
    /// Items are objects identified by this key; a patch item merges into the item with the same key.
    ByKey(&'static str),
    /// A list of scalars merged as a set (finalizers).
    Union,
    /// The patch's list replaces the object's.
    Replace,
}

fn list_strategy(field: &str, patch_items: &[Value]) -> ListStrategy {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => ListStrategy::ByKey("name"),
        "volumeMounts" => ListStrategy::ByKey("mountPath"),
        "volumeDevices" => ListStrategy::ByKey("devicePath"),
        "hostAliases" => ListStrategy::ByKey("ip"),
        "conditions" => ListStrategy::ByKey("type"),
        "ownerReferences" => ListStrategy::ByKey("uid"),
        "topologySpreadConstraints" => ListStrategy::ByKey("topologyKey"),
        "readinessGates" => ListStrategy::ByKey("conditionType"),
        // Container ports merge by containerPort, Service ports by port.
        "ports" if patch_items.iter().any(|p| p.get("containerPort").is_some()) => {
            ListStrategy::ByKey("containerPort")
        }
        "ports" => ListStrategy::ByKey("port"),
        "finalizers" => ListStrategy::Union,
        _ => ListStrategy::Replace,
    }
}

fn strategic_merge(target: &mut Value, patch: &Map<String, Value>) -> Result<(), ApiError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = Value::Object(without_directives(patch));
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return Ok(());
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown patch type: {other}"
            )));
        }
        None => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(object) = target else {
        unreachable!("target was made an object")
    };
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(remove)) =
                (object.get_mut(field), value.as_array())
            {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if key.starts_with('$') {
            continue; // $setElementOrder/…, $retainKeys: order and retention hints
        }
        match value {
            Value::Null => {
                object.remove(key);
            }
            Value::Object(sub) => {
                if sub.get("$patch").and_then(Value::as_str) == Some("delete") {
                    object.remove(key);
                } else {
                    strategic_merge(object.entry(key.clone()).or_insert(Value::Null), sub)?;
                }
            }
            Value::Array(items) => {
                let current = object
                    .entry(key.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                merge_list(key, current, items)?;
            }
            scalar => {
                object.insert(key.clone(), scalar.clone());
            }
        }
    }
    if let Some(retain) = patch.get("$retainKeys").and_then(Value::as_array) {
        object.retain(|k, _| retain.iter().any(|r| r.as_str() == Some(k)));
    }
    Ok(())
}

fn merge_list(field: &str, current: &mut Value, items: &[Value]) -> Result<(), ApiError> {
    let replace_all = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    let plain: Vec<Value> = items
        .iter()
        .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("replace"))
        .cloned()
        .collect();
    if replace_all || !current.is_array() {
        *current = Value::Array(plain.iter().map(strip).collect());
        return Ok(());
    }
    let Value::Array(list) = current else {
        unreachable!("checked to be an array")
    };
    match list_strategy(field, items) {
        ListStrategy::Replace => *list = plain.iter().map(strip).collect(),
        ListStrategy::Union => {
            for item in plain {
                if !list.contains(&item) {
                    list.push(item);
                }
            }
        }
        ListStrategy::ByKey(merge_key) => {
            for item in &plain {
                let Some(item_map) = item.as_object() else {
                    return Err(ApiError::bad_request(format!(
                        "unable to merge {field}: expected a list of objects with the merge key {merge_key}"
                    )));
                };
                let Some(id) = item_map.get(merge_key) else {
                    return Err(ApiError::bad_request(format!(
                        "map: {item} does not contain declared merge key: {merge_key}"
                    )));
                };
                let position = list
                    .iter()
                    .position(|existing| existing.get(merge_key) == Some(id));
                let delete = item_map.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(i), true) => {
                        list.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => strategic_merge(&mut list[i], item_map)?,
                    (None, false) => list.push(strip(item)),
                }
            }
        }
    }
    Ok(())
}

/// A patch value as it lands in the object: directives removed, nulls dropped.
fn strip(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(without_directives(map)),
        Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
        other => other.clone(),
    }
}

fn without_directives(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
        .map(|(k, v)| (k.clone(), strip(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(target: Value, patch: Value) -> Value {
        let mut target = target;
        apply(
            PatchType::StrategicMerge,
            &mut target,
            patch.to_string().as_bytes(),
        )
        .unwrap();
        target
    }

    #[test]
    fn containers_merge_by_name_and_env_by_name() {
        let pod = json!({"spec": {"containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "istio-proxy", "image": "proxy:1"}
        ]}});
        let out = smp(
            pod,
            json!({"spec": {"containers": [
                {"name": "istio-proxy", "image": "proxy:2"},
                {"name": "app", "env": [{"name": "B", "value": "3"}, {"name": "A", "$patch": "delete"}]}
            ]}}),
        );
        assert_eq!(out["spec"]["containers"][0]["image"], "a:1");
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([{"name": "B", "value": "3"}])
        );
        assert_eq!(out["spec"]["containers"][1]["image"], "proxy:2");
    }

    #[test]
    fn directives_and_nulls() {
        let obj = json!({"metadata": {"annotations": {"a": "1", "b": "2"}}, "spec": {"tolerations": [{"key": "x"}],
                          "template": {"a": 1, "b": 2}}});
        let out = smp(
            obj,
            json!({"metadata": {"annotations": {"a": null}}, "spec": {"tolerations": [{"key": "y"}],
                          "template": {"$patch": "replace", "c": 3}}}),
        );
        assert_eq!(out["metadata"]["annotations"], json!({"b": "2"}));
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "y"}]));
        assert_eq!(out["spec"]["template"], json!({"c": 3}));
        let out = smp(
            json!({"spec": {"volumes": [{"name": "a"}, {"name": "b"}]}}),
            json!({"spec": {"volumes": [{"$patch": "replace"}, {"name": "c"}]}}),
        );
        assert_eq!(out["spec"]["volumes"], json!([{"name": "c"}]));
    }

    #[test]
    fn json_patch_test_failure_is_422_and_garbage_is_400() {
        let mut obj = json!({"a": 1});
        let err = apply(
            PatchType::Json,
            &mut obj,
            br#"[{"op":"test","path":"/a","value":2}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        let err = apply(PatchType::Json, &mut obj, b"{nope").unwrap_err();
        assert_eq!(err.code, 400);
        apply(PatchType::Merge, &mut obj, br#"{"a":null,"b":{"c":1}}"#).unwrap();
        assert_eq!(obj, json!({"b": {"c": 1}}));
    }
}
