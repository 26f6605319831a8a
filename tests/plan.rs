//! The built binary on the bundled example and on malformed snapshots: the JSON report,
//! the renderings and the exit codes.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

const EXAMPLE: &str = "examples/kyma-upgrade.json";

#[path = "support/binary.rs"]
mod binary;
use binary::{binary, root};

fn run(args: &[&str]) -> Output {
    binary().args(args).output().expect("the binary runs")
}

fn plan_json(args: &[&str]) -> Value {
    plan_file_json(EXAMPLE, args)
}

/// `plan --snapshot FILE --format json ARGS`: its exit code, its stderr and its stdout.
fn plan_file(file: &str, args: &[&str]) -> (Option<i32>, String, Vec<u8>) {
    let mut all = vec!["plan", "--snapshot", file, "--format", "json"];
    all.extend_from_slice(args);
    let output = run(&all);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr, output.stdout)
}

/// `plan --snapshot FILE --format json ARGS`, which must succeed; its report.
fn plan_file_json(file: &str, args: &[&str]) -> Value {
    let (code, stderr, stdout) = plan_file(file, args);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    serde_json::from_slice(&stdout).expect("stdout is one JSON document")
}

fn workload<'a>(report: &'a Value, kind: &str, namespace: &str, name: &str) -> &'a Value {
    report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == kind && w["namespace"] == namespace && w["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {namespace}/{name} in the report"))
}

