//! The registrar end to end: a real endpoint on 127.0.0.1 UDP, a fresh
//! SQLite store, and the test as the phone, with a plain UDP socket sending
//! hand-written REGISTERs and answering digest challenges.

use std::net::SocketAddr;
use std::time::Duration;

use brain::auth::Authenticator;
use brain::metrics::Metrics;
use brain::registrar::{Lookup, Registrar, RegistrarConfig};
use sip::auth::{Algorithm, Challenge};
use sip::transaction::Event;
use sip::{HeaderName, Message, Method};
use sip_transport::ListenerConfig;
use sip_transport::endpoint::{Endpoint, EndpointConfig};
use sip_transport::guard::GuardConfig;
use store::{NewSubscriber, Store, Tenant};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const DOMAIN: &str = "sip.example.com";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// Every test runs under this bound.
async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    timeout(Duration::from_secs(30), f)
        .await
        .expect("test took too long");
}

struct Brain {
    auth: Authenticator,
    registrar: Registrar,
    metrics: Metrics,
    addr: SocketAddr,
    tenant: Tenant,
    store: Store,
}

/// A tenant with alice (enabled, number +15550001), bob, and carol (disabled).
async fn seed(store: &Store) -> Tenant {
    let tenant = store.add_tenant("acme", DOMAIN).await.expect("tenant");
    for (user, number, enabled) in [
        ("alice", Some("+15550001"), true),
        ("bob", None, true),
        ("carol", None, false),
    ] {
        store
            .add_subscriber(&NewSubscriber {
                tenant_id: tenant.id,
                username: user,
                password: "s3cret",
                number,
                display_name: None,
                enabled,
            })
            .await
            .expect("subscriber");
    }
    tenant
}

/// Starts an endpoint and a registrar over `store`, and a task that feeds
/// the registrar as the brain would.
async fn start(store: Store, config: RegistrarConfig, guard: GuardConfig) -> Brain {
    let mut cfg = EndpointConfig {
        guard,
        ..EndpointConfig::default()
    };
    cfg.transport.listeners = vec![ListenerConfig::udp("127.0.0.1:0".parse().expect("addr"))];
    // Short timers so an unanswered keep-alive times out within the test.
    cfg.transactions.t1 = Duration::from_millis(20);
    cfg.transactions.t2 = Duration::from_millis(80);
    cfg.transactions.t4 = Duration::from_millis(100);
    let (endpoint, mut events) = Endpoint::start(cfg).await.expect("endpoint");
    let addr = endpoint.transport().listeners()[0].1;
    let metrics = Metrics::new();
    let auth =
        Authenticator::new(store.clone(), endpoint.clone(), SECRET).with_metrics(metrics.clone());
    let registrar =
        Registrar::new(store.clone(), endpoint, auth.clone(), config).with_metrics(metrics.clone());
    let tenant = store
        .tenant_by_domain(DOMAIN)
        .await
        .expect("store")
        .expect("tenant");
    let (r, m) = (registrar.clone(), metrics.clone());
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                Event::NewRequest { tx, msg, from } => {
                    if let Some(method) = msg.method() {
                        m.sip_request(method);
                    }
                    if msg.method() == Some(&Method::Register) {
                        let r = r.clone();
                        tokio::spawn(async move { r.on_register(tx, msg, from).await });
                    }
                }
                ev => {
                    r.on_event(&ev).await;
                }
            }
        }
    });
    Brain {
        auth,
        registrar,
        metrics,
        addr,
        tenant,
        store,
    }
}

async fn brain_with(config: RegistrarConfig, guard: GuardConfig) -> (Brain, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_in_dir(dir.path()).await.expect("store");
    seed(&store).await;
    (start(store, config, guard).await, dir)
}

async fn brain() -> (Brain, tempfile::TempDir) {
    brain_with(RegistrarConfig::default(), GuardConfig::default()).await
}

