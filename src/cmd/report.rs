//! `faultline report RUN_DIR`: renders `RUN_DIR/report.html` from `history.jsonl`,
//! `results.json` (or, when absent, the checkers re-run over the history), `test.json` when
//! present and the logs under `nodes/`, and prints its path.

use std::path::{Path, PathBuf};

use crate::run_report::write_report;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run directory (or its history.jsonl); a relative path not found here is looked
    /// up in the store ($FAULTLINE_STORE or ./store): `faultline report latest`.
    #[arg(value_parser = crate::stored::run_path)]
    pub run_dir: PathBuf,
}

pub fn run(args: ReportArgs) -> anyhow::Result<u8> {
    let dir = if args.run_dir.is_file() {
        args.run_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    } else {
        args.run_dir
    };
    let out = write_report(&dir)?;
    println!("{}", out.display());
    Ok(crate::exit::VALID)
}
