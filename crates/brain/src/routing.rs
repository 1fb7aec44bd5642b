//! Where a call goes: one interface, [`Router`], that the built-in
//! directory router implements and tenants' scripts will implement too.
//!
//! A router only decides; the B2BUA carries the decision out (looking the
//! target up in the registrar, placing leg B, answering the caller).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use store::{NumberKind, Subscriber, Tenant};

use crate::directory::Directory;

/// What the router knows about a new call.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The caller's tenant (the calls stays inside it).
    pub tenant: Tenant,
    /// The authenticated caller.
    pub caller: Subscriber,
    /// The user part of the Request-URI (a username or a number; empty
    /// when the URI had none).
    pub target: String,
    pub request_uri: String,
    pub from: String,
    pub to: String,
    /// Every header of the INVITE, in order, as (name, value).
    pub headers: Vec<(String, String)>,
    /// Where the INVITE came from.
    pub source: SocketAddr,
}

impl CallContext {
    /// The first header of this name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A router's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision {
    /// Ring this subscriber of the caller's tenant (username or number).
    Subscriber(String),
    /// Answer and put the caller in this conference room of their tenant.
    Conference(String),
    /// Refuse the call with this final response.
    Reject { code: u16, reason: Option<String> },
}

/// The future a [`Router`] returns; boxed so routers can sit behind `dyn`
/// (the script host is chosen at run time).
pub type RouteFuture<'a> = Pin<Box<dyn Future<Output = RouteDecision> + Send + 'a>>;

pub trait Router: Send + Sync {
    fn route<'a>(&'a self, call: &'a CallContext) -> RouteFuture<'a>;
}

/// The default: the Request-URI user names a subscriber of the caller's
/// tenant, by username, by number, or through a number the tenant routes
/// to a subscriber.
pub struct DirectoryRouter {
    directory: Directory,
}

impl DirectoryRouter {
    pub fn new(directory: Directory) -> Self {
        Self { directory }
    }

    async fn decide(&self, call: &CallContext) -> RouteDecision {
        if call.target.is_empty() {
            return reject(404, "No user in Request-URI");
        }
        // A DID the tenant maps somewhere else wins over a subscriber's own
        // number field: numbers are the tenant's routing table.
        match self
            .directory
            .find_number(call.tenant.id, &call.target)
            .await
        {
            Ok(Some(n)) => match n.kind {
                NumberKind::Subscriber => RouteDecision::Subscriber(n.target),
                NumberKind::Conference => RouteDecision::Conference(n.target),
                NumberKind::Script => reject(501, "Number leads to a service not available"),
            },
            Ok(None) => RouteDecision::Subscriber(call.target.clone()),
            Err(e) => {
                tracing::warn!(error = %e, "number lookup failed");
                reject(500, "Routing unavailable")
            }
        }
    }
}

fn reject(code: u16, reason: &str) -> RouteDecision {
    RouteDecision::Reject {
        code,
        reason: Some(reason.to_string()),
    }
}

impl Router for DirectoryRouter {
    fn route<'a>(&'a self, call: &'a CallContext) -> RouteFuture<'a> {
        Box::pin(self.decide(call))
    }
}
