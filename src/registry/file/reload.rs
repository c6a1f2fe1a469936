//! Loading the registry file's next version by decoding only what changed.
//!
//! A load remembers where each service entry lies ([`super::entries`]),
//! a 128-bit hash of each entry with what follows it up to the next, of
//! what comes before the list and after it, and how many services use
//! each name and pinned address. The next version is matched against that
//! from both ends, entry by entry, without keeping the old text (at
//! 100,000 services, 1.6 MB of hashes instead of 11 MB of text). Only the
//! entries between the last match from the front and the first from the
//! back (and one matched entry on each side, so that the stretch starts
//! and ends on whole entries) are decoded and checked; every other service
//! is shared with the version before ([`std::sync::Arc`]).
//!
//! Validation is incremental the same way: each decoded service gets the
//! checks that concern it alone ([`service_problems`]), the counts tell a
//! duplicate or a shared pin. A version with any problem, or whose change
//! reaches outside the services list (the clusters, the keys around it),
//! is loaded whole ([`load`]), so what is refused, and the problems listed,
//! are exactly those of a full load; a property test holds them to it.
//! A first load decodes the entries on several threads.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use super::entries::{self, Entries, Format};
use crate::registry::parse::parse;
use crate::registry::validate::{service_problems, validate};
use crate::registry::yaml::direct_options;
use crate::registry::{Registry, RegistryError, Service, load_str};

/// A registry as loaded, and what it takes to load its next version by
/// what changed.
#[derive(Debug)]
pub struct Loaded {
    registry: Registry,
    format: Format,
    /// The text's length.
    len: usize,
    /// Hashes of what lies before the first entry, and after the last.
    head: Hash,
    tail: Hash,
    entries: Vec<Entry>,
    /// The services' names and namespaces (by a 64-bit hash: two that
    /// share one send the version to a full load, which tells them apart).
    /// A set, not a count: a version is followed only while it is valid,
    /// where no two services share one (1 MB less than a count each at
    /// 100,000 services).
    names: HashSet<u64, FxBuildHasher>,
    /// The addresses services pin, no two sharing one as well.
    pins: HashSet<IpAddr, FxBuildHasher>,
}

/// One entry of the services list: 24 bytes (offsets as `u32`, the hash
/// as two words, without `u128`'s 16-byte alignment), 32 before.
#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u32,
    end: u32,
    /// Of the entry and what follows it, up to the next entry's start (up
    /// to its own end, for the last).
    hash: Hash,
}

/// A 128-bit hash, as two words.
type Hash = [u64; 2];

impl Entry {
    /// `None` past 4 GiB of text: such a file is loaded whole each time.
    fn new(start: usize, end: usize, hash: Hash) -> Option<Self> {
        Some(Self {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
            hash,
        })
    }

    fn start(&self) -> usize {
        self.start as usize
    }

    fn end(&self) -> usize {
        self.end as usize
    }
}

/// Loads `text` whole: [`load_str`]'s result, and when the text's entries
/// can be followed, what [`reload`] needs for its next version.
pub fn load(
    text: &str,
    origin: &str,
    zones: &[String],
) -> Result<(Registry, Option<Loaded>), RegistryError> {
    if let Some(entries) = entries::find(text)
        && let Some(registry) = decode(text, origin, &entries)
        && validate(&registry, zones).is_empty()
    {
        let loaded = Loaded::new(text, registry.clone(), entries);
        return Ok((registry, loaded));
    }
    load_str(text, origin, zones).map(|registry| (registry, None))
}

/// Loads `text`, the next version of the text `loaded` was loaded from,
/// decoding what changed when it can, whole otherwise; `loaded` is then
/// for this version. A version that does not load leaves `loaded` as it
/// was: the next one is matched against the last that loaded.
pub fn reload(
    loaded: &mut Option<Loaded>,
    text: &str,
    origin: &str,
    zones: &[String],
) -> Result<Registry, RegistryError> {
    if let Some(last) = loaded.as_mut()
        && let Some(Some(registry)) = last.update(text, zones)
    {
        return Ok(registry);
    }
    let (registry, next) = load(text, origin, zones)?;
    *loaded = next;
    Ok(registry)
}

/// A 128-bit hash of `bytes`: two 64-bit lanes over 8-byte words, each
/// finished with MurmurHash3's `fmix64`. Not for an adversary (the file
/// is the operator's own); two versions of an entry colliding by accident
/// is a chance of one in 2^128.
fn hash(bytes: &[u8]) -> Hash {
    const K1: u64 = 0x9E37_79B9_7F4A_7C15;
    const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    let (mut a, mut b) = (K1 ^ bytes.len() as u64, K2);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        a = (a ^ w).wrapping_mul(K2).rotate_left(31);
        b = (b.rotate_left(27) ^ w).wrapping_mul(K1);
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    let w = u64::from_le_bytes(last);
    a = (a ^ w).wrapping_mul(K2).rotate_left(31);
    b = (b.rotate_left(27) ^ w).wrapping_mul(K1);
    let fmix = |mut h: u64| {
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    };
    [fmix(a), fmix(b ^ a.rotate_left(17))]
}

