//! The HTML pages, rendered with maud from the projections. This file holds the routes, the
//! shared layout (Bootstrap navbar, flash message, footer scripts) and the helpers every page
//! family uses; one module per family beside it: `home` (the `/library` overview), `gallery`
//! (a category's cards), `entry` (an entry's page with live generation), `edit` (forms, raw
//! JSON, create, clone, delete), `ui` (small partials), `assistant` ("Create with the
//! assistant", draft review, bulk runs), `history` (the event log, restore, deleted entries,
//! stale covers, entry histories, audits); the workshop: `generator` (mix and match), `images`
//! (the image gallery and image view), `strengths` (LoRA weight sweeps), `transfer` (one kind
//! of entry into another), `queue`, `settings`, `search`.
//!
//! Every route is made from `category::DESCRIPTORS`: adding a category adds its pages.

pub mod assistant;
mod edit;
mod entry;
pub mod gallery;
pub mod generator;
mod history;
mod home;
pub mod images;
mod queue;
pub mod search;
mod settings;
mod strengths;
mod transfer;
mod ui;

use super::AppState;
use crate::handle::Request;
use crate::library::category::{Category, DESCRIPTORS};
use crate::library::command::Command;
use crate::store::event::Origin;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};

pub use ui::thumb_url;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/", get(gallery::characters_home))
        .route("/library", get(home::home))
        .route("/rescan", post(home::rescan_all))
        .route(
            "/create",
            get(edit::create_character_form).post(edit::create_character),
        )
        .route("/set_default_checkpoint", post(set_default_checkpoint))
        .route("/generate_missing", post(gallery::generate_missing))
        .route(
            "/clear_all_covers",
            post(gallery::clear_all_character_covers),
        )
        .route("/preferences/global", post(global_preferences))
        .route(
            "/resource/{category}/{slug}/delete",
            get(edit::delete_page).post(edit::delete),
        );
    for d in &DESCRIPTORS {
        let c = d.category;
        let plural = d.key;
        let one = d.singular;
        let gallery_route = get(move |s, q| gallery::gallery(s, c, q));
        r = r
            .route(&format!("/{plural}"), gallery_route.clone())
            .route(&format!("/{plural}/"), gallery_route)
            .route(
                &format!("/{plural}/rescan"),
                post(move |s, h| home::rescan_one(s, c, h)),
            )
            .route(
                &format!("/{plural}/{{slug}}"),
                get(move |p| entry::plural_redirect(c, p)),
            )
            .route(
                &format!("/get_missing_{plural}"),
                get(move |s| gallery::get_missing(s, c)),
            )
            .route(
                &format!("/clear_all_{one}_covers"),
                post(move |s, h, f| gallery::clear_covers(s, c, h, f)),
            )
            .route(
                &format!("/{one}/create"),
                get(move |s| edit::create_form(s, c)).post(move |s, h, f| edit::create(s, c, h, f)),
            )
            .route(
                &format!("/{one}/{{slug}}"),
                get(move |s, p, q| entry::show(s, c, p, q)),
            )
            .route(
                &format!("/{one}/{{slug}}/generate"),
                post(move |s, p, h, b| entry::generate(s, c, p, h, b)),
            )
            .route(
                &format!("/{one}/{{slug}}/edit"),
                get(move |s, p| edit::edit_form(s, c, p))
                    .post(move |s, p, h, f| edit::save_form(s, c, p, h, f)),
            )
            .route(
                &format!("/{one}/{{slug}}/save_json"),
                post(move |s, p, h, f| edit::save_json(s, c, p, h, f)),
            )
            .route(
                &format!("/{one}/{{slug}}/clone"),
                post(move |s, p, h| edit::clone(s, c, p, h)),
            )
            .route(
                &format!("/{one}/{{slug}}/upload"),
                post(move |s, p, h, m| entry::upload(s, c, p, h, m)),
            )
            .route(
                &format!("/{one}/{{slug}}/favourite"),
                post(move |s, p, h, f| gallery::favourite(s, c, p, h, f)),
            )
            .route(
                &format!("/{one}/{{slug}}/nsfw"),
                post(move |s, p, h, f| entry::nsfw(s, c, p, h, f)),
            )
            .route(
                &format!("/{one}/{{slug}}/save_defaults"),
                post(move |s, p, h, f| entry::save_defaults(s, c, p, h, f)),
            )
            .route(
                &format!("/{one}/{{slug}}/replace_cover_from_preview"),
                post(move |s, p, h, f| entry::replace_cover(s, c, p, h, f)),
            )
            .route(
                &format!("/{one}/{{slug}}/preview"),
                post(move |s, p, f| entry::preview(s, c, p, f)),
            )
            .route(
                &format!("/{one}/{{slug}}/endless"),
                post(move |s, p, h, f| entry::endless(s, c, p, h, f)),
            )
            .route(
                &format!("/{one}/{{slug}}/save_preset"),
                post(move |s, p, h, f| entry::save_preset(s, c, p, h, f)),
            );
        if c == Category::Characters {
            r = r.route("/character/{slug}/outfit/{op}", post(entry::outfit_op));
        }
    }
    r.merge(assistant::routes())
        .merge(images::routes())
        .merge(generator::routes())
        .merge(strengths::routes())
        .merge(transfer::routes())
        .merge(queue::routes())
        .merge(settings::routes())
        .merge(search::routes())
        .merge(history::routes())
        .fallback(not_found)
}

