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
    /// Codes per phone per hour.
    pub phone_per_hour: i64,
    /// Codes per client address per hour.
    pub address_per_hour: i64,
    /// Wrong tries before a code is dead.
    pub max_tries: i32,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            phone_interval_secs: 60,
            phone_per_hour: 5,
            address_per_hour: 20,
            max_tries: 5,
        }
    }
}

/// Whether another code may be sent now. `phone_times` are the times of this phone's codes in
/// the last hour, oldest first; `address_times` those of this address, oldest first (at most
/// `address_per_hour` of them are needed).
pub fn may_send_code(
    phone_times: &[DateTime<Utc>],
    address_times: &[DateTime<Utc>],
    limits: &LoginLimits,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let hour = Duration::hours(1);
    let interval = Duration::seconds(limits.phone_interval_secs);
    let refuse = |since, window| Refusal::TooManyCodeRequests {
        retry_after: retry_after(since, window, now),
    };
    if let Some(&last) = phone_times.last() {
        if last + interval > now {
            return Err(refuse(last, interval));
        }
    }
    if phone_times.len() as i64 >= limits.phone_per_hour {
        return Err(refuse(phone_times[0], hour));
    }
    if address_times.len() as i64 >= limits.address_per_hour {
        return Err(refuse(address_times[0], hour));
    }
    Ok(())
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

    #[test]
    fn one_code_a_minute_five_an_hour_per_phone_and_twenty_per_address() {
        let l = LoginLimits::default();
        assert_eq!(may_send_code(&[], &[], &l, t(0, 0)), Ok(()));
        assert_eq!(retry(may_send_code(&[t(0, 0)], &[], &l, t(0, 20))), 40);
        assert_eq!(may_send_code(&[t(0, 0)], &[], &l, t(1, 0)), Ok(()));
        let five: Vec<_> = (0..5).map(|i| t(i * 10, 0)).collect();
        // The sixth in the hour waits for the first to be an hour old.
        assert_eq!(retry(may_send_code(&five, &[], &l, t(45, 0))), 15 * 60);
        let twenty: Vec<_> = (0..20).map(|i| t(i, 0)).collect();
        assert_eq!(retry(may_send_code(&[], &twenty, &l, t(30, 0))), 30 * 60);
        assert_eq!(may_send_code(&[], &twenty[..19], &l, t(30, 0)), Ok(()));
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
