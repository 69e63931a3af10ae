//! "Create with the assistant" pages: a description in (`/<singular>/create/assistant`), the
//! draft shown for review and editing (`/assistant/drafts/{id}`: each field editable, tag
//! fields with autocomplete, or the raw JSON), then accepted into the library; and a bulk
//! run's live progress (`/assistant/bulk/{batch}`). Everything works without JavaScript;
//! `static/js/assistant.js` drafts in place and follows runs live.

use super::layout;
use crate::library::category::{Category, DESCRIPTORS};
use crate::web::AppState;
use crate::web::assistant::{self as api, StoredDraft};
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Map, Value};

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/assistant/drafts/{id}", get(review))
        .route("/assistant/drafts/{id}/accept", post(accept_form))
        .route("/assistant/bulk/{batch}", get(bulk_page))
        .route("/assistant/bulk/{batch}/cancel", post(cancel_form));
    for d in DESCRIPTORS.iter() {
        let c = d.category;
        r = r.route(
            &format!("/{}/create/assistant", d.singular),
            get(move |s: State<AppState>| create_page(s, c)).post(
                move |s: State<AppState>, f: Form<Vec<(String, String)>>| create_form(s, f, c),
            ),
        );
    }
    r
}

/// What every form and page of this family needs from the app: the CSRF field and the
/// versioned script tags.
pub struct Frame {
    pub csrf: Markup,
    pub scripts: Markup,
}

impl Frame {
    pub fn of(s: &AppState) -> Frame {
        Frame {
            csrf: crate::web::guard::csrf_field(s),
            // The layout loads tag-autocomplete.js on every page.
            scripts: html! {
                script src=(s.assets.url("js/assistant.js")) defer {}
            },
        }
    }
}

/// A page that only says something (errors of form posts).
pub fn message_page(s: &AppState, status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        layout(
            s,
            title,
            html! {
                div.container.py-3 {
                    h1.h3 { (title) }
                    div.alert.alert-warning role="alert" { (message) }
                    p { a href="/" { "Back to the library" } }
                }
            },
        ),
    )
        .into_response()
}

/// The description form.
pub fn create_body(f: &Frame, c: Category, request: &str, error: Option<&str>) -> Markup {
    let d = c.desc();
    html! {
        div.container.py-3.assistant data-assistant-create=(d.key) {
            h1.h3 { "Create " (d.singular) " with the assistant" }
            p.text-muted {
                "Describe the " (d.singular) ". The assistant drafts it with Danbooru tags it has checked; "
                "you review and edit the draft before anything is saved."
            }
            @if let Some(e) = error {
                div.alert.alert-danger role="alert" data-assistant-error { (e) }
            }
            form method="post" action={ "/" (d.singular) "/create/assistant" } data-assistant-form {
                (f.csrf)
                input type="hidden" name="category" value=(d.key);
                div.mb-3 {
                    label.form-label for="assistant-request" { "Description" }
                    textarea.form-control id="assistant-request" name="request" rows="5" required
                        maxlength="8000" placeholder={ "e.g. a " (d.singular) " for …" } { (request) }
                }
                button.btn.btn-primary type="submit" data-busy-label="Drafting…" { "Draft it" }
                " "
                @if d.lora_dir.is_some() {
                    span.text-muted.small {
                        "Or draft one entry for every unused LoRA file of this category: "
                    }
                }
            }
            @if d.lora_dir.is_some() {
                form.mt-2 method="post" action={ "/" (d.key) "/bulk_create" } {
                    (f.csrf)
                    button.btn.btn-outline-secondary.btn-sm type="submit" { "Bulk create from LoRA files" }
                }
            }
            div data-assistant-status role="status" aria-live="polite" {}
        }
        (f.scripts)
    }
}

async fn create_page(State(s): State<AppState>, c: Category) -> Response {
    layout(
        &s,
        &format!("Create {} with the assistant", c.desc().singular),
        create_body(&Frame::of(&s), c, "", None),
    )
    .into_response()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Without JavaScript: draft, then show the review page.
async fn create_form(
    State(s): State<AppState>,
    Form(form): Form<Vec<(String, String)>>,
    c: Category,
) -> Response {
    let request = field(&form, "request")
        .unwrap_or_default()
        .trim()
        .to_string();
    let title = format!("Create {} with the assistant", c.desc().singular);
    if request.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            layout(
                &s,
                &title,
                create_body(&Frame::of(&s), c, "", Some("Describe what to draft.")),
            ),
        )
            .into_response();
    }
    match api::make_draft(&s, c, &request).await {
        Ok((id, _)) => {
            Redirect::to(&format!("/assistant/drafts/{}", ulid::Ulid::from(id))).into_response()
        }
        Err(resp) => {
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
                .await
                .unwrap_or_default();
            let msg = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(String::from))
                .unwrap_or_else(|| "the draft failed".into());
            let body = create_body(&Frame::of(&s), c, &request, Some(&msg));
            (status, layout(&s, &title, body)).into_response()
        }
    }
}

