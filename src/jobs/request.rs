//! Generation requests resolved against the library: which documents take part (the page's
//! target, a chosen or random character, preset slots, generator extras), which fields, which
//! checkpoint, seed and size. The result is handed to the pure engine, and everything it used is
//! recorded as the job's recipe. Pure: the seed and every random pick are inputs.

use crate::engine::{self, Composition, Doc, GenerationOptions, KnownModels, RANDOM_SENTINEL};
use crate::library::category::Category;
use crate::library::command::{Refusal, check_fields};
use crate::library::projection::{Entry, Library};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Default image size when neither the request nor a preset gives one (SDXL portrait).
pub const DEFAULT_SIZE: (u32, u32) = (832, 1216);
/// The largest seed handed out at random: exact in a browser's JavaScript numbers.
pub const MAX_RANDOM_SEED: u64 = (1 << 53) - 1;

/// A reference to an entry, or a random pick among a category's entries.
#[derive(Clone, Debug, PartialEq)]
pub enum Pick {
    Slug(String),
    Random,
}

impl Pick {
    fn parse(s: &str) -> Pick {
        if s == RANDOM_SENTINEL {
            Pick::Random
        } else {
            Pick::Slug(s.to_string())
        }
    }
}

/// What the caller asked for (the body of `/api/preview` and `/api/generate`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenRequest {
    /// The page's entry; absent for the generator page.
    pub target: Option<(Category, String)>,
    pub character: Option<Pick>,
    /// Other slots chosen on the page (`"with": {"outfits": "maid", "actions": "__random__"}`).
    pub slots: Vec<(Category, Pick)>,
    /// The generator's mix-and-match items.
    pub extras: Vec<(Category, String)>,
    pub fields: Option<Vec<String>>,
    pub active_outfit: Option<String>,
    pub extra_positive: String,
    pub extra_negative: String,
    pub seed: Option<u64>,
    /// A checkpoint's `checkpoint_path`.
    pub checkpoint: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `preview` (default) or `replace` (the result becomes the cover).
    pub replace_cover: bool,
}

fn text(m: &Map<String, Value>, k: &str) -> Result<Option<String>, String> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("\"{k}\" must be a string")),
    }
}

fn size(m: &Map<String, Value>, k: &str) -> Result<Option<u32>, String> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (64..=8192).contains(&n) && n % 8 == 0 => Ok(Some(n as u32)),
            _ => Err(format!(
                "\"{k}\" must be a whole number from 64 to 8192, a multiple of 8"
            )),
        },
    }
}

fn category_of(key: &str) -> Result<Category, String> {
    Category::parse(key).ok_or_else(|| format!("unknown category '{key}'"))
}

