//! Forms generated from a JSON Schema (as `schemars` writes it), so an ordinary setting
//! is edited in fields, never in raw JSON (the JSON stays there for experts).
//!
//! [`render`] lays out the fields of a document: numbers with their range, switches,
//! choices, text, lists of text one per line, and lists of objects as repeated groups
//! with a spare empty one to add and a box to remove each. [`read`] turns the posted
//! fields back into the document, led by the schema, never by the names posted (so a
//! form can add nothing the schema lacks): it starts from the current document, so a
//! part the form cannot show (an unusual shape) is kept as it was.
//!
//! Labels come from each property's description: its first line Japanese, its second
//! English (the convention of config doc comments), further lines a hint.
//!
//! Field names are the document path under `p.` (`p.escalation.0.emails`); a list of
//! objects also posts how many groups it showed (`p.escalation.n`). Posted input is
//! bounded: at most [`MAX_ITEMS`] groups a list, [`MAX_DEPTH`] levels.

use crate::Lang;
use mamori_core::{Problem, Problems};
use maud::{Markup, html};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Groups of one list a form shows or reads at most.
pub const MAX_ITEMS: usize = 64;
/// Levels of nesting followed at most.
pub const MAX_DEPTH: usize = 8;
/// The prefix of every generated field's name.
pub const PREFIX: &str = "p";

/// The kind of a schema node, after `$ref` and `null` alternatives are resolved.
enum Kind<'s> {
    Bool,
    Int {
        min: Option<f64>,
        max: Option<f64>,
    },
    Num {
        min: Option<f64>,
        max: Option<f64>,
    },
    Text {
        format: Option<&'s str>,
    },
    Choice(Vec<&'s str>),
    TextList,
    /// A list of objects, with the schema's `maxItems`.
    ObjectList(&'s Value, usize),
    Object(&'s Value),
    /// A shape the form does not edit (kept as it is).
    Other,
}

struct Schema<'s> {
    root: &'s Value,
}

impl<'s> Schema<'s> {
    /// Follows a local `$ref` (`#/$defs/Step`).
    fn resolve(&self, mut node: &'s Value) -> &'s Value {
        for _ in 0..MAX_DEPTH {
            match node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
                Some(ptr) => match self.root.pointer(ptr) {
                    Some(n) => node = n,
                    None => return node,
                },
                None => return node,
            }
        }
        node
    }

    fn kind(&self, node: &'s Value) -> Kind<'s> {
        let node = self.resolve(node);
        // `Option<T>`: `type: [T, "null"]`, or `anyOf: [T, {type: null}]`.
        if let Some(alts) = node.get("anyOf").and_then(Value::as_array) {
            let real: Vec<&Value> = alts.iter().filter(|a| a.get("type").and_then(Value::as_str) != Some("null")).collect();
            return if real.len() == 1 { self.kind(real[0]) } else { Kind::Other };
        }
        if let Some(e) = node.get("enum").and_then(Value::as_array) {
            let values: Vec<&str> = e.iter().filter_map(Value::as_str).collect();
            return if values.len() == e.len() { Kind::Choice(values) } else { Kind::Other };
        }
        let ty = match node.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(Value::Array(ts)) => {
                let real: Vec<&str> = ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
                if real.len() != 1 {
                    return Kind::Other;
                }
                real[0]
            }
            _ => return Kind::Other,
        };
        let range = |k: &str| node.get(k).and_then(Value::as_f64);
        match ty {
            "boolean" => Kind::Bool,
            "integer" => Kind::Int { min: range("minimum"), max: range("maximum") },
            "number" => Kind::Num { min: range("minimum"), max: range("maximum") },
            "string" => Kind::Text { format: node.get("format").and_then(Value::as_str) },
            "object" if node.get("properties").is_some() => Kind::Object(node),
            "array" => match node.get("items").map(|i| self.kind(i)) {
                Some(Kind::Text { .. }) => Kind::TextList,
                Some(Kind::Object(o)) => Kind::ObjectList(o, node.get("maxItems").and_then(Value::as_u64).map_or(MAX_ITEMS, |m| (m as usize).min(MAX_ITEMS))),
                _ => Kind::Other,
            },
            _ => Kind::Other,
        }
    }
}

/// The label and hint of a property in `l`'s language: description lines 1 and 3 in
/// Japanese, 2 and 4 in English; the key when there is none.
fn label<'v>(l: Lang, node: &'v Value, key: &'v str) -> (&'v str, Option<&'v str>) {
    let lines: Vec<&str> =
        node.get("description").and_then(Value::as_str).map(|d| d.lines().map(str::trim).filter(|s| !s.is_empty()).collect()).unwrap_or_default();
    let pick = usize::from(l == Lang::En);
    let name = lines.get(pick).or(lines.first()).copied().unwrap_or(key);
    (name, lines.get(2 + pick).copied())
}

