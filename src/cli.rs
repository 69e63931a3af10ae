//! The command line, on clap: `gaze serve | preview | synth | mcp | compact` and the history
//! tools (`events`, `audit`, `history`, `restore`, `export`, `import`, `verify`) with their flags and environment
//! variables (a flag wins over its variable, which wins over the default that serves the
//! bundled sample library), and `Config`, what `gaze serve` runs with.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// gaze — an event-sourced prompt-asset library that generates images through ComfyUI.
///
/// With no sub-command, `gaze` serves the app (`gaze serve`).
#[derive(Parser, Debug)]
#[command(
    name = "gaze",
    version,
    args_conflicts_with_subcommands = true,
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Serve the app (the default): the library, the job reactor and the web pages.
    Serve(ServeArgs),
    /// Resolve one generation request against data/ and print its prompts, workflow and the
    /// source of every tag, as JSON. Reads files only, so it works while a server runs.
    Preview(PreviewArgs),
    /// Write a synthetic library (N documents per category) for benchmarks and experiments.
    Synth(SynthArgs),
    /// Print the event log, with the filters of GET /api/events.
    Events(EventsArgs),
    /// Show how an image was made: its job's prompts with the source of every tag, the graph
    /// ComfyUI received, seed, checkpoint, LoRAs and the entry versions used (JSON).
    Audit(AuditArgs),
    /// Print one entry's versions (or its text at a seq, or the difference between two).
    History(HistoryArgs),
    /// Put the library back as it was right after a seq (one event; undo by restoring to the
    /// seq just before it). Prints what will change and asks first.
    Restore(RestoreArgs),
    /// Write every event with its envelope as JSON lines, losslessly (for backups).
    Export(ExportArgs),
    /// Rebuild a ledger from an export; the ledger must be new or empty.
    Import(ImportArgs),
    /// Check the ledger: every event decodes, folds equal the snapshots, data/ matches the
    /// library, the file projector's checkpoint holds. Exits non-zero saying what is wrong.
    Verify(VerifyArgs),
    /// Serve an MCP server over stdio (logs go to stderr).
    #[command(subcommand)]
    Mcp(McpCmd),
    /// Give the ledger file's free space back to the file system (gaze must not be running).
    /// Nothing written is changed: the ledger stays append-only.
    Compact(CompactArgs),
}

#[derive(Subcommand, Debug)]
pub enum McpCmd {
    /// The Danbooru tag tools: search_tags, validate_tags, suggest_tags.
    Tags(McpTagsArgs),
    /// The library: list, search and read entries, preview and queue generations, read jobs,
    /// create and edit entries. Opens the ledger itself, or, when a running `gaze serve`
    /// holds it, relays to that server's /mcp/library.
    Library(McpLibraryArgs),
}

#[derive(Args, Debug, Clone)]
pub struct McpTagsArgs {
    /// The tag list (name,type,post count,aliases).
    #[arg(
        long,
        env = "GAZE_TAGS",
        default_value = "data/danbooru-tags.csv",
        value_name = "FILE"
    )]
    pub tags: PathBuf,
}

/// The `--ledger` flag: a ledger folder (holding gaze.redb) or a .redb file.
#[derive(Args, Debug, Clone)]
pub struct LedgerPath {
    /// The ledger folder (holding gaze.redb) or a .redb file.
    #[arg(
        long,
        env = "GAZE_LEDGER",
        default_value = "ledger",
        value_name = "DIR|FILE"
    )]
    pub ledger: PathBuf,
}

impl LedgerPath {
    /// The ledger file the flag names.
    pub fn file(&self) -> PathBuf {
        ledger_file(self.ledger.clone())
    }
}

