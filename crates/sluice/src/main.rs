//! The `sluice` command: a thin layer of argument parsing over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{CommandFactory, Parser, Subcommand};
use serde_json::{json, Map, Value};
use sluice::config::{Config, LogFormat, ProcessEnv};

/// The ingest path allocates many small strings and JSON values per event; glibc's malloc
/// spent about a fifth of the CPU under load (perf), mimalloc much less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `0.1.0 (abc1234)`: the release and the commit it was built from (`build.rs`; "unknown" outside a git checkout).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SLUICE_COMMIT"), ")");

#[derive(Parser)]
#[command(
    name = "sluice",
    version = VERSION,
    about = "Operations gateway between your systems and Slack"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, short, default_value = "sluice.toml", env = "SLUICE_CONFIG")]
        config: PathBuf,
    },
    /// Run Sluice against the built-in Slack simulator with a sample stream of events.
    Demo {
        /// Where the demo keeps its SQLite database and config.
        #[arg(long, default_value = ".sluice-demo")]
        data_dir: PathBuf,
        /// Print the summary and exit instead of serving until Ctrl-C.
        #[arg(long)]
        no_wait: bool,
    },
    /// Run the Slack simulator on its own.
    Sim {
        #[arg(long, default_value = "127.0.0.1:9999")]
        listen: std::net::SocketAddr,
        /// A channel that exists from the start, with the bot and every simulated person in it
        /// (repeat for more). Posting to any other channel answers `channel_not_found`, as Slack does.
        #[arg(long = "channel", value_name = "NAME")]
        channels: Vec<String>,
        /// Create a channel when something posts to an unknown name (unlike Slack).
        #[arg(long)]
        auto_create_channels: bool,
    },
    /// Validate a config file: every problem with its line and the fix.
    Check {
        #[arg(long, short, default_value = "sluice.toml", env = "SLUICE_CONFIG")]
        config: PathBuf,
    },
    /// Print the Slack app manifest (YAML) the config needs: its scopes, events, slash command and interactivity.
    Manifest {
        #[arg(long, short, default_value = "sluice.toml", env = "SLUICE_CONFIG")]
        config: PathBuf,
        /// The HTTPS URL Slack reaches Sluice at (not used with Socket Mode); without it, a placeholder to replace.
        #[arg(long)]
        url: Option<String>,
    },
    /// Preview routing: what an event would do under a config, without sending anything.
    Route {
        #[command(subcommand)]
        action: RouteAction,
    },
    /// Print a shell completion script: `sluice completions bash > /etc/bash_completion.d/sluice`.
    Completions { shell: clap_complete::Shell },
    /// Apply database migrations.
    Migrate {
        #[arg(long, short, default_value = "sluice.toml", env = "SLUICE_CONFIG")]
        config: PathBuf,
    },
    /// Send one event to a running Sluice.
    Send(Box<SendArgs>),
    /// Create, list and expire silences on a running Sluice.
    Silence {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        action: SilenceAction,
    },
    /// Ask for an approval on a running Sluice (`request … --wait` blocks until decided).
    Approval {
        #[command(flatten)]
        api: ApprovalApiArgs,
        #[command(subcommand)]
        action: ApprovalAction,
    },
    /// Read and check the tamper-evident audit log of a running Sluice.
    Audit {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        out: OutputArgs,
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Inspect and replay dead letters on a running Sluice (replay needs the admin scope).
    Dlq {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        out: OutputArgs,
        #[command(subcommand)]
        action: DlqAction,
    },
    /// What became of an event on a running Sluice.
    Events {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        out: OutputArgs,
        #[command(subcommand)]
        action: EventsAction,
    },
}

#[derive(Subcommand)]
enum EventsAction {
    /// One event's state, fate, deliveries (channel and ts), groups and the actions taken on it.
    Get { id: String },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(clap::Args)]
struct OutputArgs {
    /// `table` for people, `json` (the API's answer) for scripts.
    #[arg(long, short, value_enum, default_value = "table", global = true)]
    output: Output,
}

