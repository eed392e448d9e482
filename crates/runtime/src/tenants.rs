//! The tenant resolver: one directory per node, shared by every component, swapped
//! atomically when tenants or segments change (here or on another node).
//!
//! A lookup is a load of the current [`TenantDirectory`] and a hash lookup or two; no
//! component re-reads tenants itself. A listener belongs to a segment by its component's
//! config (`segment = "wan-a"`), and `(segment, source address)` names the tenant.
//!
//! Requirements: F03, F06, F07, F10, F11, F14, F18 and F41 resolve tenants through it
//! (see `mamori_core::network`).

use arc_swap::ArcSwap;
use mamori_core::{SegmentName, TenantDirectory, TenantId};
use mamori_store::CrossTenant;
use mamori_store::{Store, StoreError};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Maps traffic to a tenant. Cheap to clone; every clone sees the newest directory.
#[derive(Clone)]
pub struct TenantResolver {
    current: Arc<ArcSwap<TenantDirectory>>,
}

impl std::fmt::Debug for TenantResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantResolver").field("tenants", &self.current.load().len()).finish()
    }
}

impl TenantResolver {
    /// Loads the directory from the store (`grant` reads every tenant's addresses).
    pub async fn load(store: &Store, grant: &CrossTenant) -> Result<Self, StoreError> {
        let dir = store.tenant_directory(grant).await?;
        Ok(Self { current: Arc::new(ArcSwap::from_pointee(dir)) })
    }

    /// Returns a resolver over a fixed directory (tests, tools).
    pub fn fixed(dir: TenantDirectory) -> Self {
        Self { current: Arc::new(ArcSwap::from_pointee(dir)) }
    }

    /// Returns the current directory, for several lookups against one version.
    pub fn directory(&self) -> Arc<TenantDirectory> {
        self.current.load_full()
    }

    /// See [`TenantDirectory::by_address`].
    pub fn by_address(&self, segment: &SegmentName, addr: IpAddr) -> Option<TenantId> {
        self.current.load().by_address(segment, addr)
    }

    /// See [`TenantDirectory::by_mail_domain`].
    pub fn by_mail_domain(&self, domain_or_address: &str) -> Option<TenantId> {
        self.current.load().by_mail_domain(domain_or_address)
    }

    /// See [`TenantDirectory::by_fqdn`].
    pub fn by_fqdn(&self, host: &str) -> Option<TenantId> {
        self.current.load().by_fqdn(host)
    }

    /// Rebuilds the directory whenever the store says tenants or segments changed,
    /// until `stop`. A failed rebuild keeps the previous directory and is logged.
    pub(crate) fn spawn_refresh(&self, store: Store, grant: CrossTenant, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        let me = self.clone();
        let mut changes = store.watch_directory();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    _ = crate::stopped(&mut stop) => return,
                }
                match store.tenant_directory(&grant).await {
                    Ok(dir) => {
                        tracing::debug!(tenants = dir.len(), "tenant directory rebuilt");
                        me.current.store(Arc::new(dir));
                    }
                    Err(e) => tracing::warn!(error = %e, "tenant directory rebuild failed; keeping the previous one"),
                }
            }
        })
    }
}
