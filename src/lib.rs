//! modscope: an intercepting HTTPS proxy that knows how the go command talks to the network.

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
pub mod testkit;
pub mod tls;
pub mod trace;
pub mod verify;
