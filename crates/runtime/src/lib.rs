//! The component runtime of Mamori: the one shape of every security component.
//!
//! A component ([`Component`]) has a typed config section ([`ComponentConfig`]: serde
//! with unknown keys refused, `validate()` without I/O listing every problem, field
//! docs that become the commented file `mamori init` writes), declares its listeners
//! ([`Resource`]) and its [`Placement`], is built once at start ([`Component::build`]:
//! the I/O, so a bad path is a startup error) and then run ([`Service::run`]) under a
//! supervisor.
//!
//! A node ([`Node`]) goes through [`Plan::check`] (every section, clashes between
//! listeners), [`Plan::bind`] (the runtime binds the listeners, so the binary can give
//! up root afterwards), [`BoundPlan::start`] (build, then supervise) and
//! [`Running::shutdown`] (all components stopped and drained together, within a grace).
//!
//! - **Placement.** A [`Placement::Singleton`] runs on the one node that holds its lease
//!   in the config store (`component:NAME`); the others stand by and take over when the
//!   lease lapses (a killed node) or is released (a stopped node).
//! - **Supervision.** A panic or an error is logged, counted
//!   (`mamori_component_restarts_total{component,reason}`) and followed by a restart
//!   with backoff (1 s doubling to 60 s); `/healthz` shows the component `restarting`
//!   meanwhile and answers 503.
//! - **Health** ([`Health`]): each component's [`State`], the lease epoch it holds, its
//!   restarts; a component reports trouble it survives with [`HealthReporter::degraded`].
//! - **Metrics** ([`Metrics`]): one registry per node; components add theirs at build.
//! - **Typed events** ([`ComponentEvent`]): each component's own enum, converted into the
//!   OCSF event and counted by kind on its way to the bus ([`Emitter`]).
//!
//! - **Policies** ([`PolicyFeed`]): each tenant's policy parsed once into the
//!   component's type behind an atomically swapped [`PolicySnapshot`], updated from the
//!   per-(component, tenant) change feed with the tenants that changed.
//! - **Tenants** ([`TenantResolver`]): (segment, source address), mail domain or FQDN →
//!   tenant, one directory per node, swapped when tenants change on any node.
//!
//! Components of the platform itself live here too: [`retention`] and
//! [`blob_collector`].
#![deny(missing_docs)]

pub mod blob_collector;
mod component;
mod config;
mod event;
mod health;
mod listen;
mod metrics;
mod node;
mod policy;
pub mod retention;
mod tenants;

pub use component::{AnyComponent, BoxFuture, BuildCx, BuildError, Checked, Component, ComponentConfig, ComponentError, Placement, Registry, RunCx, Service};
pub use config::{read_section, template};
pub use event::{ComponentEvent, Emitter, RuntimeEvent};
pub use health::{ComponentHealth, Health, HealthReporter, Notice, State};
pub use listen::{Resource, Transport};
pub use metrics::Metrics;
pub use node::{BoundPlan, Node, NodeOptions, Plan, Running, hostname, lease_name};
pub use policy::{PolicyChanges, PolicyFeed, PolicyFeedError, PolicySnapshot};
pub use tenants::TenantResolver;

/// Completes when `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here.
    let _ = stop.wait_for(|s| *s).await;
}
