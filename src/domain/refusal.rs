//! Every reason the service refuses a request, in one catalogue.
//!
//! Each [`Refusal`] has a stable `code` (what clients and tests match), a [`Kind`] (how the HTTP
//! layer answers it), a message in Chinese for the person who reads it — a participant, a front
//! desk, a witness, an operator — and, for some, `details`: the facts behind it (which field,
//! when and where a voucher was used). Messages carry no English and no field-name prefixes; a
//! field error names its field in `details`.

use super::phone::PhoneError;
use super::quiz::AnswerError;
use super::token::Role;
use serde_json::{json, Value};
use std::fmt;
use uuid::Uuid;

/// How a refusal is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request could not be read (400).
    BadRequest,
    /// Who is asking is not known (401).
    Unauthenticated,
    /// Known, but not allowed to (403).
    Forbidden,
    /// No such thing, or not the caller's (404).
    NotFound,
    /// The route exists, the method does not (405).
    MethodNotAllowed,
    /// The state of things does not allow it now (409).
    Conflict,
    /// It was valid once and is no longer (410).
    Gone,
    /// Larger than accepted (413).
    TooLarge,
    /// Not JSON (415).
    UnsupportedMediaType,
    /// The body did not arrive in time (408).
    Timeout,
    /// Readable, but a value is wrong (422).
    Invalid,
    /// Too many, too soon: try again after `retry_after` seconds (429).
    TooMany,
    /// The service cannot do it now, for a passing reason: try again (503).
    Unavailable,
    /// No room to record it (507).
    InsufficientStorage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    // ---- the request itself ---------------------------------------------------------------
    NoSuchRoute {
        method: String,
        path: String,
    },
    MethodNotAllowed {
        method: String,
        path: String,
    },
    MalformedJson {
        problem: String,
    },
    DuplicateKey {
        key: String,
    },
    UnsupportedMediaType,
    PayloadTooLarge {
        limit: usize,
    },
    /// The body cannot be read at all (cut off, say).
    UnreadableBody,
    /// The body took longer than `secs` to arrive.
    BodyTimeout {
        secs: u64,
    },
    /// A value in the body is wrong; `message` says how, in Chinese.
    InvalidField {
        field: String,
        message: String,
    },
    /// A query parameter is wrong.
    InvalidQuery {
        field: String,
        message: String,
    },

    // ---- staff tokens ---------------------------------------------------------------------
    MissingToken,
    /// The Authorization header is not a readable Bearer token.
    InvalidToken,
    UnknownToken,
    RevokedToken,
    WrongRole {
        needs: Vec<Role>,
        has: Role,
    },
    /// A venue token whose venue is no longer in the campaign.
    VenueGone {
        venue: String,
    },
    /// A venue token asking for another venue's settlement.
    OwnVenueOnly,
    OperatorTokenByCommandLine,
    TokenNotFound,
    AlreadyRevoked,
    OwnToken,
    LastOperator,
    UnknownVenue {
        venue: String,
    },
    VenueInactive {
        venue: String,
    },

    // ---- participants ---------------------------------------------------------------------
    InvalidPhone(PhoneError),
    InvalidDisplayName {
        message: String,
    },
    ConsentRequired,
    /// A code request without the solved proof of work.
    ChallengeRequired,
    /// A proof of work that does not hold: not ours, not solved, for another phone.
    ChallengeInvalid,
    ChallengeExpired,
    /// The proof of work already paid for an SMS.
    ChallengeUsed,
    TooManyCodeRequests {
        retry_after: i64,
    },
    /// The campaign's hourly SMS budget is spent: sending pauses.
    SmsPaused {
        retry_after: i64,
    },
    InvalidCode,
    WrongCode {
        tries_left: u32,
    },
    TooManyTries,
    CodeExpired,
    /// No session, or (`expired`) one that has ended.
    LoginRequired {
        expired: bool,
    },

    // ---- the quiz -------------------------------------------------------------------------
    AttemptNotFound,
    /// Practice is for the questions of one's own 错题本 (their answers were shown already).
    NotInMistakes {
        question: String,
    },
    AlreadySubmitted,
    AttemptExpired,
    DailyLimit {
        limit: u32,
    },
    Answer(AnswerError),
    /// A question of an old attempt is no longer in the bank.
    QuestionGone,

    // ---- draws ----------------------------------------------------------------------------
    RoundNotFound {
        round: u32,
    },
    /// The entry window is still open; `closes_at` is local time.
    RoundNotClosed {
        round: u32,
        closes_at: String,
    },
    RoundNotDrawn {
        round: u32,
    },
    PreviousRoundNotDrawn {
        round: u32,
    },
    NotEnoughCommitments {
        round: u32,
        needed: u32,
        has: u32,
    },
    AlreadyFrozen {
        round: u32,
    },
    AlreadyDrawn {
        round: u32,
    },
    RoundNotFrozen {
        round: u32,
    },
    RevealsMissing {
        round: u32,
        witnesses: Vec<String>,
    },
    AlreadyCommitted {
        round: u32,
        witness: String,
    },
    NotCommitted {
        round: u32,
        witness: String,
    },
    AlreadyRevealed {
        round: u32,
        witness: String,
    },
    InvalidCommitment,
    InvalidSecret,
    WrongSecret,
    UnexpectedBeacon {
        round: u32,
    },
    BeaconRequired {
        round: u32,
        source: String,
    },
    UnexpectedBeaconSignature {
        round: u32,
    },
    BeaconSignatureRequired {
        round: u32,
        beacon_round: u64,
    },
    BeaconSignatureInvalid {
        round: u32,
        beacon_round: u64,
        why: String,
    },
    BeaconRoundTooSoon {
        beacon_round: u64,
        /// RFC 3339 UTC.
        published: String,
        margin_minutes: i64,
        earliest: u64,
    },
    NotAnEntry {
        round: u32,
        ticket: String,
    },
    /// The ticket is not one held for that round (so it cannot be excluded from it).
    NotATicket {
        round: u32,
        ticket: String,
    },
    /// The participant holds no prize of that round.
    NoPrize {
        round: u32,
    },
    /// The prize can no longer be claimed or declined: its deadline passed, or it was forfeited.
    ClaimClosed {
        round: u32,
    },
    /// The voucher's prize has not been claimed yet.
    PrizeNotClaimed,

    // ---- vouchers -------------------------------------------------------------------------
    Typo,
    MalformedCode {
        message: String,
    },
    UnknownCode,
    VoucherNotFound,
    VoucherVoid,
    WrongVenueCategory {
        voucher: &'static str,
        venue: &'static str,
    },
    /// `from` is the first valid local day.
    NotYetValid {
        from: String,
        from_rfc3339: String,
    },
    /// `until` is the last valid local day.
    Expired {
        until: String,
        until_rfc3339: String,
    },
    AlreadyUsed {
        at: String,
        at_rfc3339: String,
        venue_id: String,
        venue_name: String,
    },
    HolderCodeRequired,
    HolderMismatch,
    HolderCodeUsed,
    IdempotencyKeyRequired,
    InvalidIdempotencyKey,
    IdempotencyKeyReused,
    TooManyFailedLookups {
        retry_after: i64,
    },
    RedemptionNotFound,
    AlreadyReversed,
    ReversalWindowPassed {
        minutes: i64,
        redeemed_at: String,
    },
    AlreadyVoid,
    NotVoid,
    AlreadyReissued {
        replacement: Uuid,
    },

    // ---- the service itself ---------------------------------------------------------------
    /// The database cannot be reached now (down, restarting): try again shortly.
    Unavailable,
    /// The database has no room to write.
    StorageFull,
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Operator => "运营",
        Role::Witness => "见证人",
        Role::Auditor => "审计",
        Role::Venue => "场所",
    }
}

