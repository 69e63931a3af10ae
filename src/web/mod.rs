//! The HTTP surface: the JSON API under `/api`, the HTML pages, and static files. The only
//! module that touches axum and maud; it reads projections and sends commands to the handle.

mod api;
mod assistant;
mod error;
mod jobs;
mod pages;

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
}

pub type ListCache =
    std::collections::HashMap<crate::library::category::Category, (u64, axum::body::Bytes)>;

impl AppState {
    pub fn new(
        handle: Handle,
        config: Config,
        live: Option<crate::jobs::reactor::Live>,
    ) -> AppState {
        AppState {
            handle,
            config: Arc::new(config),
            list_cache: Arc::default(),
            live,
            assistant: None,
        }
    }

    pub fn with_assistant(mut self, assistant: crate::assistant::Service) -> AppState {
        self.assistant = Some(assistant);
        self
    }
}

/// The whole app as a router (tests can drive it without a socket).
pub fn router(state: AppState) -> Router {
    let uploads = tower_http::services::ServeDir::new(&state.config.uploads);
    let statics = tower_http::services::ServeDir::new(&state.config.static_dir);
    Router::new()
        .merge(api::routes())
        .merge(jobs::routes())
        .merge(assistant::routes(&state))
        .merge(pages::routes())
        .nest_service("/static/uploads", uploads)
        .nest_service("/static", statics)
        .with_state(state)
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Serves the app on an already-bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
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
