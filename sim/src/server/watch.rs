//! Watch streams: newline-delimited `{"type": …, "object": …}` events over a chunked response.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::table;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{ResourceType, StoreEvent, WatchEventType};

/// What one watch selects and how it is delivered.
pub struct WatchSpec {
    pub resource: &'static ResourceType,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub bookmarks: bool,
    pub bookmark_interval: Duration,
    pub timeout: Duration,
    /// Render each object as a one-row Table (`kubectl get --watch`), with this `includeObject`.
    pub table: Option<String>,
    /// Chaos: end the stream with an error this long after it started.
    pub cut_after: Option<Duration>,
    /// The resourceVersion everything before which has been delivered (for bookmarks).
    pub start_rv: u64,
    /// `sendInitialEvents`: mark the end of the initial ADDED events with a BOOKMARK.
    pub initial_events_end: bool,
    /// Objects (namespace, name) the client already knows, for a watch resumed from a version.
    pub visible: HashSet<(String, String)>,
}

impl WatchSpec {
    fn matches(&self, obj: &Value) -> bool {
        let in_namespace = match &self.namespace {
            Some(ns) => obj["metadata"]["namespace"].as_str() == Some(ns),
            None => true,
        };
        in_namespace && self.labels.matches(obj) && self.fields.matches(obj)
    }

    fn line(&self, kind: &str, obj: &Value) -> Bytes {
        let object = match &self.table {
            Some(include) if kind != "BOOKMARK" => {
                let meta = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
                table::render(self.resource, std::slice::from_ref(obj), meta, include)
            }
            _ => obj.clone(),
        };
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

type Chunk = Result<Bytes, std::io::Error>;

/// The response body of a watch: `first` events, then live ones from `live`.
pub fn stream(
    spec: WatchSpec,
    first: Vec<StoreEvent>,
    live: broadcast::Receiver<StoreEvent>,
) -> Body {
    let (tx, rx) = mpsc::channel::<Chunk>(256);
    tokio::spawn(run(Arc::new(spec), first, live, tx));
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

async fn run(
    spec: Arc<WatchSpec>,
    first: Vec<StoreEvent>,
    mut live: broadcast::Receiver<StoreEvent>,
    tx: mpsc::Sender<Chunk>,
) {
    // Keys the client has been told exist, so that an object leaving the selection is a DELETED
    // and one entering it an ADDED, as the real watch cache reports them.
    let mut visible = spec.visible.clone();
    let mut delivered_rv = spec.start_rv;
    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let cut = tokio::time::sleep(spec.cut_after.unwrap_or(Duration::from_secs(365 * 86_400)));
    tokio::pin!(cut);
    let mut bookmarks = tokio::time::interval(spec.bookmark_interval);
    bookmarks.reset();

    for event in first {
        delivered_rv = delivered_rv.max(event.resource_version());
        if let Some(line) = translate(&spec, &mut visible, &event)
            && tx.send(Ok(line)).await.is_err()
        {
            return;
        }
    }
    if spec.initial_events_end {
        let bookmark = json!({"kind": spec.resource.kind, "apiVersion": spec.resource.api_version(),
                              "metadata": {"resourceVersion": delivered_rv.to_string(),
                                           "annotations": {"k8s.io/initial-events-end": "true"}}});
        if tx.send(Ok(spec.line("BOOKMARK", &bookmark))).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            received = live.recv() => match received {
                Ok(event) => {
                    if event.resource != spec.resource {
                        continue;
                    }
                    delivered_rv = delivered_rv.max(event.resource_version());
                    if let Some(line) = translate(&spec, &mut visible, &event)
                        && tx.send(Ok(line)).await.is_err()
                    {
                        return;
                    }
                }
                // A client too slow for the broadcast re-watches from its last resourceVersion.
                Err(_) => return,
            },
            _ = bookmarks.tick(), if spec.bookmarks => {
                let bookmark = json!({"kind": spec.resource.kind, "apiVersion": spec.resource.api_version(),
                                      "metadata": {"resourceVersion": delivered_rv.to_string()}});
                if tx.send(Ok(spec.line("BOOKMARK", &bookmark))).await.is_err() {
                    return;
                }
            }
            _ = &mut deadline => return,
            _ = &mut cut => {
                let _ = tx.send(Err(std::io::Error::other("watch cut by chaos"))).await;
                return;
            }
            _ = tx.closed() => return,
        }
    }
}

fn translate(
    spec: &WatchSpec,
    visible: &mut HashSet<(String, String)>,
    event: &StoreEvent,
) -> Option<Bytes> {
    let obj = &event.object;
    let key = (
        obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let matches = spec.matches(obj);
    let was_visible = visible.contains(&key);
    let kind = match event.kind {
        WatchEventType::Added if matches => {
            visible.insert(key);
            "ADDED"
        }
        WatchEventType::Added => return None,
        WatchEventType::Modified if matches => {
            // Without selectors every object was visible, including those from before the watch.
            let known = was_visible || (spec.labels.is_empty() && spec.fields.is_empty());
            visible.insert(key);
            if known { "MODIFIED" } else { "ADDED" }
        }
        WatchEventType::Modified if was_visible => {
            visible.remove(&key);
            "DELETED"
        }
        WatchEventType::Modified => return None,
        WatchEventType::Deleted if matches || was_visible => {
            visible.remove(&key);
            "DELETED"
        }
        WatchEventType::Deleted => return None,
    };
    Some(spec.line(kind, obj))
}
