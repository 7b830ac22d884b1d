//! Sign-ups per second through HTTP, step by step as /join makes them — a challenge, the code
//! request paid for by its solution (the service checks the proof of work, the caps and the
//! budget, writes the code and its SMS), the login with the code and consent that creates the
//! participant — beside the raw rate of the same two writes issued straight to the store.
//!
//! `cargo bench --bench signup` (SQLite, and PostgreSQL at TEST_DATABASE_URL when it answers).
//! Options after `--`: `--signups N` (default 400), `--clients N` (default 16), `--cost N` (the
//! proof of work's iterations; default the shipped `login.challenge_cost`). The solutions are
//! computed beforehand, off the clock: what is measured is the service's side. The load comes
//! from an in-process reqwest client, which shares the two cores with the service.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use campaign_lottery::config::LoginSettings;
use campaign_lottery::domain::throttle::LoginLimits;
use campaign_lottery::domain::token::{login_code_hash, token_hash};
use campaign_lottery::store::{LoginCode, LoginOutcome, NewSession, Newcomer};
use common::{demo_now, repo_config_dir, Backend, TestApp, TestDb};
use std::sync::Arc;
use std::time::Instant;
use support::{arg, closed_loop, Figures};

/// [`closed_loop`], with the seconds it took.
async fn timed<F, Fut>(n: usize, clients: usize, work: F) -> (Figures, f64)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = closed_loop(n, clients, work).await;
    let elapsed = n as f64 / f.rate;
    (f, elapsed)
}

fn line(step: &str, f: &Figures) {
    println!(
        "  {step:<34} {:>7.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        f.rate, f.p50_ms, f.p99_ms
    );
}

