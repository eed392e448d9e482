//! Versioned per-tenant policy documents and the watch through which running
//! components see changes.
//!
//! Every save inserts a new version (nothing is overwritten, so any version can be
//! looked at or restored) and takes the next global `revision`. A [`PolicyWatch`] wakes
//! when the revision moves: at once for saves made in this process, and within the
//! poll interval for saves made by another node on the same PostgreSQL database.

use crate::access::{CrossTenant, Scope};
use crate::audit::{self, Change};
use crate::{Db, Store, StoreError};
use mamori_core::{Actor, Approval, Decision, Permission, PolicyChange, PolicyDocument, PolicyValidator, Problem, Role, TenantId};
use serde_json::{Value, json};
use sqlx::Row;
use std::time::Duration;
use tokio::sync::watch;

/// Largest policy document accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

pub(crate) async fn current_revision(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT COALESCE(MAX(revision), 0) FROM policies WHERE revision > 0").fetch_one(&db.pool).await?.try_get(0)?)
}

/// Returns the revision the next version to take effect gets (waiting versions hold
/// negative ones, which do not count).
async fn next_revision(tx: &mut crate::Tx<'_>) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT COALESCE(MAX(revision), 0) + 1 FROM policies WHERE revision > 0").fetch_one(&mut **tx).await?.try_get(0)?)
}