#[test]
fn the_example_plan_is_complete_and_ordered() {
    let report = plan_json(&[]);
    assert_eq!(report["apiVersion"], "istio-proxy-reset.kyma-project.io/v1");
    assert_eq!(report["kind"], "ProxyResetReport");
    assert_eq!(report["mode"], "plan");
    assert_eq!(report["controlPlane"]["version"], "1.24.1");
    assert_eq!(
        report["controlPlane"]["image"],
        "europe-docker.pkg.dev/kyma-project/prod/external/istio/proxyv2:1.24.1-distroless"
    );
    assert_eq!(report["controlPlane"]["gate"]["passed"], true);

    let summary = &report["summary"];
    assert_eq!(summary["pods"], 47);
    assert_eq!(summary["proxies"], 43);
    assert_eq!(summary["upToDate"], 3);
    assert_eq!(summary["drifted"], 36);
    // Counted over every listed pod: the 36 drifted and the stale ones left alone (excluded,
    // pinned, terminating, completed) alike.
    assert_eq!(
        summary["drift"],
        serde_json::json!({"version": 37, "resources": 1, "missing-proxy": 1, "unwanted-proxy": 1})
    );
    assert_eq!(summary["restarted"], 0);
    assert_eq!(summary["manual"], 6);

    // Every verdict but up-to-date is listed (those are only counted).
    let mut verdicts: Vec<&str> = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["verdict"].as_str().unwrap())
        .collect();
    verdicts.sort();
    verdicts.dedup();
    assert_eq!(
        verdicts,
        [
            "completed",
            "custom-image",
            "excluded",
            "failed",
            "not-ready",
            "outdated",
            "pending",
            "terminating",
            "unknown"
        ]
    );

    // Every action row, with kyma first and numbers only on automatic actions.
    let rows: Vec<(String, String, Option<u64>)> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                format!(
                    "{} {}/{}",
                    w["kind"].as_str().unwrap(),
                    w["namespace"].as_str().unwrap(),
                    w["name"].as_str().unwrap()
                ),
                w["action"].as_str().unwrap().to_string(),
                w["order"].as_u64(),
            )
        })
        .collect();
    let expected = [
        (
            "Deployment kyma-system/api-gateway-controller-manager",
            "rollout-restart",
            Some(1),
        ),
        (
            "Deployment kyma-system/eventing-manager",
            "rollout-restart",
            Some(2),
        ),
        (
            "Deployment kyma-system/telemetry-self-monitor",
            "rollout-restart",
            Some(3),
        ),
        ("DaemonSet monitoring/log-agent", "rollout-restart", Some(4)),
        ("DaemonSet monitoring/node-probe", "evict", Some(5)),
        ("Deployment payments/billing", "rollout-restart", Some(6)),
        ("Deployment sandbox/playground", "rollout-restart", Some(7)),
        ("StatefulSet shop/cart", "rollout-restart", Some(8)),
        ("Rollout shop/checkout", "rollout-restart", Some(9)),
        ("ReplicaSet shop/importer", "evict", Some(10)),
        ("ReplicationController shop/mailer", "evict", Some(11)),
        ("Deployment shop/newsletter", "rollout-restart", Some(12)),
        ("Deployment shop/orders", "rollout-restart", Some(13)),
        ("StatefulSet shop/redis", "evict", Some(14)),
        ("Deployment shop/search", "rollout-restart", Some(15)),
        ("Deployment analytics/collector", "manual", None),
        ("CronJob batch/daily-report", "manual", None),
        ("Deployment payments/ledger", "manual", None),
        ("Deployment shop/catalog", "manual", None),
        ("Pod shop/debug-shell", "manual", None),
        ("Workflow shop/nightly-sync-wf", "manual", None),
    ];
    let expected: Vec<(String, String, Option<u64>)> = expected
        .iter()
        .map(|(w, a, o)| (w.to_string(), a.to_string(), *o))
        .collect();
    assert_eq!(rows, expected);

    for w in report["workloads"].as_array().unwrap() {
        let phase = w["phase"].as_str().unwrap();
        let kyma = w["namespace"] == "kyma-system" || w["namespace"] == "istio-system";
        assert_eq!(phase == "kyma", kyma, "{w}");
        if w["action"] == "manual" {
            assert_eq!(w["status"], "skipped");
            assert!(!w["reason"].as_str().unwrap().is_empty());
            let runbook = w["runbook"].as_str().unwrap();
            let file = runbook.split('#').next().unwrap();
            assert!(root().join(file).is_file(), "{runbook} must exist");
        } else {
            assert_eq!(w["status"], "planned");
            assert!(w.get("reason").is_none());
        }
    }

    let orders = workload(&report, "Deployment", "shop", "orders");
    assert_eq!(
        orders["pods"].as_array().unwrap().len(),
        3,
        "a not-ready pod rides along"
    );
    assert_eq!(orders["fromVersions"], serde_json::json!(["1.23.2"]));
    assert_eq!(
        workload(&report, "Deployment", "shop", "search")["fromVersions"],
        serde_json::json!(["1.25.0"]),
        "newer than the control plane is drift too"
    );

    // Drift beyond the version (DESIGN §2.3a), with the pods that show it.
    let drift = |kind, namespace, name| workload(&report, kind, namespace, name)["drift"].clone();
    assert_eq!(
        drift("Deployment", "shop", "orders"),
        serde_json::json!(["version"])
    );
    assert_eq!(
        drift(
            "Deployment",
            "kyma-system",
            "api-gateway-controller-manager"
        ),
        serde_json::json!(["resources"]),
        "the pod's proxyCPU annotation asks for 250m, its proxy has 100m"
    );
    assert_eq!(
        drift("Deployment", "shop", "newsletter"),
        serde_json::json!(["missing-proxy"])
    );
    assert_eq!(
        drift("Deployment", "sandbox", "playground"),
        serde_json::json!(["unwanted-proxy"])
    );
    let pod = |prefix: &str| {
        report["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no pod {prefix}…"))
            .clone()
    };
    let newsletter = pod("newsletter-");
    assert_eq!(newsletter["targetRevision"], "default");
    assert!(newsletter.get("proxyImage").is_none(), "{newsletter}");
    let playground = pod("playground-");
    assert!(playground.get("targetRevision").is_none(), "{playground}");
    assert!(
        playground["reason"]
            .as_str()
            .unwrap()
            .contains("no Istio webhook selects the pod"),
        "{playground}"
    );
}

