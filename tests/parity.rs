//! kube-sim against the real thing: one scenario on both backends, the reports compared field by
//! field. Pod names carry random suffixes (and a ReplicaSet's hash is each backend's own), so pods
//! are compared by what the tool says of them, not by name. A difference here is a finding: fix
//! kube-sim, or list it in the parity matrix of `sim/README.md`.

mod support;

use serde_json::{Value, json};
use support::backend::{Backend, Scenario, upstream_available};

/// What a report says, without what differs by construction: times, pod names, the source of
/// the control plane's version (which names pods).
fn comparable(report: &Value) -> Value {
    let mut workloads: Vec<Value> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            json!({
                "workload": format!("{} {}/{}", w["kind"].as_str().unwrap(), w["namespace"].as_str().unwrap(), w["name"].as_str().unwrap()),
                "phase": w["phase"], "action": w["action"], "order": w["order"],
                "status": w["status"], "reason": w["reason"], "runbook": w["runbook"],
                "fromVersions": w["fromVersions"],
                "pods": w["pods"].as_array().map_or(0, Vec::len),
            })
        })
        .collect();
    workloads.sort_by_key(|w| w["workload"].as_str().unwrap().to_string());
    let mut pods: Vec<String> = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}/{} verdict={} action={} proxy={} reason={}",
                p["namespace"].as_str().unwrap(),
                p["workload"]["kind"].as_str().unwrap_or(""),
                p["workload"]["name"].as_str().unwrap_or(""),
                p["verdict"],
                p["action"],
                p["proxyVersion"],
                p["reason"],
            )
        })
        .collect();
    pods.sort();
    json!({
        "mode": report["mode"],
        "summary": report["summary"],
        "controlPlane": {"version": report["controlPlane"]["version"], "image": report["controlPlane"]["image"],
                         "gate": report["controlPlane"]["gate"]["passed"]},
        "workloads": workloads,
        "pods": pods,
    })
}

/// The fields where `a` and `b` differ, as `path: a != b` lines.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                differences(
                    &format!("{path}.{key}"),
                    &x[key],
                    y.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if a != b => out.push(format!("{path}: kube-sim {a} != upstream {b}")),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_run_reports_agree_on_both_backends() {
    if !upstream_available() {
        return;
    }
    let mut reports = Vec::new();
    for backend in [Backend::Sim, Backend::Upstream] {
        let scenario = Scenario::every_action_upgraded(backend).await;
        let plan = scenario.tool(&["plan", "--format", "json"]).await;
        assert_eq!(
            plan.status.code(),
            Some(0),
            "{backend:?}: {}",
            String::from_utf8_lossy(&plan.stderr)
        );
        let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
        let (code, run, stderr) = scenario.run(&[]).await;
        assert_eq!(code, Some(0), "{backend:?}: {stderr}");
        reports.push((comparable(&plan), comparable(&run)));
    }
    let mut found = Vec::new();
    differences("plan", &reports[0].0, &reports[1].0, &mut found);
    differences("run", &reports[0].1, &reports[1].1, &mut found);
    assert!(
        found.is_empty(),
        "kube-sim and upstream differ:\n{}",
        found.join("\n")
    );
}
