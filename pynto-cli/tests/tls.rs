//! `pynto` over TLS against a Rust server in this test process that asks for a client
//! certificate: `--tls-cert`/`--tls-key` get in, leaving them out does not, and the options
//! are checked before dialling. Certificates are made in the test with rcgen.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use pynto_transport::{Address, Listener, TlsServer};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority that signs one server and one client certificate, all written as
/// PEM files into `dir` (removed on drop).
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("pynto-cli-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "pynto test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        for (who, names, purpose) in [
            (
                "server",
                vec!["localhost".to_string(), "127.0.0.1".to_string()],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            (
                "client",
                vec!["pynto-client".to_string()],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        ] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names.clone()).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, &names[0]);
            params.extended_key_usages = vec![purpose];
            let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
            std::fs::write(dir.join(format!("{who}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{who}.key")), key.serialize_pem()).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn client_certificates() {
    let pki = Pki::new("client-cert");
    let tls = TlsServer {
        cert: pki.dir().join("server.pem"),
        key: pki.dir().join("server.key"),
        client_ca: Some(pki.dir().join("ca.pem")),
    };
    let listener =
        Listener::bind(&Address::parse("tls://127.0.0.1:0").unwrap(), Some(&tls)).unwrap();
    let addr = serve(listener, None);
    assert!(addr.starts_with("tls://"), "{addr}");
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );

    let with_cert = [
        "call",
        &addr,
        "root.add(2, 3)",
        "--tls-ca",
        &ca,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    assert_eq!(expect(&pynto(&with_cert), 0).0, "5\n");

    // Without a certificate the server refuses the connection: an authentication failure.
    let (out, err) = expect(
        &pynto(&["call", &addr, "root.add(2, 3)", "--tls-ca", &ca]),
        5,
    );
    assert_eq!(out, "");
    one_line(&err, "the TLS handshake failed: ");

    // A certificate without its key, a key file that is not one, or client options on a
    // plain address are usage errors, found before dialling.
    let (_, err) = expect(
        &pynto(&["call", &addr, "root", "--tls-ca", &ca, "--tls-cert", &cert]),
        2,
    );
    assert!(err.contains("--tls-key"), "{err}");
    let (_, err) = expect(
        &pynto(&[
            "call",
            &addr,
            "root",
            "--tls-ca",
            &ca,
            "--tls-cert",
            &cert,
            "--tls-key",
            &ca,
        ]),
        2,
    );
    one_line(&err, "--tls-ca/--tls-cert/--tls-key: ");
    let (_, err) = expect(
        &pynto(&[
            "call",
            "127.0.0.1:1",
            "root",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ]),
        2,
    );
    one_line(&err, "only apply to tls:// addresses");
}
