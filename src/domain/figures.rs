//! The campaign's learning figures (the report a justice department publishes: 答题人次, pass
//! rate, 综合正确率, the accuracy of each question and each law). Attempts are tallied once each,
//! when submitted or when their time is up unsubmitted, into small per-day tables with running
//! counts (distinct participants included), so that the report reads a few thousand rows and
//! never millions; this module says what one attempt adds and how the rates are read.

use super::quiz::{score, Answer, AttemptQuestion, QuestionBank, Unanswered};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Submissions and answers counted together: a day's, a round's, the campaign's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Attempts started, submitted or not.
    pub started: u64,
    /// Submitted attempts (答题人次).
    pub submitted: u64,
    pub passed: u64,
    /// Questions answered in them, and answered right.
    pub answered: u64,
    pub correct: u64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.started += other.started;
        self.submitted += other.submitted;
        self.passed += other.passed;
        self.answered += other.answered;
        self.correct += other.correct;
    }

    /// Passes per submission, or none before the first.
    pub fn pass_rate(&self) -> Option<f64> {
        rate(self.passed, self.submitted)
    }

    /// Right answers per answer (综合正确率), or none before the first.
    pub fn accuracy(&self) -> Option<f64> {
        rate(self.correct, self.answered)
    }
}

/// `part / whole` to four decimals (70.81 % is 0.7081), or none when `whole` is 0.
pub fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0)
}

/// One question's answers and right answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuestionCounts {
    pub topic: String,
    pub answered: u64,
    pub correct: u64,
}

/// An attempt done with, submitted or not, as the tally needs it.
pub struct Attempt<'a> {
    pub participant: Uuid,
    /// Submitted; else its time ran out unsubmitted, and it counts as started only.
    pub submitted: bool,
    /// The campaign-local day it was started on, and the round open then (0: none).
    pub local_day: &'a str,
    pub round: u32,
    pub passed: bool,
    /// Its score as recorded, for an attempt whose questions left the bank since.
    pub score: u32,
    pub questions: &'a [AttemptQuestion],
    pub answers: &'a [Answer],
}

/// What a batch of attempts adds to the figures.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// By (local day, round).
    pub days: BTreeMap<(String, u32), Counts>,
    /// By (local day, round, question id).
    pub questions: BTreeMap<(String, u32, String), QuestionCounts>,
    /// Who submitted on each (local day, round): the store counts those it had not seen yet,
    /// per day, per round and in all.
    pub takers: BTreeSet<(String, u32, Uuid)>,
}

impl Tally {
    /// Adds one attempt. A submitted one is scored again from its answers (as when it is
    /// shown), each question counted under its law; one whose questions left the bank counts
    /// with its recorded score and no question of its own. One never submitted counts as started.
    pub fn add(&mut self, bank: &QuestionBank, a: &Attempt<'_>) {
        let key = (a.local_day.to_owned(), a.round);
        if !a.submitted {
            self.days.entry(key).or_default().started += 1;
            return;
        }
        let scored = score(bank, a.questions, a.answers, Unanswered::Wrong).ok();
        let (answered, correct) = match &scored {
            Some(s) => (u64::from(s.out_of), u64::from(s.score)),
            None => (a.questions.len() as u64, u64::from(a.score)),
        };
        self.days.entry(key.clone()).or_default().add(Counts {
            started: 1,
            submitted: 1,
            passed: u64::from(a.passed),
            answered,
            correct,
        });
        for r in scored.iter().flat_map(|s| &s.results) {
            let topic = bank.get(r.id).map(|q| q.topic.clone()).unwrap_or_default();
            let q = self
                .questions
                .entry((key.0.clone(), key.1, r.id.to_owned()))
                .or_insert_with(|| QuestionCounts {
                    topic,
                    ..QuestionCounts::default()
                });
            q.answered += 1;
            q.correct += u64::from(r.correct);
        }
        self.takers.insert((key.0, key.1, a.participant));
    }
}

/// A question's figures for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionFigures {
    pub id: String,
    pub topic: String,
    pub answered: u64,
    pub correct: u64,
}

impl QuestionFigures {
    pub fn accuracy(&self) -> Option<f64> {
        rate(self.correct, self.answered)
    }
}

