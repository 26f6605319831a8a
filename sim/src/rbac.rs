//! RBAC authorization: Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, from a rendered
//! multi-document YAML file (as `kubectl kustomize` prints it) or from the objects stored in the
//! cluster, applied as the RBAC authorizer does.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::error::{ApiError, Error};
use crate::store::{Store, resource_for_plural};

/// The RBAC resources, in the order a policy is read from the store.
const RBAC_RESOURCES: [&str; 4] = [
    "roles",
    "clusterroles",
    "rolebindings",
    "clusterrolebindings",
];

/// One request to authorize.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    pub user: &'a str,
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
struct Rule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
}

impl Rule {
    fn from_json(rule: &Value) -> Rule {
        let strings = |field: &str| -> Vec<String> {
            rule[field]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        Rule {
            verbs: strings("verbs"),
            api_groups: strings("apiGroups"),
            resources: strings("resources"),
            resource_names: strings("resourceNames"),
        }
    }

    fn allows(&self, a: &Attributes) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
        let resource_matches = self.resources.iter().any(|r| match a.subresource {
            None => r == "*" || r == a.resource,
            Some(sub) => {
                r == "*"
                    || *r == format!("{}/{sub}", a.resource)
                    || *r == format!("*/{sub}")
                    || *r == format!("{}/*", a.resource)
            }
        });
        any(&self.verbs, a.verb)
            && any(&self.api_groups, a.group)
            && resource_matches
            && (self.resource_names.is_empty()
                || a.name
                    .is_some_and(|n| self.resource_names.iter().any(|r| r == n)))
    }
}

#[derive(Debug, Clone)]
enum Subject {
    User(String),
    Group(String),
}

#[derive(Debug, Clone)]
struct Binding {
    /// `None` for a ClusterRoleBinding: its rules hold in every namespace and for cluster-scoped objects.
    namespace: Option<String>,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

/// The authorization policy of one file.
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    roles: HashMap<(String, String), Vec<Rule>>,
    cluster_roles: HashMap<String, Vec<Rule>>,
    bindings: Vec<Binding>,
}

impl Rbac {
    /// Parses a multi-document YAML file; documents of other kinds (ServiceAccounts, Jobs, …) are
    /// ignored, and so is a `kind: List` wrapper's structure (its items are read).
    pub fn from_yaml(yaml: &str) -> Result<Rbac, Error> {
        let documents: Vec<Value> =
            serde_saphyr::from_multiple(yaml).map_err(|e| Error::InvalidRbac(e.to_string()))?;
        let objects = documents
            .iter()
            .flat_map(|doc| match doc["items"].as_array() {
                Some(items) if doc["kind"] == "List" => items.iter().collect(),
                _ => vec![doc],
            });
        Rbac::from_objects(objects)
    }

    /// The policy of these objects; objects of other kinds are ignored.
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Result<Rbac, Error> {
        let mut rbac = Rbac::default();
        for obj in objects {
            rbac.add(obj)?;
        }
        Ok(rbac)
    }

    /// The policy of the RBAC objects stored in the cluster now, as the real authorizer reads
    /// them from its informers at the time of each request.
    pub fn from_store(store: &Store) -> Rbac {
        let objects: Vec<_> = RBAC_RESOURCES
            .iter()
            .filter_map(|plural| resource_for_plural("rbac.authorization.k8s.io", plural))
            .flat_map(|r| store.list_shared(r, None))
            .collect();
        // Stored Roles and RoleBindings always have a namespace, the only thing `add` rejects;
        // should one lack it anyway, the empty policy denies everything rather than too much.
        Rbac::from_objects(objects.iter().map(|o| &**o)).unwrap_or_default()
    }

