use super::*;

const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn opts(extra: &str) -> String {
    format!(
        r#"{{"endpoint": "https://acct.blob.core.windows.net", "container-name": "backups"{extra}}}"#
    )
}

fn key() -> Vec<(String, String)> {
    vec![("account-key".into(), DEV_KEY.into())]
}

#[test]
fn account_comes_from_the_endpoint_and_only_it_is_reachable() {
    let s = aerospike_backup_plugin::testing::storage::<AzureStorage>(
        &opts(r#", "path": "/a/b/""#),
        key(),
    )
    .unwrap();
    assert_eq!(s.allowed_hosts(), ["acct.blob.core.windows.net"]);
    assert!(matches!(&s.conn.auth, Auth::SharedKey { account, .. } if account == "acct"));
    assert_eq!(
        s.conn.blob_url("x y.asb", "comp=block"),
        "https://acct.blob.core.windows.net/backups/a/b/x%20y.asb?comp=block"
    );
    assert!(!format!("{s:?}").contains(DEV_KEY));
}

#[test]
fn emulator_endpoints_are_path_style_with_the_account_named() {
    let o = r#"{"endpoint": "http://127.0.0.1:10000/devstoreaccount1/", "container-name": "c-1", "account-name": "devstoreaccount1"}"#;
    let s = aerospike_backup_plugin::testing::storage::<AzureStorage>(o, key()).unwrap();
    assert_eq!(s.allowed_hosts(), ["127.0.0.1:10000"]);
    assert_eq!(
        s.conn.blob_url("k", ""),
        "http://127.0.0.1:10000/devstoreaccount1/c-1/k"
    );
}

#[test]
fn options_and_credentials_are_checked_by_name() {
    for (extra, field) in [
        (r#", "storage-class": "Lukewarm""#, "storage-class"),
        (r#", "min-part-size": 0"#, "min-part-size"),
        (r#", "colour": 1"#, "colour"),
    ] {
        let e = aerospike_backup_plugin::options::load::<AzureStorage>(&opts(extra)).unwrap_err();
        assert!(e.to_string().contains(field), "{extra}: {e}");
    }
    let e = aerospike_backup_plugin::options::load::<AzureStorage>(
        r#"{"endpoint": "https://a.b", "container-name": "UPPER"}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("container-name"), "{e}");
    let e =
        aerospike_backup_plugin::testing::storage::<AzureStorage>(&opts(""), vec![]).unwrap_err();
    assert!(e.to_string().contains("account-key"), "{e}");
    let e = aerospike_backup_plugin::testing::storage::<AzureStorage>(
        &opts(""),
        vec![("account-key".into(), "not base64!".into())],
    )
    .unwrap_err();
    assert!(e.to_string().contains("account-key"), "{e}");
}

#[test]
fn signature_covers_method_headers_and_resource() {
    let req = |m: Method, url: &str| {
        Request::new(m, url)
            .header("x-ms-date", "Thu, 01 Jan 1970 00:00:00 GMT")
            .header("x-ms-version", API_VERSION)
    };
    let k = B64.decode(DEV_KEY).unwrap();
    let a = shared_key_signature(
        &req(Method::Get, "https://a.blob.core.windows.net/c/k"),
        0,
        "a",
        &k,
    )
    .unwrap();
    let b = shared_key_signature(
        &req(Method::Put, "https://a.blob.core.windows.net/c/k"),
        0,
        "a",
        &k,
    )
    .unwrap();
    let c = shared_key_signature(
        &req(Method::Get, "https://a.blob.core.windows.net/c/k?comp=list"),
        0,
        "a",
        &k,
    )
    .unwrap();
    let d = shared_key_signature(
        &req(Method::Get, "https://a.blob.core.windows.net/c/k"),
        5,
        "a",
        &k,
    )
    .unwrap();
    assert_eq!(B64.decode(&a).unwrap().len(), 32);
    assert!(a != b && a != c && a != d);
    // Query parameter order does not matter (canonicalised).
    let e = shared_key_signature(&req(Method::Get, "https://a/c?b=2&a=1"), 0, "a", &k).unwrap();
    let f = shared_key_signature(&req(Method::Get, "https://a/c?a=1&b=2"), 0, "a", &k).unwrap();
    assert_eq!(e, f);
}

#[test]
fn block_ids_have_one_length_per_blob() {
    let s = aerospike_backup_plugin::testing::storage::<AzureStorage>(&opts(""), key()).unwrap();
    let up = s.begin_upload("k", None).unwrap();
    let other = s.begin_upload("k", None).unwrap();
    assert_eq!(up.blob.block_id(1).len(), up.blob.block_id(50_000).len());
    assert_ne!(up.blob.block_id(1), other.blob.block_id(1));
}

#[test]
fn listings() {
    let doc = r#"<?xml version="1.0"?><EnumerationResults><Blobs>
      <Blob><Name>p/a&amp;b</Name><Properties><Last-Modified>Thu, 01 Jan 1970 00:00:01 GMT</Last-Modified><Etag>"0x1"</Etag><Content-Length>12</Content-Length></Properties></Blob>
      <BlobPrefix><Name>p/sub/</Name></BlobPrefix></Blobs><NextMarker>m2</NextMarker></EnumerationResults>"#;
    let l = text::parse_listing(doc);
    assert_eq!(l.blobs.len(), 1);
    assert_eq!((l.blobs[0].name.as_str(), l.blobs[0].size), ("p/a&b", 12));
    assert_eq!(l.prefixes, ["p/sub/"]);
    assert_eq!(l.next_marker.as_deref(), Some("m2"));
    assert_eq!(
        text::parse_listing("<EnumerationResults><NextMarker/></EnumerationResults>").next_marker,
        None
    );
    assert_eq!(percent_decode("a%2Fb%20c"), "a/b c");
}

#[test]
fn a_sas_token_is_a_credential_of_its_own_and_stays_redacted() {
    let sas = "?sv=2022-11-02&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00:00:00Z&sig=c2VjcmV0%3D";
    let s = aerospike_backup_plugin::testing::storage::<AzureStorage>(
        &opts(""),
        vec![("sas-token".into(), sas.into())],
    )
    .unwrap();
    assert!(matches!(&s.conn.auth, Auth::Sas(t) if t == &sas[1..]));
    assert!(!format!("{s:?}").contains("sig="));
    let e = aerospike_backup_plugin::testing::storage::<AzureStorage>(
        &opts(""),
        vec![("sas-token".into(), "sv=2022-11-02".into())],
    )
    .unwrap_err();
    assert!(e.to_string().contains("sas-token"), "{e}");
}
