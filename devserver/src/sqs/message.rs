//! An SQS message as the queue keeps it, and the digests SQS answers with:
//! `MD5OfMessageBody` and `MD5OfMessageAttributes` (the SDKs that check
//! them, botocore among them, refuse an answer whose digest is wrong).
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html#sqs-attributes-md5-message-digest-calculation>

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A message attribute: `String`, `Number` or `Binary`, optionally with a
/// custom suffix (`String.uuid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeValue {
    pub data_type: String,
    pub string_value: Option<String>,
    /// Binary values, kept decoded.
    pub binary_value: Option<Vec<u8>>,
}

impl AttributeValue {
    /// A `String` attribute.
    pub fn string(value: String) -> AttributeValue {
        AttributeValue {
            data_type: "String".into(),
            string_value: Some(value),
            binary_value: None,
        }
    }

    fn is_binary(&self) -> bool {
        self.data_type.starts_with("Binary")
    }

    /// As the JSON protocol writes it (`ReceiveMessage`).
    pub fn to_wire(&self) -> Value {
        let mut v = Map::new();
        v.insert("DataType".into(), json!(self.data_type));
        if let Some(s) = &self.string_value {
            v.insert("StringValue".into(), json!(s));
        }
        if let Some(b) = &self.binary_value {
            v.insert("BinaryValue".into(), json!(BASE64.encode(b)));
        }
        Value::Object(v)
    }

    /// As Lambda's `SQSEvent` writes it (camelCase, with the list fields).
    pub fn to_event(&self) -> Value {
        json!({
            "stringValue": self.string_value,
            "binaryValue": self.binary_value.as_ref().map(|b| BASE64.encode(b)),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": self.data_type,
        })
    }

    /// Bytes the attribute counts against the message size limit.
    pub fn size(&self, name: &str) -> usize {
        name.len()
            + self.data_type.len()
            + self.string_value.as_ref().map_or(0, String::len)
            + self.binary_value.as_ref().map_or(0, Vec::len)
    }
}

/// One message in a queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// Position in its queue: receive order for standard and FIFO queues.
    pub seq: u64,
    pub id: String,
    pub body: String,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub trace_header: Option<String>,
    pub sender_id: String,
    pub sent_ms: i64,
    /// Receivable from this time (delay, or the end of its visibility
    /// timeout while in flight).
    pub visible_at_ms: i64,
    pub receive_count: u32,
    pub first_receive_ms: Option<i64>,
    /// The receipt handle of the latest receive, while in flight.
    pub receipt: Option<String>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub sequence_number: Option<String>,
    /// Set when a redrive policy moved it here.
    pub dead_letter_source_arn: Option<String>,
}

impl Message {
    pub fn in_flight(&self) -> bool {
        self.receipt.is_some()
    }

    pub fn md5_of_body(&self) -> String {
        md5_hex(self.body.as_bytes())
    }

    pub fn md5_of_attributes(&self) -> Option<String> {
        md5_of_attributes(&self.attributes)
    }
}

pub fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", md5::compute(bytes))
}

/// `MD5OfMessageAttributes`: for each attribute by name, the name, the
/// data type, a transport byte (1 string, 2 binary) and the value, each
/// length-prefixed (4 bytes, big-endian). `None` without attributes.
pub fn md5_of_attributes(attributes: &BTreeMap<String, AttributeValue>) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    let mut buf = Vec::new();
    let field = |bytes: &[u8], buf: &mut Vec<u8>| {
        buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        buf.extend_from_slice(bytes);
    };
    for (name, value) in attributes {
        field(name.as_bytes(), &mut buf);
        field(value.data_type.as_bytes(), &mut buf);
        if value.is_binary() {
            buf.push(2);
            field(value.binary_value.as_deref().unwrap_or_default(), &mut buf);
        } else {
            buf.push(1);
            field(
                value.string_value.as_deref().unwrap_or_default().as_bytes(),
                &mut buf,
            );
        }
    }
    Some(md5_hex(&buf))
}

/// `MD5OfMessageSystemAttributes` for an `AWSTraceHeader`.
pub fn md5_of_trace_header(trace: &str) -> String {
    let mut map = BTreeMap::new();
    map.insert(
        "AWSTraceHeader".to_owned(),
        AttributeValue {
            data_type: "String".into(),
            string_value: Some(trace.to_owned()),
            binary_value: None,
        },
    );
    md5_of_attributes(&map).unwrap_or_default()
}

/// SQS accepts only these characters in a body (XML's character set).
pub fn invalid_character(body: &str) -> Option<char> {
    body.chars().find(|&c| {
        !matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(v: &str) -> AttributeValue {
        AttributeValue::string(v.to_owned())
    }

    #[test]
    fn digests_are_the_ones_aws_documents() {
        // MD5 of "hello" as any md5sum prints it.
        assert_eq!(md5_hex(b"hello"), "5d41402abc4b2a76b9719d911017c592");
        // The attribute digest is built from its length-prefixed fields:
        // computed here by hand for {"a": String "b"}.
        let mut expected = Vec::new();
        for part in [&b"a"[..], b"String"] {
            expected.extend_from_slice(&(part.len() as u32).to_be_bytes());
            expected.extend_from_slice(part);
        }
        expected.push(1);
        expected.extend_from_slice(&1u32.to_be_bytes());
        expected.push(b'b');
        let map = BTreeMap::from([("a".to_owned(), string("b"))]);
        assert_eq!(md5_of_attributes(&map), Some(md5_hex(&expected)));
        assert_eq!(md5_of_attributes(&BTreeMap::new()), None);
    }

    #[test]
    fn bodies_outside_xmls_character_set_are_found() {
        assert_eq!(invalid_character("ok\tok\n"), None);
        assert_eq!(invalid_character("bad\u{0}"), Some('\u{0}'));
        assert_eq!(invalid_character("bad\u{FFFE}"), Some('\u{FFFE}'));
    }
}
