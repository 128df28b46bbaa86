//! The S3 XML this plugin reads and writes: error documents, ListMultipartUploads answers,
//! the CompleteMultipartUpload document.

use aerospike_backup_plugin::http::text::{excerpt, xml_element, xml_elements, xml_unescape};

/// `s` trimmed, cut to `max` bytes with `…` when longer.
fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    let cut = excerpt(s, max);
    if cut.len() == s.len() {
        s.to_string()
    } else {
        format!("{cut}…")
    }
}

/// `Code: Message` of an S3 error document, or a short excerpt of any other body.
pub(crate) fn error_summary(body: &str, max: usize) -> String {
    match (xml_element(body, "Code"), xml_element(body, "Message")) {
        (Some(c), Some(m)) => shorten(&format!("{c}: {m}"), max),
        (Some(c), None) => shorten(c, max),
        _ => shorten(body, max),
    }
}

/// An `<Error>` document inside a 200 response (CompleteMultipartUpload can do that).
pub(crate) fn embedded_error(body: &str, max: usize) -> Option<String> {
    body.contains("<Error>").then(|| error_summary(body, max))
}

/// The `UploadId`s of a ListMultipartUploads answer whose `Key` is exactly `key` (a prefix
/// listing also returns longer keys).
pub(crate) fn uploads_of(body: &str, key: &str) -> Vec<String> {
    xml_elements(body, "Upload")
        .into_iter()
        .filter(|u| xml_element(u, "Key").map(xml_unescape).as_deref() == Some(key))
        .filter_map(|u| xml_element(u, "UploadId").map(xml_unescape))
        .collect()
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
