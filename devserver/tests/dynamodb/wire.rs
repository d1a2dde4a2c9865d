//! The wire: gzip both ways, nesting and size limits, and fuzzed requests that must never take the server down.

use super::*;

#[tokio::test]
async fn gzip_requests_are_read_and_responses_compressed_on_request() {
    let stack = stack().await;
    let aws = &stack.urls().aws;
    let put = json!({"TableName": "products", "Item": {"sku": {"S": "gz"}, "blob": {"S": "x".repeat(10_000)}}});
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(put.to_string().as_bytes()).expect("gzip");
    let (status, _, body) = raw(
        aws,
        "DynamoDB_20120810.PutItem",
        enc.finish().expect("gzip"),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let get = json!({"TableName": "products", "Key": {"sku": {"S": "gz"}}}).to_string();
    let (status, headers, body) = raw(
        aws,
        "DynamoDB_20120810.GetItem",
        get.into_bytes(),
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-encoding").map(|v| v.as_bytes()),
        Some(&b"gzip"[..])
    );
    assert!(body.len() < 2_000, "compressed: {} bytes", body.len());
    // The CRC32 covers the bytes on the wire.
    let mut crc = flate2::Crc::new();
    crc.update(&body);
    assert_eq!(
        headers.get("x-amz-crc32").and_then(|v| v.to_str().ok()),
        Some(crc.sum().to_string().as_str())
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .expect("gunzip");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["Item"]["blob"]["S"].as_str().map(str::len), Some(10_000));

    let (status, _, body) = raw(
        aws,
        "DynamoDB_20120810.GetItem",
        b"definitely not gzip".to_vec(),
        &[("content-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(error_type(&body).ends_with("#SerializationException"));
    stack.shutdown().await;
}

fn nested_m(levels: usize) -> Value {
    let mut v = json!({"S": "leaf"});
    for _ in 0..levels {
        v = json!({"M": {"a": v}});
    }
    v
}

#[tokio::test]
async fn deep_nesting_and_oversized_input_get_validation_errors_and_the_server_lives() {
    let stack = stack().await;
    let aws = &stack.urls().aws;
    let db = dynamodb(aws).await;

    // 31 levels are stored; 32 and beyond are refused with DynamoDB's message.
    let ok = json!({"TableName": "products", "Item": {"sku": {"S": "deep"}, "doc": nested_m(31)}});
    let (status, _, body) = raw(
        aws,
        "DynamoDB_20120810.PutItem",
        ok.to_string().into_bytes(),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    for levels in [32, 40, 500] {
        let deep = json!({"TableName": "products", "Item": {"sku": {"S": "deep"}, "doc": nested_m(levels)}});
        let (status, _, body) = raw(
            aws,
            "DynamoDB_20120810.PutItem",
            deep.to_string().into_bytes(),
            &[],
        )
        .await;
        assert_eq!(status, 400, "{levels}");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert!(
            v["__type"]
                .as_str()
                .is_some_and(|t| t.ends_with("#ValidationException")),
            "{v}"
        );
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("Nesting Levels have exceeded supported limits")),
            "{v}"
        );
    }
    // Far past anything serde or the engine would follow.
    let hostile = format!(
        r#"{{"TableName":"products","Item":{{"sku":{}"#,
        "{\"M\":{\"a\":".repeat(100_000)
    );
    let (status, _, body) = raw(aws, "DynamoDB_20120810.PutItem", hostile.into_bytes(), &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        error_type(&body),
        "com.amazonaws.dynamodb.v20120810#ValidationException"
    );

    // An expression past 4 KB.
    let err = db
        .update_item()
        .table_name("products")
        .key("sku", s("deep"))
        .update_expression(format!("SET a = :v{}", ", a = :v".repeat(600)))
        .expression_attribute_values(":v", n(1))
        .send()
        .await
        .expect_err("long expression");
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(
        err.message()
            .is_some_and(|m| m.contains("Expression size has exceeded")),
        "{err:?}"
    );

    // An item past 400 KB.
    let err = db
        .put_item()
        .table_name("products")
        .item("sku", s("big"))
        .item("blob", s(&"x".repeat(401 * 1024)))
        .send()
        .await
        .expect_err("item too large");
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(
        err.message()
            .is_some_and(|m| m.contains("Item size has exceeded the maximum allowed size")),
        "{err:?}"
    );

    // A body past 16 MB.
    let (status, _, _) = raw(
        aws,
        "DynamoDB_20120810.PutItem",
        vec![b' '; 16 * 1024 * 1024 + 10],
        &[],
    )
    .await;
    assert_eq!(status, 413);

    let got = db
        .get_item()
        .table_name("products")
        .key("sku", s("deep"))
        .send()
        .await
        .expect("still serving");
    assert!(got.item().is_some());
    stack.shutdown().await;
}

/// xorshift64*: deterministic, so a failing run can be replayed by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const KEYS: &[&str] = &[
    "TableName",
    "Key",
    "Item",
    "ConditionExpression",
    "UpdateExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
    "ExpressionAttributeValues",
    "ExpressionAttributeNames",
    "Limit",
    "ExclusiveStartKey",
    "RequestItems",
    "TransactItems",
    "Statement",
    "StreamArn",
    "ShardIterator",
    "ReturnValues",
    "M",
    "L",
    "S",
    "N",
    "B",
    "SS",
    "NS",
    "BOOL",
    "NULL",
    "pk",
    "sku",
];

const OPERATIONS: &[&str] = &[
    "DynamoDB_20120810.PutItem",
    "DynamoDB_20120810.GetItem",
    "DynamoDB_20120810.UpdateItem",
    "DynamoDB_20120810.DeleteItem",
    "DynamoDB_20120810.Query",
    "DynamoDB_20120810.Scan",
    "DynamoDB_20120810.BatchWriteItem",
    "DynamoDB_20120810.BatchGetItem",
    "DynamoDB_20120810.TransactWriteItems",
    "DynamoDB_20120810.TransactGetItems",
    "DynamoDB_20120810.ExecuteStatement",
    "DynamoDB_20120810.CreateTable",
    "DynamoDB_20120810.UpdateTable",
    "DynamoDB_20120810.DescribeTable",
    "DynamoDBStreams_20120810.DescribeStream",
    "DynamoDBStreams_20120810.GetRecords",
    "DynamoDBStreams_20120810.GetShardIterator",
    "DynamoDBStreams_20120810.ListStreams",
    "DynamoDB_20120810.Nope",
];

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    let leaf = depth == 0 || rng.below(3) == 0;
    if leaf {
        return match rng.below(7) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => json!(rng.next() as i64),
            3 => json!(f64::from(rng.below(1000) as u32) / 7.0),
            4 => json!(*rng.pick(&[
                "products",
                "orders",
                "pk",
                "sku",
                ":v",
                "#n",
                "a = :v",
                "SET a = :v",
                "attribute_exists(pk)",
                "SELECT * FROM \"orders\""
            ])),
            5 => Value::String("é\u{0}\u{ffff}".repeat(rng.below(50) as usize)),
            _ => Value::String(String::new()),
        };
    }
    if rng.below(2) == 0 {
        Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        )
    } else {
        let mut map = serde_json::Map::new();
        for _ in 0..rng.below(5) {
            map.insert((*rng.pick(KEYS)).to_owned(), random_value(rng, depth - 1));
        }
        Value::Object(map)
    }
}

