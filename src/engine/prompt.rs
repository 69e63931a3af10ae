//! Prompt building: turns a composition of library documents into the main, face, hand and
//! negative prompts, with an explanation of where every tag came from and why any tag was removed.
//!
//! Order of the main prompt (each step only when its document/field is present and selected):
//! 1. checkpoint `base_positive`;
//! 2. participants: `participants.orientation` tags and `solo_focus` — from the action when the
//!    action has a `participants` object (multi-person poses), else from the character; `(solo:1.2)`
//!    when a character is present and neither has one;
//! 3. character, through field selection (below): `special::name` (`character_name`, else
//!    `character_id`), `identity::*`, `defaults::{expression,pose,scene}`, `wardrobe::*` of the
//!    active outfit — the outfit document's `wardrobe` replaces it when an outfit is composed —,
//!    `styles::*` (colours as written), `special::tags`, `lora::lora_triggers`;
//! 4. outfit tags and triggers; look `positive`, tags, triggers; action
//!    `action.{full_body,additional,head,eyes,arms,hands}`; style `by <artist>` for each artist
//!    `artist_name` lists (kept as is when it already starts with `by `) and `artistic_style`; scene
//!    `scene.{background,foreground,furniture,colors,lighting,theme}`; detailer `prompt` (a list or
//!    a string); each of these documents' `tags` and `lora.lora_triggers` follow its own fields;
//! 5. the generator's `extras`, each read by its category the same way (an outfit in extras adds
//!    all its wardrobe fields; characters, checkpoints and presets in extras are ignored with a
//!    warning);
//! 6. `<primary_color> simple background` (just `simple background` when the character has no
//!    primary colour) when `append_background` is set and no scene is composed (slot or extras);
//! 7. the page's extra positive prompt.
//!
//! Field selection applies to the character view (character sections plus the wardrobe that is in
//! effect, whichever document supplies it): `selected_fields` when non-empty, else the saved
//! `default_fields` when non-empty, else every field. Other documents always contribute all their
//! fields. When an action is composed (slot or extras) the character's `defaults::pose` is dropped,
//! and when a scene is composed its `defaults::scene` is dropped (the composed document supplies
//! them). An empty field list counts as "not given". When a look names a LoRA it displaces the
//! character's LoRA in slot 16, so the character's `lora::lora_triggers` are dropped too.
//!
//! Face prompt: character name and expression (when selected), the action's head and eyes, and the
//! prompt of every detailer with `focus.face`. Hand prompt: the first selected, non-empty of
//! wardrobe gloves, wardrobe hands, identity hands; the action's arms and hands; the prompt of every
//! detailer with `focus.hands`. A detailer without `focus` feeds only the main prompt.
//!
//! Negative: every look's `negative` (prepended), the template's node-7 text, the checkpoint's
//! `base_negative`, the page's extra negative prompt. Last: cross-dedup of main against negative,
//! then within-prompt dedup of all four prompts (rules in `tags`).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::doc::{self, Category, FieldShape};
use super::tags::{self, TagInfo, WithinReason};

pub const IDENTITY_KEYS: [&str; 10] = [
    "base_specs",
    "hair",
    "eyes",
    "hands",
    "arms",
    "torso",
    "pelvis",
    "legs",
    "feet",
    "extra",
];
pub const DEFAULTS_KEYS: [&str; 3] = ["expression", "pose", "scene"];
pub const WARDROBE_KEYS: [&str; 9] = [
    "full_body",
    "headwear",
    "top",
    "bottom",
    "legwear",
    "footwear",
    "hands",
    "gloves",
    "accessories",
];
pub const STYLES_KEYS: [&str; 4] = [
    "aesthetic",
    "primary_color",
    "secondary_color",
    "tertiary_color",
];
pub const SPECIAL_KEYS: [&str; 2] = ["name", "tags"];
pub const LORA_KEYS: [&str; 1] = ["lora_triggers"];
pub const ACTION_KEYS: [&str; 6] = ["full_body", "additional", "head", "eyes", "arms", "hands"];
pub const SCENE_KEYS: [&str; 6] = [
    "background",
    "foreground",
    "furniture",
    "colors",
    "lighting",
    "theme",
];

