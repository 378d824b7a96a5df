//! YAML loading with a source location on every node.
//!
//! Ansible content is YAML 1.1 in practice: `become: yes`, `gather_facts: no` and
//! `mode: 0644` (octal) are everywhere. serde-saphyr reads those the way PyYAML does,
//! and its `Spanned<T>` gives us line and column for every value, so every error the
//! engine reports can point at `file:line:col`. The rest of the crate never touches
//! the YAML library directly: it sees [`Node`], which is a plain tree that also
//! converts to `serde_json::Value` (the engine's variable type).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// Where a node came from: file, 1-based line and column.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Loc {
    pub file: Arc<PathBuf>,
    pub line: u32,
    pub col: u32,
}

impl Loc {
    /// A location for values that did not come from a file (command line, defaults).
    pub fn synthetic(what: &str) -> Loc {
        Loc {
            file: Arc::new(PathBuf::from(what)),
            line: 0,
            col: 0,
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
        }
    }
}

impl fmt::Debug for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A YAML value with its location.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys are kept in document order. Non-string keys are rendered to strings, as
    /// Ansible does for variable names.
    Map(Vec<(String, Node)>),
}

/// A YAML syntax error, or a structural error found while reading a file.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("{path}: cannot read file: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{loc}: {msg}")]
    Syntax { loc: Loc, msg: String },
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(String, Node)]> {
        match &self.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// A short word for the node's type, for error messages ("expected a list, found a string").
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Converts to the engine's untyped value, dropping locations.
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// An error located at this node.
    pub fn error(&self, msg: impl Into<String>) -> YamlError {
        YamlError::Syntax {
            loc: self.loc.clone(),
            msg: msg.into(),
        }
    }
}

/// Reads and parses one YAML file. An empty file is `Null`.
pub fn load_file(path: &Path) -> Result<Node, YamlError> {
    let text = std::fs::read_to_string(path).map_err(|source| YamlError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&text, path)
}

/// Parses YAML text; `path` names the source in locations and errors.
pub fn load_str(text: &str, path: &Path) -> Result<Node, YamlError> {
    let file = Arc::new(path.to_path_buf());
    if text.trim().is_empty()
        || text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
    {
        return Ok(Node {
            kind: NodeKind::Null,
            loc: Loc {
                file,
                line: 1,
                col: 1,
            },
        });
    }
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
    };
    let raw: Spanned<RawNode> =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| syntax_error(&file, &e))?;
    Ok(convert(raw, &file, text))
}

fn syntax_error(file: &Arc<PathBuf>, err: &serde_saphyr::Error) -> YamlError {
    let (line, col) = err
        .location()
        .map(|l| (l.line() as u32, l.column() as u32))
        .unwrap_or((0, 0));
    // The library's message may repeat the location; keep the first line, which says what is wrong.
    let msg = err.to_string();
    let msg = msg.lines().next().unwrap_or("invalid YAML").to_string();
    YamlError::Syntax {
        loc: Loc {
            file: file.clone(),
            line,
            col,
        },
        msg: format!("invalid YAML: {msg}"),
    }
}

fn convert(raw: Spanned<RawNode>, file: &Arc<PathBuf>, text: &str) -> Node {
    let loc = Loc {
        file: file.clone(),
        line: raw.referenced.line() as u32,
        col: raw.referenced.column() as u32,
    };
    let kind = match raw.value {
        RawNode::Null => NodeKind::Null,
        RawNode::Bool(b) => match yaml11_short_bool(&raw.referenced, text) {
            Some(word) => NodeKind::Str(word.to_string()),
            None => NodeKind::Bool(b),
        },
        RawNode::Int(i) => NodeKind::Int(i),
        RawNode::Float(f) => NodeKind::Float(f),
        RawNode::Str(s) => NodeKind::Str(s),
        RawNode::Seq(items) => {
            NodeKind::Seq(items.into_iter().map(|n| convert(n, file, text)).collect())
        }
        RawNode::Map(entries) => NodeKind::Map(
            entries
                .into_iter()
                .map(|(k, v)| (key_string(convert(k, file, text)), convert(v, file, text)))
                .collect(),
        ),
    };
    Node { kind, loc }
}

