//! The integration tests: one binary, one module per area. Each test starts the real app on a
//! free loopback port with temporary folders.

#[path = "../support/mod.rs"]
mod support;

mod assistant;
mod browser_library;
mod browser_workshop;
mod cli;
mod comfy;
mod crash;
mod engine;
mod generate;
mod guard;
mod history;
mod jobs;
mod library;
mod pages;
mod queue;
mod replay;
mod sync;
mod template;
mod thumbs;
mod tidy;
mod workshop;
