//! The law quiz: start an attempt, answer it, learn from the result, maybe hold a ticket.

use super::body::Body;
use super::docs::{BodyRefusals, SessionRefusals};
use super::error::{ApiError, ErrorBody};
use super::ok_json;
use crate::app::auth::{Session, SessionKey};
use crate::app::quiz::{self, Shown, Submitted};
use crate::app::App;
use crate::domain::quiz::{Answer, QuestionResult, Scored, ShownQuestion};
use crate::store::TicketOutcome;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/quiz/attempts").post(start))
        .service(web::resource("/api/quiz/attempts/{id}").get(show_attempt))
        .service(web::resource("/api/quiz/attempts/{id}/submit").post(submit))
        .service(web::resource("/api/me/mistakes").get(mistakes))
        .service(web::resource("/api/me/practice").post(practise));
}

/// A question of the 错题本, options in the bank's own order (`A` is the bank's first).
#[derive(Serialize, ToSchema)]
pub struct MistakeView<'a> {
    id: &'a str,
    topic: &'a str,
    text: &'a str,
    multiple: bool,
    options: Vec<crate::domain::quiz::ShownOption<'a>>,
    correct_choices: Vec<&'static str>,
    /// Why, with the article of the law.
    explanation: &'a str,
    /// Submitted attempts that had it wrong, and when last.
    times_wrong: u32,
    last_wrong_at: String,
    /// Answered right in a later attempt.
    right_since: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MistakesView<'a> {
    questions: Vec<MistakeView<'a>>,
}

