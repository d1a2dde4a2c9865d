//! S3 through `aws-sdk-s3` against an in-process stack (tests/fixtures/s3.toml):
//! buckets, objects with metadata, ranges and conditions, listings,
//! copies, batch deletes, multipart uploads with their `-N` ETags,
//! checksums, presigned URLs (valid, expired, tampered), CORS, S3's XML
//! errors, and objects surviving a restart.
//!
//! The client is the stock one with only an endpoint URL: no
//! `force_path_style` (an IP-address endpoint is addressed path-style by
//! the SDK's endpoint rules), signing with the local endpoint's secret.

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, CorsConfiguration,
    CorsRule, Delete, MetadataDirective, ObjectIdentifier,
};
use common::{TempDir, http, manifest, sdk};
use woocom_dev::dynamodb::DataLocation;
use woocom_dev::{Stack, StackOptions};

async fn start() -> Stack {
    Stack::start(
        StackOptions::new(manifest("s3.toml"))
            .free_ports()
            .quiet_build(),
    )
    .await
    .expect("stack starts")
}

async fn client(stack: &Stack) -> aws_sdk_s3::Client {
    let config = sdk::loader(&stack.urls().aws)
        .endpoint_url(&stack.urls().s3)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "AKIAANYKEY",
            woocom_dev::s3::LOCAL_SECRET_ACCESS_KEY,
            None,
            None,
            "test",
        ))
        .load()
        .await;
    aws_sdk_s3::Client::new(&config)
}

/// The service error's code, or the HTTP status for bodiless answers.
fn code<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: &aws_sdk_s3::error::SdkError<E, R>,
) -> String {
    match e.as_service_error() {
        Some(s) => s.code().unwrap_or("<none>").to_owned(),
        None => format!("{e:?}"),
    }
}

fn status<E>(e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> u16 {
    e.raw_response().map_or(0, |r| r.status().as_u16())
}

fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", md5::compute(bytes))
}

async fn body(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

#[tokio::test]
async fn buckets_are_created_listed_and_deleted_with_s3_errors() {
    let stack = start().await;
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("create");
    // us-east-1 answers its owner re-creating a bucket with 200.
    s3.create_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("re-create in us-east-1");
    s3.head_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("head");
    let listed = s3.list_buckets().send().await.expect("list");
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["photos"]);

    let e = s3
        .head_bucket()
        .bucket("nope")
        .send()
        .await
        .expect_err("missing bucket");
    assert_eq!(status(&e), 404);
    let e = s3
        .list_objects_v2()
        .bucket("nope")
        .send()
        .await
        .expect_err("missing bucket");
    assert_eq!(code(&e), "NoSuchBucket");
    let e = s3
        .create_bucket()
        .bucket("Bad_Name")
        .send()
        .await
        .expect_err("invalid bucket name");
    assert_eq!(code(&e), "InvalidBucketName");

    s3.put_object()
        .bucket("photos")
        .key("a.txt")
        .body(ByteStream::from_static(b"a"))
        .send()
        .await
        .expect("put");
    let e = s3
        .delete_bucket()
        .bucket("photos")
        .send()
        .await
        .expect_err("not empty");
    assert_eq!(code(&e), "BucketNotEmpty");
    s3.delete_object()
        .bucket("photos")
        .key("a.txt")
        .send()
        .await
        .expect("delete");
    s3.delete_bucket()
        .bucket("photos")
        .send()
        .await
        .expect("delete bucket");
    assert!(
        s3.list_buckets()
            .send()
            .await
            .expect("list")
            .buckets()
            .is_empty()
    );
}

#[tokio::test]
async fn objects_keep_body_metadata_and_headers_with_md5_etags_and_checksums() {
    let stack = start().await;
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("docs")
        .send()
        .await
        .expect("create");
    let data = b"hello, object storage".to_vec();
    let put = s3
        .put_object()
        .bucket("docs")
        .key("dir/hello world.txt")
        .body(ByteStream::from(data.clone()))
        .content_type("text/plain; charset=utf-8")
        .content_encoding("identity")
        .cache_control("max-age=60")
        .metadata("Owner", "shop")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .expect("put");
    assert_eq!(
        put.e_tag(),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    assert!(put.checksum_crc32().is_some(), "CRC32 echoed");

    let got = s3
        .get_object()
        .bucket("docs")
        .key("dir/hello world.txt")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .expect("get");
    assert_eq!(got.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(got.content_encoding(), Some("identity"));
    assert_eq!(got.cache_control(), Some("max-age=60"));
    assert_eq!(got.content_length(), Some(data.len() as i64));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("owner"))
            .map(String::as_str),
        Some("shop"),
        "user metadata comes back, its name lower-cased"
    );
    assert_eq!(got.checksum_crc32(), put.checksum_crc32());
    assert!(got.checksum_crc64_nvme().is_some(), "S3 adds CRC64NVME");
    assert_eq!(body(got).await, data);

    let head = s3
        .head_object()
        .bucket("docs")
        .key("dir/hello world.txt")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_length(), Some(data.len() as i64));
    assert_eq!(head.e_tag(), put.e_tag());

    let e = s3
        .get_object()
        .bucket("docs")
        .key("missing")
        .send()
        .await
        .expect_err("missing key");
    assert_eq!(code(&e), "NoSuchKey");
    let e = s3
        .head_object()
        .bucket("docs")
        .key("missing")
        .send()
        .await
        .expect_err("missing key");
    assert_eq!(status(&e), 404);
}

