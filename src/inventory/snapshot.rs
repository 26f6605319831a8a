//! Reads a snapshot (`kind: List`, as `kubectl get -o json` prints it) without holding it.
//!
//! The file is read in large chunks. Each element of `items` is parsed straight from the chunk
//! into the slim [`Object`], in one pass over its bytes, and folded into
//! the inventory at once; an element the end of a chunk cuts is parsed again once the next
//! chunk is in. Only a broken element is scanned for its end (only quotes, backslashes and
//! braces matter, found with `memchr`), so that its error can name it and the field that broke.
//! Memory is one chunk plus the records, whatever the size of the file (DESIGN §6;
//! `benches/snapshot.rs` measures the time against parsing the JSON into nothing).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::model::Object;
use super::{Inventory, InventoryBuilder};
use crate::{Error, Result};

const CHUNK: usize = 1 << 20;
/// No Kubernetes object comes near this (etcd's limit is 1.5 MiB); a bigger item is a broken file.
const MAX_ITEM: usize = 64 << 20;

/// Reads the snapshot at `path` into the inventory `builder` starts.
pub fn read_file(path: &Path, builder: InventoryBuilder) -> Result<Inventory> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let source = path.display().to_string();
    let mut chunks = Chunks::new(file, &source, CHUNK);
    chunks.reread = Some(path);
    read_chunks(chunks, builder)
}

/// Reads a snapshot from any reader; `source` names it in error messages.
pub fn read(reader: impl Read, source: &str, builder: InventoryBuilder) -> Result<Inventory> {
    read_chunked(reader, source, builder, CHUNK)
}

/// [`read`] with the first chunk `chunk` bytes long (it grows for a larger item).
fn read_chunked(
    reader: impl Read,
    source: &str,
    builder: InventoryBuilder,
    chunk: usize,
) -> Result<Inventory> {
    read_chunks(Chunks::new(reader, source, chunk), builder)
}

fn read_chunks<R: Read>(mut chunks: Chunks<R>, mut builder: InventoryBuilder) -> Result<Inventory> {
    let source = chunks.source;
    let invalid = |detail: String| Error::InvalidSnapshot {
        file: source.to_string(),
        detail,
    };

    match chunks.skip_whitespace()? {
        Some(b'{') => chunks.advance(1),
        Some(_) => {
            return Err(invalid(
                "not a JSON object: a snapshot is a `kind: List`".into(),
            ));
        }
        None => return Err(invalid("the file is empty".into())),
    }
    let mut kind: Option<String> = None;
    let mut items_seen = false;
    let mut first = true;
    loop {
        match chunks.skip_whitespace()? {
            Some(b'}') => {
                chunks.advance(1);
                break;
            }
            Some(b',') if !first => chunks.advance(1),
            Some(_) if first => {}
            Some(other) => {
                return Err(invalid(format!(
                    "expected ',' or '}}' at byte {}, found {:?}",
                    chunks.offset(),
                    other as char
                )));
            }
            None => return Err(invalid("the file ends inside the top-level object".into())),
        }
        first = false;
        chunks.skip_whitespace()?;
        let key_range = chunks.next_value("a key of the top-level object")?;
        let key: String = serde_json::from_slice(chunks.slice(key_range))
            .map_err(|e| invalid(format!("top-level key: {e}")))?;
        match chunks.skip_whitespace()? {
            Some(b':') => chunks.advance(1),
            _ => return Err(invalid(format!("expected ':' after the key {key:?}"))),
        }
        match chunks.skip_whitespace()? {
            Some(b'[') if key == "items" => {
                chunks.advance(1);
                items_seen = true;
                read_items(&mut chunks, &mut builder, source)?;
            }
            Some(_) if key == "items" => return Err(invalid("`items` is not an array".into())),
            Some(_) => {
                let range = chunks.next_value(&key)?;
                if key == "kind" {
                    kind = Some(
                        serde_json::from_slice(chunks.slice(range))
                            .map_err(|e| invalid(format!("kind: {e}")))?,
                    );
                } else {
                    // apiVersion, metadata: checked for syntax only.
                    serde_json::from_slice::<IgnoredAny>(chunks.slice(range))
                        .map_err(|e| invalid(format!("{key}: {e}")))?;
                }
            }
            None => return Err(invalid(format!("the file ends after the key {key:?}"))),
        }
    }
    if chunks.skip_whitespace()?.is_some() {
        return Err(invalid(format!(
            "unexpected data after the List at byte {}",
            chunks.offset()
        )));
    }
    match kind.as_deref() {
        Some(k) if k.ends_with("List") => {}
        Some(k) => {
            return Err(invalid(format!(
                "kind is {k:?}; a snapshot is a `kind: List` (`kubectl get … -o json` or `istio-proxy-reset snapshot`)"
            )));
        }
        None => {
            return Err(invalid(
                "kind: missing; a snapshot is a `kind: List`".into(),
            ));
        }
    }
    if !items_seen {
        return Err(invalid("items: missing".into()));
    }
    Ok(builder.finish())
}

