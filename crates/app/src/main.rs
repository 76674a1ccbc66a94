//! The `vigil` binary: command line, configuration, start-up. `anyhow` lives here only.

mod access;
mod accountability;
mod cli;
mod context;
mod demo;
mod enrol;
mod evaluate;
mod evidence;
mod keys;
mod models;
mod output;
mod serve;
mod subjects;

use clap::Parser;
use cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,vigil=info,vigil_api=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut context = context::Context::load(cli.config.as_deref())?;
    if let Some(actor) = cli.acting_as {
        context.actor = actor;
    }
    context.case_ref = cli.case_ref;
    context.reason = cli.reason;
    match cli.command {
        Command::Models(command) => models::run(&context, command),
        Command::Enroll(args) => enrol::run(&context, args),
        Command::Identify(args) => enrol::identify(&context, args),
        Command::Verify(args) => enrol::verify(&context, args),
        Command::Subjects(command) => subjects::run(&context, command),
        Command::Serve(args) => serve::run(&context, args),
        Command::Openapi => {
            println!("{}", vigil_api::openapi::document_json()?);
            Ok(())
        }
        Command::Calibrate(args) => evaluate::calibrate(&context, args),
        Command::Eval(command) => evaluate::run(&context, command),
        Command::Bench(command) => bench(&context, command),
        Command::Demo(args) => demo::run(&context, args),
        Command::Users(command) => access::users(&context, command),
        Command::Audit(command) => access::audit(&context, command),
        Command::Cases(command) => accountability::cases(&context, command),
        Command::Search(args) => accountability::search(&context, args),
        Command::AccessReport(args) => accountability::access_report(&context, args),
        Command::Keys(command) => keys::run(&context, command),
        Command::VerifyExport(args) => evidence::verify(args),
    }
}

/// `vigil bench`: the harnesses live in `vigil-bench`; the binary lends them its configuration
/// and how it builds analyzers and the service.
fn bench(context: &context::Context, command: vigil_bench::BenchCommand) -> anyhow::Result<()> {
    let bench_context = vigil_bench::BenchContext {
        config: context.config.clone(),
        cores: context::cores(),
        repository_root: context::repository_root(),
        shared_dir: &context::shared_dir,
        analyzer_for: &|config| context.analyzer_for(config),
        service_on: &|store| context.service_on(store),
        spawn_webhook_waker: &serve::spawn_webhook_waker,
    };
    vigil_bench::run(&bench_context, command)
}
