//! The Job manifests (`job/`, `job/dry-run/`) as `kubectl kustomize` renders them: the objects,
//! least-privilege RBAC, the Job's safety settings and its configuration; then the Job's command,
//! arguments and environment run against kube-sim authorizing every request with the rendered
//! RBAC. Also the image build files. Needs `kubectl` (its built-in kustomize); without it the
//! tests print a note and pass.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::CommandFactory;
use serde_json::Value;

const NAMESPACE: &str = "kyma-system";
const ISTIO_NAMESPACE: &str = "istio-system";
const SA: &str = "istio-proxy-reset";
const CONTAINER: &str = "istio-proxy-reset";
const IMAGE: &str = "europe-docker.pkg.dev/kyma-project/prod/istio-proxy-reset:0.1.0";
const REPORT_CONFIGMAP: &str = "istio-proxy-reset-report";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kubectl_available() -> bool {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("note: kubectl is not on the PATH; the job/ manifests were not checked");
    }
    found
}

/// `kubectl kustomize DIR`: the YAML the cluster (and kube-sim's `--rbac`) gets.
fn kustomize(dir: &str) -> Vec<u8> {
    let dir = root().join(dir);
    let kustomize = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .expect("run kubectl kustomize");
    assert!(
        kustomize.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&kustomize.stderr)
    );
    kustomize.stdout
}

