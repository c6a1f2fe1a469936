//! A zone's SOA record pre-encoded for the fast path ([`crate::dns::fast`]):
//! the bytes the general path writes for it after a question that ends in
//! the zone name, every name compressed to the zone, with the pointers
//! filled in per query. Made once per snapshot, when the zone is built.

use hickory_proto::rr::{LowerName, Name, RData};

use super::{CLASS_IN, Zone, wire};

/// A zone's SOA record as the general path writes it after a question
/// that ends in the zone name: every name compressed to the zone. The
/// pointers are filled in per query.
#[derive(Debug, Clone)]
pub(crate) struct FastSoa {
    /// The origin in lower-case wire form, e.g. `\x06global\x00`.
    pub(crate) wire: Box<[u8]>,
    /// The record, with placeholder pointers for its owner and for the
    /// zone part of MNAME and RNAME.
    pub(crate) record: Box<[u8]>,
    /// Offsets of the three placeholders in `record`.
    pub(crate) pointers: [usize; 3],
}

impl FastSoa {
    /// `None` when the SOA's names are not of the one shape the fast path
    /// writes (`<label>.<zone>`); that zone's queries take the general path.
    pub(crate) fn encode(zone: &Zone) -> Option<Self> {
        let RData::SOA(soa) = &zone.soa.data else {
            return None;
        };
        let origin = &zone.origin;
        let mname = LowerName::new(&soa.mname);
        let rname = LowerName::new(&soa.rname);
        let mname_label = single_label_below(&mname, origin)?;
        let rname_label = single_label_below(&rname, origin)?;

        let mut rdata = Vec::new();
        let mut pointers = Vec::new();
        for label in [mname_label, rname_label] {
            rdata.push(u8::try_from(label.len()).ok()?);
            rdata.extend_from_slice(label);
            pointers.push(rdata.len());
            rdata.extend_from_slice(&[0xC0, 0]);
        }
        rdata.extend_from_slice(&soa.serial.to_be_bytes());
        for timer in [soa.refresh, soa.retry, soa.expire] {
            rdata.extend_from_slice(&timer.to_be_bytes());
        }
        rdata.extend_from_slice(&soa.minimum.to_be_bytes());

        let mut record = vec![0xC0, 0];
        record.extend_from_slice(&6u16.to_be_bytes());
        record.extend_from_slice(&CLASS_IN.to_be_bytes());
        record.extend_from_slice(&zone.soa.ttl.to_be_bytes());
        record.extend_from_slice(&u16::try_from(rdata.len()).ok()?.to_be_bytes());
        let rdata_at = record.len();
        record.extend_from_slice(&rdata);
        Some(FastSoa {
            wire: wire(&Name::from(origin.clone())),
            record: record.into_boxed_slice(),
            pointers: [0, rdata_at + pointers[0], rdata_at + pointers[1]],
        })
    }
}

/// The label `x` when `name` is `x.<origin>`.
fn single_label_below<'n>(name: &'n LowerName, origin: &LowerName) -> Option<&'n [u8]> {
    if name.num_labels() != origin.num_labels() + 1 || !origin.zone_of(name) {
        return None;
    }
    name.iter().next()
}
