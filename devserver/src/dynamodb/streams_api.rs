//! DynamoDB Streams details the engine leaves out, closed in our layer
//! (each is also listed in ENGINE-GAPS.md):
//! - requests: `Limit` ranges, malformed stream ARNs and iterators are
//!   `ValidationException`s, as AWS answers them, not "not found";
//! - DescribeStream: every shard has a `SequenceNumberRange` with a
//!   `StartingSequenceNumber`, and an open shard no `EndingSequenceNumber`
//!   (a consumer such as the KCL treats a shard with one as closed);
//! - shard ids are 28 to 65 characters, as the API defines them (botocore
//!   refuses shorter ones before sending): the engine's
//!   `shardId-00000001-<table>` is shown as [`public_shard_id`] and mapped
//!   back on the way in.
//!
//! <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Operations_Amazon_DynamoDB_Streams.html>

use serde_json::Value;

use super::wire::ApiError;

/// A stream ARN's parts:
/// `arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>`.
pub struct StreamArn<'a> {
    pub table: &'a str,
    pub label: &'a str,
}

pub fn parse_stream_arn(arn: &str) -> Option<StreamArn<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (arn_word, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let ok = arn_word == "arn"
        && partition.starts_with("aws")
        && service == "dynamodb"
        && !region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return None;
    }
    let rest = resource.strip_prefix("table/")?;
    let (table, label) = rest.split_once("/stream/")?;
    let table_ok = (3..=255).contains(&table.len())
        && table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    (table_ok && !label.is_empty() && !label.contains('/')).then_some(StreamArn { table, label })
}

fn constraint(value: &str, member: &str, rule: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must {rule}"
    ))
}

