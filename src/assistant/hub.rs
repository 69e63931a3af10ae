//! The assistant's MCP client side (rmcp): the built-in tag server, connected in-process over a
//! duplex pipe, plus the servers the user configured in settings (`mcp_servers`: a command to
//! run over stdio, or a streamable-HTTP URL). Their tools are offered to the model together;
//! a name two servers share is offered as `server__tool`. Connections are kept and reused, and
//! re-made when the settings change or a server goes away.

use super::llm::ToolSpec;
use super::tag_server::TagServer;
use super::tags::TagIndex;
use rmcp::model::{CallToolRequestParams, Tool};
use rmcp::service::{Peer, RunningService};
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

pub use super::servers::{BUILTIN, ServerConfig, parse_servers, servers_in_settings};
/// How long one tool call may take.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

struct Conn {
    config: ServerConfig,
    service: RunningService<RoleClient, ()>,
    tools: Vec<Tool>,
}

/// The connections, cheap to clone.
#[derive(Clone)]
pub struct Hub {
    builtin: Arc<Conn>,
    extra: Arc<Mutex<HashMap<String, Arc<Conn>>>>,
}

async fn connect(config: &ServerConfig) -> Result<Conn, String> {
    let service = match (&config.command, &config.url) {
        (Some(cmd), _) => {
            let args = config.args.clone();
            let transport =
                TokioChildProcess::new(tokio::process::Command::new(cmd).configure(|c| {
                    c.args(&args);
                }))
                .map_err(|e| format!("cannot start '{cmd}': {e}"))?;
            tokio::time::timeout(TOOL_TIMEOUT, ().serve(transport))
                .await
                .map_err(|_| "no MCP handshake within 30 s".to_string())?
                .map_err(|e| e.to_string())?
        }
        (None, Some(url)) => {
            let transport = StreamableHttpClientTransport::from_uri(url.as_str());
            tokio::time::timeout(TOOL_TIMEOUT, ().serve(transport))
                .await
                .map_err(|_| "no MCP handshake within 30 s".to_string())?
                .map_err(|e| e.to_string())?
        }
        (None, None) => return Err("neither a command nor a URL".into()),
    };
    let tools = tokio::time::timeout(TOOL_TIMEOUT, service.list_all_tools())
        .await
        .map_err(|_| "tools/list took more than 30 s".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(Conn {
        config: config.clone(),
        service,
        tools,
    })
}

/// What one tool call returned.
#[derive(Clone, Debug, Serialize)]
pub struct ToolOutcome {
    pub tool: String,
    pub server: String,
    pub arguments: Value,
    /// Structured content when the tool gave it, else its text.
    pub result: Value,
    pub error: bool,
}

impl ToolOutcome {
    /// The text handed back to the model.
    pub fn for_model(&self) -> String {
        let body = match &self.result {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        if self.error {
            format!("error: {body}")
        } else {
            body
        }
    }
}

/// The tools offered for one draft.
pub struct Toolbox {
    /// (name offered to the model, server, tool name on that server, peer, tool)
    entries: Vec<(String, String, String, Peer<RoleClient>, Tool)>,
}

impl Hub {
    /// Starts the built-in tag server on an in-process pipe and connects to it.
    pub async fn start(index: Arc<TagIndex>) -> Result<Hub, String> {
        let (client_io, server_io) = tokio::io::duplex(256 * 1024);
        let server = TagServer::new(index);
        tokio::spawn(async move {
            match server.serve(server_io).await {
                Ok(running) => {
                    let _ = running.waiting().await;
                }
                Err(e) => tracing::error!("the built-in tag server did not start: {e}"),
            }
        });
        let service = ().serve(client_io).await.map_err(|e| e.to_string())?;
        let tools = service.list_all_tools().await.map_err(|e| e.to_string())?;
        Ok(Hub {
            builtin: Arc::new(Conn {
                config: ServerConfig {
                    name: BUILTIN.into(),
                    command: None,
                    args: Vec::new(),
                    url: None,
                },
                service,
                tools,
            }),
            extra: Arc::default(),
        })
    }

    /// Connects to the configured servers that are not connected yet (dropping ones no longer
    /// configured or closed) and returns every tool, with a warning per server that failed.
    pub async fn toolbox(&self, servers: &[ServerConfig]) -> (Toolbox, Vec<String>) {
        let mut warnings = Vec::new();
        let mut conns = vec![self.builtin.clone()];
        {
            let mut extra = self.extra.lock().await;
            extra.retain(|name, c| {
                servers.iter().any(|s| &s.name == name && *s == c.config) && !c.service.is_closed()
            });
            for s in servers {
                if let Some(c) = extra.get(&s.name) {
                    conns.push(c.clone());
                    continue;
                }
                match connect(s).await {
                    Ok(c) => {
                        let c = Arc::new(c);
                        extra.insert(s.name.clone(), c.clone());
                        conns.push(c);
                    }
                    Err(e) => {
                        let w = format!("MCP server '{}' is unavailable: {e}", s.name);
                        tracing::warn!("{w}");
                        warnings.push(w);
                    }
                }
            }
        }
        let mut count: HashMap<&str, usize> = HashMap::new();
        for c in &conns {
            for t in &c.tools {
                *count.entry(&t.name).or_default() += 1;
            }
        }
        let mut entries = Vec::new();
        for c in &conns {
            for t in &c.tools {
                let offered = if count[t.name.as_ref()] > 1 && c.config.name != BUILTIN {
                    format!("{}__{}", c.config.name, t.name)
                } else {
                    t.name.to_string()
                };
                entries.push((
                    offered,
                    c.config.name.clone(),
                    t.name.to_string(),
                    c.service.peer().clone(),
                    t.clone(),
                ));
            }
        }
        (Toolbox { entries }, warnings)
    }
}

impl Toolbox {
    /// The tools in the chat-completions form.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.entries
            .iter()
            .map(|(name, _, _, _, t)| ToolSpec {
                name: name.clone(),
                description: t.description.as_deref().unwrap_or_default().to_string(),
                parameters: Value::Object((*t.input_schema).clone()),
            })
            .collect()
    }

    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.0.as_str()).collect()
    }

    /// Calls a tool by the name the model used. Every failure becomes an error outcome the
    /// model can read, never a failed draft.
    pub async fn call(&self, name: &str, arguments: &str) -> ToolOutcome {
        let parsed: Result<Value, String> = if arguments.trim().is_empty() {
            Ok(json!({}))
        } else {
            serde_json::from_str(arguments).map_err(|e| e.to_string())
        };
        let mut outcome = ToolOutcome {
            tool: name.to_string(),
            server: String::new(),
            arguments: parsed
                .clone()
                .unwrap_or(Value::String(arguments.to_string())),
            result: Value::Null,
            error: true,
        };
        let Some((_, server, tool, peer, _)) = self.entries.iter().find(|e| e.0 == name) else {
            outcome.result = format!(
                "there is no tool '{name}' (tools: {})",
                self.names().join(", ")
            )
            .into();
            return outcome;
        };
        outcome.server = server.clone();
        let args = match parsed {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                outcome.result = "the arguments must be a JSON object".into();
                return outcome;
            }
            Err(e) => {
                outcome.result = format!("the arguments are not valid JSON: {e}").into();
                return outcome;
            }
        };
        let params = CallToolRequestParams::new(tool.clone()).with_arguments(args);
        match tokio::time::timeout(TOOL_TIMEOUT, peer.call_tool(params)).await {
            Err(_) => outcome.result = "the tool did not answer within 30 s".into(),
            Ok(Err(e)) => outcome.result = e.to_string().into(),
            Ok(Ok(r)) => {
                outcome.error = r.is_error == Some(true);
                outcome.result = match r.structured_content {
                    Some(v) => v,
                    None => r
                        .content
                        .iter()
                        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                        .collect::<Vec<_>>()
                        .join("\n")
                        .into(),
                };
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_built_in_tools_answer_through_the_pipe() {
        let index = Arc::new(TagIndex::parse(
            "long_hair,0,100,longhair\nlong_sleeves,0,50,\nhatsune_miku,4,10,\n",
        ));
        let hub = Hub::start(index).await.unwrap();
        let (tb, warnings) = hub.toolbox(&[]).await;
        assert!(warnings.is_empty());
        let mut names = tb.names();
        names.sort_unstable();
        assert_eq!(names, ["search_tags", "suggest_tags", "validate_tags"]);
        assert!(tb.specs().iter().all(|s| s.parameters["type"] == "object"));
        let r = tb
            .call("search_tags", r#"{"query": "long", "limit": 5}"#)
            .await;
        assert!(!r.error, "{r:?}");
        assert_eq!(r.server, BUILTIN);
        assert_eq!(r.result["tags"][0]["name"], "long_hair");
        assert_eq!(r.result["tags"][1]["name"], "long_sleeves");
        let r = tb
            .call(
                "validate_tags",
                r#"{"tags": ["long hair", "longhair", "nope"]}"#,
            )
            .await;
        assert_eq!(r.result["valid"], json!(["long hair"]));
        assert_eq!(r.result["corrections"]["longhair"], "long_hair");
        let r = tb
            .call("validate_tags", r#"{"tags": "long hair, nope"}"#)
            .await;
        assert_eq!(r.result["invalid"], json!(["nope"]));
        let r = tb
            .call("search_tags", r#"{"query": "x", "category": "bogus"}"#)
            .await;
        assert!(
            r.error && r.for_model().contains("unknown tag category"),
            "{r:?}"
        );
        let r = tb.call("search_tags", "{not json").await;
        assert!(r.error && r.for_model().contains("not valid JSON"));
        let r = tb.call("make_coffee", "{}").await;
        assert!(r.error && r.for_model().contains("no tool 'make_coffee'"));
        // A server that cannot start is a warning, not a failure.
        let (tb, warnings) = hub
            .toolbox(&[ServerConfig {
                name: "broken".into(),
                command: Some("/nonexistent/mcp-server".into()),
                args: vec![],
                url: None,
            }])
            .await;
        assert_eq!(tb.names().len(), 3);
        assert!(
            warnings[0].contains("'broken' is unavailable"),
            "{warnings:?}"
        );
    }
}
