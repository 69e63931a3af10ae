//! The nine library categories and the one descriptor table that drives every generic route,
//! sync rule and file path, so no behaviour is copied per category.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A library category. Stored in events by variant index: never reorder or remove variants.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Category {
    Characters,
    Looks,
    Outfits,
    Actions,
    Styles,
    Scenes,
    Detailers,
    Checkpoints,
    Presets,
}

/// How a document id becomes a URL slug (seed, Common Pitfalls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlugRule {
    /// `re.sub(r'[^a-zA-Z0-9_]', '', id)`: other characters are removed.
    Remove,
    /// `re.sub(r'[^a-zA-Z0-9_]', '_', id)`: other characters become `_` (checkpoints).
    Underscore,
}

/// Everything that differs between categories.
#[derive(Debug)]
pub struct Descriptor {
    pub category: Category,
    /// The API name, e.g. `outfits`.
    pub key: &'static str,
    /// The folder under `data/`, e.g. `clothing`.
    pub dir: &'static str,
    /// The singular used by the original's field names and HTML routes, e.g. `outfit`.
    pub singular: &'static str,
    /// Human title for pages.
    pub title: &'static str,
    /// The JSON key holding the canonical id.
    pub id_field: &'static str,
    /// The JSON key holding the display name.
    pub name_field: &'static str,
    pub slug_rule: SlugRule,
    /// LoRA folder relative to the LoRA root (seed, LoRA File Paths), if the category has LoRAs.
    pub lora_dir: Option<&'static str>,
    /// Whether the original offers "clone" for this category.
    pub clonable: bool,
    /// The document's known keys, by section, for the edit form and its checks (unknown keys
    /// are kept as they are).
    pub schema: &'static [Section],
    /// What a gallery card shows besides the name: what a user chooses by.
    pub facts: &'static [Fact],
    /// Slots the entry page offers besides the character (the original offers an action on
    /// detailer pages).
    pub page_slots: &'static [Category],
    /// Whether the entry page offers the character selector (pages other than characters,
    /// checkpoints… are shown on a character).
    pub character_selector: bool,
}

/// How a document key is edited and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One line of text.
    Text,
    /// Prompt tags as one comma-separated string.
    Prompt,
    /// A JSON list of strings (labels such as `tags`, or a detailer's `prompt`).
    List,
    /// A JSON list of prompt tags (autocompleted like `Prompt`).
    PromptList,
    Number,
    Integer,
    /// A JSON boolean.
    Bool,
    /// A boolean kept as text (`"true"` / `"false"`), as `participants.solo_focus` is.
    BoolText,
    /// The id of an entry of a category (`checkpoint_path` for checkpoints); in presets also
    /// `"__random__"` or `null`.
    Ref(Category),
    /// A sampler name (the backend's list when reachable).
    Sampler,
    Scheduler,
    /// The `lora` object: `lora_name` (from the category's LoRA folder), `lora_weight`,
    /// `lora_triggers`.
    Lora,
    /// A character's wardrobe: outfit name → wardrobe keys (or the legacy flat map).
    Wardrobe,
}

/// One known key of a document.
#[derive(Debug)]
pub struct Field {
    pub key: &'static str,
    pub label: &'static str,
    pub kind: Kind,
}

/// A group of keys: an object under `key`, or top-level keys when `key` is `None`.
#[derive(Debug)]
pub struct Section {
    pub key: Option<&'static str>,
    pub title: &'static str,
    pub fields: &'static [Field],
}