/// Every selectable `section::key` field, in prompt order.
pub const FIELD_SECTIONS: [(&str, &[&str]); 6] = [
    ("identity", &IDENTITY_KEYS),
    ("defaults", &DEFAULTS_KEYS),
    ("wardrobe", &WARDROBE_KEYS),
    ("styles", &STYLES_KEYS),
    ("special", &SPECIAL_KEYS),
    ("lora", &LORA_KEYS),
];

/// One library document: its category and slug (for provenance) and its JSON as stored.
#[derive(Clone, Copy, Debug)]
pub struct Doc<'a> {
    pub category: &'a str,
    pub slug: &'a str,
    pub data: &'a Value,
}

/// Everything one generation combines. Slots hold at most one document each; `extras` is the
/// generator's mix-and-match list.
#[derive(Clone, Debug, Default)]
pub struct Composition<'a> {
    pub character: Option<Doc<'a>>,
    pub look: Option<Doc<'a>>,
    pub outfit: Option<Doc<'a>>,
    pub action: Option<Doc<'a>>,
    pub style: Option<Doc<'a>>,
    pub scene: Option<Doc<'a>>,
    pub detailer: Option<Doc<'a>>,
    pub checkpoint: Option<Doc<'a>>,
    pub extras: Vec<Doc<'a>>,
    pub selected_fields: &'a [String],
    pub default_fields: &'a [String],
    pub active_outfit: Option<&'a str>,
    pub extra_positive: &'a str,
    pub extra_negative: &'a str,
    pub append_background: bool,
    /// The page's category: its document wins slot 19 when several compete (see `workflow`).
    pub target: Option<Category>,
}

impl<'a> Composition<'a> {
    /// Puts `doc` into the slot of `category`; presets (and unknown categories) go nowhere.
    pub fn set_slot(&mut self, category: Category, doc: Doc<'a>) -> bool {
        let slot = match category {
            Category::Characters => &mut self.character,
            Category::Looks => &mut self.look,
            Category::Outfits => &mut self.outfit,
            Category::Actions => &mut self.action,
            Category::Styles => &mut self.style,
            Category::Scenes => &mut self.scene,
            Category::Detailers => &mut self.detailer,
            Category::Checkpoints => &mut self.checkpoint,
            Category::Presets => return false,
        };
        *slot = Some(doc);
        true
    }

    fn extras_of(&self, c: Category) -> impl Iterator<Item = &Doc<'a>> {
        self.extras
            .iter()
            .filter(move |d| Category::parse(d.category) == Some(c))
    }
}

/// The four prompt strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompts {
    pub main: String,
    pub face: String,
    pub hand: String,
    pub negative: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKind {
    Main,
    Face,
    Hand,
    Negative,
}

/// Which list decided the character's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldSelection {
    Selected,
    Defaults,
    All,
}

/// A tag in a final prompt and where it came from, e.g. `characters/tifa_lockhart identity::hair`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagSource {
    pub tag: String,
    pub source: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalKind {
    /// Repeats a tag already in the prompt.
    Duplicate,
    /// Replaced by a later, more explicitly weighted form of the same tag.
    Outranked,
    /// Cancelled against the same tag on the other side (positive vs negative).
    CrossCancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedTag {
    pub prompt: PromptKind,
    pub tag: String,
    pub source: String,
    pub reason: RemovalKind,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub field_selection: FieldSelection,
    pub main: Vec<TagSource>,
    pub face: Vec<TagSource>,
    pub hand: Vec<TagSource>,
    pub negative: Vec<TagSource>,
    pub removed: Vec<RemovedTag>,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltPrompts {
    pub prompts: Prompts,
    pub explanation: Explanation,
}

/// Where a tag came from: a document's field, or a page/template input (empty category).
#[derive(Clone, Copy, Debug)]
struct Origin<'a> {
    category: &'a str,
    slug: &'a str,
    section: &'static str,
    key: &'static str,
    outfit: Option<&'a str>,
}

impl<'a> Origin<'a> {
    fn of(doc: &Doc<'a>, section: &'static str, key: &'static str) -> Self {
        Origin {
            category: doc.category,
            slug: doc.slug,
            section,
            key,
            outfit: None,
        }
    }

    fn input(key: &'static str) -> Self {
        Origin {
            category: "",
            slug: "",
            section: "",
            key,
            outfit: None,
        }
    }
}

impl Origin<'_> {
    /// Same field of the same document, by address: a cheap test for reusing a formatted origin.
    fn same(&self, other: &Origin<'_>) -> bool {
        let eq = |a: &str, b: &str| std::ptr::eq(a, b);
        eq(self.category, other.category)
            && eq(self.slug, other.slug)
            && eq(self.section, other.section)
            && eq(self.key, other.key)
            && match (self.outfit, other.outfit) {
                (None, None) => true,
                (Some(a), Some(b)) => eq(a, b),
                _ => false,
            }
    }
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl Origin<'_> {
    /// `category/slug section::key (outfit o)`, built without the formatting machinery (this runs
    /// once per explained tag).
    fn render(&self) -> String {
        let len = self.category.len() + self.slug.len() + self.section.len() + self.key.len();
        let mut out = String::with_capacity(len + self.outfit.map_or(0, str::len) + 16);
        if !self.category.is_empty() {
            out.extend([self.category, "/", self.slug, " "]);
        }
        if !self.section.is_empty() {
            out.extend([self.section, "::"]);
        }
        out.push_str(self.key);
        if let Some(o) = self.outfit {
            out.extend([" (outfit ", o, ")"]);
        }
        out
    }
}

