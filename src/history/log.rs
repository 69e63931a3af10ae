//! The event log, read in full: filters (kind, origin, category and entry, job, time range)
//! and cursor paging in both directions over the ledger's indexes, shared by `GET /api/events`,
//! the `/history` page and `gaze events`.

use crate::library::category::{Category, is_slug};
use crate::store::event::{KINDS, Origin, Stored};
use crate::store::ledger::{Ledger, Scan};
use std::collections::HashMap;

/// Which events to show. Empty lists mean "any".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Kind codes (positions in `KINDS`).
    pub kinds: Vec<u8>,
    pub origins: Vec<Origin>,
    pub category: Option<Category>,
    /// One entry of `category`.
    pub slug: Option<String>,
    pub job: Option<u128>,
    /// Unix ms, inclusive.
    pub since: Option<u64>,
    pub until: Option<u64>,
}

/// Where a page starts: events after a seq (oldest first), before a seq (the nearest ones),
/// or the newest ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Paging {
    pub after: Option<u64>,
    pub before: Option<u64>,
    pub limit: usize,
    /// With neither cursor: the newest page instead of the oldest.
    pub newest: bool,
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            after: None,
            before: None,
            limit: 100,
            newest: false,
        }
    }
}

/// The most events one page holds.
pub const MAX_LIMIT: usize = 1000;

/// One page of events, oldest first, with cursors to the pages on either side.
#[derive(Debug)]
pub struct Page {
    pub events: Vec<Stored>,
    /// `after=` for the next newer page, if there are newer matches.
    pub newer: Option<u64>,
    /// `before=` for the next older page, if there are older matches.
    pub older: Option<u64>,
}

fn list<'q>(q: &'q HashMap<String, String>, key: &str) -> Vec<&'q str> {
    q.get(key)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn seq_param(q: &HashMap<String, String>, key: &str) -> Result<Option<u64>, String> {
    q.get(key)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| format!("?{key}={v} is not a whole number"))
        })
        .transpose()
}

/// Parses a job id (a ULID).
pub fn parse_job(s: &str) -> Result<u128, String> {
    ulid::Ulid::from_string(&s.trim().to_ascii_uppercase())
        .map(u128::from)
        .map_err(|_| format!("'{s}' is not a job id (a 26-character ULID)"))
}

