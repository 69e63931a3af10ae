//! Editing: the form of each category built from its schema (sections and keys, lists, the
//! LoRA picked from the category's LoRA files with weight and triggers, a character's
//! wardrobe, a checkpoint's sampler and scheduler from ComfyUI's lists), the raw JSON editor
//! (parse and schema errors shown in place, nothing saved on error, unknown keys kept),
//! create (blank), clone, and delete through a dialog that says exactly what goes.

use super::{FormPairs, Page, field, finish, flash_of, not_found_page, page, run, with_flash};
use crate::library::category::{Category, Field, Kind, WARDROBE_KEYS};
use crate::library::command::Command;
use crate::library::projection::{Entry, Library};
use crate::store::event::Source;
use crate::web::AppState;
use crate::web::guard::csrf_field;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::{Map, Number, Value, json};
use std::collections::HashMap;

/// Errors by form field name (`""` for the whole form).
type Errors = Vec<(String, String)>;

fn fname(section: Option<&str>, key: &str) -> String {
    match section {
        Some(s) => format!("f:{s}:{key}"),
        None => format!("f:{key}"),
    }
}

/// A blank document of a category, with every known key (what "create" starts from).
pub fn blank(c: Category) -> Map<String, Value> {
    let d = c.desc();
    let mut doc = Map::new();
    doc.insert(d.id_field.into(), "".into());
    doc.insert(d.name_field.into(), "".into());
    for sec in d.schema {
        let mut target = Map::new();
        for f in sec.fields {
            let v = match (c, f.kind, f.key) {
                (_, Kind::List | Kind::PromptList, _) => json!([]),
                (Category::Checkpoints, _, "steps") => json!(25),
                (Category::Checkpoints, _, "cfg") => json!(5),
                (Category::Checkpoints, _, "vae") => json!("integrated"),
                (Category::Presets, Kind::Ref(_), _) => Value::Null,
                (Category::Presets, _, "width") => json!(832),
                (Category::Presets, _, "height") => json!(1216),
                (Category::Presets, Kind::Integer, _) => Value::Null,
                (Category::Presets, _, "active_outfit") => Value::Null,
                (_, Kind::Number | Kind::Integer, _) => json!(0),
                (_, Kind::Bool, _) => json!(false),
                (_, Kind::BoolText, _) => json!("true"),
                (_, Kind::Sampler, _) => json!("euler_ancestral"),
                (_, Kind::Scheduler, _) => json!("normal"),
                (_, Kind::Lora, _) => {
                    json!({"lora_name": "", "lora_weight": 1.0, "lora_triggers": ""})
                }
                (_, Kind::Wardrobe, _) => {
                    let outfit: Map<String, Value> = WARDROBE_KEYS
                        .iter()
                        .map(|k| (k.to_string(), json!("")))
                        .collect();
                    json!({ "default": outfit })
                }
                (_, _, "orientation") => json!("1F"),
                _ => json!(""),
            };
            match sec.key {
                Some(_) => {
                    target.insert(f.key.into(), v);
                }
                None => {
                    doc.insert(f.key.into(), v);
                }
            }
        }
        if let Some(k) = sec.key {
            doc.insert(k.into(), Value::Object(target));
        }
    }
    doc
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Text | Kind::Prompt | Kind::Sampler | Kind::Scheduler => "text",
        Kind::List | Kind::PromptList => "a list of text",
        Kind::Number => "a number",
        Kind::Integer => "a whole number",
        Kind::Bool => "true or false",
        Kind::BoolText => "\"true\" or \"false\"",
        Kind::Ref(_) => "an id (text) or null",
        Kind::Lora => "an object with lora_name, lora_weight and lora_triggers",
        Kind::Wardrobe => "an object of outfits (or of wardrobe keys)",
    }
}

fn fits(k: Kind, v: &Value) -> bool {
    match (k, v) {
        (_, Value::Null) => !matches!(k, Kind::Lora | Kind::Wardrobe),
        (Kind::Text | Kind::Prompt | Kind::Sampler | Kind::Scheduler, Value::String(_)) => true,
        (Kind::List, Value::Array(a)) => a.iter().all(Value::is_string),
        (Kind::PromptList, Value::Array(a)) => a.iter().all(Value::is_string),
        (Kind::PromptList, Value::String(_)) => true,
        (Kind::Number, Value::Number(_)) => true,
        (Kind::Integer, Value::Number(n)) => n.is_u64() || n.is_i64(),
        (Kind::Bool, Value::Bool(_)) => true,
        (Kind::BoolText, Value::String(_) | Value::Bool(_)) => true,
        (Kind::Ref(_), Value::String(_)) => true,
        (Kind::Lora, Value::Object(m)) => {
            m.get("lora_name")
                .is_none_or(|x| x.is_string() || x.is_null())
                && m.get("lora_weight").is_none_or(|x| {
                    x.is_number() || x.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok())
                })
                && m.get("lora_triggers")
                    .is_none_or(|x| x.is_string() || x.is_null())
        }
        (Kind::Wardrobe, Value::Object(m)) => {
            m.values().all(|o| o.is_object()) || m.values().all(|o| o.is_string() || o.is_null())
        }
        _ => false,
    }
}

