//! People, roles, permissions and the tenant scope of a request.
//!
//! Operator roles (operator admin, SOC analyst, help desk, auditor) work across all
//! tenants; tenant roles (tenant admin, tenant user) belong to one municipality. The
//! [`Scope`] a request may use is derived from its [`Principal`] and passed to every
//! store function that touches tenant data.

use crate::{Problem, TenantId, TokenId, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A person's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the platform: tenants, users, policies, settings (all tenants).
    OperatorAdmin,
    /// Watches and investigates events and manages detection policy (all tenants).
    SocAnalyst,
    /// Answers municipalities: reads tenants and events (all tenants).
    Helpdesk,
    /// Reads everything, including the audit log; changes nothing (all tenants).
    Auditor,
    /// Administers one municipality: its users, contacts and policies.
    TenantAdmin,
    /// Sees one municipality's status and events.
    TenantUser,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 6] = [Role::OperatorAdmin, Role::SocAnalyst, Role::Helpdesk, Role::Auditor, Role::TenantAdmin, Role::TenantUser];

    /// Returns the stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::OperatorAdmin => "operator_admin",
            Role::SocAnalyst => "soc_analyst",
            Role::Helpdesk => "helpdesk",
            Role::Auditor => "auditor",
            Role::TenantAdmin => "tenant_admin",
            Role::TenantUser => "tenant_user",
        }
    }

    /// Returns the Japanese name.
    pub fn ja(&self) -> &'static str {
        match self {
            Role::OperatorAdmin => "運用管理者",
            Role::SocAnalyst => "SOC アナリスト",
            Role::Helpdesk => "ヘルプデスク",
            Role::Auditor => "監査担当",
            Role::TenantAdmin => "団体管理者",
            Role::TenantUser => "団体利用者",
        }
    }

    /// Returns the English name.
    pub fn en(&self) -> &'static str {
        match self {
            Role::OperatorAdmin => "Operator admin",
            Role::SocAnalyst => "SOC analyst",
            Role::Helpdesk => "Help desk",
            Role::Auditor => "Auditor",
            Role::TenantAdmin => "Tenant admin",
            Role::TenantUser => "Tenant user",
        }
    }

    /// Returns true for the roles that work across all tenants. These roles must use a
    /// TOTP second factor.
    pub fn is_operator(&self) -> bool {
        !matches!(self, Role::TenantAdmin | Role::TenantUser)
    }

    /// Returns true when this role has the permission.
    pub fn allows(&self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::OperatorAdmin => true,
            Role::SocAnalyst => {
                matches!(p, TenantsRead | UsersRead | EventsRead | EventsWrite | PoliciesRead | PoliciesWrite | AuditRead | MonitorsRead | MonitorsWrite)
            }
            Role::Helpdesk => matches!(p, TenantsRead | UsersRead | EventsRead | PoliciesRead | MonitorsRead),
            Role::Auditor => matches!(p, TenantsRead | UsersRead | EventsRead | PoliciesRead | AuditRead | MonitorsRead),
            Role::TenantAdmin => {
                matches!(p, TenantsRead | UsersRead | UsersWrite | EventsRead | PoliciesRead | PoliciesWrite | AuditRead | MonitorsRead | MonitorsWrite)
            }
            Role::TenantUser => matches!(p, TenantsRead | EventsRead | MonitorsRead),
        }
    }

    /// Returns true when a holder of this role may give `other` to an account.
    pub fn may_grant(&self, other: Role) -> bool {
        match self {
            Role::OperatorAdmin => true,
            Role::TenantAdmin => !other.is_operator(),
            _ => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Problem;
    fn from_str(s: &str) -> Result<Self, Problem> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| Problem::new("role", "invalid_role", format!("ロール「{s}」は不明です"), format!("unknown role '{s}'")))
    }
}

/// Something a request may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read tenants (in scope).
    TenantsRead,
    /// Create, change, delete, import tenants.
    TenantsWrite,
    /// Read accounts.
    UsersRead,
    /// Create and change accounts.
    UsersWrite,
    /// Search events.
    EventsRead,
    /// Submit events through the API.
    EventsWrite,
    /// Read and export the audit log.
    AuditRead,
    /// Read policies.
    PoliciesRead,
    /// Change policies.
    PoliciesWrite,
    /// Change platform settings.
    SettingsWrite,
    /// See monitors, their results and fault records.
    MonitorsRead,
    /// Create, change and delete monitors and probes; comment on faults.
    MonitorsWrite,
}

impl Permission {
    /// Every permission, in the order of the enum.
    pub const ALL: [Permission; 12] = [
        Permission::TenantsRead,
        Permission::TenantsWrite,
        Permission::UsersRead,
        Permission::UsersWrite,
        Permission::EventsRead,
        Permission::EventsWrite,
        Permission::AuditRead,
        Permission::PoliciesRead,
        Permission::PoliciesWrite,
        Permission::SettingsWrite,
        Permission::MonitorsRead,
        Permission::MonitorsWrite,
    ];
}

