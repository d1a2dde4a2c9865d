//! The endpoint's protocol as DynamoDB's (issue #18): SigV4 shape checks,
//! DescribeEndpoints, continuous backups, TTL misuse, deflate, CORS and
//! the `GET /` health check.

use super::*;
use aws_sdk_dynamodb::types::{PointInTimeRecoverySpecification, TimeToLiveSpecification};

async fn post(endpoint: &str, headers: &[(&str, String)]) -> (u16, Value) {
    let mut request = http()
        .post(format!("{endpoint}/"))
        .header("x-amz-target", "DynamoDB_20120810.ListTables")
        .header("content-type", "application/x-amz-json-1.0")
        .body("{}");
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.expect("endpoint answers");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn requests_must_be_signed_with_a_well_formed_current_signature() {
    let stack = stack().await;
    let aws = stack.urls().aws.clone();
    let host = aws.trim_start_matches("http://").to_owned();

    let (status, body) = post(&aws, &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["__type"],
        "com.amazon.coral.service#MissingAuthenticationTokenException"
    );
    assert_eq!(body["message"], "Request is missing Authentication Token");

    let (status, body) = post(&aws, &[("authorization", "Bearer abc".into())]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["__type"],
        "com.amazon.coral.service#InvalidSignatureException"
    );

    let signed = |when: chrono::DateTime<chrono::Utc>, key: &str| {
        woocom_dev::dynamodb::sigv4::sign(&host, &[], b"{}", "us-east-1", key, "secret", when)
    };
    let old = chrono::Utc::now() - chrono::Duration::minutes(20);
    let (status, body) = post(&aws, &signed(old, "AKIDEXAMPLE")).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["__type"],
        "com.amazon.coral.service#InvalidSignatureException"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Signature expired: ")),
        "{body}"
    );
    // Any access key is accepted.
    for key in ["AKIDEXAMPLE", "local", "x"] {
        let (status, body) = post(&aws, &signed(chrono::Utc::now(), key)).await;
        assert_eq!(status, 200, "{key}: {body}");
    }
    // The SDKs sign, whatever their credentials.
    dynamodb(&aws)
        .await
        .list_tables()
        .send()
        .await
        .expect("an SDK's request");
    stack.shutdown().await;
}

#[tokio::test]
async fn describe_endpoints_names_this_endpoint() {
    let stack = stack().await;
    let aws = stack.urls().aws.clone();
    let db = dynamodb(&aws).await;
    let endpoints = db.describe_endpoints().send().await.expect("endpoints");
    let endpoint = &endpoints.endpoints()[0];
    assert_eq!(endpoint.address(), aws.trim_start_matches("http://"));
    assert_eq!(endpoint.cache_period_in_minutes(), 1440);
    stack.shutdown().await;
}

#[tokio::test]
async fn continuous_backups_are_described_and_point_in_time_recovery_switched() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let described = db
        .describe_continuous_backups()
        .table_name("orders")
        .send()
        .await
        .expect("describe")
        .continuous_backups_description
        .expect("description");
    assert_eq!(described.continuous_backups_status().as_str(), "ENABLED");
    assert_eq!(
        described
            .point_in_time_recovery_description()
            .and_then(|d| d.point_in_time_recovery_status())
            .map(|s| s.as_str()),
        Some("DISABLED")
    );
    let spec = |enabled: bool, days: Option<i32>| {
        PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(enabled)
            .set_recovery_period_in_days(days)
            .build()
            .expect("spec")
    };
    let updated = db
        .update_continuous_backups()
        .table_name("orders")
        .point_in_time_recovery_specification(spec(true, Some(7)))
        .send()
        .await
        .expect("enable")
        .continuous_backups_description
        .expect("description");
    let recovery = updated
        .point_in_time_recovery_description()
        .expect("recovery");
    assert_eq!(
        recovery.point_in_time_recovery_status().map(|s| s.as_str()),
        Some("ENABLED")
    );
    assert_eq!(recovery.recovery_period_in_days(), Some(7));
    assert!(recovery.earliest_restorable_date_time().is_some());
    let described = db
        .describe_continuous_backups()
        .table_name("orders")
        .send()
        .await
        .expect("describe")
        .continuous_backups_description
        .expect("description");
    assert_eq!(
        described
            .point_in_time_recovery_description()
            .and_then(|d| d.point_in_time_recovery_status())
            .map(|s| s.as_str()),
        Some("ENABLED")
    );
    let err = db
        .update_continuous_backups()
        .table_name("orders")
        .point_in_time_recovery_specification(spec(false, Some(7)))
        .send()
        .await
        .expect_err("a period when disabling");
    assert_eq!(err.code(), Some("ValidationException"));
    let err = db
        .describe_continuous_backups()
        .table_name("missing")
        .send()
        .await
        .expect_err("no such table");
    assert_eq!(err.code(), Some("TableNotFoundException"));
    stack.shutdown().await;
}