#[tokio::test]
async fn a_wrong_checksum_is_bad_digest_and_leaves_nothing() {
    let stack = start().await;
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("bkt")
        .send()
        .await
        .expect("create");
    let e = s3
        .put_object()
        .bucket("bkt")
        .key("k")
        .body(ByteStream::from_static(b"payload"))
        .checksum_crc32("AAAAAA==")
        .send()
        .await
        .expect_err("wrong CRC32");
    assert_eq!(code(&e), "BadDigest");
    let e = s3
        .put_object()
        .bucket("bkt")
        .key("k")
        .body(ByteStream::from_static(b"payload"))
        .content_md5("1B2M2Y8AsgTpgAmY7PhCfg==")
        .send()
        .await
        .expect_err("wrong Content-MD5");
    assert_eq!(code(&e), "BadDigest");
    let e = s3
        .head_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .expect_err("nothing stored");
    assert_eq!(status(&e), 404);
    let tmp = std::fs::read_dir(stack.s3().store_root().join("tmp"))
        .expect("tmp dir")
        .count();
    assert_eq!(tmp, 0, "no temporary body left behind");
}

#[tokio::test]
async fn ranges_and_conditional_requests_answer_as_s3() {
    let stack = start().await;
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("bkt")
        .send()
        .await
        .expect("create");
    let put = s3
        .put_object()
        .bucket("bkt")
        .key("digits")
        .body(ByteStream::from_static(b"0123456789"))
        .send()
        .await
        .expect("put");
    let etag = put.e_tag().expect("etag").to_owned();

    let part = s3
        .get_object()
        .bucket("bkt")
        .key("digits")
        .range("bytes=2-5")
        .send()
        .await
        .expect("range");
    assert_eq!(part.content_range(), Some("bytes 2-5/10"));
    assert_eq!(body(part).await, b"2345");
    let tail = s3
        .get_object()
        .bucket("bkt")
        .key("digits")
        .range("bytes=-3")
        .send()
        .await
        .expect("suffix range");
    assert_eq!(body(tail).await, b"789");
    let e = s3
        .get_object()
        .bucket("bkt")
        .key("digits")
        .range("bytes=20-30")
        .send()
        .await
        .expect_err("unsatisfiable");
    assert_eq!(code(&e), "InvalidRange");

    let e = s3
        .get_object()
        .bucket("bkt")
        .key("digits")
        .if_none_match(&etag)
        .send()
        .await
        .expect_err("not modified");
    assert_eq!(status(&e), 304);
    let e = s3
        .get_object()
        .bucket("bkt")
        .key("digits")
        .if_match("\"0000\"")
        .send()
        .await
        .expect_err("precondition");
    assert_eq!(code(&e), "PreconditionFailed");
    let later =
        aws_sdk_s3::primitives::DateTime::from(SystemTime::now() + Duration::from_secs(3600));
    let e = s3
        .get_object()
        .bucket("bkt")
        .key("digits")
        .if_modified_since(later)
        .send()
        .await
        .expect_err("not modified since");
    assert_eq!(status(&e), 304);
    let earlier =
        aws_sdk_s3::primitives::DateTime::from(SystemTime::now() - Duration::from_secs(3600));
    let e = s3
        .get_object()
        .bucket("bkt")
        .key("digits")
        .if_unmodified_since(earlier)
        .send()
        .await
        .expect_err("modified since");
    assert_eq!(code(&e), "PreconditionFailed");
    s3.get_object()
        .bucket("bkt")
        .key("digits")
        .if_match(&etag)
        .send()
        .await
        .expect("If-Match holds");

    // Conditional writes: If-None-Match: * refuses to overwrite.
    let e = s3
        .put_object()
        .bucket("bkt")
        .key("digits")
        .if_none_match("*")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("exists");
    assert_eq!(code(&e), "PreconditionFailed");
    s3.put_object()
        .bucket("bkt")
        .key("new")
        .if_none_match("*")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("absent key is written");
}

#[tokio::test]
async fn list_objects_v2_pages_with_prefix_delimiter_and_tokens() {
    let stack = start().await;
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("bkt")
        .send()
        .await
        .expect("create");
    let keys = [
        "a.txt",
        "img/1.png",
        "img/2.png",
        "img/thumbs/1.png",
        "docs/x.md",
        "z.txt",
    ];
    for k in keys {
        s3.put_object()
            .bucket("bkt")
            .key(k)
            .body(ByteStream::from_static(b"."))
            .send()
            .await
            .expect("put");
    }
    let all = s3
        .list_objects_v2()
        .bucket("bkt")
        .send()
        .await
        .expect("list");
    let listed: Vec<&str> = all.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        listed,
        [
            "a.txt",
            "docs/x.md",
            "img/1.png",
            "img/2.png",
            "img/thumbs/1.png",
            "z.txt"
        ],
        "UTF-8 binary order"
    );
    assert_eq!(all.key_count(), Some(6));

    let top = s3
        .list_objects_v2()
        .bucket("bkt")
        .delimiter("/")
        .send()
        .await
        .expect("delimited");
    let files: Vec<&str> = top.contents().iter().filter_map(|o| o.key()).collect();
    let dirs: Vec<&str> = top
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(files, ["a.txt", "z.txt"]);
    assert_eq!(dirs, ["docs/", "img/"]);

    let img = s3
        .list_objects_v2()
        .bucket("bkt")
        .prefix("img/")
        .delimiter("/")
        .send()
        .await
        .expect("prefix");
    let files: Vec<&str> = img.contents().iter().filter_map(|o| o.key()).collect();
    let dirs: Vec<&str> = img
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(files, ["img/1.png", "img/2.png"]);
    assert_eq!(dirs, ["img/thumbs/"]);

    // Pages of two, common prefixes counting as entries.
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("bkt")
            .delimiter("/")
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("page");
        pages += 1;
        seen.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_owned),
        );
        seen.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix())
                .map(str::to_owned),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_owned);
        assert!(token.is_some(), "a truncated page has a token");
    }
    seen.sort();
    assert_eq!(seen, ["a.txt", "docs/", "img/", "z.txt"]);
    assert_eq!(pages, 2);

    // The SDK's paginator walks every key.
    let mut paginator = s3
        .list_objects_v2()
        .bucket("bkt")
        .max_keys(4)
        .into_paginator()
        .send();
    let mut count = 0;
    while let Some(page) = paginator.next().await {
        count += page.expect("page").contents().len();
    }
    assert_eq!(count, keys.len());
}

