//! `fm tree` and `fm why`: the locked graph, read from fm.lock only (no
//! network, no resolution).

use std::collections::{BTreeMap, BTreeSet};

use super::args::{TreeArgs, TreeFormat, WhyArgs};
use super::{Context, Failure};
use crate::lock::{LockedPackage, Lockfile};
use crate::manifest::Manifest;

/// A package the lock does not hold.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{package} is not in {}", path.display())]
#[diagnostic(
    code(fm::tree::not_locked),
    help("`fm tree` shows the locked packages; `fm add {package}` adds it")
)]
pub struct NotLocked {
    pub package: String,
    pub path: std::path::PathBuf,
}

/// There is no lock to show.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{} does not exist", path.display())]
#[diagnostic(code(fm::tree::no_lock), help("run `fm lock` to create it"))]
pub struct NoLock {
    pub path: std::path::PathBuf,
}

/// The locked graph: who depends on whom, with the requirement of each edge.
struct Graph<'a> {
    root: String,
    packages: BTreeMap<&'a str, &'a LockedPackage>,
    /// node → [(child, requirement)]; the project is `None`.
    deps: BTreeMap<Option<&'a str>, Vec<(&'a str, String)>>,
}

/// `"name req (registry)"` → `("name", "req (registry)")`.
fn split(entry: &str) -> (&str, &str) {
    entry.split_once(' ').unwrap_or((entry, "*"))
}

impl<'a> Graph<'a> {
    fn new(root: String, lock: &'a Lockfile) -> Graph<'a> {
        let packages = lock.by_name();
        let mut deps: BTreeMap<Option<&str>, Vec<(&str, String)>> = BTreeMap::new();
        let edges = |list: &mut dyn Iterator<Item = (&'a str, &'a str)>| -> Vec<(&'a str, String)> {
            list.filter_map(|(n, r)| packages.get(n).map(|p| (p.name.as_str(), r.to_owned())))
                .collect()
        };
        deps.insert(None, edges(&mut lock.root.iter().map(|e| split(e))));
        for p in &lock.packages {
            deps.insert(
                Some(p.name.as_str()),
                edges(&mut p.dependencies.iter().map(|d| (d.name(), d.req()))),
            );
        }
        Graph { root, packages, deps }
    }

    fn label(&self, node: Option<&str>) -> String {
        match node.and_then(|n| self.packages.get(n)) {
            Some(p) => format!("{} {}", p.name, p.version),
            None => self.root.clone(),
        }
    }

    fn children(&self, node: Option<&str>, invert: bool) -> Vec<(Option<&'a str>, String)> {
        if !invert {
            return self
                .deps
                .get(&node)
                .map(|v| v.iter().map(|(c, r)| (Some(*c), r.clone())).collect())
                .unwrap_or_default();
        }
        let Some(target) = node else { return Vec::new() };
        let mut out: Vec<(Option<&str>, String)> = self
            .deps
            .iter()
            .filter_map(|(from, list)| list.iter().find(|(c, _)| *c == target).map(|(_, r)| (*from, r.clone())))
            .collect();
        // The project last, after the packages.
        out.sort_by_key(|(n, _)| (n.is_none(), n.map(str::to_owned)));
        out
    }
}

fn load(ctx: &Context) -> Result<(String, Lockfile, std::path::PathBuf), Failure> {
    let manifest = Manifest::load(&ctx.manifest_path()?)?;
    let path = manifest.root().join(crate::lock::LOCK_FILE);
    let lock = crate::lock::Lockfile::load(&path)?.ok_or_else(|| NoLock { path: path.clone() })?;
    let root = manifest
        .project
        .as_ref()
        .map(|p| p.name.clone())
        .or_else(|| manifest.package.as_ref().map(|p| p.name.clone()))
        .unwrap_or_else(|| "the project".to_owned());
    Ok((root, lock, path))
}

#[derive(serde::Serialize)]
struct JsonNode {
    /// On the top node only: the schema's version (`version` is the
    /// package's).
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_version: Option<u32>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requirement: Option<String>,
    /// Shown in full elsewhere in the tree.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    repeated: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    children: Vec<JsonNode>,
}

struct Walk<'g, 'a> {
    graph: &'g Graph<'a>,
    invert: bool,
    depth: Option<usize>,
    expanded: BTreeSet<Option<&'a str>>,
}

impl<'a> Walk<'_, 'a> {
    fn node(
        &mut self,
        node: Option<&'a str>,
        req: Option<String>,
        level: usize,
        path: &mut Vec<Option<&'a str>>,
    ) -> JsonNode {
        let pkg = node.and_then(|n| self.graph.packages.get(n));
        let mut out = JsonNode {
            schema_version: None,
            name: node.map_or_else(|| self.graph.root.clone(), str::to_owned),
            version: pkg.map(|p| p.version.to_string()),
            registry: pkg.map(|p| p.registry.clone()),
            requirement: req,
            repeated: false,
            children: Vec::new(),
        };
        let kids = self.graph.children(node, self.invert);
        if kids.is_empty() || self.depth.is_some_and(|d| level >= d) {
            return out;
        }
        if path.contains(&node) || !self.expanded.insert(node) {
            out.repeated = true;
            return out;
        }
        path.push(node);
        for (child, r) in kids {
            let c = self.node(child, Some(r), level + 1, path);
            out.children.push(c);
        }
        path.pop();
        out
    }
}

