//! The hidden `diemcau completions SHELL` and `diemcau man [--out-dir DIR]`: shell completion
//! scripts and man pages generated from the command-line definition, so they never drift from
//! it. The Debian package ships copies of both (deploy/debian/), checked against these outputs by
//! tests/cli_conventions.rs. They have their own parser, so the user's command line (its help,
//! completions and man pages) never shows them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use super::Cli;
use crate::metrics::build::VERSION;

/// The first arguments handled here rather than by [`Cli`].
pub(super) const COMMANDS: [&str; 2] = ["completions", "man"];

#[derive(Parser)]
#[command(name = "diemcau")]
struct Docs {
    #[command(subcommand)]
    command: DocsCommand,
}

#[derive(Subcommand)]
enum DocsCommand {
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), or write one page per command into a directory.
    Man {
        /// Write diemcau.1, diemcau-run.1, … here instead of printing diemcau.1.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

pub(super) fn main() -> ExitCode {
    match Docs::parse().command {
        DocsCommand::Completions { shell } => completions(shell),
        DocsCommand::Man { out_dir } => man(out_dir.as_deref()),
    }
}

/// The command as documented: the plain version (the revision would change every page at every
/// commit), no `help` subcommand.
fn command() -> clap::Command {
    Cli::command()
        .version(VERSION)
        .long_version(None::<&str>)
        .disable_help_subcommand(true)
}

/// `command()` with each option's visible aliases named in its help: `--help` lists them by
/// itself, a man page would not.
fn documented() -> clap::Command {
    fn name_aliases(mut cmd: clap::Command) -> clap::Command {
        let subcommands: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
        for name in subcommands {
            cmd = cmd.mut_subcommand(name, name_aliases);
        }
        let aliased: Vec<(clap::Id, String)> = cmd
            .get_arguments()
            .filter_map(|a| {
                let aliases = a.get_visible_aliases()?;
                let listed = aliases.iter().map(|x| format!("--{x}")).collect::<Vec<_>>().join(", ");
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                Some((a.get_id().clone(), format!("{help} (also {listed})").trim().to_string()))
            })
            .collect();
        for (id, help) in aliased {
            cmd = cmd.mut_arg(id, |a| a.help(help));
        }
        cmd
    }
    name_aliases(command())
}

fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut cmd = command();
    clap_complete::generate(shell, &mut cmd, "diemcau", &mut std::io::stdout());
    ExitCode::SUCCESS
}

fn man(out_dir: Option<&Path>) -> ExitCode {
    let written = match out_dir {
        Some(dir) => std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(documented(), dir)),
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(documented())
                .render(&mut out)
                .and_then(|()| out.flush())
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("diemcau man: {e}");
            ExitCode::FAILURE
        }
    }
}
