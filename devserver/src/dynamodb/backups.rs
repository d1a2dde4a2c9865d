//! Continuous backups and point-in-time recovery settings, which the
//! engine does not keep: our own table beside the engine's
//! (`dynamodb-backups.json` beside the database, in memory for in-memory
//! stacks). Nothing is backed up locally; the settings are kept and
//! described as DynamoDB describes them, so tools that read and set them
//! (Terraform reads them for every table) work unchanged.
//! <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DescribeContinuousBackups.html>
//! <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateContinuousBackups.html>

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::wire::ApiError;

pub const BACKUPS_FILE: &str = "dynamodb-backups.json";

/// The recovery period DynamoDB uses when none is given, and its bounds.
const DEFAULT_RECOVERY_DAYS: i64 = 35;
const MAX_RECOVERY_DAYS: i64 = 35;

/// A table's point-in-time recovery, while it is on.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Recovery {
    /// When it was turned on (seconds since the epoch).
    since: f64,
    days: i64,
}

pub struct Backups {
    file: Option<PathBuf>,
    tables: Mutex<BTreeMap<String, Recovery>>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Backups {
    pub fn open(dir: Option<&Path>) -> Backups {
        let file = dir.map(|d| d.join(BACKUPS_FILE));
        let tables = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Backups {
            file,
            tables: Mutex::new(tables),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Recovery>> {
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self, tables: &BTreeMap<String, Recovery>) {
        let Some(file) = &self.file else { return };
        let result = serde_json::to_vec_pretty(tables)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let tmp = file.with_extension("json.tmp");
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(tmp, file)
            });
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot save the point-in-time recovery settings");
        }
    }

    /// A deleted table's settings go with it.
    pub fn forget(&self, table: &str) {
        let mut tables = self.lock();
        if tables.remove(table).is_some() {
            self.save(&tables);
        }
    }

    /// `ContinuousBackupsDescription` of an existing table.
    pub fn describe(&self, table: &str) -> Value {
        let recovery = match self.lock().get(table) {
            Some(r) => {
                // Restorable up to five minutes ago, from when it was on.
                let latest = (now() - 300.0).max(r.since);
                json!({
                    "PointInTimeRecoveryStatus": "ENABLED",
                    "RecoveryPeriodInDays": r.days,
                    "EarliestRestorableDateTime": r.since,
                    "LatestRestorableDateTime": latest,
                })
            }
            None => json!({"PointInTimeRecoveryStatus": "DISABLED"}),
        };
        json!({"ContinuousBackupsDescription": {
            "ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": recovery,
        }})
    }

    /// UpdateContinuousBackups on an existing table.
    pub fn update(&self, table: &str, request: &Value) -> Result<Value, ApiError> {
        let spec = match request.get("PointInTimeRecoverySpecification") {
            None | Some(Value::Null) => {
                return Err(ApiError::validation(
                    "1 validation error detected: Value null at 'pointInTimeRecoverySpecification' failed to satisfy constraint: Member must not be null",
                ));
            }
            Some(spec @ Value::Object(_)) => spec,
            Some(_) => return Err(ApiError::serialization(None)),
        };
        let enabled = match spec.get("PointInTimeRecoveryEnabled") {
            None | Some(Value::Null) => {
                return Err(ApiError::validation(
                    "1 validation error detected: Value null at 'pointInTimeRecoverySpecification.pointInTimeRecoveryEnabled' failed to satisfy constraint: Member must not be null",
                ));
            }
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::serialization(None)),
        };
        let days = match spec.get("RecoveryPeriodInDays") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let Some(days) = v.as_i64() else {
                    return Err(ApiError::serialization(None));
                };
                let bound = if days < 1 {
                    Some("greater than or equal to 1".to_owned())
                } else if days > MAX_RECOVERY_DAYS {
                    Some(format!("less than or equal to {MAX_RECOVERY_DAYS}"))
                } else {
                    None
                };
                if let Some(bound) = bound {
                    return Err(ApiError::validation(format!(
                        "1 validation error detected: Value '{days}' at 'pointInTimeRecoverySpecification.recoveryPeriodInDays' failed to satisfy constraint: Member must have value {bound}"
                    )));
                }
                Some(days)
            }
        };
        {
            let mut tables = self.lock();
            if enabled {
                let since = tables.get(table).map_or_else(now, |r| r.since);
                tables.insert(
                    table.to_owned(),
                    Recovery {
                        since,
                        days: days.unwrap_or(DEFAULT_RECOVERY_DAYS),
                    },
                );
            } else {
                if days.is_some() {
                    return Err(ApiError::validation(
                        "Invalid Request: Cannot specify RecoveryPeriodInDays when disabling point-in-time recovery.",
                    ));
                }
                tables.remove(table);
            }
            self.save(&tables);
        }
        Ok(self.describe(table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_is_off_until_turned_on_and_keeps_its_period() {
        let backups = Backups::open(None);
        assert_eq!(
            backups.describe("t")["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
                ["PointInTimeRecoveryStatus"],
            "DISABLED"
        );
        let on = backups
            .update(
                "t",
                &json!({"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true, "RecoveryPeriodInDays": 7}}),
            )
            .expect("on");
        let recovery = &on["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"];
        assert_eq!(recovery["PointInTimeRecoveryStatus"], "ENABLED");
        assert_eq!(recovery["RecoveryPeriodInDays"], 7);
        let err = backups
            .update(
                "t",
                &json!({"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": false, "RecoveryPeriodInDays": 7}}),
            )
            .expect_err("a period when turning off");
        assert_eq!(err.code(), "ValidationException");
        let err = backups
            .update(
                "t",
                &json!({"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true, "RecoveryPeriodInDays": 36}}),
            )
            .expect_err("36 days");
        assert!(
            err.message
                .as_deref()
                .is_some_and(|m| m.contains("less than or equal to 35"))
        );
        backups.forget("t");
        assert_eq!(
            backups.describe("t")["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
                ["PointInTimeRecoveryStatus"],
            "DISABLED"
        );
    }
}
