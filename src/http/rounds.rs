//! The weekly draws: witnesses commit and reveal, operators freeze and draw, anyone reads the
//! record, the entries file and an inclusion proof.

use super::body::Body;
use super::docs::{BodyRefusals, StaffRefusals};
use super::error::{ApiError, ErrorBody};
use super::ok_json;
use crate::app::auth::{Operator, Witness};
use crate::app::records::{self, RoundRecordView};
use crate::app::rounds::{self, Round};
use crate::app::App;
use crate::domain::campaign::{round_state, RoundState};
use crate::domain::draw::beacon::Given;
use crate::domain::draw::record::entries_file;
use crate::domain::phone::mask;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/rounds/{round}").get(record))
        .service(web::resource("/api/rounds/{round}/record.sig").get(record_signature))
        .service(web::resource("/api/keys").get(keys))
        .service(web::resource("/api/rounds/{round}/entries").get(entries))
        .service(
            web::resource("/api/rounds/{round}/exclusions")
                .get(exclusions)
                .post(exclude),
        )
        .service(web::resource("/api/rounds/{round}/exclusions/restore").post(restore))
        .service(web::resource("/api/rounds/{round}/review").get(review))
        .service(web::resource("/api/rounds/{round}/reallocations").get(reallocations))
        .service(web::resource("/api/rounds/{round}/proof/{ticket}").get(proof))
        .service(web::resource("/api/rounds/{round}/commitments").post(commit))
        .service(web::resource("/api/rounds/{round}/reveal").post(reveal))
        .service(web::resource("/api/rounds/{round}/freeze").post(freeze))
        .service(web::resource("/api/rounds/{round}/draw").post(draw));
}

/// The round's record (no authentication): complete once drawn, the fields known so far before.
#[utoipa::path(get, path = "/api/rounds/{round}", tag = "draws", params(("round" = u32, Path)),
    responses((status = 200, body = RoundRecordView),
    (status = 404, body = ErrorBody, description = "`round_not_found`")))]
pub async fn record(app: web::Data<App>, round: web::Path<u32>) -> Result<HttpResponse, ApiError> {
    let json = records::record_json(&app, round.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(json))
}

