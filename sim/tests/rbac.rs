//! RBAC: the configured user gets what the rendered Roles grant, and 403 for everything else;
//! ServiceAccount tokens from TokenRequests get what the Roles stored in the cluster grant.

mod common;

use common::{SimProcess, admin_client, client, client_for, namespace, ok, ready_pod};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
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

const ROBOT: &str = "system:serviceaccount:shop:robot";

/// A Role that reads ConfigMaps in `shop`, bound to the ServiceAccount `robot`.
const ROBOT_POLICY: &str = r#"apiVersion: v1
kind: ServiceAccount
metadata:
  name: robot
  namespace: shop
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: config-reader
  namespace: shop
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: robot-reads-config
  namespace: shop
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: config-reader
subjects:
- kind: ServiceAccount
  name: robot
  namespace: shop
"#;

fn token_state() -> serde_json::Value {
    common::list(vec![
        namespace("shop"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"},
               "data": {"mode": "fast"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token", "namespace": "shop"},
               "data": {"t": "c2VjcmV0"}}),
    ])
}

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a valid object")
}

/// The code and message of a request's error; panics when it succeeded.
fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A client of the sim that authenticates with `token` instead of the kubeconfig's.
async fn client_with_token(sim: &kube_sim::Sim, token: &str) -> kube::Client {
    client_for(&sim.kubeconfig().replace(sim.token(), token), "kube-sim").await
}

async fn request_token(admin: &kube::Client, name: &str) -> Result<String, kube::Error> {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "shop");
    let request = from_json::<TokenRequest>(json!({"spec": {"audiences": []}}));
    let issued = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await?;
    let status = issued.status.expect("a TokenRequest status");
    assert!(status.expiration_timestamp.0 > k8s_openapi::jiff::Timestamp::now());
    Ok(status.token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_token_gets_what_the_stored_roles_grant() {
    let sim = start(SimConfig {
        state: token_state(),
        controllers: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let admin = admin_client(&sim).await;
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(ROBOT_POLICY).unwrap();
    let pp = PostParams::default();
    Api::<ServiceAccount>::namespaced(admin.clone(), "shop")
        .create(&pp, &from_json(documents[0].clone()))
        .await
        .unwrap();
    Api::<Role>::namespaced(admin.clone(), "shop")
        .create(&pp, &from_json(documents[1].clone()))
        .await
        .unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), "shop");
    bindings
        .create(&pp, &from_json(documents[2].clone()))
        .await
        .unwrap();

    assert_eq!(
        api_error(request_token(&admin, "ghost").await),
        (404, "serviceaccounts \"ghost\" not found".to_string())
    );
    let token = request_token(&admin, "robot").await.unwrap();
    let robot = client_with_token(&sim, &token).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(robot.clone(), "shop");
    assert!(config_maps.get("settings").await.is_ok());
    assert_eq!(
        config_maps
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        api_error(
            config_maps
                .delete("settings", &DeleteParams::default())
                .await
        ),
        (
            403,
            format!(
                "configmaps \"settings\" is forbidden: User \"{ROBOT}\" cannot delete resource \"configmaps\" in API group \"\" in the namespace \"shop\""
            )
        )
    );
    let secrets: Api<Secret> = Api::namespaced(robot.clone(), "shop");
    assert_eq!(api_error(secrets.get("token").await).0, 403);
    // The policy is the one stored when the request comes: without the binding, nothing is granted.
    bindings
        .delete("robot-reads-config", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_error(config_maps.get("settings").await).0, 403);
    // A ClusterRoleBinding to the namespace's ServiceAccount group grants again.
    Api::<ClusterRole>::all(admin.clone())
        .create(
            &pp,
            &from_json(json!({"metadata": {"name": "secret-reader"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]})),
        )
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&pp, &from_json(json!({"metadata": {"name": "shop-accounts-read-secrets"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secret-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:serviceaccounts:shop"}]})))
        .await
        .unwrap();
    assert!(secrets.get("token").await.is_ok());

    let stranger: Api<ConfigMap> =
        Api::namespaced(client_with_token(&sim, "not-a-token").await, "shop");
    assert_eq!(api_error(stranger.get("settings").await).0, 401);
    // A token dies with its ServiceAccount.
    Api::<ServiceAccount>::namespaced(admin.clone(), "shop")
        .delete("robot", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_error(secrets.get("token").await).0, 401);
    // The configured user's token works as before.
    let user_config_maps: Api<ConfigMap> = Api::namespaced(client(&sim).await, "shop");
    assert!(user_config_maps.get("settings").await.is_ok());
}

#[test]
fn kubectl_create_token_and_auth_can_i_for_a_service_account() {
    let sim = SimProcess::start(&token_state(), &[]);
    let policy = sim.dir.path().join("robot.yaml");
    std::fs::write(&policy, ROBOT_POLICY).unwrap();
    ok(sim.kubectl(&["create", "serviceaccount", "helper", "-n", "shop"]));
    ok(sim.kubectl(&["apply", "-f", policy.to_str().unwrap()]));

    let missing = sim.kubectl(&["create", "token", "ghost", "-n", "shop"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("failed to create token: serviceaccounts \"ghost\" not found")
    );
    let short = sim.kubectl(&["create", "token", "robot", "-n", "shop", "--duration", "5m"]);
    assert!(
        String::from_utf8_lossy(&short.stderr)
            .contains("may not specify a duration less than 10 minutes")
    );
    let token = ok(sim.kubectl(&["create", "token", "robot", "-n", "shop"]));
    let as_robot = |args: &[&str]| sim.kubectl(&[&["--token", token.trim()][..], args].concat());

    assert!(
        ok(as_robot(&["get", "configmaps", "-n", "shop", "-o", "name"]))
            .contains("configmap/settings")
    );
    let denied = as_robot(&["get", "secrets", "-n", "shop"]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains(&format!(
            "secrets is forbidden: User \"{ROBOT}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"shop\""
        )),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    let can_i = |args: &[&str]| {
        let output = as_robot(&[&["auth", "can-i"][..], args].concat());
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert_eq!(can_i(&["get", "configmaps", "-n", "shop"]), "yes");
    assert_eq!(can_i(&["delete", "configmaps", "-n", "shop"]), "no");
    assert_eq!(can_i(&["get", "configmaps", "-n", "default"]), "no");
    // A ServiceAccount without bindings may do nothing.
    let helper = ok(sim.kubectl(&["create", "token", "helper", "-n", "shop"]));
    let helper_get = sim.kubectl(&["--token", helper.trim(), "get", "configmaps", "-n", "shop"]);
    assert!(!helper_get.status.success());

    let unknown = sim.kubectl(&["--token", "not-a-token", "get", "configmaps", "-n", "shop"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("Unauthorized"));
}