#[tokio::test]
async fn copy_and_batch_delete() {
    let stack = start().await;
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("src")
        .send()
        .await
        .expect("create");
    s3.create_bucket()
        .bucket("dst")
        .send()
        .await
        .expect("create");
    s3.put_object()
        .bucket("src")
        .key("a")
        .body(ByteStream::from_static(b"copy me"))
        .content_type("text/plain")
        .metadata("kind", "original")
        .send()
        .await
        .expect("put");
    let copied = s3
        .copy_object()
        .copy_source("src/a")
        .bucket("dst")
        .key("b")
        .send()
        .await
        .expect("copy");
    assert_eq!(
        copied.copy_object_result().and_then(|r| r.e_tag()),
        Some(format!("\"{}\"", md5_hex(b"copy me")).as_str())
    );
    let got = s3
        .get_object()
        .bucket("dst")
        .key("b")
        .send()
        .await
        .expect("get");
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("kind"))
            .map(String::as_str),
        Some("original"),
        "COPY keeps the metadata"
    );
    assert_eq!(body(got).await, b"copy me");

    let e = s3
        .copy_object()
        .copy_source("src/a")
        .bucket("src")
        .key("a")
        .send()
        .await
        .expect_err("copy onto itself without a change");
    assert_eq!(code(&e), "InvalidRequest");
    s3.copy_object()
        .copy_source("src/a")
        .bucket("src")
        .key("a")
        .metadata_directive(MetadataDirective::Replace)
        .metadata("kind", "replaced")
        .send()
        .await
        .expect("replace metadata in place");
    let head = s3
        .head_object()
        .bucket("src")
        .key("a")
        .send()
        .await
        .expect("head");
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("kind"))
            .map(String::as_str),
        Some("replaced")
    );

    let e = s3
        .copy_object()
        .copy_source("src/missing")
        .bucket("dst")
        .key("c")
        .send()
        .await
        .expect_err("missing source");
    assert_eq!(code(&e), "NoSuchKey");

    for k in ["x1", "x2", "x3"] {
        s3.put_object()
            .bucket("dst")
            .key(k)
            .body(ByteStream::from_static(b"."))
            .send()
            .await
            .expect("put");
    }
    let ids: Vec<ObjectIdentifier> = ["x1", "x2", "never-there"]
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().expect("id"))
        .collect();
    let deleted = s3
        .delete_objects()
        .bucket("dst")
        .delete(
            Delete::builder()
                .set_objects(Some(ids))
                .build()
                .expect("delete"),
        )
        .send()
        .await
        .expect("delete objects");
    assert_eq!(
        deleted.deleted().len(),
        3,
        "a missing key counts as deleted"
    );
    let left = s3
        .list_objects_v2()
        .bucket("dst")
        .send()
        .await
        .expect("list");
    let keys: Vec<&str> = left.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["b", "x3"]);
}

