//! Loopback fixtures shared by `modscope demo`, the integration tests and the benchmark:
//! synthetic Go modules, a GOPROXY origin, and a client that talks through the proxy.

pub mod broken;
pub mod client;
pub mod dns;
pub mod modules;
pub mod origin;
pub mod sumdb;
mod tempdir;

pub use tempdir::{make_writable, TempDir};
