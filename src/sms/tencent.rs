//! Tencent Cloud's API 3.0 request signature, TC3-HMAC-SHA256, for a JSON POST (`sms` `SendSms`):
//! the canonical request (method, `/`, empty query, the `content-type` and `host` headers, their
//! names, the body's SHA-256), its hash in the string to sign with the timestamp and the
//! credential scope (UTC date / service / `tc3_request`), signed with a key derived from the
//! secret by HMAC over the date, the service and `tc3_request`.

use super::{Attempt, Credentials, Gateway, Outgoing};
use crate::domain::sms::reason;
use crate::store::DeliveryReport;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
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

/// The Tencent Cloud SMS adapter: `SendSms` of API 2021-01-11, a signed JSON POST.
pub struct Tencent {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    host: String,
    credentials: Credentials,
    sign_name: String,
    sdk_app_id: String,
    region: String,
}

pub const ENDPOINT: &str = "https://sms.tencentcloudapi.com/";
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

impl Tencent {
    pub fn new(
        client: reqwest::Client,
        s: &crate::config::SmsSettings,
        credentials: Credentials,
    ) -> anyhow::Result<Self> {
        let endpoint = reqwest::Url::parse(s.endpoint.as_deref().unwrap_or(ENDPOINT))?;
        Ok(Self {
            client,
            host: super::host_of(&endpoint)?,
            endpoint,
            credentials,
            sign_name: s.sign_name.clone(),
            sdk_app_id: s.sdk_app_id.clone(),
            region: if s.region.is_empty() {
                "ap-guangzhou".into()
            } else {
                s.region.clone()
            },
        })
    }

    /// The JSON body of one `SendSms`.
    pub fn payload(&self, m: &Outgoing<'_>) -> String {
        serde_json::json!({
            "PhoneNumberSet": [format!("+86{}", m.phone)],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": m.template_id,
            "TemplateParamSet": m.params.iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "SessionContext": m.id.to_string(),
        })
        .to_string()
    }
}

