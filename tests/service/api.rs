//! The HTTP API, run once against SQLite and once against PostgreSQL.

use crate::common;

use campaign_lottery::domain::token::Role;
use campaign_lottery::startup::prepare;
use campaign_lottery::store::SyncOutcome;
use common::{code_sms, demo_now, error_code, repo_config_dir, settings, TestApp, TestDb};
use serde_json::{json, Value};

backend_tests!(
    health_and_readiness_answer,
    the_campaign_is_public_with_rounds_tiers_totals_and_venues,
    round_states_follow_the_clock,
    unknown_routes_and_wrong_methods_get_json_errors,
    bad_bodies_get_clear_errors_and_write_nothing,
    every_privileged_endpoint_checks_its_roles,
    tokens_made_by_operators_are_shown_once_and_can_be_revoked,
    operators_cannot_revoke_their_own_token_nor_the_last_operator,
    token_requests_that_make_no_sense_are_refused,
    audit_log_records_actions_and_verifies,
    metrics_count_requests_by_route_and_status,
    openapi_document_and_api_page_are_served,
    answers_are_not_sniffed_nor_framed,
    a_body_that_trickles_in_is_cut_off,
    restarting_twice_duplicates_nothing,
    a_config_contradicting_a_drawn_round_is_refused,
    concurrent_token_creation_keeps_the_audit_chain_whole,
    the_service_forgets_day_old_login_codes_when_it_starts,
);

async fn json_of(res: reqwest::Response) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {e}: {text}"))
}

async fn health_and_readiness_answer(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let res = app.get("/healthz", None).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
    assert_eq!(json_of(res).await["status"], "ok");
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(res).await["status"], "ready");
}

