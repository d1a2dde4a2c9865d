//! DynamoDB Streams as AWS answers it (issue #18): ARNs with the stack's
//! region and account and an ISO-8601 label everywhere, DescribeStream's
//! paging and ShardFilter, GetShardIterator's checks, the
//! StreamSpecification rules of UpdateTable (a new ARN on each enabling,
//! old records on the old ARN only), and no record for a write that
//! changes nothing, whatever the view type.

use super::*;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use aws_sdk_dynamodbstreams::types::{ShardFilter, ShardFilterType, ShardIteratorType};

const TABLE_ARN_PREFIX: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/";

/// Whether `label` is DynamoDB's stream label: `2026-12-04T10:00:00.000`.
fn is_iso_label(label: &str) -> bool {
    label.len() == 23
        && chrono::NaiveDateTime::parse_from_str(label, "%Y-%m-%dT%H:%M:%S%.3f").is_ok()
}

fn spec(enabled: bool, view: Option<&str>) -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(enabled)
        .set_stream_view_type(view.map(StreamViewType::from))
        .build()
        .expect("spec")
}

async fn create_table(db: &aws_sdk_dynamodb::Client, name: &str, view: Option<&str>) {
    let mut request = db
        .create_table()
        .table_name(name)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .billing_mode(BillingMode::PayPerRequest);
    if let Some(view) = view {
        request = request.stream_specification(spec(true, Some(view)));
    }
    request.send().await.expect("create table");
}

async fn put(db: &aws_sdk_dynamodb::Client, table: &str, id: &str, v: i64) {
    db.put_item()
        .table_name(table)
        .item("id", s(id))
        .item("v", n(v))
        .send()
        .await
        .expect("put");
}

/// Every record of the stream's (only) shard, from TRIM_HORIZON until a
/// closed shard ends or an open one has nothing more.
async fn read_stream(
    streams: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
) -> Vec<aws_sdk_dynamodbstreams::types::Record> {
    let description = streams
        .describe_stream()
        .stream_arn(arn)
        .send()
        .await
        .expect("describe stream")
        .stream_description
        .expect("description");
    let shard = description.shards()[0]
        .shard_id()
        .expect("shard")
        .to_owned();
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator")
        .shard_iterator;
    let mut records = Vec::new();
    while let Some(it) = iterator.take() {
        let page = streams
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .expect("records");
        let empty = page.records().is_empty();
        records.extend(page.records().iter().cloned());
        iterator = page.next_shard_iterator;
        if empty {
            break;
        }
    }
    records
}

fn names(records: &[aws_sdk_dynamodbstreams::types::Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| r.event_name().map(|e| e.as_str().to_owned()))
        .collect()
}

