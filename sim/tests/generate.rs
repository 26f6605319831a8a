//! `kube-sim generate`: a valid, deterministic, consistent and realistic snapshot.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};

use serde_json::Value;

fn generate_with_binary(pods: &str, seed: &str) -> Vec<u8> {
    let output = Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .args(["generate", "--pods", pods, "--seed", seed])
        .stdin(Stdio::null())
        .output()
        .expect("kube-sim runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn items(list: &Value) -> &Vec<Value> {
    list["items"].as_array().expect("a List with items")
}

fn proxy_image(pod: &Value) -> Option<&str> {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|field| pod["spec"][field].as_array())
        .flatten()
        .find(|c| c["name"] == "istio-proxy")
        .and_then(|c| c["image"].as_str())
}

#[test]
fn the_binary_prints_the_same_snapshot_for_the_same_seed() {
    let a = generate_with_binary("300", "42");
    let b = generate_with_binary("300", "42");
    let c = generate_with_binary("300", "43");
    assert_eq!(a, b, "same seed, same bytes");
    assert_ne!(a, c, "another seed, another cluster");
    let list: Value = serde_json::from_slice(&a).expect("valid JSON");
    assert_eq!(list["kind"], "List");
    assert_eq!(
        list,
        kube_sim::generate::generate(300, 42),
        "the CLI prints what the library generates"
    );
}

#[test]
fn every_reference_resolves_and_templates_match() {
    let list = kube_sim::generate::generate(1_000, 5);
    let objects = items(&list);
    let pods: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "Pod").collect();
    assert_eq!(pods.len(), 1_000);

    let by_uid: HashMap<&str, &Value> = objects
        .iter()
        .filter_map(|o| Some((o["metadata"]["uid"].as_str()?, o)))
        .collect();
    assert_eq!(by_uid.len(), objects.len(), "every object has a unique uid");
    for obj in objects {
        for reference in obj["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let owner = by_uid
                .get(reference["uid"].as_str().unwrap())
                .unwrap_or_else(|| panic!("{} names a missing owner", obj["metadata"]["name"]));
            assert_eq!(owner["kind"], reference["kind"]);
            assert_eq!(owner["metadata"]["name"], reference["name"]);
            assert_eq!(owner["metadata"]["namespace"], obj["metadata"]["namespace"]);
        }
    }

    // ReplicaSets carry their Deployment's template plus the hash label, and their pods the label.
    let mut current_sets = 0;
    for rs in objects.iter().filter(|o| o["kind"] == "ReplicaSet") {
        let owner = by_uid[rs["metadata"]["ownerReferences"][0]["uid"]
            .as_str()
            .unwrap()];
        let label = if owner["kind"] == "Rollout" {
            "rollouts-pod-template-hash"
        } else {
            "pod-template-hash"
        };
        let hash = rs["metadata"]["labels"][label]
            .as_str()
            .expect("hash label");
        assert_eq!(
            rs["metadata"]["name"],
            format!("{}-{hash}", owner["metadata"]["name"].as_str().unwrap())
        );
        let mut template = rs["spec"]["template"].clone();
        template["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove(label);
        if template == owner["spec"]["template"] {
            current_sets += 1;
            assert_eq!(rs["spec"]["replicas"], owner["spec"]["replicas"]);
        } else {
            assert_eq!(rs["spec"]["replicas"], 0, "old revisions are scaled down");
        }
        let rs_pods = pods
            .iter()
            .filter(|p| p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"])
            .count();
        assert_eq!(Some(rs_pods as u64), rs["spec"]["replicas"].as_u64());
    }
    let owners = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "Rollout")
        .count();
    assert_eq!(
        current_sets, owners,
        "each Deployment and Rollout has exactly one current ReplicaSet"
    );

    // StatefulSet pods carry the revision the status names.
    for sts in objects.iter().filter(|o| o["kind"] == "StatefulSet") {
        for pod in pods
            .iter()
            .filter(|p| p["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"])
        {
            assert_eq!(
                pod["metadata"]["labels"]["controller-revision-hash"],
                sts["status"]["updateRevision"]
            );
        }
    }
    // DaemonSets run one pod on each Node.
    let nodes: HashSet<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "Node")
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    for ds in objects.iter().filter(|o| o["kind"] == "DaemonSet") {
        let on: HashSet<&str> = pods
            .iter()
            .filter(|p| p["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"])
            .filter_map(|p| p["spec"]["nodeName"].as_str())
            .collect();
        assert_eq!(on, nodes);
    }
}

