//! `tandem up` (every role in one process, embedded store) and `tandem
//! brain` (the brain alone; SBCs join it with `tandem sbc`). One code path:
//! `up` runs the same brain and the same SBC, joined by the control protocol
//! over loopback TCP.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use brain::b2bua::B2buaConfig;
use brain::conference::ConferenceConfig;
use brain::nodes::{MediaRange, NodesConfig};
use brain::registrar::RegistrarConfig;
use brain::{Brain, BrainConfig, BrainHandle};
use clap::Args;
use proto::snapshot::ConferenceOptions;
use sip_transport::{ListenerConfig, PemSource, TlsIdentity, TransportConfig};
use store::{NewSubscriber, NumberKind, Store};
use tokio::net::TcpListener;

use crate::cmd::admin::StoreArgs;
use crate::config::Config;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// The configuration file (TOML; `tandem config` prints the defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Create (or refresh) a demo tenant with two subscribers and a
    /// conference number, and print how to register a softphone.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Args, Debug)]
pub struct BrainArgs {
    /// The configuration file (TOML; `tandem config` prints the defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

fn brain_config(c: &Config, data_dir: &std::path::Path) -> anyhow::Result<BrainConfig> {
    let mut listeners = Vec::new();
    listeners.extend(c.sip.udp.iter().map(|a| ListenerConfig::udp(*a)));
    listeners.extend(c.sip.tcp.iter().map(|a| ListenerConfig::tcp(*a)));
    listeners.extend(c.sip.ws.iter().map(|a| ListenerConfig::ws(*a)));
    if let (Some(cert), Some(key)) = (&c.sip.cert, &c.sip.key) {
        let identity = TlsIdentity {
            cert_chain: PemSource::File(cert.clone()),
            key: PemSource::File(key.clone()),
        };
        listeners.extend(
            c.sip
                .tls
                .iter()
                .map(|a| ListenerConfig::tls(*a, identity.clone())),
        );
        listeners.extend(
            c.sip
                .wss
                .iter()
                .map(|a| ListenerConfig::wss(*a, identity.clone())),
        );
    }
    anyhow::ensure!(!listeners.is_empty(), "no SIP listener configured");
    let mut transactions = sip::transaction::Config::default();
    if let Some(first) = listeners.first() {
        transactions.sent_by = first.addr.to_string();
    }
    Ok(BrainConfig {
        sip: TransportConfig {
            listeners,
            ..TransportConfig::default()
        },
        transactions,
        node_listen: c.control.listen,
        media: NodesConfig {
            ranges: vec![MediaRange {
                bind_ip: c.media.ip,
                vip: None,
                first_port: c.media.port_min,
                last_port: c.media.port_max,
                slice_ports: 1000,
            }],
            ..NodesConfig::default()
        },
        b2bua: B2buaConfig {
            no_answer: Duration::from_secs(c.calls.no_answer_secs),
            no_response: Duration::from_secs(c.calls.no_response_secs),
            max_duration: (c.calls.max_call_secs > 0)
                .then(|| Duration::from_secs(c.calls.max_call_secs)),
            authenticate: c.calls.authenticate,
            advertise: c.sip.advertise,
            invite_rate: brain::b2bua::RateLimit {
                per_second: c.calls.invites_per_source,
                burst: c.calls.invite_burst,
                ..brain::b2bua::RateLimit::default()
            },
            conference: ConferenceConfig {
                sample_rate: c.conference.rate,
                tick_ms: c.conference.tick_ms,
                max_speakers: c.conference.max_speakers,
                options: ConferenceOptions {
                    join_leave_tones: c.conference.join_leave_tones,
                    alone_prompt: c.conference.alone_prompt.clone(),
                    wait_music: c.conference.wait_music.clone(),
                    noise_suppression: c.conference.noise_suppression,
                    level_control: c.conference.level_control,
                    ..ConferenceOptions::default()
                },
                max_participants: c.conference.max_participants,
            },
            ..B2buaConfig::default()
        },
        registrar: RegistrarConfig {
            min_expires: c.registrar.min_expires,
            max_expires: c.registrar.max_expires,
            default_expires: c.registrar.default_expires,
            keepalive_interval: c.keepalive(),
            keepalive_failures: c.registrar.keepalive_failures,
            ..RegistrarConfig::default()
        },
        // Local even when the store is PostgreSQL: it is what carries CDRs
        // over a store outage.
        cdr_spool: Some(data_dir.join("cdr-spool.jsonl")),
        ..BrainConfig::default()
    })
}

/// Command-line and environment beat the file.
fn data_dir(c: &Config, at: &StoreArgs) -> PathBuf {
    at.data_dir.clone().unwrap_or_else(|| c.data_dir.clone())
}

async fn open_store(c: &Config, at: &StoreArgs) -> anyhow::Result<Store> {
    let url = at.store.clone().or_else(|| c.store.clone());
    let dir = data_dir(c, at);
    let args = StoreArgs {
        data_dir: Some(dir),
        store: url,
    };
    args.open().await
}

/// The SIP domain of a one-tenant box: the advertised or listening IP.
fn box_domain(c: &Config) -> IpAddr {
    c.sip
        .advertise
        .or_else(|| {
            c.sip
                .udp
                .first()
                .map(|a| a.ip())
                .filter(|ip| !ip.is_unspecified())
        })
        .unwrap_or(c.media.ip)
}

fn demo_password() -> String {
    format!("{:010x}", sip::ids::random_u64() & 0xff_ffff_ffff)
}

async fn demo(store: &Store, c: &Config) -> anyhow::Result<()> {
    let domain = box_domain(c).to_string();
    let tenant = match store.tenant_by_name("demo").await? {
        Some(t) => t,
        None => store.add_tenant("demo", &domain).await?,
    };
    let mut lines = Vec::new();
    for (user, number) in [("alice", "1001"), ("bob", "1002")] {
        // Fresh passwords on every --demo: nothing guessable stays behind.
        let password = demo_password();
        match store.find_subscriber(&tenant.domain, user).await? {
            Some(s) => store.set_password(s.id, &password).await?,
            None => {
                store
                    .add_subscriber(&NewSubscriber {
                        tenant_id: tenant.id,
                        username: user,
                        password: &password,
                        number: Some(number),
                        display_name: None,
                        enabled: true,
                    })
                    .await?;
            }
        }
        lines.push((user, number, password));
    }
    if store.find_number(tenant.id, "3000").await?.is_none() {
        store
            .add_number(tenant.id, "3000", NumberKind::Conference, "demo-room")
            .await?;
    }
    let sip = c
        .sip
        .udp
        .first()
        .copied()
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)));
    println!("demo tenant \"demo\", SIP domain {}", tenant.domain);
    for (user, number, password) in &lines {
        println!("  {user:<6} number {number}  password {password}");
    }
    println!("  conference number 3000 (room demo-room: call it from two phones)");
    println!(
        "register a softphone: server {sip} (UDP or TCP), user alice, password as above, domain {}",
        tenant.domain
    );
    println!(
        "  baresip: /uanew <sip:alice@{}>;auth_pass={};outbound=\"sip:{sip}\"",
        tenant.domain, lines[0].2
    );
    println!("then call bob: sip:bob@{} or 1002", tenant.domain);
    Ok(())
}

