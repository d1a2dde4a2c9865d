//! The REST API emulation end to end: a real HTTP client, the in-process
//! stack on free ports, and the probe function reporting the event it got.
//! Expected values are what API Gateway sends and answers (see
//! shared/reference/aws-fidelity.md §3).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayProxyRequest;
use common::{http, probe_report, probe_stack};
use serde_json::{Value, json};

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn proxy_event_carries_every_field_api_gateway_fills() {
    let stack = probe_stack().await;
    let api = &stack.urls().api;
    let before = chrono::Utc::now().timestamp_millis();
    let response = http()
        .get(format!(
            "{api}/products/42?color=red&size=1&size=2&q=a+b%40c"
        ))
        .header("X-Custom", "one")
        .header("User-Agent", "woocom-test/1.0")
        .send()
        .await
        .expect("request");
    let request_id = response.headers()["x-amzn-requestid"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let apigw_id = response.headers()["x-amz-apigw-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        response.headers()["x-probe"],
        "yes",
        "function headers pass through"
    );
    let report = probe_report(response).await;
    let event = &report["event"];
    common::golden::assert_matches("example-apigw-rest-request.json", event);

    // Every top-level key of the payload format 1.0.
    let expected: BTreeSet<String> = [
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
        "body",
        "isBase64Encoded",
    ]
    .map(String::from)
    .into();
    assert_eq!(keys(event), expected);

    assert_eq!(event["resource"], "/products/{id}");
    assert_eq!(event["path"], "/products/42");
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["pathParameters"], json!({ "id": "42" }));
    assert_eq!(event["stageVariables"], json!({ "color": "blue" }));
    assert_eq!(
        event["queryStringParameters"]["size"], "2",
        "last value wins"
    );
    assert_eq!(
        event["queryStringParameters"]["q"], "a b@c",
        "decoded, + is a space"
    );
    assert_eq!(
        event["multiValueQueryStringParameters"]["size"],
        json!(["1", "2"])
    );
    assert_eq!(event["headers"]["X-Custom"], "one");
    assert_eq!(event["multiValueHeaders"]["X-Custom"], json!(["one"]));
    assert_eq!(event["headers"]["User-Agent"], "woocom-test/1.0");
    let port = stack
        .urls()
        .api
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next());
    assert_eq!(event["headers"]["X-Forwarded-Port"].as_str(), port);
    assert_eq!(event["headers"]["X-Forwarded-For"], "127.0.0.1");
    assert!(event["body"].is_null());
    assert_eq!(event["isBase64Encoded"], false);

    let ctx = &event["requestContext"];
    for key in [
        "accountId",
        "apiId",
        "domainName",
        "domainPrefix",
        "extendedRequestId",
        "httpMethod",
        "identity",
        "path",
        "protocol",
        "requestId",
        "requestTime",
        "requestTimeEpoch",
        "resourceId",
        "resourcePath",
        "stage",
        "deploymentId",
    ] {
        assert!(ctx.get(key).is_some(), "requestContext.{key} is present");
    }
    assert!(ctx.get("authorizer").is_none(), "no authorizer configured");
    assert_eq!(ctx["accountId"], "000000000000");
    assert_eq!(ctx["apiId"].as_str().map(str::len), Some(10));
    assert_eq!(ctx["domainPrefix"], ctx["apiId"]);
    assert_eq!(ctx["stage"], "test");
    assert_eq!(
        ctx["path"], "/test/products/42",
        "requestContext.path has the stage"
    );
    assert_eq!(ctx["resourcePath"], "/products/{id}");
    assert_eq!(ctx["protocol"], "HTTP/1.1");
    assert_eq!(ctx["requestId"], request_id.as_str());
    assert_eq!(ctx["extendedRequestId"], apigw_id.as_str());
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["identity"]["userAgent"], "woocom-test/1.0");
    assert!(ctx["identity"]["user"].is_null() && ctx["identity"]["caller"].is_null());
    assert_eq!(
        ctx["domainName"].as_str(),
        stack
            .urls()
            .api
            .strip_prefix("http://")
            .and_then(|s| s.split('/').next())
    );
    let epoch = ctx["requestTimeEpoch"].as_i64().expect("epoch ms");
    assert!(
        epoch >= before - 1000 && epoch <= before + 10_000,
        "{epoch} vs {before}"
    );
    let time = ctx["requestTime"].as_str().expect("time");
    assert!(
        chrono::DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z").is_ok(),
        "requestTime in CLF format: {time}"
    );

    // The real crates read it.
    let typed: ApiGatewayProxyRequest =
        serde_json::from_value(event.clone()).expect("aws_lambda_events parses the event");
    assert_eq!(
        typed.path_parameters.get("id").map(String::as_str),
        Some("42")
    );
    assert_eq!(report["lambda_http"]["variant"], "ApiGatewayV1");
    assert_eq!(report["lambda_http"]["method"], "GET");
    assert!(
        report["lambda_http"]["path_parameters"]
            .as_str()
            .is_some_and(|p| p.contains("\"id\"") && p.contains("\"42\"")),
        "{}",
        report["lambda_http"]
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn empty_collections_are_null_not_empty_objects() {
    let stack = probe_stack().await;
    let report = probe_report(
        http()
            .get(format!("{}/products/featured", stack.urls().api))
            .send()
            .await
            .expect("request"),
    )
    .await;
    let event = &report["event"];
    assert_eq!(
        event["resource"], "/products/featured",
        "literal beats {{id}}"
    );
    assert!(event["pathParameters"].is_null());
    assert!(event["queryStringParameters"].is_null());
    assert!(event["multiValueQueryStringParameters"].is_null());
    assert!(event["body"].is_null());
    stack.shutdown().await;
}

#[tokio::test]
async fn unmatched_route_returns_403_missing_authentication_token() {
    let stack = probe_stack().await;
    let api = &stack.urls().api;
    let client = http();
    for (method, path) in [
        (reqwest::Method::GET, "/nope"),
        (reqwest::Method::DELETE, "/products/42"),
        (reqwest::Method::GET, "/products"),
    ] {
        let r = client
            .request(method.clone(), format!("{api}{path}"))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 403, "{method} {path}");
        assert_eq!(
            r.headers()["x-amzn-errortype"],
            "MissingAuthenticationTokenException"
        );
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(
            r.text().await.expect("body"),
            r#"{"message":"Missing Authentication Token"}"#
        );
    }
    // Another stage is not this API.
    let base = api.trim_end_matches("/test");
    let r = client
        .get(format!("{base}/prod/products/1"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.expect("body"), r#"{"message":"Forbidden"}"#);
    stack.shutdown().await;
}

#[tokio::test]
async fn greedy_path_root_trailing_slash_and_encoding() {
    let stack = probe_stack().await;
    let api = &stack.urls().api;
    let client = http();

    let report = probe_report(
        client
            .put(format!("{api}/files/a/b/test%2Balias@gmail.com"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    let e = &report["event"];
    assert_eq!(e["resource"], "/files/{proxy+}");
    assert_eq!(e["httpMethod"], "PUT", "ANY takes every method");
    assert_eq!(
        e["path"], "/files/a/b/test%2Balias@gmail.com",
        "path stays encoded"
    );
    assert_eq!(e["pathParameters"]["proxy"], "a/b/test%2Balias@gmail.com");

    let e = probe_report(client.get(format!("{api}/")).send().await.expect("request")).await;
    assert_eq!(e["event"]["resource"], "/");
    assert_eq!(e["event"]["path"], "/");

    let e = probe_report(
        client
            .get(format!("{api}/products/7/"))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        e["event"]["path"], "/products/7/",
        "trailing slash kept in path"
    );
    assert_eq!(
        e["event"]["pathParameters"]["id"], "7",
        "but not in the parameter"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn text_bodies_pass_as_text_and_binary_media_types_as_base64() {
    let stack = probe_stack().await;
    let url = format!("{}/products", stack.urls().api);
    let client = http();
    let e = probe_report(
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(r#"{"name":"Mug"}"#)
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(e["event"]["body"], r#"{"name":"Mug"}"#);
    assert_eq!(e["event"]["isBase64Encoded"], false);

    let png = vec![0x89u8, b'P', b'N', b'G', 0, 1, 2, 255];
    let e = probe_report(
        client
            .post(&url)
            .header("content-type", "image/png")
            .body(png.clone())
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(e["event"]["isBase64Encoded"], true);
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(e["event"]["body"].as_str().expect("string body"))
        .expect("base64");
    assert_eq!(decoded, png);
    stack.shutdown().await;
}

/// Sends `response` for the probe to return verbatim.
async fn raw(
    stack: &woocom_dev::Stack,
    response: &Value,
    accept: Option<&str>,
) -> reqwest::Response {
    let mut req = http()
        .post(format!("{}/products?probe=raw", stack.urls().api))
        .body(response.to_string());
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    req.send().await.expect("request")
}

#[tokio::test]
async fn proxy_response_is_mapped_as_api_gateway_maps_it() {
    let stack = probe_stack().await;

    let r = raw(
        &stack,
        &json!({
            "statusCode": 201,
            "headers": { "x-solo": "a", "X-Both": "solo", "x-flag": true },
            "multiValueHeaders": { "x-both": ["m1", "m2"], "set-cookie": ["a=1", "b=2"] },
            "body": "created"
        }),
        None,
    )
    .await;
    assert_eq!(r.status(), 201);
    let h = r.headers();
    assert_eq!(h["x-solo"], "a");
    assert_eq!(
        h["x-both"], "m1, m2, solo",
        "multi values first, then single"
    );
    assert_eq!(h["x-flag"], "true");
    let cookies: Vec<_> = h.get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 2, "cookies stay separate header lines");
    assert_eq!(
        h["content-type"], "application/json",
        "API Gateway's default"
    );
    assert!(h.contains_key("x-amzn-requestid"));
    assert!(h.contains_key("x-amz-apigw-id"));
    assert!(h.contains_key("x-amzn-trace-id"));
    assert_eq!(r.text().await.expect("body"), "created");

    let r = raw(&stack, &json!({ "statusCode": 204 }), None).await;
    assert_eq!(r.status(), 204);

    let r = raw(&stack, &json!({ "statusCode": "202", "body": "" }), None).await;
    assert_eq!(r.status(), 202, "numeric string status");

    // Base64 bodies are decoded only when the Accept type is binary.
    let b64 = json!({ "statusCode": 200, "body": "aGk=", "isBase64Encoded": true,
        "headers": { "content-type": "image/png" } });
    let r = raw(&stack, &b64, None).await;
    assert_eq!(r.text().await.expect("body"), "aGk=");
    let r = raw(&stack, &b64, Some("image/png")).await;
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"hi");

    for malformed in [
        json!({}),
        json!("justAString"),
        json!({ "statusCode": "test" }),
        json!({ "statusCode": 200, "wrongValue": "value" }),
        json!({ "statusCode": 200, "body": { "not": "a string" } }),
        json!({ "statusCode": 200, "multiValueHeaders": { "a": "not a list" } }),
    ] {
        let r = raw(&stack, &malformed, None).await;
        assert_eq!(r.status(), 502, "{malformed} is malformed");
        assert_eq!(
            r.headers()["x-amzn-errortype"],
            "InternalServerErrorException"
        );
        assert_eq!(
            r.text().await.expect("body"),
            r#"{"message": "Internal server error"}"#
        );
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn function_errors_and_crashes_give_502_and_the_instance_is_replaced() {
    let stack = probe_stack().await;
    let api = &stack.urls().api;
    let client = http();
    let pid = |report: &Value| report["pid"].as_u64().expect("pid");

    // `single` runs one instance at most, so every request below meets the
    // same instance until it dies.
    let url = |q: &str| format!("{api}/single{q}");
    let first = probe_report(client.get(url("")).send().await.expect("r")).await;
    let again = probe_report(client.get(url("")).send().await.expect("r")).await;
    assert_eq!(pid(&first), pid(&again), "a warm instance is reused");

    for mode in ["panic", "error"] {
        let r = client
            .get(url(&format!("?probe={mode}")))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 502, "{mode}");
        assert_eq!(
            r.text().await.expect("body"),
            r#"{"message": "Internal server error"}"#
        );
    }
    let survived = probe_report(client.get(url("")).send().await.expect("r")).await;
    assert_eq!(
        pid(&survived),
        pid(&first),
        "a handler error does not end the instance"
    );

    let r = client
        .get(url("?probe=exit&code=3"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 502, "exit");
    let after = probe_report(client.get(url("")).send().await.expect("r")).await;
    assert_ne!(
        pid(&after),
        pid(&first),
        "the crashed instance was replaced"
    );

    // A function that fails during init fails the request that started it.
    let r = client
        .get(format!("{api}/broken"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 502);
    stack.shutdown().await;
}

#[tokio::test]
async fn function_timeout_is_a_502_and_integration_timeout_a_504() {
    let stack = probe_stack().await;
    let api = &stack.urls().api;
    let client = http();

    // probe: timeout 2 s. Lambda kills it; API Gateway reports a function error.
    let started = Instant::now();
    let r = client
        .get(format!("{api}/products/1?probe=sleep&ms=5000"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 502);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(4500),
        "killed at its 2 s timeout, took {took:?}"
    );

    // slow: timeout 10 s, but the integration gives up after 4 s.
    let r = client
        .get(format!("{api}/slow?probe=sleep&ms=6000"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 504);
    assert_eq!(
        r.text().await.expect("body"),
        r#"{"message": "Endpoint request timed out"}"#
    );

    // The killed instance is replaced and serves again.
    let r = client
        .get(format!("{api}/products/1"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    stack.shutdown().await;
}

#[tokio::test]
async fn request_body_over_10_mb_is_413() {
    let stack = probe_stack().await;
    let r = http()
        .post(format!("{}/products", stack.urls().api))
        .body(vec![b'a'; 10 * 1024 * 1024 + 1])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.text().await.expect("body"),
        r#"{"message":"Request Too Long"}"#
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn cors_preflight_is_answered_and_gateway_errors_carry_the_origin() {
    let stack = probe_stack().await;
    let api = &stack.urls().api;
    let client = http();
    for path in ["/products/42", "/files/x/y"] {
        let r = client
            .request(reqwest::Method::OPTIONS, format!("{api}{path}"))
            .header("origin", "http://localhost:5173")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200, "preflight {path}");
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "http://localhost:5173");
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .expect("ascii")
                .contains("POST")
        );
        assert!(
            h["access-control-allow-headers"]
                .to_str()
                .expect("ascii")
                .contains("Content-Type")
        );
        assert_eq!(h["access-control-max-age"], "600");
    }
    let r = client
        .get(format!("{api}/nope"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn concurrent_requests_scale_instances_up_to_reserved_concurrency_then_queue() {
    let stack = probe_stack().await;
    let api = stack.urls().api.clone();
    let client = http();
    // probe has concurrency 4: 8 requests of 400 ms need two rounds.
    let started = Instant::now();
    let requests = (0..8).map(|_| {
        let client = client.clone();
        let url = format!("{api}/products/1?probe=sleep&ms=400");
        tokio::spawn(async move { client.get(url).send().await.expect("request").status() })
    });
    for r in requests {
        assert_eq!(r.await.expect("task"), 200);
    }
    let took = started.elapsed();
    let instances = stack.lambda().instance_counts()["probe"];
    assert!(
        instances <= 4,
        "never more than the reserved concurrency: {instances}"
    );
    assert!(
        instances >= 2,
        "concurrent requests started more instances: {instances}"
    );
    assert!(
        took >= Duration::from_millis(800),
        "the rest queued: {took:?}"
    );
    stack.shutdown().await;
}
