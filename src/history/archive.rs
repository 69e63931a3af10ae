//! Lossless export and import of the ledger as JSON lines: one line per event with its
//! envelope (`seq`, `id`, `at`, `origin`, `type`), the stored record (`record`, base64 of the
//! exact bytes) and, when asked, the event's fields for reading (`event`). Import rebuilds a
//! ledger from the records alone, byte for byte, into an empty ledger only.

use crate::store::event::{self, ulid_text};
use crate::store::ledger::Ledger;
use serde::Deserialize;
use std::io::{BufRead, Write};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
}

fn b64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decodes standard base64 with padding.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(4) {
        return Err("base64 length is not a multiple of 4".into());
    }
    let mut out = Vec::with_capacity(t.len() / 4 * 3);
    for (i, q) in t.chunks(4).enumerate() {
        let last = i == t.len() / 4 - 1;
        let pad = q.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return Err("misplaced base64 padding".into());
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | b64_value(c).ok_or("not base64")?;
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

/// One export line (without the newline) for a stored record.
pub fn export_line(seq: u64, record: &[u8], with_fields: bool) -> Result<String, String> {
    let env = event::decode(record).map_err(|e| format!("event {seq}: {e}"))?;
    let mut line = String::with_capacity(record.len() * 4 / 3 + 160);
    line.push_str(&format!(
        "{{\"seq\":{seq},\"id\":\"{}\",\"at\":{},\"origin\":\"{}\",\"type\":\"{}\",\"record\":\"",
        ulid_text(env.id),
        env.at,
        env.origin.as_str(),
        env.event.kind()
    ));
    base64_encode(record, &mut line);
    line.push('"');
    if with_fields {
        line.push_str(",\"event\":");
        let fields = serde_json::Value::Object(env.event.to_json());
        line.push_str(&fields.to_string());
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
    ledger
        .raw(after + 1, u64::MAX, |seq, record| {
            let r = export_line(seq, record, with_fields).and_then(|line| {
                out.write_all(line.as_bytes())
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(|e| format!("writing the export: {e}"))
            });
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

/// Events written per transaction by an import.
const IMPORT_BATCH: usize = 20_000;

/// Rebuilds `ledger` (which must be empty) from an export; returns how many events. Lines are
/// parsed on a second thread while this one writes. A line that does not parse, a record that
/// does not decode, or a gap in the seqs stops the import with the line number; what was
/// written before stays and the ledger can be thrown away.
pub fn import(ledger: &Ledger, input: Box<dyn BufRead + Send>) -> Result<u64, String> {
    if ledger.last_seq() != 0 {
        return Err(format!(
            "the ledger {} is not empty (it holds {} events); import into a new folder",
            ledger.path().display(),
            ledger.last_seq()
        ));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<(u64, Vec<u8>)>, String>>(4);
    let reader = std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        for (i, line) in input.lines().enumerate() {
            let parsed = line
                .map_err(|e| format!("line {}: {e}", i + 1))
                .and_then(|l| {
                    if l.trim().is_empty() {
                        return Ok(None);
                    }
                    parse_line(&l)
                        .map(Some)
                        .map_err(|e| format!("line {}: {e}", i + 1))
                });
            match parsed {
                Ok(Some(rec)) => {
                    batch.push(rec);
                    if batch.len() == IMPORT_BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH));
                        if tx.send(Ok(full)).is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(Ok(batch));
        }
    });
    let mut n = 0u64;
    let mut result = Ok(());
    for batch in rx {
        match batch {
            Ok(records) => {
                if let Err(e) = ledger.append_raw(&records) {
                    result = Err(e.to_string());
                    break;
                }
                n += records.len() as u64;
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let _ = reader.join();
    result.map(|()| n)
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
