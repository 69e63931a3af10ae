//! Bulk runs: one draft per LoRA file of a category's folder that no entry uses, made in the
//! background one at a time and committed together with its entry. A run is an event
//! (`BulkStarted` lists its files); every file's outcome is an event, so after a restart the
//! worker picks up exactly the files with no outcome yet, and no draft is recorded twice
//! (`RecordDraft` refuses a file that already has one). A provider that is down makes the
//! worker wait and retry; other failures are recorded and the run goes on.

use super::draft::{Drafter, library_context};
use super::sidecar;
use crate::handle::{Handle, Request};
use crate::library::category::Category;
use crate::library::command::Command;
use crate::library::models;
use crate::library::projection::Library;
use crate::store::event::{Draft, Event, Origin};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// Attempts per file while the provider is unreachable, times out or answers 5xx/429.
pub const TRANSIENT_ATTEMPTS: u32 = 3;

/// What the worker is doing now (not stored; relayed live).
#[derive(Clone, Debug, Serialize)]
pub struct Current {
    pub batch: String,
    pub lora: String,
    pub note: String,
}

/// Live progress of bulk runs, cheap to clone.
#[derive(Clone)]
pub struct Progress {
    current: Arc<Mutex<Option<Current>>>,
    tx: broadcast::Sender<Current>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            current: Arc::default(),
            tx: broadcast::channel(256).0,
        }
    }
}

impl Progress {
    pub fn current(&self) -> Option<Current> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Current> {
        self.tx.subscribe()
    }

    fn set(&self, c: Option<Current>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = c.clone();
        if let Some(c) = c {
            let _ = self.tx.send(c);
        }
    }
}

/// LoRA files of the category's folder that no entry (of any category) uses and no active
/// run will draft, in folder order.
pub fn unused_loras(lib: &Library, root: &std::path::Path, c: Category) -> Vec<String> {
    let used: HashSet<String> = Category::ALL
        .iter()
        .flat_map(|cat| lib.shelf(*cat).docs.values().filter_map(models::lora_name))
        .collect();
    let claimed = lib.assistant.claimed_loras();
    models::list_loras(root, c)
        .into_iter()
        .filter(|l| !used.contains(l) && !claimed.contains(l.as_str()))
        .collect()
}

/// Puts the file into the drafted document: `lora.lora_name` is the file, and the triggers
/// the sidecars name are used when the model left them empty.
pub fn pin_lora(doc: &mut Map<String, Value>, info: &sidecar::LoraInfo) {
    let lora = doc
        .entry("lora")
        .or_insert_with(|| Value::Object(Map::new()));
    if !lora.is_object() {
        *lora = Value::Object(Map::new());
    }
    if let Value::Object(l) = lora {
        l.insert("lora_name".into(), Value::String(info.file.clone()));
        let empty = l
            .get("lora_triggers")
            .and_then(Value::as_str)
            .is_none_or(|t| t.trim().is_empty());
        if empty && !info.triggers.is_empty() {
            l.insert("lora_triggers".into(), info.triggers.join(", ").into());
        }
        if !l.get("lora_weight").is_some_and(Value::is_number) {
            l.insert("lora_weight".into(), serde_json::json!(0.8));
        }
    }
}

/// The next file to draft: the oldest active run's first pending file.
fn next_item(lib: &Library) -> Option<(u128, Category, String)> {
    lib.assistant.batches.iter().find_map(|(id, b)| {
        b.pending()
            .next()
            .map(|lora| (*id, b.category, lora.clone()))
    })
}

