//! GAZE's library as an MCP server (rmcp), for other agents: list and search entries, read one
//! (optionally as of a seq), preview a prompt, queue a generation, read a job, create or edit
//! an entry. Changes go through the handle with origin `mcp`. Served over streamable HTTP at
//! `/mcp/library` and over stdio by `gaze mcp library`, which either hosts it on a ledger it
//! opens itself or, when a running app holds the ledger, bridges stdio to that app's
//! `/mcp/library` (`Bridge`).

use crate::handle::{Handle, Request};
use crate::jobs::request::{self, GenRequest};
use crate::library::category::{Category, is_slug};
use crate::library::command::{Command, Refusal};
use crate::library::projection::{Entry, Library};
use crate::store::event::{Origin, Source};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::schemars::JsonSchema;
use rmcp::service::{RequestContext, RunningService};
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ListParams {
    /// characters, looks, outfits, actions, styles, scenes, detailers, checkpoints or presets.
    pub category: String,
    /// Only entries whose slug, id or name contains this text (case-insensitive).
    #[serde(default)]
    pub filter: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Skip this many first.
    #[serde(default)]
    pub offset: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct SearchParams {
    /// Words to find in entries' names, ids and documents (all must appear).
    pub query: String,
    /// Only this category.
    #[serde(default)]
    pub category: Option<String>,
    /// At most this many (default 20, at most 200).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct GetParams {
    pub category: String,
    pub slug: String,
    /// Read the entry as it was right after this ledger seq (time travel).
    #[serde(default)]
    pub at_seq: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct GenerationParams {
    /// A generation request, as for POST /api/generate: `category` and `slug` of the target,
    /// and optionally `character` (a slug or `__random__`), `with`, `extras`, `fields`,
    /// `active_outfit`, `extra_positive`, `extra_negative`, `seed`, `checkpoint`, `width`,
    /// `height`, `action` (`preview` or `replace`).
    pub request: Map<String, Value>,
    /// Also return the full ComfyUI workflow (large).
    #[serde(default)]
    pub include_workflow: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct JobParams {
    /// The job id (a ULID) that queue_generation returned.
    pub job_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct CreateParams {
    pub category: String,
    /// The document; its id field may be left out and derived from its name field.
    pub document: Map<String, Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct EditParams {
    pub category: String,
    pub slug: String,
    /// The whole new document (it replaces the old one; the id must keep the slug).
    pub document: Map<String, Value>,
}

#[derive(Clone)]
pub struct LibraryServer {
    handle: Handle,
}

fn fail(msg: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(msg.into())])
}

fn ok(v: Value) -> CallToolResult {
    CallToolResult::structured(v)
}

fn category(key: &str) -> Result<Category, String> {
    Category::parse(key).ok_or_else(|| {
        let known: Vec<&str> = Category::ALL.iter().map(|c| c.key()).collect();
        format!("unknown category '{key}' (known: {})", known.join(" "))
    })
}

fn summary(e: &Entry) -> Value {
    json!({"slug": e.slug, "id": e.id, "name": e.name, "file": e.file,
           "version": e.version, "cover": e.cover.as_ref().map(|p| format!("/static/{p}"))})
}

fn full(e: &Entry) -> Value {
    let mut v = summary(e);
    v["data"] = e.data().map_or(Value::Null, Value::Object);
    v["default_fields"] = json!(e.default_fields);
    v
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return Ok(fail(r)),
        }
    };
}

impl LibraryServer {
    async fn exec(&self, cmd: Command) -> Result<crate::handle::Outcome, String> {
        self.handle
            .run(Origin::Mcp, Request::Command(cmd))
            .await
            .map_err(|e| e.to_string())
    }

    fn entry_now(&self, c: Category, slug: &str) -> Result<Value, String> {
        self.handle
            .library()
            .get(c, slug)
            .map(full)
            .ok_or_else(|| format!("no {} with slug '{slug}'", c.desc().singular))
    }
}

fn resolve(
    lib: &Library,
    body: &Map<String, Value>,
) -> Result<(GenRequest, request::Resolved), String> {
    let req = GenRequest::from_json(body)?;
    let resolved = request::resolve(
        lib,
        &req,
        crate::handle::random_seed(),
        &request::Backend::default(),
    )
    .map_err(|r: Refusal| r.to_string())?;
    Ok((req, resolved))
}

#[tool_router]
impl LibraryServer {
    pub fn new(handle: Handle) -> LibraryServer {
        LibraryServer { handle }
    }

    #[tool(
        description = "List the entries of one library category: slug, id, name, file, version (the ledger seq of its last change), cover.",
        annotations(read_only_hint = true)
    )]
    async fn list_entries(
        &self,
        Parameters(p): Parameters<ListParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let c = tri!(category(&p.category));
        let needle = p
            .filter
            .as_deref()
            .map(str::to_lowercase)
            .unwrap_or_default();
        let limit = p.limit.map_or(100, |l| l as usize).clamp(1, 1000);
        let offset = p.offset.unwrap_or(0) as usize;
        let lib = self.handle.library();
        let matching: Vec<&Entry> = lib
            .shelf(c)
            .docs
            .values()
            .filter(|e| {
                needle.is_empty()
                    || [&e.slug, &e.id, &e.name]
                        .iter()
                        .any(|s| s.to_lowercase().contains(&needle))
            })
            .collect();
        let items: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|e| summary(e))
            .collect();
        Ok(ok(
            json!({"category": c.key(), "total": matching.len(), "items": items, "seq": lib.seq}),
        ))
    }

    #[tool(
        description = "Search every category (or one) for entries whose name, id or document text contains all the query words. Returns category, slug, name and where it matched.",
        annotations(read_only_hint = true)
    )]
    async fn search_entries(
        &self,
        Parameters(p): Parameters<SearchParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cats = match p.category.as_deref().filter(|c| !c.is_empty()) {
            Some(k) => vec![tri!(category(k))],
            None => Category::ALL.to_vec(),
        };
        let words: Vec<String> = p.query.split_whitespace().map(str::to_lowercase).collect();
        if words.is_empty() {
            return Ok(fail("the query is empty"));
        }
        let limit = p.limit.map_or(20, |l| l as usize).clamp(1, 200);
        let lib = self.handle.library();
        let mut hits = Vec::new();
        'outer: for c in cats {
            for e in lib.shelf(c).docs.values() {
                let head = format!("{} {} {}", e.slug, e.id, e.name).to_lowercase();
                let text = e.json.to_lowercase();
                let in_head = words.iter().all(|w| head.contains(w.as_str()));
                if in_head
                    || words
                        .iter()
                        .all(|w| head.contains(w.as_str()) || text.contains(w.as_str()))
                {
                    hits.push(json!({"category": c.key(), "slug": e.slug, "name": e.name,
                                     "matched": if in_head { "name" } else { "document" }}));
                    if hits.len() >= limit {
                        break 'outer;
                    }
                }
            }
        }
        Ok(ok(json!({"results": hits})))
    }

    #[tool(
        description = "Read one entry: its document (`data`), default fields, version and cover. With at_seq, the entry as it was right after that ledger seq.",
        annotations(read_only_hint = true)
    )]
    async fn get_entry(
        &self,
        Parameters(p): Parameters<GetParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let c = tri!(category(&p.category));
        if !is_slug(&p.slug) {
            return Ok(fail(format!(
                "'{}' is not a slug (letters, digits and _ only)",
                p.slug
            )));
        }
        let now = self.handle.library().seq;
        match p.at_seq.filter(|s| *s < now) {
            None => Ok(ok(tri!(self.entry_now(c, &p.slug)))),
            Some(at) => {
                let h = self.handle.clone();
                let lib = match tokio::task::spawn_blocking(move || h.library_at(at)).await {
                    Ok(Ok(lib)) => lib,
                    Ok(Err(e)) => return Ok(fail(e.to_string())),
                    Err(e) => return Ok(fail(e.to_string())),
                };
                match lib.get(c, &p.slug) {
                    Some(e) => {
                        let mut v = full(e);
                        v["at_seq"] = at.into();
                        Ok(ok(v))
                    }
                    None => Ok(fail(format!(
                        "no {} with slug '{}' at seq {at}",
                        c.desc().singular,
                        p.slug
                    ))),
                }
            }
        }
    }

    #[tool(
        description = "Build the prompts (and optionally the ComfyUI workflow) a generation request would use, without queueing it. Returns prompts, seed, checkpoint, LoRAs, document versions and warnings.",
        annotations(read_only_hint = true)
    )]
    async fn preview_prompt(
        &self,
        Parameters(p): Parameters<GenerationParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let (_, resolved) = tri!(resolve(&self.handle.library(), &p.request));
        let mut v = resolved.preview();
        if !p.include_workflow
            && let Value::Object(m) = &mut v
        {
            m.remove("workflow");
        }
        Ok(ok(v))
    }

    #[tool(
        description = "Queue one image generation (the same request as preview_prompt). Returns {job_id}; read it with get_job."
    )]
    async fn queue_generation(
        &self,
        Parameters(p): Parameters<GenerationParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let spec = {
            let lib = self.handle.library();
            let (req, resolved) = tri!(resolve(&lib, &p.request));
            request::job_spec(&req, &resolved, &p.request)
        };
        let id = u128::from(ulid::Ulid::generate());
        tri!(
            self.exec(Command::Enqueue {
                jobs: vec![(id, spec)]
            })
            .await
        );
        Ok(ok(
            json!({"job_id": ulid::Ulid::from(id).to_string(), "status": "pending"}),
        ))
    }

    #[tool(
        description = "A job's status (pending, running, done, failed, cancelled), error, images and recipe (prompts, workflow, seed, checkpoint, LoRAs, document versions).",
        annotations(read_only_hint = true)
    )]
    async fn get_job(
        &self,
        Parameters(p): Parameters<JobParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let Ok(id) = ulid::Ulid::from_string(p.job_id.trim()).map(u128::from) else {
            return Ok(fail(format!("'{}' is not a job id", p.job_id)));
        };
        let mut v = {
            let lib = self.handle.library();
            let Some(j) = lib.jobs.get(id) else {
                return Ok(fail(format!("no job {}", p.job_id)));
            };
            json!({"job_id": p.job_id.trim(), "status": j.state.status(), "label": j.info.label,
                   "attempts": j.attempts, "error": j.error,
                   "images": j.images.iter().map(|i| format!("/static/{i}")).collect::<Vec<_>>()})
        };
        let h = self.handle.clone();
        if let Ok(Ok(spec)) = tokio::task::spawn_blocking(move || h.job_spec(id)).await {
            v["recipe"] = serde_json::from_str(&spec.recipe).unwrap_or(Value::Null);
            v["request"] = serde_json::from_str(&spec.request).unwrap_or(Value::Null);
        }
        Ok(ok(v))
    }

    #[tool(
        description = "Create a library entry from a document. The change is recorded with origin mcp. Returns the entry."
    )]
    async fn create_entry(
        &self,
        Parameters(p): Parameters<CreateParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let c = tri!(category(&p.category));
        let o = tri!(
            self.exec(Command::Create {
                category: c,
                doc: p.document,
                source: Source::Manual
            })
            .await
        );
        let slug = o
            .events
            .iter()
            .find_map(|s| s.event().subject().map(|(_, s)| s.to_string()));
        match slug {
            Some(slug) => Ok(ok(tri!(self.entry_now(c, &slug)))),
            None => Ok(fail("nothing was created")),
        }
    }

    #[tool(
        description = "Replace an entry's document (the id must keep the slug). The change is recorded with origin mcp. Returns the entry."
    )]
    async fn edit_entry(
        &self,
        Parameters(p): Parameters<EditParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let c = tri!(category(&p.category));
        if !is_slug(&p.slug) {
            return Ok(fail(format!("'{}' is not a slug", p.slug)));
        }
        tri!(
            self.exec(Command::Edit {
                category: c,
                slug: p.slug.clone(),
                doc: p.document
            })
            .await
        );
        Ok(ok(tri!(self.entry_now(c, &p.slug))))
    }
}

