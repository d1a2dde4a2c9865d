//! `[tables.<name>]` in `dev.toml`: the DynamoDB tables of the stack, created
//! or reconciled on `woocom-dev up`.
//!
//! ```toml
//! [tables.orders]
//! partition_key = { name = "pk", type = "S" }
//! sort_key = { name = "sk", type = "S" }
//! stream = "NEW_AND_OLD_IMAGES"      # KEYS_ONLY | NEW_IMAGE | OLD_IMAGE | NEW_AND_OLD_IMAGES
//! ttl_attribute = "expires_at"
//!
//! [tables.orders.global_indexes.by_customer]
//! partition_key = { name = "customer", type = "S" }
//! sort_key = { name = "placed_at", type = "N" }
//! projection = "ALL"                 # ALL | KEYS_ONLY | ["attr", ...] (INCLUDE)
//!
//! [tables.orders.local_indexes.by_status]
//! sort_key = { name = "status", type = "S" }
//!
//! [tables.orders.faults]             # fault injection, see `woocom-dev faults`
//! rate = 0.1
//! error = "ProvisionedThroughputExceededException"
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::ManifestError;

/// A table as declared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    pub name: String,
    /// Line of `[tables.<name>]`, for messages about the table.
    #[serde(skip)]
    pub line: usize,
    pub partition_key: KeyAttribute,
    pub sort_key: Option<KeyAttribute>,
    pub global_indexes: Vec<Index>,
    pub local_indexes: Vec<Index>,
    pub stream: Option<StreamViewType>,
    pub ttl_attribute: Option<String>,
    /// Local fault injection; not deployed.
    #[serde(skip)]
    pub faults: Option<TableFaults>,
    /// A JSON file of items (plain JSON objects, path relative to
    /// `dev.toml`) loaded when `woocom-dev up` creates the table and by
    /// `woocom-dev seed`; not deployed.
    #[serde(skip)]
    pub seed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAttribute {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: AttributeType,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum AttributeType {
    #[default]
    S,
    N,
    B,
}

impl AttributeType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::S => "S",
            AttributeType::N => "N",
            AttributeType::B => "B",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Index {
    pub name: String,
    /// For a local index, the table's partition key.
    pub partition_key: KeyAttribute,
    pub sort_key: Option<KeyAttribute>,
    pub projection: Projection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

/// As DynamoDB's `Projection`: `{"type": "ALL" | "KEYS_ONLY" | "INCLUDE",
/// "non_key_attributes": [...]}`, the shape Terraform's index blocks take.
impl Serialize for Projection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (kind, attributes): (&str, &[String]) = match self {
            Projection::All => ("ALL", &[]),
            Projection::KeysOnly => ("KEYS_ONLY", &[]),
            Projection::Include(a) => ("INCLUDE", a),
        };
        let mut st = s.serialize_struct("Projection", 2)?;
        st.serialize_field("type", kind)?;
        st.serialize_field("non_key_attributes", attributes)?;
        st.end()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum StreamViewType {
    #[serde(rename = "KEYS_ONLY")]
    KeysOnly,
    #[serde(rename = "NEW_IMAGE")]
    NewImage,
    #[serde(rename = "OLD_IMAGE")]
    OldImage,
    #[serde(rename = "NEW_AND_OLD_IMAGES")]
    NewAndOldImages,
}

impl StreamViewType {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamViewType::KeysOnly => "KEYS_ONLY",
            StreamViewType::NewImage => "NEW_IMAGE",
            StreamViewType::OldImage => "OLD_IMAGE",
            StreamViewType::NewAndOldImages => "NEW_AND_OLD_IMAGES",
        }
    }
}

/// Faults a table starts with (see `woocom-dev faults`).
#[derive(Debug, Clone, PartialEq)]
pub struct TableFaults {
    pub rate: f64,
    /// One of [`FAULT_ERRORS`].
    pub error: String,
    /// Only these operations fail (all when empty).
    pub operations: Vec<String>,
}

/// The errors fault injection can answer with.
pub const FAULT_ERRORS: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "InternalServerError",
];

