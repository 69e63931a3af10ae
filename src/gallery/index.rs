//! The image index itself: a pure fold of image events into compact rows (a million images in
//! tens of megabytes: ids and small integers, the directory interned, the file name kept only
//! when it is not the name the reactor gives a job's image), the time order, the path lookup,
//! and the queries the gallery pages make (filter, sort, page, neighbours). No IO.

use super::words::{Words, WordsFile};
use crate::library::category::Category;
use crate::store::event::{Event, Stored, content_hash};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Where an image came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum Kind {
    /// Saved by the reactor for a job.
    Generated = 0,
    /// Uploaded as a cover (a cover set to a path no job made).
    Upload = 1,
    /// Found under the uploads folder; no event names it.
    Untracked = 2,
}

impl Kind {
    fn from_u8(v: u8) -> Kind {
        match v {
            0 => Kind::Generated,
            1 => Kind::Upload,
            _ => Kind::Untracked,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Kind::Generated => "generated",
            Kind::Upload => "upload",
            Kind::Untracked => "untracked",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "generated" => Some(Kind::Generated),
            "upload" => Some(Kind::Upload),
            "untracked" => Some(Kind::Untracked),
            _ => None,
        }
    }
}

/// Row flags.
pub const FAV: u8 = 1;
pub const DELETED: u8 = 2;
/// The file was not found by the last scan.
pub const MISSING: u8 = 4;
/// Once set as an entry's cover.
pub const WAS_COVER: u8 = 8;

/// `Row::prompt` before the job's recipe has been read.
pub const PROMPT_PENDING: u32 = u32::MAX;
/// `Row::prompt` of an image without a recipe (uploads, untracked files, unreadable recipes).
pub const PROMPT_NONE: u32 = u32::MAX - 1;

/// A `name` with this bit set is a job image's own name: `<job id, lower case>_<n>.<ext>`,
/// with `n` in the low 16 bits and the extension's index above them.
const CANON: u32 = 1 << 31;
const EXTS: [&str; 4] = ["png", "jpg", "webp", "gif"];

/// One image: 36 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// The job that made it (big-endian ULID bytes); zero when none.
    pub job: [u8; 16],
    /// When it was made, found or uploaded (unix seconds).
    pub at: u32,
    /// Index into the directory table.
    pub dir: u32,
    /// The file name: `CANON | ext << 16 | n`, or an offset into the name arena.
    pub name: u32,
    /// The prompt's id in the word index, or `PROMPT_PENDING` / `PROMPT_NONE`.
    pub prompt: u32,
    pub kind: u8,
    pub flags: u8,
}

pub const ROW_BYTES: usize = 34;

impl Row {
    pub fn job(&self) -> Option<u128> {
        let id = u128::from_be_bytes(self.job);
        (id != 0).then_some(id)
    }

    pub fn kind(&self) -> Kind {
        Kind::from_u8(self.kind)
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Shown in the gallery: not deleted, and not an untracked file that has gone.
    pub fn visible(&self) -> bool {
        let gone_untracked = self.has(MISSING) && self.kind() == Kind::Untracked;
        !self.has(DELETED) && !gone_untracked
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.job);
        out.extend_from_slice(&self.at.to_le_bytes());
        out.extend_from_slice(&self.dir.to_le_bytes());
        out.extend_from_slice(&self.name.to_le_bytes());
        out.extend_from_slice(&self.prompt.to_le_bytes());
        out.push(self.kind);
        out.push(self.flags);
    }

    pub fn decode(b: &[u8]) -> Option<Row> {
        if b.len() < ROW_BYTES {
            return None;
        }
        let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut job = [0u8; 16];
        job.copy_from_slice(&b[..16]);
        Some(Row {
            job,
            at: u(16),
            dir: u(20),
            name: u(24),
            prompt: u(28),
            kind: b[32],
            flags: b[33],
        })
    }
}

/// A folder images live in, and the entry it belongs to (`uploads/<category>/<slug>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dir {
    pub path: String,
    pub entry: Option<(Category, String)>,
}

impl Dir {
    fn of(path: &str) -> Dir {
        let mut parts = path.split('/');
        let entry = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("uploads"), Some(c), Some(slug), None) => Category::parse(c)
                .filter(|_| crate::library::category::is_slug(slug))
                .map(|c| (c, slug.to_string())),
            _ => None,
        };
        Dir {
            path: path.to_string(),
            entry,
        }
    }
}

