//! Versioned per-tenant policy documents.
//!
//! A component's behavior for one tenant comes from a JSON policy document stored in
//! the config store under (tenant, component). Every save makes a new version; the
//! component sees the change through the store's watch API within seconds. Before a
//! document is stored, the component's [`PolicyValidator`] checks it, so a bad policy
//! never reaches a running component.
//!
//! Requirements: "inspect and control traffic per each member organization's policy"
//! (F06) and every per-organization setting after it (F10, F11, F14, F43, F45) are
//! policies.

use crate::{Problems, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A stored policy version.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PolicyDocument {
    /// Tenant the policy applies to; None is the platform default for every tenant.
    pub tenant: Option<TenantId>,
    /// Component name, e.g. `retention`.
    pub component: String,
    /// Version, from 1, per (tenant, component).
    pub version: i64,
    /// Global revision: taken when the version takes effect (at its save, or at its
    /// scheduled time); negative while a scheduled version waits. The version in force is the
    /// one with the highest revision.
    pub revision: i64,
    /// The document.
    pub document: Value,
    /// Who saved it.
    pub created_by: String,
    /// When (Unix ms).
    pub created_at: i64,
    /// When it takes or took effect (Unix ms); 0 for a version effective at its save.
    pub effective_at: i64,
    /// Where the prefecture's approval stands, for a component whose changes need it.
    pub approval: Approval,
    /// Who approved or rejected it, when (Unix ms) and why; None while undecided.
    pub decision: Option<Decision>,
}

/// Where a policy version stands with the prefecture's approver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// No approval was needed.
    #[default]
    NotNeeded,
    /// Waits for the approver; not in force.
    Pending,
    /// Approved: in force, or scheduled.
    Approved,
    /// Rejected: never in force.
    Rejected,
}

impl Approval {
    /// Returns the stored name (`""` for [`Approval::NotNeeded`]).
    pub fn as_str(&self) -> &'static str {
        match self {
            Approval::NotNeeded => "",
            Approval::Pending => "pending",
            Approval::Approved => "approved",
            Approval::Rejected => "rejected",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Approval::NotNeeded, Approval::Pending, Approval::Approved, Approval::Rejected].into_iter().find(|a| a.as_str() == s)
    }
}

/// The approver's decision on a policy version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Decision {
    /// Who decided.
    pub by: String,
    /// When (Unix ms).
    pub at: i64,
    /// Why (may be empty for an approval; required for a rejection).
    pub note: String,
}

/// Checks policy documents of one component. Registered by each component so the
/// console and API can refuse a bad policy with every problem listed.
pub trait PolicyValidator: Send + Sync {
    /// The component's name.
    fn component(&self) -> &'static str;

    /// Returns the document used when none is stored.
    fn default_policy(&self) -> Value;

    /// Checks a document; returns every problem found.
    fn validate(&self, document: &Value) -> Result<(), Problems>;

    /// Returns the JSON Schema of a document (as `schemars` writes it), from which the
    /// console builds the policy's form; each property's description is its label in
    /// Japanese, then English, then optional hints (Japanese, English). None: the
    /// policy is edited as JSON only.
    fn schema(&self) -> Option<Value> {
        None
    }

    /// Returns the platform minimums in force when operators set none (a document of
    /// the policy's own shape), or None when the component has no minimums.
    fn default_minimums(&self) -> Option<Value> {
        None
    }

    /// Checks a policy against the platform minimums; returns every value below them.
    fn check_minimums(&self, _document: &Value, _minimums: &Value) -> Result<(), Problems> {
        Ok(())
    }
}

/// One difference between two policy documents.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PolicyChange {
    /// Where, as a dotted path (`notify.escalation`); empty for the whole document.
    pub path: String,
    /// The value before; None when it was added.
    pub before: Option<Value>,
    /// The value after; None when it was removed.
    pub after: Option<Value>,
}

/// Returns what changes from `before` to `after`, key by key through objects (arrays and
/// other values are compared whole), in key order.
pub fn diff(before: &Value, after: &Value) -> Vec<PolicyChange> {
    let mut out = Vec::new();
    diff_at(String::new(), before, after, &mut out);
    out
}

fn diff_at(path: String, before: &Value, after: &Value, out: &mut Vec<PolicyChange>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match (b.get(k), a.get(k)) {
                    (Some(x), Some(y)) => diff_at(p, x, y, out),
                    (x, y) => out.push(PolicyChange { path: p, before: x.cloned(), after: y.cloned() }),
                }
            }
        }
        (b, a) if b != a => out.push(PolicyChange { path, before: Some(b.clone()), after: Some(a.clone()) }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_each_changed_key() {
        let before = json!({"events_days": 400, "notify": {"emails": ["a@x.jp"], "repeat": 30}, "old": 1});
        let after = json!({"events_days": 365, "notify": {"emails": ["a@x.jp", "b@x.jp"], "repeat": 30}, "new": true});
        let d = diff(&before, &after);
        let paths: Vec<_> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["events_days", "new", "notify.emails", "old"]);
        assert_eq!(d[0].before, Some(json!(400)));
        assert_eq!(d[1].before, None);
        assert_eq!(d[3].after, None);
        assert!(diff(&before, &before).is_empty());
        assert_eq!(diff(&json!(1), &json!("x"))[0].path, "");
    }
}