/// serde-saphyr follows the YAML 1.1 spec, where `y` and `n` are booleans; PyYAML (and so
/// Ansible) reads them as strings, and playbooks use them as names (`loop: [x, y]`,
/// `set_fact: {n: 3}`). The scalar's source text tells the two apart.
fn yaml11_short_bool<'t>(at: &serde_saphyr::Location, text: &'t str) -> Option<&'t str> {
    let span = at.span();
    let start = span.byte_offset()? as usize;
    let len = span.byte_len()? as usize;
    let word = text.get(start..start + len)?.trim();
    matches!(word, "y" | "Y" | "n" | "N").then_some(word)
}

/// A mapping key as Ansible sees it: scalars by their text form.
fn key_string(key: Node) -> String {
    match key.kind {
        NodeKind::Null => "null".to_string(),
        NodeKind::Bool(b) => if b { "True" } else { "False" }.to_string(),
        NodeKind::Int(i) => i.to_string(),
        NodeKind::Float(f) => f.to_string(),
        NodeKind::Str(s) => s,
        // Complex keys cannot be variable names; keep their JSON text so nothing is lost.
        NodeKind::Seq(_) | NodeKind::Map(_) => key.to_json().to_string(),
    }
}

/// The tree as serde-saphyr hands it over, each child wrapped in `Spanned`.
enum RawNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<RawNode>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
        Ok(i64::try_from(v)
            .map(RawNode::Int)
            .unwrap_or(RawNode::Float(v as f64)))
    }
    fn visit_i128<E>(self, v: i128) -> Result<RawNode, E> {
        Ok(i64::try_from(v)
            .map(RawNode::Int)
            .unwrap_or(RawNode::Float(v as f64)))
    }
    fn visit_u128<E>(self, v: u128) -> Result<RawNode, E> {
        Ok(i64::try_from(v)
            .map(RawNode::Int)
            .unwrap_or(RawNode::Float(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawNode, E> {
        Ok(RawNode::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawNode>>()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<RawNode>>()? {
            let value = map.next_value::<Spanned<RawNode>>()?;
            entries.push((key, value));
        }
        Ok(RawNode::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Node {
        load_str(s, Path::new("t.yml")).unwrap()
    }

    #[test]
    fn yaml11_booleans_and_octal() {
        let n = parse("a: yes\nb: no\nc: on\nd: 0644\ne: 'yes'\nf: 1.5\n");
        assert!(matches!(n.get("a").unwrap().kind, NodeKind::Bool(true)));
        assert!(matches!(n.get("b").unwrap().kind, NodeKind::Bool(false)));
        assert!(matches!(n.get("c").unwrap().kind, NodeKind::Bool(true)));
        assert!(matches!(n.get("d").unwrap().kind, NodeKind::Int(420)));
        assert_eq!(n.get("e").unwrap().as_str(), Some("yes"));
        assert!(matches!(n.get("f").unwrap().kind, NodeKind::Float(_)));
    }

    #[test]
    fn every_node_has_a_location() {
        let n = parse("- name: one\n  debug:\n    msg: hi\n- name: two\n");
        let items = n.as_seq().unwrap();
        assert_eq!(items[1].loc.line, 4);
        let msg = items[0].get("debug").unwrap().get("msg").unwrap();
        assert_eq!((msg.loc.line, msg.loc.col), (3, 10));
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let err = load_str("a: [1, 2\nb: c\n", Path::new("bad.yml")).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("bad.yml:"), "{text}");
    }

    #[test]
    fn y_and_n_are_strings_as_in_pyyaml() {
        let n = parse("loop: [x, y, n, Y]\nset: {n: 3, y: 4}\nb: yes\n");
        let items: Vec<_> = n
            .get("loop")
            .unwrap()
            .as_seq()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect();
        assert_eq!(items, ["x", "y", "n", "Y"]);
        assert!(n.get("set").unwrap().get("n").is_some());
        assert!(n.get("set").unwrap().get("y").is_some());
        assert!(matches!(n.get("b").unwrap().kind, NodeKind::Bool(true)));
    }

    #[test]
    fn empty_file_is_null() {
        assert!(parse("# nothing\n").is_null());
    }
}
