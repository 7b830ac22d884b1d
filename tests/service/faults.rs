//! What a real deployment meets: a full disk, a database that goes away, a held lock, a second
//! process on one SQLite file, a retried body, a backup, a proxy. Tests that need a small file
//! system of their own mount a tmpfs, which needs root (CI runs as root).

use crate::common::{self, error_code, SmallDisk, TestApp, TestDb};
use serde_json::json;
use std::time::{Duration, Instant};

/// Signs `phone` up on the service at `base` (a code by SMS, read from the database at `db_url`,
/// then the code with consent): the status, and the error code when refused — of the code
/// request when that was refused, else of the login.
async fn register(
    client: &reqwest::Client,
    base: &str,
    db_url: &str,
    phone: &str,
) -> (u16, Option<String>) {
    let asked = common::request_code_at(client, base, phone).await;
    let res = if asked.status() == 202 {
        client
            .post(format!("{base}/api/login"))
            .json(&json!({
                "phone": phone,
                "code": common::sent_code(db_url, phone).await,
                "consent": true,
            }))
            .send()
            .await
            .unwrap()
    } else {
        asked
    };
    let status = res.status().as_u16();
    // 201 registered, 200 logged in (the phone took part already).
    if status == 201 || status == 200 {
        return (status, None);
    }
    let retry_after = res.headers().get("retry-after").cloned();
    let (status, code) = error_code(res).await;
    if status == 507 {
        assert!(retry_after.is_some(), "507 without Retry-After");
    }
    (status, Some(code))
}

/// `GET /readyz`: the status and, when not ready, the code.
async fn readiness(client: &reqwest::Client, base: &str) -> (u16, Option<String>) {
    let res = client.get(format!("{base}/readyz")).send().await.unwrap();
    match res.status().as_u16() {
        200 => (200, None),
        _ => {
            let (status, code) = error_code(res).await;
            (status, Some(code))
        }
    }
}

/// Polls readiness until it is `want`, for at most `limit`; how long it took.
async fn until_ready_is(
    client: &reqwest::Client,
    base: &str,
    want: u16,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let (status, code) = readiness(client, base).await;
        if status == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "readiness still {status} {code:?} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn phone(i: usize) -> String {
    format!("139{:08}", i)
}

/// SQLite on a full disk: writes are refused with 507 `storage_full` (never a 500), readiness
/// says not ready, the failure is logged once for the burst and counted; once space is freed,
/// writes succeed and the instance is ready again, without a restart; nothing half-done is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_disk_refuses_writes_cleanly_and_recovers_when_space_returns() {
    let Some(disk) = SmallDisk::mount(16 << 20, None) else {
        return;
    };
    let db = TestDb::sqlite_in(disk.path());
    let service = common::serve_process(&db.url, "campaign-demo.toml");
    let client = reqwest::Client::new();
    let base = service.base.clone();
    assert_eq!(readiness(&client, &base).await.0, 200);
    let mut accepted = 0;
    for i in 0..20 {
        assert_eq!(register(&client, &base, &db.url, &phone(i)).await.0, 201);
        accepted += 1;
    }

    disk.fill_leaving(64 << 10);
    let mut refused = 0;
    for i in 20..5000 {
        match register(&client, &base, &db.url, &phone(i)).await {
            (201, _) => accepted += 1,
            (507, Some(code)) => {
                assert_eq!(code, "storage_full");
                refused += 1;
                if refused == 50 {
                    break;
                }
            }
            other => panic!("registration {i} on a full disk answered {other:?}"),
        }
    }
    assert_eq!(refused, 50, "the disk filled up and writes were refused");
    let (status, code) = readiness(&client, &base).await;
    assert_eq!(status, 503, "not ready while writes fail ({code:?})");
    assert!(
        matches!(code.as_deref(), Some("storage_full" | "not_ready")),
        "{code:?}"
    );
    // Reads still work.
    let campaign = client
        .get(format!("{base}/api/campaign"))
        .send()
        .await
        .unwrap();
    assert_eq!(campaign.status(), 200);

    let full_at = accepted;
    disk.free_ballast();
    let freed = Instant::now();
    // The first write after space returns succeeds: the writer connection was not left inside
    // a failed transaction.
    for i in 10_000..10_020 {
        assert_eq!(
            register(&client, &base, &db.url, &phone(i)).await,
            (201, None)
        );
        accepted += 1;
    }
    let writing_after = freed.elapsed();
    until_ready_is(
        &client,
        &base,
        200,
        campaign_lottery::app::health::NOT_READY_AFTER_FULL + Duration::from_secs(10),
    )
    .await;
    common::say(&format!(
        "SQLite on a full disk: {full_at} registrations, then {refused} refused with 507; \
         after space returned 20 written in {writing_after:?}, ready after {:?}",
        freed.elapsed()
    ));

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted: f64 = metrics
        .lines()
        .find(|l| l.starts_with("storage_failures_total{kind=\"full\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no storage_failures_total for full in\n{metrics}"));
    assert!(counted >= 50.0, "{counted} failures counted");
    drop(client);
    let log = service.logged();
    let reported: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("the database cannot take requests"))
        .collect();
    assert_eq!(reported.len(), 1, "one report for the burst: {reported:?}");
    let errors: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(r#""level":"ERROR""#))
        .collect();
    assert_eq!(errors, reported, "no other error line, none per request");
    assert!(
        log.iter().all(|l| l.len() < 4096),
        "every log line is short: {:?}",
        log.iter().map(String::len).max()
    );
    drop(service);

    // Every registration answered 201 is there, and nothing else; the file is sound.
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM participants").await,
        accepted as i64
    );
    assert_eq!(db.text("PRAGMA integrity_check").await, "ok");
}

