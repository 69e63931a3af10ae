//! The assistant's projection: a pure fold of draft and bulk-run events into which drafts exist
//! (and which entry each became) and how far each bulk run is. Documents stay in the ledger;
//! this keeps only what decisions and progress need.

use crate::library::category::Category;
use crate::store::event::{Event, Source};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DraftInfo {
    /// The seq of its `DraftMade` event (where the document and provenance are read).
    pub seq: u64,
    pub at: u64,
    pub category: Category,
    pub batch: Option<u128>,
    pub lora: Option<String>,
    /// The slug of the entry it became, once accepted.
    pub entry: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ItemOutcome {
    Created { draft: u128, slug: String },
    Failed { error: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub category: Category,
    pub loras: Vec<String>,
    pub outcomes: BTreeMap<String, ItemOutcome>,
    pub cancelled: bool,
    pub started_at: u64,
    pub updated_at: u64,
}

impl Batch {
    /// LoRAs still to draft, in order (none once cancelled).
    pub fn pending(&self) -> impl Iterator<Item = &String> {
        self.loras
            .iter()
            .filter(|l| !self.cancelled && !self.outcomes.contains_key(*l))
    }

    pub fn is_active(&self) -> bool {
        self.pending().next().is_some()
    }

    /// `running`, `done` or `cancelled`.
    pub fn status(&self) -> &'static str {
        if self.cancelled {
            "cancelled"
        } else if self.is_active() {
            "running"
        } else {
            "done"
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Assistant {
    pub drafts: HashMap<u128, DraftInfo>,
    pub batches: BTreeMap<u128, Batch>,
}

/// Why an assistant draft cannot be accepted.
pub fn accept_error(a: &Assistant, draft_id: &str, c: Category) -> Option<String> {
    let Some(id) = ulid::Ulid::from_string(draft_id).ok().map(u128::from) else {
        return Some(format!("'{draft_id}' is not a draft id"));
    };
    match a.drafts.get(&id) {
        None => Some(format!("no draft {draft_id}")),
        Some(d) if d.category != c => Some(format!(
            "draft {draft_id} is a {} draft, not a {} one",
            d.category.desc().singular,
            c.desc().singular
        )),
        Some(d) => d
            .entry
            .as_ref()
            .map(|slug| format!("draft {draft_id} was already accepted as '{slug}'")),
    }
}

impl Assistant {
    /// Folds one event in (events of other kinds are ignored).
    pub fn apply(&mut self, seq: u64, at: u64, event: &Event) {
        match event {
            Event::DraftMade { draft, made } => {
                self.drafts.insert(
                    *draft,
                    DraftInfo {
                        seq,
                        at,
                        category: made.category,
                        batch: made.batch,
                        lora: made.lora.clone(),
                        entry: None,
                    },
                );
            }
            Event::DocumentCreated {
                slug,
                source: Source::Assistant { draft_id },
                ..
            } => {
                let Some(id) = ulid::Ulid::from_string(draft_id).ok().map(u128::from) else {
                    return;
                };
                let Some(d) = self.drafts.get_mut(&id) else {
                    return;
                };
                d.entry = Some(slug.clone());
                if let (Some(b), Some(lora)) = (d.batch, &d.lora)
                    && let Some(batch) = self.batches.get_mut(&b)
                {
                    batch.outcomes.insert(
                        lora.clone(),
                        ItemOutcome::Created {
                            draft: id,
                            slug: slug.clone(),
                        },
                    );
                    batch.updated_at = at;
                }
            }
            Event::BulkStarted {
                batch,
                category,
                loras,
            } => {
                self.batches.insert(
                    *batch,
                    Batch {
                        category: *category,
                        loras: loras.clone(),
                        outcomes: BTreeMap::new(),
                        cancelled: false,
                        started_at: at,
                        updated_at: at,
                    },
                );
            }
            Event::BulkItemFailed { batch, lora, error } => {
                if let Some(b) = self.batches.get_mut(batch) {
                    b.outcomes.insert(
                        lora.clone(),
                        ItemOutcome::Failed {
                            error: error.clone(),
                        },
                    );
                    b.updated_at = at;
                }
            }
            Event::BulkCancelled { batch } => {
                if let Some(b) = self.batches.get_mut(batch) {
                    b.cancelled = true;
                    b.updated_at = at;
                }
            }
            _ => {}
        }
    }

    /// Bulk runs with LoRAs still to draft, oldest first.
    pub fn active_batches(&self) -> Vec<u128> {
        self.batches
            .iter()
            .filter(|(_, b)| b.is_active())
            .map(|(id, _)| *id)
            .collect()
    }

    /// LoRA files an active bulk run will still draft (so a new run leaves them alone).
    pub fn claimed_loras(&self) -> std::collections::HashSet<&str> {
        self.batches
            .values()
            .flat_map(|b| b.pending().map(String::as_str))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::{DocBody, Draft};

    fn draft(batch: Option<u128>, lora: Option<&str>) -> Draft {
        Draft {
            category: Category::Outfits,
            model: "m".into(),
            request: "r".into(),
            tool_calls: "[]".into(),
            document: "{}".into(),
            batch,
            lora: lora.map(String::from),
        }
    }

    fn created(slug: &str, draft: u128) -> Event {
        Event::DocumentCreated {
            category: Category::Outfits,
            slug: slug.into(),
            file: format!("{slug}.json"),
            body: DocBody {
                id: slug.into(),
                name: slug.into(),
                json: "{}".into(),
            },
            source: Source::Assistant {
                draft_id: ulid::Ulid::from(draft).to_string(),
            },
        }
    }

    #[test]
    fn a_bulk_run_is_done_when_every_lora_has_an_outcome() {
        let mut a = Assistant::default();
        let loras = vec!["a.safetensors".to_string(), "b.safetensors".to_string()];
        a.apply(
            1,
            10,
            &Event::BulkStarted {
                batch: 5,
                category: Category::Outfits,
                loras: loras.clone(),
            },
        );
        assert_eq!(a.active_batches(), [5]);
        assert_eq!(a.claimed_loras().len(), 2);
        a.apply(
            2,
            11,
            &Event::DraftMade {
                draft: 7,
                made: draft(Some(5), Some("a.safetensors")),
            },
        );
        a.apply(3, 11, &created("a", 7));
        assert_eq!(
            a.batches[&5].pending().collect::<Vec<_>>(),
            ["b.safetensors"]
        );
        assert_eq!(a.drafts[&7].entry.as_deref(), Some("a"));
        a.apply(
            4,
            12,
            &Event::BulkItemFailed {
                batch: 5,
                lora: "b.safetensors".into(),
                error: "refused".into(),
            },
        );
        assert_eq!(a.batches[&5].status(), "done");
        assert!(a.active_batches().is_empty() && a.claimed_loras().is_empty());
    }

    #[test]
    fn a_cancelled_run_has_nothing_pending() {
        let mut a = Assistant::default();
        a.apply(
            1,
            1,
            &Event::BulkStarted {
                batch: 5,
                category: Category::Outfits,
                loras: vec!["a".into()],
            },
        );
        a.apply(2, 2, &Event::BulkCancelled { batch: 5 });
        assert_eq!(a.batches[&5].status(), "cancelled");
        assert!(a.active_batches().is_empty());
    }

    #[test]
    fn drafts_are_accepted_once_and_in_their_category() {
        let mut a = Assistant::default();
        let id = ulid::Ulid::from(9u128).to_string();
        assert!(
            accept_error(&a, &id, Category::Outfits)
                .unwrap()
                .contains("no draft")
        );
        assert!(
            accept_error(&a, "nope", Category::Outfits)
                .unwrap()
                .contains("not a draft id")
        );
        a.apply(
            1,
            1,
            &Event::DraftMade {
                draft: 9,
                made: draft(None, None),
            },
        );
        assert_eq!(accept_error(&a, &id, Category::Outfits), None);
        assert!(
            accept_error(&a, &id, Category::Scenes)
                .unwrap()
                .contains("outfit draft")
        );
        a.apply(2, 2, &created("maid", 9));
        assert!(
            accept_error(&a, &id, Category::Outfits)
                .unwrap()
                .contains("already accepted as 'maid'")
        );
    }
}
