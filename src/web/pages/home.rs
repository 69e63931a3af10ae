//! The library overview (`/library`): the categories with their counts, files that could not
//! be read, the workflow template in use, the newest events; and the rescans (global and per
//! category) with their result (documents added, changed, removed, failures).

use super::ui::failures;
use super::{Page, finish, page};
use crate::handle::Request;
use crate::library::category::Category;
use crate::store::event::{Event, Origin};
use crate::web::AppState;
use crate::web::guard::csrf_field;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::html;
use std::collections::{HashMap, HashSet};

fn ago(at_ms: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let s = now.saturating_sub(at_ms) / 1000;
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

pub async fn home(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let h = s.handle.clone();
    let newest = tokio::task::spawn_blocking(move || h.ledger().read_newest(20))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let lib = s.handle.library();
    let body = html! {
        div.d-flex.flex-wrap.align-items-center.gap-2.mb-3 {
            h1.h3.mb-0.me-auto { "Library" }
            form method="post" action="/rescan" {
                (csrf_field(&s))
                button.btn.btn-outline-secondary.btn-sm type="submit" { "Rescan data/" }
            }
        }
        div.row.row-cols-2.row-cols-md-3.row-cols-lg-5.g-3.mb-4 {
            @for c in Category::ALL {
                div.col {
                    a.card.h-100.text-decoration-none.count-card href={ "/" (c.key()) } {
                        div.card-body {
                            div.fs-3.fw-bold { (lib.count(c)) }
                            div.text-body-secondary { (c.desc().title) }
                            @let f = lib.shelf(c).failures.len();
                            @if f > 0 { span.badge.text-bg-warning { (f) " unreadable" } }
                        }
                    }
                }
            }
        }
        (failures(&lib, &Category::ALL))
        @if let Some(f) = &lib.workflow_failure {
            div.alert.alert-warning { "The workflow template file could not be used: " (f.error) " — the last good version stays in use." }
        }
        p.small.text-body-secondary {
            "Ledger at seq " (lib.seq) " · " (lib.document_count()) " documents"
            @if let Some(w) = &lib.workflow { " · workflow template version " (w.version) }
            @if let Some(c) = &lib.default_checkpoint { " · default checkpoint " code { (c) } }
        }
        h2.h5 { "Newest events" }
        div.table-responsive {
            table.table.table-sm.small.events {
                thead { tr { th scope="col" { "seq" } th scope="col" { "what" } th scope="col" { "about" } th scope="col" { "by" } th scope="col" { "when" } } }
                tbody {
                    @for e in &newest {
                        tr {
                            td { (e.seq) }
                            td { (e.event().kind()) }
                            td {
                                @if let Some((c, slug)) = e.event().subject() {
                                    @if lib.get(c, slug).is_some() {
                                        a href={ "/" (c.desc().singular) "/" (slug) } { (c.key()) "/" (slug) }
                                    } @else {
                                        (c.key()) "/" (slug)
                                    }
                                }
                            }
                            td { (e.envelope.origin.as_str()) }
                            td { (ago(e.envelope.at)) }
                        }
                    }
                }
            }
        }
    };
    drop(lib);
    page(
        &s,
        &Page {
            title: "Library",
            section: Some("library"),
            flash: super::flash_of(&q),
            ..Page::default()
        },
        body,
    )
    .into_response()
}

/// Runs a rescan and says what it found.
async fn rescan(
    s: &AppState,
    cats: Vec<Category>,
) -> Result<(String, serde_json::Value), (axum::http::StatusCode, String)> {
    let before: HashSet<(Category, String)> = {
        let lib = s.handle.library();
        cats.iter()
            .flat_map(|c| lib.shelf(*c).docs.keys().map(move |k| (*c, k.clone())))
            .collect()
    };
    let o = s
        .handle
        .run(Origin::Web, Request::Rescan(cats.clone()))
        .await
        .map_err(super::failed)?;
    let (mut added, mut changed, mut removed, mut failed) = (0, 0, 0, 0);
    for e in &o.events {
        match e.event() {
            Event::DocumentSynced { category, slug, .. } => {
                if before.contains(&(*category, slug.clone())) {
                    changed += 1;
                } else {
                    added += 1;
                }
            }
            Event::FileVanished { .. } => removed += 1,
            Event::SyncFailed { .. } => failed += 1,
            _ => {}
        }
    }
    let unreadable: usize = {
        let lib = s.handle.library();
        cats.iter().map(|c| lib.shelf(*c).failures.len()).sum()
    };
    let msg = format!(
        "Rescan: {added} added, {changed} changed, {removed} removed, {failed} new failure(s){}",
        if unreadable > 0 {
            format!(" ({unreadable} file(s) unreadable in all)")
        } else {
            String::new()
        }
    );
    Ok((
        msg,
        serde_json::json!({"added": added, "changed": changed, "removed": removed,
                           "failures": failed, "unreadable": unreadable}),
    ))
}

pub async fn rescan_all(State(s): State<AppState>, headers: HeaderMap) -> Response {
    // The global rescan also reads the workflow template file again.
    if let Err(e) = s.handle.run(Origin::Web, Request::SyncWorkflow).await {
        return finish(&headers, "/library", Err(super::failed(e)));
    }
    let r = rescan(&s, Category::ALL.to_vec()).await;
    finish(&headers, "/library", r)
}

pub async fn rescan_one(State(s): State<AppState>, c: Category, headers: HeaderMap) -> Response {
    let r = rescan(&s, vec![c]).await;
    finish(&headers, &format!("/{}", c.key()), r)
}
