//! Finding entries of every category by their words: name, id, tags and the text of every
//! field. One word index per category, made once per shelf generation (the caller keeps it);
//! a query's terms match words they begin (three letters or more) or equal (shorter), and
//! every term must match. Hits in the name, id or tags rank before hits in field text. Also
//! the natural order of names ("Character 2" before "Character 10"). Pure: no IO.

use crate::library::category::Category;
use crate::library::projection::Library;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::HashMap;

const MIN_PREFIX: usize = 3;

/// A category's word index.
#[derive(Debug, Default)]
pub struct EntryIndex {
    pub category: Option<Category>,
    pub generation: u64,
    /// Slugs, in natural name order (the order hits are listed in).
    pub slugs: Vec<String>,
    /// (word, entries whose name/id/tags hold it, entries whose other fields hold it), sorted
    /// by word; entry numbers ascending.
    words: Vec<(Box<str>, Vec<u32>, Vec<u32>)>,
}

/// One entry found.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub slug: String,
    /// Every term matched the name, id or tags.
    pub strong: bool,
}

/// A category's hits: the first `limit` (strong ones first) and how many in all.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub category: Category,
    pub hits: Vec<Hit>,
    pub total: usize,
}

/// Lower-case words of a text (letters and digits).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// A sort key that orders names naturally: case folded, every run of digits compared by its
/// value ("synth character 2" < "synth character 10").
pub fn natural_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.is_empty() {
            return;
        }
        let trimmed = digits.trim_start_matches('0');
        let n = if trimmed.is_empty() { "0" } else { trimmed };
        // Length first, so any longer number sorts after any shorter one.
        out.push(char::from(b'0' + (n.len().min(40) as u8)));
        out.push_str(n);
        digits.clear();
    };
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.extend(c.to_lowercase());
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// Natural comparison (see `natural_key`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    natural_key(a).cmp(&natural_key(b)).then_with(|| a.cmp(b))
}

fn collect_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push(' ');
            out.push_str(s);
        }
        Value::Array(a) => a.iter().for_each(|x| collect_text(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_text(x, out)),
        _ => {}
    }
}

impl EntryIndex {
    /// Indexes a category's entries.
    pub fn build(lib: &Library, c: Category) -> EntryIndex {
        let shelf = lib.shelf(c);
        let mut list: Vec<(&String, String)> = shelf
            .docs
            .values()
            .map(|e| (&e.slug, natural_key(&e.name)))
            .collect();
        list.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
        let mut map: HashMap<String, (Vec<u32>, Vec<u32>)> = HashMap::new();
        let mut slugs = Vec::with_capacity(list.len());
        for (n, (slug, _)) in list.into_iter().enumerate() {
            let Some(e) = shelf.docs.get(slug) else {
                continue;
            };
            slugs.push(slug.clone());
            let n = n as u32;
            let v = e.value();
            let mut head = format!("{} {} {}", e.name, e.id, e.slug);
            if let Some(tags) = v.get("tags") {
                collect_text(tags, &mut head);
            }
            let mut body = String::new();
            if let Value::Object(m) = &*v {
                for (k, x) in m {
                    if k != "tags" {
                        collect_text(x, &mut body);
                    }
                }
            }
            for w in words(&head) {
                let p = &mut map.entry(w).or_default().0;
                if p.last() != Some(&n) {
                    p.push(n);
                }
            }
            for w in words(&body) {
                let p = &mut map.entry(w).or_default().1;
                if p.last() != Some(&n) {
                    p.push(n);
                }
            }
        }
        let mut words: Vec<(Box<str>, Vec<u32>, Vec<u32>)> = map
            .into_iter()
            .map(|(w, (h, b))| (w.into_boxed_str(), h, b))
            .collect();
        words.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        EntryIndex {
            category: Some(c),
            generation: shelf.generation,
            slugs,
            words,
        }
    }

    /// The words a term matches.
    fn matches<'a>(
        &'a self,
        term: &'a str,
    ) -> impl Iterator<Item = &'a (Box<str>, Vec<u32>, Vec<u32>)> {
        let start = self.words.partition_point(|w| *w.0 < *term);
        let prefix = term.chars().count() >= MIN_PREFIX;
        self.words[start..].iter().take_while(move |w| {
            if prefix {
                w.0.starts_with(term)
            } else {
                *w.0 == *term
            }
        })
    }

    /// Entries every term of `query` matches: the first `limit` (those matching in name, id
    /// or tags first) and the count of all.
    pub fn search(&self, query: &str, limit: usize) -> Found {
        let category = self.category.unwrap_or(Category::Characters);
        let terms: Vec<String> = words(query).collect();
        let n = self.slugs.len();
        if terms.is_empty() || n == 0 {
            return Found {
                category,
                hits: Vec::new(),
                total: 0,
            };
        }
        // Two bits per entry and term: anywhere, and in the head.
        let mut any = vec![true; n];
        let mut strong = vec![true; n];
        for t in &terms {
            let mut here = vec![false; n];
            let mut head = vec![false; n];
            for (_, h, b) in self.matches(t) {
                for &i in h {
                    here[i as usize] = true;
                    head[i as usize] = true;
                }
                for &i in b {
                    here[i as usize] = true;
                }
            }
            for i in 0..n {
                any[i] &= here[i];
                strong[i] &= head[i];
            }
        }
        let total = any.iter().filter(|x| **x).count();
        let mut hits: Vec<Hit> = (0..n)
            .filter(|&i| strong[i])
            .map(|i| Hit {
                slug: self.slugs[i].clone(),
                strong: true,
            })
            .take(limit)
            .collect();
        if hits.len() < limit {
            hits.extend(
                (0..n)
                    .filter(|&i| any[i] && !strong[i])
                    .map(|i| Hit {
                        slug: self.slugs[i].clone(),
                        strong: false,
                    })
                    .take(limit - hits.len()),
            );
        }
        Found {
            category,
            hits,
            total,
        }
    }
}