/// Where a library lives: its JSON folders, its ledger and its images (`serve`, `mcp library`).
#[derive(Args, Debug, Clone)]
pub struct Folders {
    /// The library's JSON folders.
    #[arg(long, env = "GAZE_DATA", default_value = "data", value_name = "DIR")]
    pub data: PathBuf,
    #[command(flatten)]
    pub ledger: LedgerPath,
    /// Where covers and generated images are kept.
    #[arg(
        long,
        env = "GAZE_UPLOADS",
        default_value = "static/uploads",
        value_name = "DIR"
    )]
    pub uploads: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct McpLibraryArgs {
    #[command(flatten)]
    pub folders: Folders,
    /// Relay to this running server's /mcp/library instead of opening the ledger
    /// (default: the server that holds the ledger, found through ledger/gaze.url).
    #[arg(long, env = "GAZE_URL", value_name = "URL")]
    pub url: Option<String>,
}

impl McpLibraryArgs {
    /// The ledger file these flags name.
    pub fn ledger_file(&self) -> PathBuf {
        self.folders.ledger.file()
    }

    /// A `Config` for opening the ledger directly (no server, no watcher).
    pub fn config(&self) -> Result<Config, clap::Error> {
        let mut c = ServeArgs::parse_from_args(&["--no-watch"])?.into_config();
        c.data = self.folders.data.clone();
        c.ledger = self.ledger_file();
        c.uploads = self.folders.uploads.clone();
        Ok(c)
    }
}

/// Where the ledger is, and the server to ask when another gaze holds it open.
#[derive(Args, Debug, Clone)]
pub struct LedgerArgs {
    #[command(flatten)]
    pub ledger: LedgerPath,
    /// A running gaze to ask instead of opening the ledger (default: the one that holds the
    /// ledger, found through the gaze.url it writes beside it, else http://127.0.0.1:5000).
    #[arg(long, env = "GAZE_URL", value_name = "URL")]
    pub url: Option<String>,
}

impl LedgerArgs {
    /// The ledger file these flags name.
    pub fn file(&self) -> PathBuf {
        self.ledger.file()
    }
}

#[derive(Args, Debug, Clone)]
pub struct CompactArgs {
    #[command(flatten)]
    pub ledger: LedgerPath,
}

impl CompactArgs {
    /// The ledger file these flags name.
    pub fn ledger_file(&self) -> PathBuf {
        self.ledger.file()
    }
}

