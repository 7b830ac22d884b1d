//! Staff tokens (made by operators, shown once, stored as hashes) and the audit log.

use super::auth::{Auditor, Operator};
use super::{App, Result};
use crate::domain::audit::{AuditEntry, ChainBreak};
use crate::domain::refusal::Refusal;
use crate::domain::token::{
    check_token_name, check_venue_binding, token_from_bytes, token_hash, Role,
};
use crate::store::{verify_audit_log, NewToken, TokenRecord};
use uuid::Uuid;

/// A token just made: the secret, shown once, and what is kept of it.
pub struct Created {
    pub token: String,
    pub record: TokenRecord,
}

/// Makes a token. Operator tokens are made only at the server's command line.
pub async fn create_token(
    app: &App,
    who: &Operator,
    role: Role,
    name: &str,
    venue_id: Option<&str>,
) -> Result<Created> {
    if role == Role::Operator && who.token_id().is_some() {
        return Err(Refusal::OperatorTokenByCommandLine.into());
    }
    let name = check_token_name(name)?;
    check_venue_binding(role, venue_id)?;
    let token = token_from_bytes(crate::csprng::bytes()?);
    let record = app
        .store
        .create_token(
            NewToken {
                name,
                role,
                venue_id: venue_id.map(str::to_owned),
                token_hash: token_hash(&token),
            },
            who.actor(),
            app.clock.now(),
        )
        .await?;
    Ok(Created { token, record })
}

pub async fn tokens(app: &App, _who: &Operator) -> Result<Vec<TokenRecord>> {
    Ok(app.store.list_tokens().await?)
}

/// Revokes a token at once. Through the API an operator cannot revoke its own token nor the
/// last live operator token (that would lock every operator out); at the command line both are
/// allowed, since a new operator token can be made there.
pub async fn revoke_token(app: &App, who: &Operator, id: Uuid) -> Result<TokenRecord> {
    let through_api = who.token_id().is_some();
    if who.token_id() == Some(id) {
        return Err(Refusal::OwnToken.into());
    }
    Ok(app
        .store
        .revoke_token(id, through_api, who.actor(), app.clock.now())
        .await?)
}

/// Audit entries after `after`, oldest first, with the recorded head `(seq, hash)`.
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub head: (i64, String),
}

pub async fn audit_page(app: &App, _who: &Auditor, after: i64, limit: u32) -> Result<AuditPage> {
    if !(1..=1000).contains(&limit) {
        return Err(Refusal::query("limit", "每页 1 到 1000 条").into());
    }
    Ok(AuditPage {
        entries: app.store.audit_page(after.max(0), limit).await?,
        head: app.store.audit_head().await?,
    })
}

/// Recomputes the whole hash chain: the number of entries, or where it breaks.
pub async fn verify_audit(
    app: &App,
    _who: &Auditor,
) -> Result<std::result::Result<i64, ChainBreak>> {
    Ok(verify_audit_log(app.store.as_ref()).await?)
}

/// The audit log's head (public, DESIGN §4d): anyone may keep a copy and check it later against
/// the chain.
pub async fn audit_head(app: &App) -> Result<crate::domain::draw::record::AuditHead> {
    let (seq, hash) = app.store.audit_head().await?;
    Ok(crate::domain::draw::record::AuditHead { seq, hash })
}

/// Whether each published head (a record's `audit_head_at_freeze`, say) is an entry of the
/// chain: entry `seq` is there and has that hash. `(label, ok, detail)` for each.
pub async fn verify_anchors(
    app: &App,
    _who: &Auditor,
    anchors: &[(String, crate::domain::draw::record::AuditHead)],
) -> Result<Vec<(String, bool, String)>> {
    let mut out = Vec::new();
    for (label, head) in anchors {
        let entry = app
            .store
            .audit_page(head.seq - 1, 1)
            .await?
            .into_iter()
            .find(|e| e.seq == head.seq);
        out.push(match entry {
            None => (
                label.clone(),
                false,
                format!("the log has no entry {}", head.seq),
            ),
            Some(e) if e.hash == head.hash => (
                label.clone(),
                true,
                format!("entry {} has the published hash", head.seq),
            ),
            Some(e) => (
                label.clone(),
                false,
                format!(
                    "entry {} now hashes to {}, not the published {}: the log was rewritten",
                    head.seq, e.hash, head.hash
                ),
            ),
        });
    }
    Ok(out)
}
