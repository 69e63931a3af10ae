//! The HTTP surface: the JSON API under `/api`, the HTML pages, and static files. The only
//! module that touches axum and maud; it reads projections and sends commands to the handle.

mod api;
pub mod assets;
mod assistant;
mod error;
mod form;
pub mod guard;
pub(crate) mod history_api;
mod jobs;
pub mod pages;
pub mod thumbs;

use crate::cli::Config;
use crate::handle::Handle;
use axum::Router;
use std::sync::Arc;

pub use error::ApiError;

/// What every route can reach.
#[derive(Clone)]
pub struct AppState {
    pub handle: Handle,
    pub config: Arc<Config>,
    /// Serialized category lists, keyed by the shelf generation they were made from.
    pub list_cache: Arc<std::sync::Mutex<ListCache>>,
    /// The reactor's live state; `None` when no reactor runs (tools, tests of the API alone).
    pub live: Option<crate::jobs::reactor::Live>,
    /// The assistant (tag index, drafting, bulk runs); `None` in tools that run without it.
    pub assistant: Option<crate::assistant::Service>,
    /// The request guard's settings and the CSRF token.
    pub guard: Arc<guard::Guard>,
    /// Versioned URLs of the static assets.
    pub assets: Arc<assets::Assets>,
    /// Gallery search indexes, one per category, rebuilt when the shelf changes.
    pub gallery: Arc<pages::gallery::Cache>,
    /// The thumbnail cache, and how many thumbnails requests may make at once.
    pub thumbs: Arc<crate::library::thumbs::Thumbs>,
    pub thumb_permits: Arc<tokio::sync::Semaphore>,
    /// The image gallery's index (every image GAZE holds).
    pub images: Arc<crate::gallery::Images>,
    /// Entry search indexes, one per category, rebuilt when the shelf changes.
    pub search: Arc<pages::search::Cache>,
}

pub type ListCache =
    std::collections::HashMap<crate::library::category::Category, (u64, axum::body::Bytes)>;

impl AppState {
    /// `bound` is the address the listener got (its IP is an allowed Host).
    pub fn new(
        handle: Handle,
        config: Config,
        live: Option<crate::jobs::reactor::Live>,
        bound: Option<std::net::SocketAddr>,
    ) -> AppState {
        let csrf = guard::load_or_make_secret(&config.ledger);
        let guard = guard::Guard::new(&config.allow_hosts, bound, csrf);
        if let Some(w) = guard.exposure_warning() {
            tracing::warn!("{w}");
        }
        let assets = assets::Assets::scan(&config.static_dir);
        let thumbs = Arc::new(crate::library::thumbs::Thumbs::open(&config.uploads));
        let images = Arc::new(crate::gallery::Images::new(
            handle.clone(),
            config.uploads.clone(),
            Some(crate::gallery::Images::cache_path(&config.ledger)),
        ));
        AppState {
            handle,
            config: Arc::new(config),
            list_cache: Arc::default(),
            live,
            guard: Arc::new(guard),
            assets: Arc::new(assets),
            gallery: Arc::default(),
            thumbs,
            thumb_permits: Arc::new(tokio::sync::Semaphore::new(2)),
            images,
            search: Arc::default(),
            assistant: None,
        }
    }

    pub fn with_assistant(mut self, assistant: crate::assistant::Service) -> AppState {
        self.assistant = Some(assistant);
        self
    }

    /// The token HTML forms carry (see `guard`).
    pub fn csrf_token(&self) -> &str {
        self.guard.csrf_token()
    }
}

/// The whole app as a router (tests can drive it without a socket).
pub fn router(state: AppState) -> Router {
    let uploads = tower_http::services::ServeDir::new(&state.config.uploads);
    let statics = tower_http::services::ServeDir::new(&state.config.static_dir);
    Router::new()
        .merge(api::routes())
        .merge(jobs::routes())
        .merge(history_api::routes())
        .merge(assistant::routes(&state))
        .merge(thumbs::routes())
        .merge(pages::routes())
        .nest_service("/static/uploads", uploads)
        .nest_service("/static", statics)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::layer,
        ))
        .with_state(state)
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Serves the app on an already-bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    pages::gallery::warm(&state);
    // Open MCP sessions (long-lived streams) end at shutdown rather than hold it up.
    let mcp = state.assistant.as_ref().map(|a| a.mcp_shutdown.clone());
    let shutdown = async move {
        shutdown.await;
        if let Some(t) = mcp {
            t.cancel();
        }
    };
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| e.to_string())
}
