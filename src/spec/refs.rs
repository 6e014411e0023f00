//! `$ref` resolution: local JSON pointers (with `~0`/`~1` and percent escapes), references into
//! other files relative to the referring file (YAML or JSON, any depth), references to
//! references. Nothing is inlined, so recursive schemas cost nothing; a chain of references
//! that returns to itself, a missing target, an unreadable file and a remote reference are
//! errors with the chain.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::doc::{Doc, LoadError};

pub type DocId = usize;

/// Why a reference cannot be followed.
#[derive(Debug, Clone)]
pub struct RefError {
    /// What is broken: the same key for every reference that runs into the same problem.
    pub key: String,
    pub message: String,
    /// The references followed, in order (`#/a` -> `other.yaml#/b`).
    pub chain: Vec<String>,
}

/// Every document reached from the root, loaded once.
pub struct Docs {
    pub docs: Vec<Doc>,
    /// Canonical path -> document (failed loads are kept so they are reported once).
    by_path: HashMap<PathBuf, Result<DocId, String>>,
    /// Where each document lives, for resolving relative references.
    dirs: Vec<Option<PathBuf>>,
    /// The folder references may reach into (see [`crate::project_of`]); nothing outside is read.
    project: Option<PathBuf>,
}

/// Resolve a JSON pointer (`/a/b~1c/0`) in a value.
pub fn lookup<'v>(v: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() || pointer == "/" && v.get("").is_none() {
        return Some(v);
    }
    let mut cur = v;
    for raw in pointer.strip_prefix('/')?.split('/') {
        let seg = percent_decode(raw).replace("~1", "/").replace("~0", "~");
        cur = match cur {
            Value::Object(m) => m.get(&seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a referenced file is read as YAML or JSON (or else as text: Markdown, HTML).
fn is_document(path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) => ["yaml", "yml", "json"].contains(&e.to_ascii_lowercase().as_str()),
        None => true,
    }
}

impl Docs {
    /// The documents reached from `root`, which lives in `dir`; references are read only
    /// inside `project` (none are read without one).
    pub fn new(root: Doc, dir: Option<PathBuf>, project: Option<PathBuf>) -> Docs {
        let mut by_path = HashMap::new();
        if let Some(d) = &dir {
            let name = Path::new(&*root.path)
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_default();
            let canon = std::fs::canonicalize(d.join(&name)).unwrap_or_else(|_| d.join(name));
            by_path.insert(canon, Ok(0));
        }
        Docs {
            docs: vec![root],
            by_path,
            dirs: vec![dir],
            project,
        }
    }

    /// Where a reference's file is: as shown, and canonical (the cache key).
    fn locate(&self, from: DocId, rel: &str) -> Result<(PathBuf, PathBuf), String> {
        let Some(dir) = self.dirs[from].clone() else {
            return Err(format!(
                "cannot resolve `{rel}`: the document was given inline without a base directory"
            ));
        };
        let full = dir.join(percent_decode(rel));
        let canon = std::fs::canonicalize(&full)
            .unwrap_or_else(|_| crate::normal(&std::path::absolute(&full).unwrap_or(full.clone())));
        match &self.project {
            Some(project) if canon.starts_with(project) => {}
            Some(project) => {
                return Err(format!(
                    "`{rel}` is outside `{}`, the folder references may reach (the document's project: the nearest folder with `.git`, else the document's folder; `base_dir` when given inline); nothing outside it is read",
                    project.display()
                ))
            }
            None => return Err(format!("cannot resolve `{rel}`: no folder to read it from")),
        }
        Ok((full, canon))
    }

    /// Load (once) the file a reference names, relative to the referring document.
    fn file(&mut self, from: DocId, rel: &str) -> Result<DocId, String> {
        let (full, canon) = self.locate(from, rel)?;
        if let Some(r) = self.by_path.get(&canon) {
            return r.clone();
        }
        let shown: Arc<str> = Arc::from(full.display().to_string());
        let result = match crate::read_limited(&full, super::MAX_SPEC_BYTES) {
            Err(e) => Err(format!("cannot read `{shown}`: {e}")),
            Ok(bytes) => match String::from_utf8(bytes) {
                Err(_) => Err(format!("`{shown}` is not valid UTF-8")),
                Ok(text) if !is_document(&full) => {
                    let format = self.docs[from].format;
                    self.docs.push(Doc::text(shown.clone(), &text, format));
                    self.dirs.push(full.parent().map(Path::to_path_buf));
                    Ok(self.docs.len() - 1)
                }
                Ok(text) => match Doc::parse(shown.clone(), &text) {
                    Err(LoadError { message, .. }) => Err(message),
                    Ok(doc) => {
                        self.docs.push(doc);
                        self.dirs.push(full.parent().map(Path::to_path_buf));
                        Ok(self.docs.len() - 1)
                    }
                },
            },
        };
        self.by_path.insert(canon, result.clone());
        result
    }

    /// Follow `reference` through the documents already loaded (no file is read): for
    /// building the model after every reference was checked.
    pub fn resolve_loaded(&self, from: DocId, reference: &str) -> Option<(DocId, String)> {
        follow(&mut Loaded(self), from, reference).ok()
    }

    /// Follow `reference` (found in document `from`) through any chain of references to a
    /// value that is not itself only a reference.
    pub fn resolve(&mut self, from: DocId, reference: &str) -> Result<(DocId, String), RefError> {
        follow(self, from, reference)
    }

    /// `reference` as found in document `from`, spelled so that it resolves the same from
    /// anywhere: its file made absolute (a local `#/x` names `from`'s own file).
    pub fn absolute(&self, from: DocId, reference: &str) -> Option<String> {
        let (file, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        if file.is_empty() && from == 0 {
            return Some(reference.to_string());
        }
        let dir = self.dirs[from].as_ref()?;
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        let path = if file.is_empty() {
            let name = Path::new(&*self.docs[from].path).file_name()?;
            dir.join(name)
        } else {
            dir.join(percent_decode(file))
        };
        Some(format!("{}#{fragment}", path.display()))
    }

    /// The root document's file as a reference written in document `doc`
    /// (`../openapi.yaml`).
    pub fn relative_to_root(&self, doc: DocId) -> Option<String> {
        let from = self.dirs[doc].as_ref()?;
        let root_dir = self.dirs[0].as_ref()?;
        let name = Path::new(&*self.docs[0].path).file_name()?.to_str()?;
        let from = std::fs::canonicalize(from).ok()?;
        let root_dir = std::fs::canonicalize(root_dir).ok()?;
        let common = from
            .components()
            .zip(root_dir.components())
            .take_while(|(a, b)| a == b)
            .count();
        let mut out: Vec<String> = vec!["..".into(); from.components().count() - common];
        out.extend(
            root_dir
                .components()
                .skip(common)
                .map(|c| c.as_os_str().to_string_lossy().into_owned()),
        );
        out.push(name.to_string());
        Some(out.join("/"))
    }

    /// The value a resolved reference names.
    pub fn get(&self, doc: DocId, pointer: &str) -> Option<&Value> {
        lookup(&self.docs[doc].value, pointer)
    }
}

/// Where the documents come from while following references.
trait Files {
    fn docs(&self) -> &[Doc];
    fn file(&mut self, from: DocId, rel: &str) -> Result<DocId, String>;
}

impl Files for Docs {
    fn docs(&self) -> &[Doc] {
        &self.docs
    }
    fn file(&mut self, from: DocId, rel: &str) -> Result<DocId, String> {
        Docs::file(self, from, rel)
    }
}

/// The documents already loaded, read-only.
struct Loaded<'d>(&'d Docs);

impl Files for Loaded<'_> {
    fn docs(&self) -> &[Doc] {
        &self.0.docs
    }
    fn file(&mut self, from: DocId, rel: &str) -> Result<DocId, String> {
        let (_, canon) = self.0.locate(from, rel)?;
        match self.0.by_path.get(&canon) {
            Some(r) => r.clone(),
            None => Err(format!("`{rel}` was not loaded")),
        }
    }
}