fn render_text(node: &JsonNode, prefix: &str, last: bool, top: bool, out: &mut String) {
    let label = match &node.version {
        Some(v) => format!("{} {v}", node.name),
        None => node.name.clone(),
    };
    let mark = if node.repeated { " (*)" } else { "" };
    if top {
        out.push_str(&format!("{label}{mark}\n"));
    } else {
        let branch = if last { "└── " } else { "├── " };
        out.push_str(&format!("{prefix}{branch}{label}{mark}\n"));
    }
    let child_prefix = if top {
        String::new()
    } else {
        format!("{prefix}{}", if last { "    " } else { "│   " })
    };
    for (i, c) in node.children.iter().enumerate() {
        render_text(c, &child_prefix, i + 1 == node.children.len(), false, out);
    }
}

fn dot(graph: &Graph<'_>, start: Option<&str>, invert: bool) -> String {
    let mut out = String::from("digraph fm {\n");
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    let mut edges = BTreeSet::new();
    while let Some(n) = todo.pop() {
        if !seen.insert(n) {
            continue;
        }
        for (c, r) in graph.children(n, invert) {
            let (from, to) = if invert { (c, n) } else { (n, c) };
            edges.insert((graph.label(from), graph.label(to), r));
            todo.push(c);
        }
    }
    let mut nodes: Vec<String> = seen.iter().map(|n| graph.label(*n)).collect();
    nodes.sort();
    for n in nodes {
        out.push_str(&format!("  {n:?};\n"));
    }
    for (a, b, r) in edges {
        out.push_str(&format!("  {a:?} -> {b:?} [label={r:?}];\n"));
    }
    out.push_str("}\n");
    out
}

pub fn tree(ctx: &Context, a: TreeArgs) -> Result<(), Failure> {
    let (root, lock, path) = load(ctx)?;
    let graph = Graph::new(root, &lock);
    let start: Option<&str> = match &a.invert {
        Some(p) => Some(
            graph
                .packages
                .get(p.as_str())
                .map(|p| p.name.as_str())
                .ok_or_else(|| NotLocked {
                    package: p.clone(),
                    path: path.clone(),
                })?,
        ),
        None => None,
    };
    let invert = a.invert.is_some();
    let format = if ctx.global.json { TreeFormat::Json } else { a.format };
    if format == TreeFormat::Dot {
        ctx.shell.data(dot(&graph, start, invert));
        return Ok(());
    }
    let mut walk = Walk {
        graph: &graph,
        invert,
        depth: a.depth,
        expanded: BTreeSet::new(),
    };
    let mut node = walk.node(start, None, 0, &mut Vec::new());
    match format {
        TreeFormat::Json => {
            node.schema_version = Some(1);
            ctx.shell.json(&node)
        }
        _ => {
            let mut out = String::new();
            render_text(&node, "", true, true, &mut out);
            ctx.shell.data(out);
        }
    }
    Ok(())
}

/// Every path from the project to `target`, as `(node, requirement)` steps.
fn paths<'a>(graph: &Graph<'a>, target: &'a str) -> Vec<Vec<(Option<&'a str>, String)>> {
    fn up<'a>(
        graph: &Graph<'a>,
        node: &'a str,
        suffix: &mut Vec<(Option<&'a str>, String)>,
        out: &mut Vec<Vec<(Option<&'a str>, String)>>,
    ) {
        if out.len() >= 50 {
            return;
        }
        for (parent, req) in graph.children(Some(node), true) {
            if suffix.iter().any(|(n, _)| *n == parent) || parent == Some(node) {
                continue;
            }
            suffix.push((parent, req));
            match parent {
                None => {
                    let mut p = suffix.clone();
                    p.reverse();
                    out.push(p);
                }
                Some(pn) => up(graph, pn, suffix, out),
            }
            suffix.pop();
        }
    }
    let mut out = Vec::new();
    up(graph, target, &mut Vec::new(), &mut out);
    out.sort();
    out
}

pub fn why(ctx: &Context, a: WhyArgs) -> Result<(), Failure> {
    let (root, lock, path) = load(ctx)?;
    let graph = Graph::new(root, &lock);
    let Some(pkg) = graph.packages.get(a.package.as_str()).copied() else {
        return Err(NotLocked {
            package: a.package,
            path,
        }
        .into());
    };
    let found = paths(&graph, &pkg.name);
    if ctx.global.json {
        let list: Vec<Vec<serde_json::Value>> = found
            .iter()
            .map(|p| {
                p.iter()
                    .map(|(n, r)| serde_json::json!({ "from": graph.label(*n), "requirement": r }))
                    .collect()
            })
            .collect();
        ctx.shell.json(&serde_json::json!({
            "schema_version": 1,
            "name": pkg.name, "version": pkg.version.to_string(), "paths": list,
        }));
        return Ok(());
    }
    let mut out = format!("{} {} is locked because:\n", pkg.name, pkg.version);
    for p in &found {
        // Each step: the next package, and the requirement that led to it.
        let mut line = format!("  {}", graph.label(p.first().and_then(|(n, _)| *n)));
        for (i, (_, r)) in p.iter().enumerate() {
            let next = p.get(i + 1).and_then(|(m, _)| *m).unwrap_or(pkg.name.as_str());
            line.push_str(&format!(" -> {} ({r})", graph.label(Some(next))));
        }
        line.push('\n');
        out.push_str(&line);
    }
    if found.is_empty() {
        out.push_str("  nothing depends on it any more (run `fm lock` to remove it)\n");
    }
    ctx.shell.data(out);
    Ok(())
}