struct Entry<'a> {
    text: Cow<'a, str>,
    origin: Origin<'a>,
}

#[derive(Clone, Copy)]
enum Dest {
    Main,
    Face,
    Hand,
    /// Look negatives, which go before the template's negative text.
    NegFront,
    Neg,
}

struct Builder<'a> {
    main: Vec<Entry<'a>>,
    face: Vec<Entry<'a>>,
    hand: Vec<Entry<'a>>,
    neg_front: Vec<Entry<'a>>,
    neg: Vec<Entry<'a>>,
    warnings: Vec<String>,
}

impl<'a> Builder<'a> {
    fn list(&mut self, d: Dest) -> &mut Vec<Entry<'a>> {
        match d {
            Dest::Main => &mut self.main,
            Dest::Face => &mut self.face,
            Dest::Hand => &mut self.hand,
            Dest::NegFront => &mut self.neg_front,
            Dest::Neg => &mut self.neg,
        }
    }

    fn text(&mut self, d: Dest, text: Cow<'a, str>, origin: Origin<'a>) {
        push_tags(self.list(d), text, origin);
    }

    /// Adds every fragment of a field; an object where text belongs is ignored with a warning.
    fn field(&mut self, d: Dest, v: Option<&'a Value>, origin: Origin<'a>) {
        let list = self.list(d);
        if for_each_fragment(v, list, origin) == FieldShape::Unusable {
            self.warnings.push(format!(
                "{origin}: expected text or a list of text; ignored an object"
            ));
        }
    }

    fn tags_and_triggers(&mut self, doc: &Doc<'a>) {
        self.field(
            Dest::Main,
            doc::get(doc.data, &["tags"]),
            Origin::of(doc, "", "tags"),
        );
        self.triggers(doc);
    }

    fn triggers(&mut self, doc: &Doc<'a>) {
        let v = doc::get(doc.data, &["lora", "lora_triggers"]);
        self.field(Dest::Main, v, Origin::of(doc, "lora", "lora_triggers"));
    }
}

fn push_tags<'a>(list: &mut Vec<Entry<'a>>, text: Cow<'a, str>, origin: Origin<'a>) {
    match text {
        Cow::Borrowed(s) => list.extend(tags::split_tags(s).map(|t| Entry {
            text: Cow::Borrowed(t),
            origin,
        })),
        Cow::Owned(s) => list.extend(tags::split_tags(&s).map(|t| Entry {
            text: Cow::Owned(t.to_owned()),
            origin,
        })),
    }
}

fn for_each_fragment<'a>(
    v: Option<&'a Value>,
    list: &mut Vec<Entry<'a>>,
    origin: Origin<'a>,
) -> FieldShape {
    doc::for_each_fragment(v, &mut |t| push_tags(list, t, origin))
}

/// The field list in force (see the module doc), split into `(section, key)` once.
struct Selection<'a> {
    fields: Option<Vec<(&'a str, &'a str)>>,
    kind: FieldSelection,
}

