use clap::Parser;

fn main() {
    racecheck::cli::init_logging();
    let cli = racecheck::cli::Cli::parse();
    std::process::exit(racecheck::cli::run(cli));
}
