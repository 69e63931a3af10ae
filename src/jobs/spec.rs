//! A job's full spec read back from the ledger: its request event, with a compact recipe
//! (`JobRequestedCompact`) expanded against its base to the exact text that was requested.
//! The one place that turns stored requests back into `JobSpec`s, used by the handle
//! (`Handle::job_spec`) and by history (audits, event JSON, export) alike. Reads through
//! `store::ledger`; keeps nothing but the parsed bases the caller hands in as a cache.

use crate::jobs::recipe;
use crate::store::event::{Event, JobSpec, Stored};
use crate::store::ledger::Ledger;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Parsed base recipes by the seq of their request event.
pub type BaseCache = Mutex<HashMap<u64, Arc<Value>>>;

/// Parsed bases kept at most.
const BASE_CACHE: usize = 256;

fn lock(m: &BaseCache) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Value>>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Remembers a parsed base (the cache is emptied when full).
pub fn remember(cache: &BaseCache, seq: u64, value: Arc<Value>) {
    let mut c = lock(cache);
    if c.len() >= BASE_CACHE {
        c.clear();
    }
    c.insert(seq, value);
}

/// The full spec of `job`, from its request event at `seq`.
pub fn spec_at(ledger: &Ledger, seq: u64, job: u128, cache: &BaseCache) -> Result<JobSpec, String> {
    let missing = || {
        format!(
            "the ledger has no request for job {} at seq {seq}",
            ulid::Ulid::from(job)
        )
    };
    let stored = ledger
        .get(seq)
        .map_err(|e| e.to_string())?
        .ok_or_else(missing)?;
    match stored.event() {
        Event::JobRequested { job: j, .. } | Event::JobRequestedCompact { job: j, .. }
            if *j == job =>
        {
            full_spec(ledger, stored.event(), cache).unwrap_or_else(|| Err(missing()))
        }
        _ => Err(missing()),
    }
}

/// The full spec a request event stands for (`None` for other events).
pub fn full_spec(
    ledger: &Ledger,
    event: &Event,
    cache: &BaseCache,
) -> Option<Result<JobSpec, String>> {
    match event {
        Event::JobRequested { spec, .. } => Some(Ok(spec.clone())),
        Event::JobRequestedCompact { spec, .. } => Some((|| {
            let base = recipe_value(ledger, spec.recipe.base, 1, cache)?;
            let text = recipe::expand(&base, &spec.recipe)
                .map_err(|e| format!("recipe (base {}): {e}", spec.recipe.base))?;
            Ok(spec.with_recipe(text))
        })()),
        _ => None,
    }
}

/// The recipe (parsed) of the request event at `seq`: a full one, or (with `depth` left) a
/// patch against a full one. The writer never makes chains longer than one patch.
pub fn recipe_value(
    ledger: &Ledger,
    seq: u64,
    depth: u8,
    cache: &BaseCache,
) -> Result<Arc<Value>, String> {
    if let Some(v) = lock(cache).get(&seq) {
        return Ok(v.clone());
    }
    let stored = ledger.get(seq).map_err(|e| e.to_string())?;
    let text = match stored.as_ref().map(Stored::event) {
        Some(Event::JobRequested { spec, .. }) => spec.recipe.clone(),
        Some(Event::JobRequestedCompact { spec, .. }) if depth > 0 => {
            let base = recipe_value(ledger, spec.recipe.base, depth - 1, cache)?;
            recipe::expand(&base, &spec.recipe)
                .map_err(|e| format!("recipe base {seq} (on {}): {e}", spec.recipe.base))?
        }
        _ => return Err(format!("event {seq} is not a recipe base")),
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("the base recipe at {seq} does not parse: {e}"))?;
    let value = Arc::new(value);
    remember(cache, seq, value.clone());
    Ok(value)
}

/// `Stored::to_json`, with a compact request's recipe text put back in `spec.recipe` (its
/// patch stays in `spec.recipe_patch`), so every request reads as `job_requested` with its
/// recipe. A recipe that cannot be rebuilt stays null and `spec.recipe_error` says why.
pub fn event_json(ledger: &Ledger, stored: &Stored, cache: &BaseCache) -> Value {
    let mut v = stored.to_json();
    if let Event::JobRequestedCompact { .. } = stored.event()
        && let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut)
    {
        match full_spec(ledger, stored.event(), cache) {
            Some(Ok(full)) => {
                spec.insert("recipe".into(), full.recipe.into());
            }
            Some(Err(e)) => {
                spec.insert("recipe_error".into(), e.into());
            }
            None => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::{Envelope, Origin};

    fn spec(recipe: &str) -> JobSpec {
        JobSpec {
            label: "generator".into(),
            target: None,
            set_cover: false,
            recipe: recipe.into(),
            request: "{}".into(),
            batch: None,
            retry_of: None,
            endless: None,
        }
    }

    #[test]
    fn compact_requests_read_back_as_the_text_requested_and_show_it_in_their_json() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("g.redb")).unwrap();
        let base_text = r#"{"seed":1,"prompts":{"positive":"1girl, smile"},"workflow":{"3":{"inputs":{"seed":1}}}}"#;
        let new_text = r#"{"seed":22,"prompts":{"positive":"1girl, frown"},"workflow":{"3":{"inputs":{"seed":22}}}}"#;
        let base: Value = serde_json::from_str(base_text).unwrap();
        let new: Value = serde_json::from_str(new_text).unwrap();
        let patch = recipe::diff(&base, &new, 1);
        let s = spec(new_text);
        let compact = crate::store::event::CompactSpec {
            label: s.label.clone(),
            target: None,
            set_cover: false,
            recipe: patch,
            request: s.request.clone(),
            batch: None,
            retry_of: None,
            endless: None,
        };
        let env = |event| Envelope {
            id: 1,
            at: 1,
            origin: Origin::Web,
            event,
        };
        l.append(vec![
            env(Event::JobRequested {
                job: 10,
                spec: spec(base_text),
            }),
            env(Event::JobRequestedCompact {
                job: 11,
                spec: compact,
            }),
        ])
        .unwrap();
        let cache = BaseCache::default();
        assert_eq!(spec_at(&l, 2, 11, &cache).unwrap(), s);
        assert_eq!(spec_at(&l, 1, 10, &cache).unwrap().recipe, base_text);
        assert!(spec_at(&l, 2, 10, &cache).is_err(), "another job's request");
        assert!(spec_at(&l, 9, 11, &cache).is_err(), "no such event");
        let stored = l.get(2).unwrap().unwrap();
        let j = event_json(&l, &stored, &BaseCache::default());
        assert_eq!(j["type"], "job_requested");
        assert_eq!(j["spec"]["recipe"], new_text);
        assert_eq!(j["spec"]["recipe_patch"]["base"], 1);
        let bare = stored.to_json();
        assert!(bare["spec"]["recipe"].is_null());
    }
}