/// The scopes an API token can carry. A token acts with its owner's role, narrowed to
/// the permissions its scopes name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenScope {
    /// `tenants:read`
    #[serde(rename = "tenants:read")]
    TenantsRead,
    /// `tenants:write`
    #[serde(rename = "tenants:write")]
    TenantsWrite,
    /// `users:read`
    #[serde(rename = "users:read")]
    UsersRead,
    /// `users:write`
    #[serde(rename = "users:write")]
    UsersWrite,
    /// `events:read`
    #[serde(rename = "events:read")]
    EventsRead,
    /// `events:write`
    #[serde(rename = "events:write")]
    EventsWrite,
    /// `audit:read`
    #[serde(rename = "audit:read")]
    AuditRead,
    /// `policies:read`
    #[serde(rename = "policies:read")]
    PoliciesRead,
    /// `policies:write`
    #[serde(rename = "policies:write")]
    PoliciesWrite,
    /// `settings:write`
    #[serde(rename = "settings:write")]
    SettingsWrite,
    /// `monitors:read`
    #[serde(rename = "monitors:read")]
    MonitorsRead,
    /// `monitors:write`
    #[serde(rename = "monitors:write")]
    MonitorsWrite,
}

impl TokenScope {
    /// Every scope.
    pub const ALL: [TokenScope; 12] = [
        TokenScope::TenantsRead,
        TokenScope::TenantsWrite,
        TokenScope::UsersRead,
        TokenScope::UsersWrite,
        TokenScope::EventsRead,
        TokenScope::EventsWrite,
        TokenScope::AuditRead,
        TokenScope::PoliciesRead,
        TokenScope::PoliciesWrite,
        TokenScope::SettingsWrite,
        TokenScope::MonitorsRead,
        TokenScope::MonitorsWrite,
    ];

    /// Returns the permission this scope grants.
    pub fn permission(&self) -> Permission {
        match self {
            TokenScope::TenantsRead => Permission::TenantsRead,
            TokenScope::TenantsWrite => Permission::TenantsWrite,
            TokenScope::UsersRead => Permission::UsersRead,
            TokenScope::UsersWrite => Permission::UsersWrite,
            TokenScope::EventsRead => Permission::EventsRead,
            TokenScope::EventsWrite => Permission::EventsWrite,
            TokenScope::AuditRead => Permission::AuditRead,
            TokenScope::PoliciesRead => Permission::PoliciesRead,
            TokenScope::PoliciesWrite => Permission::PoliciesWrite,
            TokenScope::SettingsWrite => Permission::SettingsWrite,
            TokenScope::MonitorsRead => Permission::MonitorsRead,
            TokenScope::MonitorsWrite => Permission::MonitorsWrite,
        }
    }

    /// Returns the scope's name, e.g. `events:read`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenScope::TenantsRead => "tenants:read",
            TokenScope::TenantsWrite => "tenants:write",
            TokenScope::UsersRead => "users:read",
            TokenScope::UsersWrite => "users:write",
            TokenScope::EventsRead => "events:read",
            TokenScope::EventsWrite => "events:write",
            TokenScope::AuditRead => "audit:read",
            TokenScope::PoliciesRead => "policies:read",
            TokenScope::PoliciesWrite => "policies:write",
            TokenScope::SettingsWrite => "settings:write",
            TokenScope::MonitorsRead => "monitors:read",
            TokenScope::MonitorsWrite => "monitors:write",
        }
    }
}

impl FromStr for TokenScope {
    type Err = Problem;
    fn from_str(s: &str) -> Result<Self, Problem> {
        TokenScope::ALL
            .into_iter()
            .find(|t| t.as_str() == s.trim())
            .ok_or_else(|| Problem::new("scopes", "invalid_scope", format!("スコープ「{s}」は不明です"), format!("unknown scope '{s}'")))
    }
}

/// Who did something, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// A person, a token, the command line or the system itself.
    pub kind: ActorKind,
    /// Account id, when a person or token acted.
    pub user_id: Option<UserId>,
    /// Login name (or `system`, `cli`).
    pub name: String,
    /// Source address of the request, when there was one.
    pub ip: Option<String>,
}

impl Actor {
    /// The platform itself (seeding, retention, migrations).
    pub fn system() -> Self {
        Self { kind: ActorKind::System, user_id: None, name: "system".into(), ip: None }
    }

    /// An operator at the server's command line.
    pub fn cli() -> Self {
        let name = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "cli".into());
        Self { kind: ActorKind::Cli, user_id: None, name: format!("cli:{name}"), ip: None }
    }
}

