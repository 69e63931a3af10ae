//! The library: the nine categories and their descriptor table (`category`), commands and the
//! pure rules that turn them into events (`command`), the projection folded from events
//! (`projection`), reading `data/` (`sync`) and watching it (`watcher`), the file projector
//! (`files`), model files on disk (`models`), settings (`settings`), cover uploads (`uploads`)
//! and their thumbnails (`thumbs`), finding entries by their words (`search`), and turning one
//! kind of entry into another (`transfer`).
//!
//! Outside dependencies: the file system, notify (the watcher) and image (thumbnails). Must not: touch redb (only
//! the store does), speak HTTP, or talk to ComfyUI. `command`, `projection`, `search` and `transfer` do no IO at all.

pub mod category;
pub mod command;
pub mod files;
pub mod models;
pub mod projection;
pub mod search;
pub mod settings;
pub mod sync;
pub mod thumbs;
pub mod transfer;
pub mod uploads;
pub mod watcher;