fn name_key(service: &Service) -> u64 {
    FxBuildHasher.hash_one((service.name.as_str(), service.namespace.as_str()))
}

/// Decodes one entry's text.
fn decode_one(text: &str, format: Format) -> Option<Service> {
    match format {
        Format::Json => serde_json::from_str(text).ok(),
        Format::Yaml { .. } => {
            let list: Vec<Service> =
                serde_saphyr::from_str_with_options(text, direct_options(text)).ok()?;
            let [one] = <[Service; 1]>::try_from(list).ok()?;
            Some(one)
        }
    }
}

/// Decodes the text whose entries are `entries`: what lies around the
/// list on its own (the clusters), the entries on as many threads as
/// there are cores. `None` when any part does not decode: the full load
/// then says why, with every problem's path.
fn decode(text: &str, origin: &str, entries: &Entries) -> Option<Registry> {
    let first = entries.spans.first()?.0;
    let last = entries.spans.last()?.1;
    let around = match entries.format {
        Format::Json => format!("{}{}", &text[..first], &text[last..]),
        Format::Yaml { .. } => format!("{} []\n{}", &text[..first], &text[last..]),
    };
    let skeleton = parse(&around, origin).ok()?;
    if !skeleton.services.is_empty() {
        return None;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let per = entries.spans.len().div_ceil(threads).max(1024);
    let decoded: Vec<Option<Vec<Arc<Service>>>> = std::thread::scope(|scope| {
        let parts: Vec<_> = entries
            .spans
            .chunks(per)
            .map(|spans| scope.spawn(move || decode_run(text, spans, entries.format)))
            .collect();
        parts.into_iter().map(|p| p.join().ok().flatten()).collect()
    });
    let mut services = Vec::with_capacity(entries.spans.len());
    for part in decoded {
        services.extend(part?);
    }
    let mut registry = Registry {
        clusters: skeleton.clusters,
        services: services.into(),
        defaults: skeleton.defaults,
    };
    registry.shrink_to_fit();
    Some(registry)
}

/// Decodes a run of consecutive entries. YAML entries go in batches (a
/// parser started per entry costs more than the entry).
fn decode_run(text: &str, spans: &[(usize, usize)], format: Format) -> Option<Vec<Arc<Service>>> {
    let mut out = Vec::with_capacity(spans.len());
    match format {
        Format::Json => {
            for &(start, end) in spans {
                out.push(Arc::new(decode_one(&text[start..end], format)?));
            }
        }
        Format::Yaml { .. } => {
            for batch in spans.chunks(256) {
                let (start, end) = (batch[0].0, batch[batch.len() - 1].1);
                let batch_text = &text[start..end];
                let list: Vec<Service> =
                    serde_saphyr::from_str_with_options(batch_text, direct_options(batch_text))
                        .ok()?;
                if list.len() != batch.len() {
                    return None;
                }
                out.extend(list.into_iter().map(Arc::new));
            }
        }
    }
    Some(out)
}

impl Loaded {
    /// `None` for a text this cannot follow (past 4 GiB).
    fn new(text: &str, registry: Registry, found: Entries) -> Option<Self> {
        let spans = &found.spans;
        // Sized exactly: collecting into an `Option` would grow it by
        // doubling.
        let mut entries = Vec::with_capacity(spans.len());
        for (i, &(start, end)) in spans.iter().enumerate() {
            let next = spans.get(i + 1).map_or(end, |s| s.0);
            entries.push(Entry::new(start, end, hash(&text.as_bytes()[start..next]))?);
        }
        let mut names = HashSet::with_capacity_and_hasher(registry.services.len(), FxBuildHasher);
        let mut pins: HashSet<IpAddr, FxBuildHasher> = HashSet::default();
        for service in registry.services.iter() {
            names.insert(name_key(service));
            pins.extend(service.addresses.iter().copied());
        }
        let (first, last) = (spans[0].0, spans[spans.len() - 1].1);
        Some(Self {
            registry,
            format: found.format,
            len: text.len(),
            head: hash(&text.as_bytes()[..first]),
            tail: hash(&text.as_bytes()[last..]),
            entries,
            names,
            pins,
        })
    }

    /// This text's registry by what changed: `None` when the change is not
    /// one this can follow; `Some(None)` when the version has a problem;
    /// otherwise the registry, and `self` is for this version now.
    fn update(&mut self, text: &str, zones: &[String]) -> Option<Option<Registry>> {
        let bytes = text.as_bytes();
        let n = self.entries.len();
        let (first, last) = (self.entries[0].start(), self.entries[n - 1].end());
        let tail_len = self.len - last;
        if bytes.len() < first + tail_len
            || hash(&bytes[..first]) != self.head
            || hash(&bytes[bytes.len() - tail_len..]) != self.tail
        {
            return None;
        }
        let shift = |at: usize| (at + bytes.len()).checked_sub(self.len);
        let chunk_end = |i: usize| {
            self.entries
                .get(i + 1)
                .map_or(self.entries[i].end(), |e| e.start())
        };
        // Entries the same from the front, at the same place.
        let mut front = 0;
        while front < n
            && chunk_end(front) <= bytes.len()
            && hash(&bytes[self.entries[front].start()..chunk_end(front)])
                == self.entries[front].hash
        {
            front += 1;
        }
        if front == n && bytes.len() == self.len {
            return Some(Some(self.registry.clone()));
        }
        // Entries the same from the back, moved by the change in length.
        let mut back = 0;
        while back < n - front {
            let i = n - 1 - back;
            let (Some(start), Some(end)) = (shift(self.entries[i].start()), shift(chunk_end(i)))
            else {
                break;
            };
            let floor = if front > 0 {
                chunk_end(front - 1)
            } else {
                first
            };
            if start < floor || hash(&bytes[start..end]) != self.entries[i].hash {
                break;
            }
            back += 1;
        }
        let lo = front.saturating_sub(1);
        let hi = if back == 0 { n } else { n - back + 1 };
        let from = self.entries[lo].start();
        let to = shift(self.entries[hi - 1].end())?;
        if to <= from {
            return None;
        }
        let spans = entries::split(&text[from..to], self.format, from)?;
        if spans.is_empty() {
            return None;
        }
        let mut decoded = Vec::with_capacity(spans.len());
        for &(start, end) in &spans {
            match decode_one(&text[start..end], self.format) {
                Some(service) => decoded.push(Arc::new(service)),
                None => return Some(None),
            }
        }
        // The new version's entries: the decoded ones between those kept,
        // the ones after moved by the change in length.
        let mut entries = Vec::with_capacity(n - (hi - lo) + spans.len());
        entries.extend_from_slice(&self.entries[..lo]);
        for (k, &(start, end)) in spans.iter().enumerate() {
            let next = match spans.get(k + 1) {
                Some(s) => s.0,
                None if hi < n => shift(self.entries[hi].start())?,
                None => end,
            };
            entries.push(Entry::new(start, end, hash(&bytes[start..next]))?);
        }
        for entry in &self.entries[hi..] {
            entries.push(Entry::new(
                shift(entry.start())?,
                shift(entry.end())?,
                entry.hash,
            )?);
        }
        if !self.recount(lo..hi, &decoded, zones) {
            return Some(None);
        }
        let mut services = Vec::with_capacity(entries.len());
        services.extend_from_slice(&self.registry.services[..lo]);
        services.extend(decoded);
        services.extend_from_slice(&self.registry.services[hi..]);
        self.registry.services = services.into();
        self.entries = entries;
        self.len = bytes.len();
        Some(Some(self.registry.clone()))
    }

    /// Takes the services of entries `replaced` out of the sets and puts
    /// `decoded` in, each checked on its own. False (the sets as they
    /// were) when any has a problem or shares a name or a pin.
    fn recount(
        &mut self,
        replaced: std::ops::Range<usize>,
        decoded: &[Arc<Service>],
        zones: &[String],
    ) -> bool {
        let clusters: crate::registry::validate::ClusterNames<'_> = self
            .registry
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        if decoded
            .iter()
            .any(|s| !service_problems(s, &clusters, zones).is_empty())
        {
            return false;
        }
        let old: Vec<Arc<Service>> = self.registry.services[replaced].to_vec();
        self.take_out(&old);
        // Every decoded name and pin put in; one already there (another
        // service's, or an earlier decoded one's) is a clash, and what was
        // put in goes back out.
        let (mut names, mut pins) = (Vec::new(), Vec::new());
        let mut clash = false;
        for service in decoded {
            let name = name_key(service);
            match self.names.insert(name) {
                true => names.push(name),
                false => clash = true,
            }
            for addr in &service.addresses {
                match self.pins.insert(*addr) {
                    true => pins.push(*addr),
                    false => clash = true,
                }
            }
        }
        if clash {
            for name in &names {
                self.names.remove(name);
            }
            for addr in &pins {
                self.pins.remove(addr);
            }
            self.put_in(&old);
        }
        !clash
    }

    fn take_out(&mut self, services: &[Arc<Service>]) {
        for service in services {
            self.names.remove(&name_key(service));
            for addr in &service.addresses {
                self.pins.remove(addr);
            }
        }
    }

    fn put_in(&mut self, services: &[Arc<Service>]) {
        for service in services {
            self.names.insert(name_key(service));
            self.pins.extend(service.addresses.iter().copied());
        }
    }
}

#[cfg(test)]
mod tests;
