//! One end-to-end set-up for the tests that drive the real binary: a temporary directory, the Slack simulator, the
//! internal-system stub ([`super::internal`]), a config written for them, and `sluice serve` started on it with the
//! simulator pointed at it. [`Fixture::builder`] says what differs from test to test; [`Fixture`] then stops,
//! restarts and adds replicas, and moves the test clock.
//!
//! ```ignore
//! let s = Fixture::builder()
//!     .signed()
//!     .config(|p| format!("[[action]]\nname = \"deploy\"\nurl = \"http://{}/deploy\"\n", p.internal))
//!     .start()
//!     .await;
//! ```
#![allow(dead_code)]

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use sluice_sim::{RunningSim, Simulator};

use super::internal::{start_internal_answering, Internal, OUTGOING_SECRET};
use super::proc::{self, Sluice};

/// What a test's config is written against.
pub struct Places<'a> {
    /// The test's directory: the config, the database and secret files live here.
    pub dir: &'a Path,
    pub sim: SocketAddr,
    /// The internal-system stub.
    pub internal: SocketAddr,
    /// The database URL ([`Builder::db`], or SQLite in `dir`).
    pub db: &'a str,
}

type Tables = Box<dyn FnOnce(&Places<'_>) -> String>;
type Whole = Box<dyn FnOnce(&Places<'_>) -> PathBuf>;

pub struct Builder {
    sim: Option<(Simulator, RunningSim)>,
    dir: Option<tempfile::TempDir>,
    answer: Value,
    signed: bool,
    response_urls: bool,
    slack: String,
    tables: Option<Tables>,
    whole: Option<Whole>,
    db: Option<String>,
    clock: Option<String>,
    env: Vec<(String, OsString)>,
    migrate_first: bool,
}

/// A running set-up. Dropping it stops `sluice serve`, the simulator and the stub, and removes the directory.
pub struct Fixture {
    pub sluice: Sluice,
    pub sim: Simulator,
    pub internal: Arc<Internal>,
    pub internal_addr: SocketAddr,
    /// The config file `serve` runs on.
    pub config: PathBuf,
    /// The test clock's file (`SLUICE_CLOCK_FILE`), set when [`Builder::clock`] was.
    pub clock: PathBuf,
    pub sim_run: RunningSim,
    pub dir: tempfile::TempDir,
    env: Vec<(String, OsString)>,
}

impl Fixture {
    pub fn builder() -> Builder {
        Builder {
            sim: None,
            dir: None,
            answer: json!({"ok": true, "version": "1.2.2"}),
            signed: false,
            response_urls: false,
            slack: String::new(),
            tables: None,
            whole: None,
            db: None,
            clock: None,
            env: Vec::new(),
            migrate_first: false,
        }
    }

    /// The running server's address.
    pub fn addr(&self) -> SocketAddr {
        self.sluice.addr
    }

    /// SIGKILL, nothing shut down cleanly; the server is gone until [`Fixture::restart`].
    pub fn stop(&mut self) {
        let _ = self.sluice.child.kill();
        let _ = self.sluice.child.wait();
    }

    /// Stops the server (if it runs) and starts it again on the same config, clock and environment; the simulator
    /// is pointed at the new one.
    pub fn restart(&mut self) {
        self.stop();
        self.sluice = self.start_another();
        self.sim
            .set_app_base_url(format!("http://{}", self.sluice.addr));
    }

    /// Another `sluice serve` on the same config (a replica: it shares the database). The simulator stays pointed
    /// where it was.
    pub fn start_another(&self) -> Sluice {
        serve(&self.config, &self.env)
    }

    /// Moves the test clock to an RFC 3339 time.
    pub fn set_clock(&self, at: &str) {
        proc::set_clock(&self.clock, at);
    }
}

impl Builder {
    /// The simulator to use instead of a fresh one that creates channels on the first post ([`proc::start_sim`]).
    pub fn sim(mut self, sim: (Simulator, RunningSim)) -> Builder {
        self.sim = Some(sim);
        self
    }

    /// The test's own directory (when it wrote files there before the set-up), instead of a fresh one.
    pub fn dir(mut self, dir: tempfile::TempDir) -> Builder {
        self.dir = Some(dir);
        self
    }

    /// What the internal-system stub answers when nothing is scripted (default `{"ok": true, "version":
    /// "1.2.2"}`).
    pub fn internal_stub(mut self, answer: Value) -> Builder {
        self.answer = answer;
        self
    }

    /// Slack's requests are served: the simulator's signing secret in `signing` (named under `[slack]`) and the
    /// outgoing calls' secret in `outgoing` (for `[actions] outgoing_secret_file = "outgoing"`).
    pub fn signed(mut self) -> Builder {
        self.signed = true;
        self
    }

    /// `[slack] response_url_hosts` lets replies go to the simulator.
    pub fn response_urls(mut self) -> Builder {
        self.response_urls = true;
        self
    }

    /// More lines for `[slack]`.
    pub fn slack(mut self, lines: &str) -> Builder {
        self.slack.push_str(lines);
        self
    }

    /// The tables after the common ones ([`proc::write_config_full`]'s server, storage, slack, API key).
    pub fn config(mut self, tables: impl FnOnce(&Places<'_>) -> String + 'static) -> Builder {
        self.tables = Some(Box::new(tables));
        self
    }

    /// The test writes the whole config itself and returns its path.
    pub fn whole_config(mut self, write: impl FnOnce(&Places<'_>) -> PathBuf + 'static) -> Builder {
        self.whole = Some(Box::new(write));
        self
    }

    /// The database (a PostgreSQL URL), instead of SQLite in the test's directory.
    pub fn db(mut self, url: &str) -> Builder {
        self.db = Some(url.to_string());
        self
    }

    /// The server runs on a test clock starting at this RFC 3339 time.
    pub fn clock(mut self, at: &str) -> Builder {
        self.clock = Some(at.to_string());
        self
    }

    /// An environment variable for the server.
    pub fn env(mut self, name: &str, value: &str) -> Builder {
        self.env.push((name.to_string(), value.into()));
        self
    }

    /// `sluice migrate` runs before `serve` (needed on PostgreSQL, where `serve` does not migrate).
    pub fn migrate_first(mut self) -> Builder {
        self.migrate_first = true;
        self
    }

    /// Starts everything and waits for `serve` to say where it listens.
    pub async fn start(mut self) -> Fixture {
        let dir = match self.dir.take() {
            Some(dir) => dir,
            None => tempfile::tempdir().unwrap(),
        };
        let (sim, sim_run) = match self.sim.take() {
            Some(sim) => sim,
            None => proc::start_sim().await,
        };
        let (internal, internal_addr) = start_internal_answering(self.answer).await;
        let db = self
            .db
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("sluice.db").display()));
        let places = Places {
            dir: dir.path(),
            sim: sim_run.addr,
            internal: internal_addr,
            db: &db,
        };
        let mut slack = String::new();
        if self.signed {
            std::fs::write(
                dir.path().join("signing"),
                sluice_sim::DEFAULT_SIGNING_SECRET,
            )
            .unwrap();
            std::fs::write(dir.path().join("outgoing"), OUTGOING_SECRET).unwrap();
            slack.push_str("signing_secret_file = \"signing\"\n");
        }
        if self.response_urls {
            slack.push_str(&format!(
                "response_url_hosts = [\"http://{}\"]\n",
                sim_run.addr
            ));
        }
        slack.push_str(&self.slack);
        let config = match (self.whole, self.tables) {
            (Some(write), _) => write(&places),
            (None, tables) => {
                let extra = tables.map(|t| t(&places)).unwrap_or_default();
                proc::write_config_full(dir.path(), sim_run.addr, &db, &slack, &extra)
            }
        };
        let clock = dir.path().join("clock");
        if let Some(at) = &self.clock {
            proc::set_clock(&clock, at);
            self.env
                .insert(0, ("SLUICE_CLOCK_FILE".into(), clock.clone().into()));
        }
        if self.migrate_first {
            proc::migrate(&config);
        }
        let sluice = serve(&config, &self.env);
        sim.set_app_base_url(format!("http://{}", sluice.addr));
        Fixture {
            sluice,
            sim,
            internal,
            internal_addr,
            config,
            clock,
            sim_run,
            dir,
            env: self.env,
        }
    }
}

/// `sluice serve` on `config` with `env` set.
fn serve(config: &Path, env: &[(String, OsString)]) -> Sluice {
    let env: Vec<(&str, &Path)> = env
        .iter()
        .map(|(k, v)| (k.as_str(), Path::new(v)))
        .collect();
    proc::start_sluice_env(config, &env)
}
