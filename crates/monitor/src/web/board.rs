//! What the monitoring pages and API share: the status board, monthly uptime, reading
//! monitor input.

use mamori_core::monitor::{Fault, Monitor, MonitorId, MonitorSpec, MonitorState, StandardSet, Status};
use mamori_core::{Problem, TenantId};
use mamori_store::{FaultFilter, Store};
use mamori_store::{Principal, Scope};
use mamori_web::AppError;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// One line of the status board.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct BoardRow {
    /// The monitor (secrets masked).
    #[serde(flatten)]
    pub monitor: Monitor,
    /// The tenant's name.
    pub tenant_name: String,
    /// Current state (none before the first check).
    pub state: Option<MonitorState>,
    /// Availability over the last 30 days, percent.
    pub uptime_30d: Option<f64>,
}

impl BoardRow {
    /// Returns the status shown.
    pub fn status(&self) -> Status {
        if !self.monitor.spec.enabled {
            return Status::Paused;
        }
        self.state.as_ref().map(|s| s.status).unwrap_or(Status::Unknown)
    }
}

const DAY_MS: i64 = 86_400_000;

/// Returns the status board of the monitors in scope (optionally one tenant's).
pub async fn board(store: &Store, scope: &Scope, tenant: Option<TenantId>) -> Result<Vec<BoardRow>, AppError> {
    let monitors = store.list_monitors(scope, tenant).await?;
    let states: HashMap<MonitorId, MonitorState> = store.monitor_states(scope, tenant).await?.into_iter().map(|s| (s.monitor, s)).collect();
    let names: HashMap<TenantId, String> = store.list_tenants(scope).await?.into_iter().map(|t| (t.id, t.name)).collect();
    let now = mamori_core::time::now_ms();
    let faults = store.all_faults(scope, &FaultFilter { tenant, from_ms: Some(now - 30 * DAY_MS), ..Default::default() }).await?;
    let mut by_monitor: HashMap<MonitorId, Vec<Fault>> = HashMap::new();
    for f in faults {
        by_monitor.entry(f.monitor).or_default().push(f);
    }
    Ok(monitors
        .into_iter()
        .map(|m| {
            // A monitor never checked has no availability yet (not 100%).
            let checked = states.get(&m.id).is_some_and(|s| s.last_check > 0);
            let uptime = checked
                .then(|| {
                    mamori_store::monitors::uptime_percent(m.created_at, by_monitor.get(&m.id).map(Vec::as_slice).unwrap_or(&[]), now - 30 * DAY_MS, now, now)
                })
                .flatten();
            BoardRow {
                tenant_name: names.get(&m.tenant).cloned().unwrap_or_default(),
                state: states.get(&m.id).cloned(),
                uptime_30d: uptime,
                monitor: Monitor { spec: m.spec.redacted(), ..m },
            }
        })
        .collect())
}

/// Availability of one month (Japan time).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct MonthUptime {
    /// `YYYY-MM`.
    pub month: String,
    /// Percent, None when the monitor did not exist yet.
    pub uptime: Option<f64>,
    /// Faults that overlapped the month.
    pub faults: usize,
    /// Minutes of fault time in the month.
    pub down_minutes: i64,
}

/// Returns the start (Unix ms) of the Japan-time month containing `ms`, moved by `delta` months.
fn jst_month_start(ms: i64, delta: i32) -> (i64, String) {
    let jst = time::OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH).to_offset(time::macros::offset!(+9));
    let total = jst.year() * 12 + (jst.month() as i32 - 1) + delta;
    let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let month = time::Month::try_from(m as u8).unwrap_or(time::Month::January);
    let start = time::Date::from_calendar_date(y, month, 1).map(|d| d.midnight().assume_offset(time::macros::offset!(+9)).unix_timestamp() * 1000).unwrap_or(0);
    (start, format!("{y:04}-{m:02}"))
}

