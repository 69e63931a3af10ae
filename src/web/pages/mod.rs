//! The HTML pages, rendered with maud from the projections: the shared layout here, one module
//! per page family beside it (`home`: the library overview; `assistant`: drafting with the
//! assistant and bulk runs).

pub mod assistant;
mod home;

use super::AppState;
use crate::library::category::Category;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::home))
        .route("/rescan", post(home::rescan))
        .merge(assistant::routes())
        .fallback(not_found)
}

/// The page frame every page shares: head, navigation, and `body` as the main content.
pub fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · GAZE" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                nav.top {
                    a.brand href="/" { "GAZE" }
                    @for c in Category::ALL {
                        a href={ "/api/library/" (c.key()) } { (c.desc().title) }
                    }
                }
                main { (body) }
            }
        }
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        layout(
            "Not found",
            html! { h1 { "Not found" } p { a href="/" { "Back to the library" } } },
        ),
    )
        .into_response()
}
