//! Text messages: what the service says (a template and its parameters, never free text, which
//! the SMS providers refuse), and what the sender does after each try (at most once: a message
//! whose fate is unknown is never sent again).

use chrono::{DateTime, Duration, Utc};

/// A message the service sends, by its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Template {
    /// The one-time login code.
    LoginCode { code: String, minutes: i64 },
    /// A prize won (or passed on to a reserve) is to be claimed. Providers refuse lottery
    /// wording (中奖, 抽奖) in templates: it says the round's results are out.
    PrizeNotice { round: u32, claim_by: String },
    /// The claim deadline is near.
    ClaimReminder { round: u32, claim_by: String },
    /// A voucher was used at a venue (so that a stolen code is noticed).
    Redeemed {
        kind: String,
        venue: String,
        time: String,
    },
    /// A use was reversed by the venue.
    Reversed {
        kind: String,
        venue: String,
        time: String,
    },
}

impl Template {
    /// The template's name in the configuration (`[sms.templates]`) and the outbox.
    pub fn name(&self) -> &'static str {
        match self {
            Template::LoginCode { .. } => "login_code",
            Template::PrizeNotice { .. } => "prize_notice",
            Template::ClaimReminder { .. } => "claim_reminder",
            Template::Redeemed { .. } => "redeemed",
            Template::Reversed { .. } => "reversed",
        }
    }

    /// The parameters by name, in the order a provider with positional parameters (Tencent:
    /// `{1}`, `{2}`) numbers them.
    pub fn params(&self) -> Vec<(String, String)> {
        match self {
            Template::LoginCode { code, minutes } => vec![
                ("code".into(), code.clone()),
                ("minutes".into(), minutes.to_string()),
            ],
            Template::PrizeNotice { round, claim_by }
            | Template::ClaimReminder { round, claim_by } => {
                vec![
                    ("round".into(), round.to_string()),
                    ("claim_by".into(), claim_by.clone()),
                ]
            }
            Template::Redeemed { kind, venue, time } | Template::Reversed { kind, venue, time } => {
                vec![
                    ("kind".into(), kind.clone()),
                    ("venue".into(), venue.clone()),
                    ("time".into(), time.clone()),
                ]
            }
        }
    }

    /// The text as the provider's template renders it (the template registered with the
    /// provider must say the same), for the outbox and the operators.
    pub fn text(&self, sign_name: &str) -> String {
        match self {
            Template::LoginCode { code, minutes } => {
                format!("【{sign_name}】您的验证码是 {code}，{minutes} 分钟内有效。请勿告诉他人。")
            }
            Template::PrizeNotice { round, claim_by } => format!(
                "【{sign_name}】您参加的学法活动第{round}期结果已公布，请在{claim_by}前登录活动页面“我的”查看并领取。"
            ),
            Template::ClaimReminder { round, claim_by } => format!(
                "【{sign_name}】您在学法活动第{round}期的权益将于{claim_by}截止领取，请及时登录活动页面“我的”领取。"
            ),
            Template::Redeemed { kind, venue, time } => format!(
                "【{sign_name}】您的{kind}已于{time}在{venue}使用。如非本人操作，请联系主办方。"
            ),
            Template::Reversed { kind, venue, time } => {
                format!("【{sign_name}】您的{kind}在{venue}的使用已于{time}撤销。")
            }
        }
    }
}

/// Every template the service uses: each needs a template id when a gateway sends.
pub const TEMPLATE_NAMES: [&str; 5] = [
    "login_code",
    "prize_notice",
    "claim_reminder",
    "redeemed",
    "reversed",
];

/// Where a message stands in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the sender (or, without a gateway, for whoever reads the outbox).
    Queued,
    /// Handed to the gateway by one sender, under a lease.
    Sending,
    /// The gateway accepted it.
    Sent,
    /// The gateway reported it on the phone.
    Delivered,
    /// Not sent, or not delivered, with the reason.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Status::Queued,
            "sending" => Status::Sending,
            "sent" => Status::Sent,
            "delivered" => Status::Delivered,
            "failed" => Status::Failed,
            _ => return None,
        })
    }
}

/// What one try at the gateway came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Accepted, under the gateway's id for it (for its delivery reports).
    Accepted { gateway_id: String },
    /// Certainly not sent (no connection, or the gateway turned the request away before taking
    /// it: throttled, busy): safe to try again.
    NotSent { reason: String },
    /// Refused for good (a wrong template, number or credential): trying again changes nothing.
    Refused { reason: String },
    /// Perhaps sent (a time-out after the request went out, an answer that cannot be read):
    /// never tried again, so that nobody gets a message twice.
    Unknown { reason: String },
}

/// What the outbox records after a try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        gateway_id: String,
    },
    /// Queued again, for another try at `at`.
    Retry {
        reason: String,
        at: DateTime<Utc>,
    },
    Failed {
        reason: String,
    },
}

/// How the sender tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub max_attempts: i32,
    /// The wait after the first failed try; it doubles after each one.
    pub first_wait: Duration,
    pub longest_wait: Duration,
}

impl RetryPolicy {
    /// The wait after the `attempts`th try failed (1-based).
    pub fn wait(&self, attempts: i32) -> Duration {
        let doublings = attempts.saturating_sub(1).clamp(0, 20) as u32;
        let wait = self.first_wait * 2i32.pow(doublings);
        wait.min(self.longest_wait)
    }

