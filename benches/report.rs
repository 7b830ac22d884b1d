//! The campaign's report at the 2020 edition's scale: 5 M submitted attempts by 1 M participants
//! over the 12 weekly rounds, each attempt 10 questions of the bank with answers right and wrong.
//! Measured: the tally of all of them (what the first report after migration 0021 does; the
//! service then tallies each minute's in the background), the report once tallied (the
//! operators' everyday case, median of 5), a report with one minute's attempts (1 000) still to
//! tally, and the peak memory of the whole.
//!
//! `cargo bench --bench report` (PostgreSQL at TEST_DATABASE_URL when it answers). Options after
//! `--`: `--attempts 5000000`, `--participants 1000000`, `--backend sqlite|postgres` for one. Each backend runs in a child process of
//! its own, so that its peak memory (VmHWM) is its own.

#[path = "../tests/common/mod.rs"]
mod common;

use campaign_lottery::domain::quiz::{draw_questions, QuestionBank, KEYS};
use chrono::{TimeZone, Utc};
use common::{repo_config_dir, Backend, TestDb};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::time::Instant;

fn peak_memory_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Distinct attempts (questions and answers) that the millions repeat: enough that every question
/// and law gets a spread of right and wrong answers.
const VARIANTS: u64 = 512;

/// `(questions JSON, answers JSON, score)` of variant `k`: 10 questions, each answered right with
/// a probability that differs per question (some are hard).
fn variant(bank: &QuestionBank, k: u64) -> (String, String, u32) {
    let mut rng = ChaCha20Rng::seed_from_u64(k);
    let questions = draw_questions(bank, 10, &mut rng);
    let mut answers = Vec::new();
    let mut score = 0;
    for (i, aq) in questions.iter().enumerate() {
        let q = bank.get(&aq.question).unwrap();
        // Shown in the bank's order (order = identity below), so keys are the bank's.
        let hard = (q.id.len() as u64 + k + i as u64) % 10 < 3;
        let keys: Vec<&str> = if hard {
            // A wrong option, or where every option is right, one alone (not all of them).
            vec![
                KEYS[(0..q.options.len())
                    .find(|o| !q.correct.contains(o))
                    .unwrap_or(0)],
            ]
        } else {
            score += 1;
            q.correct.iter().map(|&c| KEYS[c]).collect()
        };
        answers.push(serde_json::json!({"question": q.id, "choices": keys}));
    }
    let shown: Vec<serde_json::Value> = questions
        .iter()
        .map(|aq| {
            let n = bank.get(&aq.question).unwrap().options.len();
            serde_json::json!({"question": aq.question, "order": (0..n).collect::<Vec<_>>()})
        })
        .collect();
    (
        serde_json::to_string(&shown).unwrap(),
        serde_json::to_string(&answers).unwrap(),
        score,
    )
}

/// Runs `sql` on the benchmark's database. SQLite waits up to 10 minutes for its lock: after
/// gigabytes written, the service's own connection may be checkpointing the log.
async fn exec(db: &TestDb, sql: &str) {
    if db.backend != Backend::Sqlite {
        db.execute(sql).await;
        return;
    }
    use sqlx::{ConnectOptions, Executor};
    use std::str::FromStr;
    let mut c = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)
        .unwrap()
        .busy_timeout(std::time::Duration::from_secs(600))
        .connect()
        .await
        .unwrap();
    c.execute(sql).await.unwrap();
}

