//! Every decoding problem of one registry entry, not only the first.
//!
//! serde stops at an entry's first bad field. To find the others, each
//! field (and each element of a list, each field of an element...) is
//! decoded on its own: the entry is decoded again with only that node real
//! and every field beside it and beside its parents replaced by a
//! [`Poison`] stand-in. A node that fails on its own and has children is
//! searched the same way one level down, so a problem is reported at the
//! deepest path that still fails; the fields a mapping lacks are found by
//! decoding it with stand-ins for all it has, one missing field at a time.
//!
//! Nothing here knows the model's fields: serde hands them over when a
//! struct is decoded, so a field added to the model is searched too. Only
//! entries that failed to decode come here; a valid registry never does.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use serde_json::Value;

use super::poison::{DecodeError, Poison};

/// One step of a path into a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A problem found, at a path relative to the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub path: Vec<Step>,
    pub message: String,
}

/// The path written the way problems show it: `ports[1].number`.
pub fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
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

/// How the node under test is decoded.
#[derive(Clone, Copy)]
enum Mode<'f> {
    /// As it is.
    Whole,
    /// Its fields replaced by stand-ins, and the given fields added as
    /// stand-ins too: what fails is a field it lacks.
    Shape(&'f [&'static str]),
}

/// What a failed decode says: where, what, and the field it lacks if that
/// is the problem.
struct Failure {
    path: Vec<Step>,
    message: String,
    field: Option<&'static str>,
}

fn decode<T: DeserializeOwned>(entry: &Value, focus: &[Step], mode: Mode) -> Result<(), Failure> {
    let focused = Focused {
        node: entry,
        rest: focus,
        mode,
    };
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

/// A node of the entry on the way to the node under test (`rest` is the
/// path left to it): only the next step is real, everything beside it is a
/// stand-in.
struct Focused<'a, 'f> {
    node: &'a Value,
    rest: &'f [Step],
    mode: Mode<'f>,
}

impl<'a> Focused<'a, '_> {
    /// The node itself, decoded as the data has it.
    fn real<V: Visitor<'a>>(
        self,
        decode: impl FnOnce(&'a Value, V) -> Result<V::Value, serde_json::Error>,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        decode(self.node, visitor).map_err(DecodeError::from)
    }
}

/// Entries of a mapping, some real (focused) and some stand-ins.
struct Entries<'a, 'f> {
    real: Option<(&'a str, Focused<'a, 'f>)>,
    stand_ins: Vec<&'static str>,
    value: Option<Option<Focused<'a, 'f>>>,
}

impl<'a> de::MapAccess<'a> for Entries<'a, '_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        if let Some((key, value)) = self.real.take() {
            self.value = Some(Some(value));
            return seed
                .deserialize(BorrowedStrDeserializer::<DecodeError>::new(key))
                .map(Some);
        }
        let Some(key) = self.stand_ins.pop() else {
            return Ok(None);
        };
        self.value = Some(None);
        seed.deserialize(BorrowedStrDeserializer::<DecodeError>::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        match self.value.take().flatten() {
            Some(focused) => seed.deserialize(focused),
            None => seed.deserialize(Poison),
        }
    }
}

/// The one element of a list on the way to the node under test.
struct Element<'a, 'f>(Option<Focused<'a, 'f>>);

impl<'a> de::SeqAccess<'a> for Element<'a, '_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        match self.0.take() {
            Some(focused) => seed.deserialize(focused).map(Some),
            None => Ok(None),
        }
    }
}

impl<'a, 'f> Focused<'a, 'f> {
    /// A mapping with the next step as its one real entry; `fields` (a
    /// struct's) get stand-ins. In shape mode, at the node under test: every
    /// field it has, and the ones given, as stand-ins.
    fn mapping<V: Visitor<'a>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let Value::Object(map) = self.node else {
            return self.real(
                |node, v| de::Deserializer::deserialize_any(node, v),
                visitor,
            );
        };
        match (self.rest.split_first(), self.mode) {
            (Some((Step::Key(key), rest)), mode) => {
                let Some((key, value)) = map.get_key_value(key) else {
                    return Err(de::Error::custom("the path left the document"));
                };
                visitor.visit_map(Entries {
                    real: Some((
                        key.as_str(),
                        Focused {
                            node: value,
                            rest,
                            mode,
                        },
                    )),
                    stand_ins: fields.iter().copied().filter(|f| f != key).collect(),
                    value: None,
                })
            }
            (None, Mode::Shape(given)) => visitor.visit_map(Entries {
                real: None,
                stand_ins: fields
                    .iter()
                    .copied()
                    .filter(|f| map.contains_key(*f) || given.contains(f))
                    .collect(),
                value: None,
            }),
            _ => self.real(
                |node, v| de::Deserializer::deserialize_any(node, v),
                visitor,
            ),
        }
    }

    /// A list with the next step as its one element.
    fn list<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match (self.node, self.rest.split_first()) {
            (Value::Array(items), Some((Step::Index(i), rest))) => {
                let Some(node) = items.get(*i) else {
                    return Err(de::Error::custom("the path left the document"));
                };
                visitor.visit_seq(Element(Some(Focused {
                    node,
                    rest,
                    mode: self.mode,
                })))
            }
            _ => self.real(
                |node, v| de::Deserializer::deserialize_seq(node, v),
                visitor,
            ),
        }
    }

    /// Whether this node is the one under test, decoded as it is.
    fn is_whole(&self) -> bool {
        self.rest.is_empty() && matches!(self.mode, Mode::Whole)
    }
}

/// Every method not written out decodes the node as the data has it.
macro_rules! real {
    ($($method:ident),* $(,)?) => {
        $(fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            self.real(|node, v| de::Deserializer::$method(node, v), visitor)
        })*
    };
}

impl<'a> de::Deserializer<'a> for Focused<'a, '_> {
    type Error = DecodeError;

    real!(
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_unit,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.node {
            _ if self.is_whole() => self.real(
                |node, v| de::Deserializer::deserialize_any(node, v),
                visitor,
            ),
            Value::Object(_) => self.mapping(&[], visitor),
            Value::Array(_) => self.list(visitor),
            _ => self.real(
                |node, v| de::Deserializer::deserialize_any(node, v),
                visitor,
            ),
        }
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.is_whole() || self.node.is_null() {
            return self.real(
                |node, v| de::Deserializer::deserialize_option(node, v),
                visitor,
            );
        }
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        if self.is_whole() {
            return self.real(
                |node, v| de::Deserializer::deserialize_newtype_struct(node, name, v),
                visitor,
            );
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.is_whole() {
            return self.real(
                |node, v| de::Deserializer::deserialize_seq(node, v),
                visitor,
            );
        }
        self.list(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.real(
            |node, v| de::Deserializer::deserialize_unit_struct(node, name, v),
            visitor,
        )
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.real(
            |node, v| de::Deserializer::deserialize_tuple(node, len, v),
            visitor,
        )
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.real(
            |node, v| de::Deserializer::deserialize_tuple_struct(node, name, len, v),
            visitor,
        )
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.is_whole() {
            return self.real(
                |node, v| de::Deserializer::deserialize_map(node, v),
                visitor,
            );
        }
        self.mapping(&[], visitor)
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        if self.is_whole() {
            return self.real(
                |node, v| de::Deserializer::deserialize_struct(node, name, fields, v),
                visitor,
            );
        }
        self.mapping(fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.real(
            |node, v| de::Deserializer::deserialize_enum(node, name, variants, v),
            visitor,
        )
    }
}

#[cfg(test)]
mod tests;
