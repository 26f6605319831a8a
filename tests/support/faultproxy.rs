//! A plain-HTTP proxy between the tool and an API server (kube-sim, or the upstream
//! kube-apiserver over HTTPS) that fails chosen requests in chosen ways: an answer the server
//! never gave (429, 409, 410, 5xx, 403, …), a connection dropped before or after the server
//! acted, a slow answer, a watch cut mid-stream. Faults are aimed by method, path and query, so
//! each stage of a run can be hit on its own, or fall at random on a share of all requests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, BodyStream, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Body = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (a `metav1.Status`; 429 says retry after 1 s) without asking the server.
    Status(u16),
    /// Close the connection without an answer, before the server sees the request.
    DropBefore,
    /// Let the server act, then close the connection without its answer: the ambiguous failure.
    DropAfter,
    /// Answer, but this much later.
    Slow(Duration),
    /// Pass a watch through, then end it this long after it started.
    CutAfter(Duration),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    /// A substring of the path.
    pub path: &'static str,
    /// A substring of the query ("" matches any).
    pub query: &'static str,
    /// How many matching requests fail; the rest pass.
    pub times: usize,
    pub fault: Fault,
}

impl Rule {
    pub fn new(method: &'static str, path: &'static str, fault: Fault, times: usize) -> Rule {
        Rule {
            method,
            path,
            query: "",
            times,
            fault,
        }
    }

    pub fn query(mut self, query: &'static str) -> Rule {
        self.query = query;
        self
    }
}

/// What the proxy saw: `(method, path, query, fault applied)`.
pub type Seen = (String, String, String, Option<Fault>);

type UpstreamClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Faults at random: each request fails with probability `rate`, as one of 429 (Retry-After),
/// 500, 503, a connection dropped before or after the server acted, or (a watch) a stream cut.
#[derive(Debug)]
struct Chaos {
    rate: f64,
    state: u64,
}

impl Chaos {
    /// xorshift64*: reproducible from the seed for the same order of requests.
    fn next(&mut self) -> f64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fault(&mut self, query: &str) -> Option<Fault> {
        if self.next() >= self.rate {
            return None;
        }
        let watch = query.contains("watch=true") || query.contains("watch=1");
        let faults: &[Fault] = if watch {
            &[
                Fault::Status(503),
                Fault::CutAfter(Duration::from_millis(300)),
            ]
        } else {
            &[
                Fault::Status(429),
                Fault::Status(500),
                Fault::Status(503),
                Fault::DropBefore,
                Fault::DropAfter,
            ]
        };
        Some(faults[(self.next() * faults.len() as f64) as usize % faults.len()])
    }
}

pub struct FaultProxy {
    pub url: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    chaos: Arc<Mutex<Option<Chaos>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 and forwards to `upstream` (a plain-HTTP kube-sim).
    pub async fn start(upstream: &str, rules: Vec<Rule>) -> FaultProxy {
        FaultProxy::start_with(upstream, None, rules, None).await
    }

    /// Forwards to `upstream` over HTTPS trusting `ca_pem` (or plain HTTP without one), failing
    /// what `rules` aim at and, with `chaos` `(rate, seed)`, a share of all requests at random.
    pub async fn start_with(
        upstream: &str,
        ca_pem: Option<&str>,
        rules: Vec<Rule>,
        chaos: Option<(f64, u64)>,
    ) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let rules = Arc::new(Mutex::new(rules));
        let chaos = Arc::new(Mutex::new(chaos.map(|(rate, seed)| Chaos {
            rate,
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        })));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let client = upstream_client(ca_pem);
        let upstream = upstream.trim_end_matches('/').to_string();
        let task = tokio::spawn({
            let (rules, chaos, seen) = (rules.clone(), chaos.clone(), seen.clone());
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let faults = Faults {
                        rules: rules.clone(),
                        chaos: chaos.clone(),
                        seen: seen.clone(),
                    };
                    let (client, upstream) = (client.clone(), upstream.clone());
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            handle(request, faults.clone(), client.clone(), upstream.clone())
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        });
        FaultProxy {
            url,
            rules,
            chaos,
            seen,
            task,
        }
    }

    /// Stops failing requests at random (the rules stay).
    pub fn calm(&self) {
        *self.chaos.lock().unwrap() = None;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests a fault was applied to.
    pub fn faults_applied(&self) -> usize {
        self.seen().iter().filter(|s| s.3.is_some()).count()
    }

    /// Requests matching `method` and a path substring, faulty or not.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.0 == method && s.1.contains(path))
            .count()
    }

    pub fn rules_left(&self) -> usize {
        self.rules.lock().unwrap().iter().map(|r| r.times).sum()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}
