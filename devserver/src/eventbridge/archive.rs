//! Archives and replays: a bus's events kept (all of them, or those an
//! archive's pattern matches) for `RetentionDays` (0: for ever), and
//! replayed to the bus's rules over a time range, which is how a developer
//! runs yesterday's events against today's code.
//! <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-archive.html>
//!
//! As EventBridge does it: a replayed event carries `replay-name`; it goes
//! to the rules of the archive's bus (all, or the `FilterArns` of the
//! replay's destination) whose pattern matches, and is not archived again;
//! the time range is the events' `time`; a replay moves from `STARTING`
//! through `RUNNING` to `COMPLETED` (or `CANCELLED`).
//!
//! Stored under `.woocom/data`: `eventbridge-archives.json` (archives and
//! replays) and one `eventbridge-archive-<name>.jsonl` per archive, one
//! event per line, appended as events arrive.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EventBridge, EventsError, Route, iso_time, now_ms};
use crate::dynamodb::DataLocation;
use crate::event_pattern::FilterPattern;

const META_FILE: &str = "eventbridge-archives.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Archive {
    pub name: String,
    /// The bus it records.
    pub bus: String,
    pub description: Option<String>,
    pub event_pattern: Option<String>,
    pub retention_days: u32,
    pub created_ms: i64,
    #[serde(skip)]
    pattern: Option<FilterPattern>,
    /// (the event's `time` in ms, the event), oldest first.
    #[serde(skip)]
    events: Vec<(i64, Arc<Value>)>,
    #[serde(skip)]
    size_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    pub name: String,
    pub archive: String,
    pub description: Option<String>,
    pub bus: String,
    pub filter_arns: Vec<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    /// STARTING, RUNNING, CANCELLING, COMPLETED, CANCELLED, FAILED.
    pub state: String,
    pub state_reason: Option<String>,
    pub replay_start_ms: i64,
    pub replay_end_ms: Option<i64>,
    pub last_replayed_ms: Option<i64>,
    pub replayed: u64,
}

#[derive(Default, Serialize, Deserialize)]
struct Meta {
    archives: Vec<Archive>,
    replays: Vec<Replay>,
}

/// The archives and replays of one stack.
pub struct Archives {
    dir: Option<PathBuf>,
    archives: BTreeMap<String, Archive>,
    replays: BTreeMap<String, Replay>,
}

/// What `DescribeArchive` and `ListArchives` say of one.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveInfo {
    pub name: String,
    pub arn: String,
    pub source_arn: String,
    pub description: Option<String>,
    pub event_pattern: Option<String>,
    pub retention_days: u32,
    pub event_count: usize,
    pub size_bytes: u64,
    pub created_ms: i64,
}

fn event_time_ms(event: &Value) -> i64 {
    event["time"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(now_ms, |t| t.timestamp_millis())
}

impl Archives {
    pub(super) fn open(location: &DataLocation) -> Result<Archives, String> {
        let dir = match location {
            DataLocation::Dir(dir) => Some(dir.clone()),
            DataLocation::Memory => None,
        };
        let mut archives = BTreeMap::new();
        let mut replays = BTreeMap::new();
        if let Some(dir) = &dir {
            let path = dir.join(META_FILE);
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let meta: Meta = serde_json::from_slice(&bytes)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    for mut a in meta.archives {
                        a.pattern = a
                            .event_pattern
                            .as_deref()
                            .and_then(|p| FilterPattern::parse(p).ok());
                        let file = dir.join(events_file(&a.name));
                        if let Ok(text) = std::fs::read_to_string(&file) {
                            for line in text.lines() {
                                // A line cut short by a crash is skipped.
                                if let Ok(event) = serde_json::from_str::<Value>(line) {
                                    a.size_bytes += line.len() as u64;
                                    a.events.push((event_time_ms(&event), Arc::new(event)));
                                }
                            }
                        }
                        archives.insert(a.name.clone(), a);
                    }
                    for mut r in meta.replays {
                        // A replay cut off by a stop does not resume.
                        if matches!(r.state.as_str(), "STARTING" | "RUNNING" | "CANCELLING") {
                            r.state = "FAILED".to_owned();
                            r.state_reason =
                                Some("The stack stopped during the replay.".to_owned());
                        }
                        replays.insert(r.name.clone(), r);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        Ok(Archives {
            dir,
            archives,
            replays,
        })
    }

    fn save(&self) -> Result<(), EventsError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let meta = Meta {
            archives: self.archives.values().cloned().collect(),
            replays: self.replays.values().cloned().collect(),
        };
        let path = dir.join(META_FILE);
        let tmp = path.with_extension("json.tmp");
        serde_json::to_vec_pretty(&meta)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                EventsError::new(
                    "InternalException",
                    format!("cannot save the archives to {}: {e}", path.display()),
                )
            })
    }
}