impl<'a> Selection<'a> {
    fn new(selected: &'a [String], defaults: &'a [String]) -> Self {
        let split = |list: &'a [String]| {
            list.iter()
                .filter_map(|f| f.trim().split_once("::"))
                .collect::<Vec<_>>()
        };
        if !selected.is_empty() {
            Selection {
                fields: Some(split(selected)),
                kind: FieldSelection::Selected,
            }
        } else if !defaults.is_empty() {
            Selection {
                fields: Some(split(defaults)),
                kind: FieldSelection::Defaults,
            }
        } else {
            Selection {
                fields: None,
                kind: FieldSelection::All,
            }
        }
    }

    fn has(&self, section: &str, key: &str) -> bool {
        match &self.fields {
            None => true,
            Some(list) => list.iter().any(|(s, k)| *s == section && *k == key),
        }
    }
}

const GIRLS: [&str; 6] = ["1girl", "2girls", "3girls", "4girls", "5girls", "6+girls"];
const BOYS: [&str; 6] = ["1boy", "2boys", "3boys", "4boys", "5boys", "6+boys"];

/// Orientation code → Danbooru tags. A code is one or more `<count><F|M>` groups in any order and
/// case (`1F`, `2f1m`, `1M 1F`; spaces, `,`, `+`, `/`, `&`, `-`, `_` between groups are ignored;
/// repeated sexes add up). Tags, in order: the count tag of each sex in the order the code first
/// names it (`1girl`…`5girls`, `6+girls`; `1boy`…`6+boys`), `multiple_girls` / `multiple_boys`
/// for two or more, then `hetero` when both sexes appear, `yuri` for two or more girls and no
/// boys, `yaoi` for two or more boys and no girls.
pub fn parse_orientation(code: &str) -> Result<Vec<&'static str>, String> {
    let mut girls = 0u64;
    let mut boys = 0u64;
    let mut order: Vec<char> = Vec::with_capacity(2);
    let mut digits = String::new();
    for c in code.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let sex = c.to_ascii_uppercase();
        if sex == 'F' || sex == 'M' {
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("orientation {code:?}: '{c}' needs a count before it"))?;
            digits.clear();
            let total = if sex == 'F' { &mut girls } else { &mut boys };
            *total = total.saturating_add(n);
            if n > 0 && !order.contains(&sex) {
                order.push(sex);
            }
        } else if c.is_whitespace() || matches!(c, ',' | '+' | '/' | '&' | '-' | '_') {
            if !digits.is_empty() {
                return Err(format!(
                    "orientation {code:?}: count {digits} has no F or M"
                ));
            }
        } else {
            return Err(format!(
                "orientation {code:?}: unexpected '{c}' (expected groups like 1F, 2M)"
            ));
        }
    }
    if !digits.is_empty() {
        return Err(format!(
            "orientation {code:?}: count {digits} has no F or M"
        ));
    }
    if girls == 0 && boys == 0 {
        return Err(format!("orientation {code:?}: no participants"));
    }
    let count_tag = |table: &[&'static str; 6], n: u64| table[(n.min(6) - 1) as usize];
    let mut out = Vec::with_capacity(4);
    for sex in &order {
        out.push(if *sex == 'F' {
            count_tag(&GIRLS, girls)
        } else {
            count_tag(&BOYS, boys)
        });
    }
    for sex in &order {
        match sex {
            'F' if girls >= 2 => out.push("multiple_girls"),
            'M' if boys >= 2 => out.push("multiple_boys"),
            _ => {}
        }
    }
    if girls > 0 && boys > 0 {
        out.push("hetero");
    } else if girls >= 2 {
        out.push("yuri");
    } else if boys >= 2 {
        out.push("yaoi");
    }
    Ok(out)
}

