//! The Job controller: runs pods (at most `parallelism` at a time) until `completions` succeeded,
//! or fails the Job when more than `backoffLimit` pods failed. Simulated pods of a Job succeed
//! after a short run. A finished Job is left alone. CronJobs are inert: nothing schedules them.

use std::time::Duration;

use serde_json::{Value, json};

use super::pods::{self, PodInfo, PodName};
use super::{Controllers, Key, meta};

pub fn sync(ctl: &mut Controllers, key: &Key) -> Option<Duration> {
    let job = ctl.get(key)?;
    if meta::is_terminating(&job) || is_finished(&job) {
        return None;
    }
    let uid = meta::uid(&job).to_string();
    let spec = &job["spec"];
    let completions = spec["completions"].as_i64().unwrap_or(1).max(1);
    let parallelism = spec["parallelism"].as_i64().unwrap_or(1).max(0);
    let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6);
    let owned = ctl.pods_of(&uid);
    let phase_count = |phase: &str| owned.iter().filter(|p| p.phase == phase).count() as i64;
    // Finished pods may have been deleted since; the status remembers them.
    let succeeded = phase_count("Succeeded").max(job["status"]["succeeded"].as_i64().unwrap_or(0));
    let failed = phase_count("Failed").max(job["status"]["failed"].as_i64().unwrap_or(0));
    let mut active: Vec<PodInfo> = owned
        .iter()
        .filter(|p| !p.terminating && !matches!(p.phase.as_str(), "Succeeded" | "Failed"))
        .cloned()
        .collect();

    let now = meta::now();
    let mut finished = None;
    if succeeded >= completions {
        finished = Some((
            "Complete",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
        ));
    } else if failed > backoff_limit {
        finished = Some((
            "Failed",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ));
        for pod in active.drain(..) {
            ctl.delete(&pod.key);
        }
    } else if spec["suspend"] != true {
        let wanted = parallelism.min(completions - succeeded);
        for _ in active.len() as i64..wanted.min(active.len() as i64 + super::CREATE_BURST) {
            let job_name = meta::name(&job).to_string();
            let pod = pods::pod_from_template(
                &spec["template"],
                &job,
                PodName::Generated(&format!("{job_name}-")),
                &[
                    ("batch.kubernetes.io/controller-uid", &uid),
                    ("batch.kubernetes.io/job-name", &job_name),
                    ("controller-uid", &uid),
                    ("job-name", &job_name),
                ],
            );
            if let Some(created) = ctl.create_pod(pod) {
                let message = format!("Created pod: {}", meta::name(&created));
                ctl.record_event(&job, "SuccessfulCreate", &message, "job-controller");
                active.push(PodInfo::of(&created));
            }
        }
    }

    if let Some((type_, reason, message)) = finished {
        let reason = if type_ == "Complete" {
            "Completed"
        } else {
            reason
        };
        ctl.record_event(&job, reason, message, "job-controller");
    }
    let ready = active.iter().filter(|p| p.ready).count() as i64;
    let counts = [
        ("active", active.len() as i64),
        ("succeeded", succeeded),
        ("failed", failed),
        ("ready", ready),
    ];
    ctl.modify(key, |obj| {
        let status = &mut obj["status"];
        super::replicaset::set_counts(status, &counts);
        if status["startTime"].is_null() {
            status["startTime"] = json!(now);
        }
        status["terminating"] = json!(0);
        status["uncountedTerminatedPods"] = json!({});
        if let Some((type_, reason, message)) = finished {
            let conditions = meta::ensure_array(&mut status["conditions"]);
            let criteria = if type_ == "Complete" { "SuccessCriteriaMet" } else { "FailureTarget" };
            for t in [criteria, type_] {
                let condition = json!({"type": t, "status": "True", "reason": reason, "message": message,
                                       "lastProbeTime": now});
                meta::set_condition(conditions, condition, &now);
            }
            if type_ == "Complete" {
                status["completionTime"] = json!(now);
            }
        }
    });
    // More pods to create than one burst: continue shortly.
    let wanted_more = finished.is_none()
        && spec["suspend"] != true
        && ready_for_more(&active, parallelism, completions - succeeded);
    wanted_more.then_some(Duration::from_millis(10))
}

fn ready_for_more(active: &[PodInfo], parallelism: i64, remaining: i64) -> bool {
    (active.len() as i64) < parallelism.min(remaining)
}

fn is_finished(job: &Value) -> bool {
    ["Complete", "Failed"]
        .iter()
        .any(|t| meta::condition(job, t).is_some_and(|c| c["status"] == "True"))
}
