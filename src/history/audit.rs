//! Audit: everything about how an image was made, from its job. The prompts with the source of
//! every tag (re-derived by the pure engine from the library as it was when the job was
//! requested, and checked against the recipe), the graph exactly as each backend received it,
//! seed, checkpoint, LoRAs with weights, and the version of every entry used. Also the
//! difference between two recipes, and the specs that run a job again: exactly (the same
//! recipe) or with today's library (its request resolved now, with the same seed and the same
//! random picks). Both kinds of run link to the original by `retry_of`.

use super::View;
use super::diff::diff;
use crate::engine::RANDOM_SENTINEL;
use crate::jobs::request::{self, GenRequest};
use crate::library::category::Category;
use crate::library::projection::Library;
use crate::store::event::{Event, JobSpec, Stored, ulid_text};
use crate::store::ledger::Scan;
use serde_json::{Map, Value, json};

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The page of an entry's version: `/<singular>/<slug>/history?at=SEQ`.
pub fn version_link(c: Category, slug: &str, seq: u64) -> String {
    format!("/{}/{slug}/history?at={seq}", c.desc().singular)
}

/// The entries a recipe used, with their versions then and now.
fn versions_json(lib: &Library, recipe: &Value) -> Vec<Value> {
    let Some(map) = recipe.get("versions").and_then(Value::as_object) else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(key, v)| {
            let (cat, slug) = key.split_once('/')?;
            let c = Category::parse(cat)?;
            let version = v.as_u64()?;
            let now = lib.get(c, slug);
            Some(json!({
                "category": c.key(),
                "slug": slug,
                "version": version,
                "name": now.map(|e| e.name.clone()),
                "current_version": now.map(|e| e.content_version),
                "changed_since": now.is_none_or(|e| e.content_version > version),
                "in_library": now.is_some(),
                "link": version_link(c, slug, version),
                "api": format!("/api/library/{}/{slug}?at={version}", c.key()),
            }))
        })
        .collect()
}

/// The job whose request first produced this recipe: runs of the exact same recipe lead back
/// through `retry_of` to it.
fn recipe_origin(v: &View<'_>, job: u128, spec: &JobSpec) -> Result<u128, String> {
    let mut at = job;
    let mut cur = spec.retry_of;
    let mut guard = 0;
    while let Some(prev) = cur {
        guard += 1;
        if guard > 1000 || v.lib.jobs.get(prev).is_none() {
            break;
        }
        let p = v.job_spec(prev)?;
        if p.recipe != spec.recipe {
            break;
        }
        at = prev;
        cur = p.retry_of;
    }
    Ok(at)
}

/// The prompts' provenance: the request resolved again, with the recipe's seed, against the
/// library as it was just before the recipe's job was requested. `Err` says why it could not
/// be re-derived (the prompts must come out the same as the recipe's).
fn provenance(v: &View<'_>, job: u128, spec: &JobSpec, recipe: &Value) -> Result<Value, String> {
    let origin = recipe_origin(v, job, spec)?;
    let requested = v
        .lib
        .jobs
        .get(origin)
        .map(|j| j.requested_seq)
        .ok_or("the original job is unknown")?;
    let then = v.library_at(requested.saturating_sub(1))?;
    let body: Map<String, Value> = serde_json::from_str(&spec.request)
        .map_err(|e| format!("the request does not parse: {e}"))?;
    let req = GenRequest::from_json(&body)?;
    let seed = recipe["seed"].as_u64().ok_or("the recipe has no seed")?;
    let resolved = request::resolve(&then, &req, seed, &request::Backend::default())
        .map_err(|e| format!("the request no longer resolves against the library then: {e}"))?;
    let prompts = serde_json::to_value(&resolved.generation.prompts).unwrap_or_default();
    if prompts != recipe["prompts"] {
        return Err("re-deriving the prompts did not give the recipe's prompts".into());
    }
    Ok(json!({
        "explanation": resolved.generation.explanation,
        "derived_at_seq": requested.saturating_sub(1),
        "from_job": ulid_text(origin),
    }))
}

