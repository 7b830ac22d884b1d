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
    let mut caps = serde_json::Map::new();
    let options = serde_json::json!({
        "binary": chromium,
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--lang=zh-CN",
            format!("--window-size={},900", width.max(500)),
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
    if width < 500 {
        client
            .issue_cmd(Cdp {
                cmd: "Emulation.setDeviceMetricsOverride",
                params: serde_json::json!({
                    "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": false
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