fn tenant_key(t: Option<TenantId>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<PolicyDocument, StoreError> {
    let tenant: String = r.try_get(0)?;
    Ok(PolicyDocument {
        tenant: if tenant.is_empty() { None } else { Some(tenant.parse().map_err(|e: uuid::Error| StoreError::Corrupt(e.to_string()))?) },
        component: r.try_get(1)?,
        version: r.try_get(2)?,
        revision: r.try_get(3)?,
        document: serde_json::from_str(&r.try_get::<String, _>(4)?)?,
        created_by: r.try_get(5)?,
        created_at: r.try_get(6)?,
        effective_at: r.try_get(7)?,
        approval: {
            let a: String = r.try_get(8)?;
            Approval::parse(&a).ok_or_else(|| StoreError::Corrupt(format!("policy approval '{a}'")))?
        },
        decision: {
            let by: String = r.try_get(9)?;
            if by.is_empty() { None } else { Some(Decision { by, at: r.try_get(10)?, note: r.try_get(11)? }) }
        },
    })
}

const COLUMNS: &str =
    "tenant_id, component, version, revision, document, created_by, created_at, effective_at, approval, decided_by, decided_at, decision_note";

/// The columns a save writes (the decision is written by [`Store::decide_policy`]).
const SAVED: &str = "tenant_id, component, version, revision, document, created_by, created_at, effective_at, approval";

/// Longest note of an approval or rejection, in characters.
const MAX_NOTE_CHARS: usize = 1000;

fn readable(scope: &Scope, tenant: Option<TenantId>) -> bool {
    match tenant {
        // The platform default is no tenant's data; everyone may read it.
        None => !scope.is_nothing(),
        Some(t) => scope.includes(t),
    }
}

impl Store {
    /// Returns the version of a component's policy in force for `tenant` (None: the
    /// platform default), if any was saved: the one that took effect last.
    pub async fn policy(&self, scope: &Scope, tenant: Option<TenantId>, component: &str) -> Result<Option<PolicyDocument>, StoreError> {
        if !readable(scope, tenant) {
            return Ok(None);
        }
        let row =
            sqlx::query(&format!("SELECT {COLUMNS} FROM policies WHERE tenant_id = $1 AND component = $2 AND revision > 0 ORDER BY revision DESC LIMIT 1"))
                .bind(tenant_key(tenant))
                .bind(component)
                .fetch_optional(&self.db.pool)
                .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Returns the version that applies to `tenant`: its own in force, else the platform
    /// default's (what a component falls back to); None when neither was saved, and the
    /// component's built-in default applies.
    pub async fn effective_policy(&self, scope: &Scope, tenant: Option<TenantId>, component: &str) -> Result<Option<PolicyDocument>, StoreError> {
        match self.policy(scope, tenant, component).await? {
            None if tenant.is_some() => self.policy(scope, None, component).await,
            own => Ok(own),
        }
    }

    /// Returns the saved versions, newest first.
    pub async fn policy_versions(&self, scope: &Scope, tenant: Option<TenantId>, component: &str, limit: i64) -> Result<Vec<PolicyDocument>, StoreError> {
        if !readable(scope, tenant) {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM policies WHERE tenant_id = $1 AND component = $2 ORDER BY version DESC LIMIT $3"))
            .bind(tenant_key(tenant))
            .bind(component)
            .bind(limit.clamp(1, 1000))
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Returns the newest version of every tenant's policy of a component (the
    /// platform default has `tenant: None`). For the component runtime.
    pub async fn latest_policies(&self, _grant: &CrossTenant, component: &str) -> Result<Vec<PolicyDocument>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM policies p WHERE component = $1 AND revision > 0 AND revision = (SELECT MAX(revision) FROM policies q WHERE q.tenant_id = p.tenant_id AND q.component = p.component)"
        ))
        .bind(component)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The change feed of a component: for each (tenant or platform default) whose
    /// policy was saved after `after_revision`, its newest version. A component that
    /// runs revision R asks for changes since R and re-reads only those.
    pub async fn policies_since(&self, _grant: &CrossTenant, component: &str, after_revision: i64) -> Result<Vec<PolicyDocument>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM policies p WHERE component = $1 AND revision > $2 \
             AND revision = (SELECT MAX(revision) FROM policies q WHERE q.tenant_id = p.tenant_id AND q.component = p.component)"
        ))
        .bind(component)
        .bind(after_revision)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Returns the newest revision among a component's policies (0 when none is saved),
    /// to tell which nodes still run an older one.
    pub async fn latest_policy_revision(&self, component: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(revision), 0) FROM policies WHERE component = $1 AND revision > 0")
            .bind(component)
            .fetch_one(&self.db.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Returns the platform minimums of a component's policies: those operators set,
    /// else the component's own default; None when it has none.
    pub async fn policy_minimums(&self, validator: &dyn PolicyValidator) -> Result<Option<Value>, StoreError> {
        if validator.default_minimums().is_none() {
            return Ok(None);
        }
        Ok(self.setting(&minimums_key(validator.component())).await?.or_else(|| validator.default_minimums()))
    }

    /// Sets the platform minimums of a component's policies (a document of the policy's
    /// shape, checked by its validator). Operators only; audited as a setting change.
    /// Policies already saved below new minimums are raised to them where they are
    /// applied; new ones below them are refused.
    pub async fn put_policy_minimums(&self, scope: &Scope, actor: &Actor, validator: &dyn PolicyValidator, minimums: Value) -> Result<(), StoreError> {
        scope.require_all(Permission::SettingsWrite, "only operators set platform minimums")?;
        if validator.default_minimums().is_none() {
            return Err(StoreError::NotFound);
        }
        validator.validate(&minimums).map_err(StoreError::Invalid)?;
        self.write_setting(actor, &minimums_key(validator.component()), &minimums).await
    }

    /// Returns the roles that may write a component's policies: those operator admins
    /// set, else every role with the policy-writing permission. Operator admins always may.
    pub async fn policy_writers(&self, component: &str) -> Result<Vec<Role>, StoreError> {
        let stored = self.setting(&writers_key(component)).await?;
        let mut roles: Vec<Role> = match stored {
            Some(v) => serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("policy writers of {component}: {e}")))?,
            None => Role::ALL.into_iter().filter(|r| r.allows(Permission::PoliciesWrite)).collect(),
        };
        if !roles.contains(&Role::OperatorAdmin) {
            roles.insert(0, Role::OperatorAdmin);
        }
        Ok(roles)
    }

    /// Sets who may write a component's policies (operators only; audited as a setting).
    /// Only roles that may write policies at all can be named; operator admins always may.
    pub async fn put_policy_writers(&self, scope: &Scope, actor: &Actor, component: &str, roles: &[Role]) -> Result<Vec<Role>, StoreError> {
        scope.require_all(Permission::SettingsWrite, "only operators decide who writes policies")?;
        let mut problems = mamori_core::Problems::default();
        for r in roles.iter().filter(|r| !r.allows(Permission::PoliciesWrite)) {
            problems.push(Problem::new(
                "roles",
                "cannot_write_policies",
                format!("ロール「{}」はポリシーを変更できないロールです", r.ja()),
                format!("role {} cannot write policies at all", r.as_str()),
            ));
        }
        problems.into_result(()).map_err(StoreError::Invalid)?;
        let mut list: Vec<Role> = vec![Role::OperatorAdmin];
        for r in roles {
            if !list.contains(r) {
                list.push(*r);
            }
        }
        self.write_setting(actor, &writers_key(component), &json!(list)).await?;
        Ok(list)
    }

    /// Saves the document of an earlier version as the newest version (audited as a
    /// rollback); it is checked like any save, against today's validator and minimums.
    pub async fn rollback_policy(
        &self,
        scope: &Scope,
        actor: &Actor,
        tenant: Option<TenantId>,
        validator: &dyn PolicyValidator,
        version: i64,
    ) -> Result<PolicyDocument, StoreError> {
        if !readable(scope, tenant) {
            return Err(StoreError::NotFound);
        }
        let old = self.policy_version(tenant, validator.component(), version).await?;
        self.save_policy_version(scope, actor, tenant, validator, old.document, Save::Rollback).await
    }

    /// Validates and saves a version that takes effect at `at` (Unix ms): until then the
    /// version in force stays, and nodes take it up within seconds of `at` (audited as
    /// `policy.schedule`, then `policy.activate`). A time not in the future saves it now.
    pub async fn schedule_policy(
        &self,
        scope: &Scope,
        actor: &Actor,
        tenant: Option<TenantId>,
        validator: &dyn PolicyValidator,
        document: Value,
        at: i64,
    ) -> Result<PolicyDocument, StoreError> {
        self.save_policy_version(scope, actor, tenant, validator, document, Save::Schedule(at)).await
    }

    /// Deletes a scheduled or waiting version that has not taken effect (audited; by the
    /// component's policy writers).
    pub async fn cancel_scheduled_policy(
        &self,
        scope: &Scope,
        actor: &Actor,
        tenant: Option<TenantId>,
        component: &str,
        version: i64,
    ) -> Result<(), StoreError> {
        writable(scope, tenant)?;
        self.check_policy_writer(scope, component).await?;
        let (_guard, mut tx) = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM policies WHERE tenant_id = $1 AND component = $2 AND version = $3 AND revision < 0 AND approval <> 'rejected'")
            .bind(tenant_key(tenant))
            .bind(component)
            .bind(version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant,
                action: "policy.cancel",
                target_kind: "policy",
                target_id: Some(format!("{component}@{version}")),
                before: None,
                after: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives every scheduled version whose time has come the next revision, so it takes
    /// effect on every node (each takes its own transaction; a version another node
    /// activated first is left alone). Returns how many it activated.
    pub async fn activate_due_policies(&self) -> Result<usize, StoreError> {
        let now = mamori_core::time::now_ms();
        let due = sqlx::query("SELECT tenant_id, component, version FROM policies WHERE revision < 0 AND effective_at <= $1 AND approval IN ('', 'approved') ORDER BY effective_at, version")
            .bind(now)
            .fetch_all(&self.db.pool)
            .await?;
        let mut done = 0;
        for r in &due {
            let (tenant, component, version): (String, String, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            let (_guard, mut tx) = self.begin_write().await?;
            let revision: i64 = next_revision(&mut tx).await?;
            let n = sqlx::query(
                "UPDATE policies SET revision = $1 WHERE tenant_id = $2 AND component = $3 AND version = $4 AND revision < 0 AND approval IN ('', 'approved')",
            )
            .bind(revision)
            .bind(&tenant)
            .bind(&component)
            .bind(version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                continue;
            }
            let tenant_id = if tenant.is_empty() { None } else { tenant.parse().ok() };
            audit::append(
                &mut tx,
                Change {
                    actor: &Actor::system(),
                    tenant: tenant_id,
                    action: "policy.activate",
                    target_kind: "policy",
                    target_id: Some(format!("{component}@{version}")),
                    before: None,
                    after: Some(json!({"revision": revision})),
                },
            )
            .await?;
            tx.commit().await?;
            self.note_revision(revision);
            done += 1;
        }
        Ok(done)
    }

    fn note_revision(&self, revision: i64) {
        self.inner.policy_rev.send_if_modified(|r| {
            let newer = revision > *r;
            if newer {
                *r = revision;
            }
            newer
        });
    }

    /// Checks a document as a save would (who may write it, size, validator, platform
    /// minimums) and
    /// returns what it changes against the version in force for `tenant` (the
    /// validator's default when none is saved), with that version's number. Saves
    /// nothing: the review before a save.
    pub async fn preview_policy(
        &self,
        scope: &Scope,
        tenant: Option<TenantId>,
        validator: &dyn PolicyValidator,
        document: &Value,
    ) -> Result<(Option<i64>, Vec<PolicyChange>), StoreError> {
        if !readable(scope, tenant) {
            return Err(StoreError::NotFound);
        }
        self.check_policy_writer(scope, validator.component()).await?;
        self.check_policy(validator, document).await?;
        let current = self.policy(scope, tenant, validator.component()).await?;
        let version = current.as_ref().map(|p| p.version);
        let before = current.map(|p| p.document).unwrap_or_else(|| validator.default_policy());
        Ok((version, mamori_core::policy_diff(&before, document)))
    }

    /// Refuses a document a save would refuse: too large, invalid, or below the minimums.
    async fn check_policy(&self, validator: &dyn PolicyValidator, document: &Value) -> Result<(), StoreError> {
        if document.to_string().len() > MAX_POLICY_BYTES {
            return Err(Problem::new("document", "too_large", "ポリシーが大きすぎます（1 MiB まで）", "policy is too large (at most 1 MiB)").into());
        }
        validator.validate(document).map_err(StoreError::Invalid)?;
        // Platform minimums hold for every policy, the default and each tenant's, by
        // whoever saves it: lowering them is a change of its own, by an operator admin.
        if let Some(minimums) = self.policy_minimums(validator).await? {
            validator.check_minimums(document, &minimums).map_err(StoreError::Invalid)?;
        }
        Ok(())
    }

    /// Validates and saves a new version of a policy. A document the component's
    /// validator refuses is not stored; the error lists every problem.
    pub async fn put_policy(
        &self,
        scope: &Scope,
        actor: &Actor,
        tenant: Option<TenantId>,
        validator: &dyn PolicyValidator,
        document: Value,
    ) -> Result<PolicyDocument, StoreError> {
        self.save_policy_version(scope, actor, tenant, validator, document, Save::Update).await
    }

    async fn save_policy_version(
        &self,
        scope: &Scope,
        actor: &Actor,
        tenant: Option<TenantId>,
        validator: &dyn PolicyValidator,
        document: Value,
        how: Save,
    ) -> Result<PolicyDocument, StoreError> {
        let now = mamori_core::time::now_ms();
        let (mut action, at) = match how {
            Save::Update => ("policy.update", None),
            Save::Rollback => ("policy.rollback", None),
            Save::Schedule(t) if t > now => ("policy.schedule", Some(t)),
            Save::Schedule(_) => ("policy.update", None),
        };
        writable(scope, tenant)?;
        let component = validator.component();
        self.check_policy_writer(scope, component).await?;
        self.check_policy(validator, &document).await?;
        // A person's change of a component that needs approval waits for the
        // prefecture's approver; the platform's own saves (seeding, the CLI) do not.
        let approval = if scope.role().is_some() && self.policy_needs_approval(component).await? { Approval::Pending } else { Approval::NotNeeded };
        if approval == Approval::Pending {
            action = "policy.submit";
        }
        let (_guard, mut tx) = self.begin_write().await?;
        if let Some(t) = tenant {
            let exists = sqlx::query("SELECT 1 FROM tenants WHERE id = $1").bind(t.to_string()).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
        }
        let version: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM policies WHERE tenant_id = $1 AND component = $2")
            .bind(tenant_key(tenant))
            .bind(component)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        // A scheduled or pending version waits with a negative revision (unique, as
        // revisions are) until it takes effect.
        let revision: i64 = if at.is_some() || approval == Approval::Pending {
            sqlx::query("SELECT COALESCE(MIN(revision), 0) - 1 FROM policies WHERE revision < 0").fetch_one(&mut *tx).await?.try_get(0)?
        } else {
            next_revision(&mut tx).await?
        };
        let doc = PolicyDocument {
            tenant,
            component: component.to_string(),
            version,
            revision,
            document,
            created_by: actor.name.clone(),
            created_at: now,
            effective_at: at.unwrap_or(0),
            approval,
            decision: None,
        };
        sqlx::query(&format!("INSERT INTO policies ({SAVED}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
            .bind(tenant_key(tenant))
            .bind(component)
            .bind(version)
            .bind(revision)
            .bind(doc.document.to_string())
            .bind(&doc.created_by)
            .bind(doc.created_at)
            .bind(doc.effective_at)
            .bind(approval.as_str())
            .execute(&mut *tx)
            .await?;
        let before = sqlx::query("SELECT document FROM policies WHERE tenant_id = $1 AND component = $2 AND revision > 0 ORDER BY revision DESC LIMIT 1")
            .bind(tenant_key(tenant))
            .bind(component)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?
            .and_then(|s| serde_json::from_str::<Value>(&s).ok());
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant,
                action,
                target_kind: "policy",
                target_id: Some(format!("{component}@{version}")),
                before,
                after: Some(match (at, approval) {
                    (at, Approval::Pending) => {
                        json!({"document": doc.document, "approval": "pending", "effective_at": at.map(mamori_core::time::format_rfc3339)})
                    }
                    (Some(t), _) => json!({"document": doc.document, "effective_at": mamori_core::time::format_rfc3339(t)}),
                    (None, _) => json!(doc.document),
                }),
            },
        )
        .await?;
        tx.commit().await?;
        if revision > 0 {
            self.note_revision(revision);
        }
        Ok(doc)
    }

    /// Refuses a policy change by a person whose role may not write `component`'s
    /// policies, saying who may (operator admins set it per component). The platform's
    /// own grants may.
    pub async fn check_policy_writer(&self, scope: &Scope, component: &str) -> Result<(), StoreError> {
        let Some(role) = scope.role() else { return Ok(()) };
        let writers = self.policy_writers(component).await?;
        if scope.allows(Permission::PoliciesWrite) && writers.contains(&role) {
            return Ok(());
        }
        let names_ja: Vec<&str> = writers.iter().map(|r| r.ja()).collect();
        let names_en: Vec<&str> = writers.iter().map(|r| r.as_str()).collect();
        Err(StoreError::Denied(Problem::new(
            "component",
            "not_a_policy_writer",
            format!("「{component}」のポリシーを変更できるのは {} です。変更が必要な場合は県の運用管理者に依頼してください", names_ja.join("、")),
            format!("the policy of '{component}' may be changed by {} only; ask the prefecture's operator admins", names_en.join(", ")),
        )))
    }

    /// Returns true when people's changes of `component`'s policies wait for the
    /// prefecture's approver (a per-component setting of operator admins; off by default).
    pub async fn policy_needs_approval(&self, component: &str) -> Result<bool, StoreError> {
        Ok(self.setting(&approval_key(component)).await?.and_then(|v| v.as_bool()).unwrap_or(false))
    }

    /// Sets whether people's changes of `component`'s policies need the prefecture's
    /// approval (operator admins; audited as a setting). Versions already waiting stay.
    pub async fn put_policy_approval(&self, scope: &Scope, actor: &Actor, component: &str, required: bool) -> Result<(), StoreError> {
        scope.require_all(Permission::SettingsWrite, "only operator admins decide which policies need approval")?;
        self.write_setting(actor, &approval_key(component), &json!(required)).await
    }

    /// Returns the versions that wait for the approver, oldest first: in `scope` (the
    /// platform defaults too for a cross-tenant scope).
    pub async fn pending_policies(&self, scope: &Scope) -> Result<Vec<PolicyDocument>, StoreError> {
        let rows = self
            .scoped_rows(scope, &format!("SELECT {COLUMNS} FROM policies WHERE approval = 'pending'"), "tenant_id", "created_at, component, version")
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Approves or rejects a version that waits for approval (the prefecture's approver;
    /// never the person who submitted it). An approved version takes effect at once, or
    /// at its scheduled time; a rejected one never does. A rejection needs a reason. The
    /// document is checked again on approval (the minimums may have risen meanwhile).
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_policy(
        &self,
        scope: &Scope,
        actor: &Actor,
        tenant: Option<TenantId>,
        validator: &dyn PolicyValidator,
        version: i64,
        approve: bool,
        note: &str,
    ) -> Result<PolicyDocument, StoreError> {
        if scope.role().is_none() || !scope.allows(Permission::PoliciesApprove) {
            return Err(StoreError::Denied(Problem::new(
                "version",
                "not_an_approver",
                "ポリシー変更を承認・却下できるのは県の承認者です",
                "only the prefecture's approvers approve or reject policy changes",
            )));
        }
        if !readable(scope, tenant) {
            return Err(StoreError::NotFound);
        }
        let note = note.trim();
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(Problem::new("note", "too_long", "コメントは1000文字までです", "the note is at most 1000 characters").into());
        }
        if !approve && note.is_empty() {
            return Err(Problem::new("note", "required", "却下する理由を入力してください", "say why the change is rejected").into());
        }
        let component = validator.component();
        let key = tenant_key(tenant);
        let before = self.policy_version(tenant, component, version).await?;
        if before.approval != Approval::Pending {
            return Err(Problem::new("version", "not_pending", "この版は承認待ちではありません", "this version does not wait for approval").into());
        }
        if before.created_by == actor.name {
            return Err(StoreError::Denied(Problem::new(
                "version",
                "own_change",
                "自分が申請した変更は承認・却下できません。別の承認者に依頼してください",
                "you cannot decide on a change you submitted; ask another approver",
            )));
        }
        if approve {
            self.check_policy(validator, &before.document).await?;
        }
        let now = mamori_core::time::now_ms();
        let (_guard, mut tx) = self.begin_write().await?;
        let (state, revision) = match approve {
            false => (Approval::Rejected, before.revision),
            true if before.effective_at > now => (Approval::Approved, before.revision),
            true => (Approval::Approved, next_revision(&mut tx).await?),
        };
        let n = sqlx::query(
            "UPDATE policies SET approval = $1, decided_by = $2, decided_at = $3, decision_note = $4, revision = $5 \
             WHERE tenant_id = $6 AND component = $7 AND version = $8 AND approval = 'pending'",
        )
        .bind(state.as_str())
        .bind(&actor.name)
        .bind(now)
        .bind(note)
        .bind(revision)
        .bind(&key)
        .bind(component)
        .bind(version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            // Another approver decided first.
            return Err(Problem::new("version", "not_pending", "この版は承認待ちではありません", "this version does not wait for approval").into());
        }
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant,
                action: if approve { "policy.approve" } else { "policy.reject" },
                target_kind: "policy",
                target_id: Some(format!("{component}@{version}")),
                before: Some(json!({"approval": "pending", "submitted_by": before.created_by})),
                after: Some(json!({"approval": state.as_str(), "note": note, "revision": revision})),
            },
        )
        .await?;
        tx.commit().await?;
        if revision > 0 {
            self.note_revision(revision);
        }
        self.policy_version(tenant, component, version).await
    }

    /// Returns one saved version (any state), or NotFound.
    async fn policy_version(&self, tenant: Option<TenantId>, component: &str, version: i64) -> Result<PolicyDocument, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM policies WHERE tenant_id = $1 AND component = $2 AND version = $3"))
            .bind(tenant_key(tenant))
            .bind(component)
            .bind(version)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(from_row).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Returns a watch that wakes when any policy changes.
    pub fn watch_policies(&self) -> PolicyWatch {
        PolicyWatch { rx: self.inner.policy_rev.subscribe() }
    }

    /// Polls the database for policy revisions saved by other nodes, every `every`.
    /// Returns the task; abort it to stop.
    pub fn spawn_policy_poller(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = store.activate_due_policies().await {
                    tracing::warn!(error = %e, "activating scheduled policies failed");
                }
                match current_revision(&store.db).await {
                    Ok(rev) => {
                        store.inner.policy_rev.send_if_modified(|r| {
                            let newer = rev > *r;
                            if newer {
                                *r = rev;
                            }
                            newer
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "policy poll failed"),
                }
            }
        })
    }
}