/// The participant's 错题本: each question answered wrong in a submitted attempt, the most
/// recently missed first, with the right answer and the explanation.
#[utoipa::path(get, path = "/api/me/mistakes", tag = "quiz", security(("session" = [])),
    responses((status = 200, body = MistakesView<'static>), SessionRefusals))]
pub async fn mistakes(app: web::Data<App>, session: Session) -> Result<HttpResponse, ApiError> {
    let list = quiz::mistakes(&app, &session).await?;
    let keys = crate::domain::quiz::KEYS;
    Ok(ok_json(&MistakesView {
        questions: list
            .into_iter()
            .map(|m| {
                let q = m.question;
                MistakeView {
                    id: &q.id,
                    topic: &q.topic,
                    text: &q.text,
                    multiple: q.correct.len() > 1,
                    options: q
                        .options
                        .iter()
                        .enumerate()
                        .map(|(i, text)| crate::domain::quiz::ShownOption {
                            key: keys[i],
                            text: text.as_str(),
                        })
                        .collect(),
                    correct_choices: q.correct.iter().map(|&i| keys[i]).collect(),
                    explanation: &q.explanation,
                    times_wrong: m.times_wrong,
                    last_wrong_at: app.campaign.local_rfc3339(m.last_wrong_at),
                    right_since: m.right_since,
                }
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Practice {
    /// A question of the participant's 错题本.
    question: String,
    /// Option keys in the bank's order, as `/api/me/mistakes` shows them.
    choices: Vec<String>,
}

/// Answers a question of one's 错题本 again: checked and explained; nothing is recorded and no
/// ticket is at stake.
#[utoipa::path(post, path = "/api/me/practice", tag = "quiz", security(("session" = [])),
    request_body = Practice,
    responses((status = 200, body = QuestionResult<'static>), BodyRefusals, SessionRefusals,
    (status = 404, body = ErrorBody, description = "`not_in_mistakes`"),
    (status = 422, body = ErrorBody, description = "`missing_answer`, `unknown_option`, `duplicate_choice`, `too_many_choices`")))]
pub async fn practise(
    app: web::Data<App>,
    session: Session,
    Body(body): Body<Practice>,
) -> Result<HttpResponse, ApiError> {
    let checked = quiz::practise(&app, &session, &body.question, &body.choices).await?;
    Ok(ok_json(&checked))
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

fn scored_view<'a>(app: &App, scored: Scored<'a>, score: u32, passed: bool) -> ScoredView<'a> {
    ScoredView {
        score,
        out_of: scored.out_of,
        pass_mark: app.campaign.quiz.pass_mark,
        passed,
        results: scored.results,
    }
}

fn attempt_view<'a>(app: &'a App, shown: Shown<'a>) -> AttemptView<'a> {
    let c = &app.campaign;
    let now = app.clock.now();
    let a = shown.attempt;
    let result = match (shown.scored, a.submitted_at) {
        (Some(scored), Some(at)) => {
            let passed = a.passed.unwrap_or(false);
            let score = a.score.unwrap_or(scored.score);
            Some(ResultView {
                scored: scored_view(app, scored, score, passed),
                ticket: ticket_news(app, passed, a.ticket_round, a.ticket, at),
            })
        }
        _ => None,
    };
    AttemptView {
        id: a.id,
        questions: shown.questions,
        deadline: c.local_rfc3339(a.deadline),
        seconds_left: (a.deadline - now).num_seconds().max(0),
        pass_mark: c.quiz.pass_mark,
        round: c.open_round(now).map(|r| r.number),
        submitted: a.submitted_at.is_some(),
        result,
    }
}

/// Starts an attempt: questions drawn at random, options shuffled, nothing revealing the answers.
#[utoipa::path(post, path = "/api/quiz/attempts", tag = "quiz", security(("session" = [])),
    responses((status = 201, body = AttemptView<'static>), SessionRefusals,
    (status = 429, body = ErrorBody, description = "`daily_limit`")))]
pub async fn start(
    app: web::Data<App>,
    settings: web::Data<super::Settings>,
    req: HttpRequest,
    session: Session,
) -> Result<HttpResponse, ApiError> {
    let (device, new_cookie) =
        super::auth::device_id(&req, settings.secure_cookies).map_err(crate::app::Error::from)?;
    let origin = quiz::Origin::new(&super::client_address(&req), Some(&device));
    let shown = quiz::start(&app, &session, origin).await?;
    let mut res = HttpResponse::Created();
    if let Some(c) = new_cookie {
        res.cookie(c);
    }
    Ok(res.json(attempt_view(&app, shown)))
}

/// An attempt: its questions, and once submitted, its result.
#[utoipa::path(get, path = "/api/quiz/attempts/{id}", tag = "quiz", security(("session" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = AttemptView<'static>), SessionRefusals,
    (status = 404, body = ErrorBody, description = "`attempt_not_found`"),
    (status = 409, body = ErrorBody, description = "`question_gone`")))]
pub async fn show_attempt(
    app: web::Data<App>,
    session: Session,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let shown = quiz::attempt(&app, &session, &id).await?;
    Ok(ok_json(&attempt_view(&app, shown)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    /// One entry per question of the attempt.
    answers: Vec<Answer>,
    /// Sent by the page when the time ran out: questions not answered count as wrong instead
    /// of being refused (`missing_answer`). A submission is taken up to 30 s after the
    /// deadline, for the network.
    #[serde(default)]
    time_up: bool,
}

/// Submits all answers at once. Scored here; a pass while a round is open holds that round's
/// one ticket.
#[utoipa::path(post, path = "/api/quiz/attempts/{id}/submit", tag = "quiz", security(("session" = [])),
    params(("id" = Uuid, Path)), request_body = Answers,
    responses((status = 200, body = ResultView<'static>), BodyRefusals, SessionRefusals,
    (status = 404, body = ErrorBody, description = "`attempt_not_found`"),
    (status = 409, body = ErrorBody, description = "`already_submitted`"),
    (status = 410, body = ErrorBody, description = "`attempt_expired`"),
    (status = 422, body = ErrorBody, description = "`invalid_field`, `answer_not_in_attempt`, `duplicate_answer`, `missing_answer`, `unknown_option`, `duplicate_choice`, `too_many_choices`, `question_gone`")))]
pub async fn submit(
    app: web::Data<App>,
    key: SessionKey,
    id: web::Path<String>,
    Body(body): Body<Answers>,
) -> Result<HttpResponse, ApiError> {
    let done: Submitted<'_> = quiz::submit(&app, &key, &id, &body.answers, body.time_up).await?;
    let score = done.scored.score;
    Ok(ok_json(&ResultView {
        ticket: ticket_news(&app, done.passed, done.round, done.ticket, done.at),
        scored: scored_view(&app, done.scored, score, done.passed),
    }))
}

/// What a submission did for the ticket, in words; `round` is the round it was entered in and
/// `at` the time of submission.
fn ticket_news(
    app: &App,
    passed: bool,
    round: Option<u32>,
    ticket: TicketOutcome,
    at: DateTime<Utc>,
) -> TicketNews {
    let c = &app.campaign;
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
