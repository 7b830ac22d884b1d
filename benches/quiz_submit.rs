//! Quiz submissions per second and their latency, with 64 concurrent clients on loopback, beside
//! the raw rate of the same writes issued straight to the database through the store.
//!
//! `cargo bench --bench quiz_submit` (SQLite, and PostgreSQL at TEST_DATABASE_URL when it
//! answers). Options after `--`: `--submissions N` (default 4000), `--clients N` (default 64),
//! `--seconds N` for the wrk run (default 6).
//!
//! The HTTP load comes from `wrk` (Debian: `apt-get install wrk`) in its own process, with
//! `benches/replay.lua`, so that the load generator costs as little CPU as possible on this
//! two-core machine; without wrk an in-process reqwest client stands in (and says so).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use campaign_lottery::domain::quiz::{draw_questions, QuestionBank, KEYS};
use campaign_lottery::store::{NewAttempt, SharedStore, Submission, SubmitOutcome};
use chrono::Duration;
use common::{demo_now, repo_config_dir, Backend, TestApp, TestDb};
use serde_json::{json, Value};
use std::sync::Arc;
use support::arg;

struct Prepared {
    token: String,
    attempt: uuid::Uuid,
    participant: uuid::Uuid,
    body: Value,
}

/// Participants with one unanswered attempt each, and the perfect answers to it: started through
/// the API at `base` when given, else written straight to the store.
async fn prepare(
    store: &SharedStore,
    bank: &QuestionBank,
    n: usize,
    tag: &str,
    base: Option<&str>,
) -> Vec<Prepared> {
    let client = reqwest::Client::new();
    let mut rng = campaign_lottery::csprng::rng().unwrap();
    let now = demo_now();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let token = format!("clp_bench_{tag}_{i}");
        let phone = format!("1{}{:09}", if tag == "http" { 3 } else { 5 }, i);
        let p = common::prove_phone(store, &phone, &token, now).await;
        let (attempt, body) = match base {
            // As participants do: start the attempt through the API (on the process that will
            // take the submission), read the questions as shown, answer them right.
            Some(base) => {
                let shown: Value = client
                    .post(format!("{base}/api/quiz/attempts"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let answers: Vec<Value> = shown["questions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|q| {
                        let id = q["id"].as_str().unwrap();
                        let question = bank.get(id).unwrap();
                        let keys: Vec<&str> = q["options"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter(|o| {
                                let text = o["text"].as_str().unwrap();
                                question
                                    .correct
                                    .iter()
                                    .any(|&i| question.options[i] == text)
                            })
                            .map(|o| o["key"].as_str().unwrap())
                            .collect();
                        json!({"question": id, "choices": keys})
                    })
                    .collect();
                let id = uuid::Uuid::parse_str(shown["id"].as_str().unwrap()).unwrap();
                (id, json!({ "answers": answers }))
            }
            None => {
                let questions = draw_questions(bank, 10, &mut rng);
                let answers: Vec<Value> = questions
                    .iter()
                    .map(|aq| {
                        let q = bank.get(&aq.question).unwrap();
                        let keys: Vec<&str> = (0..aq.order.len())
                            .filter(|&k| q.correct.contains(&aq.order[k]))
                            .map(|k| KEYS[k])
                            .collect();
                        json!({"question": aq.question, "choices": keys})
                    })
                    .collect();
                let attempt = uuid::Uuid::new_v4();
                store
                    .start_attempt(
                        NewAttempt {
                            id: attempt,
                            participant_id: p.id,
                            questions,
                            started_at: now,
                            deadline: now + Duration::minutes(10),
                            local_day: now.date_naive(),
                            network: None,
                            device: None,
                        },
                        10,
                    )
                    .await
                    .unwrap();
                (attempt, json!({ "answers": answers }))
            }
        };
        out.push(Prepared {
            token,
            attempt,
            participant: p.id,
            body,
        });
    }
    out
}

async fn bench(backend: Backend, n: usize, clients: usize, seconds: usize) {
    // Enough prepared attempts for wrk's whole run at a generous rate.
    let prepared_for_wrk = n.max(seconds * 7000);
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let bank = QuestionBank::parse(
        &std::fs::read_to_string(repo_config_dir().join("questions.toml")).unwrap(),
    )
    .unwrap();
    let mut loaded = common::settings(&db.url, &repo_config_dir(), "campaign-demo.toml");
    loaded.settings.server.workers = 2;
    loaded.settings.database.max_connections = 16; // as in config/default.toml
    let app = TestApp::spawn_with(db, &loaded, demo_now()).await;
    let store = app.store.clone();

    // Through HTTP: the session and attempt look-up, scoring, the submission write.
    let http = Arc::new(prepare(&store, &bank, prepared_for_wrk, "http", Some(&app.address)).await);
    let base = app.address.clone();
    let requests: Vec<support::Request> = http
        .iter()
        .map(|p| support::Request {
            path: format!("/api/quiz/attempts/{}/submit", p.attempt),
            token: p.token.clone(),
            key: None,
            body: p.body.to_string(),
        })
        .collect();
    let (through_http, client_kind) = match support::run_wrk(&base, &requests, clients, seconds) {
        Some(f) => (f, "wrk"),
        None => {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(clients)
                .build()
                .unwrap();
            let http = http.clone();
            let f = support::closed_loop(n, clients, move |i| {
                let (client, p, base) = (client.clone(), http.clone(), base.clone());
                async move {
                    let p = &p[i];
                    let res = client
                        .post(format!("{base}/api/quiz/attempts/{}/submit", p.attempt))
                        .bearer_auth(&p.token)
                        .json(&p.body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                    res.bytes().await.unwrap();
                }
            })
            .await;
            (f, "in-process reqwest (wrk not installed)")
        }
    };

    // Straight to the database: the same submission transaction, no HTTP and no reads.
    let raw = Arc::new(prepare(&store, &bank, n, "raw", None).await);
    let straight = {
        let store = store.clone();
        let raw = raw.clone();
        let campaign = app_campaign_id(&store).await;
        support::closed_loop(n, clients, move |i| {
            let (store, raw, campaign) = (store.clone(), raw.clone(), campaign.clone());
            async move {
                let p = &raw[i];
                let outcome = store
                    .submit_attempt(Submission {
                        attempt_id: p.attempt,
                        participant_id: p.participant,
                        score: 10,
                        passed: true,
                        result: p.body["answers"].to_string(),
                        at: demo_now(),
                        due_after: demo_now(),
                        ticket_round: Some((campaign, 1)),
                        session: None,
                    })
                    .await
                    .unwrap();
                assert!(matches!(outcome, SubmitOutcome::Recorded(_)));
            }
        })
        .await
    };
    let tickets = app.db.scalar("SELECT COUNT(*) FROM tickets").await;
    let submitted = app
        .db
        .scalar("SELECT COUNT(*) FROM quiz_attempts WHERE submitted_at IS NOT NULL")
        .await;
    assert_eq!(tickets, submitted, "every submission holds its ticket");

    println!("{backend:?}: HTTP load from {client_kind}");
    println!(
        "{:<9} HTTP {:>7.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms | straight to the database {:>7.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms | HTTP/raw {:>4.0} %",
        format!("{backend:?}"),
        through_http.rate,
        through_http.p50_ms,
        through_http.p99_ms,
        straight.rate,
        straight.p50_ms,
        straight.p99_ms,
        100.0 * through_http.rate / straight.rate
    );
}

async fn app_campaign_id(store: &SharedStore) -> String {
    store.recorded_campaign().await.unwrap().unwrap().id
}

fn main() {
    let n = arg("--submissions", 4000);
    let clients = arg("--clients", 64);
    let seconds = arg("--seconds", 6);
    // The load generator gets its own threads so that it does not starve the service's workers.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("quiz submissions: {n} per run, {clients} concurrent clients, loopback");
        bench(Backend::Sqlite, n, clients, seconds).await;
        bench(Backend::Postgres, n, clients, seconds).await;
    });
}
