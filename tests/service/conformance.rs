//! The storage contract: every backend must pass every test here, through the `Store` trait alone
//! (raw SQL only to play the part of someone tampering with the database).

use crate::common;

use campaign_lottery::domain::audit::{AuditEvent, ChainBreak};
use campaign_lottery::domain::campaign::{Campaign, CampaignFile, RoundProgress};
use campaign_lottery::domain::refusal::Refusal;
use campaign_lottery::domain::token::{token_hash, Role};
use campaign_lottery::store::{
    self, verify_audit_log, LoginCode, LoginLimits, LoginOutcome, NewAttempt, NewSession, NewToken,
    Newcomer, SharedStore, StoreError, Submission, SubmitOutcome, SyncOutcome, TicketOutcome,
};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use common::{code_sms, TestDb};

backend_tests!(
    two_instances_starting_together_record_the_campaign_once,
    submitted_attempts_are_tallied_once_even_by_two_tallies_at_once,
    sync_records_the_campaign_once_and_reports_changes,
    sync_refuses_what_contradicts_settled_rounds,
    venues_removed_from_the_config_stay_but_are_inactive,
    tokens_are_found_by_hash_listed_and_revoked_once,
    venue_tokens_need_an_active_venue,
    audit_entries_chain_and_page,
    an_edited_audit_entry_is_detected,
    a_deleted_audit_entry_is_detected,
    a_truncated_audit_log_is_detected,
    reordered_audit_entries_are_detected,
    two_store_instances_appending_at_once_keep_one_chain,
    participants_come_from_proven_phones_once_and_sessions_expire,
    one_phone_registering_twice_at_once_is_one_participant,
    a_challenge_pays_for_one_code_and_the_service_secret_is_made_once,
    login_codes_are_throttled_counted_and_single_use,
    attempts_are_limited_per_day_and_submitted_once_with_one_ticket_per_round,
    vouchers_are_redeemed_once_per_slot_and_reversals_reopen_them,
    the_database_refuses_duplicate_codes_and_a_second_live_redemption,
    two_store_instances_redeeming_at_once_redeem_once,
    a_holder_code_is_taken_once_by_two_instances_at_two_gates,
    holder_secrets_are_given_once_to_vouchers_without_one,
    one_key_sent_concurrently_with_two_requests_has_one_answer,
    a_refusal_recorded_while_a_redemption_waits_to_write_is_the_keys_answer,
    a_reissued_code_keeps_the_uses_of_the_voided_one,
    failed_lookups_are_counted_per_token_and_address,
    short_lived_rows_are_forgotten_and_live_ones_kept,
    the_outbox_is_claimed_by_one_sender_and_sent_at_most_once,
    the_review_sees_networks_devices_and_times_and_exclusions_sort_tickets_out,
    a_round_goes_through_its_lifecycle_once_and_in_order,
    winners_are_not_entered_again_and_unawarded_prizes_roll_over,
    two_store_instances_freeze_and_draw_a_round_once,
    a_draw_of_thousands_writes_every_winner_and_voucher,
    a_drawn_rounds_record_is_kept_once_byte_for_byte,
    sessions_find_their_own_attempts_only,
);

const REAL: &str = include_str!("../../config/campaign.toml");

fn campaign(text: &str) -> Campaign {
    Campaign::from_file(
        CampaignFile::parse(text).unwrap(),
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
    )
    .unwrap()
}

fn at(day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 7, day, 1, 2, 3).unwrap() + Duration::microseconds(123_456)
}

async fn open(db: &TestDb) -> SharedStore {
    let s = store::connect(&db.url, store::ConnectLimits::with_connections(4))
        .await
        .unwrap();
    s.migrate().await.unwrap();
    s
}

async fn synced(db: &TestDb) -> SharedStore {
    let s = open(db).await;
    s.sync_campaign(&campaign(REAL), at(1)).await.unwrap();
    s
}

fn new_token(name: &str, role: Role, venue: Option<&str>) -> (String, NewToken) {
    let (token, hash) = common::new_token();
    (
        token,
        NewToken {
            name: name.into(),
            role,
            venue_id: venue.map(str::to_owned),
            token_hash: hash,
        },
    )
}

async fn event(s: &SharedStore, n: u32) {
    s.append_audit(
        AuditEvent::new(
            "cli",
            "test.event",
            format!("n:{n}"),
            serde_json::json!({"n": n}),
        ),
        at(2),
    )
    .await
    .unwrap();
}

async fn sync_records_the_campaign_once_and_reports_changes(db: TestDb) {
    let s = open(&db).await;
    assert!(s.recorded_campaign().await.unwrap().is_none());
    let c = campaign(REAL);
    assert_eq!(
        s.sync_campaign(&c, at(1)).await.unwrap(),
        SyncOutcome::Created
    );
    assert_eq!(
        s.recorded_campaign().await.unwrap().as_ref(),
        Some(&c),
        "recorded exactly"
    );
    assert_eq!(
        s.sync_campaign(&c, at(2)).await.unwrap(),
        SyncOutcome::Unchanged
    );
    // Migrations are idempotent too.
    s.migrate().await.unwrap();
    let progress = s.round_progress(&c.id).await.unwrap();
    assert_eq!(progress.len(), 12);
    assert!(progress
        .iter()
        .enumerate()
        .all(|(i, (n, p))| *n == i as u32 + 1 && *p == RoundProgress::Pending));

    let fewer_rounds = campaign(
        &REAL
            .replace("rounds = 12", "rounds = 10")
            .replace("3180", "2650")
            .replace("hotel_night = 360", "hotel_night = 300")
            .replace("dining_coupon = 360", "dining_coupon = 300"),
    );
    assert_eq!(
        s.sync_campaign(&fewer_rounds, at(3)).await.unwrap(),
        SyncOutcome::Updated
    );
    assert_eq!(s.round_progress(&c.id).await.unwrap().len(), 10);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM rounds").await, 10);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM campaigns").await, 1);
    let audit = s.audit_page(0, 100).await.unwrap();
    let actions: Vec<_> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["campaign.sync", "campaign.sync"],
        "an unchanged sync writes nothing"
    );
    assert!(audit[1].details.contains("\"updated\""));
}

