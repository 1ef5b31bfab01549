//! The `raystack` binary: parse arguments, run, map the result to an exit code, print the
//! error chain once.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // kube and the cloud SDKs may bring different rustls crypto providers; pick one for the process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = raystack::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: failed to start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(raystack::cli::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            raystack::output::print_error(&err);
            ExitCode::from(1)
        }
    }
}