/// The known keys of a document that hold the wrong kind of value. Unknown keys pass.
pub fn check_schema(c: Category, doc: &Map<String, Value>) -> Vec<String> {
    let d = c.desc();
    let mut errors = Vec::new();
    match doc.get(d.id_field) {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => errors.push(format!("\"{}\" must be a non-empty string", d.id_field)),
    }
    if doc.get(d.name_field).is_some_and(|n| !n.is_string()) {
        errors.push(format!("\"{}\" must be a string", d.name_field));
    }
    for sec in d.schema {
        let parent = match sec.key {
            Some(k) => match doc.get(k) {
                None => continue,
                Some(Value::Object(m)) => Some((k, m)),
                Some(_) => {
                    errors.push(format!("\"{k}\" must be an object"));
                    continue;
                }
            },
            None => None,
        };
        for f in sec.fields {
            let (path, v) = match parent {
                Some((k, m)) => (format!("{k}.{}", f.key), m.get(f.key)),
                None => (f.key.to_string(), doc.get(f.key)),
            };
            if let Some(v) = v
                && !fits(f.kind, v)
            {
                errors.push(format!("\"{path}\" must be {}", kind_name(f.kind)));
            }
        }
    }
    errors
}

/// A text field as saved: trimmed, without the separator tag autocomplete leaves after the
/// last tag (`silver hair, long hair, ` → `silver hair, long hair`).
fn tidy(s: &str) -> String {
    s.trim()
        .trim_end_matches(|c: char| c == ',' || c.is_whitespace())
        .to_string()
}

fn split_list(s: &str) -> Vec<Value> {
    s.split([',', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| Value::String(t.to_string()))
        .collect()
}

fn number(s: &str, integer: bool) -> Option<Value> {
    let t = s.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Some(Value::Number(i.into()));
    }
    if integer {
        return None;
    }
    t.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .and_then(Number::from_f64)
        .map(Value::Number)
}

/// Applies a posted form to a document. Keys the form does not show are kept as they are.
pub fn apply_form(
    lib: &Library,
    c: Category,
    doc: &mut Map<String, Value>,
    f: &[(String, String)],
    creating: bool,
) -> Errors {
    let d = c.desc();
    let mut errors: Errors = Vec::new();
    let get = |name: &str| field(f, name);
    if field(f, "schema") != Some("1") {
        return vec![(
            String::new(),
            "the form is incomplete; reload the page".into(),
        )];
    }
    match get(&fname(None, d.name_field)).map(str::trim) {
        Some(n) if !n.is_empty() => {
            doc.insert(d.name_field.into(), n.into());
        }
        _ => errors.push((fname(None, d.name_field), "give it a name".into())),
    }
    if creating && let Some(id) = get(&fname(None, d.id_field)).map(str::trim) {
        doc.insert(d.id_field.into(), id.into());
    }
    for sec in d.schema {
        for fl in sec.fields {
            let name = fname(sec.key, fl.key);
            let value = match read_field(lib, c, fl, &name, f, doc, sec.key) {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(e) => {
                    errors.push((name, e));
                    continue;
                }
            };
            match sec.key {
                None => {
                    doc.insert(fl.key.into(), value);
                }
                Some(k) => {
                    let parent = doc
                        .entry(k.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    match parent {
                        Value::Object(m) => {
                            m.insert(fl.key.into(), value);
                        }
                        _ => errors.push((
                            name,
                            format!("\"{k}\" is not an object; fix it in the raw JSON editor"),
                        )),
                    }
                }
            }
        }
    }
    errors
}

/// One field's new value; `None` keeps the current one.
fn read_field(
    lib: &Library,
    c: Category,
    fl: &Field,
    name: &str,
    f: &[(String, String)],
    doc: &Map<String, Value>,
    section: Option<&str>,
) -> Result<Option<Value>, String> {
    let raw = field(f, name);
    let current = match section {
        Some(s) => doc.get(s).and_then(|m| m.get(fl.key)),
        None => doc.get(fl.key),
    };
    let nullable = c == Category::Presets || current.is_none_or(Value::is_null);
    Ok(Some(match fl.kind {
        Kind::Text | Kind::Prompt | Kind::Sampler | Kind::Scheduler => match raw {
            None => return Ok(None),
            Some(v) if v.trim().is_empty() && c == Category::Presets => Value::Null,
            Some(v) => Value::String(tidy(v)),
        },
        Kind::List | Kind::PromptList => match raw {
            None => return Ok(None),
            Some(v) => Value::Array(split_list(v)),
        },
        Kind::Number | Kind::Integer => match raw.map(str::trim) {
            None => return Ok(None),
            Some("") if nullable => Value::Null,
            Some("") => return Err("required".into()),
            Some(v) => number(v, fl.kind == Kind::Integer).ok_or_else(|| {
                format!(
                    "'{v}' is not {}",
                    if fl.kind == Kind::Integer {
                        "a whole number"
                    } else {
                        "a number"
                    }
                )
            })?,
        },
        Kind::Bool => Value::Bool(raw.is_some()),
        Kind::BoolText => Value::String(if raw.is_some() { "true" } else { "false" }.into()),
        Kind::Ref(cat) => match raw.map(str::trim) {
            None => return Ok(None),
            Some("") => {
                if c == Category::Presets {
                    Value::Null
                } else {
                    Value::String(String::new())
                }
            }
            Some(crate::engine::RANDOM_SENTINEL)
                if c == Category::Presets && cat != Category::Checkpoints =>
            {
                Value::String(crate::engine::RANDOM_SENTINEL.into())
            }
            Some(id) => {
                let known = if cat == Category::Checkpoints {
                    lib.shelf(cat).docs.values().any(|e| e.id == id)
                } else {
                    lib.get(cat, &cat.slug_of(id)).is_some()
                };
                if !known {
                    return Err(format!("no {} '{id}' in the library", cat.desc().singular));
                }
                Value::String(id.to_string())
            }
        },
        Kind::Lora => {
            let Some(lora_name) = field(f, &format!("{name}:lora_name")) else {
                return Ok(None);
            };
            let weight_text = field(f, &format!("{name}:lora_weight"))
                .unwrap_or("")
                .trim();
            let weight = if weight_text.is_empty() {
                json!(1.0)
            } else {
                number(weight_text, false)
                    .ok_or_else(|| format!("LoRA weight '{weight_text}' is not a number"))?
            };
            let mut m = current
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            m.insert("lora_name".into(), lora_name.trim().into());
            m.insert("lora_weight".into(), weight);
            m.insert(
                "lora_triggers".into(),
                field(f, &format!("{name}:lora_triggers"))
                    .unwrap_or("")
                    .trim()
                    .into(),
            );
            Value::Object(m)
        }
        Kind::Wardrobe => {
            let mut w = current
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let nested = w.values().any(Value::is_object);
            if nested {
                for (outfit, fields) in w.iter_mut() {
                    if let Value::Object(m) = fields {
                        for k in WARDROBE_KEYS {
                            if let Some(v) = field(f, &format!("w:{outfit}:{k}")) {
                                m.insert(k.into(), tidy(v).into());
                            }
                        }
                    }
                }
            } else {
                for k in WARDROBE_KEYS {
                    if let Some(v) = field(f, &format!("w::{k}")) {
                        w.insert(k.into(), tidy(v).into());
                    }
                }
            }
            Value::Object(w)
        }
    }))
}

struct FormCtx<'a> {
    lib: &'a Library,
    loras: &'a [String],
    samplers: &'a (Vec<String>, Vec<String>),
    errors: &'a Errors,
    /// Values as posted (shown again after an error), by field name.
    posted: Option<&'a [(String, String)]>,
}