pub fn up(args: UpArgs, at: &StoreArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref())?;
    run(config, at, true, args.demo)
}

pub fn brain(args: BrainArgs, at: &StoreArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref())?;
    run(config, at, false, false)
}

/// Threads for signalling: the cores the SBC's media workers leave, at
/// least one. On a 2-core box one thread is faster than two that keep
/// stealing each other's work next to the media thread (~17% less CPU per
/// call measured here).
fn signalling_threads(config: &Config, with_sbc: bool) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let media = if with_sbc {
        usize::from(config.media.workers) + usize::from(config.mixer.workers)
    } else {
        0
    };
    cores.saturating_sub(media).max(1)
}

fn run(
    config: Config,
    at: &StoreArgs,
    with_sbc: bool,
    demo_tenant: bool,
) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(signalling_threads(&config, with_sbc))
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let store = open_store(&config, at).await?;
        if demo_tenant {
            demo(&store, &config).await?;
        }
        let brain = Brain::start(brain_config(&config, &data_dir(&config, at))?, store)
            .await
            .context("starting the brain")?;
        for (t, addr) in brain.sip_addrs() {
            println!("listening SIP {t} {addr}");
        }
        println!("listening control {}", brain.node_addr());
        let sbc = if with_sbc {
            crate::limits::check_open_files(
                u64::from(config.media.port_max.saturating_sub(config.media.port_min)) + 1,
            );
            let sbc_config = sbc::SbcConfig {
                brain: brain.node_addr(),
                node_id: "sbc-local".into(),
                media_ips: vec![config.media.ip],
                workers: config.media.workers,
                max_streams: config.media.max_streams,
                media_timeout: Duration::from_secs(config.media.timeout_secs),
                ..sbc::SbcConfig::default()
            };
            Some(Arc::new(
                sbc::Sbc::start(sbc_config).context("starting the SBC")?,
            ))
        } else {
            None
        };
        // The mixer beside the SBC: conference numbers are answered.
        let mixer = if with_sbc {
            let m = mixer::Mixer::start(mixer::MixerConfig {
                brain: brain.node_addr(),
                node_id: "mixer-local".into(),
                media_ip: config.media.ip,
                first_port: config.mixer.port,
                workers: config.mixer.workers,
                max_participants: config.mixer.max_participants,
                ..mixer::MixerConfig::default()
            })
            .context("starting the mixer")?;
            for p in m.ports() {
                println!("listening mixer {}:{p}", config.media.ip);
            }
            Some(Arc::new(m))
        } else {
            None
        };
        let brain = Arc::new(brain);
        let api = TcpListener::bind(config.api.listen)
            .await
            .with_context(|| format!("binding the API on {}", config.api.listen))?;
        println!("listening API http://{}/metrics", api.local_addr()?);
        let server = tokio::spawn(serve_metrics(
            api,
            brain.clone(),
            sbc.clone(),
            mixer.clone(),
        ));
        tokio::signal::ctrl_c()
            .await
            .context("waiting for a signal")?;
        server.abort();
        // The aborted server drops its clone of the brain when it ends.
        let _ = server.await;
        match Arc::try_unwrap(brain) {
            Ok(b) => b.close(Duration::from_secs(10)).await,
            // A metrics request still holds it: at least see the CDRs out.
            Err(b) => {
                let _ = tokio::time::timeout(Duration::from_secs(10), b.flush_cdrs()).await;
            }
        }
        drop(sbc);
        drop(mixer);
        Ok(ExitCode::SUCCESS)
    })
}

