//! `picloud`: a thin binary over the `picloud` library.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use picloud::cli::{Cli, Command, ConfigCommand};
use picloud::config::{self, LoadError};

// mimalloc: per-thread heaps and cheap cross-thread frees. With glibc's malloc the
// request threads, the slots and the recorder contended on arena locks (see
// ARCHITECTURE.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let cli = Cli::parse_from(&argv);
    // `serve` and `config` read the configuration file first: its log settings
    // and any error in it come before anything else.
    let settings = match &cli.command {
        Command::Serve(_) => Some(config::load(&argv)),
        Command::Config(ConfigCommand::Check { file }) => {
            return config_check(&argv[0], file);
        }
        Command::Config(ConfigCommand::Show { config }) => {
            return config_show(&argv[0], config.as_deref());
        }
        _ => None,
    };
    let settings = match settings.transpose() {
        Ok(settings) => settings,
        Err(e) => return load_failed(e),
    };
    let logging = match &settings {
        Some(s) => picloud::logging::init(
            &s.log.level,
            s.log.format.as_deref(),
            s.serve.otlp_endpoint.as_deref(),
        ),
        None => picloud::logging::init(&cli.log_level, cli.log_format.as_deref(), None),
    };
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
            Command::Serve(_) => {
                let Some(settings) = settings else {
                    anyhow::bail!("no settings");
                };
                let reloader = picloud::reload::Reloader { argv, logging };
                picloud::serve(settings, Some(reloader), picloud::shutdown_signal()).await
            }
            // Answered before the runtime started.
            Command::Config(_) => Ok(()),
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

/// Exit status 2 for a wrong command line, 1 for an invalid setting.
fn load_failed(error: LoadError) -> ExitCode {
    match error {
        LoadError::Usage(e) => e.exit(),
        LoadError::Invalid(message) => {
            eprintln!("picloud: {message}");
            ExitCode::from(1)
        }
    }
}

/// The command line `serve` would have with `file` (or none).
fn serve_argv(program: &OsString, file: Option<&std::path::Path>) -> Vec<OsString> {
    let mut argv = vec![program.clone(), "serve".into()];
    if let Some(file) = file {
        argv.extend(["--config".into(), file.as_os_str().to_owned()]);
    }
    argv
}

/// `picloud config check FILE`.
fn config_check(program: &OsString, file: &std::path::Path) -> ExitCode {
    match config::load(&serve_argv(program, Some(file))) {
        Ok(_) => {
            println!("{}: valid", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => load_failed(e),
    }
}

/// `picloud config show [--config FILE]`.
fn config_show(program: &OsString, file: Option<&std::path::Path>) -> ExitCode {
    match config::load(&serve_argv(program, file)) {
        Ok(settings) => {
            print!("{}", config::render(&settings));
            ExitCode::SUCCESS
        }
        Err(e) => load_failed(e),
    }
}
