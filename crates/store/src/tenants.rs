//! Tenants: the prefecture and its member organizations.

use crate::access::Scope;
use crate::audit::{self, Change};
use crate::{Store, StoreError};
use mamori_core::{Actor, CheckedTenant, Permission, Problem, Problems, Tenant, TenantId};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

const COLUMNS: &str = "id, code, name, kana, kind, contacts, network_ranges, services, notes, created_at, updated_at, separation, mail_domains, fqdns";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Tenant, StoreError> {
    let corrupt = |what: &str, e: String| StoreError::Corrupt(format!("tenant {what}: {e}"));
    let id: String = r.try_get(0)?;
    let code: String = r.try_get(1)?;
    let kind: String = r.try_get(4)?;
    Ok(Tenant {
        id: id.parse().map_err(|e: uuid::Error| corrupt("id", e.to_string()))?,
        code: code.parse().map_err(|e: Problem| corrupt("code", e.en))?,
        name: r.try_get(2)?,
        kana: r.try_get(3)?,
        kind: kind.parse().map_err(|e: Problem| corrupt("kind", e.en))?,
        contacts: serde_json::from_str(&r.try_get::<String, _>(5)?)?,
        network_ranges: serde_json::from_str(&r.try_get::<String, _>(6)?)?,
        services: serde_json::from_str(&r.try_get::<String, _>(7)?)?,
        notes: r.try_get(8)?,
        created_at: r.try_get(9)?,
        updated_at: r.try_get(10)?,
        separation: r.try_get::<String, _>(11)?.parse().map_err(|e: Problem| corrupt("separation", e.en))?,
        mail_domains: serde_json::from_str(&r.try_get::<String, _>(12)?)?,
        fqdns: serde_json::from_str(&r.try_get::<String, _>(13)?)?,
    })
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ImportReport {
    /// Tenants created.
    pub created: usize,
    /// Tenants updated (matched by code).
    pub updated: usize,
}

impl Store {
    /// Returns the tenants in `scope`, ordered by code.
    pub async fn list_tenants(&self, scope: &Scope) -> Result<Vec<Tenant>, StoreError> {
        let rows = self.scoped_rows(scope, &format!("SELECT {COLUMNS} FROM tenants WHERE 1 = 1"), "id", "code").await?;
        self.note_scope(scope, "tenants").await?;
        rows.iter().map(from_row).collect()
    }

    /// Returns one tenant if it is in `scope`.
    pub async fn get_tenant(&self, scope: &Scope, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        if !scope.includes(id) {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1")).bind(id.to_string()).fetch_optional(&self.db.pool).await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Returns the tenant with this code if it is in `scope`.
    pub async fn tenant_by_code(&self, scope: &Scope, code: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE code = $1")).bind(code.trim()).fetch_optional(&self.db.pool).await?;
        let tenant = row.as_ref().map(from_row).transpose()?;
        Ok(tenant.filter(|t| scope.includes(t.id)))
    }

    /// Creates a tenant. Only a cross-tenant scope may create tenants.
    pub async fn create_tenant(&self, scope: &Scope, actor: &Actor, t: CheckedTenant) -> Result<Tenant, StoreError> {
        scope.require_all(Permission::TenantsWrite, "only operators create tenants")?;
        let (_guard, mut tx) = self.begin_write().await?;
        let tenant = insert(&mut tx, actor, t).await?;
        tx.commit().await?;
        self.directory_changed();
        Ok(tenant)
    }

    /// Replaces a tenant's fields.
    pub async fn update_tenant(&self, scope: &Scope, actor: &Actor, id: TenantId, t: CheckedTenant) -> Result<Tenant, StoreError> {
        scope.require_all(Permission::TenantsWrite, "only operators change tenants")?;
        let (_guard, mut tx) = self.begin_write().await?;
        let before = load(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let tenant = update(&mut tx, actor, before, t).await?;
        tx.commit().await?;
        self.directory_changed();
        Ok(tenant)
    }

    /// Changes only the contacts of a tenant: tenant admins keep their own up to date.
    pub async fn update_contacts(&self, scope: &Scope, actor: &Actor, id: TenantId, contacts: Vec<mamori_core::Contact>) -> Result<Tenant, StoreError> {
        if !scope.includes(id) {
            return Err(StoreError::NotFound);
        }
        let (_guard, mut tx) = self.begin_write().await?;
        let before = load(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let mut after = before.clone();
        after.contacts = contacts;
        after.updated_at = mamori_core::time::now_ms();
        sqlx::query("UPDATE tenants SET contacts = $1, updated_at = $2 WHERE id = $3")
            .bind(serde_json::to_string(&after.contacts)?)
            .bind(after.updated_at)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: Some(id),
                action: "tenant.contacts_update",
                target_kind: "tenant",
                target_id: Some(id.to_string()),
                before: Some(json!(before.contacts)),
                after: Some(json!(after.contacts)),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Deletes a tenant that has no accounts left.
    pub async fn delete_tenant(&self, scope: &Scope, actor: &Actor, id: TenantId) -> Result<(), StoreError> {
        scope.require_all(Permission::TenantsWrite, "only operators delete tenants")?;
        let (_guard, mut tx) = self.begin_write().await?;
        let before = load(&mut tx, id).await?.ok_or(StoreError::NotFound)?;
        let users: i64 = sqlx::query("SELECT COUNT(*) FROM users WHERE tenant_id = $1").bind(id.to_string()).fetch_one(&mut *tx).await?.try_get(0)?;
        if users > 0 {
            return Err(Problem::new(
                "tenant",
                "has_users",
                format!("この団体には利用者が{users}人登録されています。先に利用者を削除してください"),
                format!("the tenant still has {users} accounts; delete them first"),
            )
            .into());
        }
        let monitors: i64 = sqlx::query("SELECT COUNT(*) FROM monitors WHERE tenant_id = $1").bind(id.to_string()).fetch_one(&mut *tx).await?.try_get(0)?;
        if monitors > 0 {
            return Err(Problem::new(
                "tenant",
                "has_monitors",
                format!("この団体には監視が{monitors}件登録されています。先に監視を削除してください"),
                format!("the tenant still has {monitors} monitors; delete them first"),
            )
            .into());
        }
        sqlx::query("DELETE FROM tenants WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: Some(id),
                action: "tenant.delete",
                target_kind: "tenant",
                target_id: Some(id.to_string()),
                before: Some(json!(before)),
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        self.directory_changed();
        Ok(())
    }

    /// Imports tenants: each row creates a tenant or replaces the one with the same code.
    /// All rows are applied in one transaction, so a failure changes nothing.
    pub async fn import_tenants(&self, scope: &Scope, actor: &Actor, rows: Vec<CheckedTenant>) -> Result<ImportReport, StoreError> {
        scope.require_all(Permission::TenantsWrite, "only operators import tenants")?;
        let (_guard, mut tx) = self.begin_write().await?;
        let mut report = ImportReport::default();
        for t in rows {
            let existing = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE code = $1")).bind(t.code.to_string()).fetch_optional(&mut *tx).await?;
            match existing.as_ref().map(from_row).transpose()? {
                Some(before) => {
                    update(&mut tx, actor, before, t).await?;
                    report.updated += 1;
                }
                None => {
                    insert(&mut tx, actor, t).await?;
                    report.created += 1;
                }
            }
        }
        tx.commit().await?;
        self.directory_changed();
        Ok(report)
    }
}

async fn load(tx: &mut crate::Tx<'_>, id: TenantId) -> Result<Option<Tenant>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE id = $1")).bind(id.to_string()).fetch_optional(&mut **tx).await?;
    row.as_ref().map(from_row).transpose()
}

/// Refuses what would make the tenant resolver ambiguous: a range overlapping another
/// tenant's on the same segment (across segments the same private range is normal), a
/// range on a segment that does not exist, and a mail domain or FQDN another tenant has.
async fn check_claims(tx: &mut crate::Tx<'_>, own: Option<TenantId>, t: &CheckedTenant) -> Result<(), StoreError> {
    let mut problems = Problems::default();
    let segments: Vec<String> =
        sqlx::query("SELECT name FROM network_segments").fetch_all(&mut **tx).await?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    for r in &t.network_ranges {
        if !segments.iter().any(|s| s == r.segment.as_str()) {
            problems.push(Problem::new(
                "network_ranges",
                "unknown_segment",
                format!("ネットワーク範囲 {r} のセグメント「{}」は登録されていません", r.segment),
                format!("network range {r}: segment '{}' is not defined", r.segment),
            ));
        }
    }
    let rows = sqlx::query("SELECT id, name, network_ranges, mail_domains, fqdns FROM tenants").fetch_all(&mut **tx).await?;
    for r in &rows {
        let id: String = r.try_get(0)?;
        if own.is_some_and(|o| o.to_string() == id) {
            continue;
        }
        let name: String = r.try_get(1)?;
        let ranges: Vec<mamori_core::NetworkRange> = serde_json::from_str(&r.try_get::<String, _>(2)?)?;
        for mine in &t.network_ranges {
            if let Some(theirs) = ranges.iter().find(|x| x.overlaps(mine)) {
                problems.push(Problem::new(
                    "network_ranges",
                    "range_overlap",
                    format!("ネットワーク範囲 {mine} は、同じセグメント「{}」にある「{name}」の {theirs} と重なっています。別のセグメントであれば同じ範囲を登録できます", mine.segment),
                    format!("network range {mine} overlaps {theirs} of '{name}' on segment '{}' (the same range is allowed on another segment)", mine.segment),
                ));
            }
        }
        let mail: Vec<mamori_core::DomainName> = serde_json::from_str(&r.try_get::<String, _>(3)?)?;
        for d in t.mail_domains.iter().filter(|d| mail.contains(d)) {
            problems.push(Problem::new(
                "mail_domains",
                "domain_taken",
                format!("メールドメイン {d} は「{name}」で登録済みです"),
                format!("mail domain {d} belongs to '{name}'"),
            ));
        }
        let fqdns: Vec<mamori_core::DomainName> = serde_json::from_str(&r.try_get::<String, _>(4)?)?;
        for d in t.fqdns.iter().filter(|d| fqdns.contains(d)) {
            problems.push(Problem::new("fqdns", "fqdn_taken", format!("FQDN {d} は「{name}」で登録済みです"), format!("FQDN {d} belongs to '{name}'")));
        }
    }
    problems.into_result(()).map_err(StoreError::Invalid)
}

/// Refuses a code another tenant (other than `except`) already has.
async fn ensure_code_free(tx: &mut crate::Tx<'_>, code: mamori_core::LocalGovCode, except: Option<TenantId>) -> Result<(), StoreError> {
    let taken = sqlx::query("SELECT name FROM tenants WHERE code = $1 AND id <> $2")
        .bind(code.to_string())
        .bind(except.map(|t| t.to_string()).unwrap_or_default())
        .fetch_optional(&mut **tx)
        .await?;
    match taken {
        None => Ok(()),
        Some(r) => {
            let name: String = r.try_get(0)?;
            Err(Problem::new(
                "code",
                "duplicate_code",
                format!("団体コード {code} は「{name}」で登録済みです"),
                format!("local government code {code} is already used by '{name}'"),
            )
            .into())
        }
    }
}

async fn insert(tx: &mut crate::Tx<'_>, actor: &Actor, t: CheckedTenant) -> Result<Tenant, StoreError> {
    check_claims(tx, None, &t).await?;
    ensure_code_free(tx, t.code, None).await?;
    let now = mamori_core::time::now_ms();
    let tenant = t.into_tenant(TenantId::new(), now, now);
    sqlx::query(&format!("INSERT INTO tenants ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"))
        .bind(tenant.id.to_string())
        .bind(tenant.code.to_string())
        .bind(&tenant.name)
        .bind(&tenant.kana)
        .bind(tenant.kind.as_str())
        .bind(serde_json::to_string(&tenant.contacts)?)
        .bind(serde_json::to_string(&tenant.network_ranges)?)
        .bind(serde_json::to_string(&tenant.services)?)
        .bind(&tenant.notes)
        .bind(tenant.created_at)
        .bind(tenant.updated_at)
        .bind(tenant.separation.as_str())
        .bind(serde_json::to_string(&tenant.mail_domains)?)
        .bind(serde_json::to_string(&tenant.fqdns)?)
        .execute(&mut **tx)
        .await?;
    audit::append(
        tx,
        Change {
            actor,
            tenant: Some(tenant.id),
            action: "tenant.create",
            target_kind: "tenant",
            target_id: Some(tenant.id.to_string()),
            before: None,
            after: Some(json!(tenant)),
        },
    )
    .await?;
    Ok(tenant)
}

async fn update(tx: &mut crate::Tx<'_>, actor: &Actor, before: Tenant, t: CheckedTenant) -> Result<Tenant, StoreError> {
    check_claims(tx, Some(before.id), &t).await?;
    ensure_code_free(tx, t.code, Some(before.id)).await?;
    let after = t.into_tenant(before.id, before.created_at, mamori_core::time::now_ms());
    if (Tenant { updated_at: before.updated_at, ..after.clone() }) == before {
        return Ok(before);
    }
    sqlx::query("UPDATE tenants SET code = $1, name = $2, kana = $3, kind = $4, contacts = $5, network_ranges = $6, services = $7, notes = $8, updated_at = $9, separation = $10, mail_domains = $11, fqdns = $12 WHERE id = $13")
        .bind(after.code.to_string())
        .bind(&after.name)
        .bind(&after.kana)
        .bind(after.kind.as_str())
        .bind(serde_json::to_string(&after.contacts)?)
        .bind(serde_json::to_string(&after.network_ranges)?)
        .bind(serde_json::to_string(&after.services)?)
        .bind(&after.notes)
        .bind(after.updated_at)
        .bind(after.separation.as_str())
        .bind(serde_json::to_string(&after.mail_domains)?)
        .bind(serde_json::to_string(&after.fqdns)?)
        .bind(after.id.to_string())
        .execute(&mut **tx)
        .await?;
    audit::append(
        tx,
        Change {
            actor,
            tenant: Some(after.id),
            action: "tenant.update",
            target_kind: "tenant",
            target_id: Some(after.id.to_string()),
            before: Some(json!(before)),
            after: Some(json!(after)),
        },
    )
    .await?;
    Ok(after)
}