/// PostgreSQL with its tables on a full disk (a tablespace on a small file system): the same
/// promises as on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_on_a_full_disk_refuses_writes_cleanly_and_recovers_when_space_returns() {
    let Some(disk) = SmallDisk::mount(64 << 20, Some("postgres")) else {
        return;
    };
    let Some(db) = TestDb::postgres_in(disk.path()).await else {
        return;
    };
    let app = TestApp::spawn(db).await;
    let client = reqwest::Client::new();
    let base = app.address.clone();
    assert_eq!(readiness(&client, &base).await.0, 200);
    let mut accepted = 0;
    for i in 0..20 {
        assert_eq!(
            register(&client, &base, &app.db.url, &phone(i)).await.0,
            201
        );
        accepted += 1;
    }

    disk.fill_leaving(64 << 10);
    let mut refused = 0;
    for i in 20..20_000 {
        match register(&client, &base, &app.db.url, &phone(i)).await {
            (201, _) => accepted += 1,
            (507, Some(code)) => {
                assert_eq!(code, "storage_full");
                refused += 1;
                if refused == 50 {
                    break;
                }
            }
            other => panic!("registration {i} on a full disk answered {other:?}"),
        }
    }
    assert_eq!(refused, 50, "the disk filled up and writes were refused");
    assert_eq!(
        readiness(&client, &base).await,
        (503, Some("storage_full".into()))
    );

    let full_at = accepted;
    disk.free_ballast();
    let freed = Instant::now();
    for i in 0..20 {
        assert_eq!(
            register(&client, &base, &app.db.url, &phone(30_000 + i)).await,
            (201, None),
            "a write after space returned"
        );
        accepted += 1;
    }
    let writing_after = freed.elapsed();
    until_ready_is(
        &client,
        &base,
        200,
        campaign_lottery::app::health::NOT_READY_AFTER_FULL + Duration::from_secs(10),
    )
    .await;
    common::say(&format!(
        "PostgreSQL on a full disk: {full_at} registrations, then {refused} refused with 507; \
         after space returned 20 written in {writing_after:?}, ready after {:?}",
        freed.elapsed()
    ));
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM participants").await,
        accepted as i64
    );
}