async fn bench(backend: Backend, n: usize, clients: usize, cost: u32) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut loaded = common::settings(&db.url, &repo_config_dir(), "campaign-demo.toml");
    loaded.settings.server.workers = 2;
    loaded.settings.database.max_connections = 16;
    loaded.settings.login.challenge_cost = cost;
    // The budget and the per-address caps are what they are for a campaign; here every sign-up
    // comes from one address within the hour.
    loaded.settings.login.campaign_sms_per_hour = 1_000_000;
    let app = TestApp::spawn_with(db, &loaded, demo_now()).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let base = app.address.clone();
    let phones: Arc<Vec<String>> = Arc::new((0..n).map(|i| format!("135{i:08}")).collect());

    // 1. Challenges.
    let challenges = Arc::new(std::sync::Mutex::new(vec![None; n]));
    let (challenge, t1) = {
        let (client, base, phones, out) = (
            client.clone(),
            base.clone(),
            phones.clone(),
            challenges.clone(),
        );
        timed(n, clients, move |i| {
            let (client, base, phones, out) =
                (client.clone(), base.clone(), phones.clone(), out.clone());
            async move {
                let res = client
                    .post(format!("{base}/api/login/challenge"))
                    .json(&serde_json::json!({"phone": phones[i]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                let c: altcha::Challenge = res.json().await.unwrap();
                out.lock().unwrap()[i] = Some(c);
            }
        })
        .await
    };
    // Solved off the clock, on both cores.
    let solving = Instant::now();
    let all: Vec<altcha::Challenge> = challenges
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.clone().unwrap())
        .collect();
    let halves: Vec<Vec<(usize, altcha::Challenge)>> = {
        let mut h = vec![Vec::new(), Vec::new()];
        for (i, c) in all.into_iter().enumerate() {
            h[i % 2].push((i, c));
        }
        h
    };
    let mut solutions = vec![String::new(); n];
    let tasks: Vec<_> = halves
        .into_iter()
        .map(|half| {
            tokio::task::spawn_blocking(move || {
                half.into_iter()
                    .map(|(i, c)| (i, campaign_lottery::app::challenge::solve(&c).unwrap()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in tasks {
        for (i, s) in t.await.unwrap() {
            solutions[i] = s;
        }
    }
    let solved_in = solving.elapsed().as_secs_f64();
    let solutions = Arc::new(solutions);

    // 2. Code requests, each paid for by its solution.
    let (code, t2) = {
        let (client, base, phones, solutions) = (
            client.clone(),
            base.clone(),
            phones.clone(),
            solutions.clone(),
        );
        timed(n, clients, move |i| {
            let (client, base, phones, solutions) = (
                client.clone(),
                base.clone(),
                phones.clone(),
                solutions.clone(),
            );
            async move {
                let res = client
                    .post(format!("{base}/api/login/code"))
                    .json(&serde_json::json!({"phone": phones[i], "altcha": solutions[i]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
            }
        })
        .await
    };

    // The codes, as the phones received them (off the clock).
    let codes: std::collections::HashMap<String, String> = app
        .store
        .pending_sms(n as u32 + 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.phone, m.params[0].1.clone()))
        .collect();
    assert_eq!(codes.len(), n, "one SMS per sign-up");
    let codes = Arc::new(codes);

    // 3. Registrations: the code, with consent.
    let (registration, t3) = {
        let (client, base, phones, codes) =
            (client.clone(), base.clone(), phones.clone(), codes.clone());
        timed(n, clients, move |i| {
            let (client, base, phones, codes) =
                (client.clone(), base.clone(), phones.clone(), codes.clone());
            async move {
                let phone = &phones[i];
                let res = client
                    .post(format!("{base}/api/login"))
                    .json(
                        &serde_json::json!({"phone": phone, "code": codes[phone], "consent": true}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
                res.bytes().await.unwrap();
            }
        })
        .await
    };
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM participants").await,
        n as i64
    );

    // The same two writes straight to the store: no HTTP, no proof of work, no hashing of a
    // session token on the way in.
    let store = app.store.clone();
    let now = demo_now();
    let (raw, raw_elapsed) = timed(n, clients, move |i| {
        let store = store.clone();
        async move {
            let phone = format!("136{i:08}");
            let limits = LoginLimits {
                address_per_hour: 1_000_000,
                address_per_day: 1_000_000,
                sms_per_hour: 1_000_000,
                ..LoginLimits::default()
            };
            store
                .issue_login_code(
                    LoginCode {
                        phone: phone.clone(),
                        code_hash: login_code_hash(&phone, "123456"),
                        requested_from: "127.0.0.1".into(),
                        expires_at: now + chrono::Duration::minutes(5),
                        sms: common::code_sms(&phone, "code"),
                        challenge: common::unspent_challenge(),
                    },
                    &limits,
                    now,
                )
                .await
                .unwrap();
            let outcome = store
                .verify_login_code(
                    &phone,
                    &login_code_hash(&phone, "123456"),
                    NewSession {
                        token_hash: token_hash(&format!("clp_raw_{phone}")),
                        expires_at: now + chrono::Duration::days(30),
                    },
                    Some(Newcomer { display_name: None }),
                    &limits,
                    now,
                )
                .await
                .unwrap();
            assert!(matches!(
                outcome,
                LoginOutcome::LoggedIn {
                    registered: true,
                    ..
                }
            ));
        }
    })
    .await;

    println!("{backend:?}: {n} sign-ups, {clients} clients, proof of work at {cost} iterations a try (solved beforehand in {solved_in:.1} s on 2 cores)");
    line("1 challenge (POST /api/login/challenge)", &challenge);
    line("2 code (POST /api/login/code)", &code);
    line("3 registration (POST /api/login)", &registration);
    println!(
        "  {:<34} {:>7.0}/s  (the three steps' time together)",
        "sign-ups through HTTP",
        n as f64 / (t1 + t2 + t3)
    );
    line("straight to the store (code + login)", &raw);
    println!(
        "  HTTP / raw: {:.0} %  (raw {raw_elapsed:.2} s)",
        100.0 * (n as f64 / (t1 + t2 + t3)) / raw.rate
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = arg("--signups", 400) as usize;
    let clients = arg("--clients", 16) as usize;
    let cost = arg("--cost", u64::from(LoginSettings::default().challenge_cost)) as u32;
    bench(Backend::Sqlite, n, clients, cost).await;
    bench(Backend::Postgres, n, clients, cost).await;
}
