//! The rows the store hands out and the inputs it takes.

use std::fmt;
use std::net::SocketAddr;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type,
            serde::Serialize, serde::Deserialize,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A tenant's row id.
    TenantId
);
id_type!(
    /// A subscriber's row id.
    SubscriberId
);
id_type!(
    /// A registration binding's row id.
    BindingId
);
id_type!(
    /// A CDR's row id; ids grow, so they double as the pagination cursor.
    CdrId
);
id_type!(
    /// A number's row id.
    NumberId
);

/// Enums stored as lower-case text, so rows stay readable in a SQL shell.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // As the same text the database holds, so a spooled CDR reads alike.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&text).ok_or_else(|| {
                    serde::de::Error::custom(concat!("unknown ", stringify!($name)))
                })
            }
        }
    };
}

text_enum!(
    /// How a call ended, for billing and reports.
    Disposition {
        /// Answered (2xx), then hung up.
        Answered => "answered",
        /// 486/600 Busy.
        Busy => "busy",
        /// Rang until a timeout or a 408/480.
        NoAnswer => "no_answer",
        /// The caller gave up before an answer (CANCEL).
        Cancelled => "cancelled",
        /// Refused by policy or the callee: 403, 404, 603, ...
        Rejected => "rejected",
        /// Could not be placed: 5xx, no route, media failure, ...
        Failed => "failed",
    }
);

text_enum!(
    /// Who ended the call.
    HangupSide {
        Caller => "caller",
        Callee => "callee",
        /// The platform: timeout, balance exhausted, shutdown, ...
        System => "system",
    }
);

text_enum!(
    /// What a dialled number leads to.
    NumberKind {
        Subscriber => "subscriber",
        Conference => "conference",
        Script => "script",
    }
);

/// A tenant: one customer of the platform, told apart by its SIP domain.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// Lower-case; also the digest realm of its subscribers.
    pub domain: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A subscriber as stored: digest secrets only, never the password.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Subscriber {
    pub id: SubscriberId,
    pub tenant_id: TenantId,
    pub username: String,
    pub number: Option<String>,
    pub display_name: Option<String>,
    pub enabled: bool,
    /// MD5(username:realm:password), lower-case hex.
    pub ha1_md5: String,
    /// SHA-256(username:realm:password), lower-case hex.
    pub ha1_sha256: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Input of [`Store::add_subscriber`](crate::Store::add_subscriber).
#[derive(Debug, Clone)]
pub struct NewSubscriber<'a> {
    pub tenant_id: TenantId,
    pub username: &'a str,
    pub password: &'a str,
    pub number: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub enabled: bool,
}

/// A registration binding (RFC 3261 §10): where to reach a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub id: BindingId,
    pub subscriber_id: SubscriberId,
    /// The Contact URI as registered.
    pub contact: String,
    /// "udp", "tcp", "tls", "ws" or "wss": how the REGISTER arrived.
    pub transport: String,
    /// Where the REGISTER came from; requests go here, which is what gets
    /// through the phone's NAT.
    pub source: SocketAddr,
    /// Names the connection (or RFC 5626 flow) the REGISTER came over.
    pub flow_token: Option<String>,
    /// Unix milliseconds.
    pub expires_at: i64,
    pub call_id: String,
    pub cseq: u32,
    /// The Contact's q-value in thousandths (q=0.5 is 500).
    pub q_milli: Option<u16>,
    /// RFC 5626 +sip.instance.
    pub instance_id: Option<String>,
    /// RFC 5626 reg-id.
    pub reg_id: Option<u32>,
    pub user_agent: Option<String>,
    pub updated_at: i64,
}

/// Input of [`Store::upsert_binding`](crate::Store::upsert_binding).
#[derive(Debug, Clone)]
pub struct NewBinding<'a> {
    pub subscriber_id: SubscriberId,
    pub contact: &'a str,
    pub transport: &'a str,
    pub source: SocketAddr,
    pub flow_token: Option<&'a str>,
    pub expires_at: i64,
    pub call_id: &'a str,
    pub cseq: u32,
    pub q_milli: Option<u16>,
    pub instance_id: Option<&'a str>,
    pub reg_id: Option<u32>,
    pub user_agent: Option<&'a str>,
    /// The REGISTER's arrival time, unix milliseconds.
    pub now: i64,
}

/// Media statistics of one call leg, as the SBC reports them at hang-up.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct LegStats {
    pub packets_sent: u64,
    pub packets_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Clamp RTCP's signed cumulative loss at 0 before storing: duplicates can
    /// make it negative.
    pub packets_lost: u64,
    /// Interarrival jitter, microseconds.
    pub jitter_us: u64,
    /// Estimated MOS, 1.0 to 5.0 (the database refuses anything else).
    pub mos: Option<f64>,
}

/// Input of [`Store::insert_cdr`](crate::Store::insert_cdr) and of the
/// [`CdrWriter`](crate::CdrWriter); owned, because a CDR may wait in the
/// writer's queue or spool after its call is gone.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewCdr {
    pub tenant_id: TenantId,
    /// Kept as text so the CDR still names its tenant after the tenant is gone.
    pub tenant_name: String,
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    /// Direction or route, e.g. "internal", "outbound:carrier-x", "conference".
    pub direction: String,
    /// Unix milliseconds, as are the two below.
    pub start_at: i64,
    pub answer_at: Option<i64>,
    pub end_at: i64,
    pub disposition: Disposition,
    /// Final SIP response code (200 for answered calls; 0 if none was sent).
    pub sip_code: u16,
    pub hangup_side: HangupSide,
    /// Caller side.
    pub leg_a: Option<LegStats>,
    /// Callee side.
    pub leg_b: Option<LegStats>,
}

/// A stored call detail record.
#[derive(Debug, Clone, PartialEq)]
pub struct Cdr {
    pub id: CdrId,
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub direction: String,
    pub start_at: i64,
    pub answer_at: Option<i64>,
    pub end_at: i64,
    /// Billable milliseconds: from answer to end, 0 if never answered.
    pub duration_ms: i64,
    pub disposition: Disposition,
    pub sip_code: u16,
    pub hangup_side: HangupSide,
    pub leg_a: Option<LegStats>,
    pub leg_b: Option<LegStats>,
}

/// Which CDRs [`Store::list_cdrs`](crate::Store::list_cdrs) returns, newest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct CdrFilter {
    pub tenant: Option<TenantId>,
    /// Calls that started at or after this time (unix ms).
    pub since: Option<i64>,
    /// Calls that started before this time (unix ms).
    pub until: Option<i64>,
    /// Page size; 0 means 100, and more than 1000 is cut to 1000.
    pub limit: u32,
    /// Only CDRs older than this one: pass the last id of the previous page.
    pub cursor: Option<CdrId>,
}

/// Totals over the CDRs a filter selects (its limit and cursor are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CdrSummary {
    pub calls: i64,
    pub answered: i64,
    pub billable_ms: i64,
}

/// A number a tenant answers, and what it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    pub id: NumberId,
    pub tenant_id: TenantId,
    pub number: String,
    pub kind: NumberKind,
    /// A username for `subscriber`, a conference name, a script name.
    pub target: String,
    pub created_at: i64,
}
