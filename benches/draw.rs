//! Freeze and draw at 10 k, 100 k and 1 M tickets on SQLite and PostgreSQL, beside the time to
//! merely read the ticket ids and hash them (the least any draw must do), with peak memory.
//!
//! `cargo bench --bench draw` (PostgreSQL at TEST_DATABASE_URL when it answers). Each size runs in
//! a child process of its own, so that its peak memory (VmHWM) is its own.
//! Options after `--`: `--sizes 10000,100000` to choose the sizes.

#[path = "../tests/common/mod.rs"]
mod common;

use campaign_lottery::domain::draw::{entries_root, seed::commitment};
use chrono::{Duration, TimeZone, Utc};
use common::{repo_config_dir, Backend, TestDb};
use std::time::Instant;

const CAMPAIGN: &str = "hengyang-2024";

fn peak_memory_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// n participants, each with a passed attempt and a random ticket in round 1.
async fn bulk_tickets(db: &TestDb, n: u64) {
    match db.backend {
        Backend::Sqlite => {
            let at = "'2024-07-16T02:00:00+00:00'";
            db.execute(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
                 INSERT INTO participants (id, phone, display_name, consented_at, created_at)
                 SELECT printf('00000000-0000-4000-8000-%012x', i), printf('1%010d', i), NULL, {at}, {at} FROM n"
            ))
            .await;
            db.execute(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
                 INSERT INTO quiz_attempts (id, participant_id, questions, started_at, deadline, local_day)
                 SELECT printf('00000000-0000-4000-9000-%012x', i), printf('00000000-0000-4000-8000-%012x', i),
                        '[]', {at}, {at}, '2024-07-16' FROM n"
            ))
            .await;
            db.execute(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
                 INSERT INTO tickets (id, campaign_id, round, participant_id, attempt_id, created_at)
                 SELECT lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
                        || substr(lower(hex(randomblob(2))), 2) || '-8' || substr(lower(hex(randomblob(2))), 2)
                        || '-' || lower(hex(randomblob(6))),
                        '{CAMPAIGN}', 1, printf('00000000-0000-4000-8000-%012x', i),
                        printf('00000000-0000-4000-9000-%012x', i), {at} FROM n"
            ))
            .await;
        }
        Backend::Postgres => {
            let at = "'2024-07-16T02:00:00+00:00'::timestamptz";
            let p = "('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid";
            let a = "('00000000-0000-4000-9000-' || lpad(to_hex(i), 12, '0'))::uuid";
            db.execute(&format!(
                "INSERT INTO participants (id, phone, display_name, consented_at, created_at)
                 SELECT {p}, '1' || lpad(i::text, 10, '0'), NULL, {at}, {at} FROM generate_series(1, {n}) i"
            ))
            .await;
            db.execute(&format!(
                "INSERT INTO quiz_attempts (id, participant_id, questions, started_at, deadline, local_day)
                 SELECT {a}, {p}, '[]', {at}, {at}, '2024-07-16' FROM generate_series(1, {n}) i"
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

fn secret(name: &str) -> [u8; 32] {
    let mut s = [0u8; 32];
    for (i, b) in name.bytes().enumerate() {
        s[i % 32] ^= b;
    }
    s
}

async fn child(backend: Backend, n: u64) {
    let Some(db) = TestDb::new(backend).await else {
        println!("RESULT skipped");
        return;
    };
    let loaded = common::settings(&db.url, &repo_config_dir(), "campaign.toml");
    let in_round = Utc.with_ymd_and_hms(2024, 7, 16, 2, 0, 0).unwrap();
    let clock = std::sync::Arc::new(campaign_lottery::clock::ManualClock::new(in_round));
    let prepared = campaign_lottery::startup::prepare(&loaded, clock.as_ref())
        .await
        .unwrap();
    let app = campaign_lottery::startup::application(prepared, &loaded, clock.clone());
    let (store, campaign) = (app.store.clone(), app.campaign.clone());
    let operator = campaign_lottery::app::auth::Operator::command_line("bench");
    bulk_tickets(&db, n).await;
    for name in ["notary", "lawyer"] {
        let c = hex::encode(commitment(CAMPAIGN, 1, name, &secret(name)));
        store
            .commit_witness(CAMPAIGN, 1, name, &c, "bench", in_round)
            .await
            .unwrap();
    }
    let after = campaign.round(1).unwrap().closes_at + Duration::hours(1);

    // The floor: read the eligible ticket ids and hash them into the root.
    let t = Instant::now();
    let ids = store.round_entries(CAMPAIGN, 1, 1).await.unwrap();
    let root = entries_root(&ids);
    let bare = t.elapsed().as_secs_f64();
    assert_eq!(ids.len() as u64, n);
    drop(ids);

    let t = Instant::now();
    clock.set(after);
    campaign_lottery::app::rounds::freeze(&app, &operator, 1, "")
        .await
        .unwrap();
    let freeze = t.elapsed().as_secs_f64();
    for name in ["notary", "lawyer"] {
        store
            .reveal_secret(
                CAMPAIGN,
                1,
                name,
                &hex::encode(secret(name)),
                "bench",
                after,
            )
            .await
            .unwrap();
    }
    let t = Instant::now();
    campaign_lottery::app::rounds::draw(&app, &operator, 1, "")
        .await
        .unwrap();
    let draw = t.elapsed().as_secs_f64();
    let state = store.round_draw_state(CAMPAIGN, 1).await.unwrap().unwrap();
    assert_eq!(
        state.entries_root.as_deref(),
        Some(hex::encode(root).as_str())
    );
    assert_eq!(state.winners.len() as u64, n.min(265));
    println!(
        "RESULT bare={bare:.3} freeze={freeze:.3} draw={draw:.3} peak_mb={:.0}",
        peak_memory_mb()
    );
}

fn field(line: &str, name: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let backend = if args[i + 1] == "sqlite" {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let n: u64 = args[i + 2].parse().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(child(backend, n));
        return;
    }
    let sizes: Vec<u64> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(|x| x.parse().unwrap()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    println!(
        "backend      tickets   read+hash    freeze      draw   freeze+draw  ×read+hash   peak MB"
    );
    for backend in ["sqlite", "postgres"] {
        for &n in &sizes {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--child", backend, &n.to_string()])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let Some(line) = stdout.lines().find(|l| l.starts_with("RESULT")) else {
                panic!(
                    "{backend} {n}: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            if line.contains("skipped") {
                println!("{backend:<10} skipped (no PostgreSQL)");
                break;
            }
            let (bare, freeze, draw) = (
                field(line, "bare"),
                field(line, "freeze"),
                field(line, "draw"),
            );
            println!(
                "{backend:<10} {n:>9} {bare:>9.3} s {freeze:>7.3} s {draw:>7.3} s {:>9.3} s {:>9.1}× {:>8.0}",
                freeze + draw,
                (freeze + draw) / bare,
                field(line, "peak_mb")
            );
        }
    }
}
