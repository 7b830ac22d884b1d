//! The SMS gateway adapters against local servers that speak each provider's protocol and check
//! every request's signature the provider's way, their checks first proven on the providers'
//! documented known-answer examples; and the service sending a login code through one.

use crate::common::{self, code_sms, Backend, TestDb};
use actix_web::{web, HttpRequest, HttpResponse};
use campaign_lottery::clock::{Clock, ManualClock};
use campaign_lottery::config::{SmsProvider, SmsSettings};
use campaign_lottery::domain::sms::Status;
use campaign_lottery::sms::sender::{Sender, Turn};
use campaign_lottery::sms::{aliyun, tencent, Credentials};
use campaign_lottery::store::{self, SharedStore};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

const KEY_ID: &str = "LTAI5tTestKeyId";
const SECRET: &str = "test-secret-never-logged-9f3a";

// ---- the providers' checks --------------------------------------------------------------------

/// `%XX` and `+` of a form body, back to text.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// Aliyun's check of an RPC request: the parameters of the form (or query) signed with the
/// secret by `method`, as the `Signature` parameter says.
fn aliyun_check(
    method: &str,
    form: &str,
    secret: &str,
) -> Result<BTreeMap<String, String>, String> {
    let params: BTreeMap<String, String> = form
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    let given = params.get("Signature").ok_or("no Signature")?.clone();
    let signed: BTreeMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if aliyun::signature(secret, method, &signed) == given {
        Ok(params)
    } else {
        Err("SignatureDoesNotMatch".into())
    }
}

/// Tencent's check of a TC3-HMAC-SHA256 request: the Authorization header's credential and
/// signature over the content type, the host and the body at the stated time.
fn tencent_check(
    authorization: &str,
    host: &str,
    content_type: &str,
    timestamp: i64,
    payload: &str,
    secret_id: &str,
    secret_key: &str,
) -> Result<(), String> {
    let rest = authorization
        .strip_prefix("TC3-HMAC-SHA256 ")
        .ok_or("not TC3-HMAC-SHA256")?;
    let part = |name: &str| {
        rest.split(", ")
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
            .ok_or(format!("no {name}"))
    };
    let credential = part("Credential")?;
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 4 || scope[0] != secret_id || scope[3] != "tc3_request" {
        return Err(format!("AuthFailure.SecretIdNotFound: {credential}"));
    }
    if part("SignedHeaders")? != "content-type;host" {
        return Err("signed headers".into());
    }
    let r = tencent::Request {
        service: scope[2],
        host,
        content_type,
        payload,
        timestamp,
    };
    if tencent::string_to_sign(&r).split('\n').nth(2) != Some(&scope[1..].join("/")) {
        return Err("AuthFailure.SignatureExpire: the scope's date".into());
    }
    if tencent::signature(secret_key, &r) == part("Signature")? {
        Ok(())
    } else {
        Err("AuthFailure.SignatureFailure".into())
    }
}

