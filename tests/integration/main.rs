//! Integration tests: the server over real sockets on 127.0.0.1, and the
//! binary's command line. One test binary, one module per area.

mod admin;
mod brake;
mod cli;
mod clusterset;
mod dns_table;
mod edges;
mod edns;
mod explain_txt;
mod export;
mod faults;
mod federation;
mod layout;
mod lifecycle;
mod manifests;
mod monitoring;
mod readme;
mod reload;
mod restart;
mod support;
mod tcp;
mod truncation;
