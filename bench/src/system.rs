//! A fresh system per strategy: an empty database, a Redis prefix, topics and a consumer group
//! of its own, and an API and a checkout worker (the release binaries) serving them. Dropped
//! afterwards: processes stopped, database dropped, Redis keys deleted.

use crate::BenchError;
use sqlx::{postgres::PgPoolOptions, Connection, PgConnection, PgPool};
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

/// Where the services are, as the caller configured them.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The folder with `shop-api` and `checkout-worker`.
    pub bin_dir: PathBuf,
    /// An existing database; fresh ones are created beside it.
    pub database_url: String,
    pub redis_url: String,
    pub kafka_brokers: String,
    /// Where the services' logs go.
    pub log_dir: PathBuf,
}

pub struct System {
    pub name: String,
    pub api: String,
    pub db: PgPool,
    pub redis: redis::aio::ConnectionManager,
    prefix: String,
    admin_url: String,
    children: Vec<Child>,
}

fn free_port() -> Result<u16, BenchError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn with_database(url: &str, name: &str) -> Result<String, BenchError> {
    let (base, _) = url
        .rsplit_once('/')
        .ok_or_else(|| BenchError::Setup(format!("DATABASE_URL {url} names no database")))?;
    Ok(format!("{base}/{name}"))
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

async fn wait_ready(
    client: &reqwest::Client,
    url: &str,
    within: Duration,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "{url} not ready after {within:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl System {
    /// Starts an API with `CHECKOUT_STRATEGY=strategy` and one checkout worker on fresh stores.
    pub async fn start(env: &Environment, strategy: &str) -> Result<Self, BenchError> {
        let name = format!(
            "bench_{}_{}",
            strategy.replace('-', "_"),
            std::process::id()
        );
        let mut admin = PgConnection::connect(&env.database_url).await?;
        sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
            .execute(&mut admin)
            .await?;
        sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let database_url = with_database(&env.database_url, &name)?;
        let prefix = format!("{name}:");
        let (api_port, metrics_port) = (free_port()?, free_port()?);
        let common = vec![
            ("DATABASE_URL", database_url.clone()),
            ("REDIS_URL", env.redis_url.clone()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
            ("KAFKA_BROKERS", env.kafka_brokers.clone()),
            ("INVENTORY_TOPIC", format!("{name}.inventory")),
            ("ORDER_EVENTS_TOPIC", format!("{name}.order-events")),
            ("CONSUMER_GROUP", name.clone()),
            ("CHECKOUT_STRATEGY", strategy.to_owned()),
            ("API_ADDR", format!("127.0.0.1:{api_port}")),
            ("WORKER_METRICS_ADDR", format!("127.0.0.1:{metrics_port}")),
            // One load generator is one client address and a few sessions: rate limits would
            // measure themselves.
            ("RATE_LIMIT_PER_IP", "0".to_owned()),
            ("RATE_LIMIT_PER_SESSION", "0".to_owned()),
        ];
        std::fs::create_dir_all(&env.log_dir)?;
        let mut children = Vec::new();
        // The API first: it applies the migrations the worker also expects.
        children.push(spawn(
            &env.bin_dir.join("shop-api"),
            &["serve"],
            &common,
            &env.log_dir.join(format!("{name}.api.log")),
        )?);
        let client = reqwest::Client::new();
        let api = format!("http://127.0.0.1:{api_port}");
        wait_ready(&client, &format!("{api}/readyz"), Duration::from_secs(30)).await?;
        children.push(spawn(
            &env.bin_dir.join("checkout-worker"),
            &["run"],
            &common,
            &env.log_dir.join(format!("{name}.worker.log")),
        )?);
        wait_ready(
            &client,
            &format!("http://127.0.0.1:{metrics_port}/healthz"),
            Duration::from_secs(60),
        )
        .await?;
        let db = PgPoolOptions::new()
            .max_connections(4)
            .connect(&database_url)
            .await?;
        let redis = shop_infra::connect_redis(&env.redis_url).await?;
        Ok(Self {
            name,
            api,
            db,
            redis,
            prefix,
            admin_url: env.database_url.clone(),
            children,
        })
    }

    /// The Redis key prefix of this system.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Stops the processes (SIGTERM, then kill) and drops the database and the Redis keys.
    pub async fn stop(mut self) -> Result<(), BenchError> {
        for child in &mut self.children {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill").arg(pid.to_string()).status().await;
            }
        }
        for child in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(15), child.wait())
                .await
                .is_err()
            {
                child.kill().await?;
            }
        }
        self.db.close().await;
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            self.name
        ))
        .execute(&mut admin)
        .await?;
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut self.redis)
                .await?;
            if !keys.is_empty() {
                redis::cmd("UNLINK")
                    .arg(keys)
                    .query_async::<()>(&mut self.redis)
                    .await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}
