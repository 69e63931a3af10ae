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
}

#[allow(clippy::too_many_arguments)]
const fn d(
    category: Category,
    key: &'static str,
    dir: &'static str,
    singular: &'static str,
    title: &'static str,
    id_field: &'static str,
    name_field: &'static str,
    lora_dir: Option<&'static str>,
) -> Descriptor {
    Descriptor {
        category,
        key,
        dir,
        singular,
        title,
        id_field,
        name_field,
        slug_rule: SlugRule::Remove,
        lora_dir,
        clonable: true,
    }
}

/// The descriptor table, in `Category` order.
pub static DESCRIPTORS: [Descriptor; 9] = [
    d(
        Category::Characters,
        "characters",
        "characters",
        "character",
        "Characters",
        "character_id",
        "character_name",
        Some("Illustrious/Looks"),
    ),
    d(
        Category::Looks,
        "looks",
        "looks",
        "look",
        "Looks",
        "look_id",
        "look_name",
        Some("Illustrious/Looks"),
    ),
    d(
        Category::Outfits,
        "outfits",
        "clothing",
        "outfit",
        "Outfits",
        "outfit_id",
        "outfit_name",
        Some("Illustrious/Clothing"),
    ),
    d(
        Category::Actions,
        "actions",
        "actions",
        "action",
        "Actions",
        "action_id",
        "action_name",
        Some("Illustrious/Poses"),
    ),
    d(
        Category::Styles,
        "styles",
        "styles",
        "style",
        "Styles",
        "style_id",
        "style_name",
        Some("Illustrious/Styles"),
    ),
    d(
        Category::Scenes,
        "scenes",
        "scenes",
        "scene",
        "Scenes",
        "scene_id",
        "scene_name",
        Some("Illustrious/Backgrounds"),
    ),
    d(
        Category::Detailers,
        "detailers",
        "detailers",
        "detailer",
        "Detailers",
        "detailer_id",
        "detailer_name",
        Some("Illustrious/Detailers"),
    ),
    Descriptor {
        category: Category::Checkpoints,
        key: "checkpoints",
        dir: "checkpoints",
        singular: "checkpoint",
        title: "Checkpoints",
        id_field: "checkpoint_path",
        name_field: "checkpoint_name",
        slug_rule: SlugRule::Underscore,
        lora_dir: None,
        clonable: false,
    },
    d(
        Category::Presets,
        "presets",
        "presets",
        "preset",
        "Presets",
        "preset_id",
        "preset_name",
        None,
    ),
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
