//! Command-line and environment configuration for `gaze serve`: flags win over environment
//! variables, which win over the defaults that serve the bundled sample library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    pub data: PathBuf,
    /// The ledger file (`--ledger DIR` means `DIR/gaze.redb`).
    pub ledger: PathBuf,
    pub uploads: PathBuf,
    pub static_dir: PathBuf,
    pub comfy: Vec<String>,
    pub checkpoints: Option<PathBuf>,
    pub loras: Option<PathBuf>,
    pub rescan_every: Duration,
    pub watch_debounce: Duration,
    pub watch: bool,
    /// Start with the job queue paused (`--paused`).
    pub paused: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data: "data".into(),
            ledger: PathBuf::from("ledger").join("gaze.redb"),
            uploads: PathBuf::from("static").join("uploads"),
            static_dir: "static".into(),
            comfy: Vec::new(),
            checkpoints: None,
            loras: None,
            rescan_every: Duration::from_secs(30),
            watch_debounce: Duration::from_millis(300),
            watch: true,
            paused: false,
        }
    }
}

pub const SERVE_HELP: &str = "\
gaze serve [options]
  --bind ADDR          address to listen on (GAZE_BIND; default 127.0.0.1:5000; port 0 picks one)
  --data DIR           the library's JSON folders (GAZE_DATA; default data)
  --ledger DIR|FILE    the ledger folder or .redb file (GAZE_LEDGER; default ledger/gaze.redb)
  --uploads DIR        generated images and covers (GAZE_UPLOADS; default static/uploads)
  --static DIR         CSS, JS and fonts (default static)
  --comfy URL          a ComfyUI backend, repeatable (COMFYUI_URL, comma-separated)
  --checkpoints DIR    checkpoint root holding Illustrious/ and Noob/ (GAZE_CHECKPOINTS)
  --loras DIR          LoRA root holding Illustrious/<Category>/ (GAZE_LORAS)
  --rescan-secs N      periodic full rescan interval (default 30)
  --no-watch           do not watch data/ for outside edits (periodic rescans still run)
  --paused             start with the job queue paused";

fn ledger_file(p: PathBuf) -> PathBuf {
    if p.extension().is_some_and(|e| e == "redb") {
        p
    } else {
        p.join("gaze.redb")
    }
}

impl Config {
    /// Builds the configuration from `args` (after `serve`) and an environment lookup.
    pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let mut c = Config::default();
        let parse_bind = |s: &str| {
            s.parse::<SocketAddr>()
                .map_err(|e| format!("--bind {s}: {e} (expected e.g. 127.0.0.1:5000)"))
        };
        if let Some(v) = env("GAZE_BIND") {
            c.bind = parse_bind(&v)?;
        }
        if let Some(v) = env("GAZE_DATA") {
            c.data = v.into();
        }
        if let Some(v) = env("GAZE_LEDGER") {
            c.ledger = ledger_file(v.into());
        }
        if let Some(v) = env("GAZE_UPLOADS") {
            c.uploads = v.into();
        }
        if let Some(v) = env("COMFYUI_URL") {
            c.comfy = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(v) = env("GAZE_CHECKPOINTS") {
            c.checkpoints = Some(v.into());
        }
        if let Some(v) = env("GAZE_LORAS") {
            c.loras = Some(v.into());
        }
        let mut comfy_flags = Vec::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "--bind" => c.bind = parse_bind(&value("--bind")?)?,
                "--data" => c.data = value("--data")?.into(),
                "--ledger" => c.ledger = ledger_file(value("--ledger")?.into()),
                "--uploads" => c.uploads = value("--uploads")?.into(),
                "--static" => c.static_dir = value("--static")?.into(),
                "--comfy" => comfy_flags.push(value("--comfy")?),
                "--checkpoints" => c.checkpoints = Some(value("--checkpoints")?.into()),
                "--loras" => c.loras = Some(value("--loras")?.into()),
                "--rescan-secs" => {
                    let v = value("--rescan-secs")?;
                    let n: u64 = v
                        .parse()
                        .map_err(|_| format!("--rescan-secs {v}: not a whole number"))?;
                    c.rescan_every = Duration::from_secs(n.max(1));
                }
                "--no-watch" => c.watch = false,
                "--paused" => c.paused = true,
                other => return Err(format!("unknown option '{other}'\n\n{SERVE_HELP}")),
            }
        }
        if !comfy_flags.is_empty() {
            c.comfy = comfy_flags;
        }
        if c.comfy.is_empty() {
            c.comfy.push("http://127.0.0.1:8188".into());
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_serve_the_bundled_library() {
        let c = Config::parse(&[], |_| None).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:5000");
        assert_eq!(c.data, PathBuf::from("data"));
        assert_eq!(c.ledger, PathBuf::from("ledger/gaze.redb"));
        assert_eq!(c.comfy, ["http://127.0.0.1:8188"]);
    }

    #[test]
    fn flags_win_over_environment() {
        let env = |k: &str| match k {
            "GAZE_DATA" => Some("/env/data".to_string()),
            "COMFYUI_URL" => Some("http://a:1, http://b:2".to_string()),
            "GAZE_LEDGER" => Some("/env/l".to_string()),
            _ => None,
        };
        let c = Config::parse(&args("--data /flag/data --bind 127.0.0.1:0"), env).unwrap();
        assert_eq!(c.data, PathBuf::from("/flag/data"));
        assert_eq!(c.comfy, ["http://a:1", "http://b:2"]);
        assert_eq!(c.ledger, PathBuf::from("/env/l/gaze.redb"));
        let c = Config::parse(&args("--comfy http://x --comfy http://y"), env).unwrap();
        assert_eq!(c.comfy, ["http://x", "http://y"]);
    }

    #[test]
    fn bad_flags_are_explained() {
        assert!(
            Config::parse(&args("--bind nowhere"), |_| None)
                .unwrap_err()
                .contains("--bind")
        );
        assert!(
            Config::parse(&args("--data"), |_| None)
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            Config::parse(&args("--frobnicate"), |_| None)
                .unwrap_err()
                .contains("unknown")
        );
    }
}