/// Follow a reference through any chain of references to a value that is not itself only a
/// reference.
fn follow(src: &mut impl Files, from: DocId, reference: &str) -> Result<(DocId, String), RefError> {
    follow_at(src, from, reference, 0)
}

/// References followed inside a pointer's way at most (`#/a/b` where `a` is a `$ref`, whose
/// target passes through another one...).
const MAX_NESTED: usize = 32;

/// The deepest `$ref` on the way down a pointer, the value it ends at included: (its pointer,
/// the reference, the rest of the pointer after it).
pub fn ref_on_the_way(v: &Value, pointer: &str) -> Option<(String, String, String)> {
    let segments: Vec<&str> = pointer.split('/').skip(1).collect();
    let mut found = None;
    let mut cur = v;
    let mut at = String::new();
    for i in 0..=segments.len() {
        if let Some(r) = cur.get("$ref").and_then(Value::as_str) {
            let rest: String = segments[i..].iter().map(|s| format!("/{s}")).collect();
            found = Some((at.clone(), r.to_string(), rest));
        }
        let Some(seg) = segments.get(i) else { break };
        let key = percent_decode(seg).replace("~1", "/").replace("~0", "~");
        cur = match cur {
            Value::Object(m) => match m.get(&key) {
                Some(x) => x,
                None => break,
            },
            Value::Array(a) => match key.parse::<usize>().ok().and_then(|i| a.get(i)) {
                Some(x) => x,
                None => break,
            },
            _ => break,
        };
        at.push('/');
        at.push_str(seg);
    }
    found
}

