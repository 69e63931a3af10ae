//! What a category's answer must look like, read from its system prompt: the example object
//! under `SCHEMA` gives the keys and value types, and `- key (optional)` lines in the prompt
//! mark keys that may be left out. A user who edits a prompt's schema changes the check with
//! it. Also: finding the one JSON object in a model's answer.

use crate::library::category::Category;
use serde_json::{Map, Value};

#[derive(Clone, Debug)]
pub struct Schema {
    category: Category,
    example: Map<String, Value>,
    optional: Vec<String>,
}

/// The first balanced `{…}` in `text` starting at or after `from`, honouring JSON strings.
fn balanced_object(text: &str, from: usize) -> Option<&str> {
    let start = from + text.get(from..)?.find('{')?;
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in text[start..].char_indices() {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// The JSON object a model answered with. Tolerates Markdown fences and words around it, but
/// not a broken or truncated object.
pub fn extract_json(answer: &str) -> Result<Map<String, Value>, String> {
    let text = answer.trim();
    if text.is_empty() {
        return Err("the answer is empty".into());
    }
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(text) {
        return Ok(m);
    }
    let Some(obj) = balanced_object(text, 0) else {
        return Err(if text.contains('{') {
            "the JSON object is not complete (it may have been cut off)".into()
        } else {
            "the answer contains no JSON object".into()
        });
    };
    match serde_json::from_str::<Value>(obj) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the answer is not a JSON object".into()),
        Err(e) => Err(format!("the JSON is not valid: {e}")),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Whether `got` fits where the example has `want`.
fn same_shape(want: &Value, got: &Value) -> bool {
    match (want, got) {
        // null in the example: null or any scalar (an id, a seed).
        (Value::Null, Value::Null | Value::String(_) | Value::Number(_)) => true,
        (Value::String(_), Value::String(_) | Value::Null) => true,
        (Value::Number(_), Value::Number(_)) => true,
        (Value::Bool(_), Value::Bool(_)) => true,
        (Value::Array(_), Value::Array(_)) => true,
        (Value::Object(_), Value::Object(_)) => true,
        _ => false,
    }
}

fn check_value(path: &str, want: &Value, got: &Value, problems: &mut Vec<String>) {
    if !same_shape(want, got) {
        problems.push(format!(
            "\"{path}\" must be {}, not {}",
            type_name(want),
            type_name(got)
        ));
        return;
    }
    match (want, got) {
        (Value::Array(w), Value::Array(g)) => {
            if let Some(first) = w.first() {
                for (i, item) in g.iter().enumerate() {
                    if !same_shape(first, item) || item.is_null() {
                        problems.push(format!(
                            "\"{path}[{i}]\" must be {}, not {}",
                            type_name(first),
                            type_name(item)
                        ));
                    }
                }
            }
        }
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => check_value(&format!("{path}.{k}"), wv, gv, problems),
                    None => problems.push(format!("\"{path}.{k}\" is missing")),
                }
            }
        }
        _ => {}
    }
}

