//! Drafting one entry: the category's system prompt (`data/prompts/<singular>_system.txt`) and
//! the user's request go to the model with the MCP tools; tool calls are run and answered for
//! up to `MAX_TOOL_TURNS` turns; the answer must be one JSON object that fits the category's
//! schema, and the model gets up to `MAX_RETRIES` chances to fix one that does not.

use super::hub::{Hub, ServerConfig, ToolOutcome};
use super::llm::{self, LlmConfig, LlmError};
use super::schema::{Schema, extract_json};
use crate::library::category::Category;
use crate::library::projection::Library;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

pub const MAX_TOOL_TURNS: usize = 10;
pub const MAX_RETRIES: usize = 3;
/// The longest request text accepted.
pub const MAX_REQUEST_CHARS: usize = 8000;

/// A finished draft, not yet recorded.
#[derive(Clone, Debug)]
pub struct DraftOutcome {
    pub document: Map<String, Value>,
    pub tool_calls: Vec<ToolOutcome>,
    /// `provider/model`.
    pub model: String,
    /// Chat requests made.
    pub requests: usize,
    /// Answers sent back for not fitting the schema.
    pub retries: usize,
    /// Configured MCP servers that could not be used.
    pub warnings: Vec<String>,
}

/// Everything drafting needs; cheap to clone.
#[derive(Clone)]
pub struct Drafter {
    http: reqwest::Client,
    hub: Hub,
    prompts: PathBuf,
    key_file: PathBuf,
}

/// The system prompt file of a category.
pub fn prompt_path(prompts: &Path, c: Category) -> PathBuf {
    prompts.join(format!("{}_system.txt", c.desc().singular))
}

/// What the model is told about the library besides the request: for presets, the ids it may
/// use in each category; for looks, the characters that exist.
pub fn library_context(lib: &Library, c: Category) -> String {
    let ids = |cat: Category| -> String {
        let list: Vec<&str> = lib
            .shelf(cat)
            .docs
            .values()
            .map(|e| e.id.as_str())
            .collect();
        if list.is_empty() {
            "(none)".into()
        } else {
            list.join(", ")
        }
    };
    match c {
        Category::Presets => {
            let mut s = String::from("Ids in the library, by category:\n");
            for cat in Category::ALL {
                if cat != Category::Presets {
                    s.push_str(&format!("- {}: {}\n", cat.desc().singular, ids(cat)));
                }
            }
            s
        }
        Category::Looks => format!(
            "Character ids in the library: {}\n",
            ids(Category::Characters)
        ),
        _ => String::new(),
    }
}

/// Whether a non-JSON answer reads as the model declining.
fn reads_as_refusal(text: &str) -> bool {
    let t = text.trim_start().to_lowercase();
    !t.contains('{')
        && [
            "i can't",
            "i cannot",
            "i can’t",
            "i'm sorry",
            "i’m sorry",
            "sorry, i",
            "i won't",
            "i will not",
            "i am unable",
            "i'm unable",
        ]
        .iter()
        .any(|p| t.starts_with(p))
}