#[test]
fn drift_selects_the_reasons_that_act() {
    let report = plan_json(&["--drift", "missing-proxy,unwanted-proxy"]);
    let automatic: Vec<&str> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["action"] != "manual")
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(automatic, ["playground", "newsletter"]);
    let orders = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["workload"]["name"] == "orders" && p["verdict"] == "excluded")
        .expect("orders' pods are excluded");
    assert_eq!(orders["reason"], "drift version is not selected by --drift");
    assert_eq!(orders["drift"], serde_json::json!(["version"]));
    let (code, stderr, _) = plan_file(EXAMPLE, &["--drift", "version,proxy"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("\"proxy\" is not a drift reason"),
        "{stderr}"
    );
}

#[test]
fn the_same_snapshot_gives_the_same_plan() {
    let strip = |mut v: Value| {
        v["startedAt"] = Value::Null;
        v["finishedAt"] = Value::Null;
        v
    };
    assert_eq!(strip(plan_json(&[])), strip(plan_json(&[])));
}

#[test]
fn options_change_the_plan() {
    // An override: the mirror at 1.24.1 is now stale and the new 1.25.0 one current.
    let report = plan_json(&["--expected-version", "1.25.0"]);
    assert_eq!(report["controlPlane"]["source"], "--expected-version");
    assert_eq!(report["controlPlane"]["gate"]["passed"], false);
    assert!(
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["name"] != "search")
    );
    assert_eq!(
        workload(&report, "Deployment", "shop", "frontend")["action"],
        "rollout-restart"
    );

    let report = plan_json(&["--namespace", "payments"]);
    let namespaces: Vec<&str> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["namespace"].as_str().unwrap())
        .collect();
    assert!(
        namespaces.iter().all(|n| *n == "payments"),
        "{namespaces:?}"
    );
    assert_eq!(report["summary"]["pods"], 6);

    let report = plan_json(&[
        "--exclude-namespace",
        "shop",
        "--exclude-namespace",
        "monitoring",
    ]);
    assert!(
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["namespace"] != "shop" && w["namespace"] != "monitoring")
    );
    let excluded = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["namespace"] == "shop" && p["verdict"] == "excluded")
        .count();
    assert!(
        excluded > 10,
        "shop's stale proxies are reported excluded, not hidden"
    );

    // The same through the environment, as the Job sets it.
    let output = binary()
        .args(["plan", "--snapshot", EXAMPLE])
        .env("ISTIO_PROXY_RESET_FORMAT", "json")
        .env("ISTIO_PROXY_RESET_EXCLUDE_NAMESPACE", "shop,monitoring")
        .output()
        .unwrap();
    let from_env: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(from_env["workloads"], report["workloads"]);
}

