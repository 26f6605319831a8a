//! Reading and writing the common parts of Kubernetes objects held as JSON.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

pub fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn namespace(obj: &Value) -> Option<&str> {
    obj["metadata"]["namespace"].as_str()
}

pub fn uid(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or_default()
}

pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["labels"][key].as_str()
}

pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}

pub fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(1)
}

pub fn is_terminating(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

/// The object's `metadata.creationTimestamp`, if it has a readable one.
pub fn created_at(obj: &Value) -> Option<DateTime<Utc>> {
    parse_time(obj["metadata"]["creationTimestamp"].as_str()?)
}

pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A timestamp as the API server renders it: RFC 3339, whole seconds, `Z`.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn now() -> String {
    format_time(Utc::now())
}

/// Sets `obj.metadata.<field>.<key> = value`, creating the maps on the way.
pub fn set_meta_entry(obj: &mut Value, field: &str, key: &str, value: &str) {
    let map = ensure_object(&mut obj["metadata"][field]);
    map.insert(key.to_string(), Value::String(value.to_string()));
}

/// Turns `slot` into an object if it is not one, and returns its map.
pub fn ensure_object(slot: &mut Value) -> &mut Map<String, Value> {
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made an object")
}

/// Turns `slot` into an array if it is not one, and returns it.
pub fn ensure_array(slot: &mut Value) -> &mut Vec<Value> {
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut().expect("just made an array")
}

/// The `controller: true` owner reference of an object: (apiVersion, kind, name, uid).
pub fn controller_of(obj: &Value) -> Option<(&str, &str, &str, &str)> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find_map(|r| {
            (r["controller"] == true).then(|| {
                (
                    r["apiVersion"].as_str().unwrap_or_default(),
                    r["kind"].as_str().unwrap_or_default(),
                    r["name"].as_str().unwrap_or_default(),
                    r["uid"].as_str().unwrap_or_default(),
                )
            })
        })
}

/// The uids of all owners of an object.
pub fn owner_uids(obj: &Value) -> Vec<String> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r["uid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A controller owner reference pointing at `owner`.
pub fn controller_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether every label of `selector.matchLabels` (and each `matchExpressions` term) holds for
/// `labels`. An empty selector matches everything.
pub fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let has = |k: &str| labels.get(k).and_then(Value::as_str);
    if let Some(match_labels) = selector["matchLabels"].as_object()
        && !match_labels.iter().all(|(k, v)| has(k) == v.as_str())
    {
        return false;
    }
    let Some(expressions) = selector["matchExpressions"].as_array() else {
        return true;
    };
    expressions.iter().all(|e| {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match e["operator"].as_str().unwrap_or_default() {
            "In" => has(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => has(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => has(key).is_some(),
            "DoesNotExist" => has(key).is_none(),
            _ => false,
        }
    })
}

/// Resolves an int-or-percent field (`maxSurge`, `maxUnavailable`) against `total`. Percentages
/// round up when `round_up`, down otherwise, as the Kubernetes controllers do.
pub fn int_or_percent(value: &Value, total: i64, default: &str, round_up: bool) -> i64 {
    let value = if value.is_null() {
        json!(default)
    } else {
        value.clone()
    };
    match &value {
        Value::Number(n) => n.as_i64().unwrap_or(0).max(0),
        Value::String(s) => match s
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<i64>().ok())
        {
            Some(percent) => {
                let scaled = percent * total;
                if round_up {
                    (scaled + 99) / 100
                } else {
                    scaled / 100
                }
            }
            None => s.trim().parse::<i64>().unwrap_or(0).max(0),
        },
        _ => 0,
    }
}

/// A stable 32-bit FNV-1a hash of a JSON value, independent of the order of object keys.
pub fn hash_json(value: &Value) -> u32 {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    let mut hash: u32 = 0x811c_9dc5;
    for byte in canonical.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for key in keys {
                let _ = write!(out, "{key:?}:");
                write_canonical(&map[key], out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for item in items {
                write_canonical(item, out);
                out.push(',');
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Renders a hash the way Kubernetes renders pod-template hashes: the decimal digits mapped onto
/// an alphabet without vowels, so that names never spell words (`7b9d5c6f4d`).
pub fn short_hash(hash: u32) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// The pod-template hash of a template, without any `pod-template-hash` label it carries.
pub fn template_hash(template: &Value, collision_count: i64) -> String {
    let mut template = template.clone();
    for key in [
        "pod-template-hash",
        "rollouts-pod-template-hash",
        "controller-revision-hash",
    ] {
        if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
            labels.remove(key);
        }
    }
    let mut hash = hash_json(&template);
    if collision_count > 0 {
        hash = hash
            .wrapping_add(collision_count as u32)
            .wrapping_mul(0x0100_0193);
    }
    short_hash(hash)
}

/// Whether two pod templates are the same, ignoring the given hash label (as the Deployment
/// controller decides which ReplicaSet is current).
pub fn templates_equal_ignoring(a: &Value, b: &Value, hash_label: &str) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
            labels.remove(hash_label);
            if labels.is_empty() {
                t["metadata"].as_object_mut().map(|m| m.remove("labels"));
            }
        }
        t
    };
    strip(a) == strip(b)
}

/// The condition of `type_` in `status.conditions`, if any.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Sets a condition in `conditions`, keeping `lastTransitionTime` when the status is unchanged.
pub fn set_condition(conditions: &mut Vec<Value>, mut new: Value, now: &str) {
    match conditions.iter_mut().find(|c| c["type"] == new["type"]) {
        Some(old) => {
            if old["status"] == new["status"] && !old["lastTransitionTime"].is_null() {
                new["lastTransitionTime"] = old["lastTransitionTime"].clone();
            } else {
                new["lastTransitionTime"] = json!(now);
            }
            *old = new;
        }
        None => {
            new["lastTransitionTime"] = json!(now);
            conditions.push(new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_as_kubernetes_does() {
        assert_eq!(int_or_percent(&json!("25%"), 3, "25%", true), 1);
        assert_eq!(int_or_percent(&json!("25%"), 3, "25%", false), 0);
        assert_eq!(int_or_percent(&Value::Null, 8, "25%", false), 2);
        assert_eq!(int_or_percent(&json!(2), 8, "25%", false), 2);
    }

    #[test]
    fn hash_ignores_key_order_and_hash_label() {
        let a = json!({"metadata": {"labels": {"app": "x", "pod-template-hash": "abc"}}, "spec": {"a": 1, "b": 2}});
        let b = json!({"spec": {"b": 2, "a": 1}, "metadata": {"labels": {"app": "x"}}});
        assert_eq!(template_hash(&a, 0), template_hash(&b, 0));
        assert!(templates_equal_ignoring(&a, &b, "pod-template-hash"));
        assert!(
            short_hash(1234567890)
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        );
    }

    #[test]
    fn selectors() {
        let labels = json!({"app": "x", "tier": "web"});
        assert!(selector_matches(
            &json!({"matchLabels": {"app": "x"}}),
            &labels
        ));
        assert!(!selector_matches(
            &json!({"matchLabels": {"app": "y"}}),
            &labels
        ));
        let expr =
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]});
        assert!(selector_matches(&expr, &labels));
    }
}
