//! What the SMS gateway tells the service: delivery reports it pushes.

use super::{App, Result};
use crate::config::SmsProvider;
use crate::domain::refusal::Refusal;
use crate::domain::token::token_hash;

/// Reports taken.
pub struct ReportsTaken {
    /// What the provider expects back.
    pub answer: serde_json::Value,
    pub reports: usize,
    /// Reports that changed a message (the others named none that was sent, or came again).
    pub changed: u64,
}

/// Records the delivery reports `provider` pushed to its address with `token`. Only the
/// configured provider, and only with the token of `SMS_REPORT_TOKEN`: anything else is answered
/// as if there were no such address.
pub async fn record_reports(
    app: &App,
    provider: &str,
    token: Option<&str>,
    body: &[u8],
) -> Result<ReportsTaken> {
    let not_here = || Refusal::NoSuchRoute {
        method: "POST".into(),
        path: format!("/api/sms/reports/{provider}"),
    };
    let expected = app.sms.report_token_hash.as_deref();
    let given = token.map(token_hash);
    let configured = app.sms.provider;
    if configured == SmsProvider::Outbox
        || provider != configured.name()
        || expected.is_none()
        || given.as_deref() != expected
    {
        return Err(not_here().into());
    }
    let at = app.clock.now();
    use crate::sms::{aliyun, tencent};
    let (read, answer) = match app.sms.provider {
        SmsProvider::Aliyun => (aliyun::reports(body, at), aliyun::report_answer()),
        _ => (tencent::reports(body, at), tencent::report_answer()),
    };
    let reports = read.map_err(|problem| Refusal::MalformedJson { problem })?;
    let changed = app.store.record_deliveries(&reports).await?;
    Ok(ReportsTaken {
        answer,
        reports: reports.len(),
        changed,
    })
}
