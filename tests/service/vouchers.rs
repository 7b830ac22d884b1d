//! Vouchers from the draw to the front desk to the settlement, once per backend: the holder's
//! view, check and redeem with every refusal, idempotency, reversal, exactly-once under
//! concurrency, throttling, void and reissue, the CSV exports and the audit log.

use crate::common;

use campaign_lottery::clock::Clock;
use campaign_lottery::domain::holder_code;
use campaign_lottery::domain::token::Role;
use campaign_lottery::domain::voucher::VoucherCode;
use campaign_lottery::store::VoucherRecord;
use chrono::{DateTime, Duration, Utc};
use common::{demo_now, error_code, TestApp, TestDb};
use serde_json::{json, Value};

backend_tests!(
    a_winner_sees_their_vouchers_with_holder_keys_and_where_to_use_them,
    a_hotel_desk_checks_and_redeems_a_code_once,
    every_refusal_names_its_reason,
    a_tourism_card_is_used_once_at_each_scenic_spot,
    the_same_idempotency_key_gets_the_same_answer,
    a_venue_reverses_its_own_redemption_within_the_window,
    fifty_concurrent_redeems_of_one_code_succeed_once,
    the_holder_code_is_taken_in_its_window_and_once,
    two_desks_with_one_holder_code_at_once_take_it_once,
    a_voucher_from_before_holder_codes_gets_its_secret_when_its_holder_looks,
    failed_lookups_are_throttled_without_revealing_codes,
    operators_void_and_reissue_a_lost_code,
    exports_and_settlement_as_csv,
    stats_count_tickets_per_round_and_redemptions_per_venue_and_day,
    voucher_events_are_in_the_audit_log,
    bad_requests_write_nothing,
);

async fn json_of(res: reqwest::Response) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {e}: {text}"))
}

/// The demo campaign with round 1 drawn: 40 participants (phones 1380000NNNN), so every one
/// wins (30 grand prizes with a tourism card, a hotel night and a dining coupon; 10 standard
/// with a tourism card). The clock is just after the draw, inside the vouchers' validity.
async fn drawn(db: TestDb) -> TestApp {
    let app = TestApp::spawn(db).await;
    common::tickets_in(&app.store, "demo", 1, app.clock.now(), 0..40).await;
    let after = demo_now() + Duration::days(7) + Duration::minutes(1);
    app.clock.set(after);
    common::draw_round(&app.store, &app.campaign, 1, after).await;
    app
}

async fn vouchers(app: &TestApp) -> Vec<VoucherRecord> {
    app.store.all_vouchers("demo").await.unwrap()
}

/// A live voucher of `kind`, the `nth` one.
async fn voucher_of(app: &TestApp, kind: &str, nth: usize) -> VoucherRecord {
    vouchers(app)
        .await
        .into_iter()
        .filter(|v| v.kind == kind && !v.void)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {kind} voucher #{nth}"))
}

fn shown(v: &VoucherRecord) -> String {
    VoucherCode::parse(&v.code).unwrap().to_string()
}

fn holder_code_at(v: &VoucherRecord, at: DateTime<Utc>) -> String {
    common::holder_code(v, at)
}

/// The holder code `v`'s holder's phone shows now.
fn code_now(app: &TestApp, v: &VoucherRecord) -> String {
    common::holder_code(v, app.clock.now())
}

/// Six digits that are none of the codes the desk would take now.
fn wrong_code(app: &TestApp, v: &VoucherRecord) -> String {
    common::wrong_holder_code(v, app.clock.now())
}

fn session(v: &VoucherRecord) -> String {
    format!("clp_{}", v.holder_phone)
}

async fn redeem(
    app: &TestApp,
    token: &str,
    code: &str,
    holder_code: Option<&str>,
    key: &str,
) -> reqwest::Response {
    let mut body = json!({ "code": code });
    if let Some(d) = holder_code {
        body["holder_code"] = json!(d);
    }
    app.client
        .post(app.url("/api/venue/redeem"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn check(app: &TestApp, token: &str, code: &str) -> reqwest::Response {
    app.post_json("/api/venue/check", Some(token), &json!({ "code": code }))
        .await
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Redeems with the holder code of now and expects success; then moves the clock on one step,
/// as a holder's next redemption shows the next code.
async fn redeem_ok(app: &TestApp, token: &str, v: &VoucherRecord) -> Value {
    let res = redeem(app, token, &shown(v), Some(&code_now(app, v)), &key()).await;
    assert_eq!(res.status(), 200);
    app.clock
        .advance(Duration::seconds(holder_code::STEP_SECONDS));
    json_of(res).await
}

async fn error_body(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, json_of(res).await)
}

async fn redemption_count(app: &TestApp) -> i64 {
    app.db.scalar("SELECT COUNT(*) FROM redemptions").await
}

async fn a_winner_sees_their_vouchers_with_holder_keys_and_where_to_use_them(db: TestDb) {
    let app = drawn(db).await;
    let hotel = voucher_of(&app, "hotel_night", 0).await;
    let me = json_of(app.get("/api/me", Some(&session(&hotel))).await).await;
    let list = me["vouchers"].as_array().unwrap();
    assert_eq!(list.len(), 3, "a grand prize is three vouchers: {me}");
    let kinds: Vec<&str> = list.iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"tourism_card") && kinds.contains(&"dining_coupon"));
    let h = list.iter().find(|v| v["kind"] == "hotel_night").unwrap();
    assert_eq!(h["code"], shown(&hotel));
    assert_eq!(h["kind_name"], "星级酒店住宿一晚");
    assert_eq!(h["status"], "usable");
    assert_eq!(h["tier_label"], "一等奖");
    assert_eq!(h["round"], 1);
    // Validity in local dates: from the first round's day to 180 days later.
    assert_eq!(h["valid_from"], "2026-11-26");
    assert_eq!(h["valid_until"], "2027-05-25");
    let venues: Vec<&str> = h["venues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        venues,
        ["shenlong-hotel", "hengshan-hotel", "example-hotel-1"]
    );
    let dining = list.iter().find(|v| v["kind"] == "dining_coupon").unwrap();
    assert_eq!(dining["face_value_yuan"], 200);
    // The same list on its own endpoint.
    let own = json_of(app.get("/api/me/vouchers", Some(&session(&hotel))).await).await;
    assert_eq!(own.as_array().unwrap().len(), 3);

    // The holder key, for the holder's own session only: the secret the phone computes the
    // holder code from. Nothing else shows it.
    let key_of = |list: &Value, kind: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|v| v["kind"] == kind)
            .map(|v| v["holder_key"].clone())
            .unwrap()
    };
    let hk = key_of(&me["vouchers"], "hotel_night");
    assert_eq!(
        hk["secret"],
        hotel.holder_secret.as_ref().unwrap().to_hex(),
        "{hk}"
    );
    assert_eq!(
        (hk["step_seconds"].as_i64(), hk["digits"].as_i64()),
        (Some(30), Some(6))
    );
    assert_eq!(key_of(&own, "hotel_night"), hk);
    assert!(me["server_time"].as_str().unwrap().ends_with('Z'), "{me}");
    let operator = app.token(Role::Operator, "运营").await;
    let found = app
        .get(
            &format!("/api/admin/vouchers?phone={}", hotel.holder_phone),
            Some(&operator),
        )
        .await;
    let found = json_of(found).await;
    assert!(!found.to_string().contains("holder_key"), "{found}");
    let desk = app.venue_token("shenlong-hotel").await;
    let checked = json_of(check(&app, &desk, &shown(&hotel)).await).await;
    let secret = hotel.holder_secret.as_ref().unwrap().to_hex();
    assert!(!checked.to_string().contains(&secret), "{checked}");
    // The retired server-made QR image is gone (it was the same picture every time).
    let res = app
        .get(
            &format!("/api/me/vouchers/{}/qr.svg", hotel.id),
            Some(&session(&hotel)),
        )
        .await;
    assert_eq!(res.status(), 404);

    // After a visit the tourism card lists the scenic spot.
    let card = vouchers(&app)
        .await
        .into_iter()
        .find(|v| v.kind == "tourism_card" && v.participant_id == hotel.participant_id)
        .unwrap();
    redeem_ok(&app, &app.venue_token("huaguoshan-scenic").await, &card).await;
    let me = json_of(app.get("/api/me", Some(&session(&hotel))).await).await;
    let c = me["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["kind"] == "tourism_card")
        .unwrap()
        .clone();
    assert_eq!(c["visited"][0]["venue_name"], "衡山花果山景区");
    assert_eq!(c["status"], "usable");
    assert!(c["visited"][0]["at"].as_str().unwrap().ends_with("+08:00"));
}

