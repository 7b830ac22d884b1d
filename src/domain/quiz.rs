//! The law quiz: the question bank, attempts with questions and options in random order, and
//! scoring, which only ever happens here on the server.

use super::random::{partial_shuffle, shuffle};
use chrono::{DateTime, Duration, Utc};
use rand_core::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Option keys as shown: the first option of an attempt's question is `A`.
pub const KEYS: [&str; 6] = ["A", "B", "C", "D", "E", "F"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {problem}")]
pub struct BankError {
    /// `question bank`, or `question ID` (or `question #N` when it has no id).
    pub place: String,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: String,
    pub topic: String,
    pub text: String,
    pub options: Vec<String>,
    /// Indices into `options`.
    pub correct: Vec<usize>,
    pub explanation: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BankFile {
    questions: Vec<QuestionSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionSpec {
    id: String,
    topic: String,
    text: String,
    options: Vec<String>,
    correct: Vec<String>,
    explanation: String,
}

#[derive(Debug, Clone)]
pub struct QuestionBank {
    questions: Vec<Question>,
    index: HashMap<String, usize>,
}

fn bank_err(place: impl Into<String>, problem: impl Into<String>) -> BankError {
    BankError {
        place: place.into(),
        problem: problem.into(),
    }
}

impl QuestionBank {
    /// Parses and checks a bank: unique ids, 2–6 options, at least one correct option, no empty text.
    pub fn parse(text: &str) -> Result<Self, BankError> {
        let file: BankFile = toml::from_str(text)
            .map_err(|e| bank_err("question bank", e.to_string().trim_end().to_owned()))?;
        let mut questions = Vec::new();
        let mut index = HashMap::new();
        for (n, q) in file.questions.into_iter().enumerate() {
            let id = q.id.trim().to_owned();
            let place = if id.is_empty() {
                format!("question #{}", n + 1)
            } else {
                format!("question {id}")
            };
            if id.is_empty() {
                return Err(bank_err(place, "has no id"));
            }
            if index.insert(id.clone(), questions.len()).is_some() {
                return Err(bank_err(place, "the id is used by another question too"));
            }
            if q.text.trim().is_empty() {
                return Err(bank_err(place, "the question text is empty"));
            }
            if q.explanation.trim().is_empty() {
                return Err(bank_err(place, "the explanation is empty"));
            }
            if !(2..=KEYS.len()).contains(&q.options.len()) {
                return Err(bank_err(
                    place,
                    format!("has {} options; 2 to 6 are needed", q.options.len()),
                ));
            }
            if let Some(i) = q.options.iter().position(|o| o.trim().is_empty()) {
                return Err(bank_err(place, format!("option {} is empty", KEYS[i])));
            }
            if q.correct.is_empty() {
                return Err(bank_err(place, "no correct option is given"));
            }
            let mut correct = Vec::new();
            for letter in &q.correct {
                let i = KEYS
                    .iter()
                    .position(|k| k.eq_ignore_ascii_case(letter.trim()))
                    .filter(|&i| i < q.options.len())
                    .ok_or_else(|| {
                        bank_err(
                            &place,
                            format!("correct option {letter:?} is not one of its options"),
                        )
                    })?;
                if correct.contains(&i) {
                    return Err(bank_err(
                        &place,
                        format!("correct option {letter:?} is listed twice"),
                    ));
                }
                correct.push(i);
            }
            correct.sort_unstable();
            questions.push(Question {
                id,
                topic: q.topic.trim().to_owned(),
                text: q.text.trim().to_owned(),
                options: q.options.iter().map(|o| o.trim().to_owned()).collect(),
                correct,
                explanation: q.explanation.trim().to_owned(),
            });
        }
        if questions.is_empty() {
            return Err(bank_err("question bank", "has no questions"));
        }
        Ok(Self { questions, index })
    }

    pub fn len(&self) -> usize {
        self.questions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.questions.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Question> {
        self.index.get(id).map(|&i| &self.questions[i])
    }

    pub fn questions(&self) -> &[Question] {
        &self.questions
    }
}

/// One question of an attempt and the order its options are shown in:
/// `order[k]` is the bank index of the option shown with key `KEYS[k]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptQuestion {
    pub question: String,
    pub order: Vec<usize>,
}

/// Chooses `n` distinct questions in random order, each with its options in random order.
pub fn draw_questions<R: Rng + ?Sized>(
    bank: &QuestionBank,
    n: usize,
    rng: &mut R,
) -> Vec<AttemptQuestion> {
    let mut picks: Vec<usize> = (0..bank.len()).collect();
    partial_shuffle(rng, &mut picks, n);
    picks
        .into_iter()
        .take(n)
        .map(|i| {
            let q = &bank.questions[i];
            let mut order: Vec<usize> = (0..q.options.len()).collect();
            shuffle(rng, &mut order);
            AttemptQuestion {
                question: q.id.clone(),
                order,
            }
        })
        .collect()
}

// The views below borrow from the question bank: a result is serialised once, right away, and
// copying every text into it was a measurable share of a submission's cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ShownOption<'a> {
    pub key: &'static str,
    pub text: &'a str,
}

/// A question as the participant sees it before answering: nothing about which option is right.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ShownQuestion<'a> {
    pub id: &'a str,
    pub topic: &'a str,
    pub text: &'a str,
    /// More than one option may be chosen (the text says so too).
    pub multiple: bool,
    pub options: Vec<ShownOption<'a>>,
}

fn shown_options<'a>(q: &'a Question, order: &[usize]) -> Vec<ShownOption<'a>> {
    order
        .iter()
        .enumerate()
        .map(|(k, &i)| ShownOption {
            key: KEYS[k],
            text: &q.options[i],
        })
        .collect()
}

