//! Lambda's error handling for stream batches: retries that block the shard, the on-failure record and redrive, bisect, partial batch failures, record age.

use super::*;

#[tokio::test]
async fn a_failed_batch_is_retried_and_blocks_later_records() {
    let dir = TempDir::new("streams-retry");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    put(&db, "retried", &[("id", "a"), ("fail", "once")]).await;
    put(&db, "retried", &[("id", "b")]).await;
    let got = wait_for(&dir.0, "retry", "a twice, then b", |b| {
        b.iter().flatten().any(|r| id_of(r) == "b")
    })
    .await;
    let ids: Vec<String> = got.iter().flatten().map(id_of).collect();
    // a failed once, was retried, and b never overtook it (one record per
    // batch: with both in one batch, b would be in a's failed batch).
    assert_eq!(ids.iter().filter(|i| *i == "a").count(), 2, "{ids:?}");
    assert_eq!(ids.last().map(String::as_str), Some("b"), "{ids:?}");
    let first_b = ids.iter().position(|i| i == "b").expect("b");
    assert!(ids[..first_b].iter().filter(|i| *i == "a").count() == 2);
    stack.shutdown().await;
}

#[tokio::test]
async fn exhausted_retries_go_to_the_dead_letter_queue_with_awss_failure_record_and_redrive() {
    let dir = TempDir::new("streams-dlq");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    put(&db, "dead", &[("id", "poison"), ("fail", "always")]).await;
    put(&db, "dead", &[("id", "next")]).await;
    let got = wait_for(&dir.0, "dlq", "next delivered", |b| {
        b.iter().flatten().any(|r| id_of(r) == "next")
    })
    .await;
    let poison_invocations = got
        .iter()
        .filter(|b| b.iter().any(|r| id_of(r) == "poison"))
        .count();
    assert_eq!(
        poison_invocations, 2,
        "1 attempt + maximum_retry_attempts 1"
    );

    let aws = &stack.urls().aws;
    let list = get_json(format!("{aws}/_woocom/streams/dlq")).await;
    let entries = list["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{list:#}");
    let id = entries[0]["id"].as_str().expect("id");
    let entry = get_json(format!("{aws}/_woocom/streams/dlq/{id}")).await;
    let failure = &entry["failure"];
    assert_eq!(
        failure["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(failure["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(
        failure["requestContext"]["functionArn"],
        "arn:aws:lambda:eu-west-1:000000000000:function:dlq"
    );
    assert_eq!(failure["responseContext"]["statusCode"], 200);
    assert_eq!(failure["responseContext"]["executedVersion"], "$LATEST");
    assert_eq!(failure["responseContext"]["functionError"], "Unhandled");
    assert_eq!(failure["version"], "1.0");
    assert!(
        failure["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let info = &failure["DDBStreamBatchInfo"];
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["startSequenceNumber"], info["endSequenceNumber"]);
    assert!(
        info["shardId"]
            .as_str()
            .is_some_and(|s| s.starts_with("shardId-"))
    );
    assert!(
        info["streamArn"]
            .as_str()
            .is_some_and(|a| a.contains(":table/dead/stream/"))
    );
    assert!(info["approximateArrivalOfFirstRecord"].is_string());
    assert_eq!(entry["records"][0]["dynamodb"]["Keys"]["id"]["S"], "poison");
    assert_eq!(entry["queue"], "dead-failures");

    // Redrive: still poison, so the entry stays.
    let redriven: Value = http()
        .post(format!("{aws}/_woocom/streams/dlq/{id}/redrive"))
        .send()
        .await
        .expect("redrive")
        .json()
        .await
        .expect("json");
    assert_eq!(redriven["succeeded"], false, "{redriven:#}");
    assert_eq!(redriven["functionError"], "Unhandled");
    let missing = http()
        .post(format!("{aws}/_woocom/streams/dlq/nope/redrive"))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 404);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_redriven_entry_that_succeeds_leaves_the_queue() {
    let dir = TempDir::new("streams-redrive");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    // `bisected` allows no retries: a record that fails once goes straight
    // to the queue, and succeeds when redriven.
    put(&db, "bisected", &[("id", "x"), ("fail", "once")]).await;
    let aws = stack.urls().aws.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let list = get_json(format!("{aws}/_woocom/streams/dlq")).await;
        if let Some(id) = list["entries"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "no DLQ entry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let redriven: Value = http()
        .post(format!("{aws}/_woocom/streams/dlq/{id}/redrive"))
        .send()
        .await
        .expect("redrive")
        .json()
        .await
        .expect("json");
    assert_eq!(redriven["succeeded"], true, "{redriven:#}");
    let list = get_json(format!("{aws}/_woocom/streams/dlq")).await;
    assert_eq!(list["entries"].as_array().map(Vec::len), Some(0));
    stack.shutdown().await;
}

#[tokio::test]
async fn bisect_isolates_the_poison_record() {
    let dir = TempDir::new("streams-bisect");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    // One transaction: the four records reach the shard together.
    tx_items(
        &db,
        "bisected",
        &[("a", None), ("b", Some("always")), ("c", None), ("d", None)],
    )
    .send()
    .await
    .expect("transaction");
    let got = wait_for(&dir.0, "bisect", "c and d delivered", |b| {
        b.iter()
            .any(|batch| batch.len() == 2 && id_of(&batch[1]) == "d")
    })
    .await;
    let shapes: Vec<Vec<String>> = got.iter().map(|b| b.iter().map(id_of).collect()).collect();
    let items = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    assert_eq!(
        shapes,
        [
            items(&["a", "b", "c", "d"]),
            items(&["a", "b"]),
            items(&["a"]),
            items(&["b"]),
            items(&["c", "d"]),
        ],
        "halves, then the poison record alone"
    );
    let aws = &stack.urls().aws;
    let list = get_json(format!("{aws}/_woocom/streams/dlq")).await;
    let entries = list["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{list:#}");
    assert_eq!(entries[0]["batchSize"], 1);
    assert_eq!(entries[0]["condition"], "RetryAttemptsExhausted");
    let entry = get_json(format!(
        "{aws}/_woocom/streams/dlq/{}",
        entries[0]["id"].as_str().unwrap_or_default()
    ))
    .await;
    assert_eq!(entry["records"][0]["dynamodb"]["Keys"]["id"]["S"], "b");
    stack.shutdown().await;
}

#[tokio::test]
async fn partial_batch_failure_resumes_from_the_first_failed_record() {
    let dir = TempDir::new("streams-partial");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    tx_items(
        &db,
        "partial",
        &[("a", None), ("b", Some("partial")), ("c", None)],
    )
    .send()
    .await
    .expect("transaction");
    let aws = stack.urls().aws.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let list = loop {
        let list = get_json(format!("{aws}/_woocom/streams/dlq")).await;
        if list["entries"].as_array().is_some_and(|l| !l.is_empty()) {
            break list;
        }
        assert!(Instant::now() < deadline, "no DLQ entry");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let got = batches(&dir.0, "partial");
    let shapes: Vec<Vec<String>> = got.iter().map(|b| b.iter().map(id_of).collect()).collect();
    assert_eq!(
        shapes,
        [vec!["a", "b", "c"], vec!["b", "c"]],
        "resumes at b"
    );
    // The shard moves on.
    put(&db, "partial", &[("id", "d")]).await;
    wait_for(&dir.0, "partial", "d delivered", |b| {
        b.last()
            .is_some_and(|batch| batch.len() == 1 && id_of(&batch[0]) == "d")
    })
    .await;
    let entry = get_json(format!(
        "{}/_woocom/streams/dlq/{}",
        stack.urls().aws,
        list["entries"][0]["id"].as_str().unwrap_or_default()
    ))
    .await;
    let failure = &entry["failure"];
    assert_eq!(failure["DDBStreamBatchInfo"]["batchSize"], 2);
    assert_eq!(failure["requestContext"]["approximateInvokeCount"], 2);
    assert!(
        failure["responseContext"].get("functionError").is_none(),
        "a partial failure is not a function error: {failure:#}"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn records_past_their_maximum_age_are_discarded_with_record_age_exceeded() {
    let dir = TempDir::new("streams-age");
    let stack = stack(&dir.0).await;
    let db = dynamodb(&stack.urls().aws).await;
    // Retries are unlimited: only the age limit (60 s, run 1000x fast)
    // unblocks the shard.
    put(&db, "aged", &[("id", "old"), ("fail", "always")]).await;
    put(&db, "aged", &[("id", "young")]).await;
    let aws = stack.urls().aws.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let entry = loop {
        let list = get_json(format!("{aws}/_woocom/streams/dlq")).await;
        if let Some(e) = list["entries"]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["queue"] == "aged-failures"))
        {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "nothing aged out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(entry["condition"], "RecordAgeExceeded");
    stack.shutdown().await;
}
