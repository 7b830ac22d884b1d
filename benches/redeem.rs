//! Redemptions per second and their latency with 64 concurrent venue clients on loopback, on
//! SQLite and on PostgreSQL, and a check that nothing was redeemed twice.
//!
//! `cargo bench --bench redeem` (PostgreSQL at TEST_DATABASE_URL when it answers). Options after
//! `--`: `--clients N` (default 64), `--seconds N` (default 6), `--winners N` (default 10000),
//! `--rates 64,256` (the paced runs' redemptions per second, all desks together).
//!
//! Two runs per backend: **saturating** (each client sends its next request as soon as the last
//! is answered, as fast as the service can go) and **paced** (each desk redeems at a fixed rate,
//! the way front desks do, and latency counts from when each request was due).
//!
//! The load comes from `wrk` (Debian: `apt-get install wrk`) in its own process with
//! `benches/replay.lua`; without wrk an in-process reqwest client stands in (and says so).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use campaign_lottery::domain::voucher::VoucherCode;
use chrono::Duration;
use common::{demo_now, repo_config_dir, Backend, TestApp, TestDb};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use support::{percentile, Figures};

const CAMPAIGN: &str = "bench";

/// The demo campaign with one round of `winners` prizes, 30 % of them grand (a tourism card, a
/// hotel night and a dining coupon), the rest a tourism card.
fn campaign_file(dir: &std::path::Path, winners: u32) -> String {
    let grand = winners * 3 / 10;
    let standard = winners - grand;
    let text = std::fs::read_to_string(repo_config_dir().join("campaign-demo.toml"))
        .unwrap()
        .replace("id = \"demo\"", &format!("id = \"{CAMPAIGN}\""))
        .replace("rounds = 12", "rounds = 1")
        .replace("winners = 3180", &format!("winners = {winners}"))
        .replace(
            "vouchers = { tourism_card = 3180, hotel_night = 360, dining_coupon = 360 }",
            &format!(
                "vouchers = {{ tourism_card = {winners}, hotel_night = {grand}, dining_coupon = {grand} }}"
            ),
        )
        .replace("count = 30\n", &format!("count = {grand}\n"))
        .replace("count = 235\n", &format!("count = {standard}\n"));
    std::fs::write(dir.join("campaign-bench.toml"), text).unwrap();
    "campaign-bench.toml".into()
}

/// n participants with a ticket each in round 1, inserted in bulk.
async fn bulk_tickets(db: &TestDb, n: u32) {
    let at = demo_now().to_rfc3339();
    match db.backend {
        Backend::Sqlite => {
            for sql in [
                "INSERT INTO participants (id, phone, display_name, consented_at, created_at)
                 SELECT printf('00000000-0000-4000-8000-%012x', i), printf('1%010d', i), NULL, '{at}', '{at}' FROM n",
                "INSERT INTO quiz_attempts (id, participant_id, questions, started_at, deadline, local_day)
                 SELECT printf('00000000-0000-4000-9000-%012x', i), printf('00000000-0000-4000-8000-%012x', i),
                        '[]', '{at}', '{at}', '2026-11-26' FROM n",
                "INSERT INTO tickets (id, campaign_id, round, participant_id, attempt_id, created_at)
                 SELECT printf('00000000-0000-4000-a000-%012x', i), '{CAMPAIGN}', 1,
                        printf('00000000-0000-4000-8000-%012x', i), printf('00000000-0000-4000-9000-%012x', i), '{at}' FROM n",
            ] {
                db.execute(&format!(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) {}",
                    sql.replace("{at}", &at).replace("{CAMPAIGN}", CAMPAIGN)
                ))
                .await;
            }
        }
        Backend::Postgres => {
            let p = "('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid";
            let a = "('00000000-0000-4000-9000-' || lpad(to_hex(i), 12, '0'))::uuid";
            let at = format!("'{at}'::timestamptz");
            db.execute(&format!(
                "INSERT INTO participants (id, phone, display_name, consented_at, created_at)
                 SELECT {p}, '1' || lpad(i::text, 10, '0'), NULL, {at}, {at} FROM generate_series(1, {n}) i"
            ))
            .await;
            db.execute(&format!(
                "INSERT INTO quiz_attempts (id, participant_id, questions, started_at, deadline, local_day)
                 SELECT {a}, {p}, '[]', {at}, {at}, '2026-11-26' FROM generate_series(1, {n}) i"
            ))
            .await;
            db.execute(&format!(
                "INSERT INTO tickets (id, campaign_id, round, participant_id, attempt_id, created_at)
                 SELECT gen_random_uuid(), '{CAMPAIGN}', 1, {p}, {a}, {at} FROM generate_series(1, {n}) i"
            ))
            .await;
            db.execute("ANALYZE").await;
        }
    }
}

