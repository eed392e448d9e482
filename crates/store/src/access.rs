//! Capabilities: which tenants' data a caller may reach (the tenant isolation every
//! function F01–F51 relies on; maintenance vendors' accounts serve F33's remote
//! maintenance).
//!
//! Four values stand between a caller and tenant data, and code outside this crate can
//! only receive them, never write them down:
//! - [`Principal`]: a person or an API token, made only by
//!   [`Store::authenticate_session`] and [`Store::authenticate_token`] from a live,
//!   fully logged-in session or a live token of a usable account.
//! - [`CrossTenant`]: the right to reach every tenant. An operator principal holds one;
//!   otherwise only the [`Authority`] that [`Store::open`] returns mints one, and every
//!   mint is written to the audit log (the runtime gives each component its own, the
//!   command line takes one per command).
//! - [`Scope`]: what one store call may reach, derived from those two and narrowed,
//!   never widened.
//! - [`OwnAccount`]: a person's right to change their own password, second factor and
//!   language, whatever their role (also during login, before they hold a principal).
//!
//! A scope cannot be forged:
//!
//! ```compile_fail
//! let forged = mamori_store::Scope::Tenant(mamori_core::TenantId::new());
//! ```
//!
//! Nor can a principal, a cross-tenant grant or the authority:
//!
//! ```compile_fail
//! let forged = mamori_store::Principal {
//!     user_id: mamori_core::UserId::new(),
//!     username: "root".into(),
//!     display_name: "root".into(),
//!     role: mamori_core::Role::OperatorAdmin,
//!     tenant_id: None,
//!     token: None,
//!     ip: None,
//! };
//! ```
//!
//! ```compile_fail
//! fn forge(actor: mamori_core::Actor) -> mamori_store::CrossTenant {
//!     mamori_store::CrossTenant { actor }
//! }
//! ```
//!
//! ```compile_fail
//! let forged = mamori_store::CrossTenant::system(mamori_core::Actor::system());
//! ```
//!
//! ```compile_fail
//! fn forge(store: mamori_store::Store) -> mamori_store::Authority {
//!     mamori_store::Authority { store }
//! }
//! ```
//!
//! What may be done with them compiles: narrowing a scope to one tenant, reading the
//! principal's role.
//!
//! ```
//! fn one_town(p: &mamori_store::Principal, t: mamori_core::TenantId) -> mamori_store::Scope {
//!     p.scope().narrow(t)
//! }
//! fn is_admin(p: &mamori_store::Principal) -> bool {
//!     p.role() == mamori_core::Role::OperatorAdmin
//! }
//! fn nobody() -> mamori_store::Scope {
//!     mamori_store::Scope::nothing()
//! }
//! ```

use crate::audit::Change;
use crate::{LoginRecord, Session, SessionStage, Store, StoreError, User};
use mamori_core::{Actor, ActorKind, Permission, Reach, Role, TenantId, TokenId, TokenScope, UserId};
use serde_json::json;
use std::sync::Arc;

/// The root of every cross-tenant grant: returned once by [`Store::open`] to whoever
/// opened the config store (the server, a command-line command, a test). It cannot be
/// cloned or made otherwise.
pub struct Authority {
    store: Store,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authority")
    }
}

