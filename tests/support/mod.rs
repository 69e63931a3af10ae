//! Test support shared by the integration tests: the real app in a child process, and (in
//! `comfy_standin`) a ComfyUI that speaks the real wire format.

pub mod app;
pub mod browser;
pub mod comfy_standin;
pub mod sample;
