//! An in-process brain with a fresh SQLite store, a fake SBC that
//! records what it is told, and SIP user agents on real UDP sockets.
#![allow(dead_code)] // each test binary uses a different part

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brain::b2bua::{B2buaConfig, RateLimit};
use brain::nodes::{MediaRange, NodesConfig};
use brain::{Brain, BrainConfig, BrainHandle};
use proto::message::{
    Capacity, ErrorBody, Event, Hello, LegStats, Load, NodeId, ReplyBody, RequestBody, Role,
};
use proto::node::{NodeConfig, NodeHandler};
use proto::snapshot::{CallSnapshot, LegId};
use sip::dialog::Dialog;
use sip::sdp::SessionDescription;
use sip::{HeaderName, Message, Method};
use sip_transport::{ListenerConfig, Transport, TransportConfig};
use store::{Cdr, CdrFilter, NewBinding, NewSubscriber, Store, Subscriber};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

pub const DOMAIN: &str = "acme.test";
pub const SBC_IP: [u8; 4] = [127, 0, 0, 1];
pub const FIRST_PORT: u16 = 41000;
pub const LAST_PORT: u16 = 41199;
/// Bob's registered Contact, an address nobody can reach.
pub const BOB_CONTACT: &str = "sip:bob@192.0.2.99:5062";

/// What the fake SBC was asked, in order.
pub type Requests = Arc<Mutex<Vec<RequestBody>>>;

struct FakeSbc {
    requests: Requests,
}

impl NodeHandler for FakeSbc {
    fn hello(&mut self) -> Hello {
        let mut hello = Hello::new(
            NodeId("sbc-1".into()),
            Role::Sbc,
            Capacity {
                max_streams: 1000,
                workers: 1,
            },
        );
        hello.media_addrs = vec![IpAddr::from(SBC_IP)];
        hello
    }

    fn load(&mut self) -> Load {
        Load::default()
    }

    fn handle(&mut self, request: RequestBody) -> Result<ReplyBody, ErrorBody> {
        let reply = match &request {
            RequestBody::AssignRanges { .. } => ReplyBody::Done,
            RequestBody::ApplyCall(call) => ReplyBody::Applied {
                version: call.version,
            },
            RequestBody::ReleaseCall { call_id } => ReplyBody::Stats {
                call_id: call_id.clone(),
                legs: vec![(LegId(1), stats(100)), (LegId(2), stats(200))],
            },
            _ => ReplyBody::Done,
        };
        if let Ok(mut r) = self.requests.lock() {
            r.push(request);
        }
        Ok(reply)
    }
}

/// A mixer that records what it is told and answers like a real one.
struct FakeMixer {
    requests: Requests,
}

/// The fake mixer's one port.
pub const MIXER_PORT: u16 = 42000;

impl NodeHandler for FakeMixer {
    fn hello(&mut self) -> Hello {
        let mut hello = Hello::new(
            NodeId("mixer-1".into()),
            Role::Mixer,
            Capacity {
                max_streams: 1000,
                workers: 1,
            },
        );
        hello.media_addrs = vec![IpAddr::from(SBC_IP)];
        hello.ranges = vec![proto::snapshot::PortRange {
            id: proto::snapshot::RangeId(1),
            bind_ip: IpAddr::from(SBC_IP),
            vip: None,
            first_port: MIXER_PORT,
            last_port: MIXER_PORT,
        }];
        hello
    }

    fn load(&mut self) -> Load {
        Load::default()
    }

    fn handle(&mut self, request: RequestBody) -> Result<ReplyBody, ErrorBody> {
        let reply = match &request {
            RequestBody::ApplyConference(c) => ReplyBody::Applied { version: c.version },
            RequestBody::GetConferenceStats { conference_id }
            | RequestBody::ReleaseConference { conference_id } => ReplyBody::ConferenceStats {
                conference_id: conference_id.clone(),
                participants: (1..10).map(|p| (p, stats(300))).collect(),
            },
            _ => ReplyBody::Done,
        };
        if let Ok(mut r) = self.requests.lock() {
            r.push(request);
        }
        Ok(reply)
    }
}