async fn sync_refuses_what_contradicts_settled_rounds(db: TestDb) {
    let s = synced(&db).await;
    db.execute("UPDATE rounds SET progress = 'frozen' WHERE number = 1")
        .await;
    assert_eq!(
        s.round_progress("hengyang-2024").await.unwrap()[0],
        (1, RoundProgress::Frozen)
    );
    let changed_tiers = campaign(
        &REAL
            .replace("count = 30", "count = 20")
            .replace("winners = 3180", "winners = 3060")
            .replace("tourism_card = 3180", "tourism_card = 3060")
            .replace("= 360", "= 240"),
    );
    match s.sync_campaign(&changed_tiers, at(2)).await {
        Err(StoreError::Incompatible(e)) => assert_eq!(e.field, "tiers"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let other_campaign = campaign(&REAL.replace("hengyang-2024", "changsha-2024"));
    match s.sync_campaign(&other_campaign, at(2)).await {
        Err(StoreError::Incompatible(e)) => assert_eq!(e.field, "campaign.id"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Still the original, and nothing audited for the refusals.
    assert_eq!(
        s.recorded_campaign().await.unwrap().unwrap(),
        campaign(REAL)
    );
    assert_eq!(s.audit_head().await.unwrap().0, 1);
    // Renaming a voucher kind stays allowed.
    let renamed = campaign(&REAL.replace("城市旅游卡", "衡阳城市旅游卡"));
    assert_eq!(
        s.sync_campaign(&renamed, at(3)).await.unwrap(),
        SyncOutcome::Updated
    );
}

async fn venues_removed_from_the_config_stay_but_are_inactive(db: TestDb) {
    let s = synced(&db).await;
    let mut file = CampaignFile::parse(REAL).unwrap();
    file.venues.retain(|v| v.id != "example-dining-2");
    let c = Campaign::from_file(file, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).unwrap();
    assert_eq!(
        s.sync_campaign(&c, at(2)).await.unwrap(),
        SyncOutcome::Updated
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM venues").await, 8);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM venues WHERE NOT active")
            .await,
        1
    );
    let (_, t) = new_token("gone", Role::Venue, Some("example-dining-2"));
    assert!(matches!(
        s.create_token(t, "cli", at(3)).await,
        Err(StoreError::Refused(Refusal::VenueInactive { .. }))
    ));
    // Put back, it is active again.
    s.sync_campaign(&campaign(REAL), at(4)).await.unwrap();
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM venues WHERE NOT active")
            .await,
        0
    );
}

async fn tokens_are_found_by_hash_listed_and_revoked_once(db: TestDb) {
    let s = synced(&db).await;
    let (secret, t) = new_token("公证处", Role::Witness, None);
    let created = s.create_token(t, "cli", at(2)).await.unwrap();
    assert_eq!(created.role, Role::Witness);
    assert_eq!(
        created.created_at,
        at(2),
        "instants keep their microseconds"
    );
    let found = s
        .token_by_hash(&token_hash(&secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, created);
    assert!(s
        .token_by_hash(&token_hash("clt_other"))
        .await
        .unwrap()
        .is_none());
    let (_, v) = new_token("前台", Role::Venue, Some("shenlong-hotel"));
    let venue = s.create_token(v, "cli", at(3)).await.unwrap();
    assert_eq!(venue.venue_id.as_deref(), Some("shenlong-hotel"));
    let list = s.list_tokens().await.unwrap();
    assert_eq!(list, vec![created.clone(), venue]);

    let revoked = s
        .revoke_token(created.id, true, "operator:x", at(4))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(at(4)));
    assert_eq!(
        s.token_by_hash(&token_hash(&secret))
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(at(4))
    );
    assert!(matches!(
        s.revoke_token(created.id, false, "cli", at(5)).await,
        Err(StoreError::Refused(Refusal::AlreadyRevoked))
    ));
    assert!(matches!(
        s.revoke_token(uuid::Uuid::new_v4(), false, "cli", at(5))
            .await,
        Err(StoreError::Refused(Refusal::TokenNotFound))
    ));
    let actions: Vec<_> = s
        .audit_page(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.actor))
        .collect();
    assert_eq!(
        actions,
        [
            ("campaign.sync".into(), "system".into()),
            ("token.create".into(), "cli".into()),
            ("token.create".into(), "cli".into()),
            ("token.revoke".into(), "operator:x".into()),
        ]
    );
    // The same hash twice is refused by the database.
    let (_, dup) = new_token("again", Role::Auditor, None);
    let dup = NewToken {
        token_hash: token_hash(&secret),
        ..dup
    };
    assert!(s.create_token(dup, "cli", at(6)).await.is_err());
    assert_eq!(s.list_tokens().await.unwrap().len(), 2);
}

async fn venue_tokens_need_an_active_venue(db: TestDb) {
    let s = synced(&db).await;
    let (_, t) = new_token("x", Role::Venue, Some("nowhere"));
    assert!(matches!(
        s.create_token(t, "cli", at(2)).await,
        Err(StoreError::Refused(Refusal::UnknownVenue { .. }))
    ));
    assert!(s.list_tokens().await.unwrap().is_empty());
    assert_eq!(
        s.audit_head().await.unwrap().0,
        1,
        "a refused change leaves no audit entry"
    );
}

async fn audit_entries_chain_and_page(db: TestDb) {
    let s = synced(&db).await;
    for n in 0..5 {
        event(&s, n).await;
    }
    let all = s.audit_page(0, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    for pair in all.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    assert_eq!(all[0].prev_hash, "0".repeat(64));
    assert_eq!(all[3].details, r#"{"n":2}"#);
    assert_eq!(all[3].at, at(2));
    assert_eq!(s.audit_page(2, 2).await.unwrap(), all[2..4].to_vec());
    assert_eq!(s.audit_head().await.unwrap(), (6, all[5].hash.clone()));
    assert_eq!(verify_audit_log(s.as_ref()).await.unwrap(), Ok(6));
}

async fn an_edited_audit_entry_is_detected(db: TestDb) {
    let s = synced(&db).await;
    for n in 0..4 {
        event(&s, n).await;
    }
    db.execute(r#"UPDATE audit_log SET details = '{"n":99}' WHERE seq = 3"#)
        .await;
    assert_eq!(
        verify_audit_log(s.as_ref()).await.unwrap(),
        Err(ChainBreak::HashMismatch { seq: 3 })
    );
}

async fn a_deleted_audit_entry_is_detected(db: TestDb) {
    let s = synced(&db).await;
    for n in 0..4 {
        event(&s, n).await;
    }
    db.execute("DELETE FROM audit_log WHERE seq = 2").await;
    assert_eq!(
        verify_audit_log(s.as_ref()).await.unwrap(),
        Err(ChainBreak::Gap {
            seq: 3,
            expected: 2
        })
    );
}

async fn a_truncated_audit_log_is_detected(db: TestDb) {
    let s = synced(&db).await;
    for n in 0..4 {
        event(&s, n).await;
    }
    db.execute("DELETE FROM audit_log WHERE seq = 5").await;
    assert_eq!(
        verify_audit_log(s.as_ref()).await.unwrap(),
        Err(ChainBreak::HeadMismatch {
            last: 4,
            head_seq: 5
        })
    );
}

async fn reordered_audit_entries_are_detected(db: TestDb) {
    let s = synced(&db).await;
    for n in 0..4 {
        event(&s, n).await;
    }
    // Swap entries 2 and 3 by renumbering them (each keeps its own content and hashes).
    db.execute("UPDATE audit_log SET seq = -2 WHERE seq = 2")
        .await;
    db.execute("UPDATE audit_log SET seq = 2 WHERE seq = 3")
        .await;
    db.execute("UPDATE audit_log SET seq = 3 WHERE seq = -2")
        .await;
    let verdict = verify_audit_log(s.as_ref()).await.unwrap();
    assert!(
        matches!(
            verdict,
            Err(ChainBreak::PrevMismatch { seq: 2 }) | Err(ChainBreak::HashMismatch { seq: 2 })
        ),
        "{verdict:?}"
    );
}

/// Two service instances on one database: appends interleave but never fork the chain.
async fn two_store_instances_appending_at_once_keep_one_chain(db: TestDb) {
    let a = synced(&db).await;
    let b = open(&db).await;
    let mut tasks = Vec::new();
    for n in 0..40u32 {
        let s = if n % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let (_, t) = new_token(&format!("t{n}"), Role::Auditor, None);
            s.create_token(t, "cli", at(3)).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(a.list_tokens().await.unwrap().len(), 40);
    assert_eq!(verify_audit_log(b.as_ref()).await.unwrap(), Ok(41));
}

fn session(name: &str, expires: chrono::DateTime<Utc>) -> NewSession {
    NewSession {
        token_hash: token_hash(name),
        expires_at: expires,
    }
}

/// A code for `phone` issued two hours before day 2 (so that it counts in no hourly limit then)
/// and entered at once with consent: the participant "小衡", with a session until day 20.
async fn participant(s: &SharedStore, phone: &str) -> store::Participant {
    let t = at(2) - Duration::hours(2);
    s.issue_login_code(
        LoginCode {
            phone: phone.into(),
            code_hash: "h0".into(),
            requested_from: "9.9.9.9".into(),
            expires_at: t + Duration::minutes(5),
            sms: code_sms("13800138000", "code h0"),
            challenge: common::unspent_challenge(),
        },
        &LoginLimits::default(),
        t,
    )
    .await
    .unwrap();
    let newcomer = Newcomer {
        display_name: Some("小衡".into()),
    };
    match s
        .verify_login_code(
            phone,
            "h0",
            session(&format!("clp_{phone}"), at(20)),
            Some(newcomer),
            &LoginLimits::default(),
            t,
        )
        .await
        .unwrap()
    {
        LoginOutcome::LoggedIn {
            participant,
            registered: true,
        } => participant,
        other => panic!("{other:?}"),
    }
}

/// A participant exists only once a code sent to the phone was entered with consent; the same
/// phone is one participant ever after, and its sessions end.
async fn participants_come_from_proven_phones_once_and_sessions_expire(db: TestDb) {
    let s = synced(&db).await;
    let limits = LoginLimits::default();
    let code = |hash: &str| LoginCode {
        phone: "13800138000".into(),
        code_hash: hash.into(),
        requested_from: "1.2.3.4".into(),
        expires_at: at(2) + Duration::minutes(5),
        sms: code_sms("13800138000", format!("code {hash}")),
        challenge: common::unspent_challenge(),
    };
    s.issue_login_code(code("h1"), &limits, at(2))
        .await
        .unwrap();
    assert_eq!(
        s.participant_by_phone("13800138000").await.unwrap(),
        None,
        "a code sent is no participant"
    );
    // The right code without consent: nothing written, the try not counted, the code still good.
    let without = s
        .verify_login_code(
            "13800138000",
            "h1",
            session("clp_a", at(20)),
            None,
            &limits,
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(without, LoginOutcome::ConsentNeeded);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM participants").await, 0);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM participant_sessions").await,
        0
    );
    assert_eq!(
        db.scalar("SELECT CAST(MAX(tries) AS BIGINT) FROM login_codes")
            .await,
        0
    );
    // A wrong code with consent creates nothing either.
    let wrong = s
        .verify_login_code(
            "13800138000",
            "nope",
            session("clp_a", at(20)),
            Some(Newcomer::default()),
            &limits,
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(wrong, LoginOutcome::WrongCode { tries_left: 4 });
    assert_eq!(db.scalar("SELECT COUNT(*) FROM participants").await, 0);

    let newcomer = Newcomer {
        display_name: Some("小衡".into()),
    };
    let LoginOutcome::LoggedIn {
        participant: p,
        registered: true,
    } = s
        .verify_login_code(
            "13800138000",
            "h1",
            session("clp_a", at(20)),
            Some(newcomer),
            &limits,
            at(2),
        )
        .await
        .unwrap()
    else {
        panic!("not registered");
    };
    assert_eq!(p.phone, "13800138000");
    assert_eq!(p.display_name.as_deref(), Some("小衡"));
    assert_eq!(p.created_at, at(2));

    // The next code for the phone logs the same participant in; a nickname sent again with it
    // changes nothing.
    let later = at(2) + Duration::minutes(3);
    s.issue_login_code(code("h2"), &limits, later)
        .await
        .unwrap();
    let again = s
        .verify_login_code(
            "13800138000",
            "h2",
            session("clp_b", at(20)),
            Some(Newcomer {
                display_name: Some("别人".into()),
            }),
            &limits,
            later,
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        LoginOutcome::LoggedIn {
            participant: p.clone(),
            registered: false
        }
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM participants").await, 1);

    let token = token_hash("clp_a");
    assert_eq!(
        s.participant_by_session(&token, at(19)).await.unwrap(),
        Some(p.clone())
    );
    assert_eq!(
        s.participant_by_session(&token, at(20)).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        s.participant_by_phone("13800138000").await.unwrap(),
        Some(p)
    );
    s.end_session(&token).await.unwrap();
    assert_eq!(s.participant_by_session(&token, at(3)).await.unwrap(), None);
    assert!(s
        .participant_by_session(&token_hash("clp_b"), at(3))
        .await
        .unwrap()
        .is_some());
}

/// A proof-of-work challenge is spent with the code it paid for, once, also by two requests at
/// once; a refused code (throttled) spends nothing. The service's secret is made by the first
/// caller and read by all others.
async fn a_challenge_pays_for_one_code_and_the_service_secret_is_made_once(db: TestDb) {
    let s = synced(&db).await;
    let limits = LoginLimits::default();
    let code = |phone: &str, nonce: &str| LoginCode {
        phone: phone.into(),
        code_hash: "h".into(),
        requested_from: "1.2.3.4".into(),
        expires_at: at(2) + Duration::minutes(5),
        sms: code_sms("13800138000", "code"),
        challenge: store::SpentChallenge {
            nonce: nonce.into(),
            expires_at: at(2) + Duration::minutes(5),
        },
    };
    let mut tasks = Vec::new();
    for phone in ["13800000001", "13800000002"] {
        let (s, c) = (s.clone(), code(phone, "n1"));
        tasks.push(tokio::spawn(async move {
            s.issue_login_code(c, &LoginLimits::default(), at(2)).await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes
        .iter()
        .any(|o| matches!(o, Err(StoreError::Refused(Refusal::ChallengeUsed)))));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM login_codes").await, 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM sms_outbox").await, 1);
    // Throttled (the same phone within the minute): the challenge is not spent.
    let first = db.text("SELECT phone FROM login_codes").await;
    let throttled = s
        .issue_login_code(code(&first, "n2"), &limits, at(2) + Duration::seconds(10))
        .await;
    assert!(
        matches!(
            throttled,
            Err(StoreError::Refused(Refusal::TooManyCodeRequests { .. }))
        ),
        "{throttled:?}"
    );
    s.issue_login_code(code("13800000003", "n2"), &limits, at(2))
        .await
        .unwrap();
    // Spent challenges are forgotten once they have expired.
    assert_eq!(db.scalar("SELECT COUNT(*) FROM spent_challenges").await, 2);
    s.forget_expired(at(3)).await.unwrap();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM spent_challenges").await, 0);

    let made = s.service_secret("altcha-hmac", "first").await.unwrap();
    assert_eq!(made, "first");
    assert_eq!(
        s.service_secret("altcha-hmac", "second").await.unwrap(),
        "first",
        "kept, whoever asks next"
    );
    assert_eq!(s.service_secret("other", "x").await.unwrap(), "x");
}

/// Two first codes entered at once for one phone (two tabs): one participant, both logged in.
async fn one_phone_registering_twice_at_once_is_one_participant(db: TestDb) {
    let s = synced(&db).await;
    let limits = LoginLimits::default();
    let mut tasks = Vec::new();
    for i in 0..2 {
        // Two codes, a minute apart; the newer is the live one, entered twice at once.
        s.issue_login_code(
            LoginCode {
                phone: "13800138000".into(),
                code_hash: format!("h{i}"),
                requested_from: "1.2.3.4".into(),
                expires_at: at(2) + Duration::minutes(10),
                sms: code_sms("13800138000", format!("code h{i}")),
                challenge: common::unspent_challenge(),
            },
            &limits,
            at(2) + Duration::minutes(i),
        )
        .await
        .unwrap();
    }
    for i in 0..2 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.verify_login_code(
                "13800138000",
                "h1",
                session(&format!("clp_{i}"), at(20)),
                Some(Newcomer::default()),
                &LoginLimits::default(),
                at(2) + Duration::minutes(2),
            )
            .await
            .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let logged_in = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                LoginOutcome::LoggedIn {
                    registered: true,
                    ..
                }
            )
        })
        .count();
    assert_eq!(logged_in, 1, "{outcomes:?}");
    assert!(
        outcomes.contains(&LoginOutcome::NoActiveCode),
        "the code worked once: {outcomes:?}"
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM participants").await, 1);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM participant_sessions").await,
        1
    );
    // The older code, never used, died when the newer one was sent.
    let older = s
        .verify_login_code(
            "13800138000",
            "h0",
            session("clp_old", at(20)),
            None,
            &limits,
            at(2) + Duration::minutes(3),
        )
        .await
        .unwrap();
    assert_eq!(older, LoginOutcome::NoActiveCode);
}

async fn login_codes_are_throttled_counted_and_single_use(db: TestDb) {
    let s = synced(&db).await;
    let p = participant(&s, "13800138000").await;
    let limits = LoginLimits::default();
    let code = |hash: &str, from: &str| LoginCode {
        phone: p.phone.clone(),
        code_hash: hash.into(),
        requested_from: from.into(),
        expires_at: at(2) + Duration::minutes(5),
        sms: code_sms("13800138000", format!("code {hash}")),
        challenge: common::unspent_challenge(),
    };
    let t0 = at(2);
    assert_eq!(
        s.issue_login_code(code("h1", "1.2.3.4"), &limits, t0)
            .await
            .unwrap(),
        ()
    );
    assert!(
        matches!(
            s.issue_login_code(code("h2", "1.2.3.4"), &limits, t0 + Duration::seconds(10))
                .await,
            Err(StoreError::Refused(Refusal::TooManyCodeRequests {
                retry_after: 50
            }))
        ),
        "wait out the minute"
    );
    let new = || session("clp_login", at(20));
    let outcome = s
        .verify_login_code(&p.phone, "wrong", new(), None, &limits, t0)
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::WrongCode { tries_left: 4 });
    let outcome = s
        .verify_login_code(&p.phone, "h1", new(), None, &limits, t0)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        LoginOutcome::LoggedIn {
            participant: p.clone(),
            registered: false
        }
    );
    assert!(s
        .participant_by_session(&token_hash("clp_login"), t0)
        .await
        .unwrap()
        .is_some());
    let again = s
        .verify_login_code(&p.phone, "h1", session("clp_x", at(20)), None, &limits, t0)
        .await
        .unwrap();
    assert_eq!(again, LoginOutcome::NoActiveCode, "single use");

    let t1 = t0 + Duration::minutes(2);
    s.issue_login_code(code("h3", "1.2.3.4"), &limits, t1)
        .await
        .unwrap();
    for left in (0..5).rev() {
        let o = s
            .verify_login_code(&p.phone, "bad", session("clp_y", at(20)), None, &limits, t1)
            .await
            .unwrap();
        assert_eq!(o, LoginOutcome::WrongCode { tries_left: left });
    }
    let o = s
        .verify_login_code(&p.phone, "h3", session("clp_y", at(20)), None, &limits, t1)
        .await
        .unwrap();
    assert_eq!(o, LoginOutcome::TooManyTries);
    let late = s.verify_login_code(
        &p.phone,
        "h3",
        session("clp_z", at(20)),
        None,
        &limits,
        t1 + Duration::minutes(6),
    );
    assert_eq!(late.await.unwrap(), LoginOutcome::NoActiveCode, "expired");

    // Each code issued queued its SMS with it; the refused one (h2) queued none.
    s.enqueue_sms(&code_sms(&p.phone, "验证码 123456"), t1)
        .await
        .unwrap();
    let outbox = s.pending_sms(10).await.unwrap();
    let bodies: Vec<(&str, &str)> = outbox
        .iter()
        .map(|m| (m.phone.as_str(), m.body.as_str()))
        .collect();
    assert_eq!(
        bodies,
        [
            ("13800138000", "code h0"),
            ("13800138000", "code h1"),
            ("13800138000", "code h3"),
            ("13800138000", "验证码 123456"),
        ]
    );
}

async fn attempts_are_limited_per_day_and_submitted_once_with_one_ticket_per_round(db: TestDb) {
    let s = synced(&db).await;
    let p = participant(&s, "13800138000").await;
    let day = NaiveDate::from_ymd_opt(2024, 7, 16).unwrap();
    let attempt = |id: uuid::Uuid, day: NaiveDate| NewAttempt {
        id,
        participant_id: p.id,
        questions: Vec::new(),
        started_at: at(16),
        deadline: at(16) + Duration::minutes(10),
        local_day: day,
        network: None,
        device: None,
    };
    let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::new_v4()).collect();
    assert!(s.start_attempt(attempt(ids[0], day), 2).await.unwrap());
    assert!(s.start_attempt(attempt(ids[1], day), 2).await.unwrap());
    assert!(
        !s.start_attempt(attempt(ids[2], day), 2).await.unwrap(),
        "the third of the day"
    );
    assert!(s.attempt(ids[2]).await.unwrap().is_none());
    assert!(s
        .start_attempt(attempt(ids[2], day.succ_opt().unwrap()), 2)
        .await
        .unwrap());

    let submission = |id: uuid::Uuid, when| Submission {
        attempt_id: id,
        participant_id: p.id,
        score: 9,
        passed: true,
        result: "{}".into(),
        at: when,
        due_after: when,
        ticket_round: Some(("hengyang-2024".into(), 1)),
        session: None,
    };
    // With a session to check in the same write: another's or an expired one records nothing.
    let with_session = |id, when, name: &str| Submission {
        session: Some(token_hash(name)),
        ..submission(id, when)
    };
    let other = participant(&s, "13900000001").await;
    assert_eq!(
        s.submit_attempt(with_session(ids[0], at(16), "clp_13900000001"))
            .await
            .unwrap(),
        SubmitOutcome::LoggedOut
    );
    assert_eq!(
        s.submit_attempt(with_session(ids[0], at(16), "clp_nobody"))
            .await
            .unwrap(),
        SubmitOutcome::LoggedOut
    );
    assert!(s
        .attempt(ids[0])
        .await
        .unwrap()
        .unwrap()
        .submitted_at
        .is_none());
    assert!(s.tickets_of(p.id).await.unwrap().is_empty());
    assert!(s.tickets_of(other.id).await.unwrap().is_empty());
    let first = s
        .submit_attempt(with_session(ids[0], at(16), &format!("clp_{}", p.phone)))
        .await
        .unwrap();
    let SubmitOutcome::Recorded(TicketOutcome::Issued(ticket)) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        s.submit_attempt(submission(ids[0], at(16))).await.unwrap(),
        SubmitOutcome::AlreadySubmitted
    );
    assert_eq!(
        s.submit_attempt(submission(ids[1], at(16))).await.unwrap(),
        SubmitOutcome::Recorded(TicketOutcome::AlreadyHeld(ticket))
    );
    assert_eq!(
        s.submit_attempt(submission(ids[2], at(17))).await.unwrap(),
        SubmitOutcome::Expired,
        "after its deadline"
    );
    // The deadline is checked against `due_after`, which the service sets a grace before `at`.
    let late = at(16) + Duration::minutes(10) + Duration::seconds(20);
    assert_eq!(
        s.submit_attempt(Submission {
            due_after: late - Duration::seconds(30),
            ..submission(ids[2], late)
        })
        .await
        .unwrap(),
        SubmitOutcome::Recorded(TicketOutcome::AlreadyHeld(ticket)),
        "late, within the grace"
    );
    assert_eq!(
        s.submit_attempt(submission(uuid::Uuid::new_v4(), at(16)))
            .await
            .unwrap(),
        SubmitOutcome::NotFound
    );
    let recorded = s.attempt(ids[1]).await.unwrap().unwrap();
    assert_eq!((recorded.score, recorded.passed), (Some(9), Some(true)));
    assert_eq!(recorded.ticket, TicketOutcome::AlreadyHeld(ticket));
    assert_eq!(recorded.ticket_round, Some(1));
    let tickets = s.tickets_of(p.id).await.unwrap();
    assert_eq!(tickets.len(), 1);
    assert_eq!((tickets[0].id, tickets[0].round), (ticket, 1));
}

