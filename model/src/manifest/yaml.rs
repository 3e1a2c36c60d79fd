//! YAML → a tree that remembers where every key and value came from.
//!
//! Manifests are parsed in two steps: this module turns YAML text into
//! [`Node`]s (YAML 1.2 core schema, no aliases, no custom tags, no duplicate
//! keys, bounded depth), each carrying its line and column; the caller then
//! deserializes the JSON form into the typed manifest and maps any error's
//! path back to a position with [`Node::locate`].

use std::fmt;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deeper nesting than this is refused (no manifest needs it, and it keeps
/// every recursive walk bounded).
pub const MAX_DEPTH: usize = 64;

/// A line and column in the source, both starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Pos {
        Pos {
            line: m.line().max(1),
            col: m.col() + 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A YAML error at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl Node {
    /// The JSON form, for serde.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The value under `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The position of the deepest node `path` reaches. With `key_of_last`,
    /// a final key segment points at the key itself (for "unknown field"),
    /// else at its value. A segment that does not exist stops the walk there.
    pub fn locate(&self, path: &[Seg], key_of_last: bool) -> Pos {
        let mut node = self;
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            match (seg, &node.value) {
                (Seg::Key(name), Value::Map(entries)) => {
                    match entries.iter().find(|(k, _)| &k.name == name) {
                        Some((k, _)) if last && key_of_last => return k.pos,
                        Some((_, v)) => node = v,
                        None => return node.pos,
                    }
                }
                (Seg::Index(idx), Value::Seq(items)) => match items.get(*idx) {
                    Some(v) => node = v,
                    None => return node.pos,
                },
                _ => return node.pos,
            }
        }
        node.pos
    }
}

/// One document of a stream, with where it starts.
#[derive(Debug, Clone)]
pub struct Document {
    pub start: Pos,
    pub root: Node,
}

enum Frame {
    Seq(Pos, Vec<Node>),
    Map(Pos, Vec<(Key, Node)>, Option<Key>),
}

/// Parses every document of a YAML stream. Empty documents are skipped.
pub fn parse_stream(text: &str) -> Result<Vec<Document>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut doc_start = Pos::default();
    let mut root: Option<Node> = None;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| YamlError {
            pos: (*e.marker()).into(),
            message: e.info().to_string(),
        })?;
        let pos = Pos::from(mark);
        let finished: Option<Node> = match event {
            Event::StreamStart | Event::Nothing => None,
            Event::StreamEnd => break,
            Event::DocumentStart => {
                doc_start = pos;
                root = None;
                None
            }
            Event::DocumentEnd => {
                if let Some(node) = root.take()
                    && node.value != Value::Null
                {
                    docs.push(Document {
                        start: doc_start,
                        root: node,
                    });
                }
                None
            }
            Event::Alias(_) => {
                return Err(YamlError {
                    pos,
                    message:
                        "YAML aliases (*name) are not allowed in manifests; write the value out"
                            .into(),
                });
            }
            Event::Scalar(text, style, _anchor, tag) => {
                if let Some(tag) = tag
                    && !(matches!(tag.handle.as_str(), "!!" | "tag:yaml.org,2002:")
                        && tag.suffix == "str")
                {
                    return Err(YamlError {
                        pos,
                        message: format!(
                            "YAML tag `{}{}` is not allowed in manifests",
                            tag.handle, tag.suffix
                        ),
                    });
                }
                let value = if style == TScalarStyle::Plain {
                    resolve_plain(&text)
                } else {
                    Value::Str(text)
                };
                Some(Node { pos, value })
            }
            Event::SequenceStart(_, tag) | Event::MappingStart(_, tag) if tag.is_some() => {
                return Err(YamlError {
                    pos,
                    message: "YAML tags are not allowed in manifests".into(),
                });
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError {
                        pos,
                        message: format!("nesting deeper than {MAX_DEPTH} levels"),
                    });
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(pos, Vec::new())
                } else {
                    Frame::Map(pos, Vec::new(), None)
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(p, items)) => Some(Node {
                    pos: p,
                    value: Value::Seq(items),
                }),
                // A block mapping's start event is marked after its first
                // key; the key itself is where the mapping begins.
                Some(Frame::Map(p, entries, _)) => Some(Node {
                    pos: entries.first().map_or(p, |(k, _)| p.min(k.pos)),
                    value: Value::Map(entries),
                }),
                None => None,
            },
        };
        let Some(node) = finished else { continue };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, pending)) => match pending.take() {
                Some(key) => entries.push((key, node)),
                None => {
                    let name = match node.value {
                        Value::Str(s) => s,
                        Value::Int(i) => i.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Null => "null".into(),
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(YamlError {
                                pos: node.pos,
                                message: "a mapping key must be a plain string".into(),
                            });
                        }
                    };
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == name) {
                        return Err(YamlError {
                            pos: node.pos,
                            message: format!(
                                "duplicate key `{name}` (first at line {})",
                                first.pos.line
                            ),
                        });
                    }
                    *pending = Some(Key {
                        name,
                        pos: node.pos,
                    });
                }
            },
        }
    }
    Ok(docs)
}

