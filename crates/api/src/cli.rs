//! The `keysync` command line: `serve`, `migrate`, `admin create`.

use std::io::BufRead;

use clap::{Parser, Subcommand};
use keysync_shared::AdminRole;

use crate::admins::{self, OwnerBootstrap};
use crate::config::Settings;
use crate::db::models::Actor;
use crate::domain::{Email, NewPassword};
use crate::http::RequestMeta;
use crate::startup::{connect_and_migrate, Application};
use crate::{password, telemetry, with_store};

#[derive(Debug, Parser)]
#[command(
    name = "keysync",
    version,
    about = "License-key management whose dashboards are never stale"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, make sure an owner exists, and serve the API and the web app.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage admin accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin. The password is read from the first line of standard input with
    /// `--password-stdin`; otherwise one is generated and printed once.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "admin")]
        role: AdminRole,
        #[arg(long)]
        password_stdin: bool,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    telemetry::init(&settings);
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            connect_and_migrate(&settings).await?;
            println!(
                "database at {} is up to date",
                settings.database_url_for_log()
            );
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    role,
                    password_stdin,
                },
        } => create_admin(settings, email, role, password_stdin).await,
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let db = connect_and_migrate(&settings).await?;
    let email = settings.admin_email.clone();
    let configured = settings.admin_password.clone();
    let bootstrap = tokio::task::spawn_blocking(move || {
        let mut conn = db.get_blocking().map_err(|e| anyhow::anyhow!("{e}"))?;
        with_store!(&mut conn, |store| admins::ensure_owner(
            store,
            &email,
            configured.as_deref()
        ))
    })
    .await??;
    match bootstrap {
        OwnerBootstrap::Existing => {}
        OwnerBootstrap::Created { email } => tracing::info!(%email, "owner admin created"),
        OwnerBootstrap::Generated { email, password } => {
            // Printed to the terminal once, deliberately not through the logger.
            println!(
                "\n  Created owner admin {email} with generated password: {password}\n  \
                 Sign in and change it; it will not be shown again.\n"
            );
        }
    }
    let app = Application::build(settings).await?;
    println!("keysync is serving on http://127.0.0.1:{}", app.port());
    app.run_until_stopped().await?;
    tracing::info!("keysync stopped");
    Ok(())
}

async fn create_admin(
    settings: Settings,
    email: String,
    role: AdminRole,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let email = Email::parse(&email).map_err(|e| anyhow::anyhow!(e))?;
    let (raw, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (password::generate(), true)
    };
    let pw = NewPassword::parse(raw).map_err(|e| anyhow::anyhow!(e))?;
    let db = connect_and_migrate(&settings).await?;
    let (for_db, email_for_db) = (pw.clone(), email.clone());
    let admin = tokio::task::spawn_blocking(move || {
        let mut conn = db.get_blocking().map_err(|e| anyhow::anyhow!("{e}"))?;
        with_store!(&mut conn, |store| admins::create_admin(
            store,
            &Actor::System,
            &RequestMeta::default(),
            &email_for_db,
            "",
            &for_db,
            role
        ))
        .map_err(|e| anyhow::anyhow!("{e}"))
    })
    .await??;
    println!("created {} {} (id {})", admin.role, admin.email, admin.id);
    if generated {
        println!("password (shown once): {}", pw.expose());
    }
    Ok(())
}
