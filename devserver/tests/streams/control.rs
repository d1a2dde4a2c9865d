//! What `woocom-dev streams` does: replay a range, status and the dead-letter queue.

use super::*;

#[tokio::test]
async fn replay_delivers_a_range_again_without_moving_the_checkpoint() {
    let dir = TempDir::new("streams-replay");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    for id in ["r1", "r2", "r3"] {
        put(&db, "old_image", &[("id", id)]).await;
    }
    let got = wait_for(&dir.0, "sink", "3 records", |b| {
        records_of(b, "old_image").len() >= 3
    })
    .await;
    let records = records_of(&got, "old_image");
    let seq = |r: &Value| {
        r["dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let aws = &stack.urls().aws;
    // The checkpoint moves after the last batch's answer: wait for it, so
    // the replay is what would move it.
    settled(aws, "sink-old_image").await;
    let before = get_json(format!("{aws}/_woocom/streams/status")).await;
    let response: Value = http()
        .post(format!("{aws}/_woocom/streams/replay"))
        .json(&serde_json::json!({
            "subscription": "sink-old_image",
            "from": seq(&records[1]),
            "to": seq(&records[2]),
        }))
        .send()
        .await
        .expect("replay")
        .json()
        .await
        .expect("json");
    assert_eq!(response["records"], 2, "{response:#}");
    let again = records_of(&batches(&dir.0, "sink"), "old_image");
    let ids: Vec<String> = again.iter().map(id_of).collect();
    assert_eq!(ids, ["r1", "r2", "r3", "r2", "r3"]);
    let after = get_json(format!("{aws}/_woocom/streams/status")).await;
    let checkpoint = |v: &Value| {
        v["subscriptions"]
            .as_array()
            .and_then(|l| l.iter().find(|m| m["name"] == "sink-old_image"))
            .map(|m| m["checkpoint"].clone())
    };
    assert_eq!(checkpoint(&before), checkpoint(&after));
    let bad = http()
        .post(format!("{aws}/_woocom/streams/replay"))
        .json(&serde_json::json!({"subscription": "nope", "from": "1", "to": "2"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(bad.status(), 404);
    stack.shutdown().await;
}

#[tokio::test]
async fn cli_shows_status_and_the_dead_letter_queue() {
    let dir = TempDir::new("streams-cli");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    put(&db, "bisected", &[("id", "p"), ("fail", "always")]).await;
    let aws = stack.urls().aws.clone();
    // Run on a blocking thread: the stack serves on this test's runtime.
    let cli = |args: &[&str]| {
        let aws = aws.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_woocom-dev"))
                    .args(["streams", "--endpoint", &aws])
                    .args(&args)
                    .output()
                    .expect("woocom-dev runs");
                (
                    out.status.success(),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                )
            })
            .await
            .expect("cli thread")
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let listing = loop {
        let (ok, text) = cli(&["dlq", "list"]).await;
        assert!(ok, "{text}");
        if text.contains("bisect-failures") {
            break text;
        }
        assert!(Instant::now() < deadline, "no entry listed: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(listing.contains("RetryAttemptsExhausted"), "{listing}");
    let id = listing.split_whitespace().next().expect("id").to_owned();
    let (ok, shown) = cli(&["dlq", "show", &id]).await;
    assert!(ok && shown.contains("DDBStreamBatchInfo"), "{shown}");
    let (ok, redriven) = cli(&["dlq", "redrive", &id]).await;
    assert!(!ok && redriven.contains("entry kept"), "{redriven}");
    let (ok, status) = cli(&["status"]).await;
    assert!(ok, "{status}");
    assert!(
        status.contains("bisect-bisected (bisected -> bisect)"),
        "{status}"
    );
    assert!(status.contains("1 in DLQ"), "{status}");
    stack.shutdown().await;
}
