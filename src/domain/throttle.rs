//! How often one-time login codes may be asked for, and how many failed voucher look-ups a front
//! desk may make. The store counts in the database (so the limits hold across service
//! instances); these functions decide from the counts.

use super::refusal::Refusal;
use chrono::{DateTime, Duration, Utc};

/// Seconds until `since + window` has passed (at least 1).
pub fn retry_after(since: DateTime<Utc>, window: Duration, now: DateTime<Utc>) -> i64 {
    ((since + window - now).num_milliseconds() as f64 / 1000.0)
        .ceil()
        .max(1.0) as i64
}

/// Limits on one-time codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Seconds between two codes for one phone.
    pub phone_interval_secs: i64,
    /// Codes per phone per hour and per day.
    pub phone_per_hour: i64,
    pub phone_per_day: i64,
    /// Codes per client address per hour and per day.
    pub address_per_hour: i64,
    pub address_per_day: i64,
    /// Text messages of every kind queued per hour, campaign-wide: past it sending pauses.
    pub sms_per_hour: i64,
    /// Wrong tries before a code is dead.
    pub max_tries: i32,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            phone_interval_secs: 60,
            phone_per_hour: 5,
            phone_per_day: 10,
            address_per_hour: 20,
            address_per_day: 50,
            sms_per_hour: 3_000,
            max_tries: 5,
        }
    }
}

/// Whether another code may be sent now. `phone_times` are the times of this phone's codes in
/// the last day, newest first; `address_times` those of this address, newest first (at most
/// `address_per_day` of them are needed).
pub fn may_send_code(
    phone_times: &[DateTime<Utc>],
    address_times: &[DateTime<Utc>],
    limits: &LoginLimits,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let interval = Duration::seconds(limits.phone_interval_secs);
    let caps = [
        (phone_times, interval, 1),
        (phone_times, Duration::hours(1), limits.phone_per_hour),
        (phone_times, Duration::days(1), limits.phone_per_day),
        (address_times, Duration::hours(1), limits.address_per_hour),
        (address_times, Duration::days(1), limits.address_per_day),
    ];
    // The longest wait of the caps reached: the first moment every cap allows another.
    let wait = caps
        .iter()
        .filter_map(|&(times, window, cap)| over_cap(times, window, cap, now))
        .max();
    match wait {
        Some(retry_after) => Err(Refusal::TooManyCodeRequests { retry_after }),
        None => Ok(()),
    }
}

/// Whether one more text message may be queued, campaign-wide: `in_hour` were queued in the last
/// hour; past `budget` sending pauses until the oldest that counts (`frees_at`, when known) is an
/// hour old.
pub fn may_queue_sms(
    in_hour: i64,
    budget: i64,
    frees_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if in_hour < budget.max(0) {
        return Ok(());
    }
    Err(Refusal::SmsPaused {
        retry_after: frees_at.map_or(60, |t| retry_after(t, Duration::hours(1), now)),
    })
}

/// With `times` newest first, whether `cap` of them fall within `window` before `now`: then the
/// seconds until the `cap`-th newest leaves the window.
fn over_cap(
    times: &[DateTime<Utc>],
    window: Duration,
    cap: i64,
    now: DateTime<Utc>,
) -> Option<i64> {
    let cap = usize::try_from(cap.max(1)).ok()?;
    let recent = times.iter().take_while(|&&t| t + window > now).count();
    (recent >= cap).then(|| retry_after(times[cap - 1], window, now))
}

/// Failed look-ups within the throttling window: how many, and the oldest (when the count
/// drops), per venue token and per address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LookupFailures {
    pub by_token: u32,
    pub token_oldest: Option<DateTime<Utc>>,
    pub by_address: u32,
    pub address_oldest: Option<DateTime<Utc>>,
}

/// Limits on failed look-ups (unknown codes, wrong holder digits) at the front desks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupLimits {
    pub per_token: u32,
    pub per_address: u32,
    pub window: Duration,
}

