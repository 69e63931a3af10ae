//! Times as the history shows and takes them: RFC 3339 (UTC, `Z` or an offset) or unix
//! milliseconds in, RFC 3339 UTC with milliseconds out. Pure; no clock.

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count from 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Unix milliseconds as RFC 3339 UTC, e.g. `2026-05-01T12:00:00.250Z`.
pub fn format(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

fn num(s: &str, what: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} '{s}' is not a number"));
    }
    s.parse()
        .map_err(|_| format!("{what} '{s}' is out of range"))
}

/// Parses a time given as unix milliseconds (digits only) or RFC 3339
/// (`2026-05-01T12:00:00Z`, `2026-05-01T14:00:00.5+02:00`; a space may stand for `T`).
pub fn parse(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map_err(|_| format!("'{t}' is too large for unix milliseconds"));
    }
    let bad = || {
        format!("'{t}' is not an RFC 3339 time (e.g. 2026-05-01T12:00:00Z) or unix milliseconds")
    };
    if t.len() < 20 || !t.is_char_boundary(10) || !t.is_char_boundary(19) {
        return Err(bad());
    }
    let (date, rest) = t.split_at(10);
    let sep = rest.as_bytes()[0];
    if !matches!(sep, b'T' | b't' | b' ') {
        return Err(bad());
    }
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || d[0].len() != 4 || d[1].len() != 2 || d[2].len() != 2 {
        return Err(bad());
    }
    let (y, mo, day) = (
        i64::from(num(d[0], "year")?),
        num(d[1], "month")?,
        num(d[2], "day")?,
    );
    if !(1..=12).contains(&mo) || day == 0 || day > days_in_month(y, mo) {
        return Err(format!("'{t}': no such date"));
    }
    let clock = &rest[1..9];
    let c: Vec<&str> = clock.split(':').collect();
    if c.len() != 3 || c.iter().any(|p| p.len() != 2) {
        return Err(bad());
    }
    let (h, mi, s) = (
        num(c[0], "hour")?,
        num(c[1], "minute")?,
        num(c[2], "second")?,
    );
    if h > 23 || mi > 59 || s > 60 {
        return Err(format!("'{t}': no such time of day"));
    }
    let mut rest = &rest[9..];
    let mut millis = 0u64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let f = &frac[..digits];
        millis = f
            .bytes()
            .take(3)
            .enumerate()
            .map(|(i, b)| u64::from(b - b'0') * [100, 10, 1][i])
            .sum();
        rest = &frac[digits..];
    }
    let offset_min: i64 = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let oh = i64::from(num(&o[1..3], "offset hour")?);
            let om = i64::from(num(&o[4..6], "offset minute")?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let m = oh * 60 + om;
            if o.starts_with('-') { -m } else { m }
        }
        _ => return Err(bad()),
    };
    let secs = days_from_civil(y, mo, day) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(s.min(59))
        - offset_min * 60;
    if secs < 0 {
        return Err(format!("'{t}' is before 1970"));
    }
    Ok(secs as u64 * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_accepted_form() {
        for (text, want) in [
            ("0", 0),
            ("1790000000123", 1_790_000_000_123),
            ("1970-01-01T00:00:00Z", 0),
            ("2026-05-01T12:00:00Z", 1_777_636_800_000),
            ("2026-05-01 12:00:00Z", 1_777_636_800_000),
            ("2026-05-01t12:00:00z", 1_777_636_800_000),
            ("2026-05-01T12:00:00.5Z", 1_777_636_800_500),
            ("2026-05-01T12:00:00.123456Z", 1_777_636_800_123),
            ("2026-05-01T14:00:00+02:00", 1_777_636_800_000),
            ("2026-05-01T07:30:00-04:30", 1_777_636_800_000),
            ("2024-02-29T00:00:00Z", 1_709_164_800_000),
            ("2000-03-01T00:00:00Z", 951_868_800_000),
        ] {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_times_are_explained() {
        for text in [
            "",
            "yesterday",
            "2026-05-01",
            "2026-05-01T12:00:00",
            "2026-13-01T12:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-05-01T24:00:00Z",
            "2026-05-01T12:00:00.Z",
            "2026-05-01T12:00:00+2:00",
            "2026-5-01T12:00:00Z",
            "1969-12-31T23:59:59Z",
            "99999999999999999999999",
            "2026-05-01T12:00:00Zjunk",
            "2026-05-01T12:0é:00Z",
        ] {
            assert!(parse(text).is_err(), "{text} should be refused");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for ms in [
            0,
            999,
            951_868_800_000,
            1_709_164_800_000,
            1_777_636_800_500,
            4_102_444_800_001,
        ] {
            let text = format(ms);
            assert_eq!(parse(&text), Ok(ms), "{text}");
        }
        assert_eq!(format(1_777_636_800_500), "2026-05-01T12:00:00.500Z");
    }
}