impl Filter {
    /// Reads the filter and paging from query parameters: `type` and `origin` (comma-separated),
    /// `category`, `slug`, `job`, `since`, `until` (RFC 3339 or unix ms), `after`, `before`,
    /// `limit` (1–1000, default 100) and `order=desc` (the newest page first).
    pub fn from_query(q: &HashMap<String, String>) -> Result<(Filter, Paging), String> {
        let known = [
            "type", "origin", "category", "slug", "job", "since", "until", "after", "before",
            "limit", "order",
        ];
        let mut f = Filter::default();
        for k in list(q, "type") {
            let code = KINDS
                .iter()
                .position(|x| *x == k)
                .ok_or_else(|| format!("unknown event type '{k}' (known: {})", KINDS.join(", ")))?;
            f.kinds.push(code as u8);
        }
        for o in list(q, "origin") {
            f.origins.push(Origin::parse(o).ok_or_else(|| {
                let names: Vec<&str> = Origin::ALL.iter().map(|o| o.as_str()).collect();
                format!("unknown origin '{o}' (known: {})", names.join(", "))
            })?);
        }
        if let Some(c) = q.get("category").filter(|v| !v.is_empty()) {
            f.category = Some(Category::parse(c).ok_or_else(|| {
                let keys: Vec<&str> = Category::ALL.iter().map(|c| c.key()).collect();
                format!("unknown category '{c}' (known: {})", keys.join(" "))
            })?);
        }
        if let Some(s) = q.get("slug").filter(|v| !v.is_empty()) {
            if f.category.is_none() {
                return Err("?slug needs ?category too".into());
            }
            if !is_slug(s) {
                return Err(format!("'{s}' is not a slug (letters, digits and _ only)"));
            }
            f.slug = Some(s.clone());
        }
        if let Some(j) = q.get("job").filter(|v| !v.is_empty()) {
            f.job = Some(parse_job(j)?);
        }
        for (key, slot) in [("since", &mut f.since), ("until", &mut f.until)] {
            if let Some(t) = q.get(key).filter(|v| !v.is_empty()) {
                *slot = Some(super::time::parse(t).map_err(|e| format!("?{key}: {e}"))?);
            }
        }
        let mut p = Paging {
            after: seq_param(q, "after")?,
            before: seq_param(q, "before")?,
            ..Paging::default()
        };
        if let Some(l) = seq_param(q, "limit")? {
            if l == 0 || l as usize > MAX_LIMIT {
                return Err(format!("?limit={l} must be from 1 to {MAX_LIMIT}"));
            }
            p.limit = l as usize;
        }
        p.newest = match q.get("order").map(String::as_str) {
            None | Some("" | "asc") => false,
            Some("desc") => true,
            Some(o) => return Err(format!("?order={o} must be asc or desc")),
        };
        if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "unknown parameter '{k}' (known: {})",
                known.join(", ")
            ));
        }
        Ok((f, p))
    }

    /// The filter as query parameters (without paging), for links and the CLI.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if !self.kinds.is_empty() {
            let names: Vec<&str> = self.kinds.iter().map(|k| KINDS[*k as usize]).collect();
            q.push(("type", names.join(",")));
        }
        if !self.origins.is_empty() {
            let names: Vec<&str> = self.origins.iter().map(|o| o.as_str()).collect();
            q.push(("origin", names.join(",")));
        }
        if let Some(c) = self.category {
            q.push(("category", c.key().to_string()));
        }
        if let Some(s) = &self.slug {
            q.push(("slug", s.clone()));
        }
        if let Some(j) = self.job {
            q.push(("job", ulid::Ulid::from(j).to_string()));
        }
        if let Some(t) = self.since {
            q.push(("since", super::time::format(t)));
        }
        if let Some(t) = self.until {
            q.push(("until", super::time::format(t)));
        }
        q
    }

    pub fn matches(&self, s: &Stored) -> bool {
        let e = s.event();
        (self.kinds.is_empty() || self.kinds.contains(&e.kind_code()))
            && (self.origins.is_empty() || self.origins.contains(&s.envelope.origin))
            && self.job.is_none_or(|j| e.job() == Some(j))
            && match (self.category, &self.slug) {
                (None, _) => true,
                (Some(c), None) => e.category() == Some(c) || e.subjects().iter().any(|x| x.0 == c),
                (Some(c), Some(slug)) => e.subjects().contains(&(c, slug.as_str())),
            }
    }

    /// The most selective index for this filter.
    fn driver(&self) -> Scan {
        if let Some(j) = self.job {
            return Scan::Job(j);
        }
        match (self.category, &self.slug) {
            (Some(c), Some(s)) => return Scan::Subject(c, s.clone()),
            _ if self.kinds.len() == 1 => return Scan::Kind(self.kinds[0]),
            (Some(c), None) => return Scan::Category(c),
            _ => {}
        }
        if self.origins.len() == 1 {
            return Scan::Origin(self.origins[0]);
        }
        Scan::All
    }

    /// The seq range the time bounds allow (empty when `from > to`).
    fn bounds(&self, ledger: &Ledger) -> Result<(u64, u64), String> {
        let mut lo = 1;
        let mut hi = ledger.last_seq();
        if let Some(since) = self.since.filter(|s| *s > 0) {
            lo = ledger.seq_at_time(since - 1).map_err(|e| e.to_string())? + 1;
        }
        if let Some(until) = self.until {
            hi = hi.min(ledger.seq_at_time(until).map_err(|e| e.to_string())?);
        }
        Ok((lo, hi))
    }

    /// Whether any event in `from..=to` matches.
    fn any(&self, ledger: &Ledger, from: u64, to: u64) -> Result<bool, String> {
        let mut found = false;
        ledger
            .scan(&self.driver(), from, to, false, |s| {
                found = self.matches(&s);
                !found
            })
            .map_err(|e| e.to_string())?;
        Ok(found)
    }
}

