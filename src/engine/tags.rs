//! Tag lists: splitting prompt fragments into tags, the dedup key of a tag, dedup within one prompt,
//! and the positive/negative cross-dedup (the original's `_cross_dedup_prompts`).
//!
//! Rules:
//! - A fragment splits on commas and newlines at parenthesis depth 0 (so `(red hair, blue eyes:1.2)`
//!   stays one tag); escaped parentheses `\(` `\)` do not count. A fragment whose parentheses do not
//!   balance is split on every comma instead. Pieces are trimmed; empty pieces are dropped.
//! - A tag's key is its inner text (`(tag:1.2)` → `tag`, `(tag)` → `tag`, `((tag))` → `tag`),
//!   lowercased, with `_` and runs of whitespace unified to one space and backslashes dropped.
//!   `(x:1.2)` counts as weighted only when `x` is not empty, so `(:3)` is the tag `:3`.
//! - Within one prompt no key repeats. The first occurrence's position is kept; the text kept there
//!   is the most explicit form seen (weighted `(t:1.2)` > emphasised `(t)` > plain `t`; on a tie the
//!   earlier one).
//! - Cross-dedup counts each key on both sides; `min(p, n)` occurrences are removed from each side,
//!   earliest first, so equal counts cancel completely and the excess stays on the side that had
//!   more (its later occurrences survive).

use std::collections::HashMap;

/// How explicitly a tag states its weight; higher wins in within-prompt dedup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Emphasis {
    Plain,
    /// `(tag)` — ComfyUI's implicit 1.1.
    Emphasised,
    /// `(tag:1.2)`.
    Weighted,
}

/// A tag's dedup key and emphasis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagInfo {
    pub key: String,
    pub emphasis: Emphasis,
}

/// Splits a prompt fragment into trimmed, non-empty tags (see the module rules).
pub fn split_tags(fragment: &str) -> SplitTags<'_> {
    SplitTags {
        rest: Some(fragment),
        depth_aware: parens_balance(fragment),
    }
}

pub struct SplitTags<'s> {
    rest: Option<&'s str>,
    depth_aware: bool,
}

impl<'s> Iterator for SplitTags<'s> {
    type Item = &'s str;

    fn next(&mut self) -> Option<&'s str> {
        loop {
            let s = self.rest?;
            let (piece, rest) = match find_separator(s, self.depth_aware) {
                Some(i) => (&s[..i], Some(&s[i + 1..])),
                None => (s, None),
            };
            self.rest = rest;
            let t = piece.trim();
            if !t.is_empty() {
                return Some(t);
            }
        }
    }
}

fn find_separator(s: &str, depth_aware: bool) -> Option<usize> {
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'(' if depth_aware => depth += 1,
            b')' if depth_aware => depth = depth.saturating_sub(1),
            b',' | b'\n' | b'\r' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// Unescaped parentheses never close more than they opened and end balanced.
fn parens_balance(s: &str) -> bool {
    let mut depth = 0usize;
    let mut escaped = false;
    for b in s.bytes() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'(' => depth += 1,
            b')' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
    }
    depth == 0
}

/// `(body)` → `body` when the first `(` is closed by the final, unescaped `)`.
fn strip_wrapping_parens(s: &str) -> Option<&str> {
    let bytes = s.as_bytes();
    let n = bytes.len();
    if n < 2 || bytes[0] != b'(' || bytes[n - 1] != b')' || bytes[n - 2] == b'\\' {
        return None;
    }
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && i != n - 1 {
                    return None;
                }
            }
            _ => {}
        }
    }
    Some(&s[1..n - 1])
}

/// The inner text of a tag and its emphasis: `(tag:1.2)` → (`tag`, Weighted).
pub fn parse_tag(tag: &str) -> (&str, Emphasis) {
    let mut inner = tag.trim();
    let mut emphasis = Emphasis::Plain;
    while let Some(body) = strip_wrapping_parens(inner) {
        inner = body.trim();
        emphasis = emphasis.max(Emphasis::Emphasised);
        if let Some((text, weight)) = inner.rsplit_once(':')
            && !text.trim().is_empty()
            && weight.trim().parse::<f64>().is_ok()
        {
            inner = text.trim();
            emphasis = Emphasis::Weighted;
        }
    }
    (inner, emphasis)
}

/// The dedup key: inner text, lowercased, `_`/whitespace runs → one space, backslashes dropped.
pub fn tag_key(tag: &str) -> String {
    normalise(parse_tag(tag).0)
}

fn normalise(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut pending_space = false;
    for c in inner.chars() {
        if c == '_' || c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if c != '\\' {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
        }
    }
    out
}

/// FxHash (rustc's hasher): the maps here hold a prompt's own tags, so no untrusted-input
/// flooding concern, and SipHash would dominate their cost.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FxBuild = std::hash::BuildHasherDefault<FxHasher>;
type FxMap<K, V> = HashMap<K, V, FxBuild>;

pub fn tag_info(tag: &str) -> TagInfo {
    let (inner, emphasis) = parse_tag(tag);
    TagInfo {
        key: normalise(inner),
        emphasis,
    }
}

