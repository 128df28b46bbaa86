//! URL encoding, HTTP dates and the little XML the Blob service returns.

use std::time::SystemTime;

fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A blob name as a URL path (slashes kept).
pub(crate) fn encode_path(s: &str) -> String {
    encode(s, true)
}

/// A query parameter value.
pub(crate) fn encode_query(s: &str) -> String {
    encode(s, false)
}

/// Percent-decoding (the canonical resource of Shared Key uses decoded values).
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// RFC 1123 date, as `x-ms-date` wants it.
pub(crate) fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[m as usize - 1],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Milliseconds since the epoch of an RFC 1123 date.
pub(crate) fn http_date_ms(s: &str) -> Option<u64> {
    let mut p = s.split_whitespace().skip(1);
    let d: u32 = p.next()?.parse().ok()?;
    let month = p.next()?;
    let m = MONTHS.iter().position(|x| *x == month)? as u32 + 1;
    let y: i64 = p.next()?.parse().ok()?;
    let mut t = p.next()?.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    let secs = days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + sec;
    u64::try_from(secs).ok().map(|s| s * 1000)
}

/// A random tag for block ids (std's `RandomState` is seeded from wasi:random), mixed with
/// the clock so two tags of one instance differ too.
pub(crate) fn random_tag() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(crate::now_nanos());
    format!("{:016x}", h.finish())
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Text of every `<tag>...</tag>` in `doc`, in order.
fn elements<'a>(doc: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn first(doc: &str, tag: &str) -> Option<String> {
    elements(doc, tag).first().map(|s| unescape(s))
}

/// `Code: Message` of an error document, or a short excerpt.
pub(crate) fn error_summary(doc: &str, max: usize) -> String {
    let s = match (first(doc, "Code"), first(doc, "Message")) {
        (Some(c), Some(m)) => format!("{c}: {}", m.lines().next().unwrap_or_default()),
        (Some(c), None) => c,
        _ => doc.trim().to_string(),
    };
    let mut cut = s.len().min(max);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].to_string()
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct Blob {
    pub name: String,
    pub size: u64,
    pub modified: Option<String>,
    pub etag: Option<String>,
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct Listing {
    pub blobs: Vec<Blob>,
    pub prefixes: Vec<String>,
    pub next_marker: Option<String>,
}

/// The `EnumerationResults` of List Blobs.
pub(crate) fn parse_listing(doc: &str) -> Listing {
    let blobs = elements(doc, "Blob")
        .into_iter()
        .filter_map(|b| {
            Some(Blob {
                name: first(b, "Name")?,
                size: first(b, "Content-Length")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                modified: first(b, "Last-Modified"),
                etag: first(b, "Etag"),
            })
        })
        .collect();
    let prefixes = elements(doc, "BlobPrefix")
        .into_iter()
        .filter_map(|p| first(p, "Name"))
        .collect();
    Listing {
        blobs,
        prefixes,
        next_marker: first(doc, "NextMarker"),
    }
}