/// The learning figures: each attempt counted once, by day, round, question and participant,
/// however many tallies run at the same time, batch after batch; one never submitted counts as
/// started once its time is up, not before.
async fn submitted_attempts_are_tallied_once_even_by_two_tallies_at_once(db: TestDb) {
    use campaign_lottery::domain::figures::Counts;
    use campaign_lottery::domain::quiz::{AttemptQuestion, QuestionBank};
    let s = synced(&db).await;
    let c = campaign(REAL);
    let bank = QuestionBank::parse(include_str!("../../config/questions.toml")).unwrap();
    let p = participant(&s, "13800138000").await;
    let other = participant(&s, "13800138001").await;
    let q = bank.get("tourism-low-price").unwrap();
    let aq = AttemptQuestion {
        question: q.id.clone(),
        order: (0..q.options.len()).collect(),
    };
    let right = campaign_lottery::domain::quiz::KEYS[q.correct[0]];
    let wrong = campaign_lottery::domain::quiz::KEYS[(q.correct[0] + 1) % q.options.len()];
    // (who, day: 16 is in round 1, 1 is before every round, answered right, submitted)
    let attempts = [
        (&p, 16, true, true),
        (&p, 16, true, true),
        (&other, 16, false, true),
        (&p, 1, true, true),
        (&other, 16, true, false),
    ];
    for (who, day, is_right, submitted) in attempts {
        let id = uuid::Uuid::new_v4();
        let started = at(day);
        assert!(s
            .start_attempt(
                NewAttempt {
                    id,
                    participant_id: who.id,
                    questions: vec![aq.clone()],
                    started_at: started,
                    deadline: started + Duration::minutes(10),
                    local_day: started.with_timezone(&c.tz()).date_naive(),
                    network: None,
                    device: None,
                },
                100,
            )
            .await
            .unwrap());
        if submitted {
            let choice = if is_right { right } else { wrong };
            let outcome = s
                .submit_attempt(Submission {
                    attempt_id: id,
                    participant_id: who.id,
                    score: u32::from(is_right),
                    passed: is_right,
                    result: serde_json::json!([{"question": q.id, "choices": [choice]}])
                        .to_string(),
                    at: started + Duration::minutes(1),
                    due_after: started + Duration::minutes(1),
                    ticket_round: None,
                    session: None,
                })
                .await
                .unwrap();
            assert!(matches!(outcome, SubmitOutcome::Recorded(_)));
        }
    }
    // While the unsubmitted one may still be submitted it waits.
    assert_eq!(s.quiz_figures(at(16)).await.unwrap().untallied, 4);
    let later = at(17);
    assert_eq!(s.quiz_figures(later).await.unwrap().untallied, 5);
    let (x, y) = tokio::join!(
        s.tally_attempts(&bank, &c, 2, later),
        s.tally_attempts(&bank, &c, 2, later)
    );
    let mut tallied = x.unwrap() + y.unwrap();
    loop {
        let more = s.tally_attempts(&bank, &c, 2, later).await.unwrap();
        if more == 0 {
            break;
        }
        tallied += more;
    }
    assert_eq!(tallied, 5, "each attempt once");
    let f = s.quiz_figures(later).await.unwrap();
    assert_eq!(f.untallied, 0);
    let counts = |started, submitted, passed, answered, correct| Counts {
        started,
        submitted,
        passed,
        answered,
        correct,
    };
    // Participants counted once per day, round and in all, across batches.
    assert_eq!(
        f.days,
        [
            ("2024-07-01".to_owned(), 0, counts(1, 1, 1, 1, 1), 1),
            ("2024-07-16".to_owned(), 1, counts(4, 3, 2, 3, 2), 2),
        ]
    );
    assert_eq!(f.takers_per_round, [(0, 1), (1, 2)]);
    assert_eq!(f.takers, 2);
    assert_eq!(f.questions.len(), 1);
    assert_eq!(
        (f.questions[0].id.as_str(), f.questions[0].topic.as_str()),
        (q.id.as_str(), q.topic.as_str())
    );
    assert_eq!((f.questions[0].answered, f.questions[0].correct), (4, 3));
}