fn fuzz_body(rng: &mut Rng) -> (Vec<u8>, bool) {
    let gzip = rng.below(10) == 0;
    let body = match rng.below(9) {
        0 => (0..rng.below(2000)).map(|_| rng.next() as u8).collect(),
        1 => {
            let mut v = random_value(rng, 6).to_string().into_bytes();
            let cut = rng.below(v.len() as u64 + 1) as usize;
            v.truncate(cut);
            v
        }
        2 => {
            let depth = rng.below(200_000) as usize;
            let open = *rng.pick(&["[", "{\"M\":", "{\"L\":[", "{\"a\":"]);
            format!("{{\"TableName\":\"products\",\"Item\":{{\"sku\":{}", open.repeat(depth)).into_bytes()
        }
        3 => json!({"TableName": "products", "Item": {"sku": {"S": "x".repeat(rng.below(2_000_000) as usize)}}}).to_string().into_bytes(),
        4 => {
            let expr = rng.pick(&["(", "NOT ", "a.", "a[0]", "size(", "if_not_exists(a, "]).repeat(rng.below(3000) as usize);
            json!({"TableName": "products", "Key": {"sku": {"S": "x"}}, "UpdateExpression": format!("SET a = {expr}:v"), "ConditionExpression": expr, "ExpressionAttributeValues": {":v": {"N": "1"}}}).to_string().into_bytes()
        }
        5 => json!({"Statement": format!("SELECT * FROM \"products\" WHERE {}", rng.pick(&["(", "[", "{'a':", "NOT "]).repeat(rng.below(4000) as usize))}).to_string().into_bytes(),
        _ => random_value(rng, 8).to_string().into_bytes(),
    };
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = enc.write_all(&body);
        (enc.finish().unwrap_or_default(), true)
    } else {
        (body, false)
    }
}

/// Random and malformed requests (bad JSON, deep nesting, huge strings,
/// hostile expressions, bad gzip) from 8 clients at once: each gets an
/// AWS-shaped answer and the server keeps serving. Bounded: 3,200 requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fuzzed_requests_never_take_the_server_down() {
    let stack = stack().await;
    let aws = stack.urls().aws.clone();
    let seed = std::env::var("WOOCOM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    let mut tasks = Vec::new();
    for worker in 0..8u64 {
        let aws = aws.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(seed ^ (worker + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let client = http();
            for i in 0..400 {
                let target = *rng.pick(OPERATIONS);
                let (body, gzip) = fuzz_body(&mut rng);
                let mut req = client
                    .post(format!("{aws}/"))
                    .header("x-amz-target", target)
                    .body(body);
                if gzip {
                    req = req.header("content-encoding", "gzip");
                }
                let ours = target.starts_with("DynamoDB");
                let response = match req.send().await {
                    Ok(r) => r,
                    // Not a DynamoDB target: the AWS endpoint's own fallback
                    // may answer before reading a large body, and close.
                    Err(_) if !ours => continue,
                    Err(e) => {
                        panic!("seed {seed} worker {worker} request {i} ({target}): no answer: {e}")
                    }
                };
                let status = response.status().as_u16();
                let body = response.bytes().await.expect("body");
                if !ours {
                    assert!(status >= 400, "seed {seed}: {target} answered {status}");
                    continue;
                }
                assert!(
                    matches!(status, 200 | 400 | 413 | 500),
                    "seed {seed} worker {worker} request {i}: status {status}"
                );
                if status != 200 {
                    let v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                        panic!("seed {seed} worker {worker} request {i}: error body not JSON")
                    });
                    assert!(
                        v["__type"].as_str().is_some_and(|t| t.contains('#')),
                        "seed {seed}: {v}"
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("fuzz worker");
    }
    let health = http()
        .get(&stack.urls().health)
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let db = dynamodb(&aws).await;
    db.put_item()
        .table_name("products")
        .item("sku", s("after-fuzz"))
        .send()
        .await
        .expect("still serving");
    stack.shutdown().await;
}