#[derive(Args, Debug, Clone)]
pub struct EventsArgs {
    #[command(flatten)]
    pub at: LedgerArgs,
    /// Event types, comma-separated (document_edited, job_failed, restored, …).
    #[arg(long = "type", value_name = "TYPE,…")]
    pub kinds: Option<String>,
    /// Origins, comma-separated (web, watcher, startup, reactor, cli, mcp, assistant).
    #[arg(long, value_name = "ORIGIN,…")]
    pub origin: Option<String>,
    /// Only events about this category …
    #[arg(long)]
    pub category: Option<String>,
    /// … and this entry of it.
    #[arg(long, requires = "category")]
    pub slug: Option<String>,
    /// Only this job's events.
    #[arg(long)]
    pub job: Option<String>,
    /// From this time (RFC 3339 or unix ms).
    #[arg(long)]
    pub since: Option<String>,
    /// Up to this time (RFC 3339 or unix ms).
    #[arg(long)]
    pub until: Option<String>,
    /// Events after this seq, oldest first.
    #[arg(long, conflicts_with = "before")]
    pub after: Option<u64>,
    /// The events just before this seq.
    #[arg(long)]
    pub before: Option<u64>,
    /// The newest events (the default is the oldest).
    #[arg(long, conflicts_with_all = ["after", "before"])]
    pub newest: bool,
    /// How many (1–1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// Print JSON lines (every field) instead of one summary line per event.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    #[command(flatten)]
    pub at: LedgerArgs,
    /// A job id, or an image path (…/<job>_<n>.png, or a PNG file GAZE saved).
    pub target: String,
    /// Compare with another job or image instead (prints the recipe differences).
    #[arg(long, value_name = "JOB|IMAGE")]
    pub diff: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub at: LedgerArgs,
    /// The category (characters, outfits, …).
    pub category: String,
    /// The entry's slug.
    pub slug: String,
    /// Print the entry's text right after this seq.
    #[arg(long = "at", value_name = "SEQ", conflicts_with = "diff")]
    pub at_seq: Option<u64>,
    /// Print the fields that differ between two seqs (A,B).
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub diff: Option<Vec<u64>>,
    /// Versions before this seq.
    #[arg(long)]
    pub before: Option<u64>,
    /// How many versions.
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub at: LedgerArgs,
    /// The seq to go back to: the library becomes what it was right after it.
    #[arg(long = "to", value_name = "SEQ")]
    pub to: u64,
    /// Do not ask.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// The library's JSON folders (rewritten to match, with the server stopped).
    #[arg(long, env = "GAZE_DATA", default_value = "data", value_name = "DIR")]
    pub data: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub at: LedgerArgs,
    /// Only events after this seq.
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    /// Also write each event's fields (readable; import uses the record alone).
    #[arg(long)]
    pub fields: bool,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The export to read (`-` for standard input).
    pub file: PathBuf,
    /// The ledger to build: a new or empty folder (or .redb file).
    #[arg(long, value_name = "DIR|FILE")]
    pub ledger: PathBuf,
    /// Also write the imported library's files into this folder (only files that are
    /// missing; a different file already there is reported, never overwritten).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub at: LedgerArgs,
    /// The library's JSON folders to compare.
    #[arg(long, env = "GAZE_DATA", default_value = "data", value_name = "DIR")]
    pub data: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(
        long,
        env = "GAZE_BIND",
        default_value = "127.0.0.1:5000",
        value_name = "ADDR"
    )]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub folders: Folders,
    /// CSS, scripts and fonts.
    #[arg(long = "static", default_value = "static", value_name = "DIR")]
    pub static_dir: PathBuf,
    /// The ComfyUI workflow template (written from the built-in copy when missing).
    #[arg(
        long,
        env = "GAZE_WORKFLOW",
        default_value = "comfy_workflow.json",
        value_name = "FILE"
    )]
    pub workflow: PathBuf,
    /// A ComfyUI backend; repeat for several (the variable takes a comma-separated list).
    #[arg(
        long = "comfy",
        env = "COMFYUI_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8188",
        value_name = "URL"
    )]
    pub comfy: Vec<String>,
    /// Checkpoint root holding Illustrious/ and Noob/.
    #[arg(long, env = "GAZE_CHECKPOINTS", value_name = "DIR")]
    pub checkpoints: Option<PathBuf>,
    /// LoRA root holding Illustrious/<Looks, Clothing, …>/.
    #[arg(long, env = "GAZE_LORAS", value_name = "DIR")]
    pub loras: Option<PathBuf>,
    /// Another Host name the app answers to (a reverse proxy, a LAN name); repeatable.
    #[arg(
        long = "allow-host",
        env = "GAZE_ALLOW_HOSTS",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub allow_hosts: Vec<String>,
    /// Seconds between full rescans of data/ (they back up the file watcher).
    #[arg(long, default_value_t = 30, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub rescan_secs: u64,
    /// Do not watch data/ for outside edits (periodic rescans still run).
    #[arg(long)]
    pub no_watch: bool,
    /// Start with the job queue paused.
    #[arg(long)]
    pub paused: bool,
}

