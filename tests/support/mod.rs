//! Test support shared by the integration tests: the real app in a child process, and
//! stand-ins that speak the real wire formats: ComfyUI (`comfy_standin`) and an
//! OpenAI-compatible LLM (`llm_standin`).

pub mod app;
pub mod browser;
pub mod comfy_standin;
pub mod forms;
pub mod llm_standin;
pub mod sample;