/// Shows an attempt's question; `None` if the bank no longer has it.
pub fn show<'a>(bank: &'a QuestionBank, aq: &AttemptQuestion) -> Option<ShownQuestion<'a>> {
    let q = bank.get(&aq.question)?;
    Some(ShownQuestion {
        id: &q.id,
        topic: &q.topic,
        text: &q.text,
        multiple: q.correct.len() > 1,
        options: shown_options(q, &aq.order),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The question's id.
    pub question: String,
    /// Option keys as shown (`A`, `B`, …).
    pub choices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("题目 {0} 不在这次答题中")]
    NotInAttempt(String),
    #[error("题目 {0} 答了不止一次")]
    Duplicate(String),
    #[error("还有 {} 道题没有作答：{}", .0.len(), .0.join("、"))]
    Missing(Vec<String>),
    #[error("题目 {question} 没有选项 {key}")]
    UnknownOption { question: String, key: String },
    #[error("题目 {question} 的选项 {key} 选了两次")]
    DuplicateChoice { question: String, key: String },
    #[error("题目 {0} 只能选一个选项")]
    TooManyChoices(String),
    #[error("题目 {0} 的题库内容已不存在")]
    QuestionGone(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QuestionResult<'a> {
    pub id: &'a str,
    pub text: &'a str,
    pub options: Vec<ShownOption<'a>>,
    pub your_choices: Vec<&'static str>,
    pub correct_choices: Vec<&'static str>,
    pub correct: bool,
    pub explanation: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scored<'a> {
    pub score: u32,
    pub out_of: u32,
    pub results: Vec<QuestionResult<'a>>,
}

/// How late a submission may reach the service and still be scored: the page submits by itself
/// when the time runs out, and on a weak signal that request takes a while to arrive.
pub const SUBMIT_GRACE_SECONDS: i64 = 30;

/// Whether a submission reaching the service at `now` is in time for an attempt due at
/// `deadline`.
pub fn in_time(deadline: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    deadline >= due_after(now)
}

/// The earliest deadline an attempt may have and still take a submission at `now`.
pub fn due_after(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::seconds(SUBMIT_GRACE_SECONDS)
}

/// What a question left unanswered means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// A mistake of the sender: the submission is refused, naming the questions.
    Refused,
    /// The time ran out (or the answers were stored that way): the question counts as wrong.
    Wrong,
}