/// The original's `_ensure_character_fields`: appends to `selected` every `identity::*` and
/// `wardrobe::*` field that holds text, taking the wardrobe from `outfit` when given (it replaces
/// the character's), else the character's active outfit. Existing entries are not repeated.
pub fn ensure_character_fields(
    selected: &mut Vec<String>,
    character: Option<&Value>,
    outfit: Option<&Value>,
    active_outfit: Option<&str>,
) {
    let mut add = |section: &str, key: &str| {
        let f = format!("{section}::{key}");
        if !selected.contains(&f) {
            selected.push(f);
        }
    };
    if let Some(c) = character {
        for key in IDENTITY_KEYS {
            if doc::has_text(doc::get(c, &["identity", key])) {
                add("identity", key);
            }
        }
    }
    let wardrobe = match outfit {
        Some(o) => doc::resolve_wardrobe(doc::get(o, &["wardrobe"]), None),
        None => {
            character.and_then(|c| doc::resolve_wardrobe(doc::get(c, &["wardrobe"]), active_outfit))
        }
    };
    if let Some(w) = wardrobe {
        for key in WARDROBE_KEYS {
            if doc::has_text(w.fields.get(key)) {
                add("wardrobe", key);
            }
        }
    }
}

/// Builds the four prompts and their explanation. `template_negative` is the workflow template's
/// node-7 text (see `workflow::template_negative`).
pub fn build_prompts(comp: &Composition<'_>, template_negative: &str) -> BuiltPrompts {
    let mut b = Builder {
        main: Vec::with_capacity(64),
        face: Vec::with_capacity(8),
        hand: Vec::with_capacity(8),
        neg_front: Vec::new(),
        neg: Vec::with_capacity(32),
        warnings: Vec::new(),
    };
    let sel = Selection::new(comp.selected_fields, comp.default_fields);
    let has_scene = comp.scene.is_some() || comp.extras_of(Category::Scenes).next().is_some();
    let has_action = comp.action.is_some() || comp.extras_of(Category::Actions).next().is_some();

    if let Some(ck) = &comp.checkpoint {
        b.field(
            Dest::Main,
            doc::get(ck.data, &["base_positive"]),
            Origin::of(ck, "", "base_positive"),
        );
    }
    participants(&mut b, comp);
    character_view(&mut b, comp, &sel, has_action, has_scene);
    if let Some(o) = &comp.outfit {
        b.tags_and_triggers(o);
    }
    let slots = [
        (&comp.look, Category::Looks),
        (&comp.action, Category::Actions),
        (&comp.style, Category::Styles),
        (&comp.scene, Category::Scenes),
        (&comp.detailer, Category::Detailers),
    ];
    for (d, c) in slots {
        if let Some(d) = d {
            document(&mut b, d, c, false);
        }
    }
    for d in &comp.extras {
        match Category::parse(d.category) {
            Some(c @ (Category::Characters | Category::Checkpoints | Category::Presets)) => {
                b.warnings.push(format!(
                    "{}/{}: {} cannot be mixed in as extras; ignored",
                    d.category,
                    d.slug,
                    c.as_str()
                ))
            }
            Some(c) => document(&mut b, d, c, true),
            None => b.warnings.push(format!(
                "{}/{}: unknown category; ignored",
                d.category, d.slug
            )),
        }
    }
    if comp.append_background && !has_scene {
        background(&mut b, comp);
    }
    b.text(
        Dest::Main,
        Cow::Borrowed(comp.extra_positive),
        Origin::input("extra_positive"),
    );

    b.text(
        Dest::Neg,
        Cow::Borrowed(template_negative),
        Origin::input("template"),
    );
    if let Some(ck) = &comp.checkpoint {
        b.field(
            Dest::Neg,
            doc::get(ck.data, &["base_negative"]),
            Origin::of(ck, "", "base_negative"),
        );
    }
    b.text(
        Dest::Neg,
        Cow::Borrowed(comp.extra_negative),
        Origin::input("extra_negative"),
    );

    finish(b, sel.kind)
}

fn participants<'a>(b: &mut Builder<'a>, comp: &Composition<'a>) {
    let has = |d: &Option<Doc<'a>>| {
        d.filter(|d| doc::get(d.data, &["participants"]).is_some_and(Value::is_object))
    };
    let Some(src) = has(&comp.action).or_else(|| has(&comp.character)) else {
        if let Some(c) = &comp.character {
            b.text(
                Dest::Main,
                Cow::Borrowed("(solo:1.2)"),
                Origin::of(c, "", "participants (absent)"),
            );
        }
        return;
    };
    let p = doc::get(src.data, &["participants"]);
    let orientation = p.and_then(|p| doc::get(p, &["orientation"]));
    if let Some(code) = orientation.and_then(doc::scalar_text) {
        match parse_orientation(&code) {
            Ok(list) => {
                let origin = Origin::of(&src, "participants", "orientation");
                for t in list {
                    b.main.push(Entry {
                        text: Cow::Borrowed(t),
                        origin,
                    });
                }
            }
            Err(e) => b.warnings.push(format!(
                "{}/{}: {e}; no participant tags",
                src.category, src.slug
            )),
        }
    }
    if doc::truthy(p.and_then(|p| doc::get(p, &["solo_focus"]))) {
        let origin = Origin::of(&src, "participants", "solo_focus");
        b.main.push(Entry {
            text: Cow::Borrowed("solo_focus"),
            origin,
        });
    }
}

