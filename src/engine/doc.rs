//! Tolerant reading of stored library documents (`serde_json::Value` exactly as on disk): categories,
//! text fragments, LoRA fields, truthy flags, the nested/flat wardrobe, and the seeded random pick.
//!
//! Nothing here panics on odd input: a missing section, `null`, a number where text was expected or
//! a weight written as a string all degrade to "empty" or a fallback, and the caller decides whether
//! to record a warning.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// The library categories (the crate's one definition; documents name theirs by API key).
pub use crate::library::category::Category;

/// The sentinel a caller passes instead of a character slug to ask for a random character.
pub const RANDOM_SENTINEL: &str = "__random__";

/// splitmix64 (Steele, Lea, Flood 2014): the fixed mixing function behind every seeded choice.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Picks an index in `0..n` from `seed`: `splitmix64(seed)` scaled by multiply-high (Lemire), so
/// the same seed and `n` always give the same index. `None` when `n == 0`.
pub fn pick_random(n: usize, seed: u64) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let x = splitmix64(seed) as u128;
    Some(((x * n as u128) >> 64) as usize)
}

/// `v[a][b]…`, `None` as soon as a step is missing or not an object.
pub fn get<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    let mut cur = v;
    for key in path {
        cur = cur.as_object()?.get(*key)?;
    }
    Some(cur)
}

/// A scalar as text: strings borrowed, numbers and booleans formatted. Blank text is `None`.
pub fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    let t: Cow<'_, str> = match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        Value::Number(n) => Cow::Owned(n.to_string()),
        Value::Bool(b) => Cow::Owned(b.to_string()),
        _ => return None,
    };
    if t.trim().is_empty() { None } else { Some(t) }
}

/// What a field held, for the caller's warning: text was found, nothing, or an unusable shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldShape {
    Text,
    Empty,
    /// An object (or an array holding one): ignored.
    Unusable,
}

/// Calls `f` with every prompt fragment a field holds: a string, a number, or a list of those
/// (nested lists are flattened; this is the detailer `prompt` list pitfall handled once for all).
pub fn for_each_fragment<'v>(v: Option<&'v Value>, f: &mut dyn FnMut(Cow<'v, str>)) -> FieldShape {
    let Some(v) = v else {
        return FieldShape::Empty;
    };
    match v {
        Value::Null => FieldShape::Empty,
        Value::Object(_) => FieldShape::Unusable,
        Value::Array(items) => {
            let mut shape = FieldShape::Empty;
            for item in items {
                match for_each_fragment(Some(item), f) {
                    FieldShape::Text if shape == FieldShape::Empty => shape = FieldShape::Text,
                    FieldShape::Unusable => shape = FieldShape::Unusable,
                    _ => {}
                }
            }
            shape
        }
        _ => match scalar_text(v) {
            Some(t) => {
                f(t);
                FieldShape::Text
            }
            None => FieldShape::Empty,
        },
    }
}

/// True when the field holds at least one non-blank fragment.
pub fn has_text(v: Option<&Value>) -> bool {
    let mut any = false;
    for_each_fragment(v, &mut |_| any = true);
    any
}

/// `true`, `"true"`/`"yes"`/`"1"`/`"on"` (any case), or a non-zero number.
pub fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "true" | "yes" | "1" | "on"
        ),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        _ => false,
    }
}

/// The document's LoRA file name (`lora.lora_name`), trimmed; `None` when empty, null or not text.
pub fn lora_name(data: &Value) -> Option<&str> {
    let s = get(data, &["lora", "lora_name"])?.as_str()?.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        None
    } else {
        Some(s)
    }
}

/// LoRA strengths accepted by ComfyUI's LoraLoader.
pub const LORA_WEIGHT_MIN: f64 = -100.0;
pub const LORA_WEIGHT_MAX: f64 = 100.0;
pub const LORA_WEIGHT_DEFAULT: f64 = 1.0;

