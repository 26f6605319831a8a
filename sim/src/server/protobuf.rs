//! Just enough of the Kubernetes protobuf encoding to read the one request body `kubectl` sends
//! only as protobuf and that this simulation answers: a `SelfSubjectAccessReview`
//! (`kubectl auth can-i`). Answers are JSON, which clients decode by the response's Content-Type.

use serde_json::{Map, Value, json};

/// The prefix of every Kubernetes protobuf body, before its `runtime.Unknown` envelope.
const MAGIC: &[u8] = b"k8s\0";

enum Wire<'a> {
    Varint,
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
            0 => {
                varint(buf, &mut pos)?;
                Wire::Varint
            }
            1 => {
                pos += 8;
                Wire::Varint
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let bytes = buf.get(pos..pos.checked_add(len)?)?;
                pos += len;
                Wire::Bytes(bytes)
            }
            5 => {
                pos += 4;
                Wire::Varint
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

/// The JSON form of a protobuf `SelfSubjectAccessReview` body.
pub fn access_review(body: &[u8]) -> Option<Value> {
    let envelope = body.strip_prefix(MAGIC)?;
    let review = field(envelope, 2)?; // runtime.Unknown.raw
    let spec = field(review, 2).unwrap_or_default();
    let mut spec_json = json!({});
    if let Some(attributes) = field(spec, 1) {
        // ResourceAttributes: namespace, verb, group, version, resource, subresource, name.
        let names = [
            "namespace",
            "verb",
            "group",
            "version",
            "resource",
            "subresource",
            "name",
        ];
        let mut map = Map::new();
        for (number, wire) in fields(attributes)? {
            if let (Wire::Bytes(b), Some(name)) =
                (wire, names.get((number as usize).wrapping_sub(1)))
            {
                map.insert(name.to_string(), json!(String::from_utf8_lossy(b)));
            }
        }
        spec_json["resourceAttributes"] = Value::Object(map);
    } else if let Some(attributes) = field(spec, 2) {
        let mut map = Map::new();
        for (number, wire) in fields(attributes)? {
            if let (Wire::Bytes(b), Some(name)) = (
                wire,
                ["path", "verb"].get((number as usize).wrapping_sub(1)),
            ) {
                map.insert(name.to_string(), json!(String::from_utf8_lossy(b)));
            }
        }
        spec_json["nonResourceAttributes"] = Value::Object(map);
    }
    Some(
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {}, "spec": spec_json}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_field(number: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn reads_resource_attributes() {
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
        let body = [MAGIC, &bytes_field(2, &review)].concat();
        let json = access_review(&body).unwrap();
        assert_eq!(
            json["spec"]["resourceAttributes"],
            json!({"namespace": "shop", "verb": "create", "resource": "pods", "subresource": "eviction"})
        );
        assert!(access_review(b"{}").is_none());
    }
}
