//! Probes: ways to ask an endpoint whether it is alive. ICMP echo is the first kind.

pub mod icmp;
