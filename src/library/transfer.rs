//! Turning one kind of entry into another: a character's wardrobe outfit into an outfit entry
//! and back, a character into a look and back, and between actions, scenes, styles and
//! detailers where their fields map. The mapping is one table (`RULES`, also in the README);
//! every source field with content that has no place in the new kind is reported, never
//! dropped silently. Pure: documents in, a document and a report out.

use crate::library::category::{Category, WARDROBE_KEYS};
use serde_json::{Map, Value};

/// What is turned into what: an entry of a category, or one outfit of a character's wardrobe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Entry(Category),
    /// One outfit of a character's wardrobe.
    Wardrobe,
}

impl Kind {
    pub fn key(self) -> &'static str {
        match self {
            Kind::Entry(c) => c.key(),
            Kind::Wardrobe => "wardrobe",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        if s == "wardrobe" {
            return Some(Kind::Wardrobe);
        }
        Category::parse(s).map(Kind::Entry)
    }

    pub fn title(self) -> &'static str {
        match self {
            Kind::Entry(c) => c.desc().singular,
            Kind::Wardrobe => "character's wardrobe outfit",
        }
    }

    /// The category whose documents hold this kind.
    pub fn category(self) -> Category {
        match self {
            Kind::Entry(c) => c,
            Kind::Wardrobe => Category::Characters,
        }
    }
}

/// One row of the mapping: source field(s) → target field. Several sources into one target
/// are joined with ", ". `wardrobe.*` means each wardrobe key of the outfit.
#[derive(Debug)]
pub struct Rule {
    pub from: Kind,
    pub to: Kind,
    pub fields: &'static [(&'static str, &'static str)],
    /// What the transfer is for, in a sentence (shown on the page and in the README).
    pub note: &'static str,
}

use Category::{Actions, Characters, Detailers, Looks, Outfits, Scenes, Styles};

const IDENTITY: [&str; 10] = [
    "identity.base_specs",
    "identity.hair",
    "identity.eyes",
    "identity.hands",
    "identity.arms",
    "identity.torso",
    "identity.pelvis",
    "identity.legs",
    "identity.feet",
    "identity.extra",
];

/// The mapping table. Each pair's `lora` and `tags` carry over unless the table says otherwise
/// (see `CARRY`).
pub const RULES: &[Rule] = &[
    Rule {
        from: Kind::Wardrobe,
        to: Kind::Entry(Outfits),
        fields: &[("wardrobe.*", "wardrobe.*"), ("tags", "tags")],
        note: "one outfit of a character's wardrobe becomes an outfit anyone can wear",
    },
    Rule {
        from: Kind::Entry(Outfits),
        to: Kind::Wardrobe,
        fields: &[("wardrobe.*", "wardrobe.*")],
        note: "an outfit joins a character's wardrobe under a name you choose",
    },
    Rule {
        from: Kind::Entry(Characters),
        to: Kind::Entry(Looks),
        fields: &[
            ("$id", "character_id"),
            ("identity.base_specs", "positive"),
            ("identity.hair", "positive"),
            ("identity.eyes", "positive"),
            ("identity.hands", "positive"),
            ("identity.arms", "positive"),
            ("identity.torso", "positive"),
            ("identity.pelvis", "positive"),
            ("identity.legs", "positive"),
            ("identity.feet", "positive"),
            ("identity.extra", "positive"),
            ("lora", "lora"),
            ("tags", "tags"),
        ],
        note: "a character's appearance becomes a look of that character",
    },
    Rule {
        from: Kind::Entry(Looks),
        to: Kind::Entry(Characters),
        fields: &[
            ("positive", "identity.base_specs"),
            ("lora", "lora"),
            ("tags", "tags"),
        ],
        note: "a look becomes a character of its own",
    },
    Rule {
        from: Kind::Entry(Actions),
        to: Kind::Entry(Detailers),
        fields: &[
            ("action.full_body", "prompt"),
            ("action.additional", "prompt"),
            ("action.head", "prompt"),
            ("action.eyes", "prompt"),
            ("action.arms", "prompt"),
            ("action.hands", "prompt"),
            ("lora", "lora"),
            ("tags", "tags"),
        ],
        note: "an action's tags become a detailer's prompt",
    },
    Rule {
        from: Kind::Entry(Detailers),
        to: Kind::Entry(Actions),
        fields: &[
            ("prompt", "action.additional"),
            ("lora", "lora"),
            ("tags", "tags"),
        ],
        note: "a detailer's prompt becomes an action's additional tags",
    },
    Rule {
        from: Kind::Entry(Scenes),
        to: Kind::Entry(Styles),
        fields: &[
            ("scene.theme", "style.artistic_style"),
            ("scene.colors", "style.artistic_style"),
            ("scene.lighting", "style.artistic_style"),
            ("lora", "lora"),
            ("tags", "tags"),
        ],
        note: "a scene's look (theme, colours, lighting) becomes a style",
    },
    Rule {
        from: Kind::Entry(Styles),
        to: Kind::Entry(Scenes),
        fields: &[
            ("style.artistic_style", "scene.theme"),
            ("lora", "lora"),
            ("tags", "tags"),
        ],
        note: "a style becomes a scene's theme",
    },
    Rule {
        from: Kind::Entry(Styles),
        to: Kind::Entry(Detailers),
        fields: &[
            ("style.artistic_style", "prompt"),
            ("lora", "lora"),
            ("tags", "tags"),
        ],
        note: "a style's tags become a detailer's prompt",
    },
    Rule {
        from: Kind::Entry(Detailers),
        to: Kind::Entry(Styles),
        fields: &[
            ("prompt", "style.artistic_style"),
            ("lora", "lora"),
            ("tags", "tags"),
        ],
        note: "a detailer's prompt becomes a style",
    },
    Rule {
        from: Kind::Entry(Scenes),
        to: Kind::Entry(Detailers),
        fields: &[
            ("scene.lighting", "prompt"),
            ("scene.colors", "prompt"),
            ("lora", "lora"),
            ("tags", "tags"),
        ],
        note: "a scene's lighting and colours become a detailer's prompt",
    },
];

