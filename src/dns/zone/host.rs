//! The names one host puts in its zone, as lower-case wire keys: the host,
//! its SRV names `_<port>._tcp.<host>`, the `_tcp.<host>` between them,
//! and the names between the host and the zone's apex. The full build and
//! the patch both place a host through [`HostNames::of`], so they cannot
//! disagree on what a host is.
//!
//! Plain names (letters, digits, `-`, `_`, a `*` label) are encoded directly,
//! which is most of a build's time saved at 100,000 hosts; anything else
//! (escapes, a label too long) goes through hickory's parser, which gives
//! the same bytes or the error a report shows.

use super::names::{TCP_LABEL, ZoneIndex};
use super::{HostData, Zone, ZoneError, wire};

/// The names of one host.
#[derive(Debug)]
pub(super) struct HostNames {
    /// Index of its zone in the zones it was placed against.
    pub(super) zone: ZoneIndex,
    pub(super) host: Box<[u8]>,
    /// The host is a wildcard (`*.suffix`).
    pub(super) wildcard: bool,
    /// Each port's SRV name and number.
    pub(super) srv: Vec<(Box<[u8]>, u16)>,
    /// The names strictly between the host and its zone's apex, nearest
    /// first: empty non-terminals unless something else is there.
    pub(super) parents: Vec<Box<[u8]>>,
}

impl HostNames {
    /// The names of `data` in the one of `zones` it lies in. Fails when
    /// the host or an SRV name is not a DNS name, when the host is in no
    /// zone, or when it is a zone's name server.
    pub(super) fn of(data: &HostData<'_>, zones: &[Zone]) -> Result<Self, ZoneError> {
        let host = key_of(data.host)?;
        let (index, zone, origin_at) = zones
            .iter()
            .enumerate()
            .find_map(|(i, z)| Some((i, z, suffix_at(&host, &z.key)?)))
            .ok_or_else(|| ZoneError::OutsideZones {
                host: data.host.to_string(),
            })?;
        if *host == *zone.ns_key {
            // Its addresses are the server's own (--ns-address).
            return Err(ZoneError::NameServer {
                host: data.host.to_string(),
                zone: zone.origin.to_string(),
            });
        }
        // Every name is made before anything is inserted: a host whose SRV
        // name is not a DNS name leaves no trace, and the rest still builds.
        let srv = data
            .ports
            .iter()
            .map(|(port, number)| Ok((srv_key(port, data.host, &host)?, *number)))
            .collect::<Result<Vec<_>, ZoneError>>()?;
        let parents = label_starts(&host)
            .skip(1)
            .take_while(|&at| at < origin_at)
            .map(|at| Box::<[u8]>::from(&host[at..]))
            .collect();
        Ok(Self {
            zone: ZoneIndex::try_from(index).map_err(|_| ZoneError::TooManyZones)?,
            wildcard: host.get(..2) == Some(b"\x01*"),
            host,
            srv,
            parents,
        })
    }

    /// Each SRV name's first label (`_<port>`, wire form) and port: what
    /// the host's node holds of them (`names.rs`).
    pub(super) fn ports(&self) -> impl Iterator<Item = (&[u8], u16)> + Clone {
        self.srv
            .iter()
            .map(|(key, port)| (&key[..1 + usize::from(key[0])], *port))
    }

    /// Every name the host owns alone: itself, `_tcp` (when it has ports)
    /// and its SRV names.
    pub(super) fn own(&self) -> impl Iterator<Item = std::borrow::Cow<'_, [u8]>> {
        let tcp = (!self.srv.is_empty()).then(|| [TCP_LABEL, &self.host].concat());
        std::iter::once(std::borrow::Cow::Borrowed(&*self.host))
            .chain(tcp.map(std::borrow::Cow::Owned))
            .chain(
                self.srv
                    .iter()
                    .map(|(key, _)| std::borrow::Cow::Borrowed(&**key)),
            )
    }
}

/// Where the labels of a wire name start (the root's empty label left out).
pub(super) fn label_starts(key: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = usize::from(*key.get(at)?);
        if len == 0 {
            return None;
        }
        let start = at;
        at += 1 + len;
        Some(start)
    })
}

/// Where `origin` starts in `key`, when `key` is `origin` or below it.
fn suffix_at(key: &[u8], origin: &[u8]) -> Option<usize> {
    if origin == [0] {
        return Some(key.len() - 1);
    }
    label_starts(key).find(|&at| key[at..] == *origin)
}