fn read_items<R: Read>(
    chunks: &mut Chunks<R>,
    builder: &mut InventoryBuilder,
    source: &str,
) -> Result<()> {
    let mut index = 0usize;
    loop {
        match chunks.skip_whitespace()? {
            Some(b']') => {
                chunks.advance(1);
                return Ok(());
            }
            Some(b',') if index > 0 => {
                chunks.advance(1);
                if chunks.skip_whitespace()? != Some(b'{') {
                    return Err(Error::InvalidSnapshot {
                        file: source.to_string(),
                        detail: format!(
                            "items[{index}]: expected an object at byte {}",
                            chunks.offset()
                        ),
                    });
                }
            }
            Some(b'{') if index == 0 => {}
            Some(other) if index > 0 => {
                return Err(Error::InvalidSnapshot {
                    file: source.to_string(),
                    detail: format!(
                        "expected ',' or ']' after items[{}] at byte {}, found {:?}",
                        index - 1,
                        chunks.offset(),
                        other as char
                    ),
                });
            }
            Some(other) => {
                return Err(Error::InvalidSnapshot {
                    file: source.to_string(),
                    detail: format!(
                        "items[{index}]: expected an object at byte {}, found {:?}",
                        chunks.offset(),
                        other as char
                    ),
                });
            }
            None => {
                return Err(Error::InvalidSnapshot {
                    file: source.to_string(),
                    detail: format!("the file ends inside `items`, after {index} items"),
                });
            }
        }
        let object = match chunks.parse_next::<Object>()? {
            Some(object) => object,
            None => {
                // Find where the broken item ends, then parse it again to say what broke.
                let origin = format!("items[{index}]");
                let range = chunks.next_value(&origin)?;
                let start = range.start;
                parse_item(chunks.slice(range)).map_err(|broken| Error::InvalidSnapshot {
                    file: source.to_string(),
                    detail: match broken.at {
                        Some(at) => format!(
                            "{origin}{} at {}",
                            broken.detail,
                            chunks.position(start + at)
                        ),
                        None => format!("{origin}{}", broken.detail),
                    },
                })?
            }
        };
        // Named only when the object is refused: no string is made per item.
        builder.add(object, format_args!("{source} items[{index}]"))?;
        index += 1;
    }
}

/// Why an item could not be read: what and where, as a byte index into the item.
struct Broken {
    detail: String,
    at: Option<usize>,
}

