//! Terminal logs. Function output reads as `time function request│ line`,
//! so each line shows which function and which request wrote it; the
//! devserver's own events as `time LEVEL target: message fields`. With
//! `--log-format json` every event is one JSON object per line instead.

use std::fmt::{self, Write as _};

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
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("WOOCOM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.event_format(Readable).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
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
        let paint = |code: &str, text: &str| {
            if color {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_owned()
            }
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let time = chrono::Local::now().format("%H:%M:%S%.3f").to_string();
        write!(w, "{} ", paint("2", &time))?;
        let meta = event.metadata();
        if meta.target() == FUNCTION_LOG_TARGET {
            let function = fields.function.unwrap_or_default();
            let request = fields
                .request_id
                .map(|id| id.chars().take(8).collect::<String>())
                .unwrap_or_else(|| "-".to_owned());
            return writeln!(
                w,
                "{} {}{} {}",
                paint("36", &format!("{function:>12}")),
                paint("2", &format!("{request:8}")),
                paint("2", "│"),
                fields.message
            );
        }
        let level = match *meta.level() {
            Level::ERROR => paint("31", "ERROR"),
            Level::WARN => paint("33", " WARN"),
            Level::INFO => paint("32", " INFO"),
            Level::DEBUG => paint("34", "DEBUG"),
            Level::TRACE => paint("35", "TRACE"),
        };
        let target = meta.target().trim_start_matches("woocom_dev::");
        let mut context = String::new();
        if let Some(f) = fields.function {
            let _ = write!(context, " function={f}");
        }
        if let Some(r) = fields.request_id {
            let _ = write!(context, " request_id={r}");
        }
        writeln!(
            w,
            "{level} {}: {}{}",
            paint("2", target),
            fields.message,
            paint("2", &format!("{context}{}", fields.rest))
        )
    }
}
