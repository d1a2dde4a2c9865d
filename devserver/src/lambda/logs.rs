//! Function output: every line a process writes goes to the terminal (and
//! to `--log-format json` consumers) tagged with the function and request
//! id, and into the invocation's buffer when the caller asked for
//! `X-Amz-Log-Type: Tail`.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Target of the tracing events that carry function output.
pub const FUNCTION_LOG_TARGET: &str = "function";

/// The invocation that output is currently attributed to: the running one,
/// or the last one until the next starts (a process may print after it
/// answered).
#[derive(Clone)]
pub(crate) struct LogTarget {
    pub request_id: String,
    pub buffer: Option<Arc<Mutex<String>>>,
}

/// Whether lines for this target are wanted at all (skips work such as
/// reading peak memory when nobody looks).
pub(crate) fn wanted(target: Option<&LogTarget>) -> bool {
    target.is_some_and(|t| t.buffer.is_some())
        || tracing::enabled!(target: FUNCTION_LOG_TARGET, tracing::Level::INFO)
}

pub(crate) fn emit(function: &str, target: Option<&LogTarget>, line: &str) {
    let request_id = target.map_or("-", |t| t.request_id.as_str());
    tracing::info!(target: FUNCTION_LOG_TARGET, function, request_id, "{line}");
    if let Some(buffer) = target.and_then(|t| t.buffer.as_ref()) {
        let mut b = buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        b.push_str(line);
        b.push('\n');
    }
}

/// Emits each line of a process' output, attributed to the invocation
/// `current` names when the line arrives.
pub(crate) async fn read(
    current: impl Fn() -> Option<LogTarget>,
    function: String,
    pipe: impl AsyncRead + Unpin,
) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let target = current();
        emit(&function, target.as_ref(), &line);
    }
}

/// Peak resident memory of a process in MB (`VmHWM`), as Lambda's REPORT
/// line's "Max Memory Used", from its open `/proc/<pid>/status`.
#[cfg(unix)]
pub(crate) fn peak_memory_mb(status: &std::fs::File) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    // The whole file is about 1.5 KB; VmHWM is in its first half.
    let mut buf = [0u8; 4096];
    let n = status.read_at(&mut buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.div_ceil(1024))
}

#[cfg(not(unix))]
pub(crate) fn peak_memory_mb(_: &std::fs::File) -> Option<u64> {
    None
}

/// The last 4 KB of a log, as `X-Amz-Log-Result` carries it.
pub fn tail_4k(log: &str) -> &str {
    const LIMIT: usize = 4096;
    if log.len() <= LIMIT {
        return log;
    }
    let mut start = log.len() - LIMIT;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}
