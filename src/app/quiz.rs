//! The law quiz: start an attempt, see it, submit it (and, for a pass in an open round, hold
//! that round's one ticket).

use super::auth::{Session, SessionKey};
use super::{internal, App, Result};
use crate::domain::quiz::{
    draw_questions, due_after, in_time, score, show, Answer, AttemptQuestion, Mistake,
    QuestionResult, Scored, ShownQuestion, Unanswered,
};
use crate::domain::refusal::Refusal;
use crate::store::{AttemptRecord, NewAttempt, Submission, SubmitOutcome, TicketOutcome};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// Attempts started by this process. Their questions never change, so a submission to the same
/// process is scored without reading the attempt back, and its one write checks the session,
/// the owner, the deadline and that it was not submitted yet. A miss (another process started
/// it, or it was evicted) reads the database.
#[derive(Default)]
pub(super) struct AttemptCache(std::sync::Mutex<std::collections::HashMap<Uuid, CachedAttempt>>);

#[derive(Clone)]
struct CachedAttempt {
    participant_id: Uuid,
    questions: Vec<AttemptQuestion>,
    deadline: DateTime<Utc>,
}

/// About 200 bytes each: at most some tens of megabytes.
const ATTEMPT_CACHE_LIMIT: usize = 100_000;

impl AttemptCache {
    fn insert(&self, id: Uuid, a: CachedAttempt, now: DateTime<Utc>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= ATTEMPT_CACHE_LIMIT {
            map.retain(|_, a| in_time(a.deadline, now));
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

/// An attempt as its participant sees it: the questions (options shuffled, no answers) and,
/// once submitted, the scored answers.
pub struct Shown<'a> {
    pub attempt: AttemptRecord,
    pub questions: Vec<ShownQuestion<'a>>,
    pub scored: Option<Scored<'a>>,
}

fn shown(app: &App, attempt: AttemptRecord) -> Result<Shown<'_>> {
    let questions = attempt
        .questions
        .iter()
        .map(|aq| show(&app.questions, aq))
        .collect::<Option<Vec<_>>>()
        .ok_or(Refusal::QuestionGone)?;
    // Only the answers are stored; the result is scored again from them, as on submission.
    let scored = match (&attempt.result, attempt.submitted_at) {
        (Some(json), Some(_)) => {
            let answers: Vec<Answer> = serde_json::from_str(json)
                .map_err(|e| internal(format!("stored answers are unreadable: {e}")))?;
            Some(
                score(
                    &app.questions,
                    &attempt.questions,
                    &answers,
                    Unanswered::Wrong,
                )
                .map_err(|_| Refusal::QuestionGone)?,
            )
        }
        _ => None,
    };
    Ok(Shown {
        attempt,
        questions,
        scored,
    })
}

/// Starts an attempt: questions drawn at random, options shuffled, within the daily limit.
/// Where an attempt is made from, as the risk signals keep it: the client's network, never its
/// address, and the hash of the browser's device id.
pub struct Origin {
    pub network: Option<String>,
    pub device: Option<String>,
}

impl Origin {
    pub fn new(address: &str, device_id: Option<&str>) -> Self {
        Self {
            network: crate::domain::risk::network_of(address),
            device: device_id.map(crate::domain::token::token_hash),
        }
    }
}

pub async fn start<'a>(app: &'a App, session: &Session, origin: Origin) -> Result<Shown<'a>> {
    let rules = app.campaign.quiz;
    let now = app.clock.now();
    let questions = draw_questions(
        &app.questions,
        rules.questions_per_attempt as usize,
        &mut crate::csprng::rng()?,
    );
    let attempt = NewAttempt {
        id: Uuid::new_v4(),
        participant_id: session.participant().id,
        questions,
        started_at: now,
        deadline: now + Duration::minutes(i64::from(rules.time_limit_minutes)),
        local_day: now.with_timezone(&app.campaign.tz()).date_naive(),
        network: origin.network,
        device: origin.device,
    };
    if !app
        .store
        .start_attempt(attempt.clone(), rules.daily_attempts)
        .await?
    {
        return Err(Refusal::DailyLimit {
            limit: rules.daily_attempts,
        }
        .into());
    }
    app.attempts.insert(
        attempt.id,
        CachedAttempt {
            participant_id: attempt.participant_id,
            questions: attempt.questions.clone(),
            deadline: attempt.deadline,
        },
        now,
    );
    shown(
        app,
        AttemptRecord {
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
        },
    )
}

/// How many of a participant's latest submitted attempts the 错题本 reads: ten a day for a whole
/// campaign is about 1 200.
const MISTAKES_FROM: u32 = 1_500;

/// The participant's 错题本: each question answered wrong in a submitted attempt, the most
/// recently missed first.
pub async fn mistakes<'a>(app: &'a App, session: &Session) -> Result<Vec<Mistake<'a>>> {
    let attempts = app
        .store
        .submitted_attempts_of(session.participant().id, MISTAKES_FROM)
        .await?;
    let mut given = Vec::with_capacity(attempts.len());
    for a in &attempts {
        let answers: Vec<Answer> = serde_json::from_str(a.result.as_deref().unwrap_or("[]"))
            .map_err(|e| internal(format!("stored answers are unreadable: {e}")))?;
        given.push((a, answers, a.submitted_at.unwrap_or(a.started_at)));
    }
    let refs: Vec<(&[AttemptQuestion], &[Answer], DateTime<Utc>)> = given
        .iter()
        .map(|(a, answers, at)| (a.questions.as_slice(), answers.as_slice(), *at))
        .collect();
    Ok(crate::domain::quiz::mistakes(&app.questions, &refs))
}