/// What the gallery asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Only images of this category's entries; `Some(None)` for images without an entry
    /// (the generator's).
    pub category: Option<Option<Category>>,
    pub entry: Option<(Category, String)>,
    pub favourites: bool,
    /// Hide images of entries tagged NSFW.
    pub hide_nsfw: bool,
    pub kind: Option<Kind>,
    /// Unix seconds, inclusive.
    pub from: Option<u32>,
    /// Unix seconds, exclusive.
    pub until: Option<u32>,
    pub oldest_first: bool,
    /// Only these prompts (a bit per prompt id), from a text search.
    pub prompts: Option<Vec<u64>>,
}

/// The image index.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// The seq of the last event folded in.
    pub seq: u64,
    pub rows: Vec<Row>,
    /// Visible rows by time (`at`, then row number), oldest first.
    order: Vec<u32>,
    pub dirs: Vec<Dir>,
    dir_ids: HashMap<String, u32>,
    /// File names that are not a job image's own: a length byte pair, then the bytes.
    names: Vec<u8>,
    /// Path hash → row; paths whose hash is taken by another path are in `overflow`.
    by_hash: HashMap<u64, u32>,
    overflow: HashMap<String, u32>,
    pub words: Words,
}

/// What the cache file keeps of an index besides its rows (see `super::cache`).
#[derive(Serialize, Deserialize)]
pub struct Tables {
    pub seq: u64,
    pub dirs: Vec<Dir>,
    pub names: Vec<u8>,
    pub words: WordsFile,
}

fn secs(ms: u64) -> u32 {
    u32::try_from(ms / 1000).unwrap_or(u32::MAX)
}

/// `uploads/a/b/c.png` → (`uploads/a/b`, `c.png`).
fn split_path(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((d, n)) => (d, n),
        None => ("", path),
    }
}

/// The canonical name code of `name` for `job`, if it is `<job lower>_<n>.<ext>`.
fn canon(job: Option<u128>, name: &str) -> Option<u32> {
    let job = job?;
    let (stem, ext) = name.rsplit_once('.')?;
    let e = EXTS.iter().position(|x| *x == ext)? as u32;
    let (id, n) = stem.rsplit_once('_')?;
    let n: u16 = n.parse().ok()?;
    if n.to_string() != stem.rsplit_once('_')?.1 {
        return None;
    }
    (id == ulid::Ulid::from(job).to_string().to_lowercase())
        .then_some(CANON | e << 16 | u32::from(n))
}

impl Index {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Every row ever recorded, deleted ones included.
    pub fn total_rows(&self) -> usize {
        self.rows.len()
    }

    fn dir_id(&mut self, path: &str) -> u32 {
        if let Some(id) = self.dir_ids.get(path) {
            return *id;
        }
        let id = self.dirs.len() as u32;
        self.dirs.push(Dir::of(path));
        self.dir_ids.insert(path.to_string(), id);
        id
    }

    fn push_name(&mut self, name: &str) -> u32 {
        let at = self.names.len() as u32;
        let bytes = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
        self.names
            .extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        self.names.extend_from_slice(bytes);
        at
    }