/// Parses one item; on failure says which object and which field, e.g.
/// ` (Pod shop/orders-1): spec.containers[0].image: invalid type: integer `5`, expected a string`,
/// and where in the item it broke (the caller says where that is in the file).
fn parse_item(bytes: &[u8]) -> std::result::Result<Object, Broken> {
    match serde_json::from_slice::<Object>(bytes) {
        Ok(object) => Ok(object),
        Err(_) => {
            // Parse again, slowly, only to name the field that failed.
            let mut deserializer = serde_json::Deserializer::from_slice(bytes);
            let error = match super::model::with_named_keys(|| {
                serde_path_to_error::deserialize::<_, Object>(&mut deserializer)
            }) {
                Ok(object) => return Ok(object),
                Err(error) => error,
            };
            let path = error.path().to_string();
            let inner = error.into_inner();
            let field = if path.is_empty() || path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            // serde_json counts lines and columns from the item's first byte, which is no
            // place an operator can find in the file: the position is given from the file's.
            let text = inner.to_string();
            let (message, at) = match text.rfind(" at line ") {
                Some(cut) if inner.line() > 0 => (
                    &text[..cut],
                    Some(index_of(bytes, inner.line(), inner.column())),
                ),
                _ => (text.as_str(), None),
            };
            Err(Broken {
                detail: format!("{}: {field}{message}", describe(bytes)),
                at,
            })
        }
    }
}

/// The byte index of serde_json's `line` (from 1) and `column` (bytes into the line) in `bytes`.
fn index_of(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        memchr::memchr_iter(b'\n', bytes)
            .nth(line - 2)
            .map_or(bytes.len(), |newline| newline + 1)
    };
    (line_start + column).min(bytes.len())
}

/// `" (Pod shop/orders-1)"` when the item is readable enough to say what it is.
fn describe(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    struct IdentMeta {
        namespace: Option<String>,
        name: Option<String>,
    }
    #[derive(Deserialize)]
    struct Lenient {
        #[serde(default)]
        kind: Option<IgnoredOr<String>>,
        #[serde(default)]
        metadata: Option<IgnoredOr<IdentMeta>>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IgnoredOr<T> {
        Value(T),
        Other(IgnoredAny),
    }
    let Ok(ident) = serde_json::from_slice::<Lenient>(bytes) else {
        return String::new();
    };
    let kind = match ident.kind {
        Some(IgnoredOr::Value(kind)) => kind,
        _ => "object".into(),
    };
    match ident.metadata {
        Some(IgnoredOr::Value(IdentMeta {
            namespace,
            name: Some(name),
        })) => match namespace {
            Some(ns) => format!(" ({kind} {ns}/{name})"),
            None => format!(" ({kind} {name})"),
        },
        _ => format!(" ({kind})"),
    }
}

/// A growing window over the input: `data[pos..end]` is read and not yet consumed.
struct Chunks<'s, R> {
    reader: R,
    source: &'s str,
    /// The file, to read again up to a broken item for its line (nothing is counted while
    /// reading: only an error asks).
    reread: Option<&'s Path>,
    data: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    consumed: u64,
}

impl<'s, R: Read> Chunks<'s, R> {
    fn new(reader: R, source: &'s str, chunk: usize) -> Self {
        Chunks {
            reader,
            source,
            reread: None,
            data: vec![0; chunk.max(1)],
            pos: 0,
            end: 0,
            eof: false,
            consumed: 0,
        }
    }

    fn offset(&self) -> u64 {
        self.consumed + self.pos as u64
    }

    /// `line L column C` of `data[index]`, counted from the start of the input as serde_json
    /// counts (columns in bytes); `byte N` when the bytes before the buffer cannot be read again.
    fn position(&self, index: usize) -> String {
        let offset = self.consumed + index as u64;
        // Lines before the buffer, and where the last of them ended (as a file offset).
        let before = if self.consumed == 0 {
            Some((0, None))
        } else {
            self.reread
                .and_then(|path| count_lines(File::open(path).ok()?, self.consumed))
        };
        let Some((mut lines, mut last_newline)) = before else {
            return format!("byte {offset}");
        };
        let head = &self.data[..index.min(self.end)];
        lines += memchr::memchr_iter(b'\n', head).count() as u64;
        if let Some(newline) = memchr::memrchr(b'\n', head) {
            last_newline = Some(self.consumed + newline as u64);
        }
        let column = offset - last_newline.map_or(0, |n| n + 1);
        format!("line {} column {column}", lines + 1)
    }