struct Line {
    token: String,
    key: String,
    body: String,
}

async fn bench(backend: Backend, winners: u32, clients: usize, seconds: usize, rates: &[f64]) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = campaign_file(dir.path(), winners);
    let mut loaded = common::settings(&db.url, dir.path(), &file);
    loaded.settings.server.workers = 2;
    loaded.settings.database.max_connections = 16; // as in config/default.toml
    let app = TestApp::spawn_with(db, &loaded, demo_now()).await;
    bulk_tickets(&app.db, winners).await;
    let after = demo_now() + Duration::days(7) + Duration::minutes(1);
    app.clock.set(after);
    let t = Instant::now();
    common::draw_round(&app.store, &app.campaign, 1, after).await;
    let vouchers = app.store.all_vouchers(CAMPAIGN).await.unwrap();
    println!(
        "{backend:?}: {} winners drawn with {} vouchers in {:.1} s",
        winners,
        vouchers.len(),
        t.elapsed().as_secs_f64()
    );

    // 64 venue clients: eight desks (tokens) at each of the eight venues.
    let mut desks: std::collections::HashMap<String, Vec<String>> = Default::default();
    for venue in app.campaign.venues.clone() {
        for _ in 0..(clients / app.campaign.venues.len()).max(1) {
            let token = app.venue_token(&venue.id).await;
            desks.entry(venue.id.clone()).or_default().push(token);
        }
    }
    let of_category = |c: campaign_lottery::domain::campaign::Category| -> Vec<String> {
        app.campaign
            .venues
            .iter()
            .filter(|v| v.category == c)
            .map(|v| v.id.clone())
            .collect()
    };
    let scenic = of_category(campaign_lottery::domain::campaign::Category::Scenic);
    // Every possible redemption once: each tourism card at every scenic spot (in three passes, so
    // that one card's visits are far apart), each hotel night and dining coupon at one venue.
    let mut lines: Vec<Line> = Vec::new();
    let mut push = |v: &campaign_lottery::store::VoucherRecord, venue: &str, n: usize| {
        let tokens = &desks[venue];
        lines.push(Line {
            token: tokens[n % tokens.len()].clone(),
            key: format!("bench-{}", lines.len()),
            body: serde_json::json!({
                "code": VoucherCode::parse(&v.code).unwrap().to_string(),
                "holder_digits": &v.holder_phone[7..],
            })
            .to_string(),
        });
    };
    for pass in 0..scenic.len() {
        for (i, v) in vouchers.iter().enumerate() {
            let kind = app.campaign.voucher_kind(&v.kind).unwrap();
            let venues = of_category(kind.category);
            if v.kind == "tourism_card" {
                push(v, &scenic[(i + pass) % scenic.len()], i);
            } else if pass == 0 {
                push(v, &venues[i % venues.len()], i);
            }
        }
    }
    // The paced run takes its redemptions from the end of the list, the saturating one from the
    // start; they never meet.
    let paced_lines = lines.split_off(lines.len() / 2);
    let requests: Vec<support::Request> = lines
        .iter()
        .map(|l| support::Request {
            path: "/api/venue/redeem".into(),
            token: l.token.clone(),
            key: Some(l.key.clone()),
            body: l.body.clone(),
        })
        .collect();
    let (figures, load) = match support::run_wrk(&app.address, &requests, clients, seconds) {
        Some(f) => (f, "wrk"),
        None => (
            run_reqwest(&app, &lines, clients).await,
            "in-process reqwest (wrk not installed)",
        ),
    };
    // Let the requests still in flight when wrk stopped finish before counting.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let saturated = app.db.scalar("SELECT COUNT(*) FROM redemptions").await as usize;
    let mut paced = Vec::new();
    let mut rest: &[Line] = &paced_lines;
    for &rate in rates {
        let before = app.db.scalar("SELECT COUNT(*) FROM redemptions").await as usize;
        let f = run_paced(&app, rest, clients, rate, seconds).await;
        rest = &rest[f.requests..];
        let after = app.db.scalar("SELECT COUNT(*) FROM redemptions").await as usize;
        assert_eq!(
            after - before,
            f.requests,
            "every paced 200 is one redemption"
        );
        paced.push((rate, f));
    }
    let redeemed = app.db.scalar("SELECT COUNT(*) FROM redemptions").await as usize;
    let doubled = app
        .db
        .scalar(
            "SELECT COUNT(*) FROM (SELECT entitlement, slot FROM redemptions WHERE reversal_id IS NULL
             GROUP BY entitlement, slot HAVING COUNT(*) > 1) d",
        )
        .await;
    assert_eq!(doubled, 0, "no voucher slot redeemed twice");
    // wrk counts the answers it read before its time ran out; up to one request per connection was
    // still in flight then, and the service finished it.
    assert!(
        (figures.requests..=figures.requests + clients).contains(&saturated),
        "every 200 is one redemption: {saturated} redeemed, {} answered",
        figures.requests
    );
    println!("{backend:?}: load from {load}");
    println!(
        "{:<9} saturating: {:>6.0} redemptions/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        format!("{backend:?}"),
        figures.rate,
        figures.p50_ms,
        figures.p99_ms,
    );
    for (rate, f) in &paced {
        println!(
            "{:<9} paced at {:>4.0}/s: {:>6.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
            format!("{backend:?}"),
            rate,
            f.rate,
            f.p50_ms,
            f.p99_ms
        );
    }
    println!("{backend:?}: {redeemed} redeemed, {doubled} redeemed twice");
}

