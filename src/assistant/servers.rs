//! The `mcp_servers` setting: MCP servers the user adds for the assistant, each a command
//! spoken to over stdio or a streamable-HTTP URL. Parsing and checks only (no IO), so the
//! settings rules can use it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The name the built-in tag server goes by.
pub const BUILTIN: &str = "gaze-tags";

/// A user-configured MCP server (settings `mcp_servers`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConfig {
    pub name: String,
    /// A program to run, speaking MCP over stdio.
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// A streamable-HTTP endpoint.
    #[serde(default)]
    pub url: Option<String>,
}

/// Reads and checks the `mcp_servers` setting (a JSON list).
pub fn parse_servers(v: &Value) -> Result<Vec<ServerConfig>, String> {
    let list: Vec<ServerConfig> = serde_json::from_value(v.clone()).map_err(|e| {
        format!("mcp_servers must be a list of {{\"name\", \"command\", \"args\"}} or {{\"name\", \"url\"}} objects: {e}")
    })?;
    let mut seen = std::collections::HashSet::new();
    for s in &list {
        let name_ok = !s.name.is_empty()
            && s.name.len() <= 40
            && s.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(format!(
                "MCP server name '{}' must be 1-40 letters, digits, _ or -",
                s.name
            ));
        }
        if s.name == BUILTIN || !seen.insert(s.name.clone()) {
            return Err(format!("MCP server name '{}' is taken", s.name));
        }
        match (&s.command, &s.url) {
            (Some(c), None) if !c.trim().is_empty() => {}
            (None, Some(u)) if u.starts_with("http://") || u.starts_with("https://") => {}
            _ => {
                return Err(format!(
                    "MCP server '{}' needs either \"command\" or an http(s) \"url\"",
                    s.name
                ));
            }
        }
    }
    Ok(list)
}

/// The configured servers in a settings JSON text (none when unset or unreadable).
pub fn servers_in_settings(settings: &str) -> Vec<ServerConfig> {
    serde_json::from_str::<Map<String, Value>>(settings)
        .ok()
        .and_then(|m| m.get("mcp_servers").cloned())
        .and_then(|v| parse_servers(&v).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_settings_are_checked() {
        let ok = parse_servers(&json!([
            {"name": "web", "url": "http://127.0.0.1:9/mcp"},
            {"name": "local-tool", "command": "uvx", "args": ["x"]}
        ]))
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].args, ["x"]);
        for (bad, word) in [
            (json!({"name": "x"}), "list"),
            (json!([{"name": "", "url": "http://x"}]), "name"),
            (json!([{"name": "a b", "url": "http://x"}]), "name"),
            (json!([{"name": "gaze-tags", "url": "http://x"}]), "taken"),
            (
                json!([{"name": "a", "url": "http://x"}, {"name": "a", "url": "http://y"}]),
                "taken",
            ),
            (json!([{"name": "a"}]), "either"),
            (json!([{"name": "a", "url": "ftp://x"}]), "either"),
            (
                json!([{"name": "a", "url": "http://x", "command": "y"}]),
                "either",
            ),
        ] {
            let e = parse_servers(&bad).unwrap_err();
            assert!(e.contains(word), "{bad}: {e}");
        }
        assert!(servers_in_settings("{}").is_empty());
        assert_eq!(
            servers_in_settings(r#"{"mcp_servers":[{"name":"w","url":"http://h/mcp"}]}"#).len(),
            1
        );
    }
}
