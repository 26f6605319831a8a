//! `kubectl` as an independent client against the `kube-sim serve` binary.

mod common;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{SimProcess, list, namespace, ok, ready_pod, shop_state};
use serde_json::{Value, json};

fn json_of(output: std::process::Output) -> Value {
    serde_json::from_str(&ok(output)).expect("kubectl printed JSON")
}

#[test]
fn get_lists_all_namespaces_as_json_and_as_a_table() {
    let sim = SimProcess::start(&shop_state(3), &[]);
    let pods = json_of(sim.kubectl(&["get", "pods", "-A", "-o", "json"]));
    let names: Vec<&str> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pod-0000", "pod-0001", "pod-0002"]);

    let table = ok(sim.kubectl(&["get", "pods", "-n", "shop"]));
    let header = table.lines().next().unwrap();
    assert!(
        header
            .split_whitespace()
            .eq(["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
        "{table}"
    );
    assert!(table.contains("pod-0001   1/1     Running"), "{table}");

    assert_eq!(
        ok(sim.kubectl(&["logs", "-n", "shop", "pod-0000"])),
        "",
        "simulated containers print nothing"
    );
    let namespaces = ok(sim.kubectl(&["get", "ns", "-o", "name"]));
    assert!(
        namespaces.contains("namespace/shop") && namespaces.contains("namespace/default"),
        "{namespaces}"
    );
    let log = sim.request_log();
    let listed = |l: &str| {
        l.starts_with("GET /api/v1/namespaces/shop/pods?limit=500") && l.ends_with(" 200")
    };
    assert!(log.lines().any(listed), "{log}");
}

#[test]
fn watch_sees_a_change_made_by_another_client() {
    let sim = SimProcess::start(&shop_state(2), &[]);
    let mut watcher = sim.kubectl_spawn(&[
        "get",
        "pods",
        "-n",
        "shop",
        "--watch",
        "--output-watch-events",
        "-o",
        "json",
    ]);
    let stdout = watcher.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Change the pod until the watcher reports it: the watch may start after the first change.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    let mut round = 0;
    while !seen.contains("\"MODIFIED\"") {
        assert!(
            Instant::now() < deadline,
            "the watch saw no change:\n{seen}"
        );
        round += 1;
        ok(sim.kubectl(&[
            "label",
            "pod",
            "-n",
            "shop",
            "pod-0001",
            &format!("round={round}"),
            "--overwrite",
        ]));
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            seen.push_str(&line);
            seen.push('\n');
        }
    }
    assert!(
        seen.contains("\"ADDED\""),
        "the watch starts with the current pods:\n{seen}"
    );
}

#[test]
fn delete_and_every_patch_type() {
    let sim = SimProcess::start(&shop_state(2), &[]);
    let out = ok(sim.kubectl(&["delete", "pod", "-n", "shop", "pod-0000"]));
    assert!(out.contains("pod \"pod-0000\" deleted"), "{out}");
    let missing = sim.kubectl(&["get", "pod", "-n", "shop", "pod-0000"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("NotFound"),
        "{missing:?}"
    );

    let pod = ["-n", "shop", "pod/pod-0001"];
    let patch = |kind: &str, body: &str| {
        ok(sim.kubectl(&[&["patch"][..], &pod, &["--type", kind, "-p", body]].concat()))
    };
    patch(
        "strategic",
        r#"{"spec":{"containers":[{"name":"istio-proxy","image":"proxyv2:1.24.1"}]}}"#,
    );
    patch("merge", r#"{"metadata":{"labels":{"tier":"front"}}}"#);
    patch(
        "json",
        r#"[{"op":"replace","path":"/spec/containers/0/image","value":"app:2"}]"#,
    );
    let got = json_of(sim.kubectl(&[&["get"][..], &pod, &["-o", "json"]].concat()));
    let images: Vec<&str> = got["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["app:2", "proxyv2:1.24.1"]);
    assert_eq!(got["metadata"]["labels"]["tier"], "front");

    let failed = sim.kubectl(
        &[
            &["patch"][..],
            &pod,
            &[
                "--type",
                "json",
                "-p",
                r#"[{"op":"test","path":"/metadata/name","value":"x"}]"#,
            ],
        ]
        .concat(),
    );
    assert!(
        !failed.status.success(),
        "a failing JSON patch test is refused"
    );
}

#[test]
fn rollout_restart_completes_and_new_pods_carry_the_injected_proxy() {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "web:1"}]}}}
    });
    let mut shop = namespace("shop");
    shop["metadata"]["labels"] = json!({"istio-injection": "enabled"});
    let state = list(vec![
        shop,
        deployment,
        ready_pod("other", "bystander", json!({})),
    ]);
    let sim = SimProcess::start(
        &state,
        &["--proxy-image", "proxyv2:1.24.1", "--pod-start-ms", "50"],
    );
    ok(sim.kubectl(&[
        "rollout",
        "status",
        "-n",
        "shop",
        "deployment/web",
        "--timeout=30s",
    ]));
    ok(sim.kubectl(&["rollout", "restart", "-n", "shop", "deployment/web"]));
    let status = ok(sim.kubectl(&[
        "rollout",
        "status",
        "-n",
        "shop",
        "deployment/web",
        "--timeout=30s",
    ]));
    assert!(status.contains("successfully rolled out"), "{status}");

    let pods = json_of(sim.kubectl(&["get", "pods", "-n", "shop", "-l", "app=web", "-o", "json"]));
    let current: Vec<&Value> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .collect();
    assert_eq!(current.len(), 2, "{pods}");
    for pod in current {
        assert!(
            pod["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string(),
            "{pod}"
        );
        let proxy = pod["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(
                pod["spec"]["initContainers"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
            .find(|c| c["name"] == "istio-proxy")
            .unwrap_or_else(|| panic!("no proxy in {pod}"));
        assert_eq!(proxy["image"], "proxyv2:1.24.1");
    }
}

#[test]
fn budgets_print_their_columns() {
    let mut state = shop_state(2);
    state["items"].as_array_mut().unwrap().push(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "shop"}}}
    }));
    let sim = SimProcess::start(&state, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let table = ok(sim.kubectl(&["get", "pdb", "-n", "shop"]));
        let header: Vec<&str> = table
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            [
                "NAME",
                "MIN",
                "AVAILABLE",
                "MAX",
                "UNAVAILABLE",
                "ALLOWED",
                "DISRUPTIONS",
                "AGE"
            ],
            "{table}"
        );
        let row: Vec<&str> = table
            .lines()
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        if row[..4] == ["shop", "1", "N/A", "1"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the budget never allowed a disruption:\n{table}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn events_are_listed() {
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "shop"},
        "involvedObject": {"kind": "Deployment", "name": "web", "namespace": "shop"},
        "reason": "ProxyRestarted", "message": "restarted for proxy 1.24.1", "type": "Normal",
        "lastTimestamp": "2026-01-01T00:00:00Z"
    });
    let sim = SimProcess::start(&list(vec![namespace("shop"), event]), &[]);
    let out = ok(sim.kubectl(&["get", "events", "-n", "shop"]));
    assert!(
        out.contains("ProxyRestarted") && out.contains("deployment/web"),
        "{out}"
    );
}

