//! Tencent Cloud's API 3.0 request signature, TC3-HMAC-SHA256, for a JSON POST (`sms` `SendSms`):
//! the canonical request (method, `/`, empty query, the `content-type` and `host` headers, their
//! names, the body's SHA-256), its hash in the string to sign with the timestamp and the
//! credential scope (UTC date / service / `tc3_request`), signed with a key derived from the
//! secret by HMAC over the date, the service and `tc3_request`.

use chrono::DateTime;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// What a request signs.
pub struct Request<'a> {
    pub service: &'a str,
    pub host: &'a str,
    /// Exactly the Content-Type header sent.
    pub content_type: &'a str,
    pub payload: &'a str,
    /// Unix seconds, also sent as `X-TC-Timestamp`.
    pub timestamp: i64,
}

fn hmac(key: &[u8], message: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

const SIGNED_HEADERS: &str = "content-type;host";

/// The UTC date of the timestamp (not the local one: calls fail at midnight otherwise).
fn date(r: &Request<'_>) -> String {
    DateTime::from_timestamp(r.timestamp, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

pub fn canonical_request(r: &Request<'_>) -> String {
    format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\n{SIGNED_HEADERS}\n{}",
        r.content_type,
        r.host,
        hex::encode(Sha256::digest(r.payload.as_bytes()))
    )
}

pub fn string_to_sign(r: &Request<'_>) -> String {
    format!(
        "TC3-HMAC-SHA256\n{}\n{}/{}/tc3_request\n{}",
        r.timestamp,
        date(r),
        r.service,
        hex::encode(Sha256::digest(canonical_request(r).as_bytes()))
    )
}

pub fn signature(secret_key: &str, r: &Request<'_>) -> String {
    let secret_date = hmac(format!("TC3{secret_key}").as_bytes(), &date(r));
    let secret_service = hmac(&secret_date, r.service);
    let secret_signing = hmac(&secret_service, "tc3_request");
    hex::encode(hmac(&secret_signing, &string_to_sign(r)))
}

/// The `Authorization` header.
pub fn authorization(secret_id: &str, secret_key: &str, r: &Request<'_>) -> String {
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{}/{}/tc3_request, SignedHeaders={SIGNED_HEADERS}, \
         Signature={}",
        date(r),
        r.service,
        signature(secret_key, r)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DescribeInstances example of Tencent Cloud's signature v3 documentation.
    fn example() -> Request<'static> {
        Request {
            service: "cvm",
            host: "cvm.tencentcloudapi.com",
            content_type: "application/json; charset=utf-8",
            payload: r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#,
            timestamp: 1551113065,
        }
    }

    #[test]
    fn the_documented_example_signs_as_documented() {
        let r = example();
        assert!(canonical_request(&r)
            .ends_with("35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"));
        assert_eq!(
            string_to_sign(&r),
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
             5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", &r),
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        assert_eq!(
            authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", &r),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn the_date_is_utc_and_any_change_changes_the_signature() {
        // 00:44 on the 26th in Beijing is still the 25th in UTC.
        assert!(string_to_sign(&example()).contains("2019-02-25/"));
        let key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
        let base = signature(key, &example());
        let other_body = Request {
            payload: "{}",
            ..example()
        };
        let other_type = Request {
            content_type: "application/json",
            ..example()
        };
        for r in [other_body, other_type] {
            assert_ne!(signature(key, &r), base);
        }
    }
}