async fn a_hotel_desk_checks_and_redeems_a_code_once(db: TestDb) {
    let app = drawn(db).await;
    let desk = app.venue_token("shenlong-hotel").await;
    let v = voucher_of(&app, "hotel_night", 0).await;
    // Checking shows the holder (masked) and changes nothing.
    let res = check(&app, &desk, &shown(&v).to_lowercase().replace('-', " ")).await;
    assert_eq!(res.status(), 200);
    let c = json_of(res).await;
    assert_eq!(c["redeemable"], true);
    assert_eq!(c["voucher"]["kind"], "hotel_night");
    let masked = c["voucher"]["holder_phone"].as_str().unwrap();
    assert_eq!(masked, format!("138****{}", &v.holder_phone[7..]));
    assert_eq!(c["voucher"]["holder_check"], true);
    assert_eq!(redemption_count(&app).await, 0);

    let r = redeem_ok(&app, &desk, &v).await;
    assert_eq!(r["replayed"], false);
    assert_eq!(r["redemption"]["venue_name"], "神龙大酒店");
    assert_eq!(r["redemption"]["reversible"], true);
    assert_eq!(redemption_count(&app).await, 1);

    // A second time, here or at the other hotel: already used, when and where.
    for venue in ["shenlong-hotel", "hengshan-hotel"] {
        let t = app.venue_token(venue).await;
        let res = redeem(&app, &t, &shown(&v), Some(&code_now(&app, &v)), &key()).await;
        let (status, body) = error_body(res).await;
        assert_eq!(status, 409);
        assert_eq!(body["error"]["code"], "already_used");
        assert_eq!(body["error"]["details"]["venue_name"], "神龙大酒店");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("神龙大酒店"));
        let c = json_of(check(&app, &t, &shown(&v)).await).await;
        assert_eq!(c["redeemable"], false);
        assert_eq!(c["refusal"]["code"], "already_used");
    }
    assert_eq!(redemption_count(&app).await, 1);
    let me = json_of(app.get("/api/me/vouchers", Some(&session(&v))).await).await;
    let h = me
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "hotel_night")
        .unwrap()
        .clone();
    assert_eq!(h["status"], "used");
}