/// `lora.lora_weight`: a number or a string that parses; missing or null gives 1.0. Unparseable or
/// non-finite values give 1.0 with a warning; values outside −100..100 are clamped with a warning.
pub fn lora_weight(data: &Value) -> (f64, Option<String>) {
    let raw = get(data, &["lora", "lora_weight"]);
    let parsed = match raw {
        None | Some(Value::Null) => return (LORA_WEIGHT_DEFAULT, None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => return (LORA_WEIGHT_DEFAULT, None),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match parsed {
        Some(w) if w.is_finite() => {
            if !(LORA_WEIGHT_MIN..=LORA_WEIGHT_MAX).contains(&w) {
                let c = w.clamp(LORA_WEIGHT_MIN, LORA_WEIGHT_MAX);
                (
                    c,
                    Some(format!(
                        "lora_weight {w} is outside −100..100; clamped to {c}"
                    )),
                )
            } else {
                (w, None)
            }
        }
        _ => (
            LORA_WEIGHT_DEFAULT,
            Some(format!(
                "lora_weight {} is not a number; using {LORA_WEIGHT_DEFAULT}",
                raw.map(Value::to_string).unwrap_or_default()
            )),
        ),
    }
}

/// A resolved wardrobe: the outfit's field map and, for the nested format, the outfit's name.
pub struct Wardrobe<'v> {
    pub fields: &'v Map<String, Value>,
    pub outfit: Option<&'v str>,
    /// Set when a requested outfit name was not found and another was used.
    pub fell_back_from: Option<String>,
}

/// Resolves `wardrobe`: flat (legacy: a map of wardrobe keys) or nested (a map of outfit name →
/// outfit map, detected by any object value). For nested, the active outfit is `requested` when it
/// exists, else `"default"`, else the first outfit in the file's key order (GAZE keeps key order).
pub fn resolve_wardrobe<'v>(
    wardrobe: Option<&'v Value>,
    requested: Option<&str>,
) -> Option<Wardrobe<'v>> {
    let map = wardrobe?.as_object()?;
    if !map.values().any(Value::is_object) {
        return Some(Wardrobe {
            fields: map,
            outfit: None,
            fell_back_from: None,
        });
    }
    let requested = requested.map(str::trim).filter(|r| !r.is_empty());
    let outfit_named = |name: &str| {
        map.get_key_value(name)
            .and_then(|(k, v)| Some((k, v.as_object()?)))
    };
    let chosen = requested
        .and_then(outfit_named)
        .or_else(|| outfit_named("default"))
        .or_else(|| map.iter().find_map(|(k, v)| Some((k, v.as_object()?))))?;
    let fell_back_from = match requested {
        Some(r) if r != chosen.0 => Some(r.to_owned()),
        _ => None,
    };
    Some(Wardrobe {
        fields: chosen.1,
        outfit: Some(chosen.0.as_str()),
        fell_back_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn random_pick_is_stable_in_range_and_spread() {
        assert_eq!(pick_random(0, 7), None);
        for seed in 0..1000u64 {
            let a = pick_random(10, seed);
            assert_eq!(a, pick_random(10, seed));
            assert!(a.is_some_and(|i| i < 10));
        }
        // Pinned values: changing the mixing function changes which character a seed picks.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        let picks: Vec<usize> = (0..5u64).filter_map(|s| pick_random(7, s)).collect();
        assert_eq!(picks, vec![6, 3, 4, 0, 3]);
        let mut seen = [0usize; 7];
        for s in 0..7000u64 {
            seen[pick_random(7, s).unwrap_or(0)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }

    #[test]
    fn fragments_accept_strings_numbers_lists_and_ignore_objects() {
        let cases = [
            (json!("a, b"), vec!["a, b"], FieldShape::Text),
            (json!(3), vec!["3"], FieldShape::Text),
            (
                json!(["x", ["y"], 1.5, null]),
                vec!["x", "y", "1.5"],
                FieldShape::Text,
            ),
            (json!(null), vec![], FieldShape::Empty),
            (json!("   "), vec![], FieldShape::Empty),
            (json!({"a": 1}), vec![], FieldShape::Unusable),
            (json!(["x", {"a": 1}]), vec!["x"], FieldShape::Unusable),
        ];
        for (v, want, shape) in cases {
            let mut got = Vec::new();
            let s = for_each_fragment(Some(&v), &mut |t| got.push(t.into_owned()));
            assert_eq!(got, want, "{v}");
            assert_eq!(s, shape, "{v}");
        }
        assert_eq!(for_each_fragment(None, &mut |_| {}), FieldShape::Empty);
    }

    #[test]
    fn truthy_values() {
        for (v, want) in [
            (json!(true), true),
            (json!("true"), true),
            (json!("TRUE"), true),
            (json!("yes"), true),
            (json!(1), true),
            (json!(false), false),
            (json!("false"), false),
            (json!(""), false),
            (json!(0), false),
            (json!(null), false),
            (json!({}), false),
        ] {
            assert_eq!(truthy(Some(&v)), want, "{v}");
        }
        assert!(!truthy(None));
    }

    #[test]
    fn lora_fields_are_tolerant() {
        assert_eq!(
            lora_name(&json!({"lora": {"lora_name": " a.safetensors "}})),
            Some("a.safetensors")
        );
        for d in [
            json!({}),
            json!({"lora": null}),
            json!({"lora": {"lora_name": ""}}),
            json!({"lora": {"lora_name": null}}),
            json!({"lora": {"lora_name": 5}}),
            json!({"lora": {"lora_name": "None"}}),
            json!("not an object"),
        ] {
            assert_eq!(lora_name(&d), None, "{d}");
        }
        let w = |v: Value| lora_weight(&json!({"lora": {"lora_weight": v}}));
        assert_eq!(w(json!(0.8)), (0.8, None));
        assert_eq!(w(json!("0.8")), (0.8, None));
        assert_eq!(w(json!(" -1.5 ")), (-1.5, None));
        assert_eq!(w(json!(null)), (1.0, None));
        assert_eq!(w(json!("")), (1.0, None));
        assert_eq!(lora_weight(&json!({})), (1.0, None));
        let (v, warn) = w(json!("heavy"));
        assert_eq!(v, 1.0);
        assert!(warn.is_some_and(|m| m.contains("not a number")));
        let (v, warn) = w(json!(250));
        assert_eq!(v, 100.0);
        assert!(warn.is_some_and(|m| m.contains("clamped")));
        assert_eq!(w(json!(-250)).0, -100.0);
        assert_eq!(w(json!([1])).0, 1.0);
    }

    #[test]
    fn wardrobe_flat_nested_and_active_outfit() {
        let flat = json!({"top": "shirt", "bottom": "skirt"});
        let w = resolve_wardrobe(Some(&flat), Some("casual")).map(|w| (w.outfit, w.fields.len()));
        assert!(matches!(w, Some((None, 2))));

        let nested = json!({
            "casual": {"top": "hoodie"},
            "default": {"top": "tank top"},
            "battle": {"top": "armor"}
        });
        let pick = |req: Option<&str>| {
            resolve_wardrobe(Some(&nested), req).map(|w| {
                (
                    w.outfit.map(str::to_owned),
                    w.fields.get("top").cloned(),
                    w.fell_back_from,
                )
            })
        };
        assert_eq!(
            pick(Some("casual")),
            Some((Some("casual".into()), Some(json!("hoodie")), None))
        );
        assert_eq!(
            pick(None),
            Some((Some("default".into()), Some(json!("tank top")), None))
        );
        assert_eq!(
            pick(Some("")),
            Some((Some("default".into()), Some(json!("tank top")), None))
        );
        assert_eq!(
            pick(Some("gone")),
            Some((
                Some("default".into()),
                Some(json!("tank top")),
                Some("gone".into())
            ))
        );

        let no_default = json!({"zeta": {"top": "z"}, "alpha": {"top": "a"}, "note": "x"});
        let w = resolve_wardrobe(Some(&no_default), None).and_then(|w| w.outfit.map(str::to_owned));
        // GAZE keeps JSON keys in file order (serde_json `preserve_order`): the first written wins.
        assert_eq!(w.as_deref(), Some("zeta"));

        for bad in [json!(null), json!("x"), json!([1])] {
            assert!(resolve_wardrobe(Some(&bad), None).is_none());
        }
        assert!(resolve_wardrobe(None, None).is_none());
    }
}
