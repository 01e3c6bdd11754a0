//! A real browser for the page tests: Debian's Chromium, headless, driven over WebDriver (chromedriver) by
//! fantoccini. `Browser::open` finds the tools (or says the test skipped, unless `SLUICE_REQUIRE_BROWSER=1`, as in
//! CI, when it fails); `Browser::run` runs a scenario and saves a screenshot of the page if it panics.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::proc::free_port;

/// `chromium` and `chromedriver`, from `SLUICE_CHROMIUM` / `SLUICE_CHROMEDRIVER` or Debian's paths.
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let find = |var: &str, default: &str| {
        let path = std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default));
        path.is_file().then_some(path)
    };
    Some((
        find("SLUICE_CHROMIUM", "/usr/bin/chromium")?,
        find("SLUICE_CHROMEDRIVER", "/usr/bin/chromedriver")?,
    ))
}

/// chromedriver on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(chromedriver: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http
            .get(format!("{}/status", driver.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return driver;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer on {} within 20 s",
            driver.url
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A headless Chromium session with its own profile; the driver and the profile live as long as it does.
pub struct Browser {
    pub client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Chromium through chromedriver, or `None` after saying the test skipped (a failure when
    /// `SLUICE_REQUIRE_BROWSER=1`).
    pub async fn open(test: &str) -> Option<Browser> {
        let Some((chromium, chromedriver)) = browser_tools() else {
            assert!(
                std::env::var("SLUICE_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "SLUICE_REQUIRE_BROWSER=1 but chromium or chromedriver is missing: \
                 apt-get install -y chromium chromium-driver"
            );
            eprintln!(
                "SKIPPED {test}: /usr/bin/chromium or /usr/bin/chromedriver not found \
                 (apt-get install -y chromium chromium-driver, or set SLUICE_CHROMIUM / SLUICE_CHROMEDRIVER)"
            );
            return None;
        };
        let driver = start_driver(&chromedriver).await;
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", format!("--user-data-dir={}", profile.path().display())],
            },
        });
        let caps = caps.as_object().cloned().unwrap_or_default();
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("start a headless Chromium session through chromedriver");
        Some(Browser {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Runs `scenario`; if it panics, saves a screenshot of the page to `target/browser-screenshots/{name}.png`
    /// before passing the panic on. The browser session is closed either way.
    pub async fn run<F>(self, name: &str, scenario: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let outcome = tokio::spawn(scenario).await;
        if let Err(e) = outcome {
            let dir = screenshot_dir();
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{name}.png"));
            match self.client.screenshot().await {
                Ok(png) => match std::fs::write(&file, png) {
                    Ok(()) => eprintln!("screenshot of the failing page: {}", file.display()),
                    Err(w) => eprintln!("could not save the screenshot to {}: {w}", file.display()),
                },
                Err(s) => eprintln!("could not take a screenshot: {s}"),
            }
            let _ = self.client.close().await;
            std::panic::resume_unwind(e.into_panic());
        }
        self.client.close().await.unwrap();
    }
}

fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("browser-screenshots")
}

/// The text of the element at `css` once `ok` holds for it, polling; panics with the last text seen.
pub async fn wait_text(c: &Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::from("(element not found)");
    while Instant::now() < deadline {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(text) = e.text().await {
                if ok(&text) {
                    return text;
                }
                last = text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what} in {css:?}; last text: {last:?}");
}

pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css:?} on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("could not click {css:?}: {e}"));
}

pub async fn type_into(c: &Client, css: &str, text: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css:?} on the page: {e}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

pub async fn path_of(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}