/// The rule for a pair, if the pair is offered.
pub fn rule(from: Kind, to: Kind) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.from == from && r.to == to)
}

/// The kinds `from` can become.
pub fn targets(from: Kind) -> Vec<Kind> {
    RULES
        .iter()
        .filter(|r| r.from == from)
        .map(|r| r.to)
        .collect()
}

/// What a transfer made.
#[derive(Clone, Debug, PartialEq)]
pub struct Transferred {
    /// The new document (for `Kind::Wardrobe`: the whole character, its wardrobe grown).
    pub doc: Map<String, Value>,
    /// (source field, target field) pairs that carried content.
    pub mapped: Vec<(String, String)>,
    /// Source fields with content that have no place in the new kind, with their text.
    pub unmapped: Vec<(String, String)>,
}

/// The value at a dotted path.
fn at<'v>(doc: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    let mut parts = path.split('.');
    let mut cur = doc.get(parts.next()?)?;
    for p in parts {
        cur = cur.get(p)?;
    }
    Some(cur)
}

/// A value as prompt text ("" for nothing).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Array(a) => a
            .iter()
            .map(text)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Object(m) => {
            if m.values().all(|x| text(x).is_empty()) {
                String::new()
            } else {
                Value::Object(m.clone()).to_string()
            }
        }
    }
}

fn set(doc: &mut Map<String, Value>, path: &str, v: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or(path);
    let mut cur = doc;
    for p in parts {
        let next = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(m) = next else { return };
        cur = m;
    }
    cur.insert(last.to_string(), v);
}

/// Adds `add` (prompt text) to the field at `path`: joined for text, split into items for the
/// detailer's `prompt` list.
fn append(doc: &mut Map<String, Value>, path: &str, add: &str) {
    if path == "prompt" {
        let mut list: Vec<Value> = at(doc, path)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for t in add.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if !list.iter().any(|x| x.as_str() == Some(t)) {
                list.push(Value::String(t.to_string()));
            }
        }
        set(doc, path, Value::Array(list));
        return;
    }
    let cur = at(doc, path).map(text).unwrap_or_default();
    let joined = if cur.is_empty() {
        add.to_string()
    } else {
        format!("{cur}, {add}")
    };
    set(doc, path, Value::String(joined));
}

/// The fields of a kind that hold content the user wrote, as dotted paths (what could be lost).
fn content_fields(kind: Kind, doc: &Map<String, Value>, part: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    match kind {
        Kind::Wardrobe => {
            for k in WARDROBE_KEYS {
                out.push(format!("wardrobe.{k}"));
            }
            out.push("tags".into());
            let _ = part;
        }
        Kind::Entry(c) => {
            let d = c.desc();
            for s in d.schema {
                for f in s.fields {
                    match s.key {
                        Some(sec) => out.push(format!("{sec}.{}", f.key)),
                        None => out.push(f.key.to_string()),
                    }
                }
            }
            // Unknown keys the schema does not list are content too.
            for k in doc.keys() {
                let known = d.schema.iter().any(|s| {
                    s.key == Some(k.as_str())
                        || (s.key.is_none() && s.fields.iter().any(|f| f.key == k))
                });
                if !known && k != d.id_field && k != d.name_field {
                    out.push(k.clone());
                }
            }
        }
    }
    out
}

