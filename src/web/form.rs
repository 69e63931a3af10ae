//! Reading `application/x-www-form-urlencoded` bodies by hand, where a handler takes the body
//! as bytes (to accept JSON or a form on one route, or to find the CSRF field before the
//! handler runs): splitting into pairs and percent-decoding. The one decoder the web layer uses.

/// Splits an urlencoded body into (name, value) pairs, in order, repeats kept.
pub fn pairs(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the form is not UTF-8".to_string())?;
    Ok(text
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect())
}

/// Percent-decodes one name or value (`+` is a space); a `%` not followed by two hex digits
/// stays as it is, and bytes that are not UTF-8 become U+FFFD.
pub fn decode(v: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_decode() {
        for (raw, want) in [
            ("", ""),
            ("plain", "plain"),
            ("a+b%20c%2Fd", "a b c/d"),
            ("a+b%2Cc%zz%", "a b,c%zz%"),
            ("100%", "100%"),
            ("%4", "%4"),
            ("%41", "A"),
            ("%C3%A9t%C3%A9", "été"),
            ("%FF", "\u{FFFD}"),
        ] {
            assert_eq!(decode(raw), want, "{raw}");
        }
    }

    #[test]
    fn bodies_split_into_pairs() {
        assert_eq!(
            pairs(b"a=1&b=x+y&a=2&c&&d=").unwrap(),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "x y".to_string()),
                ("a".to_string(), "2".to_string()),
                ("c".to_string(), String::new()),
                ("d".to_string(), String::new()),
            ]
        );
        assert!(pairs(&[0xff, b'=', b'1']).is_err());
    }
}
