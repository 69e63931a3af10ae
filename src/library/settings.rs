//! App settings: the non-secret keys that live in the ledger, the LLM key that never does (it
//! is kept in a 0600 file beside the ledger), and the environment overrides.

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The settings a user can change, and what each holds.
pub const KEYS: [(&str, &str); 6] = [
    (
        "llm_provider",
        "one of openrouter, ollama, lmstudio, openai",
    ),
    ("llm_url", "the OpenAI-compatible base URL"),
    ("llm_model", "the model name"),
    (
        "llm_timeout_secs",
        "seconds one LLM request may take (1-3600, default 180)",
    ),
    (
        "mcp_servers",
        "MCP servers the assistant also uses: a list of {name, command, args} or {name, url}",
    ),
    (
        "comfy_backends",
        "ComfyUI backends added at run time: a list of http(s) URLs (--comfy and COMFYUI_URL come first and stay)",
    ),
];

/// At most this many backends can be added from the settings.
pub const MAX_BACKENDS: usize = 16;

/// A ComfyUI base URL as GAZE keeps it (trimmed, no trailing slash), or why it is not one.
pub fn backend_url(s: &str) -> Result<String, String> {
    let t = s.trim().trim_end_matches('/');
    let rest = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
        .ok_or_else(|| format!("'{t}' is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || t.len() > 300 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "'{t}' is not a URL GAZE can reach (scheme://host[:port])"
        ));
    }
    Ok(t.to_string())
}

/// The backends kept in the settings (JSON object text), in order, without repeats.
pub fn backends(settings: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(settings).unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for u in v
        .get("comfy_backends")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Ok(u) = backend_url(u)
            && !out.contains(&u)
        {
            out.push(u);
        }
    }
    out
}
pub const PROVIDERS: [&str; 4] = ["openrouter", "ollama", "lmstudio", "openai"];

/// Applies a partial update to the stored settings. Returns the new settings and the new key
/// (`Some(None)` clears it) or an explanation of what is wrong.
#[allow(clippy::type_complexity)]
pub fn merge(
    current: &str,
    patch: &Map<String, Value>,
) -> Result<(Map<String, Value>, Option<Option<String>>), String> {
    let mut out: Map<String, Value> = serde_json::from_str(current).unwrap_or_default();
    let mut key = None;
    for (k, v) in patch {
        if k == "llm_key" {
            key = Some(match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::String(_) | Value::Null => None,
                _ => return Err("llm_key must be a string or null".into()),
            });
            continue;
        }
        if !KEYS.iter().any(|(name, _)| name == k) {
            let known: Vec<&str> = KEYS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "unknown setting '{k}' (known: {}, llm_key)",
                known.join(", ")
            ));
        }
        if k == "comfy_backends" {
            let list = v
                .as_array()
                .ok_or("comfy_backends must be a list of URLs")?;
            let mut urls: Vec<Value> = Vec::new();
            for u in list {
                let u = backend_url(u.as_str().ok_or("comfy_backends must be a list of URLs")?)?;
                if !urls.iter().any(|x| x.as_str() == Some(u.as_str())) {
                    urls.push(Value::String(u));
                }
            }
            if urls.len() > MAX_BACKENDS {
                return Err(format!(
                    "at most {MAX_BACKENDS} backends can be added from the settings"
                ));
            }
            out.insert(k.clone(), Value::Array(urls));
            continue;
        }
        if k == "llm_timeout_secs" {
            if !v.as_u64().is_some_and(|n| (1..=3600).contains(&n)) {
                return Err("llm_timeout_secs must be a whole number from 1 to 3600".into());
            }
            out.insert(k.clone(), v.clone());
            continue;
        }
        if k == "mcp_servers" {
            crate::assistant::servers::parse_servers(v)?;
            out.insert(k.clone(), v.clone());
            continue;
        }
        let Value::String(s) = v else {
            return Err(format!("setting '{k}' must be a string"));
        };
        if k == "llm_provider" && !PROVIDERS.contains(&s.as_str()) {
            return Err(format!(
                "llm_provider '{s}' is not one of {}",
                PROVIDERS.join(", ")
            ));
        }
        if k == "llm_url" && !(s.starts_with("http://") || s.starts_with("https://")) {
            return Err("llm_url must start with http:// or https://".into());
        }
        out.insert(k.clone(), v.clone());
    }
    Ok((out, key))
}

/// Where the LLM key is kept: beside the ledger file, never inside it.
pub fn secret_path(ledger_file: &Path) -> PathBuf {
    ledger_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("llm_key.secret")
}

pub fn read_key(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Stores or removes the key (owner-only permissions).
pub fn write_key(path: &Path, key: Option<&str>) -> std::io::Result<()> {
    match key {
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        Some(k) => {
            crate::library::files::write_atomic(path, k.as_bytes())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn merge_is_partial_and_keeps_the_key_out() {
        let (s, key) = merge(
            r#"{"llm_model":"a"}"#,
            &obj(json!({"llm_provider":"ollama","llm_key":"sk-1"})),
        )
        .unwrap();
        assert_eq!(
            Value::Object(s.clone()),
            json!({"llm_model":"a","llm_provider":"ollama"})
        );
        assert_eq!(key, Some(Some("sk-1".into())));
        assert!(!serde_json::to_string(&s).unwrap().contains("sk-1"));
    }

    #[test]
    fn backends_are_kept_trimmed_and_once() {
        let (s, _) = merge(
            "{}",
            &obj(json!({"comfy_backends": [" http://10.0.0.2:8188/ ", "http://10.0.0.2:8188", "https://gpu.lan"]})),
        )
        .unwrap();
        assert_eq!(
            s["comfy_backends"],
            json!(["http://10.0.0.2:8188", "https://gpu.lan"])
        );
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(backends(&text), ["http://10.0.0.2:8188", "https://gpu.lan"]);
        assert!(backends("{}").is_empty());
        assert!(backends("not json").is_empty());
        let many: Vec<String> = (0..=MAX_BACKENDS).map(|i| format!("http://h{i}")).collect();
        assert!(merge("{}", &obj(json!({"comfy_backends": many}))).is_err());
    }

    #[test]
    fn the_timeout_and_mcp_servers_are_settings() {
        let (s, _) = merge(
            "{}",
            &obj(json!({"llm_timeout_secs": 30,
                        "mcp_servers": [{"name": "web", "url": "http://127.0.0.1:9/mcp"}]})),
        )
        .unwrap();
        assert_eq!(s["llm_timeout_secs"], 30);
        assert_eq!(s["mcp_servers"][0]["name"], "web");
    }

    #[test]
    fn bad_settings_are_explained() {
        for (patch, word) in [
            (json!({"nope": 1}), "unknown"),
            (json!({"llm_model": 3}), "string"),
            (json!({"llm_provider": "x"}), "llm_provider"),
            (json!({"llm_url": "ftp://x"}), "http"),
            (json!({"llm_key": 5}), "llm_key"),
            (json!({"comfy_backends": "http://a"}), "list"),
            (json!({"comfy_backends": ["ftp://a"]}), "http"),
            (json!({"comfy_backends": ["http://"]}), "URL"),
            (json!({"comfy_backends": ["http://a b"]}), "reach"),
            (json!({"comfy_backends": [3]}), "list"),
            (json!({"llm_timeout_secs": 0}), "llm_timeout_secs"),
            (json!({"llm_timeout_secs": "5"}), "llm_timeout_secs"),
            (json!({"mcp_servers": [{"name": "x"}]}), "command"),
        ] {
            assert!(merge("{}", &obj(patch)).unwrap_err().contains(word));
        }
    }
}