/// The source as the rule reads it: for a wardrobe outfit, `wardrobe.*` is that outfit.
fn source_view(
    from: Kind,
    src: &Map<String, Value>,
    part: Option<&str>,
) -> Result<Map<String, Value>, String> {
    match from {
        Kind::Wardrobe => {
            let name = part.ok_or("name the wardrobe outfit to transfer")?;
            let w = src
                .get("wardrobe")
                .and_then(Value::as_object)
                .ok_or("the character has no wardrobe")?;
            let outfit = if w.values().any(Value::is_object) {
                w.get(name)
                    .and_then(Value::as_object)
                    .ok_or_else(|| format!("the character has no outfit '{name}'"))?
                    .clone()
            } else if name == "default" {
                w.clone()
            } else {
                return Err(format!("the character has no outfit '{name}'"));
            };
            let mut view = Map::new();
            view.insert("wardrobe".into(), Value::Object(outfit));
            if let Some(t) = src.get("tags") {
                view.insert("tags".into(), t.clone());
            }
            Ok(view)
        }
        Kind::Entry(_) => Ok(src.clone()),
    }
}

/// Turns `src` (an entry of `from`'s category; for `Kind::Wardrobe` the character, with the
/// outfit named by `part`) into a document of `to`. `id` and `name` are the new entry's. For
/// `to == Kind::Wardrobe`, `into` is the character receiving the outfit and `part` its name
/// there.
pub fn transfer(
    from: Kind,
    src: &Map<String, Value>,
    part: Option<&str>,
    to: Kind,
    id_name: (&str, &str),
    into: Option<&Map<String, Value>>,
) -> Result<Transferred, String> {
    let rule = rule(from, to)
        .ok_or_else(|| format!("a {} cannot be turned into a {}", from.title(), to.title()))?;
    let view = source_view(from, src, if from == Kind::Wardrobe { part } else { None })?;
    let src_id = {
        let d = from.category().desc();
        src.get(d.id_field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut out = Map::new();
    let (id, name) = id_name;
    if to != Kind::Wardrobe {
        let d = to.category().desc();
        out.insert(d.id_field.into(), Value::String(id.to_string()));
        out.insert(d.name_field.into(), Value::String(name.to_string()));
    }
    let mut mapped = Vec::new();
    let mut used: Vec<String> = Vec::new();
    for (f, t) in rule.fields {
        if *f == "$id" {
            out.insert((*t).to_string(), Value::String(src_id.clone()));
            continue;
        }
        if *f == "wardrobe.*" {
            for k in WARDROBE_KEYS {
                let from_path = format!("wardrobe.{k}");
                let v = at(&view, &from_path).map(text).unwrap_or_default();
                set(&mut out, &from_path, Value::String(v.clone()));
                used.push(from_path.clone());
                if !v.is_empty() {
                    mapped.push((from_path.clone(), from_path));
                }
            }
            continue;
        }
        used.push((*f).to_string());
        let Some(v) = at(&view, f) else { continue };
        match (*f, *t) {
            // Whole values that keep their shape.
            ("lora", "lora") | ("tags", "tags") => {
                if !text(v).is_empty() {
                    out.insert((*t).to_string(), v.clone());
                    mapped.push(((*f).to_string(), (*t).to_string()));
                }
            }
            _ => {
                let s = text(v);
                if !s.is_empty() {
                    append(&mut out, t, &s);
                    mapped.push(((*f).to_string(), (*t).to_string()));
                }
            }
        }
    }
    let unmapped: Vec<(String, String)> = content_fields(from, &view, part)
        .into_iter()
        .filter(|f| !used.contains(f))
        .filter_map(|f| {
            let v = at(&view, &f).map(text).unwrap_or_default();
            (!v.is_empty()).then_some((f, v))
        })
        .collect();
    if to == Kind::Wardrobe {
        let mut doc = into
            .ok_or("choose the character whose wardrobe receives the outfit")?
            .clone();
        let outfit_name = part
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .ok_or("name the outfit")?;
        let outfit = out
            .get("wardrobe")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let w = doc
            .entry("wardrobe")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(map) = w else {
            return Err("the character's wardrobe is not an object".into());
        };
        if !map.is_empty() && !map.values().any(Value::is_object) {
            let flat = std::mem::take(map);
            map.insert("default".into(), Value::Object(flat));
        }
        if map.contains_key(outfit_name) {
            return Err(format!(
                "the character already has an outfit '{outfit_name}'"
            ));
        }
        map.insert(outfit_name.to_string(), outfit);
        return Ok(Transferred {
            doc,
            mapped,
            unmapped,
        });
    }
    if to == Kind::Entry(Outfits) {
        // Every wardrobe key is present, as the outfit schema has them.
        for k in WARDROBE_KEYS {
            let p = format!("wardrobe.{k}");
            if at(&out, &p).is_none() {
                set(&mut out, &p, Value::String(String::new()));
            }
        }
    }
    if to == Kind::Entry(Detailers) && !out.contains_key("prompt") {
        out.insert("prompt".into(), Value::Array(Vec::new()));
    }
    Ok(Transferred {
        doc: out,
        mapped,
        unmapped,
    })
}

/// The catch-all field of a kind: where the user may ask unmapped text to go.
pub fn catch_all(to: Kind) -> Option<&'static str> {
    match to {
        Kind::Entry(Characters) => Some("identity.extra"),
        Kind::Entry(Looks) => Some("positive"),
        Kind::Entry(Outfits) | Kind::Wardrobe => Some("wardrobe.accessories"),
        Kind::Entry(Actions) => Some("action.additional"),
        Kind::Entry(Styles) => Some("style.artistic_style"),
        Kind::Entry(Scenes) => Some("scene.theme"),
        Kind::Entry(Detailers) => Some("prompt"),
        _ => None,
    }
}

/// Puts the unmapped text into the catch-all field (when the user asks for it).
pub fn keep_unmapped(t: &mut Transferred, to: Kind, outfit: Option<&str>) {
    let Some(field) = catch_all(to) else { return };
    let text: Vec<String> = t
        .unmapped
        .iter()
        .filter(|(f, _)| f != "lora" && !f.starts_with("lora.") && f != "tags")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.starts_with('{'))
        .collect();
    if text.is_empty() {
        return;
    }
    let joined = text.join(", ");
    match (to, outfit) {
        (Kind::Wardrobe, Some(o)) => {
            let path = format!("wardrobe.{o}.{}", field.trim_start_matches("wardrobe."));
            append(&mut t.doc, &path, &joined);
        }
        _ => append(&mut t.doc, field, &joined),
    }
    t.unmapped.retain(|(f, v)| {
        f == "lora" || f.starts_with("lora.") || f == "tags" || v.starts_with('{')
    });
}

