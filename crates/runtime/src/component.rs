//! The contract every security component implements, and its type-erased form for the
//! [`Registry`].

use crate::config;
use crate::event::Emitter;
use crate::health::HealthReporter;
use crate::listen::{Bound, Resource};
use crate::metrics::Metrics;
use crate::tenants::TenantResolver;
use mamori_bus::Bus;
use mamori_core::{PolicyValidator, Problems};
use mamori_store::CrossTenant;
use mamori_store::{Store, StoreError};
use mamori_vault::Vault;
use mamori_web::{WebCx, WebPart};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;

/// A boxed future, as components return them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Errors a running component ends with. The supervisor logs them, counts them and
/// starts the component again after a pause.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Publishing failed.
    #[error("bus: {0}")]
    Bus(#[from] mamori_bus::BusError),
    /// A listener handed over by the runtime could not be used.
    #[error("listener '{0}': {1}")]
    Listener(String, #[source] std::io::Error),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

/// Errors of [`Component::build`]: they stop `mamori serve` at start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A file named by the config could not be read or is wrong.
    #[error("{key}: {path}: {reason}")]
    File {
        /// The config key naming the file.
        key: &'static str,
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

/// Where a component runs when several nodes share one config store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// On every node that runs it (a listener behind a load balancer).
    Replicated,
    /// On exactly one node at a time: the one holding the component's lease in the
    /// config store. The others stand by and take over when it lapses.
    Singleton,
}

/// The typed config section of a component (`[components.NAME]` of mamori.toml).
///
/// Derive `Deserialize` with `#[serde(deny_unknown_fields, default)]`, `Serialize`
/// (its `Default` is the commented template `mamori init` writes), `JsonSchema` (its
/// field doc comments, Japanese line first, then English, become the template's
/// comments), and implement [`ComponentConfig::validate`].
pub trait ComponentConfig: DeserializeOwned + Serialize + schemars::JsonSchema + Default + Send + Sync + 'static {
    /// Checks the section without I/O; returns every problem.
    fn validate(&self) -> Result<(), Problems> {
        Ok(())
    }
}

/// A security component: typed config, resources, placement, built once, then run.
///
/// ```no_run
/// use mamori_runtime::{BoxFuture, BuildCx, BuildError, Component, ComponentConfig, ComponentError, RunCx, Service};
/// use std::sync::Arc;
///
/// #[derive(Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
/// #[serde(deny_unknown_fields, default)]
/// struct EchoConfig {
///     /// 待ち受けポート。
///     /// Port to listen on.
///     port: u16,
/// }
/// impl ComponentConfig for EchoConfig {}
///
/// struct Echo;
/// struct EchoService;
/// impl Component for Echo {
///     type Config = EchoConfig;
///     fn name(&self) -> &'static str { "echo" }
///     fn resources(&self, c: &EchoConfig) -> Vec<mamori_runtime::Resource> {
///         vec![mamori_runtime::Resource::tcp("echo", ([0, 0, 0, 0], c.port).into())]
///     }
///     async fn build(&self, _config: EchoConfig, _cx: BuildCx) -> Result<Arc<dyn Service>, BuildError> {
///         Ok(Arc::new(EchoService))
///     }
/// }
/// impl Service for EchoService {
///     fn run(self: Arc<Self>, cx: RunCx) -> BoxFuture<Result<(), ComponentError>> {
///         Box::pin(async move {
///             let listener = cx.tcp_listener("echo")?;
///             let mut stop = cx.stop.clone();
///             loop {
///                 tokio::select! {
///                     _ = mamori_runtime::stopped(&mut stop) => return Ok(()),
///                     accepted = listener.accept() => { let _ = accepted; }
///                 }
///             }
///         })
///     }
/// }
/// ```
pub trait Component: Send + Sync + 'static {
    /// Its config section.
    type Config: ComponentConfig;

    /// The component's name: its config section, policy key, lease and metric prefix.
    fn name(&self) -> &'static str;

    /// Where it runs; replicated unless it says otherwise.
    fn placement(&self) -> Placement {
        Placement::Replicated
    }

    /// The validator of its per-tenant policies, when it has any.
    fn policy(&self) -> Option<Arc<dyn PolicyValidator>> {
        None
    }

    /// The listeners it needs under this config. The runtime refuses clashes between
    /// components at start, binds them itself (before giving up root, so ports below
    /// 1024 work) and hands them over by name ([`RunCx::tcp_listener`]).
    fn resources(&self, _config: &Self::Config) -> Vec<Resource> {
        Vec::new()
    }

    /// Its pages, API routes, navigation entries, OpenAPI schemas and isolation-test
    /// fixture, which the console serves on every node that runs the console, whether
    /// or not the component runs there (the handlers read the stores, not the running
    /// service).
    fn web(&self, _cx: &WebCx) -> Option<WebPart> {
        None
    }

    /// Does the I/O the component needs once at start (files, certificates, store
    /// reads). An error here stops `mamori serve` with a clear message instead of a
    /// retry loop.
    fn build(&self, config: Self::Config, cx: BuildCx) -> impl Future<Output = Result<Arc<dyn Service>, BuildError>> + Send;
}

