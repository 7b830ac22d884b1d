//! The campaign's report for operators and auditors: participation and learning figures (per
//! round, day, law and question, the hardest questions) and the prizes (tickets, claims,
//! redemptions and face value per venue).

use super::docs::StaffRefusals;
use super::error::{ApiError, ErrorBody};
use super::ok_json;
use crate::app::auth::Auditor;
use crate::app::{reports, App};
use crate::domain::figures::{hardest, rate, Counts, QuestionFigures};
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/admin/report").get(report));
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// A question needs this many answers to be listed among the hardest (20).
    min_answers: Option<u64>,
    /// How many hardest questions to list (10).
    hardest: Option<usize>,
}

/// Submitted attempts and their answers. Rates are fractions to four decimals (0.7081 is
/// 70.81 %), null before the first attempt.
#[derive(Serialize, ToSchema)]
pub struct FiguresView {
    /// Submitted attempts (答题人次).
    attempts: u64,
    /// Distinct participants who submitted at least one.
    participants: u64,
    passes: u64,
    pass_rate: Option<f64>,
    /// Questions answered, answered right, and their ratio (综合正确率).
    answered: u64,
    correct: u64,
    accuracy: Option<f64>,
}

impl FiguresView {
    fn of(c: Counts, participants: u64) -> Self {
        Self {
            attempts: c.submitted,
            participants,
            passes: c.passed,
            pass_rate: c.pass_rate(),
            answered: c.answered,
            correct: c.correct,
            accuracy: c.accuracy(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RoundFigures {
    /// The round the attempts were started in; 0 for attempts outside every round (practice).
    round: u32,
    #[serde(flatten)]
    figures: FiguresView,
}

#[derive(Serialize, ToSchema)]
pub struct DayFigures {
    /// Campaign-local date the attempts were started on.
    day: String,
    round: u32,
    #[serde(flatten)]
    figures: FiguresView,
}

#[derive(Serialize, ToSchema)]
pub struct StartedView {
    day: String,
    /// Attempts started, submitted or not.
    started: u64,
}

#[derive(Serialize, ToSchema)]
pub struct TopicFigures {
    /// The law (题库的 topic).
    topic: String,
    answered: u64,
    correct: u64,
    accuracy: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct QuestionView {
    id: String,
    topic: String,
    /// The question as the bank has it now (empty if it left the bank).
    text: String,
    answered: u64,
    correct: u64,
    accuracy: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct PrizeRound {
    round: u32,
    tickets: u64,
    to_claim: u64,
    claimed: u64,
    forfeited: u64,
}

#[derive(Serialize, ToSchema)]
pub struct VenueView {
    venue_id: String,
    name: String,
    /// Redemptions over the campaign, reversals netted.
    redemptions: i64,
    face_value_yuan: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ReportView {
    /// Campaign-local time of the report.
    generated_at: String,
    /// Attempts started in all, submitted or not.
    attempts_started: u64,
    #[serde(flatten)]
    total: FiguresView,
    per_round: Vec<RoundFigures>,
    per_day: Vec<DayFigures>,
    started_per_day: Vec<StartedView>,
    per_topic: Vec<TopicFigures>,
    per_question: Vec<QuestionView>,
    /// The least often answered right, among those answered `min_answers` times or more.
    hardest: Vec<QuestionView>,
    prizes_per_round: Vec<PrizeRound>,
    venues: Vec<VenueView>,
}

/// The campaign's figures as its organisers report them: attempts, participants, passes and pass
/// rate, accuracy, per round and per day; accuracy per law and per question, the hardest
/// questions; tickets, claims, redemptions and face value per venue. Tallied up to now first.
#[utoipa::path(get, path = "/api/admin/report", tag = "vouchers", security(("bearer" = [])),
    params(ReportQuery), responses((status = 200, body = ReportView), StaffRefusals,
    (status = 400, body = ErrorBody, description = "`invalid_query`")))]
pub async fn report(
    app: web::Data<App>,
    auditor: Auditor,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let r = reports::report(&app, &auditor).await?;
    let f = &r.figures;
    let mut total = Counts::default();
    let mut rounds: BTreeMap<u32, Counts> = BTreeMap::new();
    for (_, round, c, _) in &f.days {
        total.add(*c);
        rounds.entry(*round).or_default().add(*c);
    }
    let takers: BTreeMap<u32, u64> = f.takers_per_round.iter().copied().collect();
    let mut topics: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for q in &f.questions {
        let t = topics.entry(q.topic.as_str()).or_default();
        t.0 += q.answered;
        t.1 += q.correct;
    }
    let view = |q: &QuestionFigures| QuestionView {
        id: q.id.clone(),
        topic: q.topic.clone(),
        text: app
            .questions
            .get(&q.id)
            .map(|b| b.text.clone())
            .unwrap_or_default(),
        answered: q.answered,
        correct: q.correct,
        accuracy: q.accuracy(),
    };
    let tickets: BTreeMap<u32, u64> = r.tickets_per_round.iter().copied().collect();
    let mut prize_rounds: Vec<u32> = tickets.keys().copied().collect();
    prize_rounds.extend(r.claims.iter().map(|c| c.round));
    prize_rounds.sort_unstable();
    prize_rounds.dedup();
    let claims: BTreeMap<u32, &crate::store::ClaimCounts> =
        r.claims.iter().map(|c| (c.round, c)).collect();
    Ok(ok_json(&ReportView {
        generated_at: app.campaign.local_rfc3339(r.at),
        attempts_started: total.started,
        total: FiguresView::of(total, f.takers),
        per_round: rounds
            .into_iter()
            .map(|(round, c)| RoundFigures {
                round,
                figures: FiguresView::of(c, takers.get(&round).copied().unwrap_or(0)),
            })
            .collect(),
        per_day: f
            .days
            .iter()
            .map(|(day, round, c, takers)| DayFigures {
                day: day.clone(),
                round: *round,
                figures: FiguresView::of(*c, *takers),
            })
            .collect(),
        started_per_day: {
            let mut per_day: BTreeMap<&str, u64> = BTreeMap::new();
            for (day, _, c, _) in &f.days {
                *per_day.entry(day.as_str()).or_default() += c.started;
            }
            per_day
                .into_iter()
                .map(|(day, started)| StartedView {
                    day: day.to_owned(),
                    started,
                })
                .collect()
        },
        per_topic: topics
            .into_iter()
            .map(|(topic, (answered, correct))| TopicFigures {
                topic: topic.to_owned(),
                answered,
                correct,
                accuracy: rate(correct, answered),
            })
            .collect(),
        per_question: f.questions.iter().map(view).collect(),
        hardest: hardest(
            &f.questions,
            query.min_answers.unwrap_or(20),
            query.hardest.unwrap_or(10).min(200),
        )
        .into_iter()
        .map(view)
        .collect(),
        prizes_per_round: prize_rounds
            .into_iter()
            .map(|round| {
                let c = claims.get(&round);
                PrizeRound {
                    round,
                    tickets: tickets.get(&round).copied().unwrap_or(0),
                    to_claim: c.map_or(0, |c| c.to_claim),
                    claimed: c.map_or(0, |c| c.claimed),
                    forfeited: c.map_or(0, |c| c.forfeited),
                }
            })
            .collect(),
        venues: r
            .venues
            .into_iter()
            .map(|v| VenueView {
                venue_id: v.venue_id,
                name: v.name,
                redemptions: v.redemptions,
                face_value_yuan: v.face_value_yuan,
            })
            .collect(),
    }))
}
