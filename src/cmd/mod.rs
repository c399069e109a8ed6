//! The commands, one file each; `main.rs` parses the command line, calls one, and turns
//! what it returns into the exit status. The commands that run the proxy (`proxy`,
//! `replay`, `run`, `demo`) open a [`session::Session`] and differ only in what they do
//! while it runs; `bench` measures `modscope proxy` child processes.

pub mod bench;
pub mod ca;
pub mod demo;
pub mod export;
pub mod import;
pub mod proxy;
pub mod replay;
pub mod report;
pub mod run;
pub mod session;
pub mod summary;
pub mod verify;