fn check_limit(request: &Value, max: i64) -> Result<(), ApiError> {
    let Some(limit) = request.get("Limit") else {
        return Ok(());
    };
    let Some(n) = limit.as_i64() else {
        return Err(ApiError::serialization(None));
    };
    if n < 1 {
        return Err(constraint(
            &n.to_string(),
            "limit",
            "have value greater than or equal to 1",
        ));
    }
    if n > max {
        return Err(constraint(
            &n.to_string(),
            "limit",
            &format!("have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// Stream ARNs are 37 to 1024 characters and must be well formed.
fn check_stream_arn(value: Option<&Value>, member: &str, required: bool) -> Result<(), ApiError> {
    let arn = match value {
        None | Some(Value::Null) if !required => return Ok(()),
        None | Some(Value::Null) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
            )));
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ApiError::serialization(None)),
    };
    let chars = arn.chars().count();
    if chars < 37 {
        return Err(constraint(
            arn,
            member,
            "have length greater than or equal to 37",
        ));
    }
    if chars > 1024 {
        return Err(constraint(
            arn,
            member,
            "have length less than or equal to 1024",
        ));
    }
    if parse_stream_arn(arn).is_none() {
        return Err(ApiError::validation("Invalid StreamArn"));
    }
    Ok(())
}

/// Request checks AWS makes before looking anything up.
pub fn check_request(operation: &str, request: &Value) -> Result<(), ApiError> {
    match operation {
        "ListStreams" => {
            check_limit(request, 100)?;
            check_stream_arn(
                request.get("ExclusiveStartStreamArn"),
                "exclusiveStartStreamArn",
                false,
            )
        }
        "DescribeStream" => {
            check_limit(request, 100)?;
            check_stream_arn(request.get("StreamArn"), "streamArn", true)
        }
        "GetShardIterator" => check_stream_arn(request.get("StreamArn"), "streamArn", true),
        "GetRecords" => {
            check_limit(request, 1000)?;
            match request.get("ShardIterator") {
                None | Some(Value::Null) => Err(ApiError::validation(
                    "1 validation error detected: Value null at 'shardIterator' failed to satisfy constraint: Member must not be null",
                )),
                Some(Value::String(it)) if it.is_empty() => Err(constraint(
                    it,
                    "shardIterator",
                    "have length greater than or equal to 1",
                )),
                Some(Value::String(it)) if it.chars().count() > 2048 => Err(constraint(
                    it,
                    "shardIterator",
                    "have length less than or equal to 2048",
                )),
                Some(Value::String(it)) => {
                    if dynoxide::actions::get_shard_iterator::decode_shard_iterator(it).is_none() {
                        Err(ApiError::validation("Invalid ShardIterator"))
                    } else {
                        Ok(())
                    }
                }
                Some(_) => Err(ApiError::serialization(None)),
            }
        }
        _ => Ok(()),
    }
}

/// The id a table's one shard is shown under: AWS's form,
/// `shardId-<20 digits>-<8 hex>` (37 characters), stable per table.
pub fn public_shard_id(table: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in table.bytes() {
        hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("shardId-{:020}-{hash:08x}", 1)
}

/// Maps public shard ids in a request back to the engine's.
pub fn rewrite_request(operation: &str, request: &mut Value) {
    let field = match operation {
        "GetShardIterator" => "ShardId",
        "DescribeStream" => "ExclusiveStartShardId",
        _ => return,
    };
    let Some(table) = request
        .get("StreamArn")
        .and_then(Value::as_str)
        .and_then(parse_stream_arn)
        .map(|a| a.table.to_owned())
    else {
        return;
    };
    if let Some(id) = request.get_mut(field)
        && id.as_str() == Some(public_shard_id(&table).as_str())
    {
        *id = Value::String(dynoxide::streams::shard_id(&table));
    }
}

/// The first sequence number a stream can hold, in the engine's public
/// form (21 digits): what an empty shard starts at.
const FIRST_SEQUENCE_NUMBER: &str = "100000000000000000001";

/// Rewrites the engine's DescribeStream answer into AWS's shape.
pub fn fix_describe_stream(response: String) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(&response) else {
        return response;
    };
    let table = value
        .pointer("/StreamDescription/TableName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Some(shards) = value
        .pointer_mut("/StreamDescription/Shards")
        .and_then(Value::as_array_mut)
    else {
        return response;
    };
    for shard in shards {
        let Some(shard) = shard.as_object_mut() else {
            continue;
        };
        if shard.get("ShardId").and_then(Value::as_str)
            == Some(dynoxide::streams::shard_id(&table).as_str())
        {
            shard.insert("ShardId".into(), Value::String(public_shard_id(&table)));
        }
        let range = shard
            .entry("SequenceNumberRange")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(range) = range.as_object_mut() {
            range
                .entry("StartingSequenceNumber")
                .or_insert_with(|| Value::String(FIRST_SEQUENCE_NUMBER.to_owned()));
            // The engine keeps one shard per table, open for the table's life.
            range.remove("EndingSequenceNumber");
        }
    }
    serde_json::to_string(&value).unwrap_or(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str =
        "arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/2024-01-01T00:00:00.000";

    #[test]
    fn well_formed_stream_arn_parses() {
        let a = parse_stream_arn(ARN).expect("valid");
        assert_eq!(a.table, "orders");
        assert_eq!(a.label, "2024-01-01T00:00:00.000");
    }

    #[test]
    fn malformed_stream_arns_are_validation_errors() {
        for arn in [
            "fake-stream",
            "arn:aws:dynamodb:us-east-1:000000000000:table/orders",
            "arn:aws:s3:us-east-1:000000000000:table/orders/stream/2024-01-01T00:00",
            "arn:aws:dynamodb:us-east-1:12345:table/orders/stream/2024-01-01T00:00:00",
        ] {
            let err = check_request("DescribeStream", &json!({"StreamArn": arn})).expect_err(arn);
            assert_eq!(err.code(), "ValidationException", "{arn}");
        }
        check_request("DescribeStream", &json!({"StreamArn": ARN})).expect("valid");
    }

    #[test]
    fn list_streams_limit_must_be_1_to_100() {
        for bad in [0, -1, 101] {
            let err = check_request("ListStreams", &json!({"Limit": bad})).expect_err("limit");
            assert!(
                err.message
                    .as_deref()
                    .is_some_and(|m| m.contains("at 'limit'")),
                "{err}"
            );
        }
        check_request("ListStreams", &json!({"Limit": 100})).expect("100 is allowed");
    }

    #[test]
    fn shard_ids_are_shown_in_aws_form_and_mapped_back() {
        let public = public_shard_id("abc");
        assert!((28..=65).contains(&public.len()), "{public}");
        let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/abc/stream/label";
        let mut req = json!({"StreamArn": arn, "ShardId": public});
        rewrite_request("GetShardIterator", &mut req);
        assert_eq!(req["ShardId"], dynoxide::streams::shard_id("abc"));
        let engine = json!({"StreamDescription": {"TableName": "abc", "Shards": [
            {"ShardId": dynoxide::streams::shard_id("abc")}
        ]}});
        let fixed: Value =
            serde_json::from_str(&fix_describe_stream(engine.to_string())).expect("json");
        assert_eq!(
            fixed["StreamDescription"]["Shards"][0]["ShardId"],
            public_shard_id("abc")
        );
    }

    #[test]
    fn describe_stream_gets_a_starting_sequence_number_and_an_open_shard() {
        let engine = json!({"StreamDescription": {"Shards": [
            {"ShardId": "s", "SequenceNumberRange": {}},
            {"ShardId": "t", "SequenceNumberRange": {"StartingSequenceNumber": "100000000000000000005", "EndingSequenceNumber": "100000000000000000009"}}
        ]}})
        .to_string();
        let fixed: Value = serde_json::from_str(&fix_describe_stream(engine)).expect("json");
        let shards = &fixed["StreamDescription"]["Shards"];
        assert_eq!(
            shards[0]["SequenceNumberRange"]["StartingSequenceNumber"],
            FIRST_SEQUENCE_NUMBER
        );
        assert_eq!(
            shards[1]["SequenceNumberRange"]["StartingSequenceNumber"],
            "100000000000000000005"
        );
        assert!(
            shards[1]["SequenceNumberRange"]
                .get("EndingSequenceNumber")
                .is_none()
        );
    }
}
