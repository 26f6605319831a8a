//! RBAC: the configured user gets what the rendered Roles grant, and 403 for everything else.

mod common;

use common::{SimProcess, admin_client, client, namespace, ok, ready_pod};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use kube_sim::{SimConfig, start};
use serde_json::json;

const USER: &str = "system:serviceaccount:istio-system:istio-proxy-reset";

const POLICY: &str = r#"apiVersion: v1
kind: ServiceAccount
metadata:
  name: istio-proxy-reset
  namespace: istio-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: istio-proxy-reset
rules:
- apiGroups: [""]
  resources: ["pods", "namespaces"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/eviction"]
  verbs: ["create"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: istio-proxy-reset
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: istio-proxy-reset
subjects:
- kind: ServiceAccount
  name: istio-proxy-reset
  namespace: istio-system
"#;

fn state() -> serde_json::Value {
    common::list(vec![
        namespace("shop"),
        ready_pod("shop", "a", json!({"app": "a"})),
        ready_pod("shop", "b", json!({"app": "b"})),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token", "namespace": "shop"},
               "data": {"t": "c2VjcmV0"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "app", "image": "web:1"}]}}}}),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_requests_pass_and_everything_else_is_403() {
    let sim = start(SimConfig {
        state: state(),
        controllers: false,
        rbac: Some((POLICY.to_string(), USER.to_string())),
        ..Default::default()
    })
    .await
    .unwrap();
    let user = client(&sim).await;
    let pods: Api<Pod> = Api::all(user.clone());
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );
    let shop_pods: Api<Pod> = Api::namespaced(user.clone(), "shop");
    shop_pods.evict("a", &EvictParams::default()).await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(user.clone(), "shop");
    let restart = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&restart))
        .await
        .unwrap();

    let secrets: Api<Secret> = Api::namespaced(user.clone(), "shop");
    match secrets.get("token").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
            assert_eq!(
                status.message,
                format!(
                    "secrets \"token\" is forbidden: User \"{USER}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"shop\""
                )
            );
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let forbidden =
        |r: Result<_, kube::Error>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403);
    assert!(forbidden(
        shop_pods
            .delete("b", &DeleteParams::default())
            .await
            .map(|_| ())
    ));
    assert!(forbidden(
        deployments
            .delete("web", &DeleteParams::default())
            .await
            .map(|_| ())
    ));

    // The admin context is not subject to RBAC.
    let admin_secrets: Api<Secret> = Api::namespaced(admin_client(&sim).await, "shop");
    assert!(admin_secrets.get("token").await.is_ok());
    let denied = sim.requests().iter().filter(|r| r.status == 403).count();
    assert_eq!(denied, 3);
}

#[test]
fn kubectl_is_forbidden_as_the_user_and_allowed_with_the_admin_context() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("rbac.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let sim = SimProcess::start(
        &state(),
        &["--rbac", policy.to_str().unwrap(), "--as", USER],
    );

    let denied = sim.kubectl(&["get", "secrets", "-n", "shop"]);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("forbidden") && stderr.contains(USER),
        "{stderr}"
    );

    assert!(ok(sim.kubectl(&["get", "pods", "-n", "shop", "-o", "name"])).contains("pod/a"));
    assert!(
        ok(sim.kubectl(&[
            "--context",
            "kube-sim-admin",
            "get",
            "secrets",
            "-n",
            "shop",
            "-o",
            "name"
        ]))
        .contains("secret/token")
    );
    let can_i = |args: &[&str]| {
        String::from_utf8_lossy(&sim.kubectl(&[&["auth", "can-i"][..], args].concat()).stdout)
            .trim()
            .to_string()
    };
    assert_eq!(
        can_i(&["create", "pods", "--subresource=eviction", "-n", "shop"]),
        "yes"
    );
    assert_eq!(can_i(&["delete", "pods", "-n", "shop"]), "no");
    // The admin may impersonate, as `kubectl --as` does.
    let as_user = sim.kubectl(&[
        "--context",
        "kube-sim-admin",
        "--as",
        USER,
        "get",
        "secrets",
        "-n",
        "shop",
    ]);
    assert!(!as_user.status.success());
}
