//! Native behaviour tests (the host's storage suite runs the same contract on the component).

use super::*;

fn backend() -> (tempfile::TempDir, LocalStorage) {
    let dir = tempfile::tempdir().unwrap();
    let opts = serde_json::json!({ "path": dir.path() }).to_string();
    let s = aerospike_backup_plugin::testing::storage::<LocalStorage>(&opts, vec![]).unwrap();
    (dir, s)
}

fn put(s: &LocalStorage, key: &str, parts: &[&[u8]]) -> ObjectInfo {
    let mut up = s.begin_upload(key, None).unwrap();
    for (i, p) in parts.iter().enumerate() {
        up.write_part(i as u32 + 1, p.to_vec()).unwrap();
    }
    up.finish().unwrap()
}

fn read_all(s: &LocalStorage, key: &str, offset: u64, len: Option<u64>, max: u32) -> Vec<u8> {
    let mut d = s.open(key, offset, len).unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = d.next(max).unwrap() {
        assert!(!chunk.is_empty() && chunk.len() <= max as usize);
        out.extend(chunk);
    }
    out
}

fn tmp_files(dir: &tempfile::TempDir) -> usize {
    fs::read_dir(dir.path().join(TMP_DIR))
        .map(|r| r.count())
        .unwrap_or(0)
}

#[test]
fn write_read_stat_delete() {
    let (dir, s) = backend();
    let info = put(&s, "r/backup/1/data/ns/1_ns_0.asb", &[b"hello ", b"world"]);
    assert_eq!(info.size, 11);
    assert_eq!(s.stat("r/backup/1/data/ns/1_ns_0.asb").unwrap(), info);
    assert_eq!(
        read_all(&s, "r/backup/1/data/ns/1_ns_0.asb", 0, None, 4),
        b"hello world"
    );
    assert_eq!(
        read_all(&s, "r/backup/1/data/ns/1_ns_0.asb", 6, Some(3), 100),
        b"wor"
    );
    assert_eq!(
        read_all(&s, "r/backup/1/data/ns/1_ns_0.asb", 50, None, 100),
        b""
    );
    s.delete("r/backup/1/data/ns/1_ns_0.asb").unwrap();
    s.delete("r/backup/1/data/ns/1_ns_0.asb").unwrap(); // idempotent
    assert_eq!(
        s.stat("r/backup/1/data/ns/1_ns_0.asb"),
        Err(Error::NotFound)
    );
    assert!(matches!(
        s.open("r/backup/1/data/ns/1_ns_0.asb", 0, None),
        Err(Error::NotFound)
    ));
    // Empty parents were pruned, so no empty prefixes remain.
    assert!(!dir.path().join("r").exists());
    assert_eq!(tmp_files(&dir), 0);
}

#[test]
fn nothing_visible_before_finish_and_abort_leaves_nothing() {
    let (dir, s) = backend();
    let mut up = s.begin_upload("a/b", Some(3)).unwrap();
    up.write_part(1, b"abc".to_vec()).unwrap();
    assert_eq!(s.stat("a/b"), Err(Error::NotFound));
    assert!(s.list("", true, None, 100).unwrap().objects.is_empty());
    up.abort().unwrap();
    assert_eq!(s.stat("a/b"), Err(Error::NotFound));
    assert_eq!(tmp_files(&dir), 0);
    // An empty upload makes an empty object.
    assert_eq!(put(&s, "empty", &[]).size, 0);
    assert_eq!(read_all(&s, "empty", 0, None, 10), b"");
}

#[test]
fn parts_are_idempotent() {
    let (_dir, s) = backend();
    let mut up = s.begin_upload("k", None).unwrap();
    up.write_part(1, b"aaaa".to_vec()).unwrap();
    up.write_part(2, b"bb".to_vec()).unwrap();
    up.write_part(2, b"bbb".to_vec()).unwrap(); // retry of the latest part replaces it
    up.write_part(1, b"AAAA".to_vec()).unwrap(); // older part, same size: rewritten in place
    assert!(up.write_part(1, b"A".to_vec()).is_err()); // older part, other size
    assert!(up.write_part(4, b"x".to_vec()).is_err()); // gap
    up.write_part(3, b"c".to_vec()).unwrap();
    assert_eq!(up.finish().unwrap().size, 8);
    assert_eq!(read_all(&s, "k", 0, None, 3), b"AAAAbbbc");
}

