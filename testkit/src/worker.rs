//! The checkout worker beside a [`TestApp`]: in this process, or as a process of its own that is
//! killed when its guard is dropped, pass or fail.

use crate::app::TestApp;
use checkout_worker::{config::WorkerSettings, Worker};
use inventory_partitioner::KafkaSettings;
use std::process::{Child, Command, Stdio};
use tokio_util::sync::CancellationToken;

impl TestApp {
    /// Settings for a checkout worker on this app's stores, topics and consumer group.
    pub fn worker_settings(&self) -> WorkerSettings {
        let mut kafka = KafkaSettings::from_env().expect("Kafka settings");
        kafka.inventory_topic = format!("test-{}.inventory", self.id);
        kafka.order_events_topic = format!("test-{}.order-events", self.id);
        kafka.dead_letter_topic = format!("test-{}.dead-letters", self.id);
        kafka.inventory_partitions = 4;
        kafka.order_events_partitions = 2;
        let mut settings = WorkerSettings::from_env().expect("worker settings");
        settings.database_url = self.settings.database_url.clone();
        settings.database_max_connections = 8;
        settings.redis_url = self.settings.redis_url.clone();
        settings.redis_key_prefix = self.settings.redis_key_prefix.clone();
        settings.kafka = kafka;
        settings.consumer_group = format!("test-{}", self.id);
        settings.metrics_addr = "127.0.0.1:0".parse().expect("address");
        // Tests that are about mail turn it on, with a mail sink of their own.
        settings.notifier_enabled = false;
        settings
    }

    /// The environment that makes a `checkout-worker` process use [`TestApp::worker_settings`].
    pub fn worker_env(&self) -> Vec<(&'static str, String)> {
        let s = self.worker_settings();
        vec![
            ("DATABASE_URL", s.database_url),
            ("REDIS_URL", s.redis_url),
            ("REDIS_KEY_PREFIX", s.redis_key_prefix),
            ("KAFKA_BROKERS", s.kafka.brokers),
            ("INVENTORY_TOPIC", s.kafka.inventory_topic),
            (
                "INVENTORY_PARTITIONS",
                s.kafka.inventory_partitions.to_string(),
            ),
            ("ORDER_EVENTS_TOPIC", s.kafka.order_events_topic),
            ("DEAD_LETTER_TOPIC", s.kafka.dead_letter_topic),
            (
                "ORDER_EVENTS_PARTITIONS",
                s.kafka.order_events_partitions.to_string(),
            ),
            ("CONSUMER_GROUP", s.consumer_group),
            (
                "WORKER_DATABASE_MAX_CONNECTIONS",
                s.database_max_connections.to_string(),
            ),
            ("WORKER_METRICS_ADDR", "127.0.0.1:0".to_owned()),
            ("WORKER_NOTIFIER", s.notifier_enabled.to_string()),
            ("RUST_LOG", "info,sqlx=warn".to_owned()),
        ]
    }

    /// A checkout worker in this process.
    pub async fn spawn_worker(&self) -> RunningWorker {
        self.spawn_worker_with(|_| {}).await
    }

    /// [`TestApp::spawn_worker`] with its settings changed by `configure`.
    pub async fn spawn_worker_with(
        &self,
        configure: impl FnOnce(&mut WorkerSettings),
    ) -> RunningWorker {
        let mut settings = self.worker_settings();
        configure(&mut settings);
        let worker = Worker::build(settings).await.expect("worker builds");
        let metrics = worker.metrics_addr().expect("metrics address");
        let stop = CancellationToken::new();
        let handle = tokio::spawn(worker.run(stop.clone()));
        RunningWorker {
            health: format!("http://{metrics}/healthz"),
            stop,
            handle,
        }
    }

    /// A `checkout-worker` process (the binary at `binary`) on this app's stores; killed when the
    /// guard is dropped.
    pub fn spawn_worker_process(&self, binary: &str) -> WorkerProcess {
        self.spawn_worker_process_with(binary, &[])
    }

    /// [`TestApp::spawn_worker_process`] with `extra` environment variables on top.
    pub fn spawn_worker_process_with(
        &self,
        binary: &str,
        extra: &[(&str, String)],
    ) -> WorkerProcess {
        let child = Command::new(binary)
            .envs(self.worker_env())
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("worker process starts");
        WorkerProcess(child)
    }
}

/// A checkout worker running in the test's process.
pub struct RunningWorker {
    health: String,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), checkout_worker::Error>>,
}

impl RunningWorker {
    /// Its `/healthz` URL.
    pub fn health_url(&self) -> &str {
        &self.health
    }

    /// Stops it as SIGTERM would: finish the batch in hand, commit, leave the group.
    pub async fn stop(self) {
        self.stop.cancel();
        let result = self.handle.await.expect("worker task");
        assert!(result.is_ok(), "worker failed: {result:?}");
    }
}

/// A worker process that cannot outlive its test: dropping it (the test ended, passed or
/// panicked) kills and reaps it.
pub struct WorkerProcess(Child);

impl WorkerProcess {
    /// SIGKILL, and wait until it is gone.
    pub fn kill(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reaped");
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
