//! The plan's time grows with the pods, not with their square, whatever the shape of the owners:
//! pods without a controller and pods each owned by a custom resource are a workload each
//! (DESIGN §6; `benches/owners.rs` measures the same shapes as whole processes).

use std::time::{Duration, Instant};

use istio_proxy_reset::controlplane::{ControlPlane, Options};
use istio_proxy_reset::inventory::model::Object;
use istio_proxy_reset::inventory::{Inventory, InventoryBuilder};
use istio_proxy_reset::plan::{Action, PlanOptions, plan};

fn inventory(pods: usize, custom_owner: bool) -> Inventory {
    let mut builder = InventoryBuilder::new();
    for i in 0..pods {
        let mut pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("task-{i:06}"), "namespace": format!("ci-{}", i / 1000)},
            "spec": {"containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.23.2"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        if custom_owner {
            pod["metadata"]["ownerReferences"] = serde_json::json!([{"apiVersion": "tekton.dev/v1",
                "kind": "TaskRun", "name": format!("run-{i:06}"), "controller": true}]);
        }
        let object: Object = serde_json::from_value(pod).unwrap();
        builder.add(object, format_args!("pod {i}")).unwrap();
    }
    builder.finish()
}

/// The best of three plans of `pods` pods.
fn plan_time(pods: usize, custom_owner: bool) -> Duration {
    let inventory = inventory(pods, custom_owner);
    let options = Options {
        istio_namespace: "istio-system".into(),
        expected_version: Some("1.24.1".into()),
        ..Options::default()
    };
    let control_plane = ControlPlane::resolve(&inventory, &options).unwrap();
    (0..3)
        .map(|_| {
            let started = Instant::now();
            let planned = plan(&inventory, &control_plane, &PlanOptions::default());
            let took = started.elapsed();
            assert_eq!(planned.workloads.len(), pods);
            assert!(planned.workloads.iter().all(|w| w.action == Action::Manual));
            took
        })
        .min()
        .unwrap()
}

#[test]
fn a_workload_per_pod_plans_in_linear_time() {
    for custom_owner in [false, true] {
        let small = plan_time(2_500, custom_owner);
        let large = plan_time(20_000, custom_owner);
        let ratio = large.as_secs_f64() / small.as_secs_f64();
        // Eight times the pods: about 8x when linear (a little more for the sort), 64x when
        // every workload scans every pod. 24x leaves room for a loaded machine.
        assert!(
            ratio < 24.0,
            "custom owner {custom_owner}: 2,500 pods planned in {small:?}, 20,000 in {large:?} \
             ({ratio:.1}x for 8x the pods)"
        );
    }
}
