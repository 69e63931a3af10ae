//! Workflows built by the engine (`gaze::engine::generate`) from the sample library, posted to the
//! ComfyUI stand-in: every representative composition and every category page is accepted and
//! runs, vanilla mode matches a backend without the Impact Pack, 200 pseudo-random compositions are
//! accepted, the engine refuses an unlisted LoRA exactly where ComfyUI does, and every step of a
//! strengths sweep is accepted.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gaze::engine::workflow::DETAILER_NODES;
use gaze::engine::{
    Category, Composition, Doc, EngineError, ErrorKind, Generation, GenerationOptions, KnownModels,
    LoraSlot, RANDOM_SENTINEL, comfy_error_body, generate, pick_random, strengths_sweep,
};
use serde_json::{Value, json};

use crate::support::comfy_standin::{self, StandIn, StandInConfig};

const PREFIX: &str = "gaze/test";
const SEED: u64 = 1_234_567;
const IDLE: Duration = Duration::from_secs(60);
const DEFAULT_CHECKPOINT: &str = "Illustrious_waiIllustriousSDXL_v140_safetensors";

// ───────────────────────────── the sample library ─────────────────────────────

/// (folder under `data/`, category name), from the crate's category table.
const FOLDERS: [(&str, &str); 9] = {
    let d = &gaze::library::category::DESCRIPTORS;
    [
        (d[0].dir, d[0].key),
        (d[1].dir, d[1].key),
        (d[2].dir, d[2].key),
        (d[3].dir, d[3].key),
        (d[4].dir, d[4].key),
        (d[5].dir, d[5].key),
        (d[6].dir, d[6].key),
        (d[7].dir, d[7].key),
        (d[8].dir, d[8].key),
    ]
};

struct Library {
    /// category → (slug, document), sorted by slug.
    docs: BTreeMap<&'static str, Vec<(String, Value)>>,
    checkpoints: Vec<String>,
    loras: Vec<String>,
    vaes: Vec<String>,
}

impl Library {
    fn load() -> Library {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
        let mut docs = BTreeMap::new();
        for (folder, category) in FOLDERS {
            let mut list = Vec::new();
            for entry in std::fs::read_dir(root.join(folder)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let slug = path.file_stem().unwrap().to_str().unwrap().to_owned();
                let text = std::fs::read_to_string(&path).unwrap();
                let value: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                list.push((slug, value));
            }
            list.sort_by(|a, b| a.0.cmp(&b.0));
            assert!(!list.is_empty(), "no sample documents in data/{folder}");
            docs.insert(category, list);
        }
        let mut checkpoints = Vec::new();
        let mut loras = Vec::new();
        let mut vaes = Vec::new();
        for list in docs.values() {
            for (_, d) in list {
                if let Some(name) = d["lora"]["lora_name"].as_str().map(str::trim)
                    && !name.is_empty()
                {
                    loras.push(name.to_owned());
                }
            }
        }
        for (_, d) in &docs["checkpoints"] {
            if let Some(p) = d["checkpoint_path"].as_str() {
                checkpoints.push(p.trim().to_owned());
            }
            if let Some(v) = d["vae"].as_str().map(str::trim)
                && !v.is_empty()
                && !v.eq_ignore_ascii_case("integrated")
            {
                vaes.push(v.to_owned());
            }
        }
        for l in [&mut checkpoints, &mut loras, &mut vaes] {
            l.sort();
            l.dedup();
        }
        Library {
            docs,
            checkpoints,
            loras,
            vaes,
        }
    }