#[test]
fn the_cluster_is_mid_upgrade_and_looks_real() {
    let list = kube_sim::generate::generate(2_000, 8);
    let objects = items(&list);
    let pods: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "Pod").collect();

    let injector = objects
        .iter()
        .find(|o| o["metadata"]["name"] == "istio-sidecar-injector")
        .expect("injector ConfigMap");
    let values: Value = serde_json::from_str(injector["data"]["values"].as_str().unwrap()).unwrap();
    assert_eq!(values["global"]["tag"], kube_sim::generate::CURRENT_VERSION);
    let istiod: Vec<&&Value> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "istiod")
        .collect();
    assert_eq!(istiod.len(), 2);
    assert!(
        istiod
            .iter()
            .all(|p| p["spec"]["containers"][0]["name"] == "discovery")
    );
    let ready = |p: &Value| {
        p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    };
    assert!(
        istiod.iter().all(|p| ready(p)),
        "the control plane is healthy"
    );

    let proxies: Vec<&str> = pods.iter().filter_map(|p| proxy_image(p)).collect();
    assert!(proxies.len() > pods.len() / 2, "most pods carry a proxy");
    let current = format!(":{}-", kube_sim::generate::CURRENT_VERSION);
    let stale = proxies
        .iter()
        .filter(|i| !i.contains(&current) && !i.contains(":1.25."))
        .count();
    let share = stale as f64 / proxies.len() as f64;
    assert!(
        (0.55..0.85).contains(&share),
        "about 70% of proxies are stale, got {share:.2}"
    );
    assert!(
        proxies.iter().any(|i| i.contains(":1.25.")),
        "a few are newer"
    );
    assert!(
        proxies
            .iter()
            .any(|i| i.starts_with("registry.mirror.example.com/") && i.contains(&current)),
        "a few come from a mirror"
    );
    assert!(
        pods.iter().any(|p| p["spec"]["initContainers"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["name"] == "istio-proxy"))),
        "some are native sidecars"
    );

    for phase in ["Running", "Pending", "Failed", "Succeeded"] {
        assert!(
            pods.iter().any(|p| p["status"]["phase"] == phase),
            "some pods are {phase}"
        );
    }
    assert!(pods.iter().any(|p| {
        p["status"]["phase"] == "Running"
            && p["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "False")
    }));
    for kind in [
        "Namespace",
        "Node",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "Rollout",
    ] {
        assert!(
            objects.iter().any(|o| o["kind"] == kind),
            "the snapshot has {kind}s"
        );
    }
    assert!(
        pods.iter()
            .any(|p| p["metadata"]["ownerReferences"].is_null()),
        "a few bare pods"
    );
    assert!(pods.iter().all(|p| {
        p["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
    }));
    assert!(
        pods.iter()
            .filter(|p| proxy_image(p).is_some())
            .all(|p| p["metadata"]["annotations"]["sidecar.istio.io/status"].is_string())
    );

    // Pods are as large as real ones: several KB of JSON each.
    let bytes: usize = pods
        .iter()
        .map(|p| serde_json::to_vec(p).unwrap().len())
        .sum();
    let per_pod = bytes / pods.len();
    assert!(
        (5_000..12_000).contains(&per_pod),
        "a pod is {per_pod} bytes"
    );
}
