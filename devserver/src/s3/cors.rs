//! Bucket CORS as S3 evaluates it
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/cors.html>,
//! "How Amazon S3 evaluates the CORS configuration on a bucket"): the
//! first rule whose `AllowedOrigins` match the `Origin`, whose
//! `AllowedMethods` hold the method (the preflight's
//! `Access-Control-Request-Method`), and — for a preflight — whose
//! `AllowedHeaders` match every header of `Access-Control-Request-Headers`
//! answers. Origins and headers may hold one `*` wildcard; header names
//! compare case-insensitively, origins and methods exactly.
//!
//! A refused preflight is a 403 `AccessForbidden` with S3's `CORSResponse`
//! message; an actual request that no rule allows is served without CORS
//! headers (the browser then refuses it, as with S3).

use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

/// One rule (PutBucketCors's `CORSRule`, or dev.toml's `cors_rule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    #[serde(default)]
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub max_age_seconds: Option<i32>,
}

/// The methods a rule may allow.
pub const ALLOWED_METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

/// S3's limit on rules per configuration.
pub const MAX_RULES: usize = 100;

pub const MESSAGE_NOT_ENABLED: &str = "CORSResponse: CORS is not enabled for this bucket.";
pub const MESSAGE_NOT_ALLOWED: &str = "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";

/// Checks a configuration as PutBucketCors does; the error names the rule.
pub fn validate(rules: &[CorsRule]) -> Result<(), String> {
    if rules.is_empty() {
        return Err("a CORS configuration needs at least one CORSRule".to_owned());
    }
    if rules.len() > MAX_RULES {
        return Err(format!(
            "a CORS configuration holds at most {MAX_RULES} rules, not {}",
            rules.len()
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        if rule.allowed_origins.is_empty() || rule.allowed_methods.is_empty() {
            return Err(format!(
                "CORS rule {} needs AllowedOrigin and AllowedMethod",
                i + 1
            ));
        }
        for m in &rule.allowed_methods {
            if !ALLOWED_METHODS.contains(&m.as_str()) {
                return Err(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                ));
            }
        }
        for o in &rule.allowed_origins {
            if o.matches('*').count() > 1 {
                return Err(format!(
                    "AllowedOrigin \"{o}\" can not have more than one wildcard."
                ));
            }
        }
        for h in &rule.allowed_headers {
            if h.matches('*').count() > 1 {
                return Err(format!(
                    "AllowedHeader \"{h}\" can not have more than one wildcard."
                ));
            }
        }
    }
    Ok(())
}

/// `pattern` with at most one `*` against `value`.
fn wildcard(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v) = if ignore_case {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_owned(), value.to_owned())
    };
    match p.split_once('*') {
        None => p == v,
        Some((head, tail)) => {
            v.len() >= head.len() + tail.len() && v.starts_with(head) && v.ends_with(tail)
        }
    }
}

/// The rule that answers, if any.
pub fn find<'a>(
    rules: &'a [CorsRule],
    origin: &str,
    method: &str,
    request_headers: &[String],
) -> Option<&'a CorsRule> {
    rules.iter().find(|r| {
        r.allowed_origins.iter().any(|o| wildcard(o, origin, false))
            && r.allowed_methods.iter().any(|m| m == method)
            && request_headers.iter().all(|h| {
                r.allowed_headers
                    .iter()
                    .any(|allowed| wildcard(allowed, h, true))
            })
    })
}

/// The headers of `Access-Control-Request-Headers`, lower-cased.
pub fn requested_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("access-control-request-headers")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect()
}

fn put(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// The CORS headers S3 adds for `rule`: `Access-Control-Allow-Origin` is
/// `*` when the rule allows any origin, else the request's origin (with
/// `Access-Control-Allow-Credentials: true`).
pub fn response_headers(
    rule: &CorsRule,
    origin: &str,
    preflight: Option<(&str, &[String])>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let any = rule.allowed_origins.iter().any(|o| o == "*");
    put(
        &mut headers,
        "access-control-allow-origin",
        if any { "*" } else { origin },
    );
    if !any {
        put(&mut headers, "access-control-allow-credentials", "true");
    }
    put(
        &mut headers,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !rule.expose_headers.is_empty() {
        put(
            &mut headers,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        put(&mut headers, "access-control-max-age", &age.to_string());
    }
    match preflight {
        Some((_, requested)) => {
            if !requested.is_empty() {
                put(
                    &mut headers,
                    "access-control-allow-headers",
                    &requested.join(", "),
                );
            }
            put(
                &mut headers,
                "vary",
                "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
            );
        }
        None => put(&mut headers, "vary", "Origin"),
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        CorsRule {
            id: None,
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_methods: methods.iter().map(|s| s.to_string()).collect(),
            allowed_headers: headers.iter().map(|s| s.to_string()).collect(),
            expose_headers: vec!["ETag".into()],
            max_age_seconds: Some(3000),
        }
    }

    #[test]
    fn first_matching_rule_answers() {
        let rules = vec![
            rule(&["http://a.example"], &["GET"], &[]),
            rule(&["http://*.example"], &["PUT", "GET"], &["content-*"]),
        ];
        assert!(find(&rules, "http://a.example", "GET", &[]).is_some_and(|r| r == &rules[0]));
        assert!(
            find(&rules, "http://b.example", "PUT", &["content-type".into()])
                .is_some_and(|r| r == &rules[1])
        );
        // A header no rule allows, a method no rule allows, an origin no rule allows.
        assert!(find(&rules, "http://b.example", "PUT", &["x-amz-meta-a".into()]).is_none());
        assert!(find(&rules, "http://b.example", "DELETE", &[]).is_none());
        assert!(find(&rules, "https://evil.test", "GET", &[]).is_none());
    }

    #[test]
    fn header_names_ignore_case_origins_do_not() {
        let rules = vec![rule(&["http://A.example"], &["PUT"], &["Content-Type"])];
        assert!(find(&rules, "http://A.example", "PUT", &["content-type".into()]).is_some());
        assert!(find(&rules, "http://a.example", "PUT", &["content-type".into()]).is_none());
    }

    #[test]
    fn validation_names_the_fault() {
        let mut bad = rule(&["*"], &["PATCH"], &[]);
        assert!(
            validate(std::slice::from_ref(&bad))
                .is_err_and(|e| e.contains("Unsupported method is PATCH"))
        );
        bad.allowed_methods = vec!["GET".into()];
        bad.allowed_origins = vec!["http://*.*.example".into()];
        assert!(validate(&[bad]).is_err_and(|e| e.contains("more than one wildcard")));
        assert!(validate(&[]).is_err());
    }
}
