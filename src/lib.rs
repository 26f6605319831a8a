//! istio-proxy-reset: finds the Istio sidecar proxies that differ from the control plane,
//! restarts their workloads in a safe order, and reports what it did and what is left to do.
//!
//! The modules follow the data (see `ARCHITECTURE.md`):
//! [`inventory`] → [`controlplane`] → [`classify`] → [`plan`] → [`execute`] → [`report`]
//! (and [`sinks`] for where the report goes). `classify` and `plan` are pure functions of the
//! inventory; only `inventory::live`, `execute` and `sinks` talk to the API, through [`cluster`].

pub mod classify;
pub mod cli;
pub mod cluster;
pub mod controlplane;
pub mod drift;
pub mod execute;
pub mod image;
pub mod inventory;
pub mod plan;
pub mod report;
pub mod sinks;
pub mod telemetry;

/// Exit codes (DESIGN §4).
pub mod exit {
    /// Done; manual items may remain, they are in the report.
    pub const DONE: i32 = 0;
    /// Could not do the job: bad input, API unreachable, no permission.
    pub const ERROR: i32 = 1;
    /// The control-plane gate failed; nothing was restarted.
    pub const GATE: i32 = 2;
    /// Done, but a restart or rollout failed (or, with `--fail-on-manual`, manual items remain).
    pub const FAILED: i32 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("snapshot {file}: {detail}")]
    InvalidSnapshot { file: String, detail: String },

    #[error("{object}: {field}: {problem}")]
    InvalidObject {
        object: String,
        field: String,
        problem: String,
    },

    #[error("{option}: {problem}")]
    Usage { option: String, problem: String },

    #[error(
        "no istiod and no injector ConfigMap in namespace {namespace}: nothing to compare proxies with \
         (is --istio-namespace right? or give --expected-version)"
    )]
    NoControlPlane { namespace: String },

    #[error("kubeconfig: {problem}")]
    Kubeconfig { problem: String },

    #[error("{action}: {}", describe_kube_error(.source))]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },

    #[error("report {path}: {problem}")]
    InvalidReport { path: String, problem: String },

    #[error(
        "the report does not fit a ConfigMap even without its pod and workload lists ({bytes} bytes of JSON)"
    )]
    ReportTooLarge { bytes: usize },

    #[error("writing the report: {0}")]
    Render(#[from] serde_json::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        exit::ERROR
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An API error as a person wants to read it: the code, the reason and the server's message.
pub(crate) fn describe_kube_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let hint = match status.code {
                401 => " (the credentials were refused)",
                403 => " (the service account lacks a permission: see job/ for the RBAC it needs)",
                _ => "",
            };
            format!(
                "{} {}: {}{hint}",
                status.code, status.reason, status.message
            )
        }
        other => other.to_string(),
    }
}
