//! The live connections: admission against the caps, lookup by flow id or by
//! remote address for reuse, and cleanup when a connection ends.
//!
//! One mutex guards it; it is touched once per connection event and once per
//! stream send, never per byte.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::flow::{FlowId, Transport};

/// How to reach a connection's task.
#[derive(Debug, Clone)]
pub(crate) struct ConnEntry {
    pub remote: SocketAddr,
    pub transport: Transport,
    pub outbound: mpsc::Sender<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    TotalCap,
    PerIpCap,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TotalCap => "connection limit reached",
            Self::PerIpCap => "per-IP connection limit reached",
        }
    }
}

#[derive(Debug)]
pub(crate) struct ConnTable {
    state: Mutex<State>,
    max_total: usize,
    max_per_ip: usize,
    next_flow: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    conns: HashMap<FlowId, ConnEntry>,
    by_addr: HashMap<(Transport, SocketAddr), FlowId>,
    per_ip: HashMap<IpAddr, usize>,
    inbound: usize,
}

impl ConnTable {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            max_total,
            max_per_ip,
            next_flow: AtomicU64::new(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every
        // critical section is a few map operations.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves a slot for an inbound connection from `ip`, held from accept
    /// through the handshakes to the end of the connection.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refusal> {
        let mut st = self.lock();
        if st.inbound >= self.max_total {
            return Err(Refusal::TotalCap);
        }
        let count = st.per_ip.entry(ip).or_default();
        if *count >= self.max_per_ip {
            return Err(Refusal::PerIpCap);
        }
        *count += 1;
        st.inbound += 1;
        Ok(Admission {
            table: Arc::clone(self),
            ip: Some(ip),
        })
    }

    /// Connections we open ourselves are not subject to the inbound caps.
    pub fn outbound(self: &Arc<Self>) -> Admission {
        Admission {
            table: Arc::clone(self),
            ip: None,
        }
    }

    /// Makes an admitted connection reachable for sends.
    pub fn register(
        &self,
        admission: Admission,
        transport: Transport,
        remote: SocketAddr,
        queue: usize,
    ) -> (Registration, mpsc::Receiver<Bytes>) {
        let flow = FlowId(self.next_flow.fetch_add(1, Relaxed));
        let (tx, rx) = mpsc::channel(queue.max(1));
        let entry = ConnEntry {
            remote,
            transport,
            outbound: tx,
        };
        let mut st = self.lock();
        st.conns.insert(flow, entry);
        // The newest connection to an address is the one to reuse.
        st.by_addr.insert((transport, remote), flow);
        drop(st);
        let reg = Registration {
            flow,
            key: (transport, remote),
            admission,
        };
        (reg, rx)
    }

    pub fn get(&self, flow: FlowId) -> Option<ConnEntry> {
        self.lock().conns.get(&flow).cloned()
    }

    pub fn find(&self, transport: Transport, remote: SocketAddr) -> Option<(FlowId, ConnEntry)> {
        let st = self.lock();
        let flow = *st.by_addr.get(&(transport, remote))?;
        st.conns.get(&flow).map(|e| (flow, e.clone()))
    }

    /// Forgets a connection; dropping its sender tells its task to close.
    pub fn evict(&self, flow: FlowId) {
        let mut st = self.lock();
        if let Some(entry) = st.conns.remove(&flow) {
            let key = (entry.transport, entry.remote);
            if st.by_addr.get(&key) == Some(&flow) {
                st.by_addr.remove(&key);
            }
        }
    }

    pub fn evict_all(&self) {
        let mut st = self.lock();
        st.conns.clear();
        st.by_addr.clear();
    }

    fn release(&self, ip: IpAddr) {
        let mut st = self.lock();
        st.inbound = st.inbound.saturating_sub(1);
        if let Some(count) = st.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                st.per_ip.remove(&ip);
            }
        }
    }
}

/// A reserved connection slot; released on drop.
#[derive(Debug)]
pub(crate) struct Admission {
    table: Arc<ConnTable>,
    ip: Option<IpAddr>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            self.table.release(ip);
        }
    }
}

/// A registered connection; unregistered (and its slot released) on drop.
#[derive(Debug)]
pub(crate) struct Registration {
    pub flow: FlowId,
    key: (Transport, SocketAddr),
    admission: Admission,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let table = &self.admission.table;
        let mut st = table.lock();
        st.conns.remove(&self.flow);
        if st.by_addr.get(&self.key) == Some(&self.flow) {
            st.by_addr.remove(&self.key);
        }
    }
}