/// One page of the events `f` matches.
pub fn query(ledger: &Ledger, f: &Filter, p: &Paging) -> Result<Page, String> {
    let (lo, hi) = f.bounds(ledger)?;
    let from = p.after.map_or(lo, |a| lo.max(a.saturating_add(1)));
    let to = p.before.map_or(hi, |b| hi.min(b.saturating_sub(1)));
    let newest_first = p.after.is_none() && (p.before.is_some() || p.newest);
    let limit = p.limit.clamp(1, MAX_LIMIT);
    let mut events = Vec::with_capacity(limit + 1);
    ledger
        .scan(&f.driver(), from, to, newest_first, |s| {
            if f.matches(&s) {
                events.push(s);
            }
            events.len() <= limit
        })
        .map_err(|e| e.to_string())?;
    let more = events.len() > limit;
    events.truncate(limit);
    if newest_first {
        events.reverse();
    }
    let (first, last) = match (events.first(), events.last()) {
        (Some(a), Some(b)) => (a.seq, b.seq),
        // Nothing here: the neighbours are on either side of the range looked at.
        _ => (from, to),
    };
    let empty = events.is_empty();
    let newer = if !newest_first && !empty {
        more
    } else {
        let start = if empty {
            to.saturating_add(1)
        } else {
            last + 1
        };
        start <= hi && f.any(ledger, start, hi)?
    };
    let older = if newest_first && !empty {
        more
    } else {
        let end = if empty {
            from.saturating_sub(1)
        } else {
            first - 1
        };
        end >= lo && end > 0 && f.any(ledger, lo, end)?
    };
    Ok(Page {
        newer: newer.then_some(if empty { to } else { last }),
        older: older.then_some(if empty { from } else { first }),
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::{Envelope, Event};

    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("g.redb")).unwrap();
        // seq i at time 1000 + 10 i; every third event is a web cover of characters/e<i%4>.
        let batch: Vec<Envelope> = (1..=90u64)
            .map(|i| Envelope {
                id: u128::from(i),
                at: 1000 + 10 * i,
                origin: if i % 3 == 0 {
                    Origin::Web
                } else {
                    Origin::Reactor
                },
                event: if i % 3 == 0 {
                    Event::CoverSet {
                        category: Category::Characters,
                        slug: format!("e{}", i % 4),
                        path: format!("p{i}"),
                    }
                } else {
                    Event::JobCancelled {
                        job: u128::from(i % 2),
                    }
                },
            })
            .collect();
        l.append(batch).unwrap();
        (dir, l)
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn page(l: &Ledger, pairs: &[(&str, &str)]) -> (Vec<u64>, Option<u64>, Option<u64>) {
        let (f, p) = Filter::from_query(&q(pairs)).unwrap();
        let page = query(l, &f, &p).unwrap();
        (
            page.events.iter().map(|s| s.seq).collect(),
            page.newer,
            page.older,
        )
    }

    #[test]
    fn filters_select_what_they_say() {
        let (_d, l) = ledger();
        let (s, ..) = page(&l, &[("type", "cover_set"), ("limit", "1000")]);
        assert_eq!(s, (1..=90).filter(|i| i % 3 == 0).collect::<Vec<_>>());
        let (s, ..) = page(&l, &[("origin", "web"), ("limit", "5")]);
        assert_eq!(s, [3, 6, 9, 12, 15]);
        let (s, ..) = page(
            &l,
            &[
                ("category", "characters"),
                ("slug", "e1"),
                ("limit", "1000"),
            ],
        );
        assert_eq!(s, [9, 21, 33, 45, 57, 69, 81]);
        let (s, ..) = page(&l, &[("category", "scenes")]);
        assert!(s.is_empty());
        let job1 = ulid::Ulid::from(1u128).to_string();
        let (s, ..) = page(&l, &[("job", &job1), ("limit", "4")]);
        assert_eq!(s, [1, 5, 7, 11]);
        // 1000 + 10 i: since 1200 → i >= 20, until 1255 → i <= 25.
        let (s, ..) = page(&l, &[("since", "1200"), ("until", "1255")]);
        assert_eq!(s, [20, 21, 22, 23, 24, 25]);
        let (s, ..) = page(
            &l,
            &[("since", "1970-01-01T00:00:01.2Z"), ("until", "1255")],
        );
        assert_eq!(s, [20, 21, 22, 23, 24, 25], "RFC 3339 works the same");
        let (s, ..) = page(
            &l,
            &[
                ("type", "cover_set,job_cancelled"),
                ("origin", "web,reactor"),
                ("limit", "3"),
                ("after", "40"),
            ],
        );
        assert_eq!(s, [41, 42, 43]);
    }

    #[test]
    fn pages_chain_both_ways_without_gaps_or_overlaps() {
        let (_d, l) = ledger();
        for filter in [
            vec![],
            vec![("type", "cover_set")],
            vec![("category", "characters"), ("slug", "e2")],
            vec![("origin", "reactor"), ("since", "1300")],
        ] {
            let mut all = filter.clone();
            all.push(("limit", "1000"));
            let (want, newer, older) = page(&l, &all);
            assert_eq!((newer, older), (None, None), "{filter:?}");
            // Forwards from the start.
            let mut got: Vec<u64> = Vec::new();
            let mut after = 0;
            loop {
                let mut pairs = filter.clone();
                let a = after.to_string();
                pairs.extend([("limit", "7"), ("after", a.as_str())]);
                let (s, newer, _) = page(&l, &pairs);
                got.extend(&s);
                match newer {
                    Some(n) => after = n,
                    None => break,
                }
            }
            assert_eq!(got, want, "forwards {filter:?}");
            // Backwards from the newest page.
            let mut got: Vec<u64> = Vec::new();
            let mut pairs = filter.clone();
            pairs.extend([("limit", "7"), ("order", "desc")]);
            let (mut s, _, mut older) = page(&l, &pairs);
            loop {
                s.extend(&got);
                got = s;
                let Some(b) = older else { break };
                let mut pairs = filter.clone();
                let b = b.to_string();
                pairs.extend([("limit", "7"), ("before", b.as_str())]);
                let (next, newer, o) = page(&l, &pairs);
                assert!(newer.is_some(), "an older page knows there are newer ones");
                s = next;
                older = o;
            }
            assert_eq!(got, want, "backwards {filter:?}");
        }
    }

    #[test]
    fn an_empty_page_still_points_back() {
        let (_d, l) = ledger();
        let (s, newer, older) = page(&l, &[("after", "90")]);
        assert!(s.is_empty());
        assert_eq!(newer, None);
        assert_eq!(older, Some(91));
        let (s, _, _) = page(&l, &[("before", "91"), ("limit", "2")]);
        assert_eq!(s, [89, 90]);
    }

    #[test]
    fn bad_parameters_are_explained() {
        for (pairs, needle) in [
            (vec![("type", "nope")], "unknown event type 'nope'"),
            (vec![("origin", "mars")], "unknown origin 'mars'"),
            (vec![("category", "hats")], "unknown category 'hats'"),
            (vec![("slug", "x")], "?slug needs ?category"),
            (
                vec![("category", "characters"), ("slug", "../x")],
                "not a slug",
            ),
            (vec![("job", "123")], "not a job id"),
            (vec![("since", "yesterday")], "?since"),
            (vec![("after", "-1")], "?after=-1"),
            (vec![("limit", "0")], "?limit=0"),
            (vec![("limit", "5000")], "?limit=5000"),
            (vec![("order", "up")], "?order=up"),
            (vec![("colour", "red")], "unknown parameter 'colour'"),
        ] {
            let e = Filter::from_query(&q(&pairs)).unwrap_err();
            assert!(e.contains(needle), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn a_filter_survives_the_trip_through_query_parameters() {
        let (f, _) = Filter::from_query(&q(&[
            ("type", "cover_set,restored"),
            ("origin", "web"),
            ("category", "outfits"),
            ("slug", "maid"),
            ("job", "01J00000000000000000000000"),
            ("since", "2026-05-01T12:00:00Z"),
            ("until", "1790000000000"),
        ]))
        .unwrap();
        let back: HashMap<String, String> = f
            .to_query()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(Filter::from_query(&back).unwrap().0, f);
    }
}
