//! Synthetic prompt-asset libraries for benchmarks and tests: deterministic documents of every category, written to disk as a `data/` tree, plus empty LoRA trees.
//!
//! Everything is a pure function of `(category, index, seed)`, using a built-in splitmix64
//! generator, so a benchmark or test can rebuild exactly the same library anywhere. Ids do not
//! depend on the seed (`synth_character_000123`), so documents that refer to one another (looks,
//! presets) name entries that exist whenever every category has the same number of documents.

// The character schema's identity keys: the engine's list, so the two cannot drift.
use crate::engine::prompt::IDENTITY_KEYS;
use serde_json::{Value, json};
use std::fs;
use std::io;
use std::path::Path;

/// How large a synthetic library to build, and from which seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthSpec {
    /// Documents written into each of the nine category folders.
    pub per_category: usize,
    /// Seed for the tag and setting choices (ids do not depend on it).
    pub seed: u64,
}

/// The category keys `document` and `file_name` accept, in library order.
pub const CATEGORIES: [&str; 9] = [
    "characters",
    "looks",
    "outfits",
    "actions",
    "styles",
    "scenes",
    "detailers",
    "checkpoints",
    "presets",
];

/// The folder under the data root that holds a category (`outfits` live in `clothing`).
pub fn folder(category: &str) -> Option<&'static str> {
    Some(match category {
        "characters" => "characters",
        "looks" => "looks",
        "outfits" => "clothing",
        "actions" => "actions",
        "styles" => "styles",
        "scenes" => "scenes",
        "detailers" => "detailers",
        "checkpoints" => "checkpoints",
        "presets" => "presets",
        _ => return None,
    })
}

/// The LoRA folders `write_lora_tree` fills, relative to the LoRA root.
pub const LORA_DIRS: [&str; 6] = [
    "Illustrious/Looks",
    "Illustrious/Clothing",
    "Illustrious/Poses",
    "Illustrious/Styles",
    "Illustrious/Detailers",
    "Illustrious/Backgrounds",
];

// Common, safe-for-work Danbooru general tags (written with spaces, as prompt writers type them),
// grouped by the document field they suit: 123 tags in all.
const HAIR_COLOR: &[&str] = &[
    "black hair",
    "brown hair",
    "blonde hair",
    "red hair",
    "blue hair",
    "pink hair",
    "white hair",
    "grey hair",
    "green hair",
    "purple hair",
];
const HAIR_STYLE: &[&str] = &[
    "long hair",
    "short hair",
    "medium hair",
    "ponytail",
    "twintails",
    "braid",
    "bob cut",
    "hair bun",
    "blunt bangs",
    "sidelocks",
    "ahoge",
];
const EYES: &[&str] = &[
    "blue eyes",
    "red eyes",
    "green eyes",
    "brown eyes",
    "purple eyes",
    "yellow eyes",
    "aqua eyes",
    "grey eyes",
];
const EXPRESSION: &[&str] = &[
    "smile",
    "open mouth",
    "closed mouth",
    "blush",
    "grin",
    "closed eyes",
    "one eye closed",
    "light smile",
];
const POSE: &[&str] = &[
    "standing",
    "sitting",
    "walking",
    "looking at viewer",
    "looking back",
    "arms behind back",
    "hand up",
    "crossed arms",
    "head tilt",
    "upper body",
    "full body",
    "cowboy shot",
];
const HEADWEAR: &[&str] = &["hat", "beret", "hairband", "hair ribbon", "hair flower"];
const TOP: &[&str] = &[
    "shirt",
    "white shirt",
    "jacket",
    "hoodie",
    "sweater",
    "vest",
    "coat",
    "long sleeves",
    "short sleeves",
    "collared shirt",
];
const FULL_BODY: &[&str] = &["dress", "school uniform", "kimono", "apron", "overalls"];
const BOTTOM: &[&str] = &["skirt", "pleated skirt", "shorts", "pants", "long skirt"];
const LEGWEAR: &[&str] = &["thighhighs", "pantyhose", "socks", "kneehighs"];
const FOOTWEAR: &[&str] = &["boots", "shoes", "sneakers", "sandals", "loafers"];
const ACCESSORIES: &[&str] = &[
    "gloves", "scarf", "necklace", "earrings", "bracelet", "bag", "glasses", "choker",
];
const BACKGROUND: &[&str] = &[
    "outdoors", "indoors", "sky", "cloud", "tree", "flower", "water", "building", "city", "forest",
    "beach", "window", "grass",
];
const LIGHTING: &[&str] = &["day", "night", "sunset", "sunlight", "backlighting"];
const ART: &[&str] = &[
    "traditional media",
    "sketch",
    "monochrome",
    "greyscale",
    "chibi",
    "pixel art",
    "watercolor (medium)",
    "flat color",
];
const EFFECTS: &[&str] = &[
    "sparkle",
    "light particles",
    "depth of field",
    "blurry background",
    "lens flare",
    "motion blur",
];
const COLORS: &[&str] = &[
    "red", "blue", "green", "yellow", "black", "white", "pink", "purple", "orange", "brown",
];
const LABELS: &[&str] = &[
    "synthetic",
    "benchmark",
    "casual",
    "fantasy",
    "modern",
    "outdoor",
];

