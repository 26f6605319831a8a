//! Talking to the API server: the client, retries of transient errors, and paginated lists
//! read straight into the slim inventory types (DESIGN §6, §7).

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::inventory::model::{Object, ObjectSeed};
use crate::{Error, Result};

/// Items per list page (DESIGN §6).
pub const PAGE_SIZE: u32 = 500;

/// Connects with the kubeconfig (and context) given, else `$KUBECONFIG`/`~/.kube/config`, else
/// the in-cluster service account.
pub async fn client(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Client> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let problem = |e: &dyn fmt::Display| Error::Kubeconfig {
        problem: e.to_string(),
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| problem(&format_args!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| problem(&e))?
        }
        None if context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| problem(&e))?,
        None => Config::infer()
            .await
            .map_err(|e| problem(&format_args!("no kubeconfig and not in a cluster: {e}")))?,
    };
    let mut config = config;
    // Retries are this tool's own (`retry`), bounded and aware of what each call means (a 429
    // on an eviction is a PodDisruptionBudget speaking); the client's would hide them.
    config.default_retry = false;
    Client::try_from(config).map_err(|source| Error::Kube {
        action: "creating the Kubernetes client".into(),
        source,
    })
}

/// The HTTP status of an API error, when the server answered.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Errors worth another try: throttling, server errors, timeouts and dropped connections.
/// Never 403, 404 or 422: those do not heal by waiting.
pub fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 429 | 500..=599),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// The server's own advice on when to come back (429 with `retryAfterSeconds`).
fn retry_after(error: &kube::Error) -> Option<Duration> {
    match error {
        kube::Error::Api(status) => status
            .details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(u64::from(s))),
        _ => None,
    }
}

/// How long one API call's transient errors are retried (`--api-retry-timeout`).
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(120);
static RETRY_BUDGET: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// Sets the retry budget for the process, once, before any call (the command line does).
pub fn set_retry_budget(budget: Duration) {
    let _ = RETRY_BUDGET.set(budget);
}

/// How long transient errors of one call (or of one watch) are retried.
pub fn retry_budget() -> Duration {
    *RETRY_BUDGET.get().unwrap_or(&DEFAULT_RETRY_BUDGET)
}

/// Exponential backoff with jitter, bounded in time so that a dead API server ends the run.
pub fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_total_delay(Some(retry_budget()))
        .without_max_times()
}

/// Runs `operation`, retrying transient errors with [`backoff`].
pub async fn retry<T, F, Fut>(what: impl fmt::Display, operation: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    operation
        .retry(backoff())
        .sleep(tokio::time::sleep)
        .when(is_transient)
        .adjust(|error, delay| delay.map(|d| retry_after(error).map_or(d, |after| after.max(d))))
        .notify(|error, delay| {
            tracing::debug!(%error, ?delay, "{what}: transient error, retrying");
        })
        .await
}

/// One page of a list.
pub struct Page<T> {
    pub items: Vec<T>,
    pub continue_token: Option<String>,
}

/// Lists every object at `path` (`/api/v1/pods`, `/apis/apps/v1/namespaces/shop/deployments`),
/// 500 at a time, handing each page to `on_page` as slim objects. A 410 on `continue` means the
/// server forgot the list's snapshot: `on_restart` is called and the list starts again.
pub async fn list_pages(
    client: &Client,
    path: &str,
    kind: &str,
    api_version: &str,
    label_selector: Option<&str>,
    on_page: impl FnMut(Vec<Object>) -> Result<()>,
    on_restart: impl FnMut(),
) -> Result<()> {
    list_pages_with(
        client,
        path,
        label_selector,
        |text| parse_page(text, kind, api_version),
        on_page,
        on_restart,
    )
    .await
}

/// [`list_pages`] with the items left as JSON, for `snapshot`.
pub async fn list_raw_pages(
    client: &Client,
    path: &str,
    label_selector: Option<&str>,
    on_page: impl FnMut(Vec<serde_json::Value>) -> Result<()>,
    on_restart: impl FnMut(),
) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct RawList {
        #[serde(default)]
        items: Option<Vec<serde_json::Value>>,
        #[serde(default)]
        metadata: RawMeta,
    }
    #[derive(serde::Deserialize, Default)]
    struct RawMeta {
        #[serde(rename = "continue", default)]
        continue_token: Option<String>,
    }
    list_pages_with(
        client,
        path,
        label_selector,
        |text| {
            let list: RawList = serde_json::from_slice(text)?;
            Ok(Page {
                items: list.items.unwrap_or_default(),
                continue_token: list.metadata.continue_token,
            })
        },
        on_page,
        on_restart,
    )
    .await
}