/// `n` submitted attempts by `p` participants, spread over the 84 days of the 12 rounds.
async fn fill(db: &TestDb, bank: &QuestionBank, n: u64, p: u64) {
    exec(db, "CREATE TABLE bench_variants (k BIGINT PRIMARY KEY, questions TEXT, result TEXT, score INTEGER)")
        .await;
    for k in 0..VARIANTS {
        let (q, r, s) = variant(bank, k);
        exec(
            db,
            &format!("INSERT INTO bench_variants VALUES ({k}, '{q}', '{r}', {s})"),
        )
        .await;
    }
    match db.backend {
        Backend::Sqlite => {
            let each = |m: u64, sql: &str| {
                format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {m}) {sql}")
            };
            exec(
                db,
                &each(
                    p,
                    "INSERT INTO participants (id, phone, display_name, consented_at, created_at)
                 SELECT printf('00000000-0000-4000-8000-%012x', i), printf('1%010d', i), NULL,
                        '2024-07-15T00:00:00+00:00', '2024-07-15T00:00:00+00:00' FROM n",
                ),
            )
            .await;
            exec(db, &each(
                n,
                &format!(
                    "INSERT INTO quiz_attempts (id, participant_id, questions, started_at, deadline,
                         local_day, submitted_at, score, passed, result)
                     SELECT printf('00000000-0000-4000-9000-%012x', i),
                            printf('00000000-0000-4000-8000-%012x', i % {p} + 1), v.questions,
                            strftime('%Y-%m-%dT02:00:00+00:00', '2024-07-15', '+' || (i % 84) || ' days'),
                            strftime('%Y-%m-%dT02:10:00+00:00', '2024-07-15', '+' || (i % 84) || ' days'),
                            date('2024-07-15', '+' || (i % 84) || ' days'),
                            strftime('%Y-%m-%dT02:05:00+00:00', '2024-07-15', '+' || (i % 84) || ' days'),
                            v.score, v.score >= 8, v.result
                     FROM n JOIN bench_variants v ON v.k = i % {VARIANTS}"
                ),
            ))
            .await;
        }
        Backend::Postgres => {
            let pid = |x: &str| {
                format!("('00000000-0000-4000-8000-' || lpad(to_hex({x}), 12, '0'))::uuid")
            };
            exec(
                db,
                &format!(
                    "INSERT INTO participants (id, phone, display_name, consented_at, created_at)
                 SELECT {}, '1' || lpad(i::text, 10, '0'), NULL, now(), now()
                 FROM generate_series(1, {p}) i",
                    pid("i")
                ),
            )
            .await;
            exec(db, &format!(
                "INSERT INTO quiz_attempts (id, participant_id, questions, started_at, deadline,
                     local_day, submitted_at, score, passed, result)
                 SELECT ('00000000-0000-4000-9000-' || lpad(to_hex(i), 12, '0'))::uuid, {},
                        v.questions,
                        '2024-07-15 02:00:00+00'::timestamptz + make_interval(days => (i % 84)::int),
                        '2024-07-15 02:10:00+00'::timestamptz + make_interval(days => (i % 84)::int),
                        ('2024-07-15'::date + (i % 84)::int)::text,
                        '2024-07-15 02:05:00+00'::timestamptz + make_interval(days => (i % 84)::int),
                        v.score, v.score >= 8, v.result
                 FROM generate_series(1, {n}) i JOIN bench_variants v ON v.k = i % {VARIANTS}",
                pid(&format!("(i % {p} + 1)"))
            ))
            .await;
        }
    }
    exec(
        db,
        "INSERT INTO attempt_days (participant_id, local_day, started)
         SELECT participant_id, local_day, COUNT(*) FROM quiz_attempts GROUP BY participant_id, local_day",
    )
    .await;
    exec(db, "DROP TABLE bench_variants").await;
    exec(db, "ANALYZE").await;
}

/// The median time of 5 reports, and the last report.
async fn median_report(
    app: &campaign_lottery::app::App,
    auditor: &campaign_lottery::app::auth::Auditor,
) -> (f64, campaign_lottery::app::reports::Report) {
    let mut times = Vec::new();
    let mut report = None;
    for _ in 0..5 {
        let t = Instant::now();
        report = Some(
            campaign_lottery::app::reports::report(app, auditor)
                .await
                .unwrap(),
        );
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[2], report.unwrap())
}

