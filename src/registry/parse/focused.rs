//! The deserializer behind [`super::isolate`]: an entry decoded with one
//! node real and every field beside the way to it a [`Poison`] stand-in.
//! Lists on the way are decoded as their one element on the way (the caller
//! puts the real index back in the error's path).

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Visitor};
use serde_json::Value;

use super::path::{Mode, Step};
use super::poison::{DecodeError, Poison};

/// A node of the entry on the way to the node under test (`rest` is the
/// path left to it): only the next step is real, everything beside it is a
/// stand-in.
pub struct Focused<'a, 'f> {
    node: &'a Value,
    rest: &'f [Step],
    mode: Mode<'f>,
}

impl<'a, 'f> Focused<'a, 'f> {
    /// The entry `node`, to be decoded towards the node at `rest`.
    pub fn new(node: &'a Value, rest: &'f [Step], mode: Mode<'f>) -> Self {
        Self { node, rest, mode }
    }
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
