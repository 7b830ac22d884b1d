//! What the HTTP benchmarks share: load from `wrk` replaying prepared requests once each, and
//! latency percentiles.
#![allow(dead_code)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The value after `name` among the command's arguments (`--clients 16`), else `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `work(i)` for every i below `n` with `clients` concurrent workers, each taking the next
/// i when done with its last (a closed loop); the figures of the whole.
pub async fn closed_loop<F, Fut>(n: usize, clients: usize, work: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (work, next) = (work.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                work(i).await;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    figures(n, all, started.elapsed().as_secs_f64())
}

/// One prepared request: `POST path` with a bearer token, an optional Idempotency-Key and a
/// JSON body.
pub struct Request {
    pub path: String,
    pub token: String,
    pub key: Option<String>,
    pub body: String,
}

pub struct Figures {
    /// Answers read within the run.
    pub requests: usize,
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The figures of `requests` answered in `elapsed` seconds with these latencies (ms).
pub fn figures(requests: usize, mut latencies: Vec<f64>, elapsed: f64) -> Figures {
    latencies.sort_by(|a, b| a.total_cmp(b));
    Figures {
        requests,
        rate: requests as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
    }
}

/// Runs `wrk` (its own process: 2 threads, `clients` connections, `seconds`) with
/// `benches/replay.lua`, each prepared request sent once; every answer must be `200`. None when
/// wrk is not installed.
pub fn run_wrk(
    base: &str,
    requests: &[Request],
    clients: usize,
    seconds: usize,
) -> Option<Figures> {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("requests.tsv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&data).unwrap());
    for r in requests {
        let key = r.key.as_deref().unwrap_or("-");
        writeln!(f, "{}\t{}\t{}\t{}", r.path, r.token, key, r.body).unwrap();
    }
    drop(f);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/replay.lua");
    let out = std::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{clients}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(base)
        .arg("--")
        .arg(&data)
        .arg("2")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("RESULT "))?;
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    assert_eq!(field("non200"), 0.0, "every request succeeds: {line}");
    assert_eq!(
        field("exhausted"),
        0.0,
        "prepare more requests than wrk sends: {line}"
    );
    Some(Figures {
        requests: field("requests") as usize,
        rate: field("requests") / (field("duration_us") / 1e6),
        p50_ms: field("p50_us") / 1000.0,
        p99_ms: field("p99_us") / 1000.0,
    })
}