async fn child(backend: Backend, n: u64, p: u64) {
    let Some(db) = TestDb::new(backend).await else {
        println!("RESULT skipped");
        return;
    };
    let loaded = common::settings(&db.url, &repo_config_dir(), "campaign.toml");
    let now = Utc.with_ymd_and_hms(2024, 10, 8, 2, 0, 0).unwrap();
    let clock = std::sync::Arc::new(campaign_lottery::clock::ManualClock::new(now));
    let prepared = campaign_lottery::startup::prepare(&loaded, clock.as_ref())
        .await
        .unwrap();
    let app = campaign_lottery::startup::application(prepared, &loaded, clock.clone());
    let auditor = campaign_lottery::app::auth::Auditor::command_line("bench");
    let t = Instant::now();
    fill(&db, &app.questions, n, p).await;
    let fill_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let tallied = campaign_lottery::app::reports::tally(&app).await.unwrap();
    let tally_s = t.elapsed().as_secs_f64();
    assert_eq!(tallied, n);

    // Right after the bulk tally, then as the database's maintenance leaves it (PostgreSQL's
    // autovacuum removes the dead index entries of 5 M updated rows and refreshes the planner's
    // statistics within minutes; SQLite's statistics are what ANALYZE last saw).
    let fresh = median_report(&app, &auditor).await.0;
    match db.backend {
        Backend::Sqlite => exec(&db, "ANALYZE").await,
        Backend::Postgres => exec(&db, "VACUUM ANALYZE quiz_attempts").await,
    }
    let (steady, report) = median_report(&app, &auditor).await;
    // Where a report's time goes, call by call.
    let c = &app.campaign;
    let t = Instant::now();
    campaign_lottery::app::reports::tally(&app).await.unwrap();
    let part_tally = t.elapsed().as_secs_f64();
    let t = Instant::now();
    app.store.quiz_figures(now).await.unwrap();
    let part_figures = t.elapsed().as_secs_f64();
    let t = Instant::now();
    app.store.tickets_per_round(&c.id).await.unwrap();
    app.store.claim_counts(&c.id).await.unwrap();
    app.store
        .redemptions_between(None, c.rounds[0].opens_at, now)
        .await
        .unwrap();
    let part_prizes = t.elapsed().as_secs_f64();
    let submitted: u64 = report.figures.days.iter().map(|d| d.2.submitted).sum();
    assert_eq!(submitted, n, "every attempt counted once");

    // One minute's attempts (1 000) not tallied yet: what an operator's report meets.
    exec(
        &db,
        "UPDATE quiz_attempts SET tallied = FALSE WHERE id IN
             (SELECT id FROM quiz_attempts ORDER BY id LIMIT 1000)",
    )
    .await;
    let t = Instant::now();
    campaign_lottery::app::reports::report(&app, &auditor)
        .await
        .unwrap();
    let backlog_s = t.elapsed().as_secs_f64();
    println!(
        "RESULT fill={fill_s:.1} tally={tally_s:.1} fresh={fresh:.3} report={steady:.3} backlog={backlog_s:.3} takers={} peak_mb={:.0} part_tally={part_tally:.3} part_figures={part_figures:.3} part_prizes={part_prizes:.3}",
        report.figures.takers,
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
        let p: u64 = args[i + 3].parse().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(child(backend, n, p));
        return;
    }
    let value = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = value("--attempts", 5_000_000);
    let p = value("--participants", 1_000_000);
    println!("{n} submitted attempts by {p} participants over 84 days");
    println!(
        "backend     fill        tally (rate)          report just after  report, maintained  + 1 000 to tally  peak MB"
    );
    let only = args
        .iter()
        .position(|a| a == "--backend")
        .and_then(|i| args.get(i + 1))
        .cloned();
    for backend in ["sqlite", "postgres"] {
        if only.as_deref().is_some_and(|b| b != backend) {
            continue;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--child", backend, &n.to_string(), &p.to_string()])
            .output()
            .expect("the child runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Some(line) = stdout.lines().find(|l| l.starts_with("RESULT")) else {
            println!(
                "{backend:<10} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        };
        if line.contains("skipped") {
            println!("{backend:<10} skipped (no PostgreSQL)");
            continue;
        }
        let tally = field(line, "tally");
        eprintln!("{backend}: {line}");
        println!(
            "{backend:<10} {:>6.0} s  {tally:>7.1} s ({:>6.0} /s)  {:>13.3} s  {:>15.3} s  {:>13.3} s  {:>7.0}",
            field(line, "fill"),
            n as f64 / tally,
            field(line, "fresh"),
            field(line, "report"),
            field(line, "backlog"),
            field(line, "peak_mb"),
        );
    }
}
