//! Freeze and draw at 10 k, 100 k and 1 M tickets on SQLite and PostgreSQL, beside the time to
//! merely read the ticket ids and hash them (the least any draw must do), with peak memory; then
//! a draw of 10 000 winners (10 000 tickets, every one wins: 10 000 winner rows and 16 000
//! vouchers written).
//!
//! `cargo bench --bench draw` (PostgreSQL at TEST_DATABASE_URL when it answers). Each size runs in
//! a child process of its own, so that its peak memory (VmHWM) is its own.
//! Options after `--`: `--sizes 10000,100000` to choose the sizes, `--winners 10000` the large draw
//! (0 to skip it).

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

fn secret(name: &str) -> [u8; 32] {
    let mut s = [0u8; 32];
    for (i, b) in name.bytes().enumerate() {
        s[i % 32] ^= b;
    }
    s
}

/// Freezes and draws round 1 of the real campaign among `n` tickets; with `winners`, of a
/// one-round campaign offering that many prizes.
async fn child(backend: Backend, n: u64, winners: Option<u32>) {
    let Some(db) = TestDb::new(backend).await else {
        println!("RESULT skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let loaded = match winners {
        None => common::settings(&db.url, &repo_config_dir(), "campaign.toml"),
        Some(w) => {
            let real = std::fs::read_to_string(repo_config_dir().join("campaign.toml")).unwrap();
            let text = common::one_round_campaign(&real, CAMPAIGN, w);
            std::fs::write(dir.path().join("campaign.toml"), text).unwrap();
            common::settings(&db.url, dir.path(), "campaign.toml")
        }
    };
    let in_round = Utc.with_ymd_and_hms(2024, 7, 16, 2, 0, 0).unwrap();
    let clock = std::sync::Arc::new(campaign_lottery::clock::ManualClock::new(in_round));
    let prepared = campaign_lottery::startup::prepare(&loaded, clock.as_ref())
        .await
        .unwrap();
    let app = campaign_lottery::startup::application(prepared, &loaded, clock.clone());
    let (store, campaign) = (app.store.clone(), app.campaign.clone());
    let operator = campaign_lottery::app::auth::Operator::command_line("bench");
    common::bulk_tickets(&db, CAMPAIGN, 1, n, in_round).await;
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
    let ids = store
        .round_sorted_out(CAMPAIGN, 1, 1)
        .await
        .unwrap()
        .entries;
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
    campaign_lottery::app::rounds::draw(&app, &operator, 1, &Default::default())
        .await
        .unwrap();
    let draw = t.elapsed().as_secs_f64();
    let state = store.round_draw_state(CAMPAIGN, 1).await.unwrap().unwrap();
    assert_eq!(
        state.entries_root.as_deref(),
        Some(hex::encode(root).as_str())
    );
    let prizes = u64::from(winners.unwrap_or(265));
    assert_eq!(state.winners.len() as u64, n.min(prizes));
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
        let winners = args.get(i + 3).map(|w| w.parse().unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(child(backend, n, winners));
        return;
    }
    let sizes: Vec<u64> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(|x| x.parse().unwrap()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    let winners: u32 = args
        .iter()
        .position(|a| a == "--winners")
        .and_then(|i| args.get(i + 1))
        .map_or(10_000, |s| s.parse().unwrap());
    let run = |backend: &str, n: u64, winners: Option<u32>| -> Option<String> {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--child", backend, &n.to_string()]);
        if let Some(w) = winners {
            cmd.arg(w.to_string());
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Some(line) = stdout.lines().find(|l| l.starts_with("RESULT")) else {
            panic!(
                "{backend} {n}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        (!line.contains("skipped")).then(|| line.to_owned())
    };
    println!(
        "backend      tickets   read+hash    freeze      draw   freeze+draw  ×read+hash   peak MB"
    );
    for backend in ["sqlite", "postgres"] {
        for &n in &sizes {
            let Some(line) = run(backend, n, None) else {
                println!("{backend:<10} skipped (no PostgreSQL)");
                break;
            };
            let line = line.as_str();
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
    if winners > 0 {
        println!();
        println!("backend      winners   vouchers     freeze      draw   peak MB");
        for backend in ["sqlite", "postgres"] {
            let Some(line) = run(backend, u64::from(winners), Some(winners)) else {
                println!("{backend:<10} skipped (no PostgreSQL)");
                continue;
            };
            let grand = winners * 3 / 10;
            println!(
                "{backend:<10} {winners:>9} {:>10} {:>8.3} s {:>7.3} s {:>8.0}",
                grand * 3 + (winners - grand),
                field(&line, "freeze"),
                field(&line, "draw"),
                field(&line, "peak_mb")
            );
        }
    }
}