impl Authority {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Mints the cross-tenant grant of a part of the platform (a component, the tenant
    /// resolver, the blob store) and writes it to the audit log: `who` names the holder
    /// (`component:monitor`), `purpose` says what for.
    pub async fn grant(&self, who: &str, purpose: &str) -> Result<CrossTenant, StoreError> {
        let actor = Actor { kind: ActorKind::System, user_id: None, name: who.to_string(), ip: None };
        self.mint(actor, purpose).await
    }

    /// Mints the cross-tenant grant of one command-line command (the operator's login
    /// name is the actor) and writes it to the audit log.
    pub async fn cli(&self, command: &str) -> Result<CrossTenant, StoreError> {
        self.mint(Actor::cli(), command).await
    }

    async fn mint(&self, actor: Actor, purpose: &str) -> Result<CrossTenant, StoreError> {
        let node = std::env::var("HOSTNAME").unwrap_or_default();
        self.store
            .record(Change {
                actor: &actor,
                tenant: None,
                action: "access.grant",
                target_kind: "grant",
                target_id: Some(actor.name.clone()),
                before: None,
                after: Some(json!({ "purpose": purpose, "host": node, "pid": std::process::id() })),
            })
            .await?;
        Ok(CrossTenant { actor, holder: None })
    }
}

/// The role (and token scopes) a person's scope carries, so the store can check what
/// the role may do where it matters (who writes which policy, who approves).
#[derive(Debug)]
struct Holder {
    role: Role,
    token: Option<Vec<TokenScope>>,
}

/// Proof that the holder may reach every tenant's data: an operator principal's, or one
/// minted (and audited) by the [`Authority`].
#[derive(Clone, Debug)]
pub struct CrossTenant {
    actor: Actor,
    /// None for a grant of the platform itself.
    holder: Option<Arc<Holder>>,
}

impl CrossTenant {
    /// Returns who holds this grant.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Returns the scope of every tenant.
    pub fn scope(&self) -> Scope {
        Scope { span: Span::All(self.clone()), holder: self.holder.clone() }
    }

    /// Returns the scope of one tenant.
    pub fn tenant(&self, t: TenantId) -> Scope {
        self.scope().narrow(t)
    }
}

/// Which tenants' data one store call may reach, and for a person, with which role.
#[derive(Clone, Debug)]
pub struct Scope {
    span: Span,
    holder: Option<Arc<Holder>>,
}

#[derive(Clone, Debug)]
enum Span {
    All(CrossTenant),
    /// These tenants (sorted, at least one).
    Some(Arc<[TenantId]>),
    None,
}

impl Scope {
    /// Returns the scope that reaches nothing (an account without a tenant).
    pub fn nothing() -> Scope {
        Scope { span: Span::None, holder: None }
    }

    /// Returns the role of the person whose scope this is; None for the platform's own
    /// grants (components, the command line).
    pub fn role(&self) -> Option<Role> {
        self.holder.as_ref().map(|h| h.role)
    }

    /// Returns true when the holder may do `p`: always for the platform's own grants;
    /// for a person, when the role (and the token's scopes, if any) allow it.
    pub fn allows(&self, p: Permission) -> bool {
        match &self.holder {
            None => true,
            Some(h) => h.role.allows(p) && h.token.as_ref().is_none_or(|ts| ts.iter().any(|s| s.permission() == p)),
        }
    }

    /// Returns true when a record of tenant `t` is within this scope.
    pub fn includes(&self, t: TenantId) -> bool {
        match &self.span {
            Span::All(_) => true,
            Span::Some(ts) => ts.binary_search(&t).is_ok(),
            Span::None => false,
        }
    }

    /// Returns the tenant when this scope reaches exactly one.
    pub fn tenant(&self) -> Option<TenantId> {
        match &self.span {
            Span::Some(ts) if ts.len() == 1 => Some(ts[0]),
            _ => None,
        }
    }

    /// Returns the tenants this scope reaches, or None when it reaches every tenant.
    pub fn tenants(&self) -> Option<&[TenantId]> {
        match &self.span {
            Span::All(_) => None,
            Span::Some(ts) => Some(ts),
            Span::None => Some(&[]),
        }
    }

    /// Returns true when the scope reaches every tenant.
    pub fn is_all(&self) -> bool {
        matches!(self.span, Span::All(_))
    }

    /// Returns true when the scope reaches no tenant.
    pub fn is_nothing(&self) -> bool {
        matches!(self.span, Span::None)
    }

    /// Returns the cross-tenant grant of a scope that reaches every tenant.
    pub fn cross(&self) -> Option<&CrossTenant> {
        match &self.span {
            Span::All(g) => Some(g),
            _ => None,
        }
    }