async fn list_pages_with<T>(
    client: &Client,
    path: &str,
    label_selector: Option<&str>,
    parse: impl Fn(&[u8]) -> serde_json::Result<Page<T>>,
    mut on_page: impl FnMut(Vec<T>) -> Result<()>,
    mut on_restart: impl FnMut(),
) -> Result<()> {
    let mut restarts = 0;
    // The last page's size: the next of the same list is about as big, so its bytes are read
    // into one buffer of that size instead of one that doubles its way there.
    let mut page_size = 64 << 10;
    'list: loop {
        let mut token: Option<String> = None;
        loop {
            let text = retry(format_args!("listing {path}"), || {
                let mut params = kube::api::ListParams::default().limit(PAGE_SIZE);
                if let Some(selector) = label_selector {
                    params = params.labels(selector);
                }
                if let Some(token) = &token {
                    params = params.continue_token(token);
                }
                let request = kube::core::Request::new(path).list(&params);
                async move {
                    let request = request.map_err(kube::Error::BuildRequest)?;
                    // The body read once into one buffer (`request_text` would hold it twice).
                    let mut body = Box::pin(client.request_stream(request).await?);
                    let mut bytes = Vec::with_capacity(page_size + page_size / 8);
                    futures::AsyncReadExt::read_to_end(&mut body, &mut bytes)
                        .await
                        // A connection cut mid-page: as transient as one cut before it.
                        .map_err(|e| kube::Error::Service(Box::new(e)))?;
                    Ok(bytes)
                }
            })
            .await;
            let text = match text {
                Ok(text) => text,
                Err(error)
                    if token.is_some() && status_code(&error) == Some(410) && restarts < 5 =>
                {
                    restarts += 1;
                    tracing::info!(path, "the list's continue token expired; listing again");
                    on_restart();
                    continue 'list;
                }
                Err(source) => {
                    return Err(Error::Kube {
                        action: format!("listing {path}"),
                        source,
                    });
                }
            };
            page_size = text.len();
            let page = parse(&text).map_err(|e| Error::InvalidObject {
                object: format!("a page of {path}"),
                field: "items".into(),
                problem: e.to_string(),
            })?;
            on_page(page.items)?;
            match page.continue_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(()),
            }
        }
    }
}

/// Parses a list response; its items carry no `kind`, so the list's kind is given.
pub fn parse_page(text: &[u8], kind: &str, api_version: &str) -> serde_json::Result<Page<Object>> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let page = PageSeed { kind, api_version }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(page)
}

struct PageSeed<'a> {
    kind: &'a str,
    api_version: &'a str,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = Page<Object>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = Page<Object>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct ListMeta {
            #[serde(rename = "continue")]
            continue_token: Option<String>,
        }
        let mut page = Page {
            items: Vec::new(),
            continue_token: None,
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "items" => page.items = map.next_value_seed(ItemsSeed(&self))?,
                "metadata" => page.continue_token = map.next_value::<ListMeta>()?.continue_token,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(page)
    }
}

struct ItemsSeed<'a, 'b>(&'a PageSeed<'b>);

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_, '_> {
    type Value = Vec<Object>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_, '_> {
    type Value = Vec<Object>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of objects")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(object) = seq.next_element_seed(ObjectSeed {
            kind: self.0.kind,
            api_version: self.0.api_version,
        })? {
            items.push(object);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::model::Body;

    #[test]
    fn pages_give_items_their_list_kind() {
        let page = parse_page(
            br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"abc"},
                "items":[{"metadata":{"name":"a","namespace":"n"},"spec":{"containers":[{"name":"istio-proxy","image":"x:1.0.0"}]}}]}"#,
            "Pod",
            "v1",
        )
        .unwrap();
        assert_eq!(page.continue_token.as_deref(), Some("abc"));
        assert_eq!(page.items[0].kind, "Pod");
        assert_eq!(page.items[0].api_version, "v1");
        assert!(
            matches!(page.items[0].body, Body::Pod { ref spec, .. } if spec.containers.len() == 1)
        );

        let empty = parse_page(br#"{"items":null,"metadata":{}}"#, "Pod", "v1").unwrap();
        assert!(empty.items.is_empty() && empty.continue_token.is_none());
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let api = |code| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                ..kube::core::Status::default()
            }))
        };
        for code in [429, 500, 502, 503, 504] {
            assert!(is_transient(&api(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 410, 422] {
            assert!(!is_transient(&api(code)), "{code}");
        }
    }
}