/// Every field a rule names must be a field of its kinds (checked by a test, so the table
/// cannot drift from the schemas).
pub fn rule_fields_exist(r: &Rule) -> Result<(), String> {
    let known = |k: Kind, path: &str| -> bool {
        if path == "$id" || path == "wardrobe.*" {
            return true;
        }
        match k {
            Kind::Wardrobe => path == "tags",
            Kind::Entry(c) => c.desc().schema.iter().any(|s| {
                s.fields.iter().any(|f| match s.key {
                    Some(sec) => path == format!("{sec}.{}", f.key),
                    None => path == f.key,
                })
            }),
        }
    };
    for (f, t) in r.fields {
        if !known(r.from, f) {
            return Err(format!("{} has no field {f}", r.from.key()));
        }
        if !known(r.to, t) {
            return Err(format!("{} has no field {t}", r.to.key()));
        }
    }
    Ok(())
}

/// The identity fields a character → look transfer joins (for the README table).
pub fn identity_fields() -> &'static [&'static str] {
    &IDENTITY
}

/// The mapping table as Markdown, one row per pair (the README holds this text; a test keeps
/// them equal). Several sources into one target are listed together, joined with ", ".
pub fn markdown() -> String {
    let mut out =
        String::from("| from | to | fields (source → target) | what for |\n|---|---|---|---|\n");
    for r in RULES {
        let mut targets: Vec<(&str, Vec<&str>)> = Vec::new();
        for (f, t) in r.fields {
            match targets.iter_mut().find(|(tt, _)| tt == t) {
                Some((_, fs)) => fs.push(f),
                None => targets.push((t, vec![f])),
            }
        }
        let fields: Vec<String> = targets
            .iter()
            .map(|(t, fs)| {
                let fs: Vec<String> = fs.iter().map(|f| format!("`{f}`")).collect();
                format!("{} → `{t}`", fs.join(" + "))
            })
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.from.title(),
            r.to.title(),
            fields.join("; "),
            r.note
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn tifa() -> Map<String, Value> {
        obj(json!({
            "character_id": "tifa_lockhart",
            "character_name": "Tifa Lockhart",
            "identity": {"base_specs": "1girl, tifa lockhart", "hair": "black hair, long hair",
                         "eyes": "red eyes", "hands": ""},
            "defaults": {"expression": "smile"},
            "wardrobe": {
                "default": {"top": "white tank top", "bottom": "black skirt", "gloves": "", "hands": "bandages"},
                "nibelheim": {"headwear": "cowboy hat", "top": "brown vest"}
            },
            "styles": {"primary_color": "black"},
            "lora": {"lora_name": "Illustrious/Looks/tifa.safetensors", "lora_weight": 0.8},
            "tags": ["final fantasy"],
            "mood": "cheerful"
        }))
    }

    #[test]
    fn the_readme_holds_the_mapping_table() {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&markdown()),
            "README.md's transfer table differs from RULES; paste this in:\n{}",
            markdown()
        );
    }

    #[test]
    fn every_rule_names_real_fields_and_no_pair_repeats() {
        for r in RULES {
            rule_fields_exist(r).unwrap();
            assert_eq!(
                RULES
                    .iter()
                    .filter(|x| x.from == r.from && x.to == r.to)
                    .count(),
                1
            );
            assert_ne!(r.from, r.to);
        }
        assert!(rule(Kind::Entry(Actions), Kind::Entry(Scenes)).is_none());
        assert_eq!(
            targets(Kind::Entry(Detailers)),
            [Kind::Entry(Actions), Kind::Entry(Styles)]
        );
    }

    #[test]
    fn a_wardrobe_outfit_becomes_an_outfit() {
        let t = transfer(
            Kind::Wardrobe,
            &tifa(),
            Some("default"),
            Kind::Entry(Outfits),
            ("tifa_lockhart_default", "Tifa Lockhart (default)"),
            None,
        )
        .unwrap();
        assert_eq!(t.doc["outfit_id"], "tifa_lockhart_default");
        assert_eq!(t.doc["outfit_name"], "Tifa Lockhart (default)");
        assert_eq!(t.doc["wardrobe"]["top"], "white tank top");
        assert_eq!(t.doc["wardrobe"]["hands"], "bandages");
        assert_eq!(t.doc["wardrobe"]["footwear"], "", "every key present");
        assert_eq!(t.doc["tags"], json!(["final fantasy"]));
        assert!(
            t.doc.get("lora").is_none(),
            "the character's LoRA stays with her"
        );
        assert!(t.unmapped.is_empty(), "{:?}", t.unmapped);
        assert!(
            t.mapped
                .contains(&("wardrobe.top".into(), "wardrobe.top".into()))
        );
        let err = transfer(
            Kind::Wardrobe,
            &tifa(),
            Some("summer"),
            Kind::Entry(Outfits),
            ("x", "x"),
            None,
        )
        .unwrap_err();
        assert!(err.contains("no outfit 'summer'"), "{err}");
    }

    #[test]
    fn an_outfit_joins_a_wardrobe_and_a_flat_one_is_nested_first() {
        let maid = obj(json!({
            "outfit_id": "maid", "outfit_name": "Maid",
            "wardrobe": {"top": "maid apron", "headwear": "maid headdress"},
            "lora": {"lora_name": "Illustrious/Clothing/maid.safetensors"},
            "tags": ["uniform"]
        }));
        let t = transfer(
            Kind::Entry(Outfits),
            &maid,
            Some("maid"),
            Kind::Wardrobe,
            ("", ""),
            Some(&tifa()),
        )
        .unwrap();
        assert_eq!(t.doc["wardrobe"]["maid"]["top"], "maid apron");
        assert_eq!(t.doc["wardrobe"]["default"]["top"], "white tank top");
        assert_eq!(t.doc["character_id"], "tifa_lockhart");
        let lost: Vec<&str> = t.unmapped.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(lost, ["lora", "tags"], "shown, not dropped");
        let flat = obj(json!({"character_id": "a", "wardrobe": {"top": "shirt"}}));
        let t = transfer(
            Kind::Entry(Outfits),
            &maid,
            Some("maid"),
            Kind::Wardrobe,
            ("", ""),
            Some(&flat),
        )
        .unwrap();
        assert_eq!(t.doc["wardrobe"]["default"]["top"], "shirt");
        assert_eq!(t.doc["wardrobe"]["maid"]["headwear"], "maid headdress");
        let twice = transfer(
            Kind::Entry(Outfits),
            &maid,
            Some("default"),
            Kind::Wardrobe,
            ("", ""),
            Some(&tifa()),
        );
        assert!(twice.unwrap_err().contains("already has an outfit"));
    }

    #[test]
    fn a_character_becomes_a_look_and_a_look_a_character() {
        let t = transfer(
            Kind::Entry(Characters),
            &tifa(),
            None,
            Kind::Entry(Looks),
            ("tifa_look", "Tifa (look)"),
            None,
        )
        .unwrap();
        assert_eq!(t.doc["character_id"], "tifa_lockhart");
        assert_eq!(
            t.doc["positive"],
            "1girl, tifa lockhart, black hair, long hair, red eyes"
        );
        assert_eq!(t.doc["lora"]["lora_weight"], 0.8);
        let lost: Vec<&str> = t.unmapped.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            lost,
            [
                "defaults.expression",
                "wardrobe",
                "styles.primary_color",
                "mood"
            ]
        );
        let back = transfer(
            Kind::Entry(Looks),
            &t.doc,
            None,
            Kind::Entry(Characters),
            ("tifa2", "Tifa 2"),
            None,
        )
        .unwrap();
        assert_eq!(back.doc["character_id"], "tifa2");
        assert_eq!(
            back.doc["identity"]["base_specs"],
            "1girl, tifa lockhart, black hair, long hair, red eyes"
        );
        let lost: Vec<&str> = back.unmapped.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(lost, ["character_id"]);
    }

    #[test]
    fn the_other_pairs_map_what_fits_and_report_the_rest() {
        type Case = (
            Category,
            Value,
            Category,
            &'static str,
            Value,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                Actions,
                json!({"action_id": "a", "action": {"full_body": "standing", "hands": "peace sign"}}),
                Detailers,
                "prompt",
                json!(["standing", "peace sign"]),
                vec![],
            ),
            (
                Detailers,
                json!({"detailer_id": "d", "prompt": ["detailed eyes", "sparkle"], "focus": {"face": true}}),
                Actions,
                "action.additional",
                json!("detailed eyes, sparkle"),
                vec!["focus.face"],
            ),
            (
                Scenes,
                json!({"scene_id": "s", "scene": {"background": "beach", "lighting": "sunset", "colors": "orange"}}),
                Styles,
                "style.artistic_style",
                json!("orange, sunset"),
                vec!["scene.background"],
            ),
            (
                Styles,
                json!({"style_id": "s", "style": {"artist_name": "wlop", "artistic_style": "watercolor"}}),
                Scenes,
                "scene.theme",
                json!("watercolor"),
                vec!["style.artist_name"],
            ),
            (
                Styles,
                json!({"style_id": "s", "style": {"artistic_style": "cel shading, flat color"}}),
                Detailers,
                "prompt",
                json!(["cel shading", "flat color"]),
                vec![],
            ),
            (
                Scenes,
                json!({"scene_id": "s", "scene": {"lighting": "rim light", "furniture": "bed"}}),
                Detailers,
                "prompt",
                json!(["rim light"]),
                vec!["scene.furniture"],
            ),
        ];
        for (from, src, to, field, want, lost) in cases {
            let t = transfer(
                Kind::Entry(from),
                &obj(src),
                None,
                Kind::Entry(to),
                ("n", "N"),
                None,
            )
            .unwrap();
            assert_eq!(at(&t.doc, field), Some(&want), "{from:?} → {to:?}");
            let got: Vec<&str> = t.unmapped.iter().map(|(f, _)| f.as_str()).collect();
            assert_eq!(got, lost, "{from:?} → {to:?}");
            assert_eq!(t.doc[to.desc().id_field], "n");
        }
    }

    #[test]
    fn unmapped_text_can_be_kept_in_the_catch_all_field() {
        let mut t = transfer(
            Kind::Entry(Scenes),
            &obj(
                json!({"scene_id": "s", "scene": {"background": "beach", "lighting": "sunset"},
                        "lora": {"lora_name": "x"}}),
            ),
            None,
            Kind::Entry(Styles),
            ("n", "N"),
            None,
        )
        .unwrap();
        keep_unmapped(&mut t, Kind::Entry(Styles), None);
        assert_eq!(t.doc["style"]["artistic_style"], "sunset, beach");
        assert!(t.unmapped.is_empty());
    }
}
