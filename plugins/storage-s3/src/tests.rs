use super::*;

fn opts(extra: &str) -> String {
    format!(r#"{{"bucket": "my-bucket", "s3-region": "eu-west-1"{extra}}}"#)
}

fn keys() -> Vec<(String, String)> {
    vec![
        ("access-key-id".into(), "AKIDEXAMPLE".into()),
        (
            "secret-access-key".into(),
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        ),
    ]
}

#[test]
fn aws_endpoint_is_virtual_hosted_and_https() {
    let s = aerospike_backup_plugin::testing::storage::<S3Storage>(&opts(""), keys()).unwrap();
    assert_eq!(
        s.allowed_hosts(),
        vec!["my-bucket.s3.eu-west-1.amazonaws.com".to_string()]
    );
    let url = s.conn.object_url("a/b c", &[]);
    assert_eq!(url, "https://my-bucket.s3.eu-west-1.amazonaws.com/a/b%20c");
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn requests_are_signed_in_the_authorization_header_and_sub_resources_have_no_value() {
    let s = aerospike_backup_plugin::testing::storage::<S3Storage>(
        &opts(
            r#", "s3-endpoint-override": "http://127.0.0.1:9000", "storage-class": "STANDARD_IA""#,
        ),
        keys(),
    )
    .unwrap();
    let url = s.conn.object_url("k.asb", &[("uploads", None)]);
    assert_eq!(url, "http://127.0.0.1:9000/my-bucket/k.asb?uploads");
    let req = s
        .conn
        .request(
            Method::Post,
            &url,
            &s.conn.create_headers("k.asb"),
            Payload::Signed(&[]),
        )
        .unwrap();
    assert_eq!(req.url, url, "signing must not touch the URL");
    let auth = header(&req, "authorization").expect("authorization header");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            && auth.contains("/eu-west-1/s3/aws4_request")
            && auth.contains("x-amz-storage-class"),
        "{auth}"
    );
    assert!(!auth.contains("wJalr"), "the secret never travels");
    assert!(header(&req, "x-amz-date").is_some());
    assert_eq!(
        header(&req, "x-amz-content-sha256"),
        Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    let listing = s
        .conn
        .bucket_url(&[("uploads", None), ("prefix", Some("a b/c+d"))]);
    assert_eq!(
        listing,
        "http://127.0.0.1:9000/my-bucket/?uploads&prefix=a%20b%2Fc%2Bd"
    );
    // Data is sent with an unsigned payload, and temporary keys carry their token.
    let mut with_token = keys();
    with_token.push(("session-token".into(), "TOKEN".into()));
    let t = aerospike_backup_plugin::testing::storage::<S3Storage>(&opts(""), with_token).unwrap();
    let req = t
        .conn
        .request(
            Method::Put,
            "https://h/k?partNumber=1&uploadId=x",
            &[],
            Payload::Unsigned,
        )
        .unwrap();
    assert_eq!(
        header(&req, "x-amz-content-sha256"),
        Some("UNSIGNED-PAYLOAD")
    );
    assert_eq!(header(&req, "x-amz-security-token"), Some("TOKEN"));
}

#[test]
fn signature_matches_the_s3_reference_example() {
    // "Example: GET Object" of the S3 API reference's header-signing page (public test keys).
    let signer = Signer::new(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        None,
        "us-east-1",
    );
    let req = Request::new(
        Method::Get,
        "https://examplebucket.s3.amazonaws.com/test.txt",
    )
    .header("range", "bytes=0-9");
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_369_353_600);
    let req = signer.sign_at(req, Payload::Signed(&[]), time).unwrap();
    assert_eq!(
        header(&req, "authorization"),
        Some(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        )
    );
}

#[test]
fn complete_document_lists_every_part() {
    assert_eq!(
        xml::complete_body(&["\"a\"".into(), "\"b&\"".into()]),
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag></Part>\
         <Part><PartNumber>2</PartNumber><ETag>\"b&amp;\"</ETag></Part></CompleteMultipartUpload>"
    );
}

#[test]
fn endpoint_override_is_path_style() {
    let s = aerospike_backup_plugin::testing::storage::<S3Storage>(
        &opts(r#", "s3-endpoint-override": "http://127.0.0.1:9000/", "path": "/backups/""#),
        keys(),
    )
    .unwrap();
    assert_eq!(s.allowed_hosts(), vec!["127.0.0.1:9000".to_string()]);
    assert_eq!(s.conn.root.as_str(), "backups/");
    let url = s.conn.object_url(&s.conn.root.name("x.asb"), &[]);
    assert_eq!(url, "http://127.0.0.1:9000/my-bucket/backups/x.asb");
}

#[test]
fn empty_override_means_aws() {
    let s = aerospike_backup_plugin::testing::storage::<S3Storage>(
        &opts(r#", "s3-endpoint-override": "  ""#),
        keys(),
    )
    .unwrap();
    assert_eq!(
        s.allowed_hosts(),
        vec!["my-bucket.s3.eu-west-1.amazonaws.com".to_string()]
    );
}

#[test]
fn options_are_checked_with_their_names() {
    for (extra, field) in [
        (r#", "min-part-size": 1024"#, "min-part-size"),
        (r#", "max-async-connections": 0"#, "max-async-connections"),
        (r#", "storage-class": "cheap please""#, "storage-class"),
        (
            r#", "metadata-storage-class": "glacier""#,
            "metadata-storage-class",
        ),
        (
            r#", "s3-endpoint-override": "ftp://x""#,
            "s3-endpoint-override",
        ),
        (r#", "colour": "red""#, "colour"),
    ] {
        let e = aerospike_backup_plugin::options::load::<S3Storage>(&opts(extra)).unwrap_err();
        assert!(e.to_string().contains(field), "{extra}: {e}");
    }
    let e =
        aerospike_backup_plugin::options::load::<S3Storage>(r#"{"bucket": "", "s3-region": "r"}"#)
            .unwrap_err();
    assert!(e.to_string().contains("bucket"), "{e}");
    aerospike_backup_plugin::options::load::<S3Storage>(&opts(
        r#", "min-part-size": 5242880, "storage-class": "STANDARD_IA""#,
    ))
    .unwrap();
}

#[test]
fn half_a_key_pair_is_refused() {
    let e = aerospike_backup_plugin::testing::storage::<S3Storage>(
        &opts(""),
        vec![("access-key-id".into(), "AKID".into())],
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidConfig(_)), "{e}");
}

#[test]
fn capabilities_follow_the_options() {
    let s = aerospike_backup_plugin::testing::storage::<S3Storage>(
        &opts(r#", "min-part-size": 8388608, "max-async-connections": 4"#),
        keys(),
    )
    .unwrap();
    let c = s.capabilities();
    assert_eq!(
        (c.min_part_size, c.max_parts, c.max_concurrency),
        (8 << 20, 10_000, Some(4))
    );
    let c = aerospike_backup_plugin::testing::storage::<S3Storage>(&opts(""), keys())
        .unwrap()
        .capabilities();
    assert_eq!(c.min_part_size, 5 << 20);
}

#[test]
fn error_documents() {
    let doc = "<?xml?><Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>";
    assert_eq!(xml::error_summary(doc, 100), "SlowDown: Reduce your rate");
    assert_eq!(
        xml::embedded_error(doc, 100).as_deref(),
        Some("SlowDown: Reduce your rate")
    );
    assert_eq!(
        xml::embedded_error("<CompleteMultipartUploadResult/>", 100),
        None
    );
}

#[test]
fn open_uploads_of_exactly_the_key_are_picked_from_a_listing() {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult><Bucket>b</Bucket><Prefix>r/a.asb</Prefix>
<Upload><Key>r/a.asb</Key><UploadId>id-1</UploadId></Upload>
<Upload><Key>r/a.asb.abs-open</Key><UploadId>id-2</UploadId></Upload>
<Upload><Key>r/a.asb</Key><UploadId>id&amp;3</UploadId></Upload>
</ListMultipartUploadsResult>"#;
    assert_eq!(xml::uploads_of(body, "r/a.asb"), ["id-1", "id&3"]);
    assert!(xml::uploads_of("<ListMultipartUploadsResult/>", "r/a.asb").is_empty());
}

#[test]
fn data_files_and_the_rest_take_their_own_storage_class() {
    let class = |opts_extra: &str, key: &str| {
        let s = aerospike_backup_plugin::testing::storage::<S3Storage>(&opts(opts_extra), keys())
            .unwrap();
        s.conn
            .create_headers(key)
            .into_iter()
            .find(|(n, _)| *n == "x-amz-storage-class")
            .map(|(_, v)| v)
    };
    let split = r#", "storage-class": "GLACIER_IR", "metadata-storage-class": "STANDARD""#;
    assert_eq!(
        class(split, "r/backup/1/data/test/test_1.asb").as_deref(),
        Some("GLACIER_IR")
    );
    assert_eq!(
        class(split, "r/backup/1/data/test/metadata_test_2.asb33").as_deref(),
        Some("GLACIER_IR")
    );
    assert_eq!(
        class(split, "r/backup/1/data/test/metadata.yaml").as_deref(),
        Some("STANDARD")
    );
    assert_eq!(
        class(split, "r/backup/1/data/test/checksums.yaml").as_deref(),
        Some("STANDARD")
    );
    // One class for everything; none at all.
    let one = r#", "storage-class": "STANDARD_IA""#;
    assert_eq!(
        class(one, "x/metadata.yaml").as_deref(),
        Some("STANDARD_IA")
    );
    assert_eq!(class("", "x/a.asb"), None);
}