    /// A row's file name.
    pub fn name_of(&self, r: &Row) -> String {
        if r.name & CANON != 0 {
            let ext = EXTS
                .get(((r.name >> 16) & 0x7fff) as usize)
                .copied()
                .unwrap_or("png");
            let job = r
                .job()
                .map(|j| ulid::Ulid::from(j).to_string().to_lowercase());
            return format!("{}_{}.{ext}", job.unwrap_or_default(), r.name & 0xffff);
        }
        let at = r.name as usize;
        let Some(len) = self.names.get(at..at + 2) else {
            return String::new();
        };
        let len = u16::from_le_bytes([len[0], len[1]]) as usize;
        self.names
            .get(at + 2..at + 2 + len)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    /// A row's path as events name it (`uploads/…`).
    pub fn path_of(&self, r: &Row) -> String {
        let dir = self
            .dirs
            .get(r.dir as usize)
            .map_or("", |d| d.path.as_str());
        format!("{dir}/{}", self.name_of(r))
    }

    pub fn dir_of(&self, r: &Row) -> Option<&Dir> {
        self.dirs.get(r.dir as usize)
    }

    /// The row of `path`, if the index holds it (deleted rows included).
    pub fn find(&self, path: &str) -> Option<u32> {
        if let Some(r) = self.overflow.get(path) {
            return Some(*r);
        }
        let id = *self.by_hash.get(&content_hash(path.as_bytes()))?;
        let row = self.rows.get(id as usize)?;
        (self.path_of(row) == path).then_some(id)
    }

    fn remember(&mut self, path: &str, id: u32) {
        let h = content_hash(path.as_bytes());
        match self.by_hash.get(&h) {
            None => {
                self.by_hash.insert(h, id);
            }
            Some(_) => {
                self.overflow.insert(path.to_string(), id);
            }
        }
    }

    fn place(&self, id: u32) -> usize {
        let key = (self.rows[id as usize].at, id);
        self.order
            .partition_point(|&o| (self.rows[o as usize].at, o) < key)
    }

    fn show(&mut self, id: u32) {
        let p = self.place(id);
        if self.order.get(p) != Some(&id) {
            self.order.insert(p, id);
        }
    }

    fn hide(&mut self, id: u32) {
        let p = self.place(id);
        if self.order.get(p) == Some(&id) {
            self.order.remove(p);
        }
    }

    /// Adds an image (or returns the row that already has its path).
    pub fn add(&mut self, path: &str, job: Option<u128>, at_secs: u32, kind: Kind) -> u32 {
        if let Some(id) = self.find(path) {
            return id;
        }
        let (dir, name) = split_path(path);
        let dir = self.dir_id(dir);
        let name = match canon(job, name) {
            Some(code) => code,
            None => self.push_name(name),
        };
        let id = self.rows.len() as u32;
        self.rows.push(Row {
            job: job.unwrap_or(0).to_be_bytes(),
            at: at_secs,
            dir,
            name,
            prompt: if job.is_some() {
                PROMPT_PENDING
            } else {
                PROMPT_NONE
            },
            kind: kind as u8,
            flags: 0,
        });
        self.remember(path, id);
        // Rows mostly come in time order: appending is the common case.
        let last = self.order.last().map(|&o| (self.rows[o as usize].at, o));
        if last.is_none_or(|l| l < (at_secs, id)) {
            self.order.push(id);
        } else {
            self.show(id);
        }
        id
    }

    fn set_flag(&mut self, id: u32, flag: u8, on: bool) {
        let before = self.rows[id as usize].visible();
        let r = &mut self.rows[id as usize];
        if on {
            r.flags |= flag;
        } else {
            r.flags &= !flag;
        }
        let after = r.visible();
        match (before, after) {
            (true, false) => self.hide(id),
            (false, true) => self.show(id),
            _ => {}
        }
    }

    /// Folds one committed event in (events about other things are ignored).
    pub fn apply(&mut self, s: &Stored) {
        self.seq = self.seq.max(s.seq);
        let at = secs(s.envelope.at);
        match s.event() {
            Event::JobSucceeded { job, images } => {
                for path in images {
                    self.add(path, Some(*job), at, Kind::Generated);
                }
            }
            Event::CoverSet { path, .. } => {
                let id = self.add(path, None, at, Kind::Upload);
                self.set_flag(id, WAS_COVER, true);
            }
            Event::ImageFavouriteSet { path, on } => {
                let id = self.add(path, None, at, Kind::Untracked);
                self.set_flag(id, FAV, *on);
            }
            Event::ImageDeleted { path, job } => {
                let id = self.add(path, *job, at, Kind::Untracked);
                self.set_flag(id, DELETED, true);
            }
            _ => {}
        }
    }

    /// Whether an event changes the index (so readers of the ledger can skip the rest).
    pub fn concerns(e: &Event) -> bool {
        matches!(
            e,
            Event::JobSucceeded { .. }
                | Event::CoverSet { .. }
                | Event::ImageFavouriteSet { .. }
                | Event::ImageDeleted { .. }
        )
    }

    /// Records what a scan of the uploads folder found: every image file's path and
    /// modification time. Files no event names become untracked rows; rows whose file was not
    /// found are marked missing (and found again when they come back).
    pub fn scanned(&mut self, found: &[(String, u32)]) {
        let mut seen = vec![false; self.rows.len()];
        for (path, mtime) in found {
            match self.find(path) {
                Some(id) => {
                    if let Some(s) = seen.get_mut(id as usize) {
                        *s = true;
                    }
                }
                None => {
                    self.add(path, None, *mtime, Kind::Untracked);
                    seen.push(true);
                }
            }
        }
        for (id, s) in seen.iter().enumerate() {
            let missing = self.rows[id].has(MISSING);
            if *s == missing {
                self.set_flag(id as u32, MISSING, !*s);
            }
        }
    }

    /// Sets the prompt id of every row of `job`.
    pub fn set_prompt(&mut self, job: u128, rows: &[u32], prompt: u32) {
        for &id in rows {
            if let Some(r) = self.rows.get_mut(id as usize)
                && r.job() == Some(job)
            {
                r.prompt = prompt;
            }
        }
    }

    /// Rows whose prompt has not been read yet, newest first, grouped by job: at most `limit`
    /// jobs.
    pub fn pending_prompts(&self, limit: usize) -> Vec<(u128, Vec<u32>)> {
        let mut out: Vec<(u128, Vec<u32>)> = Vec::new();
        for (id, r) in self.rows.iter().enumerate().rev() {
            if r.prompt != PROMPT_PENDING {
                continue;
            }
            let Some(job) = r.job() else { continue };
            match out.iter_mut().find(|(j, _)| *j == job) {
                Some((_, rows)) => rows.push(id as u32),
                None => {
                    if out.len() == limit {
                        break;
                    }
                    out.push((job, vec![id as u32]));
                }
            }
        }
        out
    }

    /// How many rows still wait for their prompt.
    pub fn prompts_pending(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.prompt == PROMPT_PENDING)
            .count()
    }

