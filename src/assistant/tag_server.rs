//! The tag tools as an MCP server (rmcp): `search_tags`, `validate_tags` and `suggest_tags`
//! over the shared `TagIndex`. The same server runs over stdio (`gaze mcp tags`), over
//! streamable HTTP (`/mcp/tags`), and in-process for the assistant (a duplex pipe).

use super::tags::{TagIndex, TagKind};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::schemars::JsonSchema;
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The most results one call returns.
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct SearchParams {
    /// Words, or the start of a tag (`long ha`, `hair ornament`). Spaces and underscores are
    /// the same.
    pub query: String,
    /// How many results to return (default 10, at most 100).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only tags of this type: general, character, copyright, artist or meta.
    #[serde(default)]
    pub category: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct SuggestParams {
    /// A partial or misspelt tag.
    pub partial: String,
    /// How many suggestions to return (default 10, at most 100).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only tags of this type: general, character, copyright, artist or meta.
    #[serde(default)]
    pub category: Option<String>,
}

/// A list of tags, or one comma-separated string of them.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(untagged)]
pub enum TagList {
    List(Vec<String>),
    Text(String),
}

impl TagList {
    fn into_vec(self) -> Vec<String> {
        match self {
            TagList::List(v) => v,
            TagList::Text(s) => s.split(',').map(|t| t.trim().to_string()).collect(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ValidateParams {
    /// The tags to check, e.g. ["long hair", "red eyes"].
    pub tags: TagList,
}

#[derive(Clone)]
pub struct TagServer {
    index: Arc<TagIndex>,
}

fn limit(l: Option<u32>) -> usize {
    l.map_or(10, |l| l as usize).clamp(1, MAX_LIMIT)
}

fn tool_error(msg: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(msg)])
}

#[tool_router]
impl TagServer {
    pub fn new(index: Arc<TagIndex>) -> TagServer {
        TagServer { index }
    }

    #[tool(
        description = "Search Danbooru tags: tags whose name or alias starts with the query, then tags containing all its words, most used first. Returns {tags: [{name, category, post_count, alias?}]}.",
        annotations(read_only_hint = true)
    )]
    async fn search_tags(
        &self,
        Parameters(p): Parameters<SearchParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let kind = match TagKind::parse_filter(p.category.as_deref()) {
            Ok(k) => k,
            Err(e) => return Ok(tool_error(e)),
        };
        let hits = self.index.search(&p.query, limit(p.limit), kind);
        Ok(CallToolResult::structured(json!({ "tags": hits })))
    }

    #[tool(
        description = "Check tags exactly against the Danbooru tag list. Returns {valid: [...], invalid: [...], corrections: {alias: canonical tag}}. Spaces and underscores are the same.",
        annotations(read_only_hint = true)
    )]
    async fn validate_tags(
        &self,
        Parameters(p): Parameters<ValidateParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let tags = p.tags.into_vec();
        if tags.len() > 1000 {
            return Ok(tool_error("at most 1000 tags per call".into()));
        }
        let v = self.index.validate(&tags);
        Ok(CallToolResult::structured(json!(v)))
    }

    #[tool(
        description = "Autocomplete a partial tag, most used first; for a misspelt tag with no completion, the closest spellings. Returns {tags: [{name, category, post_count, alias?}]}.",
        annotations(read_only_hint = true)
    )]
    async fn suggest_tags(
        &self,
        Parameters(p): Parameters<SuggestParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let kind = match TagKind::parse_filter(p.category.as_deref()) {
            Ok(k) => k,
            Err(e) => return Ok(tool_error(e)),
        };
        let hits = self.index.suggest(&p.partial, limit(p.limit), kind);
        Ok(CallToolResult::structured(json!({ "tags": hits })))
    }
}

#[tool_handler(
    name = "gaze-tags",
    instructions = "Danbooru tag look-ups for Stable Diffusion prompts: search_tags to discover tags, validate_tags to check a list exactly, suggest_tags to complete or fix one. Tags are spelt with underscores; spaces work too."
)]
impl ServerHandler for TagServer {}

/// Serves the tag tools over stdio until the client goes away.
pub async fn serve_stdio(index: Arc<TagIndex>) -> Result<(), String> {
    use rmcp::ServiceExt;
    let running = TagServer::new(index)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| e.to_string())?;
    running.waiting().await.map_err(|e| e.to_string())?;
    Ok(())
}