impl Schema {
    /// Reads the schema from a system prompt: the JSON object after the `SCHEMA` line.
    pub fn from_prompt(prompt: &str, category: Category) -> Result<Schema, String> {
        let at = prompt
            .find("SCHEMA")
            .ok_or("the system prompt has no SCHEMA section")?;
        let obj = balanced_object(prompt, at).ok_or("the SCHEMA section has no JSON object")?;
        let example = match serde_json::from_str::<Value>(obj) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err("the SCHEMA example is not a JSON object".into()),
            Err(e) => return Err(format!("the SCHEMA example is not valid JSON: {e}")),
        };
        let optional = prompt
            .lines()
            .filter_map(|l| {
                let rest = l.trim_start().strip_prefix("- ")?;
                let (key, after) = rest.split_once(' ')?;
                after.starts_with("(optional)").then(|| key.to_string())
            })
            .collect();
        Ok(Schema {
            category,
            example,
            optional,
        })
    }

    /// The keys of the schema, in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.example.keys()
    }

    /// Checks a drafted document. Returns every problem found, worded for the model.
    pub fn check(&self, doc: &Map<String, Value>) -> Result<(), Vec<String>> {
        let d = self.category.desc();
        let mut problems = Vec::new();
        let has_text = |k: &str| {
            doc.get(k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty())
        };
        if !has_text(d.id_field) && !has_text(d.name_field) {
            problems.push(format!(
                "\"{}\" (or at least \"{}\") must be a non-empty string",
                d.id_field, d.name_field
            ));
        }
        for (k, want) in &self.example {
            match doc.get(k) {
                Some(got) => check_value(k, want, got, &mut problems),
                None if self.optional.contains(k) => {}
                None => problems.push(format!("\"{k}\" is missing")),
            }
        }
        for k in doc.keys() {
            if !self.example.contains_key(k) {
                problems.push(format!("\"{k}\" is not a key of the schema"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prompt(c: Category) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/prompts")
            .join(format!("{}_system.txt", c.desc().singular));
        std::fs::read_to_string(path).unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn every_shipped_prompt_has_a_schema_its_own_example_passes() {
        for c in Category::ALL {
            let p = prompt(c);
            let s = Schema::from_prompt(&p, c).unwrap_or_else(|e| panic!("{c}: {e}"));
            assert_eq!(
                s.keys().next().map(String::as_str),
                Some(c.desc().id_field),
                "{c}"
            );
            let example = s.example.clone();
            assert_eq!(s.check(&example), Ok(()), "{c}");
        }
    }

    #[test]
    fn optional_keys_come_from_the_prompt() {
        let s = Schema::from_prompt(&prompt(Category::Characters), Category::Characters).unwrap();
        assert_eq!(s.optional, ["participants"]);
        let mut doc = s.example.clone();
        doc.remove("participants");
        assert_eq!(s.check(&doc), Ok(()));
        doc.remove("styles");
        assert_eq!(
            s.check(&doc),
            Err(vec!["\"styles\" is missing".to_string()])
        );
    }

    #[test]
    fn wrong_shapes_are_named_for_the_model() {
        let s = Schema::from_prompt(&prompt(Category::Detailers), Category::Detailers).unwrap();
        let mut doc = s.example.clone();
        doc.insert("prompt".into(), json!("sparkle, light particles"));
        doc.insert("focus".into(), json!({"face": "true"}));
        doc.insert("extra".into(), json!(1));
        let problems = s.check(&doc).unwrap_err();
        assert_eq!(
            problems,
            [
                "\"prompt\" must be a list, not a string",
                "\"focus.face\" must be true or false, not a string",
                "\"focus.hands\" is missing",
                "\"extra\" is not a key of the schema",
            ]
        );
        let mut doc = s.example.clone();
        doc.insert("prompt".into(), json!(["ok", 3]));
        doc.remove("detailer_id");
        doc.remove("detailer_name");
        let problems = s.check(&doc).unwrap_err();
        assert!(problems[0].contains("detailer_id"), "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("prompt[1]")),
            "{problems:?}"
        );
    }

    #[test]
    fn nulls_fit_where_the_example_allows_them() {
        let s = Schema::from_prompt(&prompt(Category::Presets), Category::Presets).unwrap();
        let mut doc = s.example.clone();
        doc.insert("look".into(), json!("snow_miku"));
        doc.insert("checkpoint".into(), Value::Null);
        doc.insert("seed".into(), json!(42));
        assert_eq!(s.check(&doc), Ok(()));
        doc.insert("width".into(), json!("832"));
        assert!(s.check(&doc).is_err());
    }

    #[test]
    fn json_is_found_in_fences_and_prose_but_not_when_cut_off() {
        let want = obj(json!({"a": "x}"}));
        for answer in [
            r#"{"a": "x}"}"#,
            "```json\n{\"a\": \"x}\"}\n```",
            "Here it is:\n{\"a\": \"x}\"}\nDone.",
        ] {
            assert_eq!(extract_json(answer), Ok(want.clone()), "{answer}");
        }
        assert!(extract_json("{\"a\": \"x").unwrap_err().contains("cut off"));
        assert!(
            extract_json("no json here")
                .unwrap_err()
                .contains("no JSON")
        );
        assert!(extract_json("").unwrap_err().contains("empty"));
        assert!(
            extract_json("{\"a\": tru}")
                .unwrap_err()
                .contains("not valid")
        );
    }
}
