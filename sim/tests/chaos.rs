//! Chaos: reproducible failures from a seed, every kind of failure, and kubectl spared.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{SimProcess, admin_client, ok, shop_state};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube_sim::chaos::{Chaos, Fault};
use kube_sim::{SimConfig, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn chaotic(rate: f64, seed: u64) -> kube_sim::Sim {
    start(SimConfig {
        state: shop_state(3),
        controllers: false,
        chaos: Some((rate, seed)),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// The statuses a fixed sequence of 60 requests gets.
async fn statuses(sim: &kube_sim::Sim) -> Vec<u16> {
    let pods: Api<Pod> = Api::namespaced(admin_client(sim).await, "shop");
    for i in 0..60 {
        let _ = match i % 3 {
            0 => pods.list(&ListParams::default()).await.map(|_| ()),
            1 => pods.get("pod-0001").await.map(|_| ()),
            _ => pods
                .list(&ListParams::default().labels("app=shop"))
                .await
                .map(|_| ()),
        };
    }
    sim.requests().iter().map(|r| r.status).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_failures() {
    let first = statuses(&chaotic(0.3, 7).await).await;
    let again = statuses(&chaotic(0.3, 7).await).await;
    let other = statuses(&chaotic(0.3, 8).await).await;
    assert_eq!(first.len(), 60);
    assert_eq!(first, again);
    assert_ne!(first, other);
    let failed = first.iter().filter(|s| **s != 200).count();
    assert!(
        (5..=35).contains(&failed),
        "about 30% fail, got {failed} of 60: {first:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_failure_occurs() {
    let sim = chaotic(1.0, 3).await;
    let seen: BTreeSet<u16> = statuses(&sim).await.into_iter().collect();
    // 0 is a connection dropped without an answer.
    assert_eq!(seen, BTreeSet::from([0, 429, 500, 503, 504]));
}

/// Sends one plain-HTTP request and returns everything the server sent until it closed.
async fn raw_request(addr: &str, token: &str, path: &str) -> (String, bool) {
    raw_call(addr, token, "GET", path, "").await
}

async fn raw_call(addr: &str, token: &str, method: &str, path: &str, body: &str) -> (String, bool) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let mut clean_end = true;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => {
                clean_end = false;
                break;
            }
            Err(_) => panic!("no answer within 10 s"),
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), clean_end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_says_when_to_retry_and_watches_are_cut() {
    let path = "/api/v1/namespaces/shop/pods?watch=1";
    // The first request of a fresh sim is the first occurrence of this path.
    let seed_for = |wanted: fn(Fault) -> bool| {
        (0..10_000u64)
            .find(|seed| {
                Chaos::new(1.0, *seed)
                    .decide("GET", path, true)
                    .is_some_and(wanted)
            })
            .unwrap()
    };
    let throttled = seed_for(|f| f == Fault::TooManyRequests);
    let cut = seed_for(|f| matches!(f, Fault::CutWatch(_)));

    let start_plain = |seed| {
        start(SimConfig {
            state: shop_state(2),
            controllers: false,
            plain_http: true,
            chaos: Some((1.0, seed)),
            ..Default::default()
        })
    };
    let sim = start_plain(throttled).await.unwrap();
    let addr = sim.url().trim_start_matches("http://").to_string();
    let (response, _) = raw_request(&addr, sim.admin_token(), path).await;
    assert!(response.starts_with("HTTP/1.1 429"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1\r\n"),
        "{response}"
    );
    assert!(
        response.contains("\"reason\":\"TooManyRequests\""),
        "{response}"
    );

    let sim = start_plain(cut).await.unwrap();
    let addr = sim.url().trim_start_matches("http://").to_string();
    let (response, _) = raw_request(&addr, sim.admin_token(), path).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("\"type\":\"ADDED\""),
        "the watch starts normally: {response}"
    );
    assert!(
        !response.ends_with("0\r\n\r\n"),
        "the stream ends without its last chunk: {response}"
    );
}

#[test]
fn kubectl_is_spared() {
    let sim = SimProcess::start(&shop_state(2), &["--chaos", "1.0", "--seed", "5"]);
    for _ in 0..3 {
        let names = ok(sim.kubectl(&["get", "pods", "-n", "shop", "-o", "name"]));
        assert!(names.contains("pod/pod-0001"), "{names}");
    }
    let log = sim.request_log();
    assert!(
        !log.is_empty() && log.lines().all(|l| l.ends_with(" 200")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_every_request() {
    let sim = start(SimConfig {
        state: shop_state(1),
        controllers: false,
        latency: Duration::from_millis(150),
        ..Default::default()
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(admin_client(&sim).await, "shop");
    pods.get("pod-0000").await.unwrap(); // connection set up
    let started = std::time::Instant::now();
    for _ in 0..3 {
        pods.get("pod-0000").await.unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_every_change_through_failures_and_cut_streams() {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};

    // A seed whose first list fails, so that the watcher has to recover at least once.
    let first_list = "/api/v1/namespaces/shop/pods?&limit=500";
    let seed = (0..1000u64)
        .find(|seed| {
            Chaos::new(0.4, *seed)
                .decide("GET", first_list, false)
                .is_some()
        })
        .unwrap();
    let sim = start(SimConfig {
        state: shop_state(2),
        controllers: false,
        chaos: Some((0.4, seed)),
        bookmark_interval: Duration::from_millis(100),
        ..Default::default()
    })
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(admin_client(&sim).await, "shop");
    let mut changes = watcher(pods, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();

    // Changes are made through the store, which chaos does not touch.
    let store = sim.store();
    let pod_type = kube_sim::store::resource_for_kind("v1", "Pod").unwrap();
    let writer = tokio::spawn(async move {
        for step in 1..=20 {
            store
                .modify(pod_type, Some("shop"), "pod-0001", |p| {
                    p["metadata"]["labels"]["step"] = serde_json::json!(step.to_string())
                })
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let seen_last = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = changes.next().await {
            if let Ok(pod) = event
                && pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("step"))
                    .map(String::as_str)
                    == Some("20")
            {
                return true;
            }
        }
        false
    })
    .await;
    writer.await.unwrap();
    assert_eq!(seen_last, Ok(true), "the watcher reached the last change");
    let failures = sim.requests().iter().filter(|r| r.status != 200).count();
    assert!(
        failures > 0,
        "chaos failed some of the watcher's requests: {:?}",
        sim.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_eviction_names_no_retry_delay() {
    let mut state = shop_state(1);
    state["items"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "shop", "namespace": "shop"},
            "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "shop"}}}
        }));
    let sim = start(SimConfig {
        state,
        controllers: false,
        plain_http: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let addr = sim.url().trim_start_matches("http://").to_string();
    let eviction = r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"pod-0000","namespace":"shop"}}"#;
    let path = "/api/v1/namespaces/shop/pods/pod-0000/eviction";
    let (response, _) = raw_call(&addr, sim.admin_token(), "POST", path, eviction).await;
    assert!(response.starts_with("HTTP/1.1 429"), "{response}");
    assert!(
        !response.to_ascii_lowercase().contains("retry-after"),
        "{response}"
    );
    assert!(
        response.contains("\"reason\":\"DisruptionBudget\""),
        "{response}"
    );
}
