//! Domain types of Mamori, shared by every crate.
//!
//! Nothing here does I/O. The main types:
//! - [`Tenant`] with its [`LocalGovCode`] (全国地方公共団体コード), [`TenantKind`],
//!   contacts, network ranges and service subscriptions from the [`catalog`] (F30–F51).
//! - [`network`]: segments, ranges, mail domains, FQDNs, the α/β separation models and
//!   the [`TenantDirectory`] that maps traffic to a tenant.
//! - [`Role`], [`Permission`] and [`Actor`]: who acts and what the role allows. Which
//!   tenants' data a request reaches is a capability the store's authentication and the
//!   runtime make (`mamori_store::access`).
//! - [`Event`]: the normalized event (a subset of OCSF 1.x classes and field names).
//! - [`PolicyDocument`] and [`PolicyValidator`]: versioned per-tenant policies.
//! - [`Problem`] / [`Problems`]: validation errors with Japanese and English text.
#![deny(missing_docs)]

pub mod catalog;
mod event;
mod ids;
pub mod monitor;
pub mod network;
mod policy;
mod problem;
mod role;
mod tenant;
pub mod time;

pub use event::{Disposition, Endpoint, Event, EventClass, Product, Severity};
pub use ids::{EventId, TenantId, TokenId, UserId};
pub use network::{DomainName, NetworkRange, Segment, SegmentName, SeparationModel, TenantDirectory, TenantEntry, Zone};
pub use policy::{Approval, Decision, PolicyChange, PolicyDocument, PolicyValidator, diff as policy_diff};
pub use problem::{Problem, Problems};
pub use role::{Actor, ActorKind, Permission, Reach, Role, TokenScope};
pub use tenant::{CheckedTenant, Contact, LocalGovCode, NewTenant, Tenant, TenantKind, search_fold, validate_kana};