#[test]
fn apply_creates_then_configures_from_a_file() {
    let sim = SimProcess::start(&list(vec![namespace("shop")]), &[]);
    let file = sim.dir.path().join("cm.yaml");
    let manifest = |value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: shop\ndata:\n  a: \"{value}\"\n"
        )
    };
    std::fs::write(&file, manifest("1")).unwrap();
    let path = file.to_str().unwrap();
    assert!(ok(sim.kubectl(&["apply", "-f", path])).contains("configmap/cfg created"));
    std::fs::write(&file, manifest("2")).unwrap();
    assert!(ok(sim.kubectl(&["apply", "-f", path])).contains("configmap/cfg configured"));
    assert_eq!(
        ok(sim.kubectl(&["get", "cm", "cfg", "-n", "shop", "-o", "jsonpath={.data.a}"])),
        "2"
    );
    let again = sim.kubectl(&["create", "-f", path]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("AlreadyExists"),
        "{again:?}"
    );
}

#[test]
fn apply_takes_a_list_as_kubectl_get_prints_it() {
    // kubectl validates a `kind: List` on the client against /openapi/v2 before it applies
    // the items one by one.
    let sim = SimProcess::start(&list(vec![]), &[]);
    let file = sim.dir.path().join("list.json");
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "shop"},
         "data": {"a": "1"}},
    ]});
    std::fs::write(&file, list.to_string()).unwrap();
    let applied = ok(sim.kubectl(&["apply", "-f", file.to_str().unwrap()]));
    assert!(applied.contains("configmap/cfg created"), "{applied}");
    assert_eq!(
        ok(sim.kubectl(&["get", "cm", "cfg", "-n", "shop", "-o", "jsonpath={.data.a}"])),
        "1"
    );
}

