//! Batched UDP: `recvmmsg` and `sendmmsg` with every buffer, iovec and
//! address preallocated, so a media thread moves up to [`BATCH`] datagrams
//! per system call and allocates nothing per packet. IPv4 and IPv6.
//!
//! On targets other than Linux the same types fall back to one
//! `recv_from`/`send_to` per datagram.

use std::io;
use std::net::{SocketAddr, UdpSocket};

#[cfg(target_os = "linux")]
mod linux;

/// Datagrams per system call.
pub const BATCH: usize = 64;
/// The largest datagram handled; RTP over Ethernet stays far below.
pub const MAX_PACKET: usize = 2048;

/// Asks the kernel for big socket buffers (it caps them at rmem_max and
/// wmem_max): bursts of a whole tick's packets must not overflow them.
pub fn big_buffers(sock: &UdpSocket, bytes: usize) {
    let s = socket2::SockRef::from(sock);
    let _ = s.set_recv_buffer_size(bytes);
    let _ = s.set_send_buffer_size(bytes);
}

/// Up to [`BATCH`] datagrams queued, then sent with one system call.
pub struct Sender {
    bufs: Box<[[u8; MAX_PACKET]]>,
    lens: [usize; BATCH],
    to: [Option<SocketAddr>; BATCH],
    /// The source address of each, when not the socket's own (IPv4, a
    /// local address: a load generator playing many endpoints from one
    /// socket).
    from: [Option<std::net::Ipv4Addr>; BATCH],
    n: usize,
    /// Datagrams the kernel took.
    pub sent: u64,
    /// Datagrams it refused (full buffer, unreachable port): dropped.
    pub errors: u64,
}

impl Default for Sender {
    fn default() -> Self {
        Self::new()
    }
}

impl Sender {
    pub fn new() -> Self {
        Self {
            bufs: vec![[0; MAX_PACKET]; BATCH].into_boxed_slice(),
            lens: [0; BATCH],
            to: [None; BATCH],
            from: [None; BATCH],
            n: 0,
            sent: 0,
            errors: 0,
        }
    }

    /// The buffer for the next datagram, to `to`; [`Sender::commit`] it
    /// with its length. A full batch is sent first.
    pub fn next(&mut self, sock: &UdpSocket, to: SocketAddr) -> &mut [u8; MAX_PACKET] {
        if self.n == BATCH {
            self.flush(sock);
        }
        self.to[self.n] = Some(to);
        self.from[self.n] = None;
        &mut self.bufs[self.n]
    }

    /// As [`Sender::next`], sent from `from` (a local IPv4 address; the
    /// socket must be bound to 0.0.0.0 or that address's network) rather
    /// than the socket's own address. Linux only; elsewhere the socket's
    /// address is used.
    pub fn next_from(
        &mut self,
        sock: &UdpSocket,
        to: SocketAddr,
        from: std::net::Ipv4Addr,
    ) -> &mut [u8; MAX_PACKET] {
        if self.n == BATCH {
            self.flush(sock);
        }
        self.to[self.n] = Some(to);
        self.from[self.n] = Some(from);
        &mut self.bufs[self.n]
    }

    pub fn commit(&mut self, sock: &UdpSocket, len: usize) {
        self.lens[self.n] = len.min(MAX_PACKET);
        self.n += 1;
        if self.n == BATCH {
            self.flush(sock);
        }
    }

