//! Lossless export and import of the ledger as JSON lines: one line per event with its
//! envelope (`seq`, `id`, `at`, `origin`, `type`), the stored record (`record`, base64 of the
//! exact bytes) and, when asked, the event's fields for reading (`event`). Import rebuilds a
//! ledger from the records alone, byte for byte, into an empty ledger only.

use crate::store::event::{self, ulid_text};
use crate::store::ledger::{IndexKeys, Ledger};
use serde::Deserialize;
use std::io::{BufRead, Write};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8], out: &mut String) {
    let mut buf = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    let mut chunks = bytes.chunks_exact(3);
    for c in &mut chunks {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        buf.extend_from_slice(&[
            B64[(n >> 18) as usize & 63],
            B64[(n >> 12) as usize & 63],
            B64[(n >> 6) as usize & 63],
            B64[n as usize & 63],
        ]);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let b1 = rest.get(1).copied().unwrap_or(0);
        let n = (u32::from(rest[0]) << 16) | (u32::from(b1) << 8);
        buf.push(B64[(n >> 18) as usize & 63]);
        buf.push(B64[(n >> 12) as usize & 63]);
        buf.push(if rest.len() > 1 {
            B64[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        buf.push(b'=');
    }
    // Every byte pushed is from the ASCII alphabet above.
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

/// Each byte's base64 value, or 255 for bytes outside the alphabet.
const B64_VALUE: [u8; 256] = {
    let mut t = [255u8; 256];
    let mut i = 0;
    while i < 64 {
        t[B64[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Decodes standard base64 with padding.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(4) {
        return Err("base64 length is not a multiple of 4".into());
    }
    let mut out = Vec::with_capacity(t.len() / 4 * 3);
    let quads = t.len() / 4;
    for (i, q) in t.chunks_exact(4).enumerate() {
        let pad = if i + 1 == quads {
            q.iter().rev().take_while(|c| **c == b'=').count()
        } else {
            0
        };
        if pad > 2 {
            return Err("misplaced base64 padding".into());
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            let v = B64_VALUE[c as usize];
            if v == 255 {
                return Err(if c == b'=' {
                    "misplaced base64 padding".into()
                } else {
                    "not base64".into()
                });
            }
            n = (n << 6) | u32::from(v);
        }
        n <<= 6 * pad as u32;
        out.push((n >> 16) as u8);
        if pad < 2 {
            out.push((n >> 8) as u8);
        }
        if pad < 1 {
            out.push(n as u8);
        }
    }
    Ok(out)
}

/// The ledger (and parsed recipe bases) `export_line` rebuilds compact recipes from, for the
/// fields it shows.
pub type Fields<'a> = (&'a Ledger, &'a crate::jobs::spec::BaseCache);

/// One export line (without the newline) for a stored record; with `fields`, the event's fields
/// too (a compact request's recipe text rebuilt, as the API shows it).
pub fn export_line(seq: u64, record: &[u8], fields: Option<Fields<'_>>) -> Result<String, String> {
    let env = event::peek(record).map_err(|e| format!("event {seq}: {e}"))?;
    let mut line = String::with_capacity(record.len() * 4 / 3 + 160);
    line.push_str(&format!(
        "{{\"seq\":{seq},\"id\":\"{}\",\"at\":{},\"origin\":\"{}\",\"type\":\"{}\",\"record\":\"",
        ulid_text(env.id),
        env.at,
        env.origin.as_str(),
        env.kind
    ));
    base64_encode(record, &mut line);
    line.push('"');
    if let Some((ledger, bases)) = fields {
        let envelope = event::decode(record).map_err(|e| format!("event {seq}: {e}"))?;
        line.push_str(",\"event\":");
        let stored = event::Stored { seq, envelope };
        let mut v = crate::jobs::spec::event_json(ledger, &stored, bases);
        if let Some(m) = v.as_object_mut() {
            // The envelope is on the line already.
            for k in ["seq", "id", "at", "origin"] {
                m.remove(k);
            }
        }
        line.push_str(&v.to_string());
    }
    line.push('}');
    Ok(line)
}

/// Writes every event after `after` as JSON lines; returns how many.
pub fn export(
    ledger: &Ledger,
    after: u64,
    with_fields: bool,
    out: &mut dyn Write,
) -> Result<u64, String> {
    let mut n = 0u64;
    let mut failed = None;
    let bases = crate::jobs::spec::BaseCache::default();
    ledger
        .raw(after + 1, u64::MAX, |seq, record| {
            let r = export_line(seq, record, with_fields.then_some((ledger, &bases))).and_then(
                |line| {
                    out.write_all(line.as_bytes())
                        .and_then(|()| out.write_all(b"\n"))
                        .map_err(|e| format!("writing the export: {e}"))
                },
            );
            match r {
                Ok(()) => {
                    n += 1;
                    true
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        })
        .map_err(|e| e.to_string())?;
    match failed {
        Some(e) => Err(e),
        None => {
            out.flush()
                .map_err(|e| format!("writing the export: {e}"))?;
            Ok(n)
        }
    }
}

#[derive(Deserialize)]
struct Line<'a> {
    seq: u64,
    #[serde(borrow)]
    record: std::borrow::Cow<'a, str>,
}

/// The seq and stored bytes of one export line.
pub fn parse_line(line: &str) -> Result<(u64, Vec<u8>), String> {
    let l: Line<'_> = serde_json::from_str(line).map_err(|e| e.to_string())?;
    Ok((l.seq, base64_decode(&l.record)?))
}

/// Lines per chunk handed to a worker, and events written per transaction by an import.
const IMPORT_CHUNK: usize = 20_000;

/// A chunk of export lines, checked: its records and their index entries.
type Checked = Result<(Vec<(u64, Vec<u8>)>, IndexKeys), String>;

/// Parses and checks one chunk of lines (`first` is the number of its first line).
fn check_chunk(lines: &[String], first: usize) -> Checked {
    let mut records = Vec::with_capacity(lines.len());
    let mut keys = IndexKeys::default();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let n = first + i;
        let (seq, bytes) = parse_line(line).map_err(|e| format!("line {n}: {e}"))?;
        let env = event::decode(&bytes).map_err(|e| format!("line {n}: event {seq}: {e}"))?;
        keys.add(seq, &env);
        records.push((seq, bytes));
    }
    Ok((records, keys))
}

/// Rebuilds `ledger` (which must be empty) from an export; returns how many events. Chunks of
/// lines are parsed and every record decoded (checked) on worker threads while this thread
/// writes them in order; the indexes are written at the end, sorted. A line that does not
/// parse, a record that does not decode, or a gap in the seqs stops the import with the line
/// number; what was written before stays and the ledger can be thrown away.
pub fn import(ledger: &Ledger, input: Box<dyn BufRead + Send>) -> Result<u64, String> {
    if ledger.last_seq() != 0 {
        return Err(format!(
            "the ledger {} is not empty (it holds {} events); import into a new folder",
            ledger.path().display(),
            ledger.last_seq()
        ));
    }
    let workers = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(1, 4);
    // Chunks go out round-robin and come back in the same order, one channel per worker.
    let mut to_workers = Vec::new();
    let mut from_workers = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<String>, usize)>(2);
        let (btx, brx) = std::sync::mpsc::sync_channel::<Checked>(2);
        handles.push(std::thread::spawn(move || {
            for (lines, first) in rx {
                if btx.send(check_chunk(&lines, first)).is_err() {
                    break;
                }
            }
        }));
        to_workers.push(tx);
        from_workers.push(brx);
    }
    let reader = std::thread::spawn(move || -> Result<(), String> {
        let mut chunk = Vec::with_capacity(IMPORT_CHUNK);
        let mut first = 1;
        let mut k = 0;
        for (i, line) in input.lines().enumerate() {
            chunk.push(line.map_err(|e| format!("line {}: {e}", i + 1))?);
            if chunk.len() == IMPORT_CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(IMPORT_CHUNK));
                if to_workers[k % to_workers.len()]
                    .send((full, first))
                    .is_err()
                {
                    return Ok(());
                }
                k += 1;
                first = i + 2;
            }
        }
        if !chunk.is_empty() {
            let _ = to_workers[k % to_workers.len()].send((chunk, first));
        }
        Ok(())
    });
    let mut n = 0u64;
    let mut keys = IndexKeys::default();
    let mut result = Ok(());
    'chunks: for k in 0.. {
        match from_workers[k % from_workers.len()].recv() {
            Ok(Ok((records, chunk_keys))) => {
                if let Err(e) = ledger.append_raw(&records) {
                    result = Err(e.to_string());
                    break 'chunks;
                }
                n += records.len() as u64;
                keys.append(chunk_keys);
            }
            Ok(Err(e)) => {
                result = Err(e);
                break 'chunks;
            }
            // That worker is done: the input ended.
            Err(_) => break 'chunks,
        }
    }
    drop(from_workers);
    match reader.join() {
        Ok(Err(e)) if result.is_ok() => result = Err(e),
        _ => {}
    }
    for h in handles {
        let _ = h.join();
    }
    result?;
    ledger
        .write_index_keys(keys, n)
        .map_err(|e| e.to_string())?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        for (raw, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foobar", "Zm9vYmFy"),
            (&[0, 255, 254, 1][..], "AP/+AQ=="),
        ] {
            let mut s = String::new();
            base64_encode(raw, &mut s);
            assert_eq!(s, text);
            assert_eq!(base64_decode(text).unwrap(), raw);
        }
        let all: Vec<u8> = (0..=255).collect();
        let mut s = String::new();
        base64_encode(&all, &mut s);
        assert_eq!(base64_decode(&s).unwrap(), all);
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9*", "====", "Zg=a"] {
            assert!(base64_decode(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;
    use crate::store::event::{DocBody, Envelope, Event, Origin};

    #[test]
    fn export_then_import_gives_the_same_bytes_and_refuses_a_used_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let a = Ledger::open(&dir.path().join("a.redb")).unwrap();
        let batch: Vec<Envelope> = (0..50u64)
            .map(|i| Envelope {
                id: u128::from(i) << 80,
                at: 1_790_000_000_000 + i,
                origin: Origin::ALL[i as usize % 7],
                event: Event::DocumentSynced {
                    category: crate::library::category::Category::Looks,
                    slug: format!("l{i}"),
                    file: format!("l{i}.json"),
                    body: DocBody {
                        id: format!("l{i}"),
                        name: "é ✓ \"quoted\"".into(),
                        json: format!("{{\"look_id\": \"l{i}\"}}\n"),
                    },
                },
            })
            .collect();
        a.append(batch).unwrap();
        let mut out = Vec::new();
        assert_eq!(export(&a, 0, true, &mut out).unwrap(), 50);
        let text = String::from_utf8(out.clone()).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["seq"], 1);
        assert_eq!(first["type"], "document_synced");
        assert_eq!(first["origin"], "web");
        assert_eq!(first["event"]["body"]["name"], "é ✓ \"quoted\"");
        let b = Ledger::open(&dir.path().join("b.redb")).unwrap();
        let n = import(&b, Box::new(std::io::Cursor::new(out.clone()))).unwrap();
        assert_eq!(n, 50);
        let bytes = |l: &Ledger| {
            let mut v = Vec::new();
            l.raw(1, u64::MAX, |s, r| {
                v.push((s, r.to_vec()));
                true
            })
            .unwrap();
            v
        };
        assert_eq!(bytes(&a), bytes(&b));
        let e = import(&b, Box::new(std::io::Cursor::new(out))).unwrap_err();
        assert!(e.contains("not empty"), "{e}");
        let c = Ledger::open(&dir.path().join("c.redb")).unwrap();
        let broken = format!(
            "{}\n{{\"seq\": 2, \"record\": \"@@@@\"}}\n",
            text.lines().next().unwrap()
        );
        let e = import(&c, Box::new(std::io::Cursor::new(broken.into_bytes()))).unwrap_err();
        assert!(e.starts_with("line 2"), "{e}");
    }
}
