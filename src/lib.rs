//! diemcau — watches the health of every video-conference endpoint ("điểm cầu") that links the
//! national government to Vietnam's communes.
//!
//! Data flows one way:
//! [`config`] (TOML + inventory CSV) → [`probe::icmp`] engine on one paced [`schedule`] →
//! [`monitor`] (per-endpoint [`health`] state, figures) → [`metrics`] and [`server`] (HTTP).
//! [`daemon::run`] wires them together; `src/main.rs` is only the command line.

pub mod blackbox;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod health;
pub mod inventory_gen;
pub mod lab;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod netns;
pub mod oneshot;
pub mod probe;
pub mod query;
pub mod report;
pub mod report_http;
pub mod schedule;
pub mod server;
pub mod service;
pub mod sla;
pub mod status;
pub mod store;
pub mod web_security;