    fn all(&'static self, category: &str) -> Vec<Doc<'static>> {
        let (cat, list) = self
            .docs
            .get_key_value(category)
            .unwrap_or_else(|| panic!("no category {category}"));
        list.iter()
            .map(|(slug, data)| Doc {
                category: cat,
                slug,
                data,
            })
            .collect()
    }

    fn doc(&'static self, category: &str, slug: &str) -> Doc<'static> {
        self.all(category)
            .into_iter()
            .find(|d| d.slug == slug)
            .unwrap_or_else(|| panic!("no sample document {category}/{slug}"))
    }

    fn known(&'static self) -> KnownModels<'static> {
        KnownModels {
            checkpoints: Some(&self.checkpoints),
            loras: Some(&self.loras),
            vaes: Some(&self.vaes),
            ..Default::default()
        }
    }
}

fn lib() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(Library::load)
}

fn opts(seed: u64) -> GenerationOptions<'static> {
    GenerationOptions {
        seed,
        width: 832,
        height: 1216,
        vanilla: false,
        filename_prefix: Some(PREFIX),
        known: lib().known(),
        template: None,
    }
}

/// The compositions the benchmark times: character page, outfit page, all slots, generator.
fn representative() -> Vec<(&'static str, Composition<'static>)> {
    let l = lib();
    let ck = l.doc("checkpoints", DEFAULT_CHECKPOINT);
    let tifa = l.doc("characters", "tifa_lockhart");
    vec![
        (
            "character page",
            Composition {
                character: Some(tifa),
                checkpoint: Some(ck),
                target: Some(Category::Characters),
                ..Default::default()
            },
        ),
        (
            "outfit page",
            Composition {
                character: Some(tifa),
                outfit: Some(l.doc("outfits", "victorian_maid")),
                checkpoint: Some(ck),
                target: Some(Category::Outfits),
                ..Default::default()
            },
        ),
        (
            "all slots",
            Composition {
                character: Some(tifa),
                look: Some(l.doc("looks", "tifa_remake")),
                outfit: Some(l.doc("outfits", "victorian_maid")),
                action: Some(l.doc("actions", "waving")),
                style: Some(l.doc("styles", "watercolor")),
                scene: Some(l.doc("scenes", "night_city")),
                detailer: Some(l.doc("detailers", "detailed_eyes")),
                checkpoint: Some(
                    l.doc("checkpoints", "Illustrious_Illustrious_XL_v2_0_safetensors"),
                ),
                extra_positive: "(masterpiece:1.2), night",
                extra_negative: "lowres",
                ..Default::default()
            },
        ),
        (
            "generator",
            Composition {
                character: Some(l.doc("characters", "hatsune_miku")),
                checkpoint: Some(ck),
                extras: vec![
                    l.doc("outfits", "summer_yukata"),
                    l.doc("actions", "running"),
                    l.doc("styles", "kyoani_soft"),
                    l.doc("scenes", "shrine"),
                    l.doc("detailers", "hand_fix"),
                    l.doc("detailers", "sparkle_effects"),
                ],
                append_background: true,
                ..Default::default()
            },
        ),
    ]
}

/// One page of the app: the composition plus the options it generates with.
struct Page {
    label: String,
    comp: Composition<'static>,
    seed: u64,
    width: u32,
    height: u32,
    /// The page's own document when it should own a LoRA slot: (slot, `category/slug`, LoRA name).
    owns: Option<(LoraSlot, String, String)>,
}

/// Every sample document as the target of its category page, with a character where the page
/// shows one (rotating through the sample characters), and the default checkpoint.
fn pages() -> Vec<Page> {
    let l = lib();
    let ck = l.doc("checkpoints", DEFAULT_CHECKPOINT);
    let characters = l.all("characters");
    let mut out = Vec::new();
    for (_, category) in FOLDERS {
        let cat = Category::parse(category).unwrap();
        for (i, d) in l.all(category).into_iter().enumerate() {
            let label = format!("{category}/{}", d.slug);
            if cat == Category::Presets {
                out.push(preset_page(d, label));
                continue;
            }
            let mut comp = Composition {
                target: Some(cat),
                checkpoint: Some(ck),
                ..Default::default()
            };
            comp.character = Some(characters[i % characters.len()]);
            if cat == Category::Looks
                && let Some(owner) = d.data["character_id"].as_str()
                && let Some(c) = characters.iter().find(|c| c.slug == owner)
            {
                comp.character = Some(*c);
            }
            assert!(comp.set_slot(cat, d), "{label} has a slot");
            let owns = LoraSlot::for_category(cat).and_then(|slot| {
                let name = d.data["lora"]["lora_name"].as_str()?.trim();
                (!name.is_empty()).then(|| (slot, format!("{category}/{}", d.slug), name.into()))
            });
            out.push(Page {
                label,
                comp,
                seed: SEED + i as u64,
                width: 832,
                height: 1216,
                owns,
            });
        }
    }
    out
}

/// A preset page: the preset's slugs resolved to documents (`__random__` picked with the preset's
/// seed), its checkpoint found by `checkpoint_path` (the default checkpoint when it names none),
/// its field list, outfit, extra prompts and size.
fn preset_page(preset: Doc<'static>, label: String) -> Page {
    let l = lib();
    let p = preset.data;
    let seed = p["seed"].as_u64().unwrap_or(SEED);
    let mut comp = Composition {
        target: Some(Category::Presets),
        ..Default::default()
    };
    let slots = [
        ("character", "characters"),
        ("look", "looks"),
        ("outfit", "outfits"),
        ("action", "actions"),
        ("style", "styles"),
        ("scene", "scenes"),
        ("detailer", "detailers"),
    ];
    for (k, (key, category)) in slots.into_iter().enumerate() {
        let Some(slug) = p[key].as_str() else {
            continue;
        };
        let docs = l.all(category);
        let d = if slug == RANDOM_SENTINEL {
            docs[pick_random(docs.len(), seed ^ k as u64).unwrap()]
        } else {
            l.doc(category, slug)
        };
        comp.set_slot(Category::parse(category).unwrap(), d);
    }
    comp.checkpoint = Some(match p["checkpoint"].as_str() {
        Some(path) => l
            .all("checkpoints")
            .into_iter()
            .find(|c| c.data["checkpoint_path"].as_str() == Some(path))
            .unwrap_or_else(|| panic!("{label}: no checkpoint {path}")),
        None => l.doc("checkpoints", DEFAULT_CHECKPOINT),
    });
    let fields: Vec<String> = p["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    comp.selected_fields = Vec::leak(fields);
    comp.active_outfit = p["active_outfit"].as_str();
    comp.extra_positive = p["extra_positive"].as_str().unwrap_or("");
    comp.extra_negative = p["extra_negative"].as_str().unwrap_or("");
    Page {
        label,
        comp,
        seed,
        width: p["width"].as_u64().unwrap_or(1024) as u32,
        height: p["height"].as_u64().unwrap_or(1024) as u32,
        owns: None,
    }
}

// ───────────────────────────── the stand-in ─────────────────────────────

async fn standin() -> StandIn {
    let l = lib();
    comfy_standin::start(StandInConfig {
        checkpoints: l.checkpoints.clone(),
        loras: l.loras.clone(),
        vaes: l.vaes.clone(),
        exec_time: Duration::from_millis(2),
        impact_pack: true,
    })
    .await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A canonical lower-case UUID (v4-shaped) from a process-wide counter.
fn prompt_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("6a2e0000-0000-4000-8000-{n:012x}")
}

/// POSTs `{"prompt", "client_id", "prompt_id"}`; returns the status and the JSON body.
async fn post(si: &StandIn, http: &reqwest::Client, workflow: &Value, pid: &str) -> (u16, Value) {
    let body = json!({"prompt": workflow, "client_id": "t", "prompt_id": pid});
    let resp = http
        .post(format!("{}/prompt", si.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: body {text}"));
    (status, v)
}

/// Posts a workflow that must be accepted: HTTP 200, our prompt_id back, no node errors, and the
/// stand-in holds the graph exactly as built. Returns the prompt_id.
async fn accept(si: &StandIn, http: &reqwest::Client, workflow: &Value, label: &str) -> String {
    let pid = prompt_id();
    let (status, body) = post(si, http, workflow, &pid).await;
    assert_eq!(status, 200, "{label}: rejected: {body:#}");
    assert_eq!(body["prompt_id"], json!(pid), "{label}");
    assert_eq!(body["node_errors"], json!({}), "{label}: {body:#}");
    assert_eq!(
        si.received(&pid).as_ref(),
        Some(workflow),
        "{label}: graph as sent"
    );
    pid
}

/// The prompt ran once and its history says success with a PNG from SaveImage (node 9).
fn assert_ran(si: &StandIn, pid: &str, label: &str) {
    let h = si
        .history_entry(pid)
        .unwrap_or_else(|| panic!("{label}: no history entry for {pid}"));
    assert_eq!(h["status"]["status_str"], "success", "{label}: {h:#}");
    assert_eq!(h["status"]["completed"], true, "{label}");
    assert_eq!(si.executions(pid), 1, "{label}");
    let images = h["outputs"]["9"]["images"]
        .as_array()
        .unwrap_or_else(|| panic!("{label}: no images in {:#}", h["outputs"]));
    assert!(!images.is_empty(), "{label}: no image");
    let (sub, file) = PREFIX.rsplit_once('/').unwrap();
    assert_eq!(images[0]["type"], "output", "{label}");
    assert_eq!(images[0]["subfolder"], sub, "{label}");
    let name = images[0]["filename"].as_str().unwrap_or_default();
    assert!(
        name.starts_with(file) && name.ends_with(".png"),
        "{label}: {name}"
    );
}

async fn wait_idle(si: &StandIn) {
    assert!(
        si.wait_idle(IDLE).await,
        "stand-in still busy after {IDLE:?}"
    );
}

fn built(comp: &Composition<'_>, o: &GenerationOptions<'_>, label: &str) -> Generation {
    generate(comp, o).unwrap_or_else(|e| panic!("{label}: generate failed: {e}"))
}

/// Checks the graph agrees with the report: active LoRA nodes carry their names and weights,
/// bypassed slots are gone, node 4 names the checkpoint, node 20 exists iff a VAE is named.
fn assert_report_matches(g: &Generation, label: &str) {
    let wf = &g.workflow;
    for l in &g.report.loras {
        let inputs = &wf[l.node.as_str()]["inputs"];
        assert_eq!(
            inputs["lora_name"],
            json!(l.name),
            "{label}: node {}",
            l.node
        );
        assert_eq!(inputs["strength_model"], json!(l.weight), "{label}");
    }
    for s in &g.report.bypassed {
        assert!(
            wf.get(s.node_id()).is_none(),
            "{label}: {} kept",
            s.node_id()
        );
    }
    assert_eq!(
        wf["4"]["inputs"]["ckpt_name"],
        json!(g.report.checkpoint),
        "{label}"
    );
    assert_eq!(wf.get("20").is_some(), g.report.vae.is_some(), "{label}");
    assert_eq!(wf["9"]["inputs"]["filename_prefix"], PREFIX, "{label}");
}

// ───────────────────────────── tests ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn representative_compositions_are_accepted_and_run() {
    let si = standin().await;
    let http = client();
    let mut pids = Vec::new();
    for (label, comp) in representative() {
        let g = built(&comp, &opts(SEED), label);
        assert_report_matches(&g, label);
        pids.push((label, accept(&si, &http, &g.workflow, label).await, g));
    }
    wait_idle(&si).await;
    for (label, pid, g) in &pids {
        assert_ran(&si, pid, label);
        // Every detailer node is there and fed by the built face/hand prompts.
        for n in DETAILER_NODES {
            assert!(g.workflow.get(n).is_some(), "{label}: node {n}");
        }
        assert_eq!(g.workflow["14"]["inputs"]["text"], json!(g.prompts.face));
        assert_eq!(g.workflow["15"]["inputs"]["text"], json!(g.prompts.hand));
    }
    // All slots: four LoRAs in chain order, the look's in 16, and the named VAE in node 20.
    let all = &pids[2].2;
    let sources: Vec<(&str, &str)> = all
        .report
        .loras
        .iter()
        .map(|l| (l.node.as_str(), l.source.as_str()))
        .collect();
    assert_eq!(
        sources,
        [
            ("16", "looks/tifa_remake"),
            ("17", "outfits/victorian_maid"),
            ("18", "actions/waving"),
            ("19", "styles/watercolor")
        ]
    );
    assert_eq!(all.report.vae.as_deref(), Some("sdxl_vae.safetensors"));
    assert_eq!(all.workflow["8"]["inputs"]["vae"], json!(["20", 0]));
    assert_eq!(si.posts(), 4);
    si.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_category_page_of_the_sample_library_is_accepted_and_runs() {
    let si = standin().await;
    let http = client();
    let pages = pages();
    let total: usize = lib().docs.values().map(Vec::len).sum();
    assert_eq!(pages.len(), total, "one page per sample document");
    let mut pids = Vec::new();
    for p in &pages {
        let o = GenerationOptions {
            width: p.width,
            height: p.height,
            ..opts(p.seed)
        };
        let g = built(&p.comp, &o, &p.label);
        assert_report_matches(&g, &p.label);
        // The page's document holds its LoRA slot (the target wins slot 19).
        if let Some((slot, source, name)) = &p.owns {
            let l = g.report.loras.iter().find(|l| l.slot == *slot);
            assert_eq!(
                l.map(|l| (&l.source, &l.name)),
                Some((source, name)),
                "{}: slot {}",
                p.label,
                slot.node_id()
            );
        }
        assert_eq!(g.workflow["5"]["inputs"]["width"], json!(p.width));
        pids.push((
            p.label.as_str(),
            accept(&si, &http, &g.workflow, &p.label).await,
        ));
    }
    wait_idle(&si).await;
    for (label, pid) in &pids {
        assert_ran(&si, pid, label);
    }
    assert_eq!(si.posts(), pages.len());
    si.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanilla_mode_matches_a_backend_without_the_impact_pack() {
    let si = standin().await;
    si.set_impact_pack(false);
    let http = client();
    let comp = representative().remove(2).1;

    // The full workflow: ComfyUI stops at the first node whose class it does not know, in graph
    // order — node 10, the Impact Subpack's detector provider.
    let full = built(&comp, &opts(SEED), "full").workflow;
    let pid = prompt_id();
    let (status, body) = post(&si, &http, &full, &pid).await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(body["error"]["type"], "invalid_prompt", "{body:#}");
    assert_eq!(body["error"]["details"], "Node ID '#10'", "{body:#}");
    assert_eq!(
        body["error"]["message"],
        "Cannot execute because node UltralyticsDetectorProvider does not exist."
    );
    assert_eq!(body["node_errors"], json!({}));

    // Without the Subpack's nodes the first unknown class is FaceDetailer, node 11.
    let mut no_detectors = full.clone();
    for n in ["10", "12"] {
        no_detectors.as_object_mut().unwrap().remove(n);
    }
    let (status, body) = post(&si, &http, &no_detectors, &prompt_id()).await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(body["error"]["type"], "invalid_prompt");
    assert_eq!(body["error"]["details"], "Node ID '#11'");
    assert_eq!(
        body["error"]["message"],
        "Cannot execute because node FaceDetailer does not exist."
    );
    assert_eq!(si.posts(), 0, "nothing was queued");

    // The vanilla workflow: no Impact nodes, SaveImage straight from VAEDecode; accepted and run.
    let vanilla_opts = GenerationOptions {
        vanilla: true,
        ..opts(SEED)
    };
    let g = built(&comp, &vanilla_opts, "vanilla");
    assert!(g.report.vanilla);
    for n in DETAILER_NODES {
        assert!(g.workflow.get(n).is_none(), "vanilla keeps node {n}");
    }
    assert_eq!(g.workflow["9"]["inputs"]["images"], json!(["8", 0]));
    let vpid = accept(&si, &http, &g.workflow, "vanilla").await;
    wait_idle(&si).await;
    assert_ran(&si, &vpid, "vanilla");
    assert!(
        si.history_entry(&pid).is_none(),
        "the rejected prompt never ran"
    );

    // Installing the pack makes the full workflow acceptable again: the rejection was the pack.
    si.set_impact_pack(true);
    let fpid = accept(&si, &http, &full, "full with the pack").await;
    wait_idle(&si).await;
    assert_ran(&si, &fpid, "full with the pack");
    si.shutdown().await;
}

/// splitmix64-based generator: deterministic, no crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_pseudo_random_compositions_are_all_accepted() {
    let si = standin().await;
    let http = client();
    let l = lib();
    let mut rng = Rng(0x6A2E_2024);
    let field_lists: Vec<Vec<String>> = vec![
        vec![],
        vec!["identity::base_specs".into(), "identity::hair".into()],
        vec![
            "special::name".into(),
            "identity::eyes".into(),
            "defaults::expression".into(),
            "wardrobe::top".into(),
            "wardrobe::gloves".into(),
            "lora::lora_triggers".into(),
        ],
        vec!["styles::primary_color".into(), "special::tags".into()],
    ];
    let outfits = [None, Some("default"), Some("advent_children"), Some("nope")];
    let extra_pos = [
        "",
        "(masterpiece:1.2), night",
        "smile, smile, (smile:1.3)",
        "lowres",
    ];
    let extra_neg = ["", "lowres", "bad hands, (worst quality:1.4)"];
    let extra_pool: Vec<Doc<'static>> = FOLDERS.iter().flat_map(|(_, c)| l.all(c)).collect();
    let checkpoints = l.all("checkpoints");
    let widths = [512u32, 768, 832, 1024, 1216, 1536];
    let mut pids = Vec::new();
    let mut vanilla = 0;
    for i in 0..200 {
        let mut comp = Composition {
            checkpoint: Some(rng.pick(&checkpoints)),
            selected_fields: &field_lists[rng.below(field_lists.len())],
            default_fields: &field_lists[rng.below(field_lists.len())],
            active_outfit: rng.pick(&outfits),
            extra_positive: rng.pick(&extra_pos),
            extra_negative: rng.pick(&extra_neg),
            append_background: rng.chance(50),
            ..Default::default()
        };
        for (_, category) in &FOLDERS[..7] {
            let percent = if *category == "characters" { 85 } else { 45 };
            if rng.chance(percent) {
                let d = rng.pick(&l.all(category));
                comp.set_slot(Category::parse(category).unwrap(), d);
            }
        }
        for _ in 0..rng.below(7) {
            comp.extras.push(rng.pick(&extra_pool));
        }
        if rng.chance(60) {
            comp.target = Some(rng.pick(&Category::ALL));
        }
        let o = GenerationOptions {
            seed: rng.next(),
            width: rng.pick(&widths),
            height: rng.pick(&widths),
            vanilla: rng.chance(20),
            ..opts(0)
        };
        vanilla += usize::from(o.vanilla);
        let label = format!("random #{i}");
        let g = built(&comp, &o, &label);
        assert_report_matches(&g, &label);
        pids.push((label.clone(), accept(&si, &http, &g.workflow, &label).await));
    }
    assert!(vanilla > 0 && vanilla < 200, "both modes covered");
    wait_idle(&si).await;
    for (label, pid) in &pids {
        assert_ran(&si, pid, label);
    }
    assert_eq!(si.posts(), 200);
    si.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlisted_lora_is_refused_by_the_engine_where_comfyui_refuses_it() {
    let l = lib();
    let tifa = l.doc("characters", "tifa_lockhart");
    let missing = tifa.data["lora"]["lora_name"].as_str().unwrap().to_owned();
    let listed: Vec<String> = l.loras.iter().filter(|n| **n != missing).cloned().collect();
    assert_eq!(listed.len() + 1, l.loras.len());
    let si = comfy_standin::start(StandInConfig {
        checkpoints: l.checkpoints.clone(),
        loras: listed.clone(),
        vaes: l.vaes.clone(),
        exec_time: Duration::from_millis(2),
        impact_pack: true,
    })
    .await;
    let http = client();
    let comp = representative().remove(0).1;

    // With the backend's lists known, the engine refuses before anything is sent.
    let known = KnownModels {
        loras: Some(&listed),
        ..l.known()
    };
    let errors = match generate(
        &comp,
        &GenerationOptions {
            known,
            ..opts(SEED)
        },
    ) {
        Err(EngineError::Invalid(errors)) => errors,
        other => panic!("expected EngineError::Invalid, got {other:?}"),
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e.kind, ErrorKind::ValueNotInList);
    assert_eq!(e.node_id, "16");
    assert_eq!(e.class_type.as_deref(), Some("LoraLoader"));
    assert_eq!(e.input.as_deref(), Some("lora_name"));
    assert!(e.details.contains(&missing), "{}", e.details);
    assert_eq!(si.posts(), 0);

    // The same graph built without the lists: ComfyUI refuses it at the same node and input.
    let g = built(&comp, &opts(SEED), "unchecked");
    assert_eq!(g.workflow["16"]["inputs"]["lora_name"], json!(missing));
    let pid = prompt_id();
    let (status, body) = post(&si, &http, &g.workflow, &pid).await;
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(body["error"]["type"], "prompt_outputs_failed_validation");
    let node_errors = body["node_errors"].as_object().unwrap();
    assert_eq!(node_errors.keys().collect::<Vec<_>>(), ["16"], "{body:#}");
    let ours = comfy_error_body(&errors);
    let (theirs, mine) = (&node_errors["16"], &ours["node_errors"]["16"]);
    assert_eq!(theirs["class_type"], "LoraLoader");
    assert_eq!(theirs["class_type"], mine["class_type"]);
    let theirs = theirs["errors"].as_array().unwrap();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    for key in ["type", "message", "details"] {
        assert_eq!(theirs[0][key], mine["errors"][0][key], "{key}");
    }
    assert_eq!(theirs[0]["type"], "value_not_in_list");
    assert_eq!(theirs[0]["extra_info"]["input_name"], "lora_name");
    assert_eq!(ours["error"]["type"], body["error"]["type"]);
    assert_eq!(si.posts(), 0, "nothing was queued");
    wait_idle(&si).await;
    assert!(si.history_entry(&pid).is_none());

    // Once the backend lists the LoRA, both agree again.
    si.set_loras(l.loras.clone());
    let g = built(&comp, &opts(SEED), "listed");
    let pid = accept(&si, &http, &g.workflow, "listed").await;
    wait_idle(&si).await;
    assert_ran(&si, &pid, "listed");
    si.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_of_a_strengths_sweep_is_accepted_and_runs() {
    let si = standin().await;
    let http = client();
    let comp = representative().remove(2).1;
    let sweep = strengths_sweep(&comp, &opts(SEED), LoraSlot::Style, 0.0, 1.0, 0.1)
        .unwrap_or_else(|e| panic!("sweep: {e}"));
    let weights: Vec<f64> = sweep.steps.iter().map(|s| s.weight).collect();
    assert_eq!(
        weights,
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    );
    let mut pids = Vec::new();
    for step in &sweep.steps {
        let label = format!("weight {}", step.weight);
        let wf = &step.workflow;
        for input in ["strength_model", "strength_clip"] {
            assert_eq!(wf["19"]["inputs"][input], json!(step.weight), "{label}");
        }
        // Only the swept slot changes.
        let mut expected = sweep.base.workflow.clone();
        expected["19"]["inputs"]["strength_model"] = json!(step.weight);
        expected["19"]["inputs"]["strength_clip"] = json!(step.weight);
        assert_eq!(wf, &expected, "{label}");
        pids.push((label.clone(), accept(&si, &http, wf, &label).await));
    }
    wait_idle(&si).await;
    for (label, pid) in &pids {
        assert_ran(&si, pid, label);
    }
    assert_eq!(si.posts(), 11);

    // A slot that holds no LoRA cannot be swept.
    let bare = representative().remove(0).1;
    assert!(matches!(
        strengths_sweep(&bare, &opts(SEED), LoraSlot::Outfit, 0.0, 1.0, 0.1),
        Err(EngineError::Sweep(_))
    ));
    si.shutdown().await;
}
