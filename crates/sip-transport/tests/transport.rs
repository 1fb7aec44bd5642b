//! The drivers against real sockets on loopback, with plain tokio clients.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use sip::framing::FramingError;
use sip_transport::{
    CloseReason, Closed, FramerLimits, Incoming, Limits, ListenerConfig, PemSource, Target,
    TlsIdentity, Transport, TransportConfig, TransportError, TransportEvent, TransportLayer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const WAIT: Duration = Duration::from_secs(2);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn request(method: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP client.example.com;branch=z9hG4bK{method}\r\n\
         From: <sip:alice@example.com>;tag=1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: {method}@client\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const OK: &[u8] = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";

async fn start(
    listeners: Vec<ListenerConfig>,
    limits: Limits,
) -> (TransportLayer, Receiver<TransportEvent>) {
    let config = TransportConfig {
        listeners,
        limits,
        ..TransportConfig::default()
    };
    TransportLayer::start(config).await.unwrap()
}

async fn next_event(rx: &mut Receiver<TransportEvent>) -> TransportEvent {
    timeout(WAIT, rx.recv())
        .await
        .expect("no event in time")
        .expect("channel closed")
}

async fn incoming(rx: &mut Receiver<TransportEvent>) -> Incoming {
    match next_event(rx).await {
        TransportEvent::Incoming(incoming) => incoming,
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn closed(rx: &mut Receiver<TransportEvent>) -> Closed {
    match next_event(rx).await {
        TransportEvent::Closed(closed) => closed,
        other => panic!("expected a close, got {other:?}"),
    }
}

/// Reads until `n` bytes have arrived.
async fn read_exact(stream: &mut (impl AsyncReadExt + Unpin), n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf
}

/// Reads until the peer closes; returns what came before.
async fn read_to_close(stream: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut out = Vec::new();
    // A reset instead of a FIN is a close too.
    let _ = timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .expect("not closed in time");
    out
}

#[tokio::test]
async fn udp_request_in_and_reply_from_the_listening_socket() {
    let (layer, mut rx) = start(vec![ListenerConfig::udp(loopback())], Limits::default()).await;
    let server = layer.local_addr(Transport::Udp).unwrap();
    let client = UdpSocket::bind(loopback()).await.unwrap();
    client
        .send_to(&request("OPTIONS", ""), server)
        .await
        .unwrap();

    let msg = incoming(&mut rx).await;
    assert_eq!(msg.transport, Transport::Udp);
    assert_eq!(msg.remote, client.local_addr().unwrap());
    assert_eq!(msg.local, server);
    assert_eq!(msg.flow, None);
    assert_eq!(&msg.data[..], &request("OPTIONS", "")[..]);

    assert_eq!(
        layer
            .send(&msg.reply_target(), Bytes::from_static(OK))
            .await
            .unwrap(),
        None
    );
    let mut buf = [0; 100];
    let (n, from) = timeout(WAIT, client.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&buf[..n], from), (OK, server));

    let stats = layer.stats().snapshot().traffic(Transport::Udp);
    assert_eq!((stats.messages_in, stats.messages_out), (1, 1));
}

#[tokio::test]
async fn tcp_response_goes_back_over_the_same_connection() {
    let (layer, mut rx) = start(vec![ListenerConfig::tcp(loopback())], Limits::default()).await;
    let server = layer.local_addr(Transport::Tcp).unwrap();
    let mut client = TcpStream::connect(server).await.unwrap();
    client
        .write_all(&request("INVITE", "v=0\r\n\r\nbody"))
        .await
        .unwrap();

    let msg = incoming(&mut rx).await;
    assert_eq!(msg.transport, Transport::Tcp);
    assert_eq!(msg.remote, client.local_addr().unwrap());
    assert_eq!(&msg.data[..], &request("INVITE", "v=0\r\n\r\nbody")[..]);
    let flow = msg.flow.expect("stream messages carry their flow");

    let used = layer
        .send(&msg.reply_target(), Bytes::from_static(OK))
        .await
        .unwrap();
    assert_eq!(used, Some(flow));
    assert_eq!(read_exact(&mut client, OK.len()).await, OK);

    // Without the flow id, the connection is found by address.
    let target = Target::new(Transport::Tcp, msg.remote);
    assert_eq!(
        layer.send(&target, Bytes::from_static(OK)).await.unwrap(),
        Some(flow)
    );
    assert_eq!(read_exact(&mut client, OK.len()).await, OK);

    drop(client);
    let gone = closed(&mut rx).await;
    assert_eq!((gone.flow, gone.reason), (flow, CloseReason::PeerClosed));
    assert_eq!(layer.stats().snapshot().connections_open, 0);
}

#[tokio::test]
async fn tcp_pipelined_messages_and_keepalive() {
    let (layer, mut rx) = start(vec![ListenerConfig::tcp(loopback())], Limits::default()).await;
    let server = layer.local_addr(Transport::Tcp).unwrap();
    let mut client = TcpStream::connect(server).await.unwrap();

    let batch = [
        request("MESSAGE", "one"),
        request("MESSAGE", "two\r\n\r\n"),
        request("BYE", ""),
    ]
    .concat();
    client.write_all(&batch).await.unwrap();
    for want in [
        request("MESSAGE", "one"),
        request("MESSAGE", "two\r\n\r\n"),
        request("BYE", ""),
    ] {
        assert_eq!(&incoming(&mut rx).await.data[..], &want[..]);
    }

    client.write_all(b"\r\n\r\n").await.unwrap();
    assert_eq!(read_exact(&mut client, 2).await, b"\r\n");
    assert_eq!(
        layer.stats().snapshot().traffic(Transport::Tcp).messages_in,
        3
    );
}

#[tokio::test]
async fn tcp_oversize_message_is_answered_and_closed() {
    let limits = Limits {
        framer: FramerLimits {
            max_header_bytes: 1024,
            max_message_bytes: 2048,
        },
        ..Limits::default()
    };
    let (layer, mut rx) = start(vec![ListenerConfig::tcp(loopback())], limits).await;
    let server = layer.local_addr(Transport::Tcp).unwrap();
    let mut client = TcpStream::connect(server).await.unwrap();
    client
        .write_all(&request("MESSAGE", &"x".repeat(4096)))
        .await
        .unwrap();

    let answer = String::from_utf8(read_to_close(&mut client).await).unwrap();
    assert!(
        answer.starts_with("SIP/2.0 513 Message Too Large\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Call-ID: MESSAGE@client\r\n"), "{answer}");
    let gone = closed(&mut rx).await;
    assert_eq!(
        gone.reason,
        CloseReason::Framing(FramingError::MessageTooLarge)
    );
    assert_eq!(layer.stats().snapshot().framing_errors, 1);
}

#[tokio::test]
async fn tcp_half_a_message_then_silence_is_cut_off() {
    let limits = Limits {
        message_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (layer, mut rx) = start(vec![ListenerConfig::tcp(loopback())], limits).await;
    let server = layer.local_addr(Transport::Tcp).unwrap();
    let mut client = TcpStream::connect(server).await.unwrap();
    let msg = request("INVITE", "");
    client.write_all(&msg[..msg.len() / 2]).await.unwrap();

    let started = tokio::time::Instant::now();
    assert!(read_to_close(&mut client).await.is_empty());
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(closed(&mut rx).await.reason, CloseReason::MessageTimeout);
    assert_eq!(layer.stats().snapshot().message_timeouts, 1);
}

#[tokio::test]
async fn per_ip_connection_cap() {
    let limits = Limits {
        max_connections_per_ip: 2,
        ..Limits::default()
    };
    let (layer, mut rx) = start(vec![ListenerConfig::tcp(loopback())], limits).await;
    let server = layer.local_addr(Transport::Tcp).unwrap();
    let mut kept = Vec::new();
    for _ in 0..2 {
        let mut client = TcpStream::connect(server).await.unwrap();
        client.write_all(&request("OPTIONS", "")).await.unwrap();
        incoming(&mut rx).await;
        kept.push(client);
    }
    let mut third = TcpStream::connect(server).await.unwrap();
    assert!(read_to_close(&mut third).await.is_empty());
    let stats = layer.stats().snapshot();
    assert_eq!((stats.rejected_per_ip_cap, stats.connections_open), (1, 2));

    // A slot frees up when a connection ends.
    drop(kept.pop());
    closed(&mut rx).await;
    let mut fourth = TcpStream::connect(server).await.unwrap();
    fourth.write_all(&request("OPTIONS", "")).await.unwrap();
    assert_eq!(incoming(&mut rx).await.remote, fourth.local_addr().unwrap());
}

#[tokio::test]
async fn outbound_tcp_connects_once_and_reuses() {
    let (layer, _rx) = start(Vec::new(), Limits::default()).await;
    let peer = TcpListener::bind(loopback()).await.unwrap();
    let target = Target::new(Transport::Tcp, peer.local_addr().unwrap());

    let first = layer
        .send(&target, request("OPTIONS", "a").into())
        .await
        .unwrap();
    let second = layer
        .send(&target, request("OPTIONS", "b").into())
        .await
        .unwrap();
    assert!(first.is_some());
    assert_eq!(first, second);

    let (mut conn, _) = timeout(WAIT, peer.accept()).await.unwrap().unwrap();
    let both = [request("OPTIONS", "a"), request("OPTIONS", "b")].concat();
    assert_eq!(read_exact(&mut conn, both.len()).await, both);
    assert!(
        timeout(Duration::from_millis(200), peer.accept())
            .await
            .is_err(),
        "a second connection was opened"
    );
    assert_eq!(layer.stats().snapshot().connections_outbound, 1);
}

fn self_signed() -> (TlsIdentity, PemSource, CertificateDer<'static>) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = key.cert.pem().into_bytes();
    let identity = TlsIdentity {
        cert_chain: PemSource::Memory(cert_pem.clone()),
        key: PemSource::Memory(key.key_pair.serialize_pem().into_bytes()),
    };
    (
        identity,
        PemSource::Memory(cert_pem),
        key.cert.der().clone(),
    )
}

fn tls_client(root: CertificateDer<'static>) -> tokio_rustls::TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(root).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn tls_request_and_response() {
    let (identity, _, root) = self_signed();
    let (layer, mut rx) = start(
        vec![ListenerConfig::tls(loopback(), identity)],
        Limits::default(),
    )
    .await;
    let server = layer.local_addr(Transport::Tls).unwrap();
    let tcp = TcpStream::connect(server).await.unwrap();
    let client_addr = tcp.local_addr().unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = tls_client(root).connect(name, tcp).await.unwrap();
    client.write_all(&request("REGISTER", "")).await.unwrap();

    let msg = incoming(&mut rx).await;
    assert_eq!((msg.transport, msg.remote), (Transport::Tls, client_addr));
    layer
        .send(&msg.reply_target(), Bytes::from_static(OK))
        .await
        .unwrap();
    assert_eq!(read_exact(&mut client, OK.len()).await, OK);
}

#[tokio::test]
async fn tls_handshake_must_finish_in_time() {
    let (identity, _, _) = self_signed();
    let limits = Limits {
        handshake_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let (layer, _rx) = start(vec![ListenerConfig::tls(loopback(), identity)], limits).await;
    let mut silent = TcpStream::connect(layer.local_addr(Transport::Tls).unwrap())
        .await
        .unwrap();
    assert!(read_to_close(&mut silent).await.is_empty());
    let stats = layer.stats().snapshot();
    assert_eq!((stats.handshake_timeouts, stats.connections_open), (1, 0));
}

#[tokio::test]
async fn outbound_tls_verifies_the_server_name() {
    let (identity, root_pem, _) = self_signed();
    let (server, mut server_rx) = start(
        vec![ListenerConfig::tls(loopback(), identity)],
        Limits::default(),
    )
    .await;
    let addr = server.local_addr(Transport::Tls).unwrap();
    let config = TransportConfig {
        tls_client_roots: vec![root_pem.clone()],
        ..TransportConfig::default()
    };
    let (client, _rx) = TransportLayer::start(config).await.unwrap();

    let target = Target::new(Transport::Tls, addr).with_server_name("localhost");
    let flow = client
        .send(&target, request("OPTIONS", "").into())
        .await
        .unwrap();
    let msg = incoming(&mut server_rx).await;
    assert_eq!(msg.transport, Transport::Tls);
    assert_eq!(&msg.data[..], &request("OPTIONS", "")[..]);
    assert_eq!(
        client
            .send(&target, request("OPTIONS", "").into())
            .await
            .unwrap(),
        flow
    );
    incoming(&mut server_rx).await;

    // The certificate names localhost, not the bare IP: a fresh layer that
    // has no verified connection to reuse must refuse it.
    let config = TransportConfig {
        tls_client_roots: vec![root_pem],
        ..TransportConfig::default()
    };
    let (other, _rx) = TransportLayer::start(config).await.unwrap();
    let err = other
        .send(&Target::new(Transport::Tls, addr), Bytes::from_static(OK))
        .await;
    assert!(
        matches!(err, Err(TransportError::Connect { .. })),
        "{err:?}"
    );
    assert_eq!(other.stats().snapshot().send_errors, 1);
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let (layer, mut rx) = start(vec![ListenerConfig::tcp(loopback())], limits).await;
    let mut client = TcpStream::connect(layer.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    client.write_all(&request("OPTIONS", "")).await.unwrap();
    incoming(&mut rx).await;
    assert!(read_to_close(&mut client).await.is_empty());
    assert_eq!(closed(&mut rx).await.reason, CloseReason::IdleTimeout);
    assert_eq!(layer.stats().snapshot().idle_timeouts, 1);
}

#[tokio::test]
async fn a_flow_whose_queue_overflows_is_dropped() {
    let limits = Limits {
        outbound_queue: 1,
        ..Limits::default()
    };
    let (layer, mut rx) = start(vec![ListenerConfig::tcp(loopback())], limits).await;
    let mut client = TcpStream::connect(layer.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    client.write_all(&request("OPTIONS", "")).await.unwrap();
    let target = incoming(&mut rx).await.reply_target();

    // The single-threaded test runtime does not run the connection's task
    // between these two sends, so the second finds the queue full.
    layer.send(&target, Bytes::from_static(OK)).await.unwrap();
    let err = layer.send(&target, Bytes::from_static(OK)).await;
    assert!(matches!(err, Err(TransportError::QueueFull(_))), "{err:?}");
    assert_eq!(closed(&mut rx).await.reason, CloseReason::Local);
    read_to_close(&mut client).await;
    assert_eq!(layer.stats().snapshot().write_stalls, 1);
}

async fn ws_connect(
    addr: SocketAddr,
    protocol: Option<&str>,
) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, WsError> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("ws://{addr}/").into_client_request().unwrap();
    if let Some(protocol) = protocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    }
    let (ws, _) = timeout(WAIT, tokio_tungstenite::client_async(req, tcp))
        .await
        .unwrap()?;
    Ok(ws)
}

#[tokio::test]
async fn ws_needs_the_sip_subprotocol() {
    let (layer, mut rx) = start(vec![ListenerConfig::ws(loopback())], Limits::default()).await;
    let server = layer.local_addr(Transport::Ws).unwrap();

    match ws_connect(server, None).await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status(), 400),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    assert!(matches!(
        ws_connect(server, Some("chat")).await,
        Err(WsError::Http(_))
    ));
    assert_eq!(layer.stats().snapshot().rejected_handshake, 2);

    let mut ws = ws_connect(server, Some("chat, sip")).await.unwrap();
    let text = String::from_utf8(request("REGISTER", "")).unwrap();
    ws.send(Message::text(text.clone())).await.unwrap();
    let msg = incoming(&mut rx).await;
    assert_eq!(msg.transport, Transport::Ws);
    assert_eq!(&msg.data[..], text.as_bytes());

    layer
        .send(&msg.reply_target(), Bytes::from_static(OK))
        .await
        .unwrap();
    let reply = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(reply, Message::text(std::str::from_utf8(OK).unwrap()));

    // Once the browser is gone its flow cannot be reopened.
    let flow = msg.flow.unwrap();
    ws.close(None).await.unwrap();
    assert_eq!(closed(&mut rx).await.flow, flow);
    let err = layer
        .send(&msg.reply_target(), Bytes::from_static(OK))
        .await;
    assert!(
        matches!(err, Err(TransportError::FlowClosed(f)) if f == flow),
        "{err:?}"
    );
}

#[tokio::test]
async fn ws_idle_is_not_slow() {
    // Only a started message runs against the message deadline.
    let limits = Limits {
        message_timeout: Duration::from_millis(150),
        ..Limits::default()
    };
    let (layer, mut rx) = start(vec![ListenerConfig::ws(loopback())], limits).await;
    let mut ws = ws_connect(layer.local_addr(Transport::Ws).unwrap(), Some("sip"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(450)).await;
    ws.send(Message::binary(request("OPTIONS", "")))
        .await
        .unwrap();
    assert_eq!(incoming(&mut rx).await.transport, Transport::Ws);
    assert_eq!(layer.stats().snapshot().message_timeouts, 0);
}

#[tokio::test]
async fn wss_carries_sip() {
    let (identity, _, root) = self_signed();
    let (layer, mut rx) = start(
        vec![ListenerConfig::wss(loopback(), identity)],
        Limits::default(),
    )
    .await;
    let server = layer.local_addr(Transport::Wss).unwrap();
    let tcp = TcpStream::connect(server).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tls_client(root).connect(name, tcp).await.unwrap();
    let mut req = "wss://localhost/".into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "sip");

    ws.send(Message::binary(request("OPTIONS", "")))
        .await
        .unwrap();
    let msg = incoming(&mut rx).await;
    assert_eq!(msg.transport, Transport::Wss);
    layer
        .send(&msg.reply_target(), Bytes::from_static(OK))
        .await
        .unwrap();
    let reply = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(reply.into_data(), Bytes::from_static(OK));
}

#[tokio::test]
async fn ipv6_udp_and_tcp() {
    let v6: SocketAddr = "[::1]:0".parse().unwrap();
    if std::net::UdpSocket::bind(v6).is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let (layer, mut rx) = start(
        vec![ListenerConfig::udp(v6), ListenerConfig::tcp(v6)],
        Limits::default(),
    )
    .await;

    let udp = UdpSocket::bind(v6).await.unwrap();
    udp.send_to(
        &request("OPTIONS", ""),
        layer.local_addr(Transport::Udp).unwrap(),
    )
    .await
    .unwrap();
    let msg = incoming(&mut rx).await;
    assert_eq!(msg.remote, udp.local_addr().unwrap());
    layer
        .send(&msg.reply_target(), Bytes::from_static(OK))
        .await
        .unwrap();
    let mut buf = [0; 100];
    let (n, _) = timeout(WAIT, udp.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], OK);

    let mut tcp = TcpStream::connect(layer.local_addr(Transport::Tcp).unwrap())
        .await
        .unwrap();
    tcp.write_all(&request("OPTIONS", "")).await.unwrap();
    let msg = incoming(&mut rx).await;
    assert_eq!(msg.remote, tcp.local_addr().unwrap());
    layer
        .send(&msg.reply_target(), Bytes::from_static(OK))
        .await
        .unwrap();
    assert_eq!(read_exact(&mut tcp, OK.len()).await, OK);
}