#[derive(Subcommand)]
enum DlqAction {
    /// List dead letters, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Put dead letters back in the outbox.
    Replay {
        /// The dead letter's id (from `dlq list`).
        id: Option<i64>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

/// Like [`ApiArgs`], for a key with the approvals:write and read scopes.
#[derive(clap::Args)]
struct ApprovalApiArgs {
    /// Base URL of the Sluice server.
    #[arg(
        long,
        env = "SLUICE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// API key with the approvals:write and read scopes (from the environment, so it never shows in `ps`).
    #[arg(
        long = "api-key",
        env = "SLUICE_API_KEY",
        hide_env_values = true,
        global = true
    )]
    api_key: Option<String>,
}

#[derive(Subcommand)]
enum RouteAction {
    /// Like `amtool config routes test`: the route decision, inhibition rules, grouping key and the Block Kit the
    /// event would post. Silences are not consulted: they live in a running Sluice's database.
    Test(Box<RouteTestArgs>),
}

#[derive(clap::Args)]
struct RouteTestArgs {
    #[arg(long, short, default_value = "sluice.toml", env = "SLUICE_CONFIG")]
    config: PathBuf,
    /// Also consult the silences of the Sluice running at this URL (read with `GET /v1/silences`; the key from
    /// --api-key / SLUICE_API_KEY). Without it, silences are not consulted.
    #[arg(long)]
    url: Option<String>,
    /// API key with the read scope, for --url.
    #[arg(long = "api-key", env = "SLUICE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    #[command(flatten)]
    event: EventArgs,
}

#[derive(Subcommand)]
enum ApprovalAction {
    /// Exit codes with --wait: 0 approved, 1 rejected, 2 expired or cancelled, 3 error.
    Request(Box<sluice::approvals::cli::RequestArgs>),
}

#[derive(Subcommand)]
enum AuditAction {
    /// Audit records, oldest first.
    List {
        #[arg(long, default_value_t = 0)]
        since_id: i64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Recompute the hash chain; exits 1 naming the first broken record.
    Verify,
}

#[derive(clap::Args)]
struct ApiArgs {
    /// Base URL of the Sluice server.
    #[arg(
        long,
        env = "SLUICE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// API key; prefer the environment variable, so the key never shows in `ps`.
    #[arg(
        long = "api-key",
        env = "SLUICE_API_KEY",
        hide_env_values = true,
        global = true
    )]
    api_key: Option<String>,
}

impl ApiArgs {
    /// The key, or the error that says how to give one (clap cannot require an argument that is also global).
    fn key(&self) -> anyhow::Result<&str> {
        self.api_key
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("no API key: set SLUICE_API_KEY (or pass --api-key)"))
    }
}

#[derive(Subcommand)]
enum SilenceAction {
    /// Mute matching events: `sluice silence add -m service=checkout -m severity=~warn.* -d 1h -c "deploy"`.
    Add {
        /// `name=value`, `name!=value`, `name=~regex`, `name!~regex`; repeatable, all must match.
        #[arg(long = "match", short = 'm', required = true)]
        matchers: Vec<String>,
        /// How long: 30m, 2h, 1d.
        #[arg(long, short, default_value = "1h")]
        duration: String,
        #[arg(long, short, default_value = "")]
        comment: String,
        #[arg(long)]
        author: Option<String>,
    },
    /// Silences in force or pending (`--all` adds expired ones).
    List {
        #[arg(long)]
        all: bool,
    },
    /// End a silence now.
    Expire { id: String },
}

#[derive(clap::Args)]
struct SendArgs {
    /// Base URL of the Sluice server.
    #[arg(long, env = "SLUICE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API key; prefer the environment variable, so the key never shows in `ps`.
    #[arg(long = "api-key", env = "SLUICE_API_KEY", hide_env_values = true)]
    api_key: String,
    #[command(flatten)]
    event: EventArgs,
}