const SAMPLERS: &[&str] = &["euler_ancestral", "euler", "dpmpp_2m", "dpmpp_2m_sde"];
const CFGS: &[f64] = &[4.0, 4.5, 5.0, 5.5, 6.0, 7.0];
const SIZES: &[(u64, u64)] = &[(832, 1216), (1216, 832), (1024, 1024), (896, 1152)];
const QUALITY_POSITIVE: &str = "masterpiece, best quality, very aesthetic, absurdres";
const QUALITY_NEGATIVE: &str = "lowres, bad anatomy, bad hands, worst quality, low quality, jpeg artifacts, signature, watermark, blurry, nsfw";

/// splitmix64: tiny, fast and good enough to pick tags deterministically.
struct Rng(u64);

impl Rng {
    fn for_doc(category: &str, index: usize, seed: u64) -> Self {
        // FNV-1a of the category keeps categories apart; the index is spread by an odd constant.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in category.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut rng = Rng(seed ^ h ^ (index as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
        rng.next_u64();
        rng
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn pick<T: Copy + Default>(&mut self, items: &[T]) -> T {
        let i = self.below(items.len());
        items.get(i).copied().unwrap_or_default()
    }

    /// `n` distinct tags from `items`, comma-joined, in list order.
    fn tags(&mut self, items: &[&str], n: usize) -> String {
        let mut chosen: Vec<usize> = Vec::with_capacity(n);
        let want = n.min(items.len());
        while chosen.len() < want {
            let i = self.below(items.len());
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        chosen.sort_unstable();
        chosen
            .iter()
            .filter_map(|&i| items.get(i).copied())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Like `tags`, but empty about a third of the time (most optional fields are empty).
    fn maybe_tags(&mut self, items: &[&str], n: usize) -> String {
        if self.chance(35) {
            String::new()
        } else {
            self.tags(items, n)
        }
    }

    fn labels(&mut self) -> Vec<String> {
        let n = 1 + self.below(2);
        self.tags(LABELS, n)
            .split(", ")
            .map(str::to_string)
            .collect()
    }

    /// A LoRA block: about half the documents name a LoRA under `dir`.
    fn lora(&mut self, dir: &str, index: usize) -> Value {
        if self.chance(50) {
            let weight = 0.6 + 0.05 * self.below(9) as f64;
            let name = dir.rsplit('/').next().unwrap_or(dir).to_ascii_lowercase();
            json!({
                "lora_name": format!("{dir}/synth_{name}_{index:06}.safetensors"),
                "lora_weight": (weight * 100.0).round() / 100.0,
                "lora_triggers": format!("synth_{name}_{index}"),
            })
        } else {
            json!({ "lora_name": "", "lora_weight": 1.0, "lora_triggers": "" })
        }
    }
}

fn singular(category: &str) -> Option<&'static str> {
    Some(match category {
        "characters" => "character",
        "looks" => "look",
        "outfits" => "outfit",
        "actions" => "action",
        "styles" => "style",
        "scenes" => "scene",
        "detailers" => "detailer",
        "checkpoints" => "checkpoint",
        "presets" => "preset",
        _ => return None,
    })
}

/// The id of document `index` of a category; it does not depend on the seed. Every tenth
/// character gets a parenthesised qualifier, like `yuna_(ff10)`, to exercise the slug rule.
fn doc_id(category: &str, index: usize) -> String {
    match category {
        "characters" if index % 10 == 9 => format!("synth_character_{index:06}_(alt)"),
        "checkpoints" => {
            let family = if index % 3 == 2 {
                "Noob"
            } else {
                "Illustrious"
            };
            format!("{family}/synth_checkpoint_{index:06}.safetensors")
        }
        _ => format!(
            "synth_{}_{index:06}",
            singular(category).unwrap_or(category)
        ),
    }
}

fn display_name(category: &str, index: usize) -> String {
    let word = singular(category).unwrap_or(category);
    let mut title = String::with_capacity(word.len());
    let mut chars = word.chars();
    if let Some(first) = chars.next() {
        title.extend(first.to_uppercase());
        title.push_str(chars.as_str());
    }
    format!("Synth {title} {index}")
}

fn wardrobe(rng: &mut Rng, with_gloves: bool) -> Value {
    let one_piece = rng.chance(30);
    let mut w = serde_json::Map::new();
    let full_body = if one_piece {
        rng.tags(FULL_BODY, 1)
    } else {
        String::new()
    };
    w.insert("full_body".into(), json!(full_body));
    w.insert("headwear".into(), json!(rng.maybe_tags(HEADWEAR, 1)));
    let top = if one_piece {
        String::new()
    } else {
        rng.tags(TOP, 2)
    };
    w.insert("top".into(), json!(top));
    let bottom = if one_piece {
        String::new()
    } else {
        rng.tags(BOTTOM, 1)
    };
    w.insert("bottom".into(), json!(bottom));
    w.insert("legwear".into(), json!(rng.maybe_tags(LEGWEAR, 1)));
    w.insert("footwear".into(), json!(rng.tags(FOOTWEAR, 1)));
    w.insert("hands".into(), json!(""));
    if with_gloves {
        let gloves = if rng.chance(20) { "gloves" } else { "" };
        w.insert("gloves".into(), json!(gloves));
    }
    w.insert("accessories".into(), json!(rng.maybe_tags(ACCESSORIES, 2)));
    Value::Object(w)
}

fn character(rng: &mut Rng, index: usize) -> Value {
    let (count_tag, orientation) = match rng.below(4) {
        0 => ("1boy", "1M"),
        1 => ("2girls", "2F"),
        _ => ("1girl", "1F"),
    };
    let mut identity = serde_json::Map::new();
    for key in IDENTITY_KEYS {
        let value = match key {
            "base_specs" => format!("{count_tag}, original"),
            "hair" => format!("{}, {}", rng.pick(HAIR_COLOR), rng.tags(HAIR_STYLE, 2)),
            "eyes" => rng.tags(EYES, 1),
            "extra" => rng.maybe_tags(ACCESSORIES, 1),
            _ => String::new(),
        };
        identity.insert(key.into(), json!(value));
    }
    let mut outfits = serde_json::Map::new();
    outfits.insert("default".into(), wardrobe(rng, true));
    for extra in 1..=rng.below(3) {
        outfits.insert(format!("outfit_{extra}"), wardrobe(rng, true));
    }
    let mut doc = json!({
        "character_id": doc_id("characters", index),
        "character_name": display_name("characters", index),
        "identity": identity,
        "defaults": {
            "expression": rng.tags(EXPRESSION, 2),
            "pose": rng.tags(POSE, 1),
            "scene": rng.tags(BACKGROUND, 2),
        },
        "wardrobe": outfits,
        "styles": {
            "aesthetic": rng.maybe_tags(ART, 1),
            "primary_color": rng.pick(COLORS),
            "secondary_color": rng.pick(COLORS),
            "tertiary_color": rng.pick(COLORS),
        },
        "lora": rng.lora("Illustrious/Looks", index),
        "tags": rng.labels(),
    });
    // A duo always says so; single characters carry participants about half the time.
    if (orientation == "2F" || rng.chance(50))
        && let Some(obj) = doc.as_object_mut()
    {
        let solo = if orientation == "2F" { "false" } else { "true" };
        obj.insert(
            "participants".into(),
            json!({ "orientation": orientation, "solo_focus": solo }),
        );
    }
    doc
}

fn look(rng: &mut Rng, index: usize) -> Value {
    json!({
        "look_id": doc_id("looks", index),
        "look_name": display_name("looks", index),
        "character_id": doc_id("characters", index),
        "positive": format!("{}, {}, {}", rng.pick(HAIR_COLOR), rng.tags(EYES, 1), rng.tags(TOP, 2)),
        "negative": rng.maybe_tags(HAIR_STYLE, 1),
        "lora": rng.lora("Illustrious/Looks", index),
        "tags": rng.labels(),
    })
}

fn outfit(rng: &mut Rng, index: usize) -> Value {
    json!({
        "outfit_id": doc_id("outfits", index),
        "outfit_name": display_name("outfits", index),
        "wardrobe": wardrobe(rng, false),
        "lora": rng.lora("Illustrious/Clothing", index),
        "tags": rng.labels(),
    })
}

fn action(rng: &mut Rng, index: usize) -> Value {
    json!({
        "action_id": doc_id("actions", index),
        "action_name": display_name("actions", index),
        "action": {
            "full_body": rng.tags(POSE, 2),
            "additional": rng.maybe_tags(EFFECTS, 1),
            "head": rng.tags(EXPRESSION, 1),
            "eyes": "looking at viewer",
            "arms": "",
            "hands": "",
        },
        "lora": rng.lora("Illustrious/Poses", index),
        "tags": rng.labels(),
    })
}

fn style(rng: &mut Rng, index: usize) -> Value {
    json!({
        "style_id": doc_id("styles", index),
        "style_name": display_name("styles", index),
        "style": { "artist_name": "", "artistic_style": rng.tags(ART, 2) },
        "lora": rng.lora("Illustrious/Styles", index),
    })
}

fn scene(rng: &mut Rng, index: usize) -> Value {
    json!({
        "scene_id": doc_id("scenes", index),
        "scene_name": display_name("scenes", index),
        "scene": {
            "background": rng.tags(BACKGROUND, 3),
            "foreground": rng.maybe_tags(EFFECTS, 1),
            "furniture": "",
            "colors": "",
            "lighting": rng.tags(LIGHTING, 1),
            "theme": "",
        },
        "lora": rng.lora("Illustrious/Backgrounds", index),
        "tags": rng.labels(),
    })
}

fn detailer(rng: &mut Rng, index: usize) -> Value {
    let n = 1 + rng.below(3);
    let prompt: Vec<String> = rng
        .tags(EFFECTS, n)
        .split(", ")
        .map(str::to_string)
        .collect();
    json!({
        "detailer_id": doc_id("detailers", index),
        "detailer_name": display_name("detailers", index),
        "prompt": prompt,
        "focus": { "face": rng.chance(50), "hands": rng.chance(30) },
        "lora": rng.lora("Illustrious/Detailers", index),
    })
}

fn checkpoint(rng: &mut Rng, index: usize) -> Value {
    let sampler = rng.pick(SAMPLERS);
    let scheduler = if sampler.starts_with("dpmpp") {
        "karras"
    } else {
        "normal"
    };
    let vae = if rng.chance(20) {
        "sdxl_vae.safetensors"
    } else {
        "integrated"
    };
    json!({
        "checkpoint_path": doc_id("checkpoints", index),
        "checkpoint_name": display_name("checkpoints", index),
        "base_positive": QUALITY_POSITIVE,
        "base_negative": QUALITY_NEGATIVE,
        "steps": 20 + rng.below(16),
        "cfg": rng.pick(CFGS),
        "sampler_name": sampler,
        "scheduler": scheduler,
        "vae": vae,
    })
}

fn preset(rng: &mut Rng, index: usize) -> Value {
    // Each reference is this index's entry of that category, "__random__", or null.
    let mut reference = |category: &str, present: u64| -> Value {
        match rng.below(100) as u64 {
            r if r < present => json!(doc_id(category, index)),
            r if r < present + 10 => json!("__random__"),
            _ => Value::Null,
        }
    };
    let character = reference("characters", 80);
    let look = reference("looks", 20);
    let outfit = reference("outfits", 40);
    let action = reference("actions", 60);
    let style = reference("styles", 50);
    let scene = reference("scenes", 60);
    let detailer = reference("detailers", 30);
    let checkpoint = reference("checkpoints", 50);
    let fields: Vec<String> = if rng.chance(30) {
        Vec::new()
    } else {
        let mut f = vec!["identity::base_specs".to_string(), "identity::hair".into()];
        if rng.chance(70) {
            f.push("identity::eyes".into());
        }
        if rng.chance(50) {
            f.push("defaults::expression".into());
        }
        if outfit.is_null() {
            f.push("wardrobe::top".into());
            f.push("wardrobe::bottom".into());
        }
        f
    };
    let (width, height) = rng.pick(SIZES);
    let seed = if rng.chance(50) {
        Value::Null
    } else {
        json!(rng.next_u64() >> 12)
    };
    json!({
        "preset_id": doc_id("presets", index),
        "preset_name": display_name("presets", index),
        "character": character,
        "look": look,
        "outfit": outfit,
        "action": action,
        "style": style,
        "scene": scene,
        "detailer": detailer,
        "checkpoint": checkpoint,
        "fields": fields,
        "active_outfit": "default",
        "extra_positive": rng.maybe_tags(LIGHTING, 1),
        "extra_negative": "",
        "width": width,
        "height": height,
        "seed": seed,
        "tags": rng.labels(),
    })
}

/// One synthetic document of the category (category keys: characters looks outfits actions styles scenes detailers checkpoints presets), deterministic for (category, index, seed).
///
/// An unknown category gives `Value::Null`.
pub fn document(category: &str, index: usize, seed: u64) -> Value {
    let mut rng = Rng::for_doc(category, index, seed);
    match category {
        "characters" => character(&mut rng, index),
        "looks" => look(&mut rng, index),
        "outfits" => outfit(&mut rng, index),
        "actions" => action(&mut rng, index),
        "styles" => style(&mut rng, index),
        "scenes" => scene(&mut rng, index),
        "detailers" => detailer(&mut rng, index),
        "checkpoints" => checkpoint(&mut rng, index),
        "presets" => preset(&mut rng, index),
        _ => Value::Null,
    }
}

/// The file name (no directory) `write_library` uses for that document.
///
/// `<id>.json`, except checkpoints: their `checkpoint_path` with every character outside
/// `[A-Za-z0-9_]` replaced by `_`. Names do not depend on the seed.
pub fn file_name(category: &str, index: usize, seed: u64) -> String {
    let _ = seed;
    let id = doc_id(category, index);
    if category == "checkpoints" {
        let stem: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{stem}.json")
    } else {
        format!("{id}.json")
    }
}

/// Writes `per_category` documents into each category folder under `root` (characters, looks, clothing, actions, styles, scenes, detailers, checkpoints, presets), returns the number of files written.
pub fn write_library(root: &Path, spec: &SynthSpec) -> io::Result<usize> {
    let mut written = 0;
    for category in CATEGORIES {
        let dir = root.join(folder(category).unwrap_or(category));
        fs::create_dir_all(&dir)?;
        for index in 0..spec.per_category {
            let doc = document(category, index, spec.seed);
            let mut text = serde_json::to_string_pretty(&doc).map_err(io::Error::other)?;
            text.push('\n');
            fs::write(dir.join(file_name(category, index, spec.seed)), text)?;
            written += 1;
        }
    }
    Ok(written)
}

/// Writes `count` empty LoRA files (`.safetensors`) spread over `<root>/Illustrious/{Looks,Clothing,Poses,Styles,Detailers,Backgrounds}/` for listing benchmarks.
///
/// File `i` goes to folder `i % 6` as `synth_<folder>_<i>.safetensors`; returns `count`.
pub fn write_lora_tree(root: &Path, count: usize) -> io::Result<usize> {
    for dir in LORA_DIRS {
        fs::create_dir_all(root.join(dir))?;
    }
    for i in 0..count {
        let dir = LORA_DIRS[i % LORA_DIRS.len()];
        let name = dir.rsplit('/').next().unwrap_or(dir).to_ascii_lowercase();
        fs::write(
            root.join(dir)
                .join(format!("synth_{name}_{i:06}.safetensors")),
            b"",
        )?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const ID_NAME: [(&str, &str, &str); 9] = [
        ("characters", "character_id", "character_name"),
        ("looks", "look_id", "look_name"),
        ("outfits", "outfit_id", "outfit_name"),
        ("actions", "action_id", "action_name"),
        ("styles", "style_id", "style_name"),
        ("scenes", "scene_id", "scene_name"),
        ("detailers", "detailer_id", "detailer_name"),
        ("checkpoints", "checkpoint_path", "checkpoint_name"),
        ("presets", "preset_id", "preset_name"),
    ];

    fn slug(category: &str, id: &str) -> String {
        if category == "checkpoints" {
            id.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        } else {
            id.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        }
    }

    #[test]
    fn documents_are_deterministic_and_depend_on_the_seed() {
        for category in CATEGORIES {
            let mut differs = false;
            for index in 0..50 {
                let a = document(category, index, 7);
                assert_eq!(a, document(category, index, 7), "{category} {index}");
                assert_eq!(file_name(category, index, 7), file_name(category, index, 8));
                differs |= a != document(category, index, 8);
            }
            assert!(differs, "{category} ignores the seed");
        }
    }

    #[test]
    fn ids_slugs_and_file_names_are_unique() {
        for (category, id_field, _) in ID_NAME {
            let mut ids = HashSet::new();
            let mut slugs = HashSet::new();
            let mut files = HashSet::new();
            for index in 0..2000 {
                let doc = document(category, index, 42);
                let id = doc[id_field].as_str().unwrap().to_string();
                assert!(
                    slugs.insert(slug(category, &id)),
                    "{category}: slug of {id}"
                );
                assert!(files.insert(file_name(category, index, 42)));
                assert!(ids.insert(id));
            }
        }
        assert_eq!(
            document("characters", 9, 0)["character_id"],
            "synth_character_000009_(alt)"
        );
        assert_eq!(
            file_name("characters", 9, 0),
            "synth_character_000009_(alt).json"
        );
        assert_eq!(
            file_name("checkpoints", 1, 0),
            "Illustrious_synth_checkpoint_000001_safetensors.json"
        );
    }

    #[test]
    fn every_document_has_its_id_and_name_and_schema_shape() {
        for (category, id_field, name_field) in ID_NAME {
            for index in 0..200 {
                let doc = document(category, index, 3);
                let id = doc[id_field].as_str().unwrap();
                assert!(!id.is_empty(), "{category} {index}");
                assert!(!doc[name_field].as_str().unwrap().is_empty());
                if let Some(lora) = doc.get("lora") {
                    let name = lora["lora_name"].as_str().unwrap();
                    assert!(
                        name.is_empty() || name.starts_with("Illustrious/"),
                        "{name}"
                    );
                    assert!(lora["lora_weight"].is_number());
                }
                match category {
                    "characters" => {
                        assert_eq!(doc["identity"].as_object().unwrap().len(), 10);
                        let wardrobe = doc["wardrobe"].as_object().unwrap();
                        assert!(wardrobe.contains_key("default"));
                        assert!(wardrobe.values().all(|o| o.as_object().unwrap().len() == 9));
                    }
                    "outfits" => assert_eq!(doc["wardrobe"].as_object().unwrap().len(), 8),
                    "detailers" => assert!(!doc["prompt"].as_array().unwrap().is_empty()),
                    "checkpoints" => {
                        assert!(id.starts_with("Illustrious/") || id.starts_with("Noob/"));
                        assert!(id.ends_with(".safetensors"));
                    }
                    _ => {}
                }
            }
        }
        assert!(document("unknown", 0, 0).is_null());
    }

    #[test]
    fn tag_list_is_about_a_hundred_distinct_tags() {
        let groups: [&[&str]; 15] = [
            HAIR_COLOR,
            HAIR_STYLE,
            EYES,
            EXPRESSION,
            POSE,
            HEADWEAR,
            TOP,
            FULL_BODY,
            BOTTOM,
            LEGWEAR,
            FOOTWEAR,
            ACCESSORIES,
            BACKGROUND,
            LIGHTING,
            ART,
        ];
        let all: Vec<&str> = groups
            .iter()
            .flat_map(|g| g.iter().copied())
            .chain(EFFECTS.iter().copied())
            .collect();
        let distinct: HashSet<&str> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len());
        assert!((90..=130).contains(&all.len()), "{}", all.len());
    }

    #[test]
    fn write_library_writes_parseable_files_that_refer_to_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SynthSpec {
            per_category: 25,
            seed: 11,
        };
        assert_eq!(write_library(dir.path(), &spec).unwrap(), 9 * 25);
        let mut ids: Vec<HashSet<String>> = Vec::new();
        for (category, id_field, _) in ID_NAME {
            let folder = dir.path().join(folder(category).unwrap());
            let mut set = HashSet::new();
            let entries: Vec<_> = fs::read_dir(&folder).unwrap().collect();
            assert_eq!(entries.len(), 25, "{category}");
            for entry in entries {
                let text = fs::read_to_string(entry.unwrap().path()).unwrap();
                assert!(text.ends_with("}\n"));
                let doc: Value = serde_json::from_str(&text).unwrap();
                set.insert(doc[id_field].as_str().unwrap().to_string());
            }
            ids.push(set);
        }
        // Looks and presets only name documents that exist (or "__random__").
        let (chars, presets_dir) = (&ids[0], dir.path().join("presets"));
        for index in 0..25 {
            let look = document("looks", index, 11);
            assert!(chars.contains(look["character_id"].as_str().unwrap()));
        }
        for entry in fs::read_dir(presets_dir).unwrap() {
            let text = fs::read_to_string(entry.unwrap().path()).unwrap();
            let doc: Value = serde_json::from_str(&text).unwrap();
            for (position, (category, _, _)) in ID_NAME.iter().enumerate().take(8) {
                let key = match *category {
                    "characters" => "character",
                    "looks" => "look",
                    "outfits" => "outfit",
                    "actions" => "action",
                    "styles" => "style",
                    "scenes" => "scene",
                    "detailers" => "detailer",
                    _ => "checkpoint",
                };
                match &doc[key] {
                    Value::Null => {}
                    Value::String(s) if s == "__random__" => {}
                    Value::String(s) => assert!(ids[position].contains(s), "{key} {s}"),
                    other => panic!("{key}: {other}"),
                }
            }
        }
    }

    #[test]
    fn write_lora_tree_spreads_files_over_the_six_folders() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(write_lora_tree(dir.path(), 20).unwrap(), 20);
        let mut total = 0;
        for sub in LORA_DIRS {
            let n = fs::read_dir(dir.path().join(sub)).unwrap().count();
            assert!((3..=4).contains(&n), "{sub}: {n}");
            total += n;
        }
        assert_eq!(total, 20);
    }
}
