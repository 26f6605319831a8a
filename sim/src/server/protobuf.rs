//! Just enough of the Kubernetes protobuf encoding to read the request bodies that `kubectl`'s
//! typed commands send only as protobuf: `create namespace`, `create configmap`,
//! `create secret generic`, `create serviceaccount`, `create token` (TokenRequest), `auth can-i`
//! (SelfSubjectAccessReview) and `drain` (Eviction).
//! Answers are JSON, which clients decode by the response's Content-Type.

use base64::Engine;
use serde_json::{Map, Value, json};

/// The prefix of every Kubernetes protobuf body, before its `runtime.Unknown` envelope.
const MAGIC: &[u8] = b"k8s\0";

enum Wire<'a> {
    Varint(u64),
    Fixed,
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The fields of one message, in order; `None` when it is not valid protobuf.
fn fields(buf: &[u8]) -> Option<Vec<(u64, Wire<'_>)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let wire = match key & 7 {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            1 => {
                pos += 8;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let bytes = buf.get(pos..pos.checked_add(len)?)?;
                pos += len;
                Wire::Bytes(bytes)
            }
            5 => {
                pos += 4;
                Wire::Fixed
            }
            _ => return None,
        };
        out.push((key >> 3, wire));
    }
    (pos == buf.len()).then_some(out)
}

fn field(buf: &[u8], number: u64) -> Option<&[u8]> {
    fields(buf)?.into_iter().find_map(|(n, w)| match w {
        Wire::Bytes(b) if n == number => Some(b),
        _ => None,
    })
}

fn text(bytes: &[u8]) -> Value {
    json!(String::from_utf8_lossy(bytes))
}

/// String fields of a message by field number (1-based position in `names`).
fn strings(buf: &[u8], names: &[&str]) -> Option<Map<String, Value>> {
    let mut map = Map::new();
    for (number, wire) in fields(buf)? {
        let name = usize::try_from(number)
            .ok()
            .and_then(|n| names.get(n.wrapping_sub(1)));
        if let (Wire::Bytes(b), Some(name)) = (wire, name)
            && !name.is_empty()
        {
            map.insert(name.to_string(), text(b));
        }
    }
    Some(map)
}

/// A `map<string, string>` (or bytes, base64-encoded as JSON has them) field.
fn string_map(buf: &[u8], number: u64, base64_values: bool) -> Option<Map<String, Value>> {
    let mut map = Map::new();
    for (n, wire) in fields(buf)? {
        if let (true, Wire::Bytes(entry)) = (n == number, wire) {
            let key = field(entry, 1).unwrap_or_default();
            let value = field(entry, 2).unwrap_or_default();
            let value = if base64_values {
                json!(base64::engine::general_purpose::STANDARD.encode(value))
            } else {
                text(value)
            };
            map.insert(String::from_utf8_lossy(key).into_owned(), value);
        }
    }
    Some(map)
}

/// `ObjectMeta`: name, generateName, namespace, labels, annotations.
fn object_meta(buf: &[u8]) -> Option<Value> {
    let mut meta = strings(buf, &["name", "generateName", "namespace"])?;
    for (number, name) in [(11, "labels"), (12, "annotations")] {
        let map = string_map(buf, number, false)?;
        if !map.is_empty() {
            meta.insert(name.to_string(), Value::Object(map));
        }
    }
    Some(Value::Object(meta))
}

/// `TokenRequestSpec`: `audiences` (1) and `expirationSeconds` (4); `boundObjectRef` (3) is not read.
fn token_request_spec(buf: &[u8]) -> Option<Value> {
    let mut spec = Map::new();
    let mut audiences = Vec::new();
    for (number, wire) in fields(buf)? {
        match (number, wire) {
            (1, Wire::Bytes(audience)) => audiences.push(text(audience)),
            (4, Wire::Varint(seconds)) => {
                spec.insert("expirationSeconds".to_string(), json!(seconds as i64));
            }
            _ => {}
        }
    }
    if !audiences.is_empty() {
        spec.insert("audiences".to_string(), Value::Array(audiences));
    }
    Some(Value::Object(spec))
}