impl FormCtx<'_> {
    fn error(&self, name: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.as_str())
    }

    fn text(&self, name: &str, current: Option<&Value>) -> String {
        if let Some(p) = self.posted {
            return field(p, name).unwrap_or_default().to_string();
        }
        match current {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
                .collect::<Vec<_>>()
                .join(", "),
            Some(v) => v.to_string(),
        }
    }

    fn checked(&self, name: &str, current: Option<&Value>) -> bool {
        if let Some(p) = self.posted {
            return field(p, name).is_some();
        }
        crate::engine::doc::truthy(current)
    }
}

fn invalid(msg: Option<&str>) -> Markup {
    html! { @if let Some(m) = msg { div.invalid-feedback.d-block { (m) } } }
}

fn input_for(
    cx: &FormCtx<'_>,
    c: Category,
    fl: &Field,
    name: &str,
    current: Option<&Value>,
) -> Markup {
    let id = name.replace(':', "-");
    let err = cx.error(name);
    let value = cx.text(name, current);
    html! {
        div.mb-2 {
            @match fl.kind {
                Kind::Bool | Kind::BoolText => {
                    div.form-check {
                        input.form-check-input type="checkbox" id=(id) name=(name) value="on" checked[cx.checked(name, current)];
                        label.form-check-label for=(id) { (fl.label) }
                    }
                }
                Kind::Lora => { (lora_inputs(cx, c, name, current)) }
                Kind::Wardrobe => { (wardrobe_inputs(cx, current)) }
                _ => {
                    label.form-label.small for=(id) { (fl.label) }
                    @match fl.kind {
                        Kind::Prompt | Kind::PromptList => {
                            textarea.form-control.form-control-sm.is-invalid[err.is_some()] id=(id) name=(name) rows="2" data-tag-autocomplete { (value) }
                        }
                        Kind::List => {
                            input.form-control.form-control-sm.is-invalid[err.is_some()] id=(id) name=(name) value=(value)
                                data-tag-autocomplete placeholder="comma-separated";
                        }
                        Kind::Number => {
                            input.form-control.form-control-sm.is-invalid[err.is_some()] id=(id) name=(name) value=(value) type="number" step="any";
                        }
                        Kind::Integer => {
                            input.form-control.form-control-sm.is-invalid[err.is_some()] id=(id) name=(name) value=(value) type="number" step="1";
                        }
                        Kind::Sampler | Kind::Scheduler => {
                            @let list = if fl.kind == Kind::Sampler { &cx.samplers.0 } else { &cx.samplers.1 };
                            select.form-select.form-select-sm id=(id) name=(name) {
                                @if !list.contains(&value) && !value.is_empty() {
                                    option value=(value) selected { (value) " (not offered by ComfyUI)" }
                                }
                                @for x in list {
                                    option value=(x) selected[*x == value] { (x) }
                                }
                            }
                        }
                        Kind::Ref(cat) => {
                            @let extra: Vec<(&str, &str)> = if c == Category::Presets {
                                if cat == Category::Checkpoints {
                                    vec![("", "The default checkpoint")]
                                } else {
                                    vec![("", "None"), (crate::engine::RANDOM_SENTINEL, "Random")]
                                }
                            } else {
                                vec![("", "None")]
                            };
                            (super::ui::entry_picker(cx.lib, cat, name, &id, Some(value.as_str()), &extra, false))
                        }
                        _ => {
                            input.form-control.form-control-sm.is-invalid[err.is_some()] id=(id) name=(name) value=(value);
                        }
                    }
                }
            }
            (invalid(err))
        }
    }
}

