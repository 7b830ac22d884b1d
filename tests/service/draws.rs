//! The weekly draw through the API, once per backend: commitments, freeze, reveals, draw, and the
//! published documents checked by the verifier.

use crate::common;

use campaign_lottery::clock::Clock;
use campaign_lottery::domain::draw::merkle::{leaf_hash, verify_path};
use campaign_lottery::domain::draw::record::{verify, RoundRecord};
use campaign_lottery::domain::draw::seed::commitment;
use campaign_lottery::domain::token::Role;
use campaign_lottery::domain::voucher::VoucherCode;
use chrono::Duration;
use common::{demo_now, error_code, TestApp, TestDb};
use serde_json::{json, Value};

backend_tests!(
    a_round_goes_from_commitments_to_a_verifiable_draw,
    the_lifecycle_refuses_steps_out_of_order,
    concurrent_draws_draw_once,
    earlier_winners_are_not_entered_again,
    exclusions_are_made_before_the_freeze_audited_and_published,
    the_review_lists_the_tickets_with_risk_signals,
    reserves_are_drawn_after_the_winners_and_verified,
    prizes_are_claimed_declined_or_forfeited_and_pass_to_the_reserves_in_order,
    holders_are_told_once_of_prizes_reminders_redemptions_and_reversals,
    after_the_last_round_what_could_not_be_given_is_reported,
    a_drand_quicknet_beacon_is_checked_offline_at_the_draw_and_by_verify,
    drawn_records_never_change_and_chain_with_their_rollover,
);

/// Participants who each passed round `round`'s quiz, as the quiz would record them.
async fn tickets(app: &TestApp, round: u32, phones: std::ops::Range<u32>) {
    common::tickets_in(&app.store, "demo", round, app.clock.now(), phones).await;
}

/// The text a public address answers.
async fn text_of(app: &TestApp, path: &str) -> String {
    app.get(path, None).await.text().await.unwrap()
}

async fn json_of(res: reqwest::Response) -> Value {
    let status = res.status();
    let text = res.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {e}: {text}"))
}

struct Staff {
    operator: String,
    notary: String,
    lawyer: String,
}

async fn staff(app: &TestApp) -> Staff {
    Staff {
        operator: app.token(Role::Operator, "值班运营").await,
        notary: app.token(Role::Witness, "衡阳公证处").await,
        lawyer: app.token(Role::Witness, "律师见证人").await,
    }
}

fn secret(name: &str, round: u32) -> [u8; 32] {
    let mut s = [0u8; 32];
    for (i, b) in name.bytes().chain(round.to_be_bytes()).enumerate() {
        s[i % 32] ^= b.wrapping_add(i as u8);
    }
    s
}

async fn commit(app: &TestApp, token: &str, name: &str, round: u32) -> reqwest::Response {
    let c = hex::encode(commitment("demo", round, name, &secret(name, round)));
    app.post_json(
        &format!("/api/rounds/{round}/commitments"),
        Some(token),
        &json!({"commitment": c}),
    )
    .await
}

async fn reveal(app: &TestApp, token: &str, name: &str, round: u32) -> reqwest::Response {
    let s = hex::encode(secret(name, round));
    app.post_json(
        &format!("/api/rounds/{round}/reveal"),
        Some(token),
        &json!({"secret": s}),
    )
    .await
}