#[derive(Args, Debug, Clone)]
pub struct PreviewArgs {
    /// The page's category (characters, outfits, looks, …).
    #[arg(long)]
    pub category: String,
    /// The page's entry.
    #[arg(long)]
    pub slug: String,
    /// A character slug, or __random__.
    #[arg(long)]
    pub character: Option<String>,
    /// The seed (default: a new random one).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Fields to use, as section::key, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "SECTION::KEY,…")]
    pub fields: Option<Vec<String>>,
    /// A checkpoint_path (default: the first checkpoint).
    #[arg(long)]
    pub checkpoint: Option<String>,
    /// Image width (default 832).
    #[arg(long)]
    pub width: Option<u32>,
    /// Image height (default 1216).
    #[arg(long)]
    pub height: Option<u32>,
    /// Added to the positive prompt.
    #[arg(long, value_name = "TEXT")]
    pub extra_positive: Option<String>,
    /// Added to the negative prompt.
    #[arg(long, value_name = "TEXT")]
    pub extra_negative: Option<String>,
    /// Build for a backend without the Impact Pack (no face and hand detailers).
    #[arg(long)]
    pub vanilla: bool,
    /// The library's JSON folders.
    #[arg(long, env = "GAZE_DATA", default_value = "data", value_name = "DIR")]
    pub data: PathBuf,
    /// The ComfyUI workflow template (the built-in copy when the file is missing).
    #[arg(
        long,
        env = "GAZE_WORKFLOW",
        default_value = "comfy_workflow.json",
        value_name = "FILE"
    )]
    pub workflow: PathBuf,
}

impl PreviewArgs {
    /// The generation request these flags describe, as the API's JSON body.
    pub fn request_body(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut body = serde_json::Map::new();
        body.insert("category".into(), self.category.clone().into());
        body.insert("slug".into(), self.slug.clone().into());
        let texts = [
            ("character", &self.character),
            ("checkpoint", &self.checkpoint),
            ("extra_positive", &self.extra_positive),
            ("extra_negative", &self.extra_negative),
        ];
        for (k, v) in texts {
            if let Some(v) = v {
                body.insert(k.into(), v.clone().into());
            }
        }
        if let Some(s) = self.seed {
            body.insert("seed".into(), s.into());
        }
        for (k, v) in [("width", self.width), ("height", self.height)] {
            if let Some(v) = v {
                body.insert(k.into(), v.into());
            }
        }
        if let Some(f) = &self.fields {
            let list: Vec<serde_json::Value> =
                f.iter().map(|s| s.trim().to_string().into()).collect();
            body.insert("fields".into(), list.into());
        }
        body
    }
}

#[derive(Args, Debug, Clone)]
pub struct SynthArgs {
    /// Folder to write the library into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Documents per category.
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Seed for the generator (the same seed writes the same library).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write this many empty LoRA files under DIR/loras.
    #[arg(long, default_value_t = 0)]
    pub loras: usize,
}

/// What `gaze serve` runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    pub data: PathBuf,
    /// The ledger file (`--ledger DIR` means `DIR/gaze.redb`).
    pub ledger: PathBuf,
    pub uploads: PathBuf,
    pub static_dir: PathBuf,
    /// The user's ComfyUI workflow template.
    pub workflow: PathBuf,
    pub comfy: Vec<String>,
    pub checkpoints: Option<PathBuf>,
    pub loras: Option<PathBuf>,
    /// Host names allowed besides loopback names and the bound address.
    pub allow_hosts: Vec<String>,
    pub rescan_every: Duration,
    pub watch_debounce: Duration,
    pub watch: bool,
    /// Start with the job queue paused (`--paused`).
    pub paused: bool,
}

pub fn ledger_file(p: PathBuf) -> PathBuf {
    if p.extension().is_some_and(|e| e == "redb") {
        p
    } else {
        p.join("gaze.redb")
    }
}

