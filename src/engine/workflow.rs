//! Workflow building: fills the ComfyUI API-format template (`comfy_workflow.json`) with prompts,
//! LoRAs, sampler settings, size, seed and VAE, and reports every wiring decision.
//!
//! Node map (the original's): 3 KSampler, 4 checkpoint, 5 latent, 6/7 positive/negative, 8 VAE
//! decode, 9 save, 10/12 face/hand detectors, 11/13 face/hand FaceDetailer, 14/15 their prompts,
//! 16–19 LoRA slots, and 20 a `VAELoader` added only for a named VAE.
//!
//! Rules:
//! - LoRA slots chain 4 → 16 → 17 → 18 → 19. A slot without a LoRA is removed and the next active
//!   slot links to the last active node; every model consumer (3, 11, 13) and clip consumer
//!   (6, 7, 11, 13, 14, 15) links to the end of the chain.
//! - Slot 16: the look's LoRA when the look names one, else the character's. 17: outfit. 18: action.
//!   19: among documents that name a LoRA, the page's target category first when it is a style,
//!   detailer or scene, then style, detailer, scene. A document whose LoRA finds its slot taken is
//!   reported in the warnings. Generator extras fill slots still free (looks → 16, outfits → 17,
//!   actions → 18, styles/detailers/scenes → 19 with the same priority), else list order.
//! - This one builder serves every page (the original had separate character, scene, detailer,
//!   style and checkpoint builders): the composition says which documents take part and the target
//!   category only breaks the slot-19 tie.
//! - Weights: `lora.lora_weight` for both strengths (see `doc::lora_weight`: default 1.0, numeric
//!   strings accepted, clamped to −100..100 with a warning).
//! - Prompts replace `{{POSITIVE_PROMPT}}`, `{{FACE_PROMPT}}`, `{{HAND_PROMPT}}` in 6, 14, 15 (text
//!   around a placeholder is kept); node 7's text becomes the built negative, which already
//!   contains the template's negative text.
//! - Without a checkpoint document (or its `checkpoint_path`) node 4 keeps the template's name and
//!   a warning says so. Checkpoint document: `checkpoint_path` → node 4; `steps` (1..10000), `cfg` (0..100),
//!   `sampler_name`, `scheduler` → nodes 3, 11 and 13 (out-of-range values are clamped, unreadable
//!   ones keep the template's, each with a warning). `vae` empty or `integrated` keeps the
//!   checkpoint's VAE; any other name adds node 20 and links 8, 11 and 13 to it.
//! - The seed goes to 3, 11 and 13; width/height to 5; the filename prefix to 9.
//! - Vanilla mode (no Impact Pack on the backend) removes 10–15 and links 9 to 8 directly.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::EngineError;
use super::doc::{self, Category};
use super::prompt::{Composition, Doc, Prompts};
use super::validate::KnownModels;

/// The template as shipped, embedded at build time.
pub const TEMPLATE_JSON: &str = include_str!("../../comfy_workflow.json");
pub const POSITIVE_PLACEHOLDER: &str = "{{POSITIVE_PROMPT}}";
pub const FACE_PLACEHOLDER: &str = "{{FACE_PROMPT}}";
pub const HAND_PLACEHOLDER: &str = "{{HAND_PROMPT}}";
pub const VAE_LOADER_NODE: &str = "20";
pub const CHECKPOINT_NODE: &str = "4";
const MODEL_CONSUMERS: [&str; 3] = ["3", "11", "13"];
const CLIP_CONSUMERS: [&str; 6] = ["6", "7", "11", "13", "14", "15"];
const VAE_CONSUMERS: [&str; 3] = ["8", "11", "13"];
const SAMPLERS: [&str; 3] = ["3", "11", "13"];
/// Nodes that need the Impact Pack (and Subpack): dropped in vanilla mode.
pub const DETAILER_NODES: [&str; 6] = ["10", "11", "12", "13", "14", "15"];
/// Most workflows one strengths sweep may produce.
pub const MAX_SWEEP_STEPS: usize = 64;

static TEMPLATE: OnceLock<Result<Value, String>> = OnceLock::new();

/// The parsed template, parsed once per process; callers clone it.
pub fn template() -> Result<&'static Value, EngineError> {
    TEMPLATE
        .get_or_init(|| serde_json::from_str(TEMPLATE_JSON).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| EngineError::Template(e.clone()))
}

/// The nodes the engine fills or wires, with the class each must have (the seed's node map).
pub const REQUIRED_NODES: [(&str, &str); 15] = [
    ("3", "KSampler"),
    ("4", "CheckpointLoaderSimple"),
    ("5", "EmptyLatentImage"),
    ("6", "CLIPTextEncode"),
    ("7", "CLIPTextEncode"),
    ("8", "VAEDecode"),
    ("9", "SaveImage"),
    ("11", "FaceDetailer"),
    ("13", "FaceDetailer"),
    ("14", "CLIPTextEncode"),
    ("15", "CLIPTextEncode"),
    ("16", "LoraLoader"),
    ("17", "LoraLoader"),
    ("18", "LoraLoader"),
    ("19", "LoraLoader"),
];

