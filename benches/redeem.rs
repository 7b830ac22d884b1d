//! Redemptions per second and their latency with 64 concurrent venue clients on loopback, on
//! SQLite and on PostgreSQL, and a check that nothing was redeemed twice.
//!
//! `cargo bench --bench redeem` (PostgreSQL at TEST_DATABASE_URL when it answers). Options after
//! `--`: `--clients N` (default 64), `--seconds N` (default 6), `--winners N` (default 40000),
//! `--rates 64,256` (the paced runs' redemptions per second, all desks together),
//! `--raw-clients N` (tasks redeeming straight through the store; default: as many as clients).
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
use support::{arg, Figures};

const CAMPAIGN: &str = "bench";

/// The demo campaign with one round of `winners` prizes, 30 % of them grand.
fn campaign_file(dir: &std::path::Path, winners: u32) -> String {
    let base = std::fs::read_to_string(repo_config_dir().join("campaign-demo.toml")).unwrap();
    let text = common::one_round_campaign(&base, CAMPAIGN, winners);
    std::fs::write(dir.join("campaign-bench.toml"), text).unwrap();
    "campaign-bench.toml".into()
}

struct Line {
    token: String,
    key: String,
    body: String,
    /// The same redemption as the store is asked it.
    redeem: campaign_lottery::store::Redeem,
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
    common::bulk_tickets(&app.db, CAMPAIGN, 1, u64::from(winners), demo_now()).await;
    let after = demo_now() + Duration::days(7) + Duration::minutes(1);
    app.clock.set(after);
    let t = Instant::now();
    common::draw_round_unclaimed(&app.store, &app.campaign, 1, after).await;
    common::claim_all_at_once(&app.db.url, &app.campaign.id, 1, after).await;
    let vouchers = app.store.all_vouchers(CAMPAIGN).await.unwrap();
    println!(
        "{backend:?}: {} winners drawn with {} vouchers in {:.1} s",
        winners,
        vouchers.len(),
        t.elapsed().as_secs_f64()
    );

    // 64 venue clients: eight desks (tokens) at each of the eight venues.
    let mut desks: std::collections::HashMap<String, Vec<(String, uuid::Uuid)>> =
        Default::default();
    for venue in app.campaign.venues.clone() {
        for _ in 0..(clients / app.campaign.venues.len()).max(1) {
            let token = app.venue_token(&venue.id).await;
            let id = app
                .store
                .token_by_hash(&campaign_lottery::domain::token::token_hash(&token))
                .await
                .unwrap()
                .unwrap()
                .id;
            desks.entry(venue.id.clone()).or_default().push((token, id));
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
    // The service's clock stands still at `after`; its desks take the holder code of that step and
    // of the one either side, so each of a card's three visits shows its own (a code is taken
    // once per voucher).
    assert!(scenic.len() <= 3, "one holder-code step per visit");
    let mut push =
        |v: &campaign_lottery::store::VoucherRecord, venue: &str, n: usize, pass: usize| {
            let holder =
                common::holder_code(v, after + chrono::Duration::seconds(30 * (pass as i64 - 1)));
            let tokens = &desks[venue];
            let (token, token_id) = tokens[n % tokens.len()].clone();
            let key = format!("bench-{}", lines.len());
            lines.push(Line {
                token,
                key: key.clone(),
                body: serde_json::json!({
                    "code": VoucherCode::parse(&v.code).unwrap().to_string(),
                    "holder_code": &holder,
                })
                .to_string(),
                redeem: campaign_lottery::store::Redeem {
                    code: v.code.clone(),
                    venue: app.campaign.venue(venue).unwrap().clone(),
                    token_id,
                    idempotency_key: key,
                    holder_code: Some(holder.clone()),
                    actor: format!("venue:{venue}"),
                    at: after,
                },
            });
        };
    for pass in 0..scenic.len() {
        for (i, v) in vouchers.iter().enumerate() {
            let kind = app.campaign.voucher_kind(&v.kind).unwrap();
            let venues = of_category(kind.category);
            if v.kind == "tourism_card" {
                push(v, &scenic[(i + pass) % scenic.len()], i, pass);
            } else if pass == 0 {
                push(v, &venues[i % venues.len()], i, pass);
            }
        }
    }
    // The saturating run takes its redemptions from the start of the list, the raw one from the
    // middle, the paced one from the end; they never meet.
    let paced_lines = lines.split_off(lines.len() * 2 / 3);
    let raw_lines = lines.split_off(lines.len() / 2);
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
    // The same write straight to the store: 64 tasks, no HTTP, no token or throttle look-ups.
    let raw = run_raw(&app, raw_lines, arg("--raw-clients", clients), seconds).await;
    let after_raw = app.db.scalar("SELECT COUNT(*) FROM redemptions").await as usize;
    assert_eq!(
        after_raw - saturated,
        raw.requests,
        "every raw redemption recorded"
    );
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
    println!(
        "{:<9} raw store:  {:>6.0} redemptions/s  p50 {:>6.2} ms  p99 {:>6.2} ms  HTTP/raw {:.0} %",
        format!("{backend:?}"),
        raw.rate,
        raw.p50_ms,
        raw.p99_ms,
        100.0 * figures.rate / raw.rate
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

/// `clients` tasks redeem through the store directly, each its next line as soon as the last is
/// done, for at most `seconds` (or until the lines run out). They run on two single-threaded
/// runtimes of their own, as the service's two HTTP workers do, so that the figure compares the
/// same scheduling with and without HTTP.
async fn run_raw(app: &TestApp, lines: Vec<Line>, clients: usize, seconds: usize) -> Figures {
    let lines: Arc<Vec<campaign_lottery::store::Redeem>> =
        Arc::new(lines.into_iter().map(|l| l.redeem).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let until = started + std::time::Duration::from_secs(seconds as u64);
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (lines, next, store, campaign) = (
                lines.clone(),
                next.clone(),
                app.store.clone(),
                app.campaign.clone(),
            );
            let tasks = clients / 2 + usize::from(w < clients % 2);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let mut running = Vec::new();
                    for _ in 0..tasks {
                        let (lines, next, store, campaign) =
                            (lines.clone(), next.clone(), store.clone(), campaign.clone());
                        running.push(tokio::spawn(async move {
                            let mut latencies = Vec::new();
                            while Instant::now() < until {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                let Some(r) = lines.get(i) else { break };
                                let t = Instant::now();
                                let outcome = store.redeem(&campaign, r.clone()).await.unwrap();
                                assert!(
                                    matches!(
                                        outcome,
                                        campaign_lottery::store::RedeemOutcome::Redeemed { .. }
                                    ),
                                    "{outcome:?}"
                                );
                                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                            }
                            latencies
                        }));
                    }
                    let mut all = Vec::new();
                    for t in running {
                        all.extend(t.await.unwrap());
                    }
                    all
                })
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(
            tokio::task::spawn_blocking(move || w.join().unwrap())
                .await
                .unwrap(),
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    support::figures(all.len(), all, elapsed)
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
    support::figures(n, all, elapsed)
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
    support::figures(all.len(), all, elapsed)
}

fn main() {
    let clients = arg("--clients", 64);
    let seconds = arg("--seconds", 6);
    let winners = arg("--winners", 40_000) as u32;
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
