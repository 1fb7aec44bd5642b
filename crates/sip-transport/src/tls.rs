//! rustls configuration from PEM: server identities and the client trust store.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::{PemSource, TlsIdentity};
use crate::error::TransportError;

/// Explicit rather than the process default, so another crate enabling a
/// second rustls backend cannot make config building fail at run time.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn config_err(e: impl std::fmt::Display) -> TransportError {
    TransportError::TlsConfig(e.to_string())
}

pub(crate) fn acceptor(identity: &TlsIdentity) -> Result<TlsAcceptor, TransportError> {
    let certs = certs(&identity.cert_chain)?;
    if certs.is_empty() {
        return Err(TransportError::TlsConfig(format!(
            "no certificate in {:?}",
            identity.cert_chain
        )));
    }
    let key_pem = read(&identity.key)?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| TransportError::TlsConfig(format!("bad private key PEM: {e}")))?
        .ok_or_else(|| {
            TransportError::TlsConfig(format!("no private key in {:?}", identity.key))
        })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(config_err)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

pub(crate) fn connector(roots: &[PemSource]) -> Result<TlsConnector, TransportError> {
    let mut store = RootCertStore::empty();
    for source in roots {
        for cert in certs(source)? {
            store.add(cert).map_err(config_err)?;
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_err)?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The name to send in SNI and to verify: the given one, else the peer's IP.
pub(crate) fn server_name(
    name: Option<&str>,
    remote: SocketAddr,
) -> Result<ServerName<'static>, TransportError> {
    match name {
        Some(name) => ServerName::try_from(name.to_owned())
            .map_err(|_| TransportError::ServerName(name.to_owned())),
        None => Ok(ServerName::IpAddress(remote.ip().into())),
    }
}

fn read(source: &PemSource) -> Result<Vec<u8>, TransportError> {
    match source {
        PemSource::Memory(pem) => Ok(pem.clone()),
        PemSource::File(path) => std::fs::read(path).map_err(|source| TransportError::ReadPem {
            path: path.clone(),
            source,
        }),
    }
}

fn certs(source: &PemSource) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let pem = read(source)?;
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TransportError::TlsConfig(format!("bad certificate PEM: {e}")))
}
