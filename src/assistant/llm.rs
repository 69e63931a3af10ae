//! The LLM client: OpenAI-compatible chat completions (OpenRouter, Ollama, LM Studio, OpenAI or
//! any base URL) with tool calls. Settings say which provider, URL and model; the key comes
//! from the key file beside the ledger; `GAZE_LLM_URL`, `GAZE_LLM_MODEL`, `GAZE_LLM_KEY` and
//! `GAZE_LLM_TIMEOUT` override. Failures are classified so callers can say exactly what went
//! wrong. The key is sent as a bearer token and nowhere else (not in errors, not in `Debug`).

use serde_json::{Map, Value, json};
use std::path::Path;
use std::time::Duration;

/// How long one chat request may take unless settings or `GAZE_LLM_TIMEOUT` say otherwise.
pub const DEFAULT_TIMEOUT_SECS: u64 = 180;

#[derive(Clone)]
pub struct LlmConfig {
    pub provider: String,
    /// The base URL, without a trailing `/` (`…/v1`); `/chat/completions` is added.
    pub url: String,
    pub model: String,
    key: Option<String>,
    pub timeout: Duration,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("provider", &self.provider)
            .field("url", &self.url)
            .field("model", &self.model)
            .field("key", &self.key.as_ref().map(|_| "(set)"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The base URL a provider uses when settings name none.
pub fn default_url(provider: &str) -> Option<&'static str> {
    match provider {
        "openrouter" => Some("https://openrouter.ai/api/v1"),
        "ollama" => Some("http://127.0.0.1:11434/v1"),
        "lmstudio" => Some("http://127.0.0.1:1234/v1"),
        "openai" => Some("https://api.openai.com/v1"),
        _ => None,
    }
}

fn env(key: &str) -> Option<String> {
    std::env::var(key)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl LlmConfig {
    /// The configuration in force: settings (a JSON object text), the key file, and the
    /// environment overrides.
    pub fn resolve(settings: &str, key_file: &Path) -> Result<LlmConfig, LlmError> {
        let s: Map<String, Value> = serde_json::from_str(settings).unwrap_or_default();
        let text = |k: &str| {
            s.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        // No provider named: a URL alone means some OpenAI-compatible server, nothing at all
        // means OpenRouter (the original's default).
        let provider = text("llm_provider").unwrap_or_else(|| {
            if env("GAZE_LLM_URL").is_some() || text("llm_url").is_some() {
                "openai".into()
            } else {
                "openrouter".into()
            }
        });
        let url = env("GAZE_LLM_URL")
            .or_else(|| text("llm_url"))
            .or_else(|| default_url(&provider).map(String::from))
            .ok_or_else(|| {
                LlmError::NotConfigured(format!(
                    "no LLM URL: set llm_url in settings or GAZE_LLM_URL (provider '{provider}' has no default)"
                ))
            })?;
        let model = env("GAZE_LLM_MODEL")
            .or_else(|| text("llm_model"))
            .ok_or_else(|| {
                LlmError::NotConfigured(
                    "no LLM model: set llm_model in settings or GAZE_LLM_MODEL".into(),
                )
            })?;
        let key = env("GAZE_LLM_KEY").or_else(|| crate::library::settings::read_key(key_file));
        if provider == "openrouter" && key.is_none() && text("llm_url").is_none() {
            return Err(LlmError::NotConfigured(
                "OpenRouter needs an API key: set llm_key in settings or GAZE_LLM_KEY".into(),
            ));
        }
        let secs = env("GAZE_LLM_TIMEOUT")
            .and_then(|v| v.parse::<u64>().ok())
            .or_else(|| s.get("llm_timeout_secs").and_then(Value::as_u64))
            .unwrap_or(DEFAULT_TIMEOUT_SECS)
            .clamp(1, 3600);
        Ok(LlmConfig {
            provider,
            url: url.trim_end_matches('/').to_string(),
            model,
            key,
            timeout: Duration::from_secs(secs),
        })
    }

    /// Builds a configuration directly (tools and tests).
    pub fn new(url: &str, model: &str, key: Option<&str>, timeout: Duration) -> LlmConfig {
        LlmConfig {
            provider: "openai".into(),
            url: url.trim_end_matches('/').to_string(),
            model: model.into(),
            key: key.map(String::from),
            timeout,
        }
    }

    /// `provider/model`, as drafts record it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

/// What went wrong talking to the LLM.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmError {
    /// Settings do not say which LLM to use.
    NotConfigured(String),
    /// The provider could not be reached (connection refused, DNS, TLS).
    Unreachable(String),
    /// No answer within the timeout (seconds).
    Timeout(u64),
    /// The provider answered with an HTTP error.
    Provider { status: u16, message: String },
    /// The model declined to answer.
    Refused(String),
    /// The provider's answer is not a chat completion.
    Garbage(String),
    /// The model kept calling tools without answering.
    TooManyTurns(usize),
    /// The model's answer never became a valid document.
    InvalidAnswer(String),
}

impl LlmError {
    /// A short machine-readable name for the API's `kind` field.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::NotConfigured(_) => "not_configured",
            LlmError::Unreachable(_) => "unreachable",
            LlmError::Timeout(_) => "timeout",
            LlmError::Provider { .. } => "provider_error",
            LlmError::Refused(_) => "refused",
            LlmError::Garbage(_) => "garbage",
            LlmError::TooManyTurns(_) => "too_many_turns",
            LlmError::InvalidAnswer(_) => "invalid_answer",
        }
    }

    /// Worth trying again later (a bulk run waits and retries these).
    pub fn is_transient(&self) -> bool {
        match self {
            LlmError::Unreachable(_) | LlmError::Timeout(_) => true,
            LlmError::Provider { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl std::fmt::Display for LlmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LlmError::NotConfigured(m) => write!(f, "the assistant is not set up: {m}"),
            LlmError::Unreachable(m) => write!(f, "the LLM provider cannot be reached: {m}"),
            LlmError::Timeout(s) => write!(f, "the LLM provider did not answer within {s} s"),
            LlmError::Provider { status, message } => {
                write!(f, "the LLM provider answered HTTP {status}: {message}")
            }
            LlmError::Refused(m) => write!(f, "the model refused: {m}"),
            LlmError::Garbage(m) => write!(f, "the LLM provider's answer is not usable: {m}"),
            LlmError::TooManyTurns(n) => write!(
                f,
                "the model made tool calls for {n} turns without giving an answer"
            ),
            LlmError::InvalidAnswer(m) => write!(f, "the model's answer is not valid: {m}"),
        }
    }
}

impl std::error::Error for LlmError {}

/// A tool offered to the model.
#[derive(Clone, Debug)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// A JSON Schema object.
    pub parameters: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (JSON text, possibly malformed).
    pub arguments: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
}

impl Reply {
    /// The assistant message to send back with the next request.
    pub fn to_message(&self) -> Value {
        let mut m = json!({"role": "assistant", "content": self.content});
        if !self.tool_calls.is_empty() {
            m["tool_calls"] = self
                .tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                           "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
        }
        m
    }
}

fn shorten(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let cut: String = s.chars().take(n).collect();
        format!("{cut}…")
    }
}

/// Parses a chat-completions response body.
pub fn parse_reply(body: &str) -> Result<Reply, LlmError> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| LlmError::Garbage(format!("not JSON ({e}): {}", shorten(body, 200))))?;
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| err.to_string(), String::from);
        return Err(LlmError::Provider {
            status: 200,
            message: shorten(&message, 300),
        });
    }
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| LlmError::Garbage(format!("no choices in {}", shorten(body, 200))))?;
    let msg = choice
        .get("message")
        .ok_or_else(|| LlmError::Garbage("the choice has no message".into()))?;
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(String::from);
    if let Some(r) = msg
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
    {
        return Err(LlmError::Refused(shorten(r, 300)));
    }
    if finish_reason.as_deref() == Some("content_filter") {
        return Err(LlmError::Refused(
            "the provider's content filter stopped the answer".into(),
        ));
    }
    let content = msg.get("content").and_then(Value::as_str).map(String::from);
    let mut tool_calls = Vec::new();
    for (i, c) in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let f = c
            .get("function")
            .ok_or_else(|| LlmError::Garbage("a tool call has no function".into()))?;
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| LlmError::Garbage("a tool call has no name".into()))?;
        let arguments = match f.get("arguments") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "{}".into(),
            Some(other) => other.to_string(),
        };
        let id = c
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("call_{i}"), String::from);
        tool_calls.push(ToolCall {
            id,
            name: name.to_string(),
            arguments,
        });
    }
    Ok(Reply {
        content,
        tool_calls,
        finish_reason,
    })
}

