//! What the proof of work before each SMS costs: the service to check one solution, a script to
//! solve one natively, and a browser (headless Chromium, the vendored ALTCHA widget, as /join
//! runs it) to solve one, at the configured cost (`login.challenge_cost`).
//!
//! `cargo bench --bench challenge` (the browser part needs chromium and chromedriver). Options
//! after `--`: `--cost N` (default: the shipped setting), `--runs N` (default 40).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use campaign_lottery::app::challenge::{judge, make, solve};
use campaign_lottery::config::LoginSettings;
use common::{repo_config_dir, settings, TestApp, TestDb};
use std::time::{Duration, Instant};
use support::arg;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn spread(v: &[f64]) -> (f64, f64) {
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = v.iter().cloned().fold(0.0, f64::max);
    (min, max)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cost = arg("--cost", u64::from(LoginSettings::default().challenge_cost)) as u32;
    let runs = arg("--runs", 40) as usize;
    let now = chrono::Utc::now();
    let expires = now + chrono::Duration::minutes(5);
    println!("proof of work: PBKDF2-SHA-256, {cost} iterations a try, {runs} challenges");

    // Natively, one core: what a script pays per SMS, and what the service pays to check.
    let (mut solving, mut checking) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let phone = format!("139{:08}", i);
        let challenge = make("bench-key", cost, &phone, expires).unwrap();
        let started = Instant::now();
        let payload = solve(&challenge).expect("solved");
        solving.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        judge("bench-key", &phone, Some(&payload), now).expect("verified");
        checking.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    // The tries to a solution are geometric (1 in 256 each): the mean is what a script pays
    // over many codes, the median what a person usually waits.
    let (lo, hi) = spread(&solving);
    let solve_mean = mean(&solving);
    println!(
        "native solve (a script, one core): mean {solve_mean:.0} ms, median {:.0} ms \
         (min {lo:.0}, max {hi:.0}); 10 000 SMS ≈ {:.2} core-hours",
        median(solving.clone()),
        solve_mean * 10_000.0 / 3_600_000.0
    );
    let (lo, hi) = spread(&checking);
    println!(
        "service check: median {:.2} ms (min {lo:.2}, max {hi:.2})",
        median(checking)
    );

    // In the browser, as /join does it (no artificial minimum duration).
    let Some((driver, chromium)) = common::browser::driver().await else {
        return;
    };
    let db = TestDb::new(common::Backend::Sqlite).await.unwrap();
    let mut loaded = settings(&db.url, &repo_config_dir(), "campaign-demo.toml");
    loaded.settings.login.challenge_cost = cost;
    let app = TestApp::spawn_with(db, &loaded, chrono::Utc::now()).await;
    let profile = tempfile::tempdir().unwrap();
    let c = common::browser::browser(&driver, &chromium, 360, &profile).await;
    c.goto(&app.url("/join")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut browser_ms = Vec::new();
    for i in 0..runs {
        let phone = format!("138{:08}", i);
        let script = format!(
            r##"const done = arguments[arguments.length - 1];
            (async () => {{
              const res = await fetch("/api/login/challenge", {{method: "POST",
                headers: {{"Content-Type": "application/json"}}, body: JSON.stringify({{phone: "{phone}"}})}});
              const challenge = await res.json();
              const widget = document.querySelector("#pow");
              await widget.configure({{challenge, minDuration: 0}});
              const t0 = performance.now();
              const solved = await widget.verify();
              done(solved && solved.payload ? performance.now() - t0 : -1);
            }})();"##
        );
        let took = c.execute_async(&script, vec![]).await.unwrap();
        let ms = took.as_f64().unwrap();
        assert!(ms >= 0.0, "the widget did not solve challenge {i}");
        browser_ms.push(ms);
    }
    let (lo, hi) = spread(&browser_ms);
    println!(
        "browser solve (headless Chromium, {} Web Workers): mean {:.0} ms, median {:.0} ms \
         (min {lo:.0}, max {hi:.0})",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        mean(&browser_ms),
        median(browser_ms.clone())
    );
    c.close().await.unwrap();
}