/// Where in an entry's document a query's first term appears (for showing why a weak hit
/// matched): the field's dotted path and its text.
pub fn matched_field(v: &Value, query: &str) -> Option<(String, String)> {
    let term = words(query).next()?;
    fn walk(v: &Value, path: &str, term: &str) -> Option<(String, String)> {
        match v {
            Value::String(s) => words(s)
                .any(|w| w.starts_with(term))
                .then(|| (path.to_string(), s.clone())),
            Value::Array(a) => {
                let text: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                let joined = text.join(", ");
                if words(&joined).any(|w| w.starts_with(term)) {
                    return Some((path.to_string(), joined));
                }
                a.iter().find_map(|x| walk(x, path, term))
            }
            Value::Object(m) => m.iter().find_map(|(k, x)| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(x, &p, term)
            }),
            _ => None,
        }
    }
    walk(v, "", &term)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::command::{Command, decide};
    use crate::store::event::{Envelope, Origin, Source, Stored};
    use serde_json::json;

    fn lib_with(docs: &[Value]) -> Library {
        let mut lib = Library::default();
        let mut seq = 0;
        for d in docs {
            let cmd = Command::Create {
                category: Category::Characters,
                doc: d.as_object().cloned().unwrap(),
                source: Source::Manual,
            };
            for e in decide(&lib, &cmd).unwrap() {
                seq += 1;
                lib.apply(&Stored {
                    seq,
                    envelope: Envelope {
                        id: seq as u128,
                        at: 0,
                        origin: Origin::Web,
                        event: e,
                    },
                });
            }
        }
        lib
    }

    #[test]
    fn natural_order_compares_numbers_by_value() {
        let mut names = vec![
            "Synth Character 100",
            "Synth Character 10",
            "synth character 2",
            "Synth Character 0",
            "Synth Character 1000",
            "Synth Character 1",
            "Alpha",
            "Synth Character 007",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "Alpha",
                "Synth Character 0",
                "Synth Character 1",
                "synth character 2",
                "Synth Character 007",
                "Synth Character 10",
                "Synth Character 100",
                "Synth Character 1000"
            ]
        );
        assert!(natural_key("a9") < natural_key("a10"));
        assert!(natural_key("v1.2") < natural_key("v1.10"));
    }

    #[test]
    fn entries_are_found_by_name_id_tags_and_field_text() {
        let lib = lib_with(&[
            json!({"character_id": "tifa_lockhart", "character_name": "Tifa Lockhart",
                   "identity": {"hair": "black hair"}, "tags": ["final fantasy"]}),
            json!({"character_id": "aerith", "character_name": "Aerith",
                   "identity": {"hair": "brown hair"}, "wardrobe": {"default": {"top": "pink dress"}},
                   "tags": ["final fantasy"]}),
            json!({"character_id": "miku", "character_name": "Hatsune Miku",
                   "identity": {"hair": "aqua hair, twintails"}, "tags": ["vocaloid"]}),
        ]);
        let ix = EntryIndex::build(&lib, Category::Characters);
        let slugs = |q: &str| -> Vec<(String, bool)> {
            ix.search(q, 10)
                .hits
                .into_iter()
                .map(|h| (h.slug, h.strong))
                .collect()
        };
        let s = |x: &str, strong: bool| (x.to_string(), strong);
        assert_eq!(slugs("tifa"), [s("tifa_lockhart", true)]);
        assert_eq!(
            slugs("Final Fan"),
            [s("aerith", true), s("tifa_lockhart", true)]
        );
        assert_eq!(slugs("pink"), [s("aerith", false)]);
        assert_eq!(
            slugs("hair"),
            [
                s("aerith", false),
                s("miku", false),
                s("tifa_lockhart", false)
            ]
        );
        assert_eq!(slugs("final pink"), [s("aerith", false)]);
        assert_eq!(slugs("twin vocaloid"), [s("miku", false)]);
        assert_eq!(
            slugs("mi"),
            Vec::<(String, bool)>::new(),
            "short terms are whole words"
        );
        assert_eq!(slugs("nothing"), Vec::<(String, bool)>::new());
        assert_eq!(ix.search("hair", 1).total, 3);
        assert_eq!(ix.search("hair", 1).hits.len(), 1);
        let v = lib.get(Category::Characters, "aerith").unwrap().value();
        assert_eq!(
            matched_field(&v, "pink"),
            Some(("wardrobe.default.top".into(), "pink dress".into()))
        );
        assert_eq!(
            matched_field(&v, "fant"),
            Some(("tags".into(), "final fantasy".into()))
        );
    }
}
