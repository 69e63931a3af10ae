//! GAZE: an event-sourced library of Stable Diffusion prompt assets that generates images
//! through ComfyUI. See ARCHITECTURE.md for the map; each folder's `mod.rs` says what it owns.

pub mod app;
pub mod assistant;
pub mod cli;
pub mod engine;
pub mod gallery;
pub mod handle;
pub mod history;
pub mod jobs;
pub mod library;
pub mod store;
pub mod synth;
pub mod web;
