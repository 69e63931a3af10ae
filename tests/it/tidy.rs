//! The layout rules ARCHITECTURE.md states, checked on the source tree: every module opens with
//! `//!` lines, no module imports one that (directly or through others) imports it, and each
//! outside dependency is touched only where its folder says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/library/sync.rs` → `library::sync`; `src/library/mod.rs` → `library`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(".rs").to_string();
    }
    if parts
        .last()
        .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
    {
        parts.pop();
    }
    parts.join("::")
}

fn source() -> (PathBuf, BTreeMap<String, (PathBuf, String)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        modules.insert(module_of(&src, &f), (f, text));
    }
    (src, modules)
}

/// Files that are a module's tests or data included from it, not modules of their own.
fn is_included_part(text: &str) -> bool {
    !text.starts_with("//!")
        && (text.trim_start().starts_with("use super::*") || text.contains("#![cfg(test)]"))
}

fn is_ancestor(a: &str, b: &str) -> bool {
    a.is_empty() || b.starts_with(&format!("{a}::"))
}

/// The modules each module names through `crate::…` paths, resolved to the longest known
/// module prefix. Parent–child references are structure, not imports, and are left out.
fn import_graph(
    modules: &BTreeMap<String, (PathBuf, String)>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, (_, text)) in modules {
        let deps = graph.entry(name.clone()).or_default();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let path: String = rest
                .chars()
                .take_while(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == ':'
                })
                .collect();
            let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            let target = (1..=segs.len())
                .rev()
                .map(|n| segs[..n].join("::"))
                .find(|m| modules.contains_key(m));
            if let Some(t) = target
                && &t != name
                && !is_ancestor(&t, name)
                && !is_ancestor(name, &t)
            {
                deps.insert(t);
            }
        }
    }
    graph
}

#[test]
fn every_module_says_what_it_owns() {
    let (_, modules) = source();
    let missing: Vec<String> = modules
        .iter()
        .filter(|(_, (_, text))| !text.starts_with("//!") && !is_included_part(text))
        .map(|(_, (f, _))| f.display().to_string())
        .collect();
    assert!(missing.is_empty(), "modules without //! lines: {missing:?}");
}

/// The first import cycle found by a depth-first search, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for d in graph.get(n).into_iter().flatten() {
            match state.get(d.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|s| s == d).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(d, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0
            && let Some(cycle) = visit(n, graph, &mut state, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it() {
    let (_, modules) = source();
    let graph = import_graph(&modules);
    assert!(graph.len() > 20, "the source tree was not found");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" → "));
    }
}

#[test]
fn outside_dependencies_stay_in_their_folders() {
    let (_, modules) = source();
    // (crate path as written in `use`/paths, the only modules allowed to name it)
    let rules: [(&str, &[&str]); 4] = [
        ("redb::", &["store::ledger"]),
        ("axum::", &["web"]),
        ("maud::", &["web"]),
        ("tokio_tungstenite::", &["jobs::comfy"]),
    ];
    let mut broken = Vec::new();
    for (name, (_, text)) in &modules {
        for (krate, allowed) in rules {
            let ok = allowed.iter().any(|a| name == a || is_ancestor(a, name));
            if !ok && text.contains(krate) {
                broken.push(format!("{name} uses {krate}"));
            }
        }
    }
    assert!(broken.is_empty(), "{broken:?}");
}

#[test]
fn the_checker_finds_a_cycle_when_there_is_one() {
    let mut modules = BTreeMap::new();
    for (n, t) in [
        ("a", "use crate::b::x;"),
        ("b", "fn f() { crate::c::y(); }"),
        ("c", "use crate::a;"),
        ("d", "use crate::a::z;"),
    ] {
        modules.insert(n.to_string(), (PathBuf::new(), t.to_string()));
    }
    let g = import_graph(&modules);
    assert_eq!(g["a"], BTreeSet::from(["b".to_string()]));
    assert_eq!(g["c"], BTreeSet::from(["a".to_string()]));
    assert!(g["d"].contains("a"));
    assert_eq!(
        find_cycle(&g).map(|c| c.join(" ")),
        Some("a b c a".to_string())
    );
    modules.insert("c".into(), (PathBuf::new(), String::new()));
    assert_eq!(find_cycle(&import_graph(&modules)), None);
}
