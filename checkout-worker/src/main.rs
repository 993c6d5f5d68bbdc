//! `checkout-worker`: the command line. Runs the worker, or one of the operator's commands.

use anyhow::bail;
use checkout_worker::config::WorkerSettings;

const USAGE: &str = "usage: checkout-worker [run | create-topics | tail-events | delete-topics PREFIX | park-record PARTITION OFFSET]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_infra::telemetry::init();
    let settings = WorkerSettings::from_env()?;
    match std::env::args().nth(1).as_deref() {
        None | Some("run") => checkout_worker::run_until_signalled(settings).await?,
        Some("create-topics") => settings.kafka.ensure_topics().await?,
        Some("tail-events") => checkout_worker::tail::tail_events(&settings).await?,
        // Tests and benchmarks name their topics `test-…` and `bench_…`; this removes them.
        Some("delete-topics") => {
            let Some(prefix) = std::env::args().nth(2).filter(|p| !p.is_empty()) else {
                bail!("delete-topics needs a non-empty PREFIX\n{USAGE}");
            };
            for topic in settings.kafka.delete_topics_with_prefix(&prefix).await? {
                println!("deleted {topic}");
            }
        }
        // A partition stopped on a record its lane cannot apply: park it and go on.
        Some("park-record") => {
            let arg = |n: usize| std::env::args().nth(n).and_then(|a| a.parse::<i64>().ok());
            let (Some(partition), Some(offset)) =
                (arg(2).and_then(|p| i32::try_from(p).ok()), arg(3))
            else {
                bail!("park-record needs a PARTITION and an OFFSET\n{USAGE}");
            };
            checkout_worker::park_record::park_record(&settings, partition, offset).await?;
            println!("parked {partition}/{offset}; the partition goes on after it");
        }
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
    }
    Ok(())
}