impl std::error::Error for Dropped {}

fn status_body(code: u16) -> Response<Body> {
    let reason = match code {
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    let mut status = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("injected {code} {reason}"), "reason": reason, "code": code,
    });
    if code == 429 {
        status["details"] = serde_json::json!({"retryAfterSeconds": 1});
    }
    let mut response = Response::builder()
        .status(code)
        .header("content-type", "application/json");
    if code == 429 {
        response = response.header("retry-after", "1");
    }
    response
        .body(
            Full::new(Bytes::from(status.to_string()))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .unwrap()
}

/// A client for the server behind the proxy: HTTPS trusting `ca_pem`, or plain HTTP.
fn upstream_client(ca_pem: Option<&str>) -> UpstreamClient {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca_pem
        .map(|pem| CertificateDer::pem_slice_iter(pem.as_bytes()))
        .into_iter()
        .flatten()
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// What decides a request's fate, and the record of it.
#[derive(Clone)]
struct Faults {
    rules: Arc<Mutex<Vec<Rule>>>,
    chaos: Arc<Mutex<Option<Chaos>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Faults {
    /// The first rule aimed at the request (used up by one), else chance.
    fn decide(&self, method: &str, path: &str, query: &str) -> Option<Fault> {
        let aimed = self
            .rules
            .lock()
            .unwrap()
            .iter_mut()
            .find(|r| {
                r.times > 0
                    && r.method == method
                    && path.contains(r.path)
                    && query.contains(r.query)
            })
            .map(|r| {
                r.times -= 1;
                r.fault
            });
        let fault = aimed.or_else(|| {
            self.chaos
                .lock()
                .unwrap()
                .as_mut()
                .and_then(|c| c.fault(query))
        });
        let record = (
            method.to_string(),
            path.to_string(),
            query.to_string(),
            fault,
        );
        self.seen.lock().unwrap().push(record);
        fault
    }
}

async fn handle(
    request: Request<Incoming>,
    faults: Faults,
    client: UpstreamClient,
    upstream: String,
) -> Result<Response<Body>, Dropped> {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let fault = faults.decide(&method, &path, &query);

    match fault {
        Some(Fault::Status(code)) => return Ok(status_body(code)),
        Some(Fault::DropBefore) => return Err(Dropped),
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        _ => {}
    }
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let target = format!(
        "{upstream}{}",
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut forwarded = Request::builder().method(parts.method).uri(target);
    for (name, value) in &parts.headers {
        if name != "host" {
            forwarded = forwarded.header(name, value);
        }
    }
    let response = client
        .request(forwarded.body(Full::new(body)).unwrap())
        .await
        .map_err(|_| Dropped)?;
    if fault == Some(Fault::DropAfter) {
        // The server has acted; the client never hears of it.
        let _ = response.into_body().collect().await;
        return Err(Dropped);
    }
    let (parts, body) = response.into_parts();
    let body: Body = match fault {
        Some(Fault::CutAfter(after)) => {
            let deadline = tokio::time::sleep(after);
            let frames = BodyStream::new(body).take_until(deadline).map(
                |frame: Result<Frame<Bytes>, hyper::Error>| {
                    frame.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                },
            );
            StreamBody::new(frames).boxed_unsync()
        }
        _ => body
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            .boxed_unsync(),
    };
    Ok(Response::from_parts(parts, body))
}

/// A kubeconfig that points at the proxy, with the simulator's token.
pub fn kubeconfig(url: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {url}\n\
         users:\n- name: tool\n  user:\n    token: {token}\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    user: tool\n\
         current-context: sim\n"
    )
}
