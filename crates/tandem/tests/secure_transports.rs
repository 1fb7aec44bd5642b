//! `tandem sip serve` over TLS (as secure trunks and phones use it) and over
//! WebSocket (RFC 7118, as browsers use it): a whole call — INVITE, 180,
//! 200 with an SDP answer, ACK, BYE — on one connection each.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const WAIT: Duration = Duration::from_secs(10);

struct Serve {
    child: Child,
    tls: SocketAddr,
    ws: SocketAddr,
    _dir: std::path::PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn start() -> (Serve, Vec<u8>) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tandem-tls-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("cert.pem"), key.cert.pem()).expect("cert");
    std::fs::write(dir.join("key.pem"), key.key_pair.serialize_pem()).expect("key");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "sip",
            "serve",
            "--tls",
            "127.0.0.1:0",
            "--ws",
            "127.0.0.1:0",
        ])
        .arg("--cert")
        .arg(dir.join("cert.pem"))
        .arg("--key")
        .arg(dir.join("key.pem"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start tandem");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut tls, mut ws) = (None, None);
    while tls.is_none() || ws.is_none() {
        let line = lines.next().expect("tandem exited").expect("line");
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let ["listening", kind, addr] = parts[..] {
            let addr: SocketAddr = addr.parse().expect("addr");
            match kind {
                "TLS" => tls = Some(addr),
                "WS" => ws = Some(addr),
                _ => {}
            }
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let serve = Serve {
        child,
        tls: tls.expect("tls"),
        ws: ws.expect("ws"),
        _dir: dir,
    };
    (serve, key.cert.der().to_vec())
}

fn invite(transport: &str, local: &str) -> String {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    format!(
        "INVITE sip:bob@tandem.test SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bKinv1\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@tandem.test>;tag=a1\r\nTo: <sip:bob@tandem.test>\r\n\
Call-ID: secure-{transport}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{local};transport={transport}>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn in_dialog(
    method: &str,
    seq: u32,
    transport: &str,
    local: &str,
    to_tag: &str,
    branch: &str,
) -> String {
    format!(
        "{method} sip:tandem@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch={branch}\r\n\
Max-Forwards: 70\r\nFrom: <sip:alice@tandem.test>;tag=a1\r\nTo: <sip:bob@tandem.test>;tag={to_tag}\r\n\
Call-ID: secure-{transport}\r\nCSeq: {seq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

/// A connection that carries whole SIP messages.
trait Channel {
    async fn send(&mut self, msg: String);
    async fn recv(&mut self) -> sip::Message;
}

struct Tls {
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    framer: sip::framing::StreamFramer,
}

impl Channel for Tls {
    async fn send(&mut self, msg: String) {
        self.stream.write_all(msg.as_bytes()).await.expect("write");
    }

    async fn recv(&mut self) -> sip::Message {
        loop {
            if let Some(sip::framing::StreamEvent::Message(m)) =
                self.framer.next_event().expect("framing")
            {
                return sip::parse_stream_frame(m).expect("parse");
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, self.stream.read(&mut buf))
                .await
                .expect("an answer in time")
                .expect("read");
            assert!(n > 0, "connection closed");
            self.framer.push(&buf[..n]);
        }
    }
}

struct Ws {
    ws: tokio_tungstenite::WebSocketStream<TcpStream>,
}

impl Channel for Ws {
    async fn send(&mut self, msg: String) {
        self.ws.send(WsMessage::text(msg)).await.expect("ws send");
    }

    async fn recv(&mut self) -> sip::Message {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("an answer in time")
                .expect("open")
                .expect("frame");
            // RFC 7118: one SIP message per WebSocket message.
            match frame {
                WsMessage::Text(t) => {
                    return sip::parse_stream_frame(t.as_bytes().to_vec()).expect("parse");
                }
                WsMessage::Binary(b) => return sip::parse_stream_frame(b.to_vec()).expect("parse"),
                _ => {}
            }
        }
    }
}

/// A whole call over one connection, checking each answer.
async fn call(transport: &str, ch: &mut impl Channel) {
    let local = "client.invalid";
    ch.send(invite(transport, local)).await;
    let mut answer = ch.recv().await;
    if answer.status() == Some(100) {
        answer = ch.recv().await;
    }
    assert_eq!(answer.status(), Some(180), "{transport}: ringing");
    let ok = ch.recv().await;
    assert_eq!(ok.status(), Some(200), "{transport}: answered");
    let body = std::str::from_utf8(ok.body()).expect("sdp");
    let sdp = sip::sdp::SessionDescription::parse(body).expect("the SDP answer parses");
    assert_eq!(
        sdp.media[0].payload_types().first().copied(),
        Some(8),
        "{transport}: PCMA, the offerer's first codec tandem supports"
    );
    let to_tag = ok.to_tag().expect("to tag").to_string();
    ch.send(in_dialog(
        "ACK",
        1,
        transport,
        local,
        &to_tag,
        "z9hG4bKack1",
    ))
    .await;
    ch.send(in_dialog(
        "BYE",
        2,
        transport,
        local,
        &to_tag,
        "z9hG4bKbye1",
    ))
    .await;
    let bye_ok = ch.recv().await;
    assert_eq!(bye_ok.status(), Some(200), "{transport}: BYE answered");
    assert_eq!(bye_ok.cseq().map(|c| c.method), Some(sip::Method::Bye));
}

#[tokio::test]
async fn call_over_tls() {
    let (serve, root) = start();
    let mut roots = RootCertStore::empty();
    roots.add(root.into()).expect("root");
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(serve.tls).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");
    let mut ch = Tls {
        stream,
        framer: sip::framing::StreamFramer::new(sip::framing::FramerLimits::default()),
    };
    call("TLS", &mut ch).await;
}

#[tokio::test]
async fn call_over_websocket() {
    let (serve, _) = start();
    let tcp = TcpStream::connect(serve.ws).await.expect("connect");
    let mut req = format!("ws://{}/", serve.ws)
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().expect("header"));
    let (ws, resp) = tokio_tungstenite::client_async(req, tcp)
        .await
        .expect("upgrade");
    assert_eq!(resp.headers()["sec-websocket-protocol"], "sip");
    call("WS", &mut Ws { ws }).await;
}
