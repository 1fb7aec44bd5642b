//! Provisioning and records: `tandem tenant ...`, `tandem subscriber ...`,
//! `tandem number ...`, `tandem cdr ...`. They work on the same store as a running `tandem up`
//! (SQLite in WAL mode takes a second writer).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use store::{CdrFilter, NewSubscriber, Store};

/// Where the store is.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The data directory; the store is `DIR/tandem.db` [default: tandem-data].
    #[arg(long, global = true, env = "TANDEM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A store URL instead (`postgres://...` or `sqlite://...`).
    #[arg(long, global = true, env = "TANDEM_STORE")]
    pub store: Option<String>,
}

impl StoreArgs {
    pub async fn open(&self) -> anyhow::Result<Store> {
        match &self.store {
            Some(url) => Store::open(url)
                .await
                .with_context(|| format!("opening store {url}")),
            None => {
                let dir = self
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("tandem-data"));
                Store::open_in_dir(&dir)
                    .await
                    .with_context(|| format!("opening the store in {}", dir.display()))
            }
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Add a tenant; its subscribers register and call within DOMAIN (a
    /// host name, or this box's IP address on a one-tenant box).
    Add {
        name: String,
        #[arg(long)]
        domain: String,
    },
    /// List tenants.
    List,
    /// Remove a tenant that has no subscribers or numbers left. Its CDRs stay.
    Remove { name: String },
}

#[derive(Subcommand, Debug)]
pub enum SubscriberCommand {
    /// Add a subscriber to a tenant. Only digests of the password are stored.
    Add {
        tenant: String,
        user: String,
        #[arg(long)]
        password: String,
        /// A number the subscriber can also be called at.
        #[arg(long)]
        number: Option<String>,
        /// The display name.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// List a tenant's subscribers.
    List { tenant: String },
    /// Remove a subscriber and its registrations.
    Remove { tenant: String, user: String },
}

#[derive(Subcommand, Debug)]
pub enum NumberCommand {
    /// Route a number of the tenant's to a conference room or a subscriber.
    Add {
        tenant: String,
        number: String,
        /// Callers to the number join this conference room.
        #[arg(
            long,
            conflicts_with = "subscriber",
            required_unless_present = "subscriber"
        )]
        conference: Option<String>,
        /// Calls to the number ring this subscriber.
        #[arg(long)]
        subscriber: Option<String>,
    },
    /// List a tenant's numbers.
    List { tenant: String },
    /// Stop routing a number.
    Remove { tenant: String, number: String },
}

#[derive(Subcommand, Debug)]
pub enum CdrCommand {
    /// List call records, newest first.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

async fn tenant_named(store: &Store, name: &str) -> anyhow::Result<store::Tenant> {
    match store.tenant_by_name(name).await? {
        Some(t) => Ok(t),
        None => bail!("no tenant named {name:?}"),
    }
}

pub fn tenant(cmd: TenantCommand, at: &StoreArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store = at.open().await?;
        match cmd {
            TenantCommand::Add { name, domain } => {
                let t = store.add_tenant(&name, &domain).await?;
                println!("added tenant {} (domain {})", t.name, t.domain);
            }
            TenantCommand::List => {
                println!("{:<24} {:<32} {:>5}", "NAME", "DOMAIN", "ID");
                for t in store.list_tenants().await? {
                    println!("{:<24} {:<32} {:>5}", t.name, t.domain, t.id.0);
                }
            }
            TenantCommand::Remove { name } => {
                let t = tenant_named(&store, &name).await?;
                store.remove_tenant(t.id).await?;
                println!("removed tenant {name}");
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn number(cmd: NumberCommand, at: &StoreArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store = at.open().await?;
        match cmd {
            NumberCommand::Add {
                tenant,
                number,
                conference,
                subscriber,
            } => {
                let t = tenant_named(&store, &tenant).await?;
                let (kind, target) = match (conference, subscriber) {
                    (Some(room), _) => (store::NumberKind::Conference, room),
                    (None, Some(user)) => {
                        if store.find_subscriber(&t.domain, &user).await?.is_none() {
                            bail!("tenant {tenant} has no subscriber {user:?}");
                        }
                        (store::NumberKind::Subscriber, user)
                    }
                    (None, None) => {
                        bail!("say where the number goes: --conference or --subscriber")
                    }
                };
                store.add_number(t.id, &number, kind, &target).await?;
                println!("number {number} → {} {target}", kind.as_str());
            }
            NumberCommand::List { tenant } => {
                let t = tenant_named(&store, &tenant).await?;
                println!("{:<20} {:<12} TARGET", "NUMBER", "KIND");
                for n in store.list_numbers(t.id).await? {
                    println!("{:<20} {:<12} {}", n.number, n.kind.as_str(), n.target);
                }
            }
            NumberCommand::Remove { tenant, number } => {
                let t = tenant_named(&store, &tenant).await?;
                let Some(n) = store.find_number(t.id, &number).await? else {
                    bail!("tenant {tenant} has no number {number:?}");
                };
                store.remove_number(n.id).await?;
                println!("removed number {number}");
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn subscriber(cmd: SubscriberCommand, at: &StoreArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store = at.open().await?;
        match cmd {
            SubscriberCommand::Add {
                tenant,
                user,
                password,
                number,
                display_name,
            } => {
                let t = tenant_named(&store, &tenant).await?;
                let s = store
                    .add_subscriber(&NewSubscriber {
                        tenant_id: t.id,
                        username: &user,
                        password: &password,
                        number: number.as_deref(),
                        display_name: display_name.as_deref(),
                        enabled: true,
                    })
                    .await?;
                println!(
                    "added subscriber {}@{}{}",
                    s.username,
                    t.domain,
                    s.number
                        .map(|n| format!(" (number {n})"))
                        .unwrap_or_default()
                );
            }
            SubscriberCommand::List { tenant } => {
                let t = tenant_named(&store, &tenant).await?;
                println!(
                    "{:<24} {:<16} {:<24} {:<7}",
                    "USER", "NUMBER", "DISPLAY NAME", "ENABLED"
                );
                for s in store.list_subscribers(t.id).await? {
                    println!(
                        "{:<24} {:<16} {:<24} {:<7}",
                        s.username,
                        s.number.as_deref().unwrap_or("-"),
                        s.display_name.as_deref().unwrap_or("-"),
                        if s.enabled { "yes" } else { "no" }
                    );
                }
            }
            SubscriberCommand::Remove { tenant, user } => {
                let t = tenant_named(&store, &tenant).await?;
                let Some(s) = store.find_subscriber(&t.domain, &user).await? else {
                    bail!("no subscriber {user:?} in tenant {tenant:?}");
                };
                store.remove_subscriber(s.id).await?;
                println!("removed subscriber {user}@{}", t.domain);
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn time(ms: i64) -> String {
    let t = store::UtcTime::from_unix_ms(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

pub fn cdr(cmd: CdrCommand, at: &StoreArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store = at.open().await?;
        match cmd {
            CdrCommand::List { tenant, limit } => {
                let tenant_id = match tenant {
                    Some(name) => Some(tenant_named(&store, &name).await?.id),
                    None => None,
                };
                let cdrs = store
                    .list_cdrs(&CdrFilter {
                        tenant: tenant_id,
                        limit,
                        ..CdrFilter::default()
                    })
                    .await?;
                println!(
                    "{:<19} {:<12} {:<20} {:<20} {:>8} {:<10} {:>4} {:<8} {:>9} {:>9}",
                    "START (UTC)",
                    "TENANT",
                    "CALLER",
                    "CALLEE",
                    "SECONDS",
                    "RESULT",
                    "CODE",
                    "ENDED BY",
                    "A PKTS/LOST",
                    "B PKTS/LOST"
                );
                for c in cdrs {
                    let leg = |l: &Option<store::LegStats>| {
                        l.as_ref().map_or_else(
                            || "-".to_string(),
                            |l| format!("{}/{}", l.packets_received, l.packets_lost),
                        )
                    };
                    println!(
                        "{:<19} {:<12} {:<20} {:<20} {:>8.1} {:<10} {:>4} {:<8} {:>9} {:>9}",
                        time(c.start_at),
                        c.tenant_name,
                        c.caller,
                        c.callee,
                        c.duration_ms as f64 / 1000.0,
                        c.disposition.as_str(),
                        c.sip_code,
                        c.hangup_side.as_str(),
                        leg(&c.leg_a),
                        leg(&c.leg_b)
                    );
                }
            }
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(time(1_795_322_826_177), "2026-11-22 04:47:06");
    }
}