/// The character's selected fields, with the outfit document's wardrobe in place of the
/// character's when an outfit is composed.
fn character_view<'a>(
    b: &mut Builder<'a>,
    comp: &Composition<'a>,
    sel: &Selection<'_>,
    has_action: bool,
    has_scene: bool,
) {
    let ch = comp.character.as_ref();
    if let Some(c) = ch {
        if sel.has("special", "name") {
            let name = doc::get(c.data, &["character_name"])
                .filter(|v| doc::has_text(Some(v)))
                .or_else(|| doc::get(c.data, &["character_id"]));
            let origin = Origin::of(c, "special", "name");
            b.field(Dest::Main, name, origin);
            b.field(Dest::Face, name, origin);
        }
        for key in IDENTITY_KEYS {
            if sel.has("identity", key) {
                b.field(
                    Dest::Main,
                    doc::get(c.data, &["identity", key]),
                    Origin::of(c, "identity", key),
                );
            }
        }
        for key in DEFAULTS_KEYS {
            let replaced = (key == "pose" && has_action) || (key == "scene" && has_scene);
            if sel.has("defaults", key) && !replaced {
                let v = doc::get(c.data, &["defaults", key]);
                b.field(Dest::Main, v, Origin::of(c, "defaults", key));
                if key == "expression" {
                    b.field(Dest::Face, v, Origin::of(c, "defaults", key));
                }
            }
        }
    }

    // The wardrobe in effect: the outfit document's, else the character's active outfit.
    let (wdoc, requested) = match (&comp.outfit, ch) {
        (Some(o), _) => (Some(o), None),
        (None, Some(c)) => (Some(c), comp.active_outfit),
        (None, None) => (None, None),
    };
    let wardrobe = wdoc.and_then(|d| {
        let w = doc::resolve_wardrobe(doc::get(d.data, &["wardrobe"]), requested)?;
        if let (Some(from), Some(to)) = (&w.fell_back_from, w.outfit) {
            b.warnings.push(format!(
                "{}/{}: outfit '{from}' not found; using '{to}'",
                d.category, d.slug
            ));
        }
        Some((d, w))
    });
    if let Some((d, w)) = &wardrobe {
        let origin = |key| Origin {
            outfit: w.outfit,
            ..Origin::of(d, "wardrobe", key)
        };
        for key in WARDROBE_KEYS {
            if sel.has("wardrobe", key) {
                b.field(Dest::Main, w.fields.get(key), origin(key));
            }
        }
    }

    // Hand detailer: gloves, else wardrobe hands, else identity hands (first selected with text).
    let from_wardrobe = |key: &'static str| {
        let (d, w) = wardrobe.as_ref()?;
        let v = w
            .fields
            .get(key)
            .filter(|v| sel.has("wardrobe", key) && doc::has_text(Some(v)))?;
        Some((
            v,
            Origin {
                outfit: w.outfit,
                ..Origin::of(d, "wardrobe", key)
            },
        ))
    };
    let from_identity = || {
        let c = ch?;
        let v = doc::get(c.data, &["identity", "hands"])
            .filter(|v| sel.has("identity", "hands") && doc::has_text(Some(v)))?;
        Some((v, Origin::of(c, "identity", "hands")))
    };
    if let Some((v, origin)) = from_wardrobe("gloves")
        .or_else(|| from_wardrobe("hands"))
        .or_else(from_identity)
    {
        b.field(Dest::Hand, Some(v), origin);
    }

    if let Some(c) = ch {
        for key in STYLES_KEYS {
            if sel.has("styles", key) {
                b.field(
                    Dest::Main,
                    doc::get(c.data, &["styles", key]),
                    Origin::of(c, "styles", key),
                );
            }
        }
        if sel.has("special", "tags") {
            b.field(
                Dest::Main,
                doc::get(c.data, &["tags"]),
                Origin::of(c, "special", "tags"),
            );
        }
        let look_lora = comp.look.is_some_and(|l| doc::lora_name(l.data).is_some());
        if sel.has("lora", "lora_triggers") && !look_lora {
            b.triggers(c);
        }
    }
}

