use clap::Parser;
use roster::cli::{Cli, Command};
use roster::startup::{Application, migrate, shutdown_signal};
use roster::telemetry;

// Many small, short-lived allocations across threads: mimalloc handles them far better than glibc's allocator
// (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli.command {
        Some(Command::Migrate(args)) => {
            let settings = args.settings();
            migrate(&settings).await?;
            tracing::info!(database = %settings.url, "migrations applied");
        }
        Some(Command::Serve(args)) => serve(args).await?,
        Some(Command::Users(args)) => roster::admin::users(args).await?,
        Some(Command::Roles(args)) => roster::admin::roles(args).await?,
        Some(Command::Openapi { generated }) => {
            if generated {
                println!("{}", roster::api::generated_spec());
            } else {
                print!("{}", roster::api::SPEC_YAML);
            }
        }
        None => serve(cli.serve).await?,
    }
    Ok(())
}

async fn serve(args: roster::cli::ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings();
    tracing::info!(?settings, "starting");
    let app = Application::build(settings.clone()).await?;
    if let Some(password) = app.generated_admin_password() {
        // Printed once, to stdout, on purpose: this is the only time the password exists in clear.
        println!(
            "Generated admin password for `{}`: {password}\n\
             It is shown only this once and stored hashed. Set ROSTER_ADMIN_PASSWORD to choose your own.",
            settings.admin_username
        );
    }
    tracing::info!(
        "listening on http://{}:{} (Swagger UI at /docs)",
        settings
            .address
            .rsplit_once(':')
            .map_or("127.0.0.1", |(host, _)| host),
        app.port()
    );
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}
