//! A real HTTPS endpoint in front of a plain-HTTP node, for tests: a test CA and a
//! certificate for `localhost` and `127.0.0.1` are made at start (rcgen), and every TLS
//! connection accepted (tokio-rustls) is relayed byte for byte to the node's TCP port.
//! Shared with valet-cli's tests (`#[path]`), so both test the same endpoint.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{
    self,
    pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
};

/// A TLS reverse proxy listening on 127.0.0.1; stops when dropped.
pub(crate) struct TlsProxy {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// The test CA's certificate (PEM): trust it to reach the proxy.
    pub(crate) ca_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsProxy {
    /// Starts a proxy relaying to `upstream` (`host:port` of a plain-TCP HTTP server).
    pub(crate) async fn start(upstream: SocketAddr) -> TlsProxy {
        let (ca_pem, config) = test_pki();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to relay.
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut node) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut node).await;
                });
            }
        });
        TlsProxy { addr, ca_pem, task }
    }

    /// `https://localhost:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// Writes the CA certificate to `dir/ca.pem` and returns its path.
    pub(crate) fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write ca.pem");
        path
    }
}

/// A fresh CA (PEM) and a server configuration whose certificate it signed.
fn test_pki() -> (String, rustls::ServerConfig) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Valet test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
        .expect("ca cert");
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf");
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("leaf cert");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
    .expect("server config");
    (ca.pem(), config)
}
