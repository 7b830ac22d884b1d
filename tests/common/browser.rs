//! A real headless Chromium through chromedriver, for the browser tests and the benchmark of
//! the proof of work in a browser.

use fantoccini::{Client, ClientBuilder};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Driver {
    process: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Starts chromedriver, or explains why the browser tests cannot run.
pub async fn driver() -> Option<(Driver, PathBuf)> {
    let chromedriver = std::env::var("CHROMEDRIVER")
        .ok()
        .map(PathBuf::from)
        .or_else(|| find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]));
    let chromium = std::env::var("CHROMIUM")
        .ok()
        .map(PathBuf::from)
        .or_else(|| {
            find(&[
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/usr/bin/google-chrome",
            ])
        });
    let (Some(chromedriver), Some(chromium)) = (chromedriver, chromium) else {
        if std::env::var("REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("REQUIRE_BROWSER=1 but chromium and chromedriver were not found (apt-get install chromium chromium-driver)");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED (no chromium/chromedriver: apt-get install chromium chromium-driver to run the browser tests)"
        );
        return None;
    };
    let port = super::free_port();
    let process = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    // Owned at once, so that the process is killed and reaped whatever happens next.
    let driver = Driver {
        process,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if reqwest::get(format!("{}/status", driver.url)).await.is_ok() {
            return Some((driver, chromium));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

/// A new browser with an empty profile of its own, as on a new phone.
pub async fn browser(
    driver: &Driver,
    chromium: &PathBuf,
    width: u32,
    profile: &tempfile::TempDir,
) -> Client {
    browser_sized(driver, chromium, width, 900, profile).await
}

/// [`browser`] with a viewport of `width` × `height` (a projector's 1920 × 1080).
pub async fn browser_sized(
    driver: &Driver,
    chromium: &PathBuf,
    width: u32,
    height: u32,
    profile: &tempfile::TempDir,
) -> Client {
    let mut caps = serde_json::Map::new();
    let options = serde_json::json!({
        "binary": chromium,
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--lang=zh-CN",
            format!("--window-size={},{height}", width.max(500)),
            format!("--user-data-dir={}", profile.path().display()),
        ]
    });
    caps.insert("goog:chromeOptions".into(), options);
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session");
    // Headless Chromium makes no window narrower than 500 px: a phone's width is set on the
    // page's viewport instead (what DevTools' device mode does), so layouts are 360 px for real.
    if width < 500 || height != 900 {
        client
            .issue_cmd(Cdp {
                cmd: "Emulation.setDeviceMetricsOverride",
                params: serde_json::json!({
                    "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false
                }),
            })
            .await
            .expect("the phone's width");
    }
    client
}

/// A Chrome DevTools Protocol command, through chromedriver.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

/// axe-core, vendored from its npm package (tests/vendor/axe-core/README.md).
const AXE: &str = include_str!("../vendor/axe-core/axe.min.js");

/// Runs axe-core on the page as it is now and fails on any violation, naming each rule and the
/// elements it found. `state` names the page state in the message.
pub async fn audit(c: &Client, state: &str) {
    let violations = axe_violations(c).await;
    assert!(
        violations.is_empty(),
        "axe-core finds {} violation(s) on {state}:\n{}",
        violations.len(),
        serde_json::to_string_pretty(&violations).unwrap()
    );
}

/// What axe-core finds wrong on the page as it is now: each rule broken, with up to five of
/// the elements breaking it.
pub async fn axe_violations(c: &Client) -> Vec<serde_json::Value> {
    // Injected through WebDriver, which the pages' strict CSP does not limit.
    let loaded = c
        .execute("return typeof window.axe === 'object';", vec![])
        .await
        .unwrap();
    if loaded != serde_json::Value::Bool(true) {
        c.execute(&format!("{AXE}\n;window.axe = axe;"), vec![])
            .await
            .expect("axe-core loads");
    }
    let report = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then((r) => done(r.violations.map((v) => ({
                   id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + n.failureSummary),
               }))))
               .catch((e) => done([{ id: 'axe-error', help: String(e), nodes: [] }]));",
            vec![],
        )
        .await
        .unwrap();
    report.as_array().cloned().unwrap_or_default()
}