/// DynamoDB's quotas on indexes per table.
/// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html>
const MAX_GLOBAL_INDEXES: usize = 20;
const MAX_LOCAL_INDEXES: usize = 5;

// ---- raw (as written) ----------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTable {
    partition_key: Spanned<KeyAttribute>,
    sort_key: Option<Spanned<KeyAttribute>>,
    #[serde(default)]
    global_indexes: BTreeMap<Spanned<String>, RawIndex>,
    #[serde(default)]
    local_indexes: BTreeMap<Spanned<String>, RawIndex>,
    stream: Option<Spanned<StreamViewType>>,
    ttl_attribute: Option<Spanned<String>>,
    faults: Option<Spanned<RawFaults>>,
    seed: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndex {
    partition_key: Option<Spanned<KeyAttribute>>,
    sort_key: Option<Spanned<KeyAttribute>>,
    #[serde(default)]
    projection: Option<Spanned<RawProjection>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawProjection {
    Kind(String),
    Include(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    rate: f64,
    error: String,
    #[serde(default)]
    operations: Vec<String>,
}

fn name_ok(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Validates the `[tables]` section. `at` locates a message in the file.
pub(super) fn parse(
    raw: BTreeMap<Spanned<String>, Spanned<RawTable>>,
    at: &dyn Fn(Range<usize>, String) -> ManifestError,
) -> Result<BTreeMap<String, Table>, ManifestError> {
    let mut tables = BTreeMap::new();
    for (name, table) in raw {
        let line = at(name.span(), String::new()).line;
        let table_name = name.get_ref().clone();
        if !name_ok(&table_name) {
            return Err(at(
                name.span(),
                format!(
                    "table name `{table_name}`: DynamoDB allows 3-255 letters, digits, `_`, `-` and `.`"
                ),
            ));
        }
        let table_span = table.span();
        let t = table.into_inner();

        // Every key attribute has one type across the table and its indexes.
        let mut types: BTreeMap<String, AttributeType> = BTreeMap::new();
        let mut declare = |key: &Spanned<KeyAttribute>| -> Result<KeyAttribute, ManifestError> {
            let k = key.get_ref();
            if k.name.is_empty() || k.name.len() > 255 {
                return Err(at(
                    key.span(),
                    format!("table `{table_name}`: key attribute names are 1-255 bytes"),
                ));
            }
            match types.get(&k.name) {
                Some(kind) if *kind != k.kind => Err(at(
                    key.span(),
                    format!(
                        "table `{table_name}`: attribute `{}` is declared as {} elsewhere and {} here; a key attribute has one type",
                        k.name,
                        kind.as_str(),
                        k.kind.as_str()
                    ),
                )),
                _ => {
                    types.insert(k.name.clone(), k.kind);
                    Ok(k.clone())
                }
            }
        };
        let partition_key = declare(&t.partition_key)?;
        let sort_key = t.sort_key.as_ref().map(&mut declare).transpose()?;

        let mut index_names: Vec<String> = Vec::new();
        let mut global_indexes = Vec::new();
        if t.global_indexes.len() > MAX_GLOBAL_INDEXES {
            return Err(at(
                table_span,
                format!(
                    "table `{table_name}`: DynamoDB allows {MAX_GLOBAL_INDEXES} global secondary indexes"
                ),
            ));
        }
        for (index_name, index) in &t.global_indexes {
            check_index_name(&table_name, index_name, &mut index_names, at)?;
            let Some(pk) = &index.partition_key else {
                return Err(at(
                    index_name.span(),
                    format!(
                        "table `{table_name}`: global index `{}` needs a partition_key",
                        index_name.get_ref()
                    ),
                ));
            };
            global_indexes.push(Index {
                name: index_name.get_ref().clone(),
                partition_key: declare(pk)?,
                sort_key: index.sort_key.as_ref().map(&mut declare).transpose()?,
                projection: projection(&table_name, index_name.get_ref(), &index.projection, at)?,
            });
        }

        let mut local_indexes = Vec::new();
        if t.local_indexes.len() > MAX_LOCAL_INDEXES {
            return Err(at(
                table_span,
                format!(
                    "table `{table_name}`: DynamoDB allows {MAX_LOCAL_INDEXES} local secondary indexes"
                ),
            ));
        }
        if !t.local_indexes.is_empty() && sort_key.is_none() {
            return Err(at(
                table_span,
                format!("table `{table_name}`: local indexes need the table to have a sort_key"),
            ));
        }
        for (index_name, index) in &t.local_indexes {
            check_index_name(&table_name, index_name, &mut index_names, at)?;
            if let Some(pk) = &index.partition_key
                && pk.get_ref() != &partition_key
            {
                return Err(at(
                    pk.span(),
                    format!(
                        "table `{table_name}`: local index `{}` shares the table's partition key `{}`; leave partition_key out",
                        index_name.get_ref(),
                        partition_key.name
                    ),
                ));
            }
            let Some(sk) = &index.sort_key else {
                return Err(at(
                    index_name.span(),
                    format!(
                        "table `{table_name}`: local index `{}` needs a sort_key",
                        index_name.get_ref()
                    ),
                ));
            };
            local_indexes.push(Index {
                name: index_name.get_ref().clone(),
                partition_key: partition_key.clone(),
                sort_key: Some(declare(sk)?),
                projection: projection(&table_name, index_name.get_ref(), &index.projection, at)?,
            });
        }

        let ttl_attribute = match t.ttl_attribute {
            Some(a) if a.get_ref().is_empty() || a.get_ref().len() > 255 => {
                return Err(at(
                    a.span(),
                    format!("table `{table_name}`: ttl_attribute must be 1-255 bytes"),
                ));
            }
            Some(a) => Some(a.into_inner()),
            None => None,
        };

        let faults = match t.faults {
            Some(f) => {
                let span = f.span();
                let f = f.into_inner();
                if !(f.rate.is_finite() && (0.0..=1.0).contains(&f.rate)) {
                    return Err(at(
                        span,
                        format!("table `{table_name}`: faults.rate must be between 0 and 1"),
                    ));
                }
                if !FAULT_ERRORS.contains(&f.error.as_str()) {
                    return Err(at(
                        span,
                        format!(
                            "table `{table_name}`: faults.error `{}` is not one of {}",
                            f.error,
                            FAULT_ERRORS.join(", ")
                        ),
                    ));
                }
                Some(TableFaults {
                    rate: f.rate,
                    error: f.error,
                    operations: f.operations,
                })
            }
            None => None,
        };

        let seed = match t.seed {
            Some(file) if !file.get_ref().ends_with(".json") => {
                return Err(at(
                    file.span(),
                    format!(
                        "table `{table_name}`: seed `{}` must be a .json file (an array of items)",
                        file.get_ref()
                    ),
                ));
            }
            Some(file) => Some(file.into_inner()),
            None => None,
        };

        tables.insert(
            table_name.clone(),
            Table {
                name: table_name,
                line,
                partition_key,
                sort_key,
                global_indexes,
                local_indexes,
                stream: t.stream.map(Spanned::into_inner),
                ttl_attribute,
                faults,
                seed,
            },
        );
    }
    Ok(tables)
}

fn check_index_name(
    table: &str,
    name: &Spanned<String>,
    seen: &mut Vec<String>,
    at: &dyn Fn(Range<usize>, String) -> ManifestError,
) -> Result<(), ManifestError> {
    if !name_ok(name.get_ref()) {
        return Err(at(
            name.span(),
            format!(
                "table `{table}`: index name `{}`: DynamoDB allows 3-255 letters, digits, `_`, `-` and `.`",
                name.get_ref()
            ),
        ));
    }
    if seen.contains(name.get_ref()) {
        return Err(at(
            name.span(),
            format!(
                "table `{table}`: index name `{}` is used twice",
                name.get_ref()
            ),
        ));
    }
    seen.push(name.get_ref().clone());
    Ok(())
}

fn projection(
    table: &str,
    index: &str,
    raw: &Option<Spanned<RawProjection>>,
    at: &dyn Fn(Range<usize>, String) -> ManifestError,
) -> Result<Projection, ManifestError> {
    let Some(raw) = raw else {
        return Ok(Projection::All);
    };
    match raw.get_ref() {
        RawProjection::Kind(k) if k == "ALL" => Ok(Projection::All),
        RawProjection::Kind(k) if k == "KEYS_ONLY" => Ok(Projection::KeysOnly),
        RawProjection::Include(attrs) if !attrs.is_empty() && attrs.len() <= 100 => {
            Ok(Projection::Include(attrs.clone()))
        }
        _ => Err(at(
            raw.span(),
            format!(
                "table `{table}`: index `{index}`: projection is \"ALL\", \"KEYS_ONLY\" or a list of 1-100 attribute names"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::Manifest;
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("dev.toml"), text)
    }

    const GOOD: &str = r#"
[tables.orders]
partition_key = { name = "pk", type = "S" }
sort_key = { name = "sk", type = "S" }
stream = "NEW_AND_OLD_IMAGES"
ttl_attribute = "expires_at"

[tables.orders.global_indexes.by_customer]
partition_key = { name = "customer" }
sort_key = { name = "placed_at", type = "N" }
projection = ["total"]

[tables.orders.local_indexes.by_status]
sort_key = { name = "status" }
projection = "KEYS_ONLY"

[tables.orders.faults]
rate = 0.5
error = "ThrottlingException"
"#;

    #[test]
    fn parses_keys_indexes_streams_ttl_and_faults() {
        let m = parse(GOOD).expect("valid");
        let t = &m.tables["orders"];
        assert_eq!(t.line, 2);
        assert_eq!(t.partition_key.name, "pk");
        assert_eq!(t.sort_key.as_ref().map(|k| k.name.as_str()), Some("sk"));
        assert_eq!(t.stream, Some(StreamViewType::NewAndOldImages));
        assert_eq!(t.ttl_attribute.as_deref(), Some("expires_at"));
        let gsi = &t.global_indexes[0];
        assert_eq!(gsi.name, "by_customer");
        assert_eq!(
            gsi.sort_key.as_ref().map(|k| k.kind),
            Some(AttributeType::N)
        );
        assert_eq!(gsi.projection, Projection::Include(vec!["total".into()]));
        let lsi = &t.local_indexes[0];
        assert_eq!(lsi.partition_key.name, "pk");
        assert_eq!(lsi.projection, Projection::KeysOnly);
        assert_eq!(t.faults.as_ref().map(|f| f.rate), Some(0.5));
    }

    #[test]
    fn bad_stream_view_type_is_a_located_error() {
        let err = parse(&GOOD.replace("NEW_AND_OLD_IMAGES", "BOTH")).expect_err("bad");
        assert_eq!(err.line, 5, "{err}");
    }

    #[test]
    fn conflicting_attribute_types_are_refused() {
        let text = GOOD.replace(r#"name = "customer" }"#, r#"name = "sk", type = "N" }"#);
        let err = parse(&text).expect_err("conflict");
        assert!(err.message.contains("attribute `sk`"), "{err}");
        assert_eq!(err.line, 9);
    }

    #[test]
    fn local_index_needs_table_sort_key() {
        let text = GOOD.replace("sort_key = { name = \"sk\", type = \"S\" }\n", "");
        let err = parse(&text).expect_err("lsi");
        assert!(err.message.contains("local indexes need"), "{err}");
    }

    #[test]
    fn unknown_fault_error_is_refused() {
        let err = parse(&GOOD.replace("\"ThrottlingException\"", "\"Slow\"")).expect_err("bad");
        assert!(err.message.contains("faults.error `Slow`"), "{err}");
    }

    #[test]
    fn short_table_name_is_refused() {
        let err = parse("[tables.ab]\npartition_key = { name = \"pk\" }\n").expect_err("name");
        assert!(err.message.contains("table name `ab`"), "{err}");
        assert_eq!(err.line, 1);
    }
}