#[tool_handler(
    name = "gaze-library",
    instructions = "GAZE's library of Stable Diffusion prompt assets (characters, looks, outfits, actions, styles, scenes, detailers, checkpoints, presets). List, search and read entries (also as of an earlier ledger seq), preview prompts, queue generations and read jobs, create and edit entries."
)]
impl ServerHandler for LibraryServer {}

/// Serves the library over stdio until the client goes away.
pub async fn serve_stdio(handle: Handle) -> Result<(), String> {
    use rmcp::ServiceExt;
    let running = LibraryServer::new(handle)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| e.to_string())?;
    running.waiting().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Forwards an MCP server's tools from another transport: `gaze mcp library` uses it to bridge
/// stdio to a running app's `/mcp/library` when that app holds the ledger.
pub struct Bridge {
    upstream: RunningService<RoleClient, ()>,
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        if let Some(up) = self.upstream.peer_info() {
            if let Some(si) = up.server_info.clone() {
                info = info.with_server_info(si);
            }
            if let Some(i) = up.instructions.clone() {
                info = info.with_instructions(i);
            }
        }
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.upstream.list_all_tools().await.map_err(|e| {
            ErrorData::internal_error(format!("the running GAZE did not answer: {e}"), None)
        })?;
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.upstream
            .call_tool(request)
            .await
            .map(Into::into)
            .map_err(|e| {
                ErrorData::internal_error(format!("the running GAZE did not answer: {e}"), None)
            })
    }
}

/// Bridges stdio to `url` (a running app's `/mcp/library`) until the client goes away.
pub async fn bridge_stdio(url: &str) -> Result<(), String> {
    use rmcp::ServiceExt;
    let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url);
    let upstream = ()
        .serve(transport)
        .await
        .map_err(|e| format!("cannot reach the running GAZE at {url}: {e}"))?;
    let running = Bridge { upstream }
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| e.to_string())?;
    running.waiting().await.map_err(|e| e.to_string())?;
    Ok(())
}
