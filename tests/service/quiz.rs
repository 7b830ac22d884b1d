//! Participants and the law quiz through the HTTP API, once per backend.

use crate::common;

use campaign_lottery::domain::quiz::QuestionBank;
use chrono::{Duration, TimeZone, Utc};
use common::{error_code, repo_config_dir, settings, TestApp, TestDb};
use serde_json::{json, Value};
use std::collections::HashSet;

backend_tests!(
    signing_up_proves_the_phone_normalises_it_and_logs_in,
    full_width_phone_numbers_are_normalised,
    session_cookies_are_secure_behind_https,
    registration_mistakes_are_explained_and_write_nothing,
    the_answers_tell_a_stranger_nothing_about_who_takes_part,
    a_code_costs_a_solved_challenge_for_that_phone_once,
    a_script_without_the_phones_gets_no_participant,
    logging_in_again_by_sms_code,
    a_code_dies_after_five_wrong_tries,
    code_requests_are_throttled_per_phone_and_per_address,
    code_requests_are_capped_per_day_per_phone_and_per_address,
    past_the_campaigns_hourly_sms_budget_sending_pauses_and_the_console_says_so,
    the_per_address_limit_counts_the_address_the_proxy_appended,
    an_attempt_reveals_no_answer_before_submission,
    passing_holds_exactly_one_ticket_per_round,
    failing_explains_every_answer_and_gives_no_ticket,
    at_time_up_the_answers_given_are_scored_within_the_grace,
    the_report_counts_known_attempts_each_once,
    the_mistakes_are_kept_and_practised_without_a_trace,
    concurrent_passes_give_one_ticket,
    an_attempt_is_submitted_once_even_concurrently,
    passing_outside_every_window_says_when_the_next_opens,
    bad_submissions_are_refused_and_write_nothing,
    attempts_per_day_are_limited_even_concurrently,
);

const PHONE: &str = "13800138000";

fn bank() -> QuestionBank {
    QuestionBank::parse(&std::fs::read_to_string(repo_config_dir().join("questions.toml")).unwrap())
        .unwrap()
}

async fn json_of(res: reqwest::Response) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {e}: {text}"))
}

/// Signs up as a person does (a code by SMS, then the code with consent): the session token.
async fn register(app: &TestApp, phone: &str) -> String {
    app.sign_up(phone).await
}

async fn start(app: &TestApp, token: &str) -> Value {
    let res = app
        .post_json("/api/quiz/attempts", Some(token), &json!({}))
        .await;
    assert_eq!(res.status(), 201);
    json_of(res).await
}

/// Answers an attempt: right for the first `right` questions, wrong for the rest.
fn answers(attempt: &Value, right: usize) -> Value {
    let bank = bank();
    let list: Vec<Value> = attempt["questions"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let question = bank.get(q["id"].as_str().unwrap()).unwrap();
            let correct: Vec<&str> = question
                .correct
                .iter()
                .map(|&c| question.options[c].as_str())
                .collect();
            let options = q["options"].as_array().unwrap();
            let is_right = |o: &&Value| correct.contains(&o["text"].as_str().unwrap());
            let key = |o: &Value| o["key"].as_str().unwrap().to_owned();
            let keys: Vec<String> = if i < right {
                options.iter().filter(is_right).map(key).collect()
            } else {
                // One option that is wrong, or, where every option is right, one alone.
                vec![options
                    .iter()
                    .find(|o| !is_right(o))
                    .map(key)
                    .unwrap_or_else(|| key(&options[0]))]
            };
            json!({"question": q["id"], "choices": keys})
        })
        .collect();
    json!({ "answers": list })
}

async fn submit(app: &TestApp, token: &str, attempt: &Value, body: &Value) -> reqwest::Response {
    let path = format!(
        "/api/quiz/attempts/{}/submit",
        attempt["id"].as_str().unwrap()
    );
    app.post_json(&path, Some(token), body).await
}

/// How many participants and sessions there are.
async fn people(app: &TestApp) -> (i64, i64) {
    (
        app.db.scalar("SELECT COUNT(*) FROM participants").await,
        app.db
            .scalar("SELECT COUNT(*) FROM participant_sessions")
            .await,
    )
}

async fn outbox_code(app: &TestApp, phone: &str) -> String {
    common::sent_code(&app.db.url, phone).await
}

/// The code that reached the phone is the only way in: entered with consent the first time, it
/// registers the participant and opens the session.
async fn signing_up_proves_the_phone_normalises_it_and_logs_in(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let res = app.request_code("+86 138-0013-8000").await;
    assert_eq!(res.status(), 202);
    assert_eq!(json_of(res).await["sent_to"], "138****8000");
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM participants").await,
        0,
        "asking for a code makes no participant"
    );
    let code = common::sent_code(&app.db.url, PHONE).await;
    let res = app
        .post_json(
            "/api/login",
            None,
            &json!({"phone": "+86 138-0013-8000", "code": code,
                    "display_name": "  学法小明 ", "consent": true}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let cookie = res
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("clp_session=clp_"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP by default: {cookie}"
    );
    let body = json_of(res).await;
    assert_eq!(body["registered"], true);
    assert_eq!(body["participant"]["phone"], "138****8000");
    assert_eq!(body["participant"]["display_name"], "学法小明");
    assert_eq!(app.db.text("SELECT phone FROM participants").await, PHONE);
    let token = body["token"].as_str().unwrap();
    assert_ne!(
        app.db
            .text("SELECT token_hash FROM participant_sessions")
            .await,
        token,
        "only a hash is stored"
    );

    // The cookie works as well as the Bearer token.
    let cookie_value = cookie.split(';').next().unwrap();
    let res = app
        .client
        .get(app.url("/api/me"))
        .header("cookie", cookie_value)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let me = json_of(app.get("/api/me", Some(token)).await).await;
    assert_eq!(me["participant"]["phone"], "138****8000");
    assert_eq!(me["current_round"], 1);
    assert_eq!(me["tickets"], json!([]));
    assert!(
        !me.to_string().contains(PHONE),
        "no full phone number in the output"
    );

    // A Bearer session wins over a cookie sent with it (an API client that sends one means it).
    let other = app.sign_up("13900139000").await;
    let res = app
        .client
        .get(app.url("/api/me"))
        .header("cookie", cookie_value)
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(res).await["participant"]["phone"], "139****9000");

    let res = app.post_json("/api/logout", Some(token), &json!({})).await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        error_code(app.get("/api/me", Some(token)).await).await,
        (401, "login_required".into())
    );
    // No other way in: the registration endpoint of before is gone.
    let res = app
        .post_json(
            "/api/participants",
            None,
            &json!({"phone": "13700137000", "consent": true}),
        )
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM participants").await, 2);
}

