//! Signature Version 4 on DynamoDB requests: the shape is checked, the
//! signature is not (any access key is accepted, and the secret is not
//! known here), so that a client that does not sign, or signs wrongly
//! shaped, fails locally as it fails against AWS.
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-signing-elements.html>
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>
//!
//! [`sign`] signs a request for this endpoint's own callers that are not
//! AWS SDKs (`woocom-dev seed`, tests, benchmarks).

use http::HeaderMap;
use sha2::{Digest, Sha256};

/// The algorithms a signed request may name (SigV4 and SigV4a).
const ALGORITHMS: [&str; 2] = ["AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"];

/// How far a request's time may be from ours, either way.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// `X-Amz-Date`'s format.
const AMZ_DATE: &str = "%Y%m%dT%H%M%SZ";

/// Why a request's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// No `Authorization` header and no signed query string.
    Missing,
    /// Present but not a SigV4 signature, or expired: the message AWS gives.
    Invalid(String),
}

/// Checks a request's SigV4 signature for shape and time.
pub fn check(
    headers: &HeaderMap,
    query: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), SignatureError> {
    let Some(authorization) = headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default())
    else {
        // A presigned request carries its signature in the query string.
        let signed_query = query.is_some_and(|q| {
            form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "X-Amz-Signature")
        });
        return if signed_query {
            Ok(())
        } else {
            Err(SignatureError::Missing)
        };
    };
    let invalid = |message: String| Err(SignatureError::Invalid(message));
    let Some((algorithm, parameters)) = authorization.trim().split_once(' ') else {
        return invalid(format!(
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization={authorization}"
        ));
    };
    if !ALGORITHMS.contains(&algorithm) {
        return invalid(format!(
            "Unsupported signature algorithm {algorithm}: use AWS4-HMAC-SHA256"
        ));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in parameters.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let missing: Vec<String> = [
        ("Credential", credential.is_none()),
        ("Signature", signature.is_none()),
        ("SignedHeaders", signed_headers.is_none()),
    ]
    .iter()
    .filter(|(_, missing)| *missing)
    .map(|(name, _)| format!("Authorization header requires '{name}' parameter."))
    .collect();
    if !missing.is_empty() {
        return invalid(format!(
            "{} Authorization={authorization}",
            missing.join(" ")
        ));
    }
    let (credential, signed_headers, signature) = (
        credential.unwrap_or_default(),
        signed_headers.unwrap_or_default(),
        signature.unwrap_or_default(),
    );
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, terminator] = scope[..] else {
        return invalid(format!(
            "Credential should be scoped to a valid region, not ''. Credential={credential}"
        ));
    };
    if access_key.is_empty() {
        return invalid("The security token included in the request is invalid.".into());
    }
    if terminator != "aws4_request" {
        return invalid(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        ));
    }
    if service != "dynamodb" {
        return invalid(format!(
            "Credential should be scoped to correct service: 'dynamodb'. Credential={credential}"
        ));
    }
    if region.is_empty() && algorithm == ALGORITHMS[0] {
        return invalid(format!(
            "Credential should be scoped to a valid region. Credential={credential}"
        ));
    }
    if signed_headers.is_empty()
        || !signed_headers.split(';').any(|h| h == "host")
        || signed_headers.bytes().any(|b| b.is_ascii_uppercase())
    {
        return invalid(format!(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization. SignedHeaders={signed_headers}"
        ));
    }
    if signature.is_empty() || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
                .into(),
        );
    }
    let Some(amz_date) = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::NaiveDateTime::parse_from_str(v, AMZ_DATE).ok())
        .map(|t| t.and_utc())
    else {
        return invalid(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .into(),
        );
    };
    if amz_date.format("%Y%m%d").to_string() != date {
        return invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{}', from '{}'.",
            amz_date.format("%Y%m%d"),
            amz_date.format(AMZ_DATE)
        ));
    }
    let skew = chrono::Duration::seconds(MAX_SKEW_SECS);
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format(AMZ_DATE).to_string();
    if amz_date < now - skew {
        return invalid(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            fmt(amz_date),
            fmt(now - skew),
            fmt(now)
        ));
    }
    if amz_date > now + skew {
        return invalid(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            fmt(amz_date),
            fmt(now + skew),
            fmt(now)
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The headers that sign a `POST /` to `host` with `body` (SigV4, service
/// `dynamodb`): `x-amz-date`, `x-amz-content-sha256` and `authorization`,
/// computed over those two, `host`, and the `extra` headers given (which
/// the caller sends too).
pub fn sign(
    host: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    region: &str,
    access_key: &str,
    secret_key: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<(&'static str, String)> {
    let amz_date = now.format(AMZ_DATE).to_string();
    let date = &amz_date[..8];
    let payload = hex(&Sha256::digest(body));
    let mut headers: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .chain([
            ("host".to_owned(), host.to_owned()),
            ("x-amz-date".to_owned(), amz_date.clone()),
            ("x-amz-content-sha256".to_owned(), payload.clone()),
        ])
        .collect();
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical = format!("POST\n/\n\n{canonical_headers}\n{signed}\n{payload}");
    let scope = format!("{date}/{region}/dynamodb/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = [region, "dynamodb", "aws4_request"].iter().fold(
        hmac(format!("AWS4{secret_key}").as_bytes(), date.as_bytes()),
        |key, part| hmac(&key, part.as_bytes()),
    );
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    vec![
        ("x-amz-date", amz_date),
        ("x-amz-content-sha256", payload),
        (
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .expect("time")
            .to_utc()
    }

    fn signed_headers() -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in sign(
            "127.0.0.1:4002",
            &[("x-amz-target", "DynamoDB_20120810.ListTables")],
            b"{}",
            "us-east-1",
            "AKID",
            "secret",
            now(),
        ) {
            map.insert(k, HeaderValue::from_str(&v).expect("header"));
        }
        map
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signed_request_passes_and_an_unsigned_one_is_missing_its_token() {
        assert_eq!(check(&signed_headers(), None, now()), Ok(()));
        assert_eq!(
            check(&HeaderMap::new(), None, now()),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            check(&HeaderMap::new(), Some("X-Amz-Signature=abc"), now()),
            Ok(())
        );
    }

    #[test]
    fn malformed_and_expired_signatures_are_invalid() {
        let mut headers = signed_headers();
        headers.insert("authorization", HeaderValue::from_static("Bearer token"));
        assert!(matches!(
            check(&headers, None, now()),
            Err(SignatureError::Invalid(_))
        ));
        headers.insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKID/20261204/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"),
        );
        assert!(matches!(
            check(&headers, None, now()),
            Err(SignatureError::Invalid(m)) if m.contains("'dynamodb'")
        ));
        let later = now() + chrono::Duration::minutes(16);
        assert!(matches!(
            check(&signed_headers(), None, later),
            Err(SignatureError::Invalid(m)) if m.starts_with("Signature expired: 20261204T100000Z")
        ));
    }
}