fn stats(packets: u64) -> LegStats {
    LegStats {
        packets_in: packets,
        packets_out: packets + 1,
        bytes_in: packets * 172,
        bytes_out: (packets + 1) * 172,
        lost: 2,
        jitter_us: 1500,
        mos_x100: 430,
    }
}

pub struct Options {
    pub sbc: bool,
    /// A fake mixer joins too.
    pub mixer: bool,
    pub no_answer: Duration,
    /// RFC 3261 T1 for the brain's transactions (Timer B is 64·T1).
    pub t1: Duration,
    /// How long leg B may send nothing at all.
    pub no_response: Duration,
    /// Ask callers for digest credentials (the password is "secret").
    pub authenticate: bool,
    pub guard: sip_transport::guard::GuardConfig,
    /// Longest an answered call may last.
    pub max_duration: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sbc: true,
            mixer: false,
            no_answer: Duration::from_secs(30),
            t1: Duration::from_millis(500),
            no_response: Duration::from_secs(10),
            authenticate: false,
            guard: sip_transport::guard::GuardConfig::default(),
            max_duration: B2buaConfig::default().max_duration,
        }
    }
}

pub struct World {
    pub brain: Option<BrainHandle>,
    pub store: Store,
    pub sbc: Requests,
    /// What the fake mixer was asked.
    pub mixer: Requests,
    pub alice: Ua,
    pub bob: Ua,
    pub bob_sub: Subscriber,
    /// Dropping it stops the fake SBC.
    pub sbc_events: Option<mpsc::Sender<Event>>,
    pub mixer_events: Option<mpsc::Sender<Event>>,
    pub tenant: store::Tenant,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(b) = self.brain.take() {
            b.shutdown();
        }
    }
}

