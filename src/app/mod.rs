//! The daemon's root: wires config, probing, monitor, ledger and web server together, for
//! `run` and for the self-contained `demo`, and handles reloads and the private namespace.

pub mod boot;
pub mod daemon;
pub mod demo;
pub mod dns;
pub mod merged_view;
pub mod netns;
pub mod paths;
pub mod report_mail;
pub mod report_schedule;
pub mod shared_ledger;