fn follow_at(
    src: &mut impl Files,
    from: DocId,
    reference: &str,
    depth: usize,
) -> Result<(DocId, String), RefError> {
    let mut chain: Vec<String> = vec![];
    let mut seen: Vec<(DocId, String)> = vec![];
    let (mut doc, mut reference) = (from, reference.to_string());
    loop {
        chain.push(if doc == from || reference.starts_with('#') {
            reference.clone()
        } else {
            format!("{} -> {reference}", src.docs()[doc].path)
        });
        let key = format!("{doc}:{reference}");
        let fail = |message: String, chain: &Vec<String>| RefError {
            key: key.clone(),
            message,
            chain: chain.clone(),
        };
        if reference.starts_with("http://")
            || reference.starts_with("https://")
            || reference.starts_with("//")
        {
            return Err(fail(
                format!("remote reference `{reference}` is not fetched; download the file and refer to it by a relative path"),
                &chain,
            ));
        }
        let (file, fragment) = match reference.split_once('#') {
            Some((f, frag)) => (f.to_string(), frag.to_string()),
            None => (reference.clone(), String::new()),
        };
        let target_doc = if file.is_empty() {
            doc
        } else {
            src.file(doc, &file).map_err(|m| fail(m, &chain))?
        };
        if let Some(start) = seen
            .iter()
            .position(|s| *s == (target_doc, fragment.clone()))
        {
            let mut cycle: Vec<String> = seen[start..]
                .iter()
                .map(|(d, f)| format!("{d}:{f}"))
                .collect();
            cycle.sort();
            return Err(RefError {
                key: format!("cycle {}", cycle.join(" ")),
                message: format!(
                    "`$ref` chain loops back to `{reference}` without reaching a definition"
                ),
                chain: chain.clone(),
            });
        }
        seen.push((target_doc, fragment.clone()));
        let Some(target) = lookup(&src.docs()[target_doc].value, &fragment) else {
            // A pointer through a `$ref` (`#/components/parameters/IfMatch` where `parameters`
            // is itself a `$ref`): JSON Reference tools follow it and go on with the rest.
            let on_the_way = ref_on_the_way(&src.docs()[target_doc].value, &fragment);
            if let (Some((_, inner, rest)), true) = (on_the_way, depth < MAX_NESTED) {
                let (d, f) = follow_at(src, target_doc, &inner, depth + 1)?;
                doc = d;
                reference = format!("#{f}{rest}");
                continue;
            }
            return Err(fail(
                format!(
                    "`{reference}` points at nothing: `{}` has no `#{fragment}`",
                    src.docs()[target_doc].path
                ),
                &chain,
            ));
        };
        match target.get("$ref").and_then(Value::as_str) {
            Some(next) => {
                doc = target_doc;
                reference = next.to_string();
            }
            None => return Ok((target_doc, fragment)),
        }
    }
}

/// Every `$ref` in a value, with the pointer of the object that holds it.
pub fn all_refs(v: &Value, path: &mut String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push((path.clone(), r.clone()));
            }
            for (k, x) in m {
                let len = path.len();
                path.push('/');
                path.push_str(&super::doc::escape(k));
                all_refs(x, path, out);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                all_refs(x, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}
