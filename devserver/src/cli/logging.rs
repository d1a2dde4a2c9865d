//! Terminal logs. Function output reads as `time function request│ line`,
//! so each line shows which function and which request wrote it; the
//! devserver's own events as `time LEVEL target: message fields`. With
//! `--log-format json` every event is one JSON object per line instead.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use woocom_dev::lambda::FUNCTION_LOG_TARGET;

use super::LogFormat;

/// Logs go to stderr; the filter comes from `WOOCOM_LOG` (`RUST_LOG` is
/// left to the functions, which get it passed through).
///
/// A request formats its lines but does not write them (see
/// [`BatchedStderr`]). Keep the returned guard until the end: dropping it
/// writes what is still waiting.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_env("WOOCOM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = BatchedStderr::start();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.event_format(Readable).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

/// How long lines wait to be written together.
const BATCH_TIME: Duration = Duration::from_millis(20);
/// Waiting bytes that start a write at once.
const BATCH_BYTES: usize = 256 * 1024;
/// Waiting bytes past which new lines are dropped (and counted): the
/// terminal has fallen seconds behind.
const WAITING_LIMIT: usize = 16 * 1024 * 1024;

/// Log lines off the request path: a line is appended to a buffer in
/// memory, and one writer thread writes what has gathered every
/// [`BATCH_TIME`] in one write. A request thus never waits for the terminal
/// and wakes the writer at most once per batch (a queue that wakes its
/// consumer for every line, as tracing-appender's does, was measured to
/// cost a fifth of the gateway's throughput on two cores). When the
/// terminal cannot keep up, lines past [`WAITING_LIMIT`] are dropped and a
/// warning says how many.
#[derive(Clone)]
pub struct BatchedStderr {
    shared: Arc<Shared>,
}

struct Shared {
    waiting: Mutex<Waiting>,
    wake: Condvar,
}

#[derive(Default)]
struct Waiting {
    bytes: Vec<u8>,
    dropped: u64,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Writes what is still waiting when dropped.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl BatchedStderr {
    fn start() -> (BatchedStderr, LogGuard) {
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Waiting::default()),
            wake: Condvar::new(),
        });
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("woocom-dev-log".to_owned())
            .spawn(move || write_batches(&writer))
            .map_err(|e| eprintln!("warning: no log writer thread ({e}); logs are lost"))
            .ok();
        (
            BatchedStderr {
                shared: shared.clone(),
            },
            LogGuard { shared, thread },
        )
    }
}

fn write_batches(shared: &Shared) {
    let mut batch = Vec::new();
    loop {
        let (dropped, closed) = {
            let mut waiting = shared.lock();
            while waiting.bytes.is_empty() && waiting.dropped == 0 && !waiting.closed {
                waiting = shared
                    .wake
                    .wait(waiting)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if !waiting.closed && waiting.bytes.len() < BATCH_BYTES {
                // Let the batch gather.
                drop(waiting);
                std::thread::sleep(BATCH_TIME);
                waiting = shared.lock();
            }
            std::mem::swap(&mut batch, &mut waiting.bytes);
            (std::mem::take(&mut waiting.dropped), waiting.closed)
        };
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(&batch);
        if dropped > 0 {
            let _ = writeln!(
                stderr,
                "{}  WARN log: {dropped} log lines dropped: the terminal did not keep up (WOOCOM_LOG=warn logs less)",
                TimeOfDay(chrono::Local::now())
            );
        }
        let _ = stderr.flush();
        drop(stderr);
        batch.clear();
        if closed && shared.lock().bytes.is_empty() {
            return;
        }
    }
}

/// One event's line, appended to the waiting bytes.
pub struct Line<'a>(&'a Shared);

