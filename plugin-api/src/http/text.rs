//! Text that object stores speak: percent-encoding, HTTP and RFC 3339 dates, the few XML
//! elements their answers carry, and excerpts of error bodies for messages.
//!
//! Pure functions, the same on every target, so a backend tests its URLs and parsing natively.

use std::time::SystemTime;

/// Percent-encodes `s`: every byte but `A-Z a-z 0-9 - _ . ~` (and `/` when `keep_slash`, for
/// an object name in a URL path) becomes `%XX` (upper-case hex). This is the encoding of
/// SigV4, Azure Blob and the GCS JSON API alike.
pub fn percent_encode(s: &str, keep_slash: bool) -> String {
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

/// Decodes `%XX` escapes (a malformed escape stays as it is; invalid UTF-8 becomes U+FFFD).
pub fn percent_decode(s: &str) -> String {
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

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

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

/// A date and time of day, checked, in ms since the epoch (`None` before 1970).
fn to_ms(y: i64, (mo, d): (u32, u32), (h, mi, s): (u32, u32, u32), ms: u32) -> Option<u64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
    u64::try_from(secs).ok().map(|s| s * 1000 + u64::from(ms))
}

/// `h:m:s` as three numbers.
fn hms(s: &str) -> Option<(u32, u32, u32)> {
    let mut t = s.split(':');
    Some((
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    ))
}

/// An RFC 1123 date (`Wed, 21 Oct 2015 07:28:00 GMT`), as HTTP headers and `x-ms-date` carry it.
pub fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[m as usize - 1],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// An RFC 1123 date (`Wed, 21 Oct 2015 07:28:00 GMT`, HTTP `Last-Modified`) in ms since the
/// epoch; `None` if it is not one.
pub fn http_date_ms(s: &str) -> Option<u64> {
    let mut parts = s.split_whitespace().skip(1);
    let day = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let year = parts.next()?.parse().ok()?;
    to_ms(year, (month, day), hms(parts.next()?)?, 0)
}

/// An RFC 3339 UTC time (`2020-12-01T20:43:11.794Z`, S3 `LastModified`, GCS `updated`) in ms
/// since the epoch; digits past milliseconds are dropped. `None` if it is not one.
pub fn rfc3339_ms(s: &str) -> Option<u64> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let y = d.next()?.parse().ok()?;
    let mo = d.next()?.parse().ok()?;
    let day = d.next()?.parse().ok()?;
    let (clock, frac) = time.split_once('.').unwrap_or((time, "0"));
    let ms = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    to_ms(y, (mo, day), hms(clock)?, ms)
}

/// At most `max` bytes of `s`, cut back to a character boundary.
pub fn excerpt(s: &str, max: usize) -> &str {
    let mut cut = s.len().min(max);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// The raw text of every `<tag>...</tag>` in `doc`, in order (no attributes, no nesting of
/// the same tag: the answers of object stores).
pub fn xml_elements<'a>(doc: &'a str, tag: &str) -> Vec<&'a str> {
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

/// The raw text of the first `<tag>...</tag>` in `doc`.
pub fn xml_element<'a>(doc: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = doc[start..].find(&close)? + start;
    Some(&doc[start..end])
}

/// `s` with the five predefined XML entities replaced by their characters.
pub fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percent_encoding_round_trips() {
        assert_eq!(percent_encode("a/b c+~", true), "a/b%20c%2B~");
        assert_eq!(percent_encode("a/b c+~", false), "a%2Fb%20c%2B~");
        assert_eq!(percent_decode("a%2Fb%20c%zz"), "a/b c%zz");
        assert_eq!(percent_decode(&percent_encode("ü/x y", false)), "ü/x y");
    }

    #[test]
    fn dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(http_date(t), "Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(
            http_date_ms("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480_000)
        );
        assert_eq!(http_date_ms("Thu, 01 Jan 1970 00:01:00 GMT"), Some(60_000));
        assert_eq!(http_date_ms("Thu, 01 Foo 1970 00:01:00 GMT"), None);
        assert_eq!(rfc3339_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(rfc3339_ms("1970-01-02T00:00:01.5Z"), Some(86_401_500));
        assert_eq!(
            rfc3339_ms("2020-12-01T20:43:11.794Z"),
            Some(1_606_855_391_794)
        );
        assert_eq!(
            rfc3339_ms("2026-12-02T08:01:49.11417Z"),
            Some(1_796_198_509_114)
        );
        assert_eq!(rfc3339_ms("2020-13-01T20:43:11Z"), None);
        assert_eq!(rfc3339_ms("2020-12-01 20:43:11"), None);
    }

    #[test]
    fn excerpts_and_xml() {
        assert_eq!(excerpt("héllo", 2), "h");
        assert_eq!(excerpt("abc", 10), "abc");
        let doc = "<a><b>1</b><b>2&amp;3</b><c>x</c></a>";
        assert_eq!(xml_elements(doc, "b"), ["1", "2&amp;3"]);
        assert_eq!(xml_element(doc, "c"), Some("x"));
        assert_eq!(xml_element(doc, "d"), None);
        assert_eq!(xml_unescape("2&amp;3 &lt;&gt;&quot;&apos;"), "2&3 <>\"'");
    }
}