/// Numbers typed on a Chinese keyboard: full-width digits, plus sign, spaces and dashes.
async fn full_width_phone_numbers_are_normalised(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let typed = "＋８６ １３８－００１３－８０００";
    let res = app.request_code(typed).await;
    assert_eq!(res.status(), 202);
    let code = common::sent_code(&app.db.url, PHONE).await;
    let res = app
        .post_json(
            "/api/login",
            None,
            &json!({"phone": typed, "code": code, "consent": true}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let first = json_of(res).await;
    assert_eq!(app.db.text("SELECT phone FROM participants").await, PHONE);
    // The same number in half-width digits is the same participant.
    app.clock.advance(Duration::seconds(61));
    let res = app.request_code("13800138000").await;
    assert_eq!(res.status(), 202);
    let code = common::sent_code(&app.db.url, PHONE).await;
    let res = app
        .post_json(
            "/api/login",
            None,
            &json!({"phone": "１３８００１３８０００", "code": code}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let again = json_of(res).await;
    assert_eq!(again["registered"], false);
    assert_eq!(again["participant"]["id"], first["participant"]["id"]);
}

/// Served over HTTPS (behind a TLS proxy), the session cookie is Secure.
async fn session_cookies_are_secure_behind_https(db: TestDb) {
    let mut loaded = common::settings(&db.url, &common::repo_config_dir(), "campaign-demo.toml");
    loaded.settings.server.https = true;
    let app = TestApp::spawn_with(db, &loaded, common::demo_now()).await;
    let res = common::sign_up_at(&app.client, &app.address, &app.db.url, PHONE, json!({})).await;
    assert_eq!(res.status(), 201);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

/// Mistakes in asking for a code or in entering it are named; they write nothing, and one made
/// with the right code in hand does not use the code up.
async fn registration_mistakes_are_explained_and_write_nothing(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let phone_cases = [
        (json!({"phone": "1380013800"}), 422, "invalid_phone"),
        (json!({"phone": "12800138000"}), 422, "invalid_phone"),
        (json!({"phone": "138-0013-800x"}), 422, "invalid_phone"),
        (json!({"phone": ""}), 422, "invalid_phone"),
        (json!({}), 422, "invalid_field"),
        (json!({"phone": 13800138000u64}), 422, "invalid_field"),
        (json!({"phone": PHONE, "extra": 1}), 422, "invalid_field"),
    ];
    for (body, status, code) in phone_cases {
        let res = app.post_json("/api/login/code", None, &body).await;
        assert_eq!(error_code(res).await, (status, code.to_owned()), "{body}");
    }
    let res = app
        .client
        .post(app.url("/api/login/code"))
        .header("content-type", "application/json")
        .body("{\"phone\": \"138")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (400, "malformed_json".into()));
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM login_codes").await, 0);
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM sms_outbox").await, 0);

    let res = app.request_code(PHONE).await;
    assert_eq!(res.status(), 202);
    let code = common::sent_code(&app.db.url, PHONE).await;
    let entry_cases = [
        (
            json!({"phone": PHONE, "code": code}),
            422,
            "consent_required",
        ),
        (
            json!({"phone": PHONE, "code": code, "consent": false}),
            422,
            "consent_required",
        ),
        (
            json!({"phone": PHONE, "code": code, "consent": "yes"}),
            422,
            "invalid_field",
        ),
        (
            json!({"phone": PHONE, "code": code, "consent": true, "display_name": "名".repeat(21)}),
            422,
            "invalid_display_name",
        ),
        (
            json!({"phone": PHONE, "code": code, "consent": true, "display_name": "a\u{0}b"}),
            422,
            "invalid_display_name",
        ),
        (
            json!({"phone": PHONE, "code": code, "consent": true, "display_name": "小\u{202e}明"}),
            422,
            "invalid_display_name",
        ),
        (
            json!({"phone": PHONE, "code": code, "consent": true, "display_name": "小\u{200b}明"}),
            422,
            "invalid_display_name",
        ),
        (
            json!({"phone": PHONE, "code": "12345", "consent": true}),
            422,
            "invalid_code",
        ),
        (
            json!({"phone": "1380013800", "code": code, "consent": true}),
            422,
            "invalid_phone",
        ),
    ];
    for (body, status, code) in entry_cases {
        let res = app.post_json("/api/login", None, &body).await;
        assert_eq!(error_code(res).await, (status, code.to_owned()), "{body}");
    }
    assert_eq!(people(&app).await, (0, 0), "participants, sessions");
    assert_eq!(
        app.db
            .scalar("SELECT CAST(SUM(tries) AS BIGINT) FROM login_codes")
            .await,
        0,
        "no mistake counted as a try"
    );
    // The code still works, once consent is given.
    let res = app
        .post_json(
            "/api/login",
            None,
            &json!({"phone": PHONE, "code": code, "consent": true}),
        )
        .await;
    assert_eq!(res.status(), 201);
}

/// Whether a phone takes part is nobody's business but its owner's: asking for a code and
/// entering a wrong one are answered alike for a phone that takes part and one that does not,
/// and signing up again only logs the participant in.
async fn the_answers_tell_a_stranger_nothing_about_who_takes_part(db: TestDb) {
    let app = TestApp::spawn(db).await;
    register(&app, PHONE).await;
    app.clock.advance(Duration::seconds(61));
    const NEW: &str = "13900139000";
    let mut answers = Vec::new();
    for phone in [PHONE, NEW] {
        let res = app.request_code(phone).await;
        let status = res.status().as_u16();
        let mut body = json_of(res).await;
        body["sent_to"] = json!("masked");
        let code = common::sent_code(&app.db.url, phone).await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let res = app
            .post_json(
                "/api/login",
                None,
                &json!({"phone": phone, "code": wrong, "consent": true}),
            )
            .await;
        answers.push((status, body, res.status().as_u16(), json_of(res).await));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 202);
    assert_eq!(answers[0].2, 401);

    // Signing up again with the phone that takes part: the same participant, its nickname kept.
    let code = common::sent_code(&app.db.url, PHONE).await;
    let res = app
        .post_json(
            "/api/login",
            None,
            &json!({"phone": "0086 13800138000", "code": code, "consent": true,
                    "display_name": "另一个"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(body["registered"], false);
    assert_eq!(body["participant"]["display_name"], Value::Null);
    assert_eq!(people(&app).await, (1, 2), "participants, sessions");
}

/// No SMS without the proof of work: a code request needs a solved challenge from this
/// service, for this phone, not expired, and each challenge buys one SMS. Every refusal writes
/// nothing.
async fn a_code_costs_a_solved_challenge_for_that_phone_once(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let ask = |phone: &'static str, altcha: Value| {
        let app = &app;
        async move {
            error_code(
                app.post_json(
                    "/api/login/code",
                    None,
                    &json!({"phone": phone, "altcha": altcha}),
                )
                .await,
            )
            .await
        }
    };
    let refused = |code: &str| (422, code.to_owned());
    assert_eq!(
        error_code(
            app.post_json("/api/login/code", None, &json!({ "phone": PHONE }))
                .await
        )
        .await,
        refused("challenge_required")
    );
    assert_eq!(ask(PHONE, json!("")).await, refused("challenge_required"));
    assert_eq!(
        ask(PHONE, json!("bm9pc2U=")).await,
        refused("challenge_invalid")
    );
    // Solved, but for another phone.
    let other = common::solved_challenge(&app.client, &app.address, "13900139000").await;
    assert_eq!(ask(PHONE, json!(other)).await, refused("challenge_invalid"));
    // Made by another service (another key): not ours.
    let foreign = {
        let db = TestDb::new(app.db.backend).await.unwrap();
        let elsewhere = TestApp::spawn(db).await;
        common::solved_challenge(&elsewhere.client, &elsewhere.address, PHONE).await
    };
    assert_eq!(
        ask(PHONE, json!(foreign)).await,
        refused("challenge_invalid")
    );
    // Too late.
    let late = common::solved_challenge(&app.client, &app.address, PHONE).await;
    app.clock.advance(Duration::seconds(301));
    assert_eq!(ask(PHONE, json!(late)).await, refused("challenge_expired"));
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM sms_outbox").await, 0);
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM spent_challenges").await,
        0
    );

    // The same phone typed another way is the same phone.
    let good = common::solved_challenge(&app.client, &app.address, "+86 138 0013 8000").await;
    let res = app
        .post_json(
            "/api/login/code",
            None,
            &json!({"phone": PHONE, "altcha": good}),
        )
        .await;
    assert_eq!(res.status(), 202);
    // Once only, also a minute later when the phone may have another code.
    app.clock.advance(Duration::seconds(61));
    let res = app
        .post_json(
            "/api/login/code",
            None,
            &json!({"phone": PHONE, "altcha": good}),
        )
        .await;
    assert_eq!(error_code(res).await, (409, "challenge_used".into()));
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM sms_outbox").await, 1);
    // A challenge for a number that is none is not made.
    let res = app
        .post_json("/api/login/challenge", None, &json!({"phone": "12345"}))
        .await;
    assert_eq!(error_code(res).await, (422, "invalid_phone".into()));
}

/// A script with no access to the phones' SMS tries 1 000 sign-ups from one address, the way a
/// script would: a code for each number (most refused past the address limit), then guessed codes
/// with consent, up to each code's five tries, and the old registration endpoint. Nobody is
/// created. (A guess is right once in a million; 100 guesses fail by chance one run in 10 000.)
async fn a_script_without_the_phones_gets_no_participant(db: TestDb) {
    let mut loaded = settings(&db.url, &repo_config_dir(), "campaign-demo.toml");
    loaded.settings.login.address_codes_per_hour = 20;
    let app = TestApp::spawn_with(db, &loaded, common::demo_now()).await;
    let mut sent = 0;
    for i in 0..1000 {
        let phone = format!("1391{:07}", i);
        let res = app.request_code(&phone).await;
        match res.status().as_u16() {
            202 => {
                sent += 1;
                for guess in 0..6 {
                    let res = app
                        .post_json(
                            "/api/login",
                            None,
                            &json!({"phone": phone, "code": format!("{:06}", guess * 111_111),
                                    "consent": true}),
                        )
                        .await;
                    assert!(
                        [401, 422].contains(&res.status().as_u16()),
                        "guess {guess} for {phone}: {}",
                        res.status()
                    );
                }
            }
            429 => {}
            other => panic!("code request {i}: {other}"),
        }
        let res = app
            .post_json(
                "/api/participants",
                None,
                &json!({"phone": phone, "consent": true}),
            )
            .await;
        assert_eq!(res.status(), 404);
    }
    assert_eq!(sent, 20, "the address limit held the rest back");
    assert_eq!(people(&app).await, (0, 0), "participants, sessions");
}

async fn logging_in_again_by_sms_code(db: TestDb) {
    let app = TestApp::spawn(db).await;
    register(&app, PHONE).await;
    app.clock.advance(Duration::seconds(61));
    let res = app.request_code("138 0013 8000").await;
    assert_eq!(res.status(), 202);
    let sent = json_of(res).await;
    assert_eq!(sent["sent_to"], "138****8000");
    assert_eq!(sent["expires_in_seconds"], 300);
    assert_eq!(sent["resend_in_seconds"], 60, "the page counts down to it");
    // Asked again at once: refused with the wait, and the code sent stays the one to enter.
    let again = app.request_code(PHONE).await;
    assert_eq!(again.status(), 429);
    assert_eq!(again.headers()["retry-after"], "60");
    let code = outbox_code(&app, PHONE).await;
    assert_eq!(code.len(), 6);
    assert!(app.store.pending_sms(10).await.unwrap()[0]
        .body
        .contains("5 分钟内有效"));
    assert_ne!(
        app.db.text("SELECT code_hash FROM login_codes").await,
        code,
        "only a hash is stored"
    );

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = app
        .post_json("/api/login", None, &json!({"phone": PHONE, "code": wrong}))
        .await;
    let (status, text) = (res.status().as_u16(), res.text().await.unwrap());
    assert_eq!(status, 401);
    assert!(
        text.contains("wrong_code") && text.contains("还可以再试 4 次"),
        "{text}"
    );
    let res = app
        .post_json(
            "/api/login",
            None,
            &json!({"phone": PHONE, "code": "12ab56"}),
        )
        .await;
    assert_eq!(error_code(res).await, (422, "invalid_code".into()));

    let res = app
        .post_json("/api/login", None, &json!({"phone": PHONE, "code": code}))
        .await;
    assert_eq!(res.status(), 200);
    assert!(res
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("clp_session="));
    let token = json_of(res).await["token"].as_str().unwrap().to_owned();
    assert_eq!(
        json_of(app.get("/api/me", Some(&token)).await).await["participant"]["phone"],
        "138****8000"
    );

    // Single use.
    let res = app
        .post_json("/api/login", None, &json!({"phone": PHONE, "code": code}))
        .await;
    assert_eq!(error_code(res).await, (401, "code_expired".into()));

    // A new code, five minutes later, is dead.
    app.clock.advance(Duration::seconds(61));
    assert_eq!(app.request_code(PHONE).await.status(), 202);
    let code = outbox_code(&app, PHONE).await;
    app.clock.advance(Duration::seconds(301));
    let res = app
        .post_json("/api/login", None, &json!({"phone": PHONE, "code": code}))
        .await;
    assert_eq!(error_code(res).await, (401, "code_expired".into()));
}

async fn a_code_dies_after_five_wrong_tries(db: TestDb) {
    let app = TestApp::spawn(db).await;
    register(&app, PHONE).await;
    app.clock.advance(Duration::seconds(61));
    app.request_code(PHONE).await;
    let code = outbox_code(&app, PHONE).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // Five wrong tries at once: each counts, none slips past the limit.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (client, url) = (app.client.clone(), app.url("/api/login"));
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"phone": PHONE, "code": wrong}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    let res = app
        .post_json("/api/login", None, &json!({"phone": PHONE, "code": code}))
        .await;
    assert_eq!(error_code(res).await, (401, "too_many_tries".into()));
    assert_eq!(
        app.db
            .scalar("SELECT COUNT(*) FROM participant_sessions")
            .await,
        1,
        "only the registration's"
    );
}

async fn code_requests_are_throttled_per_phone_and_per_address(db: TestDb) {
    let mut loaded = settings(&db.url, &repo_config_dir(), "campaign-demo.toml");
    loaded.settings.login.address_codes_per_hour = 20;
    let app = TestApp::spawn_with(db, &loaded, common::demo_now()).await;
    assert_eq!(app.request_code(PHONE).await.status(), 202);
    let res = app.request_code(PHONE).await;
    let retry: i64 = res
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(error_code(res).await, (429, "too_many_requests".into()));
    assert_eq!(
        app.store.pending_sms(100).await.unwrap().len(),
        1,
        "nothing sent when throttled"
    );
    // Five an hour per phone.
    for _ in 0..4 {
        app.clock.advance(Duration::seconds(61));
        assert_eq!(app.request_code(PHONE).await.status(), 202);
    }
    app.clock.advance(Duration::seconds(61));
    let res = app.request_code(PHONE).await;
    assert_eq!(res.status(), 429);
    let retry: i64 = res
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 60 && retry <= 3600, "{retry}");
    // Twenty an hour per address, whatever the phones.
    app.clock.advance(Duration::hours(2));
    for i in 0..20 {
        let phone = format!("1390013{:04}", i);
        let res = app.request_code(&phone).await;
        assert_eq!(res.status(), 202, "code {i}");
    }
    let res = app.request_code("13700137000").await;
    assert_eq!(error_code(res).await, (429, "too_many_requests".into()));
}

/// Ten codes a day per phone and, here, thirty a day per address, counted in the database: past
/// them the answer is 429 with the wait until the oldest leaves the day; nothing is sent.
async fn code_requests_are_capped_per_day_per_phone_and_per_address(db: TestDb) {
    let mut loaded = settings(&db.url, &repo_config_dir(), "campaign-demo.toml");
    loaded.settings.login.address_codes_per_hour = 100;
    loaded.settings.login.address_codes_per_day = 30;
    let app = TestApp::spawn_with(db, &loaded, common::demo_now()).await;
    // Five in the first hour, five in the second: the hourly cap holds each time.
    for i in 0..10 {
        if i == 5 {
            app.clock.advance(Duration::hours(1));
        }
        assert_eq!(app.request_code(PHONE).await.status(), 202, "code {i}");
        app.clock.advance(Duration::seconds(61));
    }
    app.clock.advance(Duration::hours(2));
    let res = app.request_code(PHONE).await;
    let retry: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(error_code(res).await, (429, "too_many_requests".into()));
    // The first code was about 3 h 10 min ago: it leaves the day in about 20 h 50 min.
    assert!((20 * 3600..21 * 3600).contains(&retry), "{retry}");
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM sms_outbox").await, 10);

    // The address: thirty in the day (ten above, twenty more phones), then no more.
    for i in 0..20 {
        let phone = format!("1390013{:04}", i);
        assert_eq!(app.request_code(&phone).await.status(), 202, "phone {i}");
    }
    let res = app.request_code("13700137000").await;
    assert_eq!(error_code(res).await, (429, "too_many_requests".into()));
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM sms_outbox").await, 30);
    // A day after the first code, the address may ask again.
    app.clock.advance(Duration::hours(21));
    assert_eq!(app.request_code("13700137000").await.status(), 202);
}

/// The campaign-wide hourly SMS budget (here 3): past it code requests are refused `sms_paused`
/// with the wait, nothing is queued, the operators' stats say sending is paused, and the metric
/// counts the refusals; when the hour has room again, sending resumes.
async fn past_the_campaigns_hourly_sms_budget_sending_pauses_and_the_console_says_so(db: TestDb) {
    let mut loaded = settings(&db.url, &repo_config_dir(), "campaign-demo.toml");
    loaded.settings.login.campaign_sms_per_hour = 3;
    let app = TestApp::spawn_with(db, &loaded, common::demo_now()).await;
    let auditor = app
        .token(campaign_lottery::domain::token::Role::Auditor, "审计")
        .await;
    for i in 0..3 {
        let phone = format!("1390013{:04}", i);
        assert_eq!(app.request_code(&phone).await.status(), 202, "code {i}");
        app.clock.advance(Duration::minutes(10));
    }
    let sms = || async {
        json_of(app.get("/api/admin/stats", Some(&auditor)).await).await["sms"].clone()
    };
    assert_eq!(
        sms().await,
        json!({"last_hour": 3, "hourly_budget": 3, "paused": true, "gateway": "outbox",
               "last_day": {"queued": 3, "sending": 0, "sent": 0, "delivered": 0, "failed": 0}})
    );
    let res = app.request_code("13700137000").await;
    let retry: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, code) = error_code(res).await;
    assert_eq!((status, code.as_str()), (429, "sms_paused"));
    // The first SMS, 30 minutes ago, leaves the hour in 30 minutes.
    assert_eq!(retry, 30 * 60);
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM sms_outbox").await, 3);
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM login_codes").await, 3);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sms_paused_refusals_total") && !l.ends_with(" 0")),
        "{metrics}"
    );

    app.clock.advance(Duration::minutes(31));
    assert_eq!(
        sms().await,
        json!({"last_hour": 2, "hourly_budget": 3, "paused": false, "gateway": "outbox",
               "last_day": {"queued": 3, "sending": 0, "sent": 0, "delivered": 0, "failed": 0}})
    );
    assert_eq!(app.request_code("13700137000").await.status(), 202);
}

