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
        .route("/library", get(home::home))
        .route("/rescan", post(home::rescan))
        .merge(assistant::routes())
        .fallback(not_found)
}

/// The page frame every page shares: head (versioned assets, the CSRF token for scripts),
/// navigation, and `body` as the main content.
pub fn layout(state: &AppState, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · GAZE" }
                meta name="csrf-token" content=(state.csrf_token());
                link rel="stylesheet" href=(state.assets.url("style.css"));
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

async fn not_found(axum::extract::State(s): axum::extract::State<AppState>) -> Response {
    (
        StatusCode::NOT_FOUND,
        layout(
            &s,
            "Not found",
            html! { h1 { "Not found" } p { a href="/" { "Back to the library" } } },
        ),
    )
        .into_response()
}