fn events_file(archive: &str) -> String {
    format!("eventbridge-archive-{archive}.jsonl")
}

impl EventBridge {
    fn lock_archives(&self) -> std::sync::MutexGuard<'_, Archives> {
        self.archives
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn archive_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:events:{}:{}:archive/{name}",
            self.region, self.account_id
        )
    }

    pub fn replay_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:events:{}:{}:replay/{name}",
            self.region, self.account_id
        )
    }

    fn archive_info(&self, a: &Archive) -> ArchiveInfo {
        ArchiveInfo {
            name: a.name.clone(),
            arn: self.archive_arn(&a.name),
            source_arn: self.bus_arn(&a.bus),
            description: a.description.clone(),
            event_pattern: a.event_pattern.clone(),
            retention_days: a.retention_days,
            event_count: a.events.len(),
            size_bytes: a.size_bytes,
            created_ms: a.created_ms,
        }
    }

    /// `CreateArchive` on the bus `source_arn` names.
    pub fn create_archive(
        &self,
        name: &str,
        source_arn: &str,
        description: Option<String>,
        event_pattern: Option<String>,
        retention_days: u32,
    ) -> Result<ArchiveInfo, EventsError> {
        if !crate::manifest::events::name_ok(name) || name.len() > 48 {
            return Err(EventsError::validation(format!(
                "Archive name {name} is not valid: 1-48 letters, digits, `.`, `-` and `_`."
            )));
        }
        let bus = self.bus_name(Some(source_arn));
        self.bus(&bus)?;
        let pattern = match &event_pattern {
            Some(p) => Some(FilterPattern::parse(p).map_err(|r| EventsError::pattern(&r))?),
            None => None,
        };
        let mut archives = self.lock_archives();
        if archives.archives.contains_key(name) {
            return Err(EventsError::new(
                "ResourceAlreadyExistsException",
                format!("Archive {name} already exists."),
            ));
        }
        let archive = Archive {
            name: name.to_owned(),
            bus,
            description,
            event_pattern,
            retention_days,
            created_ms: now_ms(),
            pattern,
            events: Vec::new(),
            size_bytes: 0,
        };
        let info = self.archive_info(&archive);
        archives.archives.insert(name.to_owned(), archive);
        archives.save()?;
        Ok(info)
    }

    pub fn describe_archive(&self, name: &str) -> Result<ArchiveInfo, EventsError> {
        let archives = self.lock_archives();
        let a = archives
            .archives
            .get(name)
            .ok_or_else(|| EventsError::not_found(format!("Archive {name} does not exist.")))?;
        Ok(self.archive_info(a))
    }

    pub fn list_archives(&self) -> Vec<ArchiveInfo> {
        let archives = self.lock_archives();
        archives
            .archives
            .values()
            .map(|a| self.archive_info(a))
            .collect()
    }

    /// `UpdateArchive`: description, pattern, retention.
    pub fn update_archive(
        &self,
        name: &str,
        description: Option<String>,
        event_pattern: Option<String>,
        retention_days: Option<u32>,
    ) -> Result<ArchiveInfo, EventsError> {
        let pattern = match &event_pattern {
            Some(p) => Some(FilterPattern::parse(p).map_err(|r| EventsError::pattern(&r))?),
            None => None,
        };
        let mut archives = self.lock_archives();
        let a = archives
            .archives
            .get_mut(name)
            .ok_or_else(|| EventsError::not_found(format!("Archive {name} does not exist.")))?;
        if description.is_some() {
            a.description = description;
        }
        if event_pattern.is_some() {
            a.event_pattern = event_pattern;
            a.pattern = pattern;
        }
        if let Some(days) = retention_days {
            a.retention_days = days;
        }
        let info = self.archive_info(a);
        archives.save()?;
        Ok(info)
    }

    pub fn delete_archive(&self, name: &str) -> Result<(), EventsError> {
        let mut archives = self.lock_archives();
        if archives.archives.remove(name).is_none() {
            return Err(EventsError::not_found(format!(
                "Archive {name} does not exist."
            )));
        }
        if let Some(dir) = &archives.dir {
            let _ = std::fs::remove_file(dir.join(events_file(name)));
        }
        archives.save()
    }

    /// Records `event` in the archives of `bus` whose pattern it matches
    /// (dropping what is past their retention).
    pub(super) fn archive(&self, bus: &str, event: &Arc<Value>) {
        let mut archives = self.lock_archives();
        let dir = archives.dir.clone();
        let now = now_ms();
        for a in archives.archives.values_mut() {
            if a.bus != bus || a.pattern.as_ref().is_some_and(|p| !p.matches(event)) {
                continue;
            }
            if a.retention_days > 0 {
                let oldest = now - i64::from(a.retention_days) * 86_400_000;
                a.events.retain(|(t, _)| *t >= oldest);
            }
            let line = event.to_string();
            if let Some(dir) = &dir {
                let file = dir.join(events_file(&a.name));
                let written = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&file)
                    .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
                if let Err(e) = written {
                    tracing::error!(archive = %a.name, "cannot append to {}: {e}", file.display());
                }
            }
            a.size_bytes += line.len() as u64;
            a.events.push((event_time_ms(event), event.clone()));
        }
    }

    /// `StartReplay`: replays the archive's events whose `time` is in
    /// `[start_ms, end_ms)` to the rules of its bus, in the background.
    #[allow(clippy::too_many_arguments)]
    pub fn start_replay(
        &self,
        name: &str,
        archive_arn: &str,
        description: Option<String>,
        start_ms: i64,
        end_ms: i64,
        destination_arn: &str,
        filter_arns: Vec<String>,
    ) -> Result<Replay, EventsError> {
        if !crate::manifest::events::name_ok(name) {
            return Err(EventsError::validation(format!(
                "Replay name {name} is not valid: 1-64 letters, digits, `.`, `-` and `_`."
            )));
        }
        if start_ms >= end_ms {
            return Err(EventsError::validation(
                "Parameter EventStartTime is not valid. Reason: EventStartTime must be before EventEndTime.",
            ));
        }
        let archive_name = archive_arn
            .rsplit_once(":archive/")
            .map_or(archive_arn, |(_, n)| n)
            .to_owned();
        let mut archives = self.lock_archives();
        let Some(archive) = archives.archives.get(&archive_name) else {
            return Err(EventsError::not_found(format!(
                "Archive {archive_name} does not exist."
            )));
        };
        let bus = self.bus_name(Some(destination_arn));
        if bus != archive.bus {
            return Err(EventsError::validation(
                "Parameter Destination.Arn is not valid. Reason: Cross event bus replay is not permitted.",
            ));
        }
        if archives.replays.contains_key(name) {
            return Err(EventsError::new(
                "ResourceAlreadyExistsException",
                format!("Replay {name} already exists."),
            ));
        }
        let mut events: Vec<(i64, Arc<Value>)> = archive
            .events
            .iter()
            .filter(|(t, _)| *t >= start_ms && *t < end_ms)
            .cloned()
            .collect();
        events.sort_by_key(|(t, _)| *t);
        let replay = Replay {
            name: name.to_owned(),
            archive: archive_name,
            description,
            bus: bus.clone(),
            filter_arns,
            start_ms,
            end_ms,
            state: "STARTING".to_owned(),
            state_reason: None,
            replay_start_ms: now_ms(),
            replay_end_ms: None,
            last_replayed_ms: None,
            replayed: 0,
        };
        archives.replays.insert(name.to_owned(), replay.clone());
        archives.save()?;
        drop(archives);
        let Some(me) = self.me() else {
            return Ok(replay);
        };
        let replay_name = name.to_owned();
        let run = async move { me.run_replay(&replay_name, &bus, events) };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(run);
            }
            Err(_) => tracing::warn!("a replay started outside the runtime does not run"),
        }
        Ok(replay)
    }

    fn update_replay(&self, name: &str, f: impl FnOnce(&mut Replay)) -> Option<Replay> {
        let mut archives = self.lock_archives();
        let r = archives.replays.get_mut(name)?;
        f(r);
        let out = r.clone();
        let _ = archives.save();
        Some(out)
    }

    fn run_replay(&self, name: &str, bus: &str, events: Vec<(i64, Arc<Value>)>) {
        let filter = self
            .update_replay(name, |r| r.state = "RUNNING".to_owned())
            .map(|r| r.filter_arns)
            .unwrap_or_default();
        let mut replayed = 0u64;
        for (time, event) in events {
            let cancelling = self
                .lock_archives()
                .replays
                .get(name)
                .is_none_or(|r| r.state == "CANCELLING");
            if cancelling {
                self.update_replay(name, |r| {
                    r.state = "CANCELLED".to_owned();
                    r.replay_end_ms = Some(now_ms());
                    r.replayed = replayed;
                });
                return;
            }
            let mut event = (*event).clone();
            if let Some(o) = event.as_object_mut() {
                o.insert("replay-name".to_owned(), Value::String(name.to_owned()));
            }
            if let Err(e) = self.route(bus, Arc::new(event), now_ms(), Route::Replay(&filter)) {
                self.update_replay(name, |r| {
                    r.state = "FAILED".to_owned();
                    r.state_reason = Some(e.message.clone());
                    r.replay_end_ms = Some(now_ms());
                });
                return;
            }
            replayed += 1;
            self.update_replay(name, |r| {
                r.last_replayed_ms = Some(time);
                r.replayed = replayed;
            });
        }
        let done = self.update_replay(name, |r| {
            r.state = "COMPLETED".to_owned();
            r.replay_end_ms = Some(now_ms());
        });
        tracing::info!(
            replay = name,
            events = replayed,
            ended = %done.and_then(|r| r.replay_end_ms).map(iso_time).unwrap_or_default(),
            "replay completed"
        );
    }

    pub fn describe_replay(&self, name: &str) -> Result<Replay, EventsError> {
        self.lock_archives()
            .replays
            .get(name)
            .cloned()
            .ok_or_else(|| EventsError::not_found(format!("Replay {name} does not exist.")))
    }

    pub fn list_replays(&self) -> Vec<Replay> {
        self.lock_archives().replays.values().cloned().collect()
    }

    /// `CancelReplay`: a replay that is running stops before its next event.
    pub fn cancel_replay(&self, name: &str) -> Result<Replay, EventsError> {
        let mut archives = self.lock_archives();
        let r = archives
            .replays
            .get_mut(name)
            .ok_or_else(|| EventsError::not_found(format!("Replay {name} does not exist.")))?;
        if !matches!(r.state.as_str(), "STARTING" | "RUNNING") {
            return Err(EventsError::new(
                "IllegalStatusException",
                format!("Replay {name} is not in a valid state for this operation."),
            ));
        }
        r.state = "CANCELLING".to_owned();
        let out = r.clone();
        archives.save()?;
        Ok(out)
    }
}
