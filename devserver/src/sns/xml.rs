//! The query protocol's XML answers: `<{Action}Response>` holding
//! `<{Action}Result>` and `<ResponseMetadata>`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub const NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// Escapes text for an XML element.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// A growing XML fragment.
#[derive(Default)]
pub struct Xml(String);

impl Xml {
    /// `<name>text</name>`, escaped.
    pub fn text(&mut self, name: &str, text: &str) -> &mut Self {
        self.0
            .push_str(&format!("<{name}>{}</{name}>", escape(text)));
        self
    }

    /// `<name>...</name>` around what `inner` writes.
    pub fn element(&mut self, name: &str, inner: impl FnOnce(&mut Xml)) -> &mut Self {
        self.0.push_str(&format!("<{name}>"));
        inner(self);
        self.0.push_str(&format!("</{name}>"));
        self
    }

    /// Appends another fragment.
    pub fn push(&mut self, other: Xml) {
        self.0.push_str(&other.0);
    }

    /// `<name><entry><key/><value/></entry>...</name>`, as attribute maps are
    /// written.
    pub fn entries<'a>(
        &mut self,
        name: &str,
        map: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> &mut Self {
        self.element(name, |x| {
            for (k, v) in map {
                x.element("entry", |e| {
                    e.text("key", k).text("value", v);
                });
            }
        })
    }
}

/// The answer to `action`, with `result` as its `<{action}Result>` (none
/// when `None`, as for `DeleteTopic`).
pub fn respond(action: &str, result: Option<Xml>) -> Response {
    let mut body = format!("<{action}Response xmlns=\"{NAMESPACE}\">");
    if let Some(r) = result {
        body.push_str(&format!("<{action}Result>{}</{action}Result>", r.0));
    }
    body.push_str(&format!(
        "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        uuid::Uuid::new_v4()
    ));
    (StatusCode::OK, [("content-type", "text/xml")], body).into_response()
}