fn lora_inputs(cx: &FormCtx<'_>, c: Category, name: &str, current: Option<&Value>) -> Markup {
    let get = |k: &str| current.and_then(|l| l.get(k));
    let n = format!("{name}:lora_name");
    let w = format!("{name}:lora_weight");
    let t = format!("{name}:lora_triggers");
    let list_id = format!("{}-list", n.replace(':', "-"));
    html! {
        fieldset.border.rounded.p-2 {
            legend.small.fw-semibold.float-none.w-auto.px-1.mb-0 { "LoRA" }
            div.row.g-2 {
                div.col-md-7 {
                    label.form-label.small for=(n.replace(':', "-")) {
                        "File"
                        @if let Some(dir) = c.desc().lora_dir { span.text-body-secondary { " (under " (dir) "/)" } }
                    }
                    input.form-control.form-control-sm id=(n.replace(':', "-")) name=(n) list=(list_id)
                        value=(cx.text(&n, get("lora_name"))) placeholder="none";
                    datalist id=(list_id) { @for l in cx.loras { option value=(l) {} } }
                    (invalid(cx.error(&n)))
                }
                div.col-md-5 {
                    label.form-label.small for=(w.replace(':', "-")) { "Weight" }
                    input.form-control.form-control-sm.is-invalid[cx.error(name).is_some()] id=(w.replace(':', "-")) name=(w) type="number" step="0.05"
                        value=(cx.text(&w, get("lora_weight")));
                }
                div.col-12 {
                    label.form-label.small for=(t.replace(':', "-")) { "Trigger words" }
                    input.form-control.form-control-sm id=(t.replace(':', "-")) name=(t) value=(cx.text(&t, get("lora_triggers"))) data-tag-autocomplete;
                }
            }
        }
    }
}

fn wardrobe_inputs(cx: &FormCtx<'_>, current: Option<&Value>) -> Markup {
    let w = current.and_then(Value::as_object);
    let nested = w.is_some_and(|m| m.values().any(Value::is_object));
    let outfits: Vec<(String, Option<&Map<String, Value>>)> = match w {
        Some(m) if nested => m
            .iter()
            .filter_map(|(k, v)| v.as_object().map(|o| (k.clone(), Some(o))))
            .collect(),
        Some(m) => vec![(String::new(), Some(m))],
        None => vec![(String::new(), None)],
    };
    html! {
        @for (outfit, fields) in &outfits {
            fieldset.border.rounded.p-2.mb-2 {
                legend.small.fw-semibold.float-none.w-auto.px-1.mb-0 {
                    @if outfit.is_empty() { "Wardrobe" } @else { "Outfit: " (outfit) }
                }
                div.row.g-2 {
                    @for k in WARDROBE_KEYS {
                        @let name = format!("w:{outfit}:{k}");
                        @let id = format!("w-{}-{k}", outfit.replace(|ch: char| !ch.is_ascii_alphanumeric(), "_"));
                        div.col-md-6 {
                            label.form-label.small for=(id) { (k) }
                            input.form-control.form-control-sm id=(id) name=(name) value=(cx.text(&name, fields.and_then(|m| m.get(k)))) data-tag-autocomplete;
                        }
                    }
                }
            }
        }
        p.small.text-body-secondary { "Add, rename or delete outfits from the character's page (Wardrobe)." }
    }
}

fn form_fields(cx: &FormCtx<'_>, c: Category, doc: &Map<String, Value>, creating: bool) -> Markup {
    let d = c.desc();
    let id_name = fname(None, d.id_field);
    let name_name = fname(None, d.name_field);
    html! {
        input type="hidden" name="schema" value="1";
        div.row.g-2.mb-2 {
            div.col-md-6 {
                label.form-label.small for="f-name" { "Name" }
                input.form-control.is-invalid[cx.error(&name_name).is_some()] #f-name name=(name_name)
                    value=(cx.text(&name_name, doc.get(d.name_field))) required;
                (invalid(cx.error(&name_name)))
            }
            div.col-md-6 {
                label.form-label.small for="f-id" {
                    (d.id_field)
                    @if creating && c != Category::Checkpoints { span.text-body-secondary { " (empty: made from the name)" } }
                }
                @if creating {
                    input.form-control #f-id name=(id_name) value=(cx.text(&id_name, doc.get(d.id_field)))
                        required[c == Category::Checkpoints];
                } @else {
                    input.form-control #f-id value=(cx.text("", doc.get(d.id_field))) readonly
                        aria-describedby="f-id-help";
                    div.form-text #f-id-help { "The id names the file and the URL; clone the entry to get another id." }
                }
            }
        }
        @for sec in d.schema {
            section.mb-3 {
                h2.h6.border-bottom.pb-1 { (sec.title) }
                @let parent = sec.key.and_then(|k| doc.get(k));
                div.row.g-2 {
                    @for fl in sec.fields {
                        @let current = match sec.key { Some(_) => parent.and_then(|p| p.get(fl.key)), None => doc.get(fl.key) };
                        @let wide = matches!(fl.kind, Kind::Lora | Kind::Wardrobe | Kind::Prompt | Kind::PromptList);
                        div.col-12.col-md-6[!wide] {
                            (input_for(cx, c, fl, &fname(sec.key, fl.key), current))
                        }
                    }
                }
            }
        }
    }
}

async fn loras_of(s: &AppState, c: Category) -> Vec<String> {
    let Some(root) = s.config.loras.clone() else {
        return Vec::new();
    };
    tokio::task::spawn_blocking(move || crate::library::models::list_loras(&root, c))
        .await
        .unwrap_or_default()
}

fn sampler_lists(s: &AppState) -> (Vec<String>, Vec<String>) {
    s.live
        .as_ref()
        .and_then(|l| l.sampler_lists())
        .unwrap_or_else(|| {
            (
                crate::engine::validate::KNOWN_SAMPLERS
                    .iter()
                    .map(|x| x.to_string())
                    .collect(),
                crate::engine::validate::KNOWN_SCHEDULERS
                    .iter()
                    .map(|x| x.to_string())
                    .collect(),
            )
        })
}

/// What the edit page shows after a failed save.
#[derive(Default)]
struct Failed<'a> {
    form: Option<(&'a [(String, String)], &'a Errors)>,
    raw: Option<(&'a str, &'a str)>,
}

