//! Workflow validation before anything is sent to ComfyUI: a schema table for every node class the
//! template uses and checks modelled on ComfyUI's `validate_prompt` (error types and messages as in
//! `reference/comfyui-api.md` §13–15).
//!
//! Stricter than ComfyUI in two ways, because these graphs are ours: every node is checked, not
//! only those an output reaches, and a link-typed input holding a plain value is an error.
//! Like ComfyUI, numeric strings are accepted for INT/FLOAT inputs. Checkpoint, LoRA, VAE, sampler
//! and scheduler names are checked only when the backend's lists are known.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::tags::FxBuild;

type FxMap<K, V> = HashMap<K, V, FxBuild>;

/// The backend's lists (from `/models/*` and `/object_info`); `None` = unknown, not checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct KnownModels<'a> {
    pub checkpoints: Option<&'a [String]>,
    pub loras: Option<&'a [String]>,
    pub vaes: Option<&'a [String]>,
    pub samplers: Option<&'a [String]>,
    pub schedulers: Option<&'a [String]>,
}

/// Where a combo input's allowed values come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Combo {
    Checkpoints,
    Loras,
    Vaes,
    Samplers,
    Schedulers,
    /// KSampler schedulers plus the Impact Pack's own.
    DetailerSchedulers,
    /// Ultralytics models: `bbox/…` or `segm/…`.
    Detectors,
    Fixed(&'static [&'static str]),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InputKind {
    /// A link to an output of this type.
    Link(&'static str),
    Int {
        min: i128,
        max: i128,
    },
    Float {
        min: f64,
        max: f64,
    },
    Str,
    Bool,
    Combo(Combo),
}

#[derive(Clone, Copy, Debug)]
pub struct InputSpec {
    pub name: &'static str,
    pub kind: InputKind,
}

#[derive(Clone, Copy, Debug)]
pub struct NodeSchema {
    pub class_type: &'static str,
    /// Required inputs.
    pub inputs: &'static [InputSpec],
    pub outputs: &'static [&'static str],
    /// An output node (ComfyUI's `OUTPUT_NODE`).
    pub output: bool,
}

const fn link(name: &'static str, ty: &'static str) -> InputSpec {
    InputSpec {
        name,
        kind: InputKind::Link(ty),
    }
}
const fn int(name: &'static str, min: i128, max: i128) -> InputSpec {
    InputSpec {
        name,
        kind: InputKind::Int { min, max },
    }
}
const fn float(name: &'static str, min: f64, max: f64) -> InputSpec {
    InputSpec {
        name,
        kind: InputKind::Float { min, max },
    }
}
const fn combo(name: &'static str, c: Combo) -> InputSpec {
    InputSpec {
        name,
        kind: InputKind::Combo(c),
    }
}
const fn string(name: &'static str) -> InputSpec {
    InputSpec {
        name,
        kind: InputKind::Str,
    }
}
const fn boolean(name: &'static str) -> InputSpec {
    InputSpec {
        name,
        kind: InputKind::Bool,
    }
}

const SEED_MAX: i128 = u64::MAX as i128;
const MAX_RESOLUTION: i128 = 8192;

/// KSampler's sampler names in ComfyUI 0.3.64, for choosing one when no backend answers.
pub const KNOWN_SAMPLERS: [&str; 25] = [
    "euler",
    "euler_cfg_pp",
    "euler_ancestral",
    "euler_ancestral_cfg_pp",
    "heun",
    "heunpp2",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpm_adaptive",
    "dpmpp_2s_ancestral",
    "dpmpp_sde",
    "dpmpp_sde_gpu",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu",
    "dpmpp_3m_sde",
    "dpmpp_3m_sde_gpu",
    "ddpm",
    "lcm",
    "ipndm",
    "deis",
    "ddim",
    "uni_pc",
];

/// KSampler's scheduler names in ComfyUI 0.3.64, for choosing one when no backend answers.
pub const KNOWN_SCHEDULERS: [&str; 9] = [
    "normal",
    "karras",
    "exponential",
    "sgm_uniform",
    "simple",
    "ddim_uniform",
    "beta",
    "linear_quadratic",
    "kl_optimal",
];

/// Impact Pack scheduler names accepted by FaceDetailer besides KSampler's.
pub const IMPACT_SCHEDULERS: [&str; 5] = [
    "AYS SDXL",
    "AYS SD1",
    "AYS SVD",
    "GITS[coeff=1.2]",
    "LTXV[default]",
];