    fn add(&mut self, doc: &Value) -> Result<(), Error> {
        let kind = doc["kind"].as_str().unwrap_or_default();
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let namespace = doc["metadata"]["namespace"].as_str().map(str::to_string);
        let rules = || {
            doc["rules"]
                .as_array()
                .map(|r| r.iter().map(Rule::from_json).collect())
                .unwrap_or_default()
        };
        match kind {
            "Role" => {
                let ns = namespace
                    .ok_or_else(|| Error::InvalidRbac(format!("Role {name} has no namespace")))?;
                self.roles.insert((ns, name), rules());
            }
            "ClusterRole" => {
                self.cluster_roles.insert(name, rules());
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                let namespace = if kind == "RoleBinding" {
                    Some(namespace.ok_or_else(|| {
                        Error::InvalidRbac(format!("RoleBinding {name} has no namespace"))
                    })?)
                } else {
                    None
                };
                let subjects = doc["subjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| {
                        let subject_name = s["name"].as_str()?.to_string();
                        match s["kind"].as_str()? {
                            "User" => Some(Subject::User(subject_name)),
                            "Group" => Some(Subject::Group(subject_name)),
                            "ServiceAccount" => {
                                let ns = s["namespace"].as_str().or(namespace.as_deref())?;
                                Some(Subject::User(format!(
                                    "system:serviceaccount:{ns}:{subject_name}"
                                )))
                            }
                            _ => None,
                        }
                    })
                    .collect();
                self.bindings.push(Binding {
                    namespace,
                    role_kind: doc["roleRef"]["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    role_name: doc["roleRef"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    subjects,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether any binding of `a.user` grants the request.
    pub fn allows(&self, a: &Attributes) -> bool {
        let groups = groups_of(a.user);
        self.bindings.iter().any(|b| {
            let bound = b.subjects.iter().any(|s| match s {
                Subject::User(u) => u == a.user,
                Subject::Group(g) => groups.contains(g),
            });
            if !bound {
                return false;
            }
            // A RoleBinding grants only inside its namespace.
            if let Some(ns) = &b.namespace
                && a.namespace != Some(ns.as_str())
            {
                return false;
            }
            let rules = match (b.role_kind.as_str(), &b.namespace) {
                ("ClusterRole", _) => self.cluster_roles.get(&b.role_name),
                ("Role", Some(ns)) => self.roles.get(&(ns.clone(), b.role_name.clone())),
                _ => None,
            };
            rules.is_some_and(|rules| rules.iter().any(|r| r.allows(a)))
        })
    }

    /// `Ok` when granted, else the 403 the API server answers with.
    pub fn authorize(&self, a: &Attributes) -> Result<(), ApiError> {
        if self.allows(a) {
            Ok(())
        } else {
            Err(forbidden(a))
        }
    }
}

/// The groups the API server puts an authenticated user in.
fn groups_of(user: &str) -> Vec<String> {
    let mut groups = vec!["system:authenticated".to_string()];
    if let Some(rest) = user.strip_prefix("system:serviceaccount:") {
        groups.push("system:serviceaccounts".to_string());
        if let Some((ns, _)) = rest.split_once(':') {
            groups.push(format!("system:serviceaccounts:{ns}"));
        }
    }
    groups
}

fn forbidden(a: &Attributes) -> ApiError {
    let resource = match a.subresource {
        Some(sub) => format!("{}/{sub}", a.resource),
        None => a.resource.to_string(),
    };
    let qualified = if a.group.is_empty() {
        a.resource.to_string()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    let subject = match a.name {
        Some(name) => format!("{qualified} \"{name}\" is forbidden"),
        None => format!("{qualified} is forbidden"),
    };
    let scope = match a.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let mut error = ApiError::forbidden(format!(
        "{subject}: User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        a.user, a.verb, a.group
    ));
    error.details =
        Some(json!({"name": a.name.unwrap_or_default(), "group": a.group, "kind": a.resource}));
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: reset, namespace: tools}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reset}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/eviction]
  verbs: [create]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: reset}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reset}
subjects:
- {kind: ServiceAccount, name: reset, namespace: tools}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: report, namespace: tools}
rules:
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [report]
  verbs: [get, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: report, namespace: tools}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: report}
subjects:
- {kind: ServiceAccount, name: reset}
"#;

    fn attrs<'a>(
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        ns: Option<&'a str>,
    ) -> Attributes<'a> {
        Attributes {
            user: "system:serviceaccount:tools:reset",
            verb,
            group,
            resource,
            subresource: None,
            namespace: ns,
            name: None,
        }
    }

    #[test]
    fn grants_and_denials() {
        let rbac = Rbac::from_yaml(POLICY).unwrap();
        assert!(rbac.allows(&attrs("list", "", "pods", None)));
        assert!(rbac.allows(&attrs("patch", "apps", "deployments", Some("shop"))));
        assert!(!rbac.allows(&attrs("delete", "", "pods", Some("shop"))));
        assert!(!rbac.allows(&attrs("get", "", "secrets", Some("shop"))));
        let evict = Attributes {
            subresource: Some("eviction"),
            ..attrs("create", "", "pods", Some("shop"))
        };
        assert!(rbac.allows(&evict));
        let report = Attributes {
            name: Some("report"),
            ..attrs("update", "", "configmaps", Some("tools"))
        };
        assert!(rbac.allows(&report));
        assert!(!rbac.allows(&Attributes {
            name: Some("other"),
            ..report.clone()
        }));
        assert!(!rbac.allows(&Attributes {
            namespace: Some("shop"),
            ..report
        }));
        let other_user = Attributes {
            user: "someone",
            ..attrs("list", "", "pods", None)
        };
        let err = rbac.authorize(&other_user).unwrap_err();
        assert_eq!(err.code, 403);
        assert!(
            err.message
                .contains("User \"someone\" cannot list resource \"pods\""),
            "{}",
            err.message
        );
    }
}