/// The checks accept the providers' own documented examples, and nothing changed from them.
#[test]
fn the_local_gateways_checks_pass_the_providers_documented_examples() {
    // Aliyun SendSms, AccessKeySecret testSecret, signed for GET.
    let example = "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001\
        &RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B\
        %E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1\
        &SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0\
        &TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D\
        &Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25\
        &Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D";
    let params = aliyun_check("GET", example, "testSecret").unwrap();
    assert_eq!(params["SignName"], "阿里云短信测试专用");
    assert!(aliyun_check("POST", example, "testSecret").is_err());
    assert!(aliyun_check("GET", example, "testsecret").is_err());
    let tampered = example.replace("15300000001", "15300000002");
    assert!(aliyun_check("GET", &tampered, "testSecret").is_err());

    // Tencent's DescribeInstances example.
    let payload =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    let auth = "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
        SignedHeaders=content-type;host, \
        Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168";
    let check = |payload: &str, key: &str, ts: i64| {
        tencent_check(
            auth,
            "cvm.tencentcloudapi.com",
            "application/json; charset=utf-8",
            ts,
            payload,
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            key,
        )
    };
    check(payload, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", 1551113065).unwrap();
    assert!(check("{}", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", 1551113065).is_err());
    assert!(check(payload, "another key", 1551113065).is_err());
    assert!(check(payload, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", 1551113066).is_err());
}

// ---- a local gateway ----------------------------------------------------------------------------

/// How the local gateway answers the next request whose signature holds.
#[derive(Clone)]
enum Reply {
    Accept,
    /// The provider's error code.
    Refuse(&'static str),
    /// No answer for this long.
    Hang(std::time::Duration),
}

/// What the local gateway took.
#[derive(Debug, Clone)]
struct Received {
    phone: String,
    sign_name: String,
    template: String,
    /// Parameter values, in order (Aliyun's by name, sorted; Tencent's as sent).
    params: Vec<String>,
    /// The outbox id sent along (OutId, SessionContext).
    reference: String,
    nonce: Option<String>,
    signature_held: bool,
}

struct Gateway {
    provider: SmsProvider,
    secret: String,
    script: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

struct LocalGateway {
    base: String,
    state: Arc<Gateway>,
    server: actix_web::dev::ServerHandle,
}

impl Drop for LocalGateway {
    fn drop(&mut self) {
        let server = self.server.clone();
        tokio::spawn(async move { server.stop(false).await });
    }
}

impl LocalGateway {
    /// A gateway of `provider` that checks signatures with `secret`.
    fn start(provider: SmsProvider, secret: &str, script: Vec<Reply>) -> Self {
        let state = Arc::new(Gateway {
            provider,
            secret: secret.into(),
            script: Mutex::new(script.into()),
            received: Mutex::new(Vec::new()),
        });
        let data = web::Data::from(state.clone());
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .default_service(web::to(answer))
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base: format!("http://127.0.0.1:{port}/"),
            state,
            server: handle,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn answer(req: HttpRequest, body: web::Bytes, g: web::Data<Gateway>) -> HttpResponse {
    let text = String::from_utf8_lossy(&body).to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (received, check) = match g.provider {
        SmsProvider::Aliyun => {
            let check = aliyun_check("POST", &text, &g.secret);
            let params: BTreeMap<String, String> = text
                .split('&')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (decode(k), decode(v)))
                .collect();
            let get = |k: &str| params.get(k).cloned().unwrap_or_default();
            let named: BTreeMap<String, String> =
                serde_json::from_str(&get("TemplateParam")).unwrap_or_default();
            assert_eq!(get("Action"), "SendSms");
            assert_eq!(get("AccessKeyId"), KEY_ID);
            assert_eq!(get("Version"), "2017-05-25");
            (
                Received {
                    phone: get("PhoneNumbers"),
                    sign_name: get("SignName"),
                    template: get("TemplateCode"),
                    params: named.into_values().collect(),
                    reference: get("OutId"),
                    nonce: Some(get("SignatureNonce")),
                    signature_held: check.is_ok(),
                },
                check.map(|_| ()),
            )
        }
        _ => {
            let check = tencent_check(
                &header("authorization"),
                &header("host"),
                &header("content-type"),
                header("x-tc-timestamp").parse().unwrap_or(0),
                &text,
                KEY_ID,
                &g.secret,
            );
            assert_eq!(header("x-tc-action"), "SendSms");
            assert_eq!(header("x-tc-version"), "2021-01-11");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            (
                Received {
                    phone: v["PhoneNumberSet"][0].as_str().unwrap_or_default().into(),
                    sign_name: v["SignName"].as_str().unwrap_or_default().into(),
                    template: v["TemplateId"].as_str().unwrap_or_default().into(),
                    params: v["TemplateParamSet"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_str().unwrap().to_owned())
                        .collect(),
                    reference: v["SessionContext"].as_str().unwrap_or_default().into(),
                    nonce: None,
                    signature_held: check.is_ok(),
                },
                check,
            )
        }
    };
    let n = {
        let mut all = g.received.lock().unwrap();
        all.push(received);
        all.len()
    };
    let reply = match check {
        Err(code) => Reply::Refuse(if g.provider == SmsProvider::Aliyun {
            "SignatureDoesNotMatch"
        } else {
            let _ = code;
            "AuthFailure.SignatureFailure"
        }),
        Ok(()) => g
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Reply::Accept),
    };
    if let Reply::Hang(d) = reply {
        tokio::time::sleep(d).await;
    }
    let id = format!("gw-{n}");
    let body = match (g.provider, reply) {
        (SmsProvider::Aliyun, Reply::Refuse(code)) => {
            serde_json::json!({"Code": code, "Message": "refused", "RequestId": "r"})
        }
        (SmsProvider::Aliyun, _) => {
            serde_json::json!({"Code": "OK", "Message": "OK", "BizId": id, "RequestId": "r"})
        }
        (_, Reply::Refuse(code)) => serde_json::json!({"Response": {
            "Error": {"Code": code, "Message": "refused"}, "RequestId": "r"}}),
        (_, _) => serde_json::json!({"Response": {"SendStatusSet": [{
            "SerialNo": id, "PhoneNumber": "+86", "Fee": 1, "SessionContext": "",
            "Code": "Ok", "Message": "send success", "IsoCode": "CN"}], "RequestId": "r"}}),
    };
    HttpResponse::Ok().json(body)
}

// ---- the adapters and the sender ----------------------------------------------------------------

/// A template id for each message the service sends (login_code: SMS_465930001).
fn all_templates() -> BTreeMap<String, String> {
    campaign_lottery::domain::sms::TEMPLATE_NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| (name.to_string(), format!("SMS_46593000{}", i + 1)))
        .collect()
}

fn gateway_settings(provider: SmsProvider, endpoint: &str) -> SmsSettings {
    SmsSettings {
        provider,
        endpoint: Some(endpoint.into()),
        templates: all_templates(),
        sdk_app_id: "1400987654".into(),
        request_timeout_secs: 1,
        ..SmsSettings::default()
    }
}

async fn outbox(db: &TestDb) -> SharedStore {
    let s = store::connect(&db.url, store::ConnectLimits::with_connections(4))
        .await
        .unwrap();
    s.migrate().await.unwrap();
    s
}

fn sender(
    store: &SharedStore,
    settings: &SmsSettings,
    secret: &str,
    clock: &Arc<ManualClock>,
) -> Sender {
    let gateway = campaign_lottery::sms::gateway(settings, || Ok(Credentials::new(KEY_ID, secret)))
        .unwrap()
        .unwrap();
    Sender::new(store.clone(), gateway, settings, clock.clone())
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

async fn each_adapter_sends_signed_requests_and_retries_only_what_was_not_taken(
    provider: SmsProvider,
    throttled: &'static str,
) {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let store = outbox(&db).await;
    let gw = LocalGateway::start(provider, SECRET, vec![Reply::Refuse(throttled)]);
    let clock = Arc::new(ManualClock::new(now()));
    let settings = gateway_settings(provider, &gw.base);
    let s = sender(&store, &settings, SECRET, &clock);
    let sms = campaign_lottery::store::NewSms {
        send_before: Some(clock.now() + chrono::Duration::seconds(300)),
        ..code_sms(
            "13800138000",
            "【衡阳学法】您的验证码是 123456，5 分钟内有效。请勿告诉他人。",
        )
    };
    store.enqueue_sms(&sms, clock.now()).await.unwrap();

    // Throttled: certainly not taken, so queued again for after the wait.
    let turn = s.turn().await.unwrap();
    assert_eq!(
        turn,
        Turn {
            claimed: 1,
            retried: 1,
            ..Turn::default()
        }
    );
    assert_eq!(s.turn().await.unwrap().claimed, 0, "not before its wait");
    clock.advance(chrono::Duration::seconds(10));
    let turn = s.turn().await.unwrap();
    assert_eq!((turn.claimed, turn.sent), (1, 1));
    assert_eq!(s.turn().await.unwrap().claimed, 0, "sent once");

    let got = gw.received();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert!(r.signature_held, "{r:?}");
        assert_eq!(r.template, "SMS_465930001");
        assert_eq!(r.sign_name, "衡阳学法");
        // A template and its parameters, never the text.
        assert_eq!(r.params, ["123456", "5"]);
    }
    let expected_phone = match provider {
        SmsProvider::Aliyun => "13800138000",
        _ => "+8613800138000",
    };
    assert_eq!(got[0].phone, expected_phone);
    if provider == SmsProvider::Aliyun {
        assert_ne!(got[0].nonce, got[1].nonce, "a fresh nonce each try");
    }
    let m = &store.recent_sms(1).await.unwrap()[0];
    assert_eq!(got[1].reference, m.id.to_string());
    assert_eq!(m.status, Status::Sent);
    assert_eq!(m.attempts, 2);
    assert_eq!(m.gateway_id.as_deref(), Some("gw-2"));

    // With a wrong secret the gateway's check fails, and that is final.
    let wrong = sender(&store, &settings, "not-the-secret", &clock);
    store.enqueue_sms(&sms, clock.now()).await.unwrap();
    let turn = wrong.turn().await.unwrap();
    assert_eq!((turn.claimed, turn.failed), (1, 1));
    let m = &store.recent_sms(1).await.unwrap()[0];
    assert_eq!(m.status, Status::Failed);
    assert!(m.failure.as_deref().unwrap().contains("Signature"), "{m:?}");
    assert!(!gw.received()[2].signature_held);
    assert!(!m.failure.as_deref().unwrap().contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliyun_sends_signed_template_requests_and_retries_only_what_was_not_taken() {
    each_adapter_sends_signed_requests_and_retries_only_what_was_not_taken(
        SmsProvider::Aliyun,
        "Throttling.User",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tencent_sends_signed_template_requests_and_retries_only_what_was_not_taken() {
    each_adapter_sends_signed_requests_and_retries_only_what_was_not_taken(
        SmsProvider::Tencent,
        "RequestLimitExceeded",
    )
    .await;
}

/// At most once: a try whose answer never came may have gone out, so it is never made again;
/// a gateway that cannot be reached took nothing, so that one is tried again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_without_an_answer_is_never_repeated_and_one_without_a_connection_is() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let store = outbox(&db).await;
    let gw = LocalGateway::start(
        SmsProvider::Tencent,
        SECRET,
        vec![Reply::Hang(std::time::Duration::from_secs(3))],
    );
    let clock = Arc::new(ManualClock::new(now()));
    let s = sender(
        &store,
        &gateway_settings(SmsProvider::Tencent, &gw.base),
        SECRET,
        &clock,
    );
    store
        .enqueue_sms(&code_sms("13800138001", "code"), clock.now())
        .await
        .unwrap();
    let turn = s.turn().await.unwrap();
    assert_eq!((turn.claimed, turn.failed), (1, 1));
    let m = &store.recent_sms(1).await.unwrap()[0];
    assert_eq!(m.status, Status::Failed);
    assert!(m.failure.as_deref().unwrap().starts_with("outcome_unknown"));
    clock.advance(chrono::Duration::hours(1));
    assert_eq!(s.turn().await.unwrap().claimed, 0);
    assert_eq!(gw.received().len(), 1, "one request, never another");

    // Nobody listens at this address: nothing went out, so it waits and tries again.
    let closed = format!("http://127.0.0.1:{}/", common::free_port());
    let s = sender(
        &store,
        &gateway_settings(SmsProvider::Aliyun, &closed),
        SECRET,
        &clock,
    );
    store
        .enqueue_sms(&code_sms("13800138002", "code"), clock.now())
        .await
        .unwrap();
    let turn = s.turn().await.unwrap();
    assert_eq!((turn.claimed, turn.retried), (1, 1));
    let m = &store.pending_sms(1).await.unwrap()[0];
    assert_eq!((m.status, m.attempts), (Status::Queued, 1));
    assert!(m.failure.as_deref().unwrap().contains("no connection"));
    // Up to max_attempts, then it gives up.
    for _ in 0..4 {
        clock.advance(chrono::Duration::minutes(10));
        s.turn().await.unwrap();
    }
    let m = &store.recent_sms(1).await.unwrap()[0];
    assert_eq!((m.status, m.attempts), (Status::Failed, 5));
    assert!(m.failure.as_deref().unwrap().starts_with("gave_up after 5"));
}

/// The service with a gateway configured: the code reaches the phone through the gateway (the
/// test logs in with what the gateway received), the provider's delivery report is taken at its
/// token's address only, and the credentials appear in no log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_sends_login_codes_through_the_gateway_and_takes_its_reports() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let gw = LocalGateway::start(SmsProvider::Tencent, SECRET, vec![]);
    let env = [
        ("APP_SMS__PROVIDER", "tencent"),
        ("APP_SMS__ENDPOINT", gw.base.as_str()),
        ("APP_SMS__SDK_APP_ID", "1400987654"),
        ("APP_SMS__TEMPLATES__LOGIN_CODE", "SMS_465930001"),
        ("APP_SMS__TEMPLATES__PRIZE_NOTICE", "SMS_465930002"),
        ("APP_SMS__TEMPLATES__CLAIM_REMINDER", "SMS_465930003"),
        ("APP_SMS__TEMPLATES__REDEEMED", "SMS_465930004"),
        ("APP_SMS__TEMPLATES__REVERSED", "SMS_465930005"),
        ("APP_SMS__POLL_INTERVAL_MS", "50"),
        ("SMS_ACCESS_KEY_ID", KEY_ID),
        ("SMS_ACCESS_KEY_SECRET", SECRET),
        ("SMS_REPORT_TOKEN", "report-token-7c1d"),
    ];
    let service = common::start_process(&db.url, "campaign-demo.toml", &env)
        .unwrap_or_else(|(status, log)| panic!("did not start ({status}): {log:?}"));
    let client = reqwest::Client::new();
    let res = common::request_code_at(&client, &service.base, "13800138009").await;
    assert_eq!(res.status(), 202);
    let mut got = Vec::new();
    for _ in 0..100 {
        got = gw.received();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(got.len(), 1, "the code went to the gateway");
    assert!(got[0].signature_held);
    assert_eq!(got[0].phone, "+8613800138009");
    let code = got[0].params[0].clone();
    let res = client
        .post(format!("{}/api/login", service.base))
        .json(&serde_json::json!({"phone": "13800138009", "code": code, "consent": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        201,
        "registered with the code the gateway carried"
    );

    // The report, at the token's address only.
    let report = serde_json::json!([{"user_receive_time": "2026-07-01 08:03:04", "nationcode": "86",
        "mobile": "13800138009", "report_status": "SUCCESS", "errmsg": "DELIVRD",
        "description": "用户短信送达成功", "sid": "gw-1"}]);
    let post = |path: String| client.post(path).json(&report).send();
    let url = |token: &str| format!("{}/api/sms/reports/tencent?token={token}", service.base);
    for wrong in [
        url("wrong"),
        format!("{}/api/sms/reports/tencent", service.base),
        format!(
            "{}/api/sms/reports/aliyun?token=report-token-7c1d",
            service.base
        ),
    ] {
        let res = post(wrong).await.unwrap();
        assert_eq!(common::error_code(res).await, (404, "not_found".into()));
    }
    let res = client
        .post(url("report-token-7c1d"))
        .header("Content-Type", "application/json")
        .body("[{\"sid\": 5}]")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "not a report");
    let res = post(url("report-token-7c1d")).await.unwrap();
    assert_eq!(res.status(), 200);
    let answer: serde_json::Value = res.json().await.unwrap();
    assert_eq!(answer, serde_json::json!({"result": 0, "errmsg": "OK"}));
    let store = outbox(&db).await;
    let m = &store.recent_sms(1).await.unwrap()[0];
    assert_eq!(m.status, Status::Delivered);

    let logged = service.logged().join("\n");
    assert!(logged.contains("SMS sent"), "{logged}");
    assert!(!logged.contains(SECRET), "the secret was logged");
    assert!(
        !logged.contains("report-token-7c1d"),
        "the report token was logged"
    );
    assert!(!logged.contains("13800138009"), "a full number was logged");
}

/// A gateway configured without what it needs stops the service at start-up, naming it, and
/// says nothing of the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_without_its_settings_stops_the_start_naming_what_is_missing() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let base = [
        ("APP_SMS__PROVIDER", "aliyun"),
        ("APP_SMS__TEMPLATES__LOGIN_CODE", "SMS_1"),
        ("APP_SMS__TEMPLATES__PRIZE_NOTICE", "SMS_2"),
        ("APP_SMS__TEMPLATES__CLAIM_REMINDER", "SMS_3"),
        ("APP_SMS__TEMPLATES__REDEEMED", "SMS_4"),
        ("APP_SMS__TEMPLATES__REVERSED", "SMS_5"),
    ];
    let (status, log) = common::start_process(&db.url, "campaign-demo.toml", &base)
        .err()
        .expect("refused");
    assert!(!status.success());
    assert!(log.join("\n").contains("SMS_ACCESS_KEY_ID"), "{log:?}");
    let (_, log) = common::start_process(
        &db.url,
        "campaign-demo.toml",
        &[
            ("APP_SMS__PROVIDER", "aliyun"),
            ("SMS_ACCESS_KEY_ID", KEY_ID),
            ("SMS_ACCESS_KEY_SECRET", SECRET),
        ],
    )
    .err()
    .expect("refused");
    let log = log.join("\n");
    assert!(log.contains("login_code"), "{log}");
    assert!(!log.contains(SECRET));
}
