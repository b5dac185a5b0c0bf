//! The one HTTP client Valet uses to reach outside services (the upstream node, alert
//! webhooks): HTTP/1.1 over plain TCP or TLS (rustls with the `ring` provider, no C build).
//!
//! Server certificates are checked against the system's roots (`rustls-native-certs`: the
//! platform store, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set) plus, for private nodes,
//! the certificates of an extra PEM file ([`HttpOptions::ca_file`]). Credentials in the URL
//! (`https://user:pass@host/…`) become an HTTP Basic `Authorization` header. No error from
//! this module carries the URL: hosted nodes embed API keys in it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::{CertificateDer, pem::PemObject as _};

use crate::error::{Error, Result};

/// How to reach a service over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// How long one request may take, connection and body included.
    pub request_timeout: Duration,
    /// How long establishing a connection (TCP and TLS) may take.
    pub connect_timeout: Duration,
    /// A PEM file of extra trusted CA certificates (a private node's CA), added to the
    /// system's roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            request_timeout: crate::REQUEST_TIMEOUT,
            connect_timeout: crate::CONNECT_TIMEOUT,
            ca_file: None,
        }
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// An HTTP(S) client for POSTing JSON. Cheap to clone (one shared connection pool).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
    request_timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

/// A response: its status and its body (at most the limit given to [`HttpClient::post`]).
#[derive(Debug)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpClient {
    /// A client trusting the system's roots and `options.ca_file`.
    pub fn new(options: &HttpOptions) -> Result<Self> {
        let tls = tls_config(options.ca_file.as_ref())?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.connect_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            client,
            request_timeout: options.request_timeout,
        })
    }

    /// POSTs `body` to `url` with `headers` (and `content-type: application/json`), reading
    /// at most `limit` bytes of the answer. Redirects are not followed.
    pub async fn post(
        &self,
        url: &reqwest::Url,
        headers: &[(&str, String)],
        body: Vec<u8>,
        limit: usize,
    ) -> Result<HttpResponse> {
        let request = build_request(url, headers, body)?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| Error::Transport(describe(&e)))?;
            let status = response.status().as_u16();
            let body = read_limited(response.into_body(), limit).await?;
            Ok(HttpResponse { status, body })
        };
        tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| Error::Timeout)?
    }
}

/// The request: the URL without its credentials, which become a Basic `Authorization`.
fn build_request(
    url: &reqwest::Url,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<hyper::Request<Full<Bytes>>> {
    let mut bare = url.clone();
    let auth = basic_auth(url);
    // Cannot fail for an http(s) URL with a host.
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    let mut builder =
        hyper::Request::post(bare.as_str()).header(hyper::header::CONTENT_TYPE, "application/json");
    if let Some(auth) = auth {
        builder = builder.header(hyper::header::AUTHORIZATION, auth);
    }
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| Error::InvalidUrl("not a valid HTTP request target".into()))
}

/// `Basic base64(user:password)` when the URL carries credentials.
fn basic_auth(url: &reqwest::Url) -> Option<String> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let pair = format!(
        "{}:{}",
        decode(url.username()),
        decode(url.password().unwrap_or(""))
    );
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
}

/// Reads a body, refusing more than `limit` bytes.
async fn read_limited(mut body: hyper::body::Incoming, limit: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::Transport(describe(&e)))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(Error::BadResponse(format!(
                    "response larger than {limit} bytes"
                )));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// The rustls client configuration: the `ring` provider, the system's roots and the extra CA
/// file's certificates.
fn tls_config(ca_file: Option<&PathBuf>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable entries of the system store are skipped: one bad file must not take the
    // others down. No root at all only fails later, for https:// URLs, as an unknown issuer.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| Error::Tls(format!("CA file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Error::Tls(format!(
                "CA file {} holds no PEM certificate",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| Error::Tls(format!("CA file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// An error and its causes on one line (hyper's errors never include the URL).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_basic_auth_and_leave_the_url() {
        let url = reqwest::Url::parse("https://us%40er:p%3Ass@node.example/v2/key").unwrap();
        let request = build_request(&url, &[], Vec::new()).unwrap();
        assert_eq!(request.uri().to_string(), "https://node.example/v2/key");
        let auth = request.headers()[hyper::header::AUTHORIZATION]
            .to_str()
            .unwrap();
        // base64("us@er:p:ss")
        assert_eq!(auth, "Basic dXNAZXI6cDpzcw==");
        let plain = reqwest::Url::parse("http://127.0.0.1:8545").unwrap();
        let request = build_request(&plain, &[], Vec::new()).unwrap();
        assert!(
            request
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .is_none()
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("valet-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = HttpClient::new(&HttpOptions {
            ca_file: Some(path),
            ..HttpOptions::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
