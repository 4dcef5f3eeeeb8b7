//! Building and running the server. `Application::build` returns a bound server that knows its
//! port, so tests can start one on port 0.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::db::Database;
use crate::error::{json_error_handler, path_error_handler, query_error_handler};
use crate::feed::{Feed, FeedOptions};
use crate::licensing::signing::LicenseSigner;
use crate::licensing::LicensingService;
use crate::rate_limit::RateLimiter;
use crate::releases::ReleasesService;
use crate::{routes, spa};

/// The largest request body any endpoint reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
pub struct AppState {
    pub db: Database,
    pub settings: Settings,
    pub login_per_email: RateLimiter,
    pub login_per_ip: RateLimiter,
    pub feed: Feed,
    /// License validation: the group-commit writer, the signing key, the rate limits.
    pub licensing: LicensingService,
    /// The portal's latest release.
    pub releases: ReleasesService,
    /// What browsers report about their sync.
    pub analytics: crate::analytics::SyncAnalytics,
}

impl AppState {
    /// Starts the validation writer; `signer` is the license signing key pair.
    pub fn new(
        db: Database,
        settings: Settings,
        feed: Feed,
        signer: LicenseSigner,
    ) -> anyhow::Result<Self> {
        let per_email = settings.login_attempts_per_email_per_minute;
        let per_ip = settings.login_attempts_per_ip_per_minute;
        let licensing = LicensingService::start(db.clone(), &settings, signer)?;
        let releases = ReleasesService::new(db.clone(), &settings)?;
        Ok(Self {
            db,
            settings,
            login_per_email: RateLimiter::new(per_email, per_email),
            login_per_ip: RateLimiter::new(per_ip, per_ip),
            feed,
            licensing,
            releases,
            analytics: Default::default(),
        })
    }

    /// A webhook announced a new release: the cached copy is out of date, and the next portal
    /// request fetches upstream.
    pub fn on_release_event(&self) {
        self.releases.invalidate();
    }
}

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Connects to the database, applies pending migrations and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = connect_and_migrate(&settings).await?;
        let listener = TcpListener::bind((settings.host.as_str(), settings.port)).map_err(|e| {
            anyhow::anyhow!("cannot listen on {}:{}: {e}", settings.host, settings.port)
        })?;
        let port = listener.local_addr()?.port();
        if !crate::license_key::valid_prefix(&settings.key_prefix) {
            anyhow::bail!(
                "key_prefix `{}` must be 1 to 16 letters or digits",
                settings.key_prefix
            );
        }
        let poll = match db {
            // PostgreSQL wakes the follower through LISTEN/NOTIFY; polling is the safety net.
            Database::Postgres(..) => Duration::from_millis(settings.feed_fallback_poll_ms.max(1)),
            Database::Sqlite(..) => Duration::from_millis(settings.feed_poll_ms.max(1)),
        };
        let feed = Feed::start(
            db.clone(),
            FeedOptions {
                poll,
                coalesce: Duration::from_millis(settings.feed_coalesce_ms),
                ring: 4_096,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the change feed: {e}"))?;
        crate::retention::spawn(
            db.clone(),
            settings.change_retention(),
            settings.audit_retention(),
        );
        crate::expiry::spawn(db.clone());
        crate::memory::start_trimmer();
        let signer = {
            let (db, file) = (db.clone(), settings.license_signing_key_file.clone());
            tokio::task::spawn_blocking(move || LicenseSigner::load_or_create(&db, file.as_deref()))
                .await??
        };
        let state = web::Data::new(AppState::new(db, settings.clone(), feed, signer)?);
        // Per worker; with the default two workers, twice the pool, so a slow task (password
        // hashing) on one never leaves the pool's connections idle.
        let blocking_threads = usize::try_from(settings.pool_size.max(1)).unwrap_or(8);
        let dist = settings.dist_dir.clone();
        let csp = spa::content_security_policy(&dist);
        if !dist.join("index.html").is_file() {
            tracing::warn!(dist = %dist.display(), "web app not built; pages will say how to build it");
        }
        let server = HttpServer::new(move || {
            App::new()
                .wrap(Compress::default())
                .wrap(
                    DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Referrer-Policy", "same-origin"))
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Content-Security-Policy", csp.clone())),
                )
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(MAX_BODY_BYTES)
                        .error_handler(json_error_handler),
                )
                .app_data(web::QueryConfig::default().error_handler(query_error_handler))
                .app_data(web::PathConfig::default().error_handler(path_error_handler))
                .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
                .configure(routes::configure)
                .configure(spa::configure(&dist))
        })
        .shutdown_timeout(10)
        // Database work runs on each worker's blocking pool, but never more of it at once than
        // the connection pool has connections; tokio's default of up to 512 threads would only
        // park the surplus in the pool's queue, each thread keeping a stack and a malloc arena
        // resident. A burst of a thousand event-stream handshakes (each checks its session)
        // used to leave some 200-290 threads behind, several KiB per subscriber in RSS.
        .worker_max_blocking_threads(blocking_threads)
        // How much of a streamed body is buffered before it is written out. A connection keeps
        // its write buffer's largest size until it closes (up to 128 KiB), and an event stream
        // lives for hours: with the default 32 KiB, every burst of events grew the buffers of a
        // thousand subscribers to 64 KiB each. At 4 KiB they stay at their initial 8 KiB; a
        // large single chunk (a JSON page, a file) is still written whole.
        .h1_write_buffer_size(H1_WRITE_BUFFER_BYTES)
        .listen(listener)?
        .run();
        tracing::info!(
            port,
            database = settings.database_url_for_log(),
            "keysync listening"
        );
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM, then finishes in-flight requests (up to 10 s) and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// See `h1_write_buffer_size` in [`Application::build`].
const H1_WRITE_BUFFER_BYTES: usize = 4 * 1024;

/// Opens the pool and runs migrations off the async workers.
pub async fn connect_and_migrate(settings: &Settings) -> anyhow::Result<Database> {
    let target = settings.database().map_err(|e| anyhow::anyhow!(e))?;
    let size = settings.pool_size;
    let timeout = Duration::from_secs(settings.pool_timeout_secs.max(1));
    let db = tokio::task::spawn_blocking(move || -> anyhow::Result<Database> {
        let db = Database::connect(&target, size, timeout)?;
        let applied = db.migrate_blocking()?;
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        Ok(db)
    })
    .await??;
    Ok(db)
}