    fn advance(&mut self, n: usize) {
        self.pos += n;
    }

    fn slice(&self, range: std::ops::Range<usize>) -> &[u8] {
        &self.data[range]
    }

    /// Reads more input behind what is unconsumed; `false` at the end of the input.
    fn refill(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.data.copy_within(self.pos..self.end, 0);
            self.consumed += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.data.len() {
            if self.data.len() >= MAX_ITEM {
                return Err(Error::InvalidSnapshot {
                    file: self.source.to_string(),
                    detail: format!(
                        "a value at byte {} is larger than {} MiB",
                        self.offset(),
                        MAX_ITEM >> 20
                    ),
                });
            }
            self.data.resize(self.data.len() * 2, 0);
        }
        let before = self.end;
        while self.end < self.data.len() {
            let n = self
                .reader
                .read(&mut self.data[self.end..])
                .map_err(|source| Error::Io {
                    path: self.source.to_string(),
                    source,
                })?;
            if n == 0 {
                self.eof = true;
                break;
            }
            self.end += n;
        }
        Ok(self.end > before)
    }

    /// Skips white space (and a byte-order mark at the start); the next byte, if any.
    fn skip_whitespace(&mut self) -> Result<Option<u8>> {
        loop {
            while self.pos < self.end {
                match self.data[self.pos] {
                    b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                    0xEF if self.offset() == 0
                        && self.data[self.pos..self.end].starts_with(&[0xEF, 0xBB, 0xBF]) =>
                    {
                        self.pos += 3
                    }
                    byte => return Ok(Some(byte)),
                }
            }
            if !self.refill()? {
                return Ok(None);
            }
        }
    }

    /// Parses the value starting at the current byte straight from the buffer and consumes it:
    /// one pass over its bytes, no scan for its end first. A value cut by the end of the buffer
    /// is parsed again once more input is in (one value per chunk). `None`, consuming nothing,
    /// when the value is not valid; the caller finds out why.
    fn parse_next<T: serde::de::DeserializeOwned>(&mut self) -> Result<Option<T>> {
        loop {
            let mut values = serde_json::Deserializer::from_slice(&self.data[self.pos..self.end])
                .into_iter::<T>();
            match values.next() {
                Some(Ok(value)) => {
                    self.pos += values.byte_offset();
                    return Ok(Some(value));
                }
                Some(Err(error)) if error.is_eof() && !self.eof => {
                    if !self.refill()? {
                        return Ok(None);
                    }
                }
                _ => return Ok(None),
            }
        }
    }

    /// Consumes one JSON value starting at the current byte; its range in `data`.
    fn next_value(&mut self, what: &str) -> Result<std::ops::Range<usize>> {
        loop {
            if let Some(len) = value_len(&self.data[self.pos..self.end], self.eof) {
                let start = self.pos;
                self.pos += len;
                return Ok(start..start + len);
            }
            if !self.refill()? {
                return Err(Error::InvalidSnapshot {
                    file: self.source.to_string(),
                    detail: format!("the file ends inside {what}"),
                });
            }
        }
    }
}

/// The newlines in the first `len` bytes of `reader`, and the offset of the last; `None` when
/// there are fewer bytes than that.
fn count_lines(mut reader: impl Read, len: u64) -> Option<(u64, Option<u64>)> {
    let mut buffer = vec![0; CHUNK];
    let (mut read, mut lines, mut last) = (0u64, 0u64, None);
    while read < len {
        let want = buffer.len().min((len - read) as usize);
        let n = reader.read(&mut buffer[..want]).ok()?;
        if n == 0 {
            return None;
        }
        lines += memchr::memchr_iter(b'\n', &buffer[..n]).count() as u64;
        if let Some(newline) = memchr::memrchr(b'\n', &buffer[..n]) {
            last = Some(read + newline as u64);
        }
        read += n as u64;
    }
    Some((lines, last))
}