/// A job's events as the audit lists them.
fn job_events(v: &View<'_>, job: u128) -> Result<Vec<Stored>, String> {
    let mut out = Vec::new();
    v.ledger
        .scan(&Scan::Job(job), 1, u64::MAX, false, |s| {
            out.push(s);
            true
        })
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Everything about a job: see the module documentation.
pub fn audit(v: &View<'_>, job: u128) -> Result<Value, String> {
    let j = v
        .lib
        .jobs
        .get(job)
        .ok_or_else(|| format!("no job {}", ulid_text(job)))?;
    let spec = v.job_spec(job)?;
    let recipe = parse(&spec.recipe);
    let events = job_events(v, job)?;
    let workflow = recipe.get("workflow").cloned().unwrap_or(Value::Null);
    let submissions: Vec<Value> = events
        .iter()
        .filter_map(|s| match s.event() {
            Event::JobSubmitted {
                backend,
                prompt_id,
                attempt,
                vanilla,
                ..
            } => Some(json!({
                "seq": s.seq,
                "at": s.envelope.at,
                "backend": backend,
                "prompt_id": prompt_id,
                "attempt": attempt,
                "vanilla": vanilla,
                "graph": crate::engine::workflow::sent_graph(&workflow, *vanilla, prompt_id),
            })),
            _ => None,
        })
        .collect();
    let sent = submissions
        .last()
        .map_or(Value::Null, |s| s["graph"].clone());
    let (provenance, provenance_error) = match provenance(v, job, &spec, &recipe) {
        Ok(p) => (p, Value::Null),
        Err(e) => (Value::Null, Value::String(e)),
    };
    let again: Vec<String> = v
        .lib
        .jobs
        .jobs
        .values()
        .filter(|x| x.info.retry_of == Some(job))
        .map(|x| ulid_text(x.id))
        .collect();
    let again_of = match spec.retry_of {
        Some(o) => {
            let exact = v.job_spec(o).is_ok_and(|p| p.recipe == spec.recipe);
            json!({"job": ulid_text(o), "exact": exact})
        }
        None => Value::Null,
    };
    Ok(json!({
        "job_id": ulid_text(job),
        "label": spec.label,
        "status": j.state.status(),
        "target": spec.target.as_ref().map(|(c, s)| json!({"category": c.key(), "slug": s, "link": format!("/{}/{s}/history", c.desc().singular)})),
        "set_cover": spec.set_cover,
        "requested_seq": j.requested_seq,
        "requested_at": j.requested_at,
        "images": j.images.iter().map(|p| format!("/static/{p}")).collect::<Vec<_>>(),
        "error": j.error,
        "seed": recipe["seed"],
        "width": recipe["width"],
        "height": recipe["height"],
        "checkpoint": recipe["checkpoint"],
        "character": recipe["character"],
        "loras": recipe["loras"],
        "prompts": recipe["prompts"],
        "provenance": provenance,
        "provenance_error": provenance_error,
        "versions": versions_json(v.lib, &recipe),
        "submissions": submissions,
        "sent_graph": sent,
        "recipe": recipe,
        "request": parse(&spec.request),
        "again_of": again_of,
        "run_again": again,
        "batch": spec.batch.map(ulid_text),
        "events": events.iter().map(Stored::to_json).collect::<Vec<_>>(),
    }))
}

/// The job that made an image: from its file name (`<job>_<n>.png`), checked against the job's
/// images and covers.
pub fn job_of_image(lib: &Library, path: &str) -> Result<u128, String> {
    let job = super::stale::job_of_image(path)
        .ok_or_else(|| format!("'{path}' is not an image a job made (uploaded by hand?)"))?;
    let j = lib
        .jobs
        .get(job)
        .ok_or_else(|| format!("'{path}' names job {}, which is unknown", ulid_text(job)))?;
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    if j.images.iter().any(|i| i.ends_with(name)) || j.images.is_empty() {
        Ok(job)
    } else {
        Err(format!("job {} made no image named {name}", ulid_text(job)))
    }
}

/// The recipe parts people compare, in one object.
fn comparable(recipe: &Value) -> Value {
    let loras: Map<String, Value> = recipe["loras"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| {
                    (
                        l["name"].as_str().unwrap_or_default().to_string(),
                        l["weight"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "settings": {
            "seed": recipe["seed"], "width": recipe["width"], "height": recipe["height"],
            "checkpoint": recipe["checkpoint"], "character": recipe["character"],
            "vanilla": recipe["vanilla"],
        },
        "prompts": recipe["prompts"],
        "loras": loras,
        "versions": recipe["versions"],
        "workflow": recipe["workflow"],
    })
}

/// What differs between two recipes: settings, prompts (tags as sets), LoRAs and weights,
/// entry versions, and every workflow input.
pub fn diff_recipes(a: &Value, b: &Value) -> Value {
    let (x, y) = (comparable(a), comparable(b));
    let part = |k: &str| json!(diff(x.get(k), y.get(k)));
    let out = json!({
        "settings": part("settings"),
        "prompts": part("prompts"),
        "loras": part("loras"),
        "versions": part("versions"),
        "workflow": part("workflow"),
    });
    let identical = out
        .as_object()
        .is_some_and(|m| m.values().all(|v| v.as_array().is_some_and(Vec::is_empty)));
    let mut out = out;
    out["identical"] = identical.into();
    out
}

/// How to run a job again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Again {
    /// The same recipe: the same graph and seed.
    Exact,
    /// The original request resolved against today's library, with the same seed and the
    /// same random picks (while those entries exist).
    Today,
}

impl Again {
    pub fn parse(s: &str) -> Option<Again> {
        match s {
            "exact" => Some(Again::Exact),
            "today" => Some(Again::Today),
            _ => None,
        }
    }
}

/// The request of `spec` with the recipe's seed and random picks pinned, for a run with
/// today's library. `action` (`preview` or `replace`) overrides the original's.
pub fn request_for_today(
    lib: &Library,
    spec: &JobSpec,
    action: Option<&str>,
) -> Result<Map<String, Value>, String> {
    let recipe = parse(&spec.recipe);
    let mut body: Map<String, Value> = serde_json::from_str(&spec.request)
        .map_err(|e| format!("the job's request does not parse: {e}"))?;
    if body.get("seed").is_none_or(Value::is_null)
        && let Some(seed) = recipe["seed"].as_u64()
    {
        body.insert("seed".into(), seed.into());
    }
    let used: Vec<(Category, String)> = recipe["versions"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter_map(|k| {
                    let (c, s) = k.split_once('/')?;
                    Some((Category::parse(c)?, s.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let exists = |c: Category, s: &str| lib.get(c, s).is_some();
    // The character, when it was picked at random (by the request or its preset).
    let preset = match (body.get("category"), body.get("slug")) {
        (Some(Value::String(c)), Some(Value::String(s))) if c == "presets" => {
            lib.get(Category::Presets, s).and_then(|e| e.data())
        }
        _ => None,
    };
    let random_in_preset = |key: &str| {
        preset
            .as_ref()
            .and_then(|p| p.get(key))
            .and_then(Value::as_str)
            == Some(RANDOM_SENTINEL)
    };
    let char_random = body.get("character").and_then(Value::as_str) == Some(RANDOM_SENTINEL)
        || (body.get("character").is_none_or(Value::is_null) && random_in_preset("character"));
    if char_random
        && let Some(c) = recipe["character"].as_str()
        && exists(Category::Characters, c)
    {
        body.insert("character".into(), c.into());
    }
    // Other slots picked at random.
    let mut with = body
        .get("with")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (c, slug) in &used {
        if matches!(
            c,
            Category::Characters | Category::Presets | Category::Checkpoints
        ) {
            continue;
        }
        let singular = c.desc().singular;
        let random = with.get(c.key()).and_then(Value::as_str) == Some(RANDOM_SENTINEL)
            || (!with.contains_key(c.key()) && random_in_preset(singular));
        if random && exists(*c, slug) {
            with.insert(c.key().into(), slug.as_str().into());
        }
    }
    if !with.is_empty() {
        body.insert("with".into(), Value::Object(with));
    }
    if let Some(a) = action {
        body.insert("action".into(), a.into());
    }
    Ok(body)
}

/// The spec of a new job that runs `job` (whose spec is `spec`) again, linked to it.
pub fn again_spec(
    lib: &Library,
    job: u128,
    spec: &JobSpec,
    mode: Again,
    action: Option<&str>,
    fallback_seed: u64,
) -> Result<JobSpec, String> {
    let mut new = match mode {
        Again::Exact => {
            let mut s = spec.clone();
            if let Some(a) = action {
                s.set_cover = a == "replace";
            }
            s
        }
        Again::Today => {
            let body = request_for_today(lib, spec, action)?;
            let req = GenRequest::from_json(&body)?;
            let resolved = request::resolve(lib, &req, fallback_seed, &request::Backend::default())
                .map_err(|e| e.to_string())?;
            let mut s = request::job_spec(&req, &resolved, &body);
            s.label.clone_from(&spec.label);
            s
        }
    };
    new.retry_of = Some(job);
    new.endless = None;
    new.batch = None;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::{DocBody, Envelope, Origin};

    fn recipe(seed: u64, main: &str, weight: f64, version: u64) -> Value {
        json!({
            "prompts": {"main": main, "face": "", "hand": "", "negative": "lowres"},
            "workflow": {"3": {"class_type": "KSampler", "inputs": {"seed": seed}}},
            "seed": seed, "width": 832, "height": 1216,
            "checkpoint": "Illustrious/a.safetensors", "character": "tifa",
            "loras": [{"slot": "Character", "node": "16", "source": "characters/tifa",
                        "name": "Illustrious/Looks/tifa.safetensors", "weight": weight}],
            "vanilla": false,
            "versions": {"characters/tifa": version},
        })
    }

    #[test]
    fn recipe_diffs_name_what_differs() {
        let a = recipe(1, "1girl, black hair, smile", 0.8, 10);
        assert_eq!(diff_recipes(&a, &a)["identical"], true);
        let b = recipe(2, "1girl, red hair, smile", 1.0, 12);
        let d = diff_recipes(&a, &b);
        assert_eq!(d["identical"], false);
        assert_eq!(d["settings"][0]["path"], "seed");
        let tags = &d["prompts"][0]["tags"];
        assert_eq!(d["prompts"][0]["path"], "main");
        assert_eq!(tags["removed"], json!(["black hair"]));
        assert_eq!(tags["added"], json!(["red hair"]));
        assert_eq!(d["loras"][0]["path"], "Illustrious/Looks/tifa.safetensors");
        assert_eq!(d["loras"][0]["before"], "0.8");
        assert_eq!(d["versions"][0]["path"], "characters/tifa");
        assert_eq!(d["workflow"][0]["path"], "3::inputs::seed");
    }

    fn lib_with(entries: &[(Category, &str, &str)]) -> Library {
        let mut lib = Library::default();
        for (i, (c, slug, json)) in entries.iter().enumerate() {
            lib.apply(&Stored {
                seq: i as u64 + 1,
                envelope: Envelope {
                    id: i as u128,
                    at: 0,
                    origin: Origin::Cli,
                    event: Event::DocumentSynced {
                        category: *c,
                        slug: slug.to_string(),
                        file: format!("{slug}.json"),
                        body: DocBody {
                            id: slug.to_string(),
                            name: slug.to_string(),
                            json: json.to_string(),
                        },
                    },
                },
            });
        }
        lib
    }

    fn spec(request: Value, recipe: Value) -> JobSpec {
        JobSpec {
            label: "x".into(),
            target: None,
            set_cover: false,
            recipe: recipe.to_string(),
            request: request.to_string(),
            batch: None,
            retry_of: None,
            endless: None,
        }
    }

    #[test]
    fn today_pins_the_seed_and_random_picks_that_still_exist() {
        let lib = lib_with(&[
            (Category::Characters, "tifa", "{}"),
            (Category::Outfits, "maid", "{}"),
            (
                Category::Presets,
                "beach",
                r#"{"preset_id": "beach", "character": "__random__", "scene": "__random__"}"#,
            ),
        ]);
        let r = json!({"seed": 77, "character": "tifa",
                       "versions": {"characters/tifa": 1, "outfits/maid": 2, "scenes/gone": 3}});
        let s = spec(
            json!({"category": "outfits", "slug": "maid", "character": "__random__",
                   "with": {"actions": "__random__"}}),
            r.clone(),
        );
        let body = request_for_today(&lib, &s, Some("replace")).unwrap();
        assert_eq!(body["seed"], 77);
        assert_eq!(body["character"], "tifa");
        assert_eq!(body["action"], "replace");
        assert_eq!(
            body["with"],
            json!({"actions": "__random__"}),
            "no action was used"
        );
        // A fixed character stays as asked; a fixed seed is kept.
        let s = spec(
            json!({"category": "outfits", "slug": "maid", "character": "aerith", "seed": 5}),
            r.clone(),
        );
        let body = request_for_today(&lib, &s, None).unwrap();
        assert_eq!(body["character"], "aerith");
        assert_eq!(body["seed"], 5);
        assert!(body.get("action").is_none());
        // A preset's random character is pinned; its random scene is gone, so stays random.
        let s = spec(json!({"category": "presets", "slug": "beach"}), r);
        let body = request_for_today(&lib, &s, None).unwrap();
        assert_eq!(body["character"], "tifa");
        assert!(body.get("with").is_none(), "{body:?}");
    }
}
