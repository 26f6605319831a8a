//! Istio's webhook configurations decide which revision injects a pod, on both backends
//! (DESIGN §2.2.2, §5): a canary revision, a revision tag, and the `default` tag moved to the
//! canary with the default revision's configuration deactivated. On kube-sim its own admission
//! reads the configurations; upstream, kube-apiserver evaluates them and calls the webhook.

mod support;

use istio_injection::webhooks;
use support::backend::{Backend, HUB, NEW, OLD, Scenario};
use support::{injected_revision, proxy_container};

/// The canary revision `1-24`'s injector ConfigMap, injecting [`NEW`].
fn canary_injector() -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: istio-sidecar-injector-1-24
  namespace: istio-system
  labels: {{app: sidecar-injector, istio.io/rev: 1-24}}
data:
  values: '{{"global": {{"hub": "{HUB}", "tag": "{NEW}-distroless", "proxy": {{"image": "proxyv2"}}}}}}'
  config: 'policy: enabled'
"#
    )
}

/// A namespace with `labels` (YAML flow map) and one bare pod in it.
fn namespace_with_pod(namespace: &str, labels: &str, pod: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}, labels: {labels}}}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}, namespace: {namespace}}}\n\
         spec: {{containers: [{{name: app, image: 'shop/app:1'}}]}}\n"
    )
}

/// The pod's proxy image and the revision its status annotation names.
fn injected(scenario: &Scenario, namespace: &str, pod: &str) -> (Option<String>, Option<String>) {
    let pod = scenario.kubectl_json(&["get", "pod", "-n", namespace, pod]);
    let proxy = proxy_container(&pod).and_then(|(c, _)| c["image"].as_str().map(str::to_string));
    let revision = injected_revision(&pod);
    (proxy, revision)
}

fn proxy(version: &str) -> Option<String> {
    Some(format!("{HUB}/proxyv2:{version}-distroless"))
}

async fn revisions_and_tags_select_as_their_configurations_say(backend: Backend) {
    let scenario = Scenario::start(backend).await;
    scenario.apply(&canary_injector());
    scenario.install_revision_webhooks("1-24").await;
    scenario.install_tag_webhooks("prod", "1-24").await;
    scenario.apply(&namespace_with_pod(
        "shop",
        "{istio-injection: enabled}",
        "a",
    ));
    scenario.apply(&namespace_with_pod("canary", "{istio.io/rev: 1-24}", "a"));
    scenario.apply(&namespace_with_pod("tagged", "{istio.io/rev: prod}", "a"));
    scenario.apply(&namespace_with_pod("plain", "{}", "a"));
    let default = (proxy(OLD), Some("default".to_string()));
    let canary = (proxy(NEW), Some("1-24".to_string()));
    assert_eq!(injected(&scenario, "shop", "a"), default, "{backend:?}");
    assert_eq!(injected(&scenario, "canary", "a"), canary, "{backend:?}");
    assert_eq!(injected(&scenario, "tagged", "a"), canary, "{backend:?}");
    assert_eq!(
        injected(&scenario, "plain", "a"),
        (None, None),
        "{backend:?}"
    );

    // `istioctl tag set default --revision 1-24`: the default tag takes over
    // `istio-injection=enabled`, the default revision's configuration selects nothing.
    scenario
        .install_webhook_configuration(&webhooks::deactivated(webhooks::revision_configuration(
            "default",
        )))
        .await;
    scenario.install_tag_webhooks("default", "1-24").await;
    scenario.apply(&namespace_with_pod(
        "shop",
        "{istio-injection: enabled}",
        "b",
    ));
    assert_eq!(injected(&scenario, "shop", "b"), canary, "{backend:?}");
    assert_eq!(
        injected(&scenario, "shop", "a"),
        default,
        "{backend:?}: a pod keeps what it was injected with"
    );
    // The canary's ConfigMap goes; the next scenario starts from the default configuration.
    scenario.kubectl_ok(&[
        "delete",
        "configmap",
        "-n",
        "istio-system",
        "istio-sidecar-injector-1-24",
    ]);
}

on_both_backends!(revisions_and_tags_select_as_their_configurations_say);
