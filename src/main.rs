use clap::Parser;
use roster::cli::{Cli, Command};
use roster::startup::{Application, migrate, shutdown_signal};
use roster::telemetry;

// Many small, short-lived allocations across threads: mimalloc handles them far better than glibc's allocator
// (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `arena_eager_commit`, 4 in both its v2 and v3 option enums (`mimalloc.h`); the Rust bindings name
/// only some options.
#[cfg(target_os = "linux")]
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Lets mimalloc commit its arenas' memory as it is used instead of all at once. With eager commit (its default on
/// Linux), Roster idled at ~48 MiB of RSS and peaked at 85–119 MiB under 16 concurrent 500-subscriber pages;
/// without, ~31 and 59–91 MiB, at the same CPU per request within noise (docs/benchmarks.md). Only the default changes:
/// `MIMALLOC_ARENA_EAGER_COMMIT` in the environment still decides when it is set. Nothing here allocates.
#[cfg(target_os = "linux")]
extern "C" fn tune_allocator() {
    // SAFETY: stores an integer in mimalloc's option table; 0 is a valid value of this option.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
}

/// Runs `tune_allocator` as the process starts, before Rust's runtime allocates anything: mimalloc reserves its
/// first arena at the first allocation, and the option only applies to arenas reserved after it is set.
/// Linux only: mimalloc commits eagerly only where the OS overcommits, and `.init_array` is an ELF section.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary links this file too, so its start-up ran `tune_allocator` as Roster's does.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_allocator_commits_arena_memory_as_it_is_used() {
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_some() {
            return; // the environment decides, by design
        }
        // SAFETY: reads an integer from mimalloc's option table.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT) },
            0
        );
    }
}
