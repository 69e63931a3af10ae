//! Benchmark of the prompt and workflow engine: one generation (prompts + workflow + validation)
//! for representative compositions of the sample library, and an 11-step strengths sweep. Prints
//! figures; asserts nothing. Run with `cargo bench --bench engine`.
//! Set GAZE_BENCH_ITERS to change the iterations per composition (default 20,000).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use gaze::engine::{
    Category, Composition, Doc, GenerationOptions, KnownModels, LoraSlot, build_prompts, generate,
    strengths_sweep, validate, workflow,
};
use serde_json::Value;

/// The target for one generation.
const TARGET_P50_US: f64 = 50.0;
const SWEEP_ITERS: usize = 2_000;

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

/// category → slug → document, read from the bundled sample library.
type Library = BTreeMap<&'static str, BTreeMap<String, Value>>;

fn load() -> Library {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut lib = Library::new();
    for (folder, category) in FOLDERS {
        let docs = lib.entry(category).or_default();
        for entry in std::fs::read_dir(root.join(folder)).expect("sample folder") {
            let path = entry.expect("dir entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let slug = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path).expect("read sample");
            let value = serde_json::from_str(&text).expect("sample parses");
            docs.insert(slug.to_owned(), value);
        }
    }
    lib
}

fn doc<'a>(lib: &'a Library, category: &'static str, slug: &str) -> Doc<'a> {
    let (slug, data) = lib
        .get(category)
        .and_then(|d| d.get_key_value(slug))
        .unwrap_or_else(|| panic!("no sample document {category}/{slug}"));
    Doc {
        category,
        slug,
        data,
    }
}

/// The backend's lists as the sample library implies them.
struct Lists {
    checkpoints: Vec<String>,
    loras: Vec<String>,
    vaes: Vec<String>,
}

fn lists(lib: &Library) -> Lists {
    fn text(v: &Value) -> Option<&str> {
        v.as_str().map(str::trim).filter(|s| !s.is_empty())
    }
    let mut l = Lists {
        checkpoints: Vec::new(),
        loras: Vec::new(),
        vaes: Vec::new(),
    };
    for docs in lib.values() {
        l.loras.extend(
            docs.values()
                .filter_map(|d| text(&d["lora"]["lora_name"]))
                .map(str::to_owned),
        );
    }
    for d in lib["checkpoints"].values() {
        l.checkpoints
            .extend(text(&d["checkpoint_path"]).map(str::to_owned));
        l.vaes.extend(
            text(&d["vae"])
                .filter(|v| !v.eq_ignore_ascii_case("integrated"))
                .map(str::to_owned),
        );
    }
    for v in [&mut l.checkpoints, &mut l.loras, &mut l.vaes] {
        v.sort();
        v.dedup();
    }
    l
}

fn compositions(lib: &Library) -> Vec<(&'static str, Composition<'_>)> {
    let ck = doc(
        lib,
        "checkpoints",
        "Illustrious_waiIllustriousSDXL_v140_safetensors",
    );
    let tifa = doc(lib, "characters", "tifa_lockhart");
    vec![
        (
            "character page (character + checkpoint)",
            Composition {
                character: Some(tifa),
                checkpoint: Some(ck),
                target: Some(Category::Characters),
                ..Default::default()
            },
        ),
        (
            "outfit page (character + outfit + checkpoint)",
            Composition {
                character: Some(tifa),
                outfit: Some(doc(lib, "outfits", "victorian_maid")),
                checkpoint: Some(ck),
                target: Some(Category::Outfits),
                ..Default::default()
            },
        ),
        (
            "all slots (8 documents)",
            Composition {
                character: Some(tifa),
                look: Some(doc(lib, "looks", "tifa_remake")),
                outfit: Some(doc(lib, "outfits", "victorian_maid")),
                action: Some(doc(lib, "actions", "waving")),
                style: Some(doc(lib, "styles", "watercolor")),
                scene: Some(doc(lib, "scenes", "night_city")),
                detailer: Some(doc(lib, "detailers", "detailed_eyes")),
                checkpoint: Some(doc(
                    lib,
                    "checkpoints",
                    "Illustrious_Illustrious_XL_v2_0_safetensors",
                )),
                extra_positive: "(masterpiece:1.2), night",
                extra_negative: "lowres",
                ..Default::default()
            },
        ),
        (
            "generator (character + 6 extras)",
            Composition {
                character: Some(doc(lib, "characters", "hatsune_miku")),
                checkpoint: Some(ck),
                extras: vec![
                    doc(lib, "outfits", "summer_yukata"),
                    doc(lib, "actions", "running"),
                    doc(lib, "styles", "kyoani_soft"),
                    doc(lib, "scenes", "shrine"),
                    doc(lib, "detailers", "hand_fix"),
                    doc(lib, "detailers", "sparkle_effects"),
                ],
                append_background: true,
                ..Default::default()
            },
        ),
    ]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Times `f` over `iters` calls after `iters / 10` warm-up calls; prints p50/p90/p99 and
/// throughput. Returns p50 in µs.
fn time(label: &str, iters: usize, per_call: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..(iters / 10).max(1) {
        f();
    }
    let mut lat = Vec::with_capacity(iters);
    let start = Instant::now();
    for _ in 0..iters {
        let t = Instant::now();
        f();
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort_unstable();
    let p50 = us(pct(&lat, 0.5));
    let per_s = (iters * per_call) as f64 / total.as_secs_f64();
    println!(
        "  {label:<48} p50 {p50:>8.1} µs  p90 {:>8.1} µs  p99 {:>8.1} µs  {per_s:>9.0}/s",
        us(pct(&lat, 0.9)),
        us(pct(&lat, 0.99)),
    );
    p50
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let iters: usize = std::env::var("GAZE_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let started = Instant::now();
    let lib = load();
    let lists = lists(&lib);
    let known = KnownModels {
        checkpoints: Some(&lists.checkpoints),
        loras: Some(&lists.loras),
        vaes: Some(&lists.vaes),
        ..Default::default()
    };
    let opts = GenerationOptions {
        seed: 1_234_567,
        width: 832,
        height: 1216,
        vanilla: false,
        filename_prefix: Some("gaze/bench"),
        known,
        template: None,
    };
    let docs: usize = lib.values().map(BTreeMap::len).sum();
    println!(
        "engine: one generation = prompts + workflow + validation against the backend's lists \
         ({docs} sample documents; {} checkpoints, {} LoRAs, {} VAEs); {iters} iterations each",
        lists.checkpoints.len(),
        lists.loras.len(),
        lists.vaes.len()
    );
    println!("generate (target p50 ≤ {TARGET_P50_US:.0} µs):");
    let comps = compositions(&lib);
    for (label, comp) in &comps {
        match generate(comp, &opts) {
            Ok(g) => {
                let p50 = time(label, iters, 1, || {
                    black_box(generate(black_box(comp), black_box(&opts)).ok());
                });
                println!(
                    "  {:<48} {} target {TARGET_P50_US:.0} µs; {} LoRAs, {} nodes, main prompt {} chars",
                    "",
                    if p50 <= TARGET_P50_US {
                        "meets"
                    } else {
                        "MISSES"
                    },
                    g.report.loras.len(),
                    g.workflow.as_object().map_or(0, |m| m.len()),
                    g.prompts.main.len()
                );
            }
            Err(e) => println!("  {label:<48} generate failed: {e}"),
        }
    }

    // Where the time of the largest composition goes.
    let (_, all) = &comps[2];
    println!("breakdown, all slots:");
    if let Ok(template) = workflow::template() {
        let negative = workflow::template_negative(template);
        time("build_prompts", iters, 1, || {
            black_box(build_prompts(black_box(all), negative));
        });
        let built = build_prompts(all, negative);
        time("build_workflow", iters, 1, || {
            black_box(workflow::build_workflow(
                template,
                black_box(all),
                &built.prompts,
                &opts,
            ));
        });
        if let Ok(g) = generate(all, &opts) {
            time("validate", iters, 1, || {
                black_box(validate(black_box(&g.workflow), &known).is_ok());
            });
        }
    }
    let vanilla = GenerationOptions {
        vanilla: true,
        ..opts.clone()
    };
    time("generate, vanilla", iters, 1, || {
        black_box(generate(black_box(all), &vanilla).ok());
    });

    println!("strengths sweep, all slots, slot 19 over 0.0..=1.0 by 0.1 (11 workflows):");
    match strengths_sweep(all, &opts, LoraSlot::Style, 0.0, 1.0, 0.1) {
        Ok(s) => {
            let p50 = time(
                "strengths_sweep (per sweep; /s = workflows)",
                SWEEP_ITERS,
                s.steps.len(),
                || {
                    black_box(
                        strengths_sweep(black_box(all), &opts, LoraSlot::Style, 0.0, 1.0, 0.1).ok(),
                    );
                },
            );
            println!(
                "  {:<48} {:.1} µs per workflow ({} steps)",
                "",
                p50 / s.steps.len() as f64,
                s.steps.len()
            );
        }
        Err(e) => println!("  strengths_sweep failed: {e}"),
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
