//! The words of image prompts, for finding images by prompt text: each distinct prompt gets an
//! id, each word the sorted list of prompts it appears in. A search term matches the words it
//! begins (terms of three letters or more) or equals (shorter ones); every term must match.
//! No IO.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Terms shorter than this match whole words only (a one-letter prefix would match half the
/// vocabulary).
const MIN_PREFIX: usize = 3;

#[derive(Clone, Debug, Default)]
pub struct Words {
    words: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
    /// Word id → the prompts it appears in, ascending.
    postings: Vec<Vec<u32>>,
    /// Prompt id → the hash of its normalised text.
    hashes: Vec<u64>,
    by_hash: HashMap<u64, u32>,
    /// Word ids sorted by word, for prefix matches; rebuilt by `finish` after additions.
    sorted: Vec<u32>,
}

/// The words of a text: lower-case runs of letters and digits.
pub fn split(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

impl Words {
    pub fn prompt_count(&self) -> usize {
        self.hashes.len()
    }

    pub fn word_count(&self) -> usize {
        self.words.len()
    }

    /// The id of a prompt text, adding it (and its words) when it is new. Call `finish` after
    /// a batch of additions.
    pub fn add(&mut self, text: &str) -> u32 {
        let mut list: Vec<String> = split(text).collect();
        list.sort_unstable();
        list.dedup();
        let h = crate::store::event::content_hash(list.join(" ").as_bytes());
        if let Some(id) = self.by_hash.get(&h) {
            return *id;
        }
        let id = self.hashes.len() as u32;
        self.hashes.push(h);
        self.by_hash.insert(h, id);
        for w in list {
            let wid = match self.ids.get(w.as_str()) {
                Some(x) => *x,
                None => {
                    let x = self.words.len() as u32;
                    let b: Box<str> = w.into_boxed_str();
                    self.words.push(b.clone());
                    self.ids.insert(b, x);
                    self.postings.push(Vec::new());
                    x
                }
            };
            self.postings[wid as usize].push(id);
        }
        id
    }

    /// Sorts the vocabulary again if words were added.
    pub fn finish(&mut self) {
        if self.sorted.len() == self.words.len() {
            return;
        }
        let mut s: Vec<u32> = (0..self.words.len() as u32).collect();
        s.sort_unstable_by(|a, b| self.words[*a as usize].cmp(&self.words[*b as usize]));
        self.sorted = s;
    }

    /// The prompts every term of `query` matches, as a bit per prompt id; `None` when the query
    /// has no words.
    pub fn matching(&self, query: &str) -> Option<Vec<u64>> {
        let terms: Vec<String> = split(query).collect();
        if terms.is_empty() {
            return None;
        }
        let n = self.hashes.len();
        let mut all: Option<Vec<u64>> = None;
        for t in terms {
            let mut bits = vec![0u64; n.div_ceil(64)];
            let mut or = |wid: u32| {
                for &p in &self.postings[wid as usize] {
                    bits[p as usize / 64] |= 1 << (p % 64);
                }
            };
            if t.chars().count() < MIN_PREFIX || self.sorted.len() != self.words.len() {
                if let Some(&wid) = self.ids.get(t.as_str()) {
                    or(wid);
                }
                if self.sorted.len() != self.words.len() && t.chars().count() >= MIN_PREFIX {
                    // Not finished yet: match prefixes the slow way.
                    for (wid, w) in self.words.iter().enumerate() {
                        if w.starts_with(t.as_str()) && **w != *t {
                            or(wid as u32);
                        }
                    }
                }
            } else {
                let start = self
                    .sorted
                    .partition_point(|&w| *self.words[w as usize] < *t);
                for &wid in &self.sorted[start..] {
                    if !self.words[wid as usize].starts_with(t.as_str()) {
                        break;
                    }
                    or(wid);
                }
            }
            all = Some(match all {
                None => bits,
                Some(mut acc) => {
                    for (a, b) in acc.iter_mut().zip(&bits) {
                        *a &= b;
                    }
                    acc
                }
            });
        }
        all
    }

    pub fn to_file(&self) -> WordsFile {
        WordsFile {
            words: self.words.iter().map(|w| w.to_string()).collect(),
            postings: self.postings.clone(),
            hashes: self.hashes.clone(),
        }
    }

    pub fn from_file(f: WordsFile) -> Words {
        let mut w = Words {
            ids: f
                .words
                .iter()
                .enumerate()
                .map(|(i, w)| (Box::from(w.as_str()), i as u32))
                .collect(),
            words: f.words.into_iter().map(String::into_boxed_str).collect(),
            by_hash: f
                .hashes
                .iter()
                .enumerate()
                .map(|(i, h)| (*h, i as u32))
                .collect(),
            hashes: f.hashes,
            postings: f.postings,
            sorted: Vec::new(),
        };
        if w.postings.len() != w.words.len() {
            return Words::default();
        }
        w.finish();
        w
    }
}

/// How the cache file keeps the words.
#[derive(Serialize, Deserialize, Default)]
pub struct WordsFile {
    pub words: Vec<String>,
    pub postings: Vec<Vec<u32>>,
    pub hashes: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(bits: &Option<Vec<u64>>) -> Vec<u32> {
        let Some(b) = bits else { return vec![] };
        (0..b.len() as u32 * 64)
            .filter(|i| b[*i as usize / 64] & (1 << (i % 64)) != 0)
            .collect()
    }

    #[test]
    fn prompts_are_found_by_their_words() {
        let mut w = Words::default();
        let a = w.add("1girl, (silver hair:1.2), blue eyes, maid headdress");
        let b = w.add("1boy, black hair, armor");
        let c = w.add("blue eyes, 1girl, (silver hair:1.2), maid headdress");
        assert_eq!(a, c, "the same words are the same prompt");
        let d = w.add("Snowy Forest, winter");
        w.finish();
        assert_eq!(w.prompt_count(), 3);
        let cases: [(&str, Vec<u32>); 9] = [
            ("silver", vec![a]),
            ("SILVER hair", vec![a]),
            ("hair", vec![a, b]),
            ("hai", vec![a, b]),
            ("head", vec![a]),
            ("snow", vec![d]),
            ("1girl maid", vec![a]),
            ("hair forest", vec![]),
            ("zzz", vec![]),
        ];
        for (q, want) in cases {
            assert_eq!(ids(&w.matching(q)), want, "{q}");
        }
        assert_eq!(
            ids(&w.matching("bo")),
            Vec::<u32>::new(),
            "short terms are whole words"
        );
        assert_eq!(w.matching(" , "), None);
    }

    #[test]
    fn unfinished_additions_are_still_found() {
        let mut w = Words::default();
        w.add("red dress");
        w.finish();
        let b = w.add("redhead, freckles");
        assert_eq!(ids(&w.matching("redh")), vec![b]);
        assert_eq!(ids(&w.matching("red")).len(), 2);
    }

    #[test]
    fn the_file_form_round_trips() {
        let mut w = Words::default();
        w.add("a b c");
        w.add("cat, dog");
        w.finish();
        let back = Words::from_file(w.to_file());
        assert_eq!(ids(&back.matching("dog")), vec![1]);
        assert_eq!(back.add_clone("cat dog"), 1);
    }

    impl Words {
        fn add_clone(&self, text: &str) -> u32 {
            self.clone().add(text)
        }
    }
}
