use clap::Parser;
use keysync_api::cli::{self, Cli};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    cli::run(Cli::parse()).await
}