/// Two service instances starting at the same moment on one database.
async fn two_instances_starting_together_record_the_campaign_once(db: TestDb) {
    let a = open(&db).await;
    let b = open(&db).await;
    let c = campaign(REAL);
    let (x, y) = tokio::join!(a.sync_campaign(&c, at(1)), b.sync_campaign(&c, at(1)));
    let mut outcomes = vec![x.unwrap(), y.unwrap()];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [SyncOutcome::Created, SyncOutcome::Unchanged]);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM campaigns").await, 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM rounds").await, 12);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM venues").await, 8);
    assert_eq!(verify_audit_log(b.as_ref()).await.unwrap(), Ok(1));
}

// ---- vouchers ---------------------------------------------------------------------------------

/// The real campaign with round 1 (July 2024) drawn among 40 participants: every one wins.
async fn drawn(db: &TestDb) -> (SharedStore, Campaign) {
    let s = synced(db).await;
    let c = campaign(REAL);
    common::tickets_in(&s, &c.id, 1, at(16), 0..40).await;
    common::draw_round(&s, &c, 1, at(22)).await;
    (s, c)
}

async fn venue_token(s: &SharedStore, venue: &str) -> uuid::Uuid {
    common::create_token(s, Role::Venue, &format!("{venue} desk"), Some(venue)).await;
    s.list_tokens()
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|t| t.venue_id.as_deref() == Some(venue))
        .unwrap()
        .id
}

fn request(
    c: &Campaign,
    v: &store::VoucherRecord,
    venue: &str,
    token: uuid::Uuid,
    key: &str,
    when: chrono::DateTime<Utc>,
) -> store::Redeem {
    store::Redeem {
        code: v.code.clone(),
        venue: c.venue(venue).unwrap().clone(),
        token_id: token,
        idempotency_key: key.into(),
        holder_code: Some(common::holder_code(v, when)),
        actor: format!("venue:{venue}"),
        at: when,
    }
}

async fn first_of(s: &SharedStore, kind: &str) -> store::VoucherRecord {
    s.all_vouchers("hengyang-2024")
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.kind == kind && !v.void)
        .unwrap()
}

async fn vouchers_are_redeemed_once_per_slot_and_reversals_reopen_them(db: TestDb) {
    let (s, c) = drawn(&db).await;
    let all = s.all_vouchers(&c.id).await.unwrap();
    assert_eq!(all.len(), 30 * 3 + 10);
    assert!(all.iter().all(|v| v.uses.is_empty() && !v.void));
    let hotel = first_of(&s, "hotel_night").await;
    assert_eq!(
        s.voucher_by_code(&hotel.code).await.unwrap().unwrap(),
        hotel
    );
    assert_eq!(s.voucher(hotel.id).await.unwrap().unwrap(), hotel);
    assert!(s.voucher_by_code("0000000000000").await.unwrap().is_none());
    let mine = s.vouchers_of(hotel.participant_id).await.unwrap();
    assert_eq!(mine.len(), 3);

    let desk = venue_token(&s, "shenlong-hotel").await;
    let when = at(25);
    let done = s
        .redeem(&c, request(&c, &hotel, "shenlong-hotel", desk, "k1", when))
        .await
        .unwrap();
    let store::RedeemOutcome::Redeemed {
        redemption,
        replayed: false,
        ..
    } = done
    else {
        panic!("{done:?}")
    };
    assert_eq!(redemption.redeemed_at, when);
    // Again, at another hotel: already used, when and where.
    let other = venue_token(&s, "hengshan-hotel").await;
    let again = s
        .redeem(
            &c,
            request(&c, &hotel, "hengshan-hotel", other, "k2", at(26)),
        )
        .await
        .unwrap();
    let store::RedeemOutcome::Refused { reason, .. } = again else {
        panic!("{again:?}")
    };
    assert_eq!(
        reason,
        campaign_lottery::domain::redemption::Reason::AlreadyUsed(
            campaign_lottery::domain::redemption::Use {
                venue_id: "shenlong-hotel".into(),
                at: when
            }
        )
    );
    // The same key replays (a retry sends the same request, the holder code shown then
    // included, however late); the same key for another code is refused.
    let mut retry = request(&c, &hotel, "shenlong-hotel", desk, "k1", at(27));
    retry.holder_code = Some(common::holder_code(&hotel, when));
    let replay = s.redeem(&c, retry).await.unwrap();
    let store::RedeemOutcome::Redeemed {
        redemption: replayed,
        replayed: true,
        ..
    } = replay
    else {
        panic!("{replay:?}")
    };
    assert_eq!(replayed, redemption);
    // The same key with another holder code is another request.
    let mut other_code = request(&c, &hotel, "shenlong-hotel", desk, "k1", at(27));
    other_code.holder_code = Some(common::wrong_holder_code(&hotel, at(27)));
    assert_eq!(
        s.redeem(&c, other_code).await.unwrap(),
        store::RedeemOutcome::KeyReused
    );
    // A refusal is the answer to its key: replayed, the rules not asked again.
    let k2_again = |when| {
        let mut r = request(&c, &hotel, "hengshan-hotel", other, "k2", when);
        r.holder_code = Some(common::holder_code(&hotel, at(26)));
        r
    };
    let refused_again = s.redeem(&c, k2_again(at(30))).await.unwrap();
    assert!(
        matches!(
            refused_again,
            store::RedeemOutcome::Refused {
                reason: campaign_lottery::domain::redemption::Reason::AlreadyUsed(_),
                replayed: true
            }
        ),
        "{refused_again:?}"
    );
    let second = s
        .all_vouchers(&c.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|v| v.kind == "hotel_night")
        .nth(1)
        .unwrap();
    assert_eq!(
        s.redeem(
            &c,
            request(&c, &second, "shenlong-hotel", desk, "k1", at(27))
        )
        .await
        .unwrap(),
        store::RedeemOutcome::KeyReused
    );
    // Reversal: only by the venue that redeemed, once, within the window.
    let window = Duration::minutes(30);
    assert_eq!(
        s.reverse_redemption(redemption.id, "hengshan-hotel", other, window, "x", when)
            .await
            .unwrap(),
        store::ReverseOutcome::NotFound
    );
    let late = when + Duration::minutes(31);
    assert!(matches!(
        s.reverse_redemption(redemption.id, "shenlong-hotel", desk, window, "x", late)
            .await
            .unwrap(),
        store::ReverseOutcome::WindowPassed(_)
    ));
    let soon = when + Duration::minutes(10);
    let reversed = s
        .reverse_redemption(redemption.id, "shenlong-hotel", desk, window, "x", soon)
        .await
        .unwrap();
    let store::ReverseOutcome::Reversed(r) = reversed else {
        panic!("{reversed:?}")
    };
    assert_eq!(r.reversed_at, Some(soon));
    assert!(matches!(
        s.reverse_redemption(redemption.id, "shenlong-hotel", desk, window, "x", soon)
            .await
            .unwrap(),
        store::ReverseOutcome::AlreadyReversed(_)
    ));
    assert!(s.voucher(hotel.id).await.unwrap().unwrap().uses.is_empty());
    // Redeemable again now, but not under the key whose answer was a refusal.
    assert!(matches!(
        s.redeem(&c, k2_again(at(28))).await.unwrap(),
        store::RedeemOutcome::Refused { replayed: true, .. }
    ));
    // Redeemable again, elsewhere.
    assert!(matches!(
        s.redeem(
            &c,
            request(&c, &hotel, "hengshan-hotel", other, "k3", at(28))
        )
        .await
        .unwrap(),
        store::RedeemOutcome::Redeemed {
            replayed: false,
            ..
        }
    ));
    // Lists: newest first per venue; a period holds redemptions and reversals made in it.
    let recent = s
        .recent_redemptions(Some("shenlong-hotel"), 10)
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].reversed_at, Some(soon));
    assert_eq!(s.recent_redemptions(None, 10).await.unwrap().len(), 2);
    let day = s
        .redemptions_between(
            None,
            at(25) - Duration::hours(1),
            at(25) + Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(day.len(), 1);
    let later = s
        .redemptions_between(Some("hengshan-hotel"), at(26), at(29))
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    // Unknown codes.
    let mut unknown = request(&c, &hotel, "shenlong-hotel", desk, "k9", at(28));
    unknown.code = "ABCDEFGHJKMY".into();
    assert_eq!(
        s.redeem(&c, unknown.clone()).await.unwrap(),
        store::RedeemOutcome::Unknown { replayed: false }
    );
    assert_eq!(
        s.redeem(&c, unknown).await.unwrap(),
        store::RedeemOutcome::Unknown { replayed: true }
    );
    // Every change is in the audit chain, which still verifies.
    assert!(verify_audit_log(s.as_ref()).await.unwrap().is_ok());
}