/// A deliberately small HTTP/1.1 responder for GET /metrics; the REST API
/// replaces it when it arrives.
/// `GET /calls`: the calls up now, one per line, oldest first — what an
/// on-call engineer greps when the active-calls gauge looks wrong.
fn calls_text(calls: &[brain::b2bua::CallInfo]) -> String {
    let mut calls: Vec<_> = calls.iter().collect();
    calls.sort_by_key(|c| c.started_at);
    let now = store::now_ms();
    let mut out = String::from(
        "# call_id tenant caller callee state age_s answered media_node media_alive\n",
    );
    for c in calls {
        out.push_str(&format!(
            "{} {} {} {} {:?} {:.1} {} {} {}\n",
            c.call_id,
            c.tenant,
            c.caller,
            c.callee,
            c.state,
            (now - c.started_at) as f64 / 1000.0,
            c.answered_at.is_some(),
            c.media_node.as_ref().map_or("-", |n| n.0.as_str()),
            c.media_alive
        ));
    }
    out
}

/// `GET /conferences`: the rooms with anyone in them, one per line.
fn conferences_text(rooms: &[brain::conference::RoomInfo]) -> String {
    let mut out = String::from("TENANT ROOM CONFERENCE MIXER PARTICIPANTS TALKING\n");
    for r in rooms {
        let talking: Vec<String> = r.talking.iter().map(u32::to_string).collect();
        out.push_str(&format!(
            "{} {} {} {} {} {}\n",
            r.room.tenant.0,
            r.room.name,
            r.conference_id,
            r.mixer.as_deref().unwrap_or("-"),
            r.participants,
            if talking.is_empty() {
                "-".to_string()
            } else {
                talking.join(",")
            }
        ));
    }
    out
}

async fn serve_metrics(
    listener: TcpListener,
    brain: Arc<BrainHandle>,
    sbc: Option<Arc<sbc::SbcHandle>>,
    mixer: Option<Arc<mixer::MixerHandle>>,
) {
    crate::http::serve(listener, move |path| {
        let brain = brain.clone();
        let sbc = sbc.clone();
        let mixer = mixer.clone();
        async move {
            match path.as_str() {
                "/metrics" => {
                    let mut text = brain.metrics_text();
                    if let Some(sbc) = sbc {
                        text.push_str(&crate::http::sbc_metrics(sbc).await);
                    }
                    if let Some(mixer) = mixer {
                        text.push_str(&crate::http::mixer_metrics(mixer).await);
                    }
                    Some(text)
                }
                "/calls" => Some(calls_text(&brain.calls())),
                "/conferences" => Some(conferences_text(&brain.conferences().await)),
                _ => None,
            }
        }
    })
    .await
}