    /// Returns this scope narrowed to tenant `t`: that one tenant when it is within
    /// reach, nothing otherwise.
    pub fn narrow(&self, t: TenantId) -> Scope {
        let span = if self.includes(t) { Span::Some(Arc::from([t])) } else { Span::None };
        Scope { span, holder: self.holder.clone() }
    }

    /// Fails unless the scope reaches every tenant and its holder may do `p`: the check
    /// of platform-wide changes (tenants, segments, policy minimums and writers).
    pub(crate) fn require_all(&self, p: Permission, why: &'static str) -> Result<(), StoreError> {
        if self.is_all() && self.allows(p) { Ok(()) } else { Err(StoreError::Forbidden(why)) }
    }

    /// Appends ` AND <column> IN (…)` for a scope of some tenants, and
    /// ` AND <column> = $n` for a caller's own tenant filter, pushing their values to
    /// `binds` (placeholders are numbered `skip + position in binds`). Returns false for
    /// a scope that reaches nothing, which no query should be run for.
    pub(crate) fn push_clause(&self, filter: Option<TenantId>, column: &str, skip: usize, sql: &mut String, binds: &mut Vec<String>) -> bool {
        match &self.span {
            Span::None => return false,
            Span::All(_) => {}
            Span::Some(ts) => {
                let mut marks = Vec::with_capacity(ts.len());
                for t in ts.iter() {
                    binds.push(t.to_string());
                    marks.push(format!("${}", skip + binds.len()));
                }
                sql.push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
            }
        }
        if let Some(t) = filter {
            binds.push(t.to_string());
            sql.push_str(&format!(" AND {column} = ${}", skip + binds.len()));
        }
        true
    }

    /// Returns a scope of these tenants without a holder, for the crate's own tests.
    #[cfg(test)]
    pub(crate) fn of_tenants_for_tests(tenants: &[TenantId]) -> Scope {
        let mut ts = tenants.to_vec();
        ts.sort();
        Scope { span: if ts.is_empty() { Span::None } else { Span::Some(Arc::from(ts)) }, holder: None }
    }

    fn of(tenants: &[TenantId], holder: Arc<Holder>) -> Scope {
        let mut ts = tenants.to_vec();
        ts.sort();
        ts.dedup();
        let span = if ts.is_empty() { Span::None } else { Span::Some(Arc::from(ts)) };
        Scope { span, holder: Some(holder) }
    }
}

/// A person's right to change their own account (password, second factor, language,
/// own tokens): given by their principal, or by their session while they log in.
#[derive(Clone, Debug)]
pub struct OwnAccount {
    user: UserId,
    actor: Actor,
}

impl OwnAccount {
    /// Returns the account.
    pub fn user_id(&self) -> UserId {
        self.user
    }

    /// Returns the actor for the audit log.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

/// An authenticated requester: a person with a full session, or an API token.
#[derive(Clone, Debug)]
pub struct Principal {
    user_id: UserId,
    username: String,
    display_name: String,
    role: Role,
    tenant_id: Option<TenantId>,
    tenants: Vec<TenantId>,
    token: Option<(TokenId, Vec<TokenScope>)>,
    ip: Option<String>,
}

impl Principal {
    fn of(user: &User, token: Option<(TokenId, Vec<TokenScope>)>, ip: Option<String>) -> Principal {
        Principal {
            user_id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            role: user.role,
            tenant_id: user.tenant_id,
            tenants: user.tenants.clone(),
            token,
            ip,
        }
    }

    /// Returns the account.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// Returns the login name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Returns the name shown in the console.
    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// Returns the role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Returns the municipality of a tenant role; None for every other role.
    pub fn tenant_id(&self) -> Option<TenantId> {
        if self.role.is_tenant() { self.tenant_id } else { None }
    }

    /// Returns the token used, with its scopes; None for a console session.
    pub fn token(&self) -> Option<&(TokenId, Vec<TokenScope>)> {
        self.token.as_ref()
    }

    /// Returns the source address.
    pub fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }

