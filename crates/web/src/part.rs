//! Web parts: the pages, API routes, navigation entries, OpenAPI schemas and
//! isolation-test fixture a component brings (`Component::web` in the runtime). The
//! console assembles the parts of every registered component into one site and
//! depends on none of them.

use crate::{NavEntry, RouteDoc};
use axum::Router;
use mamori_bus::Bus;
use mamori_core::TenantId;
use mamori_store::{CrossTenant, Store};
use mamori_vault::Vault;
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a component's web part is built with: the platform's stores. The part's
/// handlers take everything else (who asks, in what language) from the request.
#[derive(Clone)]
#[non_exhaustive]
pub struct WebCx {
    /// The config store.
    pub store: Store,
    /// The event bus (and through it the event store).
    pub bus: Bus,
    /// Secrets and blobs.
    pub vault: Vault,
}

impl WebCx {
    /// Makes the context.
    pub fn new(store: Store, bus: Bus, vault: Vault) -> Self {
        WebCx { store, bus, vault }
    }
}

/// The web part of one component.
#[non_exhaustive]
pub struct WebPart {
    /// The component's name.
    pub name: &'static str,
    /// Its pages and API routes, state applied. Pages authenticate with
    /// [`crate::PageAuth`], API routes with [`crate::ApiAuth`].
    pub router: Router,
    /// Every API endpoint of the router, for OpenAPI and the isolation walk.
    pub api: &'static [RouteDoc],
    /// Every page path (GET) of the router; `{id}` stands for an id of the kind shown.
    pub pages: &'static [&'static str],
    /// Navigation entries.
    pub nav: &'static [NavEntry],
    /// OpenAPI schemas (`components.schemas`) its endpoints name.
    pub schemas: Map<String, Value>,
    /// Seeds marked data of a tenant for the isolation walk.
    pub fixture: Option<Arc<dyn IsolationFixture>>,
    /// Counts what needs someone now, for the dashboard.
    pub attention: Option<Arc<dyn AttentionSource>>,
}

impl WebPart {
    /// Makes a part with routes only; add the rest with the other methods.
    pub fn new(name: &'static str, router: Router) -> Self {
        WebPart { name, router, api: &[], pages: &[], nav: &[], schemas: Map::new(), fixture: None, attention: None }
    }

    /// Documents its API endpoints.
    pub fn api(self, api: &'static [RouteDoc]) -> Self {
        WebPart { api, ..self }
    }

    /// Lists its pages.
    pub fn pages(self, pages: &'static [&'static str]) -> Self {
        WebPart { pages, ..self }
    }

    /// Adds navigation entries.
    pub fn nav(self, nav: &'static [NavEntry]) -> Self {
        WebPart { nav, ..self }
    }

    /// Adds OpenAPI schemas (a JSON object: name → schema).
    pub fn schemas(self, schemas: Value) -> Self {
        let schemas = match schemas {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        WebPart { schemas, ..self }
    }

    /// Sets the isolation-test fixture.
    pub fn fixture(self, fixture: Arc<dyn IsolationFixture>) -> Self {
        WebPart { fixture: Some(fixture), ..self }
    }

    /// Sets what the part counts for the dashboard.
    pub fn attention(self, source: Arc<dyn AttentionSource>) -> Self {
        WebPart { attention: Some(source), ..self }
    }
}

/// Something that needs someone now in one tenant, as a part counts it: a column of the
/// dashboard's 「いま対応が必要なもの」 (DOWN monitors, open faults; later alerts, blocks).
#[derive(Clone, Debug, PartialEq)]
pub struct Attention {
    /// The tenant.
    pub tenant: TenantId,
    /// The column (ja, en).
    pub what: (&'static str, &'static str),
    /// How many.
    pub count: usize,
    /// Where they are listed.
    pub href: String,
}