    /// Whether `r` passes `f`. `nsfw_dirs` says which directories belong to NSFW entries.
    fn passes(&self, r: &Row, f: &Filter, nsfw_dirs: &[bool]) -> bool {
        if f.favourites && !r.has(FAV) {
            return false;
        }
        if f.kind.is_some_and(|k| k != r.kind()) {
            return false;
        }
        if f.hide_nsfw && nsfw_dirs.get(r.dir as usize).copied().unwrap_or(false) {
            return false;
        }
        if let Some(bits) = &f.prompts {
            let p = r.prompt as usize;
            if r.prompt >= PROMPT_NONE || bits.get(p / 64).is_none_or(|w| w & (1 << (p % 64)) == 0)
            {
                return false;
            }
        }
        if f.category.is_some() || f.entry.is_some() {
            let entry = self.dirs.get(r.dir as usize).and_then(|d| d.entry.as_ref());
            if let Some(want) = &f.category
                && entry.map(|e| e.0) != *want
            {
                return false;
            }
            if let Some(want) = &f.entry
                && entry != Some(want)
            {
                return false;
            }
        }
        true
    }

    /// The positions in `order` that the date range allows.
    fn range(&self, f: &Filter) -> std::ops::Range<usize> {
        let lo = match f.from {
            Some(t) => self
                .order
                .partition_point(|&o| self.rows[o as usize].at < t),
            None => 0,
        };
        let hi = match f.until {
            Some(t) => self
                .order
                .partition_point(|&o| self.rows[o as usize].at < t),
            None => self.order.len(),
        };
        lo..hi.max(lo)
    }

    fn plain(f: &Filter) -> bool {
        !f.favourites
            && f.kind.is_none()
            && !f.hide_nsfw
            && f.prompts.is_none()
            && f.category.is_none()
            && f.entry.is_none()
    }

    /// One page of rows in the filter's order, and how many rows pass in all.
    pub fn page(
        &self,
        f: &Filter,
        nsfw_dirs: &[bool],
        offset: usize,
        limit: usize,
    ) -> (Vec<u32>, usize) {
        let range = self.range(f);
        let slice = &self.order[range];
        if Self::plain(f) {
            let total = slice.len();
            let start = offset.min(total);
            let end = (start + limit).min(total);
            let ids: Vec<u32> = if f.oldest_first {
                slice[start..end].to_vec()
            } else {
                slice[total - end..total - start]
                    .iter()
                    .rev()
                    .copied()
                    .collect()
            };
            return (ids, total);
        }
        let mut out = Vec::with_capacity(limit);
        let mut total = 0usize;
        let mut visit = |id: u32| {
            if self.passes(&self.rows[id as usize], f, nsfw_dirs) {
                if total >= offset && out.len() < limit {
                    out.push(id);
                }
                total += 1;
            }
        };
        if f.oldest_first {
            slice.iter().for_each(|&id| visit(id));
        } else {
            slice.iter().rev().for_each(|&id| visit(id));
        }
        (out, total)
    }