/// A built component. The supervisor calls [`Service::run`] again after a panic or an
/// error, so it must be able to start over from its built state.
pub trait Service: Send + Sync + 'static {
    /// Runs until `cx.stop` turns true (node shutdown, or the lease of a singleton
    /// lost): stop accepting, finish or hand back what is in flight, return.
    fn run(self: Arc<Self>, cx: RunCx) -> BoxFuture<Result<(), ComponentError>>;
}

/// What [`Component::build`] gets.
#[derive(Clone)]
pub struct BuildCx {
    /// The component's name.
    pub name: &'static str,
    /// The config store.
    pub store: Store,
    /// The event bus.
    pub bus: Bus,
    /// The node's metrics registry; register counters under the component's prefix.
    pub metrics: Metrics,
    /// Maps traffic to tenants.
    pub tenants: TenantResolver,
    /// Secrets (keys, certificates, passwords) and blobs (quarantine, evidence, files).
    pub vault: Vault,
    pub(crate) grant: CrossTenant,
}

impl BuildCx {
    /// Returns the component's cross-tenant grant (minted once per node start, in the
    /// audit log as `access.grant` by `component:<name>`).
    pub fn system_grant(&self) -> &CrossTenant {
        &self.grant
    }
}

/// What a running component gets, each time it is (re)started.
#[derive(Clone)]
pub struct RunCx {
    /// The component's name.
    pub name: &'static str,
    /// The config store.
    pub store: Store,
    /// Its typed events go through here to the bus.
    pub events: Emitter,
    /// Turns true when the component must stop.
    pub stop: watch::Receiver<bool>,
    /// Where it tells the node of trouble it survives (shown in `/healthz`).
    pub health: HealthReporter,
    /// Maps traffic to tenants: (segment, source address), mail domain, FQDN.
    pub tenants: TenantResolver,
    /// Secrets and blobs.
    pub vault: Vault,
    pub(crate) listeners: Bound,
    pub(crate) validator: Option<Arc<dyn PolicyValidator>>,
    pub(crate) grant: CrossTenant,
}

impl RunCx {
    /// Returns the listener `name` bound for this component (a new handle on the same
    /// socket each call, so a restarted component gets it again).
    pub fn tcp_listener(&self, name: &str) -> Result<tokio::net::TcpListener, ComponentError> {
        self.listeners.tcp(self.name, name).map_err(|e| ComponentError::Listener(name.to_string(), e))
    }

    /// Returns the UDP socket `name` bound for this component.
    pub fn udp_socket(&self, name: &str) -> Result<tokio::net::UdpSocket, ComponentError> {
        self.listeners.udp(self.name, name).map_err(|e| ComponentError::Listener(name.to_string(), e))
    }

    /// Returns the bus (for reading the event store; publish through [`RunCx::events`]).
    pub fn bus(&self) -> &Bus {
        self.events.bus()
    }

