//! The history pages: `/history` (the event log with filters, paged, each event expandable),
//! restore with its preview and undo, deleted entries with undelete, stale covers per
//! category, each entry's `/<singular>/<slug>/history` (versions, who made them, field-level
//! diffs side by side, restore-this-version, images per version), and audits of jobs and
//! images (`/audit/…`) with recipe diffs and "run again". Plain HTML forms; no script needed.

use crate::history::audit::{self, Again};
use crate::history::diff::{Change, FieldDiff};
use crate::history::{self, View, log, stale};
use crate::library::category::{Category, DESCRIPTORS, is_slug};
use crate::library::command::Command;
use crate::library::projection::{Entry, Library};
use crate::store::event::{Event, KINDS, Origin, Stored, kind_names, ulid_text};
use crate::web::history_api::{do_regenerate, do_restore, do_run_again, do_undelete, with_view};
use crate::web::{ApiError, AppState};
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::Value;
use std::collections::HashMap;

type Q = Query<HashMap<String, String>>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/history", get(log_page))
        .route("/history/restore", get(restore_preview).post(restore_post))
        .route("/history/restored/{seq}", get(restored_page))
        .route("/history/deleted", get(deleted_page))
        .route(
            "/history/deleted/{category}/{slug}/undelete",
            post(undelete_post),
        )
        .route("/history/stale", get(stale_page))
        .route(
            "/history/stale/{category}/regenerate",
            post(regenerate_post),
        )
        .route("/{singular}/{slug}/history", get(entry_page))
        .route(
            "/{singular}/{slug}/history/restore",
            post(entry_restore_post),
        )
        .route("/audit", get(audit_lookup))
        .route("/audit/diff", get(audit_diff_page))
        .route("/audit/{job}", get(audit_page))
        .route("/audit/{job}/again", post(again_post))
}

// ---- shared pieces ---------------------------------------------------------------------

/// The CSRF field every form carries.
fn csrf(s: &AppState) -> Markup {
    crate::web::guard::csrf_field(s)
}

/// The badge a gallery card and an entry page show when the entry's cover was made from an
/// older version of its text (`history::stale`), linking to the entry's history.
pub fn stale_badge(lib: &Library, c: Category, e: &Entry) -> Markup {
    html! {
        @if stale::entry_is_stale(lib, e) {
            a.badge.text-bg-warning.stale-badge href=(entry_history_link(c, &e.slug))
                title="The cover was made from an older version of this entry" { "stale cover" }
        }
    }
}

/// The page frame: the layout (History marked in the navbar), this family's stylesheet and
/// its tabs.
fn page(s: &AppState, title: &str, active: &str, body: Markup) -> Markup {
    super::page(
        s,
        &super::Page {
            title,
            section: Some("history"),
            ..super::Page::default()
        },
        html! {
            link rel="stylesheet" href=(s.assets.url("css/history.css"));
            div.gaze-history {
                ul.nav.nav-tabs {
                    @for (href, label) in [("/history", "Event log"), ("/history/deleted", "Deleted entries"), ("/history/stale", "Stale covers")] {
                        li.nav-item {
                            a.nav-link.active[label == active] href=(href) { (label) }
                        }
                    }
                }
                (body)
            }
        },
    )
}

fn error_page(s: &AppState, status: StatusCode, message: &str) -> Response {
    (
        status,
        page(
            s,
            "History",
            "",
            html! { h1 { "Cannot show this" } div.alert.alert-danger { (message) } },
        ),
    )
        .into_response()
}

fn api_err(s: &AppState, e: ApiError) -> Response {
    error_page(s, e.status, &e.message)
}

/// Percent-encodes a query value.
fn enc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn query_string(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn when(at: u64) -> Markup {
    let t = history::time::format(at);
    html! { time datetime=(t) { (t.replace('T', " ").trim_end_matches('Z')) } }
}

/// The entry history page of `category/slug`.
pub fn entry_history_link(c: Category, slug: &str) -> String {
    format!("/{}/{slug}/history", c.desc().singular)
}

fn entry_link(c: Category, slug: &str) -> Markup {
    html! { a href=(entry_history_link(c, slug)) { (c.desc().singular) " " (slug) } }
}

fn job_link(job: u128) -> Markup {
    let id = ulid_text(job);
    html! { a href={ "/audit/" (id) } { code { (id) } } }
}

fn static_url(path: &str) -> String {
    if path.starts_with("/static/") {
        path.to_string()
    } else {
        format!("/static/{path}")
    }
}

fn thumb(path: &str) -> Markup {
    let url = static_url(path);
    html! { a href=(url) { img.img-thumbnail src=(url) width="72" height="72" alt="image" loading="lazy"; } }
}

/// Pretty JSON, cut at about 20,000 characters.
fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    if s.len() > 20_000 {
        let mut cut = 20_000;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("\n… (cut; the API has it all)");
    }
    s
}

/// One line saying what an event did.
fn describe(s: &Stored) -> Markup {
    let e = s.event();
    html! {
        @match e {
            Event::Restored { to_seq, put, removed, .. } => {
                "library restored to seq " a href={ "/history?before=" (to_seq + 1) } { (to_seq) }
                " (" (put.len()) " put back, " (removed.len()) " taken out)"
            }
            Event::Undeleted { entry, deleted_seq } => {
                (entry_link(entry.category, &entry.slug)) " brought back (deleted at seq " (deleted_seq) ")"
            }
            Event::JobFailed { error, .. } | Event::JobSetAside { reason: error, .. } => {
                @if let Some(j) = e.job() { "job " (job_link(j)) ": " } (error)
            }
            Event::JobSucceeded { images, .. } => {
                @if let Some(j) = e.job() { "job " (job_link(j)) }
                " made " (images.len()) " image(s)"
            }
            Event::PreferenceSet { scope, key, json } => { "preference " code { (scope) } " " (key) " = " code { (json) } }
            Event::SettingsChanged { llm_key_changed, .. } => {
                "settings changed" @if *llm_key_changed { " (LLM key changed)" }
            }
            Event::SyncFailed { category, file, error, .. } => {
                code { "data/" (category.desc().dir) "/" (file) } ": " (error)
            }
            _ => {
                @if let Some((c, slug)) = e.subject() { (entry_link(c, slug)) " " }
                @else if let Some(c) = e.category() { (c.key()) " " }
                @if let Some(j) = e.job() { "job " (job_link(j)) }
            }
        }
    }
}