/// Every code a refusal can have (for the API description and its schema).
pub const ALL_CODES: &[&str] = &[
    "not_found",
    "method_not_allowed",
    "malformed_json",
    "duplicate_key",
    "unsupported_media_type",
    "payload_too_large",
    "bad_request",
    "request_timeout",
    "invalid_field",
    "invalid_query",
    "missing_token",
    "invalid_token",
    "unknown_token",
    "revoked_token",
    "forbidden",
    "venue_gone",
    "own_venue_only",
    "operator_token_by_command_line",
    "token_not_found",
    "already_revoked",
    "own_token",
    "last_operator",
    "unknown_venue",
    "venue_inactive",
    "invalid_phone",
    "invalid_display_name",
    "consent_required",
    "challenge_required",
    "challenge_invalid",
    "challenge_expired",
    "challenge_used",
    "too_many_requests",
    "sms_paused",
    "invalid_code",
    "wrong_code",
    "too_many_tries",
    "code_expired",
    "login_required",
    "attempt_not_found",
    "not_in_mistakes",
    "already_submitted",
    "attempt_expired",
    "daily_limit",
    "answer_not_in_attempt",
    "duplicate_answer",
    "missing_answer",
    "unknown_option",
    "duplicate_choice",
    "too_many_choices",
    "question_gone",
    "round_not_found",
    "round_not_closed",
    "round_not_drawn",
    "previous_round_not_drawn",
    "not_enough_commitments",
    "already_frozen",
    "already_drawn",
    "round_not_frozen",
    "reveals_missing",
    "already_committed",
    "not_committed",
    "already_revealed",
    "invalid_commitment",
    "invalid_secret",
    "wrong_secret",
    "unexpected_beacon",
    "beacon_required",
    "unexpected_beacon_signature",
    "beacon_signature_required",
    "beacon_signature_invalid",
    "beacon_round_too_soon",
    "not_an_entry",
    "not_a_ticket",
    "no_prize",
    "claim_closed",
    "prize_not_claimed",
    "typo",
    "malformed_code",
    "unknown_code",
    "voucher_not_found",
    "voucher_void",
    "wrong_venue_category",
    "not_yet_valid",
    "expired",
    "already_used",
    "holder_code_required",
    "holder_mismatch",
    "holder_code_used",
    "idempotency_key_required",
    "invalid_idempotency_key",
    "idempotency_key_reused",
    "too_many_failed_lookups",
    "redemption_not_found",
    "already_reversed",
    "reversal_window_passed",
    "already_void",
    "voucher_not_void",
    "already_reissued",
    "not_ready",
    "storage_full",
];