/// Behind one trusted proxy the address it appended to X-Forwarded-For is the client's, whatever
/// the client wrote to the left of it; without a trusted proxy the header is not read at all.
async fn the_per_address_limit_counts_the_address_the_proxy_appended(db: TestDb) {
    let mut loaded = settings(&db.url, &repo_config_dir(), "campaign-demo.toml");
    loaded.settings.login.address_codes_per_hour = 3;
    loaded.settings.server.trusted_proxies = 1;
    let app = TestApp::spawn_with(db, &loaded, common::demo_now()).await;
    let ask = |phone: String, forwarded: String| {
        let app = &app;
        async move {
            common::request_code_from(&app.client, &app.address, &phone, Some(&forwarded))
                .await
                .status()
                .as_u16()
        }
    };
    for i in 0..4 {
        let phone = format!("1390013{:04}", i);
        // A new made-up address each time, left of the one the proxy appended.
        let status = ask(phone, format!("10.9.8.{i}, 203.0.113.7")).await;
        assert_eq!(status, if i < 3 { 202 } else { 429 }, "request {i}");
    }
    // Another client behind the same proxy is not held back.
    assert_eq!(ask("13700137000".into(), "203.0.113.8".into()).await, 202);

    // Without a trusted proxy the header changes nothing: the peer is the client.
    let db = TestDb::new(app.db.backend).await.unwrap();
    let mut loaded = settings(&db.url, &repo_config_dir(), "campaign-demo.toml");
    loaded.settings.login.address_codes_per_hour = 3;
    let direct = TestApp::spawn_with(db, &loaded, common::demo_now()).await;
    for i in 0..4 {
        let phone = format!("1390014{:04}", i);
        let forwarded = format!("203.0.113.{i}");
        let status =
            common::request_code_from(&direct.client, &direct.address, &phone, Some(&forwarded))
                .await
                .status();
        assert_eq!(status, if i < 3 { 202 } else { 429 }, "direct request {i}");
    }
}