/// The size of the SQLite write-ahead log beside `db`, 0 when there is none.
fn wal_size(db: &TestDb) -> u64 {
    let file = db.url.trim_start_matches("sqlite://");
    std::fs::metadata(format!("{file}-wal")).map_or(0, |m| m.len())
}

/// A burst of writes while a long read holds its snapshot (so the log cannot restart) grows the
/// write-ahead log; once the read ends, the log is emptied again rather than left at its
/// largest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_write_ahead_log_shrinks_after_a_burst() {
    use sqlx::Connection;
    let db = TestDb::new(common::Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn(db).await;
    let mut reader = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
    let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM participants")
        .fetch_one(&mut reader)
        .await
        .unwrap();

    let started = Instant::now();
    let client = reqwest::Client::new();
    let base = app.address.clone();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (client, base, url) = (client.clone(), base.clone(), app.db.url.clone());
            tokio::spawn(async move {
                for i in (w..1500).step_by(8) {
                    assert_eq!(register(&client, &base, &url, &phone(i)).await.0, 201);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let largest = wal_size(&app.db);
    let limit = campaign_lottery::store::SQLITE_WAL_LIMIT;
    assert!(
        largest > limit,
        "the burst grew the log past the limit ({largest} bytes in {:?})",
        started.elapsed()
    );

    sqlx::query("COMMIT").execute(&mut reader).await.unwrap();
    drop(reader);
    let released = Instant::now();
    while wal_size(&app.db) > limit {
        assert!(
            released.elapsed() < Duration::from_secs(5),
            "the log is still {} bytes (it grew to {largest})",
            wal_size(&app.db)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    common::say(&format!(
        "write-ahead log: {largest} bytes after 1500 registrations in {:?} under a held read, {} bytes {:?} after the read ended",
        started.elapsed() - released.elapsed(),
        wal_size(&app.db),
        released.elapsed()
    ));
    // And it keeps taking writes.
    assert_eq!(
        register(&client, &base, &app.db.url, &phone(9999)).await.0,
        201
    );
    assert_eq!(
        app.db.scalar("SELECT COUNT(*) FROM participants").await,
        1501
    );
}

/// PostgreSQL goes away under the service (connections terminated, new ones refused, as in a
/// restart): every request meanwhile is answered 503 `not_ready` with `Retry-After`, never 500,
/// readiness follows, and the service recovers by itself when the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_outage_is_503_with_retry_after_and_passes() {
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    let app = TestApp::spawn(db).await;
    let client = reqwest::Client::new();
    let base = app.address.clone();
    for i in 0..10 {
        assert_eq!(
            register(&client, &base, &app.db.url, &phone(i)).await,
            (201, None)
        );
    }

    app.db.cut_off().await;
    for i in 10..40 {
        let res = common::request_code_at(&client, &base, &phone(i)).await;
        let retry_after = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            error_code(res).await,
            (503, "not_ready".into()),
            "request {i}"
        );
        assert_eq!(retry_after.as_deref(), Some("2"));
    }
    assert_eq!(
        readiness(&client, &base).await,
        (503, Some("not_ready".into()))
    );
    let res = client
        .get(format!("{base}/api/rounds/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (503, "not_ready".into()), "a read");

    app.db.reconnect().await;
    let back = Instant::now();
    assert_eq!(
        register(&client, &base, &app.db.url, &phone(100)).await,
        (201, None),
        "the first request after the outage"
    );
    until_ready_is(&client, &base, 200, Duration::from_secs(5)).await;
    common::say(&format!(
        "PostgreSQL outage: serving again {:?} after the database was",
        back.elapsed()
    ));
    assert_eq!(app.db.scalar("SELECT COUNT(*) FROM participants").await, 11);
}

/// SQLite takes one server: a second `serve` on the same file is refused at start-up with a
/// message that points to PostgreSQL, while operator commands still run beside the first; once
/// the first has stopped, a server starts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_service_process_on_one_sqlite_file_is_refused() {
    let db = TestDb::new(common::Backend::Sqlite).await.unwrap();
    let first = common::serve_process(&db.url, "campaign-demo.toml");
    let client = reqwest::Client::new();
    assert_eq!(readiness(&client, &first.base).await.0, 200);

    let Err((status, log)) = common::start_process(&db.url, "campaign-demo.toml", &[]) else {
        panic!("a second server on one SQLite file started");
    };
    assert!(!status.success(), "{status}");
    let said = log.join("\n");
    assert!(
        said.contains("already serving the SQLite database") && said.contains("PostgreSQL"),
        "{said}"
    );
    assert_eq!(
        readiness(&client, &first.base).await.0,
        200,
        "the first serves on"
    );

    let command = std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"))
        .args(["--config-dir", common::repo_config_dir().to_str().unwrap()])
        .args(["sms", "pending"])
        .env("APP_DATABASE__URL", &db.url)
        .env("APP_CAMPAIGN__FILE", "campaign-demo.toml")
        .output()
        .unwrap();
    assert!(
        command.status.success(),
        "an operator command beside the server"
    );

    drop(first);
    let again = common::serve_process(&db.url, "campaign-demo.toml");
    assert_eq!(readiness(&client, &again.base).await.0, 200);
}

/// Start-up against a table another session holds `ACCESS EXCLUSIVE`: it says what it waits
/// for while it waits, and gives up after the lock time-out with a message and a non-zero exit,
/// for the server and for `migrate` alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_against_a_held_lock_ends_with_a_clear_error_within_the_timeout() {
    use sqlx::Connection;
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    {
        // Migrated and synced once, as a deployed database is.
        let app = TestApp::spawn(db).await;
        let mut holder = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
        sqlx::query("LOCK TABLE campaigns IN ACCESS EXCLUSIVE MODE")
            .execute(&mut holder)
            .await
            .unwrap();

        let started = Instant::now();
        let Err((status, log)) = common::start_process(
            &app.db.url,
            "campaign-demo.toml",
            &[("APP_DATABASE__LOCK_TIMEOUT_SECS", "3")],
        ) else {
            panic!("the server started past a held lock");
        };
        let took = started.elapsed();
        assert!(!status.success(), "{status}");
        let said = log.join("\n");
        assert!(said.contains("start-up still waiting"), "{said}");
        assert!(said.contains("lock timeout"), "{said}");
        assert!(took < Duration::from_secs(30), "gave up after {took:?}");

        let migrate = std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"))
            .args(["--config-dir", common::repo_config_dir().to_str().unwrap()])
            .arg("migrate")
            .env("APP_DATABASE__URL", &app.db.url)
            .env("APP_CAMPAIGN__FILE", "campaign-demo.toml")
            .env("APP_DATABASE__LOCK_TIMEOUT_SECS", "3")
            .output()
            .unwrap();
        assert!(!migrate.status.success());
        let stderr = String::from_utf8_lossy(&migrate.stderr);
        assert!(
            stderr.contains("error:") && stderr.contains("lock timeout"),
            "{stderr}"
        );
        common::say(&format!(
            "start-up against a held lock: gave up after {took:?}"
        ));

        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        let service = common::serve_process(&app.db.url, "campaign-demo.toml");
        let client = reqwest::Client::new();
        assert_eq!(readiness(&client, &service.base).await.0, 200);
    }
}

/// A PostgreSQL server that refuses the connection is named as refusing it, at once.
#[test]
fn start_up_against_a_refused_connection_says_so() {
    // Port 1 on this machine: nothing listens there.
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"))
        .args(["--config-dir", common::repo_config_dir().to_str().unwrap()])
        .arg("serve")
        .env("APP_DATABASE__URL", "postgres://postgres@127.0.0.1:1/test")
        .env("APP_CAMPAIGN__FILE", "campaign-demo.toml")
        .env("APP_SERVER__PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PostgreSQL at 127.0.0.1:1 refused the connection"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// With `RUST_BACKTRACE=1` in the environment, a failure of ours is still logged as one short
/// line with its cause, not a backtrace through the web framework's types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_logs_are_one_line_with_the_cause_whatever_rust_backtrace_says() {
    let db = TestDb::new(common::Backend::Sqlite).await.unwrap();
    let service =
        common::serve_process_with(&db.url, "campaign-demo.toml", &[("RUST_BACKTRACE", "1")]);
    // A round in a state no code writes: reading it is a failure of ours.
    db.execute(
        "PRAGMA ignore_check_constraints = ON; UPDATE rounds SET progress = 'bogus' WHERE number = 1",
    )
    .await;
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let res = client
            .get(format!("{}/api/rounds/1", service.base))
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(res).await, (500, "internal_error".into()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = service.logged();
    let failures: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("unknown round progress"))
        .collect();
    assert!(
        failures.len() >= 20,
        "each failure is logged with its cause: {log:?}"
    );
    let longest = log.iter().map(String::len).max().unwrap_or(0);
    assert!(longest < 2048, "a log line of {longest} bytes");
    let traced: Vec<&String> = log
        .iter()
        .filter(|l| l.to_lowercase().contains("backtrace") || l.contains("  at "))
        .collect();
    assert!(traced.is_empty(), "no backtrace in the log: {traced:?}");
}

/// `campaign-lottery` with the demo's settings on `db_url`.
fn command(db_url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_campaign-lottery"))
        .args(["--config-dir", common::repo_config_dir().to_str().unwrap()])
        .args(args)
        .env("APP_DATABASE__URL", db_url)
        .env("APP_CAMPAIGN__FILE", "campaign-demo.toml")
        .env_remove("APP_ENVIRONMENT")
        .output()
        .unwrap()
}

/// Four clients signing up new phones at `base` one after another until stopped, counting the
/// sign-ups begun and done.
struct SignUps {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    begun: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    done: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl SignUps {
    fn start(client: &reqwest::Client, base: &str, db_url: &str) -> Self {
        use std::sync::atomic::Ordering;
        let (stop, begun, done) = <(
            std::sync::Arc<std::sync::atomic::AtomicBool>,
            std::sync::Arc<std::sync::atomic::AtomicUsize>,
            std::sync::Arc<std::sync::atomic::AtomicUsize>,
        )>::default();
        let workers = (0..4)
            .map(|w| {
                let (client, base, url) = (client.clone(), base.to_owned(), db_url.to_owned());
                let (stop, begun, done) = (stop.clone(), begun.clone(), done.clone());
                tokio::spawn(async move {
                    let mut i = w;
                    while !stop.load(Ordering::Relaxed) {
                        begun.fetch_add(1, Ordering::Relaxed);
                        assert_eq!(register(&client, &base, &url, &phone(i)).await, (201, None));
                        done.fetch_add(1, Ordering::Relaxed);
                        i += 4;
                    }
                })
            })
            .collect();
        Self {
            stop,
            begun,
            done,
            workers,
        }
    }

    fn done(&self) -> usize {
        self.done.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sign-ups begun and not finished now.
    fn in_flight(&self) -> usize {
        self.begun.load(std::sync::atomic::Ordering::Relaxed) - self.done()
    }

    async fn until_done(&self, n: usize) {
        while self.done() < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in self.workers {
            w.await.unwrap();
        }
    }
}

/// A database restored from a backup taken while `before..=after` sign-ups were done: each
/// sign-up wholly in it or not at all, and as many as were done by then; its audit chain
/// verifies; a service serves from it, knows who had signed up and takes new sign-ups. The
/// number of participants in it.
async fn restored_whole(
    client: &reqwest::Client,
    restored: &TestDb,
    before: usize,
    after: usize,
) -> i64 {
    let participants = restored.scalar("SELECT COUNT(*) FROM participants").await;
    assert_eq!(
        participants,
        restored
            .scalar("SELECT COUNT(*) FROM participant_sessions")
            .await,
        "each sign-up wholly in the copy or not at all"
    );
    assert!(
        participants >= before as i64 && participants <= after as i64,
        "{before} ≤ {participants} ≤ {after}"
    );
    let verified = command(&restored.url, &["audit", "verify"]);
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let service = common::serve_process(&restored.url, "campaign-demo.toml");
    assert_eq!(readiness(client, &service.base).await.0, 200);
    assert_eq!(
        restored
            .scalar(&format!(
                "SELECT COUNT(*) FROM participants WHERE phone = '{}'",
                phone(0)
            ))
            .await,
        1,
        "the copy knows who had signed up"
    );
    assert_eq!(
        register(client, &service.base, &restored.url, &phone(99_999)).await,
        (201, None),
        "the copy takes new sign-ups"
    );
    participants
}

/// A backup taken while the service takes sign-ups is a consistent copy (each sign-up's
/// participant and session both there or both not), passes its integrity check, and restores:
/// a service starts on it, its audit chain verifies, and it holds nothing the live database does
/// not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_backup_taken_under_load_restores() {
    let db = TestDb::new(common::Backend::Sqlite).await.unwrap();
    let service = common::serve_process(&db.url, "campaign-demo.toml");
    let client = reqwest::Client::new();
    let sign_ups = SignUps::start(&client, &service.base, &db.url);
    sign_ups.until_done(300).await;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.db");
    let before = sign_ups.done();
    // Sign-ups under way as the backup starts (the copy takes a few milliseconds, often less
    // than one sign-up, so none may finish while it runs).
    let in_flight = sign_ups.in_flight();
    let out = {
        let (url, copy) = (db.url.clone(), copy.to_str().unwrap().to_owned());
        tokio::task::spawn_blocking(move || command(&url, &["backup", &copy]))
            .await
            .unwrap()
    };
    let after = sign_ups.done();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("integrity check ok"), "{said}");
    sign_ups.until_done(after + 100).await;
    sign_ups.stop().await;
    assert!(in_flight > 0, "sign-ups were under way during the backup");

    let copied = TestDb::sqlite_at(&copy);
    assert_eq!(copied.text("PRAGMA integrity_check").await, "ok");
    let live = db.scalar("SELECT COUNT(*) FROM participants").await;
    let participants = restored_whole(&client, &copied, before, after).await;
    assert!(live > participants);
    common::say(&format!(
        "backup under load: {participants} participants in the copy, {live} live after; {}",
        said.trim()
    ));

    // A second backup to the same file is refused, the first left as it was.
    let again = command(&db.url, &["backup", copy.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert_eq!(copied.text("PRAGMA integrity_check").await, "ok");
    drop(service);
}

/// The PostgreSQL procedure of docs/operations.md: `pg_dump -Fc` while the service takes
/// sign-ups, `pg_restore` into an empty database, and the copy is consistent, verifies and
/// serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_dump_taken_under_load_restores() {
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    let app = TestApp::spawn(db).await;
    let client = reqwest::Client::new();
    let sign_ups = SignUps::start(&client, &app.address, &app.db.url);
    sign_ups.until_done(300).await;
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("campaign.dump");
    let before = sign_ups.done();
    let out = {
        let (url, dump) = (app.db.url.clone(), dump.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("pg_dump")
                .args(["--format=custom", "--no-owner", "--dbname", &url, "--file"])
                .arg(&dump)
                .output()
        })
        .await
        .unwrap()
    };
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            assert_ne!(
                std::env::var("REQUIRE_POSTGRES").as_deref(),
                Ok("1"),
                "pg_dump: {e}"
            );
            common::say(&format!("SKIPPED (no pg_dump: {e})"));
            sign_ups.stop().await;
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = sign_ups.done();
    sign_ups.until_done(after + 100).await;
    sign_ups.stop().await;

    let restored = TestDb::new(common::Backend::Postgres).await.unwrap();
    let out = std::process::Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname", &restored.url])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let participants = restored_whole(&client, &restored, before, after).await;
    common::say(&format!(
        "pg_dump under load: {participants} participants in the dump ({before}..{after} signed up meanwhile)"
    ));
}

/// nginx, stopped when dropped: SIGTERM to the master, which stops its workers (a SIGKILL
/// would leave them running, holding the ports and the test's output pipe).
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The deployment of docker-compose.yml, on this machine: Debian's nginx with the shipped
/// configuration (deploy/nginx/campaign.conf, only its addresses and certificate paths changed)
/// terminating TLS in front of two service processes on one PostgreSQL. The per-address limit
/// counts the address nginx appended, not the ones a client writes into X-Forwarded-For itself,
/// across both instances; the session cookie is Secure; plain HTTP is sent to HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_two_instances_count_the_real_client_address() {
    let nginx_binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(nginx_binary) = nginx_binary else {
        assert_ne!(
            std::env::var("REQUIRE_NGINX").as_deref(),
            Ok("1"),
            "REQUIRE_NGINX=1 but nginx is not installed"
        );
        common::say("SKIPPED (no nginx: apt-get install nginx to run the proxy test)");
        return;
    };
    let Some(db) = TestDb::new(common::Backend::Postgres).await else {
        return;
    };
    let env = [
        ("APP_SERVER__TRUSTED_PROXIES", "1"),
        ("APP_SERVER__HTTPS", "true"),
        ("APP_LOGIN__ADDRESS_CODES_PER_HOUR", "4"),
    ];
    let a = common::serve_process_with(&db.url, "campaign-demo.toml", &env);
    let b = common::serve_process_with(&db.url, "campaign-demo.toml", &env);
    let port_of = |base: &str| base.rsplit(':').next().unwrap().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (http_port, https_port) = (common::free_port(), common::free_port());
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx/campaign.conf"),
    )
    .unwrap();
    let mut conf = shipped.clone();
    for (from, to) in [
        (
            "server app1:8080",
            format!("server 127.0.0.1:{}", port_of(&a.base)),
        ),
        (
            "server app2:8080",
            format!("server 127.0.0.1:{}", port_of(&b.base)),
        ),
        ("listen 80;", format!("listen 127.0.0.1:{http_port};")),
        (
            "listen 443 ssl",
            format!("listen 127.0.0.1:{https_port} ssl"),
        ),
        ("/etc/nginx/tls/", format!("{}/", dir.path().display())),
    ] {
        assert!(
            conf.contains(from),
            "the shipped configuration has {from:?}"
        );
        conf = conf.replace(from, &to);
    }
    std::fs::write(dir.path().join("campaign.conf"), conf).unwrap();
    let prefix = dir.path().display();
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "daemon off;\nuser root;\nworker_processes 1;\npid {prefix}/nginx.pid;\n\
             error_log {prefix}/error.log;\nevents {{ worker_connections 256; }}\n\
             http {{ access_log off; include {prefix}/campaign.conf; }}\n"
        ),
    )
    .unwrap();
    let _nginx = Nginx(
        std::process::Command::new(nginx_binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let proxy = format!("https://127.0.0.1:{https_port}");
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let started = Instant::now();
    loop {
        match client.get(format!("{proxy}/readyz")).send().await {
            Ok(res) if res.status() == 200 => {
                assert!(res.headers().contains_key("strict-transport-security"));
                break;
            }
            other => {
                let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "nginx does not serve: {other:?}\n{log}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let plain = client
        .get(format!("http://127.0.0.1:{http_port}/draws"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 301);
    assert!(plain.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("https://"));

    // Signed up through the proxy (one code request): the session cookie is Secure.
    let res = common::sign_up_at(&client, &proxy, &db.url, &phone(0), json!({})).await;
    assert_eq!(res.status(), 201);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
    // Four more code requests, each claiming another address: the limit of four counts the
    // one nginx saw, over both instances.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let forged = format!("10.9.8.{i}");
        let res = common::request_code_from(&client, &proxy, &phone(i + 1), Some(&forged)).await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [202, 202, 202, 429]);
    for (name, instance) in [("a", &a), ("b", &b)] {
        let metrics = reqwest::get(format!("{}/metrics", instance.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("http_requests_total") && l.contains("/api/login/code")),
            "instance {name} served code requests"
        );
    }
}
