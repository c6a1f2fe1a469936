//! Writing a shard: its nodes, their addresses and SRV names, as the
//! snapshot builder and the patcher place hosts; then sealing it (shrunk,
//! its digest sum taken) to be shared.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::{Node, Shard, Span, SrvPort, ZoneIndex, hash_key};
use crate::dns::zone::ZoneError;

impl Shard {
    /// The node at `key`, created (in `zone`, with no data) if new.
    pub(in crate::dns::zone) fn find_or_insert(
        &mut self,
        key: &[u8],
        hash: u64,
        zone: ZoneIndex,
    ) -> Result<u32, ZoneError> {
        match self.find(key, hash) {
            Some(index) => Ok(index),
            None => self.insert(key, hash, zone),
        }
    }

    /// Puts `bytes` in the key arena: where they start, and their length.
    fn push_key(&mut self, bytes: &[u8]) -> Result<(u32, u8), ZoneError> {
        let len =
            u8::try_from(bytes.len()).map_err(|_| ZoneError::NameTooLong { len: bytes.len() })?;
        let start = u32::try_from(self.keys.len()).map_err(|_| ZoneError::TooManyNames)?;
        self.keys.extend_from_slice(bytes);
        Ok((start, len))
    }

    /// A new node at `key`, which must not be there yet.
    pub(in crate::dns::zone) fn insert(
        &mut self,
        key: &[u8],
        hash: u64,
        zone: ZoneIndex,
    ) -> Result<u32, ZoneError> {
        let index = u32::try_from(self.nodes.len()).map_err(|_| ZoneError::TooManyNames)?;
        self.underscored |= key.get(1) == Some(&b'_');
        let (key, key_len) = self.push_key(key)?;
        self.nodes.push(Node {
            key,
            key_len,
            zone,
            a: Span::default(),
            aaaa: Span::default(),
            srv: Span::default(),
        });
        let Self {
            table, nodes, keys, ..
        } = self;
        table.insert_unique(hash, index, |&i| {
            let node = &nodes[i as usize];
            hash_key(&keys[node.key as usize..][..usize::from(node.key_len)])
        });
        Ok(index)
    }

    pub(in crate::dns::zone) fn set_addresses(
        &mut self,
        index: u32,
        addresses: &[IpAddr],
    ) -> Result<(), ZoneError> {
        let v4 = addresses.iter().filter_map(|a| match a {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        });
        let v6 = addresses.iter().filter_map(|a| match a {
            IpAddr::V6(v6) => Some(*v6),
            IpAddr::V4(_) => None,
        });
        self.set_split_addresses(index, v4, v6)
    }

    /// Sets the node's addresses, IPv4 and IPv6 given apart.
    pub(in crate::dns::zone) fn set_split_addresses(
        &mut self,
        index: u32,
        v4: impl IntoIterator<Item = Ipv4Addr>,
        v6: impl IntoIterator<Item = Ipv6Addr>,
    ) -> Result<(), ZoneError> {
        let start = self.v4.len();
        self.v4.extend(v4);
        let a = Span::of(start, self.v4.len())?;
        let start = self.v6.len();
        self.v6.extend(v6);
        let aaaa = Span::of(start, self.v6.len())?;
        let node = &mut self.nodes[index as usize];
        node.a = a;
        node.aaaa = aaaa;
        Ok(())
    }

    /// Gives the host at `index` the SRV names `ports`: each one's first
    /// label (`_<port>`, wire form) and port. A host placed twice (drop-in
    /// mode's hand-written hosts) keeps the SRV names of its first placing
    /// that the second does not give again, as their own nodes did.
    pub(in crate::dns::zone) fn set_ports<'p>(
        &mut self,
        index: u32,
        ports: impl IntoIterator<Item = (&'p [u8], u16)> + Clone,
    ) -> Result<(), ZoneError> {
        let start = self.srv.len();
        let before = self.nodes[index as usize].srv;
        for i in before.range() {
            let kept = self.srv[i];
            let label = self.label(&kept);
            if !ports.clone().into_iter().any(|(l, _)| l == label) {
                self.srv.push(kept);
            }
        }
        for (label, port) in ports {
            let (label, label_len) = self.push_key(label)?;
            self.srv.push(SrvPort {
                label,
                label_len,
                port,
            });
        }
        self.nodes[index as usize].srv = Span::of(start, self.srv.len())?;
        Ok(())
    }

    pub(in crate::dns::zone) fn shrink_to_fit(&mut self) {
        let Self {
            table, nodes, keys, ..
        } = self;
        table.shrink_to_fit(|&i| {
            let node = &nodes[i as usize];
            hash_key(&keys[node.key as usize..][..usize::from(node.key_len)])
        });
        nodes.shrink_to_fit();
        keys.shrink_to_fit();
        self.v4.shrink_to_fit();
        self.v6.shrink_to_fit();
        self.srv.shrink_to_fit();
    }

    /// Shrunk to its contents, its digest sum taken: ready to publish.
    pub(in crate::dns::zone) fn seal(mut self) -> Arc<Self> {
        self.shrink_to_fit();
        self.sum = crate::dns::zone::digest::sum(&self);
        Arc::new(self)
    }
}