async fn the_campaign_is_public_with_rounds_tiers_totals_and_venues(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let c = json_of(app.get("/api/campaign", None).await).await;
    assert_eq!(c["id"], "demo");
    assert_eq!(c["time_zone"], "Asia/Shanghai");
    assert_eq!(
        c["now"], "2026-11-26T10:00:00+08:00",
        "times are shown local"
    );
    let rounds = c["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 12);
    assert_eq!(rounds[0]["opens_at"], "2026-11-26T00:00:00+08:00");
    assert_eq!(rounds[0]["closes_at"], "2026-12-03T00:00:00+08:00");
    assert_eq!(rounds[0]["state"], "open");
    assert_eq!(rounds[1]["state"], "scheduled");
    assert_eq!(c["current_round"], 1);
    assert_eq!(c["next_round"], 2);
    assert_eq!(c["tiers"][0]["name"], "grand");
    assert_eq!(c["tiers"][0]["count"], 30);
    assert_eq!(
        c["tiers"][0]["voucher_kinds"],
        json!(["tourism_card", "hotel_night", "dining_coupon"])
    );
    assert_eq!(c["tiers"][1]["count"], 235);
    assert_eq!(c["winners_per_round"], 265);
    assert_eq!(c["totals"]["winners"], 3180);
    assert_eq!(
        c["totals"]["vouchers"],
        json!({"tourism_card": 3180, "hotel_night": 360, "dining_coupon": 360})
    );
    let kinds = c["voucher_kinds"].as_array().unwrap();
    let card = kinds.iter().find(|k| k["code"] == "tourism_card").unwrap();
    assert_eq!(card["category"], "scenic");
    assert_eq!(card["policy"], "once_per_venue");
    let dining = kinds.iter().find(|k| k["code"] == "dining_coupon").unwrap();
    assert_eq!(dining["policy"], "single_use");
    assert_eq!(dining["face_value_yuan"], 200);
    let venues = c["venues"].as_array().unwrap();
    assert_eq!(venues.len(), 8);
    assert!(venues
        .iter()
        .any(|v| v["name"] == "神龙大酒店" && v["category"] == "hotel" && v["example"] == false));
}

async fn round_states_follow_the_clock(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.clock.advance(chrono::Duration::days(7));
    let c = json_of(app.get("/api/campaign", None).await).await;
    assert_eq!(c["rounds"][0]["state"], "closed");
    assert_eq!(c["rounds"][1]["state"], "open");
    assert_eq!(c["current_round"], 2);
    app.db
        .execute("UPDATE rounds SET progress = 'drawn' WHERE number = 1")
        .await;
    let c = json_of(app.get("/api/campaign", None).await).await;
    assert_eq!(c["rounds"][0]["state"], "drawn");
    app.clock.advance(chrono::Duration::days(120));
    let c = json_of(app.get("/api/campaign", None).await).await;
    assert_eq!(c["rounds"][11]["state"], "closed");
    assert_eq!(c["current_round"], Value::Null);
    assert_eq!(c["next_round"], Value::Null);
}

async fn unknown_routes_and_wrong_methods_get_json_errors(db: TestDb) {
    let app = TestApp::spawn(db).await;
    assert_eq!(
        error_code(app.get("/api/nothing-here", None).await).await,
        (404, "not_found".into())
    );
    assert_eq!(
        error_code(app.get("/api/admin/tokens/not-a-uuid/x", None).await)
            .await
            .0,
        404
    );
    let res = app
        .client
        .delete(app.url("/api/campaign"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (405, "method_not_allowed".into()));
    let res = app.client.post(app.url("/healthz")).send().await.unwrap();
    assert_eq!(error_code(res).await, (405, "method_not_allowed".into()));
    let res = app
        .client
        .put(app.url("/api/admin/tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (405, "method_not_allowed".into()));
}

async fn bad_bodies_get_clear_errors_and_write_nothing(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let op = app.token(Role::Operator, "运营").await;
    let tokens_before = app.db.scalar("SELECT COUNT(*) FROM api_tokens").await;
    let audit_before = app.db.scalar("SELECT COUNT(*) FROM audit_log").await;
    let post = |body: &'static str, ct: &'static str| {
        app.client
            .post(app.url("/api/admin/tokens"))
            .bearer_auth(&op)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_eq!(
        error_code(post("{\"role\": ", "application/json").await.unwrap()).await,
        (400, "malformed_json".into())
    );
    assert_eq!(
        error_code(
            post("role=venue", "application/x-www-form-urlencoded")
                .await
                .unwrap()
        )
        .await,
        (415, "unsupported_media_type".into())
    );
    assert_eq!(
        error_code(
            post(r#"{"role": 7, "name": "x"}"#, "application/json")
                .await
                .unwrap()
        )
        .await,
        (422, "invalid_field".into())
    );
    assert_eq!(
        error_code(
            post(r#"{"role": "wizard", "name": "x"}"#, "application/json")
                .await
                .unwrap()
        )
        .await,
        (422, "invalid_field".into())
    );
    assert_eq!(
        error_code(
            post(
                r#"{"role": "auditor", "name": "x", "colour": "red"}"#,
                "application/json"
            )
            .await
            .unwrap()
        )
        .await,
        (422, "invalid_field".into())
    );
    assert_eq!(
        error_code(post("[]", "application/json").await.unwrap())
            .await
            .0,
        422
    );
    let huge = json!({"role": "auditor", "name": "x".repeat(100 * 1024)});
    let res = app.post_json("/api/admin/tokens", Some(&op), &huge).await;
    assert_eq!(error_code(res).await, (413, "payload_too_large".into()));
    let res = app.get("/api/audit?limit=abc", Some(&op)).await;
    assert_eq!(error_code(res).await, (400, "invalid_query".into()));
    let res = app.get("/api/audit?limit=5000", Some(&op)).await;
    assert_eq!(error_code(res).await, (400, "invalid_query".into()));

    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM api_tokens").await,
        tokens_before,
        "nothing written"
    );
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM audit_log").await,
        audit_before,
        "nothing audited"
    );
}

/// Every privileged endpoint × every kind of caller.
async fn every_privileged_endpoint_checks_its_roles(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((role, app.token(role, &format!("{role} matrix")).await));
    }
    let revoked = app.token(Role::Operator, "revoked operator").await;
    let revoked_id = app
        .store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "revoked operator")
        .unwrap()
        .id;
    app.store
        .revoke_token(revoked_id, false, "cli", demo_now())
        .await
        .unwrap();

    // (method, path, body, roles allowed)
    let endpoints: Vec<(&str, String, Option<Value>, Vec<Role>)> = vec![
        ("GET", "/api/whoami".into(), None, Role::ALL.to_vec()),
        (
            "GET",
            "/api/admin/tokens".into(),
            None,
            vec![Role::Operator],
        ),
        (
            "POST",
            "/api/admin/tokens".into(),
            Some(json!({"role": "auditor", "name": "matrix-made"})),
            vec![Role::Operator],
        ),
        (
            "POST",
            format!("/api/admin/tokens/{}/revoke", uuid::Uuid::new_v4()),
            None,
            vec![Role::Operator],
        ),
        (
            "GET",
            "/api/audit".into(),
            None,
            vec![Role::Operator, Role::Auditor],
        ),
        (
            "GET",
            "/api/audit/verify".into(),
            None,
            vec![Role::Operator, Role::Auditor],
        ),
    ];
    for (method, path, body, allowed) in &endpoints {
        let send = |token: Option<String>| {
            let mut req = match *method {
                "GET" => app.client.get(app.url(path)),
                _ => app.client.post(app.url(path)),
            };
            if let Some(b) = body {
                req = req.json(b);
            }
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        let (status, code) = error_code(send(None).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "missing_token"),
            "{method} {path} without a token"
        );
        let (status, code) = error_code(send(Some("clt_nonsense".into())).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "unknown_token"),
            "{method} {path} with an unknown token"
        );
        let (status, code) = error_code(send(Some(revoked.clone())).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "revoked_token"),
            "{method} {path} with a revoked token"
        );
        for (role, token) in &tokens {
            let res = send(Some(token.clone())).await.unwrap();
            let status = res.status().as_u16();
            if allowed.contains(role) {
                assert!(
                    status != 401 && status != 403,
                    "{method} {path} as {role}: {status}"
                );
            } else {
                assert_eq!(
                    error_code(res).await,
                    (403, "forbidden".into()),
                    "{method} {path} as {role}"
                );
            }
        }
    }
    // The public endpoints need nothing.
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/campaign",
        "/api/openapi.json",
    ] {
        assert_eq!(app.get(path, None).await.status(), 200, "{path}");
    }
}

