//! `checkout-worker run`, built inside this crate so that its tests can start it as a process.

use checkout_worker::config::WorkerSettings;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shop_infra::telemetry::init();
    checkout_worker::run_until_signalled(WorkerSettings::from_env()?).await?;
    Ok(())
}
