//! An OpenAI-compatible chat-completions server for tests (`POST /v1/chat/completions`). It
//! speaks the real wire format: it asks for tool calls (`validate_tags`, `search_tags`), reads
//! the tool results GAZE sends back, and answers with a document built from the category's
//! SCHEMA example in the system prompt. Markers in the user's request pick a misbehaviour:
//! `#refuse` (a `refusal`), `#garbage` (a body that is not JSON), `#truncated` (a cut-off
//! body), `#bad-once` (an answer missing keys, then a good one), `#always-bad` (prose every
//! time), `#slow` (answers after 5 s), `#status500`, `#loop` (tool calls forever).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Seen {
    /// Every request body, in order.
    pub requests: Vec<Value>,
    /// The Authorization header of each request.
    pub auth: Vec<Option<String>>,
    /// The name of every document answered (final answers only).
    pub answered: Vec<String>,
}

type Shared = (Arc<Mutex<Seen>>, Arc<Mutex<Duration>>);

#[derive(Clone)]
pub struct LlmStandIn {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
    /// Added before every answer (to let tests interrupt long runs).
    pub delay: Arc<Mutex<Duration>>,
}

impl LlmStandIn {
    pub async fn start() -> LlmStandIn {
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let delay: Arc<Mutex<Duration>> = Arc::default();
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state((seen.clone(), delay.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LlmStandIn { url, seen, delay }
    }

    pub fn set_delay(&self, d: Duration) {
        *self.delay.lock().unwrap() = d;
    }

    pub fn requests(&self) -> Vec<Value> {
        self.seen.lock().unwrap().requests.clone()
    }

    pub fn answered(&self) -> Vec<String> {
        self.seen.lock().unwrap().answered.clone()
    }

    pub fn auth(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().auth.clone()
    }
}

fn completion(message: Value, finish: &str) -> Value {
    json!({
        "id": "chatcmpl-standin", "object": "chat.completion", "created": 1_790_000_000u64,
        "model": "standin",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })
}

fn ok(v: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// The JSON object after `SCHEMA` in the system prompt.
fn schema_example(system: &str) -> Map<String, Value> {
    let at = system.find("SCHEMA").unwrap_or(0);
    let start = at + system[at..].find('{').unwrap_or(0);
    let mut depth = 0;
    let mut end = start;
    let mut in_str = false;
    let mut esc = false;
    for (i, c) in system[start..].char_indices() {
        if in_str {
            match c {
                _ if esc => esc = false,
                '\\' => esc = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = start + i + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    serde_json::from_str(&system[start..end]).unwrap_or_default()
}

/// A display name for the request: the LoRA file's stem in a bulk run, else its first words.
fn name_for(request: &str) -> String {
    if let Some(rest) = request.split("LoRA file \"").nth(1) {
        let file = rest.split('"').next().unwrap_or_default();
        let stem = file.rsplit('/').next().unwrap_or(file);
        return stem.trim_end_matches(".safetensors").replace('_', " ");
    }
    let words: Vec<&str> = request
        .split_whitespace()
        .filter(|w| !w.starts_with('#'))
        .take(4)
        .collect();
    words.join(" ")
}

fn document(system: &str, request: &str) -> (String, Value) {
    let mut doc = schema_example(system);
    let name = name_for(request);
    let id: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let keys: Vec<String> = doc.keys().cloned().collect();
    if let Some(id_key) = keys.first().filter(|k| k.as_str() != "checkpoint_path") {
        doc.insert(id_key.clone(), id.clone().into());
    }
    if let Some(name_key) = keys.get(1) {
        doc.insert(name_key.clone(), name.clone().into());
    }
    if let Some(Value::Object(lora)) = doc.get_mut("lora") {
        lora.insert("lora_name".into(), "".into());
        lora.insert("lora_triggers".into(), "".into());
    }
    (name, Value::Object(doc))
}

async fn chat(State((seen, delay)): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad json: {e}")).into_response(),
    };
    {
        let mut s = seen.lock().unwrap();
        s.requests.push(req.clone());
        s.auth.push(
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
        );
    }
    let wait = *delay.lock().unwrap();
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let system = messages
        .iter()
        .find(|m| m["role"] == "system")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let request = messages
        .iter()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let tool_results: Vec<&Value> = messages.iter().filter(|m| m["role"] == "tool").collect();
    let retries = messages
        .iter()
        .filter(|m| {
            m["role"] == "user"
                && m["content"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("That answer cannot be used"))
        })
        .count();
    let has_tools = req["tools"].as_array().is_some_and(|t| !t.is_empty());

    if request.contains("#slow") {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    if request.contains("#status500") {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "application/json")],
            json!({"error": {"message": "upstream overloaded", "code": 500}}).to_string(),
        )
            .into_response();
    }
    if request.contains("#garbage") {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            "<html>oops</html>",
        )
            .into_response();
    }
    if request.contains("#truncated") {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"{\"outfit_id\": \"ma"#,
        )
            .into_response();
    }
    if request.contains("#refuse") {
        return ok(completion(
            json!({"role": "assistant", "content": null, "refusal": "I can't help with that request."}),
            "stop",
        ));
    }
    if request.contains("#loop") || (tool_results.is_empty() && has_tools) {
        let n = tool_results.len();
        return ok(completion(
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": format!("call_v{n}"), "type": "function", "function": {"name": "validate_tags",
                  "arguments": json!({"tags": ["long hair", "longhair", "blak hair"]}).to_string()}},
                {"id": format!("call_s{n}"), "type": "function", "function": {"name": "search_tags",
                  "arguments": json!({"query": "hair ornament", "limit": 3}).to_string()}}
            ]}),
            "tool_calls",
        ));
    }
    if request.contains("#always-bad") || (request.contains("#bad-once") && retries == 0) {
        let content = if request.contains("#always-bad") {
            "Sure! Here is a lovely outfit for you.".to_string()
        } else {
            json!({"note": "missing everything"}).to_string()
        };
        return ok(completion(
            json!({"role": "assistant", "content": content}),
            "stop",
        ));
    }
    // A good answer: the schema example renamed, using what the tools said.
    let (name, mut doc) = document(&system, &request);
    let corrected = tool_results.iter().any(|m| {
        m["content"]
            .as_str()
            .is_some_and(|c| c.contains("\"longhair\":\"long_hair\""))
    });
    if corrected && let Some(Value::Object(w)) = doc.get_mut("wardrobe") {
        w.insert("headwear".into(), "long hair".into());
    }
    seen.lock().unwrap().answered.push(name);
    ok(completion(
        json!({"role": "assistant", "content": format!("```json\n{doc}\n```")}),
        "stop",
    ))
}
