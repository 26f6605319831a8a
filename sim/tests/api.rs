//! The API as the production `kube` client sees it, against an in-process sim.

mod common;

use std::time::Duration;

use common::{admin_client, await_condition, namespace, ready_pod, shop_state};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{
    Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams, Preconditions,
    WatchEvent, WatchParams,
};
use kube_sim::{SimConfig, start};
use serde_json::json;

fn quiet(state: serde_json::Value) -> SimConfig {
    // No controllers: the tests here arrange every object themselves.
    SimConfig {
        state,
        controllers: false,
        ..Default::default()
    }
}

fn api_code(result: Result<impl std::fmt::Debug, kube::Error>) -> u16 {
    match result {
        Err(kube::Error::Api(status)) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paginated_list_is_a_stable_snapshot_across_pages() {
    let sim = start(quiet(shop_state(120))).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(admin_client(&sim).await, "shop");

    let first = pods.list(&ListParams::default().limit(50)).await.unwrap();
    assert_eq!(first.items.len(), 50);
    let token = first.metadata.continue_.clone().expect("a continue token");
    // Writes between pages must not show in the later pages.
    pods.delete("pod-0100", &DeleteParams::default())
        .await
        .unwrap();
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(ready_pod("shop", "pod-0060x", json!({}))).unwrap(),
    )
    .await
    .unwrap();

    let mut names: Vec<String> = first
        .items
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    let mut next = Some(token);
    let mut pages = 1;
    while let Some(token) = next {
        let page = pods
            .list(&ListParams::default().limit(50).continue_token(&token))
            .await
            .unwrap();
        assert_eq!(
            page.metadata.resource_version, first.metadata.resource_version,
            "pages share one snapshot"
        );
        names.extend(page.items.iter().map(|p| p.metadata.name.clone().unwrap()));
        next = page.metadata.continue_.filter(|t| !t.is_empty());
        pages += 1;
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..120).map(|i| format!("pod-{i:04}")).collect();
    assert_eq!(names, expected);

    // A fresh list sees the writes.
    let now = pods.list(&ListParams::default()).await.unwrap();
    let now: Vec<_> = now
        .items
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert!(now.contains(&"pod-0060x".to_string()) && !now.contains(&"pod-0100".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_token_older_than_history_is_410_expired() {
    let sim = start(SimConfig {
        history_limit: 5,
        ..quiet(shop_state(10))
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(admin_client(&sim).await, "shop");
    let first = pods.list(&ListParams::default().limit(3)).await.unwrap();
    for i in 0..6 {
        let patch = json!({"metadata": {"labels": {"touched": "yes"}}});
        pods.patch(
            &format!("pod-{i:04}"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    }
    let token = first.metadata.continue_.unwrap();
    match pods
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected 410, got {other:?}"),
    }
    // A token that is not one is a 400.
    assert_eq!(
        api_code(
            pods.list(&ListParams::default().continue_token("garbage"))
                .await
        ),
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_filter_lists() {
    let sim = start(quiet(shop_state(6))).await.unwrap();
    let pods: Api<Pod> = Api::all(admin_client(&sim).await);
    let names = |list: kube::core::ObjectList<Pod>| -> Vec<String> {
        list.items
            .into_iter()
            .map(|p| p.metadata.name.unwrap())
            .collect()
    };
    let listed = pods
        .list(&ListParams::default().labels("index in (1,3),app=shop"))
        .await
        .unwrap();
    assert_eq!(names(listed), ["pod-0001", "pod-0003"]);
    let listed = pods
        .list(&ListParams::default().labels("index notin (0,1,2,3),!missing"))
        .await
        .unwrap();
    assert_eq!(names(listed), ["pod-0004", "pod-0005"]);
    let listed = pods
        .list(
            &ListParams::default()
                .fields("metadata.name=pod-0002,status.phase=Running,spec.nodeName=node-1"),
        )
        .await
        .unwrap();
    assert_eq!(names(listed), ["pod-0002"]);
    let listed = pods
        .list(&ListParams::default().fields("metadata.namespace!=shop"))
        .await
        .unwrap();
    assert!(listed.items.is_empty());
    assert_eq!(
        api_code(
            pods.list(&ListParams::default().labels("index in (1"))
                .await
        ),
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_from_its_last_version_after_the_stream_drops() {
    let sim = start(quiet(shop_state(3))).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(admin_client(&sim).await, "shop");
    let listed = pods.list(&ListParams::default()).await.unwrap();
    let rv = listed.metadata.resource_version.unwrap();

    let no_bookmarks = WatchParams::default().disable_bookmarks();
    let mut stream = pods.watch(&no_bookmarks, &rv).await.unwrap().boxed();
    let patch = json!({"metadata": {"labels": {"step": "1"}}});
    pods.patch("pod-0000", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let last_seen = match tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await {
        Ok(Ok(Some(WatchEvent::Modified(pod)))) => pod.metadata.resource_version.unwrap(),
        other => panic!("expected MODIFIED, got {other:?}"),
    };
    drop(stream); // the connection goes away

    // Changes while no one watches are delivered when the watch resumes.
    pods.delete("pod-0001", &DeleteParams::default())
        .await
        .unwrap();
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(ready_pod("shop", "late", json!({}))).unwrap(),
    )
    .await
    .unwrap();
    let resumed = pods.watch(&no_bookmarks, &last_seen).await.unwrap();
    let events: Vec<_> = tokio::time::timeout(
        Duration::from_secs(5),
        resumed.take(2).try_collect::<Vec<_>>(),
    )
    .await
    .expect("events in time")
    .unwrap();
    match (&events[0], &events[1]) {
        (WatchEvent::Deleted(gone), WatchEvent::Added(new)) => {
            assert_eq!(gone.metadata.name.as_deref(), Some("pod-0001"));
            assert_eq!(new.metadata.name.as_deref(), Some("late"));
        }
        other => panic!("unexpected events {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sends_bookmarks_and_410_for_versions_older_than_history() {
    let sim = start(SimConfig {
        history_limit: 2,
        bookmark_interval: Duration::from_millis(100),
        ..quiet(shop_state(3))
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(admin_client(&sim).await, "shop");
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();

    let mut stream = pods
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await {
        Ok(Ok(Some(WatchEvent::Bookmark(b)))) => assert_eq!(b.metadata.resource_version, rv),
        other => panic!("expected a BOOKMARK, got {other:?}"),
    }
    drop(stream);

    for i in 0..3 {
        let patch = json!({"metadata": {"labels": {"step": i.to_string()}}});
        pods.patch("pod-0000", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
    let mut stream = pods
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await {
        Ok(Ok(Some(WatchEvent::Error(e)))) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_update_is_409_and_delete_preconditions_hold() {
    let sim = start(quiet(shop_state(1))).await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(admin_client(&sim).await, "shop");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "report"}, "data": {"a": "1"}}))
            .unwrap();
    let created = maps.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert_eq!(
        api_code(maps.create(&PostParams::default(), &cm).await),
        409
    );

    let mut first = created.clone();
    first.data = Some([("a".to_string(), "2".to_string())].into());
    let updated = maps
        .replace("report", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    // `created` carries the old resourceVersion now.
    match maps
        .replace("report", &PostParams::default(), &created)
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
            assert!(
                status.message.contains("the object has been modified"),
                "{}",
                status.message
            );
        }
        other => panic!("expected 409, got {other:?}"),
    }

    let stale = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: created.metadata.resource_version.clone(),
            uid: None,
        }),
        ..Default::default()
    };
    assert_eq!(api_code(maps.delete("report", &stale).await), 409);
    let current = DeleteParams {
        preconditions: Some(Preconditions {
            uid: updated.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    maps.delete("report", &current).await.unwrap();
    assert_eq!(api_code(maps.get("report").await), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_patch_type_applies_and_bad_patches_are_rejected() {
    let sim = start(quiet(shop_state(1))).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(admin_client(&sim).await, "shop");
    let pp = PatchParams::default();

    // Strategic merge: the container list merges by name.
    let sidecar =
        json!({"spec": {"containers": [{"name": "istio-proxy", "image": "proxyv2:1.24.1"}]}});
    let pod = pods
        .patch("pod-0000", &pp, &Patch::Strategic(&sidecar))
        .await
        .unwrap();
    let images: Vec<_> = pod
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.image.unwrap())
        .collect();
    assert_eq!(images, ["registry.example/app:1", "proxyv2:1.24.1"]);

    // JSON merge: lists are replaced whole, null deletes.
    let merge = json!({"metadata": {"labels": {"index": null, "tier": "front"}}});
    let pod = pods
        .patch("pod-0000", &pp, &Patch::Merge(&merge))
        .await
        .unwrap();
    let labels = pod.metadata.labels.unwrap();
    assert_eq!(labels.get("tier").map(String::as_str), Some("front"));
    assert!(!labels.contains_key("index"));

    // JSON patch, with a test that holds and one that does not.
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/labels/tier", "value": "front"},
        {"op": "replace", "path": "/spec/containers/1/image", "value": "proxyv2:1.24.2"}
    ]))
    .unwrap();
    let pod = pods
        .patch("pod-0000", &pp, &Patch::Json::<()>(ops))
        .await
        .unwrap();
    assert_eq!(
        pod.spec.unwrap().containers[1].image.as_deref(),
        Some("proxyv2:1.24.2")
    );
    let failing: json_patch::Patch = serde_json::from_value(
        json!([{"op": "test", "path": "/metadata/labels/tier", "value": "back"}]),
    )
    .unwrap();
    assert_eq!(
        api_code(
            pods.patch("pod-0000", &pp, &Patch::Json::<()>(failing))
                .await
        ),
        422
    );

    // A patch that leaves an invalid object, and a patch of something that does not exist.
    let invalid = json!({"spec": {"containers": [{"name": "app", "image": ""}]}});
    assert_eq!(
        api_code(
            pods.patch("pod-0000", &pp, &Patch::Strategic(&invalid))
                .await
        ),
        422
    );
    assert_eq!(
        api_code(pods.patch("missing", &pp, &Patch::Merge(&merge)).await),
        404
    );
    // A patch with a stale resourceVersion conflicts.
    let stale = json!({"metadata": {"resourceVersion": "1", "labels": {"x": "y"}}});
    assert_eq!(
        api_code(pods.patch("pod-0000", &pp, &Patch::Merge(&stale)).await),
        409
    );
}

fn pdb(min_available: serde_json::Value) -> PodDisruptionBudget {
    serde_json::from_value(json!({
        "metadata": {"name": "shop"},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": "shop"}}}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_honours_the_disruption_budget() {
    let sim = start(quiet(shop_state(3))).await.unwrap();
    let client = admin_client(&sim).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client, "shop");
    budgets
        .create(&PostParams::default(), &pdb(json!(2)))
        .await
        .unwrap();
    let settled = await_condition(Duration::from_secs(5), || async {
        let status = budgets.get("shop").await.unwrap().status;
        status.is_some_and(|s| s.current_healthy == 3 && s.disruptions_allowed == 1)
    })
    .await;
    assert!(settled, "the budget's status is kept up to date");

    pods.evict("pod-0000", &EvictParams::default())
        .await
        .unwrap();
    assert_eq!(api_code(pods.get("pod-0000").await), 404);

    match pods.evict("pod-0001", &EvictParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (429, "TooManyRequests")
            );
            assert!(
                status.message.contains("disruption budget"),
                "{}",
                status.message
            );
        }
        other => panic!("expected 429, got {other:?}"),
    }
    assert!(
        pods.get("pod-0001").await.is_ok(),
        "a blocked eviction deletes nothing"
    );

    // Percentages round up: 50% of 2 pods is 1, so one may go.
    budgets
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minAvailable": "50%"}})),
        )
        .await
        .unwrap();
    let updated = await_condition(Duration::from_secs(5), || async {
        let status = budgets
            .get("shop")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        (status.desired_healthy, status.disruptions_allowed) == (1, 1)
    })
    .await;
    assert!(updated, "a changed budget gets a new status");
    pods.evict("pod-0001", &EvictParams::default())
        .await
        .unwrap();
    assert_eq!(
        api_code(pods.evict("missing", &EvictParams::default()).await),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_generated_names() {
    let sim = start(quiet(common::list(vec![namespace("shop")])))
        .await
        .unwrap();
    let client = admin_client(&sim).await;
    let events: Api<Event> = Api::namespaced(client.clone(), "shop");
    let event: Event = serde_json::from_value(json!({
        "metadata": {"generateName": "orders."},
        "involvedObject": {"kind": "Deployment", "name": "orders", "namespace": "shop"},
        "reason": "ProxyRestarted", "message": "restarted for proxy 1.24.1", "type": "Normal"
    }))
    .unwrap();
    let created = events.create(&PostParams::default(), &event).await.unwrap();
    assert!(created.metadata.name.unwrap().starts_with("orders."));
    let listed = events
        .list(&ListParams::default().fields("involvedObject.name=orders"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);

    let new_events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), "shop");
    let event = serde_json::from_value(json!({
        "metadata": {"name": "orders.1"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "istio-proxy-reset", "reportingInstance": "job", "action": "Restart",
        "reason": "ProxyRestarted", "type": "Normal", "regarding": {"kind": "Deployment", "name": "orders"}
    }))
    .unwrap();
    new_events
        .create(&PostParams::default(), &event)
        .await
        .unwrap();
    assert_eq!(
        new_events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Objects cannot be created in a namespace that does not exist.
    let elsewhere: Api<ConfigMap> = Api::namespaced(client, "nowhere");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
    assert_eq!(
        api_code(elsewhere.create(&PostParams::default(), &cm).await),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_log_records_method_path_query_and_status() {
    let sim = start(quiet(shop_state(2))).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(admin_client(&sim).await, "shop");
    pods.list(&ListParams::default().limit(1)).await.unwrap();
    let _ = pods.get("missing").await;
    let records = sim.requests();
    let lines: Vec<String> = records.iter().map(|r| r.line()).collect();
    assert!(
        lines.contains(&"GET /api/v1/namespaces/shop/pods?&limit=1 200".to_string())
            || lines.contains(&"GET /api/v1/namespaces/shop/pods?limit=1 200".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"GET /api/v1/namespaces/shop/pods/missing 404".to_string()),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_ends_its_initial_events_with_a_bookmark() {
    let sim = start(quiet(shop_state(3))).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(admin_client(&sim).await, "shop");
    let stream = pods
        .watch(&WatchParams::streaming_lists(), "")
        .await
        .unwrap();
    let events: Vec<_> = tokio::time::timeout(
        Duration::from_secs(5),
        stream.take(4).try_collect::<Vec<_>>(),
    )
    .await
    .expect("events in time")
    .unwrap();
    assert!(
        events[..3]
            .iter()
            .all(|e| matches!(e, WatchEvent::Added(_))),
        "{events:?}"
    );
    match &events[3] {
        WatchEvent::Bookmark(b) => {
            assert_eq!(
                b.metadata
                    .annotations
                    .get("k8s.io/initial-events-end")
                    .map(String::as_str),
                Some("true")
            )
        }
        other => panic!("expected the closing BOOKMARK, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_unavailable_counts_the_replicas_the_controller_wants() {
    // Three pods of one Deployment (through its ReplicaSet), at most one unavailable.
    let owner = |kind: &str, name: &str, uid: &str, api_version: &str| json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true}]);
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "web:1"}]}});
    let mut items = vec![
        namespace("shop"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "shop", "uid": "d-1"},
               "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": "web-1", "namespace": "shop", "uid": "rs-1", "ownerReferences": owner("Deployment", "web", "d-1", "apps/v1")},
               "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
    ];
    for i in 0..3 {
        let mut pod = ready_pod("shop", &format!("web-1-{i}"), json!({"app": "web"}));
        pod["metadata"]["ownerReferences"] = owner("ReplicaSet", "web-1", "rs-1", "apps/v1");
        items.push(pod);
    }
    let sim = start(quiet(common::list(items))).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(admin_client(&sim).await, "shop");
    pods.evict("web-1-0", &EvictParams::default())
        .await
        .unwrap();
    // Two pods are left, but the Deployment wants three: one is already unavailable.
    assert_eq!(
        api_code(pods.evict("web-1-1", &EvictParams::default()).await),
        429
    );
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(admin_client(&sim).await, "shop");
    let settled = await_condition(Duration::from_secs(5), || async {
        let status = budgets.get("web").await.unwrap().status.unwrap_or_default();
        (
            status.expected_pods,
            status.current_healthy,
            status.desired_healthy,
            status.disruptions_allowed,
        ) == (3, 2, 2, 0)
    })
    .await;
    assert!(settled, "{:?}", budgets.get("web").await.unwrap().status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_only_through_the_status_subresource_and_dry_runs_persist_nothing() {
    let sim = start(quiet(shop_state(1))).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(admin_client(&sim).await, "shop");
    let before = pods.get("pod-0000").await.unwrap();

    let failed = json!({"status": {"phase": "Failed"}, "metadata": {"labels": {"seen": "yes"}}});
    let pod = pods
        .patch("pod-0000", &PatchParams::default(), &Patch::Merge(&failed))
        .await
        .unwrap();
    assert_eq!(
        pod.status.as_ref().unwrap().phase.as_deref(),
        Some("Running"),
        "the main resource ignores status"
    );
    let pod = pods
        .patch_status("pod-0000", &PatchParams::default(), &Patch::Merge(&failed))
        .await
        .unwrap();
    assert_eq!(
        pod.status.as_ref().unwrap().phase.as_deref(),
        Some("Failed")
    );
    assert_eq!(pod.metadata.generation, before.metadata.generation);

    let image = json!({"spec": {"containers": [{"name": "app", "image": "app:2"}]}});
    let dry = pods
        .patch(
            "pod-0000",
            &PatchParams::default().dry_run(),
            &Patch::Strategic(&image),
        )
        .await
        .unwrap();
    assert_eq!(
        dry.spec.unwrap().containers[0].image.as_deref(),
        Some("app:2")
    );
    let stored = pods.get("pod-0000").await.unwrap();
    assert_eq!(
        stored.spec.unwrap().containers[0].image.as_deref(),
        Some("registry.example/app:1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_objects_and_patches_are_rejected_and_the_server_carries_on() {
    let sim = start(quiet(shop_state(1))).await.unwrap();
    let client = admin_client(&sim).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let pp = PatchParams::default();
    let patches = [
        Patch::Merge(json!({"metadata": "oops"})),
        Patch::Merge(json!({"spec": 5})),
        Patch::Strategic(json!({"spec": {"containers": "none"}})),
    ];
    for patch in &patches {
        assert_eq!(
            api_code(pods.patch("pod-0000", &pp, patch).await),
            422,
            "{patch:?}"
        );
    }
    let root: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "", "value": 7}])).unwrap();
    assert_eq!(
        api_code(pods.patch("pod-0000", &pp, &Patch::Json::<()>(root)).await),
        422
    );
    assert_eq!(
        api_code(
            pods.patch_status("pod-0000", &pp, &Patch::Merge(json!({"status": []})))
                .await
        ),
        422
    );

    let maps: Api<ConfigMap> = Api::namespaced(client, "shop");
    let request = axum::http::Request::post("/api/v1/namespaces/shop/configmaps")
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"}))
                .unwrap(),
        )
        .unwrap();
    let raw = admin_client(&sim).await.request_text(request).await;
    assert!(
        matches!(raw, Err(kube::Error::Api(ref s)) if s.code == 422),
        "{raw:?}"
    );
    assert!(
        maps.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        pods.get("pod-0000").await.is_ok(),
        "the server still answers"
    );
}
