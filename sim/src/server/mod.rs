//! The HTTP(S) server: connections, authentication and the test controls around the API
//! (request log, latency, chaos, RBAC); the API itself is in [`api`].

mod api;
mod discovery;
mod objects;
mod protobuf;
mod request;
mod routing;
mod subresources;
mod table;
mod tokens;
mod watch;

use std::convert::Infallible;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch as signal};

use crate::chaos::Chaos;
use crate::disruption::Evictions;
use crate::rbac::Rbac;
use crate::store::Store;
pub use tokens::IssuedTokens;

/// One request the server answered, as the request log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`; empty when there is none.
    pub query: String,
    /// The HTTP status; `0` when the connection was dropped without an answer.
    pub status: u16,
    pub user_agent: String,
}

impl RequestRecord {
    /// The log line: `METHOD PATH?QUERY STATUS`.
    pub fn line(&self) -> String {
        if self.query.is_empty() {
            format!("{} {} {}", self.method, self.path, self.status)
        } else {
            format!(
                "{} {}?{} {}",
                self.method, self.path, self.query, self.status
            )
        }
    }
}

/// Every request, in memory and optionally appended to a file as it is answered.
#[derive(Default)]
pub struct RequestLog {
    records: Mutex<Vec<RequestRecord>>,
    file: Option<Mutex<std::fs::File>>,
}

impl RequestLog {
    pub fn new(path: Option<&PathBuf>) -> std::io::Result<RequestLog> {
        let file = match path {
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            )),
            None => None,
        };
        Ok(RequestLog {
            records: Mutex::new(Vec::new()),
            file,
        })
    }

    fn record(&self, record: RequestRecord) {
        if let Some(file) = &self.file {
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(file, "{}", record.line());
        }
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn clear(&self) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Who a bearer token authenticates as.
pub struct Tokens {
    /// The configured user's token and name (`--as`; subject to RBAC).
    pub user: (String, String),
    /// A token that is never subject to RBAC and may impersonate (`Impersonate-User`).
    pub admin: String,
    /// Tokens issued for ServiceAccounts by TokenRequests.
    pub issued: IssuedTokens,
}

/// The RBAC policy a caller's requests are authorized against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// The admin context: nothing is checked.
    Unchecked,
    /// The `--rbac` file, when there is one: the configured user and impersonated users.
    Configured,
    /// The RBAC objects stored in the cluster at the time of the request: ServiceAccount tokens.
    Stored,
}

/// The user that `Tokens::admin` authenticates as.
pub const ADMIN_USER: &str = "kube-sim:admin";

/// Everything a request handler needs.
pub struct Shared {
    pub store: Arc<Store>,
    pub tokens: Tokens,
    pub rbac: Option<Rbac>,
    pub chaos: Option<Chaos>,
    pub latency: Duration,
    pub proxy_image: Option<String>,
    pub log: RequestLog,
    pub evictions: Evictions,
    /// How often a watch with `allowWatchBookmarks` gets a BOOKMARK.
    pub bookmark_interval: Duration,
}

/// Serves connections from `listener` until `shutdown` turns true; every open connection
/// (watches included) is closed then.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: signal::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_connection(stream, shared, shutdown).await;
                    }
                }
                None => serve_connection(stream, shared, shutdown).await,
            }
        });
    }
}

async fn serve_connection<S>(stream: S, shared: Arc<Shared>, mut shutdown: signal::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Chaos drops a connection by notifying this; the connection future is then dropped,
    // which closes the socket without an answer.
    let kill = Arc::new(Notify::new());
    let service = {
        let kill = kill.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let shared = shared.clone();
            let kill = kill.clone();
            async move { Ok::<_, Infallible>(api::handle(shared, req.map(Body::new), kill).await) }
        })
    };
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = kill.notified() => {}
        _ = shutdown.changed() => {}
    }
}
