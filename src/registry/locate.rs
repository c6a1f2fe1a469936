//! Where a problem is in the file: its path (`services[1].ports[0].name`)
//! turned into a line and column of the registry text.
//!
//! Only a registry with problems comes here: the text is read once more,
//! keeping where each key and element on the problems' paths starts (the
//! YAML parser's spans; JSON is read by the same parser, YAML being a
//! superset of it) and skipping every other subtree, so that locating one
//! problem in a registry of 100,000 services costs a parse and no tree. A
//! path that goes deeper than the text (a missing field) gets the place of
//! the deepest node it reaches.

use std::cell::RefCell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::Problem;

/// A place in the registry text: line and column, from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Gives every problem without a place the place of its path in `text`;
/// leaves them as they are when the text cannot be read as a tree.
pub fn locate(text: &str, problems: &mut [Problem]) {
    if problems.iter().all(|p| p.location.is_some()) {
        return;
    }
    let wanted: Vec<String> = problems
        .iter()
        .filter(|p| p.location.is_none())
        .map(|p| p.path.clone())
        .collect();
    SEARCH.with_borrow_mut(|search| {
        *search = Search {
            wanted,
            path: String::new(),
        }
    });
    // A repeated key is a problem to be located, not a reason to give up.
    let mut options = super::yaml::options();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::FirstWins;
    let tree = serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options);
    SEARCH.with_borrow_mut(|search| *search = Search::default());
    let Ok(tree) = tree else { return };
    let root = Place {
        at: location(&tree.referenced),
        node: tree.value,
    };
    for problem in problems.iter_mut().filter(|p| p.location.is_none()) {
        problem.location = root.find(&problem.path);
    }
}

/// The paths looked for and the path of the node being read. A thread-local
/// rather than a seed: `Spanned<T>`, which gives the places, takes a `T`
/// that is `Deserialize`, so the node reads its context from here.
#[derive(Default)]
struct Search {
    wanted: Vec<String>,
    path: String,
}

thread_local! {
    static SEARCH: RefCell<Search> = RefCell::default();
}

/// Whether the node being read lies on the way to a path looked for.
fn on_the_way() -> bool {
    SEARCH.with_borrow(|search| {
        let path = search.path.as_str();
        path.is_empty()
            || search.wanted.iter().any(|w| {
                w.strip_prefix(path)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            })
    })
}

/// Reads a child at `step` (`[3]`, `.name`), its path pushed for the time.
fn within<T>(step: &str, read: impl FnOnce() -> T) -> T {
    let len = SEARCH.with_borrow_mut(|search| {
        let len = search.path.len();
        match step.strip_prefix('.') {
            Some(key) if len == 0 => search.path.push_str(key),
            _ => search.path.push_str(step),
        }
        len
    });
    let value = read();
    SEARCH.with_borrow_mut(|search| search.path.truncate(len));
    value
}

fn location(at: &serde_saphyr::Location) -> Option<Location> {
    (at.line() > 0).then(|| Location {
        line: at.line(),
        column: at.column(),
    })
}

/// A node and where it starts: for an entry of a mapping, where its key is.
struct Place {
    at: Option<Location>,
    node: Node,
}

/// A document node: a scalar (or a subtree skipped), or its children on
/// the way to a path looked for, with their places.
enum Node {
    Scalar,
    List(Vec<(usize, Place)>),
    Map(Vec<(String, Place)>),
}

