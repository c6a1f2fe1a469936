//! globaldns: authoritative DNS and stable virtual IPs for the `.global`
//! names of a multi-cluster Istio mesh.
#![forbid(unsafe_code)]

pub mod names;
pub mod registry;
pub mod vip;