/// The length of the JSON value at the start of `bytes`, or `None` when it does not end
/// within them. Only finds the end: the value's syntax is checked when it is parsed.
fn value_len(bytes: &[u8], at_eof: bool) -> Option<usize> {
    match *bytes.first()? {
        b'"' => string_end(bytes, 1),
        b'{' | b'[' => {
            let (open, close) = if bytes[0] == b'{' {
                (b'{', b'}')
            } else {
                (b'[', b']')
            };
            // Only the outer bracket pair and strings matter: inner brackets balance.
            let mut depth = 0usize;
            let mut i = 0;
            loop {
                let found = memchr::memchr3(b'"', open, close, &bytes[i..])? + i;
                match bytes[found] {
                    b'"' => i = string_end(bytes, found + 1)?,
                    b if b == open => {
                        depth += 1;
                        i = found + 1;
                    }
                    _ => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(found + 1);
                        }
                        i = found + 1;
                    }
                }
            }
        }
        _ => {
            // A scalar ends at a delimiter; at the end of input it ends there.
            match bytes
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                Some(0) => Some(1),
                Some(n) => Some(n),
                None if at_eof => Some(bytes.len()),
                None => None,
            }
        }
    }
}

/// The index just past the closing quote of a string whose body starts at `i`.
fn string_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let found = memchr::memchr2(b'"', b'\\', bytes.get(i..)?)? + i;
        if bytes[found] == b'\\' {
            i = found + 2;
        } else {
            return Some(found + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(text: &str) -> Result<Inventory> {
        read(text.as_bytes(), "test.json", InventoryBuilder::new())
    }

    /// A reader that hands out one byte at a time, to cross every chunk boundary.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    const LIST: &str = r#"{"apiVersion":"v1","items":[
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"n","annotations":{"x":"quote \" and brace { and ]"}},
         "spec":{"containers":[{"name":"istio-proxy","image":"istio/proxyv2:1.23.2"}]},"status":{"phase":"Running"}},
        {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}},
        {"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"n"},"spec":{"ports":[{"port":80}]}}
      ],"kind":"List","metadata":{"resourceVersion":""}}"#;

    #[test]
    fn reads_items_in_any_chunking() {
        let whole = read_str(LIST).unwrap();
        let trickled = read(Trickle(LIST.as_bytes()), "t", InventoryBuilder::new()).unwrap();
        for inventory in [whole, trickled] {
            assert_eq!(inventory.pods_total, 1);
            assert_eq!(inventory.pod_records.len(), 1);
            assert!(inventory.namespaces.contains_key("n"));
            assert_eq!(inventory.ignored_kinds.get("Service"), Some(&1));
        }
    }

    #[test]
    fn items_cut_by_the_end_of_a_chunk_are_read_whole() {
        let whole = read_str(LIST).unwrap();
        for chunk in [1, 7, 64, 200, 4096] {
            let inventory =
                read_chunked(LIST.as_bytes(), "t", InventoryBuilder::new(), chunk).unwrap();
            assert_eq!(inventory.pods_total, whole.pods_total, "chunk {chunk}");
            assert_eq!(inventory.pod_records.len(), 1, "chunk {chunk}");
            assert!(inventory.namespaces.contains_key("n"), "chunk {chunk}");
            assert_eq!(inventory.ignored_kinds.get("Service"), Some(&1));
        }
        // A broken item is still named, wherever the chunks end.
        let broken = r#"{"kind":"List","items":[{"kind":"Namespace","metadata":{"name":"a"}},
            {"kind":"Pod","metadata":{"name":"p","namespace":"n"},"spec":{"containers":[{"name":"c","image":5}]}}]}"#;
        for chunk in [1, 16, 100, 4096] {
            let error = read_chunked(broken.as_bytes(), "t", InventoryBuilder::new(), chunk)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("items[1] (Pod n/p): spec.containers[0].image"),
                "chunk {chunk}: {error}"
            );
        }
    }

    #[test]
    fn null_bodies_are_read_as_absent() {
        let text = r#"{"kind":"List","items":[
            {"kind":"ConfigMap","metadata":{"name":"unrelated","namespace":"n"},"data":null},
            {"kind":"ConfigMap","metadata":{"name":"istio-sidecar-injector","namespace":"n"},"data":null},
            {"kind":"Deployment","metadata":{"name":"d","namespace":"n"},"spec":null,"status":null},
            {"kind":"StatefulSet","metadata":{"name":"s","namespace":"n"},"spec":{"template":{"metadata":null,"spec":null}}},
            {"spec":null,"status":null,"kind":"DaemonSet","metadata":{"name":"ds","namespace":"n"}},
            {"kind":"Pod","metadata":{"name":"p","namespace":"n"},"spec":null,"status":null},
            {"data":null,"kind":"ConfigMap","metadata":{"name":"late","namespace":"n"}}
        ]}"#;
        let inventory = read_str(text).unwrap();
        assert_eq!(inventory.workloads.len(), 3);
        assert_eq!(inventory.injectors.len(), 1);
        assert_eq!(inventory.injectors[0].values, None);
        assert_eq!(inventory.pods_total, 1);
    }

    #[test]
    fn a_broken_item_is_placed_by_the_files_line_and_column() {
        // The broken value ends on line 4 of the file, 47 bytes in; its item starts on line 3.
        let text = "{\"kind\":\"List\",\"items\":[\n  {\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}},\n  {\"kind\":\"Pod\",\n   \"spec\": {\"containers\":[{\"name\":\"c\",\"image\":5}]},\n   \"metadata\":{\"name\":\"p\",\"namespace\":\"n\"}}]}";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        std::fs::write(&path, text).unwrap();
        let from_file = read_file(&path, InventoryBuilder::new())
            .unwrap_err()
            .to_string();
        assert!(
            from_file.contains(
                "items[1] (Pod n/p): spec.containers[0].image: invalid type: integer `5`"
            ),
            "{from_file}"
        );
        assert!(from_file.ends_with(" at line 4 column 47"), "{from_file}");
        // Whatever the chunks: the first chunk is kept in memory, later ones are read again.
        for chunk in [1, 16, 4096] {
            let error = read_chunked(text.as_bytes(), "t", InventoryBuilder::new(), chunk)
                .unwrap_err()
                .to_string();
            let at_line = error.ends_with(" at line 4 column 47");
            let at_byte = error.contains(" at byte ");
            assert!(at_line || at_byte, "chunk {chunk}: {error}");
            assert!(!error.contains("line 2 column"), "chunk {chunk}: {error}");
        }
        let mut chunks = Chunks::new(File::open(&path).unwrap(), "t", 16);
        chunks.reread = Some(&path);
        let error = read_chunks(chunks, InventoryBuilder::new())
            .unwrap_err()
            .to_string();
        assert!(error.ends_with(" at line 4 column 47"), "{error}");
    }

    #[test]
    fn finds_value_ends() {
        assert_eq!(value_len(br#""a\"b" rest"#, false), Some(6));
        assert_eq!(value_len(br#"{"a":{"b":"}"}} ,"#, false), Some(15));
        assert_eq!(value_len(br#"[1,[2],"]"],"#, false), Some(11));
        assert_eq!(value_len(br#"{"a":"#, false), None);
        assert_eq!(value_len(b"123,", false), Some(3));
        assert_eq!(value_len(b"123", false), None);
        assert_eq!(value_len(b"123", true), Some(3));
        assert_eq!(value_len(br#""\\"#, false), None);
    }

    #[test]
    fn malformed_files_get_clear_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("[]", "not a JSON object"),
            ("not json", "not a JSON object"),
            (r#"{"kind":"List"}"#, "items: missing"),
            (r#"{"kind":"Pod","items":[]}"#, "kind is \"Pod\""),
            (r#"{"items":[]}"#, "kind: missing"),
            (r#"{"kind":"List","items":{}}"#, "not an array"),
            (
                r#"{"kind":"List","items":[{"kind":"Pod","metadata":{"name":"a""#,
                "ends inside items[0]",
            ),
            (
                r#"{"kind":"List","items":[1]}"#,
                "items[0]: expected an object",
            ),
            (
                r#"{"kind":"List","items":[{"metadata":{"name":"x"}}]}"#,
                "missing field `kind`",
            ),
            (
                r#"{"kind":"List","items":[{"kind":"Pod","metadata":{"name":"p","namespace":"n"},"spec":{"containers":[{"name":"c","image":5}]}}]}"#,
                "items[0] (Pod n/p): spec.containers[0].image: invalid type: integer `5`",
            ),
            (
                r#"{"kind":"List","items":[{"kind":"Pod","metadata":{"namespace":"n"}}]}"#,
                "metadata.name: missing",
            ),
            (
                r#"{"kind":"List","items":[]} trailing"#,
                "unexpected data after the List",
            ),
            (
                r#"{"kind":"List","items":[{"kind":"Namespace","metadata":{"name":"a"}} {"kind":"Pod"}]}"#,
                "expected ',' or ']' after items[0]",
            ),
            (
                r#"{"kind":"List","items":[{"kind":"Namespace","metadata":{"name":"a"}},]}"#,
                "items[1]: expected an object",
            ),
        ];
        for (text, expected) in cases {
            let error = read_str(text).expect_err(text).to_string();
            assert!(
                error.contains(expected),
                "{text}\n  gave: {error}\n  wanted: {expected}"
            );
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes, and arbitrary mutations of a valid snapshot: an error or an
        /// inventory, never a panic.
        #[test]
        fn no_input_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = read(bytes.as_slice(), "fuzz", InventoryBuilder::new());
        }

        #[test]
        fn no_mutation_of_a_snapshot_panics(
            position in 0usize..LIST.len(),
            cut in proptest::bool::ANY,
            byte in proptest::sample::select(b"{}[]\",:0a \x00-\xff".to_vec()),
        ) {
            let mut bytes = LIST.as_bytes().to_vec();
            if cut {
                bytes.truncate(position);
            } else {
                bytes[position] = byte;
            }
            let _ = read(bytes.as_slice(), "fuzz", InventoryBuilder::new());
        }

        #[test]
        fn items_of_any_shape_never_panic(item in arbitrary_json(3)) {
            let text = format!(r#"{{"kind":"List","items":[{item}]}}"#);
            let _ = read(text.as_bytes(), "fuzz", InventoryBuilder::new());
        }
    }

    /// JSON values biased towards the keys an object of the inventory has.
    fn arbitrary_json(depth: u32) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            "[a-zA-Z0-9:/._-]{0,12}".prop_map(|s| format!("{s:?}")),
        ];
        leaf.prop_recursive(depth, 64, 6, |inner| {
            let key = proptest::sample::select(vec![
                "kind",
                "apiVersion",
                "metadata",
                "name",
                "namespace",
                "spec",
                "status",
                "containers",
                "initContainers",
                "image",
                "phase",
                "conditions",
                "labels",
                "annotations",
                "ownerReferences",
                "controller",
                "data",
                "values",
                "x",
            ]);
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                proptest::collection::vec((key, inner), 0..5).prop_map(|fields| {
                    let body: Vec<String> =
                        fields.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }

    #[test]
    fn non_utf8_is_an_error_not_a_panic() {
        let mut bytes = br#"{"kind":"List","items":[{"kind":"Pod","metadata":{"name":""#.to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(br#"","namespace":"n"}}]}"#);
        let error = read(bytes.as_slice(), "t", InventoryBuilder::new())
            .unwrap_err()
            .to_string();
        assert!(error.contains("items[0]"), "{error}");
    }
}