/// Answers a question of the participant's 错题本 again: checked and explained, nothing
/// recorded, no ticket. Only questions already answered wrong (and so already explained to them)
/// can be practised, so that practice reveals no answer of a question still to come.
pub async fn practise<'a>(
    app: &'a App,
    session: &Session,
    question: &str,
    choices: &[String],
) -> Result<QuestionResult<'a>> {
    if !mistakes(app, session)
        .await?
        .iter()
        .any(|m| m.question.id == question)
    {
        return Err(Refusal::NotInMistakes {
            question: question.to_owned(),
        }
        .into());
    }
    Ok(
        crate::domain::quiz::practise(&app.questions, question, choices)
            .map_err(Refusal::Answer)?,
    )
}

/// One of the participant's attempts; another participant's is answered like a missing one.
pub async fn attempt<'a>(app: &'a App, session: &Session, id: &str) -> Result<Shown<'a>> {
    let id = Uuid::parse_str(id).map_err(|_| Refusal::AttemptNotFound)?;
    match app.store.attempt(id).await? {
        Some(a) if a.participant_id == session.participant().id => shown(app, a),
        _ => Err(Refusal::AttemptNotFound.into()),
    }
}

/// A recorded submission.
pub struct Submitted<'a> {
    pub scored: Scored<'a>,
    pub passed: bool,
    /// The round the pass was entered in (none when failed or no round was open).
    pub round: Option<u32>,
    pub ticket: TicketOutcome,
    pub at: DateTime<Utc>,
}

/// Submits all answers at once. Scored here; a pass while a round is open holds that round's
/// one ticket. `time_up` (sent by the page when the time ran out) counts the questions not
/// answered as wrong instead of refusing them.
pub async fn submit<'a>(
    app: &'a App,
    key: &SessionKey,
    id: &str,
    answers: &[Answer],
    time_up: bool,
) -> Result<Submitted<'a>> {
    let now = app.clock.now();
    let unanswered = if time_up {
        Unanswered::Wrong
    } else {
        Unanswered::Refused
    };
    let attempt_id = Uuid::parse_str(id).ok();
    // The hot path, for an attempt this process started: scored from memory, written once, the
    // session checked by that write. Anything unusual takes the full path below.
    if let Some((id, cached)) = attempt_id.and_then(|id| Some((id, app.attempts.get(id)?))) {
        if in_time(cached.deadline, now) {
            if let Ok(scored) = score(&app.questions, &cached.questions, answers, unanswered) {
                let (outcome, done) = record(
                    app,
                    id,
                    cached.participant_id,
                    scored,
                    answers,
                    Some(key.hash().to_owned()),
                    now,
                )
                .await?;
                if let (SubmitOutcome::Recorded(_), Some(done)) = (outcome, done) {
                    app.attempts.remove(id);
                    return Ok(done);
                }
            }
        }
    }
    // The full path: session and attempt in one look-up, then one write.
    let (participant, attempt) = app
        .store
        .session_attempt(key.hash(), attempt_id.unwrap_or(Uuid::nil()), now)
        .await?
        .ok_or(Refusal::LoginRequired { expired: true })?;
    let a = attempt.ok_or(Refusal::AttemptNotFound)?;
    if a.submitted_at.is_some() {
        return Err(Refusal::AlreadySubmitted.into());
    }
    if !in_time(a.deadline, now) {
        return Err(Refusal::AttemptExpired.into());
    }
    let scored =
        score(&app.questions, &a.questions, answers, unanswered).map_err(Refusal::Answer)?;
    let (outcome, done) = record(app, a.id, participant.id, scored, answers, None, now).await?;
    app.attempts.remove(a.id);
    match (outcome, done) {
        (SubmitOutcome::Recorded(_), Some(done)) => Ok(done),
        (SubmitOutcome::AlreadySubmitted, _) => Err(Refusal::AlreadySubmitted.into()),
        (SubmitOutcome::Expired, _) => Err(Refusal::AttemptExpired.into()),
        (SubmitOutcome::LoggedOut, _) => Err(Refusal::LoginRequired { expired: true }.into()),
        _ => Err(Refusal::AttemptNotFound.into()),
    }
}

/// Writes a scored submission (holding the round's ticket on a pass) and, when it was
/// recorded, what it did.
async fn record<'a>(
    app: &'a App,
    attempt_id: Uuid,
    participant_id: Uuid,
    scored: Scored<'a>,
    answers: &[Answer],
    session: Option<String>,
    now: DateTime<Utc>,
) -> Result<(SubmitOutcome, Option<Submitted<'a>>)> {
    let c = &app.campaign;
    let passed = scored.score >= c.quiz.pass_mark;
    let open = c.open_round(now).map(|r| r.number);
    let outcome = app
        .store
        .submit_attempt(Submission {
            attempt_id,
            participant_id,
            score: scored.score,
            passed,
            result: serde_json::to_string(answers).map_err(internal)?,
            at: now,
            due_after: due_after(now),
            ticket_round: open.map(|n| (c.id.clone(), n)),
            session,
        })
        .await?;
    let SubmitOutcome::Recorded(ticket) = outcome else {
        return Ok((outcome, None));
    };
    Ok((
        outcome,
        Some(Submitted {
            scored,
            passed,
            round: open.filter(|_| passed),
            ticket,
            at: now,
        }),
    ))
}