/// Whether a field holds prompt tags (gets autocomplete): any string except ids, names, file
/// paths and single words such as colours.
fn is_tag_field(path: &str, c: Category) -> bool {
    let d = c.desc();
    let last = path.rsplit('/').next().unwrap_or(path);
    !(last == d.id_field
        || last == d.name_field
        || last.ends_with("_id")
        || last == "lora_name"
        || last.ends_with("_color")
        || matches!(
            last,
            "checkpoint_path"
                | "vae"
                | "sampler_name"
                | "scheduler"
                | "orientation"
                | "solo_focus"
                | "active_outfit"
        ))
}

fn label_of(path: &str) -> String {
    path.trim_start_matches('/')
        .replace('/', " › ")
        .replace('_', " ")
}

/// One editable row per leaf of the document, named by its JSON pointer.
fn leaf_inputs(c: Category, prefix: &str, v: &Value, out: &mut Vec<Markup>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                leaf_inputs(c, &format!("{prefix}/{k}"), child, out);
            }
        }
        _ => {
            let id = format!("f{}", prefix.replace(['/', ' '], "-"));
            let label = label_of(prefix);
            let row = match v {
                Value::Bool(b) => html! {
                    div.form-check.mb-2 {
                        input type="hidden" name={ "b" (prefix) } value="0";
                        input.form-check-input type="checkbox" id=(id) name={ "b" (prefix) } value="1" checked[*b];
                        label.form-check-label for=(id) { (label) }
                    }
                },
                Value::Number(n) => html! {
                    div.mb-2 {
                        label.form-label.small for=(id) { (label) }
                        input.form-control.form-control-sm type="number" step="any" id=(id) name={ "n" (prefix) } value=(n);
                    }
                },
                Value::Array(a) if a.iter().all(Value::is_string) => html! {
                    div.mb-2 {
                        label.form-label.small for=(id) { (label) " (comma-separated)" }
                        input.form-control.form-control-sm type="text" id=(id) name={ "l" (prefix) }
                            value=(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                            data-tag-autocomplete[is_tag_field(prefix, c)] autocomplete="off";
                    }
                },
                Value::String(s) => html! {
                    div.mb-2 {
                        label.form-label.small for=(id) { (label) }
                        input.form-control.form-control-sm type="text" id=(id) name={ "s" (prefix) } value=(s)
                            data-tag-autocomplete[is_tag_field(prefix, c)] autocomplete="off";
                    }
                },
                // null and mixed lists: edit them in the JSON.
                other => html! {
                    div.mb-2 {
                        span.form-label.small { (label) }
                        code.d-block.small { (other.to_string()) }
                    }
                },
            };
            out.push(row);
        }
    }
}

/// The review page of a draft.
pub fn review_body(f: &Frame, d: &StoredDraft, error: Option<&str>) -> Markup {
    let c = d.made.category;
    let desc = c.desc();
    let id = ulid::Ulid::from(d.id).to_string();
    let doc = Value::Object(d.document());
    let mut rows = Vec::new();
    leaf_inputs(c, "", &doc, &mut rows);
    let pretty = serde_json::to_string_pretty(&doc).unwrap_or_default();
    let calls = d.tool_calls();
    html! {
        div.container.py-3.assistant {
            h1.h3 { "Review the " (desc.singular) " draft" }
            dl.row.small {
                dt.col-sm-2 { "Asked" } dd.col-sm-10 { (d.made.request) }
                dt.col-sm-2 { "Model" } dd.col-sm-10 { code { (d.made.model) } }
                @if let Some(l) = &d.made.lora { dt.col-sm-2 { "LoRA" } dd.col-sm-10 { code { (l) } } }
            }
            @if let Some(e) = error {
                div.alert.alert-danger role="alert" { (e) }
            }
            @if let Some(slug) = &d.entry {
                div.alert.alert-success role="status" {
                    "Accepted as "
                    a href={ "/" (desc.singular) "/" (slug) } { (slug) }
                    "."
                }
            } @else {
                form method="post" action={ "/assistant/drafts/" (id) "/accept" } data-draft-fields {
                    (f.csrf)
                    @for r in &rows { (r) }
                    button.btn.btn-primary type="submit" { "Save " (desc.singular) }
                }
                details.mt-3 {
                    summary { "Edit the JSON instead" }
                    form method="post" action={ "/assistant/drafts/" (id) "/accept" } {
                        (f.csrf)
                        textarea.form-control.font-monospace name="document" rows="18"
                            aria-label="Draft document as JSON" { (pretty) }
                        button.btn.btn-outline-primary.mt-2 type="submit" { "Save from JSON" }
                    }
                }
            }
            details.mt-3 {
                summary { "Tool calls (" (calls.as_array().map_or(0, Vec::len)) ")" }
                ol.small {
                    @for call in calls.as_array().into_iter().flatten() {
                        li {
                            code { (call["tool"].as_str().unwrap_or("?")) }
                            " " (call["arguments"].to_string())
                            @if call["error"].as_bool() == Some(true) { " — " strong { "error" } }
                            pre.small.mb-1 { (call["result"].to_string()) }
                        }
                    }
                }
            }
        }
        (f.scripts)
    }
}

