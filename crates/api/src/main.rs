use clap::Parser;
use keysync_api::cli::{self, Cli};

fn main() -> anyhow::Result<()> {
    // Before any thread, and with it any allocator arena, exists.
    keysync_api::memory::limit_arenas();
    actix_web::rt::System::new().block_on(cli::run(Cli::parse()))
}
