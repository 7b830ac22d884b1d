//! Law-quiz campaign lottery and voucher service.
//!
//! `domain` holds the pure campaign logic (no I/O); `store` persists it in SQLite or PostgreSQL;
//! `http` and the binary's CLI are thin layers over both.

pub mod app;
pub mod clock;
pub mod config;
pub mod csprng;
pub mod domain;
pub mod http;
pub mod sms;
pub mod startup;
pub mod store;
pub mod telemetry;