async fn every_refusal_names_its_reason(db: TestDb) {
    let app = drawn(db).await;
    let hotel_desk = app.venue_token("shenlong-hotel").await;
    let v = voucher_of(&app, "hotel_night", 0).await;
    let code = shown(&v);
    let d = code_now(&app, &v);
    let refused = |res: reqwest::Response| error_code(res);

    // Typo: one symbol changed; caught without the database.
    let mut typo = v.code.clone().into_bytes();
    typo[3] = if typo[3] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(
        refused(redeem(&app, &hotel_desk, &typo, Some(&d), &key()).await).await,
        (422, "typo".into())
    );
    assert_eq!(
        refused(redeem(&app, &hotel_desk, "ABCD-EFGH", Some(&d), &key()).await).await,
        (422, "malformed_code".into())
    );
    // Unknown: a well-formed code no voucher has.
    let unknown = VoucherCode::from_random([3; 11]).to_string();
    assert_eq!(
        refused(redeem(&app, &hotel_desk, &unknown, Some(&d), &key()).await).await,
        (404, "unknown_code".into())
    );
    assert_eq!(
        refused(check(&app, &hotel_desk, &unknown).await).await,
        (404, "unknown_code".into())
    );
    // Wrong kind of venue: a hotel night at a restaurant, a tourism card at a hotel.
    let restaurant = app.venue_token("example-dining-1").await;
    assert_eq!(
        refused(redeem(&app, &restaurant, &code, Some(&d), &key()).await).await,
        (422, "wrong_venue_category".into())
    );
    let card = voucher_of(&app, "tourism_card", 0).await;
    assert_eq!(
        refused(
            redeem(
                &app,
                &hotel_desk,
                &shown(&card),
                Some(&code_now(&app, &card)),
                &key()
            )
            .await
        )
        .await,
        (422, "wrong_venue_category".into())
    );
    // The holder code: missing, wrong, not a code.
    assert_eq!(
        refused(redeem(&app, &hotel_desk, &code, None, &key()).await).await,
        (422, "holder_code_required".into())
    );
    let wrong = wrong_code(&app, &v);
    assert_eq!(
        refused(redeem(&app, &hotel_desk, &code, Some(&wrong), &key()).await).await,
        (422, "holder_mismatch".into())
    );
    let (status, body) =
        error_body(redeem(&app, &hotel_desk, &code, Some("5678"), &key()).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_field"))
    );
    assert_eq!(body["error"]["details"]["field"], "holder_code");
    // Not yet valid (the day before the first round) and expired (181 days on).
    app.clock.set(demo_now() - Duration::hours(11));
    assert_eq!(
        refused(redeem(&app, &hotel_desk, &code, Some(&d), &key()).await).await,
        (422, "not_yet_valid".into())
    );
    app.clock.set(demo_now() + Duration::days(181));
    let (status, body) = error_body(redeem(&app, &hotel_desk, &code, Some(&d), &key()).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("expired"))
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("2027年05月25日"));
    // The last valid local day still works: 2027-05-25 23:59 in Shanghai.
    let last_minute: DateTime<Utc> = "2027-05-25T15:59:00Z".parse().unwrap();
    app.clock.set(last_minute);
    let res = check(&app, &hotel_desk, &code).await;
    assert_eq!(json_of(res).await["redeemable"], true);
    // Void.
    app.clock.set(demo_now() + Duration::days(8));
    let operator = app.token(Role::Operator, "运营").await;
    let res = app
        .post_json(
            &format!("/api/admin/vouchers/{}/void", v.id),
            Some(&operator),
            &json!({"reason": "持券人报失"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        refused(redeem(&app, &hotel_desk, &code, Some(&d), &key()).await).await,
        (410, "voucher_void".into())
    );
    // None of it wrote a redemption.
    assert_eq!(redemption_count(&app).await, 0);
}

async fn a_tourism_card_is_used_once_at_each_scenic_spot(db: TestDb) {
    let app = drawn(db).await;
    let spot_a = app.venue_token("huaguoshan-scenic").await;
    let spot_b = app.venue_token("example-scenic-1").await;
    let card = voucher_of(&app, "tourism_card", 5).await;
    redeem_ok(&app, &spot_a, &card).await;
    let (status, body) = error_body(
        redeem(
            &app,
            &spot_a,
            &shown(&card),
            Some(&code_now(&app, &card)),
            &key(),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_used"))
    );
    assert_eq!(body["error"]["details"]["venue_id"], "huaguoshan-scenic");
    redeem_ok(&app, &spot_b, &card).await;
    // The check at a third spot shows both visits.
    let spot_c = app.venue_token("example-scenic-2").await;
    let c = json_of(check(&app, &spot_c, &shown(&card)).await).await;
    assert_eq!(c["redeemable"], true);
    assert_eq!(c["voucher"]["visited"].as_array().unwrap().len(), 2);
    redeem_ok(&app, &spot_c, &card).await;
    // Every scenic spot visited: used up.
    let mine = json_of(app.get("/api/me/vouchers", Some(&session(&card))).await).await;
    let c = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["kind"] == "tourism_card")
        .unwrap()
        .clone();
    assert_eq!(c["status"], "used");
    assert_eq!(redemption_count(&app).await, 3);
}

async fn the_same_idempotency_key_gets_the_same_answer(db: TestDb) {
    let app = drawn(db).await;
    let desk = app.venue_token("shenlong-hotel").await;
    let v = voucher_of(&app, "hotel_night", 0).await;
    let k = key();
    let first = redeem(&app, &desk, &shown(&v), Some(&code_now(&app, &v)), &k).await;
    assert_eq!(first.status(), 200);
    let first = json_of(first).await;
    // A retry (another spelling of the same code): the same redemption, marked as a replay.
    let again = redeem(
        &app,
        &desk,
        &v.code.to_lowercase(),
        Some(&code_now(&app, &v)),
        &k,
    )
    .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again = json_of(again).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["redemption"]["id"], first["redemption"]["id"]);
    assert_eq!(
        again["redemption"]["redeemed_at"],
        first["redemption"]["redeemed_at"]
    );
    // The same key with another code is refused.
    let other = voucher_of(&app, "hotel_night", 1).await;
    assert_eq!(
        error_code(
            redeem(
                &app,
                &desk,
                &shown(&other),
                Some(&code_now(&app, &other)),
                &k
            )
            .await
        )
        .await,
        (422, "idempotency_key_reused".into())
    );
    assert_eq!(redemption_count(&app).await, 1);
    // Keys belong to a token: another desk's token may use the same key for its own request.
    let other_desk = app.venue_token("hengshan-hotel").await;
    let res = redeem(
        &app,
        &other_desk,
        &shown(&other),
        Some(&code_now(&app, &other)),
        &k,
    )
    .await;
    assert_eq!(res.status(), 200);
    // Fifty retries at once of one request with one key: one redemption, fifty equal answers.
    let third = voucher_of(&app, "hotel_night", 2).await;
    let k = key();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (client, url, desk, code, d, k) = (
            app.client.clone(),
            app.url("/api/venue/redeem"),
            desk.clone(),
            shown(&third),
            code_now(&app, &third),
            k.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(desk)
                .header("Idempotency-Key", k)
                .json(&json!({"code": code, "holder_code": d}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()["redemption"]["id"].clone()
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().to_string());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(redemption_count(&app).await, 3);
    // A refusal is the key's answer too, as payment APIs keep it: retried with the same request
    // it is told again (and not counted again as a failed look-up, past the limit of 10); with
    // the holder's right code under the same key, the key is refused as reused.
    let fourth = voucher_of(&app, "hotel_night", 3).await;
    let wrong = wrong_code(&app, &fourth);
    let k = key();
    for _ in 0..12 {
        assert_eq!(
            error_code(redeem(&app, &desk, &shown(&fourth), Some(&wrong), &k).await).await,
            (422, "holder_mismatch".into())
        );
    }
    assert_eq!(
        error_code(
            redeem(
                &app,
                &desk,
                &shown(&fourth),
                Some(&code_now(&app, &fourth)),
                &k
            )
            .await
        )
        .await,
        (422, "idempotency_key_reused".into())
    );
    assert_eq!(
        error_code(redeem(&app, &desk, &shown(&fourth), None, &k).await).await,
        (422, "idempotency_key_reused".into())
    );
    assert_eq!(redemption_count(&app).await, 3);
    // A new key is a new request.
    let res = redeem(
        &app,
        &desk,
        &shown(&fourth),
        Some(&code_now(&app, &fourth)),
        &key(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(redemption_count(&app).await, 4);
    // And a success retried with another holder code under its key is not a retry.
    let k = key();
    let fifth = voucher_of(&app, "hotel_night", 4).await;
    assert_eq!(
        redeem(
            &app,
            &desk,
            &shown(&fifth),
            Some(&code_now(&app, &fifth)),
            &k
        )
        .await
        .status(),
        200
    );
    let other_code = wrong_code(&app, &fifth);
    assert_eq!(
        error_code(redeem(&app, &desk, &shown(&fifth), Some(&other_code), &k).await).await,
        (422, "idempotency_key_reused".into())
    );
}

async fn a_venue_reverses_its_own_redemption_within_the_window(db: TestDb) {
    let app = drawn(db).await;
    let desk = app.venue_token("shenlong-hotel").await;
    let other_desk = app.venue_token("hengshan-hotel").await;
    let v = voucher_of(&app, "hotel_night", 0).await;
    let r = redeem_ok(&app, &desk, &v).await;
    let id = r["redemption"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/venue/redemptions/{id}/reverse");
    // Not another venue's to reverse.
    assert_eq!(
        error_code(app.post_json(&path, Some(&other_desk), &json!({})).await).await,
        (404, "redemption_not_found".into())
    );
    app.clock.advance(Duration::minutes(29));
    let res = app.post_json(&path, Some(&desk), &json!({})).await;
    assert_eq!(res.status(), 200);
    let reversed = json_of(res).await;
    assert!(reversed["reversed_at"].is_string());
    assert_eq!(reversed["reversible"], false);
    assert_eq!(
        error_code(app.post_json(&path, Some(&desk), &json!({})).await).await,
        (409, "already_reversed".into())
    );
    // Nothing deleted: the redemption and the reversal are both on record.
    assert_eq!(redemption_count(&app).await, 1);
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM reversals").await, 1);
    // The code can be used again, and this time the window passes.
    let again = redeem_ok(&app, &other_desk, &v).await;
    let id2 = again["redemption"]["id"].as_str().unwrap();
    app.clock.advance(Duration::minutes(30));
    let recent = json_of(app.get("/api/venue/redemptions", Some(&other_desk)).await).await;
    assert_eq!(recent[0]["id"], id2);
    assert_eq!(recent[0]["reversible"], false);
    assert_eq!(
        error_code(
            app.post_json(
                &format!("/api/venue/redemptions/{id2}/reverse"),
                Some(&other_desk),
                &json!({})
            )
            .await
        )
        .await,
        (409, "reversal_window_passed".into())
    );
    // The first desk's list shows its reversed redemption.
    let recent = json_of(app.get("/api/venue/redemptions", Some(&desk)).await).await;
    assert_eq!(recent.as_array().unwrap().len(), 1);
    assert!(recent[0]["reversed_at"].is_string());
}

/// Redeems one code from every (redeem URL, token, Idempotency-Key) at once; the statuses.
async fn fire(
    client: &reqwest::Client,
    v: &VoucherRecord,
    holder_code: &str,
    from: Vec<(String, String, String)>,
) -> Vec<u16> {
    let mut tasks = Vec::new();
    for (url, token, key) in from {
        let (client, code, d) = (client.clone(), shown(v), holder_code.to_owned());
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&json!({"code": code, "holder_code": d}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses
}

/// Fires `n` redeems of one code at once, each with its own key; returns the statuses.
async fn race(app: &TestApp, token: &str, v: &VoucherRecord, n: usize) -> Vec<u16> {
    let from = (0..n)
        .map(|_| (app.url("/api/venue/redeem"), token.to_owned(), key()))
        .collect();
    fire(&app.client, v, &code_now(app, v), from).await
}

async fn fifty_concurrent_redeems_of_one_code_succeed_once(db: TestDb) {
    let app = drawn(db).await;
    let hotel = voucher_of(&app, "hotel_night", 0).await;
    let statuses = race(&app, &app.venue_token("shenlong-hotel").await, &hotel, 50).await;
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        49,
        "{statuses:?}"
    );
    let card = voucher_of(&app, "tourism_card", 0).await;
    let statuses = race(&app, &app.venue_token("huaguoshan-scenic").await, &card, 50).await;
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        49,
        "{statuses:?}"
    );
    assert_eq!(redemption_count(&app).await, 2);
    // Fifty desks of two hotels at once, each with its own token: still once.
    let dining = voucher_of(&app, "dining_coupon", 0).await;
    let mut from = Vec::new();
    for i in 0..50 {
        let venue = if i % 2 == 0 {
            "example-dining-1"
        } else {
            "example-dining-2"
        };
        let token = app.venue_token(venue).await;
        from.push((
            app.url("/api/venue/redeem"),
            token,
            "same-key-on-every-desk".to_owned(),
        ));
    }
    let ok = fire(&app.client, &dining, &code_now(&app, &dining), from)
        .await
        .into_iter()
        .filter(|&s| s == 200)
        .count();
    assert_eq!(ok, 1);
    assert_eq!(redemption_count(&app).await, 3);
}

/// The holder codes the desk would take at `at`: its step's, the one before and the one after.
fn window(v: &VoucherRecord, at: DateTime<Utc>) -> Vec<String> {
    [-30, 0, 30]
        .iter()
        .map(|s| holder_code_at(v, at + Duration::seconds(*s)))
        .collect()
}

async fn the_holder_code_is_taken_in_its_window_and_once(db: TestDb) {
    let app = drawn(db).await;
    let spot_a = app.venue_token("huaguoshan-scenic").await;
    let spot_b = app.venue_token("example-scenic-1").await;
    let spot_c = app.venue_token("example-scenic-2").await;
    let card = voucher_of(&app, "tourism_card", 0).await;
    let now = app.clock.now();
    // Two steps and more away, either side: refused (a screenshot a minute old is worthless).
    let taken = window(&card, now);
    for secs in [-60, -90, -600, 60, 90] {
        let far = holder_code_at(&card, now + Duration::seconds(secs));
        if taken.contains(&far) {
            continue; // six digits can repeat across steps
        }
        assert_eq!(
            error_code(redeem(&app, &spot_a, &shown(&card), Some(&far), &key()).await).await,
            (422, "holder_mismatch".into()),
            "{secs} s"
        );
    }
    assert_eq!(redemption_count(&app).await, 0);
    // The code of the step before the desk's (a phone a little slow, or a code read as it
    // changed) is taken…
    let before = holder_code_at(&card, now - Duration::seconds(30));
    assert_eq!(
        redeem(&app, &spot_a, &shown(&card), Some(&before), &key())
            .await
            .status(),
        200
    );
    // … once: at another spot, inside the same minute, it is refused as used.
    assert_eq!(
        error_code(redeem(&app, &spot_b, &shown(&card), Some(&before), &key()).await).await,
        (422, "holder_code_used".into())
    );
    // The code of now is another: taken at spot B.
    let current = code_now(&app, &card);
    let res = redeem(&app, &spot_b, &shown(&card), Some(&current), &key()).await;
    assert_eq!(res.status(), 200);
    let at_b = json_of(res).await["redemption"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A reversal gives the visit back, not the code: spot B reverses, and the same code is
    // still spent; the next step's (a phone a little fast) is good.
    let res = app
        .post_json(
            &format!("/api/venue/redemptions/{at_b}/reverse"),
            Some(&spot_b),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        error_code(redeem(&app, &spot_b, &shown(&card), Some(&current), &key()).await).await,
        (422, "holder_code_used".into())
    );
    let after = holder_code_at(&card, now + Duration::seconds(30));
    assert_eq!(
        redeem(&app, &spot_b, &shown(&card), Some(&after), &key())
            .await
            .status(),
        200
    );
    // Ten minutes on, the code the phone shows then is taken at spot C; the morning's are not.
    app.clock.advance(Duration::minutes(10));
    assert_eq!(
        error_code(redeem(&app, &spot_c, &shown(&card), Some(&after), &key()).await).await,
        (422, "holder_mismatch".into())
    );
    assert_eq!(
        redeem(
            &app,
            &spot_c,
            &shown(&card),
            Some(&code_now(&app, &card)),
            &key()
        )
        .await
        .status(),
        200
    );
    // Each redemption recorded the step it was proven with, each step once.
    let recorded = app
        .db
        .scalar(&format!(
            "SELECT COUNT(DISTINCT holder_step) FROM redemptions WHERE voucher_id = '{}'",
            card.id
        ))
        .await;
    assert_eq!((recorded, redemption_count(&app).await), (4, 4));
}

async fn two_desks_with_one_holder_code_at_once_take_it_once(db: TestDb) {
    let app = drawn(db).await;
    // A tourism card's holder code seen over a shoulder and typed at another gate at the same
    // moment: each gate's slot is free, the code is not.
    let card = voucher_of(&app, "tourism_card", 1).await;
    let code = code_now(&app, &card);
    let mut from = Vec::new();
    for (i, venue) in ["huaguoshan-scenic", "example-scenic-1"].iter().enumerate() {
        let token = app.venue_token(venue).await;
        for _ in 0..10 {
            from.push((
                app.url("/api/venue/redeem"),
                token.clone(),
                format!("{i}-{}", key()),
            ));
        }
    }
    let statuses = fire(&app.client, &card, &code, from).await;
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    // The other gate's requests are told the code is used; the first gate's, the slot is.
    assert!(
        statuses.iter().all(|s| [200, 409, 422].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(redemption_count(&app).await, 1);
}

async fn a_voucher_from_before_holder_codes_gets_its_secret_when_its_holder_looks(db: TestDb) {
    let app = drawn(db).await;
    let v = voucher_of(&app, "hotel_night", 0).await;
    // As a voucher issued before migration 0016 is: no secret.
    app.db
        .execute(&format!(
            "UPDATE vouchers SET holder_secret = NULL WHERE participant_id = '{}'",
            v.participant_id
        ))
        .await;
    let desk = app.venue_token("shenlong-hotel").await;
    let bare = app.store.voucher(v.id).await.unwrap().unwrap();
    assert_eq!(bare.holder_secret, None);
    // Nothing the desk is told proves holding yet.
    assert_eq!(
        error_code(redeem(&app, &desk, &shown(&v), Some(&code_now(&app, &v)), &key()).await).await,
        (422, "holder_mismatch".into())
    );
    // The holder opens /me: a new secret, from the OS, kept.
    let me = json_of(app.get("/api/me", Some(&session(&v))).await).await;
    let given = app.store.voucher(v.id).await.unwrap().unwrap();
    let secret = given
        .holder_secret
        .clone()
        .expect("given when the holder looked");
    assert_ne!(Some(&secret), v.holder_secret.as_ref());
    let shown_key = me["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "hotel_night")
        .unwrap()["holder_key"]["secret"]
        .clone();
    assert_eq!(shown_key, secret.to_hex());
    let again = json_of(app.get("/api/me/vouchers", Some(&session(&v))).await).await;
    assert!(
        again.to_string().contains(&secret.to_hex()),
        "the same secret, not a new one"
    );
    assert_eq!(
        app.db
            .scalar(&format!(
                "SELECT COUNT(*) FROM vouchers WHERE participant_id = '{}' AND holder_secret IS NULL",
                v.participant_id
            ))
            .await,
        0
    );
    // And the code the phone now shows is taken.
    let res = redeem(
        &app,
        &desk,
        &shown(&v),
        Some(&code_now(&app, &given)),
        &key(),
    )
    .await;
    assert_eq!(res.status(), 200);
}

async fn failed_lookups_are_throttled_without_revealing_codes(db: TestDb) {
    let mut loaded = common::settings(&db.url, &common::repo_config_dir(), "campaign-demo.toml");
    loaded.settings.vouchers.failed_lookups_per_token = 3;
    loaded.settings.vouchers.failed_lookups_per_address = 5;
    let app = TestApp::spawn_with(db, &loaded, demo_now()).await;
    common::tickets_in(&app.store, "demo", 1, app.clock.now(), 0..40).await;
    let after = demo_now() + Duration::days(7) + Duration::minutes(1);
    app.clock.set(after);
    common::draw_round(&app.store, &app.campaign, 1, after).await;

    let desk = app.venue_token("shenlong-hotel").await;
    let v = voucher_of(&app, "hotel_night", 0).await;
    // Typos are not look-ups and never count.
    let typo = format!("{}0", &v.code[..11]);
    let typo = if typo == v.code {
        format!("{}1", &v.code[..11])
    } else {
        typo
    };
    for _ in 0..5 {
        let (status, _) = error_code(check(&app, &desk, &typo).await).await;
        assert_eq!(status, 422);
    }
    // Three unknown codes (one of them a wrong holder code: a guess), then 429 even for a real
    // code.
    for i in 0..2u8 {
        let unknown = VoucherCode::from_random([i + 40; 11]).to_string();
        assert_eq!(error_code(check(&app, &desk, &unknown).await).await.0, 404);
    }
    let wrong = wrong_code(&app, &v);
    assert_eq!(
        error_code(redeem(&app, &desk, &shown(&v), Some(&wrong), &key()).await).await,
        (422, "holder_mismatch".into())
    );
    let res = check(&app, &desk, &shown(&v)).await;
    let retry: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    let (status, body) = error_body(res).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "too_many_failed_lookups");
    assert!(body.to_string().find(&v.code).is_none());
    let res = redeem(&app, &desk, &shown(&v), Some(&code_now(&app, &v)), &key()).await;
    assert_eq!(res.status(), 429);
    assert_eq!(redemption_count(&app).await, 0);
    // Another token from the same address has two failures left before the address limit.
    let desk2 = app.venue_token("hengshan-hotel").await;
    for i in 0..2u8 {
        let unknown = VoucherCode::from_random([i + 60; 11]).to_string();
        assert_eq!(error_code(check(&app, &desk2, &unknown).await).await.0, 404);
    }
    assert_eq!(check(&app, &desk2, &shown(&v)).await.status(), 429);
    // The window passes: allowed again.
    app.clock.advance(Duration::minutes(16));
    let res = redeem(&app, &desk, &shown(&v), Some(&code_now(&app, &v)), &key()).await;
    assert_eq!(res.status(), 200);
}

async fn operators_void_and_reissue_a_lost_code(db: TestDb) {
    let app = drawn(db).await;
    let operator = app.token(Role::Operator, "运营").await;
    let desk = app.venue_token("huaguoshan-scenic").await;
    let card = voucher_of(&app, "tourism_card", 3).await;
    redeem_ok(&app, &desk, &card).await;

    // Found by the winner's phone, in any spelling.
    let phone = format!("+86 {}", card.holder_phone);
    let found = json_of(
        app.get(
            &format!("/api/admin/vouchers?phone={}", urlencode(&phone)),
            Some(&operator),
        )
        .await,
    )
    .await;
    assert!(found
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["id"] == card.id.to_string()));

    let void_path = format!("/api/admin/vouchers/{}/void", card.id);
    let reissue_path = format!("/api/admin/vouchers/{}/reissue", card.id);
    // Only operators; a reason is needed; a live voucher is not reissued.
    assert_eq!(
        error_code(
            app.post_json(&void_path, Some(&desk), &json!({"reason": "x"}))
                .await
        )
        .await,
        (403, "forbidden".into())
    );
    assert_eq!(
        error_code(
            app.post_json(&void_path, Some(&operator), &json!({"reason": " "}))
                .await
        )
        .await,
        (422, "invalid_field".into())
    );
    assert_eq!(
        error_code(
            app.post_json(&reissue_path, Some(&operator), &json!({}))
                .await
        )
        .await,
        (409, "voucher_not_void".into())
    );
    // A reason that would break the CSV export or the log is refused.
    for reason in ["丢\u{0}失", "丢\n失", "\u{202e}失丢"] {
        let res = app
            .post_json(&void_path, Some(&operator), &json!({"reason": reason}))
            .await;
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_field", "{reason:?}");
        assert_eq!(body["error"]["details"]["field"], "reason");
    }
    let res = app
        .post_json(
            &void_path,
            Some(&operator),
            &json!({"reason": "持券人报失"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(res).await["status"], "void");
    assert_eq!(
        error_code(
            app.post_json(&void_path, Some(&operator), &json!({"reason": "again"}))
                .await
        )
        .await,
        (409, "already_void".into())
    );
    let res = app
        .post_json(&reissue_path, Some(&operator), &json!({}))
        .await;
    assert_eq!(res.status(), 201);
    let new = json_of(res).await;
    assert_ne!(new["code"], shown(&card));
    assert_eq!(new["reissued_from"], card.id.to_string());
    // The new code keeps the visit made with the old one.
    assert_eq!(new["visited"][0]["venue_id"], "huaguoshan-scenic");
    assert_eq!(
        error_code(
            app.post_json(&reissue_path, Some(&operator), &json!({}))
                .await
        )
        .await,
        (409, "already_reissued".into())
    );
    let new_code = new["code"].as_str().unwrap();
    // The new code has its own holder secret; the old one's codes do not prove the new one.
    let renewed = app
        .store
        .voucher_by_code(VoucherCode::parse(new_code).unwrap().as_str())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(renewed.holder_secret, card.holder_secret);
    let d = code_now(&app, &renewed);
    // The old code is void; the new one works at another spot but not again at the first.
    assert_eq!(
        error_code(redeem(&app, &desk, &shown(&card), Some(&d), &key()).await).await,
        (410, "voucher_void".into())
    );
    assert_eq!(
        error_code(redeem(&app, &desk, new_code, Some(&d), &key()).await).await,
        (409, "already_used".into())
    );
    let spot_b = app.venue_token("example-scenic-1").await;
    assert_eq!(
        redeem(&app, &spot_b, new_code, Some(&d), &key())
            .await
            .status(),
        200
    );
    // The winner sees both: the void one and its replacement.
    let mine = json_of(app.get("/api/me/vouchers", Some(&session(&card))).await).await;
    let cards: Vec<&Value> = mine
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["kind"] == "tourism_card")
        .collect();
    assert_eq!(cards.len(), 2);
    assert!(cards
        .iter()
        .any(|c| c["status"] == "void" && c["void_reason"] == "持券人报失"));
    // Unknown voucher ids.
    let res = app
        .post_json(
            &format!("/api/admin/vouchers/{}/void", uuid::Uuid::new_v4()),
            Some(&operator),
            &json!({"reason": "x"}),
        )
        .await;
    assert_eq!(error_code(res).await, (404, "voucher_not_found".into()));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let text = text.trim_start_matches('\u{feff}');
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let mut rows = vec![r.headers().unwrap().iter().map(String::from).collect()];
    for rec in r.records() {
        rows.push(rec.unwrap().iter().map(String::from).collect());
    }
    rows
}

async fn exports_and_settlement_as_csv(db: TestDb) {
    let app = drawn(db).await;
    let operator = app.token(Role::Operator, "运营").await;
    let auditor = app.token(Role::Auditor, "审计").await;
    let hotel_a = app.venue_token("shenlong-hotel").await;
    let dining = app.venue_token("example-dining-1").await;

    // Winners and vouchers: one row per voucher, operators only.
    let res = app
        .get("/api/admin/exports/vouchers.csv", Some(&operator))
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let rows = csv_rows(&res.text().await.unwrap());
    assert_eq!(rows[0][..3], ["round", "rank", "tier"]);
    assert_eq!(rows.len() - 1, 30 * 3 + 10);
    assert_eq!(
        error_code(
            app.get("/api/admin/exports/vouchers.csv", Some(&hotel_a))
                .await
        )
        .await,
        (403, "forbidden".into())
    );
    assert_eq!(
        error_code(
            app.get("/api/admin/exports/vouchers.csv", Some(&auditor))
                .await
        )
        .await,
        (403, "forbidden".into())
    );

    // Two hotel nights and a dining coupon redeemed, one hotel night reversed.
    let h1 = voucher_of(&app, "hotel_night", 0).await;
    let h2 = voucher_of(&app, "hotel_night", 1).await;
    let d1 = voucher_of(&app, "dining_coupon", 0).await;
    let r1 = redeem_ok(&app, &hotel_a, &h1).await;
    app.clock.advance(Duration::minutes(1));
    redeem_ok(&app, &hotel_a, &h2).await;
    app.clock.advance(Duration::minutes(1));
    redeem_ok(&app, &dining, &d1).await;
    app.clock.advance(Duration::minutes(1));
    let id = r1["redemption"]["id"].as_str().unwrap();
    let res = app
        .post_json(
            &format!("/api/venue/redemptions/{id}/reverse"),
            Some(&hotel_a),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let day = "2026-12-03"; // the local day of the draw and the redemptions
    let q = format!("/api/settlement.csv?from={day}&to={day}");

    // A venue gets its own: two redeems and a reversal, net one hotel night.
    let rows = csv_rows(&app.get(&q, Some(&hotel_a)).await.text().await.unwrap());
    let entries: Vec<&str> = rows[1..].iter().map(|r| r[2].as_str()).collect();
    assert_eq!(
        entries,
        ["redeem", "redeem", "reverse", "total"],
        "{rows:?}"
    );
    let total = rows.last().unwrap();
    assert_eq!(
        (total[0].as_str(), total[4].as_str(), total[8].as_str()),
        ("shenlong-hotel", "hotel_night", "1")
    );
    assert!(rows[1..].iter().all(|r| r[0] == "shenlong-hotel"));
    // Asking for another venue's is refused.
    assert_eq!(
        error_code(
            app.get(&format!("{q}&venue=example-dining-1"), Some(&hotel_a))
                .await
        )
        .await,
        (403, "own_venue_only".into())
    );
    // Operators and auditors get every venue, with the dining coupon's face value.
    for token in [&operator, &auditor] {
        let rows = csv_rows(&app.get(&q, Some(token)).await.text().await.unwrap());
        let totals: Vec<(&str, &str, &str, &str)> = rows
            .iter()
            .filter(|r| r[2] == "total")
            .map(|r| (r[0].as_str(), r[4].as_str(), r[8].as_str(), r[9].as_str()))
            .collect();
        assert_eq!(
            totals,
            [
                ("example-dining-1", "dining_coupon", "1", "200"),
                ("shenlong-hotel", "hotel_night", "1", "0"),
            ]
        );
    }
    // Another day has nothing; a bad range is refused; participants have no access.
    let rows = csv_rows(
        &app.get(
            "/api/settlement.csv?from=2026-12-04&to=2026-12-10",
            Some(&operator),
        )
        .await
        .text()
        .await
        .unwrap(),
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(
        error_code(
            app.get(
                "/api/settlement.csv?from=2026-12-04&to=2026-12-01",
                Some(&operator)
            )
            .await
        )
        .await,
        (400, "invalid_query".into())
    );
    assert_eq!(
        error_code(
            app.get(
                "/api/settlement.csv?from=yesterday&to=2026-12-01",
                Some(&operator)
            )
            .await
        )
        .await,
        (400, "invalid_query".into())
    );
    let witness = app.token(Role::Witness, "公证处").await;
    assert_eq!(
        error_code(app.get(&q, Some(&witness)).await).await,
        (403, "forbidden".into())
    );
}

async fn voucher_events_are_in_the_audit_log(db: TestDb) {
    let app = drawn(db).await;
    let operator = app.token(Role::Operator, "运营").await;
    let desk = app.venue_token("shenlong-hotel").await;
    let v = voucher_of(&app, "hotel_night", 0).await;
    let r = redeem_ok(&app, &desk, &v).await;
    let id = r["redemption"]["id"].as_str().unwrap();
    let res = app
        .post_json(
            &format!("/api/venue/redemptions/{id}/reverse"),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .post_json(
            &format!("/api/admin/vouchers/{}/void", v.id),
            Some(&operator),
            &json!({"reason": "持券人报失"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .post_json(
            &format!("/api/admin/vouchers/{}/reissue", v.id),
            Some(&operator),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let log = json_of(app.get("/api/audit?limit=500", Some(&operator)).await).await;
    let entries = log["entries"]
        .as_array()
        .unwrap_or_else(|| log.as_array().unwrap());
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "voucher.issue",
        "voucher.redeem",
        "voucher.reverse",
        "voucher.void",
        "voucher.reissue",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let issue = entries
        .iter()
        .find(|e| e["action"] == "voucher.issue")
        .unwrap();
    let details: Value = serde_json::from_str(issue["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["count"], 100, "{issue}");
    // The log holds ids, never codes.
    assert!(!log.to_string().contains(&v.code));
    let redeem_entry = entries
        .iter()
        .find(|e| e["action"] == "voucher.redeem")
        .unwrap();
    assert!(redeem_entry["actor"]
        .as_str()
        .unwrap()
        .starts_with("venue:"));
    let verified = json_of(app.get("/api/audit/verify", Some(&operator)).await).await;
    assert_eq!(verified["ok"], true, "{verified}");
}

async fn bad_requests_write_nothing(db: TestDb) {
    let app = drawn(db).await;
    let desk = app.venue_token("shenlong-hotel").await;
    let operator = app.token(Role::Operator, "运营").await;
    let v = voucher_of(&app, "hotel_night", 0).await;
    let body = json!({"code": shown(&v), "holder_code": code_now(&app, &v)});
    let post = |token: Option<String>, key: Option<&str>, body: String| {
        let mut req = app
            .client
            .post(app.url("/api/venue/redeem"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send()
    };
    // (token, Idempotency-Key, body, status, error code)
    type Case<'a> = (Option<String>, Option<&'a str>, String, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (None, Some("k1"), body.to_string(), 401, "missing_token"),
        (
            Some("clv_nonsense".into()),
            Some("k1"),
            body.to_string(),
            401,
            "unknown_token",
        ),
        (
            Some(operator.clone()),
            Some("k1"),
            body.to_string(),
            403,
            "forbidden",
        ),
        (
            Some(session(&v)),
            Some("k1"),
            body.to_string(),
            401,
            "unknown_token",
        ),
        (
            Some(desk.clone()),
            None,
            body.to_string(),
            400,
            "idempotency_key_required",
        ),
        (
            Some(desk.clone()),
            Some(""),
            body.to_string(),
            400,
            "invalid_idempotency_key",
        ),
        (
            Some(desk.clone()),
            Some("k1"),
            "{\"code\": ".into(),
            400,
            "malformed_json",
        ),
        (
            Some(desk.clone()),
            Some("k1"),
            json!({"code": 12}).to_string(),
            422,
            "invalid_field",
        ),
        (
            Some(desk.clone()),
            Some("k1"),
            json!({"code": shown(&v), "extra": 1}).to_string(),
            422,
            "invalid_field",
        ),
        (
            Some(desk.clone()),
            Some("k1"),
            format!("{{\"code\": \"{0}\", \"code\": \"{0}\"}}", shown(&v)),
            400,
            "duplicate_key",
        ),
        (
            Some(desk.clone()),
            Some("k1"),
            json!({"code": shown(&v), "holder_code": "12a456"}).to_string(),
            422,
            "invalid_field",
        ),
        (
            Some(desk.clone()),
            Some("k1"),
            json!({"code": shown(&v), "holder_code": "1234567"}).to_string(),
            422,
            "invalid_field",
        ),
        (
            Some(desk.clone()),
            Some("k1"),
            json!({"code": shown(&v), "holder_code": 123456}).to_string(),
            422,
            "invalid_field",
        ),
        // The phone's last four digits are no longer proof: refused, naming what to send.
        (
            Some(desk.clone()),
            Some("k1"),
            json!({"code": shown(&v), "holder_digits": &v.holder_phone[7..]}).to_string(),
            422,
            "invalid_field",
        ),
        (
            Some(desk.clone()),
            Some("k1"),
            "x".repeat(70_000),
            413,
            "payload_too_large",
        ),
    ];
    for (token, key, body, status, code) in cases {
        let res = post(token, key, body).await.unwrap();
        assert_eq!(error_code(res).await, (status, code.into()), "{code}");
    }
    // Nothing written, and nothing counted against the desk.
    assert_eq!(redemption_count(&app).await, 0);
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM lookup_failures").await,
        0
    );
    // Other endpoints' bad input.
    assert_eq!(
        error_code(
            app.post_json(
                "/api/venue/redemptions/nonsense/reverse",
                Some(&desk),
                &json!({})
            )
            .await
        )
        .await,
        (404, "redemption_not_found".into())
    );
    assert_eq!(
        error_code(app.get("/api/venue/redemptions?limit=0", Some(&desk)).await).await,
        (400, "invalid_query".into())
    );
    assert_eq!(
        error_code(
            app.get("/api/admin/vouchers?phone=12345", Some(&operator))
                .await
        )
        .await,
        (400, "invalid_query".into())
    );
    assert_eq!(
        error_code(
            app.post_json(
                "/api/venue/check",
                Some(&operator),
                &json!({"code": shown(&v)})
            )
            .await
        )
        .await,
        (403, "forbidden".into())
    );
    // The whole request, properly made, still works.
    let res = redeem(&app, &desk, &shown(&v), Some(&code_now(&app, &v)), "k1").await;
    assert_eq!(res.status(), 200);
}

/// Fifty redeems of one code sent to two service processes on one PostgreSQL database: one
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_service_processes_redeem_a_code_once() {
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    // The demo campaign, started today by the real clock so that its vouchers are valid now
    // for the processes; round 1 is drawn through the store a week on.
    let loaded = common::settings(&db.url, &common::repo_config_dir(), "campaign-demo.toml");
    let now = Utc::now();
    let clock = campaign_lottery::clock::ManualClock::new(now);
    let prepared = campaign_lottery::startup::prepare(&loaded, &clock)
        .await
        .unwrap();
    let store = prepared.store;
    common::tickets_in(&store, "demo", 1, now, 0..40).await;
    common::draw_round(&store, &prepared.campaign, 1, now + Duration::days(8)).await;
    let all = store.all_vouchers("demo").await.unwrap();
    let hotel = all
        .iter()
        .find(|v| v.kind == "hotel_night")
        .unwrap()
        .clone();
    let card = all
        .iter()
        .find(|v| v.kind == "tourism_card")
        .unwrap()
        .clone();
    let hotel_desk =
        common::create_token(&store, Role::Venue, "前台", Some("shenlong-hotel")).await;
    let spot_desk =
        common::create_token(&store, Role::Venue, "检票口", Some("huaguoshan-scenic")).await;
    let a = common::serve_process(&db.url, "campaign-demo.toml");
    let b = common::serve_process(&db.url, "campaign-demo.toml");
    let client = reqwest::Client::new();
    for (v, desk) in [(&hotel, &hotel_desk), (&card, &spot_desk)] {
        let from = (0..50)
            .map(|i| {
                let base = if i % 2 == 0 { &a.base } else { &b.base };
                (format!("{base}/api/venue/redeem"), desk.clone(), key())
            })
            .collect();
        let statuses = fire(&client, v, &holder_code_at(v, Utc::now()), from).await;
        assert_eq!(
            statuses.iter().filter(|&&s| s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|&&s| s == 409).count(),
            49,
            "{statuses:?}"
        );
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM redemptions").await, 2);
}

async fn stats_count_tickets_per_round_and_redemptions_per_venue_and_day(db: TestDb) {
    let app = drawn(db).await;
    let operator = app.token(Role::Operator, "运营").await;
    let auditor = app.token(Role::Auditor, "审计").await;
    let hotel = app.venue_token("shenlong-hotel").await;
    let spot = app.venue_token("huaguoshan-scenic").await;
    let witness = app.token(Role::Witness, "见证人").await;
    for t in [&hotel, &witness] {
        assert_eq!(
            error_code(app.get("/api/admin/stats", Some(t)).await).await,
            (403, "forbidden".into())
        );
    }
    assert_eq!(app.get("/api/admin/stats", None).await.status(), 401);

    // Before any redemption: round 1's 40 tickets, no days.
    let stats = json_of(app.get("/api/admin/stats", Some(&auditor)).await).await;
    assert_eq!(
        stats["tickets_per_round"],
        json!([{"round": 1, "tickets": 40}])
    );
    assert_eq!(stats["redemptions"]["days"], json!([]));

    // Day one: two hotel nights, one reversed; a tourism card at the scenic spot. Day three: a
    // hotel night.
    let day_one = app
        .clock
        .now()
        .with_timezone(&app.campaign.tz())
        .date_naive();
    let r = redeem_ok(&app, &hotel, &voucher_of(&app, "hotel_night", 0).await).await;
    redeem_ok(&app, &hotel, &voucher_of(&app, "hotel_night", 1).await).await;
    redeem_ok(&app, &spot, &voucher_of(&app, "tourism_card", 0).await).await;
    let id = r["redemption"]["id"].as_str().unwrap();
    let res = app
        .post_json(
            &format!("/api/venue/redemptions/{id}/reverse"),
            Some(&hotel),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    app.clock.advance(Duration::days(2));
    redeem_ok(&app, &hotel, &voucher_of(&app, "hotel_night", 2).await).await;

    let stats = json_of(app.get("/api/admin/stats", Some(&operator)).await).await;
    let days: Vec<String> = (0..3)
        .map(|i| (day_one + Duration::days(i)).to_string())
        .collect();
    assert_eq!(stats["redemptions"]["days"], json!(days));
    let venues = stats["redemptions"]["venues"].as_array().unwrap();
    assert_eq!(
        venues.len(),
        app.campaign.venues.len(),
        "every venue, quiet ones too"
    );
    let of = |id: &str| venues.iter().find(|v| v["id"] == id).unwrap().clone();
    assert_eq!(of("shenlong-hotel")["per_day"], json!([1, 0, 1]));
    assert_eq!(of("shenlong-hotel")["total"], 2);
    assert_eq!(of("huaguoshan-scenic")["per_day"], json!([1, 0, 0]));
    assert_eq!(of("example-dining-1")["total"], 0);
}