/// Scores a set of answers. A question is right when exactly its correct options are chosen.
/// Each question of the attempt is answered at most once, with options it has; one not
/// answered is refused or counted wrong, as `unanswered` says.
pub fn score<'a>(
    bank: &'a QuestionBank,
    attempt: &[AttemptQuestion],
    answers: &[Answer],
    unanswered: Unanswered,
) -> Result<Scored<'a>, AnswerError> {
    let positions: HashMap<&str, usize> = attempt
        .iter()
        .enumerate()
        .map(|(i, a)| (a.question.as_str(), i))
        .collect();
    let mut given: Vec<Option<Vec<usize>>> = vec![None; attempt.len()];
    for answer in answers {
        let &pos = positions
            .get(answer.question.as_str())
            .ok_or_else(|| AnswerError::NotInAttempt(answer.question.clone()))?;
        if given[pos].is_some() {
            return Err(AnswerError::Duplicate(answer.question.clone()));
        }
        let option_count = attempt[pos].order.len();
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        for key in &answer.choices {
            let k = KEYS
                .iter()
                .position(|c| c.eq_ignore_ascii_case(key.trim()))
                .filter(|&k| k < option_count)
                .ok_or_else(|| AnswerError::UnknownOption {
                    question: answer.question.clone(),
                    key: key.clone(),
                })?;
            if !seen.insert(k) {
                return Err(AnswerError::DuplicateChoice {
                    question: answer.question.clone(),
                    key: key.clone(),
                });
            }
            keys.push(k);
        }
        given[pos] = Some(keys);
    }
    let missing: Vec<String> = attempt
        .iter()
        .zip(&given)
        .filter(|(_, g)| g.as_ref().is_none_or(|k| k.is_empty()))
        .map(|(a, _)| a.question.clone())
        .collect();
    if !missing.is_empty() && unanswered == Unanswered::Refused {
        return Err(AnswerError::Missing(missing));
    }

    let mut results = Vec::with_capacity(attempt.len());
    let mut score = 0;
    for (aq, keys) in attempt.iter().zip(given) {
        let q = bank
            .get(&aq.question)
            .ok_or_else(|| AnswerError::QuestionGone(aq.question.clone()))?;
        let mut keys = keys.unwrap_or_default();
        if q.correct.len() == 1 && keys.len() > 1 {
            return Err(AnswerError::TooManyChoices(q.id.clone()));
        }
        keys.sort_unstable();
        let mut correct_keys: Vec<usize> = (0..aq.order.len())
            .filter(|&k| q.correct.contains(&aq.order[k]))
            .collect();
        correct_keys.sort_unstable();
        let correct = keys == correct_keys;
        score += u32::from(correct);
        results.push(QuestionResult {
            id: &q.id,
            text: &q.text,
            options: shown_options(q, &aq.order),
            your_choices: keys.iter().map(|&k| KEYS[k]).collect(),
            correct_choices: correct_keys.iter().map(|&k| KEYS[k]).collect(),
            correct,
            explanation: &q.explanation,
        });
    }
    Ok(Scored {
        score,
        out_of: attempt.len() as u32,
        results,
    })
}

/// A question a participant answered wrong (错题本): in the bank's own option order, with the
/// right answer, since the participant has been shown it after submitting.
#[derive(Debug, Clone, PartialEq)]
pub struct Mistake<'a> {
    pub question: &'a Question,
    /// How many submitted attempts had it wrong.
    pub times_wrong: u32,
    pub last_wrong_at: DateTime<Utc>,
    /// Answered right in a later attempt.
    pub right_since: bool,
}

/// The questions answered wrong in `attempts` (questions, answers, submitted at): each once, the
/// most recently missed first. Questions that left the bank are left out.
pub fn mistakes<'a>(
    bank: &'a QuestionBank,
    attempts: &[(&[AttemptQuestion], &[Answer], DateTime<Utc>)],
) -> Vec<Mistake<'a>> {
    let mut by_time: Vec<&(&[AttemptQuestion], &[Answer], DateTime<Utc>)> =
        attempts.iter().collect();
    by_time.sort_by_key(|a| a.2);
    let mut found: HashMap<&'a str, Mistake<'a>> = HashMap::new();
    for (questions, answers, at) in by_time {
        let Ok(scored) = score(bank, questions, answers, Unanswered::Wrong) else {
            continue;
        };
        for r in scored.results {
            let Some(q) = bank.get(r.id) else { continue };
            match (r.correct, found.get_mut(q.id.as_str())) {
                (false, Some(m)) => {
                    m.times_wrong += 1;
                    m.last_wrong_at = *at;
                    m.right_since = false;
                }
                (false, None) => {
                    found.insert(
                        &q.id,
                        Mistake {
                            question: q,
                            times_wrong: 1,
                            last_wrong_at: *at,
                            right_since: false,
                        },
                    );
                }
                (true, Some(m)) => m.right_since = true,
                (true, None) => {}
            }
        }
    }
    let mut list: Vec<Mistake<'a>> = found.into_values().collect();
    list.sort_by(|a, b| {
        b.last_wrong_at
            .cmp(&a.last_wrong_at)
            .then(a.question.id.cmp(&b.question.id))
    });
    list
}