#[tokio::test]
async fn multipart_uploads_complete_with_a_dash_n_etag_and_refuse_bad_lists() {
    let stack = start().await;
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("big")
        .send()
        .await
        .expect("create");
    let part1 = vec![b'a'; 5 * 1024 * 1024];
    let part2 = b"tail".to_vec();

    let create = s3
        .create_multipart_upload()
        .bucket("big")
        .key("video.bin")
        .content_type("application/octet-stream")
        .metadata("source", "camera")
        .send()
        .await
        .expect("create upload");
    let id = create.upload_id().expect("upload id").to_owned();
    let mut etags = Vec::new();
    for (n, data) in [(1, &part1), (2, &part2)] {
        let out = s3
            .upload_part()
            .bucket("big")
            .key("video.bin")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .expect("upload part");
        assert_eq!(out.e_tag(), Some(format!("\"{}\"", md5_hex(data)).as_str()));
        etags.push(out.e_tag().expect("etag").to_owned());
    }
    let parts = s3
        .list_parts()
        .bucket("big")
        .key("video.bin")
        .upload_id(&id)
        .send()
        .await
        .expect("list parts");
    let sizes: Vec<i64> = parts.parts().iter().filter_map(|p| p.size()).collect();
    assert_eq!(sizes, [part1.len() as i64, part2.len() as i64]);

    let part = |n: i32, etag: &str| CompletedPart::builder().part_number(n).e_tag(etag).build();
    // Out of order, then a wrong ETag.
    let e = s3
        .complete_multipart_upload()
        .bucket("big")
        .key("video.bin")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(part(2, &etags[1]))
                .parts(part(1, &etags[0]))
                .build(),
        )
        .send()
        .await
        .expect_err("out of order");
    assert_eq!(code(&e), "InvalidPartOrder");
    let e = s3
        .complete_multipart_upload()
        .bucket("big")
        .key("video.bin")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(part(1, "\"00000000000000000000000000000000\""))
                .parts(part(2, &etags[1]))
                .build(),
        )
        .send()
        .await
        .expect_err("wrong etag");
    assert_eq!(code(&e), "InvalidPart");

    let done = s3
        .complete_multipart_upload()
        .bucket("big")
        .key("video.bin")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(part(1, &etags[0]))
                .parts(part(2, &etags[1]))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    // MD5 of the concatenated binary part MD5s, then -<parts>.
    let mut joined = md5::compute(&part1).0.to_vec();
    joined.extend(md5::compute(&part2).0);
    let expected = format!("\"{:x}-2\"", md5::compute(&joined));
    assert_eq!(done.e_tag(), Some(expected.as_str()));

    let head = s3
        .head_object()
        .bucket("big")
        .key("video.bin")
        .send()
        .await
        .expect("head");
    assert_eq!(
        head.content_length(),
        Some((part1.len() + part2.len()) as i64)
    );
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("source"))
            .map(String::as_str),
        Some("camera")
    );
    let second = s3
        .get_object()
        .bucket("big")
        .key("video.bin")
        .part_number(2)
        .send()
        .await
        .expect("part 2");
    assert_eq!(second.parts_count(), Some(2));
    assert_eq!(body(second).await, part2);

    let e = s3
        .list_parts()
        .bucket("big")
        .key("video.bin")
        .upload_id(&id)
        .send()
        .await
        .expect_err("completed upload is gone");
    assert_eq!(code(&e), "NoSuchUpload");

    // A small first part is EntityTooSmall; an aborted upload is gone.
    let small = s3
        .create_multipart_upload()
        .bucket("big")
        .key("small")
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_owned();
    let mut small_etags = Vec::new();
    for n in 1..=2 {
        let out = s3
            .upload_part()
            .bucket("big")
            .key("small")
            .upload_id(&small)
            .part_number(n)
            .body(ByteStream::from_static(b"tiny"))
            .send()
            .await
            .expect("part");
        small_etags.push(out.e_tag().expect("etag").to_owned());
    }
    let e = s3
        .complete_multipart_upload()
        .bucket("big")
        .key("small")
        .upload_id(&small)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(part(1, &small_etags[0]))
                .parts(part(2, &small_etags[1]))
                .build(),
        )
        .send()
        .await
        .expect_err("too small");
    assert_eq!(code(&e), "EntityTooSmall");
    s3.abort_multipart_upload()
        .bucket("big")
        .key("small")
        .upload_id(&small)
        .send()
        .await
        .expect("abort");
    let e = s3
        .upload_part()
        .bucket("big")
        .key("small")
        .upload_id(&small)
        .part_number(3)
        .body(ByteStream::from_static(b"late"))
        .send()
        .await
        .expect_err("aborted");
    assert_eq!(code(&e), "NoSuchUpload");
}

#[tokio::test]
async fn presigned_urls_work_until_they_expire_and_only_as_signed() {
    let stack = start().await;
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("uploads")
        .send()
        .await
        .expect("create");
    let web = http();

    // A presigned PUT, used by a plain HTTP client (as a browser would).
    let put = s3
        .put_object()
        .bucket("uploads")
        .key("photo.jpg")
        .content_type("image/jpeg")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("config"))
        .await
        .expect("presign put");
    let answer = web
        .put(put.uri())
        .header("content-type", "image/jpeg")
        .body("jpeg bytes")
        .send()
        .await
        .expect("upload");
    assert_eq!(
        answer.status(),
        200,
        "{}",
        answer.text().await.unwrap_or_default()
    );

    // The signed Content-Type changed: SignatureDoesNotMatch.
    let answer = web
        .put(put.uri())
        .header("content-type", "text/html")
        .body("<script>")
        .send()
        .await
        .expect("upload");
    assert_eq!(answer.status(), 403);
    let text = answer.text().await.expect("body");
    assert!(
        text.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{text}"
    );

    let get = s3
        .get_object()
        .bucket("uploads")
        .key("photo.jpg")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("config"))
        .await
        .expect("presign get");
    let answer = web.get(get.uri()).send().await.expect("download");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), "jpeg bytes");

    // Tampered: another key under the same signature.
    let tampered = get.uri().replace("photo.jpg", "other.jpg");
    let answer = web.get(&tampered).send().await.expect("tampered");
    assert_eq!(answer.status(), 403);
    let text = answer.text().await.expect("body");
    assert!(
        text.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{text}"
    );

    // Signed an hour ago, valid for a minute.
    let expired = s3
        .get_object()
        .bucket("uploads")
        .key("photo.jpg")
        .presigned(
            PresigningConfig::builder()
                .start_time(SystemTime::now() - Duration::from_secs(3600))
                .expires_in(Duration::from_secs(60))
                .build()
                .expect("config"),
        )
        .await
        .expect("presign expired");
    let answer = web.get(expired.uri()).send().await.expect("expired");
    assert_eq!(answer.status(), 403);
    let text = answer.text().await.expect("body");
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
    assert!(text.contains("Request has expired"), "{text}");

    // Longer than 7 days: refused before the signature is looked at.
    let week = get
        .uri()
        .replace("X-Amz-Expires=300", "X-Amz-Expires=604801");
    let answer = web.get(&week).send().await.expect("too long");
    assert_eq!(answer.status(), 400);
    let text = answer.text().await.expect("body");
    assert!(
        text.contains("<Code>AuthorizationQueryParametersError</Code>"),
        "{text}"
    );

    // No signature at all.
    let answer = web
        .get(format!("{}/uploads/photo.jpg", stack.urls().s3))
        .send()
        .await
        .expect("anonymous");
    assert_eq!(answer.status(), 403);
    assert!(
        answer
            .text()
            .await
            .expect("body")
            .contains("<Code>AccessDenied</Code>")
    );
}