#[tokio::test]
async fn time_to_live_changes_that_change_nothing_are_refused() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let ttl = |table: &str, attribute: &str, enabled: bool| {
        db.update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attribute)
                    .enabled(enabled)
                    .build()
                    .expect("spec"),
            )
            .send()
    };
    // orders has TTL on `expires_at` (dev.toml).
    for (table, attribute, enabled, message) in [
        (
            "orders",
            "expires_at",
            true,
            "TimeToLive is already enabled",
        ),
        (
            "orders",
            "other",
            false,
            "TimeToLive is active on a different AttributeName: current AttributeName is expires_at",
        ),
        (
            "counters",
            "expires_at",
            false,
            "TimeToLive is already disabled",
        ),
    ] {
        let err = ttl(table, attribute, enabled).await.expect_err(message);
        assert_eq!(err.code(), Some("ValidationException"), "{message}");
        assert_eq!(err.message(), Some(message));
    }
    ttl("orders", "expires_at", false)
        .await
        .expect("disabling with the right attribute");
    ttl("counters", "ttl", true).await.expect("enabling");
    stack.shutdown().await;
}

#[tokio::test]
async fn deflate_bodies_are_read_and_replies_deflated_on_request() {
    let stack = stack().await;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(br#"{"TableName":"counters"}"#)
        .expect("write");
    let (status, headers, body) = raw(
        &stack.urls().aws,
        "DynamoDB_20120810.DescribeTable",
        enc.finish().expect("deflate"),
        &[
            ("content-encoding", "deflate"),
            ("accept-encoding", "deflate"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-encoding"], "deflate");
    let mut text = String::new();
    flate2::read::ZlibDecoder::new(&body[..])
        .read_to_string(&mut text)
        .expect("a deflated reply");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["Table"]["TableName"], "counters");

    let (status, _, body) = raw(
        &stack.urls().aws,
        "DynamoDB_20120810.DescribeTable",
        br#"{"TableName":"counters"}"#.to_vec(),
        &[("content-encoding", "br")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(error_type(&body).ends_with("#SerializationException"));
    stack.shutdown().await;
}

#[tokio::test]
async fn browsers_get_cors_and_get_root_is_a_health_check() {
    let stack = stack().await;
    let aws = stack.urls().aws.clone();
    let preflight = http()
        .request(reqwest::Method::OPTIONS, format!("{aws}/"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-amz-date,x-amz-target",
        )
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status(), 200);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .is_ok_and(|m| m.contains("POST"))
    );
    assert_eq!(
        h["access-control-allow-headers"],
        "authorization,content-type,x-amz-date,x-amz-target"
    );

    let (status, headers, _) = raw(
        &aws,
        "DynamoDB_20120810.ListTables",
        b"{}".to_vec(),
        &[("origin", "http://localhost:5173")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(
        headers["access-control-expose-headers"]
            .to_str()
            .is_ok_and(|e| e.contains("x-amzn-RequestId"))
    );

    let health = http().get(format!("{aws}/")).send().await.expect("GET /");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.text().await.expect("text"),
        "healthy: dynamodb.us-east-1.amazonaws.com "
    );
    stack.shutdown().await;
}
