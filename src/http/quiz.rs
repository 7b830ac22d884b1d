//! The law quiz: start an attempt, answer it, learn from the result, maybe hold a ticket.

use super::auth::{ParticipantSession, SessionToken};
use super::body::Body;
use super::error::ApiError;
use super::{ok_json, AppState};
use crate::domain::quiz::{
    draw_questions, score, show, Answer, AnswerError, QuestionResult, ShownQuestion,
};
use crate::store::{AttemptRecord, NewAttempt, Submission, SubmitOutcome, TicketOutcome};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Attempts started by this process. Their questions never change, so a submission to the same
/// process is scored without reading the attempt back, and its one write checks the session,
/// the owner, the deadline and that it was not submitted yet. A miss (another process started
/// it, or it was evicted) reads the database as before.
#[derive(Default)]
pub struct AttemptCache(std::sync::Mutex<std::collections::HashMap<Uuid, CachedAttempt>>);

#[derive(Clone)]
pub struct CachedAttempt {
    participant_id: Uuid,
    questions: Vec<crate::domain::quiz::AttemptQuestion>,
    deadline: chrono::DateTime<chrono::Utc>,
}

/// About 200 bytes each: at most some tens of megabytes.
const ATTEMPT_CACHE_LIMIT: usize = 100_000;

impl AttemptCache {
    fn insert(&self, id: Uuid, a: CachedAttempt, now: chrono::DateTime<chrono::Utc>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= ATTEMPT_CACHE_LIMIT {
            map.retain(|_, a| a.deadline >= now);
            if map.len() >= ATTEMPT_CACHE_LIMIT {
                map.clear();
            }
        }
        map.insert(id, a);
    }

    fn get(&self, id: Uuid) -> Option<CachedAttempt> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&id).cloned()
    }

    fn remove(&self, id: Uuid) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&id);
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/quiz/attempts").post(start))
        .service(web::resource("/api/quiz/attempts/{id}").get(show_attempt))
        .service(web::resource("/api/quiz/attempts/{id}/submit").post(submit));
}

#[derive(Serialize, ToSchema)]
pub struct AttemptView<'a> {
    id: Uuid,
    questions: Vec<ShownQuestion<'a>>,
    /// Local time; answers after it are refused.
    deadline: String,
    /// Seconds left now.
    seconds_left: i64,
    pass_mark: u32,
    /// The round a pass would enter, if one is open now.
    round: Option<u32>,
    submitted: bool,
    /// Present once submitted.
    result: Option<ResultView<'a>>,
}

/// The scored answers.
#[derive(Serialize, ToSchema)]
pub struct ScoredView<'a> {
    score: u32,
    out_of: u32,
    pass_mark: u32,
    passed: bool,
    /// Every question with the answer given, the right answer and why.
    results: Vec<QuestionResult<'a>>,
}

#[derive(Serialize, ToSchema)]
pub struct ResultView<'a> {
    #[serde(flatten)]
    scored: ScoredView<'a>,
    ticket: TicketNews,
}

/// What happened to the ticket.
#[derive(Serialize, ToSchema)]
pub struct TicketNews {
    /// `issued`, `already_held`, `not_passed` or `no_open_round`.
    status: String,
    round: Option<u32>,
    ticket: Option<Uuid>,
    /// For people, in Chinese.
    message: String,
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "attempt_not_found",
        "没有找到这次答题",
    )
}

fn view<'a>(state: &'a AppState, a: &AttemptRecord) -> Result<AttemptView<'a>, ApiError> {
    let c = &state.campaign;
    let now = state.clock.now();
    let questions = a
        .questions
        .iter()
        .map(|aq| show(&state.questions, aq))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            ApiError::conflict("a question of this attempt is no longer in the question bank")
        })?;
    // Only the answers are stored; the result is scored again from them, as on submission.
    let result = match (&a.result, a.submitted_at) {
        (Some(json), Some(at)) => {
            let answers: Vec<Answer> = serde_json::from_str(json).map_err(|e| {
                ApiError::internal(anyhow::anyhow!("stored answers are unreadable: {e}"))
            })?;
            let rescored = score(&state.questions, &a.questions, &answers).map_err(|e| {
                ApiError::conflict(format!("this attempt can no longer be shown: {e}"))
            })?;
            let passed = a.passed.unwrap_or(false);
            let scored = ScoredView {
                score: a.score.unwrap_or(rescored.score),
                out_of: rescored.out_of,
                pass_mark: c.quiz.pass_mark,
                passed,
                results: rescored.results,
            };
            let ticket = ticket_news(state, passed, a.ticket_round, a.ticket, at);
            Some(ResultView { scored, ticket })
        }
        _ => None,
    };
    Ok(AttemptView {
        id: a.id,
        questions,
        deadline: c.local_rfc3339(a.deadline),
        seconds_left: (a.deadline - now).num_seconds().max(0),
        pass_mark: c.quiz.pass_mark,
        round: c.open_round(now).map(|r| r.number),
        submitted: a.submitted_at.is_some(),
        result,
    })
}