async fn tokens_made_by_operators_are_shown_once_and_can_be_revoked(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let op = app.token(Role::Operator, "运营").await;
    let res = app
        .post_json(
            "/api/admin/tokens",
            Some(&op),
            &json!({"role": "venue", "name": "  衡山宾馆前台 ", "venue_id": "hengshan-hotel"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created = json_of(res).await;
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("clt_") && token.len() == 68);
    assert_eq!(created["name"], "衡山宾馆前台");
    assert_eq!(created["role"], "venue");
    let id = created["id"].as_str().unwrap().to_owned();

    // Only a hash is stored.
    let stored = app
        .db
        .text("SELECT token_hash FROM api_tokens WHERE name = '衡山宾馆前台'")
        .await;
    assert_ne!(stored, token);
    assert_eq!(stored, campaign_lottery::domain::token::token_hash(&token));
    let listed = app
        .get("/api/admin/tokens", Some(&op))
        .await
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&token), "the list never shows a token");
    assert!(listed.contains(&id));

    let me = json_of(app.get("/api/whoami", Some(&token)).await).await;
    assert_eq!(me["role"], "venue");
    assert_eq!(me["venue_id"], "hengshan-hotel");
    assert_eq!(me["venue_name"], "衡山宾馆");

    let res = app
        .post_json(
            &format!("/api/admin/tokens/{id}/revoke"),
            Some(&op),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(json_of(res).await["revoked_at"].is_string());
    assert_eq!(
        error_code(app.get("/api/whoami", Some(&token)).await).await,
        (401, "revoked_token".into())
    );
    let res = app
        .post_json(
            &format!("/api/admin/tokens/{id}/revoke"),
            Some(&op),
            &json!({}),
        )
        .await;
    assert_eq!(error_code(res).await, (409, "already_revoked".into()));
    // A header that is not a Bearer token says so.
    let res = app
        .client
        .get(app.url("/api/whoami"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (401, "invalid_token".into()));
}

/// Through the API an operator can lock nobody out: not itself, and not the last operator.
async fn operators_cannot_revoke_their_own_token_nor_the_last_operator(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let first = app.token(Role::Operator, "运营甲").await;
    let id_of = |list: Vec<campaign_lottery::store::TokenRecord>, name: &str| {
        list.into_iter().find(|t| t.name == name).unwrap().id
    };
    let first_id = id_of(app.store.list_tokens().await.unwrap(), "运营甲");
    let revoke = |token: String, id: uuid::Uuid| {
        let app = &app;
        async move {
            app.post_json(
                &format!("/api/admin/tokens/{id}/revoke"),
                Some(&token),
                &json!({}),
            )
            .await
        }
    };
    assert_eq!(
        error_code(revoke(first.clone(), first_id).await).await,
        (409, "own_token".into())
    );
    let second = app.token(Role::Operator, "运营乙").await;
    let second_id = id_of(app.store.list_tokens().await.unwrap(), "运营乙");
    // Two operators revoking each other at once: exactly one succeeds.
    let (a, b) = tokio::join!(
        revoke(first.clone(), second_id),
        revoke(second.clone(), first_id)
    );
    let mut statuses = vec![a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses[0], 200, "one revocation goes through");
    assert!(
        [401, 409].contains(&statuses[1]),
        "the other is refused: {statuses:?}"
    );
    let live: Vec<_> = app
        .store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.role == Role::Operator && t.revoked_at.is_none())
        .collect();
    assert_eq!(live.len(), 1, "an operator is left");
    // The one left cannot revoke itself; nothing can revoke the last operator under the API's
    // rule (through the API that can only be tried by a concurrent revocation, as above).
    let left = if live[0].id == first_id {
        &first
    } else {
        &second
    };
    assert_eq!(
        error_code(revoke(left.clone(), live[0].id).await).await,
        (409, "own_token".into())
    );
    let refused = app
        .store
        .revoke_token(live[0].id, true, "operator:test", demo_now())
        .await;
    assert!(
        matches!(
            refused,
            Err(campaign_lottery::store::StoreError::Refused(
                campaign_lottery::domain::refusal::Refusal::LastOperator
            ))
        ),
        "{refused:?}"
    );
    // At the command line it can be (a new one can be made there).
    assert!(app
        .store
        .revoke_token(live[0].id, false, "cli", demo_now())
        .await
        .is_ok());
}

async fn token_requests_that_make_no_sense_are_refused(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let op = app.token(Role::Operator, "运营").await;
    let before = app.db.scalar("SELECT COUNT(*) FROM api_tokens").await;
    let cases = [
        (
            json!({"role": "operator", "name": "x"}),
            403,
            "operator_token_by_command_line",
        ),
        (json!({"role": "venue", "name": "x"}), 422, "invalid_field"),
        (
            json!({"role": "auditor", "name": "x", "venue_id": "shenlong-hotel"}),
            422,
            "invalid_field",
        ),
        (
            json!({"role": "venue", "name": "x", "venue_id": "nowhere"}),
            404,
            "unknown_venue",
        ),
        (
            json!({"role": "witness", "name": "公证\u{202e}处"}),
            422,
            "invalid_field",
        ),
        (
            json!({"role": "witness", "name": "公证\u{0}处"}),
            422,
            "invalid_field",
        ),
        (
            json!({"role": "witness", "name": "   "}),
            422,
            "invalid_field",
        ),
    ];
    for (body, status, code) in cases {
        let res = app.post_json("/api/admin/tokens", Some(&op), &body).await;
        assert_eq!(error_code(res).await, (status, code.to_owned()), "{body}");
    }
    let res = app
        .post_json(
            &format!("/api/admin/tokens/{}/revoke", uuid::Uuid::new_v4()),
            Some(&op),
            &json!({}),
        )
        .await;
    assert_eq!(error_code(res).await, (404, "token_not_found".into()));
    let res = app
        .post_json("/api/admin/tokens/12345/revoke", Some(&op), &json!({}))
        .await;
    assert_eq!(error_code(res).await, (404, "not_found".into()));
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM api_tokens").await,
        before
    );
}

