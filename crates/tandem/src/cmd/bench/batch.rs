//! Batched UDP for the load generators: `sendmmsg` and `recvmmsg` over
//! IPv4 on a std socket, with every buffer and header preallocated, so a
//! generator costs far less than what it measures.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

pub const BATCH: usize = 64;
pub const MAX_PACKET: usize = 2048;

fn to_sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn from_sockaddr(s: &libc::sockaddr_in) -> SocketAddrV4 {
    SocketAddrV4::new(
        u32::from_be(s.sin_addr.s_addr).into(),
        u16::from_be(s.sin_port),
    )
}

/// Up to [`BATCH`] datagrams queued, then sent with one `sendmmsg`.
pub struct Sender {
    bufs: Vec<[u8; MAX_PACKET]>,
    lens: [usize; BATCH],
    addrs: [libc::sockaddr_in; BATCH],
    n: usize,
    pub sent: u64,
    pub errors: u64,
}

impl Sender {
    pub fn new() -> Self {
        Self {
            bufs: vec![[0; MAX_PACKET]; BATCH],
            lens: [0; BATCH],
            addrs: [to_sockaddr(SocketAddrV4::new(0.into(), 0)); BATCH],
            n: 0,
            sent: 0,
            errors: 0,
        }
    }

    /// The buffer for the next datagram to `to`; `commit` it with its length.
    pub fn next(&mut self, sock: &UdpSocket, to: SocketAddrV4) -> &mut [u8; MAX_PACKET] {
        if self.n == BATCH {
            self.flush(sock);
        }
        self.addrs[self.n] = to_sockaddr(to);
        &mut self.bufs[self.n]
    }

    pub fn commit(&mut self, sock: &UdpSocket, len: usize) {
        self.lens[self.n] = len.min(MAX_PACKET);
        self.n += 1;
        if self.n == BATCH {
            self.flush(sock);
        }
    }

    pub fn flush(&mut self, sock: &UdpSocket) {
        let mut done = 0;
        while done < self.n {
            let mut iovs: [libc::iovec; BATCH] = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; BATCH];
            // SAFETY: all-zero is a valid mmsghdr (null pointers, zero lengths).
            let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            let count = self.n - done;
            for i in 0..count {
                let k = done + i;
                iovs[i].iov_base = self.bufs[k].as_mut_ptr().cast();
                iovs[i].iov_len = self.lens[k];
                msgs[i].msg_hdr.msg_name = (&mut self.addrs[k] as *mut libc::sockaddr_in).cast();
                msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                msgs[i].msg_hdr.msg_iov = &mut iovs[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: `msgs[..count]` point at buffers, iovecs and addresses
            // that live until the call returns; the kernel only reads them.
            let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), count as u32, 0) };
            if r <= 0 {
                // A full socket buffer or a refused port: count the rest lost.
                self.errors += count as u64;
                break;
            }
            self.sent += r as u64;
            done += r as usize;
        }
        self.n = 0;
    }
}

/// Receives up to [`BATCH`] datagrams per call with one `recvmmsg`.
pub struct Receiver {
    bufs: Vec<[u8; MAX_PACKET]>,
    addrs: [libc::sockaddr_in; BATCH],
    lens: [usize; BATCH],
}

impl Receiver {
    pub fn new() -> Self {
        Self {
            bufs: vec![[0; MAX_PACKET]; BATCH],
            addrs: [to_sockaddr(SocketAddrV4::new(0.into(), 0)); BATCH],
            lens: [0; BATCH],
        }
    }

    /// What is waiting now (non-blocking); calls `each` per datagram.
    pub fn drain(&mut self, sock: &UdpSocket, mut each: impl FnMut(SocketAddr, &[u8])) -> usize {
        let mut total = 0;
        loop {
            let mut iovs: [libc::iovec; BATCH] = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; BATCH];
            // SAFETY: all-zero is a valid mmsghdr.
            let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for i in 0..BATCH {
                iovs[i].iov_base = self.bufs[i].as_mut_ptr().cast();
                iovs[i].iov_len = MAX_PACKET;
                msgs[i].msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
                msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                msgs[i].msg_hdr.msg_iov = &mut iovs[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: every header points at a live buffer of MAX_PACKET
            // bytes and a sockaddr_in it may fill; nothing outlives the call.
            let r = unsafe {
                libc::recvmmsg(
                    sock.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    BATCH as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r <= 0 {
                return total;
            }
            for (i, msg) in msgs.iter().take(r as usize).enumerate() {
                self.lens[i] = msg.msg_len as usize;
                let from = SocketAddr::V4(from_sockaddr(&self.addrs[i]));
                each(from, &self.bufs[i][..self.lens[i].min(MAX_PACKET)]);
            }
            total += r as usize;
            if (r as usize) < BATCH {
                return total;
            }
        }
    }
}

/// Asks the kernel for big socket buffers (it caps them at rmem_max).
pub fn big_buffers(sock: &UdpSocket) {
    let s = socket2::SockRef::from(sock);
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
}