pub async fn world(opts: Options) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_in_dir(dir.path()).await.expect("store");
    let tenant = store.add_tenant("acme", DOMAIN).await.expect("tenant");
    let add = |user: &'static str, number: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .add_subscriber(&NewSubscriber {
                    tenant_id: tenant.id,
                    username: user,
                    password: "secret",
                    number,
                    display_name: None,
                    enabled: true,
                })
                .await
                .expect("subscriber")
        }
    };
    add("alice", Some("1001")).await;
    let bob_sub = add("bob", Some("1002")).await;
    add("carol", Some("1003")).await;

    let config = BrainConfig {
        sip: TransportConfig {
            listeners: vec![ListenerConfig::udp(SocketAddr::from(([127, 0, 0, 1], 0)))],
            ..TransportConfig::default()
        },
        transactions: sip::transaction::Config {
            t1: opts.t1,
            ..sip::transaction::Config::default()
        },
        node_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        media: NodesConfig {
            ranges: vec![MediaRange {
                bind_ip: IpAddr::from(SBC_IP),
                vip: None,
                first_port: FIRST_PORT,
                last_port: LAST_PORT,
                slice_ports: 100,
            }],
            ..NodesConfig::default()
        },
        b2bua: B2buaConfig {
            no_answer: opts.no_answer,
            no_response: opts.no_response,
            authenticate: opts.authenticate,
            invite_rate: RateLimit {
                per_second: 50,
                burst: 5,
                retry_after_secs: 7,
            },
            t1: opts.t1,
            max_duration: opts.max_duration,
            ..B2buaConfig::default()
        },
        guard: opts.guard,
        ..BrainConfig::default()
    };
    let brain = Brain::start(config, store.clone()).await.expect("brain");
    let sip_addr = brain.sip_addr(Transport::Udp).expect("udp listener");
    let requests = Requests::default();
    let mut sbc_events = None;
    if opts.sbc {
        let (tx, rx) = mpsc::channel(16);
        sbc_events = Some(tx);
        let handler = FakeSbc {
            requests: requests.clone(),
        };
        tokio::spawn(proto::node::run(
            brain.node_addr(),
            NodeConfig::default(),
            handler,
            rx,
        ));
        // Ready once the SBC has its ports.
        for _ in 0..100 {
            if brain.nodes().iter().any(|n| n.alive && n.free_pairs > 0)
                && requests.lock().is_ok_and(|r| {
                    r.iter()
                        .any(|q| matches!(q, RequestBody::AssignRanges { .. }))
                })
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(brain.nodes().iter().any(|n| n.alive), "SBC never came up");
    }
    let mixer = Requests::default();
    let mut mixer_events = None;
    if opts.mixer {
        let (tx, rx) = mpsc::channel(16);
        mixer_events = Some(tx);
        tokio::spawn(proto::node::run(
            brain.node_addr(),
            NodeConfig::default(),
            FakeMixer {
                requests: mixer.clone(),
            },
            rx,
        ));
        for _ in 0..100 {
            if brain
                .nodes()
                .iter()
                .any(|n| n.alive && n.role == Role::Mixer)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            brain
                .nodes()
                .iter()
                .any(|n| n.alive && n.role == Role::Mixer),
            "mixer never came up"
        );
    }
    let alice = Ua::new("alice", sip_addr).await;
    let bob = Ua::new("bob", sip_addr).await;
    let now = store::now_ms();
    // A contact behind NAT: only the binding's source address reaches bob.
    let contact = BOB_CONTACT.to_string();
    store
        .upsert_binding(&NewBinding {
            subscriber_id: bob_sub.id,
            contact: &contact,
            transport: "udp",
            source: bob.addr,
            flow_token: None,
            expires_at: now + 3_600_000,
            call_id: "reg-bob",
            cseq: 1,
            q_milli: None,
            instance_id: None,
            reg_id: None,
            user_agent: None,
            now,
        })
        .await
        .expect("binding");
    World {
        brain: Some(brain),
        store,
        sbc: requests,
        mixer,
        alice,
        bob,
        bob_sub,
        sbc_events,
        mixer_events,
        tenant,
        _dir: dir,
    }
}

impl World {
    pub fn brain(&self) -> &BrainHandle {
        self.brain.as_ref().expect("brain running")
    }

