//! Compact recipes: a job's recipe stored as the difference from the recipe of an earlier
//! job (its base), so the ledger keeps the workflow graph once per shape instead of once per
//! image. Pure: the base is handed in, nothing is read. `shape` and `class` say which earlier
//! recipes make good bases (the handle's writer keeps them).
//!
//! `diff` finds what differs, member by member and item by item, and keeps every text it
//! sets once (a prompt appears both in the recipe's prompts and in the graph's nodes).
//! `expand` writes the recipe text back from the base and the patch, exactly as serde_json
//! wrote the original; the writer only stores a patch after checking that `expand` gives the
//! requested text back byte for byte, so a recipe always reads back identical.

use crate::store::event::{PatchNode, PatchValue, RecipePatch};
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// The shape of a recipe: its top-level keys and its workflow's node ids and classes. Recipes
/// of one shape differ in prompts, seeds, weights and names, which makes their patches small.
pub fn shape(recipe: &Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if let Value::Object(m) = recipe {
        for k in m.keys() {
            k.hash(&mut h);
        }
        if let Some(Value::Object(nodes)) = m.get("workflow") {
            for (id, node) in nodes {
                id.hash(&mut h);
                node.get("class_type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .hash(&mut h);
            }
        }
    }
    h.finish()
}

/// The class of a recipe: its shape and the library documents it was made from. Recipes of
/// one class differ in little more than their seeds.
pub fn class(recipe: &Value, shape: u64) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    shape.hash(&mut h);
    if let Some(Value::Object(versions)) = recipe.get("versions") {
        for k in versions.keys() {
            k.hash(&mut h);
        }
    }
    if let Some(c) = recipe.get("character").and_then(Value::as_str) {
        c.hash(&mut h);
    }
    h.finish()
}

/// The patch that turns `base` into `new`, naming `base_seq` as its base.
pub fn diff(base: &Value, new: &Value, base_seq: u64) -> RecipePatch {
    let mut strings = Strings::default();
    let root = node(base, new, &mut strings);
    RecipePatch {
        base: base_seq,
        strings: strings.list,
        root,
    }
}

/// About how many bytes a patch takes when stored: its texts plus a few bytes per change.
pub fn patch_size(p: &RecipePatch) -> usize {
    fn nodes(n: &PatchNode) -> usize {
        match n {
            PatchNode::Same => 1,
            PatchNode::Set(v) => 1 + values(v),
            PatchNode::Members(c) | PatchNode::Items(c) => {
                2 + c.iter().map(|(_, n)| 2 + nodes(n)).sum::<usize>()
            }
        }
    }
    fn values(v: &PatchValue) -> usize {
        match v {
            PatchValue::List(l) => 2 + l.iter().map(values).sum::<usize>(),
            PatchValue::Map(m) => 2 + m.iter().map(|(_, v)| 2 + values(v)).sum::<usize>(),
            PatchValue::Float(_) => 9,
            PatchValue::Unsigned(_) | PatchValue::Signed(_) => 5,
            _ => 2,
        }
    }
    p.strings.iter().map(|s| s.len() + 2).sum::<usize>() + nodes(&p.root) + 8
}

/// The recipe text `base` and `patch` stand for, written as serde_json writes compact JSON.
pub fn expand(base: &Value, patch: &RecipePatch) -> Result<String, String> {
    let mut out = Vec::with_capacity(8 * 1024);
    write_node(&mut out, base, &patch.root, &patch.strings)?;
    String::from_utf8(out).map_err(|e| format!("the expanded recipe is not UTF-8: {e}"))
}

#[derive(Default)]
struct Strings<'a> {
    list: Vec<String>,
    index: HashMap<&'a str, u32>,
}

impl<'a> Strings<'a> {
    fn id(&mut self, s: &'a str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.to_string());
        self.index.insert(s, i);
        i
    }
}

