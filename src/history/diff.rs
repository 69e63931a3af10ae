//! Field-level differences between two JSON documents (entry versions, recipes, workflows):
//! nested fields by `section::key` path, tag lists compared as sets (a tag kept, removed or
//! added, whatever its position), other values shown before and after. Pure.

use crate::engine::tags::split_tags;
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

/// Tags compared as sets: what only the old side had, what only the new side has, and what
/// both share, each in the order it appears.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct TagDiff {
    pub removed: Vec<String>,
    pub added: Vec<String>,
    pub kept: Vec<String>,
}

/// One field that differs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldDiff {
    /// `section::key` (top-level fields by their key alone).
    pub path: String,
    pub change: Change,
    /// The old value as text (strings as they are, anything else as JSON).
    pub before: Option<String>,
    pub after: Option<String>,
    /// Set when the values are tag lists (a comma-separated string or a list of strings).
    pub tags: Option<TagDiff>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The tags of a value, if it reads as a tag list: a string with more than one tag, or a
/// list of strings.
fn tag_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => {
            let tags: Vec<String> = split_tags(s).map(String::from).collect();
            (tags.len() > 1).then_some(tags)
        }
        Value::Array(a) if a.iter().all(Value::is_string) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
        _ => None,
    }
}

/// Compares two tag lists as sets.
pub fn tag_diff(before: &[String], after: &[String]) -> TagDiff {
    let mut d = TagDiff::default();
    for t in before {
        if after.contains(t) {
            if !d.kept.contains(t) {
                d.kept.push(t.clone());
            }
        } else if !d.removed.contains(t) {
            d.removed.push(t.clone());
        }
    }
    for t in after {
        if !before.contains(t) && !d.added.contains(t) {
            d.added.push(t.clone());
        }
    }
    d
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}::{key}")
    }
}

fn walk(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<FieldDiff>) {
    match (a, b) {
        (None, None) => {}
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            for (k, v) in x {
                walk(&join(path, k), Some(v), y.get(k), out);
            }
            for (k, v) in y {
                if !x.contains_key(k) {
                    walk(&join(path, k), None, Some(v), out);
                }
            }
        }
        (Some(x), Some(y)) if x == y => {}
        (a, b) => {
            let tags = match (a.map(tag_list), b.map(tag_list)) {
                (Some(Some(x)), Some(Some(y))) => Some(tag_diff(&x, &y)),
                (Some(Some(x)), None) => Some(tag_diff(&x, &[])),
                (None, Some(Some(y))) => Some(tag_diff(&[], &y)),
                // One side is one tag (a plain string), the other a list: still tags.
                (Some(Some(x)), Some(None)) if b.is_some_and(Value::is_string) => {
                    Some(tag_diff(&x, &tag_of(b)))
                }
                (Some(None), Some(Some(y))) if a.is_some_and(Value::is_string) => {
                    Some(tag_diff(&tag_of(a), &y))
                }
                _ => None,
            };
            out.push(FieldDiff {
                path: path.to_string(),
                change: match (a, b) {
                    (None, _) => Change::Added,
                    (_, None) => Change::Removed,
                    _ => Change::Changed,
                },
                before: a.map(text),
                after: b.map(text),
                tags,
            });
        }
    }
}

fn tag_of(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_str)
        .map(|s| split_tags(s).map(String::from).collect())
        .unwrap_or_default()
}

