//! modscope: an intercepting HTTPS proxy that knows how the go command talks to the network.
//!
//! The `testkit` feature (default) adds the loopback test kit and what runs on it: the
//! `demo` and `bench` commands and the HAR 1.2 validator (see Cargo.toml).

pub mod ca;
pub mod capture;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod console;
pub mod diagnose;
pub mod exchange;
pub mod export;
pub mod fault;
pub mod gomod;
pub mod goproxy;
pub mod gozip;
pub mod htmlreport;
pub mod net;
pub mod otlp;
pub mod procenv;
pub mod proxy;
pub mod recorder;
pub mod replay;
pub mod report;
/// The loopback test kit; the crate's own unit tests use it even without the feature.
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod tls;
pub mod trace;
pub mod verify;
