//! Versioned per-tenant policy documents.
//!
//! A component's behavior for one tenant comes from a JSON policy document stored in
//! the config store under (tenant, component). Every save makes a new version; the
//! component sees the change through the store's watch API within seconds. Before a
//! document is stored, the component's [`PolicyValidator`] checks it, so a bad policy
//! never reaches a running component.

use crate::{Problems, TenantId};
use serde::Serialize;
use serde_json::Value;

/// A stored policy version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyDocument {
    /// Tenant the policy applies to; None is the platform default for every tenant.
    pub tenant: Option<TenantId>,
    /// Component name, e.g. `retention`.
    pub component: String,
    /// Version, from 1, per (tenant, component).
    pub version: i64,
    /// Global revision: increases with every policy saved anywhere.
    pub revision: i64,
    /// The document.
    pub document: Value,
    /// Who saved it.
    pub created_by: String,
    /// When (Unix ms).
    pub created_at: i64,
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
