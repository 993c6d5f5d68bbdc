//! [`TestApp`]: the API on a random port against its own fresh database and Redis prefix, its
//! life (spawn, restart, terminate, kill), and plain requests to it.

use reqwest::Response;
use serde_json::Value;
use shop_api::{checkout::Strategy, config::Settings, startup::Application};
use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: PgPool,
    pub settings: Settings,
    pub redis: redis::aio::ConnectionManager,
    /// Unique per test: names its database, Redis prefix, topics and consumer group.
    pub id: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: CancellationToken,
}

/// A registered user of a test, signed in.
pub struct TestUser {
    pub id: i64,
    pub email: String,
    pub phone_number: String,
    pub token: String,
}

fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url
        .rsplit_once('/')
        .expect("DATABASE_URL has a database name");
    format!("{base}/{name}")
}

impl TestApp {
    /// A fresh database and Redis prefix, and the API serving them on a random port, with the
    /// checkout strategy of the environment (`queue` by default).
    pub async fn spawn() -> Self {
        let settings = Settings::from_env().expect("settings from environment");
        Self::spawn_with(settings.checkout_strategy).await
    }

    /// [`TestApp::spawn`] with the given checkout strategy.
    pub async fn spawn_with(strategy: Strategy) -> Self {
        Self::spawn_configured(|settings| settings.checkout_strategy = strategy).await
    }

    /// [`TestApp::spawn`] with settings changed by `configure` (after the test defaults).
    pub async fn spawn_configured(configure: impl FnOnce(&mut Settings)) -> Self {
        shop_infra::telemetry::init();
        let mut settings = Settings::from_env().expect("settings from environment");
        // Four tests at a time, each with an API, a worker and this pool, stay well inside
        // PostgreSQL's default 100 connections.
        settings.database_max_connections = 10;
        // Tests send bursts from one address; the limiter still counts every request.
        settings.rate_limit_per_ip = 100_000;
        settings.rate_limit_per_session = 100_000;
        settings.sign_in_verifies_per_ip = 100_000;
        settings.shutdown_drain = Duration::from_millis(500);
        let id = Uuid::new_v4().simple().to_string();
        let database = format!("shop_test_{id}");
        let mut admin = PgConnection::connect(&settings.database_url)
            .await
            .expect("PostgreSQL reachable: run scripts/test.sh, which starts it");
        sqlx::query(&format!(r#"CREATE DATABASE "{database}""#))
            .execute(&mut admin)
            .await
            .expect("create test database");
        settings.database_url = with_database(&settings.database_url, &database);
        settings.redis_key_prefix = format!("test:{id}:");
        settings.listen_addr = "127.0.0.1:0".parse().expect("address");
        configure(&mut settings);
        Self::start(settings, id).await
    }

    /// Another API process on the same database and Redis prefix (a restart or a second replica).
    pub async fn start(settings: Settings, id: String) -> Self {
        let app = Application::build(settings.clone())
            .await
            .expect("app builds");
        let address = format!("http://{}", app.local_addr().expect("bound"));
        let stop = CancellationToken::new();
        let server = tokio::spawn(app.run_until(stop.clone().cancelled_owned()));
        let db = sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&settings.database_url)
            .await
            .expect("test pool");
        let redis = shop_infra::connect_redis(&settings.redis_url)
            .await
            .expect("redis");
        Self {
            address,
            client: reqwest::Client::new(),
            db,
            settings,
            redis,
            id,
            server,
            stop,
        }
    }

    /// Begins a graceful shutdown, as SIGTERM does.
    pub fn terminate(&self) {
        self.stop.cancel();
    }

    /// Whether the server has exited.
    pub fn has_exited(&self) -> bool {
        self.server.is_finished()
    }

    /// Stops serving at once, as a killed process would: requests in flight are dropped.
    pub fn kill(&self) {
        self.server.abort();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.patch(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// Deletes every Redis key of this app, as a flushed or replaced Redis would.
    pub async fn flush_redis(&self) {
        let mut conn = self.redis.clone();
        let pattern = format!("{}*", self.settings.redis_key_prefix);
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .expect("keys");
        for key in keys {
            let _: i64 = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .expect("del");
        }
    }
}