    /// Returns true when the role (and the token's scopes, if any) allow `p`.
    pub fn can(&self, p: Permission) -> bool {
        self.role.allows(p)
            && match &self.token {
                None => true,
                Some((_, scopes)) => scopes.iter().any(|s| s.permission() == p),
            }
    }

    /// Returns true when this principal may replace the contacts of `tenant`: whoever
    /// may change tenants, and a tenant's own admin, who keeps its contacts current.
    pub fn may_edit_contacts(&self, tenant: TenantId) -> bool {
        self.can(Permission::TenantsWrite) || (self.can(Permission::PoliciesWrite) && self.tenant_id() == Some(tenant))
    }

    /// Returns the scope of tenant data this principal may reach: every tenant (an
    /// audited capability) for operator roles and the approver, its own for tenant
    /// roles, the named ones for a maintenance vendor.
    pub fn scope(&self) -> Scope {
        let holder = Arc::new(Holder { role: self.role, token: self.token.as_ref().map(|(_, s)| s.clone()) });
        match self.role.reach() {
            Reach::AllTenants => CrossTenant { actor: self.actor(), holder: Some(holder) }.scope(),
            Reach::OwnTenant => Scope::of(self.tenant_id.as_slice(), holder),
            Reach::NamedTenants => Scope::of(&self.tenants, holder),
        }
    }

    /// Returns the right to change this principal's own account.
    pub fn own_account(&self) -> OwnAccount {
        OwnAccount { user: self.user_id, actor: self.actor() }
    }

    /// Returns the actor for the audit log.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: if self.token.is_some() { ActorKind::Token } else { ActorKind::User },
            user_id: Some(self.user_id),
            name: match &self.token {
                Some((id, _)) => format!("{} (token {})", self.username, &id.to_string()[..8]),
                None => self.username.clone(),
            },
            ip: self.ip.clone(),
        }
    }
}

/// What authentication found: who, their account, and the session of a console request.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// Who.
    pub principal: Principal,
    /// The account.
    pub user: User,
    /// The session (None for an API token).
    pub session: Option<Session>,
}

impl Store {
    /// Authenticates a console request by the SHA-256 of its session cookie: a live,
    /// fully logged-in session of an account that is enabled and not expired.
    pub async fn authenticate_session(&self, id_hash: &str, now: i64, ip: Option<String>) -> Result<Option<Authenticated>, StoreError> {
        let Some(session) = self.session(id_hash, now).await? else { return Ok(None) };
        if session.stage != SessionStage::Full {
            return Ok(None);
        }
        let Some(rec) = self.login_record_by_id(session.user_id).await? else { return Ok(None) };
        if !rec.user.usable_at(now) {
            return Ok(None);
        }
        let principal = Principal::of(&rec.user, None, ip);
        Ok(Some(Authenticated { principal, user: rec.user, session: Some(session) }))
    }

    /// Authenticates an API request by the SHA-256 of its bearer token: a live token of
    /// an account that is enabled, not expired and not waiting for a password change.
    pub async fn authenticate_token(&self, token_hash: &str, now: i64, ip: Option<String>) -> Result<Option<Authenticated>, StoreError> {
        let Some(t) = self.token_by_hash(token_hash, now).await? else { return Ok(None) };
        let Some(rec) = self.login_record_by_id(t.user_id).await? else { return Ok(None) };
        // An account awaiting a password change (after a reset) acts through no token.
        if !rec.user.usable_at(now) || rec.user.must_change_password {
            return Ok(None);
        }
        let principal = Principal::of(&rec.user, Some((t.id, t.scopes)), ip);
        Ok(Some(Authenticated { principal, user: rec.user, session: None }))
    }
}