    /// The rows before and after `id` in the filter's order (for ← and →), and its position.
    pub fn neighbours(
        &self,
        id: u32,
        f: &Filter,
        nsfw_dirs: &[bool],
    ) -> (Option<u32>, Option<u32>, Option<usize>) {
        let range = self.range(f);
        let slice = &self.order[range];
        let row = match self.rows.get(id as usize) {
            Some(r) if r.visible() => r,
            _ => return (None, None, None),
        };
        let key = (row.at, id);
        let p = slice.partition_point(|&o| (self.rows[o as usize].at, o) < key);
        if slice.get(p) != Some(&id) {
            return (None, None, None);
        }
        let ok = |o: &&u32| self.passes(&self.rows[**o as usize], f, nsfw_dirs);
        let older = slice[..p].iter().rev().find(ok).copied();
        let newer = slice[p + 1..].iter().find(ok).copied();
        let position = if Self::plain(f) {
            Some(if f.oldest_first {
                p
            } else {
                slice.len() - 1 - p
            })
        } else {
            let before = if f.oldest_first {
                slice[..p].iter().filter(ok).count()
            } else {
                slice[p + 1..].iter().filter(ok).count()
            };
            Some(before)
        };
        if f.oldest_first {
            (older, newer, position)
        } else {
            (newer, older, position)
        }
    }

    /// Rows whose prompt is one of `prompts` (bits), newest first: at most `limit`, and the
    /// count of all of them.
    pub fn with_prompts(&self, prompts: &[u64], limit: usize) -> (Vec<u32>, usize) {
        let f = Filter {
            prompts: Some(prompts.to_vec()),
            ..Filter::default()
        };
        self.page(&f, &[], 0, limit)
    }

    /// The tables the cache file keeps (rows are written apart, see `super::cache`).
    pub fn tables(&self) -> Tables {
        Tables {
            seq: self.seq,
            dirs: self.dirs.clone(),
            names: self.names.clone(),
            words: self.words.to_file(),
        }
    }

    /// An index from a cache file's parts.
    pub fn from_parts(t: Tables, rows: Vec<Row>) -> Index {
        let mut ix = Index {
            seq: t.seq,
            dir_ids: t
                .dirs
                .iter()
                .enumerate()
                .map(|(i, d)| (d.path.clone(), i as u32))
                .collect(),
            dirs: t.dirs,
            names: t.names,
            words: Words::from_file(t.words),
            ..Index::default()
        };
        ix.by_hash.reserve(rows.len());
        ix.rows = rows;
        for id in 0..ix.rows.len() {
            let path = ix.path_of(&ix.rows[id]);
            ix.remember(&path, id as u32);
        }
        let mut order: Vec<u32> = (0..ix.rows.len() as u32)
            .filter(|&i| ix.rows[i as usize].visible())
            .collect();
        order.sort_unstable_by_key(|&i| (ix.rows[i as usize].at, i));
        ix.order = order;
        ix
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::{Envelope, Origin};

    const J1: u128 = 0x0193_0000_0000_0000_0000_0000_0000_0001;
    const J2: u128 = 0x0193_0000_0000_0000_0000_0000_0000_0002;

    fn job_path(c: &str, slug: &str, job: u128, n: u32) -> String {
        format!(
            "uploads/{c}/{slug}/{}_{n}.png",
            ulid::Ulid::from(job).to_string().to_lowercase()
        )
    }

    fn stored(seq: u64, at_secs: u64, event: Event) -> Stored {
        Stored {
            seq,
            envelope: Envelope {
                id: u128::from(seq),
                at: at_secs * 1000,
                origin: Origin::Reactor,
                event,
            },
        }
    }

    fn sample() -> Index {
        let mut ix = Index::default();
        let events = vec![
            Event::JobSucceeded {
                job: J1,
                images: vec![
                    job_path("characters", "tifa", J1, 0),
                    job_path("characters", "tifa", J1, 1),
                ],
            },
            Event::CoverSet {
                category: Category::Characters,
                slug: "tifa".into(),
                path: job_path("characters", "tifa", J1, 0),
            },
            Event::CoverSet {
                category: Category::Outfits,
                slug: "maid".into(),
                path: "uploads/outfits/maid/cover_01abc.webp".into(),
            },
            Event::JobSucceeded {
                job: J2,
                images: vec!["uploads/generator/odd name.png".into()],
            },
            Event::ImageFavouriteSet {
                path: job_path("characters", "tifa", J1, 1),
                on: true,
            },
        ];
        for (i, e) in events.into_iter().enumerate() {
            ix.apply(&stored(i as u64 + 1, 100 + i as u64 * 10, e));
        }
        ix
    }

    fn paths(ix: &Index, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&i| ix.path_of(&ix.rows[i as usize]))
            .collect()
    }

