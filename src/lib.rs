//! diemcau — watches the health of every video-conference endpoint ("điểm cầu") that links the
//! national government to Vietnam's communes.
//!
//! Layers, lowest first; each imports only from the layers below it (checked by
//! `tests/architecture.rs`, described in `docs/architecture.md`):
//! [`domain`] → [`probe`] → [`config`] → [`metrics`] → [`monitor`] → [`store`], [`report`] →
//! [`web`] → [`app`]. `src/main.rs` and [`cli`] are only the command line.

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod metrics;
pub mod monitor;
pub mod probe;
pub mod report;
pub mod store;
pub mod web;
