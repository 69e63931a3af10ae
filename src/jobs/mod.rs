//! Jobs: generation requests resolved against the library into recipes (`request`), the jobs
//! projection (`projection`), compact recipe encoding (`recipe`), specs read back from the
//! ledger with compact recipes expanded (`spec`), the reactor that runs them
//! through ComfyUI exactly once (`reactor`), the ComfyUI client (`comfy`) and PNG metadata
//! (`png`).
//!
//! Outside dependency: ComfyUI over HTTP and WebSocket, spoken by `comfy` only and driven by
//! `reactor` only. Must not: touch redb or write library documents (outcomes are events through
//! the handle).

pub mod comfy;
pub mod png;
pub mod projection;
pub mod reactor;
pub mod recipe;
pub mod request;
pub mod spec;