async fn audit_log_records_actions_and_verifies(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let op = app.token(Role::Operator, "运营").await;
    let auditor = app.token(Role::Auditor, "审计").await;
    app.post_json(
        "/api/admin/tokens",
        Some(&op),
        &json!({"role": "witness", "name": "公证处"}),
    )
    .await;
    let page = json_of(app.get("/api/audit", Some(&auditor)).await).await;
    let entries = page["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "campaign.sync",
            "token.create",
            "token.create",
            "token.create"
        ]
    );
    let last = entries.last().unwrap();
    assert_eq!(last["actor"], "operator:运营");
    assert!(last["details"].as_str().unwrap().contains("公证处"));
    assert_eq!(page["head_seq"], 4);
    assert_eq!(page["head_hash"], last["hash"]);
    let page2 = json_of(app.get("/api/audit?after=2&limit=1", Some(&auditor)).await).await;
    assert_eq!(page2["entries"].as_array().unwrap().len(), 1);
    assert_eq!(page2["entries"][0]["seq"], 3);

    let verdict = json_of(app.get("/api/audit/verify", Some(&auditor)).await).await;
    assert_eq!(verdict, json!({"ok": true, "entries": 4, "problem": null}));
    app.db
        .execute("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2")
        .await;
    let verdict = json_of(app.get("/api/audit/verify", Some(&auditor)).await).await;
    assert_eq!(verdict["ok"], false);
    assert!(
        verdict["problem"].as_str().unwrap().contains("entry 2"),
        "{verdict}"
    );
}

async fn metrics_count_requests_by_route_and_status(db: TestDb) {
    let app = TestApp::spawn(db).await;
    for _ in 0..3 {
        app.get("/api/campaign", None).await;
    }
    app.get("/api/nothing", None).await;
    let text = app.get("/metrics", None).await.text().await.unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains(r#"route="/api/campaign""#)
                && l.contains(r#"status="200""#)
                && l.contains(r#"method="GET""#)
        })
        .unwrap_or_else(|| panic!("no request counter for /api/campaign in\n{text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{line}");
    assert!(text.contains(r#"route="unmatched""#) && text.contains(r#"status="404""#));
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "latency histogram:\n{text}"
    );
}

async fn openapi_document_and_api_page_are_served(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let doc = json_of(app.get("/api/openapi.json", None).await).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/campaign",
        "/api/admin/tokens",
        "/api/audit/verify",
        "/healthz",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    let res = app.get("/api/docs/", None).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "the API page is Swagger UI");
    assert!(
        !html.contains("https://"),
        "the API page loads nothing from the internet"
    );
    let js = app.get("/api/docs/swagger-ui-bundle.js", None).await;
    assert_eq!(
        js.status(),
        200,
        "Swagger UI's script is served by the service itself"
    );

    // Every operation says what it can answer, and the error codes are the catalogue's.
    let responses = |method: &str, path: &str| -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}"))
            .keys()
            .cloned()
            .collect()
    };
    let has = |method: &str, path: &str, statuses: &[&str]| {
        let got = responses(method, path);
        for s in statuses {
            assert!(
                got.iter().any(|g| g == s),
                "{method} {path} lists {s}: {got:?}"
            );
        }
    };
    has(
        "post",
        "/api/rounds/{round}/freeze",
        &[
            "200", "400", "401", "403", "404", "409", "413", "415", "422",
        ],
    );
    has(
        "post",
        "/api/venue/redeem",
        &[
            "200", "400", "401", "403", "404", "409", "410", "422", "429",
        ],
    );
    has("post", "/api/login/code", &["202", "400", "422", "429"]);
    has("post", "/api/login", &["200", "201", "400", "401", "422"]);
    let login_code = &doc["paths"]["/api/login/code"]["post"]["responses"];
    assert!(
        login_code.get("404").is_none(),
        "asking for a code never says whether the phone takes part: {login_code}"
    );
    assert!(
        doc["paths"].get("/api/participants").is_none(),
        "no way in without a code"
    );
    has(
        "post",
        "/api/quiz/attempts/{id}/submit",
        &["200", "401", "404", "409", "410", "422"],
    );
    has("get", "/api/audit", &["200", "400", "401", "403"]);
    let codes = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
        .as_array()
        .expect("the error codes are listed");
    for code in [
        "round_not_frozen",
        "reveals_missing",
        "unknown_token",
        "invalid_field",
        "already_used",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code}");
    }
    assert!(!codes.iter().any(|c| c == "conflict"));
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["in"], "cookie",
        "the participants' session is a documented scheme"
    );
    assert!(doc["paths"]["/api/me"]["get"]["security"][0]
        .get("session")
        .is_some());
}