/// One non-character document's fields, by category. `all_wardrobe` adds an outfit's wardrobe
/// (extras); in the outfit slot the wardrobe already went through the character view.
fn document<'a>(b: &mut Builder<'a>, d: &Doc<'a>, c: Category, all_wardrobe: bool) {
    let data = d.data;
    match c {
        Category::Looks => {
            b.field(
                Dest::Main,
                doc::get(data, &["positive"]),
                Origin::of(d, "", "positive"),
            );
            b.field(
                Dest::NegFront,
                doc::get(data, &["negative"]),
                Origin::of(d, "", "negative"),
            );
        }
        Category::Outfits => {
            if all_wardrobe
                && let Some(w) = doc::resolve_wardrobe(doc::get(data, &["wardrobe"]), None)
            {
                for key in WARDROBE_KEYS {
                    let origin = Origin {
                        outfit: w.outfit,
                        ..Origin::of(d, "wardrobe", key)
                    };
                    b.field(Dest::Main, w.fields.get(key), origin);
                }
            }
        }
        Category::Actions => {
            for key in ACTION_KEYS {
                let v = doc::get(data, &["action", key]);
                let origin = Origin::of(d, "action", key);
                b.field(Dest::Main, v, origin);
                match key {
                    "head" | "eyes" => b.field(Dest::Face, v, origin),
                    "arms" | "hands" => b.field(Dest::Hand, v, origin),
                    _ => {}
                }
            }
        }
        Category::Styles => {
            // Each artist (the field may list several) becomes `by <artist>`.
            let origin = Origin::of(d, "style", "artist_name");
            let mut artists = Vec::new();
            doc::for_each_fragment(doc::get(data, &["style", "artist_name"]), &mut |f| {
                push_tags(&mut artists, f, origin)
            });
            for e in artists {
                let has_by = e
                    .text
                    .get(..3)
                    .is_some_and(|p| p.eq_ignore_ascii_case("by "));
                if !has_by {
                    let text = Cow::Owned(format!("by {}", e.text));
                    b.main.push(Entry { text, origin });
                } else {
                    b.main.push(e);
                }
            }
            let v = doc::get(data, &["style", "artistic_style"]);
            b.field(Dest::Main, v, Origin::of(d, "style", "artistic_style"));
        }
        Category::Scenes => {
            for key in SCENE_KEYS {
                b.field(
                    Dest::Main,
                    doc::get(data, &["scene", key]),
                    Origin::of(d, "scene", key),
                );
            }
        }
        Category::Detailers => {
            let v = doc::get(data, &["prompt"]);
            let origin = Origin::of(d, "", "prompt");
            b.field(Dest::Main, v, origin);
            if doc::truthy(doc::get(data, &["focus", "face"])) {
                b.field(Dest::Face, v, origin);
            }
            if doc::truthy(doc::get(data, &["focus", "hands"])) {
                b.field(Dest::Hand, v, origin);
            }
        }
        Category::Characters | Category::Checkpoints | Category::Presets => return,
    }
    b.tags_and_triggers(d);
}

fn background<'a>(b: &mut Builder<'a>, comp: &Composition<'a>) {
    let colour = comp.character.as_ref().and_then(|c| {
        let colour = doc::get(c.data, &["styles", "primary_color"]).and_then(doc::scalar_text)?;
        Some((c, colour))
    });
    match colour {
        Some((c, colour)) => {
            let origin = Origin::of(c, "styles", "primary_color (background)");
            let text = format!("{} simple background", colour.trim());
            b.text(Dest::Main, Cow::Owned(text), origin);
        }
        None => b.text(
            Dest::Main,
            Cow::Borrowed("simple background"),
            Origin::input("background"),
        ),
    }
}