/// An event, from a JSON file or from flags (`send` and `route test` take the same).
#[derive(clap::Args)]
struct EventArgs {
    /// Use this JSON file (`-` for stdin): one event or an array, as `POST /v1/events` takes it.
    #[arg(long, visible_alias = "event", value_name = "FILE")]
    json: Option<PathBuf>,
    #[arg(long)]
    title: Option<String>,
    #[arg(long, default_value = "")]
    text: String,
    #[arg(long, default_value = "info")]
    severity: String,
    #[arg(long, default_value = "firing")]
    status: String,
    #[arg(long, default_value = "cli")]
    source: String,
    #[arg(long, default_value = "")]
    service: String,
    #[arg(long, default_value = "")]
    environment: String,
    /// `alert`, `deployment` or `message`.
    #[arg(long, default_value = "alert")]
    kind: String,
    /// `key=value`, repeatable.
    #[arg(long = "label")]
    labels: Vec<String>,
    #[arg(long)]
    dedup_key: Option<String>,
}

impl EventArgs {
    /// The request body: the file as it is, or an event built from the flags.
    fn body(&self) -> anyhow::Result<Value> {
        if let Some(path) = &self.json {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
            };
            return serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()));
        }
        let title = self
            .title
            .clone()
            .context("give --title (or --json FILE)")?;
        let mut labels = Map::new();
        for l in &self.labels {
            let (k, v) = l
                .split_once('=')
                .with_context(|| format!("--label {l:?} is not key=value"))?;
            labels.insert(k.to_string(), json!(v));
        }
        let mut e = json!({
            "title": title, "text": self.text, "severity": self.severity, "status": self.status,
            "source": self.source, "service": self.service, "environment": self.environment,
            "kind": self.kind, "labels": labels,
        });
        if let Some(k) = &self.dedup_key {
            e["dedup_key"] = json!(k);
        }
        Ok(e)
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    match Config::load(path, &ProcessEnv) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("{}: {w}", path.display());
            }
            Ok(cfg)
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("{}: {p}", path.display());
            }
            bail!(
                "{} has {} problem(s); nothing was started",
                path.display(),
                problems.len()
            )
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            let cfg = load(&config)?;
            init_logs(cfg.server.log_format);
            let listener = tokio::net::TcpListener::bind(cfg.server.listen)
                .await
                .with_context(|| format!("binding {}", cfg.server.listen))?;
            let running = sluice::server::start(cfg, listener).await?;
            running
                .state
                .config
                .set_path(std::fs::canonicalize(&config).unwrap_or(config));
            // The signal handlers go in before anyone is told the server is up: a supervisor that sends SIGTERM
            // (or SIGHUP) the moment it reads the line below must get a drain (or a reload), not the default death.
            reload_on_hangup(running.state.clone());
            let stop = shutdown_signal();
            // The one line on stdout: with `listen = "127.0.0.1:0"` it is how a supervisor or a test learns the port
            // the system chose, with no window in which another process could take it.
            println!("sluice listening on http://{}", running.addr);
            let signal = stop.await;
            tracing::info!(
                signal,
                "shutting down: no new connections; in-flight requests finish (up to 5 s), then the dispatcher hands its lanes back"
            );
            running.stop().await;
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { data_dir, no_wait } => {
            init_logs(LogFormat::Pretty);
            sluice::demo::run(&data_dir, !no_wait).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim {
            listen,
            channels,
            auto_create_channels,
        } => {
            init_logs(LogFormat::Pretty);
            let sim = sluice_sim::Simulator::new(sluice_sim::SimConfig {
                auto_create_channels,
                ..sluice_sim::SimConfig::default()
            });
            let people = sim.user_ids();
            for name in &channels {
                sim.create_channel_as_user(name, false, &people, true)
                    .map_err(|e| anyhow::anyhow!("--channel {name}: {e}"))?;
            }
            let running = sim.serve(listen).await?;
            let stop = shutdown_signal();
            println!(
                "Slack simulator on http://{}/ (Web API at http://{}/api/, token {})",
                running.addr,
                running.addr,
                sluice_sim::DEFAULT_TOKEN
            );
            stop.await;
            running.shutdown();
            Ok(ExitCode::SUCCESS)
        }
        // Refuses what `serve` refuses: a file with problems, or one `server::start` cannot build a client from.
        Command::Check { config } => {
            match Config::load(&config, &ProcessEnv).and_then(|cfg| match cfg.slack_client() {
                Ok(_) => Ok(cfg),
                Err(mut problems) => {
                    problems.extend(cfg.warnings);
                    Err(problems)
                }
            }) {
                Ok(cfg) => {
                    for w in &cfg.warnings {
                        println!("{}: {w}", config.display());
                    }
                    println!(
                        "{}: ok ({} warning(s))",
                        config.display(),
                        cfg.warnings.len()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(problems) => {
                    for p in &problems {
                        println!("{}: {p}", config.display());
                    }
                    let errors = problems.iter().filter(|p| !p.warning).count();
                    println!("{}: {errors} error(s)", config.display());
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Migrate { config } => {
            let cfg = load(&config)?;
            let report = sluice_store::migrate(&cfg.storage_url).await?;
            println!("{report:?}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Send(args) => send(*args).await,
        Command::Silence { api, action } => silence(api, action).await,
        Command::Approval { api, action } => {
            let key = api.api_key.as_deref().ok_or_else(|| {
                anyhow::anyhow!("no API key: set SLUICE_API_KEY (or pass --api-key)")
            })?;
            match action {
                ApprovalAction::Request(args) => {
                    Ok(sluice::approvals::cli::request(&api.url, key, *args).await)
                }
            }
        }
        Command::Manifest { config, url } => match sluice::manifest::load(&config, &ProcessEnv) {
            Ok(cfg) => {
                let name = config.display().to_string();
                let text = sluice::manifest::render(&cfg, &name, url.as_deref())
                    .map_err(anyhow::Error::msg)?;
                print!("{text}");
                Ok(ExitCode::SUCCESS)
            }
            Err(problems) => {
                for p in problems.iter().filter(|p| !p.warning) {
                    eprintln!("{}: {p}", config.display());
                }
                bail!("{} has problems; no manifest was made", config.display())
            }
        },
        Command::Route {
            action: RouteAction::Test(args),
        } => {
            let cfg = load(&args.config)?;
            let body = args.event.body()?;
            let silences = match &args.url {
                None => None,
                Some(url) => {
                    let api = ApiArgs {
                        url: url.clone(),
                        api_key: args.api_key.clone(),
                    };
                    let (status, v) =
                        api_call(&api, reqwest::Method::GET, "/v1/silences", None).await?;
                    if !status.is_success() {
                        return Ok(refused(status, &v));
                    }
                    let list: Vec<sluice_store::Silence> =
                        serde_json::from_value(v["silences"].clone())
                            .context("reading the server's silences")?;
                    Some(list)
                }
            };
            match sluice::preview::explain(&cfg, &body, sluice::state::now(), silences.as_deref()) {
                Ok(text) => {
                    print!("{text}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { api, out, action } => audit(api, out.output, action).await,
        Command::Dlq { api, out, action } => dlq(api, out.output, action).await,
        Command::Events {
            api,
            out,
            action: EventsAction::Get { id },
        } => {
            let (status, v) = api_call(
                &api,
                reqwest::Method::GET,
                &format!("/v1/events/{id}"),
                None,
            )
            .await?;
            if !status.is_success() {
                return Ok(refused(status, &v));
            }
            if out.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{}  {}  source={}",
                v["id"].as_str().unwrap_or(&id),
                v["state"].as_str().unwrap_or("?"),
                v["source"].as_str().unwrap_or("")
            );
            println!("fate: {}", v["fate"]);
            for d in v["deliveries"].as_array().into_iter().flatten() {
                let state = &d["state"];
                let detail = state["ts"]
                    .as_str()
                    .or(state["reason"].as_str())
                    .or(d["last_error"].as_str())
                    .unwrap_or("");
                println!(
                    "  {:<18} #{:<20} {:<8} attempts={} {detail}",
                    d["method"].as_str().unwrap_or(""),
                    state["channel"]
                        .as_str()
                        .or(d["channel"].as_str())
                        .unwrap_or(""),
                    state["state"].as_str().unwrap_or(""),
                    d["attempts"],
                );
            }
            for a in v["actions"].as_array().into_iter().flatten() {
                println!("  action: {a}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One call to a running Sluice's API: the status and the JSON it answered (`null` if none).
async fn api_call(
    api: &ApiArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let url = format!("{}{path}", api.url.trim_end_matches('/'));
    let mut request = reqwest::Client::new()
        .request(method.clone(), &url)
        .bearer_auth(api.key()?);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let resp = request
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// A refusal as the server gave it, and a failing exit code.
fn refused(status: reqwest::StatusCode, v: &Value) -> ExitCode {
    eprintln!("{status} {v}");
    ExitCode::FAILURE
}

async fn dlq(api: ApiArgs, output: Output, action: DlqAction) -> anyhow::Result<ExitCode> {
    let (status, v) = match &action {
        DlqAction::List { limit } => {
            let path = format!("/v1/dead-letters?limit={limit}");
            api_call(&api, reqwest::Method::GET, &path, None).await?
        }
        DlqAction::Replay { id, all } => {
            let body = match (id, all) {
                (Some(id), _) => json!({ "id": id }),
                (None, true) => json!({ "all": true }),
                (None, false) => bail!("give a dead letter id or --all"),
            };
            let path = "/v1/dead-letters/replay";
            api_call(&api, reqwest::Method::POST, path, Some(body)).await?
        }
    };
    if !status.is_success() {
        return Ok(refused(status, &v));
    }
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    match action {
        DlqAction::List { .. } => {
            let dead = v["dead_letters"].as_array().cloned().unwrap_or_default();
            if dead.is_empty() {
                println!("no dead letters");
            }
            for d in dead {
                println!(
                    "{:>8}  {:<20} {:<18} attempts={:<3} {}  event={}",
                    d["item_id"],
                    d["channel"].as_str().unwrap_or(""),
                    d["method"].as_str().unwrap_or(""),
                    d["attempts"],
                    d["reason"].as_str().unwrap_or(""),
                    d["event_id"].as_str().unwrap_or("")
                );
            }
        }
        DlqAction::Replay { .. } => println!(
            "replayed {} message(s); the server sends them within a second",
            v["replayed"]
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn audit(api: ApiArgs, output: Output, action: AuditAction) -> anyhow::Result<ExitCode> {
    match action {
        AuditAction::List { since_id, limit } => {
            let path = format!("/v1/audit?since_id={since_id}&limit={limit}");
            let (status, v) = api_call(&api, reqwest::Method::GET, &path, None).await?;
            if !status.is_success() {
                return Ok(refused(status, &v));
            }
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            for r in v["records"].as_array().into_iter().flatten() {
                println!(
                    "{:>6}  {}  {:<12} {:<18} {:<40} {}",
                    r["id"],
                    r["at_ms"],
                    r["actor"].as_str().unwrap_or(""),
                    r["action"].as_str().unwrap_or(""),
                    r["target"].as_str().unwrap_or(""),
                    r["result"].as_str().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Verify => {
            let (status, v) =
                api_call(&api, reqwest::Method::GET, "/v1/audit/verify", None).await?;
            let broken = status == reqwest::StatusCode::CONFLICT;
            if !status.is_success() && !broken {
                return Ok(refused(status, &v));
            }
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if broken {
                println!(
                    "audit log broken at record {}: it, or the record before it, was altered or removed",
                    v["first_broken_id"]
                );
            } else {
                println!("audit log intact");
            }
            Ok(if broken {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

async fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let body = args.event.body()?;
    let url = format!("{}/v1/events", args.url.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&args.api_key)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    println!("{status} {text}");
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn silence(api: ApiArgs, action: SilenceAction) -> anyhow::Result<ExitCode> {
    let http = reqwest::Client::new();
    let base = format!("{}/v1/silences", api.url.trim_end_matches('/'));
    let request = match action {
        SilenceAction::Add {
            matchers,
            duration,
            comment,
            author,
        } => {
            let mut body =
                json!({ "matchers": matchers, "duration": duration, "comment": comment });
            if let Some(a) = author {
                body["author"] = json!(a);
            }
            http.post(&base).json(&body)
        }
        SilenceAction::List { all } => http.get(format!("{base}?all={all}")),
        SilenceAction::Expire { id } => http.delete(format!("{base}/{id}")),
    };
    let resp = request
        .bearer_auth(api.key()?)
        .send()
        .await
        .with_context(|| format!("calling {base}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        println!("{status} {v}");
        return Ok(ExitCode::FAILURE);
    }
    match v.get("silences").and_then(Value::as_array) {
        Some(list) if list.is_empty() => println!("no silences"),
        Some(list) => {
            for s in list {
                let matchers: Vec<String> = s["matchers"]
                    .as_array()
                    .map(|ms| {
                        ms.iter()
                            .map(|m| {
                                format!(
                                    "{}{}{}",
                                    m["name"].as_str().unwrap_or(""),
                                    m["op"].as_str().unwrap_or("?"),
                                    m["value"].as_str().unwrap_or("")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                println!(
                    "{}  {}  by {}  {}",
                    s["id"].as_str().unwrap_or("?"),
                    matchers.join(","),
                    s["author"].as_str().unwrap_or("?"),
                    s["comment"].as_str().unwrap_or("")
                );
            }
        }
        None => println!("{v}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP reloads the config (`sluice::reload`): checked first, put in force if valid, refused with the reason in
/// the log (and `sluice_config_reload_total{result}`) if not, while the old config keeps serving.
fn reload_on_hangup(state: std::sync::Arc<sluice::state::AppState>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        if let Some(path) = state.config.path().map(ToOwned::to_owned) {
                            // Reading and checking the file is blocking work; keep it off the request threads.
                            let (s, p) = (state.clone(), path.clone());
                            let outcome = tokio::task::spawn_blocking(move || {
                                sluice::reload::reload(&s, &p, "SIGHUP")
                            })
                            .await;
                            // A reload is a person's act like any other: audited, whatever came of it.
                            let (result, detail) = match outcome {
                                Ok(Ok(done)) => ("ok".to_string(), json!(done)),
                                Ok(Err(refused)) => {
                                    (format!("refused: {}", refused.result), json!(refused))
                                }
                                Err(e) => (format!("failed: {e}"), Value::Null),
                            };
                            let target = path.display().to_string();
                            sluice::outbox::audit(
                                &state,
                                "signal:SIGHUP",
                                "config.reload",
                                &target,
                                &result,
                                detail,
                            )
                            .await;
                        }
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; it will stop the server")
            }
        }
    }
    #[cfg(not(unix))]
    let _ = state;
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers at once, when called, and returns a future that waits for
/// either and says which. Installing them only when the future is first polled would leave a window in which the
/// default action (terminate at once, no drain) still applies.
fn shutdown_signal() -> impl std::future::Future<Output = &'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        async fn on(installed: std::io::Result<tokio::signal::unix::Signal>) {
            match installed {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for a stop signal");
                    std::future::pending::<()>().await
                }
            }
        }
        let int = on(signal(SignalKind::interrupt()));
        let term = on(signal(SignalKind::terminate()));
        async move {
            tokio::select! { _ = int => "SIGINT", _ = term => "SIGTERM" }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
