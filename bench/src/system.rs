//! A fresh system per strategy: an empty database, a Redis prefix, topics and a consumer group
//! of its own, and an API and a checkout worker (the release binaries) serving them. Dropped
//! afterwards: processes stopped, database dropped, Redis keys deleted; its topics are left
//! on the broker (`KafkaSettings::delete_topics_with_prefix` says why).

use crate::{
    env::Environment, error::BenchError, poll, profile::Statements, proxy::Proxy, shop::Codes,
};
use shop_infra::sign_in::{CodeKey, DEVELOPMENT_KEY};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    Connection, PgConnection, PgPool,
};
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    str::FromStr,
    time::Duration,
};
use tokio::process::{Child, Command};

pub struct System {
    pub name: String,
    pub api: String,
    pub db: PgPool,
    pub redis: redis::aio::ConnectionManager,
    prefix: String,
    /// The `SIGN_IN_CODE_KEY` both services run with.
    code_key: CodeKey,
    admin_url: String,
    /// The environment both services run with, to start more or restart them.
    common: Vec<(&'static str, String)>,
    bin_dir: PathBuf,
    log_dir: PathBuf,
    api_process: Option<Child>,
    workers: Vec<Child>,
    /// Worker metrics ports, one per worker ever started.
    worker_ports: Vec<u16>,
}

/// `MEMBER_LEASE_MS` of every worker the bench starts (the worker's default): a worker silent this
/// long loses its partitions, so the fault suite bounds a stalled worker's orders by it.
pub const MEMBER_LEASE: Duration = Duration::from_millis(6000);

/// The services' environment that is the same for every system: one load generator is one
/// client address and a few sessions, so rate limits would measure themselves; shoppers that lost
/// their sessions all sign in again at once, from one address; no drain on shutdown.
const FIXED_ENV: [(&str, &str); 7] = [
    ("RATE_LIMIT_PER_IP", "0"),
    ("MAX_CONNECTIONS_PER_IP", "0"),
    ("RATE_LIMIT_PER_SESSION", "0"),
    ("SIGN_IN_SENDS_PER_IP", "0"),
    ("SIGN_IN_SENDS_PER_ACCOUNT", "0"),
    ("SIGN_IN_VERIFIES_PER_IP", "0"),
    ("SHUTDOWN_DRAIN_MS", "0"),
];

fn free_port() -> Result<u16, BenchError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn with_database(url: &str, name: &str) -> Result<String, BenchError> {
    let (base, _) = url
        .rsplit_once('/')
        .ok_or_else(|| BenchError::Setup(format!("DATABASE_URL {url} names no database")))?;
    Ok(format!("{base}/{name}"))
}

/// Drops the database `name` beside `admin_url`'s if it is there, and creates it empty.
async fn fresh_database(admin_url: &str, name: &str) -> Result<(), BenchError> {
    let mut admin = PgConnection::connect(admin_url).await?;
    sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(())
}

fn spawn(
    binary: &Path,
    args: &[&str],
    env: &[(&str, String)],
    log: &Path,
) -> Result<Child, BenchError> {
    let log = std::fs::File::create(log)?;
    Command::new(binary)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| BenchError::Setup(format!("cannot start {}: {e}", binary.display())))
}

/// SIGTERM, then up to 15 s to exit, then SIGKILL.
async fn terminate(child: &mut Child) -> Result<(), BenchError> {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill").arg(pid.to_string()).status().await;
    }
    if tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .is_err()
    {
        child.kill().await?;
    }
    Ok(())
}

/// Waits until `url` answers with a success, up to `within`.
async fn wait_ready(
    client: &reqwest::Client,
    url: &str,
    within: Duration,
) -> Result<(), BenchError> {
    let ready = poll::until(within, Duration::from_millis(100), || async move {
        let ready = client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        Ok::<_, BenchError>(if ready { Ok(()) } else { Err(()) })
    })
    .await?;
    ready.map_err(|()| BenchError::Setup(format!("{url} not ready after {within:?}")))
}

impl System {
    /// Starts an API with `CHECKOUT_STRATEGY=strategy` and one checkout worker on fresh stores,
    /// with the notifier as `env.notifier` says.
    pub async fn start(env: &Environment, strategy: &str) -> Result<Self, BenchError> {
        Self::start_with(env, strategy, env.notifier).await
    }

    /// [`System::start`] with the workers' notifier on: sign-in codes and order mails go to
    /// the development mail sink.
    pub async fn start_notifying(env: &Environment, strategy: &str) -> Result<Self, BenchError> {
        Self::start_with(env, strategy, true).await
    }