/// Starts an attempt: questions drawn at random, options shuffled, nothing revealing the answers.
#[utoipa::path(post, path = "/api/quiz/attempts", tag = "quiz", responses((status = 201, body = AttemptView),
    (status = 401, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody)))]
pub async fn start(
    state: web::Data<AppState>,
    session: ParticipantSession,
) -> Result<HttpResponse, ApiError> {
    let c = &state.campaign;
    let rules = c.quiz;
    let now = state.clock.now();
    let mut rng = crate::startup::os_seeded_rng().map_err(ApiError::internal)?;
    let questions = draw_questions(
        &state.questions,
        rules.questions_per_attempt as usize,
        &mut rng,
    );
    let attempt = NewAttempt {
        id: Uuid::new_v4(),
        participant_id: session.participant.id,
        questions,
        started_at: now,
        deadline: now + Duration::minutes(i64::from(rules.time_limit_minutes)),
        local_day: now.with_timezone(&c.tz()).date_naive(),
    };
    if !state
        .store
        .start_attempt(attempt.clone(), rules.daily_attempts)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "daily_limit",
            format!(
                "今天的 {} 次答题机会已用完，明天再来吧",
                rules.daily_attempts
            ),
        ));
    }
    state.attempts.insert(
        attempt.id,
        CachedAttempt {
            participant_id: attempt.participant_id,
            questions: attempt.questions.clone(),
            deadline: attempt.deadline,
        },
        now,
    );
    let record = AttemptRecord {
        id: attempt.id,
        participant_id: attempt.participant_id,
        questions: attempt.questions,
        started_at: attempt.started_at,
        deadline: attempt.deadline,
        submitted_at: None,
        score: None,
        passed: None,
        result: None,
        ticket_round: None,
        ticket: TicketOutcome::None,
    };
    Ok(HttpResponse::Created().json(view(&state, &record)?))
}

async fn own_attempt(
    state: &AppState,
    session: &ParticipantSession,
    id: &str,
) -> Result<AttemptRecord, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    match state.store.attempt(id).await? {
        // Another participant's attempt is answered exactly like a missing one.
        Some(a) if a.participant_id == session.participant.id => Ok(a),
        _ => Err(not_found()),
    }
}

/// An attempt: its questions, and once submitted, its result.
#[utoipa::path(get, path = "/api/quiz/attempts/{id}", tag = "quiz", params(("id" = Uuid, Path)),
    responses((status = 200, body = AttemptView), (status = 404, body = super::error::ErrorBody)))]
pub async fn show_attempt(
    state: web::Data<AppState>,
    session: ParticipantSession,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let a = own_attempt(&state, &session, &id).await?;
    Ok(ok_json(&view(&state, &a)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    /// One entry per question of the attempt.
    answers: Vec<Answer>,
}

fn answer_error(e: AnswerError) -> ApiError {
    let code = match e {
        AnswerError::NotInAttempt(_) => "answer_not_in_attempt",
        AnswerError::Duplicate(_) => "duplicate_answer",
        AnswerError::Missing(_) => "missing_answer",
        AnswerError::UnknownOption { .. } => "unknown_option",
        AnswerError::DuplicateChoice { .. } => "duplicate_choice",
        AnswerError::TooManyChoices(_) => "too_many_choices",
        AnswerError::QuestionGone(_) => "question_gone",
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
}

fn already_submitted() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "already_submitted",
        "这次答题已经交卷了",
    )
}

fn expired() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "attempt_expired",
        "答题时间已过，请重新开始答题",
    )
}

/// Submits all answers at once. Scored here; a pass while a round is open holds that round's
/// one ticket.
#[utoipa::path(post, path = "/api/quiz/attempts/{id}/submit", tag = "quiz", params(("id" = Uuid, Path)),
    request_body = Answers, responses((status = 200, body = ResultView),
    (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
    (status = 410, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody)))]