#[test]
fn replacing_an_object_is_atomic_last_writer_wins() {
    let (_dir, s) = backend();
    put(&s, "x", &[b"old"]);
    let mut up = s.begin_upload("x", None).unwrap();
    up.write_part(1, b"new!".to_vec()).unwrap();
    assert_eq!(read_all(&s, "x", 0, None, 10), b"old");
    up.finish().unwrap();
    assert_eq!(read_all(&s, "x", 0, None, 10), b"new!");
}

#[test]
fn concurrent_writers_do_not_mix() {
    let (_dir, s) = backend();
    let mut ups: Vec<_> = (0..8)
        .map(|i| (i, s.begin_upload(&format!("c/{i}"), None).unwrap()))
        .collect();
    for round in 0..3u32 {
        for (i, up) in &mut ups {
            up.write_part(round + 1, vec![*i as u8; 1000]).unwrap();
        }
    }
    for (_, up) in &mut ups {
        up.finish().unwrap();
    }
    for i in 0..8u8 {
        assert_eq!(read_all(&s, &format!("c/{i}"), 0, None, 777), vec![i; 3000]);
    }
}

#[test]
fn list_pages_in_key_order() {
    let (_dir, s) = backend();
    let keys = [
        "r/backup/1/a",
        "r/backup/1/b",
        "r/backup/2/a",
        "r/incremental/3/a",
        "r/z",
        "rx",
    ];
    for k in keys.iter().rev() {
        put(&s, k, &[k.as_bytes()]);
    }
    // Recursive, one page at a time.
    let mut got = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.list("r/", true, cursor.as_deref(), 2).unwrap();
        assert!(page.prefixes.is_empty());
        assert!(page.objects.len() <= 2);
        got.extend(page.objects.into_iter().map(|o| o.key));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got, &keys[..5]);
    // Non-recursive: direct children plus sub-prefixes.
    let page = s.list("r/", false, None, 100).unwrap();
    assert_eq!(page.prefixes, ["r/backup/", "r/incremental/"]);
    assert_eq!(
        page.objects.iter().map(|o| &o.key[..]).collect::<Vec<_>>(),
        ["r/z"]
    );
    let page = s.list("r/backup/", false, None, 1).unwrap();
    assert_eq!(page.prefixes, ["r/backup/1/"]);
    let page = s
        .list("r/backup/", false, page.next_cursor.as_deref(), 1)
        .unwrap();
    assert_eq!(page.prefixes, ["r/backup/2/"]);
    assert_eq!(page.next_cursor, None);
    // Partial last segment, and nothing under a prefix.
    let page = s.list("r", false, None, 100).unwrap();
    assert_eq!(page.prefixes, ["r/"]);
    assert_eq!(page.objects.len(), 1); // "rx"
    assert_eq!(
        s.list("nope/", true, None, 10).unwrap(),
        ListPage::default()
    );
    assert_eq!(s.list("rx/", true, None, 10).unwrap(), ListPage::default());
}

#[test]
fn temp_area_is_hidden_and_reserved() {
    let (_dir, s) = backend();
    let _pending = s.begin_upload("visible", None).unwrap();
    let all = s.list("", true, None, 100).unwrap();
    assert!(all.objects.is_empty() && all.prefixes.is_empty());
    assert!(s.list("", false, None, 100).unwrap().prefixes.is_empty());
    assert!(matches!(
        s.begin_upload(".abs-tmp/x", None),
        Err(Error::Denied)
    ));
    assert_eq!(s.stat(".abs-tmp"), Err(Error::Denied));
    assert!(matches!(s.open("../outside", 0, None), Err(Error::Denied)));
}

#[test]
fn options_are_checked() {
    assert!(
        aerospike_backup_plugin::options::load::<LocalStorage>(r#"{"path": "/var/backups"}"#)
            .is_ok()
    );
    assert!(aerospike_backup_plugin::options::load::<LocalStorage>(r#"{"path": ""}"#).is_err());
    assert!(aerospike_backup_plugin::options::load::<LocalStorage>("{}").is_err());
    assert!(
        aerospike_backup_plugin::options::load::<LocalStorage>(r#"{"path": "/x", "bucket": "y"}"#)
            .is_err()
    );
    serde_json::from_str::<serde_json::Value>(&LocalStorage::options_schema()).unwrap();
}