async fn render_edit(
    s: &AppState,
    c: Category,
    slug: &str,
    q: &HashMap<String, String>,
    failed: Failed<'_>,
) -> Response {
    let loras = loras_of(s, c).await;
    let samplers = sampler_lists(s);
    let lib = s.handle.library();
    let Some(e) = lib.get(c, slug) else {
        drop(lib);
        return not_found_page(s, &format!("There is no {} '{slug}'.", c.desc().singular));
    };
    let d = c.desc();
    let doc = e.data().unwrap_or_default();
    let no_errors = Vec::new();
    let cx = FormCtx {
        lib: &lib,
        loras: &loras,
        samplers: &samplers,
        errors: failed.form.map_or(&no_errors, |f| f.1),
        posted: failed.form.map(|f| f.0),
    };
    let base = format!("/{}/{slug}", d.singular);
    let raw_text = failed
        .raw
        .map_or_else(|| e.json.to_string(), |r| r.0.to_string());
    let body = html! {
        nav aria-label="breadcrumb" {
            ol.breadcrumb.small.mb-2 {
                li.breadcrumb-item { a href={ "/" (d.key) } { (d.title) } }
                li.breadcrumb-item { a href=(base) { (e.name) } }
                li.breadcrumb-item.active aria-current="page" { "Edit" }
            }
        }
        h1.h3 { "Edit " (e.name) }
        p.small.text-body-secondary { "File " code { "data/" (d.dir) "/" (e.file) } ". Keys the form does not show are kept." }
        @if let Some((_, errs)) = failed.form {
            div.alert.alert-danger role="alert" {
                "Nothing was saved: " (errs.len()) " problem(s)."
                @for (_, m) in errs.iter().filter(|(n, _)| n.is_empty()) { " " (m) }
            }
        }
        div.row.g-4 {
            div.col-12.col-xl-7 {
                form.card.card-body method="post" action={ (base) "/edit" } data-edit-form novalidate {
                    (csrf_field(s))
                    (form_fields(&cx, c, &doc, false))
                    div.d-flex.gap-2 {
                        button.btn.btn-primary type="submit" { "Save" }
                        a.btn.btn-outline-secondary href=(base) { "Cancel" }
                    }
                }
            }
            div.col-12.col-xl-5 {
                section.card #raw aria-labelledby="raw-title" {
                    div.card-header { h2.h6.mb-0 #raw-title { "Raw JSON" } }
                    form.card-body method="post" action={ (base) "/save_json" } data-json-editor {
                        (csrf_field(s))
                        label.visually-hidden for="raw-json" { "The document as JSON" }
                        textarea.form-control.font-monospace.raw-json.is-invalid[failed.raw.is_some()] #raw-json name="json" rows="24" spellcheck="false"
                            aria-describedby="raw-error" { (raw_text) }
                        div.invalid-feedback.d-block #raw-error role="alert" aria-live="assertive" {
                            @if let Some((_, err)) = failed.raw { (err) }
                        }
                        div.d-flex.gap-2.mt-2 {
                            button.btn.btn-primary type="submit" { "Save JSON" }
                            span.small.text-body-secondary.align-self-center { "Checked before saving; nothing is written if it does not parse or fit the schema." }
                        }
                    }
                }
            }
        }
    };
    let status = if failed.form.is_some() || failed.raw.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let title = format!("Edit {}", e.name);
    drop(lib);
    (
        status,
        page(
            s,
            &Page {
                title: &title,
                section: Some(d.key),
                scripts: &["editor.js"],
                flash: flash_of(q),
                refresh: None,
            },
            body,
        ),
    )
        .into_response()
}

pub async fn edit_form(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
) -> Response {
    render_edit(&s, c, &slug, &HashMap::new(), Failed::default()).await
}

pub async fn save_form(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let base = format!("/{}/{slug}", c.desc().singular);
    let (doc, errors) = {
        let lib = s.handle.library();
        let Some(mut doc) = lib.get(c, &slug).and_then(Entry::data) else {
            drop(lib);
            return not_found_page(&s, &format!("There is no {} '{slug}'.", c.desc().singular));
        };
        let errors = apply_form(&lib, c, &mut doc, &f, false);
        (doc, errors)
    };
    if !errors.is_empty() {
        if super::is_ajax(&headers) {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({"error": "nothing was saved", "fields": errors.iter().map(|(n, m)| json!({"field": n, "error": m})).collect::<Vec<_>>()})),
            )
                .into_response();
        }
        return render_edit(
            &s,
            c,
            &slug,
            &HashMap::new(),
            Failed {
                form: Some((&f, &errors)),
                raw: None,
            },
        )
        .await;
    }
    match run(
        &s,
        Command::Edit {
            category: c,
            slug: slug.clone(),
            doc,
        },
    )
    .await
    {
        Ok(o) => finish(
            &headers,
            &base,
            Ok((
                if o.events.is_empty() {
                    "No changes".to_string()
                } else {
                    "Saved".to_string()
                },
                json!({"saved": !o.events.is_empty()}),
            )),
        ),
        Err((status, msg)) => {
            let errors = vec![(String::new(), msg.clone())];
            if super::is_ajax(&headers) {
                return (status, axum::Json(json!({"error": msg}))).into_response();
            }
            render_edit(
                &s,
                c,
                &slug,
                &HashMap::new(),
                Failed {
                    form: Some((&f, &errors)),
                    raw: None,
                },
            )
            .await
        }
    }
}

