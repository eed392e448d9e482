//! The platform's nodes (operators): each `mamori serve` process sharing this config
//! store, its components and their states, and who holds each singleton's lease.

use super::{layout, page_result, when};
use crate::auth::PageAuth;
use crate::{AppState, Lang};
use axum::extract::State;
use axum::response::Response;
use mamori_core::Permission;
use maud::{Markup, html};
use serde_json::Value;

fn state_label(l: Lang, state: &str) -> Markup {
    let (ja, en, class) = match state {
        "active" => ("稼働中", "active", "up"),
        "standby" => ("待機中", "standby", "maintenance"),
        "starting" => ("起動中", "starting", "pending"),
        "restarting" => ("再起動待ち", "restarting", "down"),
        "degraded" => ("縮退", "degraded", "degraded"),
        "stopping" => ("停止処理中", "stopping", "pending"),
        "stopped" => ("停止", "stopped", "unknown"),
        _ => ("不明", "unknown", "unknown"),
    };
    html! { span class=(format!("st st-{class}")) { (l.t(ja, en)) } }
}

/// GET /nodes
pub async fn page(State(state): State<AppState>, PageAuth(a): PageAuth) -> Response {
    let l = a.lang;
    page_result(
        l,
        async {
            a.require_operator(Permission::MonitorsRead)?;
            let scope = a.principal.scope();
            let nodes = state.store.list_nodes(&scope).await?;
            let leases = state.store.list_leases(&scope).await?;
            let now = mamori_core::time::now_ms();
            // The newest policy revision of each component, to tell nodes still on an older one.
            let mut latest = std::collections::HashMap::new();
            for c in state.registry.policy_components() {
                latest.insert(c.to_string(), state.store.latest_policy_revision(c).await?);
            }
            let node_name = |id: &str| nodes.iter().find(|n| n.id == id).map(|n| n.name.clone()).unwrap_or_else(|| id.to_string());
            let body = html! {
                p { (l.t("この設定ストアを共有する Mamori のノードと、各ノードで動くコンポーネントの状態です。シングルトン（監視など）は、リースを持つ一つのノードだけで動きます。",
                         "The Mamori nodes sharing this config store, and the state of each node's components. A singleton (such as the monitor) runs only on the node holding its lease.")) }
                @for n in &nodes {
                    @let silent = now - n.seen_at > mamori_store::SILENT_AFTER_MS;
                    h2 { (n.name) " " small { code { (n.id) } } @if *n.id == *state.node.id { " " span.st.st-up { (l.t("このノード", "this node")) } } }
                    p {
                        (l.t("バージョン ", "Version ")) (n.version) " · "
                        (l.t("起動 ", "Started ")) (when(n.started_at)) " · "
                        (l.t("最終報告 ", "Last report ")) (when(n.seen_at))
                        @if silent { " " span.st.st-down { (l.t("応答なし", "not answering")) } }
                    }
                    table.compact {
                        thead { tr { th { (l.t("コンポーネント", "Component")) } th { (l.t("配置", "Placement")) } th { (l.t("状態", "State")) } th { (l.t("再起動", "Restarts")) } th { (l.t("ポリシー版", "Policy revision")) } th { (l.t("理由", "Reason")) } } }
                        tbody { @for c in n.status.get("components").and_then(Value::as_array).into_iter().flatten() { tr {
                            td { (c["name"].as_str().unwrap_or("")) }
                            td { @if c["placement"] == "singleton" { (l.t("シングルトン", "singleton")) } @else { (l.t("全ノード", "replicated")) } }
                            td { (state_label(l, c["state"].as_str().unwrap_or(""))) }
                            td { (c["restarts"].as_u64().unwrap_or(0)) }
                            td { @if let Some(rev) = c["policy_revision"].as_i64() {
                                (rev)
                                @if latest.get(c["name"].as_str().unwrap_or("")).is_some_and(|l| *l > rev) { " " span.st.st-pending { (l.t("旧版（反映待ち）", "older (not yet applied)")) } }
                                @else { " " span.st.st-up { (l.t("最新", "latest")) } }
                            } @else { "—" } }
                            td { (c["reason"].as_str().unwrap_or("")) }
                        } } }
                    }
                }
                h2 { (l.t("シングルトンのリース", "Singleton leases")) }
                table.compact {
                    thead { tr { th { (l.t("リース", "Lease")) } th { (l.t("保持ノード", "Held by")) } th { (l.t("世代", "Epoch")) } th { (l.t("取得", "Taken")) } th { (l.t("期限", "Expires")) } } }
                    tbody { @for r in &leases { tr {
                        td { code { (r.name) } }
                        td { (node_name(&r.holder)) }
                        td { (r.epoch) }
                        td { (when(r.acquired_at)) }
                        td { @if r.expires_at == 0 { (l.t("解放済み", "released")) } @else { (when(r.expires_at)) } }
                    } } }
                }
            };
            Ok(layout(&a, l.t("ノード", "Nodes"), "/nodes", body))
        }
        .await,
    )
}