fn field_name(path: &[String]) -> String {
    std::iter::once(PREFIX.to_string()).chain(path.iter().cloned()).collect::<Vec<_>>().join(".")
}

fn number_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Renders the fields of `doc` as `schema` describes them.
pub fn render(l: Lang, schema: &Value, doc: &Value) -> Markup {
    let s = Schema { root: schema };
    html! { div.schema-form { (object_fields(l, &s, s.resolve(schema), doc, &mut Vec::new(), 0)) } }
}

fn object_fields(l: Lang, s: &Schema<'_>, node: &Value, doc: &Value, path: &mut Vec<String>, depth: usize) -> Markup {
    let Some(props) = node.get("properties").and_then(Value::as_object) else { return html! {} };
    let mut fields = Vec::new();
    for (key, prop) in props {
        path.push(key.clone());
        fields.push(property(l, s, key, prop, doc.get(key), path, depth));
        path.pop();
    }
    html! { @for f in fields { (f) } }
}

fn property(l: Lang, s: &Schema<'_>, key: &str, prop: &Value, value: Option<&Value>, path: &mut Vec<String>, depth: usize) -> Markup {
    let (name, hint) = label(l, prop, key);
    let field = field_name(path);
    let hint = html! { @if let Some(h) = hint { small.hint { (h) } } };
    match s.kind(prop) {
        Kind::Bool => html! {
            label.check { input type="checkbox" name=(field) value="true" checked[value.and_then(Value::as_bool).unwrap_or(false)]; (name) (hint) }
        },
        Kind::Int { min, max } | Kind::Num { min, max } => html! {
            label { (name)
                input type="number" name=(field) value=(number_text(value)) min=[min] max=[max] step=(if matches!(s.kind(prop), Kind::Int { .. }) { "1" } else { "any" });
                (hint)
            }
        },
        Kind::Text { format } => html! {
            label { (name)
                input type=(if format == Some("email") { "email" } else { "text" }) name=(field) value=(value.and_then(Value::as_str).unwrap_or_default()) maxlength="2048";
                (hint)
            }
        },
        Kind::Choice(values) => html! {
            label { (name)
                select name=(field) { @for v in values { option value=(v) selected[value.and_then(Value::as_str) == Some(v)] { (v) } } }
                (hint)
            }
        },
        Kind::TextList => {
            let lines: Vec<&str> = value.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            html! {
                label { (name) small.hint { (l.t("1行に1つ", "one per line")) }
                    textarea name=(field) rows=(lines.len().clamp(2, 8)) { (lines.join("\n")) }
                    (hint)
                }
            }
        }
        Kind::Object(o) if depth < MAX_DEPTH => html! {
            fieldset { legend { (name) } (hint) (object_fields(l, s, o, value.unwrap_or(&Value::Null), path, depth + 1)) }
        },
        Kind::ObjectList(o, max) if depth < MAX_DEPTH => {
            let items: Vec<&Value> = value.and_then(Value::as_array).map(|a| a.iter().take(max).collect()).unwrap_or_default();
            let empty = Value::Object(Map::new());
            // One spare group to add an item, while the list may grow.
            let shown = (items.len() + 1).min(max);
            let mut groups = Vec::new();
            for i in 0..shown {
                let item = items.get(i).copied();
                path.push(i.to_string());
                groups.push(html! {
                    fieldset.item {
                        legend { @if item.is_some() { (i + 1) } @else { (l.t("追加する場合はここに入力", "Fill in to add one")) } }
                        (object_fields(l, s, o, item.unwrap_or(&empty), path, depth + 1))
                        @if item.is_some() { label.check { input type="checkbox" name=(format!("{}.remove", field_name(path))) value="true"; (l.t("この項目を削除", "Remove this one")) } }
                    }
                });
                path.pop();
            }
            html! {
                fieldset.list { legend { (name) } (hint)
                    input type="hidden" name=(format!("{field}.n")) value=(shown);
                    @for g in groups { (g) }
                }
            }
        }
        _ => html! {
            p.muted { (name) ": " code { (value.map(Value::to_string).unwrap_or_default()) } " " (l.t("（この項目は JSON で編集してください）", "(edit this one as JSON)")) }
        },
    }
}