/// Parses and checks raw JSON text: the document, or the message to show.
pub fn parse_raw(c: Category, text: &str) -> Result<Map<String, Value>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "Not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(doc) = v else {
        return Err("The document must be a JSON object ({ … })".into());
    };
    let errors = check_schema(c, &doc);
    if !errors.is_empty() {
        return Err(format!("Does not fit the schema: {}", errors.join("; ")));
    }
    Ok(doc)
}

pub async fn save_json(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let base = format!("/{}/{slug}", c.desc().singular);
    let text = field(&f, "json").unwrap_or_default().to_string();
    let result = match parse_raw(c, &text) {
        Ok(doc) => run(
            &s,
            Command::Edit {
                category: c,
                slug: slug.clone(),
                doc,
            },
        )
        .await
        .map_err(|(_, m)| m),
        Err(e) => Err(e),
    };
    match result {
        Ok(o) => finish(
            &headers,
            &base,
            Ok((
                if o.events.is_empty() {
                    "No changes".to_string()
                } else {
                    "Saved the JSON".to_string()
                },
                json!({"saved": !o.events.is_empty()}),
            )),
        ),
        Err(msg) => {
            if super::is_ajax(&headers) {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    axum::Json(json!({"error": msg})),
                )
                    .into_response();
            }
            render_edit(
                &s,
                c,
                &slug,
                &HashMap::new(),
                Failed {
                    form: None,
                    raw: Some((&text, &msg)),
                },
            )
            .await
        }
    }
}

pub async fn clone(
    State(s): State<AppState>,
    c: Category,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let base = format!("/{}/{slug}", c.desc().singular);
    let r = run(
        &s,
        Command::Clone {
            category: c,
            slug: slug.clone(),
            new_id: None,
            new_name: None,
        },
    )
    .await;
    match r {
        Ok(o) => {
            let new = o
                .events
                .iter()
                .find_map(|e| e.event().subject().map(|(_, s)| s.to_string()))
                .unwrap_or_default();
            let to = format!("/{}/{new}", c.desc().singular);
            if super::is_ajax(&headers) {
                axum::Json(json!({"slug": new, "url": to})).into_response()
            } else {
                Redirect::to(&with_flash(&to, true, &format!("Cloned from {slug}"))).into_response()
            }
        }
        Err(e) => finish(&headers, &base, Err(e)),
    }
}

async fn render_create(
    s: &AppState,
    c: Category,
    posted: Option<(&[(String, String)], &Errors)>,
) -> Response {
    let loras = loras_of(s, c).await;
    let samplers = sampler_lists(s);
    let lib = s.handle.library();
    let d = c.desc();
    let doc = blank(c);
    let no_errors = Vec::new();
    let cx = FormCtx {
        lib: &lib,
        loras: &loras,
        samplers: &samplers,
        errors: posted.map_or(&no_errors, |p| p.1),
        posted: posted.map(|p| p.0),
    };
    let action = if c == Category::Characters {
        "/create".to_string()
    } else {
        format!("/{}/create", d.singular)
    };
    let body = html! {
        nav aria-label="breadcrumb" {
            ol.breadcrumb.small.mb-2 {
                li.breadcrumb-item { a href={ "/" (d.key) } { (d.title) } }
                li.breadcrumb-item.active aria-current="page" { "New" }
            }
        }
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-2 {
            h1.h3.mb-0.me-auto { "New " (d.singular) }
            a.btn.btn-sm.btn-outline-info href={ "/" (d.singular) "/create/assistant" } { "Create with the assistant" }
        }
        @if let Some((_, errs)) = posted {
            div.alert.alert-danger role="alert" {
                "Nothing was created."
                @for (n, m) in errs.iter() { @if n.is_empty() { " " (m) } }
            }
        }
        form.card.card-body method="post" action=(action) novalidate {
            (csrf_field(s))
            (form_fields(&cx, c, &doc, true))
            div.d-flex.gap-2 {
                button.btn.btn-primary type="submit" { "Create" }
                a.btn.btn-outline-secondary href={ "/" (d.key) } { "Cancel" }
            }
        }
    };
    drop(lib);
    let status = if posted.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let title = format!("New {}", d.singular);
    (
        status,
        page(
            s,
            &Page {
                title: &title,
                section: Some(d.key),
                scripts: &["editor.js"],
                ..Page::default()
            },
            body,
        ),
    )
        .into_response()
}

pub async fn create_form(State(s): State<AppState>, c: Category) -> Response {
    render_create(&s, c, None).await
}

pub async fn create_character_form(s: State<AppState>) -> Response {
    create_form(s, Category::Characters).await
}

pub async fn create_character(s: State<AppState>, h: HeaderMap, f: FormPairs) -> Response {
    create(s, Category::Characters, h, f).await
}

pub async fn create(
    State(s): State<AppState>,
    c: Category,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let (doc, errors) = {
        let lib = s.handle.library();
        let mut doc = blank(c);
        let errors = apply_form(&lib, c, &mut doc, &f, true);
        (doc, errors)
    };
    let errors = if errors.is_empty() {
        match run(
            &s,
            Command::Create {
                category: c,
                doc,
                source: Source::Manual,
            },
        )
        .await
        {
            Ok(o) => {
                let new = o
                    .events
                    .iter()
                    .find_map(|e| e.event().subject().map(|(_, s)| s.to_string()))
                    .unwrap_or_default();
                let to = format!("/{}/{new}", c.desc().singular);
                return if super::is_ajax(&headers) {
                    axum::Json(json!({"slug": new, "url": to})).into_response()
                } else {
                    Redirect::to(&with_flash(&to, true, "Created")).into_response()
                };
            }
            Err((_, msg)) => vec![(String::new(), msg)],
        }
    } else {
        errors
    };
    if super::is_ajax(&headers) {
        return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"error": "nothing was created", "fields": errors.iter().map(|(n, m)| json!({"field": n, "error": m})).collect::<Vec<_>>()}))).into_response();
    }
    render_create(&s, c, Some((&f, &errors))).await
}