impl GenRequest {
    /// Reads a request body. Unknown keys are refused so typos do not go unnoticed.
    pub fn from_json(m: &Map<String, Value>) -> Result<GenRequest, String> {
        const KEYS: [&str; 14] = [
            "category",
            "slug",
            "character",
            "with",
            "extras",
            "fields",
            "active_outfit",
            "extra_positive",
            "extra_negative",
            "seed",
            "checkpoint",
            "width",
            "height",
            "action",
        ];
        if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!("unknown key \"{k}\" (known: {})", KEYS.join(", ")));
        }
        let mut r = GenRequest::default();
        match (text(m, "category")?, text(m, "slug")?) {
            (Some(c), Some(s)) => r.target = Some((category_of(&c)?, s)),
            (None, None) => {}
            _ => return Err("\"category\" and \"slug\" go together".into()),
        }
        r.character = text(m, "character")?
            .filter(|s| !s.is_empty())
            .map(|s| Pick::parse(&s));
        if let Some(v) = m.get("with").filter(|v| !v.is_null()) {
            let slots = v
                .as_object()
                .ok_or("\"with\" must be an object of category → slug (or \"__random__\")")?;
            for (c, p) in slots {
                let c = category_of(c)?;
                if matches!(c, Category::Characters | Category::Presets) {
                    return Err(format!(
                        "\"with\" cannot hold {c}; use \"character\" or a preset target"
                    ));
                }
                let p = p
                    .as_str()
                    .ok_or_else(|| format!("\"with\".{c} must be a slug or \"__random__\""))?;
                r.slots.push((c, Pick::parse(p)));
            }
        }
        r.replace_cover = match text(m, "action")?.as_deref() {
            None | Some("" | "preview") => false,
            Some("replace") => true,
            Some(other) => return Err(format!("\"action\" '{other}' is not preview or replace")),
        };
        if let Some(v) = m.get("extras").filter(|v| !v.is_null()) {
            let list = v.as_array().ok_or("\"extras\" must be a list")?;
            for item in list {
                let c = item.get("category").and_then(Value::as_str);
                let s = item.get("slug").and_then(Value::as_str);
                match (c, s) {
                    (Some(c), Some(s)) => r.extras.push((category_of(c)?, s.to_string())),
                    _ => return Err("each of \"extras\" needs \"category\" and \"slug\"".into()),
                }
            }
        }
        if let Some(v) = m.get("fields").filter(|v| !v.is_null()) {
            let list: Option<Vec<String>> = v
                .as_array()
                .and_then(|a| a.iter().map(|x| x.as_str().map(String::from)).collect());
            let list = list.ok_or("\"fields\" must be a list of strings")?;
            check_fields(&list).map_err(|e| e.to_string())?;
            r.fields = Some(list);
        }
        r.active_outfit = text(m, "active_outfit")?.filter(|s| !s.is_empty());
        r.extra_positive = text(m, "extra_positive")?.unwrap_or_default();
        r.extra_negative = text(m, "extra_negative")?.unwrap_or_default();
        r.seed = match m.get("seed") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or("\"seed\" must be a whole number ≥ 0")?),
        };
        r.checkpoint = text(m, "checkpoint")?.filter(|s| !s.is_empty());
        r.width = size(m, "width")?;
        r.height = size(m, "height")?;
        if r.target.is_none() && r.extras.is_empty() && r.character.is_none() && r.slots.is_empty()
        {
            return Err(
                "name a target (\"category\" and \"slug\"), a \"character\", or \"extras\"".into(),
            );
        }
        Ok(r)
    }
}

/// A generation resolved against the library, before it is sent anywhere.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub generation: engine::Generation,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    /// `category/slug` → version (seq) of every document used.
    pub versions: BTreeMap<String, u64>,
    /// The checkpoint used, if any.
    pub checkpoint: Option<String>,
    /// The character picked (useful when it was random).
    pub character: Option<String>,
    pub replace_cover: bool,
    /// The version (seq) of the workflow template the graph was built from; `None` for the
    /// built-in copy (tools that read `data/` without a ledger).
    pub template_version: Option<u64>,
}

impl Resolved {
    /// The recipe: everything needed to redo the generation exactly.
    pub fn recipe(&self) -> Value {
        serde_json::to_value(self.recipe_ref()).unwrap_or_default()
    }

    /// The recipe as a JSON value, the workflow moved in rather than copied (for the request
    /// path, which is done with the generation once the job is made).
    pub fn into_recipe(mut self) -> Value {
        let workflow = std::mem::take(&mut self.generation.workflow);
        let mut v = self.recipe();
        if let Some(w) = v.get_mut("workflow") {
            *w = workflow;
        }
        v
    }

    /// The recipe as JSON text, written straight from the parts (no copy of the workflow).
    pub fn recipe_text(&self) -> String {
        serde_json::to_string(&self.recipe_ref()).unwrap_or_default()
    }