pub async fn submit(
    state: web::Data<AppState>,
    token: SessionToken,
    id: web::Path<String>,
    Body(body): Body<Answers>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let attempt_id = Uuid::parse_str(&id).ok();
    // The hot path, for an attempt this process started: score it from memory and write once,
    // the session checked by that write. Anything unusual takes the full path below.
    if let Some(cached) = attempt_id.and_then(|id| state.attempts.get(id)) {
        if now <= cached.deadline {
            if let Ok(scored) = score(&state.questions, &cached.questions, &body.answers) {
                let id = attempt_id.unwrap_or_default();
                let outcome = record_submission(
                    &state,
                    id,
                    cached.participant_id,
                    scored,
                    &body.answers,
                    Some(token.0.clone()),
                    now,
                )
                .await?;
                if let (SubmitOutcome::Recorded(_), Some(result)) = outcome {
                    state.attempts.remove(id);
                    return Ok(ok_json(&result));
                }
            }
        }
    }
    // The full path: session and attempt in one look-up, then one write.
    let (participant, attempt) = state
        .store
        .session_attempt(&token.0, attempt_id.unwrap_or(Uuid::nil()), now)
        .await?
        .ok_or_else(|| ApiError::unauthorized("login_required", "登录已过期，请重新登录"))?;
    let a = attempt.ok_or_else(not_found)?;
    if a.submitted_at.is_some() {
        return Err(already_submitted());
    }
    if now > a.deadline {
        return Err(expired());
    }
    let scored = score(&state.questions, &a.questions, &body.answers).map_err(answer_error)?;
    let (outcome, result) = record_submission(
        &state,
        a.id,
        participant.id,
        scored,
        &body.answers,
        None,
        now,
    )
    .await?;
    state.attempts.remove(a.id);
    match (outcome, result) {
        (SubmitOutcome::Recorded(_), Some(result)) => Ok(ok_json(&result)),
        (SubmitOutcome::AlreadySubmitted, _) => Err(already_submitted()),
        (SubmitOutcome::Expired, _) => Err(expired()),
        (SubmitOutcome::LoggedOut, _) => Err(ApiError::unauthorized(
            "login_required",
            "登录已过期，请重新登录",
        )),
        _ => Err(not_found()),
    }
}

/// Writes a scored submission (holding the round's ticket on a pass) and, when it was recorded,
/// the result to show.
async fn record_submission<'a>(
    state: &'a AppState,
    attempt_id: Uuid,
    participant_id: Uuid,
    scored: crate::domain::quiz::Scored<'a>,
    answers: &[Answer],
    session: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(SubmitOutcome, Option<ResultView<'a>>), ApiError> {
    let c = &state.campaign;
    let pass_mark = c.quiz.pass_mark;
    let passed = scored.score >= pass_mark;
    let open = c.open_round(now).map(|r| r.number);
    let outcome = state
        .store
        .submit_attempt(Submission {
            attempt_id,
            participant_id,
            score: scored.score,
            passed,
            result: serde_json::to_string(answers).map_err(|e| ApiError::internal(e.into()))?,
            at: now,
            ticket_round: open.map(|n| (c.id.clone(), n)),
            session,
        })
        .await?;
    let SubmitOutcome::Recorded(ticket) = outcome else {
        return Ok((outcome, None));
    };
    let ticket = ticket_news(state, passed, open.filter(|_| passed), ticket, now);
    let scored = ScoredView {
        score: scored.score,
        out_of: scored.out_of,
        pass_mark,
        passed,
        results: scored.results,
    };
    Ok((outcome, Some(ResultView { scored, ticket })))
}

/// What a submission did for the ticket, in words; `round` is the round it was entered in and
/// `at` the time of submission.
fn ticket_news(
    state: &AppState,
    passed: bool,
    round: Option<u32>,
    ticket: TicketOutcome,
    at: chrono::DateTime<chrono::Utc>,
) -> TicketNews {
    let c = &state.campaign;
    let pass_mark = c.quiz.pass_mark;
    let (status, id, message) = match (passed, round, ticket) {
        (_, Some(n), TicketOutcome::Issued(id)) => ("issued", Some(id), format!("恭喜通过！您已获得第 {n} 期抽奖券，请留意每周开奖")),
        (_, Some(n), TicketOutcome::AlreadyHeld(id)) => (
            "already_held",
            Some(id),
            format!("通过了！您已持有第 {n} 期抽奖券（每期每人一张），不会重复发放"),
        ),
        (false, _, _) => (
            "not_passed",
            None,
            format!("答对 {pass_mark} 题才算通过，这次没有获得抽奖券，看看解析再试一次吧"),
        ),
        (true, _, _) => match c.next_round(at) {
            Some(next) => (
                "no_open_round",
                None,
                format!(
                    "通过了！不过现在不在报名时段，第 {} 期将于 {} 开始，届时答题通过即可获得抽奖券",
                    next.number,
                    next.opens_at.with_timezone(&c.tz()).format("%Y年%m月%d日 %H:%M")
                ),
            ),
            None => ("no_open_round", None, "通过了！本次活动的所有期次都已结束，感谢参与学法".to_owned()),
        },
    };
    TicketNews {
        status: status.into(),
        round: id.and(round),
        ticket: id,
        message,
    }
}