fn node<'a>(base: &Value, new: &'a Value, strings: &mut Strings<'a>) -> PatchNode {
    match (base, new) {
        (Value::Object(b), Value::Object(n)) if b.len() == n.len() && b.keys().eq(n.keys()) => {
            let changes: Vec<(u32, PatchNode)> = b
                .values()
                .zip(n.values())
                .enumerate()
                .filter_map(|(i, (bv, nv))| match node(bv, nv, strings) {
                    PatchNode::Same => None,
                    changed => Some((i as u32, changed)),
                })
                .collect();
            if changes.is_empty() {
                PatchNode::Same
            } else {
                PatchNode::Members(changes)
            }
        }
        (Value::Array(b), Value::Array(n)) if b.len() == n.len() => {
            let changes: Vec<(u32, PatchNode)> = b
                .iter()
                .zip(n)
                .enumerate()
                .filter_map(|(i, (bv, nv))| match node(bv, nv, strings) {
                    PatchNode::Same => None,
                    changed => Some((i as u32, changed)),
                })
                .collect();
            if changes.is_empty() {
                PatchNode::Same
            } else {
                PatchNode::Items(changes)
            }
        }
        (Value::Null, Value::Null) => PatchNode::Same,
        (Value::Bool(a), Value::Bool(b)) if a == b => PatchNode::Same,
        (Value::String(a), Value::String(b)) if a == b => PatchNode::Same,
        // Equal numbers of the same kind print the same.
        (Value::Number(a), Value::Number(b)) if a == b => PatchNode::Same,
        _ => PatchNode::Set(value(new, strings)),
    }
}

fn value<'a>(v: &'a Value, strings: &mut Strings<'a>) -> PatchValue {
    match v {
        Value::Null => PatchValue::Null,
        Value::Bool(b) => PatchValue::Bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                PatchValue::Unsigned(u)
            } else if let Some(i) = n.as_i64() {
                PatchValue::Signed(i)
            } else {
                PatchValue::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => PatchValue::Text(strings.id(s)),
        Value::Array(a) => PatchValue::List(a.iter().map(|x| value(x, strings)).collect()),
        Value::Object(m) => PatchValue::Map(
            m.iter()
                .map(|(k, x)| (strings.id(k), value(x, strings)))
                .collect(),
        ),
    }
}

fn text(strings: &[String], i: u32) -> Result<&str, String> {
    strings
        .get(i as usize)
        .map(String::as_str)
        .ok_or_else(|| format!("the patch names text {i} of {}", strings.len()))
}

fn json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> Result<(), String> {
    serde_json::to_writer(out, v).map_err(|e| e.to_string())
}

fn write_node(
    out: &mut Vec<u8>,
    base: &Value,
    node: &PatchNode,
    strings: &[String],
) -> Result<(), String> {
    match node {
        PatchNode::Same => json(out, base),
        PatchNode::Set(v) => write_value(out, v, strings),
        PatchNode::Members(changes) => {
            let Value::Object(m) = base else {
                return Err("the patch changes members of a value that is not an object".into());
            };
            let mut next = changes.iter().peekable();
            out.push(b'{');
            for (i, (k, bv)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json(out, k)?;
                out.push(b':');
                match next.next_if(|(at, _)| *at as usize == i) {
                    Some((_, n)) => write_node(out, bv, n, strings)?,
                    None => json(out, bv)?,
                }
            }
            out.push(b'}');
            match next.next() {
                None => Ok(()),
                Some((at, _)) => Err(format!("the patch changes member {at} of {}", m.len())),
            }
        }
        PatchNode::Items(changes) => {
            let Value::Array(a) = base else {
                return Err("the patch changes items of a value that is not an array".into());
            };
            let mut next = changes.iter().peekable();
            out.push(b'[');
            for (i, bv) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match next.next_if(|(at, _)| *at as usize == i) {
                    Some((_, n)) => write_node(out, bv, n, strings)?,
                    None => json(out, bv)?,
                }
            }
            out.push(b']');
            match next.next() {
                None => Ok(()),
                Some((at, _)) => Err(format!("the patch changes item {at} of {}", a.len())),
            }
        }
    }
}