impl std::io::Write for Line<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut waiting = self.0.lock();
        if waiting.bytes.len() + line.len() > WAITING_LIMIT {
            waiting.dropped += 1;
            return Ok(line.len());
        }
        let before = waiting.bytes.len();
        waiting.bytes.extend_from_slice(line);
        let after = waiting.bytes.len();
        drop(waiting);
        // The writer sleeps until a batch starts, or gathers for
        // BATCH_TIME: wake it for the first line only, or when the batch is
        // big enough to write at once.
        if before == 0 || (before < BATCH_BYTES && after >= BATCH_BYTES) {
            self.0.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedStderr {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.shared)
    }
}

struct Readable;

#[derive(Default)]
struct Fields {
    message: String,
    function: Option<String>,
    request_id: Option<String>,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "function" => self.function = Some(value.to_owned()),
            "request_id" => self.request_id = Some(value.to_owned()),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "function" | "request_id" => self.record_str(field, &format!("{value:?}")),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

/// `text` in the terminal colour `code`, when colours are on; written
/// straight into the line (no string of its own: this runs for every line).
struct Paint<T> {
    color: bool,
    code: &'static str,
    text: T,
}

impl<T> Paint<T> {
    fn new(color: bool, code: &'static str, text: T) -> Paint<T> {
        Paint { color, code, text }
    }
}

impl<T: fmt::Display> fmt::Display for Paint<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.color {
            write!(f, "\x1b[{}m", self.code)?;
            fmt::Display::fmt(&self.text, f)?;
            f.write_str("\x1b[0m")
        } else {
            fmt::Display::fmt(&self.text, f)
        }
    }
}

/// The local time of day as `HH:MM:SS.mmm`.
struct TimeOfDay(chrono::DateTime<chrono::Local>);

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::Timelike;
        let t = &self.0;
        write!(
            f,
            "{:02}:{:02}:{:02}.{:03}",
            t.hour(),
            t.minute(),
            t.second(),
            // A leap second's nanoseconds run past 10^9; it shows as .999.
            (t.nanosecond() / 1_000_000).min(999)
        )
    }
}

impl<S, N> FormatEvent<S, N> for Readable
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let color = w.has_ansi_escapes();
        let mut fields = Fields::default();
        event.record(&mut fields);
        write!(
            w,
            "{} ",
            Paint {
                color,
                code: "2",
                text: TimeOfDay(chrono::Local::now())
            }
        )?;
        let meta = event.metadata();
        if meta.target() == FUNCTION_LOG_TARGET {
            let function = fields.function.as_deref().unwrap_or_default();
            let request = fields
                .request_id
                .as_deref()
                .map_or("-", |id| id.get(..8).unwrap_or(id));
            return writeln!(
                w,
                "{} {}{} {}",
                Paint {
                    color,
                    code: "36",
                    text: format_args!("{function:>12}")
                },
                Paint {
                    color,
                    code: "2",
                    text: format_args!("{request:8}")
                },
                Paint::new(color, "2", "│"),
                fields.message
            );
        }
        let level = match *meta.level() {
            Level::ERROR => Paint::new(color, "31", "ERROR"),
            Level::WARN => Paint::new(color, "33", " WARN"),
            Level::INFO => Paint::new(color, "32", " INFO"),
            Level::DEBUG => Paint::new(color, "34", "DEBUG"),
            Level::TRACE => Paint::new(color, "35", "TRACE"),
        };
        let target = meta.target().trim_start_matches("woocom_dev::");
        writeln!(
            w,
            "{level} {}: {}{}",
            Paint::new(color, "2", target),
            fields.message,
            Paint {
                color,
                code: "2",
                text: format_args!(
                    "{}{}{}",
                    Pair("function", fields.function.as_deref()),
                    Pair("request_id", fields.request_id.as_deref()),
                    fields.rest
                )
            }
        )
    }
}

/// ` name=value`, or nothing without a value.
struct Pair<'a>(&'static str, Option<&'a str>);

impl fmt::Display for Pair<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(value) => write!(f, " {}={value}", self.0),
            None => Ok(()),
        }
    }
}
