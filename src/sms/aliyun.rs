//! Aliyun's RPC request signature (version 1.0, HMAC-SHA1), as `dysmsapi` `SendSms` wants it:
//! the parameters sorted by name, each name and value percent-encoded by the POP rules, joined
//! with `&`, then `METHOD&%2F&` + that string encoded once more, signed with the secret + `&`.

use super::{Attempt, Credentials, Gateway, Outgoing};
use crate::domain::sms::reason;
use crate::store::DeliveryReport;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
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

/// The Aliyun SMS adapter: `SendSms` by POST, the parameters signed in the form body.
pub struct Aliyun {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    credentials: Credentials,
    sign_name: String,
    region: String,
}

pub const ENDPOINT: &str = "https://dysmsapi.aliyuncs.com/";

impl Aliyun {
    pub fn new(
        client: reqwest::Client,
        s: &crate::config::SmsSettings,
        credentials: Credentials,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client,
            endpoint: reqwest::Url::parse(s.endpoint.as_deref().unwrap_or(ENDPOINT))?,
            credentials,
            sign_name: s.sign_name.clone(),
            region: if s.region.is_empty() {
                "cn-hangzhou".into()
            } else {
                s.region.clone()
            },
        })
    }

    /// The form body of one `SendSms`, signed, at `timestamp` with `nonce`.
    pub fn form(&self, m: &Outgoing<'_>, timestamp: &str, nonce: &str) -> String {
        let template_param: BTreeMap<&str, &str> = m
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let template_param = serde_json::to_string(&template_param).unwrap_or_default();
        let out_id = m.id.to_string();
        let params = BTreeMap::from([
            ("AccessKeyId", self.credentials.id.as_str()),
            ("Action", "SendSms"),
            ("Format", "JSON"),
            ("OutId", out_id.as_str()),
            ("PhoneNumbers", m.phone),
            ("RegionId", self.region.as_str()),
            ("SignName", self.sign_name.as_str()),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", nonce),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", m.template_id),
            ("TemplateParam", template_param.as_str()),
            ("Timestamp", timestamp),
            ("Version", "2017-05-25"),
        ]);
        let signed = signature(self.credentials.secret(), "POST", &params);
        format!(
            "{}&Signature={}",
            canonical_query(&params),
            percent_encode(&signed)
        )
    }
}

#[async_trait::async_trait]
impl Gateway for Aliyun {
    fn name(&self) -> &'static str {
        "aliyun"
    }

    async fn send(&self, m: &Outgoing<'_>) -> Attempt {
        let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let nonce = uuid::Uuid::new_v4().to_string();
        let request = self
            .client
            .post(self.endpoint.clone())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(self.form(m, &timestamp, &nonce));
        match super::post(request).await {
            Ok((status, body)) => judge(status, &body),
            Err(attempt) => attempt,
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
    #[serde(rename = "BizId")]
    biz_id: Option<String>,
}

/// Codes for a request Aliyun turned away before taking it (throttled, busy, a nonce seen
/// before): trying again later is safe. Every other code is final.
fn not_taken(code: &str) -> bool {
    code.starts_with("Throttling")
        || matches!(
            code,
            "ServiceUnavailable" | "InternalError" | "isp.SYSTEM_ERROR" | "SignatureNonceUsed"
        )
}

/// What Aliyun's answer to `SendSms` means.
pub fn judge(status: u16, body: &str) -> Attempt {
    match serde_json::from_str::<Answer>(body) {
        Ok(Answer {
            code: Some(code),
            message,
            biz_id,
        }) => {
            if code == "OK" {
                return match biz_id.filter(|id| !id.is_empty()) {
                    Some(gateway_id) => Attempt::Accepted { gateway_id },
                    None => Attempt::Unknown {
                        reason: "accepted without a BizId".into(),
                    },
                };
            }
            let why = reason(&format!("{code}: {}", message.unwrap_or_default()));
            if not_taken(&code) {
                Attempt::NotSent { reason: why }
            } else {
                Attempt::Refused { reason: why }
            }
        }
        _ if status >= 500 => Attempt::Unknown {
            reason: format!("HTTP {status} without a readable answer"),
        },
        _ => Attempt::Refused {
            reason: format!("HTTP {status} without a readable answer"),
        },
    }
}

#[derive(Deserialize)]
struct Report {
    biz_id: String,
    success: bool,
    err_code: Option<String>,
}

/// What Aliyun expects back after pushing reports.
pub fn report_answer() -> serde_json::Value {
    serde_json::json!({"code": 0, "msg": "成功"})
}

/// Aliyun's pushed delivery reports (`SmsReport`): a JSON array of
/// `{"biz_id", "success", "err_code", …}`.
pub fn reports(body: &[u8], at: DateTime<Utc>) -> Result<Vec<DeliveryReport>, String> {
    let list: Vec<Report> = serde_json::from_slice(body)
        .map_err(|e| format!("not a list of Aliyun SMS reports: {e}"))?;
    Ok(list
        .into_iter()
        .map(|r| DeliveryReport {
            gateway_id: r.biz_id,
            delivered: r.success,
            reason: (!r.success).then(|| reason(r.err_code.as_deref().unwrap_or("unknown"))),
            at,
        })
        .collect())
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

    #[test]
    fn answers_are_judged_by_their_code() {
        let ok =
            r#"{"Message":"OK","RequestId":"F655A8D5","BizId":"900619746936498440^0","Code":"OK"}"#;
        assert_eq!(
            judge(200, ok),
            Attempt::Accepted {
                gateway_id: "900619746936498440^0".into()
            }
        );
        let throttled = r#"{"Code":"Throttling.User","Message":"Request was denied due to user flow control."}"#;
        assert!(
            matches!(judge(400, throttled), Attempt::NotSent { reason } if reason.starts_with("Throttling.User"))
        );
        let illegal = r#"{"Code":"isv.MOBILE_NUMBER_ILLEGAL","Message":"非法手机号"}"#;
        assert_eq!(
            judge(200, illegal),
            Attempt::Refused {
                reason: "isv.MOBILE_NUMBER_ILLEGAL: 非法手机号".into()
            }
        );
        assert!(matches!(
            judge(200, r#"{"Code":"OK"}"#),
            Attempt::Unknown { .. }
        ));
        assert!(matches!(judge(502, "<html>"), Attempt::Unknown { .. }));
        assert!(matches!(judge(404, "<html>"), Attempt::Refused { .. }));
    }

    #[test]
    fn pushed_reports_are_read() {
        let body = r#"[{"phone_number":"13900000001","send_time":"2017-01-01 11:12:13","report_time":"2017-02-02 22:23:24","success":true,"err_code":"DELIVERED","err_msg":"用户接收成功","sms_size":"1","biz_id":"12345","out_id":"67890"},
                      {"phone_number":"13900000002","success":false,"err_code":"MK:0001","biz_id":"12346"}]"#;
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let r = reports(body.as_bytes(), at).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r[0].delivered && r[0].gateway_id == "12345" && r[0].reason.is_none());
        assert!(!r[1].delivered && r[1].reason.as_deref() == Some("MK:0001"));
        assert!(reports(b"{}", at).is_err());
    }
}