impl Drafter {
    pub fn new(hub: Hub, prompts: PathBuf, key_file: PathBuf) -> Drafter {
        Drafter {
            http: llm::http_client(),
            hub,
            prompts,
            key_file,
        }
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The LLM settings in force (settings JSON text, key file, environment).
    pub fn llm_config(&self, settings: &str) -> Result<LlmConfig, LlmError> {
        LlmConfig::resolve(settings, &self.key_file)
    }

    /// Drafts one document. `settings` is the library's settings JSON text; `context` is added
    /// to the user message (library ids, what a LoRA file says about itself); `progress` hears
    /// what is happening.
    pub async fn draft(
        &self,
        settings: &str,
        category: Category,
        request: &str,
        context: &str,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<DraftOutcome, LlmError> {
        let cfg = self.llm_config(settings)?;
        let path = prompt_path(&self.prompts, category);
        let system = std::fs::read_to_string(&path)
            .map_err(|e| LlmError::NotConfigured(format!("cannot read {}: {e}", path.display())))?;
        let schema = Schema::from_prompt(&system, category)
            .map_err(|e| LlmError::NotConfigured(format!("{}: {e}", path.display())))?;
        let servers: Vec<ServerConfig> = super::hub::servers_in_settings(settings);
        let (toolbox, warnings) = self.hub.toolbox(&servers).await;
        let tools = toolbox.specs();
        let mut user = String::new();
        user.push_str(request.trim());
        if !context.trim().is_empty() {
            user.push_str("\n\n");
            user.push_str(context.trim());
        }
        let mut messages = vec![
            json!({"role": "system", "content": system}),
            json!({"role": "user", "content": user}),
        ];
        let mut calls: Vec<ToolOutcome> = Vec::new();
        let (mut requests, mut tool_turns, mut retries) = (0, 0, 0);
        loop {
            // After the last tool turn the model gets no tools and must answer.
            let offer = if tool_turns < MAX_TOOL_TURNS {
                &tools[..]
            } else {
                &[]
            };
            progress(format!("asking {} (request {})", cfg.label(), requests + 1));
            let reply = llm::chat(&self.http, &cfg, &messages, offer).await?;
            requests += 1;
            if !reply.tool_calls.is_empty() {
                if tool_turns >= MAX_TOOL_TURNS {
                    return Err(LlmError::TooManyTurns(MAX_TOOL_TURNS));
                }
                tool_turns += 1;
                messages.push(reply.to_message());
                for call in &reply.tool_calls {
                    progress(format!("tool {} ({})", call.name, call.arguments));
                    let outcome = toolbox.call(&call.name, &call.arguments).await;
                    messages.push(json!({
                        "role": "tool",
                        "tool_call_id": call.id,
                        "name": call.name,
                        "content": outcome.for_model(),
                    }));
                    calls.push(outcome);
                }
                if tool_turns == MAX_TOOL_TURNS {
                    messages.push(json!({"role": "user", "content":
                        "You have used all your tool calls. Answer now with the JSON object only."}));
                }
                continue;
            }
            let content = reply.content.clone().unwrap_or_default();
            let problems = match extract_json(&content) {
                Ok(doc) => match schema.check(&doc) {
                    Ok(()) => {
                        return Ok(DraftOutcome {
                            document: doc,
                            tool_calls: calls,
                            model: cfg.label(),
                            requests,
                            retries,
                            warnings,
                        });
                    }
                    Err(p) => p,
                },
                Err(e) if reads_as_refusal(&content) => {
                    let _ = e;
                    return Err(LlmError::Refused(
                        content.trim().chars().take(300).collect(),
                    ));
                }
                Err(e) => {
                    let mut p = vec![e];
                    if reply.finish_reason.as_deref() == Some("length") {
                        p.push("the answer was cut off: keep it shorter".into());
                    }
                    p
                }
            };
            if retries >= MAX_RETRIES {
                return Err(LlmError::InvalidAnswer(format!(
                    "still not a valid {} after {MAX_RETRIES} retries: {}",
                    category.desc().singular,
                    problems.join("; ")
                )));
            }
            retries += 1;
            progress(format!(
                "answer rejected ({}); retry {retries}",
                problems.join("; ")
            ));
            messages.push(reply.to_message());
            messages.push(json!({"role": "user", "content": format!(
                "That answer cannot be used: {}. Answer again with exactly one JSON object that follows the SCHEMA, and nothing else.",
                problems.join("; ")
            )}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_recognised_only_without_json() {
        assert!(reads_as_refusal("I'm sorry, but I can't help with that."));
        assert!(reads_as_refusal("  I cannot create that."));
        assert!(!reads_as_refusal("I cannot resist: {\"a\": 1"));
        assert!(!reads_as_refusal("Here you go"));
    }

    #[test]
    fn presets_and_looks_are_told_what_exists() {
        let lib = Library::default();
        let p = library_context(&lib, Category::Presets);
        assert!(p.contains("- character: (none)") && p.contains("- checkpoint: (none)"));
        assert!(!p.contains("- preset:"));
        assert!(library_context(&lib, Category::Looks).starts_with("Character ids"));
        assert_eq!(library_context(&lib, Category::Outfits), "");
    }
}
