//! The OpenAPI document and the API page (Swagger UI, served from the binary: it works
//! offline). Every operation lists the statuses it can answer and, per status, its error codes.

use super::error::ErrorBody;
use super::{admin, participants, public, quiz, report, rounds, vouchers};
use actix_web::web;
use utoipa::OpenApi;

/// What any operation with a JSON body can answer about the body itself (a wrong value in it is
/// 422 `invalid_field`, listed with each operation's own 422s).
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum BodyRefusals {
    /// `malformed_json` (not valid JSON), `duplicate_key` (a key given twice)
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// `request_timeout`: the body did not arrive in time
    #[response(status = 408)]
    Timeout(ErrorBody),
    /// `payload_too_large`
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// `unsupported_media_type`: send `Content-Type: application/json`
    #[response(status = 415)]
    NotJson(ErrorBody),
}

/// What any operation for staff tokens can answer about the token.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum StaffRefusals {
    /// `missing_token`, `invalid_token`, `unknown_token`, `revoked_token`
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// `forbidden` (another role's token; details: `needs`, `has`), `venue_gone`,
    /// `own_venue_only`, `operator_token_by_command_line`
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

/// What any operation for a logged-in participant can answer about the session.
#[allow(dead_code)]
#[derive(utoipa::IntoResponses)]
pub enum SessionRefusals {
    /// `login_required`: no session, or one that has ended
    #[response(status = 401)]
    LoginRequired(ErrorBody),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Campaign lottery and voucher service",
        description = "你学法我送票·跟着旅发大会游湖南(衡阳): the law-quiz campaign's weekly draws and vouchers.\n\n\
                       Every error is `{\"error\":{\"code\":\"…\",\"message\":\"…\",\"details\":{…}}}`: `code` is stable \
                       (the `ErrorDetail` schema lists every one), `message` is for people, in Chinese, and `details` \
                       holds the facts behind some codes (`field` for a wrong value). A 500 is `internal_error`.\n\n\
                       Staff (operators, witnesses, auditors, venues) send `Authorization: Bearer clt_…`; participants \
                       are logged in by the `clp_session` cookie or by `Authorization: Bearer clp_…` (which wins)."
    ),
    paths(
        public::healthz,
        public::readyz,
        public::metrics,
        public::campaign,
        participants::challenge,
        participants::request_code,
        participants::login,
        participants::logout,
        participants::me,
        participants::claim,
        participants::decline,
        quiz::start,
        quiz::show_attempt,
        quiz::submit,
        quiz::mistakes,
        quiz::practise,
        rounds::record,
        rounds::record_signature,
        rounds::keys,
        rounds::entries,
        rounds::proof,
        rounds::exclusions,
        rounds::exclude,
        rounds::restore,
        rounds::review,
        rounds::reallocations,
        rounds::commit,
        rounds::reveal,
        rounds::freeze,
        rounds::draw,
        admin::whoami,
        report::report,
        admin::list_tokens,
        admin::create_token,
        admin::revoke_token,
        admin::audit_log,
        admin::verify_audit,
        admin::audit_head,
        vouchers::my_vouchers,
        vouchers::check,
        vouchers::redeem,
        vouchers::recent,
        vouchers::reverse,
        vouchers::settlement_csv,
        vouchers::find_vouchers,
        vouchers::void,
        vouchers::reissue,
        vouchers::stats,
        vouchers::vouchers_csv,
        super::sms::reports,
    ),
    components(schemas(ErrorBody, super::error::ErrorDetail)),
    modifiers(&Schemes, &ErrorCodes),
    tags(
        (name = "public", description = "No token needed"),
        (name = "participants", description = "Registration, login by SMS code, my tickets"),
        (name = "quiz", description = "The law quiz"),
        (name = "draws", description = "Weekly draws: commitments, freeze, reveals, draw, the published record"),
        (name = "admin", description = "Operators and auditors"),
        (name = "vouchers", description = "Vouchers: the holder's view, the front desk (venue tokens), void and reissue, exports"),
    )
)]
pub struct ApiDoc;

/// The two ways to say who is asking.
struct Schemes;

impl utoipa::Modify for Schemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::SESSION_COOKIE,
                "A participant's session, set by registration and login (or send it as \
                 `Authorization: Bearer clp_…`)",
            ))),
        );
    }
}

/// `ErrorDetail.code` is one of the catalogue's codes.
struct ErrorCodes;

impl utoipa::Modify for ErrorCodes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
        use utoipa::openapi::RefOr;
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(RefOr::T(Schema::Object(detail))) = components.schemas.get_mut("ErrorDetail") {
            let mut codes: Vec<&str> = crate::domain::refusal::ALL_CODES.to_vec();
            codes.push("internal_error");
            detail.properties.insert(
                "code".into(),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("Stable, machine-readable."))
                    .enum_values(Some(codes))
                    .into(),
            );
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        utoipa_swagger_ui::SwaggerUi::new("/api/docs/{_:.*}")
            .url("/api/openapi.json", ApiDoc::openapi()),
    );
}