/// The phone: one socket, one Call-ID, a growing CSeq, and the last
/// challenge, reused with a growing nonce count.
struct Phone {
    sock: UdpSocket,
    server: SocketAddr,
    user: String,
    password: String,
    domain: String,
    call_id: String,
    cseq: u32,
    challenge: Option<Challenge>,
    nc: u32,
}

impl Phone {
    async fn new(server: SocketAddr, user: &str, password: &str) -> Phone {
        Phone {
            sock: UdpSocket::bind("127.0.0.1:0").await.expect("bind"),
            server,
            user: user.into(),
            password: password.into(),
            domain: DOMAIN.into(),
            call_id: sip::ids::new_call_id("phone.test"),
            cseq: 0,
            challenge: None,
            nc: 0,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("local addr")
    }

    fn ruri(&self) -> String {
        format!("sip:{}", self.domain)
    }

    /// Sends a REGISTER; `to_user` is the AOR's user, `headers` extra lines.
    async fn send(&mut self, to_user: &str, headers: &[String], authorization: Option<String>) {
        self.cseq += 1;
        let mut text = format!(
            "REGISTER {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{to_user}@{domain}>;tag=ph1\r\n\
             To: <sip:{to_user}@{domain}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             User-Agent: test-phone/1.0\r\n",
            ruri = self.ruri(),
            me = self.addr(),
            branch = sip::ids::new_branch(),
            domain = self.domain,
            call_id = self.call_id,
            cseq = self.cseq,
        );
        for h in headers {
            text.push_str(h);
            text.push_str("\r\n");
        }
        if let Some(a) = authorization {
            text.push_str(&format!("Authorization: {a}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        self.sock
            .send_to(text.as_bytes(), self.server)
            .await
            .expect("send");
    }

    /// The next response, or `None` after `wait` of silence. Requests the
    /// brain sends (keep-alives) are skipped.
    async fn recv_within(&self, wait: Duration) -> Option<Message> {
        let mut buf = vec![0u8; 65_535];
        loop {
            let (n, _) = timeout(wait, self.sock.recv_from(&mut buf))
                .await
                .ok()?
                .ok()?;
            let msg = sip::parse_datagram(buf[..n].to_vec()).expect("parse");
            if !msg.is_request() {
                return Some(msg);
            }
        }
    }

    async fn recv(&self) -> Message {
        self.recv_within(Duration::from_secs(5))
            .await
            .expect("a response")
    }

    /// Credentials for the current challenge with the next nonce count.
    fn credentials(&mut self, password: &str) -> String {
        self.nc += 1;
        let ch = self.challenge.as_ref().expect("a challenge");
        sip::auth::respond(
            ch,
            &self.user,
            password,
            "REGISTER",
            &self.ruri(),
            None,
            "cnonce1",
            self.nc,
        )
        .expect("respond")
        .to_string()
    }

    /// Sends without credentials and keeps the SHA-256 challenge.
    async fn fetch_challenge(&mut self, to_user: &str) -> Message {
        self.send(to_user, &[], None).await;
        let resp = self.recv().await;
        assert_eq!(resp.status(), Some(401), "{resp}");
        let chosen = resp
            .header_lines(HeaderName::WwwAuthenticate)
            .filter_map(|v| Challenge::parse(v).ok())
            .find(|c| c.algorithm() == Algorithm::Sha256)
            .expect("a SHA-256 challenge");
        self.challenge = Some(chosen);
        self.nc = 0;
        resp
    }

    /// An authenticated REGISTER for the phone's own AOR.
    async fn register(&mut self, headers: &[String]) -> Message {
        if self.challenge.is_none() {
            let user = self.user.clone();
            self.fetch_challenge(&user).await;
        }
        let password = self.password.clone();
        let creds = self.credentials(&password);
        let user = self.user.clone();
        self.send(&user, headers, Some(creds)).await;
        self.recv().await
    }
}

fn contacts(resp: &Message) -> Vec<String> {
    resp.values(HeaderName::Contact)
        .map(str::to_owned)
        .collect()
}

fn contact(uri: &str, expires: Option<u32>) -> String {
    match expires {
        Some(e) => format!("Contact: <{uri}>;expires={e}"),
        None => format!("Contact: <{uri}>"),
    }
}

#[tokio::test]
async fn challenge_then_register() {
    bounded(async {
        let (b, _dir) = brain().await;
        let mut phone = Phone::new(b.addr, "alice", "s3cret").await;
        let challenge = phone.fetch_challenge("alice").await;
        // Two challenges, MD5 first for old phones, then SHA-256 (RFC 8760).
        let offered: Vec<Challenge> = challenge
            .header_lines(HeaderName::WwwAuthenticate)
            .map(|v| Challenge::parse(v).expect("challenge"))
            .collect();
        assert_eq!(offered.len(), 2);
        assert_eq!(offered[0].algorithm(), Algorithm::Md5);
        assert_eq!(offered[1].algorithm(), Algorithm::Sha256);
        assert!(offered.iter().all(|c| c.realm == DOMAIN && !c.stale));

        let me = format!("sip:alice@{}", phone.addr());
        let resp = phone.register(&[contact(&me, Some(600))]).await;
        assert_eq!(resp.status(), Some(200), "{resp}");
        assert_eq!(contacts(&resp), vec![format!("<{me}>;expires=600")]);
        assert!(
            resp.header_by_name("Date")
                .is_some_and(|d| d.ends_with(" GMT"))
        );
        assert!(resp.to_tag().is_some());

        // MD5 works too, for old phones.
        let mut old = Phone::new(b.addr, "bob", "s3cret").await;
        old.send("bob", &[], None).await;
        let resp = old.recv().await;
        old.challenge = resp
            .header_lines(HeaderName::WwwAuthenticate)
            .filter_map(|v| Challenge::parse(v).ok())
            .find(|c| c.algorithm() == Algorithm::Md5);
        let bob = format!("sip:bob@{}", old.addr());
        let resp = old.register(&[contact(&bob, None)]).await;
        assert_eq!(resp.status(), Some(200), "{resp}");
        assert_eq!(contacts(&resp), vec![format!("<{bob}>;expires=3600")]);
    })
    .await;
}

#[tokio::test]
async fn bindings_are_added_refreshed_and_removed() {
    bounded(async {
        let (b, _dir) = brain().await;
        let mut phone = Phone::new(b.addr, "alice", "s3cret").await;
        let a = "sip:alice@192.0.2.10:5060";
        let c = "sip:alice@192.0.2.11:5060";

        let resp = phone.register(&[contact(a, Some(600))]).await;
        assert_eq!(contacts(&resp).len(), 1, "{resp}");
        // A refresh keeps one binding, with the new expiry.
        let resp = phone.register(&[contact(a, Some(900))]).await;
        assert_eq!(contacts(&resp), vec![format!("<{a}>;expires=900")]);
        // A second contact makes two; the Expires header applies to it.
        let resp = phone
            .register(&[contact(c, None), "Expires: 1200".into()])
            .await;
        let mut got = contacts(&resp);
        got.sort();
        assert_eq!(
            got,
            vec![format!("<{a}>;expires=900"), format!("<{c}>;expires=1200")]
        );
        // A query (no Contact) lists them and changes nothing.
        let resp = phone.register(&[]).await;
        assert_eq!(resp.status(), Some(200));
        assert_eq!(contacts(&resp).len(), 2);
        // expires=0 removes one.
        let resp = phone.register(&[contact(a, Some(0))]).await;
        assert_eq!(contacts(&resp), vec![format!("<{c}>;expires=1200")]);
        // `*` needs Expires: 0 and no other contact.
        let resp = phone
            .register(&["Contact: *".into(), "Expires: 60".into()])
            .await;
        assert_eq!(resp.status(), Some(400), "{resp}");
        let resp = phone
            .register(&["Contact: *".into(), contact(a, None), "Expires: 0".into()])
            .await;
        assert_eq!(resp.status(), Some(400), "{resp}");
        // Out of order: the same Call-ID with a CSeq below the stored one.
        // (Numbers never used before, or the transaction layer would take it
        // for a merged request.)
        phone.cseq += 100;
        let resp = phone.register(&[contact(c, Some(1200))]).await;
        assert_eq!(resp.status(), Some(200), "{resp}");
        phone.cseq -= 50;
        let resp = phone.register(&[contact(c, Some(300))]).await;
        assert_eq!(resp.status(), Some(500), "{resp}");
        phone.cseq += 100;
        let resp = phone.register(&[]).await;
        assert_eq!(contacts(&resp), vec![format!("<{c}>;expires=1200")]);
        // `*` with Expires: 0 removes them all.
        let resp = phone
            .register(&["Contact: *".into(), "Expires: 0".into()])
            .await;
        assert_eq!(resp.status(), Some(200), "{resp}");
        assert!(contacts(&resp).is_empty());
        let found = b
            .registrar
            .lookup(&b.tenant, "alice", store::now_ms())
            .await
            .expect("lookup");
        assert!(matches!(found, Lookup::Offline(_)), "{found:?}");
    })
    .await;
}

#[tokio::test]
async fn expiry_limits() {
    bounded(async {
        let (b, _dir) = brain().await;
        let mut phone = Phone::new(b.addr, "alice", "s3cret").await;
        let a = "sip:alice@192.0.2.10";
        let resp = phone.register(&[contact(a, Some(30))]).await;
        assert_eq!(resp.status(), Some(423), "{resp}");
        assert_eq!(resp.header(HeaderName::MinExpires), Some("60"));
        assert!(contacts(&resp).is_empty());
        // Above the maximum is cut to it.
        let resp = phone.register(&[contact(a, Some(7200))]).await;
        assert_eq!(contacts(&resp), vec![format!("<{a}>;expires=3600")]);
        // q and RFC 5626 parameters are kept.
        let resp = phone
            .register(&[format!(
                "Contact: <{a}>;q=0.5;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\";reg-id=1"
            )])
            .await;
        assert_eq!(
            contacts(&resp),
            vec![format!(
                "<{a}>;expires=3600;q=0.5;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\";reg-id=1"
            )]
        );
    })
    .await;
}

#[tokio::test]
async fn wrong_password_is_refused_then_ignored() {
    bounded(async {
        let guard = GuardConfig {
            offences_per_sec: 0.001,
            burst: 4.0,
            ban: Duration::from_secs(60),
            ..GuardConfig::default()
        };
        let (b, _dir) = brain_with(RegistrarConfig::default(), guard).await;
        let mut phone = Phone::new(b.addr, "alice", "wrong").await;
        phone.fetch_challenge("alice").await;
        let mut answers = Vec::new();
        for _ in 0..8 {
            let creds = phone.credentials("wrong");
            phone
                .send(
                    "alice",
                    &[contact("sip:alice@192.0.2.10", None)],
                    Some(creds),
                )
                .await;
            match phone.recv_within(Duration::from_millis(300)).await {
                Some(r) => answers.push(r.status()),
                None => break,
            }
        }
        // The budget of 4 is answered with 403, then silence.
        assert_eq!(answers, vec![Some(403); 4]);
        // Banned: even a plain REGISTER gets nothing now.
        phone.send("alice", &[], None).await;
        assert!(
            phone
                .recv_within(Duration::from_millis(300))
                .await
                .is_none()
        );
        let text = b.metrics.encode();
        assert!(
            text.contains("tandem_auth_failures_total{reason=\"bad_response\"} 5"),
            "{text}"
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_users_domains_and_other_refusals() {
    bounded(async {
        let (b, _dir) = brain().await;
        // An unknown user gets the same 403 as a wrong password: the answers
        // do not tell which users exist.
        let mut mallory = Phone::new(b.addr, "mallory", "s3cret").await;
        let resp = mallory.register(&[contact("sip:m@192.0.2.66", None)]).await;
        assert_eq!(resp.status(), Some(403), "{resp}");
        // A disabled subscriber, right password: 403.
        let mut carol = Phone::new(b.addr, "carol", "s3cret").await;
        let resp = carol.register(&[contact("sip:c@192.0.2.67", None)]).await;
        assert_eq!(resp.status(), Some(403), "{resp}");
        // alice's credentials for bob's address of record: 403.
        let mut alice = Phone::new(b.addr, "alice", "s3cret").await;
        alice.fetch_challenge("bob").await;
        let creds = alice.credentials("s3cret");
        alice
            .send("bob", &[contact("sip:a@192.0.2.68", None)], Some(creds))
            .await;
        assert_eq!(alice.recv().await.status(), Some(403));
        // ... but her number is her own address of record.
        let creds = alice.credentials("s3cret");
        alice
            .send("+15550001", &[contact("sip:a@192.0.2.68", None)], Some(creds))
            .await;
        assert_eq!(alice.recv().await.status(), Some(200));
        // An unknown domain: 404, before any challenge.
        let mut lost = Phone::new(b.addr, "alice", "s3cret").await;
        lost.domain = "nowhere.example.org".into();
        lost.send("alice", &[], None).await;
        let resp = lost.recv().await;
        assert_eq!(resp.status(), Some(404), "{resp}");
        // A stale or foreign nonce gets a fresh challenge, not a 403.
        let mut other = Phone::new(b.addr, "bob", "s3cret").await;
        other.challenge = Some(
            Challenge::parse(&format!(
                "Digest realm=\"{DOMAIN}\", nonce=\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", qop=\"auth\", algorithm=SHA-256"
            ))
            .expect("challenge"),
        );
        let resp = other.register(&[]).await;
        assert_eq!(resp.status(), Some(401), "{resp}");
    })
    .await;
}

#[tokio::test]
async fn ip_request_uri_falls_back_to_the_aor_domain() {
    bounded(async {
        let (b, _dir) = brain().await;
        let mut phone = Phone::new(b.addr, "alice", "s3cret").await;
        // The phone addresses the box by IP; its AOR names the domain.
        phone.domain = "127.0.0.1".into();
        phone.send("alice", &[], None).await;
        let resp = phone.recv().await;
        assert_eq!(resp.status(), Some(404), "{resp}");
        // (404: the AOR sip:alice@127.0.0.1 is no tenant's either.) With the
        // AOR in the tenant's domain the IP Request-URI is accepted.
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let text = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@{DOMAIN}>;tag=x\r\n\
             To: <sip:alice@{DOMAIN}>\r\nCall-ID: ip-ruri@test\r\n\
             CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
            me = sock.local_addr().expect("addr"),
            branch = sip::ids::new_branch(),
        );
        sock.send_to(text.as_bytes(), b.addr).await.expect("send");
        let mut buf = vec![0u8; 65_535];
        let (n, _) = timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("answer")
            .expect("recv");
        let resp = sip::parse_datagram(buf[..n].to_vec()).expect("parse");
        assert_eq!(resp.status(), Some(401), "{resp}");
        let ch = Challenge::parse(resp.header(HeaderName::WwwAuthenticate).expect("ch"))
            .expect("challenge");
        assert_eq!(ch.realm, DOMAIN);
    })
    .await;
}

#[tokio::test]
async fn the_binding_records_the_source_address() {
    bounded(async {
        let (b, _dir) = brain().await;
        let mut phone = Phone::new(b.addr, "alice", "s3cret").await;
        // The Contact names a private address; the packets come from the
        // phone's socket, as they would through a NAT.
        let resp = phone
            .register(&[contact("sip:alice@10.0.0.5:5060", None)])
            .await;
        assert_eq!(resp.status(), Some(200), "{resp}");
        let found = b
            .registrar
            .lookup(&b.tenant, "alice", store::now_ms())
            .await
            .expect("lookup");
        let Lookup::Online(sub, bindings) = found else {
            panic!("alice should be online: {found:?}");
        };
        assert_eq!(sub.username, "alice");
        assert_eq!(bindings.len(), 1);
        assert_eq!(bindings[0].contact, "sip:alice@10.0.0.5:5060");
        assert_eq!(bindings[0].source, phone.addr());
        assert_eq!(bindings[0].transport, "udp");
        assert_eq!(bindings[0].user_agent.as_deref(), Some("test-phone/1.0"));
        // By number, too; unknown and disabled subscribers are Unknown.
        let by_number = b
            .registrar
            .lookup(&b.tenant, "+15550001", store::now_ms())
            .await
            .expect("lookup");
        assert!(matches!(by_number, Lookup::Online(..)));
        for who in ["nobody", "carol"] {
            let l = b
                .registrar
                .lookup(&b.tenant, who, store::now_ms())
                .await
                .expect("lookup");
            assert_eq!(l, Lookup::Unknown, "{who}");
        }
        let l = b
            .registrar
            .lookup(&b.tenant, "bob", store::now_ms())
            .await
            .expect("lookup");
        assert!(matches!(l, Lookup::Offline(_)), "{l:?}");
    })
    .await;
}

#[tokio::test]
async fn registrations_survive_a_restart() {
    bounded(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let phone_addr;
        {
            let store = Store::open_in_dir(dir.path()).await.expect("store");
            seed(&store).await;
            let b = start(store, RegistrarConfig::default(), GuardConfig::default()).await;
            let mut phone = Phone::new(b.addr, "alice", "s3cret").await;
            phone_addr = phone.addr();
            let resp = phone
                .register(&[contact("sip:alice@10.0.0.5:5060", None)])
                .await;
            assert_eq!(resp.status(), Some(200), "{resp}");
            b.store.close().await;
        }
        let store = Store::open_in_dir(dir.path()).await.expect("reopen");
        let b = start(store, RegistrarConfig::default(), GuardConfig::default()).await;
        let found = b
            .registrar
            .lookup(&b.tenant, "alice", store::now_ms())
            .await
            .expect("lookup");
        let Lookup::Online(_, bindings) = found else {
            panic!("alice should still be online: {found:?}");
        };
        assert_eq!(bindings[0].source, phone_addr);
        // The new brain picked the NAT'd binding up for keep-alives.
        for _ in 0..100 {
            if b.registrar.keepalive_targets() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(b.registrar.keepalive_targets(), 1);
        // The gauge is refreshed by the same background task; on a loaded
        // machine it may come a moment later.
        for _ in 0..100 {
            if b.metrics.encode().contains("tandem_registrations 1") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            b.metrics.encode().contains("tandem_registrations 1"),
            "{}",
            b.metrics.encode()
        );
    })
    .await;
}

#[tokio::test]
async fn nat_keepalives_reach_the_source_and_drop_a_dead_phone() {
    bounded(async {
        let config = RegistrarConfig {
            keepalive_interval: Duration::from_millis(100),
            ..RegistrarConfig::default()
        };
        let (b, _dir) = brain_with(config, GuardConfig::default()).await;
        // A phone whose Contact is its real address needs no keep-alive.
        let mut direct = Phone::new(b.addr, "bob", "s3cret").await;
        let me = format!("sip:bob@{}", direct.addr());
        let resp = direct.register(&[contact(&me, None)]).await;
        assert_eq!(resp.status(), Some(200), "{resp}");
        assert_eq!(b.registrar.keepalive_targets(), 0);

        let mut phone = Phone::new(b.addr, "alice", "s3cret").await;
        let resp = phone
            .register(&[contact("sip:alice@10.0.0.5:5060", None)])
            .await;
        assert_eq!(resp.status(), Some(200), "{resp}");
        assert_eq!(b.registrar.keepalive_targets(), 1);

        // An OPTIONS arrives at the phone's source socket; answer a few.
        let mut buf = vec![0u8; 65_535];
        for _ in 0..3 {
            let (n, from) = timeout(Duration::from_secs(5), phone.sock.recv_from(&mut buf))
                .await
                .expect("a keep-alive")
                .expect("recv");
            let req = sip::parse_datagram(buf[..n].to_vec()).expect("parse");
            assert_eq!(req.method(), Some(&Method::Options), "{req}");
            assert_eq!(
                req.request_uri_text().as_deref(),
                Some("sip:alice@10.0.0.5:5060")
            );
            assert_eq!(from, b.addr);
            let ok = Message::response_to(&req, 200, None);
            phone
                .sock
                .send_to(&ok.to_bytes(), from)
                .await
                .expect("answer");
        }
        assert!(matches!(
            b.registrar
                .lookup(&b.tenant, "alice", store::now_ms())
                .await
                .expect("lookup"),
            Lookup::Online(..)
        ));
        // The phone goes silent: its keep-alive times out (64·T1 = 1.28 s
        // here) and the binding is dropped.
        let mut gone = false;
        for _ in 0..200 {
            let l = b
                .registrar
                .lookup(&b.tenant, "alice", store::now_ms())
                .await
                .expect("lookup");
            if matches!(l, Lookup::Offline(_)) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone, "the dead phone's binding was not dropped");
        assert_eq!(b.registrar.keepalive_targets(), 0);
        // bob's direct binding is untouched.
        assert!(matches!(
            b.registrar
                .lookup(&b.tenant, "bob", store::now_ms())
                .await
                .expect("lookup"),
            Lookup::Online(..)
        ));
    })
    .await;
}

/// The next OPTIONS the phone's socket receives.
async fn next_options(sock: &UdpSocket) -> (Message, SocketAddr) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, from) = timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("a keep-alive")
            .expect("recv");
        let req = sip::parse_datagram(buf[..n].to_vec()).expect("parse");
        if req.method() == Some(&Method::Options) {
            return (req, from);
        }
    }
}

fn top_branch(msg: &Message) -> Option<String> {
    msg.vias()
        .next()
        .and_then(|v| v.ok())
        .and_then(|v| v.branch().map(str::to_string))
}

#[tokio::test]
async fn a_phone_that_misses_one_keepalive_or_refuses_options_stays_registered() {
    bounded(async {
        let config = RegistrarConfig {
            keepalive_interval: Duration::from_millis(100),
            ..RegistrarConfig::default()
        };
        let (b, _dir) = brain_with(config, GuardConfig::default()).await;
        let mut phone = Phone::new(b.addr, "alice", "s3cret").await;
        let resp = phone
            .register(&[contact("sip:alice@10.0.0.5:5060", None)])
            .await;
        assert_eq!(resp.status(), Some(200), "{resp}");
        let online = || async {
            matches!(
                b.registrar
                    .lookup(&b.tenant, "alice", store::now_ms())
                    .await
                    .expect("lookup"),
                Lookup::Online(..)
            )
        };
        // The first keep-alive is lost: the phone never sees it, and its
        // transaction times out (64·T1 = 1.28 s here).
        let (missed, _) = next_options(&phone.sock).await;
        let missed_branch = top_branch(&missed);
        let mut answered = 0;
        while answered < 4 {
            let (req, from) = next_options(&phone.sock).await;
            if top_branch(&req) == missed_branch {
                continue;
            }
            // Like SIPp's UAS: OPTIONS is not something it implements.
            let refusal = Message::response_to(&req, 501, None);
            phone
                .sock
                .send_to(&refusal.to_bytes(), from)
                .await
                .expect("answer");
            answered += 1;
        }
        assert!(
            online().await,
            "one lost keep-alive and 501s must not unregister the phone"
        );
        assert_eq!(b.registrar.keepalive_targets(), 1);
    })
    .await;
}

#[tokio::test]
async fn metrics_count_what_happened() {
    bounded(async {
        let (b, _dir) = brain().await;
        let mut phone = Phone::new(b.addr, "alice", "s3cret").await;
        let resp = phone
            .register(&[contact("sip:alice@192.0.2.10", None)])
            .await;
        assert_eq!(resp.status(), Some(200));
        let mut bad = Phone::new(b.addr, "bob", "nope").await;
        let resp = bad.register(&[]).await;
        assert_eq!(resp.status(), Some(403));
        let text = b.metrics.encode();
        for line in [
            "tandem_sip_requests_total{method=\"REGISTER\"} 4",
            "tandem_sip_responses_total{code=\"401\"} 2",
            "tandem_sip_responses_total{code=\"200\"} 1",
            "tandem_sip_responses_total{code=\"403\"} 1",
            "tandem_auth_failures_total{reason=\"bad_response\"} 1",
            "tandem_registrations 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    })
    .await;
}

#[tokio::test]
async fn proxy_checks_use_407_and_proxy_authorization() {
    bounded(async {
        let (b, _dir) = brain().await;
        let from = sip::transaction::Peer::new(
            sip::transaction::TransportKind::Udp,
            "127.0.0.1:40000".parse().expect("addr"),
        );
        let invite = |auth: Option<String>| {
            let mut text = format!(
                "INVITE sip:bob@{DOMAIN} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.0.1:40000;branch={}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:alice@{DOMAIN}>;tag=a\r\n\
                 To: <sip:bob@{DOMAIN}>\r\nCall-ID: inv@test\r\nCSeq: 1 INVITE\r\n",
                sip::ids::new_branch()
            );
            if let Some(a) = auth {
                text.push_str(&format!("Proxy-Authorization: {a}\r\n"));
            }
            text.push_str("Content-Length: 0\r\n\r\n");
            sip::parse_datagram(text.into_bytes()).expect("parse")
        };
        let resp = match b.auth.check(&invite(None), from, &b.tenant, true).await {
            brain::auth::AuthOutcome::Respond(r) => r,
            other => panic!("expected a challenge: {other:?}"),
        };
        assert_eq!(resp.status(), Some(407));
        let challenges: Vec<Challenge> = resp
            .header_lines(HeaderName::ProxyAuthenticate)
            .map(|v| Challenge::parse(v).expect("challenge"))
            .collect();
        assert_eq!(challenges.len(), 2);
        assert_eq!(challenges[0].algorithm(), Algorithm::Md5);
        assert_eq!(challenges[1].algorithm(), Algorithm::Sha256);
        let uri = format!("sip:bob@{DOMAIN}");
        let creds = sip::auth::respond(
            &challenges[0],
            "alice",
            "s3cret",
            "INVITE",
            &uri,
            None,
            "cn",
            1,
        )
        .expect("respond");
        match b
            .auth
            .check(&invite(Some(creds.to_string())), from, &b.tenant, true)
            .await
        {
            brain::auth::AuthOutcome::Authenticated(s) => assert_eq!(s.username, "alice"),
            other => panic!("expected alice: {other:?}"),
        }
        // A digest for another Request-URI does not authorise this one.
        let creds = sip::auth::respond(
            &challenges[0],
            "alice",
            "s3cret",
            "INVITE",
            &format!("sip:carol@{DOMAIN}"),
            None,
            "cn",
            2,
        )
        .expect("respond");
        match b
            .auth
            .check(&invite(Some(creds.to_string())), from, &b.tenant, true)
            .await
        {
            brain::auth::AuthOutcome::Respond(r) => assert_eq!(r.status(), Some(403)),
            other => panic!("expected 403: {other:?}"),
        }
        assert!(
            b.metrics
                .encode()
                .contains("tandem_auth_failures_total{reason=\"uri_mismatch\"} 1")
        );
    })
    .await;
}
