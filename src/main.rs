//! `picloud`: a thin binary over the `picloud` library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use picloud::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

// mimalloc: per-thread heaps and cheap cross-thread frees. With glibc's malloc the
// request threads, the slots and the recorder contended on arena locks (see
// ARCHITECTURE.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("picloud-io")
        // Slot-sized stacks (reserved, not resident): a run may execute inline
        // on these threads when the node is otherwise idle (see the executor).
        .thread_stack_size(picloud_sandbox::SLOT_STACK_SIZE)
        .on_thread_start(picloud_sandbox::mark_slot_stack)
        // Each inline run hands its thread's other work to a spare thread; under
        // load those hand-offs outpace the spares waking up, and without a cap the
        // pool grew to ~50 threads (each keeping allocator pages resident). Four
        // spares also serve password hashing and DNS lookups; beyond them those wait.
        .max_blocking_threads(4)
        // ...and they are kept once started: a spare ending 10 s (tokio's default)
        // after a burst is work the node would do while otherwise idle.
        .thread_keep_alive(std::time::Duration::MAX)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("picloud: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => picloud::serve(args, picloud::shutdown_signal()).await,
            Command::Migrate(args) => {
                let store = picloud::open_store(&args).await?;
                store.close().await;
                println!("migrations applied ({})", args.describe());
                Ok(())
            }
            Command::Replay(args) => picloud::replay::run(&args).await,
            Command::Export(args) => picloud::transfer::export(&args).await,
            Command::Import(args) => picloud::transfer::import(&args).await,
            Command::Client(command) => picloud::cmd::run(command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<picloud::cmd::Exit>() => {
            let code = e.downcast_ref::<picloud::cmd::Exit>().map_or(1, |x| x.code);
            if !e.to_string().is_empty() {
                eprintln!("picloud: {e}");
            }
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("picloud: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing(format: Option<&str>) {
    let filter = EnvFilter::try_from_env("PICLOUD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,ractor=warn"));
    let json = match format {
        Some("json") => true,
        Some(_) => false,
        None => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
