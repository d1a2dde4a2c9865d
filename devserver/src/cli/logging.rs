//! Terminal logs. Function output reads as `time function request│ line`,
//! so each line shows which function and which request wrote it; the
//! devserver's own events as `time LEVEL target: message fields`. With
//! `--log-format json` every event is one JSON object per line instead.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_appender::non_blocking::{ErrorCounter, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use woocom_dev::lambda::FUNCTION_LOG_TARGET;

use super::LogFormat;

/// Lines the writer queue holds before new ones are dropped (and counted):
/// about 16 MB of typical lines, several seconds of the busiest load.
const QUEUED_LINES: usize = 128_000;

/// How often lines dropped under overload are reported.
const DROP_REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Logs go to stderr; the filter comes from `WOOCOM_LOG` (`RUST_LOG` is
/// left to the functions, which get it passed through).
///
/// A request formats its lines but does not write them: they go into a
/// bounded queue that one writer thread drains, writing everything queued
/// at once and flushing when the queue is empty. When the terminal cannot
/// keep up and the queue is full, lines are dropped rather than slowing
/// requests, and a warning says how many. Keep the returned guard until
/// the end: dropping it writes what is still queued.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_env("WOOCOM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUED_LINES)
        .lossy(true)
        .thread_name("woocom-dev-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    report_drops(writer.error_counter());
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

/// Says, every few seconds while it happens, how many lines were dropped.
fn report_drops(dropped: ErrorCounter) {
    let spawned = std::thread::Builder::new()
        .name("woocom-dev-log-drops".to_owned())
        .spawn(move || {
            let mut reported = 0;
            loop {
                std::thread::sleep(DROP_REPORT_EVERY);
                let now = dropped.dropped_lines();
                if now > reported {
                    tracing::warn!(
                        "{} log lines dropped: the terminal did not keep up (WOOCOM_LOG=warn logs less)",
                        now - reported
                    );
                    reported = now;
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("warning: log lines dropped under overload will not be reported: {e}");
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