    /// Datagrams queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.n
    }

    /// Sends what is queued. Never blocks (on a non-blocking socket): what
    /// the kernel refuses is counted in `errors` and dropped.
    pub fn flush(&mut self, sock: &UdpSocket) {
        let n = std::mem::take(&mut self.n);
        let mut done = 0;
        while done < n {
            match self.send_some(sock, done, n) {
                Ok(0) | Err(_) => {
                    // The first of the rest was refused: drop it, go on.
                    self.errors += 1;
                    done += 1;
                }
                Ok(k) => {
                    self.sent += k as u64;
                    done += k;
                }
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn send_some(&mut self, sock: &UdpSocket, from: usize, to: usize) -> io::Result<usize> {
        linux::sendmmsg(
            sock,
            &mut self.bufs[from..to],
            &self.lens[from..to],
            &self.to[from..to],
            &self.from[from..to],
        )
    }

    #[cfg(not(target_os = "linux"))]
    fn send_some(&mut self, sock: &UdpSocket, from: usize, _to: usize) -> io::Result<usize> {
        match self.to[from] {
            Some(addr) => sock
                .send_to(&self.bufs[from][..self.lens[from]], addr)
                .map(|_| 1),
            None => Ok(0),
        }
    }
}

/// Control buffers for, and the arrival times read from, one batch.
#[cfg(target_os = "linux")]
type Stamps = (
    [linux::StampCmsg; BATCH],
    [Option<std::time::Duration>; BATCH],
);

/// Receives up to [`BATCH`] datagrams per system call.
pub struct Receiver {
    bufs: Box<[[u8; MAX_PACKET]]>,
    lens: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
    /// Kernel arrival times (since the Unix epoch), when asked for.
    #[cfg(target_os = "linux")]
    stamps: Option<Box<Stamps>>,
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

impl Receiver {
    pub fn new() -> Self {
        Self {
            bufs: vec![[0; MAX_PACKET]; BATCH].into_boxed_slice(),
            lens: [0; BATCH],
            from: [None; BATCH],
            #[cfg(target_os = "linux")]
            stamps: None,
        }
    }

    /// A receiver that reads each datagram's kernel arrival time too (see
    /// [`Receiver::drain_timed`]); turns the socket's timestamps on. A
    /// reader that drains only now and then still learns when each packet
    /// really came, which jitter statistics need.
    pub fn with_timestamps(sock: &UdpSocket) -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        {
            linux::enable_timestamps(sock)?;
            let mut r = Self::new();
            r.stamps = Some(Box::new(([linux::StampCmsg::ZERO; BATCH], [None; BATCH])));
            Ok(r)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = sock;
            Ok(Self::new())
        }
    }

    /// As [`Receiver::drain`], with each datagram's arrival time (since the
    /// Unix epoch) when the kernel gave one.
    pub fn drain_timed(
        &mut self,
        sock: &UdpSocket,
        mut each: impl FnMut(SocketAddr, &mut [u8], Option<std::time::Duration>),
    ) -> io::Result<usize> {
        let mut total = 0;
        loop {
            let n = match self.recv_some(sock) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Report the datagrams taken; the error comes back next time.
                Err(_) if total > 0 => return Ok(total),
                Err(e) => return Err(e),
            };
            for i in 0..n {
                if let Some(from) = self.from[i] {
                    let len = self.lens[i].min(MAX_PACKET);
                    let at = self.stamp(i);
                    each(from, &mut self.bufs[i][..len], at);
                }
            }
            total += n;
            if n < BATCH {
                return Ok(total);
            }
        }
    }

    fn stamp(&self, i: usize) -> Option<std::time::Duration> {
        #[cfg(target_os = "linux")]
        {
            self.stamps.as_ref().and_then(|s| s.1[i])
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = i;
            None
        }
    }

    /// Takes everything waiting on a non-blocking socket, calling `each`
    /// with the source and the bytes (mutable: a relay rewrites in place).
    /// Returns how many datagrams came. A batch that comes back short
    /// means the socket is empty, so an edge-triggered poller needs no
    /// extra call that ends in EAGAIN.
    pub fn drain(
        &mut self,
        sock: &UdpSocket,
        mut each: impl FnMut(SocketAddr, &mut [u8]),
    ) -> io::Result<usize> {
        self.drain_timed(sock, |from, data, _| each(from, data))
    }

    #[cfg(target_os = "linux")]
    fn recv_some(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        let stamps = self.stamps.as_deref_mut().map(|(c, t)| (c, t));
        linux::recvmmsg(sock, &mut self.bufs, &mut self.lens, &mut self.from, stamps)
    }

    #[cfg(not(target_os = "linux"))]
    fn recv_some(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        let (n, from) = sock.recv_from(&mut self.bufs[0])?;
        self.lens[0] = n;
        self.from[0] = Some(from);
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
        for s in [&a, &b] {
            s.set_nonblocking(true).expect("nonblocking");
            big_buffers(s, 1 << 20);
        }
        (a, b)
    }

    #[test]
    fn batches_arrive_whole_and_in_order() {
        let (a, b) = pair();
        let to = b.local_addr().expect("addr");
        let mut tx = Sender::new();
        // 150: two full batches and a part one.
        for i in 0..150u32 {
            let buf = tx.next(&a, to);
            buf[..4].copy_from_slice(&i.to_be_bytes());
            tx.commit(&a, 100 + (i as usize % 7));
        }
        tx.flush(&a);
        assert_eq!((tx.sent, tx.errors), (150, 0));
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut rx = Receiver::new();
        let mut seen = Vec::new();
        let from_a = a.local_addr().expect("addr");
        let n = rx
            .drain(&b, |from, data| {
                assert_eq!(from, from_a);
                let i = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                assert_eq!(data.len(), 100 + (i as usize % 7));
                seen.push(i);
            })
            .expect("drain");
        assert_eq!(n, 150);
        assert_eq!(seen, (0..150).collect::<Vec<_>>());
        assert_eq!(rx.drain(&b, |_, _| {}).expect("empty"), 0, "nothing more");
    }

    #[test]
    fn ipv6_too() {
        let Ok(a) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 loopback here
        };
        let b = UdpSocket::bind("[::1]:0").expect("bind");
        b.set_nonblocking(true).expect("nonblocking");
        let mut tx = Sender::new();
        tx.next(&a, b.local_addr().expect("addr"))[..3].copy_from_slice(b"abc");
        tx.commit(&a, 3);
        tx.flush(&a);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut got = Vec::new();
        Receiver::new()
            .drain(&b, |from, d| {
                assert_eq!(from, a.local_addr().expect("addr"));
                got.extend_from_slice(d);
            })
            .expect("drain");
        assert_eq!(got, b"abc");
    }

    #[test]
    fn one_socket_can_speak_from_many_loopback_addresses() {
        let generator = UdpSocket::bind("0.0.0.0:0").expect("bind");
        let port = generator.local_addr().expect("addr").port();
        let (_, b) = pair();
        let to = b.local_addr().expect("addr");
        let mut tx = Sender::new();
        for last in 2..6u8 {
            tx.next_from(&generator, to, std::net::Ipv4Addr::new(127, 0, 1, last))[0] = last;
            tx.commit(&generator, 1);
        }
        tx.flush(&generator);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut from = Vec::new();
        Receiver::new()
            .drain(&b, |f, d| {
                assert_eq!(f.port(), port);
                from.push((f.ip(), d[0]));
            })
            .expect("drain");
        let want: Vec<_> = (2..6u8)
            .map(|l| (std::net::IpAddr::from([127, 0, 1, l]), l))
            .collect();
        assert_eq!(from, want);
    }

    #[test]
    fn arrival_times_come_with_the_datagrams() {
        let (a, b) = pair();
        let mut rx = Receiver::with_timestamps(&b).expect("timestamps");
        // The kernel turns receive stamping on asynchronously; until then a
        // datagram is stamped when read. A node enables it at start.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let wall = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
        };
        let before = wall();
        a.send_to(b"x", b.local_addr().expect("addr"))
            .expect("send");
        let sent = wall();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let mut stamps = Vec::new();
        let read = wall();
        rx.drain_timed(&b, |_, _, t| stamps.push(t)).expect("drain");
        let t = stamps[0].expect("a kernel timestamp");
        // Stamped on arrival (between the send and its return), not when
        // read at least 30 ms later.
        let slack = std::time::Duration::from_millis(2);
        assert!(
            t + slack >= before && t <= sent + slack,
            "{t:?} not in {before:?}..{sent:?}"
        );
        assert!(
            read >= t + std::time::Duration::from_millis(25),
            "read at {read:?}, stamped {t:?}"
        );
    }

    #[test]
    fn a_refused_datagram_is_counted_and_the_rest_go() {
        let (a, b) = pair();
        let to = b.local_addr().expect("addr");
        let mut tx = Sender::new();
        // A datagram too big for UDP is refused by the kernel (EMSGSIZE
        // does not apply at 2048; use a v6 address on a v4 socket instead).
        tx.next(&a, "[::1]:9".parse().expect("addr"));
        tx.commit(&a, 10);
        tx.next(&a, to);
        tx.commit(&a, 10);
        tx.flush(&a);
        assert_eq!((tx.sent, tx.errors), (1, 1));
    }
}