fn select(name: &str, options: &[(String, String)], chosen: &[String], multiple: bool) -> Markup {
    html! {
        select.form-select name=(name) multiple[multiple] size=[multiple.then_some(4)] {
            @if !multiple { option value="" { "any" } }
            @for (value, label) in options {
                option value=(value) selected[chosen.contains(value)] { (label) }
            }
        }
    }
}

// ---- the event log ---------------------------------------------------------------------

/// Query pairs as `Filter::from_query` takes them, with repeated `type`/`origin` (from a
/// multiple select) joined by commas.
fn log_query(raw: &[(String, String)]) -> HashMap<String, String> {
    let mut q: HashMap<String, String> = HashMap::new();
    for (k, v) in raw {
        if v.is_empty() {
            continue;
        }
        q.entry(k.clone())
            .and_modify(|x| {
                x.push(',');
                x.push_str(v);
            })
            .or_insert_with(|| v.clone());
    }
    q
}

async fn log_page(State(s): State<AppState>, Query(raw): Query<Vec<(String, String)>>) -> Response {
    let mut q = log_query(&raw);
    q.entry("limit".into()).or_insert_with(|| "50".into());
    let (filter, mut paging) = match log::Filter::from_query(&q) {
        Ok(x) => x,
        Err(e) => return error_page(&s, StatusCode::BAD_REQUEST, &e),
    };
    // The page opens on the newest events.
    paging.newest = true;
    let h = s.handle.clone();
    let f2 = filter.clone();
    let page_r = tokio::task::spawn_blocking(move || log::query(h.ledger(), &f2, &paging)).await;
    let result = match page_r {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return error_page(&s, StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => return error_page(&s, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let base = filter.to_query();
    let link = |cursor: (&'static str, u64)| {
        let mut pairs = base.clone();
        pairs.push((cursor.0, cursor.1.to_string()));
        pairs.push(("limit", q["limit"].clone()));
        format!("/history?{}", query_string(&pairs))
    };
    let kinds: Vec<(String, String)> = kind_names()
        .map(|(_, k)| (k.to_string(), k.replace('_', " ")))
        .collect();
    let origins: Vec<(String, String)> = Origin::ALL
        .iter()
        .map(|o| (o.as_str().to_string(), o.as_str().to_string()))
        .collect();
    let cats: Vec<(String, String)> = Category::ALL
        .iter()
        .map(|c| (c.key().to_string(), c.desc().title.to_string()))
        .collect();
    let chosen_kinds: Vec<String> = filter
        .kinds
        .iter()
        .map(|k| KINDS[*k as usize].to_string())
        .collect();
    let chosen_origins: Vec<String> = filter
        .origins
        .iter()
        .map(|o| o.as_str().to_string())
        .collect();
    let chosen_cat: Vec<String> = filter
        .category
        .iter()
        .map(|c| c.key().to_string())
        .collect();
    let last = s.handle.ledger().last_seq();
    let body = html! {
        h1 { "History" }
        p.text-muted { "Every change, newest first: who made it and when. The ledger is at seq " (last) "." }
        form.filters.row.g-2.align-items-end.mb-2 method="get" action="/history" {
            div.col-6.col-md-4.col-xl-2 { label.form-label.small.w-100 { "Type" (select("type", &kinds, &chosen_kinds, true)) } }
            div.col-6.col-md-4.col-xl-2 { label.form-label.small.w-100 { "Origin" (select("origin", &origins, &chosen_origins, true)) } }
            div.col-12.col-md-4.col-xl-8 {
                div.row.g-2 {
                    div.col-6.col-xl-4 { label.form-label.small.w-100 { "Category" (select("category", &cats, &chosen_cat, false)) } }
                    div.col-6.col-xl-4 { label.form-label.small.w-100 { "Entry (slug)" input.form-control type="text" name="slug" value=[filter.slug.as_deref()]; } }
                    div.col-12.col-xl-4 { label.form-label.small.w-100 { "Job" input.form-control type="text" name="job" value=[filter.job.map(ulid_text)] placeholder="ULID"; } }
                    div.col-6.col-xl-4 { label.form-label.small.w-100 { "Since" input.form-control type="text" name="since" value=[filter.since.map(history::time::format)] placeholder="2026-05-01T00:00:00Z"; } }
                    div.col-6.col-xl-4 { label.form-label.small.w-100 { "Until" input.form-control type="text" name="until" value=[filter.until.map(history::time::format)] placeholder="RFC 3339 or unix ms"; } }
                    div.col-12.col-xl-4.d-flex.gap-2.align-items-end {
                        button.btn.btn-primary type="submit" { "Filter" }
                        a.btn.btn-outline-secondary href="/history" { "Clear" }
                    }
                }
            }
        }
        (pager(&result, &link))
        table.table.table-sm.events {
            thead { tr { th { "seq" } th { "when" } th { "by" } th { "what" } th { "about" } th {} } }
            tbody {
                @for e in result.events.iter().rev() {
                    tr id={ "seq-" (e.seq) } {
                        td { (e.seq) }
                        td { (when(e.envelope.at)) }
                        td { span.badge.text-bg-secondary { (e.envelope.origin.as_str()) } }
                        td {
                            details {
                                summary { (e.event().kind().replace('_', " ")) }
                                pre { (pretty(&s.handle.event_json(e))) }
                            }
                        }
                        td { (describe(e)) }
                        td { a.btn.btn-sm.btn-outline-secondary href={ "/history/restore?to_seq=" (e.seq) } title="Preview putting the library back as it was right after this event" { "Restore to here" } }
                    }
                }
            }
        }
        @if result.events.is_empty() { p.text-muted { "No events match." } }
        (pager(&result, &link))
    };
    page(&s, "History", "Event log", body).into_response()
}

fn pager(p: &log::Page, link: &dyn Fn((&'static str, u64)) -> String) -> Markup {
    html! {
        nav.pager {
            @if let Some(a) = p.newer { a.btn.btn-outline-secondary.btn-sm href=(link(("after", a))) { "← Newer" } }
            @if let Some(b) = p.older { a.btn.btn-outline-secondary.btn-sm href=(link(("before", b))) { "Older →" } }
        }
    }
}

// ---- restore ---------------------------------------------------------------------------

fn field_rows(fields: &[FieldDiff]) -> Markup {
    html! {
        table.table.table-sm.diff {
            thead { tr { th { "field" } th { "before" } th { "after" } } }
            tbody {
                @for f in fields {
                    tr {
                        td { code { @if f.path.is_empty() { "(document)" } @else { (f.path) } } }
                        @if let Some(t) = &f.tags {
                            td {
                                @for k in &t.kept { span.badge.text-bg-secondary { (k) } }
                                @for r in &t.removed { del.badge.text-bg-danger { (r) } }
                            }
                            td {
                                @for k in &t.kept { span.badge.text-bg-secondary { (k) } }
                                @for a in &t.added { ins.badge.text-bg-success { (a) } }
                            }
                        } @else {
                            td { @if let Some(b) = &f.before { @if f.change == Change::Removed { del { (b) } } @else { (b) } } }
                            td { @if let Some(a) = &f.after { @if f.change == Change::Added { ins { (a) } } @else { (a) } } }
                        }
                    }
                }
            }
        }
    }
}

fn docs_list(title: &str, docs: &Value) -> Markup {
    let list = docs.as_array().cloned().unwrap_or_default();
    html! {
        @if !list.is_empty() {
            h3 { (title) " (" (list.len()) ")" }
            ul {
                @for d in &list {
                    @let c = Category::parse(d["category"].as_str().unwrap_or_default());
                    li {
                        @if let (Some(c), Some(slug)) = (c, d["slug"].as_str()) { (entry_link(c, slug)) }
                        " " (d["name"].as_str().unwrap_or_default())
                        " " code { (d["file"].as_str().unwrap_or_default()) }
                        @if let Some(was) = d["was_file"].as_str() { " (was " code { (was) } ")" }
                        @if let Ok(fields) = serde_json::from_value::<Vec<Value>>(d["fields"].clone()) {
                            @if !fields.is_empty() {
                                (field_rows(&fields.iter().filter_map(field_of).collect::<Vec<_>>()))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A field difference back from its JSON form.
fn field_of(v: &Value) -> Option<FieldDiff> {
    let change = match v["change"].as_str()? {
        "added" => Change::Added,
        "removed" => Change::Removed,
        _ => Change::Changed,
    };
    let list = |k: &str| -> Vec<String> {
        v["tags"][k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(FieldDiff {
        path: v["path"].as_str()?.to_string(),
        change,
        before: v["before"].as_str().map(String::from),
        after: v["after"].as_str().map(String::from),
        tags: v["tags"].is_object().then(|| history::diff::TagDiff {
            removed: list("removed"),
            added: list("added"),
            kept: list("kept"),
        }),
    })
}

fn changes_view(changes: &Value) -> Markup {
    let pairs = |k: &str| changes[k].as_array().cloned().unwrap_or_default();
    html! {
        (docs_list("Documents put back", &changes["documents"]["added"]))
        (docs_list("Documents changed", &changes["documents"]["changed"]))
        (docs_list("Documents taken out", &changes["documents"]["removed"]))
        @let covers = pairs("covers");
        @if !covers.is_empty() {
            h3 { "Covers (" (covers.len()) ")" }
            table.table.table-sm {
                thead { tr { th { "entry" } th { "now" } th { "after the restore" } } }
                tbody { @for c in &covers { tr {
                    td { (c["category"].as_str().unwrap_or_default()) "/" (c["slug"].as_str().unwrap_or_default()) }
                    td { @if let Some(p) = c["from"].as_str() { (thumb(p)) } @else { "none" } }
                    td { @if let Some(p) = c["to"].as_str() { (thumb(p)) } @else { "none" } }
                } } }
            }
        }
        @let defaults = pairs("default_fields");
        @if !defaults.is_empty() {
            h3 { "Default fields (" (defaults.len()) ")" }
            ul { @for d in &defaults { li { (d["category"].as_str().unwrap_or_default()) "/" (d["slug"].as_str().unwrap_or_default()) ": " code { (d["from"]) } " → " code { (d["to"]) } } } }
        }
        @let prefs = pairs("preferences");
        @if !prefs.is_empty() {
            h3 { "Preferences (" (prefs.len()) ")" }
            ul { @for p in &prefs { li { code { (p["scope"].as_str().unwrap_or_default()) } " " (p["key"].as_str().unwrap_or_default()) ": " code { (p["from"]) } " → " code { (p["to"]) } } } }
        }
        @if !changes["settings"].is_null() {
            h3 { "Settings" }
            p { code { (changes["settings"]["from"]) } " → " code { (changes["settings"]["to"]) } }
        }
        @if !changes["default_checkpoint"].is_null() {
            h3 { "Default checkpoint" }
            p { code { (changes["default_checkpoint"]["from"]) } " → " code { (changes["default_checkpoint"]["to"]) } }
        }
    }
}

fn restore_form(s: &AppState, to_seq: u64, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action="/history/restore" {
            (csrf(s))
            input type="hidden" name="to_seq" value=(to_seq);
            button class={ "btn " (class) } type="submit" { (label) }
        }
    }
}

async fn restore_preview(State(s): State<AppState>, Query(q): Q) -> Response {
    let Some(to_seq) = q.get("to_seq").and_then(|v| v.parse::<u64>().ok()) else {
        return error_page(&s, StatusCode::BAD_REQUEST, "?to_seq=SEQ is required");
    };
    let last = s.handle.ledger().last_seq();
    if to_seq > last {
        return error_page(
            &s,
            StatusCode::BAD_REQUEST,
            &format!("seq {to_seq} is not in the ledger (it ends at {last})"),
        );
    }
    let h = s.handle.clone();
    let planned = tokio::task::spawn_blocking(move || {
        let at = h.ledger().get(to_seq).ok().flatten();
        (h.restore_plan(to_seq), at)
    })
    .await;
    let (plan, at) = match planned {
        Ok(x) => x,
        Err(e) => return error_page(&s, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let (event, before) = match plan {
        Ok(x) => x,
        Err(e) => {
            let e = ApiError::from(e);
            return error_page(&s, e.status, &e.message);
        }
    };
    let body = html! {
        h1 { "Restore the library to seq " (to_seq) }
        p {
            "Documents, covers, default fields, preferences and settings become what they were right after "
            @if let Some(at) = &at { "event " (to_seq) " (" (at.event().kind().replace('_', " ")) ", " (when(at.envelope.at)) ")" }
            @else { "the start (an empty library)" }
            ". Jobs and images stay as they are. The restore is one event: undo it by restoring to the seq just before it."
        }
        @match &event {
            None => { div.alert.alert-info { "The library already is as it was then: nothing would change." } }
            Some(e) => {
                (changes_view(&history::restore::summary(&before, e)))
                (restore_form(&s, to_seq, "Restore", "btn-danger"))
                " "
                a.btn.btn-outline-secondary href={ "/history?before=" (to_seq + 1) } { "Back to the log" }
            }
        }
    };
    page(&s, "Restore", "Event log", body).into_response()
}

async fn restore_post(
    State(s): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(to_seq) = form.get("to_seq").and_then(|v| v.parse::<u64>().ok()) else {
        return error_page(&s, StatusCode::BAD_REQUEST, "the form needs to_seq");
    };
    match do_restore(&s, to_seq).await {
        Ok((Some(seq), _)) => Redirect::to(&format!("/history/restored/{seq}")).into_response(),
        Ok((None, _)) => page(&s, "Restore",
            "Event log",
            html! { h1 { "Nothing to restore" } p { "The library already is as it was right after seq " (to_seq) "." } },
        )
        .into_response(),
        Err(e) => api_err(&s, e),
    }
}

async fn restored_page(State(s): State<AppState>, Path(seq): Path<u64>) -> Response {
    let r = with_view(&s, move |v| {
        let event = v
            .ledger
            .get(seq)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no event {seq}"))?;
        if !matches!(event.event(), Event::Restored { .. }) {
            return Err(format!("event {seq} is not a restore"));
        }
        let before = v.library_at(seq - 1)?;
        Ok(history::restore::summary(&before, event.event()))
    })
    .await;
    let changes = match r {
        Ok(c) => c,
        Err(e) => return api_err(&s, e),
    };
    let body = html! {
        h1 { "Restored to seq " (changes["to_seq"]) }
        div.alert.alert-success { "The library was put back in one event, seq " (seq) ". Files in data/ were rewritten to match." }
        (restore_form(&s, seq - 1, "Undo this restore", "btn-primary"))
        (changes_view(&changes))
    };
    page(&s, "Restored", "Event log", body).into_response()
}

// ---- deleted entries and stale covers --------------------------------------------------

async fn deleted_page(State(s): State<AppState>) -> Response {
    let list = match with_view(&s, |v| history::deleted::list(v.ledger, v.lib, 200)).await {
        Ok(l) => l,
        Err(e) => return api_err(&s, e),
    };
    let body = html! {
        h1 { "Deleted entries" }
        p.text-muted { "Entries that left the library and are not back: deleted here, their file removed outside the app, or taken out by a restore. Undelete puts one back as it was, file included." }
        @if list.is_empty() { p { "Nothing has been deleted." } }
        @else {
            table.table.table-sm {
                thead { tr { th { "entry" } th { "name" } th { "file" } th { "how" } th { "when" } th {} } }
                tbody { @for d in &list { tr {
                    td { (entry_link(d.category, &d.slug)) }
                    td { (d.name) }
                    td { code { "data/" (d.category.desc().dir) "/" (d.file) } }
                    td { (d.how.as_str()) " (" (d.origin) ", seq " (d.seq) ")" }
                    td { (when(d.at)) }
                    td {
                        form.inline method="post" action={ "/history/deleted/" (d.category.key()) "/" (d.slug) "/undelete" } {
                            (csrf(&s))
                            button.btn.btn-primary type="submit" { "Undelete" }
                        }
                    }
                } } }
            }
        }
    };
    page(&s, "Deleted entries", "Deleted entries", body).into_response()
}

async fn undelete_post(
    State(s): State<AppState>,
    Path((cat, slug)): Path<(String, String)>,
) -> Response {
    let Some(c) = Category::parse(&cat) else {
        return error_page(
            &s,
            StatusCode::NOT_FOUND,
            &format!("unknown category '{cat}'"),
        );
    };
    if !is_slug(&slug) {
        return error_page(
            &s,
            StatusCode::NOT_FOUND,
            &format!("'{slug}' is not a slug"),
        );
    }
    match do_undelete(&s, c, &slug).await {
        Ok(_) => Redirect::to(&entry_history_link(c, &slug)).into_response(),
        Err(e) => api_err(&s, e),
    }
}

async fn stale_page(State(s): State<AppState>, Query(q): Q) -> Response {
    let lib = s.handle.library().clone();
    let body = html! {
        h1 { "Stale covers" }
        p.text-muted { "A cover is stale when its entry's document changed after the job that made the cover was requested. Regenerating runs each cover's job again with today's library, as a cover." }
        @if let Some(n) = q.get("queued") { div.alert.alert-success { (n) " cover job(s) queued." } }
        @for c in Category::ALL {
            @let list = stale::stale_entries(&lib, c);
            @if !list.is_empty() {
                h2 { (c.desc().title) " (" (list.len()) ")" }
                form method="post" action={ "/history/stale/" (c.key()) "/regenerate" } {
                    (csrf(&s))
                    button.btn.btn-primary type="submit" { "Regenerate " (list.len()) " stale cover(s)" }
                }
                table.table.table-sm {
                    thead { tr { th { "cover" } th { "entry" } th { "edited at seq" } th { "cover requested at seq" } } }
                    tbody { @for e in &list { tr {
                        td { @if let Some(p) = &e.cover { (thumb(p)) } }
                        td { (entry_link(c, &e.slug)) " " (e.name) }
                        td { (e.content_version) }
                        td { @if let Some(r) = stale::cover_requested_seq(&lib, e) { (r) } }
                    } } }
                }
            }
        }
        @if Category::ALL.iter().all(|c| stale::stale_entries(&lib, *c).is_empty()) {
            p { "Every cover was made from its entry's current text." }
        }
    };
    page(&s, "Stale covers", "Stale covers", body).into_response()
}

async fn regenerate_post(State(s): State<AppState>, Path(cat): Path<String>) -> Response {
    let Some(c) = Category::parse(&cat) else {
        return error_page(
            &s,
            StatusCode::NOT_FOUND,
            &format!("unknown category '{cat}'"),
        );
    };
    match do_regenerate(&s, c).await {
        Ok(v) => {
            let n = v["job_ids"].as_array().map_or(0, Vec::len);
            Redirect::to(&format!("/history/stale?queued={n}")).into_response()
        }
        Err(e) => api_err(&s, e),
    }
}

// ---- one entry's history ---------------------------------------------------------------

fn category_of_singular(singular: &str) -> Option<Category> {
    DESCRIPTORS
        .iter()
        .find(|d| d.singular == singular)
        .map(|d| d.category)
}

struct EntryView {
    versions: history::entry::Versions,
    jobs: Vec<(u64, u128, Vec<String>)>,
    diff: Option<(u64, u64, Vec<FieldDiff>)>,
    at: Option<(u64, Option<String>)>,
    current: Option<(String, Option<String>, u64, bool)>,
}

async fn entry_page(
    State(s): State<AppState>,
    Path((singular, slug)): Path<(String, String)>,
    Query(q): Q,
) -> Response {
    let Some(c) = category_of_singular(&singular) else {
        return error_page(&s, StatusCode::NOT_FOUND, &format!("no page /{singular}/…"));
    };
    if !is_slug(&slug) {
        return error_page(
            &s,
            StatusCode::NOT_FOUND,
            &format!("'{slug}' is not a slug"),
        );
    }
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok());
    let (before, a, b, at) = (num("before"), num("a"), num("b"), num("at"));
    let slug2 = slug.clone();
    let h = s.handle.clone();
    let r = tokio::task::spawn_blocking(move || -> Result<EntryView, String> {
        let ledger = h.ledger();
        let versions = history::entry::versions(ledger, c, &slug2, before, 100)?;
        if versions.total == 0 {
            return Err(format!("no {} '{slug2}' in the ledger", c.desc().singular));
        }
        let (targets, current) = {
            let lib = h.library();
            let current = lib.get(c, &slug2).map(|e| {
                (
                    e.name.clone(),
                    e.cover.clone(),
                    e.content_version,
                    stale::entry_is_stale(&lib, e),
                )
            });
            (history::entry::target_jobs(&lib, c, &slug2), current)
        };
        let targets = history::entry::read_images(ledger, targets)?;
        let jobs = history::entry::jobs_by_version(ledger, c, &slug2, targets)?;
        let diff = match (a, b) {
            (Some(a), Some(b)) => Some((
                a,
                b,
                history::entry::diff_versions(ledger, c, &slug2, a, b)?,
            )),
            _ => None,
        };
        let at = match at {
            Some(seq) => Some((seq, history::entry::text_at(ledger, c, &slug2, seq)?)),
            None => None,
        };
        Ok(EntryView {
            versions,
            jobs,
            diff,
            at,
            current,
        })
    })
    .await;
    let v = match r {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return error_page(&s, StatusCode::NOT_FOUND, &e),
        Err(e) => return error_page(&s, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let title = v
        .current
        .as_ref()
        .map(|x| x.0.clone())
        .or_else(|| v.versions.items.iter().find_map(|x| x.name.clone()))
        .unwrap_or_else(|| slug.clone());
    let here = entry_history_link(c, &slug);
    let content: Vec<u64> = v
        .versions
        .items
        .iter()
        .filter(|x| x.text_changed)
        .map(|x| x.seq)
        .collect();
    let body = html! {
        h1 { (title) " " small.text-muted { (c.desc().singular) " " code { (slug) } " · history" } }
        @match &v.current {
            Some((_, cover, cv, stale_cover)) => {
                p {
                    "Current text since seq " (cv) ". "
                    @if let Some(p) = cover { (thumb(p)) " " }
                    @if *stale_cover {
                        span.badge.text-bg-warning { "cover is stale" }
                        " the cover was made from an older version. "
                        @if let Some(job) = cover.as_deref().and_then(stale::job_of_image) {
                            form.inline method="post" action={ "/audit/" (ulid_text(job)) "/again" } {
                                (csrf(&s))
                                input type="hidden" name="mode" value="today";
                                input type="hidden" name="action" value="replace";
                                button.btn.btn-primary type="submit" { "Regenerate the cover" }
                            }
                        }
                    }
                }
            }
            None => {
                p { span.badge.text-bg-danger { "not in the library" } " "
                    form.inline method="post" action={ "/history/deleted/" (c.key()) "/" (slug) "/undelete" } {
                        (csrf(&s)) button.btn.btn-primary type="submit" { "Undelete" }
                    }
                }
            }
        }
        @if let Some((a, b, fields)) = &v.diff {
            h2 { "Seq " (a) " → seq " (b) }
            @if fields.is_empty() { p { "The text is the same." } } @else { (field_rows(fields)) }
        }
        @if let Some((seq, text)) = &v.at {
            h2 { "As it was right after seq " (seq) }
            @match text {
                Some(t) => {
                    pre { (t) }
                    @if v.current.is_some() {
                        form method="post" action={ (here) "/restore" } {
                            (csrf(&s))
                            input type="hidden" name="seq" value=(seq);
                            button.btn.btn-primary type="submit" { "Restore this version" }
                            span.text-muted { " (an ordinary edit: the entry gets this text back)" }
                        }
                    }
                }
                None => p { "Not in the library then." },
            }
        }
        h2 { "Versions (" (v.versions.total) ")" }
        form method="get" action=(here) {
            table.table.table-sm.versions {
                thead { tr { th { "a" } th { "b" } th { "seq" } th { "when" } th { "by" } th { "what" } th { "name" } th { "images from this version" } th {} } }
                tbody {
                    @for (i, x) in v.versions.items.iter().enumerate() {
                        @let is_content = x.text_changed;
                        tr {
                            // The pair compared stays chosen; with none yet, the two newest texts.
                            @let (pick_a, pick_b) = match &v.diff {
                                Some((a, b, _)) => (x.seq == *a, x.seq == *b),
                                None => (Some(x.seq) == content.get(1).copied(), i == 0),
                            };
                            td { @if is_content { input type="radio" name="a" value=(x.seq) aria-label={ "compare from seq " (x.seq) } checked[pick_a]; } }
                            td { @if is_content { input type="radio" name="b" value=(x.seq) aria-label={ "compare to seq " (x.seq) } checked[pick_b]; } }
                            td { (x.seq) }
                            td { (when(x.at)) }
                            td { span.badge.text-bg-secondary { (x.origin) } }
                            td { (x.kind.replace('_', " ")) @if let Some(p) = &x.cover { " " (thumb(p)) } }
                            td { @if let Some(n) = &x.name { (n) } }
                            td {
                                @for (_, job, images) in v.jobs.iter().filter(|j| j.0 == x.seq) {
                                    @for img in images { a href={ "/audit/" (ulid_text(*job)) } { img.img-thumbnail src=(static_url(img)) width="56" height="56" alt="image"; } }
                                    @if images.is_empty() { (job_link(*job)) }
                                }
                            }
                            td { @if is_content { a.btn.btn-sm.btn-outline-secondary href={ (here) "?at=" (x.seq) } { "view" } } }
                        }
                    }
                }
            }
            button.btn.btn-primary type="submit" { "Compare a and b" }
        }
        @if let Some(b) = v.versions.older {
            nav.pager { a.btn.btn-outline-secondary.btn-sm href={ (here) "?before=" (b) } { "Older versions →" } }
        }
        p { a href={ "/history?category=" (c.key()) "&slug=" (slug) } { "This entry in the event log" } }
    };
    page(&s, &format!("{title} · history"), "", body).into_response()
}

async fn entry_restore_post(
    State(s): State<AppState>,
    Path((singular, slug)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(c) = category_of_singular(&singular) else {
        return error_page(&s, StatusCode::NOT_FOUND, &format!("no page /{singular}/…"));
    };
    if !is_slug(&slug) {
        return error_page(
            &s,
            StatusCode::NOT_FOUND,
            &format!("'{slug}' is not a slug"),
        );
    }
    let Some(seq) = form.get("seq").and_then(|v| v.parse::<u64>().ok()) else {
        return error_page(&s, StatusCode::BAD_REQUEST, "the form needs seq");
    };
    let h = s.handle.clone();
    let slug2 = slug.clone();
    let text =
        tokio::task::spawn_blocking(move || history::entry::text_at(h.ledger(), c, &slug2, seq))
            .await;
    let text = match text {
        Ok(Ok(Some(t))) => t,
        Ok(Ok(None)) => {
            return error_page(
                &s,
                StatusCode::BAD_REQUEST,
                &format!(
                    "{} '{slug}' was not in the library at seq {seq}",
                    c.desc().singular
                ),
            );
        }
        Ok(Err(e)) => return error_page(&s, StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => return error_page(&s, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let doc = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => m,
        _ => {
            return error_page(
                &s,
                StatusCode::BAD_REQUEST,
                "that version is not a JSON object",
            );
        }
    };
    let r = s
        .handle
        .run(
            Origin::Web,
            crate::handle::Request::Command(Command::Edit {
                category: c,
                slug: slug.clone(),
                doc,
            }),
        )
        .await;
    match r {
        Ok(_) => Redirect::to(&entry_history_link(c, &slug)).into_response(),
        Err(e) => api_err(&s, ApiError::from(e)),
    }
}

// ---- audits ----------------------------------------------------------------------------

async fn audit_lookup(State(s): State<AppState>, Query(q): Q) -> Response {
    let Some(path) = q.get("image").filter(|p| !p.is_empty()) else {
        return error_page(&s, StatusCode::BAD_REQUEST, "?image=PATH is required");
    };
    let lib = s.handle.library();
    let v = history::View {
        ledger: s.handle.ledger(),
        lib: &lib,
    };
    let found = audit::job_of_image(&v, path);
    drop(lib);
    match found {
        Ok(job) => Redirect::to(&format!("/audit/{}", ulid_text(job))).into_response(),
        Err(e) => error_page(&s, StatusCode::NOT_FOUND, &e),
    }
}

fn tag_sources(title: &str, list: &Value) -> Markup {
    let items = list.as_array().cloned().unwrap_or_default();
    html! {
        @if !items.is_empty() {
            h3 { (title) }
            table.table.table-sm {
                thead { tr { th { "tag" } th { "from" } } }
                tbody { @for t in &items { tr {
                    td { code { (t["tag"].as_str().unwrap_or_default()) } }
                    td { (t["source"].as_str().unwrap_or_default()) }
                } } }
            }
        }
    }
}

async fn audit_page(State(s): State<AppState>, Path(job): Path<String>) -> Response {
    let id = match log::parse_job(&job) {
        Ok(id) => id,
        Err(e) => return error_page(&s, StatusCode::NOT_FOUND, &e),
    };
    if s.handle.library().jobs.state_of(id).is_none() {
        return error_page(&s, StatusCode::NOT_FOUND, &format!("no job {job}"));
    }
    let a = match with_view(&s, move |v: View<'_>| audit::audit(&v, id)).await {
        Ok(a) => a,
        Err(e) => return api_err(&s, e),
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    };
    let prov = &a["provenance"]["explanation"];
    let body = html! {
        h1 { "Audit " small.text-muted { code { (a["job_id"].as_str().unwrap_or_default()) } } }
        p {
            span.badge.text-bg-secondary { (text(&a["status"])) } " " (text(&a["label"]))
            @if let Some(t) = a["target"]["link"].as_str() { " · " a href=(t) { "entry history" } }
            " · requested " (when(a["requested_at"].as_u64().unwrap_or(0))) " (seq " (text(&a["requested_seq"])) ")"
            @if let Some(o) = a["again_of"]["job"].as_str() {
                " · run again of " a href={ "/audit/" (o) } { code { (o) } }
                @if a["again_of"]["exact"] == true { " (exactly)" } @else { " (with the library of its day)" }
            }
        }
        @if let Some(e) = a["error"].as_str() { div.alert.alert-danger { (e) } }
        div { @for img in a["images"].as_array().into_iter().flatten() { @if let Some(p) = img.as_str() { (thumb(p)) " " } } }
        div.pager {
            @for (mode, label) in [("exact", "Run again exactly"), ("today", "Run again with today's library")] {
                form.inline method="post" action={ "/audit/" (job) "/again" } {
                    (csrf(&s))
                    input type="hidden" name="mode" value=(mode);
                    button.btn.btn-primary type="submit" { (label) }
                }
            }
            form.inline method="get" action="/audit/diff" {
                input type="hidden" name="a" value=(job);
                input.form-control type="text" name="b" placeholder="another job id or image path" required;
                button.btn.btn-outline-secondary type="submit" { "Compare" }
            }
        }
        h2 { "Settings" }
        table.table.table-sm { tbody {
            tr { th { "seed" } td { (text(&a["seed"])) } }
            tr { th { "size" } td { (text(&a["width"])) " × " (text(&a["height"])) } }
            tr { th { "checkpoint" } td { code { (text(&a["checkpoint"])) } } }
            tr { th { "character" } td { (text(&a["character"])) } }
        } }
        h2 { "LoRAs" }
        table.table.table-sm {
            thead { tr { th { "node" } th { "LoRA" } th { "weight" } th { "from" } } }
            tbody { @for l in a["loras"].as_array().into_iter().flatten() { tr {
                td { (text(&l["node"])) } td { code { (text(&l["name"])) } } td { (text(&l["weight"])) } td { (text(&l["source"])) }
            } } }
        }
        h2 { "Prompts" }
        @for k in ["main", "face", "hand", "negative"] {
            @if let Some(p) = a["prompts"][k].as_str().filter(|p| !p.is_empty()) {
                h3 { (k) } pre { (p) }
            }
        }
        h2 { "Where every tag came from" }
        @if prov.is_null() {
            div.alert { "Not available: " (text(&a["provenance_error"])) }
        } @else {
            p.text-muted { "Re-derived from the library as it was at seq " (text(&a["provenance"]["derived_at_seq"])) "; it gives exactly the recipe's prompts." }
            (tag_sources("Main", &prov["main"]))
            (tag_sources("Face detailer", &prov["face"]))
            (tag_sources("Hand detailer", &prov["hand"]))
            (tag_sources("Negative", &prov["negative"]))
            @let removed = prov["removed"].as_array().cloned().unwrap_or_default();
            @if !removed.is_empty() {
                h3 { "Tags removed" }
                ul { @for r in &removed { li { code { (text(&r["tag"])) } " (" (text(&r["prompt"])) ", from " (text(&r["source"])) "): " (text(&r["reason"])) " " (text(&r["detail"])) } } }
            }
        }
        h2 { "Entry versions used" }
        table.table.table-sm {
            thead { tr { th { "entry" } th { "version used" } th { "now" } } }
            tbody { @for e in a["versions"].as_array().into_iter().flatten() { tr {
                td { (text(&e["category"])) "/" (text(&e["slug"])) }
                td { a href=(text(&e["link"])) { "seq " (text(&e["version"])) } }
                td {
                    @if e["in_library"] == false { span.badge.text-bg-danger { "deleted" } }
                    @else if e["changed_since"] == true { span.badge.text-bg-warning { "edited since (seq " (text(&e["current_version"])) ")" } }
                    @else { span.badge.text-bg-success { "unchanged" } }
                }
            } } }
        }
        h2 { "What ComfyUI received" }
        @let subs = a["submissions"].as_array().cloned().unwrap_or_default();
        @if subs.is_empty() { p { "Not sent yet." } }
        table.table.table-sm {
            thead { tr { th { "attempt" } th { "backend" } th { "prompt id" } th { "Impact Pack" } th { "graph" } } }
            tbody { @for sub in &subs { tr {
                td { (text(&sub["attempt"])) }
                td { code { (text(&sub["backend"])) } }
                td { code { (text(&sub["prompt_id"])) } }
                td { @if sub["vanilla"] == true { "no (detailers dropped)" } @else { "yes" } }
                td { details { summary { "graph" } pre { (pretty(&sub["graph"])) } } }
            } } }
        }
        h2 { "Events" }
        ul { @for e in a["events"].as_array().into_iter().flatten() {
            li { "seq " (text(&e["seq"])) " " (text(&e["type"])) " (" (text(&e["origin"])) ")"
                @if let Some(err) = e["error"].as_str() { ": " (err) } }
        } }
        @let again = a["run_again"].as_array().cloned().unwrap_or_default();
        @if !again.is_empty() {
            h2 { "Run again as" }
            ul { @for j in &again { li { a href={ "/audit/" (text(j)) } { code { (text(j)) } } } } }
        }
    };
    page(&s, "Audit", "", body).into_response()
}

async fn again_post(
    State(s): State<AppState>,
    Path(job): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let id = match log::parse_job(&job) {
        Ok(id) => id,
        Err(e) => return error_page(&s, StatusCode::NOT_FOUND, &e),
    };
    if s.handle.library().jobs.state_of(id).is_none() {
        return error_page(&s, StatusCode::NOT_FOUND, &format!("no job {job}"));
    }
    let Some(mode) = form.get("mode").and_then(|m| Again::parse(m)) else {
        return error_page(
            &s,
            StatusCode::BAD_REQUEST,
            "the form needs mode: exact or today",
        );
    };
    let action = form
        .get("action")
        .filter(|a| *a == "preview" || *a == "replace")
        .cloned();
    match do_run_again(&s, id, mode, action).await {
        Ok(new_job) => Redirect::to(&format!("/audit/{}", ulid_text(new_job))).into_response(),
        Err(e) => api_err(&s, e),
    }
}

async fn audit_diff_page(State(s): State<AppState>, Query(q): Q) -> Response {
    let (Some(a), Some(b)) = (q.get("a"), q.get("b")) else {
        return error_page(
            &s,
            StatusCode::BAD_REQUEST,
            "?a=&b= are required: job ids or image paths",
        );
    };
    let pick = |t: &str| -> Result<u128, String> {
        let lib = s.handle.library();
        match log::parse_job(t) {
            Ok(id) if lib.jobs.state_of(id).is_some() => Ok(id),
            Ok(_) => Err(format!("no job {t}")),
            Err(_) => audit::job_of_image(
                &history::View {
                    ledger: s.handle.ledger(),
                    lib: &lib,
                },
                t,
            ),
        }
    };
    let (ja, jb) = match (pick(a), pick(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return error_page(&s, StatusCode::NOT_FOUND, &e),
    };
    let d = with_view(&s, move |v| {
        let ra: Value = serde_json::from_str(&v.job_spec(ja)?.recipe).unwrap_or(Value::Null);
        let rb: Value = serde_json::from_str(&v.job_spec(jb)?.recipe).unwrap_or(Value::Null);
        Ok(audit::diff_recipes(&ra, &rb))
    })
    .await;
    let d = match d {
        Ok(d) => d,
        Err(e) => return api_err(&s, e),
    };
    let part = |k: &str| -> Vec<FieldDiff> {
        d[k].as_array()
            .map(|a| a.iter().filter_map(field_of).collect())
            .unwrap_or_default()
    };
    let body = html! {
        h1 { "Recipe differences" }
        p { "a = " (job_link(ja)) " · b = " (job_link(jb)) }
        @if d["identical"] == true { div.alert.alert-info { "The two recipes are identical." } }
        @for (k, title) in [("settings", "Settings"), ("prompts", "Prompts"), ("loras", "LoRAs and weights"), ("versions", "Entry versions"), ("workflow", "Workflow inputs")] {
            @let fields = part(k);
            @if !fields.is_empty() { h2 { (title) } (field_rows(&fields)) }
        }
    };
    page(&s, "Recipe differences", "", body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            enc("2026-05-01T12:00:00+02:00"),
            "2026-05-01T12%3A00%3A00%2B02%3A00"
        );
        assert_eq!(
            query_string(&[("a", "x y".into()), ("b", "ü".into())]),
            "a=x%20y&b=%C3%BC"
        );
    }

    #[test]
    fn repeated_selections_join_with_commas() {
        let q = log_query(&[
            ("type".into(), "cover_set".into()),
            ("type".into(), "restored".into()),
            ("slug".into(), String::new()),
        ]);
        assert_eq!(q["type"], "cover_set,restored");
        assert!(!q.contains_key("slug"));
    }
}