/// The page frame every page shares: head (versioned assets, the CSRF token for scripts),
/// the navbar, the flash message and `body` as the main content.
pub fn layout(state: &AppState, title: &str, body: Markup) -> Markup {
    page(state, &Page::new(title), body)
}

/// What a page asks of the layout beyond its title.
#[derive(Default)]
pub struct Page<'a> {
    pub title: &'a str,
    /// The navbar entry to mark as current (a category key or `library`).
    pub section: Option<&'a str>,
    /// Page scripts under `static/js/` (besides `app.js`).
    pub scripts: &'a [&'a str],
    /// A flash message from the action that led here: (ok, text).
    pub flash: Option<(bool, String)>,
    /// Reload every N seconds (a job in flight shown without JavaScript).
    pub refresh: Option<u32>,
}

impl<'a> Page<'a> {
    pub fn new(title: &'a str) -> Page<'a> {
        Page {
            title,
            ..Page::default()
        }
    }
}

/// The global preferences the layout needs: theme and NSFW mode.
pub fn global_pref(state: &AppState, key: &str) -> Option<String> {
    let lib = state.handle.library();
    lib.preferences
        .get("global")
        .and_then(|m| m.get(key))
        .and_then(|v| serde_json::from_str::<String>(v).ok())
}

pub fn page(state: &AppState, p: &Page<'_>, body: Markup) -> Markup {
    let theme = global_pref(state, "theme").unwrap_or_else(|| "dark".into());
    html! {
        (DOCTYPE)
        html lang="en" data-bs-theme=(theme) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(n) = p.refresh {
                    meta http-equiv="refresh" content=(n);
                }
                title { (p.title) " · GAZE" }
                meta name="csrf-token" content=(state.csrf_token());
                link rel="stylesheet" href=(state.assets.url("vendor/bootstrap-5.3.8/css/bootstrap.min.css"));
                link rel="stylesheet" href=(state.assets.url("style.css"));
            }
            body {
                a.visually-hidden-focusable.skip-link href="#main" { "Skip to content" }
                (ui::navbar(state, p.section))
                main #main.container-xxl.py-3 {
                    @if let Some((ok, text)) = &p.flash {
                        div.alert.alert-dismissible.fade.show.flash
                            .alert-success[*ok] .alert-danger[!*ok] role="status" {
                            (text)
                            button.btn-close type="button" data-bs-dismiss="alert" aria-label="Close" {}
                        }
                    }
                    (body)
                }
                script src=(state.assets.url("vendor/bootstrap-5.3.8/js/bootstrap.bundle.min.js")) {}
                script src=(state.assets.url("js/app.js")) {}
                // Tag fields anywhere (`data-tag-autocomplete`) complete from the tag index.
                script src=(state.assets.url("js/tag-autocomplete.js")) {}
                @for s in p.scripts {
                    script src=(state.assets.url(&format!("js/{s}"))) {}
                }
            }
        }
    }
}

