//! The first YAML document as a tree of nodes, from yaml-rust2's events.

use crate::limits::{YAML_DEPTH_MAX, YAML_TREE_NODES_MAX};
use std::collections::BTreeMap;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Scalar,
    Mapping,
    Sequence,
    Alias,
}

#[derive(Debug)]
pub(super) struct Node {
    pub(super) kind: Kind,
    /// 1-based line of the node's start.
    pub(super) line: usize,
    /// Explicit tag in short form (`!!str`), or empty.
    pub(super) tag: String,
    pub(super) value: String,
    /// Plain (unquoted) scalar.
    pub(super) plain: bool,
    pub(super) children: Vec<usize>,
    pub(super) alias: Option<usize>,
}

pub(super) fn short_tag(t: &Tag) -> String {
    if t.handle == "!!" || t.handle == "tag:yaml.org,2002:" {
        format!("!!{}", t.suffix)
    } else if t.handle.is_empty() && t.suffix.starts_with("tag:yaml.org,2002:") {
        format!("!!{}", &t.suffix["tag:yaml.org,2002:".len()..])
    } else {
        format!("{}{}", t.handle, t.suffix)
    }
}

/// The first document of a stream.
pub(super) struct FirstDocument {
    pub(super) nodes: Vec<Node>,
    pub(super) root: usize,
    /// Where the token that ended the document (`---`, `...`, a directive, the end of the
    /// stream) starts: 1-based line and 0-based column, as yaml-rust2 counts them.
    pub(super) end: (usize, usize),
}

/// Parses the first YAML document into a node tree; `Ok(None)` if the stream has no document.
pub(super) fn parse_first_document(text: &str) -> Result<Option<FirstDocument>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut nodes: Vec<Node> = Vec::new();
    let mut anchors: BTreeMap<usize, usize> = BTreeMap::new();
    // Stack of open collections: (node index, pending key for mappings is implicit in children).
    let mut stack: Vec<usize> = Vec::new();
    let mut root: Option<usize> = None;
    let mut in_doc = false;
    loop {
        let (ev, mark) = parser
            .next_token()
            .map_err(|e| format!("yaml: line {}: {}", e.marker().line(), e.info()))?;
        let line = mark.line().max(1);
        let seq_start = matches!(ev, Event::SequenceStart(..));
        let new_node =
            |kind, tag: Option<Tag>, value: String, plain: bool, nodes: &mut Vec<Node>| {
                nodes.push(Node {
                    kind,
                    line,
                    tag: tag.as_ref().map(short_tag).unwrap_or_default(),
                    value,
                    plain,
                    children: Vec::new(),
                    alias: None,
                });
                nodes.len() - 1
            };
        let attach =
            |idx: usize, nodes: &mut Vec<Node>, stack: &[usize], root: &mut Option<usize>| {
                if let Some(&parent) = stack.last() {
                    nodes[parent].children.push(idx);
                } else if root.is_none() {
                    *root = Some(idx);
                }
            };
        match ev {
            Event::StreamStart | Event::Nothing => {}
            Event::StreamEnd => {
                return Ok(root.map(|root| FirstDocument {
                    nodes,
                    root,
                    end: (mark.line(), mark.col()),
                }))
            }
            Event::DocumentStart => in_doc = true,
            Event::Scalar(..) | Event::Alias(_) | Event::SequenceStart(..) | Event::MappingStart(..)
                if nodes.len() >= YAML_TREE_NODES_MAX =>
            {
                return Err(format!(
                    "{}metadata.yaml has more than {YAML_TREE_NODES_MAX} YAML nodes, which lxdimg does not build",
                    super::NOT_JUDGED
                ))
            }
            Event::DocumentEnd => {
                if in_doc {
                    return Ok(root.map(|root| FirstDocument {
                        nodes,
                        root,
                        end: (mark.line(), mark.col()),
                    }));
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let plain = style == TScalarStyle::Plain;
                let idx = new_node(Kind::Scalar, tag, value, plain, &mut nodes);
                if anchor != 0 {
                    anchors.insert(anchor, idx);
                }
                attach(idx, &mut nodes, &stack, &mut root);
            }
            Event::Alias(id) => {
                let idx = new_node(Kind::Alias, None, String::new(), false, &mut nodes);
                nodes[idx].alias = anchors.get(&id).copied();
                if nodes[idx].alias.is_none() {
                    return Err(format!("yaml: unknown anchor '{id}' referenced"));
                }
                attach(idx, &mut nodes, &stack, &mut root);
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                let kind = if seq_start {
                    Kind::Sequence
                } else {
                    Kind::Mapping
                };
                let idx = new_node(kind, tag, String::new(), false, &mut nodes);
                if anchor != 0 {
                    anchors.insert(anchor, idx);
                }
                attach(idx, &mut nodes, &stack, &mut root);
                stack.push(idx);
                // libyaml's scanner in Go (yaml.v2 ≥ 2.2.8, v3, v4) refuses an indentation
                // (block collection) deeper than 10000 levels; yaml-rust2 has no such limit for
                // block collections (flow ones stop at 255), and memory grows with the depth.
                if stack.len() > YAML_DEPTH_MAX {
                    return Err(format!(
                        "yaml: line {line}: exceeded max depth of {YAML_DEPTH_MAX}"
                    ));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
            }
        }
    }
}
