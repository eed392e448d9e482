//! Reading a component's config section, and writing its commented template.
//!
//! A section is read in three passes so that one run of `mamori serve` names every
//! problem, not only the first serde meets: keys the schema does not know (all of
//! them), then each known key alone (so every wrongly typed value is named), then the
//! whole section and the component's own [`ComponentConfig::validate`].

use crate::component::ComponentConfig;
use mamori_core::{Problem, Problems};
use serde_json::{Map, Value};

/// Reads `section` (JSON of `[components.NAME]`) into the component's config type.
pub fn read_section<T: ComponentConfig>(section: &Value) -> Result<T, Problems> {
    let empty = Map::new();
    let obj = match section {
        Value::Null => &empty,
        Value::Object(o) => o,
        _ => return Err(Problem::new("", "not_table", "設定はテーブルで指定してください", "the section must be a table").into()),
    };
    let schema = schemars::schema_for!(T);
    let known: Vec<&str> = schema.get("properties").and_then(Value::as_object).map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
    let mut problems = Problems::default();
    for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        problems.push(Problem::new(
            key.clone(),
            "unknown_key",
            format!("「{key}」という設定項目はありません（使える項目: {}）", known.join(", ")),
            format!("unknown key '{key}' (known: {})", known.join(", ")),
        ));
    }
    // Each known key alone, so every wrongly typed value is named; the good ones are
    // kept for the component's own checks, which then run even when some keys are bad.
    let mut good = Map::new();
    for (key, value) in obj.iter().filter(|(k, _)| known.contains(&k.as_str())) {
        let mut alone = Map::new();
        alone.insert(key.clone(), value.clone());
        match serde_json::from_value::<T>(Value::Object(alone)) {
            Ok(_) => {
                good.insert(key.clone(), value.clone());
            }
            Err(e) => problems.push(Problem::new(
                key.clone(),
                "invalid_value",
                format!("「{key}」の値が正しくありません: {e}"),
                format!("invalid value of '{key}': {e}"),
            )),
        }
    }
    let config: T = match serde_json::from_value(Value::Object(good)) {
        Ok(c) => c,
        Err(e) => {
            problems.push(Problem::new("", "invalid_value", format!("設定を読めません: {e}"), format!("cannot read the section: {e}")));
            return Err(problems);
        }
    };
    if let Err(p) = config.validate() {
        problems.0.extend(p.0);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(config)
}

/// Returns the section `[components.NAME]` of the commented file `mamori init` writes:
/// each key of the config's `Default` with its doc comment (Japanese, then English), and
/// keys without a default commented out.
pub fn template<T: ComponentConfig>(name: &str) -> String {
    let schema = schemars::schema_for!(T);
    let props = schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let defaults = toml::Value::try_from(T::default()).ok().and_then(|v| v.as_table().cloned()).unwrap_or_default();
    let mut out = format!("[components.{name}]\n");
    // Keys in the order of the struct (the TOML table keeps the serialized order), then
    // those without a default (Option fields), in the schema's order.
    let mut keys: Vec<String> = defaults.keys().cloned().collect();
    keys.extend(props.keys().filter(|k| !defaults.contains_key(*k)).cloned());
    for key in keys {
        let doc = props.get(&key).map(describe).unwrap_or_default();
        for line in doc.lines().filter(|l| !l.trim().is_empty()) {
            out.push_str(&format!("# {}\n", line.trim()));
        }
        match defaults.get(&key) {
            Some(v) => out.push_str(&format!("{key} = {}\n", inline(v))),
            None => {
                let example = props.get(&key).and_then(|p| p.get("examples")).and_then(Value::as_array).and_then(|a| a.first()).cloned();
                match example.and_then(|e| toml::Value::try_from(e).ok()) {
                    Some(e) => out.push_str(&format!("# {key} = {}\n", inline(&e))),
                    None => out.push_str(&format!("# {key} =\n")),
                }
            }
        }
    }
    out
}

fn describe(prop: &Value) -> String {
    let title = prop.get("title").and_then(Value::as_str).unwrap_or("");
    let description = prop.get("description").and_then(Value::as_str).unwrap_or("");
    [title, description].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("\n")
}

fn inline(v: &toml::Value) -> String {
    // toml's Display of a value is its inline form (strings quoted, arrays inline).
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        /// 確認の間隔（秒）。
        /// Seconds between rounds.
        interval_secs: u64,
        /// 通知先。
        /// Where notices go.
        emails: Vec<String>,
        /// 中継サーバー。
        /// Relay host.
        #[schemars(example = "mail.example.lg.jp")]
        relay: Option<String>,
    }

    impl Default for Sample {
        fn default() -> Self {
            Self { interval_secs: 60, emails: vec!["soc@example.lg.jp".into()], relay: None }
        }
    }

    impl ComponentConfig for Sample {
        fn validate(&self) -> Result<(), Problems> {
            if self.interval_secs < 10 {
                return Err(Problem::new("interval_secs", "too_small", "10秒以上にしてください", "at least 10 seconds").into());
            }
            Ok(())
        }
    }

    #[test]
    fn every_problem_of_a_section_is_named() {
        let p = read_section::<Sample>(&json!({"intervall_secs": 5, "color": "red", "emails": "x", "relay": 3})).unwrap_err();
        let fields: Vec<&str> = p.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["color", "intervall_secs", "emails", "relay"], "{p}");
        // The component's own checks run beside the key and type problems.
        let p = read_section::<Sample>(&json!({"colour": 1, "interval_secs": 5})).unwrap_err();
        assert_eq!(p.0.iter().map(|p| p.code).collect::<Vec<_>>(), ["unknown_key", "too_small"], "{p}");
        assert!(p.0[0].ja.contains("interval_secs"), "the known keys are listed: {}", p.0[0].ja);
        let p = read_section::<Sample>(&json!({"interval_secs": 5})).unwrap_err();
        assert_eq!(p.0[0].code, "too_small");
        assert_eq!(read_section::<Sample>(&json!({})).unwrap(), Sample::default());
        assert_eq!(read_section::<Sample>(&Value::Null).unwrap(), Sample::default());
        assert!(read_section::<Sample>(&json!([1])).is_err());
    }

    #[test]
    fn the_template_is_commented_and_reads_back_as_the_default() {
        let t = template::<Sample>("sample");
        assert_eq!(
            t,
            "[components.sample]\n# 確認の間隔（秒）。\n# Seconds between rounds.\ninterval_secs = 60\n# 通知先。\n# Where notices go.\nemails = [\"soc@example.lg.jp\"]\n# 中継サーバー。\n# Relay host.\n# relay = \"mail.example.lg.jp\"\n"
        );
        let parsed: toml::Table = toml::from_str(&t).unwrap();
        let section = serde_json::to_value(&parsed["components"]["sample"]).unwrap();
        assert_eq!(read_section::<Sample>(&section).unwrap(), Sample::default());
    }
}