    fn recipe_ref(&self) -> RecipeRef<'_> {
        RecipeRef {
            prompts: &self.generation.prompts,
            workflow: &self.generation.workflow,
            seed: self.seed,
            width: self.width,
            height: self.height,
            checkpoint: self.checkpoint.as_deref(),
            character: self.character.as_deref(),
            loras: &self.generation.report.loras,
            vanilla: self.generation.report.vanilla,
            versions: &self.versions,
            template_version: self.template_version,
        }
    }

    /// The API's preview body: the recipe plus the explanation and warnings.
    pub fn preview(&self) -> Value {
        let mut v = self.recipe();
        if let Value::Object(m) = &mut v {
            m.insert("explanation".into(), json!(self.generation.explanation));
            m.insert("report".into(), json!(self.generation.report));
            m.insert(
                "warnings".into(),
                json!(self.generation.warnings().collect::<Vec<_>>()),
            );
        }
        v
    }
}

/// The recipe's JSON shape, borrowing from a resolved generation.
#[derive(serde::Serialize)]
struct RecipeRef<'a> {
    prompts: &'a engine::Prompts,
    workflow: &'a Value,
    seed: u64,
    width: u32,
    height: u32,
    checkpoint: Option<&'a str>,
    character: Option<&'a str>,
    loras: &'a [engine::ActiveLora],
    vanilla: bool,
    versions: &'a BTreeMap<String, u64>,
    template_version: Option<u64>,
}

/// Options that come from the backend rather than the request.
#[derive(Clone, Debug, Default)]
pub struct Backend<'a> {
    pub vanilla: bool,
    pub known: KnownModels<'a>,
}

struct Parsed {
    category: Category,
    slug: String,
    data: std::sync::Arc<Value>,
}

fn entry<'l>(lib: &'l Library, c: Category, slug: &str) -> Result<&'l Entry, Refusal> {
    lib.get(c, slug)
        .ok_or_else(|| Refusal::NotFound(format!("no {} with slug '{slug}'", c.desc().singular)))
}

/// Picks an entry: a slug (or an id, which is turned into its slug), or a seeded random one.
fn pick<'l>(
    lib: &'l Library,
    c: Category,
    p: &Pick,
    seed: u64,
    salt: u64,
) -> Result<&'l Entry, Refusal> {
    match p {
        Pick::Slug(s) => lib
            .get(c, s)
            .or_else(|| lib.get(c, &c.slug_of(s)))
            .ok_or_else(|| Refusal::NotFound(format!("no {} '{s}'", c.desc().singular))),
        Pick::Random => {
            let docs = &lib.shelf(c).docs;
            let i = engine::pick_random(docs.len(), engine::doc::splitmix64(seed ^ salt))
                .ok_or_else(|| Refusal::NotFound(format!("no {} to pick from", c.key())))?;
            docs.values()
                .nth(i)
                .ok_or_else(|| Refusal::NotFound(format!("no {} to pick from", c.key())))
        }
    }
}

fn parsed(e: &Entry, c: Category) -> Parsed {
    Parsed {
        category: c,
        slug: e.slug.clone(),
        data: e.value(),
    }
}

/// Resolves a request. `seed` is used when neither the request nor a preset fixes one.
pub fn resolve(
    lib: &Library,
    req: &GenRequest,
    seed: u64,
    backend: &Backend<'_>,
) -> Result<Resolved, Refusal> {
    resolve_inner(lib, req, seed, backend, None).map(|(r, _)| r)
}

/// A strengths sweep of the target's LoRA: one resolved generation per weight in
/// `min..=max` by `step`, everything else fixed.
pub fn resolve_sweep(
    lib: &Library,
    req: &GenRequest,
    seed: u64,
    backend: &Backend<'_>,
    range: (f64, f64, f64),
) -> Result<Vec<(f64, Resolved)>, Refusal> {
    Ok(resolve_grid(lib, req, seed, backend, range, None)?
        .into_iter()
        .map(|(x, _, r)| (x, r))
        .collect())
}