/// Counts what needs someone now, per tenant, within what the person may see (their
/// scope and permissions; nothing when they may not read the part's data).
pub trait AttentionSource: Send + Sync {
    /// The counts, only those above zero.
    fn attention<'a>(&'a self, a: &'a crate::Authed) -> FixtureFuture<'a, Result<Vec<Attention>, crate::AppError>>;
}

/// The assembled site, as every request sees it (in its extensions): the store the
/// extractors authenticate against, the cookie mode, the navigation of every part.
#[derive(Clone)]
pub struct Site(Arc<SiteInner>);

struct SiteInner {
    store: Store,
    secure_cookies: bool,
    nav: Vec<NavEntry>,
    attention: Vec<Arc<dyn AttentionSource>>,
}

impl Site {
    /// Makes the site; `nav` is shown in its `order`.
    pub fn new(store: Store, secure_cookies: bool, mut nav: Vec<NavEntry>, attention: Vec<Arc<dyn AttentionSource>>) -> Self {
        nav.sort_by_key(|n| n.order);
        Site(Arc::new(SiteInner { store, secure_cookies, nav, attention }))
    }

    /// What the parts count for the dashboard, in part order.
    pub fn attention(&self) -> &[Arc<dyn AttentionSource>] {
        &self.0.attention
    }

    /// The config store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Whether cookies are `Secure` (`__Host-` prefixed).
    pub fn secure_cookies(&self) -> bool {
        self.0.secure_cookies
    }

    /// The navigation, in order.
    pub fn nav(&self) -> &[NavEntry] {
        &self.0.nav
    }
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site").field("secure_cookies", &self.0.secure_cookies).field("nav", &self.0.nav.len()).finish()
    }
}

/// A boxed future of a fixture.
pub type FixtureFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a fixture works on: the store, a grant to write any tenant's data, and the
/// tenant whose data it seeds or reads.
#[derive(Clone, Copy)]
pub struct FixtureCx<'a> {
    /// The config store.
    pub store: &'a Store,
    /// The test's grant.
    pub grant: &'a CrossTenant,
    /// The tenant.
    pub tenant: TenantId,
}

/// A component's share of the isolation walk: a tenant admin of one municipality
/// walks every route and page of every part aimed at another municipality's objects,
/// and nothing of the other is readable or writable.
pub trait IsolationFixture: Send + Sync {
    /// Seeds data of `cx.tenant` that carries the fixture's markers.
    fn seed<'a>(&'a self, cx: FixtureCx<'a>) -> FixtureFuture<'a, Result<Fixture, String>>;
    /// Describes the tenant's data of this component, so the walk can see that
    /// nothing changed.
    fn snapshot<'a>(&'a self, cx: FixtureCx<'a>) -> FixtureFuture<'a, Result<String, String>>;
}

/// What a fixture seeded, and how the walk aims at it.
#[derive(Clone, Debug, Default)]
pub struct Fixture {
    /// Strings only the seeded data contains.
    pub markers: Vec<String>,
    /// `(path prefix, id)`: a route or page under the prefix gets this id for `{id}`.
    pub ids: Vec<(String, String)>,
    /// `(method, path, body)`: the body a write endpoint is sent.
    pub bodies: Vec<(&'static str, &'static str, Value)>,
    /// `(page, paths)`: further ways to ask for a page (filters, ids).
    pub pages: Vec<(&'static str, Vec<String>)>,
    /// `(path, fields)`: forms posted at the seeded data.
    pub forms: Vec<(String, Vec<(String, String)>)>,
}

impl Fixture {
    /// Returns the id for a path, if the fixture names one.
    pub fn id_for(&self, path: &str) -> Option<&str> {
        self.ids.iter().find(|(prefix, _)| path.starts_with(prefix.as_str())).map(|(_, id)| id.as_str())
    }

    /// Returns the body for an endpoint, if the fixture names one.
    pub fn body_for(&self, method: &str, path: &str) -> Option<&Value> {
        self.bodies.iter().find(|(m, p, _)| *m == method && *p == path).map(|(_, _, b)| b)
    }
}