#[tokio::test]
async fn arns_carry_the_stacks_region_and_account_and_an_iso_label_everywhere() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let streams = streams(&stack.urls().aws).await;

    let table = db
        .describe_table()
        .table_name("orders")
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    assert_eq!(
        table.table_arn(),
        Some(format!("{TABLE_ARN_PREFIX}orders").as_str())
    );
    for index in table.global_secondary_indexes() {
        let arn = index.index_arn().unwrap_or_default();
        assert!(arn.starts_with(TABLE_ARN_PREFIX), "{arn}");
    }
    let label = table.latest_stream_label().expect("label").to_owned();
    assert!(is_iso_label(&label), "{label}");
    let arn = table.latest_stream_arn().expect("arn").to_owned();
    assert_eq!(arn, format!("{TABLE_ARN_PREFIX}orders/stream/{label}"));

    let listed = streams
        .list_streams()
        .table_name("orders")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.streams().len(), 1);
    assert_eq!(listed.streams()[0].stream_arn(), Some(arn.as_str()));
    assert_eq!(listed.streams()[0].stream_label(), Some(label.as_str()));

    let description = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("describe stream")
        .stream_description
        .expect("description");
    assert_eq!(description.stream_arn(), Some(arn.as_str()));
    assert_eq!(description.stream_label(), Some(label.as_str()));
    assert_eq!(description.key_schema().len(), 2, "the table's keys");

    // A new table's CreateTable answer has them too.
    let created = db
        .create_table()
        .table_name("fresh")
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(spec(true, Some("KEYS_ONLY")))
        .send()
        .await
        .expect("create")
        .table_description
        .expect("description");
    assert_eq!(
        created.table_arn(),
        Some(format!("{TABLE_ARN_PREFIX}fresh").as_str())
    );
    let label = created.latest_stream_label().expect("label");
    assert!(is_iso_label(label), "{label}");
    assert_eq!(
        created.latest_stream_arn(),
        Some(format!("{TABLE_ARN_PREFIX}fresh/stream/{label}").as_str())
    );
    assert_eq!(
        created
            .stream_specification()
            .and_then(|s| s.stream_view_type())
            .map(|v| v.as_str()),
        Some("KEYS_ONLY")
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn describe_stream_pages_shards_and_filters_child_shards() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let streams = streams(&stack.urls().aws).await;
    let arn = db
        .describe_table()
        .table_name("products")
        .send()
        .await
        .expect("describe")
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("arn");
    let page = streams
        .describe_stream()
        .stream_arn(&arn)
        .limit(1)
        .send()
        .await
        .expect("limit 1")
        .stream_description
        .expect("description");
    assert_eq!(page.shards().len(), 1);
    assert_eq!(page.last_evaluated_shard_id(), None, "no more shards");
    let shard = page.shards()[0].shard_id().expect("id").to_owned();

    // The last shard's id as the start gives no shards.
    let after = streams
        .describe_stream()
        .stream_arn(&arn)
        .exclusive_start_shard_id(&shard)
        .send()
        .await
        .expect("after the last")
        .stream_description
        .expect("description");
    assert!(after.shards().is_empty(), "{:?}", after.shards());

    // The shard has no children.
    let children = streams
        .describe_stream()
        .stream_arn(&arn)
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::ChildShards)
                .shard_id(&shard)
                .build(),
        )
        .send()
        .await
        .expect("child shards")
        .stream_description
        .expect("description");
    assert!(children.shards().is_empty(), "{:?}", children.shards());

    let err = streams
        .describe_stream()
        .stream_arn(&arn)
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::from("PARENT_SHARDS"))
                .shard_id(&shard)
                .build(),
        )
        .send()
        .await
        .expect_err("unknown filter type");
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(
        err.message()
            .unwrap_or_default()
            .contains("shardFilter.type"),
        "{err:?}"
    );
    let err = streams
        .describe_stream()
        .stream_arn(&arn)
        .exclusive_start_shard_id("shardId-1")
        .send()
        .await
        .expect_err("short shard id");
    assert_eq!(err.code(), Some("ValidationException"));
    stack.shutdown().await;
}

#[tokio::test]
async fn get_shard_iterator_refuses_unknown_shards_and_misused_sequence_numbers() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let streams = streams(&stack.urls().aws).await;
    put(&db, "keys_only", "a", 1).await;
    let arn = db
        .describe_table()
        .table_name("keys_only")
        .send()
        .await
        .expect("describe")
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("arn");
    let shard = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .expect("describe stream")
        .stream_description
        .expect("description")
        .shards()[0]
        .shard_id()
        .expect("id")
        .to_owned();
    let records = read_stream(&streams, &arn).await;
    let sequence = records[0]
        .dynamodb()
        .and_then(|d| d.sequence_number())
        .expect("sequence number")
        .to_owned();
    let iterator = |shard: &str, kind: ShardIteratorType, sequence: Option<&str>| {
        streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_sequence_number(sequence.map(str::to_owned))
            .send()
    };

    let err = iterator(
        "shardId-00000000000000000099-0badf00d",
        ShardIteratorType::TrimHorizon,
        None,
    )
    .await
    .expect_err("unknown shard");
    assert_eq!(err.code(), Some("ResourceNotFoundException"), "{err:?}");

    for kind in [
        ShardIteratorType::AtSequenceNumber,
        ShardIteratorType::AfterSequenceNumber,
    ] {
        let err = iterator(&shard, kind.clone(), None)
            .await
            .expect_err("no sequence number");
        assert_eq!(err.code(), Some("ValidationException"), "{kind:?}");
    }
    let err = iterator(&shard, ShardIteratorType::TrimHorizon, Some(&sequence))
        .await
        .expect_err("a sequence number with TRIM_HORIZON");
    assert_eq!(err.code(), Some("ValidationException"));
    let err = iterator(&shard, ShardIteratorType::from("AT_TIMESTAMP"), None)
        .await
        .expect_err("unknown type");
    assert_eq!(err.code(), Some("ValidationException"));

    // AT the record's number reads it; AFTER it reads nothing.
    let at = iterator(&shard, ShardIteratorType::AtSequenceNumber, Some(&sequence))
        .await
        .expect("at")
        .shard_iterator
        .expect("iterator");
    let page = streams
        .get_records()
        .shard_iterator(at)
        .send()
        .await
        .expect("records");
    assert_eq!(page.records().len(), 1);
    let after = iterator(
        &shard,
        ShardIteratorType::AfterSequenceNumber,
        Some(&sequence),
    )
    .await
    .expect("after")
    .shard_iterator
    .expect("iterator");
    let page = streams
        .get_records()
        .shard_iterator(after)
        .send()
        .await
        .expect("records");
    assert!(page.records().is_empty());

    // A number of another stream's shard is refused.
    db.update_table()
        .table_name("keys_only")
        .stream_specification(spec(false, None))
        .send()
        .await
        .expect("disable");
    db.update_table()
        .table_name("keys_only")
        .stream_specification(spec(true, Some("KEYS_ONLY")))
        .send()
        .await
        .expect("enable again");
    let new_arn = db
        .describe_table()
        .table_name("keys_only")
        .send()
        .await
        .expect("describe")
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("arn");
    let new_shard = streams
        .describe_stream()
        .stream_arn(&new_arn)
        .send()
        .await
        .expect("describe new stream")
        .stream_description
        .expect("description")
        .shards()[0]
        .shard_id()
        .expect("id")
        .to_owned();
    assert_ne!(new_shard, shard);
    let err = streams
        .get_shard_iterator()
        .stream_arn(&new_arn)
        .shard_id(&new_shard)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .sequence_number(&sequence)
        .send()
        .await
        .expect_err("a number of the old shard");
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    // And the old shard's id on the new stream is unknown there.
    let err = streams
        .get_shard_iterator()
        .stream_arn(&new_arn)
        .shard_id(&shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect_err("the old shard on the new stream");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    stack.shutdown().await;
}

