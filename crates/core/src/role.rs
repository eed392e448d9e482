//! People, roles and permissions.
//!
//! Operator roles (operator admin, SOC analyst, help desk, auditor) and the
//! prefecture's approver work across all tenants; tenant roles (tenant admin, tenant
//! user) belong to one municipality; a maintenance vendor's account reaches the
//! municipalities named on it until the date it expires. What a request may reach is a
//! capability (`Principal`, `Scope`, `CrossTenant`) that only authentication and the
//! runtime make: see `mamori_store::access`.

use crate::{Problem, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A person's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The prefecture's approver (県の承認者): reads every tenant's policies and
    /// approves or rejects the changes that need approval.
    PrefectureApprover,
    /// A maintenance vendor (保守業者): works on the municipalities named on the account,
    /// which expires on a date.
    MaintenanceVendor,
}

/// Which tenants a role reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Every tenant (operator roles, the prefecture's approver).
    AllTenants,
    /// The account's one municipality.
    OwnTenant,
    /// The municipalities named on the account.
    NamedTenants,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 8] = [
        Role::OperatorAdmin,
        Role::SocAnalyst,
        Role::Helpdesk,
        Role::Auditor,
        Role::PrefectureApprover,
        Role::MaintenanceVendor,
        Role::TenantAdmin,
        Role::TenantUser,
    ];

    /// Returns the stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::OperatorAdmin => "operator_admin",
            Role::SocAnalyst => "soc_analyst",
            Role::Helpdesk => "helpdesk",
            Role::Auditor => "auditor",
            Role::TenantAdmin => "tenant_admin",
            Role::TenantUser => "tenant_user",
            Role::PrefectureApprover => "prefecture_approver",
            Role::MaintenanceVendor => "maintenance_vendor",
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
            Role::PrefectureApprover => "県の承認者",
            Role::MaintenanceVendor => "保守業者",
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
            Role::PrefectureApprover => "Prefecture approver",
            Role::MaintenanceVendor => "Maintenance vendor",
        }
    }

    /// Returns which tenants the role reaches.
    pub fn reach(&self) -> Reach {
        match self {
            Role::TenantAdmin | Role::TenantUser => Reach::OwnTenant,
            Role::MaintenanceVendor => Reach::NamedTenants,
            _ => Reach::AllTenants,
        }
    }

    /// Returns true for the roles that work across all tenants. These roles must use a
    /// TOTP second factor (and so must maintenance vendors).
    pub fn is_operator(&self) -> bool {
        self.reach() == Reach::AllTenants
    }

    /// Returns true for the roles of one municipality's own staff.
    pub fn is_tenant(&self) -> bool {
        self.reach() == Reach::OwnTenant
    }

    /// Returns true when this role has the permission.
    pub fn allows(&self, p: Permission) -> bool {
        use Permission::*;
        match self {
            // Approving stays with the prefecture: whoever runs the platform does not also
            // approve its changes.
            Role::OperatorAdmin => p != PoliciesApprove,
            Role::SocAnalyst => {
                matches!(p, TenantsRead | UsersRead | EventsRead | EventsWrite | PoliciesRead | PoliciesWrite | AuditRead | MonitorsRead | MonitorsWrite)
            }
            Role::Helpdesk => matches!(p, TenantsRead | UsersRead | EventsRead | PoliciesRead | MonitorsRead),
            Role::Auditor => matches!(p, TenantsRead | UsersRead | EventsRead | PoliciesRead | AuditRead | MonitorsRead),
            Role::TenantAdmin => {
                matches!(p, TenantsRead | UsersRead | UsersWrite | EventsRead | PoliciesRead | PoliciesWrite | AuditRead | MonitorsRead | MonitorsWrite)
            }
            Role::TenantUser => matches!(p, TenantsRead | EventsRead | MonitorsRead),
            Role::PrefectureApprover => matches!(p, TenantsRead | PoliciesRead | PoliciesApprove | AuditRead | MonitorsRead),
            Role::MaintenanceVendor => matches!(p, TenantsRead | EventsRead | PoliciesRead | MonitorsRead | MonitorsWrite),
        }
    }

    /// Returns true when a holder of this role may give `other` to an account.
    pub fn may_grant(&self, other: Role) -> bool {
        match self {
            Role::OperatorAdmin => true,
            Role::TenantAdmin => other.is_tenant(),
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Approve or reject policy changes that need the prefecture's approval.
    PoliciesApprove,
    /// Change platform settings.
    SettingsWrite,
    /// See monitors, their results and fault records.
    MonitorsRead,
    /// Create, change and delete monitors and probes; comment on faults.
    MonitorsWrite,
}

impl Permission {
    /// Every permission, in the order of the enum.
    pub const ALL: [Permission; 13] = [
        Permission::TenantsRead,
        Permission::TenantsWrite,
        Permission::UsersRead,
        Permission::UsersWrite,
        Permission::EventsRead,
        Permission::EventsWrite,
        Permission::AuditRead,
        Permission::PoliciesRead,
        Permission::PoliciesWrite,
        Permission::PoliciesApprove,
        Permission::SettingsWrite,
        Permission::MonitorsRead,
        Permission::MonitorsWrite,
    ];
}

/// The scopes an API token can carry. A token acts with its owner's role, narrowed to
/// the permissions its scopes name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// `policies:approve`
    #[serde(rename = "policies:approve")]
    PoliciesApprove,
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
    pub const ALL: [TokenScope; 13] = [
        TokenScope::TenantsRead,
        TokenScope::TenantsWrite,
        TokenScope::UsersRead,
        TokenScope::UsersWrite,
        TokenScope::EventsRead,
        TokenScope::EventsWrite,
        TokenScope::AuditRead,
        TokenScope::PoliciesRead,
        TokenScope::PoliciesWrite,
        TokenScope::PoliciesApprove,
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
            TokenScope::PoliciesApprove => Permission::PoliciesApprove,
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
            TokenScope::PoliciesApprove => "policies:approve",
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
                | Permission::PoliciesApprove
                | Permission::SettingsWrite
                | Permission::MonitorsRead
                | Permission::MonitorsWrite => {}
            }
        }
        assert!(TokenScope::ALL.iter().all(|s| Permission::ALL.contains(&s.permission())));
    }
    use super::*;

    #[test]
    fn only_admins_grant_roles() {
        assert!(Role::TenantAdmin.may_grant(Role::TenantUser));
        assert!(!Role::TenantAdmin.may_grant(Role::Auditor));
        assert!(!Role::SocAnalyst.may_grant(Role::TenantUser));
        assert!(!Role::Auditor.allows(Permission::TenantsWrite));
        assert!(!Role::TenantAdmin.may_grant(Role::MaintenanceVendor), "vendors are named by the operator");
    }

    #[test]
    fn approving_is_the_prefectures_alone() {
        let approvers: Vec<Role> = Role::ALL.into_iter().filter(|r| r.allows(Permission::PoliciesApprove)).collect();
        assert_eq!(approvers, vec![Role::PrefectureApprover]);
        assert!(!Role::PrefectureApprover.allows(Permission::PoliciesWrite), "an approver approves others' changes");
        assert_eq!(Role::MaintenanceVendor.reach(), Reach::NamedTenants);
        assert!(!Role::MaintenanceVendor.allows(Permission::UsersWrite));
    }
}