/// A practice answer to one question, in the bank's option order: whether it is right, and the
/// right keys and explanation. Checked like an attempt's answer (known options, each once, one
/// only for a single-choice question).
pub fn practise<'a>(
    bank: &'a QuestionBank,
    question: &str,
    choices: &[String],
) -> Result<QuestionResult<'a>, AnswerError> {
    let q = bank
        .get(question)
        .ok_or_else(|| AnswerError::QuestionGone(question.to_owned()))?;
    let shown = [AttemptQuestion {
        question: q.id.clone(),
        order: (0..q.options.len()).collect(),
    }];
    let answer = [Answer {
        question: q.id.clone(),
        choices: choices.to_vec(),
    }];
    let mut scored = score(bank, &shown, &answer, Unanswered::Refused)?;
    Ok(scored.results.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const SHIPPED: &str = include_str!("../../config/questions.toml");

    fn bank() -> QuestionBank {
        QuestionBank::parse(SHIPPED).unwrap()
    }

    /// The answer a participant who knows everything would give.
    fn perfect(bank: &QuestionBank, attempt: &[AttemptQuestion]) -> Vec<Answer> {
        attempt
            .iter()
            .map(|aq| {
                let q = bank.get(&aq.question).unwrap();
                Answer {
                    question: aq.question.clone(),
                    choices: (0..aq.order.len())
                        .filter(|&k| q.correct.contains(&aq.order[k]))
                        .map(|k| KEYS[k].to_owned())
                        .collect(),
                }
            })
            .collect()
    }

    #[test]
    fn the_shipped_bank_has_at_least_40_questions_on_three_laws() {
        let b = bank();
        assert!(b.len() >= 40, "{}", b.len());
        let topics: HashSet<&str> = b.questions().iter().map(|q| q.topic.as_str()).collect();
        assert_eq!(
            topics,
            HashSet::from(["旅游法", "消费者权益保护法", "民法典"])
        );
    }

    #[test]
    fn bank_mistakes_name_the_question() {
        let one = |body: &str| format!("[[questions]]\n{body}\n");
        let base = r#"id = "q1"
topic = "t"
text = "问题"
options = ["甲", "乙"]
correct = ["A"]
explanation = "因为""#;
        assert!(QuestionBank::parse(&one(base)).is_ok());
        let cases = [
            (
                format!("{}{}", one(base), one(base)),
                "question q1",
                "used by another",
            ),
            (
                one(&base.replace(r#"["甲", "乙"]"#, r#"["甲"]"#)),
                "question q1",
                "2 to 6",
            ),
            (
                one(&base.replace(r#"["A"]"#, "[]")),
                "question q1",
                "no correct option",
            ),
            (
                one(&base.replace(r#"["A"]"#, r#"["C"]"#)),
                "question q1",
                "not one of its options",
            ),
            (
                one(&base.replace(r#"text = "问题""#, r#"text = " ""#)),
                "question q1",
                "text is empty",
            ),
            (
                one(&base.replace(r#"id = "q1""#, r#"id = """#)),
                "question #1",
                "no id",
            ),
            (
                one(&base.replace(r#"["甲", "乙"]"#, r#"["甲", ""]"#)),
                "question q1",
                "option B is empty",
            ),
        ];
        for (text, place, problem) in cases {
            let e = QuestionBank::parse(&text).unwrap_err();
            assert_eq!(e.place, place, "{e}");
            assert!(e.problem.contains(problem), "{e}");
        }
    }

    #[test]
    fn attempts_draw_distinct_questions_and_shuffle_options() {
        let b = bank();
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let a = draw_questions(&b, 10, &mut rng);
        assert_eq!(a.len(), 10);
        let ids: HashSet<_> = a.iter().map(|q| &q.question).collect();
        assert_eq!(ids.len(), 10);
        let mut shuffled = 0;
        for aq in &a {
            let mut sorted = aq.order.clone();
            sorted.sort();
            assert_eq!(sorted, (0..aq.order.len()).collect::<Vec<_>>());
            shuffled += usize::from(aq.order != sorted);
        }
        assert!(shuffled > 0, "some option order differs from the bank's");
        let b2 = draw_questions(&b, 10, &mut rng);
        assert_ne!(a, b2, "two attempts differ");
    }

    #[test]
    fn a_shown_question_does_not_reveal_the_answer() {
        let b = bank();
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        for aq in draw_questions(&b, b.len(), &mut rng) {
            let shown = serde_json::to_string(&show(&b, &aq).unwrap()).unwrap();
            assert!(
                !shown.contains("correct") && !shown.contains("explanation"),
                "{shown}"
            );
        }
    }

    #[test]
    fn perfect_answers_score_full_marks_and_a_wrong_one_costs_a_point() {
        let b = bank();
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let a = draw_questions(&b, 10, &mut rng);
        let mut answers = perfect(&b, &a);
        assert_eq!(score_all(&b, &a, &answers).unwrap().score, 10);
        // Change a single-choice answer to a wrong option.
        let i = a
            .iter()
            .position(|aq| b.get(&aq.question).unwrap().correct.len() == 1)
            .unwrap();
        let right = answers[i].choices.clone();
        let wrong = KEYS[..a[i].order.len()]
            .iter()
            .find(|k| !right.contains(&k.to_string()))
            .unwrap();
        answers[i].choices = vec![wrong.to_string()];
        let s = score_all(&b, &a, &answers).unwrap();
        assert_eq!((s.score, s.out_of), (9, 10));
        assert!(!s.results[i].correct);
        assert_eq!(s.results[i].correct_choices, right);
        assert!(!s.results[i].explanation.is_empty());
        // Keys are read case-insensitively.
        answers[i].choices = right.iter().map(|k| k.to_lowercase()).collect();
        assert_eq!(score_all(&b, &a, &answers).unwrap().score, 10);
    }

    #[test]
    fn a_multiple_choice_question_needs_exactly_its_options() {
        let b = bank();
        let aq = AttemptQuestion {
            question: "civil-good-faith".into(),
            order: vec![0, 1, 2, 3],
        };
        let answer = |keys: &[&str]| {
            vec![Answer {
                question: aq.question.clone(),
                choices: keys.iter().map(|k| k.to_string()).collect(),
            }]
        };
        let a = std::slice::from_ref(&aq);
        assert_eq!(
            score_all(&b, a, &answer(&["A", "B", "C"])).unwrap().score,
            1
        );
        assert_eq!(score_all(&b, a, &answer(&["A", "B"])).unwrap().score, 0);
        assert_eq!(
            score_all(&b, a, &answer(&["A", "B", "C", "D"]))
                .unwrap()
                .score,
            0
        );
    }

    /// Every question must be answered, as the page asks before 交卷.
    fn score_all<'a>(
        b: &'a QuestionBank,
        a: &[AttemptQuestion],
        answers: &[Answer],
    ) -> Result<Scored<'a>, AnswerError> {
        score(b, a, answers, Unanswered::Refused)
    }

    #[test]
    fn at_time_up_unanswered_questions_count_as_wrong() {
        let b = bank();
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let a = draw_questions(&b, 4, &mut rng);
        let mut given = perfect(&b, &a);
        given.truncate(2);
        given.push(Answer {
            question: a[3].question.clone(),
            choices: vec![],
        });
        let s = score(&b, &a, &given, Unanswered::Wrong).unwrap();
        assert_eq!((s.score, s.out_of), (2, 4));
        assert!(!s.results[2].correct && s.results[2].your_choices.is_empty());
        assert!(!s.results[3].correct && !s.results[3].correct_choices.is_empty());
        // The rest of the checks still hold.
        given.push(given[0].clone());
        assert_eq!(
            score(&b, &a, &given, Unanswered::Wrong),
            Err(AnswerError::Duplicate(a[0].question.clone()))
        );
    }

    #[test]
    fn a_submission_is_in_time_until_the_grace_after_the_deadline() {
        let deadline = DateTime::parse_from_rfc3339("2026-07-06T10:10:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: i64| deadline + Duration::seconds(s);
        assert!(in_time(deadline, at(-600)));
        assert!(in_time(deadline, at(SUBMIT_GRACE_SECONDS)));
        assert!(!in_time(deadline, at(SUBMIT_GRACE_SECONDS + 1)));
        assert_eq!(due_after(at(SUBMIT_GRACE_SECONDS)), deadline);
    }

    #[test]
    fn the_mistakes_are_each_question_missed_newest_first_and_whether_right_since() {
        let b = bank();
        let t = |m: i64| {
            DateTime::parse_from_rfc3339("2026-07-06T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc)
                + Duration::minutes(m)
        };
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let qs = draw_questions(&b, 3, &mut rng);
        let right = perfect(&b, &qs);
        let wrong_key = |i: usize| {
            let q = b.get(&qs[i].question).unwrap();
            let k = (0..q.options.len())
                .position(|k| !q.correct.contains(&qs[i].order[k]))
                .unwrap();
            KEYS[k].to_string()
        };
        // First attempt: 0 and 1 wrong. Second: 1 wrong again, 0 right.
        let mut first = right.clone();
        first[0].choices = vec![wrong_key(0)];
        first[1].choices = vec![wrong_key(1)];
        let mut second = right.clone();
        second[1].choices = vec![wrong_key(1)];
        let list = mistakes(&b, &[(&qs, &second, t(20)), (&qs, &first, t(10))]);
        let seen: Vec<(&str, u32, bool)> = list
            .iter()
            .map(|m| (m.question.id.as_str(), m.times_wrong, m.right_since))
            .collect();
        assert_eq!(
            seen,
            [
                (qs[1].question.as_str(), 2, false),
                (qs[0].question.as_str(), 1, true)
            ]
        );
        assert_eq!(list[0].last_wrong_at, t(20));
    }

    #[test]
    fn a_practice_answer_is_checked_in_the_banks_own_order() {
        let b = bank();
        let q = b.get("civil-good-faith").unwrap();
        let right: Vec<String> = q.correct.iter().map(|&k| KEYS[k].to_string()).collect();
        let r = practise(&b, &q.id, &right).unwrap();
        assert!(r.correct);
        assert_eq!(
            r.correct_choices,
            right.iter().map(String::as_str).collect::<Vec<_>>()
        );
        assert!(!practise(&b, &q.id, &right[..1]).unwrap().correct);
        assert!(matches!(
            practise(&b, &q.id, &["Z".into()]),
            Err(AnswerError::UnknownOption { .. })
        ));
        assert!(matches!(
            practise(&b, &q.id, &[]),
            Err(AnswerError::Missing(_))
        ));
        assert!(matches!(
            practise(&b, "nope", &right),
            Err(AnswerError::QuestionGone(_))
        ));
    }

    #[test]
    fn malformed_answer_sets_are_refused() {
        let b = bank();
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let a = draw_questions(&b, 3, &mut rng);
        let good = perfect(&b, &a);
        let outsider = b
            .questions()
            .iter()
            .find(|q| a.iter().all(|aq| aq.question != q.id))
            .unwrap();

        let mut extra = good.clone();
        extra.push(Answer {
            question: outsider.id.clone(),
            choices: vec!["A".into()],
        });
        assert_eq!(
            score_all(&b, &a, &extra),
            Err(AnswerError::NotInAttempt(outsider.id.clone()))
        );

        let mut twice = good.clone();
        twice.push(good[0].clone());
        assert_eq!(
            score_all(&b, &a, &twice),
            Err(AnswerError::Duplicate(good[0].question.clone()))
        );

        assert_eq!(
            score_all(&b, &a, &good[..2]),
            Err(AnswerError::Missing(vec![a[2].question.clone()]))
        );
        let mut empty = good.clone();
        empty[1].choices.clear();
        assert_eq!(
            score_all(&b, &a, &empty),
            Err(AnswerError::Missing(vec![a[1].question.clone()]))
        );

        let mut bad_key = good.clone();
        bad_key[0].choices = vec!["Z".into()];
        assert!(matches!(
            score_all(&b, &a, &bad_key),
            Err(AnswerError::UnknownOption { .. })
        ));

        let mut repeated = good.clone();
        let k = repeated[0].choices[0].clone();
        repeated[0].choices = vec![k.clone(), k];
        assert!(matches!(
            score_all(&b, &a, &repeated),
            Err(AnswerError::DuplicateChoice { .. })
        ));
    }
}