/// `campaign-lottery verify` as an outsider runs it on downloaded documents: the record, the
/// entries file, and `extra` under `flag`; its exit code and what it printed.
fn verify_documents(record: &str, entries: &str, flag: &str, extra: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"))
        .args([
            "verify",
            "--round",
            &write("record.json", record),
            "--entries",
            &write("entries.txt", entries),
            flag,
            &write("extra", extra),
        ])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Whether a published proof leads from a leaf's data to `root` (hex), as an outsider checks it.
fn proof_holds(proof: &Value, leaf: &[u8], root: &Value) -> bool {
    let hash = |h: &Value| -> [u8; 32] {
        hex::decode(h.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    let path: Vec<[u8; 32]> = proof["path"].as_array().unwrap().iter().map(hash).collect();
    verify_path(
        &leaf_hash(leaf),
        proof["leaf_index"].as_u64().unwrap(),
        proof["tree_size"].as_u64().unwrap(),
        &path,
        &hash(root),
    )
}

/// Commit, close the window, freeze, reveal, draw: the whole of one round.
async fn run_round(app: &TestApp, s: &Staff, round: u32) {
    assert_eq!(
        commit(app, &s.notary, "衡阳公证处", round).await.status(),
        200
    );
    assert_eq!(
        commit(app, &s.lawyer, "律师见证人", round).await.status(),
        200
    );
    app.clock
        .set(demo_now() + Duration::days(7 * i64::from(round)) + Duration::minutes(1));
    let res = app
        .post_json(
            &format!("/api/rounds/{round}/freeze"),
            Some(&s.operator),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(
        reveal(app, &s.notary, "衡阳公证处", round).await.status(),
        200
    );
    assert_eq!(
        reveal(app, &s.lawyer, "律师见证人", round).await.status(),
        200
    );
    let res = app
        .post_json(
            &format!("/api/rounds/{round}/draw"),
            Some(&s.operator),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

async fn a_round_goes_from_commitments_to_a_verifiable_draw(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let s = staff(&app).await;
    tickets(&app, 1, 0..40).await;
    let before = json_of(app.get("/api/rounds/1", None).await).await;
    assert_eq!(before["state"], "open");
    assert_eq!(
        before["prizes"],
        json!([{"tier": "grand", "count": 30}, {"tier": "standard", "count": 235}])
    );
    assert_eq!(
        error_code(app.get("/api/rounds/1/entries", None).await).await,
        (409, "round_not_frozen".into()),
        "entries are published at the freeze"
    );
    run_round(&app, &s, 1).await;

    let record = json_of(app.get("/api/rounds/1", None).await).await;
    assert_eq!(record["state"], "drawn");
    assert_eq!(record["algorithm"], "campaign-draw/v1");
    assert_eq!(record["entry_count"], 40);
    assert_eq!(record["witnesses"].as_array().unwrap().len(), 2);
    let winners = record["winners"].as_array().unwrap();
    assert_eq!(
        winners.len(),
        40,
        "fewer tickets than prizes: everyone wins"
    );
    assert_eq!(winners.iter().filter(|w| w["tier"] == "grand").count(), 30);
    assert!(
        winners
            .iter()
            .all(|w| w["phone"].as_str().unwrap().contains("****")),
        "masked phones"
    );
    let entries = text_of(&app, "/api/rounds/1/entries").await;
    assert_eq!(entries.lines().count(), 40);

    // The verifier, from the two published documents alone.
    let parsed: RoundRecord = serde_json::from_value(record.clone()).unwrap();
    let checks = verify(&parsed, &entries);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");

    // An inclusion proof for one ticket.
    let ticket = entries.lines().nth(17).unwrap();
    let proof = json_of(
        app.get(&format!("/api/rounds/1/proof/{ticket}"), None)
            .await,
    )
    .await;
    assert_eq!(proof["leaf_index"], 17);
    assert_eq!(proof["tree_size"], 40);
    assert_eq!(proof["root"], record["entries_root"]);
    let leaf = uuid::Uuid::parse_str(ticket).unwrap().as_bytes().to_vec();
    assert!(proof_holds(&proof, &leaf, &proof["root"]));
    let stranger = uuid::Uuid::new_v4();
    assert_eq!(
        error_code(
            app.get(&format!("/api/rounds/1/proof/{stranger}"), None)
                .await
        )
        .await
        .0,
        404
    );

    // Vouchers: three for each grand prize, one for each standard prize, every code well-formed.
    let codes: Vec<String> = {
        let n = app.db.scalar("SELECT COUNT(*) FROM vouchers").await;
        assert_eq!(n, 30 * 3 + 10);
        let mut codes = Vec::new();
        for rank in 1..=40 {
            let code = app
                .db
                .text(&format!("SELECT code FROM vouchers WHERE round = 1 AND rank = {rank} AND kind = 'tourism_card'"))
                .await;
            codes.push(code);
        }
        codes
    };
    for code in &codes {
        assert_eq!(VoucherCode::parse(code).unwrap().as_str(), code.as_str());
    }
    // Everything on the audit record.
    let auditor = app.token(Role::Auditor, "审计").await;
    let log = json_of(app.get("/api/audit?limit=1000", Some(&auditor)).await).await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["round.commit", "round.freeze", "round.reveal", "round.draw"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert_eq!(
        json_of(app.get("/api/audit/verify", Some(&auditor)).await).await["ok"],
        true
    );
}

async fn the_lifecycle_refuses_steps_out_of_order(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let s = staff(&app).await;
    tickets(&app, 1, 0..5).await;
    let freeze = |token: String| {
        let app = &app;
        async move {
            app.post_json("/api/rounds/1/freeze", Some(&token), &json!({}))
                .await
        }
    };
    // Roles.
    assert_eq!(
        error_code(commit(&app, &s.operator, "值班运营", 1).await).await,
        (403, "forbidden".into())
    );
    assert_eq!(
        error_code(freeze(s.notary.clone()).await).await,
        (403, "forbidden".into())
    );
    assert_eq!(
        error_code(app.post_json("/api/rounds/1/draw", None, &json!({})).await)
            .await
            .0,
        401
    );
    // Bad input.
    let res = app
        .post_json(
            "/api/rounds/1/commitments",
            Some(&s.notary),
            &json!({"commitment": "xyz"}),
        )
        .await;
    assert_eq!(error_code(res).await, (422, "invalid_commitment".into()));
    assert_eq!(
        error_code(commit(&app, &s.notary, "衡阳公证处", 13).await).await,
        (404, "round_not_found".into())
    );
    // A round that is not frozen is not drawn, beacon or not.
    let res = app
        .post_json(
            "/api/rounds/1/draw",
            Some(&s.operator),
            &json!({"beacon": "12345"}),
        )
        .await;
    assert_eq!(error_code(res).await, (409, "round_not_frozen".into()));
    // Too early, too few witnesses.
    assert_eq!(commit(&app, &s.notary, "衡阳公证处", 1).await.status(), 200);
    assert_eq!(
        error_code(commit(&app, &s.notary, "衡阳公证处", 1).await).await,
        (409, "already_committed".into())
    );
    assert_eq!(
        error_code(freeze(s.operator.clone()).await).await,
        (409, "round_not_closed".into())
    );
    app.clock.advance(Duration::days(7));
    let res = freeze(s.operator.clone()).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_enough_commitments");
    assert_eq!(body["error"]["details"], json!({"needed": 2, "has": 1}));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("需要 2 位见证人"),
        "{body}"
    );
    assert_eq!(
        error_code(reveal(&app, &s.notary, "衡阳公证处", 1).await).await,
        (409, "round_not_frozen".into()),
        "no reveal before the freeze"
    );
    assert_eq!(commit(&app, &s.lawyer, "律师见证人", 1).await.status(), 200);
    // Round 2 before round 1.
    app.clock.advance(Duration::days(7));
    assert_eq!(commit(&app, &s.notary, "衡阳公证处", 2).await.status(), 200);
    assert_eq!(commit(&app, &s.lawyer, "律师见证人", 2).await.status(), 200);
    let res = app
        .post_json("/api/rounds/2/freeze", Some(&s.operator), &json!({}))
        .await;
    assert_eq!(
        error_code(res).await,
        (409, "previous_round_not_drawn".into())
    );
    // Text that would corrupt the record or mislead its readers is refused.
    for source in ["彩票\u{0}开奖", "a\nb", "福彩\u{202e}3D", "\u{200b}"] {
        let res = app
            .post_json(
                "/api/rounds/1/freeze",
                Some(&s.operator),
                &json!({"beacon_source": source}),
            )
            .await;
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_field", "{source:?}");
        assert_eq!(body["error"]["details"]["field"], "beacon_source");
    }
    // Freeze once; no commitments after it.
    assert_eq!(freeze(s.operator.clone()).await.status(), 200);
    assert_eq!(
        error_code(freeze(s.operator.clone()).await).await,
        (409, "already_frozen".into())
    );
    let late = app.token(Role::Witness, "迟到的见证人").await;
    assert_eq!(
        error_code(commit(&app, &late, "迟到的见证人", 1).await).await,
        (409, "already_frozen".into())
    );
    assert_eq!(
        error_code(reveal(&app, &late, "迟到的见证人", 1).await).await,
        (409, "not_committed".into())
    );
    // A wrong secret is refused and logged; the draw waits for every secret.
    let wrong = hex::encode([7u8; 32]);
    let res = app
        .post_json(
            "/api/rounds/1/reveal",
            Some(&s.notary),
            &json!({"secret": wrong}),
        )
        .await;
    assert_eq!(error_code(res).await, (422, "wrong_secret".into()));
    assert_eq!(
        app.db
            .scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'round.reveal_refused'")
            .await,
        1
    );
    assert_eq!(reveal(&app, &s.notary, "衡阳公证处", 1).await.status(), 200);
    assert_eq!(
        error_code(reveal(&app, &s.notary, "衡阳公证处", 1).await).await,
        (409, "already_revealed".into())
    );
    let res = app
        .post_json("/api/rounds/1/draw", Some(&s.operator), &json!({}))
        .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "reveals_missing");
    assert_eq!(body["error"]["details"]["witnesses"], json!(["律师见证人"]));
    assert_eq!(reveal(&app, &s.lawyer, "律师见证人", 1).await.status(), 200);
    // No beacon was declared: none may be given now.
    let res = app
        .post_json(
            "/api/rounds/1/draw",
            Some(&s.operator),
            &json!({"beacon": "12345"}),
        )
        .await;
    assert_eq!(error_code(res).await, (422, "unexpected_beacon".into()));
    let res = app
        .post_json(
            "/api/rounds/1/draw",
            Some(&s.operator),
            &json!({"beacon": "12\u{0}345"}),
        )
        .await;
    assert_eq!(error_code(res).await, (422, "invalid_field".into()));
    assert_eq!(
        app.post_json("/api/rounds/1/draw", Some(&s.operator), &json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        error_code(
            app.post_json("/api/rounds/1/draw", Some(&s.operator), &json!({}))
                .await
        )
        .await,
        (409, "already_drawn".into())
    );
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM round_winners").await, 5);
}

async fn concurrent_draws_draw_once(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let s = staff(&app).await;
    tickets(&app, 1, 0..300).await;
    assert_eq!(commit(&app, &s.notary, "衡阳公证处", 1).await.status(), 200);
    assert_eq!(commit(&app, &s.lawyer, "律师见证人", 1).await.status(), 200);
    app.clock.advance(Duration::days(7));
    let beacon_source = json!({"beacon_source": "福彩3D 2026-12-03 开奖号码"});
    let mut freezes = Vec::new();
    for _ in 0..6 {
        let (client, url, token, body) = (
            app.client.clone(),
            app.url("/api/rounds/1/freeze"),
            s.operator.clone(),
            beacon_source.clone(),
        );
        freezes.push(tokio::spawn(async move {
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
    for f in freezes {
        codes.push(f.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|&&c| c == 200).count(), 1, "{codes:?}");
    assert_eq!(reveal(&app, &s.notary, "衡阳公证处", 1).await.status(), 200);
    assert_eq!(reveal(&app, &s.lawyer, "律师见证人", 1).await.status(), 200);
    let res = app
        .post_json("/api/rounds/1/draw", Some(&s.operator), &json!({}))
        .await;
    assert_eq!(error_code(res).await, (422, "beacon_required".into()));
    let mut draws = Vec::new();
    for _ in 0..8 {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/rounds/1/draw"),
            s.operator.clone(),
        );
        draws.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"beacon": "738"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for d in draws {
        codes.push(d.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|&&c| c == 200).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|&c| c == 200 || c == 409), "{codes:?}");
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM round_winners").await,
        265
    );
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM vouchers").await,
        30 * 3 + 235
    );
    let record: RoundRecord =
        serde_json::from_value(json_of(app.get("/api/rounds/1", None).await).await).unwrap();
    assert_eq!(record.beacon.as_deref(), Some("738"));
    assert_eq!(
        record.beacon_source.as_deref(),
        Some("福彩3D 2026-12-03 开奖号码")
    );
    let entries = text_of(&app, "/api/rounds/1/entries").await;
    assert!(verify(&record, &entries).iter().all(|c| c.ok));
}

/// 10 participants in round 1, drawn (all win), then the same 10 and 5 more in round 2, open.
async fn earlier_winners_in_round_2(app: &TestApp, s: &Staff) {
    tickets(app, 1, 0..10).await;
    run_round(app, s, 1).await;
    app.clock
        .set(demo_now() + Duration::days(7) + Duration::hours(1));
    tickets(app, 2, 0..15).await;
}

async fn earlier_winners_are_not_entered_again(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let s = staff(&app).await;
    earlier_winners_in_round_2(&app, &s).await;
    run_round(&app, &s, 2).await;
    let record = json_of(app.get("/api/rounds/2", None).await).await;
    assert_eq!(
        record["entry_count"], 5,
        "round 1's winners are not entered in round 2"
    );
    // Round 1 awarded 10 of its 265 prizes: the rest roll over to round 2.
    assert_eq!(
        record["prizes"],
        json!([{"tier": "grand", "count": 50}, {"tier": "standard", "count": 470}])
    );
    let entries = text_of(&app, "/api/rounds/2/entries").await;
    let parsed: RoundRecord = serde_json::from_value(record).unwrap();
    assert!(verify(&parsed, &entries).iter().all(|c| c.ok));
    // Nobody won twice.
    assert_eq!(
        app.db
            .scalar("SELECT COUNT(DISTINCT participant_id) FROM round_winners")
            .await,
        app.db.scalar("SELECT COUNT(*) FROM round_winners").await
    );
}

/// The campaign's 30 reserves per round follow its 265 winners from the same shuffle: published
/// in the record, recorded with their holders, no vouchers; the verifier recomputes them.
async fn reserves_are_drawn_after_the_winners_and_verified(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let s = staff(&app).await;
    tickets(&app, 1, 0..300).await;
    run_round(&app, &s, 1).await;
    let record = json_of(app.get("/api/rounds/1", None).await).await;
    let winners = record["winners"].as_array().unwrap();
    let reserves = record["reserves"].as_array().unwrap();
    assert_eq!((winners.len(), reserves.len()), (265, 30));
    let ranks: Vec<u64> = reserves
        .iter()
        .map(|r| r["rank"].as_u64().unwrap())
        .collect();
    assert_eq!(ranks, (266..=295).collect::<Vec<u64>>());
    assert!(reserves
        .iter()
        .all(|r| winners.iter().all(|w| w["ticket"] != r["ticket"])));
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM round_reserves").await,
        30
    );
    assert_eq!(
        app.db
            .scalar("SELECT COUNT(DISTINCT rank) FROM vouchers WHERE rank > 265")
            .await,
        0,
        "reserves hold no vouchers"
    );
    let entries = text_of(&app, "/api/rounds/1/entries").await;
    let parsed: RoundRecord = serde_json::from_value(record).unwrap();
    let checks = verify(&parsed, &entries);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    assert_eq!(checks.last().unwrap().name, "reserves");
}

/// Claims: vouchers usable only once claimed; a decline and the deadline forfeit the prize, which
/// goes to the next reserve (who is told on /me, with vouchers and a claim period), and to none
/// when none is left; all published in the reallocations document, which the verifier checks,
/// while the record stays byte for byte; two instances forfeiting at once forfeit once.
async fn prizes_are_claimed_declined_or_forfeited_and_pass_to_the_reserves_in_order(db: TestDb) {
    use campaign_lottery::domain::draw::record::{verify_reallocations, ReallocationsDocument};
    let app = TestApp::spawn(db).await;
    let s = staff(&app).await;
    tickets(&app, 1, 0..270).await;
    run_round(&app, &s, 1).await;
    let record_text = text_of(&app, "/api/rounds/1").await;
    let record: RoundRecord = serde_json::from_str(&record_text).unwrap();
    assert_eq!((record.winners.len(), record.reserves.len()), (265, 5));
    let state = app
        .store
        .round_draw_state("demo", 1)
        .await
        .unwrap()
        .unwrap();
    let phone_of = |rank: u32| -> String {
        state
            .winners
            .iter()
            .find(|w| w.rank == rank)
            .unwrap()
            .phone
            .clone()
    };
    let session = |phone: &str| format!("clp_{phone}");
    let (a, b) = (session(&phone_of(1)), session(&phone_of(2)));
    let app = &app;
    let me = |token: String| async move { json_of(app.get("/api/me", Some(&token)).await).await };
    let prize = me(a.clone()).await["prizes"][0].clone();
    assert_eq!(prize["state"], "to_claim");
    assert_eq!(prize["tier_label"], "一等奖");
    assert!(prize["claim_by"].as_str().unwrap().starts_with("2026-"));

    // Not usable before the claim.
    let desk = app.venue_token("shenlong-hotel").await;
    let hotel = app
        .store
        .all_vouchers("demo")
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.rank == 1 && v.kind == "hotel_night")
        .unwrap();
    let redeem = |key: &str| {
        app.client
            .post(app.url("/api/venue/redeem"))
            .bearer_auth(&desk)
            .header("Idempotency-Key", key.to_owned())
            .json(&json!({"code": hotel.code, "holder_code": common::holder_code(&hotel, app.clock.now())}))
            .send()
    };
    let (st, c) = error_code(redeem("k1").await.unwrap()).await;
    assert_eq!((st, c.as_str()), (409, "prize_not_claimed"));
    let claim = |token: &str, round: u32| {
        let path = format!("/api/me/prizes/{round}/claim");
        let token = token.to_owned();
        async move { app.post_json(&path, Some(&token), &json!({})).await }
    };
    let decline = |token: &str| {
        let token = token.to_owned();
        async move {
            app.post_json("/api/me/prizes/1/decline", Some(&token), &json!({}))
                .await
        }
    };
    let claimed = json_of(claim(&a, 1).await).await;
    assert_eq!(claimed["state"], "claimed");
    assert_eq!(
        json_of(claim(&a, 1).await).await["state"],
        "claimed",
        "again"
    );
    assert_eq!(redeem("k2").await.unwrap().status(), 200);

    // B declines: the prize goes to the first reserve, who is told on /me.
    let r = json_of(decline(&b).await).await;
    assert_eq!(
        (r["seq"].as_u64(), r["reserve_rank"].as_u64()),
        (Some(1), Some(266))
    );
    assert_eq!(r["reason"], "declined");
    let b_prize = me(b.clone()).await["prizes"][0].clone();
    assert_eq!(
        (
            b_prize["state"].as_str(),
            b_prize["forfeit_reason"].as_str()
        ),
        (Some("forfeited"), Some("declined"))
    );
    let reserve_phone = app
        .store
        .round_review("demo", 1)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.ticket == record.reserves[0].ticket)
        .unwrap()
        .phone;
    let reserve = me(session(&reserve_phone)).await;
    assert_eq!(reserve["prizes"][0]["state"], "to_claim");
    assert_eq!(reserve["prizes"][0]["promoted_from"], 2);
    assert_eq!(reserve["prizes"][0]["rank"], 266);
    assert_eq!(
        reserve["vouchers"].as_array().unwrap().len(),
        3,
        "rank 2 is a grand prize: three vouchers"
    );
    let auditor = app.token(Role::Auditor, "审计").await;
    let stats = json_of(app.get("/api/admin/stats", Some(&auditor)).await).await;
    let round_1 = &stats["claims"][0];
    assert_eq!(
        [
            &round_1["round"],
            &round_1["to_claim"],
            &round_1["claimed"],
            &round_1["forfeited"]
        ],
        [&json!(1), &json!(264), &json!(1), &json!(1)],
        "the reserve's prize is one to claim"
    );
    let b_vouchers = app.store.all_vouchers("demo").await.unwrap();
    assert!(b_vouchers.iter().filter(|v| v.rank == 2).all(|v| v.void));

    for (res, status, code) in [
        (decline(&b).await, 409, "claim_closed"),
        (decline(&a).await, 409, "claim_closed"),
        (claim(&b, 1).await, 409, "claim_closed"),
        (claim("clp_13800000999", 1).await, 401, "unknown_session"),
        (claim(&a, 99).await, 404, "round_not_found"),
    ] {
        let (st, c) = error_code(res).await;
        assert_eq!(st, status, "{c}");
        if status != 401 {
            assert_eq!(c, code);
        }
    }
    let stranger = "13999999999";
    common::prove_phone(&app.store, stranger, &session(stranger), app.clock.now()).await;
    let (st, c) = error_code(claim(&session(stranger), 1).await).await;
    assert_eq!((st, c.as_str()), (404, "no_prize"));

    // Past the deadline, two instances forfeit at once: every unclaimed prize once, the four
    // reserves left in order, the rest unawarded.
    app.clock.advance(Duration::days(15));
    let f = campaign_lottery::store::Forfeit::of(&app.campaign);
    let other = campaign_lottery::store::connect(
        &app.db.url,
        campaign_lottery::store::ConnectLimits::with_connections(4),
    )
    .await
    .unwrap();
    let now = app.clock.now();
    let (x, y) = tokio::join!(
        app.store.forfeit_overdue(&f, now),
        other.forfeit_overdue(&f, now)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(
        x.len() + y.len(),
        264,
        "263 unclaimed winners and the first reserve's prize"
    );
    let doc_text = text_of(app, "/api/rounds/1/reallocations").await;
    let doc: ReallocationsDocument = serde_json::from_str(&doc_text).unwrap();
    assert_eq!(doc.reallocations.len(), 265);
    let used: Vec<u32> = doc
        .reallocations
        .iter()
        .filter_map(|l| l.reserve_rank)
        .collect();
    assert_eq!(used, [266, 267, 268, 269, 270]);
    let checks = verify_reallocations(&record, &doc);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    assert!(checks[1].detail.contains("260 unawarded"), "{checks:?}");
    assert_eq!(
        text_of(app, "/api/rounds/1").await,
        record_text,
        "the record never changes"
    );
    assert_eq!(
        app.db
            .scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'prize.forfeit'")
            .await,
        265
    );

    // The command line on the downloaded documents; a reserve taken out of order fails.
    let entries = text_of(app, "/api/rounds/1/entries").await;
    let (code, out) = verify_documents(&record_text, &entries, "--reallocations", &doc_text);
    assert_eq!(code, Some(0), "{out}");
    let mut swapped = doc.clone();
    swapped.reallocations[0].reserve_rank = Some(267);
    let swapped = serde_json::to_string(&swapped).unwrap();
    let (code, out) = verify_documents(&record_text, &entries, "--reallocations", &swapped);
    assert_eq!(code, Some(1));
    assert!(out.contains("FAIL reallocations"), "{out}");
}

/// Winners are told once by SMS after the draw, reminded once before the deadline unless they
/// claimed, and told of each redemption and reversal, even with two instances queueing at once.
async fn holders_are_told_once_of_prizes_reminders_redemptions_and_reversals(db: TestDb) {
    use campaign_lottery::app::notices::send_due;
    let app = TestApp::spawn(db).await;
    let s = staff(&app).await;
    tickets(&app, 1, 0..5).await;
    run_round(&app, &s, 1).await;
    // A second instance on the same database.
    let loaded = common::settings(
        &app.db.url,
        &common::repo_config_dir(),
        "campaign-demo.toml",
    );
    let clock: std::sync::Arc<dyn Clock> = app.clock.clone();
    let prepared = campaign_lottery::startup::prepare(&loaded, clock.as_ref())
        .await
        .unwrap();
    let other = campaign_lottery::startup::application(prepared, &loaded, clock);
    let (a, b) = tokio::join!(send_due(&app.app), send_due(&other));
    assert!(a.unwrap() + b.unwrap() <= 5);
    let count = |template: &str| {
        let q = format!("SELECT COUNT(*) FROM sms_outbox WHERE template = '{template}'");
        let db = &app.db;
        async move { db.scalar(&q).await }
    };
    assert_eq!(count("prize_notice").await, 5, "one notice per winner");
    assert_eq!(send_due(&app.app).await.unwrap(), 0, "once");
    let notice = app
        .store
        .recent_sms(20)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.template == "prize_notice")
        .unwrap();
    assert!(
        notice.body.contains("第1期结果已公布") && notice.body.contains("前登录"),
        "{}",
        notice.body
    );
    assert!(!notice.body.contains("中奖"));
    assert_eq!(notice.params[0], ("round".to_owned(), "1".to_owned()));

    // One winner claims; two days before the deadline the others are reminded, once.
    let state = app
        .store
        .round_draw_state("demo", 1)
        .await
        .unwrap()
        .unwrap();
    let first = &state.winners[0];
    let token = format!("clp_{}", first.phone);
    let res = app
        .post_json("/api/me/prizes/1/claim", Some(&token), &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(send_due(&app.app).await.unwrap(), 0, "no reminder yet");
    app.clock.advance(Duration::days(14) - Duration::hours(47));
    let (a, b) = tokio::join!(send_due(&app.app), send_due(&other));
    assert!(a.unwrap() + b.unwrap() <= 4);
    assert_eq!(
        count("claim_reminder").await,
        4,
        "the four who have not claimed"
    );
    let auditor = app.token(Role::Auditor, "审计").await;
    let stats = json_of(app.get("/api/admin/stats", Some(&auditor)).await).await;
    assert_eq!(
        (
            stats["claims"][0]["notified"].as_u64(),
            stats["claims"][0]["reminded"].as_u64()
        ),
        (Some(5), Some(4)),
        "the console's SMS status of the round"
    );
    assert_eq!(send_due(&app.app).await.unwrap(), 0);

    // A redemption and its reversal, each told to the holder once.
    let desk = app.venue_token("huaguoshan-scenic").await;
    let card = app
        .store
        .all_vouchers("demo")
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.rank == first.rank && v.kind == "tourism_card")
        .unwrap();
    let res = app
        .client
        .post(app.url("/api/venue/redeem"))
        .bearer_auth(&desk)
        .header("Idempotency-Key", "n-1")
        .json(
            &json!({"code": card.code, "holder_code": common::holder_code(&card, app.clock.now())}),
        )
        .send()
        .await
        .unwrap();
    let redeemed = json_of(res).await;
    let id = redeemed["redemption"]["id"].as_str().unwrap().to_owned();
    let (a, b) = tokio::join!(send_due(&app.app), send_due(&other));
    assert!(a.unwrap() + b.unwrap() <= 1);
    assert_eq!(count("redeemed").await, 1);
    let told = app.store.recent_sms(1).await.unwrap().remove(0);
    assert_eq!(told.phone, card.holder_phone);
    assert!(
        told.body.contains("城市旅游卡") && told.body.contains("衡山花果山景区"),
        "{}",
        told.body
    );
    let res = app
        .post_json(
            &format!("/api/venue/redemptions/{id}/reverse"),
            Some(&desk),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    send_due(&app.app).await.unwrap();
    assert_eq!(count("reversed").await, 1);
    assert_eq!(send_due(&app.app).await.unwrap(), 0);

    // The outbox itself holds one message per event.
    let again = campaign_lottery::store::NewSms {
        event_key: Some(format!("prize:demo:1:{}", first.rank)),
        ..common::code_sms(&first.phone, "again")
    };
    app.store
        .enqueue_sms(&again, app.clock.now())
        .await
        .unwrap();
    let key = format!(
        "SELECT COUNT(*) FROM sms_outbox WHERE event_key = 'prize:demo:1:{}'",
        first.rank
    );
    assert_eq!(app.db.scalar(&key).await, 1, "the duplicate was not queued");
}

/// Once the last round is drawn, /api/campaign reports what could not be given: the last round's
/// prizes beyond its entries and forfeits with no reserve left.
async fn after_the_last_round_what_could_not_be_given_is_reported(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let demo =
        std::fs::read_to_string(common::repo_config_dir().join("campaign-demo.toml")).unwrap();
    let text =
        common::one_round_campaign(&demo, "demo", 10).replace("reserves = 30", "reserves = 1");
    std::fs::write(dir.path().join("one.toml"), text).unwrap();
    let loaded = common::settings(&db.url, dir.path(), "one.toml");
    let app = TestApp::spawn_with(db, &loaded, demo_now()).await;
    let s = staff(&app).await;
    let unawarded =
        || async { json_of(app.get("/api/campaign", None).await).await["unawarded"].clone() };
    tickets(&app, 1, 0..8).await;
    assert_eq!(
        unawarded().await,
        Value::Null,
        "not before the last round is drawn"
    );
    run_round(&app, &s, 1).await;
    // 8 entries for 10 prizes (3 grand, 7 standard): two standard prizes left, no reserve drawn.
    assert_eq!(
        unawarded().await,
        json!({"rollover_left": {"standard": 2}, "forfeited": {}, "total": 2})
    );
    let state = app
        .store
        .round_draw_state("demo", 1)
        .await
        .unwrap()
        .unwrap();
    let grand = state.winners.iter().find(|w| w.tier == "grand").unwrap();
    let res = app
        .post_json(
            "/api/me/prizes/1/decline",
            Some(&format!("clp_{}", grand.phone)),
            &json!({}),
        )
        .await;
    assert_eq!(
        json_of(res).await["reserve_rank"],
        Value::Null,
        "no reserve: fewer entries than prizes"
    );
    assert_eq!(
        unawarded().await,
        json!({"rollover_left": {"standard": 2}, "forfeited": {"grand": 1}, "total": 3})
    );
}

/// Operators exclude tickets before the freeze only, with a reason, each audited; the freeze
/// publishes every ticket as an entry or an exclusion (earlier winners as `won_earlier`), the
/// holder sees why on /me, a proof answers for an excluded ticket, and the verifier checks it all.
async fn exclusions_are_made_before_the_freeze_audited_and_published(db: TestDb) {
    use campaign_lottery::domain::exclusion::Reason;
    let app = TestApp::spawn(db).await;
    let s = staff(&app).await;
    earlier_winners_in_round_2(&app, &s).await;
    let before = app.store.round_sorted_out("demo", 2, 1).await.unwrap();
    assert_eq!((before.entries.len(), before.exclusions.len()), (5, 10));
    assert!(before
        .exclusions
        .iter()
        .all(|(_, r)| *r == Reason::WonEarlier));
    let (a, b) = (before.entries[0], before.entries[1]);
    let exclude = |body: Value, token: &str| {
        let token = token.to_owned();
        let app = &app;
        async move {
            app.post_json("/api/rounds/2/exclusions", Some(&token), &body)
                .await
        }
    };
    let audited = || {
        app.db
            .scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'ticket.%'")
    };

    // Bad input changes nothing.
    let unknown = uuid::Uuid::new_v4();
    for (body, status, code) in [
        (
            json!({"tickets": [a], "reason": "won_earlier", "note": "x"}),
            422,
            "invalid_field",
        ),
        (
            json!({"tickets": [a], "reason": "bot", "note": "x"}),
            422,
            "invalid_field",
        ),
        (
            json!({"tickets": [], "reason": "too_fast", "note": "x"}),
            422,
            "invalid_field",
        ),
        (
            json!({"tickets": [a], "reason": "too_fast"}),
            422,
            "invalid_field",
        ),
        (
            json!({"tickets": [a, unknown], "reason": "too_fast", "note": "x"}),
            404,
            "not_a_ticket",
        ),
        (
            json!({"tickets": ["nope"], "reason": "too_fast", "note": "x"}),
            422,
            "invalid_field",
        ),
    ] {
        let (st, c) = error_code(exclude(body.clone(), &s.operator).await).await;
        assert_eq!((st, c.as_str()), (status, code), "{body}");
    }
    let (st, _) = error_code(
        exclude(
            json!({"tickets": [a], "reason": "too_fast", "note": "x"}),
            &s.notary,
        )
        .await,
    )
    .await;
    assert_eq!(st, 403, "a witness does not exclude");
    assert_eq!(audited().await, 0);
    assert_eq!(
        app.store.round_sorted_out("demo", 2, 1).await.unwrap(),
        before
    );

    let res = exclude(
        json!({"tickets": [a, b], "reason": "too_fast", "note": "45 秒答完 10 题"}),
        &s.operator,
    )
    .await;
    assert_eq!(json_of(res).await["tickets"], json!([a, b]));
    let again = exclude(
        json!({"tickets": [a], "reason": "staff", "note": "员工"}),
        &s.operator,
    )
    .await;
    assert_eq!(
        json_of(again).await["tickets"],
        json!([]),
        "the first reason stays"
    );
    let res = app
        .post_json(
            "/api/rounds/2/exclusions/restore",
            Some(&s.operator),
            &json!({"tickets": [b, a]}),
        )
        .await;
    assert_eq!(json_of(res).await["tickets"], json!([b, a]));
    let res = exclude(
        json!({"tickets": [a], "reason": "too_fast", "note": "复核"}),
        &s.operator,
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = exclude(
        json!({"tickets": [b], "reason": "shared_device", "note": "同一设备 6 个号码"}),
        &s.operator,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        audited().await,
        6,
        "four exclusions and two restorations, each audited"
    );

    // The holder sees it.
    let holder = app
        .store
        .round_review("demo", 2)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.ticket == a)
        .unwrap()
        .phone;
    let me = json_of(app.get("/api/me", Some(&format!("clp_{holder}"))).await).await;
    let mine = me["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["round"] == 2)
        .unwrap()
        .clone();
    assert_eq!(mine["excluded"], "too_fast");
    assert_eq!(mine["excluded_reason"], "答题速度明显快于正常阅读");

    run_round(&app, &s, 2).await;
    let (st, c) = error_code(
        exclude(
            json!({"tickets": [before.entries[2]], "reason": "staff", "note": "晚了"}),
            &s.operator,
        )
        .await,
    )
    .await;
    assert_eq!((st, c.as_str()), (409, "already_drawn"));
    let (st, c) = error_code(
        app.post_json(
            "/api/rounds/2/exclusions/restore",
            Some(&s.operator),
            &json!({"tickets": [a]}),
        )
        .await,
    )
    .await;
    assert_eq!((st, c.as_str()), (409, "already_drawn"));

    let record = json_of(app.get("/api/rounds/2", None).await).await;
    assert_eq!(record["entry_count"], 3);
    assert_eq!(record["exclusion_count"], 12);
    assert_eq!(record["tickets_issued"], 15);
    assert_eq!(
        record["exclusions_by_reason"],
        json!({"shared_device": 1, "too_fast": 1, "won_earlier": 10})
    );
    let entries = text_of(&app, "/api/rounds/2/entries").await;
    let exclusions = text_of(&app, "/api/rounds/2/exclusions").await;
    assert_eq!(exclusions.lines().count(), 12);
    assert!(exclusions.contains(&format!("{a} too_fast\n")));
    let parsed: RoundRecord = serde_json::from_value(record.clone()).unwrap();
    assert!(verify(&parsed, &entries).iter().all(|c| c.ok));
    let checks =
        campaign_lottery::domain::draw::record::verify_exclusions(&parsed, &entries, &exclusions);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    // The command line, as an outsider runs it on the downloaded files; one line dropped fails.
    let record_text = record.to_string();
    let (code, stdout) = verify_documents(&record_text, &entries, "--exclusions", &exclusions);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("ok   exclusions_root") && stdout.contains("every ticket issued"),
        "{stdout}"
    );
    let dropped: String = exclusions
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    let (code, stdout) = verify_documents(&record_text, &entries, "--exclusions", &dropped);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAIL exclusion_count"), "{stdout}");
    // The seed and the selection are those of the entries alone (campaign-draw/v1).
    assert!(record["winners"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["ticket"] != json!(a) && w["ticket"] != json!(b)));

    // A proof for an excluded ticket, in the exclusions tree.
    let p = json_of(app.get(&format!("/api/rounds/2/proof/{a}"), None).await).await;
    assert_eq!(
        (p["list"].as_str(), p["reason"].as_str()),
        (Some("exclusions"), Some("too_fast"))
    );
    let mut leaf = a.as_bytes().to_vec();
    leaf.extend_from_slice(b"too_fast");
    assert_eq!(p["tree_size"], 12);
    assert!(proof_holds(&p, &leaf, &record["exclusions_root"]));
    let p = json_of(
        app.get(&format!("/api/rounds/2/proof/{}", before.entries[2]), None)
            .await,
    )
    .await;
    assert_eq!(p["list"], "entries");
}

/// The operators' review: tickets with signals (a virtual range, one browser and one network
/// behind many phones, a quiz answered too fast), strongest first, phones masked; ordinary
/// tickets are not listed. The quiz records where an attempt came from: the network, never the
/// address, and the device cookie it sets.
async fn the_review_lists_the_tickets_with_risk_signals(db: TestDb) {
    use common::{tickets_from, Attempted};
    let app = TestApp::spawn(db).await;
    let s = staff(&app).await;
    let auditor = app.token(Role::Auditor, "审计").await;
    let now = app.clock.now();
    let farm: Vec<String> = (0..6).map(|i| format!("1390000{i:04}")).collect();
    let script = Attempted {
        network: Some("203.0.113.0/24"),
        device: Some("farm-device"),
        questions: 10,
        seconds: 12,
    };
    tickets_from(&app.store, "demo", 1, now, &farm, &script).await;
    let person = Attempted {
        network: Some("198.51.100.0/24"),
        device: Some("own-phone"),
        questions: 10,
        seconds: 240,
    };
    tickets_from(&app.store, "demo", 1, now, &["13700000001".into()], &person).await;
    tickets_from(
        &app.store,
        "demo",
        1,
        now,
        &["17012345678".into()],
        &Attempted {
            device: Some("iot"),
            ..person
        },
    )
    .await;

    let review = json_of(app.get("/api/rounds/1/review", Some(&auditor)).await).await;
    assert_eq!(review["tickets_issued"], 8);
    let flagged = review["flagged"].as_array().unwrap();
    assert_eq!(flagged.len(), 7, "{review}");
    let first = &flagged[0];
    let codes: Vec<&str> = first["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["shared_device", "shared_address", "too_fast"]);
    assert_eq!(first["same_network"], 6);
    assert_eq!(first["same_device"], 6);
    assert_eq!(first["seconds_per_question"], 1.2);
    assert!(first["phone"].as_str().unwrap().contains("****"));
    let last = &flagged[6];
    assert_eq!(last["phone"], "170****5678");
    assert_eq!(last["signals"][0]["code"], "virtual_number");
    assert!(
        !review.to_string().contains("13700000001") && !review.to_string().contains("137****0001")
    );
    let (st, _) = error_code(app.get("/api/rounds/1/review", Some(&s.notary)).await).await;
    assert_eq!(st, 403);
    let (st, c) = error_code(app.get("/api/rounds/99/review", Some(&auditor)).await).await;
    assert_eq!((st, c.as_str()), (404, "round_not_found"));

    // A real attempt records the network and the device cookie it sets, once.
    let token = app.sign_up("13600000001").await;
    let start = || {
        app.client
            .post(app.url("/api/quiz/attempts"))
            .bearer_auth(&token)
    };
    let res = start().send().await.unwrap();
    assert_eq!(res.status(), 201);
    let device_cookie = |res: &reqwest::Response| {
        res.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("cl_device="))
            .map(|v| v.split(';').next().unwrap().to_owned())
    };
    let cookie = device_cookie(&res).expect("a device cookie");
    let res = start()
        .header("Cookie", format!("cl_device={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(device_cookie(&res), None, "kept, not replaced");
    let hash = campaign_lottery::domain::token::token_hash(&cookie);
    assert_eq!(
        app.db
            .scalar(&format!(
                "SELECT COUNT(*) FROM quiz_attempts WHERE network = '127.0.0.0/24' AND device = '{hash}'"
            ))
            .await,
        2
    );
}

// ---- The real campaign, its round 1 long closed --------------------------------------------

/// The real campaign on `db` with `n` tickets in round 1 (July 2024, closed by any real clock), and
/// an instant inside that round.
async fn real_campaign_with_tickets(
    db: &TestDb,
    n: u32,
) -> (
    campaign_lottery::store::SharedStore,
    chrono::DateTime<chrono::Utc>,
) {
    let loaded = common::settings(&db.url, &common::repo_config_dir(), "campaign.toml");
    let in_round_1 =
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 7, 16, 2, 0, 0).unwrap();
    let clock = campaign_lottery::clock::ManualClock::new(in_round_1);
    let store = campaign_lottery::startup::prepare(&loaded, &clock)
        .await
        .unwrap()
        .store;
    common::tickets_in(&store, "hengyang-2024", 1, in_round_1, 0..n).await;
    (store, in_round_1)
}

// ---- Two service processes on one PostgreSQL database ---------------------------------------

/// Freeze and draw sent to two processes at once: one freeze, one draw, one set of vouchers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_service_processes_on_one_postgresql_freeze_and_draw_once() {
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    // The real campaign: round 1 (July 2024) closed long ago, by the processes' real clocks.
    let (store, in_round_1) = real_campaign_with_tickets(&db, 400).await;
    let mut tokens = Vec::new();
    for (role, name) in [
        (Role::Operator, "值班运营"),
        (Role::Witness, "衡阳公证处"),
        (Role::Witness, "律师见证人"),
    ] {
        let (token, hash) = common::new_token();
        store
            .create_token(
                campaign_lottery::store::NewToken {
                    name: name.into(),
                    role,
                    venue_id: None,
                    token_hash: hash,
                },
                "cli",
                in_round_1,
            )
            .await
            .unwrap();
        tokens.push(token);
    }
    let (operator, notary, lawyer) = (tokens[0].clone(), tokens[1].clone(), tokens[2].clone());
    let a = common::serve_process(&db.url, "campaign.toml");
    let b = common::serve_process(&db.url, "campaign.toml");
    let client = reqwest::Client::new();
    let post = |base: &str, path: &str, token: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let commitment_of =
        |name: &str| hex::encode(commitment("hengyang-2024", 1, name, &secret(name, 1)));
    let res = post(
        &a.base,
        "/api/rounds/1/commitments",
        &notary,
        json!({"commitment": commitment_of("衡阳公证处")}),
    )
    .await;
    assert_eq!(res.unwrap().status(), 200);
    let res = post(
        &b.base,
        "/api/rounds/1/commitments",
        &lawyer,
        json!({"commitment": commitment_of("律师见证人")}),
    )
    .await;
    assert_eq!(res.unwrap().status(), 200);

    let race = |path: &'static str, body: Value| {
        let mut tasks = Vec::new();
        for i in 0..10 {
            let base = if i % 2 == 0 {
                a.base.clone()
            } else {
                b.base.clone()
            };
            let (client, token, body) = (client.clone(), operator.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                client
                    .post(format!("{base}{path}"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        tasks
    };
    let mut freezes = Vec::new();
    for t in race("/api/rounds/1/freeze", json!({})) {
        freezes.push(t.await.unwrap());
    }
    assert_eq!(
        freezes.iter().filter(|&&c| c == 200).count(),
        1,
        "{freezes:?}"
    );
    assert!(freezes.iter().all(|&c| c == 200 || c == 409), "{freezes:?}");
    let s_notary = hex::encode(secret("衡阳公证处", 1));
    let s_lawyer = hex::encode(secret("律师见证人", 1));
    assert_eq!(
        post(
            &b.base,
            "/api/rounds/1/reveal",
            &notary,
            json!({"secret": s_notary})
        )
        .await
        .unwrap()
        .status(),
        200
    );
    assert_eq!(
        post(
            &a.base,
            "/api/rounds/1/reveal",
            &lawyer,
            json!({"secret": s_lawyer})
        )
        .await
        .unwrap()
        .status(),
        200
    );
    let mut draws = Vec::new();
    for t in race("/api/rounds/1/draw", json!({})) {
        draws.push(t.await.unwrap());
    }
    assert_eq!(draws.iter().filter(|&&c| c == 200).count(), 1, "{draws:?}");
    assert!(draws.iter().all(|&c| c == 200 || c == 409), "{draws:?}");

    assert_eq!(db.scalar("SELECT COUNT(*) FROM round_winners").await, 265);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM vouchers").await,
        30 * 3 + 235
    );
    let from_a = client
        .get(format!("{}/api/rounds/1", a.base))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let from_b = client
        .get(format!("{}/api/rounds/1", b.base))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(from_a, from_b, "both instances publish the same record");
    let entries = client
        .get(format!("{}/api/rounds/1/entries", b.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let record: RoundRecord = serde_json::from_value(from_a).unwrap();
    assert!(verify(&record, &entries).iter().all(|c| c.ok));
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'round.draw'")
            .await,
        1
    );
    let verdict = campaign_lottery::store::verify_audit_log(store.as_ref())
        .await
        .unwrap();
    assert!(verdict.is_ok(), "{verdict:?}");
}

/// Operators who prefer a terminal freeze and draw with the CLI, under the same rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_freezes_and_draws_a_round() {
    let db = TestDb::new(common::Backend::Sqlite).await.unwrap();
    let (store, in_round_1) = real_campaign_with_tickets(&db, 20).await;
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"))
            .args(["--config-dir", common::repo_config_dir().to_str().unwrap()])
            .args(args)
            .env("APP_DATABASE__URL", &db.url)
            .env("APP_CAMPAIGN__FILE", "campaign.toml")
            .env_remove("APP_ENVIRONMENT")
            .output()
            .unwrap()
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let out = cli(&["round", "freeze", "1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not_enough_commitments"),
        "{}",
        text(&out.stderr)
    );
    for name in ["衡阳公证处", "律师见证人"] {
        let c = hex::encode(commitment("hengyang-2024", 1, name, &secret(name, 1)));
        store
            .commit_witness(
                "hengyang-2024",
                1,
                name,
                &c,
                &format!("witness:{name}"),
                in_round_1,
            )
            .await
            .unwrap();
    }
    let out = cli(&[
        "round",
        "freeze",
        "1",
        "--beacon-source",
        "福彩3D 2024-07-22",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("round 1: frozen; 20 entries"),
        "{}",
        text(&out.stdout)
    );
    for name in ["衡阳公证处", "律师见证人"] {
        let s = hex::encode(secret(name, 1));
        store
            .reveal_secret(
                "hengyang-2024",
                1,
                name,
                &s,
                &format!("witness:{name}"),
                in_round_1,
            )
            .await
            .unwrap();
    }
    let out = cli(&["round", "draw", "1"]);
    assert!(
        text(&out.stderr).contains("beacon_required")
            && text(&out.stderr).contains("福彩3D 2024-07-22"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(&["round", "draw", "1", "--beacon", "5 2 8"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("round 1: drawn; 20 entries")
            && text(&out.stdout).contains("20 winners")
    );
    let out = cli(&["round", "draw", "1", "--beacon", "5 2 8"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("第 1 期已经开奖（already_drawn）"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM round_winners").await, 20);
    let actor = db
        .text("SELECT actor FROM audit_log WHERE action = 'round.draw'")
        .await;
    assert!(actor.starts_with("cli:"), "{actor}");
}

/// A service killed in the middle of a draw leaves the round frozen and drawable; the draw made
/// afterwards gives the result the published documents imply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draw_killed_before_commit_leaves_the_round_drawable() {
    use sqlx::Connection;
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    let (store, in_round_1) = real_campaign_with_tickets(&db, 50).await;
    for name in ["衡阳公证处", "律师见证人"] {
        let c = hex::encode(commitment("hengyang-2024", 1, name, &secret(name, 1)));
        store
            .commit_witness("hengyang-2024", 1, name, &c, "witness", in_round_1)
            .await
            .unwrap();
    }
    let (operator, hash) = common::new_token();
    store
        .create_token(
            campaign_lottery::store::NewToken {
                name: "值班运营".into(),
                role: Role::Operator,
                venue_id: None,
                token_hash: hash,
            },
            "cli",
            in_round_1,
        )
        .await
        .unwrap();
    let after = in_round_1 + Duration::days(30);
    let c = store.recorded_campaign().await.unwrap().unwrap();
    store
        .freeze_round(common::freeze_request(&c, 1, ""), "cli", after)
        .await
        .unwrap();
    for name in ["衡阳公证处", "律师见证人"] {
        store
            .reveal_secret(
                "hengyang-2024",
                1,
                name,
                &hex::encode(secret(name, 1)),
                "witness",
                after,
            )
            .await
            .unwrap();
    }

    // Hold the vouchers table so that the draw stops inside its transaction, then kill the process.
    let mut blocker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE vouchers IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let mut doomed = common::serve_process(&db.url, "campaign.toml");
    let client = reqwest::Client::new();
    let url = format!("{}/api/rounds/1/draw", doomed.base);
    let request = tokio::spawn({
        let (client, operator) = (client.clone(), operator.clone());
        async move {
            client
                .post(url)
                .bearer_auth(operator)
                .json(&json!({}))
                .send()
                .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    assert!(
        request.await.unwrap().is_err(),
        "the killed process never answered"
    );
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();

    let survivor = common::serve_process(&db.url, "campaign.toml");
    let res = client
        .post(format!("{}/api/rounds/1/draw", survivor.base))
        .bearer_auth(&operator)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(db.scalar("SELECT COUNT(*) FROM round_winners").await, 50);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'round.draw'")
            .await,
        1
    );
    let record: RoundRecord = client
        .get(format!("{}/api/rounds/1", survivor.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = client
        .get(format!("{}/api/rounds/1/entries", survivor.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        verify(&record, &entries).iter().all(|c| c.ok),
        "the result is the one the frozen inputs imply"
    );
}

/// The program run with `args`: its exit code and what it printed (stdout, then stderr).
fn run_cli(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `campaign-lottery verify` on a record and an entries file: its exit code and output.
fn verify_cli(record: &str, entries: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let (r, e) = (
        dir.path().join("record.json"),
        dir.path().join("entries.txt"),
    );
    std::fs::write(&r, record).unwrap();
    std::fs::write(&e, entries).unwrap();
    run_cli(&[
        "verify",
        "--round",
        r.to_str().unwrap(),
        "--entries",
        e.to_str().unwrap(),
    ])
}

async fn a_drand_quicknet_beacon_is_checked_offline_at_the_draw_and_by_verify(db: TestDb) {
    // Published quicknet rounds are the known answers (https://api.drand.sh/52db…e971/public/N):
    // round 657 413 came out on 2023-09-15 at 11:00:03 UTC, so this campaign runs then.
    const SIGNATURE: &str = "b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050e7be41076862b98fad56e91a6b85b89cd97b";
    const RANDOMNESS: &str = "fc1873a13f3545aeade8401532ef5519920652eee6b0d2b19ca12643b87b3587";
    const ROUND_123: &str = "b75c69d0b72a5d906e854e808ba7e2accb1542ac355ae486d591aa9d43765482e26cd02df835d3546d23c4b13e0dfc92";
    let at = |t: &str| -> chrono::DateTime<chrono::Utc> { t.parse().unwrap() };
    let loaded = common::settings(&db.url, &common::repo_config_dir(), "campaign-demo.toml");
    let app = TestApp::spawn_with(db, &loaded, at("2023-09-01T04:00:00Z")).await;
    let s = staff(&app).await;
    tickets(&app, 1, 0..40).await;
    assert_eq!(commit(&app, &s.notary, "衡阳公证处", 1).await.status(), 200);
    assert_eq!(commit(&app, &s.lawyer, "律师见证人", 1).await.status(), 200);
    // Round 1 closed at midnight in Shanghai; the freeze a minute later.
    app.clock.set(at("2023-09-07T16:01:00Z"));
    let freeze = |source: String| {
        let (app, token) = (&app, s.operator.clone());
        async move {
            app.post_json(
                "/api/rounds/1/freeze",
                Some(&token),
                &json!({"beacon_source": source}),
            )
            .await
        }
    };
    // A round already published, and one published within the margin (60 minutes): refused,
    // with the first round that would do.
    let (status, body) = {
        let res = freeze("drand-quicknet:123".into()).await;
        (res.status().as_u16(), json_of(res).await)
    };
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("beacon_round_too_soon")),
        "{body}"
    );
    let earliest = body["error"]["details"]["earliest"].as_u64().unwrap();
    let soon = earliest - 1;
    assert_eq!(
        error_code(freeze(format!("drand-quicknet:{soon}")).await).await,
        (422, "beacon_round_too_soon".into())
    );
    let published = |n: u64| 1_692_803_367 + (n as i64 - 1) * 3;
    assert!(published(earliest) > at("2023-09-07T17:01:00Z").timestamp());
    assert!(published(soon) <= at("2023-09-07T17:01:00Z").timestamp());
    assert_eq!(
        json_of(app.get("/api/rounds/1", None).await).await["state"],
        "closed",
        "a refused freeze froze nothing"
    );
    let res = freeze("drand-quicknet:657413".into()).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(reveal(&app, &s.notary, "衡阳公证处", 1).await.status(), 200);
    assert_eq!(reveal(&app, &s.lawyer, "律师见证人", 1).await.status(), 200);

    // The draw takes round 657 413's signature, and only that.
    let draw = |body: Value| {
        let (app, token) = (&app, s.operator.clone());
        async move {
            app.post_json("/api/rounds/1/draw", Some(&token), &body)
                .await
        }
    };
    app.clock.set(at("2023-09-15T11:01:00Z"));
    for (body, code) in [
        (json!({}), "beacon_signature_required"),
        (json!({"beacon": RANDOMNESS}), "beacon_signature_required"),
        (
            json!({"beacon_signature": ROUND_123}),
            "beacon_signature_invalid",
        ),
        (
            json!({"beacon_signature": "abcd"}),
            "beacon_signature_invalid",
        ),
        (
            json!({"beacon_signature": SIGNATURE, "beacon": "00".repeat(32)}),
            "beacon_signature_invalid",
        ),
    ] {
        assert_eq!(
            error_code(draw(body.clone()).await).await,
            (422, code.into()),
            "{body}"
        );
    }
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM round_winners").await, 0);
    let res = draw(json!({"beacon_signature": SIGNATURE.to_uppercase()})).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    let text = text_of(&app, "/api/rounds/1").await;
    let record: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(record["beacon_source"], "drand-quicknet:657413");
    assert_eq!(record["beacon"], RANDOMNESS);
    assert_eq!(record["beacon_signature"], SIGNATURE);
    // The times (DESIGN §4d), UTC with microseconds: the freeze, each commitment and reveal, the
    // draw.
    assert_eq!(record["frozen_at"], "2023-09-07T16:01:00.000000Z");
    assert_eq!(record["drawn_at"], "2023-09-15T11:01:00.000000Z");
    assert_eq!(record["frozen_at_local"], "2023-09-08T00:01:00+08:00");
    for w in record["witnesses"].as_array().unwrap() {
        assert_eq!(w["committed_at"], "2023-09-01T04:00:00.000000Z", "{w}");
        assert_eq!(w["revealed_at"], "2023-09-07T16:01:00.000000Z", "{w}");
    }
    let entries = text_of(&app, "/api/rounds/1/entries").await;
    let parsed: RoundRecord = serde_json::from_value(record.clone()).unwrap();
    let checks = verify(&parsed, &entries);
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    // An outsider's verify, offline, names the check; a record whose source was changed after
    // the draw, or whose signature was, fails it.
    let (code, out) = verify_cli(&text, &entries);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("beacon") && out.contains("verified offline"),
        "{out}"
    );
    for (from, to) in [
        ("drand-quicknet:657413", "drand-quicknet:657414"),
        ("drand-quicknet:657413", "福彩3D 2023年第240期"),
        (&SIGNATURE[..20], "00000000000000000000"),
        // A reveal dated after round 657 413 was out.
        (
            "\"revealed_at\":\"2023-09-07T16:01:00.000000Z\"",
            "\"revealed_at\":\"2023-09-15T11:00:04.000000Z\"",
        ),
    ] {
        let tampered = text.replace(from, to);
        assert_ne!(tampered, text);
        let (code, out) = verify_cli(&tampered, &entries);
        assert_ne!(code, Some(0), "{out}");
        assert!(out.contains("beacon"), "{out}");
        assert!(out.contains("FAIL") || out.contains("failed"), "{out}");
    }
}

/// `campaign-lottery verify --chain SOURCE`: its exit code and output.
fn verify_chain_cli(source: &str) -> (Option<i32>, String) {
    run_cli(&["verify", "--chain", source])
}

async fn drawn_records_never_change_and_chain_with_their_rollover(db: TestDb) {
    use sha2::{Digest, Sha256};
    let app = TestApp::spawn(db).await;
    let s = staff(&app).await;
    // 40 tickets for 265 prizes: round 2 offers its own and round 1's 225 left over.
    tickets(&app, 1, 0..40).await;
    run_round(&app, &s, 1).await;
    let first = text_of(&app, "/api/rounds/1").await;
    // The key made at the first start signs round 1; then it is rotated, and the new one signs
    // round 2.
    let keys = json_of(app.get("/api/keys", None).await).await;
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    let old_key = keys[0]["public_key"].as_str().unwrap().to_owned();
    assert_eq!(keys[0]["retired_at"], Value::Null);
    let operator = campaign_lottery::app::auth::Operator::command_line("root");
    let (retired, _) = campaign_lottery::app::keys::rotate(&app.app, &operator)
        .await
        .unwrap();
    assert_eq!(retired.as_deref(), keys[0]["key_id"].as_str());
    tickets(&app, 2, 40..60).await;
    run_round(&app, &s, 2).await;
    let second = text_of(&app, "/api/rounds/2").await;
    let keys = json_of(app.get("/api/keys", None).await).await;
    assert_eq!(keys.as_array().unwrap().len(), 2, "{keys}");
    assert!(keys[0]["retired_at"].is_string() && keys[1]["retired_at"].is_null());
    let new_key = keys[1]["public_key"].as_str().unwrap().to_owned();
    for (round, text, key, id) in [
        (1, &first, &old_key, &keys[0]["key_id"]),
        (2, &second, &new_key, &keys[1]["key_id"]),
    ] {
        let sig = json_of(
            app.get(&format!("/api/rounds/{round}/record.sig"), None)
                .await,
        )
        .await;
        assert_eq!(&sig["key_id"], id);
        let public = campaign_lottery::domain::signing::parse_public_key(key).unwrap();
        assert!(campaign_lottery::domain::signing::verify(
            &public,
            text.as_bytes(),
            sig["signature"].as_str().unwrap()
        ));
    }
    assert_eq!(
        error_code(app.get("/api/rounds/3/record.sig", None).await).await,
        (409, "round_not_drawn".into())
    );
    // verify --public-key, from the service and from downloaded files.
    let signed = |record: &str, entries: &str, key: &str, signature: Option<&str>| {
        let mut args = vec![
            "verify",
            "--round",
            record,
            "--entries",
            entries,
            "--public-key",
            key,
        ];
        if let Some(sig) = signature {
            args.extend(["--signature", sig]);
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"))
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = signed(
        &app.url("/api/rounds/1"),
        &app.url("/api/rounds/1/entries"),
        &old_key,
        None,
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok   signature"), "{out}");
    let (code, out) = signed(
        &app.url("/api/rounds/1"),
        &app.url("/api/rounds/1/entries"),
        &new_key,
        None,
    );
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("FAIL signature") && out.contains("signed by"),
        "{out}"
    );
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = files.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let entries_file = file("entries.txt", &text_of(&app, "/api/rounds/1/entries").await);
    let sig_file = file(
        "record.sig",
        &text_of(&app, "/api/rounds/1/record.sig").await,
    );
    let (code, out) = signed(
        &file("ok.json", &first),
        &entries_file,
        &old_key,
        Some(&sig_file),
    );
    assert_eq!(code, Some(0), "{out}");
    // One byte more — a space that changes no field — is not what was signed.
    let (code, out) = signed(
        &file("spaced.json", &format!("{first} ")),
        &entries_file,
        &old_key,
        Some(&sig_file),
    );
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("FAIL signature"), "{out}");
    // Byte for byte the same later, whatever happens meanwhile (a week on, a prize claimed).
    app.clock.advance(Duration::days(9));
    common::claim_all(&app.store, &app.campaign, 2, app.clock.now()).await;
    assert_eq!(text_of(&app, "/api/rounds/1").await, first);
    assert_eq!(text_of(&app, "/api/rounds/2").await, second);
    let r1: Value = serde_json::from_str(&first).unwrap();
    let r2: Value = serde_json::from_str(&second).unwrap();
    assert_eq!(r1["previous_record_sha256"], "0".repeat(64));
    assert_eq!(
        r2["previous_record_sha256"],
        hex::encode(Sha256::digest(first.as_bytes()))
    );
    assert_eq!(
        r2["prizes"],
        json!([{"tier": "grand", "count": 30}, {"tier": "standard", "count": 460}])
    );
    // Round 3, not drawn: its record links to round 2 already.
    let r3 = json_of(app.get("/api/rounds/3", None).await).await;
    assert_eq!(
        r3["previous_record_sha256"],
        hex::encode(Sha256::digest(second.as_bytes()))
    );

    // The audit log's head after each freeze and draw, in the records; the current head in
    // public; `audit verify --anchors` finds them in the chain — until the log is rewritten.
    let (f1, d1) = (&r1["audit_head_at_freeze"], &r1["audit_head_at_draw"]);
    let d2 = &r2["audit_head_at_draw"];
    assert!(
        f1["seq"].as_i64().unwrap() < d1["seq"].as_i64().unwrap(),
        "{r1}"
    );
    assert!(
        d1["seq"].as_i64().unwrap() < d2["seq"].as_i64().unwrap(),
        "{r2}"
    );
    let head = json_of(app.get("/api/audit/head", None).await).await;
    assert!(
        head["seq"].as_i64().unwrap() >= d2["seq"].as_i64().unwrap(),
        "{head}"
    );
    let kept = tempfile::tempdir().unwrap();
    let keep = |name: &str, text: &str| {
        let p = kept.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let anchors = [
        keep("1.json", &first),
        keep("2.json", &second),
        keep("head.json", &head.to_string()),
    ];
    let audit = |anchors: &[String]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"))
            .args(["--config-dir", common::repo_config_dir().to_str().unwrap()])
            .args(["audit", "verify", "--anchors"])
            .args(anchors)
            .env("APP_DATABASE__URL", &app.db.url)
            .env_remove("APP_ENVIRONMENT")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = audit(&anchors);
    assert_eq!(code, Some(0), "{out}");
    for line in ["round 1 at the freeze", "round 2 at the draw", "head.json"] {
        assert!(out.contains(line), "{line}: {out}");
    }
    // A record whose published head was moved is no entry of the chain.
    let moved = first.replacen(
        d1["hash"].as_str().unwrap(),
        f1["hash"].as_str().unwrap(),
        1,
    );
    let (code, out) = audit(&[keep("moved.json", &moved)]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("FAIL round 1 at the draw"), "{out}");

    let (code, out) = verify_chain_cli(&app.url(""));
    assert_eq!(code, Some(0), "{out}");
    for line in [
        "round 1: winners",
        "round 2: winners",
        "link of round 2",
        "rollover into round 2",
        "round 2 left unawarded: grand 10, standard 460",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    // … and against a folder of the records as downloaded.
    let dir = tempfile::tempdir().unwrap();
    let folder = |one: &str, two: &str| {
        std::fs::write(dir.path().join("round-1.json"), one).unwrap();
        std::fs::write(dir.path().join("round-2.json"), two).unwrap();
        verify_chain_cli(dir.path().to_str().unwrap())
    };
    assert_eq!(folder(&first, &second).0, Some(0));
    // A record edited after publication breaks the next one's link.
    let masked = r1["winners"][0]["phone"].as_str().unwrap();
    let edited = first.replacen(masked, "139****0000", 1);
    let (code, out) = folder(&edited, &second);
    assert_ne!(code, Some(0));
    assert!(out.contains("FAIL link of round 2"), "{out}");
    // Round 2's prizes cut and its draw redone consistently: on its own it verifies, in the
    // chain its rollover does not.
    let entries = text_of(&app, "/api/rounds/2/entries").await;
    let mut cut: RoundRecord = serde_json::from_str(&second).unwrap();
    cut.prizes[1].count = 235;
    let tickets = campaign_lottery::domain::draw::record::parse_entries_file(&entries).unwrap();
    let secrets: Vec<(String, Vec<u8>)> = cut
        .witnesses
        .iter()
        .map(|w| {
            (
                w.name.clone(),
                hex::decode(w.secret.as_ref().unwrap()).unwrap(),
            )
        })
        .collect();
    let prizes: Vec<(String, u32)> = cut
        .prizes
        .iter()
        .map(|p| (p.tier.clone(), p.count))
        .collect();
    let redrawn = campaign_lottery::domain::draw::draw_with_reserves(
        "demo",
        2,
        &tickets,
        &secrets,
        cut.beacon.as_deref().unwrap_or_default(),
        &prizes,
        cut.reserves.len() as u32,
    );
    for (w, x) in cut.winners.iter_mut().zip(&redrawn.winners) {
        w.ticket = x.ticket;
        w.tier = x.tier.clone();
    }
    cut.reserves = redrawn
        .reserves
        .iter()
        .map(|r| campaign_lottery::domain::draw::record::ReserveRecord {
            rank: r.rank,
            ticket: r.ticket,
        })
        .collect();
    assert!(
        verify(&cut, &entries).iter().all(|c| c.ok),
        "consistent on its own"
    );
    let (code, out) = folder(&first, &serde_json::to_string(&cut).unwrap());
    assert_ne!(code, Some(0));
    assert!(out.contains("FAIL rollover into round 2"), "{out}");

    // The log cut back to before round 2's draw, consistently (head moved with it): on its own
    // it verifies, but round 2's published head is no longer in it.
    let cut_at = d1["seq"].as_i64().unwrap();
    app.db
        .execute(&format!("DELETE FROM audit_log WHERE seq > {cut_at}"))
        .await;
    app.db
        .execute(&format!(
            "UPDATE audit_head SET seq = {cut_at}, hash = '{}' WHERE id = 1",
            d1["hash"].as_str().unwrap()
        ))
        .await;
    let (code, out) = audit(&anchors);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("audit log intact"),
        "the cut log alone verifies: {out}"
    );
    assert!(
        out.contains("FAIL round 2 at the draw") && out.contains("ok   round 1 at the draw"),
        "{out}"
    );
}
