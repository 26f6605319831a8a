//! The keys and certificates an upstream control plane is started with, all made at start and
//! written into its directory: one CA, kube-apiserver's serving certificate, the injector
//! webhook's serving certificate, and the key pair that signs service-account tokens.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::error::Error;

/// Where the files are, and the CA and webhook material the process itself needs.
pub struct Pki {
    pub ca_cert: PathBuf,
    pub apiserver_cert: PathBuf,
    pub apiserver_key: PathBuf,
    pub service_account_key: PathBuf,
    pub service_account_pub: PathBuf,
    pub ca_pem: String,
    pub webhook_cert_pem: String,
    pub webhook_key_pem: String,
}

fn tls_error(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

fn write(path: &Path, contents: &str) -> Result<(), Error> {
    std::fs::write(path, contents)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// A serving certificate for `names` (DNS names or IP addresses), signed by the CA.
fn serving_cert(
    issuer: &Issuer<'_, KeyPair>,
    common_name: &str,
    names: &[&str],
) -> Result<(String, String), Error> {
    let key = KeyPair::generate().map_err(tls_error)?;
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .map_err(tls_error)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, issuer).map_err(tls_error)?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl Pki {
    pub fn generate(dir: &Path) -> Result<Pki, Error> {
        let ca_key = KeyPair::generate().map_err(tls_error)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kube-sim-upstream-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_error)?;
        let issuer = Issuer::new(ca_params, ca_key);

        // The names clients use on loopback, and the in-cluster ones a ServiceAccount's
        // kubeconfig would (10.0.0.1 is the first address of --service-cluster-ip-range).
        let (apiserver_pem, apiserver_key_pem) = serving_cert(
            &issuer,
            "kube-apiserver",
            &[
                "127.0.0.1",
                "localhost",
                "10.0.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )?;
        let (webhook_cert_pem, webhook_key_pem) = serving_cert(
            &issuer,
            "istio-sidecar-injector",
            &["127.0.0.1", "localhost"],
        )?;
        let service_account = KeyPair::generate().map_err(tls_error)?;

        let pki = Pki {
            ca_cert: dir.join("ca.crt"),
            apiserver_cert: dir.join("apiserver.crt"),
            apiserver_key: dir.join("apiserver.key"),
            service_account_key: dir.join("service-account.key"),
            service_account_pub: dir.join("service-account.pub"),
            ca_pem: ca_cert.pem(),
            webhook_cert_pem,
            webhook_key_pem,
        };
        write(&pki.ca_cert, &pki.ca_pem)?;
        write(&pki.apiserver_cert, &apiserver_pem)?;
        write(&pki.apiserver_key, &apiserver_key_pem)?;
        write(&pki.service_account_key, &service_account.serialize_pem())?;
        write(&pki.service_account_pub, &service_account.public_key_pem())?;
        Ok(pki)
    }
}
