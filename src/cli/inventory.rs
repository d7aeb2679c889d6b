//! `diemcau inventory generate`: a national-size example inventory.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::ExitCode;

use crate::config::inventory_gen::{self, Era, GenerateOptions};

pub(super) fn generate(
    era: Era,
    endpoints: Option<usize>,
    first_address: Ipv4Addr,
    units: Option<String>,
    out: Option<&Path>,
) -> ExitCode {
    let opts = GenerateOptions {
        era,
        endpoints: endpoints.unwrap_or_else(|| GenerateOptions::default_endpoints(era)),
        first_address,
        units,
    };
    let result = match &out {
        Some(path) => std::fs::File::create(path).and_then(|f| {
            let mut w = std::io::BufWriter::new(f);
            inventory_gen::generate(&opts, &mut w)?;
            std::io::Write::flush(&mut w)
        }),
        None => inventory_gen::generate(&opts, &mut std::io::stdout().lock()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write the inventory: {e}");
            ExitCode::FAILURE
        }
    }
}