    async fn start_with(
        env: &Environment,
        strategy: &str,
        notify: bool,
    ) -> Result<Self, BenchError> {
        let name = format!(
            "bench_{}_{}",
            strategy.replace('-', "_"),
            std::process::id()
        );
        fresh_database(&env.database_url, &name).await?;
        let database_url = with_database(&env.database_url, &name)?;
        let prefix = format!("{name}:");
        // The caller's key if it sets one, else the development key: the bench stores the
        // codes of the shoppers it registers with it.
        let code_key_text =
            std::env::var("SIGN_IN_CODE_KEY").unwrap_or_else(|_| DEVELOPMENT_KEY.to_owned());
        let code_key: CodeKey = code_key_text
            .parse()
            .map_err(|e: &str| BenchError::Setup(format!("SIGN_IN_CODE_KEY: {e}")))?;
        let (api_port, metrics_port) = (free_port()?, free_port()?);
        let mut common: Vec<(&'static str, String)> = vec![
            ("DATABASE_URL", database_url.clone()),
            ("REDIS_URL", env.redis_url.clone()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
            ("KAFKA_BROKERS", env.kafka_brokers.clone()),
            ("INVENTORY_TOPIC", format!("{name}.inventory")),
            ("ORDER_EVENTS_TOPIC", format!("{name}.order-events")),
            ("DEAD_LETTER_TOPIC", format!("{name}.dead-letters")),
            ("CONSUMER_GROUP", name.clone()),
            ("CHECKOUT_STRATEGY", strategy.to_owned()),
            ("API_ADDR", format!("127.0.0.1:{api_port}")),
            ("SIGN_IN_CODE_KEY", code_key_text),
            // Mail goes to the development sink (SMTP_URL, from scripts/lib.sh). Throughput runs
            // leave the notifier off unless `--notifier`: the sink (a Python process) takes every
            // order's mail on the same two cores.
            ("WORKER_NOTIFIER", notify.to_string()),
        ];
        common.extend(FIXED_ENV.map(|(name, value)| (name, value.to_owned())));
        common.push(("MEMBER_LEASE_MS", MEMBER_LEASE.as_millis().to_string()));
        std::fs::create_dir_all(&env.log_dir)?;
        let db = PgPoolOptions::new()
            .max_connections(4)
            .connect(&database_url)
            .await?;
        let redis = shop_infra::connect_redis(&env.redis_url).await?;
        let mut system = Self {
            api: format!("http://127.0.0.1:{api_port}"),
            name,
            db,
            redis,
            prefix,
            code_key,
            admin_url: env.database_url.clone(),
            common,
            bin_dir: env.bin_dir.clone(),
            log_dir: env.log_dir.clone(),
            api_process: None,
            workers: Vec::new(),
            worker_ports: vec![metrics_port],
        };
        // The API first: it applies the migrations the worker also expects.
        system.start_api().await?;
        system.start_worker().await?;
        Ok(system)
    }

    /// Starts the API (again, after [`System::kill_api`]) on its port and waits until it is ready.
    pub async fn start_api(&mut self) -> Result<(), BenchError> {
        let log = self.log_dir.join(format!("{}.api.log", self.name));
        self.api_process = Some(spawn(
            &self.bin_dir.join("shop-api"),
            &["serve"],
            &self.common,
            &log,
        )?);
        let client = reqwest::Client::new();
        wait_ready(
            &client,
            &format!("{}/readyz", self.api),
            Duration::from_secs(60),
        )
        .await
    }

    /// Kills the API at once (SIGKILL): requests in flight get no answer.
    pub async fn kill_api(&mut self) -> Result<(), BenchError> {
        if let Some(mut api) = self.api_process.take() {
            api.kill().await?;
        }
        Ok(())
    }

    /// Starts one more checkout worker and waits until it is healthy.
    pub async fn start_worker(&mut self) -> Result<(), BenchError> {
        self.start_worker_with(Vec::new()).await
    }

    /// Starts one more checkout worker that reaches PostgreSQL through `proxy`.
    pub async fn start_worker_behind(&mut self, proxy: &Proxy) -> Result<(), BenchError> {
        let direct = self.database_url()?;
        let upstream = self.database_addr()?;
        let via = direct.replacen(&upstream, &proxy.addr.to_string(), 1);
        if via == direct {
            return Err(BenchError::Setup(format!(
                "DATABASE_URL does not name {upstream} as written"
            )));
        }
        self.start_worker_with(vec![("DATABASE_URL", via)]).await
    }

    /// Where PostgreSQL listens, as `host:port`, for a proxy in front of it.
    pub fn database_addr(&self) -> Result<String, BenchError> {
        let options = PgConnectOptions::from_str(&self.database_url()?)?;
        Ok(format!("{}:{}", options.get_host(), options.get_port()))
    }

    /// PostgreSQL's per-statement figures for this system's database so far, if it keeps them.
    pub async fn statements(&self) -> Option<Statements> {
        Statements::read(&self.admin_url, &self.name).await
    }

    fn database_url(&self) -> Result<String, BenchError> {
        self.common
            .iter()
            .find(|(name, _)| *name == "DATABASE_URL")
            .map(|(_, url)| url.clone())
            .ok_or_else(|| BenchError::Setup("no DATABASE_URL".into()))
    }

    /// The newest worker's process id and metrics port.
    pub fn newest_worker(&self) -> Option<(u32, u16)> {
        let n = self.workers.len().checked_sub(1)?;
        Some((self.workers[n].id()?, *self.worker_ports.get(n)?))
    }

    /// Sends `signal` (`STOP`, `CONT`) to the newest worker.
    pub async fn signal_newest_worker(&self, signal: &str) -> Result<(), BenchError> {
        let (pid, _) = self
            .newest_worker()
            .ok_or_else(|| BenchError::Setup("no worker to signal".into()))?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .await?;
        if status.success() {
            Ok(())
        } else {
            Err(BenchError::Setup(format!("kill -{signal} {pid} failed")))
        }
    }

    async fn start_worker_with(
        &mut self,
        overrides: Vec<(&'static str, String)>,
    ) -> Result<(), BenchError> {
        let n = self.workers.len();
        let port = match self.worker_ports.get(n) {
            Some(&port) => port,
            None => {
                let port = free_port()?;
                self.worker_ports.push(port);
                port
            }
        };
        let mut env: Vec<(&'static str, String)> = self
            .common
            .iter()
            .filter(|(name, _)| !overrides.iter().any(|(o, _)| o == name))
            .cloned()
            .collect();
        env.extend(overrides);
        env.push(("WORKER_METRICS_ADDR", format!("127.0.0.1:{port}")));
        let log = self.log_dir.join(format!("{}.worker{n}.log", self.name));
        self.workers.push(spawn(
            &self.bin_dir.join("checkout-worker"),
            &["run"],
            &env,
            &log,
        )?);
        let client = reqwest::Client::new();
        let healthz = format!("http://127.0.0.1:{port}/healthz");
        wait_ready(&client, &healthz, Duration::from_secs(60)).await
    }

    /// Stops the newest worker: SIGKILL when `kill` (no batch finished, no goodbye), else SIGTERM
    /// and a wait for it to finish its batches and leave the group.
    pub async fn stop_worker(&mut self, kill: bool) -> Result<(), BenchError> {
        let Some(mut worker) = self.workers.pop() else {
            return Ok(());
        };
        if kill {
            worker.kill().await?;
        } else {
            terminate(&mut worker).await?;
        }
        Ok(())
    }

    /// The Redis key prefix of this system.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where this system's API looks for codes (its Redis, key prefix and code key), to store
    /// them as its notifier would.
    pub fn codes(&self) -> Codes {
        Codes {
            redis: self.redis.clone(),
            keys: shop_infra::Keys::new(&self.prefix),
            key: self.code_key.clone(),
            ttl: Duration::from_secs(600),
        }
    }

    /// Stops the processes (SIGTERM, then kill) and drops the database and the Redis keys.
    pub async fn stop(mut self) -> Result<(), BenchError> {
        let children = self.api_process.iter_mut().chain(self.workers.iter_mut());
        for child in children {
            terminate(child).await?;
        }
        self.db.close().await;
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            self.name
        ))
        .execute(&mut admin)
        .await?;
        // Its topics stay on the broker: tansu 0.6.0 deletes every topic when it deletes one
        // (`KafkaSettings::delete_topics_with_prefix`).
        self.flush_redis().await
    }

    /// Deletes every Redis key of this system, as a flushed or replaced Redis would have none.
    pub async fn flush_redis(&self) -> Result<(), BenchError> {
        // Just after a Redis restart the first commands on the old connection fail while it
        // reconnects.
        let flushed = poll::until(
            Duration::from_secs(10),
            Duration::from_millis(200),
            || async move {
                match self.delete_keys().await {
                    Err(BenchError::Redis(error)) => Ok(Err(error)),
                    done => done.map(Ok),
                }
            },
        )
        .await?;
        flushed.map_err(BenchError::Redis)
    }

    async fn delete_keys(&self) -> Result<(), BenchError> {
        let mut redis = self.redis.clone();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut redis)
                .await?;
            if !keys.is_empty() {
                redis::cmd("UNLINK")
                    .arg(keys)
                    .query_async::<()>(&mut redis)
                    .await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}