/// The participant pages' rules for phones, checked on the page as it is now: reading text at
/// 16 px or more, and every control at least 44 px high (links inside running text excepted,
/// as WCAG 2.5.8 allows). Fails naming the elements that break them.
pub async fn phone_rules(c: &Client, state: &str) {
    let found = c
        .execute(
            "const visible = (el) => {
                 const r = el.getBoundingClientRect();
                 const s = getComputedStyle(el);
                 return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && !el.closest('svg, .sr-only');
             };
             const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                 (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
             const small = [];
             for (const el of document.body.querySelectorAll('*')) {
                 const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
                 if (!own || !visible(el)) continue;
                 const px = parseFloat(getComputedStyle(el).fontSize);
                 if (px < 16) small.push(name(el) + ' ' + px + 'px: ' + el.textContent.trim().slice(0, 20));
             }
             const low = [];
             for (const el of document.querySelectorAll('button, input:not([type=hidden]), select, textarea, summary, a, label.check, label.option')) {
                 if (!visible(el)) continue;
                 if (el.matches('input[type=checkbox], input[type=radio]') && el.closest('label')) continue;
                 if (el.tagName === 'A' && el.closest('p, li, td, .small') && !el.matches('.btn')) continue;
                 const h = el.getBoundingClientRect().height;
                 if (h < 43.5) low.push(name(el) + ' ' + Math.round(h) + 'px: ' + (el.textContent || el.value || '').trim().slice(0, 20));
             }
             return { small, low, width: document.documentElement.scrollWidth };",
            vec![],
        )
        .await
        .unwrap();
    let list = |k: &str| {
        found[k]
            .as_array()
            .map(|a| a.iter().map(|v| v.to_string()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert!(
        list("small").is_empty(),
        "text under 16 px on {state}: {:#?}",
        list("small")
    );
    assert!(
        list("low").is_empty(),
        "tap targets under 44 px on {state}: {:#?}",
        list("low")
    );
    let width = found["width"].as_u64().unwrap_or(0);
    let viewport = c
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(0);
    assert!(
        width <= viewport,
        "{state} is {width} px wide in a {viewport} px window"
    );
}

/// No network at all for this browser from now on (a lift, a tunnel), until [`slow_network`].
pub async fn offline(c: &Client) {
    c.issue_cmd(Cdp {
        cmd: "Network.emulateNetworkConditions",
        params: serde_json::json!({
            "offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1,
        }),
    })
    .await
    .expect("CDP Network.emulateNetworkConditions");
}

/// A slow mobile network for every request of this browser from now on (Chrome DevTools
/// protocol): `latency_ms` each way and a few hundred kbit/s, as on a weak signal.
pub async fn slow_network(c: &Client, latency_ms: u32) {
    c.issue_cmd(Cdp {
        cmd: "Network.enable",
        params: serde_json::json!({}),
    })
    .await
    .expect("CDP Network.enable");
    c.issue_cmd(Cdp {
        cmd: "Network.emulateNetworkConditions",
        params: serde_json::json!({
            "offline": false,
            "latency": latency_ms,
            "downloadThroughput": 400 * 1024 / 8,
            "uploadThroughput": 200 * 1024 / 8,
        }),
    })
    .await
    .expect("CDP Network.emulateNetworkConditions");
}

/// Downloads from now on land in `dir` (Chrome DevTools protocol), for the tests to read.
pub async fn downloads_to(c: &Client, dir: &std::path::Path) {
    c.issue_cmd(Cdp {
        cmd: "Browser.setDownloadBehavior",
        params: serde_json::json!({"behavior": "allow", "downloadPath": dir}),
    })
    .await
    .expect("CDP Browser.setDownloadBehavior");
}

/// Lets the page at `origin` write and read the clipboard, as a person allowing it would.
pub async fn allow_clipboard(c: &Client, origin: &str) {
    c.issue_cmd(Cdp {
        cmd: "Browser.grantPermissions",
        params: serde_json::json!({
            "origin": origin,
            "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
        }),
    })
    .await
    .expect("CDP Browser.grantPermissions");
}

/// Waits for a file to be downloaded into `dir` whose name contains `name`: its text.
pub async fn downloaded(dir: &std::path::Path, name: &str) -> String {
    for _ in 0..100 {
        let done = std::fs::read_dir(dir).ok().and_then(|entries| {
            entries.flatten().map(|e| e.path()).find(|p| {
                let file = p.file_name().unwrap_or_default().to_string_lossy();
                file.contains(name) && !file.ends_with(".crdownload")
            })
        });
        if let Some(path) = done {
            if let Ok(text) = std::fs::read_to_string(&path) {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no download named like {name} in {}", dir.display());
}
