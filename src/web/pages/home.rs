//! The library overview (`/` until the galleries exist): the categories with their counts,
//! files that could not be read, and the newest events.

use super::layout;
use crate::handle::Request;
use crate::library::category::Category;
use crate::store::event::Origin;
use crate::web::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

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

pub async fn home(State(s): State<AppState>) -> Response {
    let h = s.handle.clone();
    let newest = tokio::task::spawn_blocking(move || h.ledger().read_newest(20))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let lib = s.handle.library();
    let body = html! {
        h1 { "Library" }
        section.cards {
            @for c in Category::ALL {
                a.card href={ "/api/library/" (c.key()) } {
                    span.count { (lib.count(c)) }
                    span.label { (c.desc().title) }
                }
            }
        }
        form method="post" action="/rescan" {
            (crate::web::guard::csrf_field(&s))
            button type="submit" { "Rescan data/" }
        }
        @let failures: Vec<_> = Category::ALL.iter().flat_map(|c| {
            lib.shelf(*c).failures.iter().map(move |(f, e)| (c.desc().dir, f, e))
        }).collect();
        @if !failures.is_empty() {
            h2 { "Files that could not be read" }
            ul.failures {
                @for (dir, file, f) in &failures {
                    li { code { "data/" (dir) "/" (file) } " — " (f.error) }
                }
            }
        }
        h2 { "Newest events" }
        table.events {
            thead { tr { th { "seq" } th { "what" } th { "about" } th { "by" } th { "when" } } }
            tbody {
                @for e in &newest {
                    tr {
                        td { (e.seq) }
                        td { (e.event().kind()) }
                        td {
                            @if let Some((c, slug)) = e.event().subject() {
                                (c.key()) "/" (slug)
                            }
                        }
                        td { (e.envelope.origin.as_str()) }
                        td { (ago(e.envelope.at)) }
                    }
                }
            }
        }
        p.meta { "Ledger at seq " (lib.seq) " · " (lib.document_count()) " documents" }
    };
    layout(&s, "Library", body).into_response()
}

pub async fn rescan(State(s): State<AppState>) -> Response {
    if let Err(e) = s.handle.run(Origin::Web, Request::SyncWorkflow).await {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    match s
        .handle
        .run(Origin::Web, Request::Rescan(Category::ALL.to_vec()))
        .await
    {
        Ok(_) => Redirect::to("/").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