/// The flash message carried by `?flash=` (and `?flash_err=`) after a redirect.
pub fn flash_of(q: &std::collections::HashMap<String, String>) -> Option<(bool, String)> {
    if let Some(m) = q.get("flash").filter(|m| !m.is_empty()) {
        return Some((true, truncate(m, 500)));
    }
    q.get("flash_err")
        .filter(|m| !m.is_empty())
        .map(|m| (false, truncate(m, 500)))
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `path` with a flash message added to its query (before any `#fragment`).
pub fn with_flash(path: &str, ok: bool, msg: &str) -> String {
    let (base, frag) = match path.split_once('#') {
        Some((b, f)) => (b, format!("#{f}")),
        None => (path, String::new()),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let key = if ok { "flash" } else { "flash_err" };
    format!("{base}{sep}{key}={}{frag}", enc(msg))
}

/// A local path to return to (`back` form fields), or `fallback`: only same-site paths.
pub fn safe_back(back: Option<&str>, fallback: &str) -> String {
    match back {
        Some(b) if b.starts_with('/') && !b.starts_with("//") && !b.contains('\\') => b.to_string(),
        _ => fallback.to_string(),
    }
}

/// Whether the caller is a script that wants JSON instead of a redirect (the original's
/// `X-Requested-With: XMLHttpRequest`).
pub fn is_ajax(h: &HeaderMap) -> bool {
    h.get("x-requested-with")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest"))
}

/// The end of a form action: JSON for scripts, a redirect with a flash message otherwise.
pub fn finish(
    headers: &HeaderMap,
    to: &str,
    result: Result<(String, serde_json::Value), (StatusCode, String)>,
) -> Response {
    match (is_ajax(headers), result) {
        (true, Ok((msg, mut v))) => {
            if let serde_json::Value::Object(m) = &mut v {
                m.insert("message".into(), msg.into());
            }
            axum::Json(v).into_response()
        }
        (true, Err((status, msg))) => {
            (status, axum::Json(serde_json::json!({ "error": msg }))).into_response()
        }
        (false, Ok((msg, _))) => Redirect::to(&with_flash(to, true, &msg)).into_response(),
        (false, Err((_, msg))) => Redirect::to(&with_flash(to, false, &msg)).into_response(),
    }
}

/// A refusal or ledger error as (status, message).
pub fn failed(e: crate::handle::ExecError) -> (StatusCode, String) {
    let api: super::ApiError = e.into();
    (api.status, api.message)
}

/// Runs a command from a page.
pub async fn run(
    s: &AppState,
    cmd: Command,
) -> Result<crate::handle::Outcome, (StatusCode, String)> {
    s.handle
        .run(Origin::Web, Request::Command(cmd))
        .await
        .map_err(failed)
}

/// A form body as (name, value) pairs, in order.
pub type FormPairs = axum::Form<Vec<(String, String)>>;

/// The first value of a form field.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn set_default_checkpoint(
    axum::extract::State(s): axum::extract::State<AppState>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let path = field(&f, "checkpoint_path")
        .filter(|p| !p.is_empty())
        .map(String::from);
    let back = safe_back(field(&f, "back"), "/");
    let r = run(&s, Command::SetDefaultCheckpoint { path: path.clone() })
        .await
        .map(|_| {
            (
                match &path {
                    Some(p) => format!("Default checkpoint: {p}"),
                    None => "No default checkpoint".to_string(),
                },
                serde_json::json!({ "default_checkpoint": path }),
            )
        });
    finish(&headers, &back, r)
}

/// Theme and NSFW mode from the navbar (forms without JavaScript; scripts use the API).
async fn global_preferences(
    axum::extract::State(s): axum::extract::State<AppState>,
    headers: HeaderMap,
    axum::Form(f): FormPairs,
) -> Response {
    let back = safe_back(field(&f, "back"), "/");
    let values: Vec<(String, serde_json::Value)> = ["theme", "nsfw"]
        .iter()
        .filter_map(|k| field(&f, k).map(|v| (k.to_string(), serde_json::Value::from(v))))
        .collect();
    let r = run(
        &s,
        Command::SetPreferences {
            scope: "global".into(),
            values,
        },
    )
    .await
    .map(|_| ("Saved".to_string(), serde_json::json!({})));
    finish(&headers, &back, r)
}

async fn not_found(axum::extract::State(s): axum::extract::State<AppState>) -> Response {
    not_found_page(&s, "There is no page here.")
}

/// A 404 page saying what was not found.
pub fn not_found_page(s: &AppState, what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        layout(
            s,
            "Not found",
            html! {
                h1.h3 { "Not found" }
                p { (what) }
                p { a href="/" { "Back to the characters" } " · " a href="/library" { "Library overview" } }
            },
        ),
    )
        .into_response()
}

/// Inline JSON for scripts, in a `<script type="application/json">` block (data, not code: the
/// CSP allows it). `</` is escaped so the text cannot close the element.
pub fn json_data(id: &str, v: &serde_json::Value) -> Markup {
    let text = v.to_string().replace("</", "<\\/");
    html! { script type="application/json" id=(id) { (PreEscaped(text)) } }
}
