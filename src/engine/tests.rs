//! Cross-module tests of the engine façade: whole-workflow snapshots, property tests over
//! pseudo-random compositions, validation error cases and the strengths sweep.
//!
//! Snapshots live in `snapshots/*.json` ({prompts, report, workflow}); regenerate them with
//! `UPDATE_SNAPSHOTS=1 cargo test` and review the diff.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Value, json};

use super::doc::splitmix64;
use super::tags::{split_tags, tag_key};
use super::*;

// ---------------------------------------------------------------------------------------------
// Fixtures

fn tifa() -> Value {
    json!({
        "character_id": "tifa_lockhart",
        "character_name": "Tifa Lockhart",
        "identity": {"base_specs": "1girl, slim", "hair": "black hair, long hair", "eyes": "red eyes",
                     "hands": "", "arms": "", "torso": "large breasts", "pelvis": "", "legs": "",
                     "feet": "", "extra": ""},
        "defaults": {"expression": "smile", "pose": "standing", "scene": "7th heaven bar"},
        "wardrobe": {"default": {"full_body": "", "headwear": "", "top": "white tank top",
                                 "bottom": "black skirt", "legwear": "", "footwear": "red boots",
                                 "hands": "", "gloves": "black gloves", "accessories": "suspenders"}},
        "styles": {"aesthetic": "", "primary_color": "white", "secondary_color": "black",
                   "tertiary_color": ""},
        "lora": {"lora_name": "Illustrious/Looks/tifa.safetensors", "lora_weight": 0.8,
                 "lora_triggers": "tifa_lockhart"},
        "tags": ["final fantasy vii"],
        "participants": {"orientation": "1F", "solo_focus": "true"}
    })
}

fn look() -> Value {
    json!({"look_id": "tifa_casual", "look_name": "Tifa Casual", "character_id": "tifa_lockhart",
           "positive": "casual clothes, jeans", "negative": "revealing",
           "lora": {"lora_name": "Illustrious/Looks/tifa_casual.safetensors", "lora_weight": 0.85,
                    "lora_triggers": "tifacasual"},
           "tags": []})
}

fn outfit() -> Value {
    json!({"outfit_id": "french_maid_01", "outfit_name": "French Maid",
           "wardrobe": {"full_body": "maid dress", "headwear": "maid headdress", "top": "", "bottom": "",
                        "legwear": "white thighhighs", "footwear": "mary janes", "hands": "",
                        "accessories": "apron"},
           "lora": {"lora_name": "Illustrious/Clothing/maid.safetensors", "lora_weight": "0.7",
                    "lora_triggers": "frenchmaid"},
           "tags": ["maid"]})
}

fn action() -> Value {
    json!({"action_id": "waving", "action_name": "Waving",
           "action": {"full_body": "standing", "additional": "", "head": "looking at viewer",
                      "eyes": "one eye closed", "arms": "arm up", "hands": "waving"},
           "lora": {"lora_name": "Illustrious/Poses/waving.safetensors", "lora_weight": 1.0,
                    "lora_triggers": ""},
           "tags": []})
}

fn style() -> Value {
    json!({"style_id": "watercolor", "style_name": "Watercolor",
           "style": {"artist_name": "wlop", "artistic_style": "watercolor (medium)"},
           "lora": {"lora_name": "Illustrious/Styles/watercolor.safetensors", "lora_weight": 0.6,
                    "lora_triggers": "wtrcolor"}})
}

fn scene() -> Value {
    json!({"scene_id": "beach", "scene_name": "Beach",
           "scene": {"background": "beach, ocean", "foreground": "sand", "furniture": "",
                     "colors": "blue sky", "lighting": "sunlight", "theme": "summer"},
           "lora": {"lora_name": "Illustrious/Backgrounds/beach.safetensors", "lora_weight": 0.9,
                    "lora_triggers": ""},
           "tags": []})
}

fn detailer() -> Value {
    json!({"detailer_id": "detailed_skin", "detailer_name": "Detailed Skin",
           "prompt": ["detailed skin", "pores"], "focus": {"face": true, "hands": false},
           "lora": {"lora_name": "Illustrious/Detailers/skin.safetensors", "lora_weight": 0.5,
                    "lora_triggers": ""}})
}

fn checkpoint() -> Value {
    json!({"checkpoint_path": "Illustrious/model.safetensors", "checkpoint_name": "Model",
           "base_positive": "masterpiece, best quality", "base_negative": "text, logo",
           "steps": 25, "cfg": 5, "sampler_name": "euler_ancestral", "scheduler": "normal",
           "vae": "integrated"})
}

fn opts() -> GenerationOptions<'static> {
    GenerationOptions {
        seed: 123_456_789,
        width: 1024,
        height: 1024,
        ..Default::default()
    }
}

fn doc<'a>(category: &'a str, slug: &'a str, data: &'a Value) -> Option<Doc<'a>> {
    Some(Doc {
        category,
        slug,
        data,
    })
}

// ---------------------------------------------------------------------------------------------
// Snapshots

fn snapshot(name: &str, expected: &str, g: &Generation) {
    let actual = json!({"prompts": g.prompts, "report": g.report, "workflow": g.workflow});
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        let dir = Path::new(file!()).parent().unwrap().join("snapshots");
        let text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        std::fs::write(dir.join(format!("{name}.json")), text).unwrap();
        return;
    }
    let want: Value = serde_json::from_str(expected).unwrap();
    assert!(
        actual == want,
        "snapshot {name} differs; rerun with UPDATE_SNAPSHOTS=1 and review the diff\nactual:\n{}",
        serde_json::to_string_pretty(&actual).unwrap()
    );
}

