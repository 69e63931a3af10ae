//! The index's cache file (`images.cache` beside the ledger): the rows as fixed 34-byte records
//! and the small tables in bincode, stamped with the seq they include and the id of the event
//! at that seq. A cache that does not match the ledger (another ledger, an older file, a
//! damaged one) is ignored and the index is folded from the ledger again: it is derived data.

use super::index::{Index, ROW_BYTES, Row, Tables};
use std::path::Path;

const MAGIC: &[u8; 8] = b"GAZEIMG\0";
const VERSION: u32 = 1;

/// The file's bytes for an index whose event at `ix.seq` has the id `anchor`.
pub fn encode(ix: &Index, anchor: u128) -> Vec<u8> {
    let tables =
        bincode::serde::encode_to_vec(ix.tables(), bincode::config::standard()).unwrap_or_default();
    let mut out = Vec::with_capacity(40 + ix.rows.len() * ROW_BYTES + tables.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&anchor.to_le_bytes());
    out.extend_from_slice(&(ix.rows.len() as u64).to_le_bytes());
    for r in &ix.rows {
        r.encode(&mut out);
    }
    out.extend_from_slice(&tables);
    out
}

/// The index a cache file holds and its anchor, or `None` if it is not one this version wrote.
pub fn decode(bytes: &[u8]) -> Option<(Index, u128)> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (v, rest) = rest.split_at_checked(4)?;
    if u32::from_le_bytes(v.try_into().ok()?) != VERSION {
        return None;
    }
    let (anchor, rest) = rest.split_at_checked(16)?;
    let anchor = u128::from_le_bytes(anchor.try_into().ok()?);
    let (n, rest) = rest.split_at_checked(8)?;
    let n = usize::try_from(u64::from_le_bytes(n.try_into().ok()?)).ok()?;
    let (rows, rest) = rest.split_at_checked(n.checked_mul(ROW_BYTES)?)?;
    let rows: Vec<Row> = rows
        .chunks_exact(ROW_BYTES)
        .filter_map(Row::decode)
        .collect();
    let (tables, used): (Tables, usize) =
        bincode::serde::decode_from_slice(rest, bincode::config::standard()).ok()?;
    if used != rest.len() || rows.len() != n {
        return None;
    }
    // Every row must point into the tables it came with.
    if rows.iter().any(|r| r.dir as usize >= tables.dirs.len()) {
        return None;
    }
    Some((Index::from_parts(tables, rows), anchor))
}

pub fn read(path: &Path) -> Option<(Index, u128)> {
    let bytes = std::fs::read(path).ok()?;
    decode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::{Envelope, Event, Origin, Stored};

    fn sample() -> Index {
        let mut ix = Index::default();
        ix.apply(&Stored {
            seq: 3,
            envelope: Envelope {
                id: 77,
                at: 5_000,
                origin: Origin::Reactor,
                event: Event::JobSucceeded {
                    job: 0x0193_0000_0000_0000_0000_0000_0000_0009,
                    images: vec!["uploads/generator/a.png".into()],
                },
            },
        });
        ix.words.add("silver hair");
        ix.words.finish();
        ix
    }

    #[test]
    fn a_cache_round_trips_and_refuses_anything_else() {
        let ix = sample();
        let bytes = encode(&ix, 77);
        let (back, anchor) = decode(&bytes).unwrap();
        assert_eq!(anchor, 77);
        assert_eq!(back.seq, 3);
        assert_eq!(back.rows, ix.rows);
        assert_eq!(back.find("uploads/generator/a.png"), Some(0));
        assert!(back.words.matching("silver").is_some());
        assert!(decode(&bytes[..bytes.len() - 1]).is_none(), "truncated");
        assert!(decode(b"GAZEIMG\0").is_none());
        let mut other = bytes.clone();
        other[8] = 9;
        assert!(decode(&other).is_none(), "another version");
        let mut damaged = bytes.clone();
        // The first row starts after magic, version, anchor and count; its dir is at 20..24.
        damaged[36 + 23] = 0xff;
        assert!(decode(&damaged).is_none(), "a row pointing nowhere");
    }
}
