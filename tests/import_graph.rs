//! The crate's files import one another without circles, and the CPU and
//! GPU engines never import each other (issue 13).
//!
//! Every path a file names inside the crate (`crate::a::b`, `super::c`,
//! in `use` lines with their braces expanded and in expressions) is
//! resolved to the file that defines its module: `crate::cpu::tile::MR`
//! is an edge to `src/cpu/tile.rs`. A circle is a strongly connected
//! component of more than one file in that graph. Edges from a module to
//! the files of its own submodules (`mod x;` and what `mod.rs` re-exports
//! from them) are a tree, not an import, and are left out; an edge from a
//! submodule up to its parent's `mod.rs` is kept.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Circles that other work in flight removes; each says which.
const KNOWN_CIRCLES: &[&[&str]] = &[];

/// Imports between the CPU and GPU engines still in place.
const KNOWN_GPU_TO_CPU: &[(&str, &str)] = &[];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, as a path relative to `src/` with `/`.
fn files() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let p = entry.expect("a directory entry").path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let rel = p.strip_prefix(root).expect("under src/");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(&src(), &src(), &mut out);
    out.sort();
    out
}

/// The module path of a file: `cpu/tile.rs` → `[cpu, tile]`, `cpu/mod.rs`
/// → `[cpu]`, `lib.rs` → `[]`.
fn module_of(file: &str) -> Vec<String> {
    let stem = file.trim_end_matches(".rs");
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The file that defines the longest prefix of `path` that is a module.
fn file_of(path: &[String], modules: &BTreeMap<Vec<String>, String>) -> Option<String> {
    (0..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]).cloned())
}

/// Strip comments and string literals, so that neither counts as an import.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut kept = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !in_str && c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                kept.push(c);
            }
            prev = c;
            i += 1;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let (prefix, inner) = (&tree[..open], &tree[open + 1..tree.len() - 1]);
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|s| !s.is_empty())
        .flat_map(|s| expand(s).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

/// Every crate-internal path `file` names, as a module path from the root.
fn paths_named(file: &str, code: &str) -> Vec<Vec<String>> {
    let here = module_of(file);
    let mut trees = Vec::new();
    // `use` statements, braces and all.
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        let stmt = &rest[at + 4..];
        let end = stmt.find(';').unwrap_or(stmt.len());
        if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
            let tree = stmt[..end].trim().trim_start_matches("::");
            let tree = tree.split(" as ").next().unwrap_or(tree);
            trees.extend(expand(tree));
        }
        rest = &stmt[end.min(stmt.len())..];
    }
    // Paths in expressions and types: `crate::x::y`, `super::x`.
    for word in code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
        if word.starts_with("crate::") || word.starts_with("super::") {
            trees.push(word.to_string());
        }
    }
    let mut out = Vec::new();
    for tree in trees {
        let segs: Vec<&str> = tree.split("::").filter(|s| !s.is_empty()).collect();
        let mut path: Vec<String> = match segs.first() {
            Some(&"crate") => Vec::new(),
            Some(&"super") | Some(&"self") => {
                // `super` is relative to this file's module.
                let mut p = here.clone();
                let mut i = 0;
                while segs.get(i) == Some(&"super") {
                    p.pop();
                    i += 1;
                }
                if segs.get(i) == Some(&"self") {
                    i += 1;
                }
                p.extend(segs[i..].iter().map(|s| s.to_string()));
                out.push(p);
                continue;
            }
            _ => continue,
        };
        path.extend(segs[1..].iter().map(|s| s.to_string()));
        out.push(path);
    }
    out
}

/// File → files it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = files();
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .filter(|f| f.as_str() != "main.rs")
        .map(|f| (module_of(f), f.clone()))
        .collect();
    let mut g = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(src().join(file)).expect("a source file");
        let code = code_only(&text);
        let here = module_of(file);
        let mut deps = BTreeSet::new();
        for path in paths_named(file, &code) {
            let Some(target) = file_of(&path, &modules) else {
                continue;
            };
            let there = module_of(&target);
            // A module naming its own submodules is the module tree.
            let own_child = there.len() > here.len() && there.starts_with(&here);
            if target != *file && !own_child {
                deps.insert(target);
            }
        }
        g.insert(file.clone(), deps);
    }
    g
}

/// Strongly connected components of more than one file (Tarjan's algorithm).
fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

#[test]
fn no_file_imports_itself_through_others() {
    let found = circles(&graph());
    let known: Vec<Vec<String>> = KNOWN_CIRCLES
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    let new: Vec<_> = found.iter().filter(|c| !known.contains(c)).collect();
    assert!(new.is_empty(), "import circles among files: {new:?}");
    let gone: Vec<_> = known.iter().filter(|c| !found.contains(c)).collect();
    assert!(
        gone.is_empty(),
        "circles now gone, drop them from KNOWN_CIRCLES: {gone:?}"
    );
}

/// Every import from one engine's files into the other's, as `a -> b`,
/// except those in [`KNOWN_GPU_TO_CPU`].
fn crossings(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for (file, deps) in g {
        for dep in deps {
            let crossing = (file.starts_with("gpu/") && dep.starts_with("cpu/"))
                || (file.starts_with("cpu/") && dep.starts_with("gpu/"));
            if crossing && !KNOWN_GPU_TO_CPU.contains(&(file.as_str(), dep.as_str())) {
                found.push(format!("{file} -> {dep}"));
            }
        }
    }
    found
}

#[test]
fn the_cpu_and_gpu_engines_never_import_each_other() {
    let found = crossings(&graph());
    assert!(
        found.is_empty(),
        "the engines meet only in tests: {found:?}"
    );
}

/// The checker sees the edges it is meant to: a test that cannot fail is a defect.
#[test]
fn the_checker_finds_known_edges_a_planted_circle_and_a_planted_crossing() {
    let g = graph();
    assert!(
        g["cpu/fast_step.rs"].contains("cpu/gemv.rs"),
        "{:?}",
        g["cpu/fast_step.rs"]
    );
    assert!(g["cpu/tile.rs"].contains("real.rs"));
    assert!(
        !g["cpu/mod.rs"].contains("cpu/tile.rs"),
        "mod lines are the tree"
    );
    assert_eq!(expand("a::{b, c::{d, e}}"), ["a::b", "a::c::d", "a::c::e"]);
    let mut planted = g.clone();
    planted
        .get_mut("real.rs")
        .expect("real.rs")
        .insert("cpu/tile.rs".to_string());
    assert!(circles(&planted)
        .iter()
        .any(|c| c.contains(&"real.rs".to_string()) && c.contains(&"cpu/tile.rs".to_string())));
    for (from, to) in [("gpu/mod.rs", "cpu/adam.rs"), ("cpu/mod.rs", "gpu/mod.rs")] {
        let mut planted = g.clone();
        planted.get_mut(from).expect(from).insert(to.to_string());
        assert!(crossings(&planted).contains(&format!("{from} -> {to}")));
    }
}
