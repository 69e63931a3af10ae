//! The Danbooru tag index: `data/danbooru-tags.csv` (name, type, post count, aliases) loaded
//! into memory for prefix and alias look-up ranked by post count, whole-word search, a category
//! filter, exact validation with alias → canonical correction, and spelling suggestions.
//! `_` and spaces are the same everywhere; names come back in Danbooru's underscore form.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// A Danbooru tag type (the CSV's type column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagKind {
    General,
    Artist,
    Copyright,
    Character,
    Meta,
}

impl TagKind {
    pub const ALL: [TagKind; 5] = [
        TagKind::General,
        TagKind::Artist,
        TagKind::Copyright,
        TagKind::Character,
        TagKind::Meta,
    ];

    fn from_code(code: &str) -> Option<TagKind> {
        match code.trim() {
            "0" => Some(TagKind::General),
            "1" => Some(TagKind::Artist),
            "3" => Some(TagKind::Copyright),
            "4" => Some(TagKind::Character),
            "5" => Some(TagKind::Meta),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TagKind::General => "general",
            TagKind::Artist => "artist",
            TagKind::Copyright => "copyright",
            TagKind::Character => "character",
            TagKind::Meta => "meta",
        }
    }

    /// Parses a category filter: a name (`general`, `character`, …) or the CSV's type code.
    /// An empty filter is none.
    pub fn parse_filter(s: Option<&str>) -> Result<Option<TagKind>, String> {
        let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let lower = s.to_ascii_lowercase();
        TagKind::ALL
            .into_iter()
            .find(|k| k.as_str() == lower)
            .or_else(|| TagKind::from_code(&lower))
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "unknown tag category '{s}' (use general, artist, copyright, character or meta)"
                )
            })
    }
}

#[derive(Clone, Debug)]
pub struct Tag {
    /// Danbooru's spelling, with underscores.
    pub name: Arc<str>,
    pub kind: TagKind,
    pub count: u32,
    pub aliases: Box<[Arc<str>]>,
}

/// One search or suggestion result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hit {
    /// The canonical tag, with underscores.
    pub name: String,
    pub category: &'static str,
    pub post_count: u32,
    /// The alias that matched, when the match was through an alias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// What `validate` found: tags as given that exist, tags that do not, and for aliases the
/// canonical tag to use instead.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Validation {
    pub valid: Vec<String>,
    pub invalid: Vec<String>,
    pub corrections: BTreeMap<String, String>,
}

/// The loaded index. Tags are stored by descending post count, so a tag's index is its rank
/// and "most popular first" is "smallest index first". Names and aliases are kept sorted in
/// parallel arrays: a prefix look-up finds its range by binary search and then scans only the
/// dense tag-id and kind arrays, never the strings.
pub struct TagIndex {
    tags: Vec<Tag>,
    /// Names and aliases (normalised), sorted.
    keys: Vec<Arc<str>>,
    /// The tag each key belongs to.
    key_tag: Vec<u32>,
    /// Whether each key is an alias (names sort before aliases of the same spelling).
    key_alias: Vec<bool>,
    /// The kind of each key's tag.
    key_kind: Vec<TagKind>,
    /// Whole words of tag names → tags containing them, by rank.
    words: HashMap<Box<str>, Vec<u32>>,
}

