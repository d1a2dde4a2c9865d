//! Fault injection: rules from dev.toml and from the CLI, answered with DynamoDB's throttling shapes.

use super::*;

/// Faults declared in dev.toml (`[tables.<name>.faults]`) are in force from
/// the start, for the operations they name only.
#[tokio::test]
async fn faults_declared_in_dev_toml_apply_from_the_start() {
    let text = r#"
[stack]
name = "faults-from-toml"

[tables.flaky]
partition_key = { name = "id", type = "S" }

[tables.flaky.faults]
rate = 1.0
error = "ThrottlingException"
operations = ["GetItem"]
"#;
    let manifest = woocom_dev::manifest::Manifest::parse("dev.toml".as_ref(), text)
        .expect("manifest is valid");
    let stack = woocom_dev::Stack::start(
        woocom_dev::StackOptions::new(manifest)
            .free_ports()
            .quiet_build(),
    )
    .await
    .expect("stack starts");
    let rules = stack.dynamodb().faults().list();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules["flaky"].rate, 1.0);

    let db = dynamodb(&stack.urls().aws).await;
    db.put_item()
        .table_name("flaky")
        .item("id", s("a"))
        .send()
        .await
        .expect("PutItem is not named by the rule");
    let err = db
        .get_item()
        .table_name("flaky")
        .key("id", s("a"))
        .send()
        .await
        .expect_err("GetItem is throttled");
    assert_eq!(err.code(), Some("ThrottlingException"));
    stack.shutdown().await;
}

#[tokio::test]
async fn fault_injection_answers_dynamodbs_throttling_shapes_and_sdk_retries_through() {
    let stack = stack().await;
    let aws = stack.urls().aws.clone();
    let http = http();
    let faults_url = format!("{aws}/_woocom/dynamodb/faults");
    let set = http
        .put(&faults_url)
        .json(&json!({"table": "products", "rate": 1.0, "error": "ProvisionedThroughputExceededException"}))
        .send()
        .await
        .expect("set");
    assert_eq!(set.status(), 200);

    let db = dynamodb(&aws).await;
    let err = db
        .get_item()
        .table_name("products")
        .key("sku", s("x"))
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(err.code(), Some("ProvisionedThroughputExceededException"));
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_provisioned_throughput_exceeded_exception())
    );
    // Other tables are untouched.
    db.get_item()
        .table_name("counters")
        .key("id", s("x"))
        .send()
        .await
        .expect("other table");

    // The exact wire shape.
    let (status, _, body) = raw(
        &aws,
        "DynamoDB_20120810.GetItem",
        json!({"TableName": "products", "Key": {"sku": {"S": "x"}}})
            .to_string()
            .into_bytes(),
        &[],
    )
    .await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        v["__type"],
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    );
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The level of configured provisioned throughput"))
    );

    for (error, status, code) in [
        ("ThrottlingException", 400, "ThrottlingException"),
        ("InternalServerError", 500, "InternalServerError"),
    ] {
        http.put(&faults_url)
            .json(&json!({"table": "*", "rate": 1.0, "error": error, "operations": ["PutItem"]}))
            .send()
            .await
            .expect("set");
        let (got, _, body) = raw(
            &aws,
            "DynamoDB_20120810.PutItem",
            json!({"TableName": "counters", "Item": {"id": {"S": "x"}}})
                .to_string()
                .into_bytes(),
            &[],
        )
        .await;
        assert_eq!(got, status, "{error}");
        assert!(error_type(&body).ends_with(&format!("#{code}")), "{error}");
    }

    // A share of failures: the SDK's standard retries get every call through.
    http.delete(&faults_url).send().await.expect("clear");
    http.put(&faults_url)
        .json(&json!({"table": "counters", "rate": 0.3, "error": "ThrottlingException"}))
        .send()
        .await
        .expect("set");
    let retrying = dynamodb_with_retries(&aws, 10).await;
    for i in 0..30 {
        retrying
            .put_item()
            .table_name("counters")
            .item("id", s(&format!("c{i}")))
            .send()
            .await
            .expect("retried through");
    }
    let listed: Value = http
        .get(&faults_url)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["faults"]["counters"]["rate"], 0.3);
    http.put(&faults_url)
        .json(&json!({"table": "products", "rate": 1.0, "error": "ThrottlingException"}))
        .send()
        .await
        .expect("set");
    http.delete(format!("{faults_url}?table=counters"))
        .send()
        .await
        .expect("clear one");
    db.get_item()
        .table_name("counters")
        .key("id", s("x"))
        .send()
        .await
        .expect("counters cleared");
    db.get_item()
        .table_name("products")
        .key("sku", s("x"))
        .send()
        .await
        .expect_err("products still faulty");
    http.delete(&faults_url).send().await.expect("clear all");
    db.get_item()
        .table_name("products")
        .key("sku", s("x"))
        .send()
        .await
        .expect("cleared");
    stack.shutdown().await;
}

// ---- fuzzing ------------------------------------------------------------------
