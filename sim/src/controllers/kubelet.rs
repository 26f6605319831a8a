//! The scheduler and the kubelet: a pod created while the simulation runs is scheduled onto a
//! node at once, starts its containers after half of `pod_start`, and is Ready after `pod_start`.
//! Pods of a Job then run to completion. The [`NEW_PODS_ANNOTATION`] scenario makes a pod
//! crash-loop or stay unschedulable instead.
//!
//! Only pods created while the simulation runs are started: pods loaded from the state are never
//! touched, so a loaded Pending, Failed or crash-looping pod stays as the state describes it.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Controllers, Key, NEW_PODS_ANNOTATION, meta};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    Start,
    CrashLoop,
    Unschedulable,
}

struct ManagedPod {
    uid: String,
    since: Instant,
    started_at: String,
    behaviour: Behaviour,
    runs_to_completion: bool,
}

/// The pod annotation (from its template) that keeps a pod Running and never Ready: the knob
/// the upstream control plane's kwok Stages honour too, so a scenario can use it on both.
pub const NEVER_READY_ANNOTATION: &str = "kube-sim.kyma-project.io/never-ready";

#[derive(Default)]
pub struct Kubelet {
    pods: HashMap<Key, ManagedPod>,
    next_node: usize,
    next_ip: u32,
}

impl Kubelet {
    /// Takes charge of a pod just created through the API or by a controller: one that is
    /// Pending with no conditions yet. A pod created with a status of its own (a test arranging a
    /// Running pod, say) is left as it was created.
    pub fn adopt_if_new(&mut self, key: &Key, pod: &Value) {
        let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
        let has_conditions = pod["status"]["conditions"]
            .as_array()
            .is_some_and(|c| !c.is_empty());
        let known = self.pods.get(key).is_some_and(|m| m.uid == meta::uid(pod));
        if known || phase != "Pending" || has_conditions || meta::is_terminating(pod) {
            return;
        }
        let never_ready = meta::annotation(pod, NEVER_READY_ANNOTATION) == Some("true");
        let behaviour = match meta::annotation(pod, NEW_PODS_ANNOTATION) {
            _ if never_ready => Behaviour::CrashLoop,
            Some("crash-loop") => Behaviour::CrashLoop,
            Some("unschedulable") => Behaviour::Unschedulable,
            _ => Behaviour::Start,
        };
        let runs_to_completion = meta::controller_of(pod)
            .is_some_and(|(_, kind, _, _)| kind == "Job")
            || pod["spec"]["restartPolicy"]
                .as_str()
                .is_some_and(|p| p != "Always");
        self.pods.insert(
            key.clone(),
            ManagedPod {
                uid: meta::uid(pod).to_string(),
                since: Instant::now(),
                started_at: meta::now(),
                behaviour,
                runs_to_completion,
            },
        );
    }

    pub fn forget(&mut self, key: &Key, uid: &str) {
        if self.pods.get(key).is_some_and(|p| p.uid == uid) {
            self.pods.remove(key);
        }
    }

    pub fn keys(&self) -> Vec<Key> {
        self.pods.keys().cloned().collect()
    }

    fn pick_node(&mut self, nodes: &[String]) -> String {
        self.next_node += 1;
        nodes[self.next_node % nodes.len()].clone()
    }

    fn pick_ip(&mut self) -> String {
        self.next_ip += 1;
        format!(
            "10.244.{}.{}",
            (self.next_ip / 250) % 250,
            self.next_ip % 250 + 2
        )
    }
}

/// The stage a managed pod has reached.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    Unschedulable,
    Creating,
    Starting,
    Ready,
    CrashLooping { restarts: u64 },
    Succeeded,
    Failed,
}

pub fn sync(ctl: &mut Controllers, key: &Key) -> Option<Duration> {
    let pod = ctl.get(key)?;
    if meta::is_terminating(&pod) {
        // The API removes pods at once; one held by finalizers stays until they are removed.
        ctl.kubelet.pods.remove(key);
        return None;
    }
    let managed = ctl
        .kubelet
        .pods
        .get(key)
        .filter(|m| m.uid == meta::uid(&pod))?;
    let start = ctl.cfg.pod_start;
    let elapsed = managed.since.elapsed();
    let crash_interval = start.max(Duration::from_millis(500));
    let (stage, next) = match managed.behaviour {
        Behaviour::Unschedulable => (Stage::Unschedulable, None),
        _ if elapsed < start / 2 => (Stage::Creating, Some(start / 2 - elapsed)),
        _ if elapsed < start => (Stage::Starting, Some(start - elapsed)),
        Behaviour::CrashLoop if managed.runs_to_completion => (Stage::Failed, None),
        Behaviour::CrashLoop => {
            let since_start = elapsed - start;
            let restarts = 1 + (since_start.as_millis() / crash_interval.as_millis()) as u64;
            let next = crash_interval * restarts as u32 + start - elapsed;
            (Stage::CrashLooping { restarts }, Some(next))
        }
        Behaviour::Start if managed.runs_to_completion && elapsed >= start * 2 => {
            (Stage::Succeeded, None)
        }
        Behaviour::Start if managed.runs_to_completion => (Stage::Ready, Some(start * 2 - elapsed)),
        Behaviour::Start => (Stage::Ready, None),
    };
    let started_at = managed.started_at.clone();
    if next.is_none() && !matches!(stage, Stage::CrashLooping { .. }) {
        ctl.kubelet.pods.remove(key);
    }
    let node = match pod["spec"]["nodeName"].as_str() {
        Some(node) => node.to_string(),
        None => {
            let nodes = ctl.node_names();
            ctl.kubelet.pick_node(&nodes)
        }
    };
    let pod_ip = match pod["status"]["podIP"].as_str() {
        Some(ip) => ip.to_string(),
        None => ctl.kubelet.pick_ip(),
    };
    ctl.modify(key, |pod| {
        if stage != Stage::Unschedulable {
            pod["spec"]["nodeName"] = json!(node);
        }
        pod["status"] = pod_status(pod, stage, &started_at, &pod_ip);
    });
    next.map(|n| n + Duration::from_millis(1))
}

