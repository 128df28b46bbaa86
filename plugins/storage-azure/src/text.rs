//! The little XML the Blob service returns, and block id tags.

use aerospike_backup_plugin::http::text::{excerpt, xml_element, xml_elements, xml_unescape};

/// A random tag for block ids (std's `RandomState` is seeded from wasi:random), mixed with
/// the clock so two tags of one instance differ too.
pub(crate) fn random_tag() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(crate::now_nanos());
    format!("{:016x}", h.finish())
}

/// The text of the first `<tag>...</tag>` in `doc`, unescaped.
fn first(doc: &str, tag: &str) -> Option<String> {
    xml_element(doc, tag).map(xml_unescape)
}

/// `Code: Message` of an error document, or a short excerpt.
pub(crate) fn error_summary(doc: &str, max: usize) -> String {
    let s = match (first(doc, "Code"), first(doc, "Message")) {
        (Some(c), Some(m)) => format!("{c}: {}", m.lines().next().unwrap_or_default()),
        (Some(c), None) => c,
        _ => doc.trim().to_string(),
    };
    excerpt(&s, max).to_string()
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
    let blobs = xml_elements(doc, "Blob")
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
    let prefixes = xml_elements(doc, "BlobPrefix")
        .into_iter()
        .filter_map(|p| first(p, "Name"))
        .collect();
    Listing {
        blobs,
        prefixes,
        next_marker: first(doc, "NextMarker"),
    }
}