async fn review(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = ulid::Ulid::from_string(&id).map(u128::from) else {
        return message_page(
            &s,
            StatusCode::NOT_FOUND,
            "No such draft",
            "That is not a draft id.",
        );
    };
    match api::load_draft(&s, id).await {
        Ok(d) => layout(&s, "Review draft", review_body(&Frame::of(&s), &d, None)).into_response(),
        Err(e) => message_page(&s, e.status, "No such draft", &e.message),
    }
}

/// Sets the value at a JSON pointer that exists in `doc`.
fn set_at(doc: &mut Value, pointer: &str, v: Value) {
    if let Some(slot) = doc.pointer_mut(pointer) {
        *slot = v;
    }
}

/// The document a review form describes: the draft with the posted fields laid over it.
pub fn document_from_form(
    draft: &Map<String, Value>,
    form: &[(String, String)],
) -> Result<Map<String, Value>, String> {
    if let Some(raw) = field(form, "document") {
        return match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err("the JSON must be an object".into()),
            Err(e) => Err(format!("the JSON is not valid: {e}")),
        };
    }
    let mut doc = Value::Object(draft.clone());
    let mut seen = std::collections::HashSet::new();
    for (k, v) in form.iter().rev() {
        if !seen.insert(k.clone()) || k.len() < 2 {
            continue;
        }
        let (kind, pointer) = k.split_at(1);
        if !pointer.starts_with('/') || doc.pointer(pointer).is_none() {
            continue;
        }
        let value = match kind {
            // Autocomplete leaves ", " after the last tag it completes.
            "s" => Value::String(v.trim().trim_end_matches(',').trim_end().to_string()),
            "b" => Value::Bool(v == "1"),
            "l" => Value::Array(
                v.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| Value::String(t.to_string()))
                    .collect(),
            ),
            "n" => {
                let t = v.trim();
                match (t.parse::<i64>(), t.parse::<f64>()) {
                    (Ok(i), _) => Value::from(i),
                    (_, Ok(f)) => serde_json::Number::from_f64(f)
                        .map(Value::Number)
                        .ok_or_else(|| format!("{} is not a number", label_of(pointer)))?,
                    _ => return Err(format!("{} must be a number, not '{t}'", label_of(pointer))),
                }
            }
            _ => continue,
        };
        set_at(&mut doc, pointer, value);
    }
    match doc {
        Value::Object(m) => Ok(m),
        _ => Err("the draft is not an object".into()),
    }
}

async fn accept_form(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let Ok(id) = ulid::Ulid::from_string(&id).map(u128::from) else {
        return message_page(
            &s,
            StatusCode::NOT_FOUND,
            "No such draft",
            "That is not a draft id.",
        );
    };
    let d = match api::load_draft(&s, id).await {
        Ok(d) => d,
        Err(e) => return message_page(&s, e.status, "No such draft", &e.message),
    };
    let doc = match document_from_form(&d.document(), &form) {
        Ok(doc) => doc,
        Err(e) => {
            let body = review_body(&Frame::of(&s), &d, Some(&e));
            return (StatusCode::BAD_REQUEST, layout(&s, "Review draft", body)).into_response();
        }
    };
    match api::accept(&s, id, Some(doc)).await {
        Ok((slug, _)) => {
            Redirect::to(&format!("/{}/{slug}", d.made.category.desc().singular)).into_response()
        }
        Err(e) => {
            let body = review_body(&Frame::of(&s), &d, Some(&e.message));
            (e.status, layout(&s, "Review draft", body)).into_response()
        }
    }
}