async fn the_database_refuses_duplicate_codes_and_a_second_live_redemption(db: TestDb) {
    let (s, c) = drawn(&db).await;
    let hotel = first_of(&s, "hotel_night").await;
    let copy = db
        .try_execute(&format!(
            "INSERT INTO vouchers (id, code, campaign_id, round, rank, participant_id, kind, issued_at, status)
             SELECT '{}', code, campaign_id, round, rank, participant_id, 'dining_coupon', issued_at, 'void'
             FROM vouchers WHERE id = '{}'",
            uuid::Uuid::new_v4(),
            hotel.id
        ))
        .await;
    assert!(copy.unwrap_err().to_lowercase().contains("unique"));
    let desk = venue_token(&s, "shenlong-hotel").await;
    let done = s
        .redeem(
            &c,
            request(&c, &hotel, "shenlong-hotel", desk, "k1", at(25)),
        )
        .await
        .unwrap();
    assert!(matches!(done, store::RedeemOutcome::Redeemed { .. }));
    // Someone bypassing the service to redeem the slot again.
    let second = db
        .try_execute(&format!(
            "INSERT INTO redemptions (id, voucher_id, entitlement, slot, venue_id, token_id, idempotency_key, redeemed_at)
             SELECT '{}', voucher_id, entitlement, slot, 'hengshan-hotel', token_id, 'other', redeemed_at
             FROM redemptions",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert!(second.unwrap_err().to_lowercase().contains("unique"));
}

async fn two_store_instances_redeeming_at_once_redeem_once(db: TestDb) {
    let (a, c) = drawn(&db).await;
    let b = open(&db).await;
    let card = first_of(&a, "tourism_card").await;
    let desk = venue_token(&a, "huaguoshan-scenic").await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let r = request(
            &c,
            &card,
            "huaguoshan-scenic",
            desk,
            &format!("k{i}"),
            at(25),
        );
        let c = c.clone();
        tasks.push(tokio::spawn(async move { s.redeem(&c, r).await.unwrap() }));
    }
    let mut redeemed = 0;
    for t in tasks {
        match t.await.unwrap() {
            store::RedeemOutcome::Redeemed { .. } => redeemed += 1,
            store::RedeemOutcome::Refused { reason, .. } => assert!(matches!(
                reason,
                campaign_lottery::domain::redemption::Reason::AlreadyUsed(_)
            )),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(redeemed, 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM redemptions").await, 1);
}

/// One holder code typed at two scenic spots' gates at once, through two store instances: each
/// gate's slot is free, the code's step is not (a unique index), so one redemption; the gate
/// that lost is told the code is used, the winner's own retries that the slot is.
async fn a_holder_code_is_taken_once_by_two_instances_at_two_gates(db: TestDb) {
    use campaign_lottery::domain::redemption::Reason;
    let (a, c) = drawn(&db).await;
    let b = open(&db).await;
    let card = first_of(&a, "tourism_card").await;
    let gates = [
        (
            "huaguoshan-scenic",
            venue_token(&a, "huaguoshan-scenic").await,
        ),
        (
            "example-scenic-1",
            venue_token(&a, "example-scenic-1").await,
        ),
    ];
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (venue, token) = &gates[(i / 2) % 2];
        let r = request(&c, &card, venue, *token, &format!("k{i}"), at(25));
        let c = c.clone();
        tasks.push(tokio::spawn(async move { s.redeem(&c, r).await.unwrap() }));
    }
    let mut redeemed = Vec::new();
    let mut refused = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            store::RedeemOutcome::Redeemed { redemption, .. } => redeemed.push(redemption),
            store::RedeemOutcome::Refused { reason, .. } => refused.push(reason),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(redeemed.len(), 1, "{refused:?}");
    let won = &redeemed[0].venue_id;
    assert_eq!(refused.len(), 19);
    for reason in &refused {
        match reason {
            Reason::AlreadyUsed(u) => assert_eq!(&u.venue_id, won),
            Reason::HolderCodeUsed => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(refused.contains(&Reason::HolderCodeUsed), "{refused:?}");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM redemptions").await, 1);
    // The database itself refuses a second redemption of the voucher with the same step.
    let step = campaign_lottery::domain::holder_code::step_of(at(25));
    let forced = db
        .try_execute(&format!(
            "INSERT INTO redemptions (id, voucher_id, entitlement, slot, venue_id, token_id,
                 idempotency_key, redeemed_at, holder_step)
             SELECT '{}', voucher_id, entitlement, 'elsewhere', venue_id, token_id, 'forced',
                    redeemed_at, holder_step FROM redemptions",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert!(forced.is_err(), "{forced:?}");
    assert_eq!(
        db.scalar("SELECT MAX(holder_step) FROM redemptions").await,
        step
    );
}

/// Vouchers issued before holder codes get a secret when their holder looks: once, and a
/// voucher that has one keeps it.
async fn holder_secrets_are_given_once_to_vouchers_without_one(db: TestDb) {
    use campaign_lottery::domain::holder_code::Secret;
    let (s, _) = drawn(&db).await;
    let hotel = first_of(&s, "hotel_night").await;
    let card = first_of(&s, "tourism_card").await;
    assert!(hotel.holder_secret.is_some() && card.holder_secret.is_some());
    assert_ne!(hotel.holder_secret, card.holder_secret);
    db.execute(&format!(
        "UPDATE vouchers SET holder_secret = NULL WHERE id = '{}'",
        hotel.id
    ))
    .await;
    let fresh = Secret::new([7; 20]);
    let other = Secret::new([9; 20]);
    let given = s
        .give_holder_secrets(&[(hotel.id, fresh.clone()), (card.id, other.clone())])
        .await
        .unwrap();
    assert_eq!(given, 1, "only the voucher without one");
    assert_eq!(
        s.voucher(hotel.id).await.unwrap().unwrap().holder_secret,
        Some(fresh.clone())
    );
    assert_eq!(
        s.voucher(card.id).await.unwrap().unwrap().holder_secret,
        card.holder_secret
    );
    // Asked again (a second tab of /me at once): nothing changes.
    assert_eq!(
        s.give_holder_secrets(&[(hotel.id, other)]).await.unwrap(),
        0
    );
    assert_eq!(
        s.voucher(hotel.id).await.unwrap().unwrap().holder_secret,
        Some(fresh)
    );
}

/// One Idempotency-Key sent at once from two store instances with two different requests (the
/// holder's code, and a wrong one): whichever is judged first is the key's one answer; every
/// request like it is told the same, every other one that the key is reused; a refusal that
/// wins leaves no redemption behind.
async fn one_key_sent_concurrently_with_two_requests_has_one_answer(db: TestDb) {
    let (a, c) = drawn(&db).await;
    let b = open(&db).await;
    let cards: Vec<_> = a
        .all_vouchers(&c.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|v| v.kind == "tourism_card")
        .take(8)
        .collect();
    let desk = venue_token(&a, "huaguoshan-scenic").await;
    let mut redemptions = 0;
    for (n, card) in cards.iter().enumerate() {
        let key = format!("one-key-{n}");
        let mut tasks = Vec::new();
        for i in 0..12 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            let mut r = request(&c, card, "huaguoshan-scenic", desk, &key, at(25));
            // Every other card, the wrong code is sent first.
            let right = (i % 4 < 2) == (n % 2 == 0);
            if !right {
                r.holder_code = Some(common::wrong_holder_code(card, at(25)));
            }
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                (right, s.redeem(&c, r).await.unwrap())
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        let fresh = |o: &store::RedeemOutcome| {
            matches!(
                o,
                store::RedeemOutcome::Redeemed {
                    replayed: false,
                    ..
                } | store::RedeemOutcome::Refused {
                    replayed: false,
                    ..
                }
            )
        };
        assert_eq!(
            answers.iter().filter(|(_, o)| fresh(o)).count(),
            1,
            "{answers:?}"
        );
        let (winner_right, _) = answers.iter().find(|(_, o)| fresh(o)).unwrap();
        for (right, outcome) in &answers {
            if right != winner_right {
                assert_eq!(outcome, &store::RedeemOutcome::KeyReused);
            } else if *right {
                assert!(
                    matches!(outcome, store::RedeemOutcome::Redeemed { .. }),
                    "{outcome:?}"
                );
            } else {
                assert!(
                    matches!(
                        outcome,
                        store::RedeemOutcome::Refused {
                            reason: campaign_lottery::domain::redemption::Reason::HolderMismatch,
                            ..
                        }
                    ),
                    "{outcome:?}"
                );
            }
        }
        redemptions += i64::from(*winner_right);
        // A refusal that won leaves no redemption of this card behind.
        assert_eq!(
            a.voucher(card.id).await.unwrap().unwrap().uses.len(),
            usize::from(*winner_right)
        );
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM redemptions").await,
        redemptions
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM idempotent_answers").await,
        8
    );
    assert!(verify_audit_log(a.as_ref()).await.unwrap().is_ok());
}

/// The narrow case of the test above, made certain: a redemption judged allowed waits to write
/// (the test holds the voucher's row, or SQLite's write lock) while another request under the
/// same key is refused and its refusal recorded; the redemption's write then finds the key
/// answered and writes nothing, and its request is told the key is reused.
async fn a_refusal_recorded_while_a_redemption_waits_to_write_is_the_keys_answer(db: TestDb) {
    use campaign_lottery::domain::redemption::{request_fingerprint, Reason};
    use sqlx::Connection;
    let (s, c) = drawn(&db).await;
    let card = first_of(&s, "tourism_card").await;
    let desk = venue_token(&s, "huaguoshan-scenic").await;
    let r = request(&c, &card, "huaguoshan-scenic", desk, "contested", at(25));
    let wrong = common::wrong_holder_code(&card, at(25));
    let refusal = format!(
        "INSERT INTO idempotent_answers (token_id, idempotency_key, request, answer, reason, answered_at)
         VALUES ('{desk}', 'contested', '{}', 'refused', '{}', '{}')",
        request_fingerprint(&r.code, Some(&wrong)),
        serde_json::to_string(&Reason::HolderMismatch).unwrap(),
        at(25).to_rfc3339()
    );
    let redeeming = {
        let (s, c, r) = (s.clone(), c.clone(), r.clone());
        async move { s.redeem(&c, r).await.unwrap() }
    };
    let outcome = match db.backend {
        common::Backend::Postgres => {
            let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
            sqlx::query(&format!(
                "SELECT id FROM vouchers WHERE id = '{}' FOR UPDATE",
                card.id
            ))
            .execute(&mut holder)
            .await
            .unwrap();
            let task = tokio::spawn(redeeming);
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            db.execute(&refusal).await;
            sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
            task.await.unwrap()
        }
        common::Backend::Sqlite => {
            let mut holder = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut holder)
                .await
                .unwrap();
            let task = tokio::spawn(redeeming);
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            sqlx::query(&refusal).execute(&mut holder).await.unwrap();
            sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
            task.await.unwrap()
        }
    };
    assert_eq!(outcome, store::RedeemOutcome::KeyReused);
    assert!(s.voucher(card.id).await.unwrap().unwrap().uses.is_empty());
    assert_eq!(db.scalar("SELECT COUNT(*) FROM redemptions").await, 0);
    assert!(verify_audit_log(s.as_ref()).await.unwrap().is_ok());
}

async fn a_reissued_code_keeps_the_uses_of_the_voided_one(db: TestDb) {
    let (s, c) = drawn(&db).await;
    let card = first_of(&s, "tourism_card").await;
    let spot = venue_token(&s, "huaguoshan-scenic").await;
    let done = s
        .redeem(
            &c,
            request(&c, &card, "huaguoshan-scenic", spot, "k1", at(25)),
        )
        .await
        .unwrap();
    assert!(matches!(done, store::RedeemOutcome::Redeemed { .. }));
    assert!(matches!(
        s.reissue_voucher(card.id, "operator:x", at(26)).await,
        Err(StoreError::Refused(Refusal::NotVoid))
    ));
    let void = s
        .void_voucher(card.id, "lost", "operator:x", at(26))
        .await
        .unwrap();
    assert!(void.void && void.void_reason.as_deref() == Some("lost"));
    assert!(matches!(
        s.void_voucher(card.id, "lost", "operator:x", at(26)).await,
        Err(StoreError::Refused(Refusal::AlreadyVoid))
    ));
    assert!(matches!(
        s.void_voucher(uuid::Uuid::new_v4(), "lost", "operator:x", at(26))
            .await,
        Err(StoreError::Refused(Refusal::VoucherNotFound))
    ));
    let new = s
        .reissue_voucher(card.id, "operator:x", at(26))
        .await
        .unwrap();
    assert_ne!(new.code, card.code);
    assert_eq!(new.reissued_from, Some(card.id));
    assert_eq!(
        (new.round, new.rank, &new.kind),
        (card.round, card.rank, &card.kind)
    );
    assert_eq!(new.participant_id, card.participant_id);
    assert_eq!(new.uses.len(), 1);
    assert_eq!(new.uses[0].venue_id, "huaguoshan-scenic");
    assert!(matches!(
        s.reissue_voucher(card.id, "operator:x", at(26)).await,
        Err(StoreError::Refused(Refusal::AlreadyReissued { .. }))
    ));
    // The visit made with the old code counts for the new one.
    let mut again = request(&c, &new, "huaguoshan-scenic", spot, "k2", at(27));
    again.code = new.code.clone();
    assert!(matches!(
        s.redeem(&c, again).await.unwrap(),
        store::RedeemOutcome::Refused { .. }
    ));
    let actions: Vec<String> = s
        .audit_page(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in [
        "voucher.issue",
        "voucher.redeem",
        "voucher.void",
        "voucher.reissue",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a}");
    }
}

async fn failed_lookups_are_counted_per_token_and_address(db: TestDb) {
    let (s, _) = drawn(&db).await;
    let t1 = venue_token(&s, "shenlong-hotel").await;
    let t2 = venue_token(&s, "hengshan-hotel").await;
    for i in 0..3 {
        s.record_lookup_failure(t1, "10.0.0.1", at(25) + Duration::minutes(i))
            .await
            .unwrap();
    }
    s.record_lookup_failure(t2, "10.0.0.1", at(25))
        .await
        .unwrap();
    s.record_lookup_failure(t2, "10.0.0.2", at(25))
        .await
        .unwrap();
    let f = s
        .lookup_failures(t1, "10.0.0.1", at(25) - Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!((f.by_token, f.by_address), (3, 4));
    assert_eq!(f.token_oldest, Some(at(25)));
    let f = s
        .lookup_failures(t1, "10.0.0.9", at(25) + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!((f.by_token, f.by_address, f.address_oldest), (2, 0, None));
    // Two days on, a new failure forgets this token's and address's old ones, and only those.
    s.record_lookup_failure(t1, "10.0.0.1", at(27))
        .await
        .unwrap();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM lookup_failures").await, 2);
    let f = s.lookup_failures(t2, "10.0.0.2", at(1)).await.unwrap();
    assert_eq!((f.by_token, f.by_address), (1, 1));
}

async fn short_lived_rows_are_forgotten_and_live_ones_kept(db: TestDb) {
    let s = synced(&db).await;
    let p = participant(&s, "13800138000").await; // its session lasts until day 20
    let limits = LoginLimits::default();
    let code = |hash: &str, from: &str, day: u32| LoginCode {
        phone: p.phone.clone(),
        code_hash: hash.into(),
        requested_from: from.into(),
        expires_at: at(day) + Duration::minutes(5),
        sms: code_sms("13800138000", format!("code {hash}")),
        challenge: common::unspent_challenge(),
    };
    // Day 2: a code used for a session that ends on day 3; day 6: a code not used yet.
    s.issue_login_code(code("h1", "1.2.3.4", 2), &limits, at(2))
        .await
        .unwrap();
    let short = session("clp_short", at(3));
    let outcome = s
        .verify_login_code(&p.phone, "h1", short, None, &limits, at(2))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        LoginOutcome::LoggedIn {
            participant: p.clone(),
            registered: false
        }
    );
    s.issue_login_code(code("h2", "5.6.7.8", 6), &limits, at(6))
        .await
        .unwrap();
    let desk = venue_token(&s, "shenlong-hotel").await;
    // Another desk and address: a failure forgets its own desk's and address's old ones itself.
    let other = venue_token(&s, "hengshan-hotel").await;
    s.record_lookup_failure(other, "10.0.0.2", at(2))
        .await
        .unwrap();
    s.record_lookup_failure(desk, "10.0.0.1", at(6))
        .await
        .unwrap();
    for day in [2, 2, 6] {
        s.enqueue_sms(&code_sms(&p.phone, "验证码"), at(day))
            .await
            .unwrap();
    }
    // The outbox: the three codes' SMS (the first from the day before day 2) and these three;
    // a sender holds the oldest.
    assert_eq!(s.pending_sms(10).await.unwrap().len(), 6);
    let in_flight = s.claim_sms(1, at(9), at(2)).await.unwrap();
    assert_eq!(in_flight.len(), 1);

    // Forget what is from before day 5: the code that registered the participant, the day-2
    // code, a failure, the SMS queued before (but the one in flight), the ended session.
    assert_eq!(s.forget_expired(at(5)).await.unwrap(), 7);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM login_codes").await, 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM lookup_failures").await, 1);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM participant_sessions").await,
        1
    );
    let pending: Vec<_> = s.pending_sms(10).await.unwrap();
    assert_eq!(pending.len(), 3, "the one in flight is its sender's");
    assert_eq!(pending[0].id, in_flight[0].id);
    assert!(pending[1..].iter().all(|m| m.created_at == at(6)));
    // What is kept still works.
    let long = token_hash("clp_13800138000");
    assert!(s
        .participant_by_session(&long, at(6))
        .await
        .unwrap()
        .is_some());
    let f = s.lookup_failures(desk, "10.0.0.1", at(5)).await.unwrap();
    assert_eq!((f.by_token, f.by_address), (1, 1));
    let outcome = s
        .verify_login_code(
            &p.phone,
            "h2",
            session("clp_new", at(20)),
            None,
            &limits,
            at(6),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        LoginOutcome::LoggedIn {
            participant: p.clone(),
            registered: false
        }
    );
    assert_eq!(
        s.forget_expired(at(5)).await.unwrap(),
        0,
        "nothing left to forget"
    );
}

// ---- draws ------------------------------------------------------------------------------------

const WITNESSES: [&str; 2] = ["衡阳公证处", "律师见证人"];

fn witness_secret(name: &str, round: u32) -> [u8; 32] {
    let mut s = [3u8; 32];
    for (i, b) in name.bytes().enumerate() {
        s[i % 32] ^= b;
    }
    s[31] = round as u8;
    s
}

async fn commit(s: &SharedStore, c: &Campaign, round: u32, name: &str) -> store::StoreResult<()> {
    let commitment = campaign_lottery::domain::draw::seed::commitment(
        &c.id,
        round,
        name,
        &witness_secret(name, round),
    );
    s.commit_witness(
        &c.id,
        round,
        name,
        &hex::encode(commitment),
        &format!("witness:{name}"),
        at(16),
    )
    .await
}

async fn reveal(s: &SharedStore, c: &Campaign, round: u32, name: &str) -> store::StoreResult<()> {
    let when = c.round(round).unwrap().closes_at + Duration::hours(2);
    s.reveal_secret(
        &c.id,
        round,
        name,
        &hex::encode(witness_secret(name, round)),
        &format!("witness:{name}"),
        when,
    )
    .await
}

fn refusal<T: std::fmt::Debug>(r: store::StoreResult<T>) -> Refusal {
    match r {
        Err(StoreError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn a_round_goes_through_its_lifecycle_once_and_in_order(db: TestDb) {
    let s = synced(&db).await;
    let c = campaign(REAL);
    common::tickets_in(&s, &c.id, 1, at(16), 0..12).await;
    assert_eq!(s.tickets_per_round(&c.id).await.unwrap(), vec![(1, 12)]);
    let closes = c.round(1).unwrap().closes_at;
    let (before, after) = (closes - Duration::seconds(1), closes + Duration::hours(1));
    let freeze = |round: u32, when| {
        let s = s.clone();
        let f = common::freeze_request(&c, round, "");
        async move { s.freeze_round(f, "operator:test", when).await }
    };
    let draw = |beacon: &str| {
        let s = s.clone();
        let d = common::draw_request(&c, 1, beacon);
        async move { s.draw_round(d, "operator:test", after).await }
    };

    // Pending: commitments, once per witness; nothing for a round the campaign lacks.
    commit(&s, &c, 1, WITNESSES[0]).await.unwrap();
    assert_eq!(
        refusal(commit(&s, &c, 1, WITNESSES[0]).await),
        Refusal::AlreadyCommitted {
            round: 1,
            witness: WITNESSES[0].into()
        }
    );
    assert_eq!(
        refusal(commit(&s, &c, 13, WITNESSES[0]).await),
        Refusal::RoundNotFound { round: 13 }
    );
    assert_eq!(
        refusal(reveal(&s, &c, 1, WITNESSES[0]).await),
        Refusal::RoundNotFrozen { round: 1 }
    );
    assert_eq!(
        refusal(draw("").await),
        Refusal::RoundNotFrozen { round: 1 }
    );
    // The freeze waits for the window, the witnesses and the round before.
    assert!(matches!(
        refusal(freeze(1, before).await),
        Refusal::RoundNotClosed { round: 1, .. }
    ));
    assert_eq!(
        refusal(freeze(1, after).await),
        Refusal::NotEnoughCommitments {
            round: 1,
            needed: 2,
            has: 1
        }
    );
    let in_round_2 = c.round(2).unwrap().closes_at + Duration::hours(1);
    assert_eq!(
        refusal(freeze(2, in_round_2).await),
        Refusal::PreviousRoundNotDrawn { round: 2 }
    );
    commit(&s, &c, 1, WITNESSES[1]).await.unwrap();
    let state = s.round_draw_state(&c.id, 1).await.unwrap().unwrap();
    assert_eq!(state.progress, RoundProgress::Pending);
    assert_eq!(state.witnesses.len(), 2);
    assert!(state.witnesses.iter().all(|w| w.secret.is_none()));
    assert_eq!(state.frozen_at, None);

    // Frozen: the eligible tickets, their root and the prizes are fixed.
    freeze(1, after).await.unwrap();
    let entries = s
        .round_sorted_out(&c.id, 1, c.win_limit)
        .await
        .unwrap()
        .entries;
    assert_eq!(entries.len(), 12);
    assert!(entries.windows(2).all(|w| w[0] < w[1]), "canonical order");
    let state = s.round_draw_state(&c.id, 1).await.unwrap().unwrap();
    assert_eq!(state.progress, RoundProgress::Frozen);
    assert_eq!(state.frozen_at, Some(after));
    assert_eq!(state.entry_count, Some(12));
    assert_eq!(
        state.entries_root,
        Some(hex::encode(campaign_lottery::domain::draw::entries_root(
            &entries
        )))
    );
    assert_eq!(
        state.prizes,
        vec![("grand".to_owned(), 30), ("standard".to_owned(), 235)]
    );
    assert_eq!(
        refusal(freeze(1, after).await),
        Refusal::AlreadyFrozen { round: 1 }
    );
    assert_eq!(
        refusal(commit(&s, &c, 1, "迟到的见证人").await),
        Refusal::AlreadyFrozen { round: 1 }
    );
    // Tickets are no longer taken for a frozen round.
    common::tickets_in(&s, &c.id, 1, at(16), 100..101).await;
    assert_eq!(
        s.round_sorted_out(&c.id, 1, 1).await.unwrap().entries,
        entries
    );

    // Reveals, then the draw.
    assert_eq!(
        refusal(reveal(&s, &c, 1, "迟到的见证人").await),
        Refusal::NotCommitted {
            round: 1,
            witness: "迟到的见证人".into()
        }
    );
    reveal(&s, &c, 1, WITNESSES[0]).await.unwrap();
    assert_eq!(
        refusal(reveal(&s, &c, 1, WITNESSES[0]).await),
        Refusal::AlreadyRevealed {
            round: 1,
            witness: WITNESSES[0].into()
        }
    );
    assert_eq!(
        refusal(draw("").await),
        Refusal::RevealsMissing {
            round: 1,
            witnesses: vec![WITNESSES[1].into()]
        }
    );
    reveal(&s, &c, 1, WITNESSES[1]).await.unwrap();
    assert_eq!(
        refusal(draw("07 12").await),
        Refusal::UnexpectedBeacon { round: 1 }
    );
    draw("").await.unwrap();
    let state = s.round_draw_state(&c.id, 1).await.unwrap().unwrap();
    assert_eq!(state.progress, RoundProgress::Drawn);
    assert_eq!(state.drawn_at, Some(after));
    assert_eq!(state.beacon.as_deref(), Some(""));
    // The recorded winners are exactly the contract's draw over the frozen entries.
    let secrets: Vec<(String, Vec<u8>)> = WITNESSES
        .iter()
        .map(|w| (w.to_string(), witness_secret(w, 1).to_vec()))
        .collect();
    let expected =
        campaign_lottery::domain::draw::draw(&c.id, 1, &entries, &secrets, "", &state.prizes);
    assert_eq!(state.seed, Some(hex::encode(expected.seed)));
    let winners: Vec<(u32, uuid::Uuid, String)> = state
        .winners
        .iter()
        .map(|w| (w.rank, w.ticket, w.tier.clone()))
        .collect();
    let want: Vec<(u32, uuid::Uuid, String)> = expected
        .winners
        .iter()
        .map(|w| (w.rank, w.ticket, w.tier.clone()))
        .collect();
    assert_eq!(winners, want);
    assert!(state.winners.iter().all(|w| w.phone.starts_with("1380000")));
    // Every winner got the vouchers of the tier: 12 grand prizes, three each.
    assert_eq!(s.all_vouchers(&c.id).await.unwrap().len(), 36);
    assert_eq!(refusal(draw("").await), Refusal::AlreadyDrawn { round: 1 });
    assert_eq!(
        refusal(commit(&s, &c, 1, "迟到的见证人").await),
        Refusal::AlreadyDrawn { round: 1 }
    );
    let actions: Vec<String> = s
        .audit_page(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in [
        "round.commit",
        "round.freeze",
        "round.reveal",
        "round.draw",
        "voucher.issue",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    assert_eq!(
        actions.iter().filter(|a| *a == "round.freeze").count(),
        1,
        "refusals write nothing"
    );
    assert!(verify_audit_log(s.as_ref()).await.unwrap().is_ok());
}

async fn winners_are_not_entered_again_and_unawarded_prizes_roll_over(db: TestDb) {
    let s = synced(&db).await;
    let c = campaign(REAL);
    // Round 1: 10 tickets for 265 prizes; all ten win a grand prize.
    common::tickets_in(&s, &c.id, 1, at(16), 0..10).await;
    common::draw_round(&s, &c, 1, at(22)).await;
    // Round 2: the ten winners and five newcomers hold tickets; only the newcomers are entries.
    let in_round_2 = c.round(2).unwrap().opens_at + Duration::hours(1);
    common::tickets_in(&s, &c.id, 2, in_round_2, 5..15).await;
    assert_eq!(
        s.tickets_per_round(&c.id).await.unwrap(),
        vec![(1, 10), (2, 10)]
    );
    let entries = s
        .round_sorted_out(&c.id, 2, c.win_limit)
        .await
        .unwrap()
        .entries;
    assert_eq!(entries.len(), 5);
    // A win limit of two would let them in again.
    assert_eq!(
        s.round_sorted_out(&c.id, 2, 2).await.unwrap().entries.len(),
        10
    );
    let after = c.round(2).unwrap().closes_at + Duration::hours(1);
    common::draw_round(&s, &c, 2, after).await;
    let state = s.round_draw_state(&c.id, 2).await.unwrap().unwrap();
    assert_eq!(
        state.prizes,
        vec![("grand".to_owned(), 50), ("standard".to_owned(), 470)],
        "20 grand and 235 standard prizes of round 1 roll over"
    );
    assert_eq!(state.winners.len(), 5);
    let round_1: std::collections::HashSet<String> = s
        .round_draw_state(&c.id, 1)
        .await
        .unwrap()
        .unwrap()
        .winners
        .into_iter()
        .map(|w| w.phone)
        .collect();
    assert!(state.winners.iter().all(|w| !round_1.contains(&w.phone)));
}

async fn two_store_instances_freeze_and_draw_a_round_once(db: TestDb) {
    let a = synced(&db).await;
    let b = open(&db).await;
    let c = campaign(REAL);
    common::tickets_in(&a, &c.id, 1, at(16), 0..20).await;
    for w in WITNESSES {
        commit(&a, &c, 1, w).await.unwrap();
    }
    let after = c.round(1).unwrap().closes_at + Duration::hours(1);
    let (x, y) = tokio::join!(
        a.freeze_round(common::freeze_request(&c, 1, ""), "a", after),
        b.freeze_round(common::freeze_request(&c, 1, ""), "b", after)
    );
    let frozen = [&x, &y].iter().filter(|r| r.is_ok()).count();
    assert_eq!(frozen, 1, "{x:?} {y:?}");
    assert!(matches!(
        [x, y].into_iter().find(|r| r.is_err()).unwrap(),
        Err(StoreError::Refused(Refusal::AlreadyFrozen { round: 1 }))
    ));
    for w in WITNESSES {
        reveal(&a, &c, 1, w).await.unwrap();
    }
    let (x, y) = tokio::join!(
        a.draw_round(common::draw_request(&c, 1, ""), "a", after),
        b.draw_round(common::draw_request(&c, 1, ""), "b", after)
    );
    assert_eq!([&x, &y].iter().filter(|r| r.is_ok()).count(), 1);
    assert!(matches!(
        [x, y].into_iter().find(|r| r.is_err()).unwrap(),
        Err(StoreError::Refused(Refusal::AlreadyDrawn { round: 1 }))
    ));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM round_winners").await, 20);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM vouchers").await, 20 * 3);
    assert!(verify_audit_log(a.as_ref()).await.unwrap().is_ok());
}

/// Winners and vouchers are written a thousand rows a statement: a draw of 2 100 winners and
/// 3 360 vouchers crosses those boundaries, and each voucher still goes to its winner.
async fn a_draw_of_thousands_writes_every_winner_and_voucher(db: TestDb) {
    let s = open(&db).await;
    let text = common::one_round_campaign(REAL, "hengyang-2024", 2100);
    let c = campaign(&text);
    assert_eq!(c.winners_per_round(), 2100);
    s.sync_campaign(&c, at(1)).await.unwrap();
    // 100 more tickets than prizes: the campaign's 30 reserves are drawn too.
    common::bulk_tickets(&db, &c.id, 1, 2200, at(16)).await;
    common::draw_round(&s, &c, 1, at(22)).await;
    let state = s.round_draw_state(&c.id, 1).await.unwrap().unwrap();
    assert_eq!(state.winners.len(), 2100);
    let reserve_ranks: Vec<u32> = state.reserves.iter().map(|r| r.rank).collect();
    assert_eq!(reserve_ranks, (2101..=2130).collect::<Vec<_>>());
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM round_reserves r JOIN tickets t ON t.id = r.ticket_id
             WHERE t.participant_id = r.participant_id
               AND r.ticket_id NOT IN (SELECT ticket_id FROM round_winners)"
        )
        .await,
        30,
        "each reserve held by its ticket's holder, none a winner"
    );
    let ranks: Vec<u32> = state.winners.iter().map(|w| w.rank).collect();
    assert_eq!(ranks, (1..=2100).collect::<Vec<_>>());
    assert_eq!(
        state.winners.iter().filter(|w| w.tier == "grand").count(),
        630
    );
    let vouchers = s.all_vouchers(&c.id).await.unwrap();
    assert_eq!(vouchers.len(), 630 * 3 + 1470);
    let codes: std::collections::HashSet<&str> = vouchers.iter().map(|v| v.code.as_str()).collect();
    assert_eq!(codes.len(), vouchers.len(), "every code its own");
    // Each voucher belongs to the participant whose ticket won its rank.
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM vouchers v
             JOIN round_winners w ON w.campaign_id = v.campaign_id AND w.round = v.round
                                 AND w.rank = v.rank
             JOIN tickets t ON t.id = w.ticket_id
             WHERE t.participant_id = v.participant_id AND w.participant_id = v.participant_id"
        )
        .await,
        3360
    );
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM vouchers v JOIN round_winners w
             ON w.campaign_id = v.campaign_id AND w.round = v.round AND w.rank = v.rank
             WHERE w.tier = 'grand'"
        )
        .await,
        630 * 3
    );
}