/// The kind of an [`Actor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person in the console or API with a session.
    User,
    /// An API token.
    Token,
    /// The `mamori` command line.
    Cli,
    /// The platform.
    System,
}

impl ActorKind {
    /// Returns the stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Token => "token",
            ActorKind::Cli => "cli",
            ActorKind::System => "system",
        }
    }
}

/// An authenticated requester.
#[derive(Clone, Debug)]
pub struct Principal {
    /// Account.
    pub user_id: UserId,
    /// Login name.
    pub username: String,
    /// Name shown in the console.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// The municipality of a tenant role; None for operator roles.
    pub tenant_id: Option<TenantId>,
    /// The token used, with its scopes; None for a console session.
    pub token: Option<(TokenId, Vec<TokenScope>)>,
    /// Source address.
    pub ip: Option<String>,
}

impl Principal {
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
        self.can(Permission::TenantsWrite) || (self.can(Permission::PoliciesWrite) && self.tenant_id == Some(tenant))
    }

    /// Returns the scope of tenant data this principal may reach: one tenant for tenant
    /// roles, all tenants (an audited capability) for operator roles.
    pub fn scope(&self) -> Scope {
        match (self.role.is_operator(), self.tenant_id) {
            (true, _) => Scope::All(CrossTenant { actor: self.actor() }),
            (false, Some(t)) => Scope::Tenant(t),
            // A tenant role without a tenant reaches nothing.
            (false, None) => Scope::Nothing,
        }
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

/// Proof that a request may read across tenants. Only [`Principal::scope`] (for an
/// operator role) and [`CrossTenant::system`] make one; the store records its use in
/// the audit log.
#[derive(Clone, Debug)]
pub struct CrossTenant {
    actor: Actor,
}

impl CrossTenant {
    /// Returns the grant of the platform itself (background jobs, CLI admin commands).
    pub fn system(actor: Actor) -> Self {
        debug_assert!(matches!(actor.kind, ActorKind::System | ActorKind::Cli));
        Self { actor }
    }

    /// Returns who holds this grant.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}

/// Which tenants' data a store call may reach.
#[derive(Clone, Debug)]
pub enum Scope {
    /// One municipality.
    Tenant(TenantId),
    /// All tenants: an operator role or the system.
    All(CrossTenant),
    /// No tenant at all (a misconfigured account).
    Nothing,
}

impl Scope {
    /// Returns true when a record of tenant `t` is within this scope.
    pub fn includes(&self, t: TenantId) -> bool {
        match self {
            Scope::Tenant(own) => *own == t,
            Scope::All(_) => true,
            Scope::Nothing => false,
        }
    }

    /// Returns the single tenant of a tenant scope.
    pub fn tenant(&self) -> Option<TenantId> {
        match self {
            Scope::Tenant(t) => Some(*t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_permission_is_listed_once_and_every_scope_grants_one() {
        let mut all = Permission::ALL.to_vec();
        all.dedup();
        assert_eq!(all.len(), Permission::ALL.len());
        for p in Permission::ALL {
            // A new variant breaks this match: the reminder to add it to ALL as well.
            match p {
                Permission::TenantsRead
                | Permission::TenantsWrite
                | Permission::UsersRead
                | Permission::UsersWrite
                | Permission::EventsRead
                | Permission::EventsWrite
                | Permission::AuditRead
                | Permission::PoliciesRead
                | Permission::PoliciesWrite
                | Permission::SettingsWrite
                | Permission::MonitorsRead
                | Permission::MonitorsWrite => {}
            }
        }
        assert!(TokenScope::ALL.iter().all(|s| Permission::ALL.contains(&s.permission())));
    }
    use super::*;

    fn principal(role: Role, tenant: Option<TenantId>) -> Principal {
        Principal { user_id: UserId::new(), username: "u".into(), display_name: "U".into(), role, tenant_id: tenant, token: None, ip: None }
    }

    #[test]
    fn tenant_roles_are_scoped_to_their_tenant() {
        let t = TenantId::new();
        let p = principal(Role::TenantAdmin, Some(t));
        assert!(p.scope().includes(t));
        assert!(!p.scope().includes(TenantId::new()));
        assert!(!principal(Role::TenantUser, None).scope().includes(t));
        assert!(principal(Role::Auditor, None).scope().includes(t));
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

    #[test]
    fn only_admins_grant_roles() {
        assert!(Role::TenantAdmin.may_grant(Role::TenantUser));
        assert!(!Role::TenantAdmin.may_grant(Role::Auditor));
        assert!(!Role::SocAnalyst.may_grant(Role::TenantUser));
        assert!(!Role::Auditor.allows(Permission::TenantsWrite));
    }
}
