//! Service monitoring of Mamori (F01–F05).
//!
//! - [`check`]: the checks (HTTP(S), SMTP relay, proxy, external DNS, LDAP/AD, TCP, ICMP),
//!   each bounded in time and in what it reads, each failure with a reason.
//! - [`engine`]: scheduling, retries, flapping, maintenance, dependencies, fault records
//!   (障害記録) and state-change events.
//! - [`notify`]: e-mail and webhook notifications with escalation and reminders, and
//!   the `monitor` policy that sets them per tenant.
//! - [`component`]: the `monitor` component of `mamori serve`.
//! - [`web`]: the monitoring pages and API (the monitor's web part).
//! - [`probe`]: the remote probe (`mamori probe`) that runs checks inside a
//!   municipality's network and reports to the core.
#![deny(missing_docs)]

pub mod check;
pub mod component;
pub mod engine;
pub mod events;
pub mod notify;
pub mod probe;
pub mod web;

pub use component::{MonitorConfig, Monitoring};
pub use engine::{Engine, EngineConfig, Inbox};
pub use events::{MonitorEvent, MonitorMetrics};