    #[test]
    fn job_images_keep_no_name_and_every_path_comes_back() {
        let ix = sample();
        assert_eq!(ix.seq, 5);
        assert_eq!(ix.rows.len(), 4, "the cover of a job image is the same row");
        assert!(ix.rows[0].name & CANON != 0 && ix.rows[1].name & CANON != 0);
        assert_eq!(ix.rows[2].kind(), Kind::Upload);
        assert!(ix.rows[0].has(WAS_COVER));
        for (i, want) in [
            job_path("characters", "tifa", J1, 0),
            job_path("characters", "tifa", J1, 1),
            "uploads/outfits/maid/cover_01abc.webp".to_string(),
            "uploads/generator/odd name.png".to_string(),
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(&ix.path_of(&ix.rows[i]), want);
            assert_eq!(ix.find(want), Some(i as u32));
        }
        assert_eq!(ix.find("uploads/characters/tifa/nope.png"), None);
        assert_eq!(
            ix.dirs[ix.rows[0].dir as usize].entry,
            Some((Category::Characters, "tifa".into()))
        );
        assert_eq!(ix.dirs[ix.rows[3].dir as usize].entry, None);
    }

    #[test]
    fn canonical_names_are_exact() {
        let name = format!("{}_3.jpg", ulid::Ulid::from(J1).to_string().to_lowercase());
        assert!(canon(Some(J1), &name).is_some());
        for odd in [
            format!("{}_03.jpg", ulid::Ulid::from(J1).to_string().to_lowercase()),
            format!("{}_3.jpg", ulid::Ulid::from(J1)),
            format!("{}_3.tiff", ulid::Ulid::from(J1).to_string().to_lowercase()),
            format!(
                "{}_70000.png",
                ulid::Ulid::from(J1).to_string().to_lowercase()
            ),
            "cover.png".to_string(),
        ] {
            assert_eq!(canon(Some(J1), &odd), None, "{odd}");
        }
        assert_eq!(canon(None, &name), None);
    }

    #[test]
    fn filters_sorts_and_pages() {
        let ix = sample();
        let nsfw = vec![false; ix.dirs.len()];
        let tifa_dir = ix.rows[0].dir as usize;
        let all_new = paths(&ix, &ix.page(&Filter::default(), &nsfw, 0, 10).0);
        assert_eq!(all_new[0], "uploads/generator/odd name.png");
        assert_eq!(all_new.len(), 4);
        type Case = (Filter, Vec<usize>, usize);
        let f = |g: &dyn Fn(&mut Filter)| {
            let mut x = Filter::default();
            g(&mut x);
            x
        };
        let cases: Vec<Case> = vec![
            (f(&|x| x.oldest_first = true), vec![0, 1, 2, 3], 4),
            (f(&|x| x.favourites = true), vec![1], 1),
            (
                f(&|x| x.category = Some(Some(Category::Characters))),
                vec![1, 0],
                2,
            ),
            (f(&|x| x.category = Some(None)), vec![3], 1),
            (
                f(&|x| x.entry = Some((Category::Outfits, "maid".into()))),
                vec![2],
                1,
            ),
            (f(&|x| x.kind = Some(Kind::Upload)), vec![2], 1),
            (f(&|x| x.from = Some(110)), vec![3, 2], 2),
            (f(&|x| x.until = Some(120)), vec![1, 0], 2),
            (
                f(&|x| {
                    x.from = Some(100);
                    x.until = Some(101);
                }),
                vec![1, 0],
                2,
            ),
            (f(&|x| x.hide_nsfw = true), vec![3, 2], 2),
        ];
        let mut nsfw_tifa = nsfw.clone();
        nsfw_tifa[tifa_dir] = true;
        for (filter, want, total) in cases {
            let (ids, n) = ix.page(&filter, &nsfw_tifa, 0, 10);
            let want: Vec<u32> = want.into_iter().map(|i| i as u32).collect();
            assert_eq!((ids, n), (want, total), "{filter:?}");
        }
        // Paging: the second page of two, newest first.
        let (ids, n) = ix.page(&Filter::default(), &nsfw, 2, 2);
        assert_eq!((ids, n), (vec![1, 0], 4));
        let (ids, n) = ix.page(&Filter::default(), &nsfw, 9, 2);
        assert_eq!((ids, n), (vec![], 4), "past the end is empty, not a panic");
    }

