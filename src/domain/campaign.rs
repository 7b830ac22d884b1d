//! The campaign as configured: rounds, voucher kinds, prize tiers and venues.
//!
//! A campaign file (TOML) is parsed into [`CampaignFile`] and then validated as a whole into a
//! [`Campaign`]; every problem is reported with the field it concerns. Nothing here does I/O.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// A configuration problem, naming the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct CampaignError {
    pub field: String,
    pub problem: String,
}

fn err(field: impl Into<String>, problem: impl Into<String>) -> CampaignError {
    CampaignError {
        field: field.into(),
        problem: problem.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignFile {
    pub campaign: CampaignSection,
    /// Consecutive equal windows; the alternative to listing `rounds` one by one.
    pub schedule: Option<ScheduleSection>,
    #[serde(default)]
    pub rounds: Vec<RoundSpec>,
    pub totals: TotalsSection,
    pub voucher_kinds: BTreeMap<String, VoucherKindSpec>,
    pub tiers: Vec<TierSpec>,
    pub venues: Vec<VenueSpec>,
    #[serde(default)]
    pub quiz: QuizRules,
}

/// How the law quiz is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct QuizRules {
    /// Questions in one attempt.
    pub questions_per_attempt: u32,
    /// Right answers needed to pass.
    pub pass_mark: u32,
    /// Time to submit an attempt after it starts.
    pub time_limit_minutes: u32,
    /// Attempts a participant may start per local day.
    pub daily_attempts: u32,
}

impl Default for QuizRules {
    fn default() -> Self {
        Self {
            questions_per_attempt: 10,
            pass_mark: 8,
            time_limit_minutes: 10,
            daily_attempts: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSection {
    pub id: String,
    pub name: String,
    pub time_zone: String,
    #[serde(default = "default_win_limit")]
    pub win_limit: u32,
    #[serde(default = "default_min_witnesses")]
    pub min_witnesses: u32,
    /// Reserves drawn per round after the winners (DESIGN §4b): a forfeited prize goes to the
    /// next of them.
    #[serde(default)]
    pub reserves: u32,
    /// Days a winner has to claim a prize after the draw (a reserve: after the prize came to
    /// them); then it is forfeited.
    #[serde(default = "default_claim_days")]
    pub claim_days: u32,
    /// Minutes after the freeze before which a `drand-quicknet:N` beacon round may not fall
    /// (DESIGN §4c): time for the witnesses to reveal before anyone can know the beacon.
    #[serde(default = "default_beacon_margin_minutes")]
    pub beacon_margin_minutes: u32,
}

fn default_claim_days() -> u32 {
    14
}

fn default_beacon_margin_minutes() -> u32 {
    60
}

fn default_win_limit() -> u32 {
    1
}
fn default_min_witnesses() -> u32 {
    2
}
fn default_round_days() -> u32 {
    7
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    /// A local date (`2024-07-15`), or `today` for a demo campaign that opens when first run.
    pub first_round_starts: String,
    pub rounds: u32,
    #[serde(default = "default_round_days")]
    pub round_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundSpec {
    /// Local date and time, `2024-07-15T00:00`.
    pub opens: String,
    pub closes: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotalsSection {
    pub winners: u32,
    pub vouchers: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoucherKindSpec {
    pub name: String,
    pub category: String,
    pub policy: String,
    /// A local date, or `+N` days after the first round opens.
    pub valid_from: String,
    /// The last valid local date (inclusive), or `+N` days after the first round opens.
    pub valid_until: String,
    pub face_value_yuan: Option<u32>,
    /// Whether redeeming asks for the holder code shown on the holder's phone (DESIGN §5).
    #[serde(default = "default_true")]
    pub holder_check: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    pub name: String,
    pub label: String,
    pub count: u32,
    pub vouchers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueSpec {
    pub id: String,
    pub name: String,
    pub category: String,
    /// Marks a placeholder venue that is not a real partner.
    #[serde(default)]
    pub example: bool,
}

impl CampaignFile {
    /// Parses the TOML text of a campaign file; syntax and shape errors keep toml's own location.
    pub fn parse(text: &str) -> Result<Self, CampaignError> {
        toml::from_str(text).map_err(|e| err("campaign file", e.to_string().trim_end().to_owned()))
    }

    /// Whether the first round starts on the day the campaign is first run (demo campaigns).
    pub fn starts_today(&self) -> bool {
        self.schedule
            .as_ref()
            .is_some_and(|s| s.first_round_starts.trim() == "today")
    }
}

// ---------------------------------------------------------------------------------------------
// The validated model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Scenic,
    Hotel,
    Dining,
}

impl Category {
    pub const ALL: [Category; 3] = [Category::Scenic, Category::Hotel, Category::Dining];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Scenic => "scenic",
            Category::Hotel => "hotel",
            Category::Dining => "dining",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How often one voucher may be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedemptionPolicy {
    /// Once at each partner venue of its category (the tourism card).
    OncePerVenue,
    /// Once, at any partner venue of its category.
    SingleUse,
}

impl RedemptionPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RedemptionPolicy::OncePerVenue => "once_per_venue",
            RedemptionPolicy::SingleUse => "single_use",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "once_per_venue" => Some(Self::OncePerVenue),
            "single_use" => Some(Self::SingleUse),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundWindow {
    pub number: u32,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherKind {
    pub code: String,
    pub name: String,
    pub category: Category,
    pub policy: RedemptionPolicy,
    pub valid_from: DateTime<Utc>,
    /// Exclusive end: the start of the day after the last valid local date.
    pub valid_until: DateTime<Utc>,
    pub face_value_yuan: Option<u32>,
    pub holder_check: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrizeTier {
    pub name: String,
    pub label: String,
    pub count: u32,
    pub voucher_kinds: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Venue {
    pub id: String,
    pub name: String,
    pub category: Category,
    pub example: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub time_zone: String,
    /// Local date the first round opens; relative validity dates count from it.
    pub first_round_start: NaiveDate,
    pub win_limit: u32,
    pub min_witnesses: u32,
    /// Reserves per round (DESIGN §4b); recorded campaigns from before have none.
    #[serde(default)]
    pub reserves: u32,
    #[serde(default = "default_claim_days")]
    pub claim_days: u32,
    #[serde(default = "default_beacon_margin_minutes")]
    pub beacon_margin_minutes: u32,
    pub rounds: Vec<RoundWindow>,
    pub voucher_kinds: Vec<VoucherKind>,
    pub tiers: Vec<PrizeTier>,
    pub venues: Vec<Venue>,
    pub quiz: QuizRules,
}

/// What a campaign gives out over all its rounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CampaignTotals {
    pub winners: u64,
    /// Voucher kind code → number of vouchers.
    pub vouchers: BTreeMap<String, u64>,
}

impl Campaign {
    /// For each tier, the voucher kinds a prize of it comes with.
    pub fn tier_kinds(&self) -> Vec<(String, Vec<String>)> {
        self.tiers
            .iter()
            .map(|t| (t.name.clone(), t.voucher_kinds.clone()))
            .collect()
    }

    pub fn tz(&self) -> Tz {
        self.time_zone.parse().unwrap_or(Tz::UTC)
    }

    pub fn round(&self, number: u32) -> Option<&RoundWindow> {
        self.rounds.iter().find(|r| r.number == number)
    }

    pub fn voucher_kind(&self, code: &str) -> Option<&VoucherKind> {
        self.voucher_kinds.iter().find(|k| k.code == code)
    }

    pub fn venue(&self, id: &str) -> Option<&Venue> {
        self.venues.iter().find(|v| v.id == id)
    }

    /// The round whose entry window contains `now`.
    pub fn open_round(&self, now: DateTime<Utc>) -> Option<&RoundWindow> {
        self.rounds
            .iter()
            .find(|r| r.opens_at <= now && now < r.closes_at)
    }

    /// The first round that opens after `now`.
    pub fn next_round(&self, now: DateTime<Utc>) -> Option<&RoundWindow> {
        self.rounds.iter().find(|r| r.opens_at > now)
    }

    pub fn winners_per_round(&self) -> u64 {
        self.tiers.iter().map(|t| u64::from(t.count)).sum()
    }

    pub fn totals(&self) -> CampaignTotals {
        let rounds = self.rounds.len() as u64;
        let mut vouchers: BTreeMap<String, u64> = self
            .voucher_kinds
            .iter()
            .map(|k| (k.code.clone(), 0))
            .collect();
        for tier in &self.tiers {
            for kind in &tier.voucher_kinds {
                *vouchers.entry(kind.clone()).or_default() += u64::from(tier.count) * rounds;
            }
        }
        CampaignTotals {
            winners: self.winners_per_round() * rounds,
            vouchers,
        }
    }

    /// Formats an instant in the campaign's time zone, RFC 3339 with the local offset.
    pub fn local_rfc3339(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.tz())
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    }

    /// Validates a parsed campaign file. `today` is the local date used when the file says the
    /// first round starts `today` (the caller passes the date recorded on first run, if any).
    pub fn from_file(file: CampaignFile, today: NaiveDate) -> Result<Self, CampaignError> {
        let c = &file.campaign;
        let id = c.id.trim();
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        {
            return Err(err(
                "campaign.id",
                format!("{id:?} must be 1–64 characters of a–z, 0–9 and '-'"),
            ));
        }
        if c.name.trim().is_empty() {
            return Err(err("campaign.name", "must not be empty"));
        }
        let tz: Tz = c.time_zone.parse().map_err(|_| {
            err(
                "campaign.time_zone",
                format!(
                    "unknown time zone {:?} (expected an IANA name such as Asia/Shanghai)",
                    c.time_zone
                ),
            )
        })?;
        if !(1..=365).contains(&c.claim_days) {
            return Err(err("campaign.claim_days", "must be 1 to 365"));
        }
        if c.beacon_margin_minutes > 7 * 24 * 60 {
            return Err(err(
                "campaign.beacon_margin_minutes",
                "must be at most 10080 (a week)",
            ));
        }
        if c.reserves > 100_000 {
            return Err(err("campaign.reserves", "must be at most 100000"));
        }
        if c.win_limit == 0 {
            return Err(err("campaign.win_limit", "must be at least 1"));
        }
        if c.min_witnesses == 0 {
            return Err(err("campaign.min_witnesses", "must be at least 1"));
        }

        let (first_round_start, rounds) = rounds_from(&file, tz, today)?;

        let mut voucher_kinds = Vec::new();
        for (code, spec) in &file.voucher_kinds {
            voucher_kinds.push(voucher_kind(code, spec, tz, first_round_start)?);
        }
        if voucher_kinds.is_empty() {
            return Err(err("voucher_kinds", "at least one voucher kind is needed"));
        }

        let mut tiers = Vec::new();
        let mut tier_names = HashSet::new();
        for (i, t) in file.tiers.iter().enumerate() {
            let field = format!("tiers[{i}]");
            if t.name.trim().is_empty() || !tier_names.insert(t.name.clone()) {
                return Err(err(
                    format!("{field}.name"),
                    format!("{:?} must be non-empty and unique", t.name),
                ));
            }
            if t.count == 0 {
                return Err(err(format!("{field}.count"), "must be at least 1"));
            }
            if t.vouchers.is_empty() {
                return Err(err(
                    format!("{field}.vouchers"),
                    "a tier must give at least one voucher kind",
                ));
            }
            let mut seen = HashSet::new();
            for kind in &t.vouchers {
                if !file.voucher_kinds.contains_key(kind) {
                    return Err(err(
                        format!("{field}.vouchers"),
                        format!(
                            "unknown voucher kind {kind:?} (known: {})",
                            file.voucher_kinds
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                if !seen.insert(kind) {
                    return Err(err(
                        format!("{field}.vouchers"),
                        format!("{kind:?} is listed twice"),
                    ));
                }
            }
            tiers.push(PrizeTier {
                name: t.name.clone(),
                label: t.label.clone(),
                count: t.count,
                voucher_kinds: t.vouchers.clone(),
            });
        }
        if tiers.is_empty() {
            return Err(err("tiers", "at least one prize tier is needed"));
        }

        let mut venues = Vec::new();
        let mut venue_ids = HashSet::new();
        for (i, v) in file.venues.iter().enumerate() {
            let field = format!("venues[{i}]");
            let vid = v.id.trim();
            if vid.is_empty()
                || !vid
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
            {
                return Err(err(
                    format!("{field}.id"),
                    format!("{vid:?} must be a–z, 0–9 and '-'"),
                ));
            }
            if !venue_ids.insert(vid.to_owned()) {
                return Err(err(format!("{field}.id"), format!("{vid:?} is used twice")));
            }
            if v.name.trim().is_empty() {
                return Err(err(format!("{field}.name"), "must not be empty"));
            }
            let category = Category::parse(&v.category).ok_or_else(|| {
                err(
                    format!("{field}.category"),
                    format!(
                        "unknown category {:?} (expected scenic, hotel or dining)",
                        v.category
                    ),
                )
            })?;
            venues.push(Venue {
                id: vid.to_owned(),
                name: v.name.trim().to_owned(),
                category,
                example: v.example,
            });
        }
        for kind in &voucher_kinds {
            if !venues.iter().any(|v| v.category == kind.category) {
                return Err(err(
                    format!("voucher_kinds.{}", kind.code),
                    format!("no venue of category {} can redeem it", kind.category),
                ));
            }
        }

        let q = file.quiz;
        if q.questions_per_attempt == 0 {
            return Err(err("quiz.questions_per_attempt", "must be at least 1"));
        }
        if q.pass_mark == 0 || q.pass_mark > q.questions_per_attempt {
            return Err(err(
                "quiz.pass_mark",
                format!(
                    "must be between 1 and questions_per_attempt ({})",
                    q.questions_per_attempt
                ),
            ));
        }
        if q.time_limit_minutes == 0 {
            return Err(err("quiz.time_limit_minutes", "must be at least 1"));
        }
        if q.daily_attempts == 0 {
            return Err(err("quiz.daily_attempts", "must be at least 1"));
        }

        let campaign = Campaign {
            id: id.to_owned(),
            name: c.name.trim().to_owned(),
            time_zone: c.time_zone.clone(),
            first_round_start,
            win_limit: c.win_limit,
            min_witnesses: c.min_witnesses,
            reserves: c.reserves,
            claim_days: c.claim_days,
            beacon_margin_minutes: c.beacon_margin_minutes,
            rounds,
            voucher_kinds,
            tiers,
            venues,
            quiz: q,
        };
        check_totals(&campaign, &file.totals)?;
        check_published_names(&campaign)?;
        Ok(campaign)
    }
}

/// Names shown on the pages and in published records carry nothing invisible or misleading
/// (see [`super::text`]).
fn check_published_names(c: &Campaign) -> Result<(), CampaignError> {
    let mut names: Vec<(String, &str)> = vec![("campaign.name".into(), c.name.as_str())];
    names.extend(
        c.venues
            .iter()
            .map(|v| (format!("venues.{}.name", v.id), v.name.as_str())),
    );
    names.extend(
        c.tiers
            .iter()
            .map(|t| (format!("tiers.{}.label", t.name), t.label.as_str())),
    );
    names.extend(
        c.voucher_kinds
            .iter()
            .map(|k| (format!("voucher_kinds.{}.name", k.code), k.name.as_str())),
    );
    for (field, name) in names {
        if let Some(ch) = name.chars().find(|ch| super::text::is_forbidden(*ch)) {
            return Err(err(
                field,
                format!(
                    "contains the control or invisible character U+{:04X}",
                    ch as u32
                ),
            ));
        }
    }
    Ok(())
}

fn check_totals(campaign: &Campaign, declared: &TotalsSection) -> Result<(), CampaignError> {
    let totals = campaign.totals();
    let rounds = campaign.rounds.len();
    let per_round = campaign.winners_per_round();
    if u64::from(declared.winners) != totals.winners {
        return Err(err(
            "totals.winners",
            format!(
                "declared {} but {rounds} rounds × {per_round} winners per round = {}",
                declared.winners, totals.winners
            ),
        ));
    }
    for code in declared.vouchers.keys() {
        if !totals.vouchers.contains_key(code) {
            return Err(err(
                format!("totals.vouchers.{code}"),
                "not a configured voucher kind",
            ));
        }
    }
    for (code, computed) in &totals.vouchers {
        match declared.vouchers.get(code) {
            None => {
                return Err(err(
                    format!("totals.vouchers.{code}"),
                    format!("missing: the tiers give {computed} over the campaign"),
                ))
            }
            Some(d) if u64::from(*d) != *computed => {
                return Err(err(
                    format!("totals.vouchers.{code}"),
                    format!("declared {d} but the tiers give {computed} over {rounds} rounds"),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn local_instant(tz: Tz, at: NaiveDateTime, field: &str) -> Result<DateTime<Utc>, CampaignError> {
    tz.from_local_datetime(&at)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| err(field, format!("{at} does not exist in {tz}")))
}

fn parse_date(s: &str, field: &str) -> Result<NaiveDate, CampaignError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| err(field, format!("{s:?} is not a date like 2024-07-15")))
}

fn parse_local_datetime(s: &str, field: &str) -> Result<NaiveDateTime, CampaignError> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| {
            err(
                field,
                format!("{s:?} is not a local date and time like 2024-07-15T00:00"),
            )
        })
}

fn rounds_from(
    file: &CampaignFile,
    tz: Tz,
    today: NaiveDate,
) -> Result<(NaiveDate, Vec<RoundWindow>), CampaignError> {
    match (&file.schedule, file.rounds.is_empty()) {
        (Some(_), false) => Err(err(
            "rounds",
            "give either [schedule] or a [[rounds]] list, not both",
        )),
        (None, true) => Err(err(
            "schedule",
            "missing: give [schedule] or a [[rounds]] list",
        )),
        (Some(s), true) => {
            let start = if s.first_round_starts.trim() == "today" {
                today
            } else {
                parse_date(&s.first_round_starts, "schedule.first_round_starts")?
            };
            if s.rounds == 0 {
                return Err(err("schedule.rounds", "must be at least 1"));
            }
            if s.round_days == 0 {
                return Err(err("schedule.round_days", "must be at least 1"));
            }
            let mut rounds = Vec::new();
            for i in 0..s.rounds {
                let opens = start + Duration::days(i64::from(i) * i64::from(s.round_days));
                let closes = opens + Duration::days(i64::from(s.round_days));
                rounds.push(RoundWindow {
                    number: i + 1,
                    opens_at: local_instant(tz, opens.and_time(NaiveTime::MIN), "schedule")?,
                    closes_at: local_instant(tz, closes.and_time(NaiveTime::MIN), "schedule")?,
                });
            }
            Ok((start, rounds))
        }
        (None, false) => {
            let mut rounds: Vec<RoundWindow> = Vec::new();
            let mut start = None;
            for (i, r) in file.rounds.iter().enumerate() {
                let field = format!("rounds[{i}]");
                let opens = parse_local_datetime(&r.opens, &format!("{field}.opens"))?;
                let closes = parse_local_datetime(&r.closes, &format!("{field}.closes"))?;
                start.get_or_insert(opens.date());
                let window = RoundWindow {
                    number: i as u32 + 1,
                    opens_at: local_instant(tz, opens, &format!("{field}.opens"))?,
                    closes_at: local_instant(tz, closes, &format!("{field}.closes"))?,
                };
                if window.closes_at <= window.opens_at {
                    return Err(err(
                        format!("{field}.closes"),
                        "must be after the round opens",
                    ));
                }
                if let Some(prev) = rounds.last() {
                    if window.opens_at < prev.closes_at {
                        let problem = if window.opens_at < prev.opens_at {
                            format!(
                                "rounds must be listed in order: round {} opens before round {}",
                                i + 1,
                                i
                            )
                        } else {
                            format!(
                                "round {} overlaps round {} (it opens before round {} closes)",
                                i + 1,
                                i,
                                i
                            )
                        };
                        return Err(err(format!("{field}.opens"), problem));
                    }
                }
                rounds.push(window);
            }
            Ok((start.unwrap_or(today), rounds))
        }
    }
}

/// A validity date: `YYYY-MM-DD`, or `+N` days after the first round's start date.
fn validity_date(s: &str, first: NaiveDate, field: &str) -> Result<NaiveDate, CampaignError> {
    let s = s.trim();
    if let Some(days) = s.strip_prefix('+') {
        let days: u32 = days.trim_end_matches('d').parse().map_err(|_| {
            err(
                field,
                format!("{s:?} is neither a date nor +N days after the first round"),
            )
        })?;
        return Ok(first + Duration::days(i64::from(days)));
    }
    parse_date(s, field)
}

fn voucher_kind(
    code: &str,
    spec: &VoucherKindSpec,
    tz: Tz,
    first: NaiveDate,
) -> Result<VoucherKind, CampaignError> {
    let field = format!("voucher_kinds.{code}");
    if code.is_empty() || !code.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return Err(err(&field, "a voucher kind's code must be a–z and '_'"));
    }
    if spec.name.trim().is_empty() {
        return Err(err(format!("{field}.name"), "must not be empty"));
    }
    let category = Category::parse(&spec.category).ok_or_else(|| {
        err(
            format!("{field}.category"),
            format!(
                "unknown category {:?} (expected scenic, hotel or dining)",
                spec.category
            ),
        )
    })?;
    let policy = RedemptionPolicy::parse(&spec.policy).ok_or_else(|| {
        err(
            format!("{field}.policy"),
            format!(
                "unknown policy {:?} (expected once_per_venue or single_use)",
                spec.policy
            ),
        )
    })?;
    let from = validity_date(&spec.valid_from, first, &format!("{field}.valid_from"))?;
    let until = validity_date(&spec.valid_until, first, &format!("{field}.valid_until"))?;
    if until < from {
        return Err(err(
            format!("{field}.valid_until"),
            format!("{until} is before valid_from {from}"),
        ));
    }
    Ok(VoucherKind {
        code: code.to_owned(),
        name: spec.name.trim().to_owned(),
        category,
        policy,
        valid_from: local_instant(tz, from.and_time(NaiveTime::MIN), &field)?,
        valid_until: local_instant(
            tz,
            (until + Duration::days(1)).and_time(NaiveTime::MIN),
            &field,
        )?,
        face_value_yuan: spec.face_value_yuan,
        holder_check: spec.holder_check,
    })
}

// ---------------------------------------------------------------------------------------------
// Round states
// ---------------------------------------------------------------------------------------------

/// What the database records about a round; the time-based states are derived from the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundProgress {
    Pending,
    Frozen,
    Drawn,
}

impl RoundProgress {
    pub fn as_str(self) -> &'static str {
        match self {
            RoundProgress::Pending => "pending",
            RoundProgress::Frozen => "frozen",
            RoundProgress::Drawn => "drawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "frozen" => Some(Self::Frozen),
            "drawn" => Some(Self::Drawn),
            _ => None,
        }
    }
}

/// `scheduled → open → closed → frozen → drawn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoundState {
    Scheduled,
    Open,
    Closed,
    Frozen,
    Drawn,
}

pub fn round_state(
    window: &RoundWindow,
    progress: RoundProgress,
    now: DateTime<Utc>,
) -> RoundState {
    match progress {
        RoundProgress::Drawn => RoundState::Drawn,
        RoundProgress::Frozen => RoundState::Frozen,
        RoundProgress::Pending if now < window.opens_at => RoundState::Scheduled,
        RoundProgress::Pending if now < window.closes_at => RoundState::Open,
        RoundProgress::Pending => RoundState::Closed,
    }
}

// ---------------------------------------------------------------------------------------------
// Changing a campaign that has already drawn
// ---------------------------------------------------------------------------------------------

/// Checks that `new` can replace the `recorded` configuration without contradicting rounds that
/// are already frozen or drawn. Names, labels and validity may change; what decided or shaped a
/// recorded draw may not.
pub fn check_compatible(
    recorded: &Campaign,
    progress: &[(u32, RoundProgress)],
    new: &Campaign,
) -> Result<(), CampaignError> {
    if recorded.id != new.id {
        return Err(err(
            "campaign.id",
            format!(
                "the database holds campaign {:?}, the configuration names {:?}; use another database",
                recorded.id, new.id
            ),
        ));
    }
    let settled: Vec<u32> = progress
        .iter()
        .filter(|(_, p)| *p != RoundProgress::Pending)
        .map(|(n, _)| *n)
        .collect();
    let Some(&last_settled) = settled.iter().max() else {
        return Ok(());
    };
    let refuse = |field: &str, what: &str| {
        err(
            field,
            format!("{what} cannot change: round {last_settled} is already frozen or drawn"),
        )
    };
    if recorded.time_zone != new.time_zone {
        return Err(refuse("campaign.time_zone", "the time zone"));
    }
    if recorded.win_limit != new.win_limit {
        return Err(refuse("campaign.win_limit", "the win limit"));
    }
    if recorded.tiers.len() != new.tiers.len()
        || recorded.tiers.iter().zip(&new.tiers).any(|(a, b)| {
            a.name != b.name || a.count != b.count || a.voucher_kinds != b.voucher_kinds
        })
    {
        return Err(refuse("tiers", "the prize tiers"));
    }
    for old in &recorded.voucher_kinds {
        match new.voucher_kind(&old.code) {
            None => {
                return Err(refuse(
                    &format!("voucher_kinds.{}", old.code),
                    "a voucher kind in use",
                ))
            }
            Some(k)
                if k.category != old.category
                    || k.policy != old.policy
                    || k.face_value_yuan != old.face_value_yuan =>
            {
                return Err(refuse(
                    &format!("voucher_kinds.{}", old.code),
                    "the category, policy or face value of an issued voucher kind",
                ))
            }
            Some(_) => {}
        }
    }
    for number in settled {
        let old = recorded.round(number);
        if old.is_none() || old != new.round(number) {
            return Err(err(
                format!("rounds[{}]", number - 1),
                format!("round {number} is already frozen or drawn: its window cannot change"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../config/campaign-demo.toml");
    const REAL: &str = include_str!("../../config/campaign.toml");

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
    }

    fn load(text: &str) -> Result<Campaign, CampaignError> {
        Campaign::from_file(CampaignFile::parse(text)?, today())
    }

    fn field_of(text: &str) -> String {
        load(text).expect_err("config should be refused").field
    }

    #[test]
    fn the_shipped_campaign_gives_3180_winners_and_360_hotel_nights() {
        for text in [DEMO, REAL] {
            let c = load(text).unwrap();
            assert_eq!(c.rounds.len(), 12);
            let t = c.totals();
            assert_eq!(t.winners, 3180);
            assert_eq!(t.vouchers["tourism_card"], 3180);
            assert_eq!(t.vouchers["hotel_night"], 360);
            assert_eq!(t.vouchers["dining_coupon"], 360);
            assert_eq!(c.tiers[0].name, "grand");
            assert_eq!(c.tiers[0].count, 30);
            assert_eq!(c.tiers[1].name, "standard");
            assert_eq!(c.tiers[1].count, 235);
            assert_eq!(c.venues.len(), 8);
            for partner in ["神龙大酒店", "衡山宾馆", "衡山花果山景区"] {
                let v = c.venues.iter().find(|v| v.name == partner).unwrap();
                assert!(!v.example, "{partner} is a real partner");
            }
            assert_eq!(c.venues.iter().filter(|v| v.example).count(), 5);
        }
    }

    #[test]
    fn published_names_carry_nothing_invisible() {
        let text = REAL.replacen("神龙大酒店", "神龙\u{202e}大酒店", 1);
        assert_eq!(field_of(&text), "venues.shenlong-hotel.name");
        let text = REAL.replacen("神龙大酒店", "神龙\u{200b}大酒店", 1);
        assert_eq!(field_of(&text), "venues.shenlong-hotel.name");
    }

    #[test]
    fn demo_rounds_are_consecutive_weeks_from_local_midnight_today() {
        let c = load(DEMO).unwrap();
        let r1 = &c.rounds[0];
        // 2026-11-26 00:00 in Shanghai is 2026-11-25 16:00 UTC.
        assert_eq!(r1.opens_at.to_rfc3339(), "2026-11-25T16:00:00+00:00");
        assert_eq!(r1.closes_at - r1.opens_at, Duration::days(7));
        for pair in c.rounds.windows(2) {
            assert_eq!(pair[0].closes_at, pair[1].opens_at);
        }
        let now = r1.opens_at + Duration::hours(10);
        assert_eq!(
            round_state(r1, RoundProgress::Pending, now),
            RoundState::Open
        );
        assert_eq!(
            round_state(&c.rounds[1], RoundProgress::Pending, now),
            RoundState::Scheduled
        );
    }

    #[test]
    fn validity_is_inclusive_of_its_last_local_day() {
        let c = load(REAL).unwrap();
        let card = c.voucher_kind("tourism_card").unwrap();
        assert_eq!(
            c.local_rfc3339(card.valid_until),
            "2025-01-01T00:00:00+08:00"
        );
        let dining = c.voucher_kind("dining_coupon").unwrap();
        assert!(dining.face_value_yuan.is_some());
    }

    #[test]
    fn totals_that_contradict_the_tiers_are_refused() {
        let e = load(&REAL.replace("winners = 3180", "winners = 3000")).unwrap_err();
        assert_eq!(e.field, "totals.winners");
        assert!(e.problem.contains("12 rounds × 265"), "{e}");
        let e = load(&REAL.replace("hotel_night = 360", "hotel_night = 300")).unwrap_err();
        assert_eq!(e.field, "totals.vouchers.hotel_night");
        assert!(e.problem.contains("declared 300"), "{e}");
    }

    #[test]
    fn a_tier_naming_an_unknown_voucher_kind_is_refused() {
        let text = REAL.replace(
            r#"vouchers = ["tourism_card"]"#,
            r#"vouchers = ["tourism_pass"]"#,
        );
        let e = load(&text).unwrap_err();
        assert_eq!(e.field, "tiers[1].vouchers");
        assert!(
            e.problem.contains("unknown voucher kind \"tourism_pass\""),
            "{e}"
        );
    }

    #[test]
    fn a_venue_with_an_unknown_category_is_refused() {
        let text =
            format!("{REAL}\n[[venues]]\nid = \"spa\"\nname = \"温泉\"\ncategory = \"spa\"\n");
        let e = load(&text).unwrap_err();
        assert_eq!(e.field, "venues[8].category");
        assert!(e.problem.contains("unknown category \"spa\""), "{e}");
    }

    const EXPLICIT_ROUNDS: &str = r#"
[campaign]
id = "t"
name = "t"
time_zone = "Asia/Shanghai"

[[rounds]]
opens = "2024-07-01T00:00"
closes = "2024-07-08T00:00"

[[rounds]]
opens = "ROUND2_OPENS"
closes = "ROUND2_CLOSES"

[totals]
winners = 2
vouchers = { card = 2 }

[voucher_kinds.card]
name = "卡"
category = "scenic"
policy = "once_per_venue"
valid_from = "2024-07-01"
valid_until = "2024-12-31"

[[tiers]]
name = "standard"
label = "纪念奖"
count = 1
vouchers = ["card"]

[[venues]]
id = "spot"
name = "景区"
category = "scenic"
"#;

    fn two_rounds(opens: &str, closes: &str) -> String {
        EXPLICIT_ROUNDS
            .replace("ROUND2_OPENS", opens)
            .replace("ROUND2_CLOSES", closes)
    }

    #[test]
    fn explicit_rounds_in_order_are_accepted() {
        let c = load(&two_rounds("2024-07-08T00:00", "2024-07-15T00:00")).unwrap();
        assert_eq!(c.rounds.len(), 2);
        assert_eq!(c.rounds[1].number, 2);
    }

    #[test]
    fn overlapping_rounds_are_refused() {
        let e = load(&two_rounds("2024-07-07T00:00", "2024-07-15T00:00")).unwrap_err();
        assert_eq!(e.field, "rounds[1].opens");
        assert!(e.problem.contains("overlaps round 1"), "{e}");
    }

    #[test]
    fn unordered_rounds_are_refused() {
        let e = load(&two_rounds("2024-06-01T00:00", "2024-06-08T00:00")).unwrap_err();
        assert_eq!(e.field, "rounds[1].opens");
        assert!(e.problem.contains("in order"), "{e}");
    }

    #[test]
    fn a_round_closing_before_it_opens_is_refused() {
        let e = load(&two_rounds("2024-07-09T00:00", "2024-07-08T00:00")).unwrap_err();
        assert_eq!(e.field, "rounds[1].closes");
    }

    #[test]
    fn field_level_mistakes_name_their_field() {
        assert_eq!(
            field_of(&REAL.replace("Asia/Shanghai", "Mars/Olympus")),
            "campaign.time_zone"
        );
        assert_eq!(
            field_of(&REAL.replace(r#"policy = "single_use""#, r#"policy = "twice""#)),
            "voucher_kinds.dining_coupon.policy"
        );
        assert_eq!(
            field_of(&REAL.replace("count = 30", "count = 0")),
            "tiers[0].count"
        );
        assert_eq!(
            field_of(&REAL.replace("pass_mark = 8", "pass_mark = 11")),
            "quiz.pass_mark"
        );
        assert_eq!(
            field_of(&REAL.replace("daily_attempts = 10", "daily_attempts = 0")),
            "quiz.daily_attempts"
        );
        let e = load(&REAL.replace("[campaign]", "[campaign]\ncolour = \"red\"")).unwrap_err();
        assert_eq!(e.field, "campaign file");
        assert!(e.problem.contains("colour"), "{e}");
    }

    #[test]
    fn a_kind_no_venue_can_redeem_is_refused() {
        let mut file = CampaignFile::parse(REAL).unwrap();
        file.venues.retain(|v| v.category != "hotel");
        let e = Campaign::from_file(file, today()).unwrap_err();
        assert_eq!(e.field, "voucher_kinds.hotel_night");
    }

    #[test]
    fn changes_are_free_until_a_round_is_frozen() {
        let old = load(REAL).unwrap();
        let new = load(
            &REAL
                .replace("count = 235", "count = 200")
                .replace("3180", "2760"),
        )
        .unwrap();
        let pending: Vec<_> = (1..=12).map(|n| (n, RoundProgress::Pending)).collect();
        assert!(check_compatible(&old, &pending, &new).is_ok());

        let mut drawn = pending.clone();
        drawn[0].1 = RoundProgress::Drawn;
        let e = check_compatible(&old, &drawn, &new).unwrap_err();
        assert_eq!(e.field, "tiers");

        // Renaming a venue or extending validity stays allowed.
        let renamed = load(&REAL.replace("城市旅游卡", "衡阳旅游卡")).unwrap();
        assert!(check_compatible(&old, &drawn, &renamed).is_ok());
    }

    #[test]
    fn a_drawn_rounds_window_cannot_move() {
        let old = load(REAL).unwrap();
        let moved = load(&REAL.replace("2024-07-15", "2024-07-22")).unwrap();
        let mut progress: Vec<_> = (1..=12).map(|n| (n, RoundProgress::Pending)).collect();
        progress[0].1 = RoundProgress::Frozen;
        let e = check_compatible(&old, &progress, &moved).unwrap_err();
        assert_eq!(e.field, "rounds[0]");
        let other = load(&REAL.replace("hengyang-2024", "changsha-2024")).unwrap();
        assert_eq!(
            check_compatible(&old, &[], &other).unwrap_err().field,
            "campaign.id"
        );
    }
}