#[tokio::test]
async fn a_request_signed_with_another_secret_does_not_match() {
    let stack = start().await;
    let config = sdk::loader(&stack.urls().s3).load().await; // secret "secret"
    let s3 = aws_sdk_s3::Client::new(&config);
    let e = s3.list_buckets().send().await.expect_err("wrong secret");
    assert_eq!(code(&e), "SignatureDoesNotMatch");
}

#[tokio::test]
async fn bucket_cors_answers_preflights_and_actual_requests() {
    let stack = start().await;
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("web")
        .send()
        .await
        .expect("create");
    let web = http();
    let url = format!("{}/web/upload.png", stack.urls().s3);
    let preflight = |origin: &str, method: &str, headers: &str| {
        let mut r = web
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", method);
        if !headers.is_empty() {
            r = r.header("access-control-request-headers", headers);
        }
        r.send()
    };

    let answer = preflight("http://localhost:4003", "PUT", "")
        .await
        .expect("preflight");
    assert_eq!(answer.status(), 403);
    let text = answer.text().await.expect("body");
    assert!(
        text.contains("CORSResponse: CORS is not enabled for this bucket."),
        "{text}"
    );

    s3.put_bucket_cors()
        .bucket("web")
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(
                    CorsRule::builder()
                        .allowed_origins("http://localhost:4003")
                        .allowed_methods("PUT")
                        .allowed_methods("GET")
                        .allowed_headers("content-type")
                        .expose_headers("ETag")
                        .max_age_seconds(600)
                        .build()
                        .expect("rule"),
                )
                .build()
                .expect("config"),
        )
        .send()
        .await
        .expect("put cors");
    let got = s3
        .get_bucket_cors()
        .bucket("web")
        .send()
        .await
        .expect("get cors");
    assert_eq!(got.cors_rules().len(), 1);

    let answer = preflight("http://localhost:4003", "PUT", "Content-Type")
        .await
        .expect("preflight");
    assert_eq!(answer.status(), 200);
    let h = answer.headers();
    assert_eq!(h["access-control-allow-origin"], "http://localhost:4003");
    assert_eq!(h["access-control-allow-methods"], "PUT, GET");
    assert_eq!(h["access-control-allow-headers"], "content-type");
    assert_eq!(h["access-control-expose-headers"], "ETag");
    assert_eq!(h["access-control-max-age"], "600");

    for (origin, method, headers) in [
        ("http://evil.test", "PUT", ""),
        ("http://localhost:4003", "DELETE", ""),
        ("http://localhost:4003", "PUT", "x-amz-meta-owner"),
    ] {
        let answer = preflight(origin, method, headers).await.expect("preflight");
        assert_eq!(answer.status(), 403, "{origin} {method} {headers}");
        let text = answer.text().await.expect("body");
        assert!(text.contains("<Code>AccessForbidden</Code>"), "{text}");
        assert!(text.contains("This CORS request is not allowed"), "{text}");
    }

    // The actual request carries the rule's headers (even an error).
    let answer = web
        .get(&url)
        .header("origin", "http://localhost:4003")
        .send()
        .await
        .expect("get");
    assert_eq!(answer.status(), 403, "unsigned");
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "http://localhost:4003"
    );
    let answer = web
        .get(&url)
        .header("origin", "http://evil.test")
        .send()
        .await
        .expect("get");
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    s3.delete_bucket_cors()
        .bucket("web")
        .send()
        .await
        .expect("delete cors");
    let e = s3
        .get_bucket_cors()
        .bucket("web")
        .send()
        .await
        .expect_err("gone");
    assert_eq!(code(&e), "NoSuchCORSConfiguration");
}

#[tokio::test]
async fn objects_survive_a_restart_of_a_persistent_stack() {
    let dir = TempDir::new("s3-restart");
    let options = || {
        let mut o = StackOptions::new(manifest("s3.toml"))
            .free_ports()
            .quiet_build();
        o.data = DataLocation::Dir(dir.to_path_buf());
        o
    };
    let stack = Stack::start(options()).await.expect("start");
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("keep")
        .send()
        .await
        .expect("create");
    s3.put_object()
        .bucket("keep")
        .key("k")
        .body(ByteStream::from_static(b"v1"))
        .send()
        .await
        .expect("put");
    s3.put_object()
        .bucket("keep")
        .key("k")
        .body(ByteStream::from_static(b"v2"))
        .metadata("n", "2")
        .send()
        .await
        .expect("overwrite");
    stack.shutdown().await;

    let stack = Stack::start(options()).await.expect("restart");
    let s3 = client(&stack).await;
    let got = s3
        .get_object()
        .bucket("keep")
        .key("k")
        .send()
        .await
        .expect("get");
    assert_eq!(
        got.metadata().and_then(|m| m.get("n")).map(String::as_str),
        Some("2")
    );
    assert_eq!(body(got).await, b"v2");
    let bodies = std::fs::read_dir(dir.join("s3/objects"))
        .expect("objects")
        .count();
    assert_eq!(bodies, 1, "the overwritten body is gone");
    stack.shutdown().await;
}

/// Reads the probe's S3 log until `count` lines are there (10 s at most).
async fn s3_log(path: &std::path::Path, count: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= count || std::time::Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn receive_all(sqs: &aws_sdk_sqs::Client, url: &str, count: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut bodies = Vec::new();
    while bodies.len() < count && std::time::Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        bodies.extend(
            out.messages()
                .iter()
                .filter_map(|m| m.body())
                .map(str::to_owned),
        );
    }
    bodies
}

