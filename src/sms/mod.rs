//! Text-message gateways. The outbox (`sms_outbox`) is where every message waits; with a
//! gateway configured, the [`sender`] drains it through an adapter: Aliyun SMS ([`aliyun`], RPC
//! signature v1, HMAC-SHA1) or Tencent Cloud SMS ([`tencent`], TC3-HMAC-SHA256). The requests'
//! signing is pure and tested against the providers' documented known-answer vectors; the
//! adapters against a local server that checks those signatures.

pub mod aliyun;
pub mod sender;
pub mod tencent;

use crate::config::{SmsProvider, SmsSettings};
pub use crate::domain::sms::Attempt;
use crate::domain::sms::{reason, TEMPLATE_NAMES};
use std::fmt;
use std::sync::Arc;

/// One message as a gateway sends it: a template and its parameters, never free text.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// The outbox id, sent along where the provider takes one (Aliyun `OutId`, Tencent
    /// `SessionContext`), so that its records can be matched with ours.
    pub id: i64,
    /// The 11-digit mainland number.
    pub phone: &'a str,
    /// The provider's template id.
    pub template_id: &'a str,
    pub params: &'a [(String, String)],
}

#[async_trait::async_trait]
pub trait Gateway: Send + Sync {
    /// `aliyun` or `tencent`, for logs and metrics.
    fn name(&self) -> &'static str;

    /// One try: what came of it, never an error (the sender decides what to do next).
    async fn send(&self, m: &Outgoing<'_>) -> Attempt;
}

/// A key pair for a provider's API, from the environment. The secret never leaves this value
/// but to sign: it has no `Display`, and its `Debug` hides it.
#[derive(Clone)]
pub struct Credentials {
    pub id: String,
    secret: String,
}

pub const KEY_ID_VAR: &str = "SMS_ACCESS_KEY_ID";
pub const KEY_SECRET_VAR: &str = "SMS_ACCESS_KEY_SECRET";
/// The token in the address the provider pushes delivery reports to.
pub const REPORT_TOKEN_VAR: &str = "SMS_REPORT_TOKEN";

impl Credentials {
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            secret: secret.into(),
        }
    }

    /// `SMS_ACCESS_KEY_ID` and `SMS_ACCESS_KEY_SECRET`; an error names the one missing.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("the SMS gateway needs the environment variable {name}"))
        };
        Ok(Self::new(var(KEY_ID_VAR)?, var(KEY_SECRET_VAR)?))
    }

    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .field("secret", &"[hidden]")
            .finish()
    }
}

/// The configured gateway, checked: `None` for the outbox. Every template the service sends
/// needs an id, the sign name must be set, and Tencent needs its SdkAppId.
pub fn gateway(
    s: &SmsSettings,
    credentials: impl FnOnce() -> Result<Credentials, String>,
) -> anyhow::Result<Option<Arc<dyn Gateway>>> {
    if s.provider == SmsProvider::Outbox {
        return Ok(None);
    }
    let missing: Vec<&str> = TEMPLATE_NAMES
        .iter()
        .copied()
        .filter(|t| s.templates.get(*t).is_none_or(|id| id.trim().is_empty()))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "sms.templates has no template id for {} (the provider's id of each message)",
            missing.join(", ")
        );
    }
    if s.sign_name.trim().is_empty() {
        anyhow::bail!("sms.sign_name is empty (the signature registered with the provider)");
    }
    let credentials = credentials().map_err(anyhow::Error::msg)?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(
            s.request_timeout_secs.max(1),
        ))
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()?;
    Ok(Some(match s.provider {
        SmsProvider::Aliyun => Arc::new(aliyun::Aliyun::new(client, s, credentials)?),
        SmsProvider::Tencent => {
            if s.sdk_app_id.trim().is_empty() {
                anyhow::bail!("sms.sdk_app_id is empty (Tencent's SMS application id)");
            }
            Arc::new(tencent::Tencent::new(client, s, credentials)?)
        }
        SmsProvider::Outbox => unreachable!("handled above"),
    }))
}

/// What a failed request came to: a connection never made sent nothing; anything later (a
/// time-out while waiting for the answer) may have.
pub(crate) fn transport_failure(e: reqwest::Error) -> Attempt {
    let e = e.without_url();
    if e.is_connect() {
        Attempt::NotSent {
            reason: reason(&format!("no connection to the gateway: {e}")),
        }
    } else if e.is_timeout() {
        Attempt::Unknown {
            reason: "no answer in time".into(),
        }
    } else {
        Attempt::Unknown {
            reason: reason(&format!("the request failed: {e}")),
        }
    }
}

/// A POST whose answer's status and body the adapter judges.
pub(crate) async fn post(request: reqwest::RequestBuilder) -> Result<(u16, String), Attempt> {
    let answer = request.send().await.map_err(transport_failure)?;
    let status = answer.status().as_u16();
    let body = answer.text().await.map_err(transport_failure)?;
    Ok((status, body))
}

/// The host (and port, unless the scheme's own) of an endpoint, as the Host header carries it.
pub(crate) fn host_of(url: &reqwest::Url) -> anyhow::Result<String> {
    let host = url
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("sms.endpoint {url} has no host"))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_never_shows() {
        let c = Credentials::new("LTAI-id", "very-secret");
        assert!(!format!("{c:?}").contains("very-secret"));
        assert!(format!("{c:?}").contains("LTAI-id"));
    }

    #[test]
    fn a_gateway_needs_its_templates_sign_and_credentials() {
        let mut s = SmsSettings::default();
        assert!(gateway(&s, || unreachable!("the outbox needs none"))
            .unwrap()
            .is_none());
        s.provider = SmsProvider::Aliyun;
        let ok = || Ok(Credentials::new("id", "secret"));
        let e = gateway(&s, ok).err().unwrap().to_string();
        assert!(e.contains("login_code"), "{e}");
        s.templates.insert("login_code".into(), "SMS_1".into());
        let e = gateway(&s, ok).err().unwrap().to_string();
        assert!(
            e.contains("prize_notice") && !e.contains("login_code"),
            "{e}"
        );
        for name in TEMPLATE_NAMES {
            s.templates.insert(name.into(), format!("SMS_{name}"));
        }
        assert!(gateway(&s, ok).unwrap().is_some());
        let e = gateway(&s, || Err("needs SMS_ACCESS_KEY_ID".into()))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("SMS_ACCESS_KEY_ID"), "{e}");
        s.sign_name = " ".into();
        assert!(gateway(&s, ok).is_err());
        s.sign_name = "衡阳学法".into();
        s.provider = SmsProvider::Tencent;
        let e = gateway(&s, ok).err().unwrap().to_string();
        assert!(e.contains("sdk_app_id"), "{e}");
        s.sdk_app_id = "1400000000".into();
        assert!(gateway(&s, ok).unwrap().is_some());
    }

    #[test]
    fn the_host_header_keeps_a_port_that_is_not_the_default() {
        let u = reqwest::Url::parse("http://127.0.0.1:9000/").unwrap();
        assert_eq!(host_of(&u).unwrap(), "127.0.0.1:9000");
        let u = reqwest::Url::parse("https://sms.tencentcloudapi.com/").unwrap();
        assert_eq!(host_of(&u).unwrap(), "sms.tencentcloudapi.com");
    }
}