async fn run_reqwest(app: &TestApp, lines: &[Line], clients: usize) -> Figures {
    let n = lines.len().min(6000);
    let lines: Arc<Vec<(String, String, String)>> = Arc::new(
        lines[..n]
            .iter()
            .map(|l| (l.token.clone(), l.key.clone(), l.body.clone()))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (lines, next, client, url) = (
            lines.clone(),
            next.clone(),
            client.clone(),
            app.url("/api/venue/redeem"),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((token, key, body)) = lines.get(i) else {
                    break;
                };
                let t = Instant::now();
                let res = client
                    .post(&url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", key)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                res.bytes().await.unwrap();
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Figures {
        requests: n,
        rate: n as f64 / elapsed,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
    }
}

/// Open loop: `clients` desks each send one redemption every `clients / rate` seconds, whatever
/// the answers take, for `seconds`. Latency counts from when a request was due, so a slow
/// answer that delays the next request still counts against it (no coordinated omission).
async fn run_paced(
    app: &TestApp,
    lines: &[Line],
    clients: usize,
    rate: f64,
    seconds: usize,
) -> Figures {
    let per_client = ((rate * seconds as f64) / clients as f64).ceil() as usize;
    let n = (per_client * clients).min(lines.len());
    let interval = std::time::Duration::from_secs_f64(clients as f64 / rate);
    let lines: Arc<Vec<(String, String, String)>> = Arc::new(
        lines[..n]
            .iter()
            .map(|l| (l.token.clone(), l.key.clone(), l.body.clone()))
            .collect(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let start = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (lines, client, url) = (lines.clone(), client.clone(), app.url("/api/venue/redeem"));
        // Spread the desks evenly over one interval.
        let first = start + interval.mul_f64(c as f64 / clients as f64);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for k in 0.. {
                let Some((token, key, body)) = lines.get(c + k * clients) else {
                    break;
                };
                let due = first + interval * k as u32;
                tokio::time::sleep_until(due).await;
                let res = client
                    .post(&url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", key)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                res.bytes().await.unwrap();
                latencies.push(due.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Figures {
        requests: all.len(),
        rate: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let clients = arg("--clients", 64);
    let seconds = arg("--seconds", 6);
    let winners = arg("--winners", 10_000) as u32;
    let rates: Vec<f64> = std::env::args()
        .skip_while(|a| a != "--rates")
        .nth(1)
        .unwrap_or_else(|| "64,256".into())
        .split(',')
        .map(|r| r.parse().expect("--rates 64,256"))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("redemptions: {clients} concurrent venue clients, {seconds} s, loopback");
        bench(Backend::Sqlite, winners, clients, seconds, &rates).await;
        bench(Backend::Postgres, winners, clients, seconds, &rates).await;
    });
}