/// Checks a workflow template against what the engine needs before it is used: the node map
/// (ids and classes), the prompt placeholders, the LoRA chain 4 → 16 → 17 → 18 → 19, and a trial
/// build (every LoRA slot filled, with and without the detailers) that must pass `validate`.
/// `Err` lists every problem, each naming its node.
pub fn check_template(template: &Value) -> Result<(), Vec<String>> {
    let Some(nodes) = template.as_object() else {
        return Err(vec![
            "the template is not a JSON object of nodes (API format: {\"3\": {\"class_type\": …}})"
                .into(),
        ]);
    };
    let mut problems = Vec::new();
    for (id, class) in REQUIRED_NODES {
        match nodes.get(id) {
            None => problems.push(format!("node {id} ({class}) is missing")),
            Some(n) => {
                let got = n.get("class_type").and_then(Value::as_str);
                if got != Some(class) {
                    problems.push(format!(
                        "node {id} must be a {class}, not {}",
                        got.map_or("a node without class_type".to_string(), |g| format!(
                            "a {g}"
                        ))
                    ));
                }
                if n.get("inputs").and_then(Value::as_object).is_none() {
                    problems.push(format!("node {id} ({class}) has no inputs object"));
                }
            }
        }
    }
    for (id, placeholder) in [
        ("6", POSITIVE_PLACEHOLDER),
        ("14", FACE_PLACEHOLDER),
        ("15", HAND_PLACEHOLDER),
    ] {
        let text = doc::get(template, &[id, "inputs", "text"]).and_then(Value::as_str);
        if nodes.contains_key(id) && !text.is_some_and(|t| t.contains(placeholder)) {
            problems.push(format!("node {id}'s text must contain {placeholder}"));
        }
    }
    for (node, from) in [("16", "4"), ("17", "16"), ("18", "17"), ("19", "18")] {
        for (input, index) in [("model", 0), ("clip", 1)] {
            let got = doc::get(template, &[node, "inputs", input]);
            if nodes.contains_key(node) && got != Some(&link(from, index)) {
                problems.push(format!(
                    "the LoRA chain is broken: node {node}'s {input} must link to [\"{from}\", {index}]"
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let lora =
        |name: &str| serde_json::json!({ "lora": { "lora_name": name, "lora_weight": 1.0 } });
    let docs = [
        lora("a.safetensors"),
        lora("b.safetensors"),
        lora("c.safetensors"),
        lora("d.safetensors"),
    ];
    let doc_of = |category, slug, data| {
        Some(Doc {
            category,
            slug,
            data,
        })
    };
    let comp = Composition {
        character: doc_of("characters", "check", &docs[0]),
        outfit: doc_of("outfits", "check", &docs[1]),
        action: doc_of("actions", "check", &docs[2]),
        style: doc_of("styles", "check", &docs[3]),
        ..Composition::default()
    };
    let prompts = Prompts {
        main: "1girl".into(),
        face: "smile".into(),
        hand: "hands".into(),
        negative: "lowres".into(),
    };
    for vanilla in [false, true] {
        let opts = GenerationOptions {
            seed: 1,
            width: 832,
            height: 1216,
            vanilla,
            ..GenerationOptions::default()
        };
        let (wf, _) = build_workflow(template, &comp, &prompts, &opts);
        if let Err(errors) = super::validate::validate(&wf, &KnownModels::default()) {
            let mode = if vanilla {
                " (without the detailers)"
            } else {
                ""
            };
            problems.extend(
                errors
                    .iter()
                    .map(|e| format!("a trial build{mode} fails: {e}")),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.dedup();
        Err(problems)
    }
}

/// The template's node-7 negative text (part of every negative prompt).
pub fn template_negative(template: &Value) -> &str {
    doc::get(template, &["7", "inputs", "text"])
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The four LoRA slots of the chain, in chain order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoraSlot {
    /// Node 16: the character's LoRA, or the look's.
    Character,
    /// Node 17.
    Outfit,
    /// Node 18.
    Action,
    /// Node 19: style, else detailer, else scene.
    Style,
}

impl LoraSlot {
    pub const ALL: [LoraSlot; 4] = [
        LoraSlot::Character,
        LoraSlot::Outfit,
        LoraSlot::Action,
        LoraSlot::Style,
    ];

    pub fn node_id(self) -> &'static str {
        match self {
            LoraSlot::Character => "16",
            LoraSlot::Outfit => "17",
            LoraSlot::Action => "18",
            LoraSlot::Style => "19",
        }
    }

    /// The slot a category's LoRA goes to.
    pub fn for_category(c: Category) -> Option<LoraSlot> {
        match c {
            Category::Characters | Category::Looks => Some(LoraSlot::Character),
            Category::Outfits => Some(LoraSlot::Outfit),
            Category::Actions => Some(LoraSlot::Action),
            Category::Styles | Category::Detailers | Category::Scenes => Some(LoraSlot::Style),
            Category::Checkpoints | Category::Presets => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A LoRA loaded into a slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveLora {
    pub slot: LoraSlot,
    pub node: String,
    /// `category/slug` of the document it came from.
    pub source: String,
    pub name: String,
    pub weight: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowReport {
    /// Active slots in chain order.
    pub loras: Vec<ActiveLora>,
    /// Slots removed from the graph because no document supplied a LoRA.
    pub bypassed: Vec<LoraSlot>,
    pub vanilla: bool,
    pub checkpoint: String,
    /// A named VAE (node 20), or `None` for the checkpoint's own.
    pub vae: Option<String>,
    pub warnings: Vec<String>,
}

/// Per-generation inputs that are not library documents.
#[derive(Clone, Debug, Default)]
pub struct GenerationOptions<'a> {
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    /// The backend lacks the Impact Pack: no face/hand detailing.
    pub vanilla: bool,
    /// Node 9's `filename_prefix`; `None` or blank keeps the template's.
    pub filename_prefix: Option<&'a str>,
    /// The backend's model lists, when known, for `validate`.
    pub known: KnownModels<'a>,
    /// The user's workflow template; `None` uses the built-in copy (`template()`).
    pub template: Option<&'a Value>,
}

/// Decides which document's LoRA goes into which slot (see the module rules).
pub fn assign_loras(comp: &Composition<'_>) -> ([Option<ActiveLora>; 4], Vec<String>) {
    let mut slots: [Option<ActiveLora>; 4] = Default::default();
    let mut warnings = Vec::new();
    let mut offer = |slot: LoraSlot, d: &Doc<'_>, warnings: &mut Vec<String>| {
        let Some(name) = doc::lora_name(d.data) else {
            return;
        };
        let source = format!("{}/{}", d.category, d.slug);
        match &slots[slot.index()] {
            Some(taken) => warnings.push(format!(
                "LoRA '{name}' of {source} not loaded: slot {} holds {}",
                slot.node_id(),
                taken.source
            )),
            None => {
                let (weight, w) = doc::lora_weight(d.data);
                if let Some(w) = w {
                    warnings.push(format!("{source}: {w}"));
                }
                slots[slot.index()] = Some(ActiveLora {
                    slot,
                    node: slot.node_id().to_owned(),
                    source,
                    name: name.to_owned(),
                    weight,
                });
            }
        }
    };

    let look = comp.look.filter(|l| doc::lora_name(l.data).is_some());
    if let Some(d) = look.or(comp.character) {
        offer(LoraSlot::Character, &d, &mut warnings);
    }
    if let Some(d) = &comp.outfit {
        offer(LoraSlot::Outfit, d, &mut warnings);
    }
    if let Some(d) = &comp.action {
        offer(LoraSlot::Action, d, &mut warnings);
    }
    // Slot 19 contenders: the target category first, then style > detailer > scene (stable
    // sorts keep list order within a category).
    let rank = |c: Category| match c {
        _ if Some(c) == comp.target => 0,
        Category::Styles => 1,
        Category::Detailers => 2,
        Category::Scenes => 3,
        _ => 4,
    };
    let mut finishers = [
        (Category::Styles, comp.style),
        (Category::Detailers, comp.detailer),
        (Category::Scenes, comp.scene),
    ];
    finishers.sort_by_key(|(c, _)| rank(*c));
    for (_, d) in finishers {
        if let Some(d) = &d {
            offer(LoraSlot::Style, d, &mut warnings);
        }
    }
    let mut extras: Vec<(LoraSlot, u8, &Doc<'_>)> = comp
        .extras
        .iter()
        .filter_map(|d| {
            let c = Category::parse(d.category).filter(|c| *c != Category::Characters)?;
            Some((LoraSlot::for_category(c)?, rank(c), d))
        })
        .collect();
    extras.sort_by_key(|(_, r, _)| *r);
    for (slot, _, d) in extras {
        offer(slot, d, &mut warnings);
    }
    (slots, warnings)
}

fn link(node: &str, index: u64) -> Value {
    Value::Array(vec![Value::String(node.to_owned()), Value::from(index)])
}

fn inputs_mut<'w>(wf: &'w mut Value, node: &str) -> Option<&'w mut Map<String, Value>> {
    wf.get_mut(node)?.get_mut("inputs")?.as_object_mut()
}

/// Sets an input of an existing node; a missing node is left for `validate` to report.
fn set(wf: &mut Value, node: &str, input: &str, v: Value) {
    if let Some(inputs) = inputs_mut(wf, node) {
        match inputs.get_mut(input) {
            Some(slot) => *slot = v,
            None => {
                inputs.insert(input.to_owned(), v);
            }
        }
    }
}

/// Replaces `placeholder` in a text input; without a placeholder the whole text is replaced.
fn fill_text(
    wf: &mut Value,
    node: &str,
    placeholder: &str,
    text: &str,
    warnings: &mut Vec<String>,
) {
    let Some(inputs) = inputs_mut(wf, node) else {
        return;
    };
    match inputs.get_mut("text") {
        Some(Value::String(t)) if t.contains(placeholder) => *t = t.replace(placeholder, text),
        _ => {
            warnings.push(format!(
                "template node {node} has no {placeholder}; its text was replaced"
            ));
            inputs.insert("text".to_owned(), Value::String(text.to_owned()));
        }
    }
}

/// Builds one workflow from the template. Infallible: anything wrong in the result is found by
/// `validate`.
pub fn build_workflow(
    template: &Value,
    comp: &Composition<'_>,
    prompts: &Prompts,
    opts: &GenerationOptions<'_>,
) -> (Value, WorkflowReport) {
    let (slots, mut warnings) = assign_loras(comp);
    // Nodes the graph will not contain are never copied: empty LoRA slots, and the detailer
    // nodes in vanilla mode.
    let dropped = |id: &str| {
        (opts.vanilla && DETAILER_NODES.contains(&id))
            || LoraSlot::ALL
                .iter()
                .zip(&slots)
                .any(|(s, l)| l.is_none() && s.node_id() == id)
    };
    let mut wf = match template.as_object() {
        Some(nodes) => Value::Object(
            nodes
                .iter()
                .filter(|(id, _)| !dropped(id))
                .map(|(id, node)| (id.clone(), node.clone()))
                .collect(),
        ),
        None => template.clone(),
    };

    fill_text(
        &mut wf,
        "6",
        POSITIVE_PLACEHOLDER,
        &prompts.main,
        &mut warnings,
    );
    // The template's negative text is already part of `prompts.negative` (see `prompt`).
    set(
        &mut wf,
        "7",
        "text",
        Value::String(prompts.negative.clone()),
    );

    set(&mut wf, "5", "width", Value::from(opts.width));
    set(&mut wf, "5", "height", Value::from(opts.height));
    for node in SAMPLERS {
        set(&mut wf, node, "seed", Value::from(opts.seed));
    }
    if let Some(p) = opts
        .filename_prefix
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        set(&mut wf, "9", "filename_prefix", Value::String(p.to_owned()));
    }

    if opts.vanilla {
        set(&mut wf, "9", "images", link("8", 0));
    } else {
        fill_text(
            &mut wf,
            "14",
            FACE_PLACEHOLDER,
            &prompts.face,
            &mut warnings,
        );
        fill_text(
            &mut wf,
            "15",
            HAND_PLACEHOLDER,
            &prompts.hand,
            &mut warnings,
        );
    }

    let (checkpoint, vae) = apply_checkpoint(&mut wf, comp.checkpoint.as_ref(), &mut warnings);

    let (mut model, mut clip) = (link(CHECKPOINT_NODE, 0), link(CHECKPOINT_NODE, 1));
    let mut loras = Vec::with_capacity(4);
    let mut bypassed = Vec::new();
    for (slot, lora) in LoraSlot::ALL.into_iter().zip(slots) {
        let node = slot.node_id();
        match lora {
            Some(l) => {
                set(&mut wf, node, "model", model);
                set(&mut wf, node, "clip", clip);
                set(&mut wf, node, "lora_name", Value::String(l.name.clone()));
                set(&mut wf, node, "strength_model", Value::from(l.weight));
                set(&mut wf, node, "strength_clip", Value::from(l.weight));
                (model, clip) = (link(node, 0), link(node, 1));
                loras.push(l);
            }
            None => bypassed.push(slot),
        }
    }
    for node in MODEL_CONSUMERS {
        set_if_present(&mut wf, node, "model", &model);
    }
    for node in CLIP_CONSUMERS {
        set_if_present(&mut wf, node, "clip", &clip);
    }

    let report = WorkflowReport {
        loras,
        bypassed,
        vanilla: opts.vanilla,
        checkpoint,
        vae,
        warnings,
    };
    (wf, report)
}

fn set_if_present(wf: &mut Value, node: &str, input: &str, v: &Value) {
    if wf.get(node).is_some() {
        set(wf, node, input, v.clone());
    }
}

/// Applies a checkpoint document; returns the checkpoint name in effect and the named VAE, if any.
fn apply_checkpoint(
    wf: &mut Value,
    ck: Option<&Doc<'_>>,
    warnings: &mut Vec<String>,
) -> (String, Option<String>) {
    let template_ckpt = || {
        doc::get(wf, &[CHECKPOINT_NODE, "inputs", "ckpt_name"])
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let Some(ck) = ck else {
        let name = template_ckpt();
        warnings.push(format!(
            "no checkpoint document; using the template's '{name}'"
        ));
        return (name, None);
    };
    let label = format!("{}/{}", ck.category, ck.slug);
    let data = ck.data;

    let name = match doc::get(data, &["checkpoint_path"]).and_then(doc::scalar_text) {
        Some(p) => {
            let p = p.trim().to_owned();
            set(wf, CHECKPOINT_NODE, "ckpt_name", Value::String(p.clone()));
            p
        }
        None => {
            let name = template_ckpt();
            warnings.push(format!(
                "{label}: no checkpoint_path; using the template's '{name}'"
            ));
            name
        }
    };

    if let Some(steps) = number_setting(data, "steps", 1.0, 10000.0, &label, warnings) {
        for node in SAMPLERS {
            set_if_present(wf, node, "steps", &Value::from(steps.round() as i64));
        }
    }
    if let Some(cfg) = number_setting(data, "cfg", 0.0, 100.0, &label, warnings) {
        for node in SAMPLERS {
            set_if_present(wf, node, "cfg", &Value::from(cfg));
        }
    }
    for key in ["sampler_name", "scheduler"] {
        if let Some(v) = doc::get(data, &[key]).and_then(doc::scalar_text) {
            let v = Value::String(v.trim().to_owned());
            for node in SAMPLERS {
                set_if_present(wf, node, key, &v);
            }
        }
    }

    let vae = doc::get(data, &["vae"])
        .and_then(doc::scalar_text)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.eq_ignore_ascii_case("integrated"));
    if let Some(vae_name) = &vae {
        if let Some(map) = wf.as_object_mut() {
            let mut node = Map::new();
            node.insert(
                "class_type".to_owned(),
                Value::String("VAELoader".to_owned()),
            );
            let mut inputs = Map::new();
            inputs.insert("vae_name".to_owned(), Value::String(vae_name.clone()));
            node.insert("inputs".to_owned(), Value::Object(inputs));
            let mut meta = Map::new();
            meta.insert("title".to_owned(), Value::String("Load VAE".to_owned()));
            node.insert("_meta".to_owned(), Value::Object(meta));
            map.insert(VAE_LOADER_NODE.to_owned(), Value::Object(node));
        }
        for node in VAE_CONSUMERS {
            set_if_present(wf, node, "vae", &link(VAE_LOADER_NODE, 0));
        }
    }
    (name, vae)
}

/// A numeric checkpoint setting: absent/null → `None` silently; unreadable → `None` with a
/// warning; out of range → clamped with a warning.
fn number_setting(
    data: &Value,
    key: &str,
    min: f64,
    max: f64,
    label: &str,
    warnings: &mut Vec<String>,
) -> Option<f64> {
    let raw = doc::get(data, &[key])?;
    let parsed = match raw {
        Value::Null => return None,
        Value::String(s) if s.trim().is_empty() => return None,
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match parsed.filter(|x| x.is_finite()) {
        None => {
            warnings.push(format!(
                "{label}: {key} {raw} is not a number; using the template's"
            ));
            None
        }
        Some(x) if x < min || x > max => {
            let c = x.clamp(min, max);
            warnings.push(format!(
                "{label}: {key} {x} is outside {min}..{max}; clamped to {c}"
            ));
            Some(c)
        }
        Some(x) => Some(x),
    }
}

/// The weights of a strengths sweep: `min`, `min + step`, … up to `max` inclusive. Each value is
/// `min + i·step` rounded to 6 decimals (so 0.1 steps print as 0.3, not 0.30000000000000004), and
/// `max` is reached when `(max − min)/step` is within 1e-9 of an integer.
pub fn sweep_weights(min: f64, max: f64, step: f64) -> Result<Vec<f64>, EngineError> {
    let bad = |m: String| Err(EngineError::Sweep(m));
    if !(min.is_finite() && max.is_finite() && step.is_finite()) {
        return bad(format!(
            "min {min}, max {max} and step {step} must be finite"
        ));
    }
    if step <= 0.0 {
        return bad(format!("step {step} must be positive"));
    }
    if min > max {
        return bad(format!("min {min} is above max {max}"));
    }
    if min < doc::LORA_WEIGHT_MIN || max > doc::LORA_WEIGHT_MAX {
        return bad(format!(
            "weights {min}..{max} exceed the LoRA range −100..100"
        ));
    }
    let span = (max - min) / step;
    let intervals = (span + 1e-9).floor();
    if intervals + 1.0 > MAX_SWEEP_STEPS as f64 {
        return bad(format!(
            "{min}..{max} by {step} makes {} workflows; the limit is {MAX_SWEEP_STEPS}",
            intervals as u64 + 1
        ));
    }
    let n = intervals as usize;
    Ok((0..=n)
        .map(|i| {
            let w = if i == n && (span - intervals).abs() < 1e-9 {
                max
            } else {
                min + i as f64 * step
            };
            ((w * 1e6).round() / 1e6).min(max)
        })
        .collect())
}

/// Sets both strengths of a slot's node (used by the sweep).
pub fn set_lora_weight(wf: &mut Value, slot: LoraSlot, weight: f64) {
    set(wf, slot.node_id(), "strength_model", Value::from(weight));
    set(wf, slot.node_id(), "strength_clip", Value::from(weight));
}

/// Classes that need the Impact Pack (and its Subpack).
pub const IMPACT_CLASSES: [&str; 2] = ["FaceDetailer", "UltralyticsDetectorProvider"];

/// An already-built workflow made runnable on vanilla ComfyUI: every Impact Pack node is removed,
/// links to a FaceDetailer's image go to the image it was given, and nodes that only fed the
/// removed ones (the detailer prompts) go too. `None` when there is nothing to remove.
pub fn to_vanilla(wf: &Value) -> Option<Value> {
    let nodes = wf.as_object()?;
    let is_impact = |n: &Value| {
        n.get("class_type")
            .and_then(Value::as_str)
            .is_some_and(|c| IMPACT_CLASSES.contains(&c))
    };
    let removed: Vec<&String> = nodes
        .iter()
        .filter(|(_, n)| is_impact(n))
        .map(|(id, _)| id)
        .collect();
    if removed.is_empty() {
        return None;
    }
    // Where a removed detailer's image came from, following chains of detailers.
    let source_of = |mut link: Value| {
        for _ in 0..nodes.len() {
            let Some(id) = link.get(0).and_then(Value::as_str) else {
                break;
            };
            match nodes.get(id) {
                Some(n) if is_impact(n) => match n.get("inputs").and_then(|i| i.get("image")) {
                    Some(next) => link = next.clone(),
                    None => break,
                },
                _ => break,
            }
        }
        link
    };
    let mut out = serde_json::Map::new();
    for (id, node) in nodes {
        if removed.contains(&id) {
            continue;
        }
        let mut node = node.clone();
        if let Some(inputs) = node.get_mut("inputs").and_then(Value::as_object_mut) {
            for v in inputs.values_mut() {
                let points_to_removed = v
                    .get(0)
                    .and_then(Value::as_str)
                    .is_some_and(|src| removed.iter().any(|r| r.as_str() == src));
                if v.is_array() && points_to_removed {
                    *v = source_of(v.clone());
                }
            }
        }
        out.insert(id.clone(), node);
    }
    // Drop nodes nothing uses any more, unless they are outputs (SaveImage).
    loop {
        let used: std::collections::HashSet<String> = out
            .values()
            .filter_map(|n| n.get("inputs").and_then(Value::as_object))
            .flat_map(|i| i.values())
            .filter_map(|v| v.get(0).and_then(Value::as_str).map(String::from))
            .collect();
        let orphans: Vec<String> = out
            .iter()
            .filter(|(id, n)| {
                !used.contains(id.as_str())
                    && n.get("class_type").and_then(Value::as_str) != Some("SaveImage")
            })
            .map(|(id, _)| id.clone())
            .collect();
        if orphans.is_empty() {
            break;
        }
        for id in orphans {
            out.remove(&id);
        }
    }
    Some(Value::Object(out))
}

/// The graph exactly as a backend receives it for one submission of a recipe's workflow:
/// made vanilla when the backend lacks the Impact Pack, and every SaveImage's
/// `filename_prefix` suffixed with the submission's prompt id. ComfyUI serves an identical
/// graph from its cache and may report no new image; with its own prefix, only the save node
/// runs again, so running a recipe again always gives a new file.
pub fn sent_graph(recipe_workflow: &Value, vanilla: bool, prompt_id: &str) -> Value {
    let mut wf = if vanilla {
        to_vanilla(recipe_workflow).unwrap_or_else(|| recipe_workflow.clone())
    } else {
        recipe_workflow.clone()
    };
    if let Some(nodes) = wf.as_object_mut() {
        for node in nodes.values_mut() {
            if node.get("class_type").and_then(Value::as_str) != Some("SaveImage") {
                continue;
            }
            if let Some(inputs) = node.get_mut("inputs").and_then(Value::as_object_mut) {
                let prefix = inputs
                    .get("filename_prefix")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .unwrap_or("GAZE");
                let with_id = format!("{prefix}_{prompt_id}");
                inputs.insert("filename_prefix".into(), Value::String(with_id));
            }
        }
    }
    wf
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_sent_graph_names_its_submission_and_drops_impact_nodes_when_asked() {
        let t = template().ok().cloned().unwrap_or(Value::Null);
        let pid = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let full = sent_graph(&t, false, pid);
        assert_eq!(
            full["9"]["inputs"]["filename_prefix"],
            json!(format!("GAZE_{pid}"))
        );
        let mut rest = full.clone();
        rest["9"]["inputs"]["filename_prefix"] = t["9"]["inputs"]["filename_prefix"].clone();
        assert_eq!(rest, t, "nothing else changes");
        let vanilla = sent_graph(&t, true, pid);
        assert!(!vanilla.to_string().contains("FaceDetailer"));
        let mut want = to_vanilla(&t).unwrap_or(Value::Null);
        want["9"]["inputs"]["filename_prefix"] = json!(format!("GAZE_{pid}"));
        assert_eq!(vanilla, want);
        let mut blank = t.clone();
        blank["9"]["inputs"]["filename_prefix"] = json!("  ");
        assert_eq!(
            sent_graph(&blank, false, "x")["9"]["inputs"]["filename_prefix"],
            json!("GAZE_x")
        );
        assert_ne!(
            sent_graph(&t, false, "a"),
            sent_graph(&t, false, "b"),
            "two submissions never send the same graph"
        );
    }

    fn doc<'a>(category: &'a str, slug: &'a str, data: &'a Value) -> Doc<'a> {
        Doc {
            category,
            slug,
            data,
        }
    }

    fn names(comp: &Composition<'_>) -> Vec<Option<String>> {
        assign_loras(comp)
            .0
            .iter()
            .map(|s| s.as_ref().map(|l| l.source.clone()))
            .collect()
    }

    #[test]
    fn template_parses_and_has_the_node_map() {
        let t = template().ok().cloned().unwrap_or(Value::Null);
        let classes: Vec<(&str, &str)> = vec![
            ("3", "KSampler"),
            ("4", "CheckpointLoaderSimple"),
            ("5", "EmptyLatentImage"),
            ("6", "CLIPTextEncode"),
            ("7", "CLIPTextEncode"),
            ("8", "VAEDecode"),
            ("9", "SaveImage"),
            ("10", "UltralyticsDetectorProvider"),
            ("11", "FaceDetailer"),
            ("12", "UltralyticsDetectorProvider"),
            ("13", "FaceDetailer"),
            ("14", "CLIPTextEncode"),
            ("15", "CLIPTextEncode"),
            ("16", "LoraLoader"),
            ("17", "LoraLoader"),
            ("18", "LoraLoader"),
            ("19", "LoraLoader"),
        ];
        for (id, class) in classes {
            assert_eq!(t[id]["class_type"], json!(class), "node {id}");
        }
        assert_eq!(t.as_object().map(|m| m.len()), Some(17));
        assert_eq!(t["6"]["inputs"]["text"], json!(POSITIVE_PLACEHOLDER));
        assert_eq!(t["14"]["inputs"]["text"], json!(FACE_PLACEHOLDER));
        assert_eq!(t["15"]["inputs"]["text"], json!(HAND_PLACEHOLDER));
        assert_eq!(
            t["10"]["inputs"]["model_name"],
            json!("bbox/face_yolov8m.pt")
        );
        assert_eq!(
            t["12"]["inputs"]["model_name"],
            json!("bbox/hand_yolov8s.pt")
        );
        // Image path 3 → 8 → 11 → 13 → 9.
        assert_eq!(t["8"]["inputs"]["samples"], json!(["3", 0]));
        assert_eq!(t["11"]["inputs"]["image"], json!(["8", 0]));
        assert_eq!(t["13"]["inputs"]["image"], json!(["11", 0]));
        assert_eq!(t["9"]["inputs"]["images"], json!(["13", 0]));
        assert!(template_negative(&t).contains("lowres"));
    }

    #[test]
    fn slot_assignment_table() {
        let lora = |n: &str| json!({"lora": {"lora_name": n, "lora_weight": 0.7}});
        let (ch, look, out, act, sty, det, sce) = (
            lora("c.safetensors"),
            lora("l.safetensors"),
            lora("o.safetensors"),
            lora("a.safetensors"),
            lora("s.safetensors"),
            lora("d.safetensors"),
            lora("sc.safetensors"),
        );
        let none = json!({"lora": {"lora_name": ""}});
        let s = |x: &str| Some(x.to_owned());

        let mut c = Composition {
            character: Some(doc("characters", "c", &ch)),
            ..Default::default()
        };
        assert_eq!(names(&c), vec![s("characters/c"), None, None, None]);

        c.look = Some(doc("looks", "l", &look));
        assert_eq!(
            names(&c)[0],
            s("looks/l"),
            "a look with a LoRA takes slot 16"
        );
        c.look = Some(doc("looks", "l", &none));
        assert_eq!(
            names(&c)[0],
            s("characters/c"),
            "a look without a LoRA leaves the character's"
        );

        let mut c = Composition {
            character: Some(doc("characters", "c", &ch)),
            outfit: Some(doc("outfits", "o", &out)),
            action: Some(doc("actions", "a", &act)),
            style: Some(doc("styles", "s", &sty)),
            detailer: Some(doc("detailers", "d", &det)),
            scene: Some(doc("scenes", "sc", &sce)),
            ..Default::default()
        };
        assert_eq!(
            names(&c),
            vec![
                s("characters/c"),
                s("outfits/o"),
                s("actions/a"),
                s("styles/s")
            ]
        );
        let (_, w) = assign_loras(&c);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("detailers/d") && w[0].contains("slot 19 holds styles/s"));

        c.target = Some(Category::Scenes);
        assert_eq!(names(&c)[3], s("scenes/sc"), "the target wins slot 19");
        c.target = Some(Category::Detailers);
        assert_eq!(names(&c)[3], s("detailers/d"));
        c.target = None;
        c.style = Some(doc("styles", "s", &none));
        assert_eq!(
            names(&c)[3],
            s("detailers/d"),
            "style without LoRA does not block"
        );
        c.detailer = None;
        assert_eq!(names(&c)[3], s("scenes/sc"));
    }

    #[test]
    fn extras_fill_free_slots_only() {
        let lora = |n: &str| json!({"lora": {"lora_name": n}});
        let (ch, o1, o2, sc) = (lora("c"), lora("o1"), lora("o2"), lora("sc"));
        let c = Composition {
            character: Some(doc("characters", "c", &ch)),
            extras: vec![
                doc("outfits", "o1", &o1),
                doc("outfits", "o2", &o2),
                doc("scenes", "sc", &sc),
                doc("characters", "x", &ch),
            ],
            ..Default::default()
        };
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            names(&c),
            vec![s("characters/c"), s("outfits/o1"), None, s("scenes/sc")]
        );
        let (_, w) = assign_loras(&c);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("outfits/o2"));

        // Slot 19 among extras: style > detailer > scene regardless of list order; target first.
        let (st, de) = (lora("st"), lora("de"));
        let mut c = Composition {
            extras: vec![
                doc("scenes", "sc", &sc),
                doc("detailers", "de", &de),
                doc("styles", "st", &st),
            ],
            ..Default::default()
        };
        assert_eq!(names(&c)[3], s("styles/st"));
        c.target = Some(Category::Scenes);
        assert_eq!(names(&c)[3], s("scenes/sc"));
    }

    #[test]
    fn sweep_weights_are_inclusive_and_float_safe() {
        let ok = |a, b, s| sweep_weights(a, b, s).unwrap_or_default();
        assert_eq!(
            ok(0.0, 1.0, 0.1),
            vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
        );
        assert_eq!(ok(0.2, 1.0, 0.2), vec![0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(ok(0.5, 0.5, 0.1), vec![0.5]);
        assert_eq!(ok(0.0, 1.0, 0.3), vec![0.0, 0.3, 0.6, 0.9]);
        assert_eq!(ok(-1.0, 1.0, 0.5), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(ok(0.0, 6.3, 0.1).len(), 64);
        for (a, b, s) in [
            (0.0, 1.0, 0.0),
            (0.0, 1.0, -0.1),
            (1.0, 0.0, 0.1),
            (0.0, 1.0, f64::NAN),
            (0.0, 1.0, 0.001),
            (0.0, 200.0, 10.0),
        ] {
            assert!(
                matches!(sweep_weights(a, b, s), Err(EngineError::Sweep(_))),
                "{a} {b} {s}"
            );
        }
    }

    #[test]
    fn checkpoint_settings_are_tolerant() {
        let t = template().ok().cloned().unwrap_or(Value::Null);
        let run = |data: Value| {
            let mut wf = t.clone();
            let mut w = Vec::new();
            let d = doc("checkpoints", "ck", &data);
            let r = apply_checkpoint(&mut wf, Some(&d), &mut w);
            (wf, r, w)
        };
        let (wf, (name, vae), w) = run(json!({
            "checkpoint_path": "Noob/x.safetensors", "steps": "30", "cfg": 6.5,
            "sampler_name": "dpmpp_2m", "scheduler": "karras", "vae": "Integrated"
        }));
        assert_eq!((name.as_str(), vae), ("Noob/x.safetensors", None));
        assert!(w.is_empty(), "{w:?}");
        for n in ["3", "11", "13"] {
            assert_eq!(wf[n]["inputs"]["steps"], json!(30));
            assert_eq!(wf[n]["inputs"]["cfg"], json!(6.5));
            assert_eq!(wf[n]["inputs"]["sampler_name"], json!("dpmpp_2m"));
            assert_eq!(wf[n]["inputs"]["scheduler"], json!("karras"));
        }
        assert!(wf.get(VAE_LOADER_NODE).is_none());

        let (wf, (_, vae), w) =
            run(json!({"steps": "many", "cfg": 500, "vae": "sdxl_vae.safetensors"}));
        assert_eq!(vae.as_deref(), Some("sdxl_vae.safetensors"));
        assert_eq!(wf["3"]["inputs"]["steps"], t["3"]["inputs"]["steps"]);
        assert_eq!(wf["3"]["inputs"]["cfg"], json!(100.0));
        assert_eq!(wf[VAE_LOADER_NODE]["class_type"], json!("VAELoader"));
        for n in ["8", "11", "13"] {
            assert_eq!(wf[n]["inputs"]["vae"], json!([VAE_LOADER_NODE, 0]));
        }
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w.iter().any(|m| m.contains("no checkpoint_path")));
        assert!(
            w.iter()
                .any(|m| m.contains("steps") && m.contains("not a number"))
        );
        assert!(w.iter().any(|m| m.contains("clamped")));

        let (wf, _, w) = run(json!({"checkpoint_path": null, "steps": 0, "cfg": null, "vae": ""}));
        assert_eq!(wf["3"]["inputs"]["steps"], json!(1));
        assert!(wf.get(VAE_LOADER_NODE).is_none());
        assert_eq!(w.len(), 2, "{w:?}");
    }
}
