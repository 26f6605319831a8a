use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = istio_proxy_reset::cli::Cli::parse();
    istio_proxy_reset::telemetry::init();
    let code = istio_proxy_reset::cli::main(cli);
    std::process::ExitCode::from(code as u8)
}