#[tokio::test]
async fn update_table_stream_rules_and_a_new_arn_for_each_enabling() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let streams = streams(&stack.urls().aws).await;
    create_table(&db, "cycled", Some("KEYS_ONLY")).await;
    put(&db, "cycled", "first", 1).await;

    let update = |spec: StreamSpecification| {
        db.update_table()
            .table_name("cycled")
            .stream_specification(spec)
            .send()
    };
    for (view, what) in [
        ("KEYS_ONLY", "enabling an enabled stream"),
        ("NEW_IMAGE", "changing the view type of an enabled stream"),
    ] {
        let err = update(spec(true, Some(view))).await.expect_err(what);
        assert_eq!(err.code(), Some("ValidationException"), "{what}");
        assert_eq!(
            err.message(),
            Some("Table already has an enabled stream: TableName: cycled"),
            "{what}"
        );
    }
    let err = update(spec(true, None))
        .await
        .expect_err("enabling without a view type");
    assert_eq!(err.code(), Some("ValidationException"));

    let old_arn = db
        .describe_table()
        .table_name("cycled")
        .send()
        .await
        .expect("describe")
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("arn");
    update(spec(false, None)).await.expect("disable");
    let err = update(spec(false, None))
        .await
        .expect_err("disabling a disabled stream");
    assert_eq!(
        err.message(),
        Some("Table has no stream to disable: TableName: cycled")
    );
    // A write while no stream is on is recorded nowhere.
    put(&db, "cycled", "unrecorded", 1).await;
    update(spec(true, Some("NEW_IMAGE")))
        .await
        .expect("enable again");
    put(&db, "cycled", "second", 2).await;

    let new_arn = db
        .describe_table()
        .table_name("cycled")
        .send()
        .await
        .expect("describe")
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("arn");
    assert_ne!(new_arn, old_arn, "each enabling gives a new stream ARN");

    let old = read_stream(&streams, &old_arn).await;
    let key = |r: &aws_sdk_dynamodbstreams::types::Record| match r
        .dynamodb()
        .and_then(|d| d.keys())
        .and_then(|k| k.get("id"))
    {
        Some(aws_sdk_dynamodbstreams::types::AttributeValue::S(id)) => id.clone(),
        other => panic!("key {other:?}"),
    };
    assert_eq!(old.iter().map(key).collect::<Vec<_>>(), ["first"]);
    assert!(old[0].dynamodb().and_then(|d| d.new_image()).is_none());
    let new = read_stream(&streams, &new_arn).await;
    assert_eq!(new.iter().map(key).collect::<Vec<_>>(), ["second"]);
    let change = new[0].dynamodb().expect("change");
    assert_eq!(
        change.stream_view_type().map(|v| v.as_str()),
        Some("NEW_IMAGE")
    );
    assert!(change.new_image().is_some());

    let old_description = streams
        .describe_stream()
        .stream_arn(&old_arn)
        .send()
        .await
        .expect("the old stream is still described")
        .stream_description
        .expect("description");
    assert_eq!(
        old_description.stream_status().map(|s| s.as_str()),
        Some("DISABLED")
    );
    let range = old_description.shards()[0]
        .sequence_number_range()
        .expect("range");
    assert!(
        range.ending_sequence_number().is_some(),
        "a disabled stream's shard is closed"
    );
    let listed = streams
        .list_streams()
        .table_name("cycled")
        .send()
        .await
        .expect("list");
    let arns: Vec<&str> = listed
        .streams()
        .iter()
        .filter_map(|s| s.stream_arn())
        .collect();
    assert_eq!(arns, [old_arn.as_str(), new_arn.as_str()]);

    // CreateTable refuses a view type DynamoDB does not have.
    let err = db
        .create_table()
        .table_name("bad_view")
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(spec(true, Some("ALL_IMAGES")))
        .send()
        .await
        .expect_err("bad view type");
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(
        err.message()
            .unwrap_or_default()
            .contains("streamSpecification.streamViewType"),
        "{err:?}"
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn writes_that_change_nothing_write_no_stream_record_for_any_view_type() {
    let stack = stack().await;
    let db = dynamodb(&stack.urls().aws).await;
    let streams = streams(&stack.urls().aws).await;
    for view in ["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"] {
        let table = format!("noop_{}", view.to_lowercase());
        create_table(&db, &table, Some(view)).await;
        put(&db, &table, "a", 1).await;
        put(&db, &table, "a", 1).await;
        db.update_item()
            .table_name(&table)
            .key("id", s("a"))
            .update_expression("SET v = :v")
            .expression_attribute_values(":v", n(1))
            .send()
            .await
            .expect("update to the same value");
        put(&db, &table, "a", 2).await;
        let arn = db
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .expect("describe")
            .table
            .and_then(|t| t.latest_stream_arn)
            .expect("arn");
        let records = read_stream(&streams, &arn).await;
        assert_eq!(names(&records), ["INSERT", "MODIFY"], "{view}");
        for r in &records {
            let change = r.dynamodb().expect("change");
            assert_eq!(
                change.stream_view_type().map(|v| v.as_str()),
                Some(view),
                "{view}"
            );
            assert_eq!(r.aws_region(), Some("us-east-1"));
        }
        let modify = records[1].dynamodb().expect("change");
        assert_eq!(
            modify.new_image().is_some(),
            view.starts_with("NEW"),
            "{view}"
        );
        assert_eq!(modify.old_image().is_some(), view.contains("OLD"), "{view}");
    }
    stack.shutdown().await;
}

/// Stores written before the stream history was kept have streams only the
/// engine knows, under its own ARN form: they are adopted (ISO label, the
/// stack's region) and the ARNs handed out before still name them.
#[tokio::test]
async fn streams_the_engine_made_alone_are_adopted_and_their_old_arns_still_work() {
    let stack = stack().await;
    let engine = stack.dynamodb().database();
    let create: dynoxide::actions::create_table::CreateTableRequest =
        serde_json::from_value(json!({
            "TableName": "legacy",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "KEYS_ONLY"}
        }))
        .expect("request");
    let created = engine.create_table(create).expect("engine create");
    let old_arn =
        serde_json::to_value(&created).expect("json")["TableDescription"]["LatestStreamArn"]
            .as_str()
            .expect("engine arn")
            .to_owned();
    assert!(old_arn.contains(":dynoxide:"), "{old_arn}");
    let db = dynamodb(&stack.urls().aws).await;
    put(&db, "legacy", "a", 1).await;

    let streams = streams(&stack.urls().aws).await;
    let listed = streams
        .list_streams()
        .table_name("legacy")
        .send()
        .await
        .expect("list");
    let summary = &listed.streams()[0];
    let label = summary.stream_label().expect("label");
    assert!(is_iso_label(label), "{label}");
    assert_eq!(
        summary.stream_arn(),
        Some(format!("{TABLE_ARN_PREFIX}legacy/stream/{label}").as_str())
    );
    // The engine's ARN names the same stream and reads the same records.
    let by_old = read_stream(&streams, &old_arn).await;
    let by_new = read_stream(&streams, summary.stream_arn().expect("arn")).await;
    assert_eq!(names(&by_old), ["INSERT"]);
    assert_eq!(
        by_old.iter().map(|r| r.event_id()).collect::<Vec<_>>(),
        by_new.iter().map(|r| r.event_id()).collect::<Vec<_>>()
    );
    stack.shutdown().await;
}
