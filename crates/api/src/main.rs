use clap::Parser;
use keysync_api::cli::{self, Cli};

// Request handling allocates many small short-lived buffers on several threads at once;
// mimalloc's per-thread free lists serve them with less CPU than the system allocator, which
// `cargo xtask bench` measures as server CPU per validation.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    cli::run(Cli::parse()).await
}
