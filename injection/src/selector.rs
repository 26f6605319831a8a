//! The structured label selector (`matchLabels`, `matchExpressions`) of webhooks and of the
//! injector's `neverInjectSelector` / `alwaysInjectSelector`, evaluated as the API server does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a selector looks labels up: a pod's or a namespace's, however its owner keeps them.
pub trait Labels {
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl Labels for serde_json::Value {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(serde_json::Value::as_str)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Labels for [(K, V)] {
    fn label(&self, key: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v.as_ref())
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

/// `metav1.LabelSelector`. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Requirement {
    pub fn new(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.to_string(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn matches(&self, labels: &impl Labels) -> bool {
        let value = labels.label(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.iter().any(|w| w == v)),
            Operator::NotIn => value.is_none_or(|v| self.values.iter().all(|w| w != v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }

    /// What the API server refuses: `In`/`NotIn` need values, `Exists`/`DoesNotExist` take none.
    fn check(&self) -> Result<(), String> {
        let needs_values = matches!(self.operator, Operator::In | Operator::NotIn);
        match (needs_values, self.values.is_empty()) {
            (true, true) => Err(format!(
                "{:?} on {:?} needs values",
                self.operator, self.key
            )),
            (false, false) => Err(format!(
                "{:?} on {:?} takes no values",
                self.operator, self.key
            )),
            _ => Ok(()),
        }
    }
}

impl LabelSelector {
    /// No `matchLabels` and no `matchExpressions`: the API server's selectors match every
    /// object with it, Istio's `neverInjectSelector` and `alwaysInjectSelector` none.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    pub fn of(expressions: Vec<Requirement>) -> LabelSelector {
        LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: expressions,
        }
    }

    /// Every `matchLabels` entry and every expression must hold.
    pub fn matches(&self, labels: &impl Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.label(k) == Some(v.as_str()))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Why the API server would refuse this selector, if it would.
    pub fn check(&self) -> Result<(), String> {
        self.match_expressions
            .iter()
            .try_for_each(Requirement::check)
    }

    /// The label keys the selector reads.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.match_labels
            .keys()
            .map(String::as_str)
            .chain(self.match_expressions.iter().map(|r| r.key.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operator::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn one_row_per_operator() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        let none = labels(&[]);
        let rows: [(Requirement, bool, bool); 8] = [
            (Requirement::new("app", In, &["web", "api"]), true, false),
            (Requirement::new("app", In, &["api"]), false, false),
            (Requirement::new("app", NotIn, &["api"]), true, true),
            (Requirement::new("app", NotIn, &["web"]), false, true),
            (Requirement::new("tier", Exists, &[]), true, false),
            (Requirement::new("db", Exists, &[]), false, false),
            (Requirement::new("db", DoesNotExist, &[]), true, true),
            (Requirement::new("app", DoesNotExist, &[]), false, true),
        ];
        for (requirement, on_web, on_none) in rows {
            let selector = LabelSelector::of(vec![requirement.clone()]);
            assert_eq!(selector.matches(&web), on_web, "{requirement:?} on web");
            assert_eq!(selector.matches(&none), on_none, "{requirement:?} on none");
        }
    }

    #[test]
    fn match_labels_and_expressions_all_hold_and_empty_matches_all() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        assert!(LabelSelector::default().matches(&web));
        let mut selector = LabelSelector::of(vec![Requirement::new("tier", Exists, &[])]);
        selector.match_labels.insert("app".into(), "web".into());
        assert!(selector.matches(&web));
        selector.match_labels.insert("app".into(), "api".into());
        assert!(!selector.matches(&web));
    }

    #[test]
    fn reads_the_api_shape_and_refuses_what_the_api_server_would() {
        let selector: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": ["1-24"]}]
        }))
        .unwrap();
        assert!(selector.check().is_ok());
        assert_eq!(selector.keys().collect::<Vec<_>>(), ["istio.io/rev"]);
        let empty_in = LabelSelector::of(vec![Requirement::new("a", In, &[])]);
        assert!(empty_in.check().unwrap_err().contains("needs values"));
        let valued = LabelSelector::of(vec![Requirement::new("a", Exists, &["x"])]);
        assert!(valued.check().unwrap_err().contains("takes no values"));
        let unknown = serde_json::from_value::<LabelSelector>(serde_json::json!({
            "matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]
        }));
        assert!(unknown.unwrap_err().to_string().contains("Gt"));
    }
}