/// YAML 1.2 core schema resolution of a plain (unquoted) scalar. Only
/// `true`/`false` are booleans (no `yes`/`no`/`on`), so `NO` stays a string.
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Int(i);
        }
    } else if let Some(hex) = s.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Int(i);
        }
    } else if let Some(oct) = s.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Value::Int(i);
        }
    } else if looks_like_float(digits)
        && let Ok(f) = s.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(s.to_string())
}

fn looks_like_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let int_ok = int.bytes().all(|b| b.is_ascii_digit());
    let frac_ok = frac.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit()));
    let has_digits = !int.is_empty() || frac.is_some_and(|f| !f.is_empty());
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    int_ok && frac_ok && has_digits && exp_ok && (frac.is_some() || exp.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let docs = parse_stream("a: 1\nb:\n  - x\n  - y: true\n").unwrap();
        let root = &docs[0].root;
        let b = root.get("b").unwrap();
        assert_eq!(
            root.locate(&[Seg::Key("b".into())], true),
            Pos { line: 2, col: 1 }
        );
        assert_eq!(b.pos, Pos { line: 3, col: 3 });
        let y = root.locate(
            &[Seg::Key("b".into()), Seg::Index(1), Seg::Key("y".into())],
            false,
        );
        assert_eq!(y, Pos { line: 4, col: 8 });
        assert_eq!(
            root.to_json(),
            serde_json::json!({"a": 1, "b": ["x", {"y": true}]})
        );
    }

    #[test]
    fn core_schema_scalars() {
        for (text, want) in [
            ("no", Value::Str("no".into())),
            ("NO", Value::Str("NO".into())),
            ("22:00", Value::Str("22:00".into())),
            ("2027-06-30", Value::Str("2027-06-30".into())),
            ("1.5", Value::Float(1.5)),
            ("1e3", Value::Float(1000.0)),
            ("-7", Value::Int(-7)),
            ("0x1f", Value::Int(31)),
            ("~", Value::Null),
            ("e5", Value::Str("e5".into())),
            (".", Value::Str(".".into())),
        ] {
            assert_eq!(resolve_plain(text), want, "{text}");
        }
    }

    #[test]
    fn refuses_aliases_duplicates_tags_and_depth() {
        let e = parse_stream("a: &x 1\nb: *x\n").unwrap_err();
        assert!(e.message.contains("aliases"), "{e:?}");
        assert_eq!(e.pos.line, 2);
        let e = parse_stream("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (3, 1));
        assert!(e.message.contains("duplicate key `a` (first at line 1)"));
        assert!(parse_stream("a: !!binary aGk=\n").is_err());
        assert!(parse_stream("a: !!str 12\n").is_ok());
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse_stream(&deep).unwrap_err().message.contains("nesting"));
    }

    #[test]
    fn multi_document_streams_skip_empty_documents() {
        let docs = parse_stream("---\na: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].start.line, 4);
    }
}
