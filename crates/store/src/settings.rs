//! Platform settings: a small key → JSON value table, every change audited.

use crate::access::Scope;
use crate::audit::{self, Change};
use crate::{Store, StoreError};
use mamori_core::{Actor, Permission};
use serde_json::Value;
use sqlx::Row;

impl Store {
    /// Returns a setting, or None when it was never set.
    pub async fn setting(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(&self.db.pool).await?;
        row.map(|r| Ok(serde_json::from_str(&r.try_get::<String, _>(0)?)?)).transpose()
    }

    /// Sets a platform setting (operator roles that may change settings, or the
    /// platform itself).
    pub async fn put_setting(&self, scope: &Scope, actor: &Actor, key: &str, value: &Value) -> Result<(), StoreError> {
        scope.require_all(Permission::SettingsWrite, "only operators change platform settings")?;
        self.write_setting(actor, key, value).await
    }

    /// Sets a setting; the caller has checked who may.
    pub(crate) async fn write_setting(&self, actor: &Actor, key: &str, value: &Value) -> Result<(), StoreError> {
        let before = self.setting(key).await?;
        let (_guard, mut tx) = self.begin_write().await?;
        sqlx::query("INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET value = $2, updated_at = $3")
            .bind(key)
            .bind(value.to_string())
            .bind(mamori_core::time::now_ms())
            .execute(&mut *tx)
            .await?;
        audit::append(
            &mut tx,
            Change {
                actor,
                tenant: None,
                action: "setting.update",
                target_kind: "setting",
                target_id: Some(key.to_string()),
                before,
                after: Some(value.clone()),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