/// `kubectl kustomize DIR`, as JSON objects. kustomize prints YAML only; a local no-op patch
/// (`kubectl patch --local`, which needs no API server) turns each document into JSON.
fn render(dir: &str) -> Vec<Value> {
    let yaml = kustomize(dir);
    let mut to_json = Command::new("kubectl")
        .args(["patch", "--local", "--type", "merge", "-p", "{}"])
        .args(["-f", "-", "-o", "json"])
        .env("KUBECONFIG", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl patch --local");
    to_json
        .stdin
        .take()
        .expect("stdin")
        .write_all(&yaml)
        .expect("write the rendered YAML");
    let out = to_json.wait_with_output().expect("kubectl patch --local");
    assert!(
        out.status.success(),
        "converting the rendered YAML to JSON failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("kubectl printed JSON");
    let documents = String::from_utf8_lossy(&yaml)
        .lines()
        .filter(|l| *l == "---")
        .count()
        + 1;
    assert_eq!(
        objects.len(),
        documents,
        "every rendered document came back as JSON"
    );
    objects
}

fn kind_name(o: &Value) -> (String, String) {
    (
        o["kind"].as_str().unwrap_or_default().to_string(),
        o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| kind_name(o) == (kind.to_string(), name.to_string()))
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", kinds(objects)))
}

fn kinds(objects: &[Value]) -> Vec<(String, String)> {
    let mut all: Vec<_> = objects.iter().map(kind_name).collect();
    all.sort();
    all
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// One permission: (namespace or "" for cluster-wide, apiGroup, resource, verb, resourceName).
type Grant = (String, String, String, String, String);

/// Every permission the ServiceAccount `sa` gets through the bindings of the rendered objects.
fn grants(objects: &[Value], sa: &str) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for binding in objects.iter().filter(|o| {
        matches!(
            o["kind"].as_str(),
            Some("RoleBinding" | "ClusterRoleBinding")
        )
    }) {
        let subjects = binding["subjects"].as_array().expect("subjects");
        let bound = subjects.iter().any(|s| {
            s["kind"] == "ServiceAccount" && s["name"] == sa && s["namespace"] == NAMESPACE
        });
        if !bound {
            continue;
        }
        let role_kind = binding["roleRef"]["kind"].as_str().expect("roleRef.kind");
        let role_name = binding["roleRef"]["name"].as_str().expect("roleRef.name");
        let scope = match binding["kind"].as_str() {
            Some("RoleBinding") => binding["metadata"]["namespace"]
                .as_str()
                .expect("a RoleBinding has a namespace")
                .to_string(),
            _ => String::new(),
        };
        let role = objects
            .iter()
            .find(|o| {
                o["kind"] == role_kind
                    && o["metadata"]["name"] == role_name
                    && (role_kind == "ClusterRole"
                        || o["metadata"]["namespace"] == binding["metadata"]["namespace"])
            })
            .unwrap_or_else(|| {
                panic!(
                    "{} refers to a missing {role_kind} {role_name}",
                    kind_name(binding).1
                )
            });
        for rule in role["rules"].as_array().expect("rules") {
            let names = strings(&rule["resourceNames"]);
            let names = if names.is_empty() {
                vec![String::new()]
            } else {
                names
            };
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        for name in &names {
                            out.insert((
                                scope.clone(),
                                group.clone(),
                                resource.clone(),
                                verb.clone(),
                                name.clone(),
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

fn grant(scope: &str, group: &str, resource: &str, verb: &str, name: &str) -> Grant {
    (
        scope.into(),
        group.into(),
        resource.into(),
        verb.into(),
        name.into(),
    )
}

/// What `run` reads, cluster-wide.
fn read_grants() -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for (group, resources) in [
        ("", &["namespaces", "pods", "replicationcontrollers"][..]),
        (
            "apps",
            &["deployments", "statefulsets", "daemonsets", "replicasets"][..],
        ),
        ("batch", &["jobs", "cronjobs"][..]),
        ("argoproj.io", &["rollouts"][..]),
    ] {
        for resource in resources {
            for verb in ["get", "list", "watch"] {
                out.insert(grant("", group, resource, verb, ""));
            }
        }
    }
    // Istio's injection webhooks, cluster-scoped: which revision injects a pod now.
    for verb in ["list", "watch"] {
        out.insert(grant(
            "",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            verb,
            "",
        ));
    }
    // The injector ConfigMaps of the control plane.
    for verb in ["get", "list"] {
        out.insert(grant(ISTIO_NAMESPACE, "", "configmaps", verb, ""));
    }
    out
}

fn assert_rbac_hygiene(objects: &[Value]) {
    for o in objects
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Role" | "ClusterRole")))
    {
        let (kind, name) = kind_name(o);
        assert!(
            o.get("aggregationRule").is_none(),
            "{kind} {name} aggregates other roles"
        );
        for rule in o["rules"].as_array().expect("rules") {
            assert!(
                rule.get("nonResourceURLs").is_none(),
                "{kind} {name} grants non-resource URLs: {rule}"
            );
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                for value in strings(&rule[field]) {
                    assert!(
                        !value.contains('*'),
                        "{kind} {name}: wildcard in {field}: {rule}"
                    );
                    assert!(
                        !value.starts_with("secrets"),
                        "{kind} {name} grants access to Secrets: {rule}"
                    );
                }
            }
            for verb in strings(&rule["verbs"]) {
                assert!(
                    !matches!(
                        verb.as_str(),
                        "delete" | "deletecollection" | "escalate" | "bind" | "impersonate"
                    ),
                    "{kind} {name} grants {verb}: {rule}"
                );
            }
        }
    }
}

fn job_pod_spec(job: &Value) -> &Value {
    &job["spec"]["template"]["spec"]
}

fn container(job: &Value) -> &Value {
    let containers = job_pod_spec(job)["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    assert_eq!(containers[0]["name"], CONTAINER);
    &containers[0]
}

fn env(container: &Value) -> BTreeMap<String, String> {
    container["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["name"].as_str().expect("env name").to_string(),
                        e["value"].as_str().expect("env value").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every `ISTIO_PROXY_RESET_*` variable the command line reads.
fn cli_env_vars() -> BTreeSet<String> {
    fn walk(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(&istio_proxy_reset::cli::Cli::command(), &mut out);
    out
}

#[test]
fn base_renders_the_expected_objects() {
    if !kubectl_available() {
        return;
    }
    let objects = render("job");
    let expected: Vec<(String, String)> = [
        ("ClusterRole", SA),
        ("ClusterRoleBinding", SA),
        ("Job", SA),
        ("Role", "istio-proxy-reset-control-plane"),
        ("Role", "istio-proxy-reset-report"),
        ("RoleBinding", "istio-proxy-reset-control-plane"),
        ("RoleBinding", "istio-proxy-reset-report"),
        ("ServiceAccount", SA),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    assert_eq!(kinds(&objects), expected);

    for o in &objects {
        let (kind, name) = kind_name(o);
        let namespace = o["metadata"]["namespace"].as_str();
        match kind.as_str() {
            "ClusterRole" | "ClusterRoleBinding" => {
                assert_eq!(namespace, None, "{kind} {name} is cluster-scoped")
            }
            _ if name == "istio-proxy-reset-control-plane" => {
                assert_eq!(namespace, Some(ISTIO_NAMESPACE), "{kind} {name}")
            }
            _ => assert_eq!(namespace, Some(NAMESPACE), "{kind} {name}"),
        }
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/name"], "istio-proxy-reset",
            "{kind} {name} carries the app label"
        );
    }
}

#[test]
fn base_rbac_is_exactly_what_run_needs() {
    if !kubectl_available() {
        return;
    }
    let objects = render("job");
    assert_rbac_hygiene(&objects);

    let mut expected = read_grants();
    for (group, resource) in [
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("argoproj.io", "rollouts"),
    ] {
        expected.insert(grant("", group, resource, "patch", ""));
    }
    expected.insert(grant("", "", "pods/eviction", "create", ""));
    for verb in ["get", "create", "patch"] {
        expected.insert(grant("", "", "events", verb, ""));
    }
    // The report ConfigMap: only that one by name; `create` cannot be limited to a name.
    for verb in ["get", "update", "patch"] {
        expected.insert(grant(NAMESPACE, "", "configmaps", verb, REPORT_CONFIGMAP));
    }
    expected.insert(grant(NAMESPACE, "", "configmaps", "create", ""));

    let actual = grants(&objects, SA);
    let missing: Vec<_> = expected.difference(&actual).collect();
    let extra: Vec<_> = actual.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "RBAC differs from what run needs\nmissing: {missing:#?}\nextra: {extra:#?}"
    );

    // The Job runs as the ServiceAccount the bindings name.
    let job = find(&objects, "Job", SA);
    assert_eq!(job_pod_spec(job)["serviceAccountName"], SA);
    find(&objects, "ServiceAccount", SA);
}

#[test]
fn base_job_is_safe_to_run_once() {
    if !kubectl_available() {
        return;
    }
    let objects = render("job");
    let job = find(&objects, "Job", SA);
    let spec = &job["spec"];
    let pod = job_pod_spec(job);

    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(spec["backoffLimit"], 1);
    let deadline = spec["activeDeadlineSeconds"].as_u64().expect("a deadline");
    assert!(
        deadline >= 1800,
        "activeDeadlineSeconds {deadline} leaves room for several 10m rollouts"
    );
    assert!(
        spec["ttlSecondsAfterFinished"].as_u64().expect("a TTL") >= 3600,
        "the finished Job stays long enough to read"
    );

    let rules = spec["podFailurePolicy"]["rules"]
        .as_array()
        .expect("a podFailurePolicy");
    let fail = rules
        .iter()
        .find(|r| r["action"] == "FailJob")
        .expect("a FailJob rule");
    assert_eq!(fail["onExitCodes"]["containerName"], CONTAINER);
    assert_eq!(fail["onExitCodes"]["operator"], "In");
    assert_eq!(
        fail["onExitCodes"]["values"],
        serde_json::json!([1, 2, 3]),
        "exit codes 1, 2 and 3 are verdicts a retry cannot change"
    );
    let ignore = rules
        .iter()
        .find(|r| r["action"] == "Ignore")
        .expect("an Ignore rule");
    assert_eq!(
        ignore["onPodConditions"],
        serde_json::json!([{"type": "DisruptionTarget"}])
    );

    let template = &spec["template"]["metadata"];
    assert_eq!(template["labels"]["sidecar.istio.io/inject"], "false");
    assert_eq!(template["annotations"]["sidecar.istio.io/inject"], "false");

    // The restricted Pod Security profile.
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert_eq!(psc["runAsUser"], 65532);
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    let c = container(job);
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(
        sc["capabilities"].get("add").is_none(),
        "no capability added"
    );
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(sc.get("privileged").is_none_or(|p| p == false));
    assert!(pod.get("hostNetwork").is_none_or(|h| h == false));
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        assert!(
            volume.get("hostPath").is_none(),
            "no hostPath volume: {volume}"
        );
    }

    let resources = &c["resources"];
    for (bound, field) in [
        ("requests", "cpu"),
        ("requests", "memory"),
        ("limits", "cpu"),
        ("limits", "memory"),
    ] {
        assert!(
            resources[bound][field].is_string(),
            "{bound}.{field} is set: {resources}"
        );
    }
    assert_eq!(c["terminationMessagePolicy"], "FallbackToLogsOnError");
    assert_eq!(c["image"], IMAGE);
    assert_eq!(c["args"], serde_json::json!(["run"]));
    assert!(c.get("command").is_none(), "the image's entrypoint runs");
}

#[test]
fn base_job_is_configured_through_environment_variables() {
    if !kubectl_available() {
        return;
    }
    let objects = render("job");
    let env = env(container(find(&objects, "Job", SA)));
    let expected: BTreeMap<String, String> = [
        (
            "ISTIO_PROXY_RESET_REPORT_CONFIGMAP",
            "kyma-system/istio-proxy-reset-report",
        ),
        ("ISTIO_PROXY_RESET_FORMAT", "json"),
        ("ISTIO_PROXY_RESET_ROLLOUT_TIMEOUT", "10m"),
        ("ISTIO_PROXY_RESET_CONCURRENCY", "4"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env, expected);

    let known = cli_env_vars();
    for name in env.keys() {
        assert!(
            known.contains(name),
            "{name} is not an option of the command line: {known:?}"
        );
    }
    // The report ConfigMap the Role names is the one the Job writes.
    assert_eq!(
        env["ISTIO_PROXY_RESET_REPORT_CONFIGMAP"],
        format!("{NAMESPACE}/{REPORT_CONFIGMAP}")
    );
}

#[test]
fn dry_run_overlay_plans_with_read_only_rbac() {
    if !kubectl_available() {
        return;
    }
    let objects = render("job/dry-run");
    let sa = "istio-proxy-reset-dry-run";
    let expected: Vec<(String, String)> = [
        ("ClusterRole", sa),
        ("ClusterRoleBinding", sa),
        ("Job", sa),
        ("Role", "istio-proxy-reset-control-plane-dry-run"),
        ("RoleBinding", "istio-proxy-reset-control-plane-dry-run"),
        ("ServiceAccount", sa),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    assert_eq!(kinds(&objects), expected);
    assert_rbac_hygiene(&objects);

    let actual = grants(&objects, sa);
    let expected = read_grants();
    assert_eq!(
        actual, expected,
        "the dry run reads what run reads and writes nothing"
    );

    let job = find(&objects, "Job", sa);
    assert_eq!(job["metadata"]["namespace"], NAMESPACE);
    assert_eq!(job_pod_spec(job)["serviceAccountName"], sa);
    let c = container(job);
    assert_eq!(c["args"], serde_json::json!(["plan"]));
    assert_eq!(c["image"], IMAGE);
    let env = env(c);
    assert!(
        !env.contains_key("ISTIO_PROXY_RESET_REPORT_CONFIGMAP"),
        "plan never writes a report ConfigMap: {env:?}"
    );
    // Everything else of the base Job stays: security, failure policy, no sidecar.
    assert_eq!(job_pod_spec(job)["restartPolicy"], "Never");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"],
        "false"
    );
    assert!(job["spec"]["podFailurePolicy"].is_object());
}

/// The dry-run Job's arguments and environment, given to the real binary with the example
/// snapshot, plan successfully: the configuration the overlay ships is one the tool accepts.
#[test]
fn dry_run_configuration_is_accepted_by_the_binary() {
    if !kubectl_available() {
        return;
    }
    let objects = render("job/dry-run");
    let c = container(find(&objects, "Job", "istio-proxy-reset-dry-run"));
    let args = strings(&c["args"]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_istio-proxy-reset"));
    cmd.args(&args)
        .arg("--snapshot")
        .arg(root().join("examples/kyma-upgrade.json"));
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("ISTIO_PROXY_RESET_")) {
        cmd.env_remove(name);
    }
    cmd.envs(env(c));
    let out = cmd.output().expect("run istio-proxy-reset");
    assert!(
        out.status.success(),
        "{args:?} with the overlay's environment failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty(), "the plan is printed");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn dockerfile_builds_a_static_non_root_image() {
    let dockerfile = read(&root().join("job/Dockerfile"));
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&&str> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage");
    assert!(froms[0].starts_with("FROM rust:1-bookworm"), "{}", froms[0]);
    assert_eq!(*froms[1], "FROM gcr.io/distroless/static-debian12:nonroot");
    for needle in [
        "x86_64-unknown-linux-musl",
        "--release",
        "--locked",
        "-p istio-proxy-reset",
    ] {
        assert!(dockerfile.contains(needle), "the build uses {needle}");
    }
    let runtime = dockerfile
        .split("FROM gcr.io/distroless")
        .nth(1)
        .expect("runtime stage");
    assert!(runtime.contains("USER 65532:65532"), "runs as 65532");
    assert!(
        runtime.contains("ENTRYPOINT [\"/usr/local/bin/istio-proxy-reset\"]"),
        "the binary is the entrypoint"
    );

    let ignore = read(&root().join(".dockerignore"));
    let patterns: BTreeSet<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for pattern in ["target/", ".git/", "tests/data/"] {
        assert!(
            patterns.contains(pattern),
            ".dockerignore excludes {pattern}"
        );
    }
    for needed in ["src", "sim", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !patterns
                .iter()
                .any(|p| p.trim_end_matches('/') == needed || p.starts_with(&format!("{needed}/"))),
            ".dockerignore keeps {needed}, which the build needs"
        );
    }
}

/// A simulated cluster loaded with the example, authorizing every request as `user` against the
/// RBAC that `job_dir` renders.
struct Authorized {
    sim: kube_sim::Sim,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

/// The example cluster, as kube-sim loads it.
fn example_state() -> Value {
    serde_json::from_slice(
        &std::fs::read(root().join("examples/kyma-upgrade.json")).expect("the example"),
    )
    .expect("the example is JSON")
}

/// The example with Istio's webhook configuration of the default revision, and one of another
/// product's that the inventory leaves out.
fn example_with_webhooks() -> Value {
    let mut state = example_state();
    let mut istio =
        serde_json::to_value(istio_injection::webhooks::revision_configuration("default"))
            .expect("a webhook configuration as JSON");
    istio["apiVersion"] = "admissionregistration.k8s.io/v1".into();
    istio["kind"] = "MutatingWebhookConfiguration".into();
    let other = serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "cert-manager-webhook"},
        "webhooks": [{"name": "webhook.cert-manager.io"}]
    });
    let items = state["items"].as_array_mut().expect("items");
    items.push(istio);
    items.push(other);
    state
}

impl Authorized {
    async fn start(job_dir: &str, user: &str) -> Authorized {
        let rbac = String::from_utf8(kustomize(job_dir)).expect("UTF-8 YAML");
        Authorized::start_with(rbac, example_state(), user).await
    }

    async fn start_with(rbac: String, state: Value, user: &str) -> Authorized {
        let sim = kube_sim::start(kube_sim::SimConfig {
            state,
            rbac: Some((rbac, user.to_string())),
            pod_start: std::time::Duration::from_millis(100),
            ..kube_sim::SimConfig::default()
        })
        .await
        .expect("kube-sim starts");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig)
            .expect("write the kubeconfig");
        Authorized {
            sim,
            _dir: dir,
            kubeconfig,
        }
    }

    /// The Job's container as the Job would run it: its arguments and environment, plus the
    /// kubeconfig of the simulated cluster.
    async fn run_container(&self, job: &Value) -> std::process::Output {
        let c = container(job);
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_istio-proxy-reset"));
        for (name, _) in std::env::vars() {
            if name.starts_with("ISTIO_PROXY_RESET_") || name == "KUBECONFIG" {
                cmd.env_remove(name);
            }
        }
        cmd.args(strings(&c["args"]))
            .envs(env(c))
            .env("ISTIO_PROXY_RESET_KUBECONFIG", &self.kubeconfig)
            .kill_on_drop(true);
        tokio::time::timeout(std::time::Duration::from_secs(180), cmd.output())
            .await
            .expect("the Job's command finishes within three minutes")
            .expect("run istio-proxy-reset")
    }

    /// The tool with `args`, authorized as the cluster's user, and `ISTIO_PROXY_RESET_*` unset.
    async fn tool(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_istio-proxy-reset"));
        for (name, _) in std::env::vars() {
            if name.starts_with("ISTIO_PROXY_RESET_") || name == "KUBECONFIG" {
                cmd.env_remove(name);
            }
        }
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .kill_on_drop(true);
        tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
            .await
            .expect("the tool finishes within two minutes")
            .expect("run istio-proxy-reset")
    }

    /// Requests of the tool (not of kubectl) that RBAC refused.
    fn forbidden(&self) -> Vec<String> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| !r.user_agent.starts_with("kubectl") && r.status == 403)
            .map(|r| r.line())
            .collect()
    }

    fn kubectl(&self, context: &str, args: &[&str]) -> std::process::Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--context", context])
            .args(args)
            .output()
            .expect("run kubectl")
    }
}

/// DESIGN §5 `--rbac`: the full `run`, configured as the Job configures it, succeeds with the
/// permissions `job/` grants and no more; requests outside them are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_succeeds_with_exactly_the_jobs_permissions() {
    if !kubectl_available() {
        return;
    }
    let objects = render("job");
    let job = find(&objects, "Job", SA);
    let cluster =
        Authorized::start("job", &format!("system:serviceaccount:{NAMESPACE}:{SA}")).await;

    let out = cluster.run_container(job).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let forbidden = cluster.forbidden();
    assert!(
        forbidden.is_empty(),
        "run was refused:\n{}\nstderr:\n{stderr}",
        forbidden.join("\n")
    );
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report on stdout");
    assert_eq!(report["mode"], "run");
    assert!(
        report["summary"]["restarted"].as_u64().unwrap_or_default() > 0,
        "it restarted workloads: {}",
        report["summary"]
    );

    // A second run (the Job retried, or run again by hand) counts its Events up: still no 403.
    let again = cluster.run_container(job).await;
    let forbidden = cluster.forbidden();
    assert!(
        forbidden.is_empty(),
        "the second run was refused:\n{}\nstderr:\n{}",
        forbidden.join("\n"),
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(again.status.code(), Some(0));

    // The report landed in its ConfigMap.
    let configmap = cluster.kubectl(
        "kube-sim-admin",
        &[
            "-n",
            NAMESPACE,
            "get",
            "configmap",
            REPORT_CONFIGMAP,
            "-o",
            "jsonpath={.data.report\\.json}",
        ],
    );
    assert!(
        configmap.status.success(),
        "{}",
        String::from_utf8_lossy(&configmap.stderr)
    );
    let stored: Value = serde_json::from_slice(&configmap.stdout).expect("the stored report");
    assert_eq!(stored["mode"], "run");

    // What the role does not grant is refused.
    for args in [
        &["get", "secrets", "-n", NAMESPACE][..],
        &["get", "secrets", "-A"][..],
        &["-n", "shop", "delete", "pod", "debug-shell"][..],
        &["-n", "istio-system", "get", "secrets"][..],
        &["get", "nodes"][..],
        // ConfigMaps may be created in kyma-system only (`create` cannot name one).
        &["-n", "shop", "create", "configmap", "other"][..],
        &["-n", "shop", "get", "configmaps"][..],
    ] {
        let out = cluster.kubectl("kube-sim", args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.to_lowercase().contains("forbidden"),
            "kubectl {args:?} as the Job's ServiceAccount must be forbidden; got {} {stderr}",
            out.status
        );
    }
}

/// The dry-run overlay: `plan` against the live cluster needs only the overlay's read
/// permissions, and those permissions cannot restart anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_live_with_read_only_permissions() {
    if !kubectl_available() {
        return;
    }
    let sa = "istio-proxy-reset-dry-run";
    let objects = render("job/dry-run");
    let job = find(&objects, "Job", sa);
    let cluster = Authorized::start(
        "job/dry-run",
        &format!("system:serviceaccount:{NAMESPACE}:{sa}"),
    )
    .await;

    let out = cluster.run_container(job).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let forbidden = cluster.forbidden();
    assert!(
        forbidden.is_empty(),
        "plan was refused:\n{}\nstderr:\n{stderr}",
        forbidden.join("\n")
    );
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let writes: Vec<String> = cluster
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.line())
        .collect();
    assert!(writes.is_empty(), "plan wrote: {writes:?}");

    for args in [
        &["-n", "shop", "rollout", "restart", "deployment/orders"][..],
        &["-n", "shop", "get", "secrets"][..],
        &["-n", NAMESPACE, "create", "configmap", REPORT_CONFIGMAP][..],
    ] {
        let out = cluster.kubectl("kube-sim", args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.to_lowercase().contains("forbidden"),
            "kubectl {args:?} as the dry run's ServiceAccount must be forbidden; got {} {stderr}",
            out.status
        );
    }
}

/// `snapshot` under the dry run's read-only permissions: Istio's MutatingWebhookConfigurations
/// are in it (and another product's are not), and `plan --snapshot` of it plans as the live
/// `plan` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_permissions_take_a_snapshot_with_istios_webhooks() {
    if !kubectl_available() {
        return;
    }
    let sa = "istio-proxy-reset-dry-run";
    let rbac = String::from_utf8(kustomize("job/dry-run")).expect("UTF-8 YAML");
    let cluster = Authorized::start_with(
        rbac,
        example_with_webhooks(),
        &format!("system:serviceaccount:{NAMESPACE}:{sa}"),
    )
    .await;

    let output = cluster.tool(&["snapshot"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let forbidden = cluster.forbidden();
    assert!(
        forbidden.is_empty(),
        "snapshot was refused:\n{}\nstderr:\n{stderr}",
        forbidden.join("\n")
    );
    assert_eq!(output.status.code(), Some(0), "stderr:\n{stderr}");
    let snapshot: Value = serde_json::from_slice(&output.stdout).expect("a JSON snapshot");
    let webhooks: Vec<&Value> = snapshot["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == "MutatingWebhookConfiguration")
        .collect();
    assert_eq!(webhooks.len(), 1, "only Istio's: {webhooks:?}");
    let istio = webhooks[0];
    assert_eq!(istio["apiVersion"], "admissionregistration.k8s.io/v1");
    assert_eq!(istio["metadata"]["name"], "istio-sidecar-injector");
    assert_eq!(istio["metadata"]["labels"]["istio.io/rev"], "default");
    assert!(istio["metadata"].get("managedFields").is_none());
    let names: Vec<&str> = istio["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .map(|w| w["name"].as_str().unwrap_or_default())
        .collect();
    assert!(
        names.contains(&"namespace.sidecar-injector.istio.io"),
        "{names:?}"
    );
    assert!(
        istio["webhooks"][0]["namespaceSelector"]["matchExpressions"].is_array(),
        "selectors are kept: {istio}"
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("cluster.json");
    std::fs::write(&file, &output.stdout).expect("write the snapshot");

    // The inventory holds the same webhook configuration read live and read from the file.
    use istio_proxy_reset::inventory::{InventoryBuilder, live, snapshot};
    let client = istio_proxy_reset::cluster::client(Some(&cluster.kubeconfig), None)
        .await
        .expect("a client");
    let scope = live::Scope {
        namespaces: Vec::new(),
        istio_namespace: ISTIO_NAMESPACE.to_string(),
    };
    let from_cluster = live::read(&client, &scope, &|_, _| {})
        .await
        .expect("the live inventory");
    let from_file =
        snapshot::read_file(&file, InventoryBuilder::new()).expect("the snapshot's inventory");
    let names = |i: &istio_proxy_reset::inventory::Inventory| -> Vec<String> {
        i.webhook_configurations
            .iter()
            .map(|c| c.metadata.name.clone())
            .collect()
    };
    assert_eq!(names(&from_cluster), ["istio-sidecar-injector"]);
    assert_eq!(
        from_cluster.webhook_configurations,
        from_file.webhook_configurations
    );
    let live = cluster.tool(&["plan", "--format", "json"]).await;
    assert_eq!(
        live.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );
    let offline = Command::new(env!("CARGO_BIN_EXE_istio-proxy-reset"))
        .args(["plan", "--format", "json", "--snapshot"])
        .arg(&file)
        .output()
        .expect("run istio-proxy-reset");
    assert_eq!(
        offline.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    let live: Value = serde_json::from_slice(&live.stdout).expect("the live plan");
    let offline: Value = serde_json::from_slice(&offline.stdout).expect("the offline plan");
    assert_eq!(live["workloads"], offline["workloads"]);
    assert_eq!(live["pods"], offline["pods"]);
    assert_eq!(live["summary"], offline["summary"]);
}

/// Without the rule for Istio's webhook configurations, `plan` stops at once (exit 1) with an
/// error naming the resource and the permission, before anything is compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_webhook_list_names_the_missing_permission() {
    if !kubectl_available() {
        return;
    }
    let sa = "istio-proxy-reset-dry-run";
    let rbac = String::from_utf8(kustomize("job/dry-run")).expect("UTF-8 YAML");
    let rule = "- apiGroups:\n  - admissionregistration.k8s.io\n  resources:\n  - mutatingwebhookconfigurations\n  verbs:\n  - list\n  - watch\n";
    assert!(rbac.contains(rule), "the dry run grants the rule:\n{rbac}");
    let cluster = Authorized::start_with(
        rbac.replace(rule, ""),
        example_with_webhooks(),
        &format!("system:serviceaccount:{NAMESPACE}:{sa}"),
    )
    .await;

    let output = cluster.tool(&["plan", "--format", "json"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    for needle in [
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        "which revision injects each pod",
        "`list` (and `watch`) on `mutatingwebhookconfigurations` in the API group `admissionregistration.k8s.io`",
        "403",
    ] {
        assert!(
            stderr.contains(needle),
            "stderr names {needle:?}:\n{stderr}"
        );
    }
    let refused: Vec<String> = cluster.forbidden();
    assert_eq!(
        refused.len(),
        1,
        "one refused list, not retried: {refused:?}"
    );
    assert!(
        refused[0].contains("mutatingwebhookconfigurations"),
        "{refused:?}"
    );
}