/// Cross-dedup (main vs negative), then within-prompt dedup of each prompt; renders the strings
/// and the explanation.
fn finish<'a>(b: Builder<'a>, field_selection: FieldSelection) -> BuiltPrompts {
    let Builder {
        main,
        face,
        hand,
        neg_front,
        mut neg,
        warnings,
    } = b;
    let mut negative = neg_front;
    negative.append(&mut neg);
    let mut removed = Vec::new();

    let info = |list: &[Entry<'_>]| {
        list.iter()
            .map(|e| tags::tag_info(&e.text))
            .collect::<Vec<_>>()
    };
    let (main_info, neg_info) = (info(&main), info(&negative));
    let plan = tags::cross_dedup(&main_info, &neg_info);
    let mut cross_removed = |prompt, list: Vec<Entry<'a>>, infos: Vec<TagInfo>, keep: &[bool]| {
        let mut kept = Vec::with_capacity(list.len());
        for ((e, i), k) in list.into_iter().zip(infos).zip(keep) {
            if *k {
                kept.push((e, i));
                continue;
            }
            let (p, n) = plan
                .cancelled
                .iter()
                .find(|(key, _, _)| *key == i.key)
                .map(|(_, p, n)| (*p, *n))
                .unwrap_or_default();
            removed.push(RemovedTag {
                prompt,
                tag: e.text.into_owned(),
                source: e.origin.render(),
                reason: RemovalKind::CrossCancelled,
                detail: format!(
                    "'{}' is {p}× in the positive and {n}× in the negative; {} cancelled on each side",
                    i.key,
                    p.min(n)
                ),
            });
        }
        kept
    };
    let main = cross_removed(PromptKind::Main, main, main_info, &plan.keep_positive);
    let negative = cross_removed(
        PromptKind::Negative,
        negative,
        neg_info,
        &plan.keep_negative,
    );

    let mut render = |prompt, list: Vec<(Entry<'a>, TagInfo)>| -> (String, Vec<TagSource>) {
        let (entries, infos): (Vec<_>, Vec<_>) = list.into_iter().unzip();
        let within = tags::dedup_within(&infos);
        for &(i, why, survivor) in &within.removed {
            let (e, s) = (&entries[i], &entries[survivor]);
            let (reason, detail) = match why {
                WithinReason::Duplicate => (
                    RemovalKind::Duplicate,
                    format!("repeats '{}' from {}", s.text, s.origin),
                ),
                WithinReason::Outranked => (
                    RemovalKind::Outranked,
                    format!(
                        "replaced in place by the more explicit '{}' from {}",
                        s.text, s.origin
                    ),
                ),
            };
            removed.push(RemovedTag {
                prompt,
                tag: e.text.to_string(),
                source: e.origin.render(),
                reason,
                detail,
            });
        }
        let text = tags::join(within.kept.iter().map(|&i| entries[i].text.as_ref()));
        // Neighbouring tags mostly share a field: format each origin once per run.
        let mut last: Option<(Origin<'_>, String)> = None;
        let sources = within
            .kept
            .iter()
            .map(|&i| {
                let e = &entries[i];
                let source = match &last {
                    Some((o, s)) if o.same(&e.origin) => s.clone(),
                    _ => {
                        let s = e.origin.render();
                        last = Some((e.origin, s.clone()));
                        s
                    }
                };
                TagSource {
                    tag: e.text.to_string(),
                    source,
                }
            })
            .collect();
        (text, sources)
    };
    let with_info = |list: Vec<Entry<'a>>| {
        list.into_iter()
            .map(|e| {
                let i = tags::tag_info(&e.text);
                (e, i)
            })
            .collect::<Vec<_>>()
    };
    let (main, main_src) = render(PromptKind::Main, main);
    let (face, face_src) = render(PromptKind::Face, with_info(face));
    let (hand, hand_src) = render(PromptKind::Hand, with_info(hand));
    let (negative, neg_src) = render(PromptKind::Negative, negative);

    BuiltPrompts {
        prompts: Prompts {
            main,
            face,
            hand,
            negative,
        },
        explanation: Explanation {
            field_selection,
            main: main_src,
            face: face_src,
            hand: hand_src,
            negative: neg_src,
            removed,
            warnings,
        },
    }
}

#[cfg(test)]
mod tests;