pub const SCHEMAS: [NodeSchema; 10] = [
    NodeSchema {
        class_type: "CheckpointLoaderSimple",
        inputs: &[combo("ckpt_name", Combo::Checkpoints)],
        outputs: &["MODEL", "CLIP", "VAE"],
        output: false,
    },
    NodeSchema {
        class_type: "LoraLoader",
        inputs: &[
            link("model", "MODEL"),
            link("clip", "CLIP"),
            combo("lora_name", Combo::Loras),
            float("strength_model", -100.0, 100.0),
            float("strength_clip", -100.0, 100.0),
        ],
        outputs: &["MODEL", "CLIP"],
        output: false,
    },
    NodeSchema {
        class_type: "CLIPTextEncode",
        inputs: &[string("text"), link("clip", "CLIP")],
        outputs: &["CONDITIONING"],
        output: false,
    },
    NodeSchema {
        class_type: "EmptyLatentImage",
        inputs: &[
            int("width", 16, MAX_RESOLUTION),
            int("height", 16, MAX_RESOLUTION),
            int("batch_size", 1, 4096),
        ],
        outputs: &["LATENT"],
        output: false,
    },
    NodeSchema {
        class_type: "KSampler",
        inputs: &[
            link("model", "MODEL"),
            int("seed", 0, SEED_MAX),
            int("steps", 1, 10000),
            float("cfg", 0.0, 100.0),
            combo("sampler_name", Combo::Samplers),
            combo("scheduler", Combo::Schedulers),
            link("positive", "CONDITIONING"),
            link("negative", "CONDITIONING"),
            link("latent_image", "LATENT"),
            float("denoise", 0.0, 1.0),
        ],
        outputs: &["LATENT"],
        output: false,
    },
    NodeSchema {
        class_type: "VAEDecode",
        inputs: &[link("samples", "LATENT"), link("vae", "VAE")],
        outputs: &["IMAGE"],
        output: false,
    },
    NodeSchema {
        class_type: "SaveImage",
        inputs: &[link("images", "IMAGE"), string("filename_prefix")],
        outputs: &[],
        output: true,
    },
    NodeSchema {
        class_type: "VAELoader",
        inputs: &[combo("vae_name", Combo::Vaes)],
        outputs: &["VAE"],
        output: false,
    },
    NodeSchema {
        class_type: "FaceDetailer",
        inputs: &[
            link("image", "IMAGE"),
            link("model", "MODEL"),
            link("clip", "CLIP"),
            link("vae", "VAE"),
            link("positive", "CONDITIONING"),
            link("negative", "CONDITIONING"),
            link("bbox_detector", "BBOX_DETECTOR"),
            float("guide_size", 64.0, 8192.0),
            boolean("guide_size_for"),
            float("max_size", 64.0, 8192.0),
            int("seed", 0, SEED_MAX),
            int("steps", 1, 10000),
            float("cfg", 0.0, 100.0),
            combo("sampler_name", Combo::Samplers),
            combo("scheduler", Combo::DetailerSchedulers),
            float("denoise", 0.0001, 1.0),
            int("feather", 0, 100),
            boolean("noise_mask"),
            boolean("force_inpaint"),
            float("bbox_threshold", 0.0, 1.0),
            int("bbox_dilation", -512, 512),
            float("bbox_crop_factor", 1.0, 10.0),
            int("drop_size", 1, 8192),
            combo(
                "sam_detection_hint",
                Combo::Fixed(&[
                    "center-1",
                    "horizontal-2",
                    "vertical-2",
                    "rect-4",
                    "diamond-4",
                    "mask-area",
                    "mask-points",
                    "mask-point-bbox",
                    "none",
                ]),
            ),
            int("sam_dilation", -512, 512),
            float("sam_threshold", 0.0, 1.0),
            int("sam_bbox_expansion", 0, 1000),
            float("sam_mask_hint_threshold", 0.0, 1.0),
            combo(
                "sam_mask_hint_use_negative",
                Combo::Fixed(&["False", "Small", "Outter"]),
            ),
            string("wildcard"),
            int("cycle", 1, 10),
        ],
        outputs: &["IMAGE", "IMAGE", "IMAGE", "MASK", "DETAILER_PIPE", "IMAGE"],
        output: false,
    },
    NodeSchema {
        class_type: "UltralyticsDetectorProvider",
        inputs: &[combo("model_name", Combo::Detectors)],
        outputs: &["BBOX_DETECTOR", "SEGM_DETECTOR"],
        output: false,
    },
];

pub fn schema(class_type: &str) -> Option<&'static NodeSchema> {
    SCHEMAS.iter().find(|s| s.class_type == class_type)
}

