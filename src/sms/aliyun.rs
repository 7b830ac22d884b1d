//! Aliyun's RPC request signature (version 1.0, HMAC-SHA1), as `dysmsapi` `SendSms` wants it:
//! the parameters sorted by name, each name and value percent-encoded by the POP rules, joined
//! with `&`, then `METHOD&%2F&` + that string encoded once more, signed with the secret + `&`.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::collections::BTreeMap;

/// Percent-encoding by the POP rules: RFC 3986 unreserved characters stay, every other byte of
/// the UTF-8 is `%XX` in capitals (so a space is `%20`, `*` is `%2A`, `~` stays).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical query: `name=value` pairs sorted by name, both encoded, joined by `&` (any
/// `Signature` parameter left out).
pub fn canonical_query(params: &BTreeMap<&str, &str>) -> String {
    params
        .iter()
        .filter(|(k, _)| **k != "Signature")
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// What is signed for `method` (GET or POST).
pub fn string_to_sign(method: &str, params: &BTreeMap<&str, &str>) -> String {
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&canonical_query(params))
    )
}

/// The `Signature` parameter, base64 (to be percent-encoded once more in the URL).
pub fn signature(secret: &str, method: &str, params: &BTreeMap<&str, &str>) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(string_to_sign(method, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SendSms example of Aliyun's SMS documentation (AccessKeySecret `testSecret`).
    fn send_sms_example() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", r#"{"customer":"test"}"#),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ])
    }

    #[test]
    fn the_documented_send_sms_example_signs_as_documented() {
        let p = send_sms_example();
        assert_eq!(
            canonical_query(&p),
            "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001\
             &RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B\
             %E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1\
             &SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0\
             &TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D\
             &Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
        );
        assert!(string_to_sign("GET", &p).starts_with("GET&%2F&AccessKeyId%3DtestId%26Action"));
        assert_eq!(
            signature("testSecret", "GET", &p),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
        // A Signature already among the parameters is not signed.
        let mut with = p.clone();
        with.insert("Signature", "old");
        assert_eq!(
            signature("testSecret", "GET", &with),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
        // Any other secret, or another parameter, signs differently.
        assert_ne!(
            signature("testsecret", "GET", &p),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
    }

    /// The DescribeRegions example of Aliyun's RPC signature documentation.
    #[test]
    fn the_documented_rpc_example_signs_as_documented() {
        let p = BTreeMap::from([
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]);
        assert_eq!(
            signature("testsecret", "GET", &p),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    #[test]
    fn percent_encoding_follows_the_pop_rules() {
        assert_eq!(percent_encode("a b"), "a%20b");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("~-_."), "~-_.");
        assert_eq!(percent_encode("/=&+"), "%2F%3D%26%2B");
        assert_eq!(percent_encode("派"), "%E6%B4%BE");
    }
}