/// The second axis of a strengths grid: another slot's weight range.
pub type SecondAxis = (engine::workflow::LoraSlot, (f64, f64, f64));

/// A strengths grid: the target's LoRA over `x` and, optionally, another slot's LoRA over
/// `y`; one resolved generation per cell (row by row, ascending), everything else fixed.
pub fn resolve_grid(
    lib: &Library,
    req: &GenRequest,
    seed: u64,
    backend: &Backend<'_>,
    x: (f64, f64, f64),
    y: Option<SecondAxis>,
) -> Result<Vec<(f64, Option<f64>, Resolved)>, Refusal> {
    let (base, steps) = resolve_inner(lib, req, seed, backend, Some((x, y)))?;
    let x_slot = sweep_slot(req);
    Ok(steps
        .into_iter()
        .map(|(wx, wy, workflow)| {
            let mut r = base.clone();
            r.generation.workflow = workflow;
            for l in &mut r.generation.report.loras {
                if Some(l.slot) == x_slot {
                    l.weight = wx;
                }
                if let (Some((slot, _)), Some(w)) = (y, wy)
                    && l.slot == slot
                {
                    l.weight = w;
                }
            }
            (wx, wy, r)
        })
        .collect())
}

/// The slot a strengths sweep of the request's target varies.
pub fn sweep_slot(req: &GenRequest) -> Option<engine::workflow::LoraSlot> {
    let (c, _) = req.target.as_ref()?;
    engine::workflow::LoraSlot::for_category(*c)
}

type Swept = Vec<(f64, Option<f64>, Value)>;

type Grid = ((f64, f64, f64), Option<SecondAxis>);

