//! The assistant: drafting library entries with an OpenAI-compatible LLM that checks its tags
//! through MCP tools, bulk runs over LoRA folders, and GAZE's own MCP servers.
//!
//! - `tags`: the Danbooru tag index (`data/danbooru-tags.csv`) and its look-ups.
//! - `tag_server`: the tag tools (`search_tags`, `validate_tags`, `suggest_tags`) as an MCP
//!   server; `library_server`: the library as an MCP server (and the stdio bridge to a running
//!   app).
//! - `llm`: the chat-completions client; `hub`: the MCP client side (the built-in tag server and
//!   the servers configured in settings); `servers`: the `mcp_servers` setting; `schema`: what a category's answer must look like;
//!   `draft`: the tool-calling loop; `sidecar`: what LoRA files say about themselves; `bulk`:
//!   bulk runs as background work that survives restarts; `projection`: drafts and runs folded
//!   from events.
//!
//! Outside dependencies: rmcp (MCP), the LLM provider over HTTP (reqwest), child processes
//! (stdio MCP servers), and reading files (the tag list, prompts, LoRA sidecars). Must not:
//! touch redb, axum or maud, talk to ComfyUI, or write library files (changes are commands
//! through the handle). LLM keys never leave `llm` and the key file: no event, log or answer
//! carries them.

pub mod bulk;
pub mod draft;
pub mod hub;
pub mod library_server;
pub mod llm;
pub mod projection;
pub mod schema;
pub mod servers;
pub mod sidecar;
pub mod tag_server;
pub mod tags;

use crate::handle::Handle;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The tag list's file name inside `data/`.
pub const TAGS_FILE: &str = "danbooru-tags.csv";

/// The assistant as the app runs it: the tag index, the drafter (LLM + MCP tools) and the
/// bulk worker's live progress. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    pub index: Arc<tags::TagIndex>,
    pub drafter: draft::Drafter,
    pub progress: bulk::Progress,
    /// Ends the MCP HTTP sessions at shutdown.
    pub mcp_shutdown: tokio_util::sync::CancellationToken,
}

/// Loads the tag list, or an empty index (with a warning) when it cannot be read: the app
/// runs without tag look-ups rather than not at all.
pub fn load_index(path: &Path) -> Arc<tags::TagIndex> {
    match tags::TagIndex::load(path) {
        Ok(ix) => Arc::new(ix),
        Err(e) => {
            tracing::warn!("{e}; tag look-ups will find nothing");
            Arc::new(tags::TagIndex::parse(""))
        }
    }
}

impl Service {
    /// Loads the tag index from `data/`, connects the built-in tag server and starts the bulk
    /// worker.
    pub async fn start(
        handle: &Handle,
        data: &Path,
        ledger_file: &Path,
        loras: Option<PathBuf>,
    ) -> Result<Service, String> {
        let path = data.join(TAGS_FILE);
        let index = tokio::task::spawn_blocking(move || load_index(&path))
            .await
            .map_err(|e| e.to_string())?;
        let hub = hub::Hub::start(index.clone()).await?;
        let drafter = draft::Drafter::new(
            hub,
            data.join("prompts"),
            crate::library::settings::secret_path(ledger_file),
        );
        let progress = bulk::Progress::default();
        bulk::start(handle.clone(), drafter.clone(), loras, progress.clone());
        Ok(Service {
            index,
            drafter,
            progress,
            mcp_shutdown: tokio_util::sync::CancellationToken::new(),
        })
    }

    fn http_config(&self) -> StreamableHttpServerConfig {
        // The app's request guard checks Host and Origin for every route, with the user's
        // --allow-host names; rmcp's own loopback-only host check would refuse those.
        StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .with_cancellation_token(self.mcp_shutdown.child_token())
    }

    /// The tag server over streamable HTTP (mounted at `/mcp/tags`).
    pub fn tags_http(&self) -> StreamableHttpService<tag_server::TagServer, LocalSessionManager> {
        let index = self.index.clone();
        StreamableHttpService::new(
            move || Ok(tag_server::TagServer::new(index.clone())),
            Arc::new(LocalSessionManager::default()),
            self.http_config(),
        )
    }

    /// The library server over streamable HTTP (mounted at `/mcp/library`).
    pub fn library_http(
        &self,
        handle: &Handle,
    ) -> StreamableHttpService<library_server::LibraryServer, LocalSessionManager> {
        let handle = handle.clone();
        StreamableHttpService::new(
            move || Ok(library_server::LibraryServer::new(handle.clone())),
            Arc::new(LocalSessionManager::default()),
            self.http_config(),
        )
    }
}