/// The representative combinations, by snapshot name: each page's composition as the page
/// would build it, with the character and a checkpoint always present.
fn case(name: &str) -> Generation {
    let (ch, lk, of, ac, st, sc, de, mut ck) = (
        tifa(),
        look(),
        outfit(),
        action(),
        style(),
        scene(),
        detailer(),
        checkpoint(),
    );
    if name == "named_vae" {
        ck["vae"] = json!("sdxl_vae.safetensors");
    }
    let mut c = Composition {
        character: doc("characters", "tifa_lockhart", &ch),
        checkpoint: doc("checkpoints", "Illustrious_model", &ck),
        ..Default::default()
    };
    let mut o = opts();
    match name {
        "character_look" => {
            c.look = doc("looks", "tifa_casual", &lk);
            c.target = Some(Category::Looks);
        }
        "outfit_page" => {
            c.outfit = doc("outfits", "french_maid_01", &of);
            c.target = Some(Category::Outfits);
            c.append_background = true;
        }
        "style_page" => {
            c.style = doc("styles", "watercolor", &st);
            c.target = Some(Category::Styles);
            c.append_background = true;
            o.filename_prefix = Some("gaze/styles/watercolor");
        }
        "scene_page" => {
            c.scene = doc("scenes", "beach", &sc);
            c.target = Some(Category::Scenes);
            c.append_background = true;
        }
        "detailer_page" => {
            c.detailer = doc("detailers", "detailed_skin", &de);
            c.action = doc("actions", "waving", &ac);
            c.target = Some(Category::Detailers);
            c.extra_positive = "close-up";
            c.extra_negative = "bad skin";
        }
        "checkpoint_page" => {
            c.checkpoint = doc("checkpoints", "Noob_other", &ck);
            c.target = Some(Category::Checkpoints);
            o.width = 832;
            o.height = 1216;
        }
        "all_slots" => {
            c.look = doc("looks", "tifa_casual", &lk);
            c.outfit = doc("outfits", "french_maid_01", &of);
            c.action = doc("actions", "waving", &ac);
            c.style = doc("styles", "watercolor", &st);
            c.scene = doc("scenes", "beach", &sc);
            c.detailer = doc("detailers", "detailed_skin", &de);
        }
        "vanilla" => {
            c.action = doc("actions", "waving", &ac);
            o.vanilla = true;
        }
        "generator_extras" => {
            c.extras = vec![
                Doc {
                    category: "outfits",
                    slug: "french_maid_01",
                    data: &of,
                },
                Doc {
                    category: "scenes",
                    slug: "beach",
                    data: &sc,
                },
                Doc {
                    category: "styles",
                    slug: "watercolor",
                    data: &st,
                },
            ];
        }
        _ => {}
    }
    generate(&c, &o).unwrap()
}

macro_rules! snapshot_tests {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let expected = include_str!(concat!("snapshots/", stringify!($name), ".json"));
            snapshot(stringify!($name), expected, &case(stringify!($name)));
        }
    )*};
}

snapshot_tests!(
    character_only,
    character_look,
    outfit_page,
    style_page,
    scene_page,
    detailer_page,
    checkpoint_page,
    all_slots,
    vanilla,
    named_vae,
    generator_extras,
);

// ---------------------------------------------------------------------------------------------
// Façade behaviour

