//! `checkout-worker`: the command line. Runs the worker, or one of the operator's commands.
//! `--help` prints the usage; a command it does not know, or one missing its arguments, prints
//! the usage to standard error and exits 2, before any setting is read.

use checkout_worker::config::WorkerSettings;

const USAGE: &str = "usage: checkout-worker [run | create-topics | tail-events | delete-topics PREFIX | park-record PARTITION OFFSET]";

/// What the command line asks for.
enum Command {
    Run,
    CreateTopics,
    TailEvents,
    /// Tests and benchmarks name their topics `test-…` and `bench_…`; this removes them.
    DeleteTopics(String),
    /// A partition stopped on a record its lane cannot apply: park it and go on.
    ParkRecord {
        partition: i32,
        offset: i64,
    },
}

impl Command {
    fn parse(args: &[String]) -> Result<Self, String> {
        let number = |n: usize| args.get(n).and_then(|a| a.parse::<i64>().ok());
        match args.first().map(String::as_str) {
            None | Some("run") => Ok(Self::Run),
            Some("create-topics") => Ok(Self::CreateTopics),
            Some("tail-events") => Ok(Self::TailEvents),
            Some("delete-topics") => match args.get(1).filter(|p| !p.is_empty()) {
                Some(prefix) => Ok(Self::DeleteTopics(prefix.clone())),
                None => Err("delete-topics needs a non-empty PREFIX".into()),
            },
            Some("park-record") => {
                match (number(1).and_then(|p| i32::try_from(p).ok()), number(2)) {
                    (Some(partition), Some(offset)) => Ok(Self::ParkRecord { partition, offset }),
                    _ => Err("park-record needs a PARTITION and an OFFSET".into()),
                }
            }
            Some(other) => Err(format!("unknown command {other:?}")),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(
        args.first().map(String::as_str),
        Some("-h" | "--help" | "help")
    ) {
        println!("{USAGE}");
        return Ok(());
    }
    let command = match Command::parse(&args) {
        Ok(command) => command,
        Err(why) => {
            eprintln!("{why}\n{USAGE}");
            std::process::exit(2);
        }
    };
    shop_infra::telemetry::init();
    let settings = WorkerSettings::from_env()?;
    match command {
        Command::Run => checkout_worker::run_until_signalled(settings).await?,
        Command::CreateTopics => settings.kafka.ensure_topics().await?,
        Command::TailEvents => checkout_worker::tail::tail_events(&settings).await?,
        Command::DeleteTopics(prefix) => {
            for topic in settings.kafka.delete_topics_with_prefix(&prefix).await? {
                println!("deleted {topic}");
            }
        }
        Command::ParkRecord { partition, offset } => {
            checkout_worker::park_record::park_record(&settings, partition, offset).await?;
            println!("parked {partition}/{offset}; the partition goes on after it");
        }
    }
    Ok(())
}