    /// The CDRs once `n` exist (they are written as the call ends).
    pub async fn cdrs(&self, n: usize) -> Vec<Cdr> {
        for _ in 0..250 {
            let cdrs = self
                .store
                .list_cdrs(&CdrFilter::default())
                .await
                .expect("cdrs");
            if cdrs.len() >= n {
                return cdrs;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("fewer than {n} CDRs");
    }

    /// Every ApplyCall the SBC received.
    pub fn applied(&self) -> Vec<CallSnapshot> {
        self.sbc
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|r| match r {
                RequestBody::ApplyCall(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn released(&self) -> usize {
        self.sbc
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| matches!(r, RequestBody::ReleaseCall { .. }))
            .count()
    }
}

/// A user agent on a UDP socket; messages are written by hand or with
/// the sip crate's dialogs.
pub struct Ua {
    pub user: &'static str,
    pub sock: UdpSocket,
    pub addr: SocketAddr,
    pub brain: SocketAddr,
}

impl Ua {
    pub async fn new(user: &'static str, brain: SocketAddr) -> Ua {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = sock.local_addr().expect("addr");
        Ua {
            user,
            sock,
            addr,
            brain,
        }
    }

    pub fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.user, self.addr)
    }

    pub fn via(&self) -> String {
        format!(
            "SIP/2.0/UDP {};branch={};rport",
            self.addr,
            sip::ids::new_branch()
        )
    }

    pub async fn send(&self, msg: &Message) {
        self.sock
            .send_to(&msg.to_bytes(), self.brain)
            .await
            .expect("send");
    }

    /// Sends a request built in a dialog, with a fresh Via.
    pub async fn send_request(&self, mut msg: Message) -> Message {
        msg.prepend_header(HeaderName::Via, self.via());
        self.send(&msg).await;
        msg
    }

    /// The next message that satisfies `want`; others (100 Trying,
    /// retransmissions) are skipped.
    pub async fn expect(&self, what: &str, want: impl Fn(&Message) -> bool) -> Message {
        self.expect_within(what, Duration::from_secs(5), want).await
    }

    /// As [`Ua::expect`], waiting up to `wait`.
    pub async fn expect_within(
        &self,
        what: &str,
        wait: Duration,
        want: impl Fn(&Message) -> bool,
    ) -> Message {
        let mut buf = vec![0u8; 65536];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf)).await;
            let Ok(Ok((n, _))) = got else {
                panic!("{}: no {what} within {wait:?}", self.user);
            };
            let Ok(msg) = sip::parse_datagram(buf[..n].to_vec()) else {
                continue;
            };
            if want(&msg) {
                return msg;
            }
        }
    }

    pub async fn expect_request(&self, method: Method) -> Message {
        let m = method.clone();
        self.expect(method.as_str(), move |msg| msg.method() == Some(&m))
            .await
    }

    pub async fn expect_status(&self, code: u16) -> Message {
        self.expect(&code.to_string(), move |msg| msg.status() == Some(code))
            .await
    }

    /// Nothing but `allowed` arrives for `wait`.
    pub async fn expect_silence(&self, wait: Duration, allowed: impl Fn(&Message) -> bool) {
        let mut buf = vec![0u8; 65536];
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Ok((n, _))) =
            tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf)).await
        {
            if let Ok(msg) = sip::parse_datagram(buf[..n].to_vec()) {
                assert!(allowed(&msg), "{}: unexpected {msg}", self.user);
            }
        }
    }
}

pub fn sdp(ip: &str, port: u16, direction: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
}

/// An INVITE from `from` to `to_user`, with `body` as SDP if given.
pub fn invite(from: &Ua, to_user: &str, body: Option<&str>) -> Message {
    let call_id = sip::ids::new_call_id("ua.test");
    let mut text = format!(
        "INVITE sip:{to_user}@{DOMAIN} SIP/2.0\r\n\
         Via: {}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{}@{DOMAIN}>;tag={}\r\n\
         To: <sip:{to_user}@{DOMAIN}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: {}\r\n",
        from.via(),
        from.user,
        sip::ids::new_tag(),
        from.contact(),
    );
    match body {
        Some(b) => text.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None => text.push_str("Content-Length: 0\r\n\r\n"),
    }
    sip::parse_datagram(text.into_bytes()).expect("invite parses")
}

pub fn body_sdp(msg: &Message) -> SessionDescription {
    let text = std::str::from_utf8(msg.body()).expect("utf8 body");
    SessionDescription::parse(text).expect("SDP body")
}

/// (address, port) of stream 0.
pub fn media_of(msg: &Message) -> (IpAddr, u16) {
    let sdp = body_sdp(msg);
    let ip = sdp
        .media_connection(0)
        .and_then(|c| c.ip())
        .expect("c= address");
    (ip, sdp.media[0].port)
}

/// The callee's side of leg B: a UAS dialog over the INVITE it got.
pub fn callee_dialog(ua: &Ua, invite: &Message) -> Dialog {
    Dialog::from_uas(invite, &sip::ids::new_tag(), &ua.contact()).expect("dialog")
}

/// 200 with SDP in `dialog`.
pub fn ok_with(dialog: &mut Dialog, req: &Message, body: Option<&str>) -> Message {
    let mut r = dialog.response(req, 200, None);
    if let Some(b) = body {
        r.set_body(b.to_string(), Some("application/sdp"));
    }
    r
}