#[test]
fn typed_create_commands_send_protobuf_and_work() {
    let sim = SimProcess::start(&list(vec![]), &[]);
    ok(sim.kubectl(&["create", "namespace", "shop"]));
    ok(sim.kubectl(&[
        "create",
        "configmap",
        "cfg",
        "-n",
        "shop",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]));
    ok(sim.kubectl(&[
        "create",
        "secret",
        "generic",
        "token",
        "-n",
        "shop",
        "--from-literal=t=s3cret",
    ]));
    let cm = json_of(sim.kubectl(&["get", "cm", "cfg", "-n", "shop", "-o", "json"]));
    assert_eq!(cm["data"], json!({"a": "1", "b": "2"}));
    let secret = json_of(sim.kubectl(&["get", "secret", "token", "-n", "shop", "-o", "json"]));
    assert_eq!(secret["data"]["t"], "czNjcmV0");
    assert_eq!(secret["type"], "Opaque");
    // Kinds the simulation cannot decode from protobuf are refused, not misread.
    let refused = sim.kubectl(&["create", "deployment", "web", "-n", "shop", "--image=web:1"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("unknown format"),
        "{refused:?}"
    );
}

#[test]
fn scale_sets_replicas_through_the_scale_subresource() {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "web:1"}]}}}
    });
    let sim = SimProcess::start(
        &list(vec![namespace("shop"), deployment]),
        &["--pod-start-ms", "50"],
    );
    ok(sim.kubectl(&["scale", "-n", "shop", "deployment/web", "--replicas=3"]));
    assert_eq!(
        ok(sim.kubectl(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}"
        ])),
        "3"
    );
    let status = ok(sim.kubectl(&[
        "rollout",
        "status",
        "-n",
        "shop",
        "deployment/web",
        "--timeout=30s",
    ]));
    assert!(status.contains("successfully rolled out"), "{status}");
    assert!(
        sim.request_log()
            .lines()
            .any(|l| l.contains("/deployments/web/scale") && l.ends_with(" 200"))
    );
}

#[test]
fn drain_cordons_and_evicts() {
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
                      "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let mut state = shop_state(2);
    state["items"].as_array_mut().unwrap().push(node);
    let sim = SimProcess::start(&state, &[]);
    let out = ok(sim.kubectl(&[
        "drain",
        "node-1",
        "--force",
        "--ignore-daemonsets",
        "--timeout=20s",
    ]));
    assert!(out.contains("node/node-1 drained"), "{out}");
    assert!(ok(sim.kubectl(&["get", "nodes"])).contains("Ready,SchedulingDisabled"));
    assert_eq!(
        ok(sim.kubectl(&["get", "pods", "-n", "shop", "-o", "name"])),
        ""
    );
    let evictions = sim
        .request_log()
        .lines()
        .filter(|l| l.contains("/eviction") && l.ends_with(" 201"))
        .count();
    assert_eq!(evictions, 2, "{}", sim.request_log());
}