async fn an_attempt_reveals_no_answer_before_submission(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = register(&app, PHONE).await;
    let attempt = start(&app, &token).await;
    let questions = attempt["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 10);
    let ids: HashSet<&str> = questions
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 10);
    assert_eq!(questions[0]["options"][0]["key"], "A");
    let text = attempt.to_string();
    for leak in ["correct", "explanation"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    assert_eq!(attempt["deadline"], "2026-11-26T10:10:00+08:00");
    assert_eq!(attempt["seconds_left"], 600);
    assert_eq!(attempt["pass_mark"], 8);
    assert_eq!(attempt["round"], 1);
    assert_eq!(attempt["submitted"], false);
    let again = json_of(
        app.get(
            &format!("/api/quiz/attempts/{}", attempt["id"].as_str().unwrap()),
            Some(&token),
        )
        .await,
    )
    .await;
    assert_eq!(again["questions"], attempt["questions"]);
    // Another attempt asks other questions or in another order.
    let other = start(&app, &token).await;
    assert_ne!(other["questions"], attempt["questions"]);
}

async fn passing_holds_exactly_one_ticket_per_round(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = register(&app, PHONE).await;
    let attempt = start(&app, &token).await;
    let res = submit(&app, &token, &attempt, &answers(&attempt, 8)).await;
    assert_eq!(res.status(), 200);
    let result = json_of(res).await;
    assert_eq!(result["score"], 8);
    assert_eq!(result["passed"], true);
    assert_eq!(result["ticket"]["status"], "issued");
    assert_eq!(result["ticket"]["round"], 1);
    let ticket = result["ticket"]["ticket"].as_str().unwrap().to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&ticket).unwrap().get_version_num(),
        4,
        "a random UUID"
    );
    assert!(result["ticket"]["message"]
        .as_str()
        .unwrap()
        .contains("第 1 期抽奖券"));

    let second = start(&app, &token).await;
    let result = json_of(submit(&app, &token, &second, &answers(&second, 10)).await).await;
    assert_eq!(result["ticket"]["status"], "already_held");
    assert_eq!(result["ticket"]["ticket"], ticket.as_str());
    assert!(result["ticket"]["message"]
        .as_str()
        .unwrap()
        .contains("已持有第 1 期抽奖券"));

    let me = json_of(app.get("/api/me", Some(&token)).await).await;
    assert_eq!(me["tickets"].as_array().unwrap().len(), 1);
    assert_eq!(me["tickets"][0]["round"], 1);
    assert_eq!(me["tickets"][0]["ticket"], ticket.as_str());
    assert_eq!(me["tickets"][0]["round_state"], "open");
    assert_eq!(me["holds_current_ticket"], true);

    // The next week's round is a new ticket.
    app.clock.advance(Duration::days(7));
    let third = start(&app, &token).await;
    let result = json_of(submit(&app, &token, &third, &answers(&third, 9)).await).await;
    assert_eq!(result["ticket"]["status"], "issued");
    assert_eq!(result["ticket"]["round"], 2);
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM tickets").await, 2);
    // The stored result is shown again.
    let shown = json_of(
        app.get(
            &format!("/api/quiz/attempts/{}", third["id"].as_str().unwrap()),
            Some(&token),
        )
        .await,
    )
    .await;
    assert_eq!(shown["submitted"], true);
    assert_eq!(shown["result"]["score"], 9);
    assert_eq!(shown["result"]["ticket"]["status"], "issued");
}