/// The questions most often answered wrong: at least `min_answered` answers each (a question
/// seen twice says little), lowest accuracy first, then the most answered; at most `n`.
pub fn hardest(
    questions: &[QuestionFigures],
    min_answered: u64,
    n: usize,
) -> Vec<&QuestionFigures> {
    let mut seen: Vec<&QuestionFigures> = questions
        .iter()
        .filter(|q| q.answered >= min_answered.max(1))
        .collect();
    // Compared as fractions (correct_a / answered_a < correct_b / answered_b), exactly.
    seen.sort_by(|a, b| {
        (u128::from(a.correct) * u128::from(b.answered))
            .cmp(&(u128::from(b.correct) * u128::from(a.answered)))
            .then(b.answered.cmp(&a.answered))
            .then(a.id.cmp(&b.id))
    });
    seen.truncate(n);
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::quiz::KEYS;

    fn bank() -> QuestionBank {
        QuestionBank::parse(include_str!("../../config/questions.toml")).unwrap()
    }

    /// The attempt's questions in the bank's order, answered right for the first `right`.
    fn attempt(
        b: &QuestionBank,
        ids: &[&str],
        right: usize,
    ) -> (Vec<AttemptQuestion>, Vec<Answer>) {
        let questions: Vec<AttemptQuestion> = ids
            .iter()
            .map(|id| AttemptQuestion {
                question: (*id).into(),
                order: (0..b.get(id).unwrap().options.len()).collect(),
            })
            .collect();
        let answers = questions
            .iter()
            .enumerate()
            .map(|(i, aq)| {
                let q = b.get(&aq.question).unwrap();
                let keys: Vec<String> = if i < right {
                    q.correct.iter().map(|&k| KEYS[k].to_owned()).collect()
                } else {
                    let wrong = (0..q.options.len())
                        .find(|k| !q.correct.contains(k))
                        .unwrap();
                    vec![KEYS[wrong].to_owned()]
                };
                Answer {
                    question: aq.question.clone(),
                    choices: keys,
                }
            })
            .collect();
        (questions, answers)
    }

    #[test]
    fn rates_are_read_to_four_decimals_and_absent_before_the_first() {
        assert_eq!(rate(7081, 10_000), Some(0.7081));
        assert_eq!(rate(2, 3), Some(0.6667));
        assert_eq!(rate(0, 0), None);
        let c = Counts {
            started: 5,
            submitted: 4,
            passed: 3,
            answered: 40,
            correct: 31,
        };
        assert_eq!((c.pass_rate(), c.accuracy()), (Some(0.75), Some(0.775)));
    }

    #[test]
    fn each_attempt_counts_once_per_day_round_question_and_taker() {
        let b = bank();
        let ids = [
            "tourism-low-price",
            "tourism-guide-tips",
            "civil-good-faith",
        ];
        let (qs, right_two) = attempt(&b, &ids, 2);
        let (_, all_right) = attempt(&b, &ids, 3);
        let someone = Uuid::from_u128(1);
        let mut t = Tally::default();
        for (answers, passed) in [(&right_two, false), (&all_right, true)] {
            t.add(
                &b,
                &Attempt {
                    participant: someone,
                    submitted: true,
                    local_day: "2026-07-06",
                    round: 1,
                    passed,
                    score: 0,
                    questions: &qs,
                    answers,
                },
            );
        }
        // And one left unsubmitted: started only.
        t.add(
            &b,
            &Attempt {
                participant: Uuid::from_u128(3),
                submitted: false,
                local_day: "2026-07-06",
                round: 1,
                passed: false,
                score: 0,
                questions: &qs,
                answers: &[],
            },
        );
        let day = t.days[&("2026-07-06".into(), 1)];
        assert_eq!(
            day,
            Counts {
                started: 3,
                submitted: 2,
                passed: 1,
                answered: 6,
                correct: 5
            }
        );
        let q = |id: &str| t.questions[&("2026-07-06".into(), 1, id.into())].clone();
        assert_eq!(
            (
                q("tourism-low-price").answered,
                q("tourism-low-price").correct
            ),
            (2, 2)
        );
        assert_eq!(
            (
                q("civil-good-faith").answered,
                q("civil-good-faith").correct
            ),
            (2, 1)
        );
        assert_eq!(q("civil-good-faith").topic, "民法典");
        assert_eq!(t.takers.len(), 1, "one person submitted, twice");
    }

    #[test]
    fn an_attempt_whose_question_left_the_bank_counts_with_its_recorded_score() {
        let b = bank();
        let qs = vec![AttemptQuestion {
            question: "gone".into(),
            order: vec![0, 1],
        }];
        let mut t = Tally::default();
        t.add(
            &b,
            &Attempt {
                participant: Uuid::from_u128(2),
                submitted: true,
                local_day: "2026-07-07",
                round: 0,
                passed: false,
                score: 1,
                questions: &qs,
                answers: &[],
            },
        );
        assert_eq!(t.days[&("2026-07-07".into(), 0)].correct, 1);
        assert!(t.questions.is_empty());
    }

    #[test]
    fn the_hardest_are_the_least_often_right_among_those_answered_enough() {
        let q = |id: &str, answered, correct| QuestionFigures {
            id: id.into(),
            topic: "旅游法".into(),
            answered,
            correct,
        };
        let all = [
            q("a", 100, 90),
            q("b", 100, 40),
            q("c", 3, 0),
            q("d", 200, 80),
            q("e", 50, 45),
        ];
        let ids: Vec<&str> = hardest(&all, 10, 3).iter().map(|q| q.id.as_str()).collect();
        // b and d are both 40 % right, a and e 90 %: the more answered first; c has too few
        // answers to say.
        assert_eq!(ids, ["d", "b", "a"]);
    }
}
