//! `tandem sip ...`: tools over the SIP stack.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

mod serve;

#[derive(Subcommand)]
pub enum SipCommand {
    /// Parse a SIP message (from a file, or - for standard input) and print
    /// what tandem reads from it, or the 400 it would answer with.
    Check(CheckArgs),
    /// Run a SIP endpoint on the given transports: answers OPTIONS, checks
    /// digest credentials, answers calls (signalling only) and keeps their
    /// dialogs. For interop checks with phones, trunks and SIPp.
    Serve(serve::ServeArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// The message file; `-` reads standard input.
    pub file: String,
    /// Frame it as a stream (TCP/TLS/WS) message, where Content-Length is
    /// mandatory, instead of a UDP datagram.
    #[arg(long)]
    pub stream: bool,
}

pub fn run(cmd: SipCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SipCommand::Check(args) => check(&args),
        SipCommand::Serve(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(serve::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut data = Vec::new();
    if args.file == "-" {
        std::io::stdin()
            .read_to_end(&mut data)
            .context("reading standard input")?;
    } else {
        data = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file))?;
    }
    let parsed = if args.stream {
        sip::parse_stream_frame(data)
    } else {
        sip::parse_datagram(data)
    };
    match parsed {
        Ok(msg) => {
            print!("{}", describe(&msg));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("rejected: {} {}", e.status, e.reason);
            match e.response() {
                Some(resp) => print!("answer:\n{resp}"),
                None => {
                    println!("answer: none (dropped: a response, an ACK, or too broken to answer)")
                }
            }
            Ok(ExitCode::from(1))
        }
    }
}

fn describe(msg: &sip::Message) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match (msg.method(), msg.status()) {
        (Some(m), _) => {
            let _ = writeln!(
                out,
                "request: {m} {}",
                msg.request_uri_text().unwrap_or_default()
            );
        }
        (_, Some(code)) => {
            let _ = writeln!(out, "response: {code} {}", msg.reason().unwrap_or(""));
        }
        _ => {}
    }
    let _ = writeln!(out, "call-id: {}", msg.call_id().unwrap_or(""));
    if let Some(c) = msg.cseq() {
        let _ = writeln!(out, "cseq: {} {}", c.seq, c.method);
    }
    let _ = writeln!(out, "from-tag: {}", msg.from_tag().unwrap_or("-"));
    let _ = writeln!(out, "to-tag: {}", msg.to_tag().unwrap_or("-"));
    for (i, via) in msg.vias().enumerate() {
        match via {
            Ok(v) => {
                let _ = writeln!(
                    out,
                    "via[{i}]: {} {}{} branch={}",
                    v.transport,
                    v.host,
                    v.port.map(|p| format!(":{p}")).unwrap_or_default(),
                    v.branch().unwrap_or("-")
                );
            }
            Err(e) => {
                let _ = writeln!(out, "via[{i}]: unreadable ({e})");
            }
        }
    }
    let _ = writeln!(out, "headers: {}", msg.header_count());
    let _ = writeln!(out, "body: {} bytes", msg.body().len());
    out
}