async fn failing_explains_every_answer_and_gives_no_ticket(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = register(&app, PHONE).await;
    let attempt = start(&app, &token).await;
    let result = json_of(submit(&app, &token, &attempt, &answers(&attempt, 7)).await).await;
    assert_eq!(result["score"], 7);
    assert_eq!(result["passed"], false);
    assert_eq!(result["ticket"]["status"], "not_passed");
    assert_eq!(result["ticket"]["ticket"], Value::Null);
    let results = result["results"].as_array().unwrap();
    assert_eq!(results.len(), 10);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["correct"], i < 7);
        assert!(!r["explanation"].as_str().unwrap().is_empty());
        assert!(!r["correct_choices"].as_array().unwrap().is_empty());
    }
    assert_ne!(results[9]["your_choices"], results[9]["correct_choices"]);
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM tickets").await, 0);
}

/// The page submits by itself when the time runs out: what was answered is scored, the rest
/// counts as wrong, and a request slowed by a weak signal still arrives in time.
async fn at_time_up_the_answers_given_are_scored_within_the_grace(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = register(&app, PHONE).await;
    let attempt = start(&app, &token).await;
    let mut given = answers(&attempt, 10);
    // Eight answered right, one left empty, one not sent at all.
    given["answers"][8]["choices"] = json!([]);
    given["answers"].as_array_mut().unwrap().pop();
    // Without `time_up` that is a mistake to point out.
    assert_eq!(
        error_code(submit(&app, &token, &attempt, &given).await).await,
        (422, "missing_answer".into())
    );
    given["time_up"] = json!(true);
    // Past the grace it is too late.
    app.clock
        .advance(Duration::minutes(10) + Duration::seconds(31));
    assert_eq!(
        error_code(submit(&app, &token, &attempt, &given).await).await,
        (410, "attempt_expired".into())
    );
    app.clock.advance(Duration::seconds(-11));
    let result = json_of(submit(&app, &token, &attempt, &given).await).await;
    assert_eq!(
        (result["score"].clone(), result["passed"].clone()),
        (json!(8), json!(true))
    );
    assert_eq!(result["ticket"]["status"], "issued");
    let results = result["results"].as_array().unwrap();
    assert_eq!(results.len(), 10);
    for r in &results[8..] {
        assert_eq!(r["correct"], false);
        assert_eq!(r["your_choices"], json!([]));
        assert!(!r["correct_choices"].as_array().unwrap().is_empty());
    }
    // Shown again later, scored the same from what was stored.
    let path = format!("/api/quiz/attempts/{}", attempt["id"].as_str().unwrap());
    let shown = json_of(app.get(&path, Some(&token)).await).await;
    assert_eq!(shown["result"]["score"], 8);
    assert_eq!(shown["result"]["results"][9]["correct"], false);
}

