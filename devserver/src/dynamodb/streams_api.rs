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

use dynoxide::Database;
use dynoxide::actions::get_records::Record;
use serde_json::{Value, json};

use super::stream_history::{Epoch, History, iso_label, label_time};
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

/// A string member's length must lie in `min..=max` (when present; `None`
/// when it is absent).
fn check_string<'a>(
    request: &'a Value,
    field: &str,
    member: &str,
    min: usize,
    max: usize,
    required: bool,
) -> Result<Option<&'a str>, ApiError> {
    match request.get(field) {
        None | Some(Value::Null) if required => Err(ApiError::validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < min {
                Err(constraint(
                    s,
                    member,
                    &format!("have length greater than or equal to {min}"),
                ))
            } else if n > max {
                Err(constraint(
                    s,
                    member,
                    &format!("have length less than or equal to {max}"),
                ))
            } else {
                Ok(Some(s))
            }
        }
        Some(_) => Err(ApiError::serialization(None)),
    }
}

/// The iterator types GetShardIterator takes, in the model's order.
const ITERATOR_TYPES: [&str; 4] = [
    "TRIM_HORIZON",
    "LATEST",
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
];

/// Request checks AWS makes before looking anything up.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Operations_Amazon_DynamoDB_Streams.html>
pub fn check_request(operation: &str, request: &Value) -> Result<(), ApiError> {
    match operation {
        "ListStreams" => {
            check_limit(request, 100)?;
            check_string(request, "TableName", "tableName", 3, 255, false)?;
            check_stream_arn(
                request.get("ExclusiveStartStreamArn"),
                "exclusiveStartStreamArn",
                false,
            )
        }
        "DescribeStream" => {
            check_limit(request, 100)?;
            check_string(
                request,
                "ExclusiveStartShardId",
                "exclusiveStartShardId",
                28,
                65,
                false,
            )?;
            match request.get("ShardFilter") {
                None | Some(Value::Null) => {}
                Some(filter @ Value::Object(_)) => {
                    match filter.get("Type") {
                        None | Some(Value::Null) => {}
                        Some(Value::String(t)) if t == "CHILD_SHARDS" => {}
                        Some(Value::String(t)) => {
                            return Err(constraint(
                                t,
                                "shardFilter.type",
                                "satisfy enum value set: [CHILD_SHARDS]",
                            ));
                        }
                        Some(_) => return Err(ApiError::serialization(None)),
                    }
                    check_string(filter, "ShardId", "shardFilter.shardId", 28, 65, false)?;
                }
                Some(_) => return Err(ApiError::serialization(None)),
            }
            check_stream_arn(request.get("StreamArn"), "streamArn", true)
        }
        "GetShardIterator" => {
            check_string(request, "ShardId", "shardId", 28, 65, true)?;
            let kind = match request.get("ShardIteratorType") {
                None | Some(Value::Null) => {
                    return Err(ApiError::validation(
                        "1 validation error detected: Value null at 'shardIteratorType' failed to satisfy constraint: Member must not be null",
                    ));
                }
                Some(Value::String(t)) => t.as_str(),
                Some(_) => return Err(ApiError::serialization(None)),
            };
            if !ITERATOR_TYPES.contains(&kind) {
                return Err(constraint(
                    kind,
                    "shardIteratorType",
                    "satisfy enum value set: [TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER]",
                ));
            }
            check_string(request, "SequenceNumber", "sequenceNumber", 21, 40, false)?;
            check_stream_arn(request.get("StreamArn"), "streamArn", true)
        }
        "GetRecords" => {
            check_limit(request, 1000)?;
            let it = check_string(request, "ShardIterator", "shardIterator", 1, 2048, true)?
                .unwrap_or_default();
            if ShardIterator::decode(it).is_none() && decode_engine_iterator(it).is_none() {
                return Err(ApiError::validation("Invalid ShardIterator"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

// ---- the stack's names for things ------------------------------------------

/// The region and account the stack's ARNs carry (`[stack]` in dev.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub region: String,
    pub account: String,
}

impl Default for Identity {
    fn default() -> Identity {
        Identity {
            region: "us-east-1".into(),
            account: "000000000000".into(),
        }
    }
}

/// How the engine writes the region and account of its ARNs.
const ENGINE_ARN_PREFIX: &str = "arn:aws:dynamodb:dynoxide:000000000000:";
const ENGINE_KMS_PREFIX: &str = "arn:aws:kms:dynoxide:000000000000:";

impl Identity {
    pub fn table_arn(&self, table: &str) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{table}",
            self.region, self.account
        )
    }

    pub fn stream_arn(&self, epoch: &Epoch) -> String {
        format!("{}/stream/{}", self.table_arn(&epoch.table), epoch.label)
    }

    /// The engine's ARNs in `text` (a response body) with this region and
    /// account.
    pub fn rewrite_arns(&self, text: &str) -> String {
        text.replace(
            ENGINE_ARN_PREFIX,
            &format!("arn:aws:dynamodb:{}:{}:", self.region, self.account),
        )
        .replace(
            ENGINE_KMS_PREFIX,
            &format!("arn:aws:kms:{}:{}:", self.region, self.account),
        )
    }
}

// ---- shard iterators ---------------------------------------------------------

/// How long an iterator stays valid.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html>
const ITERATOR_LIFETIME_SECS: u64 = 15 * 60;

/// A shard iterator as we hand it out: the stream (table and label), the
/// shard, the stored sequence number read up to, and when it was issued.
#[derive(serde::Serialize, serde::Deserialize)]
struct ShardIterator {
    table: String,
    label: String,
    shard: String,
    after: i64,
    issued: u64,
}

impl ShardIterator {
    fn encode(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(text: &str) -> Option<ShardIterator> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// An iterator the engine issued (before this layer issued its own): read
/// as one on the table's current stream.
fn decode_engine_iterator(text: &str) -> Option<(String, i64)> {
    dynoxide::actions::get_shard_iterator::decode_shard_iterator(text)
        .map(|(table, _, position)| (table, position))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---- reading the engine --------------------------------------------------------

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

fn stream_not_found(arn: &str) -> ApiError {
    ApiError::resource_not_found(format!(
        "Requested resource not found: Stream: {arn} not found"
    ))
}

/// The table's current stream in the history; a stream the engine has and
/// the history lacks (a store written before the history was kept) is
/// recorded, holding every record of the table not claimed by an earlier
/// stream.
pub(super) fn current_epoch(
    db: &Database,
    history: &History,
    table: &str,
) -> Result<Option<Epoch>, ApiError> {
    let Some(meta) = db.get_table_metadata(table).map_err(internal)? else {
        return Ok(None);
    };
    if !meta.stream_enabled {
        return Ok(None);
    }
    let engine_label = meta.stream_label.clone().unwrap_or_default();
    if let Some(epoch) = history.by_engine_label(table, &engine_label) {
        return Ok(Some(epoch));
    }
    let after = history
        .latest(table)
        .map_or(0, |e| e.end.unwrap_or(e.after));
    let epoch = Epoch {
        table: table.to_owned(),
        label: iso_label(&engine_label),
        created: label_time(&engine_label),
        engine_label,
        view_type: meta
            .stream_view_type
            .clone()
            .unwrap_or_else(|| "NEW_AND_OLD_IMAGES".into()),
        after,
        end: None,
        key_schema: serde_json::from_str(&meta.key_schema).unwrap_or(Value::Null),
    };
    history.enable(epoch.clone());
    Ok(Some(epoch))
}

/// The stored sequence number of the table's newest stream record (0 when
/// it has none). The table's stream must be enabled in the engine.
pub(super) fn latest_position(db: &Database, table: &str) -> Result<i64, ApiError> {
    use dynoxide::actions::get_shard_iterator::{GetShardIteratorRequest, decode_shard_iterator};
    let response = db
        .get_shard_iterator(GetShardIteratorRequest {
            stream_arn: dynoxide::streams::stream_arn(table, "latest"),
            shard_id: dynoxide::streams::shard_id(table),
            shard_iterator_type: "LATEST".into(),
            sequence_number: None,
        })
        .map_err(internal)?;
    Ok(response
        .shard_iterator
        .as_deref()
        .and_then(decode_shard_iterator)
        .map_or(0, |(_, _, position)| position))
}

/// What one read of a table's shard gave.
pub struct StreamPage {
    /// The records, as their streams show them: no-op writes left out,
    /// images as each stream's view type keeps them.
    pub records: Vec<Record>,
    /// The stored sequence number of the last record read (shown or
    /// not): where the next read starts.
    pub last: i64,
    /// The engine had no more records (up to `end`).
    pub drained: bool,
}

/// The stored form of a record's public sequence number.
fn stored(record: &Record) -> i64 {
    let public: u128 = record.dynamodb.sequence_number.parse().unwrap_or(0);
    i64::try_from(public.saturating_sub(SEQUENCE_OFFSET)).unwrap_or(0)
}

/// The offset between the engine's stored and public sequence numbers.
const SEQUENCE_OFFSET: u128 = 100_000_000_000_000_000_000;

pub fn public_sequence(stored: i64) -> String {
    (SEQUENCE_OFFSET + u128::try_from(stored.max(0)).unwrap_or(0)).to_string()
}

/// A MODIFY that changed nothing. The engine records every write on a
/// table with both images (whatever view type the table asked for), so
/// this is always visible; DynamoDB writes no record for such a write
/// (ENGINE-GAPS.md §12).
fn is_no_op(record: &Record) -> bool {
    record.event_name == "MODIFY"
        && record.dynamodb.new_image.is_some()
        && record.dynamodb.new_image == record.dynamodb.old_image
}

/// A record as a stream of `view_type` shows it.
fn present(record: &mut Record, view_type: &str, region: &str) {
    let change = &mut record.dynamodb;
    match view_type {
        "KEYS_ONLY" => {
            change.new_image = None;
            change.old_image = None;
        }
        "NEW_IMAGE" => change.old_image = None,
        "OLD_IMAGE" => change.new_image = None,
        _ => {}
    }
    change.stream_view_type = view_type.to_owned();
    let size = |item: &Option<dynoxide::Item>| {
        item.as_ref()
            .map_or(0, |i| serde_json::to_string(i).map_or(0, |s| s.len()))
    };
    let keys = serde_json::to_string(&change.keys).map_or(0, |s| s.len());
    change.size_bytes = (keys + size(&change.new_image) + size(&change.old_image)) as i64;
    record.aws_region = region.to_owned();
}

/// Up to `limit` records of `table`'s shard after the stored sequence
/// number `after`, and not past `end`, each shown as the stream in
/// `epochs` that holds it shows it.
pub(super) fn read_records(
    db: &Database,
    table: &str,
    epochs: &[Epoch],
    region: &str,
    after: i64,
    end: Option<i64>,
    limit: usize,
) -> Result<StreamPage, ApiError> {
    use dynoxide::actions::get_records::GetRecordsRequest;
    use dynoxide::actions::get_shard_iterator::encode_shard_iterator;
    let mut page = StreamPage {
        records: Vec::new(),
        last: after,
        drained: false,
    };
    if end.is_some_and(|end| after >= end) {
        page.drained = true;
        return Ok(page);
    }
    let limit = limit.clamp(1, 1000);
    let got = db
        .get_records(GetRecordsRequest {
            shard_iterator: encode_shard_iterator(
                table,
                &dynoxide::streams::shard_id(table),
                after,
            ),
            limit: Some(limit),
        })
        .map_err(|e| ApiError::from_engine(&e))?;
    page.drained = got.records.len() < limit;
    for mut record in got.records {
        let position = stored(&record);
        if end.is_some_and(|end| position > end) {
            page.drained = true;
            break;
        }
        page.last = position;
        if is_no_op(&record) {
            continue;
        }
        let view_type = epochs
            .iter()
            .rev()
            .find(|e| e.holds(position))
            .map_or("NEW_AND_OLD_IMAGES", |e| e.view_type.as_str());
        present(&mut record, view_type, region);
        page.records.push(record);
    }
    if end.is_some_and(|end| page.last >= end) {
        page.drained = true;
    }
    Ok(page)
}

// ---- the four operations ---------------------------------------------------------

/// Every table's name.
fn table_names(db: &Database) -> Result<Vec<String>, ApiError> {
    use dynoxide::actions::list_tables::ListTablesRequest;
    let mut names = Vec::new();
    let mut start = None;
    loop {
        let page = db
            .list_tables(ListTablesRequest {
                exclusive_start_table_name: start.take(),
                limit: Some(100),
            })
            .map_err(internal)?;
        names.extend(page.table_names);
        match page.last_evaluated_table_name {
            Some(last) => start = Some(last),
            None => return Ok(names),
        }
    }
}

/// The stream an ARN names, with its table's epochs; not found unless the
/// table still exists.
fn find_stream(
    db: &Database,
    history: &History,
    arn: &str,
) -> Result<(Epoch, Vec<Epoch>), ApiError> {
    let parsed = parse_stream_arn(arn).ok_or_else(|| ApiError::validation("Invalid StreamArn"))?;
    current_epoch(db, history, parsed.table)?;
    let epoch = history
        .by_label(parsed.table, parsed.label)
        .ok_or_else(|| stream_not_found(arn))?;
    if db
        .get_table_metadata(parsed.table)
        .map_err(internal)?
        .is_none()
    {
        return Err(stream_not_found(arn));
    }
    let epochs = history
        .all()
        .into_iter()
        .filter(|e| e.table == epoch.table)
        .collect();
    Ok((epoch, epochs))
}

/// Serves a DynamoDB Streams operation (the request has passed
/// [`check_request`]).
pub(super) fn serve(
    db: &Database,
    history: &History,
    identity: &Identity,
    operation: &str,
    request: &Value,
) -> Result<Value, ApiError> {
    match operation {
        "ListStreams" => list_streams(db, history, identity, request),
        "DescribeStream" => describe_stream(db, history, identity, request),
        "GetShardIterator" => get_shard_iterator(db, history, request),
        "GetRecords" => get_records(db, history, identity, request),
        _ => Err(ApiError::unknown_operation()),
    }
}

/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_ListStreams.html>
fn list_streams(
    db: &Database,
    history: &History,
    identity: &Identity,
    request: &Value,
) -> Result<Value, ApiError> {
    let wanted = request.get("TableName").and_then(Value::as_str);
    let tables = table_names(db)?;
    for table in &tables {
        if wanted.is_none_or(|w| w == table) {
            current_epoch(db, history, table)?;
        }
    }
    let streams: Vec<Epoch> = history
        .all()
        .into_iter()
        .filter(|e| tables.contains(&e.table) && wanted.is_none_or(|w| w == e.table))
        .collect();
    let start = request
        .get("ExclusiveStartStreamArn")
        .and_then(Value::as_str)
        .and_then(|arn| streams.iter().position(|e| identity.stream_arn(e) == arn))
        .map_or(0, |i| i + 1);
    let limit = request
        .get("Limit")
        .and_then(Value::as_u64)
        .map_or(100, |l| l as usize);
    let page: Vec<&Epoch> = streams.iter().skip(start).take(limit).collect();
    let more = streams.len() > start + page.len();
    let mut response = json!({
        "Streams": page.iter().map(|e| json!({
            "StreamArn": identity.stream_arn(e),
            "TableName": e.table,
            "StreamLabel": e.label,
        })).collect::<Vec<_>>(),
    });
    if more && let Some(last) = page.last() {
        response["LastEvaluatedStreamArn"] = Value::String(identity.stream_arn(last));
    }
    Ok(response)
}

/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_DescribeStream.html>
fn describe_stream(
    db: &Database,
    history: &History,
    identity: &Identity,
    request: &Value,
) -> Result<Value, ApiError> {
    let arn = request["StreamArn"].as_str().unwrap_or_default();
    let (epoch, _) = find_stream(db, history, arn)?;
    let shard_id = epoch.shard_id();
    // One shard per stream; it has no children.
    let child_filter = request
        .pointer("/ShardFilter/Type")
        .and_then(Value::as_str)
        .is_some();
    let mut shards = Vec::new();
    let start = request.get("ExclusiveStartShardId").and_then(Value::as_str);
    if !child_filter && start.is_none_or(|s| shard_id.as_str() > s) {
        let mut range = json!({"StartingSequenceNumber": public_sequence(epoch.after + 1)});
        if let Some(end) = epoch.end {
            range["EndingSequenceNumber"] =
                Value::String(public_sequence(end.max(epoch.after + 1)));
        }
        shards.push(json!({"ShardId": shard_id, "SequenceNumberRange": range}));
    }
    let status = if epoch.end.is_none() {
        "ENABLED"
    } else {
        "DISABLED"
    };
    let mut description = json!({
        "StreamArn": identity.stream_arn(&epoch),
        "StreamLabel": epoch.label,
        "StreamStatus": status,
        "StreamViewType": epoch.view_type,
        "CreationRequestDateTime": epoch.created,
        "TableName": epoch.table,
        "Shards": shards,
    });
    if epoch.key_schema.is_array() {
        description["KeySchema"] = epoch.key_schema.clone();
    }
    Ok(json!({ "StreamDescription": description }))
}

/// Whether `shard` names `epoch`'s shard: its own id, or, for the table's
/// newest stream, the ids shown before streams had their own shards (the
/// engine's, and `shardId-00000000000000000001-<hash of the table>`).
fn is_shard_of(shard: &str, epoch: &Epoch, newest: bool) -> bool {
    if shard == epoch.shard_id() {
        return true;
    }
    if !newest {
        return false;
    }
    let mut hash: u32 = 0x811c_9dc5;
    for b in epoch.table.bytes() {
        hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    shard == format!("shardId-{:020}-{hash:08x}", 1)
        || shard == dynoxide::streams::shard_id(&epoch.table)
}

/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html>
fn get_shard_iterator(
    db: &Database,
    history: &History,
    request: &Value,
) -> Result<Value, ApiError> {
    let arn = request["StreamArn"].as_str().unwrap_or_default();
    let (epoch, epochs) = find_stream(db, history, arn)?;
    let shard = request["ShardId"].as_str().unwrap_or_default();
    let newest = epochs.last() == Some(&epoch);
    if !is_shard_of(shard, &epoch, newest) {
        return Err(ApiError::resource_not_found(
            "Requested resource not found: Shard does not exist",
        ));
    }
    let kind = request["ShardIteratorType"].as_str().unwrap_or_default();
    let sequence = request.get("SequenceNumber").and_then(Value::as_str);
    let after = match (kind, sequence) {
        ("TRIM_HORIZON" | "LATEST", Some(_)) => {
            return Err(ApiError::validation(format!(
                "Invalid ShardIteratorType: SequenceNumber must not be specified with ShardIteratorType {kind}"
            )));
        }
        ("TRIM_HORIZON", None) => epoch.after,
        ("LATEST", None) => match epoch.end {
            Some(end) => end,
            None => latest_position(db, &epoch.table)?.max(epoch.after),
        },
        (_, None) => {
            return Err(ApiError::validation(format!(
                "Invalid Request: SequenceNumber is required for ShardIteratorType {kind}"
            )));
        }
        (_, Some(number)) => {
            let stored = number
                .parse::<u128>()
                .ok()
                .and_then(|n| n.checked_sub(SEQUENCE_OFFSET))
                .and_then(|n| i64::try_from(n).ok())
                .filter(|n| epoch.holds(*n))
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "Invalid SequenceNumber {number} for shard {shard}: it is not in the shard's range"
                    ))
                })?;
            if kind == "AT_SEQUENCE_NUMBER" {
                stored - 1
            } else {
                stored
            }
        }
    };
    let iterator = ShardIterator {
        table: epoch.table.clone(),
        label: epoch.label.clone(),
        shard: epoch.shard_id(),
        after,
        issued: now_secs(),
    };
    Ok(json!({ "ShardIterator": iterator.encode() }))
}

/// <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html>
fn get_records(
    db: &Database,
    history: &History,
    identity: &Identity,
    request: &Value,
) -> Result<Value, ApiError> {
    let text = request["ShardIterator"].as_str().unwrap_or_default();
    let iterator = match ShardIterator::decode(text) {
        Some(it) => it,
        None => {
            let (table, after) = decode_engine_iterator(text)
                .ok_or_else(|| ApiError::validation("Invalid ShardIterator"))?;
            let epoch = current_epoch(db, history, &table)?
                .or_else(|| history.latest(&table))
                .ok_or_else(|| {
                    ApiError::resource_not_found(format!(
                        "Requested resource not found: Table: {table} not found"
                    ))
                })?;
            ShardIterator {
                shard: epoch.shard_id(),
                label: epoch.label,
                table,
                after,
                issued: now_secs(),
            }
        }
    };
    let now = now_secs();
    if now.saturating_sub(iterator.issued) > ITERATOR_LIFETIME_SECS {
        return Err(ApiError::expired_iterator(format!(
            "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {} milliseconds.",
            iterator.issued,
            now,
            ITERATOR_LIFETIME_SECS * 1000
        )));
    }
    let epochs: Vec<Epoch> = history
        .all()
        .into_iter()
        .filter(|e| e.table == iterator.table)
        .collect();
    let epoch = epochs
        .iter()
        .find(|e| e.label == iterator.label)
        .cloned()
        .ok_or_else(|| {
            ApiError::resource_not_found("Requested resource not found: Stream does not exist")
        })?;
    if db
        .get_table_metadata(&epoch.table)
        .map_err(internal)?
        .is_none()
    {
        return Err(ApiError::resource_not_found(
            "Requested resource not found: Stream does not exist",
        ));
    }
    let limit = request
        .get("Limit")
        .and_then(Value::as_u64)
        .map_or(1000, |l| l as usize);
    let page = read_records(
        db,
        &epoch.table,
        &epochs,
        &identity.region,
        iterator.after,
        epoch.end,
        limit,
    )?;
    let mut response = json!({
        "Records": serde_json::to_value(&page.records).map_err(internal)?,
    });
    // A closed shard that has been read to its end has no next iterator.
    if !(epoch.end.is_some() && page.drained) {
        let next = ShardIterator {
            after: page.last,
            issued: now,
            ..iterator
        };
        response["NextShardIterator"] = Value::String(next.encode());
    }
    Ok(response)
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
    fn get_shard_iterator_checks_shard_type_and_sequence_number_shapes() {
        let ok = json!({"StreamArn": ARN, "ShardId": "shardId-00000001795439712965-0a1b2c3d", "ShardIteratorType": "LATEST"});
        check_request("GetShardIterator", &ok).expect("valid");
        for (change, member) in [
            (json!({"ShardId": "short"}), "shardId"),
            (
                json!({"ShardIteratorType": "AT_TIMESTAMP"}),
                "shardIteratorType",
            ),
            (json!({"SequenceNumber": "12"}), "sequenceNumber"),
        ] {
            let mut request = ok.clone();
            for (k, v) in change.as_object().expect("object") {
                request[k] = v.clone();
            }
            let err = check_request("GetShardIterator", &request).expect_err(member);
            assert!(
                err.message
                    .as_deref()
                    .is_some_and(|m| m.contains(&format!("at '{member}'"))),
                "{err}"
            );
        }
    }

    #[test]
    fn views_keep_the_images_they_name_and_no_ops_are_seen() {
        let item: dynoxide::Item = [("pk".to_owned(), dynoxide::AttributeValue::S("a".into()))]
            .into_iter()
            .collect();
        let mut record = Record {
            event_name: "MODIFY".into(),
            ..Record::default()
        };
        record.dynamodb.new_image = Some(item.clone());
        record.dynamodb.old_image = Some(item);
        assert!(is_no_op(&record));
        present(&mut record, "NEW_IMAGE", "eu-west-1");
        assert!(record.dynamodb.old_image.is_none() && record.dynamodb.new_image.is_some());
        assert_eq!(record.aws_region, "eu-west-1");
        assert_eq!(record.dynamodb.stream_view_type, "NEW_IMAGE");
        present(&mut record, "KEYS_ONLY", "eu-west-1");
        assert!(record.dynamodb.new_image.is_none());
    }

    #[test]
    fn engine_arns_get_the_stacks_region_and_account() {
        let identity = Identity {
            region: "eu-west-1".into(),
            account: "123456789012".into(),
        };
        assert_eq!(
            identity
                .rewrite_arns(r#"{"TableArn":"arn:aws:dynamodb:dynoxide:000000000000:table/t"}"#),
            r#"{"TableArn":"arn:aws:dynamodb:eu-west-1:123456789012:table/t"}"#
        );
    }
}