fn resolve_inner(
    lib: &Library,
    req: &GenRequest,
    seed: u64,
    backend: &Backend<'_>,
    sweep: Option<Grid>,
) -> Result<(Resolved, Swept), Refusal> {
    let mut req = req.clone();
    let target = match &req.target {
        Some((c, s)) => Some((*c, entry(lib, *c, s)?)),
        None => None,
    };
    // A preset fills in whatever the request leaves open.
    if let Some((Category::Presets, e)) = target {
        apply_preset(&mut req, e)?;
    }
    let seed = req.seed.unwrap_or(seed);
    let mut docs: Vec<Parsed> = Vec::new();
    let mut versions = BTreeMap::new();
    let mut note = |e: &Entry, c: Category, docs: &mut Vec<Parsed>| {
        versions.insert(format!("{}/{}", c.key(), e.slug), e.version);
        docs.push(parsed(e, c));
    };
    if let Some((c, e)) = target
        && c != Category::Presets
    {
        note(e, c, &mut docs);
    }
    // The character: the target, the request's choice, or the look's own character.
    let mut character = None;
    if let Some((Category::Characters, e)) = target {
        character = Some(e.slug.clone());
    } else if let Some(p) = &req.character {
        let e = pick(lib, Category::Characters, p, seed, 1)?;
        character = Some(e.slug.clone());
        note(e, Category::Characters, &mut docs);
    } else if let Some((Category::Looks, look)) = target {
        let owner = look.data().and_then(|d| {
            d.get("character_id")
                .and_then(Value::as_str)
                .map(String::from)
        });
        if let Some(e) =
            owner.and_then(|id| lib.get(Category::Characters, &Category::Characters.slug_of(&id)))
        {
            character = Some(e.slug.clone());
            note(e, Category::Characters, &mut docs);
        }
    }
    for (i, (c, p)) in req.slots.iter().enumerate() {
        if docs.iter().any(|d| d.category == *c) {
            continue;
        }
        let e = pick(lib, *c, p, seed, 2 + i as u64)?;
        note(e, *c, &mut docs);
    }
    // The checkpoint: the target, the request's, the default, else the first one.
    if !docs.iter().any(|d| d.category == Category::Checkpoints) {
        let shelf = &lib.shelf(Category::Checkpoints).docs;
        let by_path = |p: &str| shelf.values().find(|e| e.id == p);
        let chosen = match &req.checkpoint {
            Some(p) => {
                Some(by_path(p).ok_or_else(|| Refusal::NotFound(format!("no checkpoint '{p}'")))?)
            }
            None => lib
                .default_checkpoint
                .as_deref()
                .and_then(by_path)
                .or_else(|| shelf.values().next()),
        };
        if let Some(e) = chosen {
            note(e, Category::Checkpoints, &mut docs);
        }
    }
    let mut extras = Vec::new();
    for (c, s) in &req.extras {
        let e = entry(lib, *c, s)?;
        versions.insert(format!("{}/{}", c.key(), e.slug), e.version);
        extras.push(parsed(e, *c));
    }

    let char_entry = character
        .as_deref()
        .and_then(|s| lib.get(Category::Characters, s));
    let default_fields: Vec<String> = char_entry
        .map(|e| e.default_fields.clone())
        .unwrap_or_default();
    let mut selected = req.fields.clone().unwrap_or_default();
    let target_cat = target.map(|(c, _)| c);
    let find = |c: Category| docs.iter().find(|d| d.category == c).map(|d| &*d.data);
    // The original's _ensure_character_fields on every page but the character's own, plus the
    // name and expression, without which the face detailer would get an empty prompt.
    if target_cat != Some(Category::Characters) && char_entry.is_some() && req.fields.is_none() {
        selected.extend([
            "special::name".to_string(),
            "defaults::expression".to_string(),
        ]);
        engine::ensure_character_fields(
            &mut selected,
            find(Category::Characters),
            find(Category::Outfits),
            req.active_outfit.as_deref(),
        );
    }
    let mut comp = Composition {
        selected_fields: &selected,
        default_fields: &default_fields,
        active_outfit: req.active_outfit.as_deref(),
        extra_positive: &req.extra_positive,
        extra_negative: &req.extra_negative,
        append_background: !matches!(
            target_cat,
            None | Some(Category::Characters | Category::Checkpoints)
        ),
        target: target_cat,
        ..Composition::default()
    };
    for d in &docs {
        comp.set_slot(
            d.category,
            Doc {
                category: d.category.key(),
                slug: &d.slug,
                data: &d.data,
            },
        );
    }
    comp.extras = extras
        .iter()
        .map(|d| Doc {
            category: d.category.key(),
            slug: &d.slug,
            data: &d.data,
        })
        .collect();
    let (width, height) = (
        req.width.unwrap_or(DEFAULT_SIZE.0),
        req.height.unwrap_or(DEFAULT_SIZE.1),
    );
    let prefix = match &req.target {
        Some((c, s)) => format!("gaze/{}_{s}", c.key()),
        None => "gaze/generator".to_string(),
    };
    // The user's template as the ledger holds it (the built-in copy for tools without one).
    let template = lib.workflow.as_ref().map(|t| (t.version, t.value()));
    let opts = GenerationOptions {
        seed,
        width,
        height,
        vanilla: backend.vanilla,
        filename_prefix: Some(&prefix),
        known: backend.known,
        template: template.as_ref().map(|(_, v)| v.as_ref()),
    };
    let (generation, swept) = match sweep {
        None => (
            engine::generate(&comp, &opts).map_err(|e| Refusal::Invalid(e.to_string()))?,
            Vec::new(),
        ),
        Some(((min, max, step), second)) => {
            let slot = sweep_slot(&req).ok_or_else(|| {
                Refusal::Invalid(
                    "a strengths sweep needs a target whose category has a LoRA".into(),
                )
            })?;
            let x = engine::SweepAxis {
                slot,
                min,
                max,
                step,
            };
            let y = second.map(|(slot, (min, max, step))| engine::SweepAxis {
                slot,
                min,
                max,
                step,
            });
            let g = engine::strengths_grid(&comp, &opts, &x, y.as_ref())
                .map_err(|e| Refusal::Invalid(e.to_string()))?;
            let steps = g
                .steps
                .into_iter()
                .map(|st| (st.x, st.y, st.workflow))
                .collect();
            (g.base, steps)
        }
    };
    let checkpoint = docs
        .iter()
        .find(|d| d.category == Category::Checkpoints)
        .and_then(|d| {
            d.data
                .get("checkpoint_path")
                .and_then(Value::as_str)
                .map(String::from)
        });
    Ok((
        Resolved {
            generation,
            seed,
            width,
            height,
            versions,
            checkpoint,
            character,
            replace_cover: req.replace_cover,
            template_version: template.map(|(v, _)| v),
        },
        swept,
    ))
}