/// A bulk run's progress.
pub fn bulk_body(f: &Frame, v: &Value) -> Markup {
    let batch = v["batch"].as_str().unwrap_or_default();
    let running = v["status"] == "running";
    html! {
        @if running {
            // Without JavaScript the page refreshes itself while the run goes on.
            noscript { meta http-equiv="refresh" content="5"; }
        }
        div.container.py-3.assistant data-bulk-run=(batch) {
            h1.h3 { "Bulk create: " (v["category"].as_str().unwrap_or_default()) }
            p data-bulk-summary role="status" aria-live="polite" {
                (v["status"].as_str().unwrap_or_default()) " — "
                (v["created"]) " created, " (v["failed"]) " failed, " (v["pending"]) " to go of " (v["total"])
            }
            p.small.text-muted data-bulk-current {
                @if let Some(c) = v["current"].as_object() {
                    (c.get("lora").and_then(Value::as_str).unwrap_or_default()) ": "
                    (c.get("note").and_then(Value::as_str).unwrap_or_default())
                }
            }
            table.table.table-sm {
                thead { tr { th { "LoRA file" } th { "Status" } th { "Entry or error" } } }
                tbody data-bulk-items {
                    @for item in v["items"].as_array().into_iter().flatten() {
                        tr {
                            td { code { (item["lora"].as_str().unwrap_or_default()) } }
                            td { (item["status"].as_str().unwrap_or_default()) }
                            td {
                                @if let Some(slug) = item["slug"].as_str() {
                                    (slug) " ("
                                    a href={ "/assistant/drafts/" (item["draft_id"].as_str().unwrap_or_default()) } { "draft" }
                                    ")"
                                } @else if let Some(e) = item["error"].as_str() {
                                    (e)
                                }
                            }
                        }
                    }
                }
            }
            @if running {
                form method="post" action={ "/assistant/bulk/" (batch) "/cancel" } {
                    (f.csrf)
                    button.btn.btn-outline-danger.btn-sm type="submit" { "Stop the run" }
                }
            }
        }
        (f.scripts)
    }
}

async fn bulk_page(State(s): State<AppState>, Path(batch): Path<String>) -> Response {
    let Ok(id) = ulid::Ulid::from_string(&batch).map(u128::from) else {
        return message_page(
            &s,
            StatusCode::NOT_FOUND,
            "No such run",
            "That is not a bulk run id.",
        );
    };
    match api::bulk_status(&s, id) {
        Ok(v) => layout(&s, "Bulk create", bulk_body(&Frame::of(&s), &v)).into_response(),
        Err(e) => message_page(&s, e.status, "No such run", &e.message),
    }
}

