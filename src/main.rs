use clap::Parser;
use istio_proxy_reset::{cli, exit, telemetry};

fn main() -> std::process::ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // Help and version are not errors; bad usage is bad input (1), never the gate's 2.
            let code = if error.use_stderr() {
                exit::ERROR
            } else {
                exit::DONE
            };
            return std::process::ExitCode::from(code as u8);
        }
    };
    telemetry::init();
    std::process::ExitCode::from(cli::main(cli) as u8)
}
