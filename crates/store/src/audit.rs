//! The audit log: every change by a person, token, the CLI or the system, in an
//! append-only, hash-chained table.
//!
//! Entry `n` stores `hash = SHA-256(prev_hash ‖ canonical(entry n))` where `prev_hash`
//! is entry `n-1`'s hash (64 zeros for the first). Changing, inserting or removing a row
//! anywhere breaks the chain, which [`Store::verify_audit`](crate::Store::verify_audit)
//! reports with the first bad sequence number. The tables also carry triggers that
//! refuse UPDATE and DELETE, so only someone who drops them can tamper at all.
//!
//! Entries are written in the same transaction as the change they describe, so there
//! is no change without its entry and no entry without its change.

use crate::{StoreError, Tx};
use mamori_core::{Actor, TenantId};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an audit entry says happened, before it is chained.
#[derive(Clone, Debug)]
pub struct Change<'a> {
    /// Who.
    pub actor: &'a Actor,
    /// The tenant the change belongs to (None for platform-wide records).
    pub tenant: Option<TenantId>,
    /// Verb, e.g. `tenant.create`, `user.password_reset`.
    pub action: &'a str,
    /// Kind of object, e.g. `tenant`.
    pub target_kind: &'a str,
    /// The object's id.
    pub target_id: Option<String>,
    /// The object before (secrets removed), None for a creation.
    pub before: Option<Value>,
    /// The object after (secrets removed), None for a deletion.
    pub after: Option<Value>,
}

/// A stored audit entry.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (Unix ms).
    pub time: i64,
    /// `user`, `token`, `cli` or `system`.
    pub actor_kind: String,
    /// Account id of the actor.
    pub actor_id: Option<String>,
    /// Actor's name.
    pub actor_name: String,
    /// Source address.
    pub source_ip: Option<String>,
    /// Tenant of the change.
    pub tenant_id: Option<String>,
    /// Verb.
    pub action: String,
    /// Kind of object.
    pub target_kind: String,
    /// Object id.
    pub target_id: Option<String>,
    /// State before.
    pub before: Option<Value>,
    /// State after.
    pub after: Option<Value>,
    /// Previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

impl AuditEntry {
    fn canonical(&self) -> String {
        // A JSON array of fixed order: unambiguous and stable across databases.
        json!([
            self.seq,
            self.time,
            self.actor_kind,
            self.actor_id,
            self.actor_name,
            self.source_ip,
            self.tenant_id,
            self.action,
            self.target_kind,
            self.target_id,
            self.before.as_ref().map(Value::to_string),
            self.after.as_ref().map(Value::to_string),
        ])
        .to_string()
    }

    /// Returns the hash this entry should carry given its fields and `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(self.canonical().as_bytes());
        hex::encode(h.finalize())
    }
}

/// The result of checking the chain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: i64,
    /// Hash of the last entry (the chain head), to be noted elsewhere.
    pub head: String,
    /// The first broken entry and why, None when the chain is intact.
    pub first_bad: Option<(i64, String)>,
}

/// Appends one entry inside `tx`. The caller holds the store's audit lock, so no other
/// append in this process interleaves; across PostgreSQL nodes, the primary key on
/// `seq` makes a racing append fail rather than fork the chain.
pub(crate) async fn append(tx: &mut Tx<'_>, change: Change<'_>) -> Result<AuditEntry, StoreError> {
    let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut **tx).await?;
    let (seq, prev_hash) = match last {
        Some(r) => (r.try_get::<i64, _>(0)? + 1, r.try_get::<String, _>(1)?),
        None => (1, GENESIS.to_string()),
    };
    let mut entry = AuditEntry {
        seq,
        time: mamori_core::time::now_ms(),
        actor_kind: change.actor.kind.as_str().to_string(),
        actor_id: change.actor.user_id.map(|u| u.to_string()),
        actor_name: change.actor.name.clone(),
        source_ip: change.actor.ip.clone(),
        tenant_id: change.tenant.map(|t| t.to_string()),
        action: change.action.to_string(),
        target_kind: change.target_kind.to_string(),
        target_id: change.target_id,
        before: change.before,
        after: change.after,
        prev_hash,
        hash: String::new(),
    };
    entry.hash = entry.compute_hash();
    sqlx::query(
        "INSERT INTO audit_log (seq, time, actor_kind, actor_id, actor_name, source_ip, tenant_id, action, target_kind, target_id, before_doc, after_doc, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(entry.seq)
    .bind(entry.time)
    .bind(&entry.actor_kind)
    .bind(&entry.actor_id)
    .bind(&entry.actor_name)
    .bind(&entry.source_ip)
    .bind(&entry.tenant_id)
    .bind(&entry.action)
    .bind(&entry.target_kind)
    .bind(&entry.target_id)
    .bind(entry.before.as_ref().map(Value::to_string))
    .bind(entry.after.as_ref().map(Value::to_string))
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .execute(&mut **tx)
    .await?;
    Ok(entry)
}

pub(crate) const COLUMNS: &str =
    "seq, time, actor_kind, actor_id, actor_name, source_ip, tenant_id, action, target_kind, target_id, before_doc, after_doc, prev_hash, hash";

pub(crate) fn from_row(r: &sqlx::any::AnyRow) -> Result<AuditEntry, StoreError> {
    let doc = |i: usize| -> Result<Option<Value>, StoreError> {
        let s: Option<String> = r.try_get(i)?;
        // A document that no longer parses is kept as a string, so verification still
        // hashes exactly what is stored.
        Ok(s.map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s))))
    };
    Ok(AuditEntry {
        seq: r.try_get(0)?,
        time: r.try_get(1)?,
        actor_kind: r.try_get(2)?,
        actor_id: r.try_get(3)?,
        actor_name: r.try_get(4)?,
        source_ip: r.try_get(5)?,
        tenant_id: r.try_get(6)?,
        action: r.try_get(7)?,
        target_kind: r.try_get(8)?,
        target_id: r.try_get(9)?,
        before: doc(10)?,
        after: doc(11)?,
        prev_hash: r.try_get(12)?,
        hash: r.try_get(13)?,
    })
}

/// Checks entries in order; `entries` must be sorted by seq and start at the first.
pub(crate) fn verify_chain(entries: impl Iterator<Item = AuditEntry>, report: &mut VerifyReport, expected_prev: &mut String) {
    for e in entries {
        report.entries += 1;
        if report.first_bad.is_some() {
            continue;
        }
        let expected_seq = report.entries;
        if e.seq != expected_seq {
            report.first_bad = Some((e.seq, format!("sequence gap: expected {expected_seq}, found {}", e.seq)));
        } else if e.prev_hash != *expected_prev {
            report.first_bad = Some((e.seq, "prev_hash does not match the previous entry (entry removed or reordered)".into()));
        } else if e.compute_hash() != e.hash {
            report.first_bad = Some((e.seq, "hash does not match the content (entry modified)".into()));
        }
        expected_prev.clone_from(&e.hash);
        report.head.clone_from(&e.hash);
    }
}