async fn cancel_form(State(s): State<AppState>, Path(batch): Path<String>) -> Response {
    let Ok(id) = ulid::Ulid::from_string(&batch).map(u128::from) else {
        return message_page(
            &s,
            StatusCode::NOT_FOUND,
            "No such run",
            "That is not a bulk run id.",
        );
    };
    let r = s
        .handle
        .run(
            crate::store::event::Origin::Web,
            crate::handle::Request::Command(crate::library::command::Command::CancelBulk {
                batch: id,
            }),
        )
        .await;
    match r {
        Ok(_) => Redirect::to(&format!("/assistant/bulk/{batch}")).into_response(),
        Err(e) => {
            let e = crate::web::ApiError::from(e);
            message_page(&s, e.status, "Bulk create", &e.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::Draft;
    use serde_json::json;

    fn frame() -> Frame {
        Frame {
            csrf: html! { input type="hidden" name="csrf" value="tok"; },
            scripts: html! { script src="/static/js/assistant.js?v=1" defer {} },
        }
    }

    fn draft(doc: Value) -> StoredDraft {
        StoredDraft {
            id: 42,
            seq: 9,
            at: 0,
            made: Draft {
                category: Category::Outfits,
                model: "test/m".into(),
                request: "a maid".into(),
                tool_calls: r#"[{"tool":"validate_tags","arguments":{"tags":["apron"]},"result":{"valid":["apron"]},"error":false}]"#.into(),
                document: doc.to_string(),
                batch: None,
                lora: None,
            },
            entry: None,
        }
    }

    #[test]
    fn the_create_page_posts_a_description_and_offers_bulk_create() {
        let html = create_body(&frame(), Category::Outfits, "", None).into_string();
        assert!(
            html.contains(r#"action="/outfit/create/assistant""#),
            "{html}"
        );
        assert!(html.contains(r#"name="request""#));
        assert!(html.contains(r#"action="/outfits/bulk_create""#));
        assert!(!html.contains("style=") && !html.contains("onclick"));
        assert_eq!(
            html.matches(r#"name="csrf" value="tok""#).count(),
            2,
            "every form has the token"
        );
        let presets = create_body(&frame(), Category::Presets, "x", Some("no LLM")).into_string();
        assert!(
            !presets.contains("bulk_create"),
            "presets have no LoRA folder"
        );
        assert!(presets.contains("no LLM"));
    }

    #[test]
    fn the_review_page_edits_every_field_with_tag_autocomplete_where_tags_go() {
        let d = draft(json!({"outfit_id": "maid", "outfit_name": "Maid",
            "wardrobe": {"top": "apron", "bottom": ""},
            "lora": {"lora_name": "", "lora_weight": 0.8, "lora_triggers": ""},
            "tags": ["uniform"], "focus": {"face": true}}));
        let html = review_body(&frame(), &d, None).into_string();
        assert!(
            html.contains(r#"name="s/wardrobe/top" value="apron" data-tag-autocomplete"#),
            "{html}"
        );
        assert!(
            html.contains(r#"name="s/outfit_id" value="maid" autocomplete="off""#),
            "ids get no autocomplete: {html}"
        );
        assert!(html.contains(r#"name="n/lora/lora_weight""#));
        assert!(html.contains(r#"name="l/tags" value="uniform""#));
        assert!(html.contains(r#"name="b/focus/face" value="1" checked"#));
        assert!(html.contains("validate_tags"));
        assert!(
            html.contains(r#"action="/assistant/drafts/0000000000000000000000001A/accept""#),
            "{html}"
        );
    }

    #[test]
    fn the_form_lays_edits_over_the_draft() {
        let doc = json!({"outfit_id": "maid", "wardrobe": {"top": "apron"}, "lora": {"lora_weight": 0.8},
                         "tags": ["a"], "focus": {"face": true}, "x": null});
        let m = doc.as_object().unwrap();
        let form: Vec<(String, String)> = [
            ("s/wardrobe/top", " white apron, "),
            ("n/lora/lora_weight", "0.65"),
            ("l/tags", "b, c,"),
            ("b/focus/face", "0"),
            ("s/not/there", "ignored"),
            ("s/outfit_id", "maid2"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let out = document_from_form(m, &form).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"outfit_id": "maid2", "wardrobe": {"top": "white apron"}, "lora": {"lora_weight": 0.65},
                   "tags": ["b", "c"], "focus": {"face": false}, "x": null})
        );
        let checked = vec![
            ("b/focus/face".to_string(), "0".to_string()),
            ("b/focus/face".to_string(), "1".to_string()),
        ];
        assert_eq!(
            document_from_form(m, &checked).unwrap()["focus"]["face"],
            true
        );
        let bad = vec![("n/lora/lora_weight".to_string(), "heavy".to_string())];
        assert!(
            document_from_form(m, &bad)
                .unwrap_err()
                .contains("must be a number")
        );
        let raw = vec![("document".to_string(), "{\"a\": 1}".to_string())];
        assert_eq!(
            Value::Object(document_from_form(m, &raw).unwrap()),
            json!({"a": 1})
        );
        let raw = vec![("document".to_string(), "[1]".to_string())];
        assert!(document_from_form(m, &raw).is_err());
    }

    #[test]
    fn a_bulk_page_lists_items_and_refreshes_only_while_running() {
        let v = json!({"batch": "B", "category": "outfits", "status": "running", "created": 1, "failed": 0,
            "pending": 1, "total": 2, "current": {"lora": "x.safetensors", "note": "tool search_tags"},
            "items": [{"lora": "a.safetensors", "status": "created", "slug": "a", "draft_id": "D"},
                      {"lora": "x.safetensors", "status": "pending"}]});
        let html = bulk_body(&frame(), &v).into_string();
        assert!(html.contains("http-equiv=\"refresh\""));
        assert!(html.contains("tool search_tags"));
        assert!(html.contains(r#"href="/assistant/drafts/D""#));
        assert!(html.contains("/assistant/bulk/B/cancel"));
        let mut done = v.clone();
        done["status"] = "done".into();
        let html = bulk_body(&frame(), &done).into_string();
        assert!(!html.contains("refresh") && !html.contains("cancel"));
    }
}
