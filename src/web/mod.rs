//! Everything HTTP: the server and its routes, the metrics exposition, the status page and JSON
//! API, SLA reports over HTTP, blackbox-style `/probe`, and web security (TLS, basic auth).

pub mod blackbox;
pub mod exposition;
pub mod merged;
pub mod paths;
pub mod query;
pub mod reports;
pub mod security;
pub mod server;
pub mod shared_body;
pub mod status;