    /// What to record after the `attempts`th try of a message that is worth sending only before
    /// `send_before` (a login code that expires), judged at `now`.
    pub fn after(
        &self,
        attempt: Attempt,
        attempts: i32,
        send_before: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Outcome {
        match attempt {
            Attempt::Accepted { gateway_id } => Outcome::Sent { gateway_id },
            Attempt::Refused { reason } => Outcome::Failed { reason },
            Attempt::Unknown { reason } => Outcome::Failed {
                reason: format!("outcome_unknown: {reason}"),
            },
            Attempt::NotSent { reason } => {
                let at = now + self.wait(attempts);
                if attempts >= self.max_attempts {
                    Outcome::Failed {
                        reason: format!("gave_up after {attempts} tries: {reason}"),
                    }
                } else if send_before.is_some_and(|limit| at >= limit) {
                    Outcome::Failed {
                        reason: format!("expired before another try: {reason}"),
                    }
                } else {
                    Outcome::Retry { reason, at }
                }
            }
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first_wait: Duration::seconds(10),
            longest_wait: Duration::minutes(10),
        }
    }
}

/// A reason as the outbox keeps it: one line, at most 200 characters (a gateway's message may be
/// long; it never holds a credential, which no request's answer repeats).
pub fn reason(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    line.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 7, 1, 8, 0, 0).unwrap()
    }

    #[test]
    fn the_login_code_template_renders_what_its_parameters_say() {
        let t = Template::LoginCode {
            code: "042917".into(),
            minutes: 5,
        };
        assert_eq!(t.name(), "login_code");
        assert!(TEMPLATE_NAMES.contains(&t.name()));
        assert_eq!(
            t.params(),
            vec![
                ("code".to_owned(), "042917".to_owned()),
                ("minutes".to_owned(), "5".to_owned())
            ]
        );
        assert_eq!(
            t.text("衡阳学法"),
            "【衡阳学法】您的验证码是 042917，5 分钟内有效。请勿告诉他人。"
        );
    }

    #[test]
    fn the_service_s_own_messages_say_no_lottery_words() {
        let all = [
            Template::PrizeNotice {
                round: 3,
                claim_by: "7月30日".into(),
            },
            Template::ClaimReminder {
                round: 3,
                claim_by: "7月30日".into(),
            },
            Template::Redeemed {
                kind: "城市旅游卡".into(),
                venue: "衡山花果山景区".into(),
                time: "7月20日 10:05".into(),
            },
            Template::Reversed {
                kind: "城市旅游卡".into(),
                venue: "衡山花果山景区".into(),
                time: "7月20日 10:09".into(),
            },
        ];
        for t in &all {
            assert!(TEMPLATE_NAMES.contains(&t.name()));
            let text = t.text("衡阳学法");
            assert!(!text.contains("中奖") && !text.contains("抽奖"), "{text}");
            for (_, v) in t.params() {
                assert!(text.contains(&v), "{text} says {v}");
            }
        }
        assert_eq!(
            all[0].text("衡阳学法"),
            "【衡阳学法】您参加的学法活动第3期结果已公布，请在7月30日前登录活动页面“我的”查看并领取。"
        );
    }

    #[test]
    fn statuses_read_back_as_written() {
        for s in [
            Status::Queued,
            Status::Sending,
            Status::Sent,
            Status::Delivered,
            Status::Failed,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("lost"), None);
    }

    #[test]
    fn waits_double_up_to_the_longest() {
        let p = RetryPolicy::default();
        assert_eq!(p.wait(1), Duration::seconds(10));
        assert_eq!(p.wait(2), Duration::seconds(20));
        assert_eq!(p.wait(4), Duration::seconds(80));
        assert_eq!(p.wait(7), Duration::minutes(10));
        assert_eq!(p.wait(1000), Duration::minutes(10));
        assert_eq!(p.wait(0), Duration::seconds(10));
    }

    #[test]
    fn only_what_was_certainly_not_sent_is_tried_again() {
        let p = RetryPolicy::default();
        let not_sent = || Attempt::NotSent {
            reason: "Throttling.User".into(),
        };
        assert_eq!(
            p.after(not_sent(), 1, None, now()),
            Outcome::Retry {
                reason: "Throttling.User".into(),
                at: now() + Duration::seconds(10)
            }
        );
        // At most once: what may have gone out is not sent again.
        assert_eq!(
            p.after(
                Attempt::Unknown {
                    reason: "timed out".into()
                },
                1,
                None,
                now()
            ),
            Outcome::Failed {
                reason: "outcome_unknown: timed out".into()
            }
        );
        assert_eq!(
            p.after(
                Attempt::Refused {
                    reason: "isv.MOBILE_NUMBER_ILLEGAL".into()
                },
                1,
                None,
                now()
            ),
            Outcome::Failed {
                reason: "isv.MOBILE_NUMBER_ILLEGAL".into()
            }
        );
        assert_eq!(
            p.after(
                Attempt::Accepted {
                    gateway_id: "9000".into()
                },
                3,
                None,
                now()
            ),
            Outcome::Sent {
                gateway_id: "9000".into()
            }
        );
        // The last try, and a code that expires before the next one, end it.
        assert!(matches!(
            p.after(not_sent(), 5, None, now()),
            Outcome::Failed { reason } if reason.starts_with("gave_up after 5 tries")
        ));
        assert!(matches!(
            p.after(not_sent(), 2, Some(now() + Duration::seconds(20)), now()),
            Outcome::Failed { reason } if reason.starts_with("expired")
        ));
        assert!(matches!(
            p.after(not_sent(), 2, Some(now() + Duration::seconds(21)), now()),
            Outcome::Retry { .. }
        ));
    }

    #[test]
    fn reasons_are_one_short_line() {
        assert_eq!(reason(" a\nb\r\n "), "a b");
        assert_eq!(reason(&"长".repeat(300)).chars().count(), 200);
    }
}
