//! Compiled, typed policies: each tenant's document parsed once into the component's own
//! type, behind an atomically swapped snapshot, updated from the per-(component, tenant)
//! change feed.
//!
//! A hot path loads the snapshot (one atomic load) and looks its tenant up; nothing is
//! parsed per request. When policies change, [`PolicyFeed::changed`] reads only the
//! versions saved since the revision the component runs, for its own component, parses
//! those, swaps in a new snapshot that shares every unchanged tenant's value, and says
//! which tenants changed.
//!
//! Requirements: the per-organization policies of F06, F10, F11, F14, F43 and F45 are
//! read on hot paths through this snapshot.

use crate::health::HealthReporter;
use arc_swap::ArcSwap;
use mamori_core::{PolicyValidator, TenantId};
use mamori_store::{CrossTenant, PolicyWatch, Store, StoreError};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;

/// A component's typed policies at one revision.
#[derive(Debug)]
pub struct PolicySnapshot<P> {
    revision: i64,
    default: Arc<P>,
    tenants: HashMap<TenantId, Arc<P>>,
}

impl<P> PolicySnapshot<P> {
    /// Returns a snapshot of fixed values (revision 0), for tests and tools that run a
    /// component's logic without a store.
    pub fn fixed(default: P, tenants: HashMap<TenantId, P>) -> Self {
        Self { revision: 0, default: Arc::new(default), tenants: tenants.into_iter().map(|(t, p)| (t, Arc::new(p))).collect() }
    }

    /// Returns whether `tenant` has a policy of its own.
    pub fn has_own(&self, tenant: TenantId) -> bool {
        self.tenants.contains_key(&tenant)
    }

    /// Returns the policy in force for `tenant`: its own, else the platform default.
    pub fn for_tenant(&self, tenant: TenantId) -> &P {
        self.tenants.get(&tenant).map_or(&*self.default, |p| &**p)
    }

    /// Returns the platform default.
    pub fn default_policy(&self) -> &P {
        &self.default
    }

    /// Returns the newest revision this snapshot holds.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Returns whether `other` holds the very same parsed value for `tenant` (it was not
    /// re-read between the two snapshots).
    pub fn shares(&self, other: &PolicySnapshot<P>, tenant: TenantId) -> bool {
        matches!((self.tenants.get(&tenant), other.tenants.get(&tenant)), (Some(a), Some(b)) if Arc::ptr_eq(a, b))
    }

    /// Returns the tenants with a policy of their own.
    pub fn tenants(&self) -> impl Iterator<Item = TenantId> + '_ {
        self.tenants.keys().copied()
    }
}

/// What changed in one update of a [`PolicyFeed`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyChanges {
    /// Whether the platform default changed (every tenant without its own is affected).
    pub default: bool,
    /// Tenants whose own policy changed.
    pub tenants: Vec<TenantId>,
}

impl PolicyChanges {
    /// Returns whether nothing changed.
    pub fn is_empty(&self) -> bool {
        !self.default && self.tenants.is_empty()
    }
}

/// A component's typed policies and their change feed. The snapshot can be shared with
/// request handlers through [`PolicyFeed::shared`].
pub struct PolicyFeed<P> {
    component: &'static str,
    store: Store,
    grant: CrossTenant,
    watch: PolicyWatch,
    current: Arc<ArcSwap<PolicySnapshot<P>>>,
    health: HealthReporter,
}

/// Why a stored policy could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFeedError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The platform default does not parse into the component's type.
    #[error("the platform default policy of {0} does not fit its type: {1}")]
    Default(&'static str, String),
}

fn parse<P: DeserializeOwned>(v: &serde_json::Value) -> Result<P, String> {
    P::deserialize(v).map_err(|e| e.to_string())
}

impl<P: DeserializeOwned + Send + Sync + 'static> PolicyFeed<P> {
    /// Opens the feed of `validator`'s component (components use `RunCx::policy_feed`).
    pub async fn open(store: Store, grant: CrossTenant, validator: &dyn PolicyValidator, health: HealthReporter) -> Result<Self, PolicyFeedError> {
        let component = validator.component();
        let watch = store.watch_policies();
        let builtin: P = parse(&validator.default_policy()).map_err(|e| PolicyFeedError::Default(component, e))?;
        let empty = PolicySnapshot { revision: 0, default: Arc::new(builtin), tenants: HashMap::new() };
        let feed = Self { component, store, grant, watch, current: Arc::new(ArcSwap::from_pointee(empty)), health };
        feed.apply().await?;
        Ok(feed)
    }

    /// Returns the current snapshot (one atomic load).
    pub fn snapshot(&self) -> Arc<PolicySnapshot<P>> {
        self.current.load_full()
    }

    /// Returns a handle on the snapshot for request handlers; it follows every update.
    pub fn shared(&self) -> Arc<ArcSwap<PolicySnapshot<P>>> {
        self.current.clone()
    }

    /// Waits until policies of this component change and applies them; returns which.
    /// Saves of other components' policies wake it but are not reported.
    pub async fn changed(&mut self) -> Result<PolicyChanges, PolicyFeedError> {
        loop {
            if self.watch.changed().await.is_none() {
                return Ok(PolicyChanges::default());
            }
            let changes = self.apply().await?;
            if !changes.is_empty() {
                return Ok(changes);
            }
        }
    }

    /// Reads the versions saved since the snapshot's revision and swaps in a snapshot
    /// with them. A stored document that no longer fits the type (saved by an older
    /// version of the component) keeps the tenant's previous value and marks the
    /// component degraded.
    async fn apply(&self) -> Result<PolicyChanges, PolicyFeedError> {
        let old = self.current.load_full();
        let docs = self.store.policies_since(&self.grant, self.component, old.revision).await?;
        let mut changes = PolicyChanges::default();
        if docs.is_empty() {
            self.health.policy_loaded(old.revision);
            return Ok(changes);
        }
        let mut next = PolicySnapshot { revision: old.revision, default: old.default.clone(), tenants: old.tenants.clone() };
        let mut bad = Vec::new();
        for d in docs {
            next.revision = next.revision.max(d.revision);
            match (d.tenant, parse::<P>(&d.document)) {
                (None, Ok(p)) => {
                    next.default = Arc::new(p);
                    changes.default = true;
                }
                (Some(t), Ok(p)) => {
                    next.tenants.insert(t, Arc::new(p));
                    changes.tenants.push(t);
                }
                (t, Err(e)) => bad.push(format!("{}: {e}", t.map_or("platform default".to_string(), |t| t.to_string()))),
            }
        }
        if bad.is_empty() {
            self.health.recovered();
        } else {
            let reason = format!("policies of {} that do not fit its type kept at their previous value: {}", self.component, bad.join("; "));
            tracing::warn!(component = self.component, %reason);
            self.health.degraded(reason);
        }
        self.health.policy_loaded(next.revision);
        self.current.store(Arc::new(next));
        Ok(changes)
    }
}
