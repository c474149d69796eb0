//! libpq's checks of the server's authentication requests (`check_expected_areq`,
//! `pg_SASL_init` in `fe-auth.c`), run by the start-up watch on each request before
//! tokio-postgres answers it: `PGREQUIREAUTH` and `PGCHANNELBINDING=require`.

use std::sync::Arc;

use super::watch::{AuthCheck, AuthRequest};
use crate::env::{ChannelBinding, Method, RequireAuth, Settings};

/// The check for an attempt with these settings, `None` when neither variable asks for
/// one.
pub(crate) fn auth_check(settings: &Settings) -> Option<AuthCheck> {
    let require = settings.require_auth.as_ref().map(|s| s.value.clone());
    let binding = settings.channel_binding.value;
    if require.is_none() && binding != ChannelBinding::Require {
        return None;
    }
    Some(Arc::new(
        move |seen: &[AuthRequest], request: &AuthRequest| {
            if let Some(require) = &require {
                require_auth(require, seen, request, binding)?;
            }
            if binding == ChannelBinding::Require {
                channel_binding(seen, request)?;
            }
            Ok(())
        },
    ))
}

/// libpq's `check_expected_areq` for `require_auth` (PGREQUIREAUTH): `Err` carries
/// libpq's message. `channel_binding` tells which SCRAM mechanism libpq would pick (for
/// the message).
pub(crate) fn require_auth(
    require: &RequireAuth,
    seen: &[AuthRequest],
    request: &AuthRequest,
    channel_binding: ChannelBinding,
) -> std::result::Result<(), String> {
    let fail = |reason: String| {
        Err(format!(
            "authentication method requirement \"{}\" failed: {reason}",
            require.as_str()
        ))
    };
    let sasl_allowed = require.allows(Method::Scram) || require.allows(Method::Oauth);
    match request {
        AuthRequest::Ok => {
            // The client finished an exchange when it answered a password request or
            // the server completed a SASL exchange.
            let finished = seen.iter().any(|r| {
                matches!(
                    r,
                    AuthRequest::CleartextPassword
                        | AuthRequest::Md5Password
                        | AuthRequest::SaslFinal
                )
            });
            if require.auth_required() && !finished {
                return fail("server did not complete authentication".into());
            }
            Ok(())
        }
        AuthRequest::CleartextPassword if !require.allows(Method::Password) => {
            fail("server requested a cleartext password".into())
        }
        AuthRequest::Md5Password if !require.allows(Method::Md5) => {
            fail("server requested a hashed password".into())
        }
        AuthRequest::Gss | AuthRequest::GssContinue if !require.allows(Method::Gss) => {
            fail("server requested GSSAPI authentication".into())
        }
        AuthRequest::Sspi if !require.allows(Method::Sspi) => {
            fail("server requested SSPI authentication".into())
        }
        AuthRequest::Sasl(_) | AuthRequest::SaslContinue | AuthRequest::SaslFinal
            if !sasl_allowed =>
        {
            fail("server requested SASL authentication".into())
        }
        AuthRequest::Sasl(mechanisms) if !require.allows(Method::Scram) => {
            // libpq 18 (pg_SASL_init): SASL is allowed (oauth), SCRAM is not; the
            // message names the mechanism libpq would have picked.
            let plus = channel_binding != ChannelBinding::Disable
                && mechanisms.iter().any(|m| m == "SCRAM-SHA-256-PLUS");
            let mechanism = if plus {
                "SCRAM-SHA-256-PLUS"
            } else {
                "SCRAM-SHA-256"
            };
            fail(format!("server requested {mechanism} authentication"))
        }
        AuthRequest::Other(_) => fail("server requested an unknown authentication type".into()),
        _ => Ok(()),
    }
}