impl ServeArgs {
    /// Parses `gaze serve` flags alone (environment variables apply as on the command line).
    pub fn parse_from_args(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        #[derive(Parser)]
        #[command(args_override_self = true)]
        struct Only {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Only::try_parse_from(std::iter::once("gaze").chain(args.iter().copied())).map(|o| o.serve)
    }

    pub fn into_config(self) -> Config {
        let comfy: Vec<String> = self
            .comfy
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        Config {
            bind: self.bind,
            ledger: self.folders.ledger.file(),
            data: self.folders.data,
            uploads: self.folders.uploads,
            static_dir: self.static_dir,
            workflow: self.workflow,
            comfy: if comfy.is_empty() {
                vec!["http://127.0.0.1:8188".into()]
            } else {
                comfy
            },
            checkpoints: self.checkpoints,
            loras: self.loras,
            allow_hosts: self
                .allow_hosts
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            rescan_every: Duration::from_secs(self.rescan_secs.max(1)),
            watch_debounce: Duration::from_millis(300),
            watch: !self.no_watch,
            paused: self.paused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("gaze").chain(args.split_whitespace()))
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_serve_the_bundled_library() {
        let c = ServeArgs::parse_from_args(&[]).unwrap().into_config();
        assert_eq!(c.bind.to_string(), "127.0.0.1:5000");
        assert_eq!(c.data, PathBuf::from("data"));
        assert_eq!(c.ledger, PathBuf::from("ledger/gaze.redb"));
        assert_eq!(c.workflow, PathBuf::from("comfy_workflow.json"));
        assert_eq!(c.comfy, ["http://127.0.0.1:8188"]);
        assert!(c.watch && !c.paused && c.allow_hosts.is_empty());
        assert_eq!(c.rescan_every, Duration::from_secs(30));
    }

    #[test]
    fn no_sub_command_means_serve_with_its_flags() {
        let cli = parse("--bind 127.0.0.1:0 --no-watch").unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.bind.port(), 0);
        assert!(cli.serve.no_watch);
        let cli =
            parse("serve --comfy http://a:1 --comfy http://b:2 --allow-host gaze.lan").unwrap();
        let Some(Cmd::Serve(s)) = cli.command else {
            panic!("serve expected")
        };
        let c = s.into_config();
        assert_eq!(c.comfy, ["http://a:1", "http://b:2"]);
        assert_eq!(c.allow_hosts, ["gaze.lan"]);
    }

    #[test]
    fn a_repeated_flag_takes_the_last_value_and_lists_add_up() {
        let cli =
            parse("serve --rescan-secs 3600 --rescan-secs 1 --comfy http://a --comfy http://b")
                .unwrap();
        let Some(Cmd::Serve(s)) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(s.rescan_secs, 1);
        assert_eq!(s.comfy, ["http://a", "http://b"]);
    }

    #[test]
    fn a_ledger_folder_or_file_both_work() {
        for (arg, want) in [("/x/l", "/x/l/gaze.redb"), ("/x/my.redb", "/x/my.redb")] {
            let c = ServeArgs::parse_from_args(&["--ledger", arg])
                .unwrap()
                .into_config();
            assert_eq!(c.ledger, PathBuf::from(want));
        }
    }

    #[test]
    fn bad_flags_are_explained_by_clap() {
        for (args, needle) in [
            (
                "--bind nowhere",
                "invalid value 'nowhere' for '--bind <ADDR>'",
            ),
            ("serve --data", "a value is required for '--data <DIR>'"),
            ("serve --rescan-secs 0", "--rescan-secs"),
            (
                "serve --no-wach",
                "tip: a similar argument exists: '--no-watch'",
            ),
            ("preview --slug x", "--category <CATEGORY>"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(
                e.to_string().contains(needle),
                "{args}: {e} lacks {needle:?}"
            );
            assert_eq!(e.exit_code(), 2, "{args}");
        }
    }

    #[test]
    fn preview_flags_become_a_request_body() {
        let cli = parse(
            "preview --category outfits --slug maid --character __random__ --seed 7 \
             --fields identity::hair,wardrobe::top --width 640 --extra-positive sunset",
        )
        .unwrap();
        let Some(Cmd::Preview(p)) = cli.command else {
            panic!("preview expected")
        };
        let body = serde_json::Value::Object(p.request_body());
        assert_eq!(
            body,
            serde_json::json!({
                "category": "outfits", "slug": "maid", "character": "__random__",
                "extra_positive": "sunset", "seed": 7, "width": 640,
                "fields": ["identity::hair", "wardrobe::top"]
            })
        );
    }
}