impl Refusal {
    /// A wrong value in the body.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Refusal::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A wrong query parameter.
    pub fn query(field: impl Into<String>, message: impl Into<String>) -> Self {
        Refusal::InvalidQuery {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        use Refusal::*;
        match self {
            NoSuchRoute { .. } => "not_found",
            MethodNotAllowed { .. } => "method_not_allowed",
            MalformedJson { .. } => "malformed_json",
            DuplicateKey { .. } => "duplicate_key",
            UnsupportedMediaType => "unsupported_media_type",
            PayloadTooLarge { .. } => "payload_too_large",
            UnreadableBody => "bad_request",
            BodyTimeout { .. } => "request_timeout",
            InvalidField { .. } => "invalid_field",
            InvalidQuery { .. } => "invalid_query",
            MissingToken => "missing_token",
            InvalidToken => "invalid_token",
            UnknownToken => "unknown_token",
            RevokedToken => "revoked_token",
            WrongRole { .. } => "forbidden",
            VenueGone { .. } => "venue_gone",
            OwnVenueOnly => "own_venue_only",
            OperatorTokenByCommandLine => "operator_token_by_command_line",
            TokenNotFound => "token_not_found",
            AlreadyRevoked => "already_revoked",
            OwnToken => "own_token",
            LastOperator => "last_operator",
            UnknownVenue { .. } => "unknown_venue",
            VenueInactive { .. } => "venue_inactive",
            InvalidPhone(_) => "invalid_phone",
            InvalidDisplayName { .. } => "invalid_display_name",
            ConsentRequired => "consent_required",
            ChallengeRequired => "challenge_required",
            ChallengeInvalid => "challenge_invalid",
            ChallengeExpired => "challenge_expired",
            ChallengeUsed => "challenge_used",
            TooManyCodeRequests { .. } => "too_many_requests",
            SmsPaused { .. } => "sms_paused",
            InvalidCode => "invalid_code",
            WrongCode { .. } => "wrong_code",
            TooManyTries => "too_many_tries",
            CodeExpired => "code_expired",
            LoginRequired { .. } => "login_required",
            AttemptNotFound => "attempt_not_found",
            NotInMistakes { .. } => "not_in_mistakes",
            AlreadySubmitted => "already_submitted",
            AttemptExpired => "attempt_expired",
            DailyLimit { .. } => "daily_limit",
            Answer(e) => match e {
                AnswerError::NotInAttempt(_) => "answer_not_in_attempt",
                AnswerError::Duplicate(_) => "duplicate_answer",
                AnswerError::Missing(_) => "missing_answer",
                AnswerError::UnknownOption { .. } => "unknown_option",
                AnswerError::DuplicateChoice { .. } => "duplicate_choice",
                AnswerError::TooManyChoices(_) => "too_many_choices",
                AnswerError::QuestionGone(_) => "question_gone",
            },
            QuestionGone => "question_gone",
            RoundNotFound { .. } => "round_not_found",
            RoundNotClosed { .. } => "round_not_closed",
            RoundNotDrawn { .. } => "round_not_drawn",
            PreviousRoundNotDrawn { .. } => "previous_round_not_drawn",
            NotEnoughCommitments { .. } => "not_enough_commitments",
            AlreadyFrozen { .. } => "already_frozen",
            AlreadyDrawn { .. } => "already_drawn",
            RoundNotFrozen { .. } => "round_not_frozen",
            RevealsMissing { .. } => "reveals_missing",
            AlreadyCommitted { .. } => "already_committed",
            NotCommitted { .. } => "not_committed",
            AlreadyRevealed { .. } => "already_revealed",
            InvalidCommitment => "invalid_commitment",
            InvalidSecret => "invalid_secret",
            WrongSecret => "wrong_secret",
            UnexpectedBeacon { .. } => "unexpected_beacon",
            BeaconRequired { .. } => "beacon_required",
            UnexpectedBeaconSignature { .. } => "unexpected_beacon_signature",
            BeaconSignatureRequired { .. } => "beacon_signature_required",
            BeaconSignatureInvalid { .. } => "beacon_signature_invalid",
            BeaconRoundTooSoon { .. } => "beacon_round_too_soon",
            NotAnEntry { .. } => "not_an_entry",
            NotATicket { .. } => "not_a_ticket",
            NoPrize { .. } => "no_prize",
            ClaimClosed { .. } => "claim_closed",
            PrizeNotClaimed => "prize_not_claimed",
            Typo => "typo",
            MalformedCode { .. } => "malformed_code",
            UnknownCode => "unknown_code",
            VoucherNotFound => "voucher_not_found",
            VoucherVoid => "voucher_void",
            WrongVenueCategory { .. } => "wrong_venue_category",
            NotYetValid { .. } => "not_yet_valid",
            Expired { .. } => "expired",
            AlreadyUsed { .. } => "already_used",
            HolderCodeRequired => "holder_code_required",
            HolderMismatch => "holder_mismatch",
            HolderCodeUsed => "holder_code_used",
            IdempotencyKeyRequired => "idempotency_key_required",
            InvalidIdempotencyKey => "invalid_idempotency_key",
            IdempotencyKeyReused => "idempotency_key_reused",
            TooManyFailedLookups { .. } => "too_many_failed_lookups",
            RedemptionNotFound => "redemption_not_found",
            AlreadyReversed => "already_reversed",
            ReversalWindowPassed { .. } => "reversal_window_passed",
            AlreadyVoid => "already_void",
            NotVoid => "voucher_not_void",
            AlreadyReissued { .. } => "already_reissued",
            Unavailable => "not_ready",
            StorageFull => "storage_full",
        }
    }

    pub fn kind(&self) -> Kind {
        use Refusal::*;
        match self {
            MalformedJson { .. }
            | DuplicateKey { .. }
            | UnreadableBody
            | InvalidQuery { .. }
            | IdempotencyKeyRequired
            | InvalidIdempotencyKey => Kind::BadRequest,
            MissingToken
            | InvalidToken
            | UnknownToken
            | RevokedToken
            | WrongCode { .. }
            | TooManyTries
            | CodeExpired
            | LoginRequired { .. } => Kind::Unauthenticated,
            WrongRole { .. } | VenueGone { .. } | OwnVenueOnly | OperatorTokenByCommandLine => {
                Kind::Forbidden
            }
            NoSuchRoute { .. }
            | TokenNotFound
            | UnknownVenue { .. }
            | AttemptNotFound
            | NotInMistakes { .. }
            | RoundNotFound { .. }
            | NotAnEntry { .. }
            | NotATicket { .. }
            | NoPrize { .. }
            | UnknownCode
            | VoucherNotFound
            | RedemptionNotFound => Kind::NotFound,
            MethodNotAllowed { .. } => Kind::MethodNotAllowed,
            AlreadyRevoked
            | OwnToken
            | LastOperator
            | VenueInactive { .. }
            | AlreadySubmitted
            | QuestionGone
            | RoundNotClosed { .. }
            | RoundNotDrawn { .. }
            | PreviousRoundNotDrawn { .. }
            | NotEnoughCommitments { .. }
            | AlreadyFrozen { .. }
            | ClaimClosed { .. }
            | PrizeNotClaimed
            | AlreadyDrawn { .. }
            | RoundNotFrozen { .. }
            | RevealsMissing { .. }
            | AlreadyCommitted { .. }
            | NotCommitted { .. }
            | AlreadyRevealed { .. }
            | AlreadyUsed { .. }
            | AlreadyReversed
            | ReversalWindowPassed { .. }
            | AlreadyVoid
            | NotVoid
            | AlreadyReissued { .. }
            | ChallengeUsed => Kind::Conflict,
            AttemptExpired | VoucherVoid => Kind::Gone,
            PayloadTooLarge { .. } => Kind::TooLarge,
            BodyTimeout { .. } => Kind::Timeout,
            UnsupportedMediaType => Kind::UnsupportedMediaType,
            InvalidField { .. }
            | InvalidPhone(_)
            | InvalidDisplayName { .. }
            | ConsentRequired
            | ChallengeRequired
            | ChallengeInvalid
            | ChallengeExpired
            | InvalidCode
            | Answer(_)
            | InvalidCommitment
            | InvalidSecret
            | WrongSecret
            | UnexpectedBeacon { .. }
            | BeaconRequired { .. }
            | UnexpectedBeaconSignature { .. }
            | BeaconSignatureRequired { .. }
            | BeaconSignatureInvalid { .. }
            | BeaconRoundTooSoon { .. }
            | Typo
            | MalformedCode { .. }
            | WrongVenueCategory { .. }
            | NotYetValid { .. }
            | Expired { .. }
            | HolderCodeRequired
            | HolderMismatch
            | HolderCodeUsed
            | IdempotencyKeyReused => Kind::Invalid,
            TooManyCodeRequests { .. }
            | SmsPaused { .. }
            | DailyLimit { .. }
            | TooManyFailedLookups { .. } => Kind::TooMany,
            Unavailable => Kind::Unavailable,
            StorageFull => Kind::InsufficientStorage,
        }
    }

    /// Seconds to wait, for the `Retry-After` header.
    pub fn retry_after(&self) -> Option<i64> {
        match self {
            Refusal::TooManyCodeRequests { retry_after }
            | Refusal::SmsPaused { retry_after }
            | Refusal::TooManyFailedLookups { retry_after } => Some((*retry_after).max(1)),
            // A restart takes seconds; freeing disk space takes someone.
            Refusal::Unavailable => Some(2),
            Refusal::StorageFull => Some(60),
            _ => None,
        }
    }

    /// For people, in Chinese.
    pub fn message(&self) -> String {
        use Refusal::*;
        match self {
            NoSuchRoute { method, path } => format!("没有这个地址：{method} {path}"),
            MethodNotAllowed { method, path } => format!("{path} 不支持 {method} 请求"),
            MalformedJson { .. } => "请求内容不是有效的 JSON".into(),
            DuplicateKey { key } => format!("请求内容中“{key}”出现了不止一次"),
            UnsupportedMediaType => {
                "请以 JSON 格式发送请求内容（Content-Type: application/json）".into()
            }
            PayloadTooLarge { limit: 0 } => "请求内容太大".into(),
            PayloadTooLarge { limit } => format!("请求内容太大，最多 {limit} 字节"),
            UnreadableBody => "请求内容无法读取".into(),
            BodyTimeout { secs: 0 } => "请求内容没有及时传完，请重试".into(),
            BodyTimeout { secs } => format!("请求内容 {secs} 秒内没有传完，请重试"),
            InvalidField { message, .. } | InvalidQuery { message, .. } => message.clone(),
            MissingToken => "需要令牌：请以 Authorization: Bearer <令牌> 发送".into(),
            InvalidToken => "Authorization 请求头无法读取".into(),
            UnknownToken => "这个令牌无效".into(),
            RevokedToken => "这个令牌已停用".into(),
            WrongRole { needs, has } => format!(
                "这项操作需要{}令牌，您的是{}令牌",
                needs
                    .iter()
                    .map(|r| role_name(*r))
                    .collect::<Vec<_>>()
                    .join("或"),
                role_name(*has)
            ),
            VenueGone { .. } => "这个令牌所属的场所已不在本次活动中".into(),
            OwnVenueOnly => "场所令牌只能查看本场所的结算".into(),
            OperatorTokenByCommandLine => {
                "运营令牌只能在服务器上用 campaign-lottery token create 创建".into()
            }
            TokenNotFound => "没有这个令牌".into(),
            AlreadyRevoked => "这个令牌已经停用了".into(),
            OwnToken => "不能停用您正在使用的令牌".into(),
            LastOperator => "这是最后一个有效的运营令牌，不能停用".into(),
            UnknownVenue { venue } => format!("没有这个场所：{venue}"),
            VenueInactive { venue } => format!("场所 {venue} 已不在本次活动的配置中"),
            InvalidPhone(e) => e.to_string(),
            InvalidDisplayName { message } => message.clone(),
            ConsentRequired => "第一次参加，请阅读并同意隐私政策".into(),
            ChallengeRequired => "请先完成安全验证，再获取验证码".into(),
            ChallengeInvalid => "安全验证未通过，请重新验证".into(),
            ChallengeExpired => "安全验证已过期，请重新验证".into(),
            ChallengeUsed => "这次安全验证已经用过，请重新验证".into(),
            TooManyCodeRequests { retry_after } => {
                format!("请求太频繁，请 {} 秒后再试", retry_after.max(&1))
            }
            SmsPaused { retry_after } => format!(
                "本小时的短信发送量已达上限，已暂停发送，请约 {} 分钟后再试",
                (retry_after + 59) / 60
            ),
            InvalidCode => "验证码是 6 位数字".into(),
            WrongCode { tries_left: 0 } => "验证码不正确，这个验证码已失效，请重新获取".into(),
            WrongCode { tries_left } => format!("验证码不正确，还可以再试 {tries_left} 次"),
            TooManyTries => "这个验证码错误次数太多，已失效，请重新获取".into(),
            CodeExpired => "验证码已过期或已使用，请重新获取".into(),
            LoginRequired { expired: false } => "请先报名或登录".into(),
            LoginRequired { expired: true } => "登录已过期，请重新登录".into(),
            AttemptNotFound => "没有找到这次答题".into(),
            NotInMistakes { question } => {
                format!("题目 {question} 不在您的错题本中：只能练习自己答错过的题")
            }
            AlreadySubmitted => "这次答题已经交卷了".into(),
            AttemptExpired => "答题时间已过，请重新开始答题".into(),
            DailyLimit { limit } => format!("今天的 {limit} 次答题机会已用完，明天再来吧"),
            Answer(e) => e.to_string(),
            QuestionGone => "这次答题的题目已不在题库中，无法显示".into(),
            RoundNotFound { round } => format!("本次活动没有第 {round} 期"),
            RoundNotClosed { round, closes_at } => {
                format!("第 {round} 期报名到 {closes_at} 截止，截止后才能封存")
            }
            RoundNotDrawn { round } => format!("第 {round} 期还没有开奖：开奖后的记录才有签名"),
            PreviousRoundNotDrawn { round } => format!(
                "第 {} 期开奖之后，第 {round} 期才能封存",
                round.saturating_sub(1)
            ),
            NotEnoughCommitments { round, needed, has } => format!(
                "第 {round} 期封存前需要 {needed} 位见证人提交承诺，现在只有 {has} 位"
            ),
            AlreadyFrozen { round } => format!("第 {round} 期已经封存"),
            AlreadyDrawn { round } => format!("第 {round} 期已经开奖"),
            RoundNotFrozen { round } => format!("第 {round} 期还没有封存"),
            RevealsMissing { round, witnesses } => format!(
                "第 {round} 期还在等待这些见证人公布密钥：{}",
                witnesses.join("、")
            ),
            AlreadyCommitted { round, witness } => {
                format!("{witness} 已经对第 {round} 期提交过承诺")
            }
            NotCommitted { round, witness } => format!("{witness} 没有对第 {round} 期提交承诺"),
            AlreadyRevealed { round, witness } => {
                format!("{witness} 已经公布过第 {round} 期的密钥")
            }
            InvalidCommitment => "承诺应为 64 位十六进制数（32 字节）".into(),
            InvalidSecret => "密钥应为 64 位十六进制数（32 字节）".into(),
            WrongSecret => "这个密钥与您提交的承诺不符".into(),
            UnexpectedBeacon { round } => {
                format!("第 {round} 期封存时没有声明信标来源，开奖时不能填写信标")
            }
            BeaconRequired { round, source } => {
                format!("第 {round} 期封存时声明的信标来源是“{source}”，请填写它的值")
            }
            UnexpectedBeaconSignature { round } => format!(
                "第 {round} 期的信标来源不是 drand quicknet，不需要签名；请填写信标的值"
            ),
            BeaconSignatureRequired {
                round,
                beacon_round,
            } => format!(
                "第 {round} 期的信标是 drand quicknet 第 {beacon_round} 轮：请填写该轮的签名（signature，96 位十六进制），随机数由签名算出"
            ),
            BeaconSignatureInvalid {
                round,
                beacon_round,
                why,
            } => format!(
                "这不是 drand quicknet 第 {beacon_round} 轮的有效签名（第 {round} 期）：{why}"
            ),
            BeaconRoundTooSoon {
                beacon_round,
                published,
                margin_minutes,
                earliest,
            } => format!(
                "drand quicknet 第 {beacon_round} 轮在 {published} 发布，不晚于封存后 {margin_minutes} 分钟；请选第 {earliest} 轮或更晚的轮次"
            ),
            NotAnEntry { round, ticket } => format!("{ticket} 不在第 {round} 期的抽奖名单中"),
            NotATicket { round, ticket } => format!("{ticket} 不是第 {round} 期的奖券"),
            NoPrize { round } => format!("您在第 {round} 期没有奖品"),
            ClaimClosed { round } => {
                format!("第 {round} 期的奖品已不能领取：领取期限已过，或已放弃")
            }
            PrizeNotClaimed => "中奖者还没有领取这份奖品：请先在“我的”页面领取，领取后券码才能使用".into(),
            Typo => "券码有误：请核对后重新输入（最后一位校验不符）".into(),
            MalformedCode { message } => message.clone(),
            UnknownCode => "没有这个券码，请核对后重新输入".into(),
            VoucherNotFound => "没有找到这张券".into(),
            VoucherVoid => "此券已作废，不能使用".into(),
            WrongVenueCategory { voucher, venue } => {
                format!("此券只能在{voucher}使用，本店是{venue}")
            }
            NotYetValid { from, .. } => format!("此券自 {from} 起才能使用"),
            Expired { until, .. } => format!("此券已过期（有效期至 {until}）"),
            AlreadyUsed { at, venue_name, .. } => {
                format!("此券已于 {at} 在「{venue_name}」使用过")
            }
            HolderCodeRequired => "请输入持券人手机上显示的 6 位动态码".into(),
            HolderMismatch => "动态码不对或已过期，请持券人刷新页面后再出示".into(),
            HolderCodeUsed => "这个动态码刚用过，请等持券人手机上的动态码更新后再输入".into(),
            IdempotencyKeyRequired => {
                "请发送 Idempotency-Key 请求头（每次核销一个新的随机值，重试时不变）".into()
            }
            InvalidIdempotencyKey => "Idempotency-Key 应为 1 到 100 个可见 ASCII 字符".into(),
            IdempotencyKeyReused => {
                "这个 Idempotency-Key 已用于另一个券码；每次核销请用新的值".into()
            }
            TooManyFailedLookups { retry_after } => {
                format!("查询失败次数过多，请 {} 秒后再试", retry_after.max(&1))
            }
            RedemptionNotFound => "本店没有这笔核销".into(),
            AlreadyReversed => "这笔核销已经撤销过了".into(),
            ReversalWindowPassed {
                minutes,
                redeemed_at,
            } => format!(
                "核销后 {minutes} 分钟内才能撤销；这笔核销于 {redeemed_at} 完成，已超过时限，请联系活动运营"
            ),
            AlreadyVoid => "这张券已经作废了".into(),
            NotVoid => "这张券还没有作废：请先作废再补发".into(),
            AlreadyReissued { .. } => "这张券已经补发过新码了".into(),
            Unavailable => "服务暂时无法连接数据库，请稍后重试".into(),
            StorageFull => "服务器存储空间已满，暂时无法保存，请稍后重试；运营人员已收到提醒".into(),
        }
    }

    /// Facts behind the refusal, for clients that act on them.
    pub fn details(&self) -> Option<Value> {
        use Refusal::*;
        match self {
            InvalidField { field, .. } | InvalidQuery { field, .. } => {
                Some(json!({ "field": field }))
            }
            MalformedJson { problem } => Some(json!({ "problem": problem })),
            DuplicateKey { key } => Some(json!({ "key": key })),
            InvalidPhone(_) => Some(json!({ "field": "phone" })),
            InvalidDisplayName { .. } => Some(json!({ "field": "display_name" })),
            ConsentRequired => Some(json!({ "field": "consent" })),
            ChallengeRequired | ChallengeInvalid | ChallengeExpired | ChallengeUsed => {
                Some(json!({ "field": "altcha" }))
            }
            InvalidCode => Some(json!({ "field": "code" })),
            InvalidCommitment => Some(json!({ "field": "commitment" })),
            InvalidSecret => Some(json!({ "field": "secret" })),
            WrongRole { needs, has } => Some(json!({ "needs": needs, "has": has })),
            WrongCode { tries_left } => Some(json!({ "tries_left": tries_left })),
            RevealsMissing { witnesses, .. } => Some(json!({ "witnesses": witnesses })),
            BeaconSignatureRequired { beacon_round, .. }
            | BeaconSignatureInvalid { beacon_round, .. } => {
                Some(json!({ "field": "beacon_signature", "beacon_round": beacon_round }))
            }
            BeaconRoundTooSoon {
                beacon_round,
                published,
                earliest,
                ..
            } => Some(json!({
                "field": "beacon_source",
                "beacon_round": beacon_round,
                "published": published,
                "earliest": earliest,
            })),
            NotEnoughCommitments { needed, has, .. } => {
                Some(json!({ "needed": needed, "has": has }))
            }
            AlreadyReissued { replacement } => Some(json!({ "replacement": replacement })),
            NotYetValid { from_rfc3339, .. } => Some(json!({ "valid_from": from_rfc3339 })),
            Expired { until_rfc3339, .. } => Some(json!({ "valid_until": until_rfc3339 })),
            AlreadyUsed {
                at_rfc3339,
                venue_id,
                venue_name,
                ..
            } => Some(json!({
                "used_at": at_rfc3339, "venue_id": venue_id, "venue_name": venue_name,
            })),
            WrongVenueCategory { voucher, venue } => {
                Some(json!({ "voucher_category": voucher, "venue_category": venue }))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}（{}）", self.message(), self.code())
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Refusal> {
        use Refusal::*;
        vec![
            NoSuchRoute {
                method: "GET".into(),
                path: "/x".into(),
            },
            MalformedJson {
                problem: "EOF".into(),
            },
            Refusal::field("reason", "请填写作废原因"),
            WrongRole {
                needs: vec![Role::Operator, Role::Auditor],
                has: Role::Venue,
            },
            RoundNotClosed {
                round: 1,
                closes_at: "2024-07-22 00:00".into(),
            },
            PreviousRoundNotDrawn { round: 2 },
            NotEnoughCommitments {
                round: 1,
                needed: 2,
                has: 1,
            },
            RevealsMissing {
                round: 1,
                witnesses: vec!["律师见证人".into()],
            },
            BeaconRequired {
                round: 1,
                source: "福彩3D 第2024190期".into(),
            },
            BeaconSignatureRequired {
                round: 1,
                beacon_round: 657_413,
            },
            BeaconSignatureInvalid {
                round: 1,
                beacon_round: 657_413,
                why: "签名与第 657414 轮不符".into(),
            },
            BeaconRoundTooSoon {
                beacon_round: 657_413,
                published: "2023-09-15T10:40:03Z".into(),
                margin_minutes: 60,
                earliest: 657_500,
            },
            UnexpectedBeaconSignature { round: 1 },
            ReversalWindowPassed {
                minutes: 30,
                redeemed_at: "2024-07-22 10:00".into(),
            },
            TooManyFailedLookups { retry_after: 0 },
        ]
    }

    #[test]
    fn messages_are_chinese_and_name_no_field_in_english() {
        for r in samples() {
            let m = r.message();
            assert!(
                m.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{m}"
            );
            for english in ["round", "not ", "the ", "must", "reason:", "field"] {
                assert!(!m.contains(english), "{:?}: {m}", r.code());
            }
        }
    }

    #[test]
    fn the_published_list_holds_every_code_once() {
        // Read off `code()` itself, so that a code added there and not to the list fails here.
        let source = include_str!("refusal.rs");
        let start = source.find("pub fn code(&self)").unwrap();
        let end = source[start..].find("pub fn kind(&self)").unwrap() + start;
        let mut in_code: Vec<&str> = source[start..end]
            .split("=> \"")
            .skip(1)
            .map(|rest| &rest[..rest.find('"').unwrap()])
            .collect();
        in_code.sort_unstable();
        in_code.dedup();
        let mut listed = ALL_CODES.to_vec();
        listed.sort_unstable();
        let before = listed.len();
        listed.dedup();
        assert_eq!(listed.len(), before, "no code listed twice");
        assert_eq!(listed, in_code);
    }

    #[test]
    fn field_errors_name_the_field_in_details() {
        let r = Refusal::field("reason", "请填写作废原因");
        assert_eq!(r.code(), "invalid_field");
        assert_eq!(r.kind(), Kind::Invalid);
        assert_eq!(r.details(), Some(json!({"field": "reason"})));
        assert_eq!(r.message(), "请填写作废原因");
        let q = Refusal::query("limit", "每页 1 到 1000 条");
        assert_eq!((q.code(), q.kind()), ("invalid_query", Kind::BadRequest));
    }

    #[test]
    fn throttles_say_when_to_come_back() {
        let r = Refusal::TooManyFailedLookups { retry_after: 0 };
        assert_eq!(r.retry_after(), Some(1));
        assert_eq!(r.kind(), Kind::TooMany);
        assert!(r.message().contains("1 秒"));
        assert_eq!(Refusal::AlreadyVoid.retry_after(), None);
    }

    #[test]
    fn the_lifecycle_refusals_have_their_own_codes() {
        let codes: Vec<&str> = samples().iter().map(Refusal::code).collect();
        for c in [
            "round_not_closed",
            "previous_round_not_drawn",
            "not_enough_commitments",
            "reveals_missing",
            "beacon_required",
        ] {
            assert!(codes.contains(&c), "{c}");
        }
        assert!(!codes.contains(&"conflict"));
    }
}
