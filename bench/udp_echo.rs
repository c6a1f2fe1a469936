//! The benchmark's ceiling: a UDP server that does no DNS work at all. It
//! takes datagrams in batches with `recvmmsg`, sets the QR bit so the load
//! generator counts them as responses, and sends them back with
//! `sendmmsg`: the same system calls and batch size as globaldns' UDP
//! workers, minus the answering.
//!
//! Usage: `udp-echo ADDR:PORT`. Runs until killed.

use std::io::{IoSlice, IoSliceMut};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};

const BATCH: usize = 32;
const BUFFER: usize = 4096;

fn main() {
    let addr = std::env::args().nth(1).expect("usage: udp-echo ADDR:PORT");
    let socket = UdpSocket::bind(&addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let fd = socket.as_raw_fd();
    let mut buffers = vec![[0u8; BUFFER]; BATCH];
    let mut recv_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut send_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut lens = [0usize; BATCH];
    let mut peers: [Option<SockaddrStorage>; BATCH] = [None; BATCH];
    loop {
        let count = {
            let mut buffers = buffers.iter_mut();
            let mut slices: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
                [IoSliceMut::new(
                    &mut buffers.next().expect("BATCH buffers")[..],
                )]
            });
            let Ok(messages) = recvmmsg(
                fd,
                &mut recv_headers,
                slices.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) else {
                continue;
            };
            let mut count = 0;
            for (i, message) in messages.enumerate() {
                lens[i] = message.bytes;
                peers[i] = message.address;
                count += 1;
            }
            count
        };
        for (buffer, len) in buffers.iter_mut().zip(lens).take(count) {
            if len > 2 {
                buffer[2] |= 0x80;
            }
        }
        let mut slices: [[IoSlice<'_>; 1]; BATCH] = [[IoSlice::new(&[])]; BATCH];
        for (slice, (buffer, len)) in slices.iter_mut().zip(buffers.iter().zip(lens)) {
            *slice = [IoSlice::new(&buffer[..len])];
        }
        let _ = sendmmsg(
            fd,
            &mut send_headers,
            &slices[..count],
            &peers[..count],
            [],
            MsgFlags::empty(),
        );
    }
}
