//! The Linux system calls, with addresses in `sockaddr_storage`.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

use crate::{BATCH, MAX_PACKET};

fn to_storage(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in; we write one whole value at its start.
            unsafe { std::ptr::write((out as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((out as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (family says so).
            let sin: &libc::sockaddr_in = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 (family says so).
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Room for one IP_PKTINFO control message, 8-byte aligned.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct PktinfoCmsg([u8; 32]);

pub(crate) fn sendmmsg(
    sock: &UdpSocket,
    bufs: &mut [[u8; MAX_PACKET]],
    lens: &[usize],
    to: &[Option<SocketAddr>],
    from: &[Option<Ipv4Addr>],
) -> io::Result<usize> {
    let count = bufs.len().min(lens.len()).min(to.len()).min(BATCH);
    // SAFETY: all-zero is a valid sockaddr_storage, iovec and mmsghdr.
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let mut cmsgs = [PktinfoCmsg([0; 32]); BATCH];
    for i in 0..count {
        let Some(addr) = to[i] else {
            return Ok(0);
        };
        let len = to_storage(addr, &mut names[i]);
        iovs[i].iov_base = bufs[i].as_mut_ptr().cast();
        iovs[i].iov_len = lens[i];
        msgs[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
        msgs[i].msg_hdr.msg_namelen = len;
        msgs[i].msg_hdr.msg_iov = &mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        if let Some(src) = from.get(i).copied().flatten() {
            let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::in_pktinfo>() as u32) };
            msgs[i].msg_hdr.msg_control = cmsgs[i].0.as_mut_ptr().cast();
            msgs[i].msg_hdr.msg_controllen = space as usize;
            // SAFETY: the control buffer is 32 aligned bytes, room for one
            // in_pktinfo message (CMSG_SPACE = 16 + 12 rounded to 32), and
            // msg_control/msg_controllen describe it.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&msgs[i].msg_hdr);
                (*c).cmsg_level = libc::IPPROTO_IP;
                (*c).cmsg_type = libc::IP_PKTINFO;
                (*c).cmsg_len =
                    libc::CMSG_LEN(std::mem::size_of::<libc::in_pktinfo>() as u32) as usize;
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(src).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), info);
            }
        }
    }
    // SAFETY: msgs[..count] point at buffers, iovecs and addresses that
    // live until the call returns.
    let r = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            count as u32,
            libc::MSG_DONTWAIT,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// Asks the kernel to stamp each datagram with its arrival time.
pub(crate) fn enable_timestamps(sock: &UdpSocket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt with a valid int option value and its size.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Room for one SCM_TIMESTAMPNS control message, 8-byte aligned.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub(crate) struct StampCmsg([u8; 32]);

impl StampCmsg {
    pub const ZERO: StampCmsg = StampCmsg([0; 32]);
}

pub(crate) fn recvmmsg(
    sock: &UdpSocket,
    bufs: &mut [[u8; MAX_PACKET]],
    lens: &mut [usize; BATCH],
    from: &mut [Option<SocketAddr>; BATCH],
    stamps: Option<(
        &mut [StampCmsg; BATCH],
        &mut [Option<std::time::Duration>; BATCH],
    )>,
) -> io::Result<usize> {
    let count = bufs.len().min(BATCH);
    // SAFETY: all-zero is a valid sockaddr_storage, iovec and mmsghdr.
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let (mut cmsgs, times) = match stamps {
        Some((c, t)) => (Some(c), Some(t)),
        None => (None, None),
    };
    for i in 0..count {
        iovs[i].iov_base = bufs[i].as_mut_ptr().cast();
        iovs[i].iov_len = MAX_PACKET;
        msgs[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
        msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        msgs[i].msg_hdr.msg_iov = &mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        if let Some(c) = cmsgs.as_mut() {
            msgs[i].msg_hdr.msg_control = c[i].0.as_mut_ptr().cast();
            msgs[i].msg_hdr.msg_controllen = 32;
        }
    }
    // SAFETY: every header points at a live buffer of MAX_PACKET bytes and
    // a sockaddr_storage the kernel may fill; nothing outlives the call.
    let r = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            count as u32,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = r as usize;
    for i in 0..n {
        // A datagram cut to fit is longer than we take: its length says so.
        lens[i] = if msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            MAX_PACKET
        } else {
            msgs[i].msg_len as usize
        };
        from[i] = from_storage(&names[i]);
    }
    if let Some(times) = times {
        for (i, msg) in msgs.iter().take(n).enumerate() {
            times[i] = None;
            // SAFETY: the kernel filled msg_control/msg_controllen; the
            // CMSG_* walkers stay inside that buffer.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg.msg_hdr);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET
                        && (*c).cmsg_type == libc::SCM_TIMESTAMPNS
                    {
                        let ts: libc::timespec =
                            std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                        times[i] = Some(std::time::Duration::new(
                            ts.tv_sec as u64,
                            ts.tv_nsec as u32,
                        ));
                    }
                    c = libc::CMSG_NXTHDR(&msg.msg_hdr, c);
                }
            }
        }
    }
    Ok(n)
}
