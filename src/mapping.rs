//! A mapping read as its list of entries, for the maps whose reading needs
//! more than a decoder's insert-one-by-one: refusing a repeated key
//! ([`crate::registry::model`]), building a B-tree in one go
//! ([`crate::vip::table`]).

use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

/// The entries of the mapping `decoder` holds, in the order they are
/// read, a repeated key as many times as it is given. Errors are the
/// decoder's: not a mapping, or a key or value that does not decode.
pub(crate) fn entries<'de, D, K, V>(decoder: D) -> Result<Vec<(K, V)>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de>,
    V: Deserialize<'de>,
{
    struct Entries<K, V>(PhantomData<(K, V)>);
    impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for Entries<K, V> {
        type Value = Vec<(K, V)>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a mapping")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(entry) = map.next_entry()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }
    decoder.deserialize_map(Entries(PhantomData))
}