/// Something a gallery card shows.
#[derive(Debug, Clone, Copy)]
pub enum Fact {
    /// Whether the document names a LoRA file.
    Lora,
    /// A text value at a path, e.g. a checkpoint's `base_positive`.
    Text(&'static str, &'static [&'static str]),
    /// An id at a path that names an entry of another category (a look's character), linked.
    Link(&'static str, &'static [&'static str], Category),
}

const fn f(key: &'static str, label: &'static str, kind: Kind) -> Field {
    Field { key, label, kind }
}

/// The wardrobe keys of one outfit (the original's `_WARDROBE_KEYS`).
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

const LORA: Section = Section {
    key: None,
    title: "LoRA",
    fields: &[f("lora", "LoRA", Kind::Lora)],
};
const TAGS: Section = Section {
    key: None,
    title: "Tags",
    fields: &[f("tags", "Tags", Kind::List)],
};

const CHARACTER_SCHEMA: &[Section] = &[
    Section {
        key: Some("identity"),
        title: "Identity",
        fields: &[
            f("base_specs", "Base specs", Kind::Prompt),
            f("hair", "Hair", Kind::Prompt),
            f("eyes", "Eyes", Kind::Prompt),
            f("hands", "Hands", Kind::Prompt),
            f("arms", "Arms", Kind::Prompt),
            f("torso", "Torso", Kind::Prompt),
            f("pelvis", "Pelvis", Kind::Prompt),
            f("legs", "Legs", Kind::Prompt),
            f("feet", "Feet", Kind::Prompt),
            f("extra", "Extra", Kind::Prompt),
        ],
    },
    Section {
        key: Some("defaults"),
        title: "Defaults",
        fields: &[
            f("expression", "Expression", Kind::Prompt),
            f("pose", "Pose", Kind::Prompt),
            f("scene", "Scene", Kind::Prompt),
        ],
    },
    Section {
        key: None,
        title: "Wardrobe",
        fields: &[f("wardrobe", "Wardrobe", Kind::Wardrobe)],
    },
    Section {
        key: Some("styles"),
        title: "Styles",
        fields: &[
            f("aesthetic", "Aesthetic", Kind::Prompt),
            f("primary_color", "Primary colour", Kind::Text),
            f("secondary_color", "Secondary colour", Kind::Text),
            f("tertiary_color", "Tertiary colour", Kind::Text),
        ],
    },
    LORA,
    TAGS,
    Section {
        key: Some("participants"),
        title: "Participants",
        fields: &[
            f("orientation", "Orientation (1F, 2F, 1M1F…)", Kind::Text),
            f("solo_focus", "Solo focus", Kind::BoolText),
        ],
    },
];

const OUTFIT_SCHEMA: &[Section] = &[
    Section {
        key: Some("wardrobe"),
        title: "Wardrobe",
        fields: &[
            f("full_body", "Full body", Kind::Prompt),
            f("headwear", "Headwear", Kind::Prompt),
            f("top", "Top", Kind::Prompt),
            f("bottom", "Bottom", Kind::Prompt),
            f("legwear", "Legwear", Kind::Prompt),
            f("footwear", "Footwear", Kind::Prompt),
            f("hands", "Hands", Kind::Prompt),
            f("gloves", "Gloves", Kind::Prompt),
            f("accessories", "Accessories", Kind::Prompt),
        ],
    },
    LORA,
    TAGS,
];

const ACTION_SCHEMA: &[Section] = &[
    Section {
        key: Some("action"),
        title: "Action",
        fields: &[
            f("full_body", "Full body", Kind::Prompt),
            f("additional", "Additional", Kind::Prompt),
            f("head", "Head", Kind::Prompt),
            f("eyes", "Eyes", Kind::Prompt),
            f("arms", "Arms", Kind::Prompt),
            f("hands", "Hands", Kind::Prompt),
        ],
    },
    LORA,
    TAGS,
];

const STYLE_SCHEMA: &[Section] = &[
    Section {
        key: Some("style"),
        title: "Style",
        fields: &[
            f("artist_name", "Artist name", Kind::Prompt),
            f("artistic_style", "Artistic style", Kind::Prompt),
        ],
    },
    LORA,
    TAGS,
];

const SCENE_SCHEMA: &[Section] = &[
    Section {
        key: Some("scene"),
        title: "Scene",
        fields: &[
            f("background", "Background", Kind::Prompt),
            f("foreground", "Foreground", Kind::Prompt),
            f("furniture", "Furniture", Kind::Prompt),
            f("colors", "Colours", Kind::Prompt),
            f("lighting", "Lighting", Kind::Prompt),
            f("theme", "Theme", Kind::Prompt),
        ],
    },
    LORA,
    TAGS,
];

const DETAILER_SCHEMA: &[Section] = &[
    Section {
        key: None,
        title: "Prompt",
        fields: &[f("prompt", "Prompt tags", Kind::PromptList)],
    },
    Section {
        key: Some("focus"),
        title: "Focus",
        fields: &[
            f("face", "Face detailer", Kind::Bool),
            f("hands", "Hand detailer", Kind::Bool),
        ],
    },
    LORA,
    TAGS,
];

const LOOK_SCHEMA: &[Section] = &[
    Section {
        key: None,
        title: "Look",
        fields: &[
            f("character_id", "Character", Kind::Ref(Category::Characters)),
            f("positive", "Positive", Kind::Prompt),
            f("negative", "Negative", Kind::Prompt),
        ],
    },
    LORA,
    TAGS,
];

const CHECKPOINT_SCHEMA: &[Section] = &[Section {
    key: None,
    title: "Generation settings",
    fields: &[
        f("base_positive", "Base positive", Kind::Prompt),
        f("base_negative", "Base negative", Kind::Prompt),
        f("steps", "Steps", Kind::Integer),
        f("cfg", "CFG", Kind::Number),
        f("sampler_name", "Sampler", Kind::Sampler),
        f("scheduler", "Scheduler", Kind::Scheduler),
        f("vae", "VAE (\"integrated\" or a VAE file)", Kind::Text),
    ],
}];

const PRESET_SCHEMA: &[Section] = &[
    Section {
        key: None,
        title: "Slots",
        fields: &[
            f("character", "Character", Kind::Ref(Category::Characters)),
            f("look", "Look", Kind::Ref(Category::Looks)),
            f("outfit", "Outfit", Kind::Ref(Category::Outfits)),
            f("action", "Action", Kind::Ref(Category::Actions)),
            f("style", "Style", Kind::Ref(Category::Styles)),
            f("scene", "Scene", Kind::Ref(Category::Scenes)),
            f("detailer", "Detailer", Kind::Ref(Category::Detailers)),
            f("checkpoint", "Checkpoint", Kind::Ref(Category::Checkpoints)),
        ],
    },
    Section {
        key: None,
        title: "Prompt",
        fields: &[
            f("fields", "Character fields (section::key)", Kind::List),
            f("active_outfit", "Active outfit", Kind::Text),
            f("extra_positive", "Extra positive", Kind::Prompt),
            f("extra_negative", "Extra negative", Kind::Prompt),
        ],
    },
    Section {
        key: None,
        title: "Image",
        fields: &[
            f("width", "Width", Kind::Integer),
            f("height", "Height", Kind::Integer),
            f("seed", "Seed (empty: a new one each run)", Kind::Integer),
        ],
    },
    TAGS,
];

const BASE: Descriptor = Descriptor {
    category: Category::Characters,
    key: "",
    dir: "",
    singular: "",
    title: "",
    id_field: "",
    name_field: "",
    slug_rule: SlugRule::Remove,
    lora_dir: None,
    clonable: true,
    schema: &[],
    facts: &[Fact::Lora],
    page_slots: &[],
    character_selector: true,
};

/// The descriptor table, in `Category` order.
pub static DESCRIPTORS: [Descriptor; 9] = [
    Descriptor {
        category: Category::Characters,
        key: "characters",
        dir: "characters",
        singular: "character",
        title: "Characters",
        id_field: "character_id",
        name_field: "character_name",
        lora_dir: Some("Illustrious/Looks"),
        schema: CHARACTER_SCHEMA,
        facts: &[
            Fact::Lora,
            Fact::Text("Orientation", &["participants", "orientation"]),
        ],
        character_selector: false,
        ..BASE
    },
    Descriptor {
        category: Category::Looks,
        key: "looks",
        dir: "looks",
        singular: "look",
        title: "Looks",
        id_field: "look_id",
        name_field: "look_name",
        lora_dir: Some("Illustrious/Looks"),
        schema: LOOK_SCHEMA,
        facts: &[
            Fact::Lora,
            Fact::Link("Character", &["character_id"], Category::Characters),
        ],
        // A look brings its own character.
        character_selector: false,
        ..BASE
    },
    Descriptor {
        category: Category::Outfits,
        key: "outfits",
        dir: "clothing",
        singular: "outfit",
        title: "Outfits",
        id_field: "outfit_id",
        name_field: "outfit_name",
        lora_dir: Some("Illustrious/Clothing"),
        schema: OUTFIT_SCHEMA,
        ..BASE
    },
    Descriptor {
        category: Category::Actions,
        key: "actions",
        dir: "actions",
        singular: "action",
        title: "Actions",
        id_field: "action_id",
        name_field: "action_name",
        lora_dir: Some("Illustrious/Poses"),
        schema: ACTION_SCHEMA,
        ..BASE
    },
    Descriptor {
        category: Category::Styles,
        key: "styles",
        dir: "styles",
        singular: "style",
        title: "Styles",
        id_field: "style_id",
        name_field: "style_name",
        lora_dir: Some("Illustrious/Styles"),
        schema: STYLE_SCHEMA,
        facts: &[Fact::Lora, Fact::Text("Artist", &["style", "artist_name"])],
        ..BASE
    },
    Descriptor {
        category: Category::Scenes,
        key: "scenes",
        dir: "scenes",
        singular: "scene",
        title: "Scenes",
        id_field: "scene_id",
        name_field: "scene_name",
        lora_dir: Some("Illustrious/Backgrounds"),
        schema: SCENE_SCHEMA,
        ..BASE
    },
    Descriptor {
        category: Category::Detailers,
        key: "detailers",
        dir: "detailers",
        singular: "detailer",
        title: "Detailers",
        id_field: "detailer_id",
        name_field: "detailer_name",
        lora_dir: Some("Illustrious/Detailers"),
        schema: DETAILER_SCHEMA,
        page_slots: &[Category::Actions],
        ..BASE
    },
    Descriptor {
        category: Category::Checkpoints,
        key: "checkpoints",
        dir: "checkpoints",
        singular: "checkpoint",
        title: "Checkpoints",
        id_field: "checkpoint_path",
        name_field: "checkpoint_name",
        slug_rule: SlugRule::Underscore,
        clonable: false,
        schema: CHECKPOINT_SCHEMA,
        facts: &[
            Fact::Text("Sampler", &["sampler_name"]),
            Fact::Text("Base", &["base_positive"]),
        ],
        character_selector: true,
        ..BASE
    },
    Descriptor {
        category: Category::Presets,
        key: "presets",
        dir: "presets",
        singular: "preset",
        title: "Presets",
        id_field: "preset_id",
        name_field: "preset_name",
        schema: PRESET_SCHEMA,
        facts: &[
            Fact::Link("Character", &["character"], Category::Characters),
            Fact::Link("Scene", &["scene"], Category::Scenes),
        ],
        // A preset names its own slots.
        character_selector: false,
        ..BASE
    },
];

impl Category {
    pub const ALL: [Category; 9] = [
        Category::Characters,
        Category::Looks,
        Category::Outfits,
        Category::Actions,
        Category::Styles,
        Category::Scenes,
        Category::Detailers,
        Category::Checkpoints,
        Category::Presets,
    ];

    pub fn desc(self) -> &'static Descriptor {
        &DESCRIPTORS[self.index()]
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn key(self) -> &'static str {
        self.desc().key
    }

    /// The API name (the same as `key`).
    pub fn as_str(self) -> &'static str {
        self.key()
    }

    /// Parses an API category name (`characters`, `outfits`, …).
    pub fn parse(key: &str) -> Option<Category> {
        DESCRIPTORS
            .iter()
            .find(|d| d.key == key)
            .map(|d| d.category)
    }

    /// Finds the category whose data folder is `dir` (e.g. `clothing`).
    pub fn from_dir(dir: &str) -> Option<Category> {
        DESCRIPTORS
            .iter()
            .find(|d| d.dir == dir)
            .map(|d| d.category)
    }

    /// Finds the category whose HTML singular is `s` (e.g. `outfit`).
    pub fn from_singular(s: &str) -> Option<Category> {
        DESCRIPTORS
            .iter()
            .find(|d| d.singular == s)
            .map(|d| d.category)
    }

    /// The slug of a document id under this category's rule.
    pub fn slug_of(self, id: &str) -> String {
        slugify(id, self.desc().slug_rule)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Applies a slug rule. The result may be empty (an id of only punctuation), which callers refuse.
pub fn slugify(id: &str, rule: SlugRule) -> String {
    id.chars()
        .filter_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                Some(c)
            } else {
                match rule {
                    SlugRule::Remove => None,
                    SlugRule::Underscore => Some('_'),
                }
            }
        })
        .collect()
}

/// Whether `s` is a well-formed slug (what URLs may carry): non-empty ASCII alphanumerics and `_`.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_rules_follow_the_regex_not_the_seed_example() {
        let cases = [
            ("yuna_(ff10)", SlugRule::Remove, "yuna_ff10"),
            ("tifa_lockhart", SlugRule::Remove, "tifa_lockhart"),
            ("a-b.c d", SlugRule::Remove, "abcd"),
            ("Zoë", SlugRule::Remove, "Zo"),
            ("()", SlugRule::Remove, ""),
            (
                "Illustrious/model-v1.safetensors",
                SlugRule::Underscore,
                "Illustrious_model_v1_safetensors",
            ),
            ("é", SlugRule::Underscore, "_"),
        ];
        for (id, rule, want) in cases {
            assert_eq!(slugify(id, rule), want, "{id}");
        }
    }

    #[test]
    fn every_category_parses_from_its_key_and_folder() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.key()), Some(c));
            assert_eq!(Category::from_dir(c.desc().dir), Some(c));
            assert_eq!(c.desc().category, c);
        }
        assert_eq!(Category::from_dir("clothing"), Some(Category::Outfits));
        assert_eq!(Category::parse("clothing"), None);
        assert_eq!(Category::parse("../x"), None);
    }

    #[test]
    fn slugs_are_checked() {
        assert!(is_slug("yuna_ff10"));
        assert!(!is_slug(""));
        assert!(!is_slug("../etc"));
        assert!(!is_slug("a b"));
    }
}
