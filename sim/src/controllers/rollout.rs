//! The Argo Rollouts controller, as far as restarts go: ReplicaSets per template like a
//! Deployment (label `rollouts-pod-template-hash`, owner kind `Rollout`), rolled within the canary
//! `maxSurge`/`maxUnavailable` (blue-green and canary steps are not simulated: every strategy rolls
//! like a canary without steps), and `spec.restartAt`: once that time has come, the pods created
//! before it are replaced one at a time, each only when all pods are Ready, and `status.restartedAt`
//! records the restart as done. A Rollout paused (`spec.paused`, `status.pauseConditions`,
//! `status.controllerPause`) rolls nothing and ignores `restartAt`, as Argo does.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::deployment::{self, Progress, Strategy};
use super::pods::PodInfo;
use super::replicaset::owned_pods;
use super::{Controllers, Key, meta};

const HASH_LABEL: &str = "rollouts-pod-template-hash";

pub fn sync(ctl: &mut Controllers, key: &Key) -> Option<Duration> {
    let rollout = ctl.get(key)?;
    if meta::is_terminating(&rollout) {
        return None;
    }
    let spec = &rollout["spec"];
    let desired = spec["replicas"].as_i64().unwrap_or(1).max(0);
    let canary = &spec["strategy"]["canary"];
    let strategy = Strategy {
        hash_label: HASH_LABEL,
        revision_annotation: "rollout.argoproj.io/revision",
        desired,
        max_surge: meta::int_or_percent(&canary["maxSurge"], desired, "25%", true),
        max_unavailable: meta::int_or_percent(&canary["maxUnavailable"], desired, "25%", false),
        recreate: false,
        // Argo holds a Rollout on `spec.paused`, on a pause of its own (a canary pause step, a
        // blue-green pre-promotion pause: `status.pauseConditions`) and on `controllerPause`.
        paused: spec["paused"] == true
            || rollout["status"]["pauseConditions"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
            || rollout["status"]["controllerPause"] == true,
        revision_history_limit: spec["revisionHistoryLimit"].as_u64().unwrap_or(10) as usize,
    };
    let sets = deployment::reconcile_replica_sets(ctl, &rollout, &strategy);
    let rolled_out = sets.old.iter().all(|rs| rs.target == 0 && rs.pods == 0);

    let mut requeue = None;
    let mut restarted_at = rollout["status"]["restartedAt"].clone();
    let mut restart_pending = false;
    let mut restarted_one = false;
    let restart_at_text = spec["restartAt"].as_str().unwrap_or_default();
    if let (Some(restart_at), Some(current)) = (meta::parse_time(restart_at_text), &sets.current)
        && rolled_out
        && !strategy.paused
        && restarted_at.as_str() != Some(restart_at_text)
    {
        let now = Utc::now();
        if restart_at > now {
            restart_pending = true;
            requeue = (restart_at - now)
                .to_std()
                .ok()
                .map(|d| d + Duration::from_millis(50));
        } else {
            let mut running = owned_pods(ctl, &current.obj);
            running.sort_by_key(|p| (p.created, p.name().to_string()));
            let stale: Vec<&PodInfo> = running
                .iter()
                .filter(|p| p.created.is_none_or(|t| t < restart_at))
                .collect();
            if stale.is_empty() {
                if running.len() as i64 == desired {
                    restarted_at = json!(restart_at_text);
                } else {
                    restart_pending = true;
                }
            } else {
                restart_pending = true;
                let all_ready = running.len() as i64 == desired && running.iter().all(|p| p.ready);
                if all_ready {
                    let key = stale[0].key.clone();
                    ctl.delete(&key);
                    restarted_one = true;
                }
            }
        }
    }

    let replicas = sets.sum(|rs| rs.pods);
    let updated = sets.current.as_ref().map_or(0, |rs| rs.pods);
    let ready = sets.sum(|rs| rs.ready);
    let available = sets.sum(|rs| rs.available);
    let hash = sets
        .current
        .as_ref()
        .and_then(|rs| meta::label(&rs.obj, HASH_LABEL))
        .map(str::to_string);
    let complete = rolled_out && updated == desired && available == desired && replicas == desired;
    let previous = &rollout["status"];
    let was = |f: &str| previous[f].as_i64().unwrap_or(0);
    let progress = Progress {
        paused: strategy.paused,
        complete: complete && !restart_pending,
        progressed: sets.changed
            || restarted_one
            || updated > was("updatedReplicas")
            || ready > was("readyReplicas")
            || available > was("availableReplicas")
            || replicas - updated < was("replicas") - was("updatedReplicas"),
        created: sets.changed,
    };
    let now = meta::now();
    let mut conditions: Vec<Value> = previous["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let check_again =
        deployment::update_progressing(&mut conditions, &rollout, progress, &sets, &now);
    requeue = match (requeue, check_again) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let timed_out = conditions
        .iter()
        .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
    let (phase, message) = if strategy.paused {
        ("Paused", "manually paused".to_string())
    } else if timed_out {
        let rs = sets
            .current
            .as_ref()
            .map(|rs| meta::name(&rs.obj))
            .unwrap_or_default();
        (
            "Degraded",
            format!("ProgressDeadlineExceeded: ReplicaSet \"{rs}\" has timed out progressing."),
        )
    } else if complete && !restart_pending {
        ("Healthy", String::new())
    } else {
        (
            "Progressing",
            "more replicas need to be updated".to_string(),
        )
    };
    let counts = [
        ("replicas", replicas),
        ("updatedReplicas", updated),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("HPAReplicas", replicas),
    ];
    let generation = meta::generation(&rollout).to_string();
    ctl.modify(key, |obj| {
        let status = &mut obj["status"];
        super::replicaset::set_counts(status, &counts);
        // Argo reports the observed generation as a string.
        status["observedGeneration"] = json!(generation);
        status["phase"] = json!(phase);
        status["message"] = json!(message);
        if !restarted_at.is_null() {
            status["restartedAt"] = restarted_at.clone();
        }
        status["conditions"] = json!(conditions);
        if let Some(hash) = &hash {
            status["currentPodHash"] = json!(hash);
            if complete {
                status["stableRS"] = json!(hash);
            }
        }
    });
    requeue
}
