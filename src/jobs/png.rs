//! PNG text metadata: adds GAZE's own `gaze` chunk and an A1111-style `parameters` chunk to an
//! image from ComfyUI, keeping every chunk ComfyUI wrote. Pure byte work, no image decoding.

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for part in parts {
        for &b in *part {
            crc ^= u32::from(b);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xedb8_8320 & mask);
            }
        }
    }
    !crc
}

/// One chunk: length, type, data, CRC over type and data.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
    out
}

/// A text chunk: `tEXt` when the text is Latin-1, else uncompressed UTF-8 `iTXt`.
pub fn text_chunk(keyword: &str, text: &str) -> Vec<u8> {
    let mut data = keyword.as_bytes().to_vec();
    data.push(0);
    if text.chars().all(|c| (c as u32) < 256 && c != '\0') {
        data.extend(text.chars().map(|c| c as u8));
        chunk(b"tEXt", &data)
    } else {
        // compression flag 0, method 0, empty language tag, empty translated keyword
        data.extend_from_slice(&[0, 0, 0, 0]);
        data.extend_from_slice(text.as_bytes());
        chunk(b"iTXt", &data)
    }
}

/// A chunk's type and data.
pub type Chunk<'a> = ([u8; 4], &'a [u8]);

/// The chunks of a PNG, or why it is not a well-formed PNG.
pub fn chunks(png: &[u8]) -> Result<Vec<Chunk<'_>>, String> {
    let rest = png
        .strip_prefix(SIGNATURE.as_slice())
        .ok_or("not a PNG (bad signature)")?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        if rest.len() - i < 12 {
            return Err("truncated chunk".into());
        }
        let len = u32::from_be_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]) as usize;
        let kind = [rest[i + 4], rest[i + 5], rest[i + 6], rest[i + 7]];
        let end = i + 8 + len;
        if end + 4 > rest.len() {
            return Err("chunk runs past the end of the file".into());
        }
        let data = &rest[i + 8..end];
        let crc = u32::from_be_bytes([rest[end], rest[end + 1], rest[end + 2], rest[end + 3]]);
        if crc != crc32(&[&kind, data]) {
            return Err(format!(
                "bad CRC in {} chunk",
                String::from_utf8_lossy(&kind)
            ));
        }
        out.push((kind, data));
        i = end + 4;
        if &kind == b"IEND" {
            break;
        }
    }
    if out.last().map(|c| &c.0) != Some(b"IEND") {
        return Err("no IEND chunk".into());
    }
    Ok(out)
}

/// Inserts text chunks just before IEND, keeping everything else byte for byte.
pub fn add_text(png: &[u8], texts: &[(&str, &str)]) -> Result<Vec<u8>, String> {
    let parsed = chunks(png)?;
    let mut out = SIGNATURE.to_vec();
    for (kind, data) in parsed {
        if &kind == b"IEND" {
            for (k, t) in texts {
                out.extend(text_chunk(k, t));
            }
        }
        out.extend(chunk(&kind, data));
    }
    Ok(out)
}

/// Reads the text chunks (`tEXt` and uncompressed `iTXt`) of a PNG.
pub fn read_text(png: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (kind, data) in chunks(png)? {
        let Some(nul) = data.iter().position(|&b| b == 0) else {
            continue;
        };
        let key: String = data[..nul].iter().map(|&b| b as char).collect();
        match &kind {
            b"tEXt" => out.push((key, data[nul + 1..].iter().map(|&b| b as char).collect())),
            b"iTXt" if data.get(nul + 1) == Some(&0) => {
                // skip flag, method, language tag and translated keyword
                let mut j = nul + 3;
                for _ in 0..2 {
                    while j < data.len() && data[j] != 0 {
                        j += 1;
                    }
                    j += 1;
                }
                if j <= data.len() {
                    out.push((key, String::from_utf8_lossy(&data[j..]).into_owned()));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1 PNG as ComfyUI might write it, with a `prompt` chunk.
    fn sample() -> Vec<u8> {
        let mut png = SIGNATURE.to_vec();
        png.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
        png.extend(text_chunk("prompt", "{\"3\": {}}"));
        png.extend(chunk(
            b"IDAT",
            &[0x78, 0x9c, 0x63, 0xf8, 0x0f, 0, 0x01, 0x01, 0x01, 0],
        ));
        png.extend(chunk(b"IEND", &[]));
        png
    }

    #[test]
    fn crc_matches_the_png_reference_value() {
        // The CRC of an empty IEND chunk is fixed by the spec.
        assert_eq!(crc32(&[b"IEND"]), 0xae42_6082);
    }

    #[test]
    fn text_is_added_before_iend_and_everything_else_is_kept() {
        let png = sample();
        let out = add_text(
            &png,
            &[
                ("gaze", "{\"job\":\"01J\"}"),
                ("parameters", "1girl, ümlaut"),
            ],
        )
        .unwrap();
        let texts = read_text(&out).unwrap();
        assert_eq!(
            texts,
            [
                ("prompt".into(), "{\"3\": {}}".into()),
                ("gaze".into(), "{\"job\":\"01J\"}".into()),
                ("parameters".into(), "1girl, ümlaut".into())
            ]
        );
        let kinds: Vec<[u8; 4]> = chunks(&out).unwrap().iter().map(|c| c.0).collect();
        assert_eq!(kinds.last(), Some(b"IEND"));
        assert_eq!(&out[..png.len() - 12], &png[..png.len() - 12]);
        let emoji = add_text(&png, &[("gaze", "🙂")]).unwrap();
        assert_eq!(read_text(&emoji).unwrap()[1].1, "🙂");
    }

    #[test]
    fn broken_pngs_are_refused() {
        let png = sample();
        assert!(add_text(b"GIF89a", &[]).is_err());
        assert!(add_text(&png[..png.len() - 5], &[]).is_err());
        let mut bad = png.clone();
        bad[40] ^= 0xff;
        assert!(chunks(&bad).is_err());
    }
}