/// Why within-prompt dedup dropped a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithinReason {
    /// A repeat of an earlier tag that is at least as explicit.
    Duplicate,
    /// An earlier, less explicit form replaced by a later weighted/emphasised one.
    Outranked,
}

/// Result of within-prompt dedup, as indices into the input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WithinPlan {
    /// The surviving items, in output order.
    pub kept: Vec<usize>,
    /// `(dropped index, reason, index of the item that survives in its place)`.
    pub removed: Vec<(usize, WithinReason, usize)>,
}

pub fn dedup_within(infos: &[TagInfo]) -> WithinPlan {
    let mut slot_of: FxMap<&str, usize> =
        FxMap::with_capacity_and_hasher(infos.len(), FxBuild::default());
    let mut kept: Vec<usize> = Vec::with_capacity(infos.len());
    // (dropped, reason, slot); the slot is mapped to its final occupant at the end.
    let mut removed: Vec<(usize, WithinReason, usize)> = Vec::new();
    for (i, info) in infos.iter().enumerate() {
        match slot_of.get(info.key.as_str()) {
            None => {
                slot_of.insert(info.key.as_str(), kept.len());
                kept.push(i);
            }
            Some(&slot) => {
                let current = kept[slot];
                if info.emphasis > infos[current].emphasis {
                    removed.push((current, WithinReason::Outranked, slot));
                    kept[slot] = i;
                } else {
                    removed.push((i, WithinReason::Duplicate, slot));
                }
            }
        }
    }
    let removed = removed
        .into_iter()
        .map(|(i, r, slot)| (i, r, kept[slot]))
        .collect();
    WithinPlan { kept, removed }
}

/// Result of cross-dedup: which items of each side survive, and each cancelled key's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrossPlan {
    pub keep_positive: Vec<bool>,
    pub keep_negative: Vec<bool>,
    /// For every key present on both sides: `(key, count in positive, count in negative)`.
    pub cancelled: Vec<(String, usize, usize)>,
}

pub fn cross_dedup(positive: &[TagInfo], negative: &[TagInfo]) -> CrossPlan {
    let mut counts: FxMap<&str, (usize, usize)> =
        FxMap::with_capacity_and_hasher(negative.len(), FxBuild::default());
    for n in negative {
        counts.entry(n.key.as_str()).or_default().1 += 1;
    }
    for p in positive {
        if let Some(c) = counts.get_mut(p.key.as_str()) {
            c.0 += 1;
        }
    }
    let mut budget_pos: FxMap<&str, usize> = FxMap::default();
    let mut cancelled = Vec::new();
    for n in negative {
        if let Some(&(p, q)) = counts.get(n.key.as_str())
            && p > 0
            && !budget_pos.contains_key(n.key.as_str())
        {
            budget_pos.insert(n.key.as_str(), p.min(q));
            cancelled.push((n.key.clone(), p, q));
        }
    }
    let mut budget_neg = budget_pos.clone();
    let keep = |infos: &[TagInfo], budget: &mut FxMap<&str, usize>| -> Vec<bool> {
        infos
            .iter()
            .map(|t| match budget.get_mut(t.key.as_str()) {
                Some(b) if *b > 0 => {
                    *b -= 1;
                    false
                }
                _ => true,
            })
            .collect()
    };
    CrossPlan {
        keep_positive: keep(positive, &mut budget_pos),
        keep_negative: keep(negative, &mut budget_neg),
        cancelled,
    }
}

/// Joins tags with `", "`.
pub fn join<'t>(tags: impl IntoIterator<Item = &'t str>) -> String {
    let mut out = String::new();
    for t in tags {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(t);
    }
    out
}

/// Within-prompt dedup of a whole prompt string.
pub fn dedup_prompt(prompt: &str) -> String {
    let tags: Vec<&str> = split_tags(prompt).collect();
    let infos: Vec<TagInfo> = tags.iter().map(|t| tag_info(t)).collect();
    join(dedup_within(&infos).kept.into_iter().map(|i| tags[i]))
}