/// Starts the worker. It runs until the process ends.
pub fn start(handle: Handle, drafter: Drafter, loras: Option<PathBuf>, progress: Progress) {
    let mut events = handle.subscribe();
    tokio::spawn(async move {
        let mut attempts: std::collections::HashMap<(u128, String), u32> = Default::default();
        loop {
            let item = next_item(&handle.library());
            let Some((batch, c, lora)) = item else {
                progress.set(None);
                // Wait for a new run (or anything that may change what is pending).
                loop {
                    match events.recv().await {
                        Ok(batch)
                            if batch
                                .iter()
                                .any(|s| matches!(s.event(), Event::BulkStarted { .. })) =>
                        {
                            break;
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
                continue;
            };
            let batch_text = ulid::Ulid::from(batch).to_string();
            let note = |n: String| {
                progress.set(Some(Current {
                    batch: batch_text.clone(),
                    lora: lora.clone(),
                    note: n,
                }));
            };
            note("reading the file's metadata".into());
            let info = match &loras {
                Some(root) => {
                    let (root, l) = (root.clone(), lora.clone());
                    tokio::task::spawn_blocking(move || sidecar::read(&root, &l))
                        .await
                        .unwrap_or_default()
                }
                None => sidecar::LoraInfo {
                    file: lora.clone(),
                    stem: lora.rsplit('/').next().unwrap_or(&lora).to_string(),
                    ..Default::default()
                },
            };
            let request = sidecar::request_text(c, &info);
            let (settings, context) = {
                let lib = handle.library();
                (lib.settings.clone(), library_context(&lib, c))
            };
            let result = drafter
                .draft(&settings, c, &request, &context, &|n| note(n))
                .await;
            let cmd = match result {
                Ok(mut outcome) => {
                    pin_lora(&mut outcome.document, &info);
                    Command::RecordDraft {
                        draft: u128::from(ulid::Ulid::generate()),
                        made: Box::new(Draft {
                            category: c,
                            model: outcome.model,
                            request,
                            tool_calls: serde_json::to_string(&outcome.tool_calls)
                                .unwrap_or_else(|_| "[]".into()),
                            document: Value::Object(outcome.document).to_string(),
                            batch: Some(batch),
                            lora: Some(lora.clone()),
                        }),
                        create: true,
                    }
                }
                Err(e) if e.is_transient() => {
                    let n = attempts.entry((batch, lora.clone())).or_default();
                    *n += 1;
                    if *n < TRANSIENT_ATTEMPTS {
                        let wait = Duration::from_secs(5 * u64::from(*n) * u64::from(*n));
                        note(format!("{e}; trying again in {} s", wait.as_secs()));
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    Command::FailBulkItem {
                        batch,
                        lora: lora.clone(),
                        error: format!("{e} (after {TRANSIENT_ATTEMPTS} attempts)"),
                    }
                }
                Err(e) => Command::FailBulkItem {
                    batch,
                    lora: lora.clone(),
                    error: e.to_string(),
                },
            };
            attempts.remove(&(batch, lora.clone()));
            let r = handle.run(Origin::Assistant, Request::Command(cmd)).await;
            if let Err(e) = r {
                // Cancelled meanwhile, or the entry could not be made: record and move on.
                tracing::info!("bulk run {batch_text}: {lora}: {e}");
                let recorded = handle
                    .run(
                        Origin::Assistant,
                        Request::Command(Command::FailBulkItem {
                            batch,
                            lora: lora.clone(),
                            error: e.to_string(),
                        }),
                    )
                    .await;
                if let Err(e) = recorded {
                    // The ledger itself is failing: wait rather than spin on the same file.
                    tracing::error!("bulk run {batch_text}: cannot record {lora}: {e}");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_file_is_pinned_and_sidecar_triggers_fill_gaps() {
        let info = sidecar::LoraInfo {
            file: "Illustrious/Clothing/maid.safetensors".into(),
            triggers: vec!["vmaid".into(), "apron".into()],
            ..Default::default()
        };
        let mut doc = json!({"lora": {"lora_name": "maid.safetensors", "lora_weight": 0.7, "lora_triggers": ""}})
            .as_object()
            .cloned()
            .unwrap();
        pin_lora(&mut doc, &info);
        assert_eq!(
            Value::Object(doc),
            json!({"lora": {"lora_name": "Illustrious/Clothing/maid.safetensors", "lora_weight": 0.7, "lora_triggers": "vmaid, apron"}})
        );
        let mut doc = json!({"lora": "nonsense", "x": 1})
            .as_object()
            .cloned()
            .unwrap();
        pin_lora(
            &mut doc,
            &sidecar::LoraInfo {
                file: "a.safetensors".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            doc["lora"],
            json!({"lora_name": "a.safetensors", "lora_weight": 0.8})
        );
    }
}
