//! Small text helpers: S3 error documents, URL-encoded keys, dates.

/// The text of the first `<tag>...</tag>` in `doc`.
fn element<'a>(doc: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = doc[start..].find(&close)? + start;
    Some(&doc[start..end])
}

fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// `Code: Message` of an S3 error document, or a short excerpt of any other body.
pub(crate) fn error_summary(body: &str, max: usize) -> String {
    match (element(body, "Code"), element(body, "Message")) {
        (Some(c), Some(m)) => shorten(&format!("{c}: {m}"), max),
        (Some(c), None) => shorten(c, max),
        _ => shorten(body, max),
    }
}

/// An `<Error>` document inside a 200 response (CompleteMultipartUpload can do that).
pub(crate) fn embedded_error(body: &str, max: usize) -> Option<String> {
    body.contains("<Error>").then(|| error_summary(body, max))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn to_ms(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u32) -> Option<u64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
    u64::try_from(secs).ok().map(|s| s * 1000 + u64::from(ms))
}

/// `2020-12-01T20:43:11.794Z` (ListObjectsV2 `LastModified`) in ms since the epoch.
pub(crate) fn iso_date_ms(s: &str) -> Option<u64> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let y = d.next()?.parse().ok()?;
    let mo = d.next()?.parse().ok()?;
    let day = d.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':');
    let h = t.next()?.parse().ok()?;
    let mi = t.next()?.parse().ok()?;
    let sec = t.next()?.parse().ok()?;
    let ms = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    to_ms(y, mo, day, h, mi, sec, ms)
}

/// `Wed, 21 Oct 2015 07:28:00 GMT` (HTTP `Last-Modified`) in ms since the epoch.
pub(crate) fn http_date_ms(s: &str) -> Option<u64> {
    let mut parts = s.split_whitespace().skip(1);
    let day = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year = parts.next()?.parse().ok()?;
    let mut t = parts.next()?.split(':');
    let h = t.next()?.parse().ok()?;
    let mi = t.next()?.parse().ok()?;
    let sec = t.next()?.parse().ok()?;
    to_ms(year, month, day, h, mi, sec, 0)
}

/// The `UploadId`s of a ListMultipartUploads answer whose `Key` is exactly `key` (a prefix
/// listing also returns longer keys).
pub(crate) fn uploads_of(body: &str, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("<Upload>") {
        let after = &rest[start + "<Upload>".len()..];
        let Some(end) = after.find("</Upload>") else {
            break;
        };
        let upload = &after[..end];
        if element(upload, "Key").map(unescape).as_deref() == Some(key)
            && let Some(id) = element(upload, "UploadId")
        {
            out.push(unescape(id));
        }
        rest = &after[end..];
    }
    out
}

/// The five predefined XML entities (S3 escapes keys in listings).
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The CompleteMultipartUpload document: part n's ETag at index n-1.
pub(crate) fn complete_body(etags: &[String]) -> String {
    let mut out = String::from("<CompleteMultipartUpload>");
    for (i, etag) in etags.iter().enumerate() {
        let etag = etag
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        out.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
            i + 1
        ));
    }
    out.push_str("</CompleteMultipartUpload>");
    out
}
