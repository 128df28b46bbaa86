//! Object key rules of the `storage` interface, shared by every storage plugin.
//!
//! The SDK checks keys and prefixes before a [`Storage`](crate::Storage) method runs, so a
//! plugin can map a key to a path without worrying about `..` escapes.

use crate::{Error, Result};

/// Checks an object key: non-empty, relative, `/`-separated, no empty / `.` / `..` segment,
/// no NUL. Anything else is [`Error::Denied`].
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.contains('\0') {
        return Err(Error::Denied);
    }
    if key.split('/').all(valid_segment) {
        Ok(())
    } else {
        Err(Error::Denied)
    }
}

/// Checks a listing prefix: empty, or a key that may end in `/` or in a partial segment.
/// The last segment may be empty or any partial name except `.`/`..`.
pub fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    if prefix.contains('\0') {
        return Err(Error::Denied);
    }
    let mut segments: Vec<&str> = prefix.split('/').collect();
    let last = segments.pop().unwrap_or_default();
    if segments.iter().all(|s| valid_segment(s)) && last != "." && last != ".." {
        Ok(())
    } else {
        Err(Error::Denied)
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".."
}

/// Splits a valid key into its parent "directory" (empty at the root) and its last segment.
pub fn split_parent(key: &str) -> (&str, &str) {
    match key.rfind('/') {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => ("", key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in [
            "a",
            "a/b",
            "daily/backup/1700000000000/data/test/1_test_0.asb",
            ".hidden/x",
        ] {
            assert_eq!(check_key(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "./a",
            "a/../b",
            "..",
            "a\0b",
            "../etc/passwd",
        ] {
            assert_eq!(check_key(bad), Err(Error::Denied), "{bad:?}");
        }
    }

    #[test]
    fn prefixes() {
        for ok in ["", "a", "a/", "a/b", "daily/backup/", "daily/ba"] {
            assert_eq!(check_prefix(ok), Ok(()), "{ok}");
        }
        for bad in ["/", "/a", "a//", "../", "a/..", "a/../b/", ".", "x\0"] {
            assert_eq!(check_prefix(bad), Err(Error::Denied), "{bad:?}");
        }
    }

    #[test]
    fn parents() {
        assert_eq!(split_parent("a/b/c"), ("a/b", "c"));
        assert_eq!(split_parent("c"), ("", "c"));
    }
}
