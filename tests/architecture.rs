//! The shape of the code, kept: no import cycle between the modules of
//! `src/` or of `benches/support/`, and nothing below the public facade
//! (`src/store.rs`) imports it or the types above the engine. Above the
//! facades sits `backend` (with a file per engine), the enum over the
//! engines; each remote engine (`src/nats/`, `src/kafka/`, listed in
//! `REMOTE_ENGINES`) follows the embedded engine's discipline: below its
//! own facade (`nats::store`, `kafka::store`) nothing imports it, and
//! nothing of it imports the layers above or another engine.
//!
//! Imports are read from the sources (`crate::a::b` and `super::x` paths,
//! comments left out), so the test needs no build of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, by module path (`rocks::engine`).
fn modules(root: &Path, dir: &Path, skip: &[&str]) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path: PathBuf = entry.path();
            if path.is_dir() {
                if !skip.iter().any(|name| path.ends_with(name)) {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let name = relative
                .to_string_lossy()
                .replace("/mod", "")
                .replace('/', "::");
            found.insert(
                name,
                without_comments(&std::fs::read_to_string(&path).unwrap()),
            );
        }
    }
    found
}

/// The source without `//` comments and without its `#[cfg(test)]` module.
fn without_comments(source: &str) -> String {
    let source = source
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    source
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules `source` names after `prefix` (`crate::` or `super::`).
fn imports(source: &str, prefix: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (start, _) in source.match_indices(prefix) {
        let rest = &source[start + prefix.len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let parts: Vec<&str> = path.split("::").filter(|part| !part.is_empty()).collect();
        // The longest known module the path starts with.
        for len in (1..=parts.len()).rev() {
            let candidate = parts[..len].join("::");
            if known.contains(&candidate) {
                found.insert(candidate);
                break;
            }
        }
        // `use crate::rocks::{catalog, read}`: the modules inside the braces.
        if let Some(inside) = rest
            .strip_prefix(path.as_str())
            .and_then(|after| after.strip_prefix('{'))
            .and_then(|after| after.split('}').next())
        {
            for item in inside.split(',') {
                let item = item.trim().split(" as ").next().unwrap_or_default();
                let candidate = format!("{path}{item}").trim_end_matches("::").to_owned();
                if known.contains(&candidate) {
                    found.insert(candidate);
                }
            }
        }
    }
    found
}

/// The import graph of `modules`, each module's edges to the others.
fn graph(modules: &BTreeMap<String, String>, prefix: &str) -> BTreeMap<String, BTreeSet<String>> {
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, source)| {
            let mut edges = imports(source, prefix, &known);
            edges.remove(name);
            // A module's own submodules (`rocks` → `rocks::engine`) are
            // declarations, not imports.
            edges.retain(|edge| !edge.starts_with(&format!("{name}::")));
            (name.clone(), edges)
        })
        .collect()
}

/// A cycle of the graph, if it has one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|step| step == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_library_has_no_import_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&root, &root, &["bin"]);
    let graph = graph(&modules, "crate::");
    assert!(
        graph.len() > 20,
        "the modules were found: {:?}",
        graph.keys()
    );
    if let Some(cycle) = cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn nothing_below_the_facade_imports_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&root, &root, &["bin"]);
    let graph = graph(&modules, "crate::");
    let above_the_engine = ["store", "consumer", "producer", "reader", "cursor"];
    for (module, edges) in &graph {
        // The crate root and the enum over the engines sit above the facade.
        if module == "lib" || module.starts_with("backend") {
            continue;
        }
        assert!(
            !edges.contains("store"),
            "{module} imports the facade (crate::store)"
        );
        if module.starts_with("rocks") {
            for above in above_the_engine {
                assert!(
                    !edges.contains(above),
                    "{module}, in the engine, imports crate::{above}"
                );
            }
        }
    }
}

#[test]
fn the_benchmark_support_has_no_import_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/support");
    let modules = modules(&root, &root, &[]);
    let graph = graph(&modules, "super::");
    assert!(
        graph.len() > 5,
        "the modules were found: {:?}",
        graph.keys()
    );
    if let Some(cycle) = cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

/// The engines beside the embedded one, each in its folder: the module
/// prefix and the least number of modules it has.
const REMOTE_ENGINES: [(&str, usize); 2] = [("nats", 8), ("kafka", 8)];

#[test]
fn the_engines_keep_to_their_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&root, &root, &["bin"]);
    let graph = graph(&modules, "crate::");
    let above = [
        "store", "consumer", "producer", "reader", "cursor", "backend",
    ];
    let in_engine =
        |module: &str, engine: &str| module == engine || module.starts_with(&format!("{engine}::"));
    for (engine, least) in REMOTE_ENGINES {
        let found: Vec<&String> = graph.keys().filter(|m| in_engine(m, engine)).collect();
        assert!(
            found.len() >= least,
            "the {engine} engine's modules were found: {found:?}"
        );
        let facade = format!("{engine}::store");
        for (module, edges) in &graph {
            if in_engine(module, engine) {
                for edge in edges {
                    let other_engine = edge.starts_with("rocks")
                        || REMOTE_ENGINES
                            .iter()
                            .any(|(other, _)| *other != engine && in_engine(edge, other));
                    assert!(
                        !above.iter().any(|layer| in_engine(edge, layer)) && !other_engine,
                        "{module}, in the {engine} engine, imports crate::{edge}"
                    );
                }
                if module != engine {
                    assert!(
                        !edges.contains(&facade),
                        "{module} imports the {engine} engine's facade (crate::{facade})"
                    );
                }
            }
            if module != "lib" && !in_engine(module, engine) && !in_engine(module, "backend") {
                assert!(
                    !edges.iter().any(|edge| in_engine(edge, engine)),
                    "{module} imports the {engine} engine: only the backend may"
                );
            }
        }
    }
    for (module, edges) in &graph {
        if module.starts_with("rocks") {
            for edge in edges {
                assert!(
                    !REMOTE_ENGINES
                        .iter()
                        .any(|(engine, _)| in_engine(edge, engine))
                        && !in_engine(edge, "backend"),
                    "{module}, in the embedded engine, imports crate::{edge}"
                );
            }
        }
        if module != "lib" && !in_engine(module, "backend") {
            assert!(
                !edges.iter().any(|edge| in_engine(edge, "backend")),
                "{module} imports crate::backend"
            );
        }
    }
}