/// JSON answers and the API page may not be framed nor sniffed as anything else.
async fn answers_are_not_sniffed_nor_framed(db: TestDb) {
    let app = TestApp::spawn(db).await;
    for (path, strict) in [
        ("/api/campaign", true),
        ("/api/nothing-here", true),
        ("/api/openapi.json", true),
        ("/api/docs/", false),
        ("/", false),
    ] {
        let res = app.get(path, None).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        if strict {
            assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        }
    }
}

/// A body that trickles in a byte at a time is cut off after the configured time, so that slow
/// clients cannot hold connections open indefinitely.
async fn a_body_that_trickles_in_is_cut_off(db: TestDb) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut loaded = settings(&db.url, &repo_config_dir(), "campaign-demo.toml");
    loaded.settings.server.body_timeout_secs = 1;
    let app = TestApp::spawn_with(db, &loaded, demo_now()).await;
    let stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(
            b"POST /api/login/code HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 400\r\n\r\n{",
        )
        .await
        .unwrap();
    // A byte every quarter second: the body would take 100 s to arrive.
    let trickle = tokio::spawn(async move {
        for _ in 0..400 {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            if write.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(30), read.read(&mut answer))
        .await
        .expect("the service answers long before the body would have arrived")
        .unwrap();
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM login_codes").await,
        0,
        "nothing written"
    );
}

async fn restarting_twice_duplicates_nothing(db: TestDb) {
    let loaded = settings(&db.url, &repo_config_dir(), "campaign-demo.toml");
    let clock = campaign_lottery::clock::ManualClock::new(demo_now());
    let first = prepare(&loaded, &clock).await.unwrap();
    assert_eq!(first.sync, SyncOutcome::Created);
    let counts = || async {
        let mut v = Vec::new();
        for table in [
            "campaigns",
            "rounds",
            "voucher_kinds",
            "prize_tiers",
            "venues",
            "audit_log",
        ] {
            v.push(db.scalar(&format!("SELECT COUNT(*) FROM {table}")).await);
        }
        v
    };
    let after_first = counts().await;
    assert_eq!(after_first, vec![1, 12, 3, 2, 8, 1]);
    // Two days later the demo keeps the first round where it was.
    clock.advance(chrono::Duration::days(2));
    for _ in 0..2 {
        let again = prepare(&loaded, &clock).await.unwrap();
        assert_eq!(again.sync, SyncOutcome::Unchanged);
        assert_eq!(
            again.campaign.first_round_start,
            first.campaign.first_round_start
        );
    }
    assert_eq!(counts().await, after_first);
}

async fn a_config_contradicting_a_drawn_round_is_refused(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(repo_config_dir().join("campaign.toml")).unwrap();
    std::fs::write(dir.path().join("campaign.toml"), &original).unwrap();
    let loaded = settings(&db.url, dir.path(), "campaign.toml");
    let clock = campaign_lottery::clock::ManualClock::new(demo_now());
    prepare(&loaded, &clock).await.unwrap();

    // A compatible change (a name) is fine while rounds are pending, and recorded.
    std::fs::write(
        dir.path().join("campaign.toml"),
        original.replace("城市旅游卡", "衡阳城市旅游卡"),
    )
    .unwrap();
    assert_eq!(
        prepare(&loaded, &clock).await.unwrap().sync,
        SyncOutcome::Updated
    );

    db.execute("UPDATE rounds SET progress = 'drawn' WHERE number = 1")
        .await;
    let fewer = original
        .replace("count = 235", "count = 200")
        .replace("winners = 3180", "winners = 2760")
        .replace("tourism_card = 3180", "tourism_card = 2760");
    std::fs::write(dir.path().join("campaign.toml"), &fewer).unwrap();
    let err = format!(
        "{:#}",
        prepare(&loaded, &clock).await.err().expect("refused")
    );
    assert!(
        err.contains("tiers") && err.contains("round 1 is already frozen or drawn"),
        "{err}"
    );
    assert!(err.contains("campaign.toml"), "names the file: {err}");
    let moved = original.replace(
        "first_round_starts = \"2024-07-15\"",
        "first_round_starts = \"2024-07-22\"",
    );
    std::fs::write(dir.path().join("campaign.toml"), &moved).unwrap();
    let err = format!(
        "{:#}",
        prepare(&loaded, &clock).await.err().expect("refused")
    );
    assert!(err.contains("rounds[0]"), "{err}");
    // Nothing of the refused configurations was written.
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM prize_tiers WHERE count = 235")
            .await,
        1
    );
}

async fn concurrent_token_creation_keeps_the_audit_chain_whole(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let op = app.token(Role::Operator, "运营").await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let client = app.client.clone();
        let url = app.url("/api/admin/tokens");
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(op)
                .json(&json!({"role": "auditor", "name": format!("auditor {i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM api_tokens").await, 25);
    let verdict = campaign_lottery::store::verify_audit_log(app.store.as_ref())
        .await
        .unwrap();
    assert_eq!(verdict, Ok(26), "sync + 25 token creations, one chain");
}

/// Readiness follows the database: when PostgreSQL loses the service's database, /readyz says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_with_503_when_the_database_is_gone() {
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    let app = TestApp::spawn(db).await;
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    app.db.drop_database_now().await;
    assert_eq!(
        error_code(app.get("/readyz", None).await).await,
        (503, "not_ready".into())
    );
    assert_eq!(
        app.get("/healthz", None).await.status(),
        200,
        "the process itself is still up"
    );
}

#[test]
fn a_missing_settings_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = format!(
        "{:#}",
        campaign_lottery::config::load_settings(dir.path()).unwrap_err()
    );
    assert!(
        err.contains("default.toml") && err.contains("not found"),
        "{err}"
    );
}