impl Place {
    /// The place of the deepest node `path` reaches.
    fn find(&self, path: &str) -> Option<Location> {
        let mut here = self;
        let mut rest = path;
        loop {
            if rest.is_empty() {
                return here.at;
            }
            let next = match &here.node {
                Node::List(items) => rest.strip_prefix('[').and_then(|r| {
                    let (index, after) = r.split_once(']')?;
                    let index = index.parse::<usize>().ok()?;
                    let (_, place) = items.iter().find(|(i, _)| *i == index)?;
                    Some((place, after))
                }),
                // The longest key the path goes on with (keys may hold dots).
                Node::Map(entries) => entries
                    .iter()
                    .filter_map(|(key, place)| {
                        let after = rest.strip_prefix(key.as_str())?;
                        (after.is_empty() || after.starts_with(['.', '['])).then_some((
                            key.len(),
                            place,
                            after,
                        ))
                    })
                    .max_by_key(|(len, _, _)| *len)
                    .map(|(_, place, after)| (place, after)),
                Node::Scalar => None,
            };
            let Some((place, after)) = next else {
                return here.at;
            };
            here = place;
            rest = after.strip_prefix('.').unwrap_or(after);
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(decoder: D) -> Result<Self, D::Error> {
        if !on_the_way() {
            decoder.deserialize_ignored_any(IgnoredAny)?;
            return Ok(Node::Scalar);
        }
        decoder.deserialize_any(NodeVisitor)
    }
}

/// A mapping key of any scalar kind, as text.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(decoder: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(decoder)?;
        Ok(Key(match value {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }))
    }
}

struct NodeVisitor;

macro_rules! scalar {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method<E: de::Error>(self, _: $ty) -> Result<Node, E> {
            Ok(Node::Scalar)
        })*
    };
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128, visit_u128: u128, visit_f64: f64, visit_str: &str, visit_bytes: &[u8]);

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, decoder: D) -> Result<Node, D::Error> {
        Node::deserialize(decoder)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        for index in 0.. {
            let item = within(&format!("[{index}]"), || {
                let wanted = on_the_way();
                seq.next_element::<Spanned<Node>>().map(|i| (wanted, i))
            })?;
            match item {
                (_, None) => break,
                (true, Some(item)) => items.push((
                    index,
                    Place {
                        at: location(&item.referenced),
                        node: item.value,
                    },
                )),
                (false, Some(_)) => {}
            }
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let (wanted, value) = within(&format!(".{}", key.value.0), || {
                let wanted = on_the_way();
                map.next_value::<Spanned<Node>>().map(|v| (wanted, v))
            })?;
            if wanted {
                let at = location(&key.referenced).or(location(&value.referenced));
                entries.push((
                    key.value.0,
                    Place {
                        at,
                        node: value.value,
                    },
                ));
            }
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(text: &str, path: &str) -> Option<(u64, u64)> {
        let mut problems = [Problem::new(path, "x")];
        locate(text, &mut problems);
        problems[0].location.map(|l| (l.line, l.column))
    }

    #[test]
    fn a_path_finds_the_line_of_its_key_or_element() {
        let text = "clusters:\n  - name: east\n    gateways:\n      - address: 192.0.2.1\nservices:\n  - name: a\n    ports:\n      - {name: http, number: x}\n";
        assert_eq!(place(text, "clusters[0].name"), Some((2, 5)));
        assert_eq!(place(text, "clusters[0].gateways[0].address"), Some((4, 9)));
        assert_eq!(place(text, "services[0].ports[0].number"), Some((8, 22)));
        // Deeper than the text (a missing field): the deepest node reached.
        assert_eq!(place(text, "services[0].ports[0].protocol"), Some((8, 9)));
        assert_eq!(place(text, "services[0]"), Some((6, 5)));
    }

    /// Only the nodes on the problems' paths are kept: the others are
    /// skipped, and the places found are the same.
    #[test]
    fn nodes_off_the_paths_are_skipped_not_lost() {
        let mut text = String::from("services:\n");
        for i in 0..1000 {
            text.push_str(&format!(
                "  - name: s{i}\n    ports: [{{name: p, number: {i}}}]\n"
            ));
        }
        let mut problems = [
            Problem::new("services[700].ports[0].number", "x"),
            Problem::new("services[3]", "y"),
        ];
        locate(&text, &mut problems);
        let at: Vec<_> = problems
            .iter()
            .map(|p| p.location.map(|l| (l.line, l.column)))
            .collect();
        assert_eq!(at, [Some((1403, 23)), Some((8, 5))]);
    }

    #[test]
    fn json_is_located_too_and_keys_may_hold_dots() {
        let text = "{\"services\": [\n  {\"labels\": {\"a.b/c\": 1}}\n]}";
        assert_eq!(place(text, "services[0].labels.a.b/c"), Some((2, 15)));
        assert_eq!(place("{not yaml: [", "services"), None);
    }
}