#[tokio::test]
async fn notifications_reach_functions_queues_and_topics_with_s3_event_records() {
    let log_dir = TempDir::new("s3-notify");
    let log = log_dir.join("s3.log");
    let mut m = manifest("s3-notify.toml");
    if let Some(f) = m.functions.get_mut("thumbnail") {
        f.env
            .insert("PROBE_S3_LOG".into(), log.display().to_string());
    }
    let stack = Stack::start(StackOptions::new(m).free_ports().quiet_build())
        .await
        .expect("stack starts");
    let s3 = client(&stack).await;
    // The bucket comes from dev.toml, with its CORS rules.
    let cors = s3
        .get_bucket_cors()
        .bucket("photos")
        .send()
        .await
        .expect("cors");
    assert_eq!(
        cors.cors_rules()[0].allowed_methods(),
        ["PUT", "POST", "GET"]
    );

    // Matching: prefix uploads/, suffix .jpg; a space in the key is `+`.
    s3.put_object()
        .bucket("photos")
        .key("uploads/red flower.jpg")
        .body(ByteStream::from_static(b"jpeg"))
        .send()
        .await
        .expect("put");
    // Not matching the filters: nothing for the function.
    s3.put_object()
        .bucket("photos")
        .key("uploads/notes.txt")
        .body(ByteStream::from_static(b"txt"))
        .send()
        .await
        .expect("put");
    // A presigned upload triggers it too.
    let presigned = s3
        .put_object()
        .bucket("photos")
        .key("uploads/presigned.jpg")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).expect("config"))
        .await
        .expect("presign");
    let answer = http()
        .put(presigned.uri())
        .body("jpeg 2")
        .send()
        .await
        .expect("upload");
    assert_eq!(answer.status(), 200);

    let lines = s3_log(&log, 2).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    let records: Vec<&serde_json::Value> =
        lines.iter().map(|l| &l["event"]["Records"][0]).collect();
    let keys: Vec<&str> = records
        .iter()
        .filter_map(|r| r["s3"]["object"]["key"].as_str())
        .collect();
    assert!(keys.contains(&"uploads/red+flower.jpg"), "{keys:?}");
    assert!(keys.contains(&"uploads/presigned.jpg"), "{keys:?}");
    let first = records
        .iter()
        .find(|r| r["s3"]["object"]["key"] == "uploads/red+flower.jpg")
        .expect("record");
    assert_eq!(first["eventName"], "ObjectCreated:Put");
    assert_eq!(first["eventSource"], "aws:s3");
    assert_eq!(first["awsRegion"], "us-east-1");
    assert_eq!(first["s3"]["bucket"]["name"], "photos");
    assert_eq!(first["s3"]["bucket"]["arn"], "arn:aws:s3:::photos");
    assert_eq!(first["s3"]["object"]["size"], 4);
    assert_eq!(first["s3"]["object"]["eTag"], md5_hex(b"jpeg"));

    // Removals go to the queue; docs/ uploads to the topic (and its queue).
    s3.delete_object()
        .bucket("photos")
        .key("uploads/notes.txt")
        .send()
        .await
        .expect("delete");
    s3.put_object()
        .bucket("photos")
        .key("docs/manual.pdf")
        .body(ByteStream::from_static(b"%PDF"))
        .send()
        .await
        .expect("put");
    let sqs = aws_sdk_sqs::Client::new(&sdk::config(&stack.urls().aws).await);
    let queue_url = |name: &str| format!("{}/000000000000/{name}", stack.urls().aws);
    let removed = receive_all(&sqs, &queue_url("removed"), 1).await;
    assert_eq!(removed.len(), 1, "{removed:?}");
    let event: aws_lambda_events::event::s3::S3Event =
        serde_json::from_str(&removed[0]).expect("an S3Event in the queue");
    assert_eq!(
        event.records[0].event_name.as_deref(),
        Some("ObjectRemoved:Delete")
    );
    assert_eq!(
        event.records[0].s3.object.key.as_deref(),
        Some("uploads/notes.txt")
    );
    let docs = receive_all(&sqs, &queue_url("docs"), 1).await;
    assert_eq!(docs.len(), 1, "{docs:?}");
    let event: aws_lambda_events::event::s3::S3Event =
        serde_json::from_str(&docs[0]).expect("an S3Event through SNS");
    assert_eq!(
        event.records[0].s3.object.key.as_deref(),
        Some("docs/manual.pdf")
    );

    // A multipart completion is ObjectCreated:CompleteMultipartUpload.
    let id = s3
        .create_multipart_upload()
        .bucket("photos")
        .key("uploads/big.jpg")
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_owned();
    let part = s3
        .upload_part()
        .bucket("photos")
        .key("uploads/big.jpg")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from_static(b"only part"))
        .send()
        .await
        .expect("part");
    s3.complete_multipart_upload()
        .bucket("photos")
        .key("uploads/big.jpg")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().expect("etag"))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("complete");
    let lines = s3_log(&log, 3).await;
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[2]["event"]["Records"][0]["eventName"],
        "ObjectCreated:CompleteMultipartUpload"
    );
    stack.shutdown().await;
}

/// HMAC-SHA256 (RFC 2104), for signing a POST policy as a browser
/// upload's signer does.
fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let mut h = Sha256::new();
    h.update(&inner);
    h.update(data);
    let first = h.finalize();
    let mut h = Sha256::new();
    h.update(&outer);
    h.update(first);
    h.finalize().to_vec()
}

