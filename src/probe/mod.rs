//! Probes: ways to ask an endpoint whether it is alive. ICMP echo is the first kind.

pub mod check;
pub mod http;
pub mod icmp;
pub mod outcome;
pub mod scheduler;
pub mod sip;
pub mod tcp;