// ---- delete -----------------------------------------------------------------------------

fn category_of_resource(key: &str) -> Option<Category> {
    Category::parse(key).or_else(|| Category::from_singular(key))
}

/// What a hard delete would also remove: `Ok(path)` of the LoRA file, or why it cannot.
fn hard_target(s: &AppState, e: &Entry) -> Result<Option<String>, String> {
    let Some(lora) = crate::library::models::lora_name(e) else {
        return Ok(None);
    };
    let Some(root) = &s.config.loras else {
        return Err(format!(
            "the LoRA '{lora}' would be removed, but no LoRA folder is configured (--loras), so only a soft delete is possible"
        ));
    };
    crate::library::files::resolve_inside(root, &lora)
        .map(|p| Some(p.display().to_string()))
        .map_err(|e| {
            format!("the LoRA '{lora}' is not inside the LoRA folder ({e}), so it is never removed")
        })
}

/// The delete dialog: exactly what a soft and a hard delete remove.
pub fn delete_dialog(s: &AppState, _lib: &Library, c: Category, e: &Entry, modal: bool) -> Markup {
    let d = c.desc();
    let hard = hard_target(s, e);
    html! {
        form method="post" action={ "/resource/" (d.key) "/" (e.slug) "/delete" } {
            (csrf_field(s))
            div.modal-header[modal] {
                h2.modal-title.h5 #delete-title { "Delete " (e.name) "?" }
                @if modal { button.btn-close type="button" data-bs-dismiss="modal" aria-label="Close" {} }
            }
            div.modal-body[modal] {
                div.form-check.mb-2 {
                    input.form-check-input type="radio" name="mode" value="soft" id={ "del-soft-" (e.slug) } checked;
                    label.form-check-label for={ "del-soft-" (e.slug) } {
                        strong { "Soft delete" } ": removes the file " code { "data/" (d.dir) "/" (e.file) } "."
                    }
                }
                div.form-check.mb-2 {
                    input.form-check-input type="radio" name="mode" value="hard" id={ "del-hard-" (e.slug) }
                        disabled[!matches!(hard, Ok(Some(_)))];
                    label.form-check-label for={ "del-hard-" (e.slug) } {
                        strong { "Hard delete" } ": also removes "
                        @match &hard {
                            Ok(Some(p)) => { "the LoRA file " code { (p) } "." }
                            Ok(None) => { "nothing more: this " (d.singular) " names no LoRA file." }
                            Err(why) => { "nothing: " (why) "." }
                        }
                    }
                }
                p.small.text-body-secondary.mb-0 {
                    "Covers and generated images stay on disk, and the ledger keeps the entry's history, so it can be restored."
                }
            }
            div.modal-footer[modal].mt-3[!modal] {
                @if modal { button.btn.btn-secondary type="button" data-bs-dismiss="modal" { "Keep it" } }
                @else { a.btn.btn-secondary href={ "/" (d.singular) "/" (e.slug) } { "Keep it" } }
                button.btn.btn-danger type="submit" { "Delete" }
            }
        }
    }
}

pub async fn delete_page(
    State(s): State<AppState>,
    Path((category, slug)): Path<(String, String)>,
) -> Response {
    let Some(c) = category_of_resource(&category) else {
        return not_found_page(&s, &format!("There is no category '{category}'."));
    };
    let lib = s.handle.library();
    let Some(e) = lib.get(c, &slug) else {
        drop(lib);
        return not_found_page(&s, &format!("There is no {} '{slug}'.", c.desc().singular));
    };
    let body = html! { div.card.card-body.delete-page { (delete_dialog(&s, &lib, c, e, false)) } };
    let title = format!("Delete {}", e.name);
    drop(lib);
    page(
        &s,
        &Page {
            title: &title,
            section: Some(c.key()),
            ..Page::default()
        },
        body,
    )
    .into_response()
}