    #[test]
    fn deleted_images_leave_the_order_and_neighbours_skip_them() {
        let mut ix = sample();
        let nsfw = vec![false; ix.dirs.len()];
        let f = Filter::default();
        assert_eq!(ix.neighbours(2, &f, &nsfw), (Some(3), Some(1), Some(1)));
        ix.apply(&stored(
            6,
            200,
            Event::ImageDeleted {
                path: job_path("characters", "tifa", J1, 1),
                job: Some(J1),
            },
        ));
        assert_eq!(ix.len(), 3);
        assert!(ix.rows[1].has(DELETED));
        assert_eq!(ix.neighbours(2, &f, &nsfw), (Some(3), Some(0), Some(1)));
        assert_eq!(ix.neighbours(1, &f, &nsfw), (None, None, None));
        let fav = Filter {
            favourites: true,
            ..Filter::default()
        };
        assert_eq!(ix.page(&fav, &nsfw, 0, 10), (vec![], 0));
        let old = Filter {
            oldest_first: true,
            ..Filter::default()
        };
        assert_eq!(ix.neighbours(2, &old, &nsfw), (Some(0), Some(3), Some(1)));
    }

    #[test]
    fn a_scan_adds_untracked_files_and_marks_missing_ones() {
        let mut ix = sample();
        let found = vec![
            (job_path("characters", "tifa", J1, 0), 1),
            ("uploads/characters/tifa/mine.png".to_string(), 50),
            (job_path("characters", "tifa", J1, 1), 1),
            ("uploads/generator/odd name.png".to_string(), 1),
        ];
        ix.scanned(&found);
        let mine = ix.find("uploads/characters/tifa/mine.png").unwrap();
        assert_eq!(ix.rows[mine as usize].kind(), Kind::Untracked);
        assert_eq!(ix.rows[mine as usize].at, 50);
        assert!(ix.rows[2].has(MISSING), "the maid cover was not found");
        assert!(
            ix.rows[2].visible(),
            "a known image whose file is gone still shows"
        );
        let (ids, _) = ix.page(&Filter::default(), &[], 0, 10);
        assert_eq!(ids.last(), Some(&mine), "oldest by its file time");
        // The untracked file goes: it leaves the gallery; it comes back: it returns.
        ix.scanned(&found[..1]);
        assert!(!ix.rows[mine as usize].visible());
        ix.scanned(&found);
        assert!(ix.rows[mine as usize].visible());
        assert!(ix.rows[2].has(MISSING));
        ix.scanned(&[("uploads/outfits/maid/cover_01abc.webp".to_string(), 1)]);
        assert!(!ix.rows[2].has(MISSING), "found again");
    }

    #[test]
    fn rows_and_tables_round_trip_through_the_cache_form() {
        let ix = sample();
        let mut bytes = Vec::new();
        for r in &ix.rows {
            r.encode(&mut bytes);
        }
        assert_eq!(bytes.len(), ix.rows.len() * ROW_BYTES);
        let rows: Vec<Row> = bytes.chunks(ROW_BYTES).filter_map(Row::decode).collect();
        let back = Index::from_parts(ix.tables(), rows);
        assert_eq!(back.rows, ix.rows);
        assert_eq!(back.order, ix.order);
        for r in &ix.rows {
            let p = ix.path_of(r);
            assert_eq!(back.find(&p), ix.find(&p));
        }
    }

    #[test]
    fn pending_prompts_come_newest_first_grouped_by_job() {
        let mut ix = sample();
        let p = ix.pending_prompts(10);
        assert_eq!(p, vec![(J2, vec![3]), (J1, vec![1, 0])]);
        ix.set_prompt(J1, &[0, 1], 4);
        assert_eq!(ix.pending_prompts(10), vec![(J2, vec![3])]);
        assert_eq!(ix.prompts_pending(), 1);
        assert_eq!(ix.rows[2].prompt, PROMPT_NONE);
    }
}