/// The JSON form of a protobuf request body, for the kinds listed in the module's documentation.
pub fn decode(body: &[u8]) -> Option<Value> {
    let envelope = body.strip_prefix(MAGIC)?;
    let type_meta = strings(
        field(envelope, 1).unwrap_or_default(),
        &["apiVersion", "kind"],
    )?;
    let raw = field(envelope, 2).unwrap_or_default();
    let kind = type_meta.get("kind")?.as_str()?.to_string();
    let mut obj = json!({
        "apiVersion": type_meta.get("apiVersion").cloned().unwrap_or(json!("v1")),
        "kind": kind,
        "metadata": object_meta(field(raw, 1).unwrap_or_default())?,
    });
    match kind.as_str() {
        "Namespace" | "Eviction" | "ServiceAccount" => {}
        "TokenRequest" => obj["spec"] = token_request_spec(field(raw, 2).unwrap_or_default())?,
        "ConfigMap" => {
            obj["data"] = Value::Object(string_map(raw, 2, false)?);
            obj["binaryData"] = Value::Object(string_map(raw, 3, true)?);
        }
        "Secret" => {
            obj["data"] = Value::Object(string_map(raw, 2, true)?);
            if let Some(t) = field(raw, 3) {
                obj["type"] = text(t);
            }
        }
        "SelfSubjectAccessReview" => {
            let spec = field(raw, 2).unwrap_or_default();
            obj["spec"] = if let Some(attributes) = field(spec, 1) {
                let names = [
                    "namespace",
                    "verb",
                    "group",
                    "version",
                    "resource",
                    "subresource",
                    "name",
                ];
                json!({"resourceAttributes": strings(attributes, &names)?})
            } else if let Some(attributes) = field(spec, 2) {
                json!({"nonResourceAttributes": strings(attributes, &["path", "verb"])?})
            } else {
                json!({})
            };
        }
        _ => return None,
    }
    Some(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_field(number: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    fn envelope(api_version: &[u8], kind: &[u8], raw: &[u8]) -> Vec<u8> {
        let type_meta = [bytes_field(1, api_version), bytes_field(2, kind)].concat();
        [MAGIC, &bytes_field(1, &type_meta), &bytes_field(2, raw)].concat()
    }

    #[test]
    fn reads_an_access_review() {
        let attributes = [
            bytes_field(1, b"shop"),
            bytes_field(2, b"create"),
            bytes_field(5, b"pods"),
            bytes_field(6, b"eviction"),
        ]
        .concat();
        let review = [
            bytes_field(1, b""),
            bytes_field(2, &bytes_field(1, &attributes)),
        ]
        .concat();
        let json = decode(&envelope(
            b"authorization.k8s.io/v1",
            b"SelfSubjectAccessReview",
            &review,
        ))
        .unwrap();
        assert_eq!(
            json["spec"]["resourceAttributes"],
            json!({"namespace": "shop", "verb": "create", "resource": "pods", "subresource": "eviction"})
        );
        assert!(decode(b"{}").is_none());
    }

    #[test]
    fn reads_the_token_request_of_kubectl_create_token() {
        // `kubectl create token sa1 -n ns1 --duration 2h --audience foo,bar`, as v1.32 sends it.
        let body = b"k8s\x00\n(\n\x18authentication.k8s.io/v1\x12\x0cTokenRequest\x12&\n\x10\n\x00\x12\x00\x1a\x00\"\x00*\x002\x008\x00B\x00\x12\x0c\n\x07foo,bar \xa08\x1a\x04\n\x00\x12\x00\x1a\x00\"\x00";
        let json = decode(body).unwrap();
        assert_eq!(json["kind"], "TokenRequest");
        assert_eq!(
            json["spec"],
            json!({"audiences": ["foo,bar"], "expirationSeconds": 7200})
        );
    }

    #[test]
    fn reads_a_config_map() {
        let label = [bytes_field(1, b"app"), bytes_field(2, b"web")].concat();
        let meta = [
            bytes_field(1, b"cfg"),
            bytes_field(3, b"shop"),
            bytes_field(11, &label),
        ]
        .concat();
        let entry = [bytes_field(1, b"a"), bytes_field(2, b"1")].concat();
        let raw = [bytes_field(1, &meta), bytes_field(2, &entry)].concat();
        let json = decode(&envelope(b"v1", b"ConfigMap", &raw)).unwrap();
        assert_eq!(
            json["metadata"],
            json!({"name": "cfg", "namespace": "shop", "labels": {"app": "web"}})
        );
        assert_eq!(json["data"], json!({"a": "1"}));
        assert!(decode(&envelope(b"apps/v1", b"Deployment", &raw)).is_none());
    }
}