#[async_trait::async_trait]
impl Gateway for Tencent {
    fn name(&self) -> &'static str {
        "tencent"
    }

    async fn send(&self, m: &Outgoing<'_>) -> Attempt {
        let payload = self.payload(m);
        let signed = Request {
            service: "sms",
            host: &self.host,
            content_type: CONTENT_TYPE,
            payload: &payload,
            timestamp: chrono::Utc::now().timestamp(),
        };
        let request = self
            .client
            .post(self.endpoint.clone())
            .header(
                "Authorization",
                authorization(&self.credentials.id, self.credentials.secret(), &signed),
            )
            .header("Content-Type", CONTENT_TYPE)
            .header("Host", &self.host)
            .header("X-TC-Action", "SendSms")
            .header("X-TC-Timestamp", signed.timestamp.to_string())
            .header("X-TC-Version", "2021-01-11")
            .header("X-TC-Region", &self.region)
            .body(payload.clone());
        match super::post(request).await {
            Ok((status, body)) => judge(status, &body),
            Err(attempt) => attempt,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    response: Answer,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    error: Option<Failure>,
    #[serde(default)]
    send_status_set: Vec<Status>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Failure {
    code: String,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Status {
    serial_no: Option<String>,
    code: String,
    message: Option<String>,
}

/// What Tencent's answer to `SendSms` means. A request refused as a whole for its rate
/// (`RequestLimitExceeded`) was not taken; an internal error may have been; anything else
/// (signature, template, the number's own limits) is final.
pub fn judge(status: u16, body: &str) -> Attempt {
    let Ok(Envelope { response }) = serde_json::from_str::<Envelope>(body) else {
        let reason = format!("HTTP {status} without a readable answer");
        return if status >= 500 {
            Attempt::Unknown { reason }
        } else {
            Attempt::Refused { reason }
        };
    };
    let (code, message, serial) = match (response.error, response.send_status_set.first()) {
        (Some(f), _) => (f.code, f.message, None),
        (None, Some(s)) => (s.code.clone(), s.message.clone(), s.serial_no.clone()),
        (None, None) => {
            return Attempt::Unknown {
                reason: "an answer without a status".into(),
            }
        }
    };
    if code == "Ok" {
        return match serial.filter(|s| !s.is_empty()) {
            Some(gateway_id) => Attempt::Accepted { gateway_id },
            None => Attempt::Unknown {
                reason: "accepted without a SerialNo".into(),
            },
        };
    }
    let why = reason(&format!("{code}: {}", message.unwrap_or_default()));
    if code.starts_with("RequestLimitExceeded") {
        Attempt::NotSent { reason: why }
    } else if code.starts_with("InternalError") {
        Attempt::Unknown { reason: why }
    } else {
        Attempt::Refused { reason: why }
    }
}

#[derive(Deserialize)]
struct Report {
    sid: String,
    report_status: String,
    errmsg: Option<String>,
}

/// What Tencent expects back after pushing reports.
pub fn report_answer() -> serde_json::Value {
    serde_json::json!({"result": 0, "errmsg": "OK"})
}

/// Tencent's pushed delivery reports: a JSON array of `{"sid", "report_status": "SUCCESS" |
/// "FAIL", "errmsg", …}`.
pub fn reports(body: &[u8], at: DateTime<Utc>) -> Result<Vec<DeliveryReport>, String> {
    let list: Vec<Report> = serde_json::from_slice(body)
        .map_err(|e| format!("not a list of Tencent SMS reports: {e}"))?;
    Ok(list
        .into_iter()
        .map(|r| {
            let delivered = r.report_status == "SUCCESS";
            DeliveryReport {
                gateway_id: r.sid,
                delivered,
                reason: (!delivered).then(|| reason(r.errmsg.as_deref().unwrap_or("unknown"))),
                at,
            }
        })
        .collect())
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

    #[test]
    fn answers_are_judged_by_their_code() {
        let ok = r#"{"Response":{"SendStatusSet":[{"SerialNo":"5000:1045710669157053657849499619","PhoneNumber":"+8613711112222","Fee":1,"SessionContext":"test","Code":"Ok","Message":"send success","IsoCode":"CN"}],"RequestId":"a0aabda6-cf91-4f3e-a81f-9198114a2279"}}"#;
        assert_eq!(
            judge(200, ok),
            Attempt::Accepted {
                gateway_id: "5000:1045710669157053657849499619".into()
            }
        );
        let limited = r#"{"Response":{"SendStatusSet":[{"SerialNo":"","PhoneNumber":"+8613711112222","Fee":0,"Code":"LimitExceeded.PhoneNumberDailyLimit","Message":"the number of sms messages sent from a single mobile number every day exceeds the upper limit"}],"RequestId":"x"}}"#;
        assert!(
            matches!(judge(200, limited), Attempt::Refused { reason } if reason.starts_with("LimitExceeded.PhoneNumberDailyLimit"))
        );
        let signature = r#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"The provided credentials could not be validated."},"RequestId":"x"}}"#;
        assert!(matches!(judge(200, signature), Attempt::Refused { .. }));
        let busy = r#"{"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"slow down"},"RequestId":"x"}}"#;
        assert!(matches!(judge(200, busy), Attempt::NotSent { .. }));
        let internal = r#"{"Response":{"Error":{"Code":"InternalError.Timeout","Message":"t"},"RequestId":"x"}}"#;
        assert!(matches!(judge(200, internal), Attempt::Unknown { .. }));
        assert!(matches!(judge(503, ""), Attempt::Unknown { .. }));
    }

    #[test]
    fn pushed_reports_are_read() {
        let body = r#"[{"user_receive_time":"2015-10-17 08:03:04","nationcode":"86","mobile":"13788888888","report_status":"SUCCESS","errmsg":"DELIVRD","description":"用户短信送达成功","sid":"749:670:1"},
                      {"mobile":"13788888889","report_status":"FAIL","errmsg":"MK:0001","sid":"749:670:2"}]"#;
        let r = reports(body.as_bytes(), DateTime::<Utc>::UNIX_EPOCH).unwrap();
        assert!(r[0].delivered && r[0].gateway_id == "749:670:1");
        assert!(!r[1].delivered && r[1].reason.as_deref() == Some("MK:0001"));
        assert!(reports(b"[{}]", DateTime::<Utc>::UNIX_EPOCH).is_err());
    }
}