/// The pod status a kubelet reports at a stage.
fn pod_status(pod: &Value, stage: Stage, started_at: &str, pod_ip: &str) -> Value {
    let now = meta::now();
    let cond = |type_: &str, ok: bool, reason: Option<&str>| {
        let mut c = json!({"type": type_, "status": if ok { "True" } else { "False" }, "lastProbeTime": null});
        if let Some(reason) = reason {
            c["reason"] = json!(reason);
        }
        c
    };
    if stage == Stage::Unschedulable {
        let mut scheduled = cond("PodScheduled", false, Some("Unschedulable"));
        scheduled["message"] = json!(
            "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
        );
        return json!({"phase": "Pending", "conditions": [with_time(scheduled, &now)], "qosClass": qos_class(pod)});
    }
    let running = matches!(
        stage,
        Stage::Starting | Stage::Ready | Stage::CrashLooping { .. }
    );
    let ready = stage == Stage::Ready;
    let done = matches!(stage, Stage::Succeeded | Stage::Failed);
    let phase_name = match stage {
        Stage::Creating => "Pending",
        Stage::Succeeded => "Succeeded",
        Stage::Failed => "Failed",
        _ => "Running",
    };
    let not_ready_reason = if done {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let conditions: Vec<Value> = vec![
        cond("PodReadyToStartContainers", !done, None),
        cond("Initialized", stage != Stage::Creating, None),
        cond("Ready", ready, (!ready).then_some(not_ready_reason)),
        cond(
            "ContainersReady",
            ready,
            (!ready).then_some(not_ready_reason),
        ),
        cond("PodScheduled", true, None),
    ]
    .into_iter()
    .map(|c| {
        // A condition keeps its transition time until its status changes.
        let since = pod["status"]["conditions"]
            .as_array()
            .and_then(|old| {
                old.iter()
                    .find(|o| o["type"] == c["type"] && o["status"] == c["status"])
            })
            .and_then(|o| o["lastTransitionTime"].as_str())
            .unwrap_or(&now)
            .to_string();
        with_time(c, &since)
    })
    .collect();

    let container_status = |container: &Value, sidecar: bool| {
        let name = container["name"].as_str().unwrap_or_default();
        let image = container["image"].as_str().unwrap_or_default();
        let crashing = matches!(stage, Stage::CrashLooping { .. }) && name != "istio-proxy";
        let restarts = match stage {
            Stage::CrashLooping { restarts } if crashing => restarts,
            _ => 0,
        };
        let (state, container_ready) = if stage == Stage::Creating {
            (json!({"waiting": {"reason": "ContainerCreating"}}), false)
        } else if crashing {
            let message = format!(
                "back-off 10s restarting failed container={name} pod={}",
                meta::name(pod)
            );
            (
                json!({"waiting": {"reason": "CrashLoopBackOff", "message": message}}),
                false,
            )
        } else if done && !sidecar {
            let (reason, code) = if stage == Stage::Succeeded {
                ("Completed", 0)
            } else {
                ("Error", 1)
            };
            (
                json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started_at, "finishedAt": now}}),
                false,
            )
        } else {
            (
                json!({"running": {"startedAt": started_at}}),
                running && (ready || name == "istio-proxy"),
            )
        };
        let mut status = json!({
            "name": name,
            "image": image,
            "imageID": format!("{}@sha256:{:064x}", repository(image), meta::hash_json(&json!(image))),
            "ready": container_ready,
            "started": running && state.get("waiting").is_none(),
            "restartCount": restarts,
            "state": state,
        });
        if stage != Stage::Creating {
            status["containerID"] = json!(format!(
                "containerd://{:064x}",
                meta::hash_json(&json!([meta::uid(pod), name]))
            ));
        }
        if restarts > 0 {
            status["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started_at, "finishedAt": now}});
        }
        status
    };
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| cs.iter().map(|c| container_status(c, false)).collect())
        .unwrap_or_default();
    let init_containers: Vec<Value> = pod["spec"]["initContainers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let sidecar = c["restartPolicy"] == "Always";
                    if sidecar || stage == Stage::Creating {
                        container_status(c, true)
                    } else {
                        let mut s = container_status(c, true);
                        s["ready"] = json!(true);
                        s["started"] = json!(false);
                        s["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started_at, "finishedAt": started_at}});
                        s
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut status = json!({
        "phase": phase_name,
        "conditions": conditions,
        "hostIP": "10.250.0.10",
        "hostIPs": [{"ip": "10.250.0.10"}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": started_at,
        "containerStatuses": containers,
        "qosClass": qos_class(pod),
    });
    if !init_containers.is_empty() {
        status["initContainerStatuses"] = json!(init_containers);
    }
    status
}

/// An image reference without its tag or digest.
fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    }
}

fn with_time(mut condition: Value, time: &str) -> Value {
    condition["lastTransitionTime"] = json!(time);
    condition
}

fn qos_class(pod: &Value) -> &'static str {
    let containers = pod["spec"]["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if containers
        .iter()
        .all(|c| c["resources"].as_object().is_none_or(|r| r.is_empty()))
    {
        "BestEffort"
    } else {
        "Burstable"
    }
}