/// Reads the posted fields into a document: `current` with every field the form shows
/// replaced by what was posted. A field that cannot be read keeps its current value and
/// is named in the problems (so the form shown again loses none of the rest).
pub fn read(schema: &Value, current: &Value, posted: &[(String, String)]) -> (Value, Problems) {
    let s = Schema { root: schema };
    let fields: HashMap<&str, &str> = posted.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut problems = Problems::default();
    let mut doc = current.clone();
    if !doc.is_object() {
        doc = Value::Object(Map::new());
    }
    read_object(&s, s.resolve(schema), &mut doc, &fields, &mut Vec::new(), 0, &mut problems);
    (doc, problems)
}

/// What a field read gives.
enum Read {
    /// Set the key to this.
    Set(Value),
    /// The field is empty: drop the key (the type's default applies).
    Unset,
    /// Not a field of the form: keep the key as it is.
    Keep,
}

fn read_object(s: &Schema<'_>, node: &Value, doc: &mut Value, fields: &HashMap<&str, &str>, path: &mut Vec<String>, depth: usize, problems: &mut Problems) {
    let Some(props) = node.get("properties").and_then(Value::as_object) else { return };
    for (key, prop) in props {
        path.push(key.clone());
        let current = doc.get(key).cloned().unwrap_or(Value::Null);
        let r = read_value(s, prop, &current, fields, path, depth, problems);
        if let Some(obj) = doc.as_object_mut() {
            match r {
                Read::Set(v) => {
                    obj.insert(key.clone(), v);
                }
                Read::Unset => {
                    obj.remove(key);
                }
                Read::Keep => {}
            }
        }
        path.pop();
    }
}

