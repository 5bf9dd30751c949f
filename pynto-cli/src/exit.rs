//! Exit codes, and the failures that carry them to `main`.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | `pynto call`: the expression failed (a remote exception, or a local evaluation error such as an unknown name); a scripted `pynto connect`: a line failed |
//! | 2 | usage error: bad arguments, an unset `--token-env` variable, unreadable `--tls-ca`/`--tls-cert`/`--tls-key`, a syntax error in `call`'s expression |
//! | 3 | bad address |
//! | 4 | connection refused, or the peer is unreachable |
//! | 5 | authentication failed: wrong or missing token, or the TLS handshake failed (server certificate not trusted, client certificate missing or refused) |
//! | 6 | protocol or version error |
//! | 7 | the connection was lost (or a call timed out) |

use std::fmt;

use pynto_proto::Failure;
use pynto_runtime::Error;

/// A process exit code of `pynto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// The evaluated expression failed.
    Failed = 1,
    /// Bad command line.
    Usage = 2,
    /// The address cannot be parsed.
    BadAddress = 3,
    /// The peer cannot be reached.
    Unreachable = 4,
    /// The peer refused our credentials, or we refused its certificate.
    Auth = 5,
    /// The peer broke the protocol or speaks another version.
    Protocol = 6,
    /// The connection ended under us.
    Lost = 7,
}

/// A failure to report on standard error (after `pynto: `) before exiting with `code`.
#[derive(Debug)]
pub struct CliError {
    /// How the process exits.
    pub code: Code,
    /// What to print; the first line is the summary.
    pub message: String,
}

impl CliError {
    /// A failure with `code`.
    pub fn new(code: Code, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(Code::Usage, message)
    }

    /// A runtime error met while using an open session.
    pub fn runtime(e: &Error) -> CliError {
        match e {
            Error::Remote(f) => CliError::new(Code::Failed, format_failure(f)),
            Error::ConnectionClosed(why) | Error::Transport { why, .. } => {
                CliError::new(Code::Lost, format!("connection lost: {why}"))
            }
            Error::Timeout => CliError::new(Code::Lost, "the call timed out"),
            Error::Authentication(why) => CliError::new(Code::Auth, why.clone()),
            Error::VersionMismatch { reason, .. } => CliError::new(Code::Protocol, reason.clone()),
            Error::Protocol(why) => CliError::new(Code::Protocol, format!("protocol error: {why}")),
            Error::Interrupted(why) => CliError::new(Code::Failed, format!("interrupted: {why}")),
            Error::Overloaded(why) => CliError::new(Code::Failed, format!("overloaded: {why}")),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exception's type as Python prints it: builtins without their module.
pub fn short_type(type_name: &str) -> &str {
    type_name.strip_prefix("builtins.").unwrap_or(type_name)
}

/// A remote failure: `TypeName: message`, then the remote traceback when it says more than
/// that line.
pub fn format_failure(f: &Failure) -> String {
    let summary = if f.message.is_empty() {
        short_type(&f.type_name).to_string()
    } else {
        format!("{}: {}", short_type(&f.type_name), f.message)
    };
    let tb = f.traceback.trim_end();
    if tb.is_empty() || tb == summary {
        summary
    } else {
        format!("{summary}\nremote traceback:\n{tb}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pynto_proto::ErrorKind;

    #[test]
    fn failures_read_like_python() {
        let mut f = Failure::new(
            ErrorKind::Remote,
            "builtins.ValueError",
            "math domain error",
        );
        assert_eq!(format_failure(&f), "ValueError: math domain error");
        f.traceback = "ValueError: math domain error\n".into();
        assert_eq!(format_failure(&f), "ValueError: math domain error");
        f.traceback = "Traceback (most recent call last):\n  File \"x\", line 1\nValueError: math domain error\n".into();
        assert!(format_failure(&f)
            .starts_with("ValueError: math domain error\nremote traceback:\nTraceback"));
    }

    #[test]
    fn runtime_errors_map_to_exit_codes() {
        let cases = [
            (Error::ConnectionClosed("x".into()), Code::Lost),
            (Error::Timeout, Code::Lost),
            (
                Error::Transport {
                    kind: std::io::ErrorKind::ConnectionReset,
                    why: "the connection broke".into(),
                },
                Code::Lost,
            ),
            (
                Error::Authentication(
                    "the peer refused the connection: authentication failed: wrong token".into(),
                ),
                Code::Auth,
            ),
            // The kind decides, not the text.
            (
                Error::Protocol("the peer sent: authentication failed".into()),
                Code::Protocol,
            ),
            (
                Error::VersionMismatch {
                    ours: 1,
                    theirs: Some(2),
                    reason: "protocol version mismatch".into(),
                },
                Code::Protocol,
            ),
            (
                Error::Remote(Failure::new(ErrorKind::Remote, "builtins.KeyError", "'k'")),
                Code::Failed,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(CliError::runtime(&e).code, code, "{e}");
        }
    }
}