pub async fn delete(
    State(s): State<AppState>,
    Path((category, slug)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let Some(c) = category_of_resource(&category) else {
        return finish(
            &headers,
            "/",
            Err((
                StatusCode::NOT_FOUND,
                format!("unknown category '{category}'"),
            )),
        );
    };
    let hard = field(&f, "mode") == Some("hard");
    let (file, name) = match s.handle.library().get(c, &slug) {
        Some(e) => (e.file.clone(), e.name.clone()),
        None => {
            return finish(
                &headers,
                &format!("/{}", c.key()),
                Err((
                    StatusCode::NOT_FOUND,
                    format!("no {} with slug '{slug}'", c.desc().singular),
                )),
            );
        }
    };
    let r = run(
        &s,
        Command::Delete {
            category: c,
            slug: slug.clone(),
            hard,
        },
    )
    .await;
    let back = if r.is_ok() {
        format!("/{}", c.key())
    } else {
        format!("/{}/{slug}", c.desc().singular)
    };
    finish(
        &headers,
        &back,
        r.map(|o| {
            (
                format!(
                    "Deleted {name} (data/{}/{file}{}){}",
                    c.desc().dir,
                    if hard { " and its LoRA file" } else { "" },
                    if o.warnings.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", o.warnings.join("; "))
                    }
                ),
                json!({"deleted": slug, "hard": hard}),
            )
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_blank_document_fits_its_schema_once_named() {
        for c in Category::ALL {
            let mut doc = blank(c);
            doc.insert(c.desc().id_field.into(), "x".into());
            assert_eq!(check_schema(c, &doc), Vec::<String>::new(), "{c}");
        }
    }

    #[test]
    fn schema_errors_name_the_key_and_unknown_keys_pass() {
        let c = Category::Characters;
        let cases = [
            (
                json!({"character_id": "a", "tags": "x"}),
                "\"tags\" must be a list of text",
            ),
            (
                json!({"character_id": "a", "identity": []}),
                "\"identity\" must be an object",
            ),
            (
                json!({"character_id": "a", "identity": {"hair": 3}}),
                "\"identity.hair\" must be text",
            ),
            (
                json!({"character_id": "a", "lora": {"lora_weight": "heavy"}}),
                "\"lora\" must be an object",
            ),
            (
                json!({"character_id": "", "x": 1}),
                "\"character_id\" must be a non-empty string",
            ),
            (
                json!({"character_id": "a", "wardrobe": {"a": {}, "b": "x"}}),
                "\"wardrobe\" must be an object of outfits",
            ),
        ];
        for (doc, want) in cases {
            let errs = check_schema(c, doc.as_object().unwrap());
            assert!(errs.iter().any(|e| e.contains(want)), "{doc}: {errs:?}");
        }
        let ok = json!({"character_id": "a", "my_own_key": {"anything": [1, 2]}, "lora": {"lora_weight": "0.8"}});
        assert!(check_schema(c, ok.as_object().unwrap()).is_empty());
        let ck = json!({"checkpoint_path": "a.safetensors", "steps": 2.5});
        assert!(
            check_schema(Category::Checkpoints, ck.as_object().unwrap())[0]
                .contains("whole number")
        );
    }

    #[test]
    fn raw_json_errors_say_where() {
        let e = parse_raw(Category::Styles, "{\n  \"style_id\": \"a\",\n}").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(
            parse_raw(Category::Styles, "[1]")
                .unwrap_err()
                .contains("object")
        );
        assert!(
            parse_raw(Category::Styles, "{\"style_id\": \"a\", \"style\": 1}")
                .unwrap_err()
                .contains("schema")
        );
        let doc = parse_raw(Category::Styles, "{\"style_id\": \"a\", \"extra\": true}").unwrap();
        assert_eq!(doc["extra"], true);
    }

    #[test]
    fn forms_fill_documents_by_kind_and_keep_unknown_keys() {
        let lib = Library::default();
        let mut doc = blank(Category::Detailers);
        doc.insert("mine".into(), json!({"keep": 1}));
        let f: Vec<(String, String)> = [
            ("schema", "1"),
            ("f:detailer_name", "Shiny Eyes"),
            ("f:prompt", "sparkling eyes, eyelashes\nreflection"),
            ("f:focus:face", "on"),
            ("f:lora:lora_name", "Illustrious/Detailers/x.safetensors"),
            ("f:lora:lora_weight", "0.6"),
            ("f:lora:lora_triggers", " shiny "),
            ("f:tags", "eyes, detail"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let errs = apply_form(&lib, Category::Detailers, &mut doc, &f, true);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            doc["prompt"],
            json!(["sparkling eyes", "eyelashes", "reflection"])
        );
        assert_eq!(doc["focus"], json!({"face": true, "hands": false}));
        assert_eq!(doc["lora"]["lora_weight"], json!(0.6));
        assert_eq!(doc["lora"]["lora_triggers"], "shiny");
        assert_eq!(doc["tags"], json!(["eyes", "detail"]));
        assert_eq!(doc["mine"], json!({"keep": 1}));
        assert_eq!(doc["detailer_name"], "Shiny Eyes");
    }

    #[test]
    fn form_errors_are_per_field_and_refs_must_exist() {
        let lib = Library::default();
        let mut doc = blank(Category::Checkpoints);
        let f: Vec<(String, String)> = [
            ("schema", "1"),
            ("f:checkpoint_name", ""),
            ("f:steps", "many"),
            ("f:cfg", "4.5"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let errs = apply_form(&lib, Category::Checkpoints, &mut doc, &f, false);
        let names: Vec<&str> = errs.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"f:checkpoint_name"), "{errs:?}");
        assert!(names.contains(&"f:steps"), "{errs:?}");
        assert_eq!(doc["cfg"], json!(4.5));
        let mut look = blank(Category::Looks);
        let f: Vec<(String, String)> = [
            ("schema", "1"),
            ("f:look_name", "L"),
            ("f:character_id", "ghost"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let errs = apply_form(&lib, Category::Looks, &mut look, &f, false);
        assert!(errs[0].1.contains("no character 'ghost'"), "{errs:?}");
        assert!(!apply_form(&lib, Category::Looks, &mut look, &[], false).is_empty());
    }

    #[test]
    fn wardrobe_fields_edit_every_outfit() {
        let lib = Library::default();
        let mut doc = blank(Category::Characters);
        doc["wardrobe"]["maid"] = json!({"top": "apron"});
        let f: Vec<(String, String)> = [
            ("schema", "1"),
            ("f:character_name", "A"),
            ("w:default:top", "shirt"),
            ("w:maid:top", " dress "),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert!(apply_form(&lib, Category::Characters, &mut doc, &f, false).is_empty());
        assert_eq!(doc["wardrobe"]["default"]["top"], "shirt");
        assert_eq!(doc["wardrobe"]["maid"]["top"], "dress");
    }

    #[test]
    fn text_fields_lose_the_separator_autocomplete_leaves() {
        for (raw, want) in [
            ("silver hair, long hair, ", "silver hair, long hair"),
            ("  smile ,,  ", "smile"),
            ("plain", "plain"),
            (", ", ""),
        ] {
            assert_eq!(super::tidy(raw), want, "{raw:?}");
        }
    }
}
