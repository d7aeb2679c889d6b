//! `diemcau report sla`: the SLA report from the ledger, to a file or standard output.

use std::path::PathBuf;
use std::process::ExitCode;

use super::run::load;

pub(super) fn sla(
    config: &PathBuf,
    period: String,
    by: String,
    format: &str,
    out: Option<&std::path::Path>,
) -> ExitCode {
    let format = match format.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(config) = load(Some(config), crate::config::Overrides::default()) else {
        return ExitCode::FAILURE;
    };
    let request = crate::web::reports::ReportRequest { period, by, format };
    let started = std::time::Instant::now();
    let body = match crate::web::reports::render_from_config(&config, &request) {
        Ok(r) => r.body,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let written = match out {
        Some(path) => std::fs::write(path, &body),
        None => std::io::Write::write_all(&mut std::io::stdout().lock(), &body),
    };
    match written {
        Ok(()) => {
            if let Some(path) = out {
                eprintln!(
                    "wrote {} ({} bytes) in {:?}",
                    path.display(),
                    body.len(),
                    started.elapsed()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write the report: {e}");
            ExitCode::FAILURE
        }
    }
}