/// Whether a front desk may look a code up now, given its failures within the window.
pub fn may_look_up(
    f: &LookupFailures,
    limits: &LookupLimits,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let oldest = if f.by_token >= limits.per_token {
        f.token_oldest
    } else if f.by_address >= limits.per_address {
        f.address_oldest
    } else {
        return Ok(());
    };
    Err(Refusal::TooManyFailedLookups {
        retry_after: oldest.map_or(60, |o| retry_after(o, limits.window, now)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64, sec: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 7, 16, 10, 0, 0).unwrap()
            + Duration::minutes(min)
            + Duration::seconds(sec)
    }

    fn retry(r: Result<(), Refusal>) -> i64 {
        match r {
            Err(Refusal::TooManyCodeRequests { retry_after })
            | Err(Refusal::TooManyFailedLookups { retry_after }) => retry_after,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn waiting_is_rounded_up_to_whole_seconds_and_never_zero() {
        assert_eq!(retry_after(t(0, 0), Duration::seconds(60), t(0, 59)), 1);
        assert_eq!(retry_after(t(0, 0), Duration::seconds(60), t(0, 0)), 60);
        assert_eq!(retry_after(t(0, 0), Duration::seconds(60), t(5, 0)), 1);
        let almost = t(0, 0) + Duration::milliseconds(100);
        assert_eq!(retry_after(t(0, 0), Duration::seconds(60), almost), 60);
    }

    /// Newest first, as the store reads them.
    fn newest_first(mut v: Vec<DateTime<Utc>>) -> Vec<DateTime<Utc>> {
        v.sort_by(|a, b| b.cmp(a));
        v
    }

    #[test]
    fn one_code_a_minute_five_an_hour_per_phone_and_twenty_per_address() {
        let l = LoginLimits::default();
        assert_eq!(may_send_code(&[], &[], &l, t(0, 0)), Ok(()));
        assert_eq!(retry(may_send_code(&[t(0, 0)], &[], &l, t(0, 20))), 40);
        assert_eq!(may_send_code(&[t(0, 0)], &[], &l, t(1, 0)), Ok(()));
        let five = newest_first((0..5).map(|i| t(i * 10, 0)).collect());
        // The sixth in the hour waits for the first to be an hour old.
        assert_eq!(retry(may_send_code(&five, &[], &l, t(45, 0))), 15 * 60);
        let twenty = newest_first((0..20).map(|i| t(i, 0)).collect());
        assert_eq!(retry(may_send_code(&[], &twenty, &l, t(30, 0))), 30 * 60);
        assert_eq!(may_send_code(&[], &twenty[1..], &l, t(30, 0)), Ok(()));
    }

    #[test]
    fn ten_codes_a_day_per_phone_and_fifty_per_address() {
        let l = LoginLimits::default();
        // Ten codes, one every two hours: each hour's cap holds, the day's is reached.
        let ten = newest_first((0..10).map(|i| t(i * 120, 0)).collect());
        let now = t(20 * 60, 0);
        // The eleventh waits until the first is a day old (at 24:00).
        assert_eq!(retry(may_send_code(&ten, &[], &l, now)), 4 * 3600);
        assert_eq!(may_send_code(&ten[1..], &[], &l, now), Ok(()));
        // Fifty from one address in a day, twenty minutes apart: the hour's cap is not reached.
        let fifty = newest_first((0..50).map(|i| t(i * 20, 0)).collect());
        let now = t(50 * 20, 0);
        let wait = retry(may_send_code(&[], &fifty, &l, now));
        assert_eq!(wait, (24 * 60 - 50 * 20) * 60);
        assert_eq!(may_send_code(&[], &fifty[1..], &l, now), Ok(()));
    }

    #[test]
    fn past_the_hourly_budget_sending_pauses_until_the_oldest_is_an_hour_old() {
        assert_eq!(may_queue_sms(2999, 3000, Some(t(0, 0)), t(30, 0)), Ok(()));
        assert_eq!(
            may_queue_sms(3000, 3000, Some(t(10, 0)), t(30, 0)),
            Err(Refusal::SmsPaused {
                retry_after: 40 * 60
            })
        );
        assert!(
            may_queue_sms(0, 0, None, t(0, 0)).is_err(),
            "a budget of 0 sends nothing"
        );
    }

    #[test]
    fn the_longest_wait_of_the_caps_reached_is_the_answer() {
        let l = LoginLimits::default();
        // Five in the last hour, the last one 10 s ago: the minute says 50 s, the hour more.
        let five = newest_first((0..5).map(|i| t(10 + i * 10, 50)).collect());
        let now = t(51, 0);
        assert_eq!(
            retry(may_send_code(&five, &[], &l, now)),
            60 * 60 - (51 * 60 - 10 * 60 - 50)
        );
    }

    #[test]
    fn failed_look_ups_are_limited_per_token_then_per_address() {
        let limits = LookupLimits {
            per_token: 10,
            per_address: 30,
            window: Duration::minutes(15),
        };
        let under = LookupFailures {
            by_token: 9,
            token_oldest: Some(t(0, 0)),
            by_address: 29,
            address_oldest: Some(t(0, 0)),
        };
        assert_eq!(may_look_up(&under, &limits, t(5, 0)), Ok(()));
        let token = LookupFailures {
            by_token: 10,
            ..under
        };
        assert_eq!(retry(may_look_up(&token, &limits, t(5, 0))), 10 * 60);
        let address = LookupFailures {
            by_address: 30,
            address_oldest: Some(t(2, 0)),
            ..under
        };
        assert_eq!(retry(may_look_up(&address, &limits, t(5, 0))), 12 * 60);
    }
}