async fn sessions_find_their_own_attempts_only(db: TestDb) {
    let s = synced(&db).await;
    let me = participant(&s, "13800000001").await;
    let other = participant(&s, "13800000002").await;
    let attempt = |who: uuid::Uuid| NewAttempt {
        id: uuid::Uuid::new_v4(),
        participant_id: who,
        questions: Vec::new(),
        started_at: at(16),
        deadline: at(16) + Duration::minutes(10),
        local_day: NaiveDate::from_ymd_opt(2024, 7, 16).unwrap(),
        network: None,
        device: None,
    };
    let mine = attempt(me.id);
    let theirs = attempt(other.id);
    assert!(s.start_attempt(mine.clone(), 10).await.unwrap());
    assert!(s.start_attempt(theirs.clone(), 10).await.unwrap());
    let key = token_hash("clp_13800000001");
    let (p, a) = s
        .session_attempt(&key, mine.id, at(16))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.id, me.id);
    assert_eq!(a.unwrap().id, mine.id);
    let (_, a) = s
        .session_attempt(&key, theirs.id, at(16))
        .await
        .unwrap()
        .unwrap();
    assert!(a.is_none(), "another's attempt is not found");
    assert!(s
        .session_attempt(&token_hash("clp_nobody"), mine.id, at(16))
        .await
        .unwrap()
        .is_none());
    // After the session expires, nothing.
    assert!(s
        .session_attempt(&key, mine.id, at(16) + Duration::days(365))
        .await
        .unwrap()
        .is_none());
    s.ping().await.unwrap();
}