/// Returns the uptime of the last `months` months (this month first), from the month
/// the monitor was created; none while it has never been checked.
pub async fn monthly_uptime(store: &Store, scope: &Scope, m: &Monitor, months: i32) -> Result<Vec<MonthUptime>, AppError> {
    let checked = store.monitor_states(scope, Some(m.tenant)).await?.iter().any(|s| s.monitor == m.id && s.last_check > 0);
    if !checked {
        return Ok(Vec::new());
    }
    let now = mamori_core::time::now_ms();
    let (oldest, _) = jst_month_start(now, -(months - 1));
    let faults = store.all_faults(scope, &FaultFilter { monitor: Some(m.id), from_ms: Some(oldest), ..Default::default() }).await?;
    let mut out = Vec::new();
    for i in 0..months {
        let (start, label) = jst_month_start(now, -i);
        let (end, _) = jst_month_start(now, -i + 1);
        if end <= m.created_at {
            break;
        }
        let overlapping: Vec<Fault> = faults.iter().filter(|f| f.opened_at < end && f.closed_at.unwrap_or(now) > start).cloned().collect();
        let down: i64 = overlapping.iter().map(|f| (f.closed_at.unwrap_or(now).min(end).min(now) - f.opened_at.max(start)).max(0)).sum();
        out.push(MonthUptime {
            month: label,
            uptime: mamori_store::monitors::uptime_percent(m.created_at, &overlapping, start, end, now),
            faults: overlapping.len(),
            down_minutes: down / 60_000,
        });
    }
    Ok(out)
}

/// Takes the tenant a monitor is created for: a tenant account's own, or the
/// `tenant_id` an operator names.
pub fn target_tenant(p: &Principal, given: Option<&str>) -> Result<TenantId, AppError> {
    match (p.tenant_id(), given.filter(|s| !s.is_empty())) {
        (Some(own), None) => Ok(own),
        (Some(own), Some(g)) => {
            if g.parse::<TenantId>().ok() == Some(own) {
                Ok(own)
            } else {
                Err(AppError::NotFound)
            }
        }
        (None, Some(g)) => g.parse().map_err(|_| Problem::new("tenant_id", "invalid_tenant", "団体を選んでください", "choose a tenant").into()),
        (None, None) => Err(Problem::new("tenant_id", "required", "団体を選んでください", "choose a tenant").into()),
    }
}

/// Reads a monitor document (`tenant_id` beside the spec's fields).
pub fn read_spec(mut doc: Value) -> Result<(Option<String>, MonitorSpec), AppError> {
    let tenant = doc.as_object_mut().and_then(|o| o.remove("tenant_id")).and_then(|v| v.as_str().map(String::from));
    let spec: MonitorSpec = serde_json::from_value(doc).map_err(|e| {
        AppError::from(Problem::new("body", "invalid_monitor", format!("監視の設定を読めません: {e}"), format!("cannot read the monitor: {e}")))
    })?;
    Ok((tenant, spec))
}

/// Reads a standard-set document (`tenant_id` beside the set's fields).
pub fn read_standard(mut doc: Value) -> Result<(Option<String>, StandardSet), AppError> {
    let tenant = doc.as_object_mut().and_then(|o| o.remove("tenant_id")).and_then(|v| v.as_str().map(String::from));
    let set: StandardSet = serde_json::from_value(doc)
        .map_err(|e| AppError::from(Problem::new("body", "invalid_set", format!("入力を読めません: {e}"), format!("cannot read the input: {e}"))))?;
    Ok((tenant, set))
}

/// Creates the standard set's monitors; returns them.
pub async fn create_standard(store: &Store, p: &Principal, tenant: TenantId, set: &StandardSet) -> Result<Vec<Monitor>, AppError> {
    let specs = set.specs()?;
    let mut out = Vec::new();
    for s in specs {
        out.push(store.create_monitor(&p.scope(), &p.actor(), tenant, s).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japan_months() {
        // 2026-11-30T16:00Z is 2026-12-01 01:00 JST.
        let t = mamori_core::time::parse_time("2026-11-30T16:00:00Z").unwrap();
        let (start, label) = jst_month_start(t, 0);
        assert_eq!(label, "2026-12");
        assert_eq!(start, mamori_core::time::parse_time("2026-11-30T15:00:00Z").unwrap());
        assert_eq!(jst_month_start(t, -12).1, "2025-12");
        assert_eq!(jst_month_start(t, 1).1, "2027-01");
    }
}