/// Wakes a component when policies change.
#[derive(Clone, Debug)]
pub struct PolicyWatch {
    rx: watch::Receiver<i64>,
}

impl PolicyWatch {
    /// Waits until the policy revision moves past the last one seen; returns it.
    pub async fn changed(&mut self) -> Option<i64> {
        self.rx.changed().await.ok()?;
        Some(*self.rx.borrow_and_update())
    }

    /// Returns the newest revision known.
    pub fn revision(&self) -> i64 {
        *self.rx.borrow()
    }
}

fn minimums_key(component: &str) -> String {
    format!("policy_minimums.{component}")
}

/// How a version is saved.
enum Save {
    /// Now, as typed.
    Update,
    /// Now, an earlier version's document.
    Rollback,
    /// At this time (Unix ms); a time not in the future is now.
    Schedule(i64),
}

/// Refuses a write of `tenant`'s policy (None: the platform default) outside `scope`.
fn writable(scope: &Scope, tenant: Option<TenantId>) -> Result<(), StoreError> {
    match tenant {
        _ if scope.is_all() => Ok(()),
        Some(t) if scope.includes(t) => Ok(()),
        None => Err(StoreError::Forbidden("only operators change the platform default")),
        Some(_) => Err(StoreError::NotFound),
    }
}

fn approval_key(component: &str) -> String {
    format!("policy_approval.{component}")
}

fn writers_key(component: &str) -> String {
    format!("policy_writers.{component}")
}
