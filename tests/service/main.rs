//! Every integration test, in one binary (one link instead of six on two cores). The modules
//! run against the HTTP API, the CLI, the store and the pages; most run once per backend, as
//! `MODULE::sqlite::NAME` and `MODULE::postgres::NAME`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod api;
mod browser;
mod conformance;
mod draws;
mod faults;
mod quiz;
mod sms;
mod vouchers;
