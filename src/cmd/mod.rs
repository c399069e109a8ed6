//! The commands, one file each; `main.rs` parses the command line and calls them.
//! The commands that run the proxy (`proxy`, `replay`, `run`, `demo`) open a
//! [`session::Session`] and differ only in what they do while it runs.

pub mod bench;
pub mod demo;
pub mod run;
pub mod session;
