//! Opening a session to a pynto server from the command line's address and options, with a
//! failure mapped to the right exit code at each step (address, token, TLS, dial, handshake).

use std::path::PathBuf;

use clap::Args;
use pynto_runtime::native::{NativeHost, Object};
use pynto_runtime::{Config, Error, Role, Session};
use pynto_transport::{Address, TlsClient, TransportError};

use crate::exit::{CliError, Code};

/// Where to connect and how to authenticate; shared by every command.
#[derive(Args, Clone, Debug)]
pub struct ConnectArgs {
    /// The server: host:port, tcp://host:port, unix:///path or tls://host:port
    #[arg(value_name = "ADDRESS")]
    pub address: String,
    /// Authenticate with the shared secret held by this environment variable
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// PEM file of the CA that signs the server's certificate (tls:// addresses)
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// PEM file of this client's certificate chain, for servers that ask for one (with --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Read the token named by `--token-env`.
pub fn token(var: Option<&str>) -> Result<Option<String>, CliError> {
    let Some(var) = var else { return Ok(None) };
    match std::env::var(var) {
        Ok(token) if !token.is_empty() => Ok(Some(token)),
        Ok(_) => Err(CliError::usage(format!(
            "--token-env {var}: the environment variable {var} is empty"
        ))),
        Err(_) => Err(CliError::usage(format!(
            "--token-env {var}: the environment variable {var} is not set"
        ))),
    }
}

/// Parse an address (exit code 3 when it is not one).
pub fn address(text: &str) -> Result<Address, CliError> {
    Address::parse(text).map_err(|e| match e {
        TransportError::Address(why) => {
            CliError::new(Code::BadAddress, format!("bad address {why}"))
        }
        other => CliError::new(Code::BadAddress, format!("bad address {text:?}: {other}")),
    })
}

/// Connect and do the Hello exchange. This side serves nothing (a unit root).
pub fn open(args: &ConnectArgs) -> Result<Session<NativeHost>, CliError> {
    let addr = address(&args.address)?;
    let token = token(args.token_env.as_deref())?;
    let tls = match (&addr, &args.tls_ca) {
        (Address::Tls { .. }, Some(ca)) => {
            let client = TlsClient {
                ca: ca.clone(),
                cert: args.tls_cert.clone(),
                key: args.tls_key.clone(),
            };
            // Load the files now, so a bad file is a usage error rather than a failed dial.
            client.config().map_err(|e| {
                let options = if client.cert.is_some() {
                    "--tls-ca/--tls-cert/--tls-key"
                } else {
                    "--tls-ca"
                };
                CliError::usage(format!("{options}: {e}"))
            })?;
            Some(client)
        }
        (Address::Tls { .. }, None) => {
            return Err(CliError::usage(format!(
                "{addr} is a TLS address: give the server's CA with --tls-ca FILE"
            )))
        }
        (_, Some(_)) => {
            return Err(CliError::usage(format!(
                "--tls-ca only applies to tls:// addresses, not {addr}"
            )))
        }
        (_, None) if args.tls_cert.is_some() => {
            return Err(CliError::usage(format!(
                "--tls-cert and --tls-key only apply to tls:// addresses, not {addr}"
            )))
        }
        (_, None) => None,
    };
    let transport = pynto_transport::connect(&addr, tls.as_ref()).map_err(|e| match e {
        TransportError::Io(io) => {
            CliError::new(Code::Unreachable, format!("cannot connect to {addr}: {io}"))
        }
        TransportError::Tls(why) => CliError::new(
            Code::Auth,
            format!("TLS handshake with {addr} failed: {why}"),
        ),
        TransportError::Address(why) => {
            CliError::new(Code::BadAddress, format!("bad address {why}"))
        }
        other => CliError::new(
            Code::Unreachable,
            format!("cannot connect to {addr}: {other}"),
        ),
    })?;
    let config = Config {
        token,
        service_name: "pynto-cli".to_string(),
        ..Config::default()
    };
    Session::connect(
        transport,
        Role::Connector,
        NativeHost::new(),
        Object::unit(),
        config,
    )
    .map_err(|e| {
        let mut failure = CliError::runtime(&e);
        failure.message = match &e {
            Error::ConnectionClosed(why) => {
                format!("connection to {addr} lost during the handshake: {why}")
            }
            _ => format!("cannot connect to {addr}: {}", failure.message),
        };
        failure
    })
}