async fn the_outbox_is_claimed_by_one_sender_and_sent_at_most_once(db: TestDb) {
    use campaign_lottery::domain::sms::{Outcome, Status};
    use campaign_lottery::store::{DeliveryReport, OutboxCounts};
    let s = synced(&db).await;
    let other = open(&db).await;
    let t = at(2);
    let expires = |m: i64| Some(t + Duration::minutes(m));
    for (phone, send_before) in [
        ("13800000001", None),
        ("13800000002", expires(5)),
        ("13800000003", None),
        ("13800000004", None),
    ] {
        let m = campaign_lottery::store::NewSms {
            send_before,
            ..code_sms(phone, format!("code for {phone}"))
        };
        s.enqueue_sms(&m, t).await.unwrap();
    }
    // Two senders at once (two instances) claim different messages, all of them.
    let lease = t + Duration::minutes(3);
    let (a, b) = tokio::join!(s.claim_sms(2, lease, t), other.claim_sms(2, lease, t));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut ids: Vec<i64> = a.iter().chain(&b).map(|m| m.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((a.len(), b.len(), ids.len()), (2, 2, 4), "{a:?} {b:?}");
    let mut claimed: Vec<_> = a.into_iter().chain(b).collect();
    claimed.sort_by_key(|m| m.id);
    let m = &claimed[0];
    assert_eq!((m.status, m.attempts), (Status::Sending, 1));
    assert_eq!(
        (m.template.as_str(), m.params.clone()),
        ("login_code", code_sms("", "").params)
    );
    assert_eq!(claimed[1].send_before, expires(5));
    assert!(
        s.claim_sms(10, lease, t).await.unwrap().is_empty(),
        "nothing left"
    );

    let sent = Outcome::Sent {
        gateway_id: "gw-1".into(),
    };
    assert!(s.record_sms_outcome(claimed[0].id, &sent, t).await.unwrap());
    assert!(
        !s.record_sms_outcome(claimed[0].id, &sent, t).await.unwrap(),
        "recorded once"
    );
    let retry = Outcome::Retry {
        reason: "Throttling.User".into(),
        at: t + Duration::minutes(1),
    };
    assert!(s
        .record_sms_outcome(claimed[1].id, &retry, t)
        .await
        .unwrap());
    let refused = Outcome::Failed {
        reason: "isv.MOBILE_NUMBER_ILLEGAL".into(),
    };
    assert!(s
        .record_sms_outcome(claimed[2].id, &refused, t)
        .await
        .unwrap());
    // claimed[3] stays in its sender's hands: the sender stopped mid-way.

    // The retry is due after its wait, not before; a second try counts.
    let soon = t + Duration::seconds(30);
    assert!(s
        .claim_sms(10, soon + Duration::minutes(3), soon)
        .await
        .unwrap()
        .is_empty());
    let later = t + Duration::minutes(2);
    let again = s
        .claim_sms(10, later + Duration::minutes(3), later)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (claimed[1].id, 2));
    assert_eq!(again[0].failure.as_deref(), Some("Throttling.User"));
    assert!(s
        .record_sms_outcome(again[0].id, &retry, later)
        .await
        .unwrap());

    // Past its lease, the abandoned one fails as perhaps sent (never sent again); past its
    // send_before, the retried one expires.
    let after = t + Duration::minutes(10);
    assert!(s.claim_sms(10, after, after).await.unwrap().is_empty());
    assert!(s.pending_sms(10).await.unwrap().is_empty());
    let recent = s.recent_sms(10).await.unwrap();
    let by_id = |id: i64| recent.iter().find(|m| m.id == id).unwrap();
    assert_eq!(by_id(claimed[1].id).failure.as_deref(), Some("expired"));
    assert!(by_id(claimed[3].id)
        .failure
        .as_deref()
        .unwrap()
        .starts_with("outcome_unknown"));
    assert_eq!(by_id(claimed[3].id).status, Status::Failed);
    let sent_one = by_id(claimed[0].id);
    assert_eq!(
        (
            sent_one.status,
            sent_one.gateway_id.as_deref(),
            sent_one.sent_at
        ),
        (Status::Sent, Some("gw-1"), Some(t))
    );
    // The late word of the sender whose lease ran out changes nothing.
    assert!(!s
        .record_sms_outcome(claimed[3].id, &sent, after)
        .await
        .unwrap());

    // Delivery reports: known and sent only, once.
    let report = |id: &str, delivered: bool| DeliveryReport {
        gateway_id: id.into(),
        delivered,
        reason: (!delivered).then(|| "MK:0001".to_owned()),
        at: after,
    };
    let reports = [report("gw-1", true), report("gw-unknown", true)];
    assert_eq!(s.record_deliveries(&reports).await.unwrap(), 1);
    assert_eq!(s.record_deliveries(&reports).await.unwrap(), 0);
    s.enqueue_sms(&code_sms("13800000005", "code"), after)
        .await
        .unwrap();
    let fifth = s
        .claim_sms(1, after + Duration::minutes(3), after)
        .await
        .unwrap();
    let gw2 = Outcome::Sent {
        gateway_id: "gw-2".into(),
    };
    assert!(s
        .record_sms_outcome(fifth[0].id, &gw2, after)
        .await
        .unwrap());
    assert_eq!(
        s.record_deliveries(&[report("gw-2", false)]).await.unwrap(),
        1
    );
    let recent = s.recent_sms(1).await.unwrap();
    assert_eq!(recent[0].failure.as_deref(), Some("undelivered: MK:0001"));
    assert_eq!(
        s.outbox_counts(at(1)).await.unwrap(),
        OutboxCounts {
            queued: 0,
            sending: 0,
            sent: 0,
            delivered: 1,
            failed: 4,
        }
    );
    assert_eq!(
        s.recent_sms(10).await.unwrap()[4].delivered_at,
        Some(after),
        "the first, delivered"
    );
}

