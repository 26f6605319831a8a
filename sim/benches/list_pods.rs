//! Lists 20,000 pods through the HTTPS API, 500 a page, as istio-proxy-reset's inventory does.
//! Run with `cargo bench -p kube-sim`; `KUBE_SIM_BENCH_PODS` changes the pod count.

use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_sim::{SimConfig, start};

async fn list_all(pods: &Api<Pod>) -> (usize, usize) {
    let mut count = 0;
    let mut pages = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = pods.list(&params).await.expect("page");
        count += page.items.len();
        pages += 1;
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return (count, pages),
        }
    }
}

/// The same pages fetched as text: the server's and the transport's share, without the typed parse.
async fn list_all_raw(client: &kube::Client) -> (usize, usize) {
    let mut bytes = 0;
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let mut uri = "/api/v1/pods?limit=500".to_string();
        if let Some(t) = &token {
            uri.push_str(&format!("&continue={t}"));
        }
        let request = axum::http::Request::get(uri)
            .body(Vec::new())
            .expect("request");
        let text = client.request_text(request).await.expect("page");
        bytes += text.len();
        pages += 1;
        // The list metadata comes first; reading the token from it keeps JSON parsing out of the figure.
        let head = text.get(..text.len().min(1024)).unwrap_or(&text);
        let token_start = head
            .find("\"continue\":\"")
            .map(|i| i + "\"continue\":\"".len());
        match token_start
            .and_then(|start| head[start..].find('"').map(|end| &head[start..start + end]))
        {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return (bytes, pages),
        }
    }
}

fn main() {
    let wanted: usize = std::env::var("KUBE_SIM_BENCH_PODS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let started = Instant::now();
        let state = kube_sim::generate::generate(wanted, 1);
        let bytes = serde_json::to_vec(&state).map(|b| b.len()).unwrap_or(0);
        println!("generated {} objects ({:.1} MB of JSON) in {:.2?}", state["items"].as_array().map_or(0, Vec::len), bytes as f64 / 1e6, started.elapsed());

        let started = Instant::now();
        let sim = start(SimConfig { state, controllers: false, ..Default::default() }).await.expect("sim starts");
        println!("loaded the state and started serving in {:.2?}", started.elapsed());

        let kubeconfig = Kubeconfig::from_yaml(sim.kubeconfig()).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config");
        let client = kube::Client::try_from(config).expect("client");
        let pods: Api<Pod> = Api::all(client.clone());
        for round in 1..=3 {
            let started = Instant::now();
            let (count, pages) = list_all(&pods).await;
            let elapsed = started.elapsed();
            println!(
                "list {round}: {count} pods in {pages} pages of 500 over HTTPS in {elapsed:.2?} ({:.0} pods/s)",
                count as f64 / elapsed.as_secs_f64()
            );
        }
        let started = Instant::now();
        let (bytes, pages) = list_all_raw(&client).await;
        println!(
            "raw: {pages} pages, {:.1} MB over HTTPS in {:.2?} (no typed parse)",
            bytes as f64 / 1e6,
            started.elapsed()
        );
        sim.shutdown().await;
    });
}