/// A presigned POST form (policy + SigV4 fields) and a multipart body.
fn post_form(
    bucket: &str,
    key: &str,
    conditions: serde_json::Value,
    file: &[u8],
    content_type: &str,
) -> (String, Vec<u8>) {
    use base64::Engine as _;
    let now = chrono::Utc::now();
    let date = now.format("%Y%m%d").to_string();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let credential = format!("AKIAANYKEY/{date}/us-east-1/s3/aws4_request");
    let mut all = conditions.as_array().cloned().unwrap_or_default();
    all.push(serde_json::json!({ "bucket": bucket }));
    all.push(serde_json::json!({ "x-amz-algorithm": "AWS4-HMAC-SHA256" }));
    all.push(serde_json::json!({ "x-amz-credential": credential }));
    all.push(serde_json::json!({ "x-amz-date": amz_date }));
    let policy = serde_json::json!({
        "expiration": (now + chrono::Duration::minutes(5)).format("%Y-%m-%dT%H:%M:%S.000Z").to_string(),
        "conditions": all,
    });
    let policy_b64 = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let secret = format!("AWS4{}", woocom_dev::s3::LOCAL_SECRET_ACCESS_KEY);
    let k = hmac(secret.as_bytes(), date.as_bytes());
    let k = hmac(&k, b"us-east-1");
    let k = hmac(&k, b"s3");
    let k = hmac(&k, b"aws4_request");
    let signature: String = hmac(&k, policy_b64.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let boundary = "woocomformboundary";
    let mut body = Vec::new();
    for (name, value) in [
        ("key", key),
        ("Content-Type", content_type),
        ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        ("x-amz-credential", credential.as_str()),
        ("x-amz-date", amz_date.as_str()),
        ("policy", policy_b64.as_str()),
        ("x-amz-signature", signature.as_str()),
    ] {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload.bin\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend(file);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn presigned_post_enforces_its_policy_conditions() {
    let stack = start().await;
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("forms")
        .send()
        .await
        .expect("create");
    let web = http();
    let url = format!("{}/forms", stack.urls().s3);
    let conditions = serde_json::json!([
        ["starts-with", "$key", "uploads/"],
        ["content-length-range", 1, 16],
        ["eq", "$Content-Type", "image/png"],
    ]);

    let (ct, body) = post_form(
        "forms",
        "uploads/a.png",
        conditions.clone(),
        b"png bytes",
        "image/png",
    );
    let answer = web
        .post(&url)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("post");
    let status = answer.status();
    assert!(
        status == 204 || status == 200,
        "{status}: {}",
        answer.text().await.unwrap_or_default()
    );
    let got = s3
        .get_object()
        .bucket("forms")
        .key("uploads/a.png")
        .send()
        .await
        .expect("get");
    assert_eq!(got.content_type(), Some("image/png"));
    assert_eq!(body_of(got).await, b"png bytes");

    for (key, file, content_type, why) in [
        ("other/a.png", &b"png"[..], "image/png", "starts-with"),
        (
            "uploads/big.png",
            &[b'x'; 64][..],
            "image/png",
            "content-length-range",
        ),
        ("uploads/a.html", &b"<p>"[..], "text/html", "eq"),
    ] {
        let (ct, body) = post_form("forms", key, conditions.clone(), file, content_type);
        let answer = web
            .post(&url)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .expect("post");
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        // S3's answers: a failed condition is 403 AccessDenied naming it; a
        // file outside content-length-range is 400 EntityTooLarge.
        let (want_status, want_text) = match why {
            "starts-with" => (
                403,
                r#"Policy Condition failed: ["starts-with", "$key", "uploads/"]"#,
            ),
            "eq" => (403, r#"Policy Condition failed: ["eq", "$"#),
            _ => (400, "<Code>EntityTooLarge</Code>"),
        };
        assert_eq!(status, want_status, "{why}: {text}");
        assert!(text.contains(want_text), "{why}: {text}");
        let e = s3
            .head_object()
            .bucket("forms")
            .key(key)
            .send()
            .await
            .expect_err(why);
        assert_eq!(status_of(&e), 404, "{why}: nothing stored");
    }
}

async fn body_of(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    body(out).await
}

fn status_of<E>(e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> u16 {
    status(e)
}

#[tokio::test]
async fn virtual_host_style_names_the_bucket_in_a_localhost_subdomain() {
    let stack = start().await;
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("vhost")
        .send()
        .await
        .expect("create");
    s3.put_object()
        .bucket("vhost")
        .key("a/b.txt")
        .body(ByteStream::from_static(b"virtual"))
        .send()
        .await
        .expect("put");
    // A client configured with `http://localhost:<port>` addresses the
    // bucket as `vhost.localhost:<port>`; the request goes to the listener
    // with that Host header (name resolution of *.localhost aside).
    let port = stack.urls().s3.rsplit(':').next().expect("port").to_owned();
    let config = sdk::loader(&format!("http://localhost:{port}"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "AKIAANYKEY",
            woocom_dev::s3::LOCAL_SECRET_ACCESS_KEY,
            None,
            None,
            "test",
        ))
        .load()
        .await;
    let vhost_client = aws_sdk_s3::Client::new(&config);
    let signed = vhost_client
        .get_object()
        .bucket("vhost")
        .key("a/b.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).expect("config"))
        .await
        .expect("presign");
    let uri: http::Uri = signed.uri().parse().expect("uri");
    assert_eq!(uri.host(), Some("vhost.localhost"), "virtual-host style");
    let direct = format!(
        "{}{}",
        stack.urls().s3,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let answer = http()
        .get(&direct)
        .header("host", format!("vhost.localhost:{port}"))
        .send()
        .await
        .expect("get");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), "virtual");
}

/// `woocom-dev up` on `manifest`, its S3 URL once the ready file is there.
fn up(manifest: &std::path::Path) -> (std::process::Child, String) {
    let ready = manifest.with_file_name("ready.json");
    let _ = std::fs::remove_file(&ready);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_woocom-dev"))
        .arg("-m")
        .arg(manifest)
        .args(["up", "--free-ports", "--no-frontend", "--ready-file"])
        .arg(&ready)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("woocom-dev starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        {
            return (child, v["s3"].as_str().expect("s3 url").to_owned());
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("woocom-dev up exited early: {status}");
        }
        assert!(std::time::Instant::now() < deadline, "no ready file");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn client_for(s3_url: &str) -> aws_sdk_s3::Client {
    let config = sdk::loader(s3_url)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "AKIAANYKEY",
            woocom_dev::s3::LOCAL_SECRET_ACCESS_KEY,
            None,
            None,
            "test",
        ))
        .load()
        .await;
    aws_sdk_s3::Client::new(&config)
}

#[tokio::test]
async fn acknowledged_puts_survive_kill_9() {
    let dir = TempDir::new("s3-kill9");
    let manifest = dir.join("dev.toml");
    std::fs::copy(common::fixture("s3.toml"), &manifest).expect("fixture");
    let (mut child, url) = up(&manifest);
    let s3 = client_for(&url).await;
    s3.create_bucket()
        .bucket("durable")
        .send()
        .await
        .expect("create");

    // Four writers overwrite and add keys (64 KiB each) while the server is
    // killed; what was acknowledged is recorded.
    let acknowledged =
        std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (s3, acknowledged) = (s3.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..10_000u32 {
                let key = format!("w{w}/k{}", i % 8);
                let body = format!("{w}-{i}-").repeat(8 * 1024).into_bytes();
                match s3
                    .put_object()
                    .bucket("durable")
                    .key(&key)
                    .body(ByteStream::from(body.clone()))
                    .send()
                    .await
                {
                    Ok(_) => {
                        acknowledged.lock().expect("lock").insert(key, i);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    for w in writers {
        let _ = w.await;
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 4,
        "writes were acknowledged before the kill"
    );

    let (mut child, url) = up(&manifest);
    let s3 = client_for(&url).await;
    for (key, acked) in &acknowledged {
        let got = s3
            .get_object()
            .bucket("durable")
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key} acknowledged, then lost: {e:?}"));
        let bytes = body(got).await;
        // The last acknowledged write, or one that raced the kill after it
        // (its answer lost): either way a whole body, never a torn one.
        let text = String::from_utf8(bytes).expect("utf-8");
        let unit = text.split_inclusive('-').take(2).collect::<String>();
        assert_eq!(text, unit.repeat(8 * 1024), "{key}: a whole body");
        let written: u32 = unit
            .trim_end_matches('-')
            .split('-')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("write number");
        assert!(
            written >= *acked,
            "{key}: write {written} read back, {acked} acknowledged"
        );
    }
    let data = dir.join(".woocom/data/s3-stack/s3");
    assert_eq!(
        std::fs::read_dir(data.join("tmp")).expect("tmp").count(),
        0,
        "unfinished bodies were swept"
    );
    let records = acknowledged.len();
    let bodies = std::fs::read_dir(data.join("objects"))
        .expect("objects")
        .count();
    assert!(
        bodies <= 32 && bodies >= records,
        "{bodies} bodies for {records} keys"
    );
    child.kill().expect("stop");
    let _ = child.wait();
}

// Regression: a GET streams a body file opened before its answer started;
// an overwrite that removes that file meanwhile must not cut it short.
#[tokio::test]
async fn a_get_in_flight_survives_an_overwrite_of_its_key() {
    let stack = start().await;
    let s3 = client(&stack).await;
    s3.create_bucket()
        .bucket("race")
        .send()
        .await
        .expect("create");
    let old = vec![b'o'; 8 * 1024 * 1024];
    s3.put_object()
        .bucket("race")
        .key("k")
        .body(ByteStream::from(old.clone()))
        .send()
        .await
        .expect("put");
    let reading = s3
        .get_object()
        .bucket("race")
        .key("k")
        .send()
        .await
        .expect("get");
    s3.put_object()
        .bucket("race")
        .key("k")
        .body(ByteStream::from_static(b"new"))
        .send()
        .await
        .expect("overwrite");
    assert_eq!(
        body(reading).await,
        old,
        "the answer started is finished whole"
    );
    let now = s3
        .get_object()
        .bucket("race")
        .key("k")
        .send()
        .await
        .expect("get");
    assert_eq!(body(now).await, b"new");
}

#[tokio::test]
async fn the_credentials_functions_get_sign_requests_and_presigned_urls() {
    // What the Lambda host gives every function, session token included.
    let stack = start().await;
    let config = sdk::loader(&stack.urls().s3)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "AKIAWOOCOMLOCAL00000",
            "woocom-local-secret",
            Some("woocom-local-session".to_owned()),
            None,
            "lambda",
        ))
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::new(&config);
    s3.create_bucket()
        .bucket("fn-bucket")
        .send()
        .await
        .expect("create");
    let put = s3
        .put_object()
        .bucket("fn-bucket")
        .key("k")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).expect("config"))
        .await
        .expect("presign");
    assert!(put.uri().contains("X-Amz-Security-Token"), "{}", put.uri());
    let answer = http()
        .put(put.uri())
        .body("from a browser")
        .send()
        .await
        .expect("put");
    assert_eq!(answer.status(), 200);
    let got = s3
        .get_object()
        .bucket("fn-bucket")
        .key("k")
        .send()
        .await
        .expect("get");
    assert_eq!(body(got).await, b"from a browser");
}