fn write_value(out: &mut Vec<u8>, v: &PatchValue, strings: &[String]) -> Result<(), String> {
    match v {
        PatchValue::Null => out.extend_from_slice(b"null"),
        PatchValue::Bool(b) => json(out, b)?,
        PatchValue::Unsigned(u) => json(out, u)?,
        PatchValue::Signed(i) => json(out, i)?,
        PatchValue::Float(f) => json(out, f)?,
        PatchValue::Text(i) => json(out, text(strings, *i)?)?,
        PatchValue::List(items) => {
            out.push(b'[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, x, strings)?;
            }
            out.push(b']');
        }
        PatchValue::Map(members) => {
            out.push(b'{');
            for (i, (k, x)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json(out, text(strings, *k)?)?;
                out.push(b':');
                write_value(out, x, strings)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(base: &Value, new: &Value) -> RecipePatch {
        let text = serde_json::to_string(new).unwrap();
        let p = diff(base, new, 3);
        assert_eq!(p.base, 3);
        assert_eq!(expand(base, &p).unwrap(), text, "{base} → {new}");
        p
    }

    #[test]
    fn every_kind_of_change_expands_to_the_exact_text() {
        let base = json!({"a": 1, "b": [1, 2, {"x": "y"}], "c": {"d": "e", "f": null}, "g": 0.5});
        let cases = [
            json!({"a": 1, "b": [1, 2, {"x": "y"}], "c": {"d": "e", "f": null}, "g": 0.5}),
            json!({"a": 2, "b": [1, 2, {"x": "y"}], "c": {"d": "e", "f": null}, "g": 0.5}),
            json!({"a": -2, "b": [1, 2, {"x": "z"}], "c": {"d": "e", "f": true}, "g": 0.1}),
            json!({"a": 1.0, "b": [1, 2], "c": {"f": null, "d": "e"}, "g": 1e300}),
            json!({"a": "1", "b": {"k": [null, false, -0.0]}, "c": [], "g": u64::MAX}),
            json!({"a": 1, "b": [1, 2, {"x": "y"}], "c": {"d": "e", "f": null}}),
            json!({"a": 1, "b": [1, 2, {"x": "y"}], "c": {"d": "e", "f": null}, "g": 0.5, "h": 1}),
            json!([1, 2, 3]),
            json!("just text with \"quotes\", \\ and \u{1F600} and \n"),
            json!(null),
        ];
        for new in &cases {
            round_trip(&base, new);
        }
    }

    #[test]
    fn an_unchanged_recipe_is_one_same() {
        let v = json!({"a": [1, {"b": "c"}]});
        let p = round_trip(&v, &v.clone());
        assert_eq!(p.root, PatchNode::Same);
        assert!(p.strings.is_empty());
    }

    #[test]
    fn a_text_used_twice_is_stored_once() {
        let base = json!({"prompts": {"main": "a"}, "workflow": {"6": {"inputs": {"text": "a"}}}});
        let new = json!({"prompts": {"main": "1girl, long hair"}, "workflow": {"6": {"inputs": {"text": "1girl, long hair"}}}});
        let p = round_trip(&base, &new);
        assert_eq!(p.strings, vec!["1girl, long hair".to_string()]);
    }

    #[test]
    fn a_moved_or_renamed_key_replaces_the_object_and_still_expands() {
        let base = json!({"x": {"a": 1, "b": 2}});
        let p = round_trip(&base, &json!({"x": {"b": 2, "a": 1}}));
        assert!(matches!(p.root, PatchNode::Members(ref m) if matches!(m[0].1, PatchNode::Set(_))));
    }

    #[test]
    fn a_patch_that_does_not_fit_its_base_is_an_error() {
        let p = diff(&json!({"a": [1, 2]}), &json!({"a": [1, 3]}), 1);
        assert!(expand(&json!({"a": {"b": 1}}), &p).is_err());
        assert!(expand(&json!({"a": [1]}), &p).is_err());
        assert!(expand(&json!([1]), &p).is_err());
        let bad = RecipePatch {
            base: 1,
            strings: vec![],
            root: PatchNode::Set(PatchValue::Text(4)),
        };
        assert!(expand(&json!(1), &bad).is_err());
    }

    #[test]
    fn class_follows_the_documents_used() {
        let a = json!({"seed": 1, "character": "tifa", "versions": {"characters/tifa": 3, "checkpoints/x": 4}});
        let b = json!({"seed": 2, "character": "tifa", "versions": {"characters/tifa": 9, "checkpoints/x": 4}});
        let c = json!({"seed": 1, "character": "link", "versions": {"characters/link": 3, "checkpoints/x": 4}});
        assert_eq!(class(&a, 1), class(&b, 1));
        assert_ne!(class(&a, 1), class(&a, 2));
        assert_ne!(class(&a, 1), class(&c, 1));
    }

    #[test]
    fn shape_follows_the_graph_not_its_inputs() {
        let a = json!({"seed": 1, "workflow": {"3": {"class_type": "KSampler", "inputs": {"seed": 1}}}});
        let b = json!({"seed": 2, "workflow": {"3": {"class_type": "KSampler", "inputs": {"seed": 2}}}});
        let c = json!({"seed": 1, "workflow": {"3": {"class_type": "KSamplerAdvanced", "inputs": {"seed": 1}}}});
        let d = json!({"seed": 1, "workflow": {"4": {"class_type": "KSampler", "inputs": {"seed": 1}}}});
        assert_eq!(shape(&a), shape(&b));
        assert_ne!(shape(&a), shape(&c));
        assert_ne!(shape(&a), shape(&d));
    }

    #[test]
    fn real_recipes_of_one_shape_make_small_patches() {
        let lib = crate::library::sync::library_from_disk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data"),
        );
        let recipe = |slug: &str, seed: u64| -> String {
            let req = crate::jobs::request::GenRequest {
                target: Some((crate::library::category::Category::Characters, slug.into())),
                seed: Some(seed),
                ..Default::default()
            };
            let r = crate::jobs::request::resolve(&lib, &req, 0, &Default::default()).unwrap();
            let text = r.recipe_text();
            // The value the request path hands the writer is the same recipe.
            assert_eq!(r.recipe(), serde_json::from_str::<Value>(&text).unwrap());
            assert_eq!(r.into_recipe().to_string(), text);
            text
        };
        let base_text = recipe("tifa_lockhart", 1);
        let base: Value = serde_json::from_str(&base_text).unwrap();
        // Link also has a character LoRA, so his recipe has Tifa's shape; Aerith's does not
        // (an unused LoRA node is left out), which only makes her patch larger.
        for (slug, seed) in [
            ("tifa_lockhart", 2),
            ("tifa_lockhart", 9_007_199_254_740_991),
            ("link", 3),
            ("aerith_gainsborough", 4),
        ] {
            let text = recipe(slug, seed);
            let new: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                shape(&base) == shape(&new),
                slug != "aerith_gainsborough",
                "{slug}"
            );
            let p = diff(&base, &new, 1);
            assert_eq!(expand(&base, &p).unwrap(), text);
            let stored = bincode::serde::encode_to_vec(&p, bincode::config::standard()).unwrap();
            if slug != "aerith_gainsborough" {
                assert!(
                    stored.len() * 4 < text.len(),
                    "{slug}: {} of {}",
                    stored.len(),
                    text.len()
                );
            }
            if slug == "tifa_lockhart" {
                assert!(
                    stored.len() < 100,
                    "only the seed changed: {} bytes",
                    stored.len()
                );
            }
            assert!(
                patch_size(&p) >= stored.len() / 2,
                "the estimate is in the right range"
            );
        }
    }
}