/// Fills the request from a preset document (seed, size, slots, fields, prompts), leaving what
/// the request already says.
fn apply_preset(req: &mut GenRequest, preset: &Entry) -> Result<(), Refusal> {
    let data = preset
        .data()
        .ok_or_else(|| Refusal::Invalid("the preset is not a JSON object".into()))?;
    let s = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if req.character.is_none() {
        req.character = s("character").map(Pick::parse);
    }
    for key in ["look", "outfit", "action", "style", "scene", "detailer"] {
        let c = match Category::parse(&format!("{key}s")) {
            Some(c) => c,
            None => continue,
        };
        if req.slots.iter().any(|(sc, _)| *sc == c) {
            continue;
        }
        if let Some(v) = s(key) {
            req.slots.push((c, Pick::parse(v)));
        }
    }
    if req.checkpoint.is_none() {
        req.checkpoint = s("checkpoint")
            .filter(|v| *v != RANDOM_SENTINEL)
            .map(String::from);
    }
    if req.fields.is_none() {
        let fields: Vec<String> = data
            .get("fields")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if !fields.is_empty() {
            req.fields = Some(fields);
        }
    }
    if req.active_outfit.is_none() {
        req.active_outfit = s("active_outfit").map(String::from);
    }
    for (k, target) in [
        ("extra_positive", &mut req.extra_positive),
        ("extra_negative", &mut req.extra_negative),
    ] {
        if let Some(v) = s(k) {
            if target.is_empty() {
                *target = v.to_string();
            } else {
                *target = format!("{v}, {target}");
            }
        }
    }
    let num = |k: &str| data.get(k).and_then(Value::as_u64);
    req.seed = req.seed.or(num("seed"));
    req.width = req.width.or(num("width").map(|n| n as u32));
    req.height = req.height.or(num("height").map(|n| n as u32));
    Ok(())
}

/// A job for a request given as JSON text (endless generation keeps its request as text).
pub fn job_from_json(
    lib: &Library,
    request: &str,
    seed: u64,
    endless: Option<u128>,
) -> Result<crate::store::event::JobSpec, String> {
    let m: Map<String, Value> =
        serde_json::from_str(request).map_err(|e| format!("the request does not parse: {e}"))?;
    let req = GenRequest::from_json(&m)?;
    let resolved = resolve(lib, &req, seed, &Backend::default()).map_err(|e| e.to_string())?;
    let mut spec = job_spec(&req, &resolved, &m);
    spec.endless = endless;
    Ok(spec)
}

/// The job for a resolved request.
pub fn job_spec(
    req: &GenRequest,
    resolved: &Resolved,
    request: &Map<String, Value>,
) -> crate::store::event::JobSpec {
    let label = match &req.target {
        Some((c, s)) => format!("{}/{s}", c.key()),
        None => "generator".to_string(),
    };
    crate::store::event::JobSpec {
        label,
        target: req.target.clone(),
        set_cover: resolved.replace_cover,
        recipe: resolved.recipe_text(),
        request: Value::Object(request.clone()).to_string(),
        batch: None,
        retry_of: None,
        endless: None,
    }
}
