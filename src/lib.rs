//! GAZE: an event-sourced library of Stable Diffusion prompt assets that generates images
//! through ComfyUI. See ARCHITECTURE.md for the map.

pub mod app;
pub mod category;
pub mod comfy;
pub mod command;
pub mod config;
pub mod engine;
pub mod event;
pub mod files;
pub mod generate;
pub mod handle;
pub mod jobs;
pub mod ledger;
pub mod library;
pub mod models;
pub mod png;
pub mod reactor;
pub mod settings;
pub mod sync;
pub mod synth;
pub mod uploads;
pub mod web;