impl Session {
    /// Returns the right to change the session's own account while its owner logs in
    /// (enrolling TOTP, the forced password change).
    pub fn own_account(&self, rec: &LoginRecord, ip: Option<String>) -> Option<OwnAccount> {
        (rec.user.id == self.user_id).then(|| OwnAccount {
            user: self.user_id,
            actor: Actor { kind: ActorKind::User, user_id: Some(self.user_id), name: rec.user.username.clone(), ip },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, tenant: Option<TenantId>, tenants: Vec<TenantId>) -> User {
        User {
            id: UserId::new(),
            username: "u".into(),
            display_name: "U".into(),
            email: String::new(),
            role,
            tenant_id: tenant,
            tenants,
            expires_at: None,
            must_change_password: false,
            totp_enabled: true,
            failed_logins: 0,
            locked_until: 0,
            disabled: false,
            lang: "ja".into(),
            created_at: 0,
            updated_at: 0,
            last_login_at: None,
        }
    }

    fn principal(role: Role, tenant: Option<TenantId>) -> Principal {
        Principal::of(&user(role, tenant, Vec::new()), None, None)
    }

    #[test]
    fn tenant_roles_are_scoped_to_their_tenant() {
        let t = TenantId::new();
        let p = principal(Role::TenantAdmin, Some(t));
        assert!(p.scope().includes(t));
        assert!(!p.scope().includes(TenantId::new()));
        assert_eq!(p.scope().tenant(), Some(t));
        assert!(!principal(Role::TenantUser, None).scope().includes(t));
        assert!(principal(Role::Auditor, None).scope().includes(t));
        assert!(principal(Role::PrefectureApprover, None).scope().is_all());
        assert_eq!(p.scope().narrow(t).role(), Some(Role::TenantAdmin), "narrowing keeps the role");
    }

    #[test]
    fn a_scope_carries_what_its_role_may_do() {
        let s = principal(Role::SocAnalyst, None).scope();
        assert!(s.allows(Permission::PoliciesWrite));
        assert!(!s.allows(Permission::SettingsWrite));
        let mut p = principal(Role::OperatorAdmin, None);
        p.token = Some((TokenId::new(), vec![TokenScope::PoliciesRead]));
        assert!(!p.scope().allows(Permission::PoliciesWrite), "a token's scopes narrow its store scope too");
        assert!(p.scope().cross().is_some_and(|g| g.scope().role() == Some(Role::OperatorAdmin)));
    }

    #[test]
    fn a_vendor_reaches_the_named_tenants_only() {
        let (a, b, c) = (TenantId::new(), TenantId::new(), TenantId::new());
        let v = Principal::of(&user(Role::MaintenanceVendor, None, vec![b, a, a]), None, None);
        let s = v.scope();
        assert!(s.includes(a) && s.includes(b) && !s.includes(c));
        assert_eq!(s.tenants().map(<[_]>::len), Some(2));
        assert!(s.tenant().is_none(), "two tenants are not one");
        assert!(s.narrow(c).is_nothing(), "narrowing never widens");
        assert_eq!(s.narrow(a).tenant(), Some(a));
        let (mut sql, mut binds) = (String::new(), vec!["x".to_string()]);
        assert!(s.push_clause(Some(a), "tenant_id", 1, &mut sql, &mut binds));
        assert_eq!(sql, " AND tenant_id IN ($3, $4) AND tenant_id = $5");
        assert_eq!(binds.len(), 4);
        assert!(!Scope::nothing().push_clause(None, "tenant_id", 0, &mut sql, &mut binds));
        assert!(Principal::of(&user(Role::MaintenanceVendor, None, vec![]), None, None).scope().is_nothing());
        // A tenant id left on a vendor's record does not widen its reach.
        assert_eq!(Principal::of(&user(Role::MaintenanceVendor, Some(c), vec![a]), None, None).tenant_id(), None);
    }

    #[test]
    fn tokens_narrow_permissions() {
        let mut p = principal(Role::OperatorAdmin, None);
        p.token = Some((TokenId::new(), vec![TokenScope::EventsRead]));
        assert!(p.can(Permission::EventsRead));
        assert!(!p.can(Permission::TenantsWrite));
        let mut u = principal(Role::TenantUser, Some(TenantId::new()));
        u.token = Some((TokenId::new(), vec![TokenScope::TenantsWrite]));
        assert!(!u.can(Permission::TenantsWrite), "a scope never widens the role");
    }
}