/// The lower-case wire form of a host.
fn key_of(text: &str) -> Result<Box<[u8]>, ZoneError> {
    match plain(text, None) {
        Some(key) => Ok(key),
        None => Ok(wire(&super::fqdn(text)?)),
    }
}

/// The key of `_<port>._tcp.<host>`.
fn srv_key(port: &str, text: &str, host: &[u8]) -> Result<Box<[u8]>, ZoneError> {
    let label = format!("_{port}");
    match plain(&label, Some(host)) {
        Some(key) => Ok(key),
        None => Ok(wire(&super::fqdn(&format!("_{port}._tcp.{text}"))?)),
    }
}

/// `text` (then `_tcp` and `below`, a wire name, when given) in lower-case
/// wire form, when every label is plain: letters, digits, `-` and `_`, 1 to
/// 63 bytes, or a lone `*`; at most 255 bytes in all. hickory reads such text into
/// exactly these labels; anything else is left to it.
fn plain(text: &str, below: Option<&[u8]>) -> Option<Box<[u8]>> {
    let text = text.strip_suffix('.').unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() + 2 + below.map_or(0, |b| b.len() + 5));
    for label in text.split('.') {
        let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        // hickory refuses a label that begins with `-` (RFC 952's rule).
        let plain = label == "*" || (!label.starts_with('-') && label.bytes().all(ok));
        if label.is_empty() || label.len() > 63 || !plain {
            return None;
        }
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    match below {
        Some(below) => {
            out.extend_from_slice(TCP_LABEL);
            out.extend_from_slice(below);
        }
        None => out.push(0),
    }
    (out.len() <= 255).then(|| out.into_boxed_slice())
}

/// hickory's reading of a name, for the tests: the fast encoding must
/// agree with it.
#[cfg(test)]
fn slow(text: &str) -> Result<Box<[u8]>, ZoneError> {
    Ok(wire(&super::fqdn(text)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_names_are_encoded_as_hickory_reads_them() {
        for text in [
            "a.b.global",
            "A.B.Global.",
            "*.ext.global",
            "_http._tcp.x.global",
            "a-b.c_d.e",
        ] {
            assert_eq!(plain(text, None), Some(slow(text).unwrap()), "{text}");
        }
        for text in [
            "a..b",
            ".a",
            "a b.c",
            &"x".repeat(64),
            "é.global",
            "-a.global",
        ] {
            assert_eq!(plain(text, None), None, "{text}");
        }
        let long = format!("{}.global", vec!["x".repeat(63); 4].join("."));
        assert_eq!(plain(&long, None), None, "longer than 255 bytes");
        assert!(slow(&long).is_err());
    }

    #[test]
    fn a_host_has_its_srv_names_and_parents() {
        let mut builder = super::super::ZoneSetBuilder::new(0, 30, 8);
        builder.zone("global").unwrap();
        let zones = &builder.zones;
        let names = HostNames::of(
            &HostData {
                host: "a.b.c.global",
                addresses: &[],
                ports: &[("http", 80), ("grpc", 90)],
            },
            zones,
        )
        .unwrap();
        assert_eq!(*names.host, *slow("a.b.c.global").unwrap());
        assert_eq!(
            names.own().nth(1).as_deref(),
            Some(&*slow("_tcp.a.b.c.global").unwrap())
        );
        assert_eq!(*names.srv[1].0, *slow("_grpc._tcp.a.b.c.global").unwrap());
        let parents: Vec<Box<[u8]>> = ["b.c.global", "c.global"]
            .iter()
            .map(|t| slow(t).unwrap())
            .collect();
        assert_eq!(names.parents, parents);
        let err = HostNames::of(
            &HostData {
                host: "ns.global",
                addresses: &[],
                ports: &[],
            },
            zones,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("is the name server"), "{err}");
        let err = HostNames::of(
            &HostData {
                host: "a.example.com",
                addresses: &[],
                ports: &[],
            },
            zones,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("in none of the zones"), "{err}");
    }

    proptest! {
        /// Any text: the fast encoding is hickory's, or leaves it to hickory.
        #[test]
        fn the_fast_encoding_never_disagrees(text in "([a-zA-Z0-9_*\\\\ -]{0,70}\\.?){0,4}") {
            if let Some(fast) = plain(&text, None) {
                prop_assert_eq!(Ok(fast), slow(&text));
            }
        }
    }
}
