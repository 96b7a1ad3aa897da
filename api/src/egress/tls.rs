//! TLS for the hosts that secrets go to: a certificate authority of this install
//! (`DATA_DIR/egress-ca/`, made at first start, its key readable by root only) that
//! sprites trust, a certificate per host signed by it, and the client side that checks
//! the real server (the web's roots, plus `CORRAL_EGRESS_EXTRA_CA` for tests).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

/// The authority's name, as sprites see it in their trust store.
const CA_NAME: &str = "Corral egress CA (this install)";

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The install's authority, the host certificates made with it, and the client side.
pub struct Tls {
    ca_pem: String,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
    servers: Mutex<HashMap<String, Arc<ServerConfig>>>,
    client: Arc<ClientConfig>,
}

impl Tls {
    /// Loads the authority from `dir` (making it the first time) and the roots that
    /// upstream servers are checked against.
    pub fn open(dir: &Path, extra_ca: Option<&Path>) -> anyhow::Result<Tls> {
        std::fs::create_dir_all(dir)?;
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
        let ca_key = match std::fs::read_to_string(&key_path) {
            Ok(pem) => KeyPair::from_pem(&pem)?,
            Err(_) => {
                let key = KeyPair::generate()?;
                let tmp = key_path.with_extension("tmp");
                std::fs::write(&tmp, key.serialize_pem())?;
                std::fs::set_permissions(
                    &tmp,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )?;
                std::fs::rename(&tmp, &key_path)?;
                let _ = std::fs::remove_file(&cert_path);
                key
            }
        };
        // The same name and key always make an authority that signs for the one
        // sprites trust (the stored certificate), so it is made again at each start.
        let ca = ca_params()?.self_signed(&ca_key)?;
        let ca_pem = match std::fs::read_to_string(&cert_path) {
            Ok(pem) => pem,
            Err(_) => {
                std::fs::write(&cert_path, ca.pem())?;
                ca.pem()
            }
        };
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = extra_ca {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("CORRAL_EGRESS_EXTRA_CA {}: {e}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                roots.add(cert?)?;
            }
        }
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls {
            ca_pem,
            ca,
            ca_key,
            servers: Mutex::default(),
            client: Arc::new(client),
        })
    }

    /// The authority's certificate (PEM), for sprites' trust stores.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server side for `host`: a certificate for it signed by the authority.
    pub fn server_for(&self, host: &str) -> anyhow::Result<Arc<ServerConfig>> {
        if let Some(config) = self
            .servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
        {
            return Ok(config.clone());
        }
        let key = KeyPair::generate()?;
        let cert = CertificateParams::new(vec![host.to_string()])?.signed_by(
            &key,
            &self.ca,
            &self.ca_key,
        )?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)?;
        let config = Arc::new(config);
        self.servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host.to_string(), config.clone());
        Ok(config)
    }

    /// The client side that checks upstream servers.
    pub fn client(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }
}
