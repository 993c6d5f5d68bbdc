use anyhow::{bail, Context};
use shop_api::{config::Settings, startup::Application};

const USAGE: &str = "usage: shop-api [serve | migrate | load-demo [COUNT]]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shop_infra::telemetry::init();
    let settings = Settings::from_env()?;
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None | Some("serve") => {
            let app = Application::build(settings).await?;
            tracing::info!(address = %app.local_addr()?, "shop API listening");
            app.run_until_stopped().await?;
        }
        Some("migrate") => {
            let db = shop_api::db::connect(&settings).await?;
            shop_infra::schema::migrate(&db).await?;
        }
        Some("load-demo") => {
            let count = match args.next() {
                Some(n) => n.parse().context("COUNT must be a whole number")?,
                None => 400,
            };
            let db = shop_api::db::connect(&settings).await?;
            shop_infra::schema::migrate(&db).await?;
            let added = shop_api::demo::load(&db, count).await?;
            tracing::info!(added, total = count, "demo catalog ready");
        }
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
    }
    Ok(())
}