async fn the_review_sees_networks_devices_and_times_and_exclusions_sort_tickets_out(db: TestDb) {
    use campaign_lottery::domain::exclusion::Reason;
    use campaign_lottery::store::Exclusion;
    use common::{tickets_from, Attempted};
    let s = synced(&db).await;
    let c = campaign(REAL);
    let t = c.rounds[0].opens_at + Duration::hours(1);
    let phones = |range: std::ops::Range<u32>| -> Vec<String> {
        range.map(|i| format!("1390000{i:04}")).collect()
    };
    // Three from one browser on one network, quickly; two elsewhere, slowly; one unknown.
    let fast = Attempted {
        network: Some("10.1.2.0/24"),
        device: Some("dev-a"),
        questions: 10,
        seconds: 20,
    };
    tickets_from(&s, &c.id, 1, t, &phones(0..3), &fast).await;
    let slow = Attempted {
        network: Some("10.9.9.0/24"),
        device: Some("dev-b"),
        questions: 10,
        seconds: 300,
    };
    tickets_from(&s, &c.id, 1, t, &phones(3..5), &slow).await;
    tickets_from(&s, &c.id, 1, t, &phones(5..6), &Attempted::default()).await;
    let review = s.round_review(&c.id, 1).await.unwrap();
    assert_eq!(review.len(), 6);
    let by_phone = |p: &str| review.iter().find(|f| f.phone == p).unwrap().clone();
    let f = by_phone("13900000000");
    assert_eq!((f.same_network, f.same_device, f.questions), (3, 3, 10));
    assert_eq!((f.submitted_at - f.started_at).num_seconds(), 20);
    assert_eq!(f.network.as_deref(), Some("10.1.2.0/24"));
    let f = by_phone("13900000004");
    assert_eq!((f.same_network, f.same_device), (2, 2));
    let f = by_phone("13900000005");
    assert_eq!(
        (f.same_network, f.same_device, f.network),
        (1, 1, None),
        "unknown is alone"
    );

    // Exclusions: whole or nothing, once, before the freeze; restorations likewise.
    let sorted = s.round_sorted_out(&c.id, 1, c.win_limit).await.unwrap();
    assert_eq!((sorted.entries.len(), sorted.exclusions.len()), (6, 0));
    let ticket_of = |p: &str| by_phone(p).ticket;
    let (a, b) = (ticket_of("13900000000"), ticket_of("13900000001"));
    let x = |tickets: Vec<uuid::Uuid>, reason| Exclusion {
        campaign_id: c.id.clone(),
        round: 1,
        tickets,
        reason,
        note: "同一设备".into(),
    };
    let stranger = uuid::Uuid::new_v4();
    let e = s
        .exclude_tickets(&x(vec![a, stranger], Reason::SharedDevice), "op", t)
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Refused(Refusal::NotATicket { .. })),
        "{e:?}"
    );
    assert_eq!(
        s.round_sorted_out(&c.id, 1, c.win_limit)
            .await
            .unwrap()
            .exclusions,
        vec![],
        "nothing of a refused request"
    );
    let done = s
        .exclude_tickets(&x(vec![a, b], Reason::SharedDevice), "op", t)
        .await
        .unwrap();
    assert_eq!(done, vec![a, b]);
    let again = s
        .exclude_tickets(&x(vec![a], Reason::Staff), "op", t)
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(by_phone("13900000000").excluded, None, "the earlier read");
    let review = s.round_review(&c.id, 1).await.unwrap();
    assert_eq!(
        review.iter().find(|f| f.ticket == a).unwrap().excluded,
        Some(Reason::SharedDevice)
    );
    assert_eq!(
        s.restore_tickets(&c.id, 1, &[b, stranger], "op", t)
            .await
            .unwrap(),
        vec![b]
    );
    let sorted = s.round_sorted_out(&c.id, 1, c.win_limit).await.unwrap();
    assert_eq!(sorted.exclusions, vec![(a, Reason::SharedDevice)]);
    assert_eq!(sorted.entries.len(), 5);
    let log = s.audit_page(0, 100).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions.iter().filter(|a| a.starts_with("ticket.")).count(),
        3,
        "{actions:?}"
    );
}

/// DESIGN §4d: a drawn round's record is kept once with its signature; a second keep (another
/// instance's) gets the first one's back; a round not drawn keeps nothing; a record kept before
/// signatures is signed once. Signing keys: one active, made once, rotated with the old one kept.
async fn a_drawn_rounds_record_is_kept_once_byte_for_byte(db: TestDb) {
    use store::{KeptRecord, RecordSignature, SigningKeyRecord};
    let (s, c) = drawn(&db).await;
    assert_eq!(s.kept_record(&c.id, 1).await.unwrap(), None);
    let sig = |n: &str| RecordSignature {
        key_id: format!("ed25519:{n}"),
        signature: format!("sig-{n}"),
    };
    let first = KeptRecord {
        json: r#"{"round":1, "note":"中文 and spacing kept"}"#.into(),
        signature: Some(sig("a")),
    };
    assert_eq!(s.keep_record(&c.id, 1, &first).await.unwrap(), first);
    let other = KeptRecord {
        json: r#"{"round":1}"#.into(),
        signature: Some(sig("b")),
    };
    assert_eq!(s.keep_record(&c.id, 1, &other).await.unwrap(), first);
    assert_eq!(s.kept_record(&c.id, 1).await.unwrap(), Some(first.clone()));
    // Signed already: a later signature does not replace it.
    assert_eq!(
        s.sign_kept_record(&c.id, 1, &sig("c")).await.unwrap(),
        first
    );
    assert!(s.keep_record(&c.id, 2, &other).await.is_err());
    assert_eq!(s.kept_record(&c.id, 2).await.unwrap(), None);
    // A record kept before signatures gets one, once.
    db.execute("UPDATE rounds SET record_key_id = NULL, record_signature = NULL WHERE number = 1")
        .await;
    let unsigned = s.kept_record(&c.id, 1).await.unwrap().unwrap();
    assert_eq!(unsigned.signature, None);
    assert_eq!(
        s.sign_kept_record(&c.id, 1, &sig("d"))
            .await
            .unwrap()
            .signature,
        Some(sig("d"))
    );
    assert_eq!(
        s.sign_kept_record(&c.id, 1, &sig("e"))
            .await
            .unwrap()
            .signature,
        Some(sig("d"))
    );
    // Two instances keeping at once: one record.
    let b = open(&db).await;
    let (x, y) = tokio::join!(s.kept_record(&c.id, 1), b.keep_record(&c.id, 1, &other));
    assert_eq!(x.unwrap().unwrap().json, first.json);
    assert_eq!(y.unwrap().json, first.json);

    // Keys: the first asked for becomes the active one, for every instance.
    let key = |id: &str| SigningKeyRecord {
        id: id.into(),
        public_key: format!("{id}-public"),
        secret_key: format!("{id}-secret"),
        created_at: at(20),
        retired_at: None,
    };
    let (first_key, second_key) = (key("k1"), key("k2"));
    let (k1, k2) = tokio::join!(
        s.active_signing_key(&first_key),
        b.active_signing_key(&second_key)
    );
    let (k1, k2) = (k1.unwrap(), k2.unwrap());
    assert_eq!(k1.id, k2.id);
    assert_eq!(k1.secret_key, format!("{}-secret", k1.id));
    let rotated = s
        .rotate_signing_key(&key("k3"), "operator", at(21))
        .await
        .unwrap();
    assert_eq!(rotated.as_deref(), Some(k1.id.as_str()));
    assert_eq!(s.active_signing_key(&key("k4")).await.unwrap().id, "k3");
    let published = s.public_keys().await.unwrap();
    assert_eq!(
        published
            .iter()
            .map(|k| (k.id.as_str(), k.retired_at))
            .collect::<Vec<_>>(),
        [(k1.id.as_str(), Some(at(21))), ("k3", None)]
    );
    assert!(
        published.iter().all(|k| k.secret_key.is_empty()),
        "no secret half published"
    );
    let log = s.audit_page(0, 1000).await.unwrap();
    assert!(log
        .iter()
        .any(|e| e.action == "keys.rotate" && e.subject == "key:k3"));
}
