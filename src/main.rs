//! The `modscope` binary: parse the command line, run the command, print errors as a cause
//! chain with a next step, and exit 0 (success), 1 (failure) or the child's code under `run`.
//! A closed stdout or stderr (`modscope summary T | head`) ends any command with exit 0.

use std::io::Write;

use clap::{CommandFactory, Parser};

use modscope::cli::{Cli, Command};
use modscope::cmd;

fn main() {
    quiet_on_closed_output();
    let cli = Cli::parse();
    if let Some(help) = cli.command.profile_help() {
        print!("{help}");
        std::process::exit(0);
    }
    init_logging(cli.verbose);
    match cli.command {
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "modscope", &mut out);
            write_stdout(&out);
        }
        Command::Man => {
            let mut out = Vec::new();
            if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut out) {
                eprintln!("modscope: error: cannot render the man page: {e}");
                std::process::exit(1);
            }
            write_stdout(&out);
        }
        command => run(command),
    }
}

/// Writes generated text to stdout; a closed pipe is a normal end.
fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Printing to a closed stdout/stderr panics in `println!`/`eprintln!` (Rust ignores
/// SIGPIPE, so the write fails with EPIPE instead of killing the process). Like `head`'s
/// other writers, modscope then stops quietly with exit 0: the reader has what it wanted.
/// Sockets are unaffected: they report EPIPE as an error, never through this hook.
fn quiet_on_closed_output() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if modscope::console::is_closed_output_panic(message) {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn run(command: Command) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("modscope: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Proxy(args) => cmd::proxy::proxy(args).await,
            Command::Run(args) => cmd::run::run(args).await,
            Command::Ca { action, ca_dir } => cmd::ca::ca(action, ca_dir),
            Command::Demo(args) => cmd::demo::demo(args).await,
            Command::Summary(args) => cmd::summary::summary(args),
            Command::Replay(args) => cmd::replay::replay(args).await,
            Command::Bench(args) => cmd::bench::bench(args).await,
            Command::Import(args) => cmd::import::import(args),
            Command::Verify(args) => cmd::verify::verify(args),
            Command::Report(args) => cmd::report::report(args),
            Command::Export(args) => cmd::export::export(args).await,
            Command::Completions { .. } | Command::Man => Ok(0),
        }
    });
    // Background tasks (idle upstream connections) must not delay the exit.
    runtime.shutdown_background();
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            for line in modscope::console::error_lines(err.chain().map(|c| c.to_string())) {
                eprintln!("{line}");
            }
            std::process::exit(1);
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "modscope=warn",
        1 => "modscope=info",
        _ => "modscope=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MODSCOPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let color = modscope::console::stderr_color();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