    /// Opens the component's typed policies: every tenant's document parsed once into
    /// `P`, kept current through the change feed ([`crate::PolicyFeed::changed`]).
    pub async fn policy_feed<P: serde::de::DeserializeOwned + Send + Sync + 'static>(&self) -> Result<crate::PolicyFeed<P>, ComponentError> {
        let validator = self.validator.clone().ok_or_else(|| ComponentError::Other(format!("{} has no policy", self.name)))?;
        crate::PolicyFeed::open(self.store.clone(), self.grant.clone(), validator.as_ref(), self.health.clone())
            .await
            .map_err(|e| ComponentError::Other(e.to_string()))
    }

    /// Returns the component's cross-tenant grant (minted once per node start, in the
    /// audit log as `access.grant` by `component:<name>`).
    pub fn system_grant(&self) -> &CrossTenant {
        &self.grant
    }
}

/// A config section that passed [`AnyComponent::check`], ready to build.
pub struct Checked {
    pub(crate) config: Box<dyn Any + Send>,
    /// The listeners it needs.
    pub resources: Vec<Resource>,
}

/// A [`Component`] with its config type erased, as the registry keeps it.
pub trait AnyComponent: Send + Sync + 'static {
    /// See [`Component::name`].
    fn name(&self) -> &'static str;
    /// See [`Component::placement`].
    fn placement(&self) -> Placement;
    /// See [`Component::policy`].
    fn policy(&self) -> Option<Arc<dyn PolicyValidator>>;
    /// Reads and validates its config section (JSON); returns every problem.
    fn check(&self, section: &Value) -> Result<Checked, Problems>;
    /// Builds it from a checked section.
    fn build(self: Arc<Self>, checked: Checked, cx: BuildCx) -> BoxFuture<Result<Arc<dyn Service>, BuildError>>;
    /// Its section of the commented file `mamori init` writes.
    fn template(&self) -> String;
    /// See [`Component::web`].
    fn web(&self, cx: &WebCx) -> Option<WebPart>;
}

impl<C: Component> AnyComponent for C {
    fn name(&self) -> &'static str {
        Component::name(self)
    }

    fn placement(&self) -> Placement {
        Component::placement(self)
    }

    fn policy(&self) -> Option<Arc<dyn PolicyValidator>> {
        Component::policy(self)
    }

    fn check(&self, section: &Value) -> Result<Checked, Problems> {
        let config: C::Config = config::read_section(section)?;
        let resources = self.resources(&config);
        Ok(Checked { config: Box::new(config), resources })
    }

    fn build(self: Arc<Self>, checked: Checked, cx: BuildCx) -> BoxFuture<Result<Arc<dyn Service>, BuildError>> {
        Box::pin(async move {
            let config = checked.config.downcast::<C::Config>().map_err(|_| BuildError::Other("internal: a config of another component".into()))?;
            Component::build(&*self, *config, cx).await
        })
    }

    fn template(&self) -> String {
        config::template::<C::Config>(Component::name(self))
    }

    fn web(&self, cx: &WebCx) -> Option<WebPart> {
        Component::web(self, cx)
    }
}

/// The components this build knows.
#[derive(Clone, Default)]
pub struct Registry {
    components: Vec<Arc<dyn AnyComponent>>,
}

impl Registry {
    /// Returns the registry of the components of the runtime crate itself.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        r.add(Arc::new(crate::retention::Retention));
        r.add(Arc::new(crate::blob_collector::BlobCollector));
        r
    }

    /// Adds a component.
    pub fn add(&mut self, c: Arc<dyn AnyComponent>) {
        self.components.push(c);
    }

    /// Returns every component.
    pub fn all(&self) -> &[Arc<dyn AnyComponent>] {
        &self.components
    }

    /// Returns the component with this name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn AnyComponent>> {
        self.components.iter().find(|c| c.name() == name)
    }

    /// Returns the policy validator of a component.
    pub fn validator(&self, component: &str) -> Option<Arc<dyn PolicyValidator>> {
        self.get(component).and_then(|c| c.policy())
    }

    /// Returns the web parts of every component that has one.
    pub fn web_parts(&self, cx: &WebCx) -> Vec<WebPart> {
        self.components.iter().filter_map(|c| c.web(cx)).collect()
    }

    /// Returns the names of components that have policies.
    pub fn policy_components(&self) -> Vec<&'static str> {
        self.components.iter().filter(|c| c.policy().is_some()).map(|c| c.name()).collect()
    }
}