#[test]
fn unknown_lora_name_is_rejected_with_node_and_input() {
    let ch = tifa();
    let loras = vec!["Illustrious/Looks/other.safetensors".to_owned()];
    let ckpts = vec!["Illustrious/model.safetensors".to_owned()];
    let c = Composition {
        character: doc("characters", "tifa", &ch),
        ..Default::default()
    };
    let mut o = opts();
    o.known = KnownModels {
        loras: Some(&loras),
        checkpoints: Some(&ckpts),
        ..Default::default()
    };
    let Err(EngineError::Invalid(errors)) = generate(&c, &o) else {
        panic!("expected a validation error");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(
        (e.kind, e.node_id.as_str(), e.input.as_deref()),
        (ErrorKind::ValueNotInList, "16", Some("lora_name"))
    );
    assert_eq!(
        e.details,
        "lora_name: 'Illustrious/Looks/tifa.safetensors' not in ['Illustrious/Looks/other.safetensors']"
    );
    let msg = EngineError::Invalid(errors).to_string();
    assert!(
        msg.contains("node 16 (LoraLoader) input lora_name"),
        "{msg}"
    );
}

#[test]
fn bad_size_is_rejected_at_node_5() {
    let c = Composition::default();
    let mut o = opts();
    o.width = 8;
    o.height = 9000;
    let Err(EngineError::Invalid(errors)) = generate(&c, &o) else {
        panic!("expected a validation error");
    };
    let got: Vec<(ErrorKind, &str, Option<&str>)> = errors
        .iter()
        .map(|e| (e.kind, e.node_id.as_str(), e.input.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (ErrorKind::ValueSmallerThanMin, "5", Some("width")),
            (ErrorKind::ValueBiggerThanMax, "5", Some("height")),
        ]
    );
}

#[test]
fn empty_composition_builds_a_valid_bare_graph() {
    let g = generate(&Composition::default(), &opts()).unwrap();
    assert!(g.report.loras.is_empty());
    assert_eq!(g.report.bypassed, LoraSlot::ALL.to_vec());
    assert_eq!(g.workflow["3"]["inputs"]["model"], json!(["4", 0]));
    assert_eq!(g.workflow["14"]["inputs"]["clip"], json!(["4", 1]));
    assert_eq!(g.warnings().count(), 1, "no checkpoint document");
}

#[test]
fn generation_is_deterministic_and_round_trips_as_json() {
    let (ch, of) = (tifa(), outfit());
    let c = Composition {
        character: doc("characters", "tifa", &ch),
        outfit: doc("outfits", "maid", &of),
        ..Default::default()
    };
    let a = generate(&c, &opts()).unwrap();
    let b = generate(&c, &opts()).unwrap();
    assert_eq!(a, b);
    let text = serde_json::to_string(&a).unwrap();
    let back: Generation = serde_json::from_str(&text).unwrap();
    assert_eq!(a, back);
}

#[test]
fn strengths_sweep_varies_only_the_swept_slot() {
    let (ch, st) = (tifa(), style());
    let c = Composition {
        character: doc("characters", "tifa", &ch),
        style: doc("styles", "watercolor", &st),
        ..Default::default()
    };
    let s = strengths_sweep(&c, &opts(), LoraSlot::Style, 0.0, 1.0, 0.25).unwrap();
    let weights: Vec<f64> = s.steps.iter().map(|x| x.weight).collect();
    assert_eq!(weights, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    for step in &s.steps {
        let mut wf = step.workflow.clone();
        assert_eq!(wf["19"]["inputs"]["strength_model"], json!(step.weight));
        assert_eq!(wf["19"]["inputs"]["strength_clip"], json!(step.weight));
        wf["19"]["inputs"]["strength_model"] = json!(0.6);
        wf["19"]["inputs"]["strength_clip"] = json!(0.6);
        assert_eq!(wf, s.base.workflow, "only the swept weight differs");
    }
    let err = strengths_sweep(&c, &opts(), LoraSlot::Outfit, 0.0, 1.0, 0.5);
    assert!(matches!(err, Err(EngineError::Sweep(m)) if m.contains("slot 17")));
    let err = strengths_sweep(&c, &opts(), LoraSlot::Style, 0.0, 1.0, 0.0);
    assert!(matches!(err, Err(EngineError::Sweep(_))));
}

#[test]
fn a_strengths_grid_varies_two_slots_row_by_row() {
    let (ch, st) = (tifa(), style());
    let c = Composition {
        character: doc("characters", "tifa", &ch),
        style: doc("styles", "watercolor", &st),
        ..Default::default()
    };
    let x = SweepAxis {
        slot: LoraSlot::Style,
        min: 0.0,
        max: 1.0,
        step: 0.5,
    };
    let y = SweepAxis {
        slot: LoraSlot::Character,
        min: 0.4,
        max: 0.8,
        step: 0.4,
    };
    let g = strengths_grid(&c, &opts(), &x, Some(&y)).unwrap();
    let cells: Vec<(f64, Option<f64>)> = g.steps.iter().map(|s| (s.x, s.y)).collect();
    assert_eq!(
        cells,
        [
            (0.0, Some(0.4)),
            (0.5, Some(0.4)),
            (1.0, Some(0.4)),
            (0.0, Some(0.8)),
            (0.5, Some(0.8)),
            (1.0, Some(0.8))
        ]
    );
    for s in &g.steps {
        let mut wf = s.workflow.clone();
        assert_eq!(wf["19"]["inputs"]["strength_model"], json!(s.x));
        assert_eq!(wf["16"]["inputs"]["strength_clip"], json!(s.y.unwrap()));
        for (node, w) in [
            (
                "19",
                g.base.workflow["19"]["inputs"]["strength_model"].clone(),
            ),
            (
                "16",
                g.base.workflow["16"]["inputs"]["strength_model"].clone(),
            ),
        ] {
            wf[node]["inputs"]["strength_model"] = w.clone();
            wf[node]["inputs"]["strength_clip"] = w;
        }
        assert_eq!(wf, g.base.workflow, "only the two swept weights differ");
    }
    // One axis is the plain sweep.
    let one = strengths_grid(&c, &opts(), &x, None).unwrap();
    let plain = strengths_sweep(&c, &opts(), LoraSlot::Style, 0.0, 1.0, 0.5).unwrap();
    assert_eq!(
        one.steps.iter().map(|s| &s.workflow).collect::<Vec<_>>(),
        plain.steps.iter().map(|s| &s.workflow).collect::<Vec<_>>()
    );
    // Refusals: the same slot twice, an empty slot, too many cells.
    let same = strengths_grid(&c, &opts(), &x, Some(&x));
    assert!(matches!(same, Err(EngineError::Sweep(m)) if m.contains("both axes")));
    let empty = SweepAxis {
        slot: LoraSlot::Action,
        ..y
    };
    let none = strengths_grid(&c, &opts(), &x, Some(&empty));
    assert!(matches!(none, Err(EngineError::Sweep(m)) if m.contains("slot 18")));
    let fine = SweepAxis { step: 0.1, ..x };
    let big = strengths_grid(&c, &opts(), &fine, Some(&fine_y()));
    assert!(matches!(big, Err(EngineError::Sweep(m)) if m.contains("limit")));
}

fn fine_y() -> SweepAxis {
    SweepAxis {
        slot: LoraSlot::Character,
        min: 0.0,
        max: 1.0,
        step: 0.1,
    }
}

// ---------------------------------------------------------------------------------------------
// Validation error cases: each type, produced by breaking a valid workflow by hand.

fn valid_workflow() -> Value {
    let (ch, ck) = (tifa(), checkpoint());
    let c = Composition {
        character: doc("characters", "tifa", &ch),
        checkpoint: doc("checkpoints", "ck", &ck),
        ..Default::default()
    };
    generate(&c, &opts()).unwrap().workflow
}

fn errors_of(
    wf: &Value,
    known: &KnownModels<'_>,
) -> Vec<(ErrorKind, String, Option<String>, Option<String>)> {
    match validate(wf, known) {
        Ok(()) => Vec::new(),
        Err(es) => es
            .into_iter()
            .map(|e| (e.kind, e.node_id, e.class_type, e.input))
            .collect(),
    }
}

#[test]
fn validation_error_types() {
    type Break = fn(&mut Value);
    /// (how to break it, error type, node, class, input)
    type Case = (
        Break,
        ErrorKind,
        &'static str,
        Option<String>,
        Option<String>,
    );
    let s = |x: &str| Some(x.to_owned());
    let cases: Vec<Case> = vec![
        (
            |w| {
                w["3"]["inputs"].as_object_mut().unwrap().remove("seed");
            },
            ErrorKind::RequiredInputMissing,
            "3",
            s("KSampler"),
            s("seed"),
        ),
        (
            |w| w["8"]["inputs"]["samples"] = json!(["3"]),
            ErrorKind::BadLinkedInput,
            "8",
            s("VAEDecode"),
            s("samples"),
        ),
        (
            |w| w["8"]["inputs"]["samples"] = json!("3"),
            ErrorKind::BadLinkedInput,
            "8",
            s("VAEDecode"),
            s("samples"),
        ),
        (
            |w| w["3"]["inputs"]["model"] = json!(["4", 7]),
            ErrorKind::BadLinkedInput,
            "3",
            s("KSampler"),
            s("model"),
        ),
        (
            |w| w["3"]["inputs"]["model"] = json!(["4", 1]),
            ErrorKind::ReturnTypeMismatch,
            "3",
            s("KSampler"),
            s("model"),
        ),
        (
            |w| w["3"]["inputs"]["steps"] = json!("abc"),
            ErrorKind::InvalidInputType,
            "3",
            s("KSampler"),
            s("steps"),
        ),
        (
            |w| w["9"]["inputs"]["filename_prefix"] = json!(5),
            ErrorKind::InvalidInputType,
            "9",
            s("SaveImage"),
            s("filename_prefix"),
        ),
        (
            |w| w["11"]["inputs"]["noise_mask"] = json!("yes"),
            ErrorKind::InvalidInputType,
            "11",
            s("FaceDetailer"),
            s("noise_mask"),
        ),
        (
            |w| w["5"]["inputs"]["width"] = json!(8),
            ErrorKind::ValueSmallerThanMin,
            "5",
            s("EmptyLatentImage"),
            s("width"),
        ),
        (
            |w| w["3"]["inputs"]["cfg"] = json!(1000.0),
            ErrorKind::ValueBiggerThanMax,
            "3",
            s("KSampler"),
            s("cfg"),
        ),
        (
            |w| w["16"]["inputs"]["strength_model"] = json!(-101),
            ErrorKind::ValueSmallerThanMin,
            "16",
            s("LoraLoader"),
            s("strength_model"),
        ),
        (
            |w| w["11"]["inputs"]["sam_detection_hint"] = json!("middle"),
            ErrorKind::ValueNotInList,
            "11",
            s("FaceDetailer"),
            s("sam_detection_hint"),
        ),
        (
            |w| w["10"]["inputs"]["model_name"] = json!("face.pt"),
            ErrorKind::ValueNotInList,
            "10",
            s("UltralyticsDetectorProvider"),
            s("model_name"),
        ),
        (
            |w| w["6"]["inputs"]["clip"] = json!(["99", 1]),
            ErrorKind::ExceptionDuringInnerValidation,
            "6",
            s("CLIPTextEncode"),
            s("clip"),
        ),
        (
            |w| w["11"]["class_type"] = json!("NoSuchNode"),
            ErrorKind::InvalidPrompt,
            "11",
            s("NoSuchNode"),
            None,
        ),
        (
            |w| {
                w["12"].as_object_mut().unwrap().remove("class_type");
            },
            ErrorKind::InvalidPrompt,
            "12",
            None,
            None,
        ),
        (
            |w| w["16"]["inputs"]["model"] = json!(["3", 0]),
            ErrorKind::ReturnTypeMismatch,
            "16",
            s("LoraLoader"),
            s("model"),
        ),
    ];
    for (i, (brk, kind, node, class, input)) in cases.into_iter().enumerate() {
        let mut wf = valid_workflow();
        brk(&mut wf);
        let got = errors_of(&wf, &KnownModels::default());
        assert!(
            got.contains(&(kind, node.to_owned(), class.clone(), input.clone())),
            "case {i}: want {kind:?} at {node} {class:?} {input:?}, got {got:?}"
        );
    }
}

#[test]
fn validation_graph_level_errors() {
    let mut wf = valid_workflow();
    wf.as_object_mut().unwrap().remove("9");
    assert_eq!(
        errors_of(&wf, &KnownModels::default()),
        vec![(ErrorKind::PromptNoOutputs, String::new(), None, None)]
    );

    let mut wf = valid_workflow();
    wf["16"]["inputs"]["model"] = json!(["3", 0]);
    wf["3"]["inputs"]["latent_image"] = json!(["8", 0]);
    let kinds: Vec<ErrorKind> = errors_of(&wf, &KnownModels::default())
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(kinds.contains(&ErrorKind::DependencyCycle), "{kinds:?}");

    assert_eq!(
        errors_of(&json!([1]), &KnownModels::default())[0].0,
        ErrorKind::InvalidPrompt
    );
}

#[test]
fn validation_checks_known_lists() {
    let wf = valid_workflow();
    let other = vec!["x.safetensors".to_owned()];
    let long: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    let known = KnownModels {
        checkpoints: Some(&long),
        loras: Some(&other),
        vaes: Some(&other),
        samplers: Some(&other),
        schedulers: Some(&other),
    };
    let got = errors_of(&wf, &known);
    let at = |node: &str, input: &str| {
        got.iter().any(|e| {
            e.0 == ErrorKind::ValueNotInList && e.1 == node && e.3.as_deref() == Some(input)
        })
    };
    assert!(at("4", "ckpt_name") && at("16", "lora_name"), "{got:?}");
    for node in ["3", "11", "13"] {
        assert!(
            at(node, "sampler_name") && at(node, "scheduler"),
            "{node}: {got:?}"
        );
    }
    let Err(errors) = validate(&wf, &known) else {
        unreachable!()
    };
    let ckpt = errors.iter().find(|e| e.node_id == "4").unwrap();
    assert_eq!(
        ckpt.details,
        "ckpt_name: 'Illustrious/model.safetensors' not in (list of length 25)"
    );

    // FaceDetailer also accepts the Impact Pack schedulers.
    let mut wf = valid_workflow();
    wf["11"]["inputs"]["scheduler"] = json!("AYS SDXL");
    let normal = vec!["normal".to_owned()];
    let known = KnownModels {
        schedulers: Some(&normal),
        ..Default::default()
    };
    assert_eq!(errors_of(&wf, &known), vec![]);
    wf["3"]["inputs"]["scheduler"] = json!("AYS SDXL");
    assert_eq!(errors_of(&wf, &known).len(), 1);
}

#[test]
fn validation_accepts_numeric_strings_like_comfyui() {
    let mut wf = valid_workflow();
    wf["3"]["inputs"]["steps"] = json!("20");
    wf["3"]["inputs"]["cfg"] = json!("6.5");
    wf["3"]["inputs"]["seed"] = json!(u64::MAX);
    assert_eq!(errors_of(&wf, &KnownModels::default()), vec![]);
}

#[test]
fn comfy_error_body_shapes() {
    let mut wf = valid_workflow();
    wf["3"]["inputs"].as_object_mut().unwrap().remove("seed");
    let Err(errors) = validate(&wf, &KnownModels::default()) else {
        unreachable!()
    };
    assert_eq!(
        comfy_error_body(&errors),
        json!({
            "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                      "details": "", "extra_info": {}},
            "node_errors": {"3": {"errors": [{"type": "required_input_missing", "message": "Required input is missing",
                                              "details": "seed", "extra_info": {"input_name": "seed"}}],
                                  "dependent_outputs": [], "class_type": "KSampler"}}
        })
    );
    wf["11"]["class_type"] = json!("NoSuchNode");
    let Err(errors) = validate(&wf, &KnownModels::default()) else {
        unreachable!()
    };
    let body = comfy_error_body(&errors);
    assert_eq!(body["error"]["type"], json!("invalid_prompt"));
    assert_eq!(
        body["error"]["message"],
        json!("Cannot execute because node NoSuchNode does not exist.")
    );
    assert_eq!(body["error"]["details"], json!("Node ID '#11'"));
}

// ---------------------------------------------------------------------------------------------
// Property tests over pseudo-random compositions.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.0)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

const VOCAB: [&str; 18] = [
    "red eyes",
    "Red_Eyes",
    "(red eyes:1.2)",
    "blurry",
    "(blurry)",
    "1girl",
    "smile",
    "lowres",
    "long hair",
    "hat",
    "(hat:0.8)",
    "night",
    "bad hands",
    "text",
    "solo",
    "(solo:1.2)",
    "watermark",
    "simple background",
];
const LORAS: [&str; 5] = [
    "a.safetensors",
    "b.safetensors",
    "Illustrious/c.safetensors",
    "d.safetensors",
    "e.safetensors",
];

fn fragment(r: &mut Rng) -> Value {
    match r.below(10) {
        0 => Value::Null,
        1 => json!(r.below(5)),
        2 => json!({"odd": true}),
        3 | 4 => {
            let n = r.below(4);
            Value::Array((0..n).map(|_| json!(r.pick(&VOCAB))).collect())
        }
        _ => {
            let n = r.below(5);
            let tags: Vec<&str> = (0..n).map(|_| r.pick(&VOCAB)).collect();
            json!(tags.join(if r.chance(20) { ",, " } else { ", " }))
        }
    }
}

fn section(r: &mut Rng, keys: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for k in keys {
        if r.chance(70) {
            m.insert((*k).to_owned(), fragment(r));
        }
    }
    Value::Object(m)
}

fn lora(r: &mut Rng) -> Value {
    if r.chance(15) {
        return Value::Null;
    }
    let name = if r.chance(65) {
        json!(r.pick(&LORAS))
    } else {
        r.pick(&[json!(""), json!(null), json!(3)])
    };
    let weight = r.pick(&[
        json!(0.8),
        json!("0.6"),
        json!("abc"),
        json!(300),
        json!(null),
        json!(-1),
        json!(1),
    ]);
    json!({"lora_name": name, "lora_weight": weight, "lora_triggers": fragment(r)})
}

fn random_doc(r: &mut Rng, c: Category) -> Value {
    use prompt::*;
    let mut d = serde_json::Map::new();
    d.insert("lora".into(), lora(r));
    d.insert("tags".into(), fragment(r));
    match c {
        Category::Characters => {
            d.insert(
                "character_name".into(),
                r.pick(&[json!("Tifa"), json!(null), json!(7)]),
            );
            d.insert("identity".into(), section(r, &IDENTITY_KEYS));
            d.insert("defaults".into(), section(r, &DEFAULTS_KEYS));
            d.insert("styles".into(), section(r, &STYLES_KEYS));
            let wardrobe = if r.chance(50) {
                json!({"default": section(r, &WARDROBE_KEYS), "casual": section(r, &WARDROBE_KEYS)})
            } else {
                section(r, &WARDROBE_KEYS)
            };
            d.insert("wardrobe".into(), wardrobe);
            if r.chance(70) {
                let code = r.pick(&["1F", "2F", "1M1F", "2f1m", "3M", "x", "", "7F2M"]);
                let focus = r.pick(&[json!("true"), json!(false), json!(null)]);
                d.insert(
                    "participants".into(),
                    json!({"orientation": code, "solo_focus": focus}),
                );
            }
        }
        Category::Looks => {
            d.insert("positive".into(), fragment(r));
            d.insert("negative".into(), fragment(r));
        }
        Category::Outfits => {
            d.insert("wardrobe".into(), section(r, &WARDROBE_KEYS));
        }
        Category::Actions => {
            d.insert("action".into(), section(r, &ACTION_KEYS));
        }
        Category::Styles => {
            d.insert(
                "style".into(),
                section(r, &["artist_name", "artistic_style"]),
            );
        }
        Category::Scenes => {
            d.insert("scene".into(), section(r, &SCENE_KEYS));
        }
        Category::Detailers => {
            d.insert("prompt".into(), fragment(r));
            d.insert(
                "focus".into(),
                json!({"face": r.chance(50), "hands": r.pick(&[json!("true"), json!(0)])}),
            );
        }
        Category::Checkpoints => {
            d.insert(
                "checkpoint_path".into(),
                r.pick(&[json!("Illustrious/model.safetensors"), json!(null)]),
            );
            d.insert("base_positive".into(), fragment(r));
            d.insert("base_negative".into(), fragment(r));
            d.insert(
                "steps".into(),
                r.pick(&[
                    json!(20),
                    json!("30"),
                    json!("x"),
                    json!(0),
                    json!(50000),
                    json!(null),
                ]),
            );
            d.insert(
                "cfg".into(),
                r.pick(&[json!(5), json!("7.5"), json!(-3), json!(null)]),
            );
            d.insert(
                "sampler_name".into(),
                r.pick(&[json!("euler"), json!("dpmpp_2m"), json!(null)]),
            );
            d.insert(
                "scheduler".into(),
                r.pick(&[json!("normal"), json!("karras"), json!("")]),
            );
            d.insert(
                "vae".into(),
                r.pick(&[
                    json!(""),
                    json!("integrated"),
                    json!("sdxl_vae.safetensors"),
                    json!(null),
                ]),
            );
        }
        Category::Presets => {}
    }
    Value::Object(d)
}

fn link_of(v: &Value) -> Option<(&str, u64)> {
    let a = v.as_array()?;
    Some((a.first()?.as_str()?, a.get(1)?.as_u64()?))
}

/// Follows a model (index 0) or clip (index 1) link back to node 4 through LoraLoaders only;
/// returns the LoraLoader ids passed, in chain order.
fn chain_from(wf: &Value, start: &Value, index: u64) -> Vec<String> {
    let mut nodes = Vec::new();
    let mut cur = link_of(start).expect("consumer input is a link");
    loop {
        assert_eq!(cur.1, index, "chain link uses output {index}");
        if cur.0 == "4" {
            nodes.reverse();
            return nodes;
        }
        let node = &wf[cur.0];
        assert_eq!(
            node["class_type"],
            json!("LoraLoader"),
            "chain passes only LoraLoaders: {}",
            cur.0
        );
        nodes.push(cur.0.to_owned());
        assert!(nodes.len() <= 4, "chain too long");
        let input = if index == 0 { "model" } else { "clip" };
        cur = link_of(&node["inputs"][input]).expect("LoraLoader input is a link");
    }
}

#[test]
fn property_random_compositions() {
    let cats = [
        Category::Looks,
        Category::Outfits,
        Category::Actions,
        Category::Styles,
        Category::Scenes,
        Category::Detailers,
    ];
    let loras: Vec<String> = LORAS.iter().map(|s| (*s).to_owned()).collect();
    let ckpts = vec!["Illustrious/model.safetensors".to_owned()];
    let vaes = vec!["sdxl_vae.safetensors".to_owned()];
    let field_pool: Vec<String> = prompt::FIELD_SECTIONS
        .iter()
        .flat_map(|(s, keys)| keys.iter().map(move |k| format!("{s}::{k}")))
        .collect();
    let mut r = Rng(0xC0FFEE);
    for case in 0..3000 {
        let mut slot_docs: Vec<(Category, Value)> = Vec::new();
        for c in [Category::Characters, Category::Checkpoints]
            .into_iter()
            .chain(cats)
        {
            if r.chance(if c == Category::Characters { 85 } else { 40 }) {
                slot_docs.push((c, random_doc(&mut r, c)));
            }
        }
        let extra_docs: Vec<(Category, Value)> = (0..r.below(3))
            .map(|_| {
                let c = r.pick(&cats);
                (c, random_doc(&mut r, c))
            })
            .collect();
        let selected: Vec<String> = (0..r.below(6)).map(|_| r.pick(&field_pool)).collect();
        let defaults: Vec<String> = (0..r.below(3)).map(|_| r.pick(&field_pool)).collect();
        let extra_pos = r
            .pick(&["", "rain, (red eyes:1.4)", "blurry", "hat, hat"])
            .to_owned();
        let extra_neg = r
            .pick(&["", "hat", "red eyes, smile", "lowres, lowres"])
            .to_owned();

        let mut comp = Composition {
            selected_fields: &selected,
            default_fields: &defaults,
            active_outfit: r.pick(&[None, Some("casual"), Some("missing")]),
            extra_positive: &extra_pos,
            extra_negative: &extra_neg,
            append_background: r.chance(50),
            target: if r.chance(50) {
                Some(r.pick(&cats))
            } else {
                None
            },
            ..Default::default()
        };
        for (c, v) in &slot_docs {
            comp.set_slot(
                *c,
                Doc {
                    category: c.as_str(),
                    slug: "s",
                    data: v,
                },
            );
        }
        comp.extras = extra_docs
            .iter()
            .map(|(c, v)| Doc {
                category: c.as_str(),
                slug: "x",
                data: v,
            })
            .collect();
        let o = GenerationOptions {
            seed: r.next(),
            width: r.pick(&[512, 768, 1024, 1216]),
            height: r.pick(&[512, 832, 1024]),
            vanilla: r.chance(30),
            filename_prefix: r.pick(&[None, Some("gaze/x"), Some(" ")]),
            known: KnownModels {
                loras: Some(&loras),
                checkpoints: Some(&ckpts),
                vaes: Some(&vaes),
                ..Default::default()
            },
            template: None,
        };

        let g = match generate(&comp, &o) {
            Ok(g) => g,
            Err(e) => panic!("case {case}: {e}"),
        };
        let wf = &g.workflow;

        // The LoRA chain: every consumer reaches node 4 through exactly the active slots, in order.
        let active: Vec<String> = g.report.loras.iter().map(|l| l.node.clone()).collect();
        let consumers_model: &[&str] = if o.vanilla {
            &["3"]
        } else {
            &["3", "11", "13"]
        };
        let consumers_clip: &[&str] = if o.vanilla {
            &["6", "7"]
        } else {
            &["6", "7", "11", "13", "14", "15"]
        };
        for n in consumers_model {
            assert_eq!(
                chain_from(wf, &wf[*n]["inputs"]["model"], 0),
                active,
                "case {case} model of {n}"
            );
        }
        for n in consumers_clip {
            assert_eq!(
                chain_from(wf, &wf[*n]["inputs"]["clip"], 1),
                active,
                "case {case} clip of {n}"
            );
        }
        for slot in &g.report.bypassed {
            assert!(
                wf.get(slot.node_id()).is_none(),
                "case {case}: bypassed {slot:?} still present"
            );
        }
        assert_eq!(g.report.loras.len() + g.report.bypassed.len(), 4);
        for l in &g.report.loras {
            assert!((-100.0..=100.0).contains(&l.weight));
            assert_eq!(wf[&l.node]["inputs"]["lora_name"], json!(l.name));
        }

        // No dangling link anywhere.
        for (id, node) in wf.as_object().unwrap() {
            for (input, v) in node["inputs"].as_object().unwrap() {
                if let Some((src, _)) = link_of(v) {
                    assert!(
                        wf.get(src).is_some(),
                        "case {case}: {id}.{input} → missing {src}"
                    );
                }
            }
        }

        // Vanilla mode.
        for n in workflow::DETAILER_NODES {
            assert_eq!(wf.get(n).is_none(), o.vanilla, "case {case}: node {n}");
        }
        let save_from = if o.vanilla {
            json!(["8", 0])
        } else {
            json!(["13", 0])
        };
        assert_eq!(wf["9"]["inputs"]["images"], save_from);
        assert_eq!(g.report.vanilla, o.vanilla);

        // Dedup invariants.
        let keys = |p: &str| split_tags(p).map(tag_key).collect::<Vec<_>>();
        let p = &g.prompts;
        for (name, prompt) in [
            ("main", &p.main),
            ("face", &p.face),
            ("hand", &p.hand),
            ("negative", &p.negative),
        ] {
            let k = keys(prompt);
            let unique: HashSet<&String> = k.iter().collect();
            assert_eq!(
                unique.len(),
                k.len(),
                "case {case}: duplicate key in {name}: {prompt}"
            );
        }
        let main_keys: HashSet<String> = keys(&p.main).into_iter().collect();
        for k in keys(&p.negative) {
            assert!(
                !main_keys.contains(&k),
                "case {case}: '{k}' in both main and negative"
            );
        }

        // The explanation covers every final tag, in order.
        let e = &g.explanation;
        for (list, prompt) in [
            (&e.main, &p.main),
            (&e.face, &p.face),
            (&e.hand, &p.hand),
            (&e.negative, &p.negative),
        ] {
            let tags: Vec<&str> = split_tags(prompt).collect();
            let explained: Vec<&str> = list.iter().map(|t| t.tag.as_str()).collect();
            assert_eq!(tags, explained, "case {case}");
        }

        // Deterministic.
        if case % 100 == 0 {
            assert_eq!(generate(&comp, &o).ok().as_ref(), Some(&g), "case {case}");
        }
    }
}

#[test]
#[ignore = "timing probe: cargo test --release -- --ignored --nocapture"]
fn timing_probe() {
    let (ch, lk, of, ac, st, sc, de, ck) = (
        tifa(),
        look(),
        outfit(),
        action(),
        style(),
        scene(),
        detailer(),
        checkpoint(),
    );
    let c = Composition {
        character: doc("characters", "tifa", &ch),
        look: doc("looks", "l", &lk),
        outfit: doc("outfits", "o", &of),
        action: doc("actions", "a", &ac),
        style: doc("styles", "s", &st),
        scene: doc("scenes", "sc", &sc),
        detailer: doc("detailers", "d", &de),
        checkpoint: doc("checkpoints", "ck", &ck),
        extra_positive: "rain, night",
        ..Default::default()
    };
    let o = opts();
    let _ = generate(&c, &o).unwrap();
    let mut times: Vec<u128> = (0..2000)
        .map(|_| {
            let t = std::time::Instant::now();
            std::hint::black_box(generate(std::hint::black_box(&c), &o).unwrap());
            t.elapsed().as_nanos()
        })
        .collect();
    times.sort_unstable();
    println!(
        "generate (all slots): p50 {} µs, p99 {} µs",
        times[1000] / 1000,
        times[1980] / 1000
    );
    let typical = Composition {
        character: doc("characters", "tifa", &ch),
        style: doc("styles", "s", &st),
        checkpoint: doc("checkpoints", "ck", &ck),
        append_background: true,
        ..Default::default()
    };
    let mut v: Vec<u128> = (0..2000)
        .map(|_| {
            let t = std::time::Instant::now();
            std::hint::black_box(generate(std::hint::black_box(&typical), &o).unwrap());
            t.elapsed().as_nanos()
        })
        .collect();
    v.sort_unstable();
    println!(
        "generate (character + style + checkpoint): p50 {} µs",
        v[1000] / 1000
    );
    let t = template().unwrap();
    let neg = workflow::template_negative(t);
    let built = build_prompts(&c, neg);
    let (wf, _) = workflow::build_workflow(t, &c, &built.prompts, &o);
    let p50 = |f: &mut dyn FnMut()| {
        let mut v: Vec<u128> = (0..2000)
            .map(|_| {
                let t = std::time::Instant::now();
                f();
                t.elapsed().as_nanos()
            })
            .collect();
        v.sort_unstable();
        v[1000] / 1000
    };
    println!(
        "  prompts {} µs",
        p50(&mut || drop(std::hint::black_box(build_prompts(&c, neg))))
    );
    println!(
        "  workflow {} µs",
        p50(&mut || drop(std::hint::black_box(workflow::build_workflow(
            t,
            &c,
            &built.prompts,
            &o
        ))))
    );
    println!(
        "  template clone {} µs",
        p50(&mut || drop(std::hint::black_box(t.clone())))
    );
    println!(
        "  validate {} µs",
        p50(&mut || drop(std::hint::black_box(validate(&wf, &o.known))))
    );
}

#[test]
fn a_built_workflow_made_vanilla_matches_the_vanilla_build() {
    let docs = sample_docs_for_vanilla();
    let comp = Composition {
        character: Some(Doc {
            category: "characters",
            slug: "c",
            data: &docs[0],
        }),
        checkpoint: Some(Doc {
            category: "checkpoints",
            slug: "k",
            data: &docs[1],
        }),
        ..Composition::default()
    };
    let mut opts = GenerationOptions {
        seed: 7,
        width: 832,
        height: 1216,
        ..GenerationOptions::default()
    };
    let full = generate(&comp, &opts).unwrap().workflow;
    opts.vanilla = true;
    let vanilla = generate(&comp, &opts).unwrap().workflow;
    let stripped = super::workflow::to_vanilla(&full).unwrap();
    assert_eq!(stripped, vanilla);
    assert!(super::validate(&stripped, &KnownModels::default()).is_ok());
    assert!(super::workflow::to_vanilla(&vanilla).is_none());
}

fn sample_docs_for_vanilla() -> Vec<Value> {
    vec![
        serde_json::json!({"character_id": "c", "character_name": "C",
                "identity": {"hair": "red hair", "hands": "gloves"},
                "defaults": {"expression": "smile"},
                "lora": {"lora_name": "Illustrious/Looks/c.safetensors", "lora_weight": 0.8}}),
        serde_json::json!({"checkpoint_path": "Illustrious/x.safetensors", "steps": 20,
                "cfg": 5, "sampler_name": "euler", "scheduler": "normal", "vae": "integrated"}),
    ]
}

#[test]
fn template_checks_name_what_is_wrong() {
    use super::workflow::{TEMPLATE_JSON, check_template};
    let shipped: Value = serde_json::from_str(TEMPLATE_JSON).unwrap();
    assert_eq!(check_template(&shipped), Ok(()));
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "not an object",
            |t| *t = json!([1]),
            "not a JSON object of nodes",
        ),
        (
            "a LoRA slot removed",
            |t| {
                t.as_object_mut().unwrap().remove("19");
            },
            "node 19 (LoraLoader) is missing",
        ),
        (
            "the sampler swapped",
            |t| t["3"]["class_type"] = json!("KSamplerAdvanced"),
            "node 3 must be a KSampler, not a KSamplerAdvanced",
        ),
        (
            "no class at all",
            |t| {
                t["9"].as_object_mut().unwrap().remove("class_type");
            },
            "node 9 must be a SaveImage, not a node without class_type",
        ),
        (
            "the positive placeholder gone",
            |t| t["6"]["inputs"]["text"] = json!("masterpiece"),
            "node 6's text must contain {{POSITIVE_PROMPT}}",
        ),
        (
            "the hand placeholder gone",
            |t| t["15"]["inputs"]["text"] = json!(""),
            "node 15's text must contain {{HAND_PROMPT}}",
        ),
        (
            "the chain skips a slot",
            |t| t["18"]["inputs"]["model"] = json!(["16", 0]),
            "node 18's model must link to [\"17\", 0]",
        ),
        (
            "a detailer setting out of range",
            |t| t["11"]["inputs"]["guide_size"] = json!(100000),
            "a trial build fails: value_bigger_than_max at node 11 (FaceDetailer) input guide_size",
        ),
        (
            "a detailer input removed",
            |t| {
                t["13"]["inputs"].as_object_mut().unwrap().remove("denoise");
            },
            "input denoise: Required input is missing",
        ),
        (
            "an unknown node added",
            |t| t["30"] = json!({"class_type": "NoSuchNode", "inputs": {}}),
            "Cannot execute because node NoSuchNode does not exist",
        ),
    ];
    for (what, edit, needle) in cases {
        let mut t = shipped.clone();
        edit(&mut t);
        let problems = check_template(&t).expect_err(what).join("\n");
        assert!(problems.contains(needle), "{what}: {problems}");
    }
    // Tuning values the engine does not own is fine.
    let mut tuned = shipped.clone();
    tuned["11"]["inputs"]["guide_size"] = json!(1024);
    tuned["13"]["inputs"]["denoise"] = json!(0.3);
    tuned["7"]["inputs"]["text"] = json!("lowres, worst quality");
    assert_eq!(check_template(&tuned), Ok(()));
}

#[test]
fn a_given_template_is_the_one_built_from() {
    let mut tuned: Value = serde_json::from_str(super::workflow::TEMPLATE_JSON).unwrap();
    tuned["11"]["inputs"]["guide_size"] = json!(1024);
    tuned["7"]["inputs"]["text"] = json!("from the user's template");
    let comp = Composition::default();
    let o = GenerationOptions {
        seed: 3,
        width: 832,
        height: 1216,
        template: Some(&tuned),
        ..GenerationOptions::default()
    };
    let g = generate(&comp, &o).unwrap();
    assert_eq!(g.workflow["11"]["inputs"]["guide_size"], json!(1024));
    assert!(g.prompts.negative.contains("from the user's template"));
    let builtin = generate(
        &comp,
        &GenerationOptions {
            template: None,
            ..o
        },
    )
    .unwrap();
    assert_eq!(builtin.workflow["11"]["inputs"]["guide_size"], json!(512));
}