/// libpq's `channel_binding=require` checks (`check_expected_areq`, `pg_SASL_init`).
pub(crate) fn channel_binding(
    seen: &[AuthRequest],
    request: &AuthRequest,
) -> std::result::Result<(), String> {
    match request {
        AuthRequest::Sasl(mechanisms) => {
            if mechanisms.iter().any(|m| m == "SCRAM-SHA-256-PLUS") {
                Ok(())
            } else {
                // PostgreSQL offers SCRAM-SHA-256-PLUS on every SSL session (11+), so a
                // list without it means a plaintext session: libpq's message for that.
                Err("channel binding required, but SSL not in use".into())
            }
        }
        AuthRequest::SaslContinue | AuthRequest::SaslFinal => Ok(()),
        AuthRequest::Ok => {
            // Bound only if a SCRAM-SHA-256-PLUS exchange ran to its end (with
            // channel_binding=require tokio-postgres picks PLUS whenever it is offered).
            let plus = seen.iter().any(|r| {
                matches!(r, AuthRequest::Sasl(m) if m.iter().any(|m| m == "SCRAM-SHA-256-PLUS"))
            });
            let finished = seen.contains(&AuthRequest::SaslFinal);
            if plus && finished {
                Ok(())
            } else {
                Err("channel binding required, but server authenticated client without channel binding".into())
            }
        }
        _ => Err(
            "channel binding required but not supported by server's authentication request".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl(plus: bool) -> AuthRequest {
        let mut m = vec!["SCRAM-SHA-256".to_string()];
        if plus {
            m.insert(0, "SCRAM-SHA-256-PLUS".to_string());
        }
        AuthRequest::Sasl(m)
    }

    #[test]
    fn require_auth_checks() {
        let ok = AuthRequest::Ok;
        let cb = ChannelBinding::Prefer;
        // "" and "none": only trust.
        for v in ["", "none"] {
            let r = RequireAuth::parse(v).unwrap();
            assert!(require_auth(&r, &[], &ok, cb).is_ok());
            assert_eq!(
                require_auth(&r, &[], &sasl(true), cb).unwrap_err(),
                format!("authentication method requirement \"{v}\" failed: server requested SASL authentication")
            );
        }
        let r = RequireAuth::parse("password").unwrap();
        assert!(require_auth(&r, &[], &ok, cb)
            .unwrap_err()
            .ends_with("server did not complete authentication"));
        assert!(require_auth(&r, &[], &AuthRequest::CleartextPassword, cb).is_ok());
        assert!(require_auth(&r, &[AuthRequest::CleartextPassword], &ok, cb).is_ok());
        assert!(require_auth(&r, &[], &AuthRequest::Md5Password, cb)
            .unwrap_err()
            .ends_with("server requested a hashed password"));
        let r = RequireAuth::parse("!scram-sha-256").unwrap();
        assert!(require_auth(&r, &[], &ok, cb).is_ok());
        assert!(require_auth(&r, &[], &sasl(true), cb)
            .unwrap_err()
            .ends_with("server requested SCRAM-SHA-256-PLUS authentication"));
        assert!(require_auth(&r, &[], &sasl(false), cb)
            .unwrap_err()
            .ends_with("server requested SCRAM-SHA-256 authentication"));
        let r = RequireAuth::parse("!none").unwrap();
        assert!(require_auth(&r, &[], &ok, cb)
            .unwrap_err()
            .ends_with("server did not complete authentication"));
        let done = [
            sasl(true),
            AuthRequest::SaslContinue,
            AuthRequest::SaslFinal,
        ];
        assert!(require_auth(&r, &done, &ok, cb).is_ok());
        let r = RequireAuth::parse("password,none").unwrap();
        assert!(require_auth(&r, &[], &ok, cb).is_ok());
    }

    #[test]
    fn channel_binding_require() {
        assert!(channel_binding(&[], &sasl(false))
            .unwrap_err()
            .contains("SSL not in use"));
        assert!(channel_binding(&[], &AuthRequest::Ok)
            .unwrap_err()
            .contains("without channel binding"));
        assert!(channel_binding(&[], &AuthRequest::CleartextPassword)
            .unwrap_err()
            .contains("not supported by server's authentication request"));
        let done = [
            sasl(true),
            AuthRequest::SaslContinue,
            AuthRequest::SaslFinal,
        ];
        assert!(channel_binding(&done, &AuthRequest::Ok).is_ok());
    }
}