/// Cross-dedup of two prompt strings (no within-prompt dedup).
pub fn cross_dedup_prompts(positive: &str, negative: &str) -> (String, String) {
    let pos: Vec<&str> = split_tags(positive).collect();
    let neg: Vec<&str> = split_tags(negative).collect();
    let pi: Vec<TagInfo> = pos.iter().map(|t| tag_info(t)).collect();
    let ni: Vec<TagInfo> = neg.iter().map(|t| tag_info(t)).collect();
    let plan = cross_dedup(&pi, &ni);
    let pick = |tags: &[&'_ str], keep: &[bool]| {
        let mut out = String::new();
        for (t, k) in tags.iter().zip(keep) {
            if *k {
                if !out.is_empty() {
                    out.push_str(", ");
                }
                out.push_str(t);
            }
        }
        out
    };
    (
        pick(&pos, &plan.keep_positive),
        pick(&neg, &plan.keep_negative),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_trims_drops_empties_and_respects_groups() {
        let cases: &[(&str, &[&str])] = &[
            ("a, b,c", &["a", "b", "c"]),
            ("  a ,, , b  ,", &["a", "b"]),
            ("", &[]),
            (" , ,", &[]),
            ("a\nb, c\r\nd", &["a", "b", "c", "d"]),
            (
                "(red hair, blue eyes:1.2), smile",
                &["(red hair, blue eyes:1.2)", "smile"],
            ),
            ("yuna \\(ff10\\), x", &["yuna \\(ff10\\)", "x"]),
            ("(unbalanced, tag", &["(unbalanced", "tag"]),
            ("close), open", &["close)", "open"]),
            ("((a, b)), c", &["((a, b))", "c"]),
        ];
        for (input, want) in cases {
            let got: Vec<&str> = split_tags(input).collect();
            assert_eq!(&got, want, "{input:?}");
        }
    }

    #[test]
    fn keys_and_emphasis() {
        use Emphasis::*;
        let cases: &[(&str, &str, Emphasis)] = &[
            ("Red_Hair", "red hair", Plain),
            ("red  hair", "red hair", Plain),
            ("red hair", "red hair", Plain),
            ("(red hair)", "red hair", Emphasised),
            ("(red_hair:1.2)", "red hair", Weighted),
            ("( red hair : 0.8 )", "red hair", Weighted),
            ("((red hair))", "red hair", Emphasised),
            ("((red hair:1.3))", "red hair", Weighted),
            ("(solo:1.2)", "solo", Weighted),
            ("(:3)", ":3", Emphasised),
            (":d", ":d", Plain),
            ("(:d:1.1)", ":d", Weighted),
            ("tag:1.2", "tag:1.2", Plain),
            ("(a) (b)", "(a) (b)", Plain),
            ("yuna_\\(ff10\\)", "yuna (ff10)", Plain),
            ("\\(x\\)", "(x)", Plain),
            ("(note: see)", "note: see", Emphasised),
            ("_leading_", "leading", Plain),
            ("ÉCOLE", "école", Plain),
        ];
        for (tag, key, emphasis) in cases {
            assert_eq!(
                tag_info(tag),
                TagInfo {
                    key: (*key).into(),
                    emphasis: *emphasis
                },
                "{tag:?}"
            );
        }
    }

    #[test]
    fn within_dedup_table() {
        let cases: &[(&str, &str)] = &[
            ("a, b, a", "a, b"),
            ("a, A, a_b, a b", "a, a_b"),
            ("red hair, smile, (red hair:1.2)", "(red hair:1.2), smile"),
            ("(red hair:1.2), smile, red hair", "(red hair:1.2), smile"),
            ("(x:1.2), (x:0.8)", "(x:1.2)"),
            ("x, (x), (x:1.5)", "(x:1.5)"),
            ("(x), x", "(x)"),
            ("x, (x:1.1), (x)", "(x:1.1)"),
            ("a, b, c", "a, b, c"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(dedup_prompt(input), *want, "{input:?}");
        }
    }

    #[test]
    fn within_dedup_reports_reasons_and_survivors() {
        let infos: Vec<TagInfo> = ["x", "y", "(x)", "x", "(x:2)"]
            .iter()
            .map(|t| tag_info(t))
            .collect();
        let plan = dedup_within(&infos);
        assert_eq!(plan.kept, vec![4, 1]);
        assert_eq!(
            plan.removed,
            vec![
                (0, WithinReason::Outranked, 4),
                (3, WithinReason::Duplicate, 4),
                (2, WithinReason::Outranked, 4),
            ]
        );
    }

    #[test]
    fn cross_dedup_table() {
        let cases: &[(&str, &str, &str, &str)] = &[
            // equal counts cancel completely on both sides
            ("a, blurry, b", "blurry, c", "a, b", "c"),
            ("blurry, blurry", "blurry, blurry", "", ""),
            // excess stays on the side with more; the earliest occurrences go first
            ("blurry, a, (blurry:1.2)", "blurry", "a, (blurry:1.2)", ""),
            ("a", "x, a, a", "", "x, a"),
            // keys ignore weights, case and underscores
            ("(Bad_Hands:1.2)", "bad hands", "", ""),
            // nothing shared
            ("a, b", "c, d", "a, b", "c, d"),
            ("", "c", "", "c"),
        ];
        for (p, n, wp, wn) in cases {
            assert_eq!(
                cross_dedup_prompts(p, n),
                ((*wp).into(), (*wn).into()),
                "{p:?} | {n:?}"
            );
        }
    }

    #[test]
    fn cross_dedup_reports_counts() {
        let p: Vec<TagInfo> = ["a", "a", "b"].iter().map(|t| tag_info(t)).collect();
        let n: Vec<TagInfo> = ["b", "a", "c"].iter().map(|t| tag_info(t)).collect();
        let plan = cross_dedup(&p, &n);
        assert_eq!(plan.keep_positive, vec![false, true, false]);
        assert_eq!(plan.keep_negative, vec![false, false, true]);
        assert_eq!(plan.cancelled, vec![("b".into(), 1, 1), ("a".into(), 2, 1)]);
    }

    #[test]
    fn join_uses_comma_space() {
        assert_eq!(join(["a", "b"]), "a, b");
        assert_eq!(join(std::iter::empty()), "");
    }
}