/// ComfyUI's error types (the `type` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Missing or unknown `class_type`.
    InvalidPrompt,
    PromptNoOutputs,
    RequiredInputMissing,
    BadLinkedInput,
    ReturnTypeMismatch,
    InvalidInputType,
    ValueSmallerThanMin,
    ValueBiggerThanMax,
    ValueNotInList,
    /// A link to a node that does not exist.
    ExceptionDuringInnerValidation,
    DependencyCycle,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidPrompt => "invalid_prompt",
            ErrorKind::PromptNoOutputs => "prompt_no_outputs",
            ErrorKind::RequiredInputMissing => "required_input_missing",
            ErrorKind::BadLinkedInput => "bad_linked_input",
            ErrorKind::ReturnTypeMismatch => "return_type_mismatch",
            ErrorKind::InvalidInputType => "invalid_input_type",
            ErrorKind::ValueSmallerThanMin => "value_smaller_than_min",
            ErrorKind::ValueBiggerThanMax => "value_bigger_than_max",
            ErrorKind::ValueNotInList => "value_not_in_list",
            ErrorKind::ExceptionDuringInnerValidation => "exception_during_inner_validation",
            ErrorKind::DependencyCycle => "dependency_cycle",
        }
    }
}

/// One validation failure, naming node, class and input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    pub kind: ErrorKind,
    /// Empty for graph-wide errors (`prompt_no_outputs`).
    pub node_id: String,
    pub class_type: Option<String>,
    pub input: Option<String>,
    pub message: String,
    pub details: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind.as_str())?;
        if !self.node_id.is_empty() {
            write!(f, " at node {}", self.node_id)?;
            if let Some(c) = &self.class_type {
                write!(f, " ({c})")?;
            }
        }
        if let Some(i) = &self.input {
            write!(f, " input {i}")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

/// Checks a workflow; `Err` lists every problem found.
pub fn validate(workflow: &Value, known: &KnownModels<'_>) -> Result<(), Vec<ValidationError>> {
    let mut errors = Vec::new();
    let Some(nodes) = workflow.as_object() else {
        errors.push(graph_error(
            ErrorKind::InvalidPrompt,
            "The workflow is not a JSON object.",
            "",
        ));
        return Err(errors);
    };

    let mut schemas: FxMap<&str, &'static NodeSchema> =
        FxMap::with_capacity_and_hasher(nodes.len(), FxBuild::default());
    for (id, node) in nodes {
        match node.get("class_type").and_then(Value::as_str) {
            None => errors.push(ValidationError {
                kind: ErrorKind::InvalidPrompt,
                node_id: id.clone(),
                class_type: None,
                input: None,
                message: "Cannot execute because a node is missing the class_type property.".into(),
                details: format!("Node ID '#{id}'"),
            }),
            Some(class) => match schema(class) {
                Some(s) => {
                    schemas.insert(id.as_str(), s);
                }
                None => errors.push(ValidationError {
                    kind: ErrorKind::InvalidPrompt,
                    node_id: id.clone(),
                    class_type: Some(class.to_owned()),
                    input: None,
                    message: format!("Cannot execute because node {class} does not exist."),
                    details: format!("Node ID '#{id}'"),
                }),
            },
        }
    }
    if !schemas.values().any(|s| s.output) {
        errors.push(graph_error(
            ErrorKind::PromptNoOutputs,
            "Prompt has no outputs",
            "",
        ));
    }

    for (id, node) in nodes {
        let Some(s) = schemas.get(id.as_str()) else {
            continue;
        };
        let empty = Map::new();
        let inputs = node
            .get("inputs")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        for spec in s.inputs {
            let err = |kind, message: String, details: String| ValidationError {
                kind,
                node_id: id.clone(),
                class_type: Some(s.class_type.to_owned()),
                input: Some(spec.name.to_owned()),
                message,
                details,
            };
            match inputs.get(spec.name) {
                None => errors.push(err(
                    ErrorKind::RequiredInputMissing,
                    "Required input is missing".into(),
                    spec.name.into(),
                )),
                Some(v) => {
                    if let Err((kind, message, details)) =
                        check_input(spec, v, nodes, &schemas, known)
                    {
                        errors.push(err(kind, message, details));
                    }
                }
            }
        }
    }

    if let Some(id) = find_cycle(nodes) {
        errors.push(ValidationError {
            kind: ErrorKind::DependencyCycle,
            node_id: id.to_owned(),
            class_type: schemas.get(id).map(|s| s.class_type.to_owned()),
            input: None,
            message: "Dependency cycle detected".into(),
            details: format!("node {id} depends on itself"),
        });
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn graph_error(kind: ErrorKind, message: &str, details: &str) -> ValidationError {
    ValidationError {
        kind,
        node_id: String::new(),
        class_type: None,
        input: None,
        message: message.into(),
        details: details.into(),
    }
}

type Failure = (ErrorKind, String, String);

fn check_input(
    spec: &InputSpec,
    v: &Value,
    nodes: &Map<String, Value>,
    schemas: &FxMap<&str, &'static NodeSchema>,
    known: &KnownModels<'_>,
) -> Result<(), Failure> {
    let name = spec.name;
    match spec.kind {
        InputKind::Link(want) => {
            let bad = |d: String| {
                Err((
                    ErrorKind::BadLinkedInput,
                    "Bad linked input, must be a length-2 list of [string, int]".into(),
                    d,
                ))
            };
            let Some([src, idx]) = v
                .as_array()
                .map(Vec::as_slice)
                .and_then(|a| <&[Value; 2]>::try_from(a).ok())
            else {
                return bad(format!("{name}: {v}"));
            };
            let (Some(src), Some(idx)) = (src.as_str(), idx.as_u64()) else {
                return bad(format!("{name}: {v}"));
            };
            if !nodes.contains_key(src) {
                return Err((
                    ErrorKind::ExceptionDuringInnerValidation,
                    "Exception when validating inner node".into(),
                    format!("{name}: linked node '{src}' does not exist"),
                ));
            }
            // An unknown source class is already reported; its output types cannot be checked.
            let Some(src_schema) = schemas.get(src) else {
                return Ok(());
            };
            match src_schema.outputs.get(idx as usize) {
                None => bad(format!(
                    "{name}: output {idx} of node {src} ({}) does not exist; it has {}",
                    src_schema.class_type,
                    src_schema.outputs.len()
                )),
                Some(got) if *got != want => Err((
                    ErrorKind::ReturnTypeMismatch,
                    "Return type mismatch between linked nodes".into(),
                    format!("{name}, received_type({got}) mismatch input_type({want})"),
                )),
                Some(_) => Ok(()),
            }
        }
        InputKind::Int { min, max } => {
            let n = match v {
                Value::Number(n) => n
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
                    .or_else(|| {
                        n.as_f64()
                            .filter(|f| f.is_finite())
                            .map(|f| f.trunc() as i128)
                    }),
                Value::String(s) => s.trim().parse::<i128>().ok(),
                _ => None,
            };
            match n {
                None => Err(conversion_failure("INT", name, v)),
                Some(n) if n < min => Err(smaller(name, n, min)),
                Some(n) if n > max => Err(bigger(name, n, max)),
                Some(_) => Ok(()),
            }
        }
        InputKind::Float { min, max } => {
            let x = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match x.filter(|x| !x.is_nan()) {
                None => Err(conversion_failure("FLOAT", name, v)),
                Some(x) if x < min => Err(smaller(name, Float(x), Float(min))),
                Some(x) if x > max => Err(bigger(name, Float(x), Float(max))),
                Some(_) => Ok(()),
            }
        }
        InputKind::Str => match v {
            Value::String(_) => Ok(()),
            _ => Err(conversion_failure("STRING", name, v)),
        },
        InputKind::Bool => match v {
            Value::Bool(_) => Ok(()),
            _ => Err(conversion_failure("BOOLEAN", name, v)),
        },
        InputKind::Combo(c) => {
            let Some(s) = v.as_str() else {
                return Err(conversion_failure("COMBO", name, v));
            };
            let has = |l: &[String]| l.iter().any(|x| x == s);
            let allowed = match c {
                Combo::Checkpoints => known.checkpoints.map(has),
                Combo::Loras => known.loras.map(has),
                Combo::Vaes => known.vaes.map(has),
                Combo::Samplers => known.samplers.map(has),
                Combo::Schedulers => known.schedulers.map(has),
                Combo::DetailerSchedulers => known
                    .schedulers
                    .map(|l| has(l) || IMPACT_SCHEDULERS.contains(&s)),
                Combo::Detectors => Some(s.starts_with("bbox/") || s.starts_with("segm/")),
                Combo::Fixed(values) => Some(values.contains(&s)),
            };
            if allowed != Some(false) {
                return Ok(());
            }
            let list: Vec<&str> = match c {
                Combo::Checkpoints => names(known.checkpoints),
                Combo::Loras => names(known.loras),
                Combo::Vaes => names(known.vaes),
                Combo::Samplers => names(known.samplers),
                Combo::Schedulers => names(known.schedulers),
                Combo::DetailerSchedulers => {
                    let mut l: Vec<&str> = names(known.schedulers);
                    l.extend(IMPACT_SCHEDULERS);
                    l
                }
                Combo::Detectors => vec!["bbox/<model>", "segm/<model>"],
                Combo::Fixed(values) => values.to_vec(),
            };
            Err((
                ErrorKind::ValueNotInList,
                "Value not in list".into(),
                format!("{name}: '{s}' not in {}", describe_list(&list)),
            ))
        }
    }
}

/// Formats like Python's `float` repr for the messages (`1000.0`, `0.5`).
struct Float(f64);

impl fmt::Display for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

fn smaller(name: &str, v: impl fmt::Display, min: impl fmt::Display) -> Failure {
    let message = format!("Value {v} smaller than min of {min}");
    (ErrorKind::ValueSmallerThanMin, message, name.into())
}

fn bigger(name: &str, v: impl fmt::Display, max: impl fmt::Display) -> Failure {
    let message = format!("Value {v} bigger than max of {max}");
    (ErrorKind::ValueBiggerThanMax, message, name.into())
}

fn conversion_failure(ty: &str, name: &str, v: &Value) -> Failure {
    (
        ErrorKind::InvalidInputType,
        format!("Failed to convert an input value to a {ty} value"),
        format!("{name}, {v}"),
    )
}

/// ComfyUI prints lists up to 20 entries, else their length.
fn describe_list(l: &[&str]) -> String {
    if l.len() > 20 {
        format!("(list of length {})", l.len())
    } else {
        let quoted: Vec<String> = l.iter().map(|s| format!("'{s}'")).collect();
        format!("[{}]", quoted.join(", "))
    }
}

fn names(l: Option<&[String]>) -> Vec<&str> {
    l.unwrap_or_default().iter().map(String::as_str).collect()
}

/// The source of a well-formed link to an existing node.
fn linked<'v>(v: &'v Value, nodes: &Map<String, Value>) -> Option<&'v str> {
    match v.as_array()?.as_slice() {
        [src, idx] if idx.is_u64() => src.as_str().filter(|s| nodes.contains_key(*s)),
        _ => None,
    }
}

/// A node on a link cycle, if any (iterative DFS over well-formed links; no allocation per node).
fn find_cycle(nodes: &Map<String, Value>) -> Option<&str> {
    let inputs = |id: &str| {
        nodes
            .get(id)?
            .get("inputs")?
            .as_object()
            .map(|m| m.values())
    };
    // Absent: unvisited; 1: on the DFS stack; 2: finished.
    let mut state: FxMap<&str, u8> =
        FxMap::with_capacity_and_hasher(nodes.len(), FxBuild::default());
    let mut stack = Vec::new();
    for start in nodes.keys() {
        if state.contains_key(start.as_str()) {
            continue;
        }
        state.insert(start.as_str(), 1);
        stack.push((start.as_str(), inputs(start)));
        while let Some((id, pending)) = stack.last_mut() {
            let id: &str = id;
            let next = pending
                .as_mut()
                .and_then(|it| it.find_map(|v| linked(v, nodes)));
            match next {
                Some(dep) => match state.get(dep) {
                    Some(1) => return Some(dep),
                    Some(_) => {}
                    None => {
                        state.insert(dep, 1);
                        stack.push((dep, inputs(dep)));
                    }
                },
                None => {
                    state.insert(id, 2);
                    stack.pop();
                }
            }
        }
    }
    None
}

/// The errors in ComfyUI's HTTP 400 shape (`{"error": {...}, "node_errors": {...}}`), for API
/// responses and test doubles.
pub fn comfy_error_body(errors: &[ValidationError]) -> Value {
    let entry = |e: &ValidationError| {
        let mut extra = Map::new();
        if let Some(i) = &e.input {
            extra.insert("input_name".into(), Value::String(i.clone()));
        }
        json!({"type": e.kind.as_str(), "message": e.message, "details": e.details, "extra_info": extra})
    };
    if let Some(g) = errors.iter().find(|e| e.input.is_none()) {
        return json!({"error": entry(g), "node_errors": {}});
    }
    let mut node_errors = Map::new();
    for e in errors {
        let slot = node_errors.entry(e.node_id.clone()).or_insert_with(
            || json!({"errors": [], "dependent_outputs": [], "class_type": e.class_type}),
        );
        if let Some(list) = slot.get_mut("errors").and_then(Value::as_array_mut) {
            list.push(entry(e));
        }
    }
    json!({
        "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                  "details": "", "extra_info": {}},
        "node_errors": node_errors,
    })
}
