//! Golden event fixtures (`tests/fixtures/events/example-<service>-<variant>.json`):
//! what the devserver sends a function, compared field by field with what
//! a test function received. A fixture value may be a placeholder for what
//! changes per run: `"<string>"` (any string), `"<number>"` (any number),
//! `"<uuid>"` (a v4 UUID), `"<port>"` (a string of digits). Every other
//! value, and the set of keys at every level, must match exactly.

use std::path::PathBuf;

use serde_json::Value;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(name)
}

/// The differences between `expected` (with placeholders) and `actual`,
/// each naming its JSON path.
pub fn differences(expected: &Value, actual: &Value, at: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::String(p), Value::String(s)) if p == "<string>" => {
            let _ = s;
        }
        (Value::String(p), Value::Number(_)) if p == "<number>" => {}
        (Value::String(p), Value::String(s)) if p == "<uuid>" => {
            if uuid_v4(s).is_none() {
                out.push(format!("{at}: `{s}` is not a v4 UUID"));
            }
        }
        (Value::String(p), Value::String(s)) if p == "<port>" => {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                out.push(format!("{at}: `{s}` is not a port"));
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            for k in e.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{at}/{k}: missing"));
            }
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
                out.push(format!("{at}/{k}: not in the fixture ({})", a[k]));
            }
            for (k, v) in e {
                if let Some(actual) = a.get(k) {
                    differences(v, actual, &format!("{at}/{k}"), out);
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                differences(e, a, &format!("{at}/{i}"), out);
            }
        }
        (e, a) if e == a => {}
        (e, a) => out.push(format!("{at}: expected {e}, got {a}")),
    }
}

fn uuid_v4(s: &str) -> Option<()> {
    let bytes = s.as_bytes();
    (s.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| bytes[i] == b'-')
        && bytes[14] == b'4'
        && s.bytes()
            .enumerate()
            .all(|(i, b)| [8, 13, 18, 23].contains(&i) || b.is_ascii_hexdigit()))
    .then_some(())
}

/// Panics, listing every difference, unless `actual` matches the fixture.
pub fn assert_matches(fixture: &str, actual: &Value) {
    let text = std::fs::read_to_string(path(fixture))
        .unwrap_or_else(|e| panic!("cannot read fixture {fixture}: {e}"));
    let expected: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {fixture}: {e}"));
    let mut out = Vec::new();
    differences(&expected, actual, "", &mut out);
    assert!(
        out.is_empty(),
        "{fixture} does not match what the function received:\n  {}\nreceived: {}",
        out.join("\n  "),
        serde_json::to_string_pretty(actual).unwrap_or_default()
    );
}