fn read_value(
    s: &Schema<'_>,
    prop: &Value,
    current: &Value,
    fields: &HashMap<&str, &str>,
    path: &mut Vec<String>,
    depth: usize,
    problems: &mut Problems,
) -> Read {
    let name = field_name(path);
    let at = path.join(".");
    let given = fields.get(name.as_str()).map(|v| v.trim());
    let number = |text: &str, int: bool, min: Option<f64>, max: Option<f64>, problems: &mut Problems| -> Read {
        if text.is_empty() {
            return Read::Unset;
        }
        let parsed: Option<Value> = if int {
            text.parse::<i64>().ok().map(Value::from)
        } else {
            text.parse::<f64>().ok().and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
        };
        let in_range = |v: &Value| v.as_f64().is_some_and(|f| min.is_none_or(|m| f >= m) && max.is_none_or(|m| f <= m));
        match parsed {
            Some(v) if in_range(&v) => Read::Set(v),
            _ => {
                let (ja_range, en_range) = match (min, max) {
                    (Some(a), Some(b)) => (format!("{a}〜{b}の"), format!(" from {a} to {b}")),
                    (Some(a), None) => (format!("{a} 以上の"), format!(" of at least {a}")),
                    (None, Some(b)) => (format!("{b} 以下の"), format!(" of at most {b}")),
                    (None, None) => (String::new(), String::new()),
                };
                let (ja_what, en_what) = if int { ("整数", "an integer") } else { ("数値", "a number") };
                problems.push(Problem::new(
                    at.clone(),
                    "invalid_number",
                    format!("「{text}」は{ja_range}{ja_what}ではありません"),
                    format!("'{text}' is not {en_what}{en_range}"),
                ));
                Read::Keep
            }
        }
    };
    match s.kind(prop) {
        Kind::Bool => Read::Set(Value::Bool(given == Some("true"))),
        Kind::Int { min, max } => given.map_or(Read::Keep, |t| number(t, true, min, max, problems)),
        Kind::Num { min, max } => given.map_or(Read::Keep, |t| number(t, false, min, max, problems)),
        Kind::Text { .. } => match given {
            None => Read::Keep,
            Some("") => Read::Unset,
            Some(t) => Read::Set(Value::String(t.to_string())),
        },
        Kind::Choice(values) => match given {
            None => Read::Keep,
            Some(t) if values.contains(&t) => Read::Set(Value::String(t.to_string())),
            Some(t) => {
                problems.push(Problem::new(at, "invalid_choice", format!("「{t}」は選べません"), format!("'{t}' is not one of the choices")));
                Read::Keep
            }
        },
        Kind::TextList => match given {
            None => Read::Keep,
            Some(t) => Read::Set(Value::Array(t.lines().map(str::trim).filter(|x| !x.is_empty()).map(|x| Value::String(x.to_string())).collect())),
        },
        Kind::Object(o) if depth < MAX_DEPTH => {
            let mut v = if current.is_object() { current.clone() } else { Value::Object(Map::new()) };
            read_object(s, o, &mut v, fields, path, depth + 1, problems);
            Read::Set(v)
        }
        Kind::ObjectList(o, max) if depth < MAX_DEPTH => {
            let Some(n) = fields.get(format!("{name}.n").as_str()).and_then(|n| n.parse::<usize>().ok()) else { return Read::Keep };
            let items = current.as_array().cloned().unwrap_or_default();
            let mut out = Vec::new();
            for i in 0..n.min(max) {
                path.push(i.to_string());
                let item_name = field_name(path);
                let removed = fields.get(format!("{item_name}.remove").as_str()) == Some(&"true");
                // A group left empty (the spare one) adds nothing.
                let prefix = format!("{item_name}.");
                let filled = fields.iter().any(|(k, v)| k.starts_with(&prefix) && !k.ends_with(".n") && !k.ends_with(".remove") && !v.trim().is_empty());
                if !removed && (filled || i < items.len()) {
                    let mut v = items.get(i).filter(|v| v.is_object()).cloned().unwrap_or_else(|| Value::Object(Map::new()));
                    read_object(s, o, &mut v, fields, path, depth + 1, problems);
                    out.push(v);
                }
                path.pop();
            }
            Read::Set(Value::Array(out))
        }
        _ => Read::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // The doc comments are labels: Japanese, English, then hints (ja, en).
    #[allow(dead_code)]
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Step {
        /// 経過時間（分）
        /// Minutes after
        #[schemars(range(max = 10080))]
        after_minutes: u32,
        /// 連絡先に送る
        /// Send to contacts
        #[serde(default)]
        contacts: bool,
        /// 宛先
        /// Addresses
        #[serde(default)]
        emails: Vec<String>,
    }

    #[allow(dead_code)]
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    enum Level {
        #[serde(rename = "low")]
        Low,
        #[serde(rename = "high")]
        High,
    }

    #[allow(dead_code)]
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Policy {
        /// 段階
        /// Steps
        /// 順に通知します。
        /// Notified in order.
        #[schemars(length(max = 3))]
        steps: Vec<Step>,
        /// 再通知（分）
        /// Repeat (minutes)
        repeat: u32,
        /// 水準
        /// Level
        level: Level,
        /// 名前
        /// Name
        name: Option<String>,
        /// 自由形式
        /// Free form
        extra: serde_json::Value,
    }

    fn schema() -> Value {
        schemars::schema_for!(Policy).to_value()
    }

    fn doc() -> Value {
        json!({
            "steps": [{"after_minutes": 0, "contacts": true, "emails": []}, {"after_minutes": 30, "contacts": false, "emails": ["kacho@city.example.lg.jp"]}],
            "repeat": 60, "level": "high", "name": "本庁", "extra": {"keep": [1, 2]}
        })
    }

    /// The fields a browser posts for the rendered form, unchanged.
    fn posted(html: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for tag in html.split('<').skip(1) {
            let attr = |name: &str| {
                tag.split(&format!(" {name}=\"")).nth(1).and_then(|r| r.split('"').next()).map(|v| v.replace("&amp;", "&").replace("&quot;", "\""))
            };
            let (Some(name), kind) = (attr("name"), attr("type")) else { continue };
            if tag.starts_with("input") {
                match kind.as_deref() {
                    Some("checkbox") if !tag.contains(" checked") => {}
                    _ => out.push((name, attr("value").unwrap_or_default())),
                }
            } else if tag.starts_with("textarea") {
                out.push((name, tag.split_once('>').map(|(_, t)| t.to_string()).unwrap_or_default()));
            } else if tag.starts_with("select") {
                let rest = &html[html.find(tag).unwrap_or(0)..];
                let chosen = rest
                    .split("<option")
                    .skip(1)
                    .take_while(|o| !o.starts_with("/select"))
                    .find(|o| o.contains(" selected"))
                    .and_then(|o| o.split("value=\"").nth(1))
                    .and_then(|v| v.split('"').next());
                out.push((name, chosen.unwrap_or_default().to_string()));
            }
        }
        out
    }

    fn ok((doc, problems): (Value, Problems)) -> Value {
        assert!(problems.is_empty(), "{problems:?}");
        doc
    }

    fn set(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
        fields.retain(|(k, _)| k != name);
        fields.push((name.to_string(), value.to_string()));
    }

    #[test]
    fn renders_every_field_in_the_language_with_its_range_and_keeps_the_rest() {
        let html = render(Lang::Ja, &schema(), &doc()).into_string();
        assert!(html.contains("段階") && html.contains("順に通知します。") && !html.contains("Steps"), "{html}");
        assert!(html.contains(r#"name="p.repeat" value="60" min="0""#), "{html}");
        assert!(html.contains(r#"name="p.steps.1.after_minutes" value="30" min="0" max="10080""#), "{html}");
        assert!(html.contains(r#"<textarea name="p.steps.1.emails" rows="2">kacho@city.example.lg.jp</textarea>"#), "{html}");
        assert!(html.contains(r#"<option value="high" selected>"#), "{html}");
        assert!(html.contains(r#"name="p.steps.n" value="3""#), "two steps and one spare: {html}");
        assert!(html.contains("JSON で編集してください"), "the free-form part is left to JSON: {html}");
        let en = render(Lang::En, &schema(), &doc()).into_string();
        assert!(en.contains("Steps") && en.contains("Notified in order.") && !en.contains("段階"), "{en}");
    }

    #[test]
    fn an_unchanged_form_reads_back_the_same_document() {
        let html = render(Lang::Ja, &schema(), &doc()).into_string();
        assert_eq!(ok(read(&schema(), &doc(), &posted(&html))), doc());
    }

    #[test]
    fn the_spare_group_adds_a_step_and_a_box_removes_one() {
        let html = render(Lang::Ja, &schema(), &doc()).into_string();
        let mut fields = posted(&html);
        set(&mut fields, "p.steps.2.after_minutes", "120");
        set(&mut fields, "p.steps.2.emails", "a@x.example.lg.jp\r\n\r\n b@x.example.lg.jp ");
        set(&mut fields, "p.steps.0.remove", "true");
        set(&mut fields, "p.repeat", "");
        set(&mut fields, "p.name", "");
        let got = ok(read(&schema(), &doc(), &fields));
        assert_eq!(
            got["steps"],
            json!([{"after_minutes": 30, "contacts": false, "emails": ["kacho@city.example.lg.jp"]}, {"after_minutes": 120, "contacts": false, "emails": ["a@x.example.lg.jp", "b@x.example.lg.jp"]}])
        );
        assert!(got.get("repeat").is_none() && got.get("name").is_none(), "an emptied field is left to the type's default: {got}");
        assert_eq!(got["extra"], json!({"keep": [1, 2]}));
        // The list is full (maxItems 3): no spare group.
        let full = render(Lang::Ja, &schema(), &got).into_string();
        assert!(full.contains(r#"name="p.steps.n" value="3""#), "{full}");
        let three = json!({"steps": [{"after_minutes": 0}, {"after_minutes": 1}, {"after_minutes": 2}]});
        assert!(render(Lang::Ja, &schema(), &three).into_string().contains(r#"name="p.steps.n" value="3""#));
    }

    #[test]
    fn bad_input_names_each_field_and_posted_names_add_nothing() {
        let mut fields = posted(&render(Lang::Ja, &schema(), &doc()).into_string());
        set(&mut fields, "p.repeat", "六十");
        set(&mut fields, "p.steps.1.after_minutes", "99999");
        set(&mut fields, "p.level", "<script>");
        set(&mut fields, "p.unknown", "1");
        set(&mut fields, "p.steps.n", "999999999999");
        set(&mut fields, "p.steps.500.after_minutes", "5");
        let (kept, e) = read(&schema(), &doc(), &fields);
        assert_eq!((kept["repeat"].clone(), kept["level"].clone()), (json!(60), json!("high")), "a bad field keeps its value");
        let at: Vec<&str> = e.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(at, ["level", "repeat", "steps.1.after_minutes"], "{e:?}");
        assert_eq!(e.0[1].ja, "「六十」は0 以上の整数ではありません");
        assert_eq!(e.0[2].en, "'99999' is not an integer from 0 to 10080");
        assert!(e.0[2].ja.contains("0〜10080の整数"), "{e:?}");
        // Without the bad values: the unknown name and the far group add nothing.
        set(&mut fields, "p.repeat", "5");
        set(&mut fields, "p.steps.1.after_minutes", "30");
        set(&mut fields, "p.level", "low");
        let got = ok(read(&schema(), &doc(), &fields));
        assert!(got.get("unknown").is_none());
        assert_eq!(got["steps"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn hostile_schemas_and_documents_are_bounded() {
        // A reference to itself and a document that is not an object.
        let looped = json!({"$ref": "#", "properties": {"a": {"$ref": "#"}}});
        let _ = render(Lang::Ja, &looped, &json!(5)).into_string();
        let _ = read(&looped, &json!(null), &[("p.a.a.a".into(), "1".into())]);
        let nested = (0..40).fold(json!({"type": "integer"}), |inner, _| json!({"type": "object", "properties": {"x": inner}}));
        let html = render(Lang::Ja, &nested, &json!({})).into_string();
        assert!(html.matches("<fieldset").count() <= MAX_DEPTH, "{html}");
        assert!(read(&nested, &json!({}), &[]).1.is_empty());
    }
}