#[test]
fn fail_on_manual_exits_3() {
    let output = run(&[
        "plan",
        "--snapshot",
        EXAMPLE,
        "--format",
        "json",
        "--fail-on-manual",
    ]);
    assert_eq!(output.status.code(), Some(3));
    let output = run(&[
        "plan",
        "--snapshot",
        EXAMPLE,
        "--format",
        "json",
        "--fail-on-manual",
        "--namespace",
        "payments",
        "--exclude-namespace",
        "payments",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_saved_report_renders_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    let output = run(&[
        "plan",
        "--snapshot",
        EXAMPLE,
        "--format",
        "markdown",
        "--report-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let markdown = String::from_utf8(output.stdout).unwrap();
    assert!(markdown.starts_with("# istio-proxy-reset plan"));
    assert!(markdown.contains(
        "| 2 | kyma | rollout-restart | planned | Deployment kyma-system/eventing-manager |"
    ));

    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["summary"]["drifted"], 36);

    let rendered = run(&["report", file.to_str().unwrap(), "--format", "markdown"]);
    assert_eq!(
        String::from_utf8(rendered.stdout).unwrap(),
        markdown,
        "report FILE renders the same document"
    );

    let table = run(&["report", file.to_str().unwrap()]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("ORDER  PHASE"), "{table}");
    assert!(table.contains("see runbooks/workloads-not-restartable.md#paused-deployments"));

    let json = run(&["report", file.to_str().unwrap(), "--format", "json"]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json, saved);

    std::fs::write(&file, r#"{"apiVersion":"v1","kind":"ConfigMap"}"#).unwrap();
    let bad = run(&["report", file.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
}

fn expect_error(file: &str, args: &[&str], message: &str) {
    let path = Path::new("tests/data").join(file);
    let mut all = vec!["plan", "--snapshot", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = run(&all);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{file}: {stderr}");
    assert!(
        stderr.contains(message),
        "{file}: wanted {message:?} in {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{file}: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "no report from a file that could not be read"
    );
}

#[test]
fn malformed_snapshots_are_clear_errors() {
    expect_error("not-json.json", &[], "not a JSON object");
    expect_error("truncated.json", &[], "ends inside `items`");
    expect_error("single-pod.json", &[], "a snapshot is a `kind: List`");
    expect_error(
        "bad-image-type.json",
        &[],
        "items[0] (Pod shop/orders-1): spec.containers[0].image: invalid type: integer `42`",
    );
    expect_error("non-utf8.json", &[], "items[0]");
    expect_error("missing.json", &[], "tests/data/missing.json");
    expect_error(
        "odd-images.json",
        &["--expected-version", "banana"],
        "--expected-version",
    );
    expect_error("odd-images.json", &["--api-retry-timeout", "soon"], "soon");
}

#[test]
fn without_a_control_plane_the_counts_are_reported_and_the_plan_fails() {
    let output = run(&[
        "plan",
        "--snapshot",
        "tests/data/odd-images.json",
        "--istio-namespace",
        "elsewhere",
        "--format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no istiod"), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("a report");
    assert_eq!(report["controlPlane"]["gate"]["passed"], false);
    let problems = report["controlPlane"]["gate"]["problems"].to_string();
    assert!(problems.contains("namespace elsewhere"), "{problems}");
    let with_control_plane = plan_file_json("tests/data/odd-images.json", &[]);
    assert_eq!(
        report["summary"]["proxies"],
        with_control_plane["summary"]["proxies"]
    );
    assert!(report["summary"]["proxies"].as_u64().unwrap() > 0);
    assert_eq!(report["summary"]["drifted"], 0);
    assert!(report["workloads"].as_array().unwrap().is_empty());
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("not compared")
    );
}

#[test]
fn odd_images_and_owners_get_reasoned_verdicts() {
    let report = plan_file_json("tests/data/odd-images.json", &[]);
    let pod = |name: &str| {
        report["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert!(
        pod("shouty")["reason"]
            .as_str()
            .unwrap()
            .contains("invalid image reference")
    );
    assert!(
        pod("no-image")["reason"]
            .as_str()
            .unwrap()
            .contains("names no image")
    );
    assert!(
        pod("latest")["reason"]
            .as_str()
            .unwrap()
            .contains("has no version")
    );
    assert_eq!(pod("no-phase")["verdict"], "unknown");
    let vanished = workload(&report, "ReplicaSet", "shop", "vanished");
    assert_eq!(vanished["action"], "manual");
    assert!(
        vanished["reason"]
            .as_str()
            .unwrap()
            .contains("not in the inventory")
    );

    let report = plan_file_json(
        "tests/data/cyclic-owners.json",
        &["--expected-version", "1.24.1"],
    );
    let looped = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == "ReplicaSet")
        .unwrap();
    assert_eq!(looped["action"], "manual");
    assert!(
        looped["reason"].as_str().unwrap().contains("loops back"),
        "{looped}"
    );
    assert_eq!(
        report["summary"]["drifted"], 2,
        "the 5000-character name is planned like any other"
    );
}

/// A snapshot of `items` behind a healthy 1.24.1 control plane, in a temporary directory.
fn snapshot_of(items: Vec<Value>) -> (tempfile::TempDir, PathBuf) {
    let mut all = vec![
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
            "data": {"values": r#"{"global":{"hub":"docker.io/istio","tag":"1.24.1"}}"#}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "istiod-1", "namespace": "istio-system", "labels": {"app": "istiod"}},
            "spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.24.1"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
    ];
    all.extend(items);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.json");
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": all});
    std::fs::write(&path, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
    (dir, path)
}

/// A Running, Ready pod with a 1.23.2 proxy, and labels or annotations as `metadata` says.
fn stale_pod(namespace: &str, name: &str, image: &str, metadata: Value) -> Value {
    let mut pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "istio-proxy", "image": image}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
    if let Value::Object(extra) = metadata {
        for (key, value) in extra {
            pod["metadata"][key] = value;
        }
    }
    pod
}

const STALE: &str = "docker.io/istio/proxyv2:1.23.2";
const SKIP: &str = "istio-proxy-reset.kyma-project.io/skip";

#[test]
fn objects_listed_twice_are_refused() {
    let namespace = |labels: Value| {
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "quiet", "labels": labels}})
    };
    let deployment = |paused: bool| {
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"}, "spec": {"paused": paused}})
    };
    let cases = [
        (
            vec![
                namespace(serde_json::json!({SKIP: "true"})),
                namespace(serde_json::json!({})),
            ],
            "Namespace quiet (again at ",
        ),
        (
            vec![deployment(true), deployment(false)],
            "Deployment shop/web (again at ",
        ),
    ];
    for (items, named) in cases {
        let (_dir, path) = snapshot_of(items);
        let (code, stderr, stdout) = plan_file(path.to_str().unwrap(), &[]);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains(named) && stderr.contains("listed twice"),
            "{stderr}"
        );
        assert!(stdout.is_empty());
    }
}

#[test]
fn any_skip_value_but_false_keeps_a_pod_out_and_odd_ones_are_named() {
    let (_dir, path) = snapshot_of(vec![
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "quiet", "labels": {SKIP: "True"}}}),
        stale_pod("quiet", "q-1", STALE, serde_json::json!({})),
        stale_pod(
            "shop",
            "yes-1",
            STALE,
            serde_json::json!({"annotations": {SKIP: "yes"}}),
        ),
        stale_pod(
            "shop",
            "spaced-1",
            STALE,
            serde_json::json!({"labels": {SKIP: " true"}}),
        ),
        stale_pod(
            "shop",
            "exact-1",
            STALE,
            serde_json::json!({"labels": {SKIP: "true"}}),
        ),
        stale_pod(
            "shop",
            "no-1",
            STALE,
            serde_json::json!({"labels": {SKIP: "False"}}),
        ),
    ]);
    let (code, stderr, stdout) = plan_file(path.to_str().unwrap(), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let report: Value = serde_json::from_slice(&stdout).unwrap();
    let verdict = |name: &str| {
        report["pods"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["verdict"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{name} not in {report}"))
    };
    for name in ["q-1", "yes-1", "spaced-1", "exact-1"] {
        assert_eq!(verdict(name), "excluded", "{name}");
    }
    assert_eq!(verdict("no-1"), "outdated");
    for named in [
        "Namespace quiet: the label",
        "Pod shop/yes-1: the annotation",
        "Pod shop/spaced-1: the label",
        "Pod shop/no-1: the label",
    ] {
        assert!(stderr.contains(named), "wanted {named:?} in {stderr}");
    }
    assert!(!stderr.contains("exact-1"), "{stderr}");
}

/// A snapshot of one stale pod, its text changed by `edit`: the path, and the text written.
fn one_stale_pod_edited(edit: impl FnOnce(&str) -> String) -> (tempfile::TempDir, PathBuf, String) {
    let pod = stale_pod("shop", "web-1", STALE, serde_json::json!({}));
    let (dir, path) = snapshot_of(vec![pod]);
    let text = edit(&std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, &text).unwrap();
    (dir, path, text)
}

#[test]
fn an_injector_image_without_a_version_fails_the_gate() {
    let (_dir, path, _) =
        one_stale_pod_edited(|text| text.replace(r#"\"tag\":\"1.24.1\""#, r#"\"tag\":1.24"#));
    let report = plan_file_json(path.to_str().unwrap(), &[]);
    assert_eq!(report["controlPlane"]["gate"]["passed"], false, "{report}");
    let problems = report["controlPlane"]["gate"]["problems"].to_string();
    assert!(
        problems.contains("docker.io/istio/proxyv2:1.24 names no version"),
        "{problems}"
    );
}

#[test]
fn proxies_behind_any_valid_registry_are_compared() {
    let (_dir, path) = snapshot_of(vec![
        stale_pod(
            "shop",
            "ipv6-1",
            "[fd00::1]/istio/proxyv2:1.24.1",
            serde_json::json!({}),
        ),
        stale_pod(
            "shop",
            "upper-1",
            "MirrorHost/istio/proxyv2:1.24.1",
            serde_json::json!({}),
        ),
    ]);
    let report = plan_file_json(path.to_str().unwrap(), &[]);
    assert_eq!(report["summary"]["upToDate"], 2, "{report}");
    assert!(report["workloads"].as_array().unwrap().is_empty());
}

#[test]
fn namespace_options_take_only_namespace_names() {
    for (option, name) in [
        ("--namespace", "Shop"),
        ("--namespace", "shop_1"),
        ("--exclude-namespace", "-shop"),
        ("--exclude-namespace", ""),
    ] {
        let output = run(&["plan", "--snapshot", EXAMPLE, &format!("{option}={name}")]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{option} {name:?}: {stderr}");
        assert!(stderr.contains("not a namespace name"), "{stderr}");
    }
    let scoped = [
        "--namespace",
        "shop",
        "--namespace",
        "shpo",
        "--exclude-namespace",
        "paymnts",
    ];
    let (code, stderr, _) = plan_file(EXAMPLE, &scoped);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("--namespace shpo: the inventory has no such namespace"),
        "{stderr}"
    );
    assert!(!stderr.contains("--namespace shop:"), "{stderr}");
    // Outside --namespace nothing is looked at, so an exclusion there is not looked for; without
    // --namespace a misspelt one is named.
    assert!(!stderr.contains("--exclude-namespace paymnts"), "{stderr}");
    let (code, stderr, _) = plan_file(EXAMPLE, &["--exclude-namespace", "paymnts"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("--exclude-namespace paymnts"), "{stderr}");
    // Space after a comma in a variable is not part of a name.
    let output = binary()
        .args(["plan", "--snapshot", EXAMPLE, "--format", "json"])
        .env("ISTIO_PROXY_RESET_EXCLUDE_NAMESPACE", "shop, monitoring")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("no such namespace"), "{stderr}");
}

#[test]
fn a_parse_error_is_placed_in_the_file() {
    let (_dir, path, broken) =
        one_stale_pod_edited(|text| text.replace(&format!("\"{STALE}\""), "42"));
    let at = broken.find(": 42").unwrap() + ": 42".len();
    let line = broken[..at].matches('\n').count() + 1;
    let column = at - broken[..at].rfind('\n').map_or(0, |n| n + 1);
    let output = run(&["plan", "--snapshot", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "invalid type: integer `42`, expected a string at line {line} column {column}"
        )),
        "wanted line {line} column {column} in {stderr}"
    );
}