/// Lower case, trimmed, runs of whitespace and `_` as one `_`, `\(` `\)` unescaped (prompt
/// syntax), so "Long Hair", "long_hair" and "long  hair" are the same key.
pub fn normalize(s: &str) -> String {
    let b = s.as_bytes();
    let plain = !b.is_empty()
        && b[0] != b'_'
        && b[b.len() - 1] != b'_'
        && !s.contains("__")
        && b.iter().all(|&c| {
            c.is_ascii() && !c.is_ascii_uppercase() && !c.is_ascii_whitespace() && c != b'\\'
        });
    if plain {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut pending_sep = false;
    let mut chars = s.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('(' | ')')) {
            continue;
        }
        if c.is_whitespace() || c == '_' {
            pending_sep = !out.is_empty();
            continue;
        }
        if pending_sep {
            out.push('_');
            pending_sep = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Splits one CSV line into fields (RFC 4180 quotes, `""` inside quotes).
fn csv_fields(line: &str) -> Vec<String> {
    if !line.contains('"') {
        return line.split(',').map(String::from).collect();
    }
    let mut fields = Vec::with_capacity(4);
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

impl TagIndex {
    /// Reads the CSV file.
    pub fn load(path: &Path) -> Result<TagIndex, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the tag list {}: {e}", path.display()))?;
        let index = TagIndex::parse(&text);
        if index.is_empty() {
            return Err(format!("the tag list {} has no tags", path.display()));
        }
        Ok(index)
    }

    /// Builds the index from CSV text. Lines that are not `name,type,count[,aliases]` are
    /// skipped.
    pub fn parse(text: &str) -> TagIndex {
        let mut tags: Vec<Tag> = Vec::with_capacity(text.len() / 24);
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let fields = csv_fields(line);
            if fields.len() < 3 {
                continue;
            }
            let name = normalize(&fields[0]);
            let (Some(kind), Ok(count)) = (
                TagKind::from_code(&fields[1]),
                fields[2].trim().parse::<u32>(),
            ) else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            // Unquoted lines split every comma: the aliases are the fields after the count.
            let aliases: Box<[Arc<str>]> = fields
                .iter()
                .skip(3)
                .flat_map(|a| a.split(','))
                .map(normalize)
                .filter(|a| !a.is_empty() && *a != name)
                .map(Arc::from)
                .collect();
            tags.push(Tag {
                name: Arc::from(name),
                kind,
                count,
                aliases,
            });
        }
        // Most popular first; ties by name so the order is stable.
        tags.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        // (first 8 bytes big-endian, for comparing without a pointer chase; key; tag; alias)
        let mut sorted: Vec<(u64, Arc<str>, u32, bool)> = Vec::with_capacity(tags.len() * 2);
        let head = |s: &str| {
            let mut b = [0u8; 8];
            let n = s.len().min(8);
            b[..n].copy_from_slice(&s.as_bytes()[..n]);
            u64::from_be_bytes(b)
        };
        let mut words: HashMap<Box<str>, Vec<u32>> = HashMap::with_capacity(tags.len());
        for (i, t) in tags.iter().enumerate() {
            let i = i as u32;
            sorted.push((head(&t.name), t.name.clone(), i, false));
            for a in t.aliases.iter() {
                sorted.push((head(a), a.clone(), i, true));
            }
            for w in t.name.split('_').filter(|w| !w.is_empty()) {
                match words.get_mut(w) {
                    Some(list) => {
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                    None => {
                        words.insert(Box::from(w), vec![i]);
                    }
                }
            }
        }
        // Names sort before aliases of the same spelling, so an exact look-up finds the name.
        sorted.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| a.1.cmp(&b.1))
                .then(a.3.cmp(&b.3))
                .then(a.2.cmp(&b.2))
        });
        let key_kind = sorted.iter().map(|k| tags[k.2 as usize].kind).collect();
        let key_tag = sorted.iter().map(|k| k.2).collect();
        let key_alias = sorted.iter().map(|k| k.3).collect();
        let keys = sorted.into_iter().map(|k| k.1).collect();
        TagIndex {
            tags,
            keys,
            key_tag,
            key_alias,
            key_kind,
            words,
        }
    }

    /// The range of keys starting with `prefix`.
    fn prefix_range(&self, prefix: &str) -> std::ops::Range<usize> {
        let start = self.keys.partition_point(|k| **k < *prefix);
        let len = self.keys[start..].partition_point(|k| k.starts_with(prefix));
        start..start + len
    }

    pub fn len(&self) -> usize {
        self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// The tag a name or alias stands for: `(tag, true)` when it is an alias.
    pub fn lookup(&self, name_or_alias: &str) -> Option<(&Tag, bool)> {
        let key = normalize(name_or_alias);
        let at = self.keys.partition_point(|k| **k < *key);
        self.keys
            .get(at)
            .filter(|k| ***k == *key)
            .map(|_| (&self.tags[self.key_tag[at] as usize], self.key_alias[at]))
    }

    fn hit(&self, id: u32, alias: Option<&str>) -> Hit {
        let t = &self.tags[id as usize];
        Hit {
            name: t.name.to_string(),
            category: t.kind.as_str(),
            post_count: t.count,
            alias: alias.map(String::from),
        }
    }

    /// Tags whose name or an alias starts with `prefix`, most popular first, at most `limit`;
    /// a tag found through both its name and an alias is listed once, as its name.
    fn prefix_ids(&self, prefix: &str, limit: usize, kind: Option<TagKind>) -> Vec<(u32, u32)> {
        // (tag id, key index), kept sorted by tag id, at most `limit` long.
        let mut best: Vec<(u32, u32)> = Vec::with_capacity(limit + 1);
        if limit == 0 {
            return best;
        }
        let range = self.prefix_range(prefix);
        let start = range.start;
        let ids = &self.key_tag[range.clone()];
        let kinds = &self.key_kind[range];
        for (ki, (&id, &k)) in ids.iter().zip(kinds).enumerate() {
            if best.len() == limit && best.last().is_some_and(|b| b.0 < id) {
                continue;
            }
            if kind.is_some_and(|want| k != want) {
                continue;
            }
            let ki = (start + ki) as u32;
            match best.binary_search_by_key(&id, |b| b.0) {
                Ok(pos) => {
                    // Prefer the name over an alias.
                    if !self.key_alias[ki as usize] {
                        best[pos].1 = ki;
                    }
                }
                Err(pos) => {
                    best.insert(pos, (id, ki));
                    best.truncate(limit);
                }
            }
        }
        best
    }

    fn hits(&self, ids: &[(u32, u32)]) -> Vec<Hit> {
        ids.iter()
            .map(|&(id, ki)| {
                let ki = ki as usize;
                self.hit(id, self.key_alias[ki].then_some(&*self.keys[ki]))
            })
            .collect()
    }

    /// Tags whose name contains every word of `query` as a whole word, most popular first.
    fn word_ids(&self, query: &str, limit: usize, kind: Option<TagKind>, skip: &[u32]) -> Vec<u32> {
        let qwords: Vec<&str> = query.split('_').filter(|w| !w.is_empty()).collect();
        let mut lists = Vec::with_capacity(qwords.len());
        for w in &qwords {
            match self.words.get(*w) {
                Some(l) => lists.push(l),
                None => return Vec::new(),
            }
        }
        let Some(rarest) = lists.iter().min_by_key(|l| l.len()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for &id in rarest.iter() {
            if out.len() >= limit {
                break;
            }
            let t = &self.tags[id as usize];
            if skip.contains(&id) || kind.is_some_and(|k| t.kind != k) {
                continue;
            }
            let has_all = qwords.iter().all(|q| t.name.split('_').any(|w| w == *q));
            if has_all {
                out.push(id);
            }
        }
        out
    }

    /// `search_tags`: tags whose name or an alias starts with the query, then tags whose name
    /// contains all its words, most popular first. An empty query lists the most popular tags.
    pub fn search(&self, query: &str, limit: usize, kind: Option<TagKind>) -> Vec<Hit> {
        let q = normalize(query);
        let ids = self.prefix_ids(&q, limit, kind);
        let mut hits = self.hits(&ids);
        if hits.len() < limit && q.contains('_') {
            let taken: Vec<u32> = ids.iter().map(|x| x.0).collect();
            for id in self.word_ids(&q, limit - hits.len(), kind, &taken) {
                hits.push(self.hit(id, None));
            }
        }
        hits
    }

    /// `suggest_tags`: completions of a partial tag (prefix of a name or alias), most popular
    /// first; when there are none, the closest spellings (at most two edits away).
    pub fn suggest(&self, partial: &str, limit: usize, kind: Option<TagKind>) -> Vec<Hit> {
        let q = normalize(partial);
        let ids = self.prefix_ids(&q, limit, kind);
        if !ids.is_empty() || q.is_empty() {
            return self.hits(&ids);
        }
        let max = if q.chars().count() <= 4 { 1 } else { 2 };
        let mut near: Vec<(usize, u32)> = Vec::new();
        let mut rows = (Vec::new(), Vec::new());
        for (i, t) in self.tags.iter().enumerate() {
            if kind.is_some_and(|k| t.kind != k) || t.name.len().abs_diff(q.len()) > max {
                continue;
            }
            if let Some(d) = bounded_distance(&q, &t.name, max, &mut rows) {
                near.push((d, i as u32));
            }
        }
        near.sort_unstable();
        near.truncate(limit);
        near.into_iter().map(|(_, id)| self.hit(id, None)).collect()
    }

    /// `validate_tags`: each tag as given is valid (an exact name), or invalid; an alias is
    /// invalid with its canonical tag as the correction.
    pub fn validate<S: AsRef<str>>(&self, tags: &[S]) -> Validation {
        let mut v = Validation::default();
        for t in tags {
            let given = t.as_ref().trim();
            if given.is_empty() {
                continue;
            }
            match self.lookup(given) {
                Some((_, false)) => v.valid.push(given.to_string()),
                Some((tag, true)) => {
                    v.invalid.push(given.to_string());
                    v.corrections
                        .insert(given.to_string(), tag.name.to_string());
                }
                None => v.invalid.push(given.to_string()),
            }
        }
        v
    }
}

/// Levenshtein distance if it is at most `max` (byte-wise; tags are ASCII almost always).
fn bounded_distance(
    a: &str,
    b: &str,
    max: usize,
    (prev, cur): &mut (Vec<usize>, Vec<usize>),
) -> Option<usize> {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    prev.clear();
    prev.extend(0..=b.len());
    cur.clear();
    cur.resize(b.len() + 1, 0);
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            row_min = row_min.min(cur[j]);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(prev, cur);
    }
    (prev[b.len()] <= max).then_some(prev[b.len()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    /// The shipped list, loaded once for all tests.
    fn index() -> &'static TagIndex {
        static INDEX: OnceLock<TagIndex> = OnceLock::new();
        INDEX.get_or_init(|| {
            TagIndex::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/danbooru-tags.csv"))
                .unwrap()
        })
    }

    fn names(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn the_whole_shipped_list_loads() {
        let ix = index();
        assert_eq!(ix.len(), 140_782, "every row of the CSV is a tag");
        let (t, alias) = ix.lookup("1girl").unwrap();
        assert!(!alias);
        assert_eq!((t.kind, t.count), (TagKind::General, 6_008_644));
        let aliases: Vec<&str> = t.aliases.iter().map(|a| &**a).collect();
        assert_eq!(aliases, ["1girls", "sole_female"]);
    }

    #[test]
    fn known_rows_keep_their_type_count_and_aliases() {
        let ix = index();
        let rows = [
            (
                "long_hair",
                TagKind::General,
                4_350_743,
                vec!["/lh", "longhair"],
            ),
            (
                "highres",
                TagKind::Meta,
                5_256_195,
                vec!["high_res", "high_resolution", "hires"],
            ),
            ("hatsune_miku", TagKind::Character, 106_634, vec!["/hm"]),
            (
                "final_fantasy_vii",
                TagKind::Copyright,
                26_488,
                vec!["/ff7", "ff7", "ffvii", "final_fantasy_7"],
            ),
            (
                "yuna_(ff10)",
                TagKind::Character,
                1_071,
                vec!["yuna_(final_fantasy)"],
            ),
            (
                "tifa_lockhart_(shining_spirit)",
                TagKind::Character,
                361,
                vec![],
            ),
            // A quoted name with doubled quotes inside.
            (
                "don't_say_\"lazy\"",
                TagKind::General,
                1_076,
                vec!["don't_say_lazy"],
            ),
        ];
        for (name, kind, count, aliases) in rows {
            let (t, alias) = ix.lookup(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(!alias, "{name}");
            assert_eq!((&*t.name, t.kind, t.count), (name, kind, count));
            let got: Vec<&str> = t.aliases.iter().map(|a| &**a).collect();
            assert_eq!(got, aliases, "{name}");
        }
        let artists = ix.search("", 5, Some(TagKind::Artist));
        assert!(artists.iter().all(|h| h.category == "artist"));
        assert_eq!(artists.len(), 5);
    }

    #[test]
    fn spaces_underscores_case_and_escapes_are_one_spelling() {
        for s in ["Long Hair", "long_hair", "  long   hair ", "LONG__HAIR"] {
            assert_eq!(normalize(s), "long_hair", "{s}");
        }
        assert_eq!(normalize("yuna \\(ff10\\)"), "yuna_(ff10)");
        assert_eq!(
            index().lookup("Yuna (FF10)").unwrap().0.name.as_ref(),
            "yuna_(ff10)"
        );
    }

    #[test]
    fn prefix_search_ranks_by_post_count_and_filters_by_category() {
        let ix = index();
        let hits = ix.search("long", 5, None);
        assert_eq!(hits[0].name, "long_hair");
        assert!(hits.windows(2).all(|w| w[0].post_count >= w[1].post_count));
        assert!(
            hits.iter()
                .all(|h| h.name.starts_with("long") || h.alias.is_some())
        );
        let chars = ix.search("tifa", 3, Some(TagKind::Character));
        assert_eq!(names(&chars)[0], "tifa_lockhart");
        assert!(chars.iter().all(|h| h.category == "character"));
        // tifa_lockhart_(cosplay) is a general tag and must not appear.
        let all = ix.search("tifa_lockhart_(", 50, Some(TagKind::Character));
        assert!(!names(&all).contains(&"tifa_lockhart_(cosplay)"));
        assert!(
            names(&ix.search("tifa_lockhart_(", 50, None)).contains(&"tifa_lockhart_(cosplay)")
        );
    }

    #[test]
    fn aliases_find_their_tag_once() {
        let ix = index();
        let hits = ix.search("longhai", 5, None);
        assert_eq!(hits[0].name, "long_hair");
        assert_eq!(hits[0].alias.as_deref(), Some("longhair"));
        let ff = ix.search("ff7", 10, Some(TagKind::Copyright));
        assert_eq!(ff[0].name, "final_fantasy_vii");
        // "final_fantasy_7" is an alias of the same tag: listed once, as the name.
        let f = ix.search("final_fantasy_", 200, Some(TagKind::Copyright));
        assert_eq!(
            f.iter().filter(|h| h.name == "final_fantasy_vii").count(),
            1
        );
        let vii = f.iter().find(|h| h.name == "final_fantasy_vii").unwrap();
        assert_eq!(vii.alias, None);
    }

    #[test]
    fn word_search_finds_tags_containing_every_word() {
        let ix = index();
        let hits = ix.search("hair ornament", 10, None);
        assert_eq!(hits[0].name, "hair_ornament");
        let n = names(&hits);
        assert!(n.iter().any(|h| h.ends_with("_hair_ornament")), "{n:?}");
        for h in &hits {
            assert!(
                h.name.contains("hair") && h.name.contains("ornament"),
                "{}",
                h.name
            );
        }
        assert!(ix.search("zzqx nothing", 10, None).is_empty());
    }

    #[test]
    fn validation_corrects_aliases_and_rejects_inventions() {
        let v = index().validate(&[
            "long hair",
            "longhair",
            "Red Eyes",
            "blue_sparkly_hairx",
            "",
        ]);
        assert_eq!(v.valid, ["long hair", "Red Eyes"]);
        assert_eq!(v.invalid, ["longhair", "blue_sparkly_hairx"]);
        assert_eq!(
            v.corrections.get("longhair").map(String::as_str),
            Some("long_hair")
        );
        assert_eq!(v.corrections.len(), 1);
    }

    #[test]
    fn suggestions_complete_then_fix_spelling() {
        let ix = index();
        assert_eq!(ix.suggest("twint", 3, None)[0].name, "twintails");
        let fixed = ix.suggest("blak hair", 3, None);
        assert_eq!(fixed[0].name, "black_hair", "{fixed:?}");
        assert!(ix.suggest("qqqqqqqqqqqq", 3, None).is_empty());
        let chars = ix.suggest("hatsune", 5, Some(TagKind::Character));
        assert_eq!(chars[0].name, "hatsune_miku");
    }

    #[test]
    fn category_filters_parse_by_name_or_code() {
        assert_eq!(
            TagKind::parse_filter(Some("Character")),
            Ok(Some(TagKind::Character))
        );
        assert_eq!(
            TagKind::parse_filter(Some("3")),
            Ok(Some(TagKind::Copyright))
        );
        assert_eq!(TagKind::parse_filter(Some("")), Ok(None));
        assert_eq!(TagKind::parse_filter(None), Ok(None));
        assert!(
            TagKind::parse_filter(Some("2"))
                .unwrap_err()
                .contains("unknown")
        );
    }

    #[test]
    fn malformed_lines_are_skipped_not_fatal() {
        let ix =
            TagIndex::parse("a,0,5,\nbroken\nb,9,1,\nc,0,notanumber,\n\"d\"\"e\",1,3,\"x,y\"\n");
        assert_eq!(ix.len(), 2);
        assert_eq!(ix.lookup("y").unwrap().0.name.as_ref(), "d\"e");
    }

    #[test]
    fn edit_distance_is_bounded() {
        let rows = &mut (Vec::new(), Vec::new());
        assert_eq!(bounded_distance("blak", "black", 2, rows), Some(1));
        assert_eq!(bounded_distance("abc", "abc", 0, rows), Some(0));
        assert_eq!(bounded_distance("abcd", "wxyz", 2, rows), None);
        assert_eq!(bounded_distance("twintial", "twintails", 3, rows), Some(3));
    }
}
