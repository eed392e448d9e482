//! What every Mamori component's pages and API share.
//!
//! - [`auth`]: extractors that turn a request into a [`mamori_store::Principal`]
//!   ([`PageAuth`] for pages, [`ApiAuth`] for the API, CSRF checks), working with any
//!   router state: they find the [`Site`] in the request's extensions.
//! - [`layout`]: the page frame and navigation, error pages, form helpers.
//! - [`Lang`]: Japanese first, English available; texts sit side by side at their use.
//! - [`AppError`]: handler errors as pages or JSON.
//! - [`api`]: route documentation ([`RouteDoc`]) the OpenAPI document is generated from.
//! - [`svg`]: charts as inline SVG (no script, so they pass the CSP).
//! - [`table`]: sortable, paged tables with CSV export, all from the query string.
//! - [`live`]: live refresh of a page's fragment by server-sent events.
//! - [`form`]: forms generated from a JSON Schema (policies edited in fields).
//! - [`part`]: a component's [`WebPart`] (routes, pages, navigation, schemas, isolation
//!   fixture), which the console assembles.
//!
//! Dependencies point down: components and the console use this crate; it uses only
//! the platform's crates (core, store, bus, vault, http).
#![deny(missing_docs)]

pub mod api;
pub mod auth;
mod error;
mod extract;
pub mod form;
mod i18n;
pub mod layout;
pub mod live;
pub mod part;
mod settings;
pub mod svg;
pub mod table;

pub use api::{ApiResult, RouteDoc};
pub use auth::{ApiAuth, Authed, ClientIp, PageAuth};
pub use error::AppError;
pub use extract::{BadInput, Form, Path, Query};
pub use i18n::Lang;
pub use layout::NavEntry;
pub use part::{Attention, AttentionSource, Fixture, FixtureCx, FixtureFuture, IsolationFixture, Site, WebCx, WebPart};
pub use settings::AuthSettings;