/// Every field that differs between `before` and `after` (either may be absent: a document
/// that did not exist), in document order.
pub fn diff(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

/// Like `diff`, for document texts (text that is not JSON compares as one string).
pub fn diff_texts(before: Option<&str>, after: Option<&str>) -> Vec<FieldDiff> {
    let parse = |t: &str| serde_json::from_str::<Value>(t).unwrap_or(Value::String(t.into()));
    let a = before.map(parse);
    let b = after.map(parse);
    diff(a.as_ref(), b.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn tag_lists_compare_as_sets() {
        for (a, b, removed, added, kept) in [
            (
                "red, blue",
                "blue, red",
                vec![],
                vec![],
                vec!["red", "blue"],
            ),
            (
                "red, blue",
                "blue, green",
                vec!["red"],
                vec!["green"],
                vec!["blue"],
            ),
            ("a, a, b", "b", vec!["a"], vec![], vec!["b"]),
            (
                "(x, y:1.2), z",
                "z, (x, y:1.2)",
                vec![],
                vec![],
                vec!["(x, y:1.2)", "z"],
            ),
            (
                "(hat:1.2), coat",
                "hat, coat",
                vec!["(hat:1.2)"],
                vec!["hat"],
                vec!["coat"],
            ),
        ] {
            let d = diff(Some(&json!({ "t": a })), Some(&json!({ "t": b })));
            let want = TagDiff {
                removed: s(&removed),
                added: s(&added),
                kept: s(&kept),
            };
            if a == b {
                assert!(d.is_empty());
                continue;
            }
            assert_eq!(d.len(), 1, "{a} → {b}");
            assert_eq!(d[0].tags.as_ref(), Some(&want), "{a} → {b}");
            assert_eq!(d[0].change, Change::Changed);
        }
    }

    #[test]
    fn nested_fields_are_named_by_path() {
        let a = json!({
            "character_id": "tifa",
            "identity": {"hair": "black hair, long hair", "eyes": "red eyes"},
            "wardrobe": {"default": {"top": "white tank top"}},
            "lora": {"lora_weight": 0.8},
            "tags": ["ff7"],
            "gone": "x"
        });
        let b = json!({
            "character_id": "tifa",
            "identity": {"hair": "black hair, very long hair", "eyes": "red eyes"},
            "wardrobe": {"default": {"top": "black tank top"}},
            "lora": {"lora_weight": 1.0},
            "tags": ["ff7", "fighter"],
            "new": {"deep": true}
        });
        let d = diff(Some(&a), Some(&b));
        let got: Vec<(&str, Change)> = d.iter().map(|f| (f.path.as_str(), f.change)).collect();
        assert_eq!(
            got,
            [
                ("identity::hair", Change::Changed),
                ("wardrobe::default::top", Change::Changed),
                ("lora::lora_weight", Change::Changed),
                ("tags", Change::Changed),
                ("gone", Change::Removed),
                ("new", Change::Added),
            ]
        );
        assert_eq!(
            d[0].tags.as_ref().unwrap().added,
            ["very long hair".to_string()]
        );
        assert!(d[1].tags.is_none(), "one tag each side is a plain change");
        assert_eq!(d[1].before.as_deref(), Some("white tank top"));
        assert_eq!(d[2].before.as_deref(), Some("0.8"));
        assert_eq!(d[2].after.as_deref(), Some("1.0"));
        assert_eq!(d[3].tags.as_ref().unwrap().added, ["fighter".to_string()]);
        assert_eq!(d[4].before.as_deref(), Some("x"));
        assert_eq!(d[5].after.as_deref(), Some("{\"deep\":true}"));
    }

    #[test]
    fn whole_documents_appear_and_disappear() {
        let doc = json!({"a": "x, y", "b": 1});
        let added = diff(None, Some(&doc));
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].path, "");
        assert_eq!(added[0].change, Change::Added);
        assert!(diff(Some(&doc), Some(&doc)).is_empty());
        let removed = diff_texts(Some("{\"a\": \"x, y\"}"), None);
        assert_eq!(removed[0].change, Change::Removed);
        let one_side = diff(Some(&json!({"t": "a, b"})), Some(&json!({})));
        assert_eq!(
            one_side[0].tags.as_ref().unwrap().removed,
            s(&["a", "b"]),
            "a removed tag list lists its tags"
        );
        let grew = diff(Some(&json!({"t": "a"})), Some(&json!({"t": "a, b"})));
        assert_eq!(grew[0].tags.as_ref().unwrap().added, s(&["b"]));
        assert_eq!(grew[0].tags.as_ref().unwrap().kept, s(&["a"]));
        let typed = diff(Some(&json!({"t": {"x": 1}})), Some(&json!({"t": 2})));
        assert_eq!(typed[0].before.as_deref(), Some("{\"x\":1}"));
        assert!(diff_texts(Some("not json"), Some("not json")).is_empty());
    }
}