/// `trust_forwarded_for = true` took the leftmost X-Forwarded-For entry, which the client writes:
/// a settings file that still has it is refused rather than silently read another way.
#[test]
fn the_retired_trust_forwarded_for_setting_is_refused_with_its_replacement_named() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_config_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    assert!(campaign_lottery::config::load_settings(dir.path()).is_ok());
    // In default.toml itself, so that no APP_ENVIRONMENT in the test's environment hides it.
    let default = dir.path().join("default.toml");
    let text = std::fs::read_to_string(&default).unwrap();
    assert!(text.contains("\n[login]\n"));
    std::fs::write(
        &default,
        text.replace("\n[login]\n", "\n[login]\ntrust_forwarded_for = true\n"),
    )
    .unwrap();
    let err = format!(
        "{:#}",
        campaign_lottery::config::load_settings(dir.path()).unwrap_err()
    );
    assert!(
        err.contains("login.trust_forwarded_for") && err.contains("server.trusted_proxies"),
        "{err}"
    );
}

#[test]
fn the_shipped_settings_load_and_serve_the_demo_on_sqlite() {
    let loaded = campaign_lottery::config::load_settings(&repo_config_dir()).unwrap();
    assert!(loaded.settings.database.url.starts_with("sqlite:"));
    assert!(loaded.campaign_path().ends_with("campaign-demo.toml"));
    assert!(!format!("{loaded:?}").is_empty());
}

#[tokio::test]
async fn a_missing_campaign_file_is_named_before_the_database_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("never.db");
    let loaded = settings(
        &format!("sqlite://{}", db_path.display()),
        dir.path(),
        "campaign.toml",
    );
    let clock = campaign_lottery::clock::ManualClock::new(demo_now());
    let err = format!("{:#}", prepare(&loaded, &clock).await.err().unwrap());
    assert!(
        err.contains("campaign file") && err.contains("not found"),
        "{err}"
    );
    assert!(
        !db_path.exists(),
        "no database was created for a broken configuration"
    );
}

#[tokio::test]
async fn an_inconsistent_campaign_file_stops_start_up_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo_config_dir().join("campaign.toml")).unwrap();
    std::fs::write(
        dir.path().join("campaign.toml"),
        text.replace("winners = 3180", "winners = 3000"),
    )
    .unwrap();
    let loaded = settings(
        &format!("sqlite://{}", dir.path().join("t.db").display()),
        dir.path(),
        "campaign.toml",
    );
    let clock = campaign_lottery::clock::ManualClock::new(demo_now());
    let err = format!("{:#}", prepare(&loaded, &clock).await.err().unwrap());
    assert!(
        err.contains("totals.winners") && err.contains("declared 3000"),
        "{err}"
    );
}

// ---- The CLI, run as a real process ----------------------------------------------------------