/// The HTTP client for LLM calls (one per app, cloned).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// One chat-completions request.
pub async fn chat(
    http: &reqwest::Client,
    cfg: &LlmConfig,
    messages: &[Value],
    tools: &[ToolSpec],
) -> Result<Reply, LlmError> {
    let mut body = json!({
        "model": cfg.model,
        "messages": messages,
        "temperature": 0.4,
    });
    if !tools.is_empty() {
        body["tools"] = tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect();
        body["tool_choice"] = "auto".into();
    }
    let mut req = http
        .post(format!("{}/chat/completions", cfg.url))
        .timeout(cfg.timeout)
        .json(&body);
    if let Some(k) = &cfg.key {
        req = req.bearer_auth(k);
    }
    if cfg.provider == "openrouter" {
        req = req.header("X-Title", "GAZE");
    }
    let secs = cfg.timeout.as_secs();
    let classify = |e: reqwest::Error| {
        if e.is_timeout() {
            LlmError::Timeout(secs)
        } else if e.is_connect() || e.is_request() {
            LlmError::Unreachable(format!("{} ({})", cfg.url, root_cause(&e)))
        } else {
            LlmError::Garbage(root_cause(&e))
        }
    };
    let resp = req.send().await.map_err(classify)?;
    let status = resp.status();
    let text = resp.text().await.map_err(classify)?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .or_else(|| v.get("error"))
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .unwrap_or_else(|| shorten(&text, 300));
        return Err(LlmError::Provider {
            status: status.as_u16(),
            message: if message.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                message
            },
        });
    }
    parse_reply(&text)
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_with_content_or_tool_calls_parse() {
        let r = parse_reply(r#"{"choices":[{"message":{"role":"assistant","content":"{}"},"finish_reason":"stop"}]}"#).unwrap();
        assert_eq!(r.content.as_deref(), Some("{}"));
        assert!(r.tool_calls.is_empty());
        let r = parse_reply(r#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"search_tags","arguments":"{\"query\":\"hair\"}"}}]},"finish_reason":"tool_calls"}]}"#).unwrap();
        assert_eq!(r.tool_calls[0].name, "search_tags");
        assert_eq!(r.tool_calls[0].arguments, r#"{"query":"hair"}"#);
        // Some servers send arguments as an object.
        let r = parse_reply(r#"{"choices":[{"message":{"tool_calls":[{"function":{"name":"x","arguments":{"a":1}}}]}}]}"#).unwrap();
        assert_eq!(
            (
                r.tool_calls[0].id.as_str(),
                r.tool_calls[0].arguments.as_str()
            ),
            ("call_0", r#"{"a":1}"#)
        );
        assert_eq!(r.to_message()["tool_calls"][0]["function"]["name"], "x");
    }

    #[test]
    fn refusals_errors_and_garbage_are_told_apart() {
        let cases = [
            (
                r#"{"choices":[{"message":{"content":null,"refusal":"I can't help with that"}}]}"#,
                "refused",
            ),
            (
                r#"{"choices":[{"message":{"content":""},"finish_reason":"content_filter"}]}"#,
                "refused",
            ),
            (
                r#"{"error":{"message":"rate limited","code":429}}"#,
                "provider_error",
            ),
            (r#"{"choices":[]}"#, "garbage"),
            (r#"{"choices":[{"message":{"content":"{\"a\":"#, "garbage"),
            ("<html>bad gateway</html>", "garbage"),
            (
                r#"{"choices":[{"message":{"tool_calls":[{"function":{}}]}}]}"#,
                "garbage",
            ),
        ];
        for (body, kind) in cases {
            assert_eq!(parse_reply(body).unwrap_err().kind(), kind, "{body}");
        }
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let c = LlmConfig::new(
            "http://x/v1/",
            "m",
            Some("sk-secret-123"),
            Duration::from_secs(1),
        );
        assert_eq!(c.url, "http://x/v1");
        assert!(!format!("{c:?}").contains("sk-secret-123"));
    }

    #[test]
    fn settings_choose_the_provider_url_and_model() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("llm_key.secret");
        let c = LlmConfig::resolve(
            r#"{"llm_provider":"ollama","llm_model":"qwen3","llm_timeout_secs":7}"#,
            &key,
        )
        .unwrap();
        assert_eq!(
            (c.url.as_str(), c.model.as_str()),
            ("http://127.0.0.1:11434/v1", "qwen3")
        );
        assert_eq!(c.timeout, Duration::from_secs(7));
        assert_eq!(c.label(), "ollama/qwen3");
        let e = LlmConfig::resolve(r#"{"llm_provider":"ollama"}"#, &key).unwrap_err();
        assert_eq!(e.kind(), "not_configured");
        let e = LlmConfig::resolve(r#"{"llm_model":"x"}"#, &key).unwrap_err();
        assert!(e.to_string().contains("API key"), "{e}");
        let c =
            LlmConfig::resolve(r#"{"llm_model":"x","llm_url":"http://h:1/v1/"}"#, &key).unwrap();
        assert_eq!(
            (c.label().as_str(), c.url.as_str()),
            ("openai/x", "http://h:1/v1")
        );
        crate::library::settings::write_key(&key, Some("sk-9")).unwrap();
        let c = LlmConfig::resolve(r#"{"llm_model":"x"}"#, &key).unwrap();
        assert_eq!(c.url, "https://openrouter.ai/api/v1");
        assert_eq!(c.key.as_deref(), Some("sk-9"));
    }
}