/// The campaign's figures, built from attempts whose answers are known: every figure is what
/// they add up to, each attempt counted once however many reports and tallies run at once.
async fn the_report_counts_known_attempts_each_once(db: TestDb) {
    use campaign_lottery::domain::token::Role;
    let app = TestApp::spawn(db).await;
    let auditor = app.token(Role::Auditor, "审计").await;
    let a = register(&app, "13800138001").await;
    let b = register(&app, "13800138002").await;
    let c = register(&app, "13800138003").await;
    // What each question should add up to: (answered, right).
    let mut expected: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for (token, right) in [(&a, 10), (&a, 7), (&b, 8)] {
        let attempt = start(&app, token).await;
        for (i, q) in attempt["questions"].as_array().unwrap().iter().enumerate() {
            let e = expected
                .entry(q["id"].as_str().unwrap().to_owned())
                .or_default();
            e.0 += 1;
            e.1 += u64::from(i < right);
        }
        let res = submit(&app, token, &attempt, &answers(&attempt, right)).await;
        assert_eq!(res.status(), 200);
    }
    // Started and never submitted: counted as started once its time is up.
    start(&app, &c).await;

    assert_eq!(
        error_code(app.get("/api/admin/report", None).await).await,
        (401, "missing_token".into())
    );
    assert_eq!(
        error_code(
            app.get("/api/admin/report?min_answers=some", Some(&auditor))
                .await
        )
        .await
        .0,
        400
    );
    // Two reports at once tally each attempt once; a third sees the same.
    let (x, y) = tokio::join!(
        app.get("/api/admin/report?min_answers=1", Some(&auditor)),
        app.get("/api/admin/report?min_answers=1", Some(&auditor))
    );
    let (x, y) = (json_of(x).await, json_of(y).await);
    let r = json_of(
        app.get("/api/admin/report?min_answers=1", Some(&auditor))
            .await,
    )
    .await;
    for other in [&x, &y] {
        assert_eq!(other["per_question"], r["per_question"]);
        assert_eq!(other["attempts"], r["attempts"]);
    }
    assert_eq!(
        r["attempts_started"], 3,
        "the fourth may still be submitted"
    );
    assert_eq!(r["attempts"], 3);
    assert_eq!(r["participants"], 2);
    assert_eq!(r["passes"], 2);
    assert_eq!(r["pass_rate"], 0.6667);
    assert_eq!(
        (r["answered"].clone(), r["correct"].clone()),
        (json!(30), json!(25))
    );
    assert_eq!(r["accuracy"], 0.8333);
    let round = &r["per_round"][0];
    assert_eq!(
        (round["round"].clone(), round["attempts"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(round["participants"], 2);
    assert_eq!(r["per_day"].as_array().unwrap().len(), 1);
    assert_eq!(r["per_day"][0]["participants"], 2);
    assert_eq!(r["started_per_day"][0]["started"], 3);
    // Per question, exactly what the answers add up to; per law, their sums.
    let shown: std::collections::BTreeMap<String, (u64, u64)> = r["per_question"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            assert!(!q["text"].as_str().unwrap().is_empty());
            (
                q["id"].as_str().unwrap().to_owned(),
                (
                    q["answered"].as_u64().unwrap(),
                    q["correct"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(shown, expected);
    let topics = r["per_topic"].as_array().unwrap();
    assert_eq!(
        topics
            .iter()
            .map(|t| t["answered"].as_u64().unwrap())
            .sum::<u64>(),
        30
    );
    let bank = bank();
    for t in topics {
        let of_topic: u64 = expected
            .iter()
            .filter(|(id, _)| bank.get(id).unwrap().topic == t["topic"].as_str().unwrap())
            .map(|(_, (_, right))| right)
            .sum();
        assert_eq!(t["correct"].as_u64().unwrap(), of_topic, "{t}");
    }
    // The hardest: none answered right less often than the first.
    let hardest = r["hardest"].as_array().unwrap();
    assert!(!hardest.is_empty() && hardest.len() <= 10);
    let worst = hardest[0]["accuracy"].as_f64().unwrap();
    assert!(r["per_question"]
        .as_array()
        .unwrap()
        .iter()
        .all(|q| q["accuracy"].as_f64().unwrap() >= worst));
    // Prizes: round 1 holds the two passers' tickets.
    assert_eq!(r["prizes_per_round"][0]["tickets"], 2);
    assert_eq!(
        r["venues"].as_array().unwrap().len(),
        app.campaign.venues.len()
    );
    // With the default threshold (20 answers) no question of three attempts qualifies. Past
    // the fourth's time, it counts as started, and nothing else changes.
    app.clock.advance(Duration::minutes(11));
    let later = json_of(app.get("/api/admin/report", Some(&auditor)).await).await;
    assert_eq!(later["hardest"], json!([]));
    assert_eq!(later["attempts_started"], 4);
    assert_eq!(later["started_per_day"][0]["started"], 4);
    assert_eq!(later["per_question"], r["per_question"]);
    assert_eq!(
        (later["attempts"].clone(), later["participants"].clone()),
        (json!(3), json!(2))
    );
    // A participant is no auditor.
    assert_eq!(
        app.get("/api/admin/report", Some(&a)).await.status(),
        401,
        "a session token is not a staff token"
    );
}

/// 错题本: the questions answered wrong, with the right answer and the explanation; practice
/// checks them again and records nothing, and only one's own mistakes can be practised.
async fn the_mistakes_are_kept_and_practised_without_a_trace(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = register(&app, PHONE).await;
    let empty = json_of(app.get("/api/me/mistakes", Some(&token)).await).await;
    assert_eq!(empty["questions"], json!([]));
    let attempt = start(&app, &token).await;
    let res = submit(&app, &token, &attempt, &answers(&attempt, 7)).await;
    assert_eq!(res.status(), 200);
    let bank = bank();
    let missed: Vec<String> = attempt["questions"].as_array().unwrap()[7..]
        .iter()
        .map(|q| q["id"].as_str().unwrap().to_owned())
        .collect();
    let list = json_of(app.get("/api/me/mistakes", Some(&token)).await).await;
    let shown = list["questions"].as_array().unwrap();
    let mut ids: Vec<String> = shown
        .iter()
        .map(|q| q["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = missed.clone();
    expected.sort();
    assert_eq!(ids, expected, "the three answered wrong");
    let keys = campaign_lottery::domain::quiz::KEYS;
    for q in shown {
        let b = bank.get(q["id"].as_str().unwrap()).unwrap();
        // The bank's own order: A is the bank's first option.
        assert_eq!(q["options"][0]["text"], b.options[0].as_str());
        let right: Vec<&str> = b.correct.iter().map(|&i| keys[i]).collect();
        assert_eq!(q["correct_choices"], json!(right));
        assert_eq!(q["explanation"], b.explanation.as_str());
        assert_eq!(
            (q["times_wrong"].clone(), q["right_since"].clone()),
            (json!(1), json!(false))
        );
    }

    let before = (
        app.db.scalar("SELECT COUNT(*) FROM quiz_attempts").await,
        app.db.scalar("SELECT COUNT(*) FROM tickets").await,
    );
    let q = bank.get(&missed[0]).unwrap();
    let right: Vec<&str> = q.correct.iter().map(|&i| keys[i]).collect();
    let practise = |body: Value| {
        let (app, token) = (&app, &token);
        async move { app.post_json("/api/me/practice", Some(token), &body).await }
    };
    let ok = json_of(practise(json!({"question": q.id, "choices": right})).await).await;
    assert_eq!(ok["correct"], true);
    assert_eq!(ok["correct_choices"], json!(right));
    assert!(!ok["explanation"].as_str().unwrap().is_empty());
    let wrong = (0..q.options.len())
        .find(|k| !q.correct.contains(k))
        .unwrap_or(0);
    let no = json_of(practise(json!({"question": q.id, "choices": [keys[wrong]]})).await).await;
    assert_eq!(no["correct"], false);
    // Only one's own mistakes: a question answered right (its answer would be news) is refused.
    let answered_right = attempt["questions"][0]["id"].as_str().unwrap();
    assert_eq!(
        error_code(practise(json!({"question": answered_right, "choices": ["A"]})).await).await,
        (404, "not_in_mistakes".into())
    );
    assert_eq!(
        error_code(practise(json!({"question": q.id, "choices": ["Z"]})).await).await,
        (422, "unknown_option".into())
    );
    assert_eq!(
        error_code(practise(json!({"question": q.id, "choices": []})).await).await,
        (422, "missing_answer".into())
    );
    assert_eq!(
        error_code(practise(json!({"question": q.id})).await)
            .await
            .0,
        422
    );
    assert_eq!(
        error_code(
            app.post_json(
                "/api/me/practice",
                None,
                &json!({"question": q.id, "choices": right})
            )
            .await
        )
        .await,
        (401, "login_required".into())
    );
    assert_eq!(
        (
            app.db.scalar("SELECT COUNT(*) FROM quiz_attempts").await,
            app.db.scalar("SELECT COUNT(*) FROM tickets").await,
        ),
        before,
        "practice records nothing"
    );
    // Another participant's mistakes are not mine.
    let other = register(&app, "13800138009").await;
    assert_eq!(
        error_code(
            app.post_json(
                "/api/me/practice",
                Some(&other),
                &json!({"question": q.id, "choices": right})
            )
            .await
        )
        .await,
        (404, "not_in_mistakes".into())
    );
}

async fn concurrent_passes_give_one_ticket(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = register(&app, PHONE).await;
    let mut attempts = Vec::new();
    for _ in 0..6 {
        attempts.push(start(&app, &token).await);
    }
    let mut tasks = Vec::new();
    for a in attempts {
        let (client, token) = (app.client.clone(), token.clone());
        let url = app.url(&format!(
            "/api/quiz/attempts/{}/submit",
            a["id"].as_str().unwrap()
        ));
        let body = answers(&a, 10);
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }));
    }
    let mut statuses = Vec::new();
    let mut ids = HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        statuses.push(r["ticket"]["status"].as_str().unwrap().to_owned());
        ids.insert(r["ticket"]["ticket"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        statuses.iter().filter(|s| *s == "issued").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "already_held").count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(ids.len(), 1, "everyone is told the same ticket");
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM tickets").await, 1);
}

async fn an_attempt_is_submitted_once_even_concurrently(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = register(&app, PHONE).await;
    let attempt = start(&app, &token).await;
    let url = app.url(&format!(
        "/api/quiz/attempts/{}/submit",
        attempt["id"].as_str().unwrap()
    ));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (client, token, url) = (app.client.clone(), token.clone(), url.clone());
        // Different answers each time: only one set may ever be recorded.
        let body = answers(&attempt, 3 + i);
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|&&c| c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 409).count(), 7, "{codes:?}");
    let res = submit(&app, &token, &attempt, &answers(&attempt, 10)).await;
    assert_eq!(error_code(res).await, (409, "already_submitted".into()));
    assert!(app.db.scalar("SELECT COUNT(*) FROM tickets").await <= 1);
}

async fn passing_outside_every_window_says_when_the_next_opens(db: TestDb) {
    // The real campaign: round 1 opens 2024-07-15 00:00 in Shanghai.
    let loaded = settings(&db.url, &repo_config_dir(), "campaign.toml");
    let before = Utc.with_ymd_and_hms(2024, 7, 10, 2, 0, 0).unwrap();
    let app = TestApp::spawn_with(db, &loaded, before).await;
    let token = register(&app, PHONE).await;
    let attempt = start(&app, &token).await;
    assert_eq!(attempt["round"], Value::Null);
    let result = json_of(submit(&app, &token, &attempt, &answers(&attempt, 10)).await).await;
    assert_eq!(result["passed"], true);
    assert_eq!(result["ticket"]["status"], "no_open_round");
    let message = result["ticket"]["message"].as_str().unwrap();
    assert!(
        message.contains("第 1 期将于 2024年07月15日 00:00 开始"),
        "{message}"
    );
    app.clock
        .set(Utc.with_ymd_and_hms(2024, 12, 1, 0, 0, 0).unwrap());
    // Months later the first session has expired (30 days); a newcomer tries.
    assert_eq!(
        error_code(app.get("/api/me", Some(&token)).await).await,
        (401, "login_required".into())
    );
    let token = register(&app, "13900139000").await;
    let attempt = start(&app, &token).await;
    let result = json_of(submit(&app, &token, &attempt, &answers(&attempt, 10)).await).await;
    assert!(result["ticket"]["message"]
        .as_str()
        .unwrap()
        .contains("都已结束"));
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM tickets").await, 0);
}

async fn bad_submissions_are_refused_and_write_nothing(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = register(&app, PHONE).await;
    let other = register(&app, "13900139000").await;
    let attempt = start(&app, &token).await;
    let good = answers(&attempt, 10);
    let list = good["answers"].as_array().unwrap().clone();
    let outsider = bank()
        .questions()
        .iter()
        .find(|q| list.iter().all(|a| a["question"] != q.id.as_str()))
        .unwrap()
        .id
        .clone();
    let with = |f: &dyn Fn(&mut Vec<Value>)| {
        let mut l = list.clone();
        f(&mut l);
        json!({ "answers": l })
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            with(&|l| l.push(json!({"question": outsider, "choices": ["A"]}))),
            422,
            "answer_not_in_attempt",
        ),
        (
            with(&|l| {
                let first = l[0].clone();
                l.push(first)
            }),
            422,
            "duplicate_answer",
        ),
        (
            with(&|l| {
                l.pop();
            }),
            422,
            "missing_answer",
        ),
        (
            with(&|l| l[0]["choices"] = json!(["Z"])),
            422,
            "unknown_option",
        ),
        (
            with(&|l| l[0]["choices"] = json!([])),
            422,
            "missing_answer",
        ),
        (
            with(&|l| l[0]["choices"] = json!("A")),
            422,
            "invalid_field",
        ),
        (with(&|l| l[0]["question"] = json!(7)), 422, "invalid_field"),
        (json!({"answers": {"a": 1}}), 422, "invalid_field"),
        (json!({}), 422, "invalid_field"),
    ];
    for (body, status, code) in cases {
        let res = submit(&app, &token, &attempt, &body).await;
        assert_eq!(error_code(res).await, (status, code.to_owned()), "{body}");
    }
    // Another participant's attempt looks like no attempt at all.
    let res = submit(&app, &other, &attempt, &good).await;
    assert_eq!(error_code(res).await, (404, "attempt_not_found".into()));
    let res = app
        .post_json(
            &format!("/api/quiz/attempts/{}/submit", uuid::Uuid::new_v4()),
            Some(&token),
            &good,
        )
        .await;
    assert_eq!(error_code(res).await, (404, "attempt_not_found".into()));
    let res = app
        .post_json("/api/quiz/attempts/not-an-id/submit", Some(&token), &good)
        .await;
    assert_eq!(error_code(res).await, (404, "attempt_not_found".into()));
    // No token, a bad token.
    let path = format!(
        "/api/quiz/attempts/{}/submit",
        attempt["id"].as_str().unwrap()
    );
    assert_eq!(
        error_code(app.post_json(&path, None, &good).await).await,
        (401, "login_required".into())
    );
    assert_eq!(
        error_code(app.post_json(&path, Some("clp_forged"), &good).await).await,
        (401, "login_required".into())
    );
    // Too large.
    let huge = json!({"answers": [{"question": "x".repeat(70 * 1024), "choices": ["A"]}]});
    assert_eq!(
        error_code(submit(&app, &token, &attempt, &huge).await).await,
        (413, "payload_too_large".into())
    );

    let shown = json_of(app.get(&path.replace("/submit", ""), Some(&token)).await).await;
    assert_eq!(
        shown["submitted"], false,
        "nothing recorded by the refused submissions"
    );
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM tickets").await, 0);

    // Past its deadline an attempt is closed.
    app.clock.advance(Duration::minutes(11));
    assert_eq!(
        error_code(submit(&app, &token, &attempt, &good).await).await,
        (410, "attempt_expired".into())
    );
    app.clock.advance(Duration::minutes(-11));
    // A second submission.
    assert_eq!(submit(&app, &token, &attempt, &good).await.status(), 200);
    assert_eq!(
        error_code(submit(&app, &token, &attempt, &good).await).await,
        (409, "already_submitted".into())
    );
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM tickets").await, 1);
}

async fn attempts_per_day_are_limited_even_concurrently(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let token = register(&app, PHONE).await;
    let mut tasks = Vec::new();
    for _ in 0..14 {
        let (client, token, url) = (
            app.client.clone(),
            token.clone(),
            app.url("/api/quiz/attempts"),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|&&c| c == 201).count(), 10, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 429).count(), 4, "{codes:?}");
    let res = app
        .post_json("/api/quiz/attempts", Some(&token), &json!({}))
        .await;
    assert_eq!(error_code(res).await, (429, "daily_limit".into()));
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM quiz_attempts").await,
        10
    );
    // Midnight in Shanghai (16:00 UTC) starts a new day.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 11, 26, 16, 0, 1).unwrap());
    assert_eq!(
        app.post_json("/api/quiz/attempts", Some(&token), &json!({}))
            .await
            .status(),
        201
    );
}

/// Two service instances on one database: an attempt started on one is submitted on the other
/// (which reads it from the database), and a late copy of the submission to the first (which
/// holds the attempt in memory) is refused as already submitted.
/// PostgreSQL only: SQLite takes one server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_started_on_one_instance_is_submitted_on_another() {
    use campaign_lottery::clock::ManualClock;
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    let loaded = common::settings(&db.url, &common::repo_config_dir(), "campaign-demo.toml");
    let a = TestApp::spawn_with(db, &loaded, common::demo_now()).await;
    let b = campaign_lottery::startup::Application::build(
        &loaded,
        std::sync::Arc::new(ManualClock::new(common::demo_now())),
    )
    .await
    .unwrap();
    let b_url = format!("http://127.0.0.1:{}", b.port());
    tokio::spawn(b.run_until_stopped());

    let token = register(&a, PHONE).await;
    let attempt = start(&a, &token).await;
    let path = format!(
        "/api/quiz/attempts/{}/submit",
        attempt["id"].as_str().unwrap()
    );
    // A wrong session on the instance that holds the attempt: refused, nothing written.
    let other = register(&a, "13900139000").await;
    let res = submit(&a, &other, &attempt, &answers(&attempt, 10)).await;
    assert_eq!(
        common::error_code(res).await,
        (404, "attempt_not_found".into())
    );
    let res = a
        .client
        .post(format!("{b_url}{path}"))
        .bearer_auth(&token)
        .json(&answers(&attempt, 10))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let result = json_of(res).await;
    assert_eq!(result["score"], 10);
    assert_eq!(result["ticket"]["status"], "issued");
    let res = submit(&a, &token, &attempt, &answers(&attempt, 10)).await;
    assert_eq!(
        common::error_code(res).await,
        (409, "already_submitted".into())
    );
    assert_eq!(a.db.scalar("SELECT COUNT(*) FROM tickets").await, 1);
}
