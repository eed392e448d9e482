//! The component runtime: how `mamori serve` starts security components and hands
//! them their config, the bus, the store and their policies.

use crate::Bus;
use mamori_core::{CrossTenant, PolicyValidator, Problems, TenantId};
use mamori_store::{PolicyWatch, Store, StoreError};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;

/// Errors a component ends with.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// Its config section is wrong.
    #[error("config of component '{0}': {1}")]
    Config(&'static str, Problems),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Publishing failed.
    #[error("bus: {0}")]
    Bus(#[from] crate::BusError),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

/// A security component: one entry point, a config section, events out, policies in.
pub trait Component: Send + Sync + 'static {
    /// The component's name (its config section and policy key), e.g. `retention`.
    fn name(&self) -> &'static str;

    /// The validator of its per-tenant policies, when it has any.
    fn policy(&self) -> Option<Arc<dyn PolicyValidator>>;

    /// Checks the component's config section without starting anything; returns every
    /// problem. `mamori serve` calls it for every component before starting any.
    fn check_config(&self, section: &Value) -> Result<(), Problems>;

    /// Runs until `cx.shutdown` turns true.
    fn run(self: Arc<Self>, cx: ComponentCx) -> Pin<Box<dyn Future<Output = Result<(), ComponentError>> + Send>>;
}

/// What a running component gets.
#[derive(Clone)]
pub struct ComponentCx {
    /// The component's name.
    pub name: &'static str,
    /// Where its events go.
    pub bus: Bus,
    /// The config store.
    pub store: Store,
    /// Its config section (`[components.NAME]` of mamori.toml), `{}` when absent.
    pub config: Value,
    /// Turns true when the node shuts down.
    pub shutdown: watch::Receiver<bool>,
    validator: Option<Arc<dyn PolicyValidator>>,
}

impl ComponentCx {
    /// Returns a context.
    pub fn new(component: &dyn Component, bus: Bus, store: Store, config: Value, shutdown: watch::Receiver<bool>) -> Self {
        Self { name: component.name(), bus, store, config, shutdown, validator: component.policy() }
    }

    /// Returns a watch that wakes when policies change.
    pub fn watch_policies(&self) -> PolicyWatch {
        self.store.watch_policies()
    }

    /// Returns the component's current policies: the platform default (the stored one,
    /// else the validator's default) and each tenant's own.
    pub async fn policies(&self) -> Result<Policies, ComponentError> {
        let docs = self.store.latest_policies(self.name).await?;
        let mut default = self.validator.as_ref().map(|v| v.default_policy()).unwrap_or(Value::Null);
        let mut tenants = HashMap::new();
        for d in docs {
            match d.tenant {
                None => default = d.document,
                Some(t) => {
                    tenants.insert(t, d.document);
                }
            }
        }
        Ok(Policies { default, tenants })
    }

    /// Returns the cross-tenant grant of the platform, for the component's own reads.
    pub fn system_grant(&self) -> CrossTenant {
        CrossTenant::system(mamori_core::Actor { kind: mamori_core::ActorKind::System, user_id: None, name: format!("component:{}", self.name), ip: None })
    }
}

/// A component's policies at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Policies {
    /// The platform default.
    pub default: Value,
    /// Each tenant's own policy, where one was saved.
    pub tenants: HashMap<TenantId, Value>,
}

impl Policies {
    /// Returns the policy in force for `tenant`.
    pub fn for_tenant(&self, tenant: TenantId) -> &Value {
        self.tenants.get(&tenant).unwrap_or(&self.default)
    }
}

/// The components this build knows.
#[derive(Clone, Default)]
pub struct Registry {
    components: Vec<Arc<dyn Component>>,
}

impl Registry {
    /// Returns the registry of every built-in component.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        r.add(Arc::new(crate::retention::Retention));
        r
    }

    /// Adds a component.
    pub fn add(&mut self, c: Arc<dyn Component>) {
        self.components.push(c);
    }

    /// Returns every component.
    pub fn all(&self) -> &[Arc<dyn Component>] {
        &self.components
    }

    /// Returns the component with this name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Component>> {
        self.components.iter().find(|c| c.name() == name)
    }

    /// Returns the policy validator of a component.
    pub fn validator(&self, component: &str) -> Option<Arc<dyn PolicyValidator>> {
        self.get(component).and_then(|c| c.policy())
    }

    /// Returns the names of components that have policies.
    pub fn policy_components(&self) -> Vec<&'static str> {
        self.components.iter().filter(|c| c.policy().is_some()).map(|c| c.name()).collect()
    }
}