fn cli(db_url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"))
        .args(["--config-dir", repo_config_dir().to_str().unwrap()])
        .args(args)
        .env("APP_DATABASE__URL", db_url)
        .env_remove("APP_ENVIRONMENT")
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_cli_lists_and_rotates_the_record_signing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    assert!(cli(&url, &["migrate"]).status.success());
    // The first command that opens the service makes the key; listing shows it active.
    let out = cli(&url, &["keys", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(
        listed.starts_with("ed25519:") && listed.contains(", active"),
        "{listed}"
    );
    let first = listed.split_whitespace().next().unwrap().to_owned();
    let out = cli(&url, &["keys", "rotate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rotated = text(&out.stdout);
    assert!(
        rotated.contains(&format!("(retired: {first})")),
        "{rotated}"
    );
    let lines: Vec<&str> = rotated.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{rotated}");
    assert!(
        lines[0].starts_with(&first) && lines[0].contains("retired"),
        "{rotated}"
    );
    assert!(lines[1].ends_with(", active"), "{rotated}");
    // Audited, and the secret halves never printed.
    let out = cli(&url, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(!rotated.to_lowercase().contains("secret"));
}

#[test]
fn the_cli_makes_lists_and_revokes_tokens_and_verifies_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("cli.db");
    let url = format!("sqlite://{}", db_path.display());

    let out = cli(&url, &["migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("campaign demo created"),
        "{}",
        text(&out.stdout)
    );
    let out = cli(&url, &["migrate"]);
    assert!(
        text(&out.stdout).contains("campaign demo unchanged"),
        "{}",
        text(&out.stdout)
    );

    let out = cli(
        &url,
        &[
            "token",
            "create",
            "--role",
            "venue",
            "--name",
            "神龙前台",
            "--venue",
            "shenlong-hotel",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    assert!(
        token.starts_with("clt_") && token.len() == 68,
        "stdout is just the token: {token:?}"
    );
    assert!(text(&out.stderr).contains("shown only now"));

    let out = cli(&url, &["token", "list"]);
    let listing = text(&out.stdout);
    assert!(
        listing.contains("神龙前台") && listing.contains("shenlong-hotel"),
        "{listing}"
    );
    assert!(!listing.contains(&token), "the list never shows a token");
    let id = listing
        .lines()
        .find(|l| l.contains("神龙前台"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();

    let out = cli(
        &url,
        &["token", "create", "--role", "venue", "--name", "无场所"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("场所令牌必须指明所属场所")
            && text(&out.stderr).contains("invalid_field"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(&url, &["token", "create", "--role", "admin", "--name", "x"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown role"),
        "{}",
        text(&out.stderr)
    );

    let out = cli(&url, &["token", "revoke", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(cli(&url, &["token", "list"])
        .stdout
        .ends_with(b"[revoked]\n"));
    let out = cli(&url, &["token", "revoke", &id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already_revoked"),
        "{}",
        text(&out.stderr)
    );

    let out = cli(&url, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("intact: 3 entries"),
        "{}",
        text(&out.stdout)
    );

    // Edit the second entry behind the service's back.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE audit_log SET subject = 'token:forged' WHERE seq = 2")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("INSERT INTO sms_outbox (phone, body, created_at) VALUES ('13800138000', '验证码 424242', '2026-11-26T02:00:00+00:00')")
            .execute(&mut c)
            .await
            .unwrap();
    });
    let out = cli(&url, &["sms", "pending"]);
    assert!(
        text(&out.stdout).contains("2026-11-26 10:00:00  13800138000  queued    验证码 424242"),
        "{}",
        text(&out.stdout)
    );
    let out = cli(&url, &["sms", "recent", "--limit", "1"]);
    assert_eq!(
        text(&out.stdout).lines().count(),
        1,
        "{}",
        text(&out.stdout)
    );
    let out = cli(&url, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("BROKEN: entry 2"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_config_summarises_the_campaign_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("none.db").display());
    let out = cli(&url, &["check-config"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(
        summary.contains("12 rounds, 265 winners per round, 3180 winners"),
        "{summary}"
    );
    assert!(summary.contains("hotel_night 360"), "{summary}");
    assert!(!dir.path().join("none.db").exists());
}

#[test]
fn the_service_logs_structured_lines_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("serve.db").display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"))
        .args(["--config-dir", repo_config_dir().to_str().unwrap(), "serve"])
        .env("APP_DATABASE__URL", &url)
        .env("APP_SERVER__PORT", "0")
        .env("APP_LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read the log on a thread, so that a silent service fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_log = |what: &str| -> Value {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no log line while waiting for {what}"));
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{e}: not a structured log line: {line}"))
    };
    let port = loop {
        if let Some(port) = next_log("the address")["port"].as_u64() {
            break port;
        }
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    let request_log = loop {
        let log = next_log("the request's log line");
        if log.to_string().contains("/healthz") {
            break log;
        }
    };
    assert!(
        request_log.to_string().contains("request_id"),
        "{request_log}"
    );

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit after SIGTERM: {status}");
            break;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("still running 20 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- The verifier, from files and URLs ---------------------------------------------------------

/// DESIGN §4's worked example as the two published documents.
fn worked_example_documents() -> (String, String) {
    use campaign_lottery::domain::draw::{draw, record, seed::commitment};
    let tickets: Vec<uuid::Uuid> = (1..=7)
        .map(|n| uuid::Uuid::parse_str(&format!("00000000-0000-4000-8000-00000000000{n}")).unwrap())
        .collect();
    let witnesses = vec![
        ("notary".to_owned(), vec![0x11; 32]),
        ("operator".to_owned(), vec![0x22; 32]),
    ];
    let prizes = vec![("grand".to_owned(), 1), ("standard".to_owned(), 2)];
    let r = draw("hengyang-2024", 3, &tickets, &witnesses, "", &prizes);
    let doc = json!({
        "algorithm": "campaign-draw/v1", "campaign_id": "hengyang-2024", "round": 3, "entry_count": 7,
        "entries_root": hex::encode(r.entries_root),
        "witnesses": witnesses.iter().map(|(n, s)| json!({
            "name": n, "commitment": hex::encode(commitment("hengyang-2024", 3, n, s)), "secret": hex::encode(s)
        })).collect::<Vec<_>>(),
        "beacon": "", "beacon_source": null, "seed": hex::encode(r.seed),
        "prizes": [{"tier": "grand", "count": 1}, {"tier": "standard", "count": 2}],
        "winners": r.winners.iter().map(|w| json!({"rank": w.rank, "ticket": w.ticket, "tier": w.tier})).collect::<Vec<_>>(),
        "state": "drawn"
    });
    (doc.to_string(), record::entries_file(&tickets))
}

/// Serves one body to every request on a free port, for as long as the test runs.
fn serve_once_per_request(body: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn verify_accepts_the_worked_example_and_names_the_first_failed_check() {
    let dir = tempfile::tempdir().unwrap();
    let (record, entries) = worked_example_documents();
    let (record_path, entries_path) = (
        dir.path().join("round-3.json"),
        dir.path().join("round-3.txt"),
    );
    std::fs::write(&record_path, &record).unwrap();
    std::fs::write(&entries_path, &entries).unwrap();
    let run = |r: &str, e: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"))
            .args(["verify", "--round", r, "--entries", e])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run(
        record_path.to_str().unwrap(),
        entries_path.to_str().unwrap(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("ok   entries_root") && stdout.contains("verified:"),
        "{stdout}"
    );

    // The same documents from URLs.
    let out = run(
        &serve_once_per_request(record.clone()),
        &serve_once_per_request(entries.clone()),
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // A tampered seed, a dropped ticket.
    std::fs::write(&record_path, record.replace("6012d3956bc9", "6012d3956bca")).unwrap();
    let out = run(
        record_path.to_str().unwrap(),
        entries_path.to_str().unwrap(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("NOT verified: seed failed"),
        "{}",
        text(&out.stdout)
    );
    std::fs::write(&record_path, &record).unwrap();
    std::fs::write(
        &entries_path,
        entries.replace("00000000-0000-4000-8000-000000000004\n", ""),
    )
    .unwrap();
    let out = run(
        record_path.to_str().unwrap(),
        entries_path.to_str().unwrap(),
    );
    assert!(
        text(&out.stdout).contains("NOT verified: entry_count failed"),
        "{}",
        text(&out.stdout)
    );
    let out = run("missing.json", entries_path.to_str().unwrap());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("missing.json"),
        "{}",
        text(&out.stderr)
    );
}

/// Every page loads, and every script and style it (or a script it imports) names is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_everything_it_loads_is_served() {
    let app = TestApp::spawn(TestDb::new(common::Backend::Sqlite).await.unwrap()).await;
    let mut assets = std::collections::BTreeSet::new();
    for page in [
        "/", "/join", "/quiz", "/me", "/privacy", "/draws", "/live", "/console", "/desk",
    ] {
        let res = app.get(page, None).await;
        assert_eq!(res.status(), 200, "{page}");
        assert!(res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'"));
        let html = res.text().await.unwrap();
        assert!(html.contains("<html lang=\"zh-CN\">"), "{page}");
        // An icon (no 404 on a first visit), share tags with an image, a word for a browser
        // without JavaScript, a heading.
        for needed in [
            "<link rel=\"icon\" href=\"/favicon.svg\"",
            "<meta property=\"og:title\"",
            "<meta property=\"og:image\" content=\"/static/share.png\">",
            "<noscript>",
            "<h1",
        ] {
            assert!(html.contains(needed), "{page} lacks {needed}");
        }
        for part in html.split("\"/static/").skip(1) {
            assets.insert(part.split('"').next().unwrap().to_owned());
        }
    }
    let mut checked = std::collections::BTreeSet::new();
    while let Some(asset) = assets.pop_first() {
        let res = app.get(&format!("/static/{asset}"), None).await;
        assert_eq!(res.status(), 200, "/static/{asset}");
        let text = res.text().await.unwrap();
        for part in text.split("from \"/static/").skip(1) {
            let import = part.split('"').next().unwrap().to_owned();
            if !checked.contains(&import) {
                assets.insert(import);
            }
        }
        checked.insert(asset);
    }
    assert!(
        checked.contains("console.js") && checked.contains("common.js"),
        "{checked:?}"
    );
    for icon in ["/favicon.svg", "/favicon.ico"] {
        let res = app.get(icon, None).await;
        assert_eq!(res.status(), 200, "{icon}");
        assert_eq!(res.headers()["content-type"], "image/svg+xml");
        assert!(res.text().await.unwrap().starts_with("<svg"));
    }
    let res = app.get("/static/share.png", None).await;
    assert_eq!(res.headers()["content-type"], "image/png");
    let png = res.bytes().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // 1200 × 630, as the og:image tags say.
    assert_eq!(&png[16..24], &[0, 0, 4, 176, 0, 0, 2, 118]);
}

async fn the_service_forgets_day_old_login_codes_when_it_starts(db: TestDb) {
    use campaign_lottery::store::{LoginCode, LoginLimits};
    let now = demo_now();
    let store = campaign_lottery::store::connect(
        &db.url,
        campaign_lottery::store::ConnectLimits::with_connections(2),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    for (hash, age) in [
        ("old", chrono::Duration::days(2)),
        ("new", chrono::Duration::hours(2)),
    ] {
        let code = LoginCode {
            phone: format!("1380013800{}", hash.len()),
            code_hash: hash.into(),
            requested_from: hash.into(),
            expires_at: now - age + chrono::Duration::minutes(5),
            sms: code_sms("13800138000", format!("code {hash}")),
            challenge: common::unspent_challenge(),
        };
        let limits = LoginLimits::default();
        store
            .issue_login_code(code, &limits, now - age)
            .await
            .unwrap();
    }
    drop(store);
    let app = TestApp::spawn(db).await;
    // The first round of forgetting runs as the service starts, beside the first requests.
    let mut left = i64::MAX;
    for _ in 0..100 {
        left = app.db.scalar("SELECT COUNT(*) FROM login_codes").await;
        if left == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        left, 1,
        "the two-day-old code is forgotten, the two-hour-old one kept"
    );
    let kept = app.db.text("SELECT code_hash FROM login_codes").await;
    assert_eq!(kept, "new");
}
