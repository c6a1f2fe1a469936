//! Every decoding problem of one registry entry, not only the first.
//!
//! serde stops at an entry's first bad field. To find the others, each
//! field (and each element of a list, each field of an element...) is
//! decoded on its own: the entry is decoded again with only that node real
//! and every field beside it and beside its parents replaced by a
//! [`Poison`](super::poison::Poison) stand-in. A node that fails on its own and has children is
//! searched the same way one level down, so a problem is reported at the
//! deepest path that still fails; the fields a mapping lacks are found by
//! decoding it with stand-ins for all it has, one missing field at a time.
//!
//! Nothing here knows the model's fields: serde hands them over when a
//! struct is decoded, so a field added to the model is searched too. Only
//! entries that failed to decode come here; a valid registry never does.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::focused::Focused;
use super::path::{Mode, Step};
use super::poison::DecodeError;

/// A problem found, at a path relative to the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub path: Vec<Step>,
    pub message: String,
}

/// Every problem keeping `entry` from decoding as a `T`; empty if it does.
pub fn problems<T: DeserializeOwned>(entry: &Value) -> Vec<Found> {
    search::<T>(entry, &mut Vec::new())
}

/// Bound on the missing fields looked for in one mapping (the model's
/// largest struct has six fields).
const MAX_MISSING: usize = 64;

fn search<T: DeserializeOwned>(entry: &Value, focus: &mut Vec<Step>) -> Vec<Found> {
    let first = match decode::<T>(entry, focus, Mode::Whole) {
        Ok(()) => return Vec::new(),
        Err(found) => found,
    };
    // An error outside the node under test comes from a stand-in, not from
    // the data: nothing can be said about this node.
    if !first.path.starts_with(focus) {
        return Vec::new();
    }
    let mut found = Vec::new();
    match at(entry, focus) {
        Some(Value::Object(map)) => {
            for key in map.keys() {
                focus.push(Step::Key(key.clone()));
                found.extend(search::<T>(entry, focus));
                focus.pop();
            }
            let mut given: Vec<&'static str> = Vec::new();
            while given.len() < MAX_MISSING {
                match decode::<T>(entry, focus, Mode::Shape(&given)) {
                    Err(missing) if missing.path == *focus => {
                        let Some(field) = missing.field else { break };
                        found.push(Found {
                            path: focus.clone(),
                            message: missing.message,
                        });
                        given.push(field);
                    }
                    _ => break,
                }
            }
        }
        Some(Value::Array(items)) => {
            for i in 0..items.len() {
                focus.push(Step::Index(i));
                found.extend(search::<T>(entry, focus));
                focus.pop();
            }
        }
        _ => {}
    }
    // The first error is reported unless a problem found covers it (stand-ins
    // may have hidden it from the search).
    let covered = found
        .iter()
        .any(|f| first.path.starts_with(&f.path) || f.path.starts_with(&first.path));
    if !covered {
        found.push(Found {
            path: first.path,
            message: first.message,
        });
    }
    found
}

/// The node at `path`, if the entry has one there.
fn at<'a>(mut node: &'a Value, path: &[Step]) -> Option<&'a Value> {
    for step in path {
        node = match (step, node) {
            (Step::Key(key), Value::Object(map)) => map.get(key)?,
            (Step::Index(i), Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// What a failed decode says: where, what, and the field it lacks if that
/// is the problem.
struct Failure {
    path: Vec<Step>,
    message: String,
    field: Option<&'static str>,
}

fn decode<T: DeserializeOwned>(entry: &Value, focus: &[Step], mode: Mode) -> Result<(), Failure> {
    let focused = Focused::new(entry, focus, mode);
    match serde_path_to_error::deserialize::<_, T>(focused) {
        Ok(_) => Ok(()),
        Err(error) => {
            let mut path: Vec<Step> = error
                .path()
                .iter()
                .map(|segment| match segment {
                    serde_path_to_error::Segment::Seq { index } => Step::Index(*index),
                    serde_path_to_error::Segment::Map { key } => Step::Key(key.clone()),
                    serde_path_to_error::Segment::Enum { variant } => Step::Key(variant.clone()),
                    serde_path_to_error::Segment::Unknown => Step::Key("?".to_string()),
                })
                .collect();
            // A list on the way to the node under test is decoded as that
            // one element: put its real index back.
            for (step, real) in path.iter_mut().zip(focus) {
                if let (Step::Index(0), Step::Index(i)) = (&*step, real) {
                    *step = Step::Index(*i);
                }
            }
            let error = error.into_inner();
            Err(Failure {
                path,
                field: match error {
                    DecodeError::MissingField(field) => Some(field),
                    DecodeError::Other(_) => None,
                },
                message: error.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests;