/// The service's signature on a drawn round's record (DESIGN §4d): Ed25519 over the exact bytes
/// `GET /api/rounds/{round}` serves, by the key `key_id` names (see `GET /api/keys`).
#[utoipa::path(get, path = "/api/rounds/{round}/record.sig", tag = "draws", params(("round" = u32, Path)),
    responses((status = 200, body = crate::store::RecordSignature),
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`round_not_drawn`")))]
pub async fn record_signature(
    app: web::Data<App>,
    round: web::Path<u32>,
) -> Result<HttpResponse, ApiError> {
    Ok(ok_json(
        &records::signature(&app, round.into_inner()).await?,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct PublishedKey {
    /// `ed25519:` and 16 hex digits of SHA-256 of the public key.
    key_id: String,
    algorithm: &'static str,
    /// The 32-byte public key, base64.
    public_key: String,
    /// RFC 3339 UTC.
    created_at: String,
    /// When it was replaced by a newer key; its signatures stay valid.
    retired_at: Option<String>,
}

/// The service's signing keys, oldest first: the active one and every retired one.
#[utoipa::path(get, path = "/api/keys", tag = "draws",
    responses((status = 200, body = Vec<PublishedKey>)))]
pub async fn keys(app: web::Data<App>) -> Result<HttpResponse, ApiError> {
    let list = crate::app::keys::published(&app).await?;
    let out: Vec<PublishedKey> = list
        .iter()
        .map(|k| PublishedKey {
            key_id: k.id.clone(),
            algorithm: "ed25519",
            public_key: hex::decode(&k.public_key)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(|b| crate::domain::signing::encode_public_key(&b))
                .unwrap_or_default(),
            created_at: crate::domain::draw::record::instant(k.created_at),
            retired_at: k.retired_at.map(crate::domain::draw::record::instant),
        })
        .collect();
    Ok(ok_json(&out))
}

/// The entries file: the frozen tickets, one lowercase UUID per line, canonical order.
#[utoipa::path(get, path = "/api/rounds/{round}/entries", tag = "draws", params(("round" = u32, Path)),
    responses((status = 200, content_type = "text/plain"),
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`round_not_frozen`")))]
pub async fn entries(app: web::Data<App>, round: web::Path<u32>) -> Result<HttpResponse, ApiError> {
    let frozen = rounds::entries(&app, round.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(entries_file(&frozen.tickets)))
}

/// The exclusions file (DESIGN §4a): `uuid SP reason LF` per ticket not drawn among, canonical
/// order.
#[utoipa::path(get, path = "/api/rounds/{round}/exclusions", tag = "draws", params(("round" = u32, Path)),
    responses((status = 200, content_type = "text/plain"),
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`round_not_frozen`")))]
pub async fn exclusions(
    app: web::Data<App>,
    round: web::Path<u32>,
) -> Result<HttpResponse, ApiError> {
    let frozen = rounds::entries(&app, round.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(crate::domain::exclusion::exclusions_file(
            &frozen.exclusions,
        )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExcludeBody {
    /// The tickets (1 to 1000).
    tickets: Vec<Uuid>,
    /// `virtual_number`, `shared_address`, `shared_device`, `too_fast`, `duplicate_person`,
    /// `staff` or `other`.
    reason: String,
    /// Why, for the audit log (not published); required.
    #[serde(default)]
    note: String,
}

#[derive(Serialize, ToSchema)]
pub struct TicketsChanged {
    round: u32,
    /// The tickets this request changed (one already excluded keeps its first reason).
    tickets: Vec<Uuid>,
    message: String,
}

/// Excludes tickets from the round's draw, before its freeze, with a reason; each is audited.
#[utoipa::path(post, path = "/api/rounds/{round}/exclusions", tag = "draws", security(("bearer" = [])),
    params(("round" = u32, Path)), request_body = ExcludeBody,
    responses((status = 200, body = TicketsChanged), BodyRefusals, StaffRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`, `not_a_ticket`"),
    (status = 409, body = ErrorBody, description = "`already_frozen`, `already_drawn`"),
    (status = 422, body = ErrorBody, description = "`invalid_field` (`reason`, `tickets`, `note`)")))]
pub async fn exclude(
    app: web::Data<App>,
    operator: Operator,
    round: web::Path<u32>,
    Body(body): Body<ExcludeBody>,
) -> Result<HttpResponse, ApiError> {
    let round = round.into_inner();
    let tickets = rounds::exclude(
        &app,
        &operator,
        round,
        body.tickets,
        &body.reason,
        &body.note,
    )
    .await?;
    let message = format!("已排除 {} 张奖券", tickets.len());
    Ok(ok_json(&TicketsChanged {
        round,
        tickets,
        message,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    tickets: Vec<Uuid>,
}

/// Takes excluded tickets back into the round's draw, before its freeze; each is audited.
#[utoipa::path(post, path = "/api/rounds/{round}/exclusions/restore", tag = "draws", security(("bearer" = [])),
    params(("round" = u32, Path)), request_body = RestoreBody,
    responses((status = 200, body = TicketsChanged), BodyRefusals, StaffRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`already_frozen`, `already_drawn`")))]
pub async fn restore(
    app: web::Data<App>,
    operator: Operator,
    round: web::Path<u32>,
    Body(body): Body<RestoreBody>,
) -> Result<HttpResponse, ApiError> {
    let round = round.into_inner();
    let tickets = rounds::restore(&app, &operator, round, body.tickets).await?;
    let message = format!("已恢复 {} 张奖券", tickets.len());
    Ok(ok_json(&TicketsChanged {
        round,
        tickets,
        message,
    }))
}

/// One reallocation (DESIGN §4b).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Reallocated {
    pub seq: u32,
    pub forfeited_rank: u32,
    /// `unclaimed` or `declined`.
    pub reason: String,
    /// The reserve the prize went to; null when none was left (the prize is unawarded).
    pub reserve_rank: Option<u32>,
    pub tier: String,
    /// Local time.
    pub at: String,
}

pub fn reallocation_view(app: &App, r: &crate::store::Reallocation) -> Reallocated {
    Reallocated {
        seq: r.seq,
        forfeited_rank: r.forfeited_rank,
        reason: r.reason.as_str().to_owned(),
        reserve_rank: r.reserve_rank,
        tier: r.tier.clone(),
        at: app.campaign.local_rfc3339(r.at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Reallocations {
    round: u32,
    reallocations: Vec<Reallocated>,
}

/// The round's reallocations document (DESIGN §4b): append-only, each forfeited prize and the
/// reserve it went to, in order.
#[utoipa::path(get, path = "/api/rounds/{round}/reallocations", tag = "draws", params(("round" = u32, Path)),
    responses((status = 200, body = Reallocations),
    (status = 404, body = ErrorBody, description = "`round_not_found`")))]
pub async fn reallocations(
    app: web::Data<App>,
    round: web::Path<u32>,
) -> Result<HttpResponse, ApiError> {
    let round = round.into_inner();
    let list = crate::app::claims::reallocations(&app, round).await?;
    Ok(ok_json(&Reallocations {
        round,
        reallocations: list.iter().map(|r| reallocation_view(&app, r)).collect(),
    }))
}

/// One signal on a ticket.
#[derive(Serialize, ToSchema)]
pub struct SignalView {
    /// `virtual_number`, `shared_address`, `shared_device`, `too_fast`.
    code: String,
    /// For the operator, in Chinese.
    detail: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReviewedTicket {
    ticket: Uuid,
    /// Masked.
    phone: String,
    signals: Vec<SignalView>,
    /// The client's network (/24, /64) and how many of the round's tickets share it.
    network: Option<String>,
    same_network: u64,
    /// How many of the round's tickets came from the same browser (its device cookie), if known.
    same_device: Option<u64>,
    /// A short id of the browser, to group by (not the cookie).
    device: Option<String>,
    seconds_per_question: f64,
    /// An operator's exclusion, if made.
    excluded: Option<&'static str>,
}

#[derive(Serialize, ToSchema)]
pub struct ReviewView {
    round: u32,
    tickets_issued: u64,
    /// Tickets with a signal or an exclusion, strongest first.
    flagged: Vec<ReviewedTicket>,
}

/// The review of a round's tickets: those with risk signals (virtual number ranges, many
/// tickets from one network or one browser, a quiz answered too fast) or already excluded.
/// Nothing is excluded by it.
#[utoipa::path(get, path = "/api/rounds/{round}/review", tag = "draws", security(("bearer" = [])),
    params(("round" = u32, Path)),
    responses((status = 200, body = ReviewView), StaffRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`")))]
pub async fn review(
    app: web::Data<App>,
    auditor: crate::app::auth::Auditor,
    round: web::Path<u32>,
) -> Result<HttpResponse, ApiError> {
    let r = rounds::review(&app, &auditor, round.into_inner()).await?;
    Ok(ok_json(&ReviewView {
        round: r.round,
        tickets_issued: r.tickets_issued,
        flagged: r
            .flagged
            .into_iter()
            .map(|t| {
                let f = t.facts;
                ReviewedTicket {
                    ticket: f.ticket,
                    phone: mask(&f.phone),
                    signals: t
                        .signals
                        .iter()
                        .map(|s| SignalView {
                            code: s.reason().as_str().to_owned(),
                            detail: s.describe(),
                        })
                        .collect(),
                    network: f.network,
                    same_network: f.same_network,
                    same_device: f.device.as_ref().map(|_| f.same_device),
                    device: f.device.map(|d| d[..8.min(d.len())].to_owned()),
                    seconds_per_question: t.seconds_per_question,
                    excluded: f.excluded.map(|r| r.as_str()),
                }
            })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct InclusionProof {
    ticket: Uuid,
    /// `entries`, or `exclusions` for a ticket not drawn among.
    list: &'static str,
    /// Why it is excluded (an exclusion only).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    leaf_index: u64,
    tree_size: u64,
    /// Hex.
    root: String,
    /// RFC 6962 audit path, hex, nearest sibling first.
    path: Vec<String>,
}

/// The RFC 6962 audit path that proves a ticket is among the frozen entries.
#[utoipa::path(get, path = "/api/rounds/{round}/proof/{ticket}", tag = "draws",
    params(("round" = u32, Path), ("ticket" = Uuid, Path)),
    responses((status = 200, body = InclusionProof),
    (status = 404, body = ErrorBody, description = "`round_not_found`, `not_an_entry`"),
    (status = 409, body = ErrorBody, description = "`round_not_frozen`")))]
pub async fn proof(
    app: web::Data<App>,
    path: web::Path<(u32, String)>,
) -> Result<HttpResponse, ApiError> {
    let (round, ticket) = path.into_inner();
    let p = rounds::proof(&app, round, &ticket).await?;
    Ok(ok_json(&InclusionProof {
        ticket: p.ticket,
        list: if p.excluded.is_some() {
            "exclusions"
        } else {
            "entries"
        },
        reason: p.excluded.map(|r| r.as_str()),
        leaf_index: p.leaf_index,
        tree_size: p.tree_size,
        root: p.root,
        path: p.path.iter().map(hex::encode).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// Hex SHA-256 commitment to the witness's secret (see docs/draw-algorithm.md).
    commitment: String,
}

/// A step of a round done.
#[derive(Serialize, ToSchema)]
pub struct Done {
    round: u32,
    state: RoundState,
    /// For people, in Chinese.
    message: String,
}

fn done(app: &App, r: &Round, message: String) -> HttpResponse {
    ok_json(&Done {
        round: r.window.number,
        state: round_state(&r.window, r.state.progress, app.clock.now()),
        message,
    })
}

/// A witness commits to a secret for the round (before the freeze, once). The witness is named by
/// its token's name.
#[utoipa::path(post, path = "/api/rounds/{round}/commitments", tag = "draws", security(("bearer" = [])),
    params(("round" = u32, Path)), request_body = Commitment,
    responses((status = 200, body = Done), BodyRefusals, StaffRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`already_committed`, `already_frozen`, `already_drawn`"),
    (status = 422, body = ErrorBody, description = "`invalid_field`, `invalid_commitment`")))]
pub async fn commit(
    app: web::Data<App>,
    witness: Witness,
    round: web::Path<u32>,
    Body(body): Body<Commitment>,
) -> Result<HttpResponse, ApiError> {
    let r = rounds::commit(&app, &witness, round.into_inner(), &body.commitment).await?;
    let message = format!("{} 已对第 {} 期提交承诺", witness.name(), r.window.number);
    Ok(done(&app, &r, message))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// The 32-byte secret, hex.
    secret: String,
}

/// A witness reveals its secret after the freeze; it must match the commitment.
#[utoipa::path(post, path = "/api/rounds/{round}/reveal", tag = "draws", security(("bearer" = [])),
    params(("round" = u32, Path)), request_body = Secret,
    responses((status = 200, body = Done), BodyRefusals, StaffRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`round_not_frozen`, `already_drawn`, `not_committed`, `already_revealed`"),
    (status = 422, body = ErrorBody, description = "`invalid_field`, `invalid_secret`, `wrong_secret`")))]
pub async fn reveal(
    app: web::Data<App>,
    witness: Witness,
    round: web::Path<u32>,
    Body(body): Body<Secret>,
) -> Result<HttpResponse, ApiError> {
    let r = rounds::reveal(&app, &witness, round.into_inner(), &body.secret).await?;
    let message = format!("{} 已公布第 {} 期的密钥", witness.name(), r.window.number);
    Ok(done(&app, &r, message))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct FreezeBody {
    /// Exactly which public value will be the beacon (e.g. "drand quicknet round 1234567"); empty
    /// or absent: no beacon.
    #[serde(default)]
    beacon_source: String,
}

/// Freezes the round's entries: after the entry window, once the previous round is drawn and
/// enough witnesses have committed.
#[utoipa::path(post, path = "/api/rounds/{round}/freeze", tag = "draws", security(("bearer" = [])),
    params(("round" = u32, Path)), request_body = FreezeBody,
    responses((status = 200, body = Done), BodyRefusals, StaffRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`round_not_closed`, `previous_round_not_drawn`, `not_enough_commitments`, `already_frozen`, `already_drawn`"),
    (status = 422, body = ErrorBody, description = "`invalid_field` (`beacon_source`)")))]
pub async fn freeze(
    app: web::Data<App>,
    operator: Operator,
    round: web::Path<u32>,
    Body(body): Body<FreezeBody>,
) -> Result<HttpResponse, ApiError> {
    let r = rounds::freeze(&app, &operator, round.into_inner(), &body.beacon_source).await?;
    let message = format!("第 {} 期已封存", r.window.number);
    Ok(done(&app, &r, message))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DrawBody {
    /// The value of the beacon declared at the freeze (a free-text source).
    #[serde(default)]
    beacon: String,
    /// For a `drand-quicknet:N` source: round N's signature, hex, as drand serves it; checked
    /// offline, and its SHA-256 is the beacon.
    #[serde(default)]
    beacon_signature: String,
}

/// Draws the round: winners and their vouchers, in one transaction, once.
#[utoipa::path(post, path = "/api/rounds/{round}/draw", tag = "draws", security(("bearer" = [])),
    params(("round" = u32, Path)), request_body = DrawBody,
    responses((status = 200, body = Done), BodyRefusals, StaffRefusals,
    (status = 404, body = ErrorBody, description = "`round_not_found`"),
    (status = 409, body = ErrorBody, description = "`round_not_frozen`, `reveals_missing`, `already_drawn`"),
    (status = 422, body = ErrorBody, description = "`invalid_field` (`beacon`), `unexpected_beacon`, `beacon_required`, `beacon_signature_required`, `beacon_signature_invalid`, `unexpected_beacon_signature`")))]
pub async fn draw(
    app: web::Data<App>,
    operator: Operator,
    round: web::Path<u32>,
    Body(body): Body<DrawBody>,
) -> Result<HttpResponse, ApiError> {
    let given = Given {
        value: body.beacon,
        signature: body.beacon_signature,
    };
    let r = rounds::draw(&app, &operator, round.into_inner(), &given).await?;
    let message = format!("第 {} 期已开奖", r.window.number);
    Ok(done(&app, &r, message))
}
