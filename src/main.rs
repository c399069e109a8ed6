//! The `modscope` binary: parse the command line, run the command, print errors as a cause
//! chain with a next step, and exit 0 (success), 1 (failure) or the child's code under `run`.

use clap::Parser;

use modscope::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    if let Some(help) = cli.command.profile_help() {
        print!("{help}");
        std::process::exit(0);
    }
    init_logging(cli.verbose);
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
        match cli.command {
            Command::Proxy(args) => modscope::commands::proxy(args).await,
            Command::Run(args) => modscope::run::run(args).await,
            Command::Ca { action, ca_dir } => modscope::commands::ca(action, ca_dir),
            Command::Demo(args) => modscope::demo::demo(args).await,
            Command::Summary(args) => modscope::commands::summary(args),
            Command::Replay(args) => modscope::commands::replay(args).await,
            Command::Bench(args) => modscope::bench::bench(args).await,
            Command::Import(args) => modscope::commands::import(args),
            Command::Verify(args) => modscope::verify::verify(args),
            Command::Report(args) => modscope::commands::report(args),
            Command::Export(args) => modscope::export::export(args).await,
        }
    });
    // Background tasks (idle upstream connections) must not delay the exit.
    runtime.shutdown_background();
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("modscope: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
