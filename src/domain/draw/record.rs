//! The published round record and entries file (DESIGN §4, a contract), and their verification
//! from those two documents alone.

use super::merkle::Hash;
use super::{canonical, draw_with_reserves, seed::commitment, ALGORITHM};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WitnessRecord {
    pub name: String,
    /// Hex.
    pub commitment: String,
    /// Hex, once revealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// DESIGN §4d: when the commitment and the secret were received ([`instant`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revealed_at: Option<String>,
}

/// A point of the audit log (DESIGN §4d, §6): entry `seq` and its hash, hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

/// An instant as the record gives it (DESIGN §4d): RFC 3339 UTC with microseconds,
/// `2024-07-22T00:00:05.123456Z`.
pub fn instant(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_instant(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?.to_utc();
    (instant(t) == s).then_some(t)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PrizeRecord {
    pub tier: String,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WinnerRecord {
    pub rank: u32,
    pub ticket: Uuid,
    pub tier: String,
    /// The winner's phone, masked (`138****5678`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A reserve (DESIGN §4b): a rank after the winners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReserveRecord {
    pub rank: u32,
    pub ticket: Uuid,
}

/// `GET /api/rounds/{round}`: the fields known so far; complete once the round is drawn.
/// Unknown fields are ignored when reading, so that a verifier accepts extra fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoundRecord {
    pub algorithm: String,
    /// DESIGN §4d: SHA-256 (hex) of the exact bytes of round r−1's record as served once drawn;
    /// 64 zeros for round 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_record_sha256: Option<String>,
    pub campaign_id: String,
    pub round: u32,
    #[serde(default)]
    pub entry_count: Option<u64>,
    #[serde(default)]
    pub entries_root: Option<String>,
    /// DESIGN §4a: every ticket held for the round, and those not drawn among.
    #[serde(default)]
    pub tickets_issued: Option<u64>,
    #[serde(default)]
    pub exclusion_count: Option<u64>,
    #[serde(default)]
    pub exclusions_root: Option<String>,
    #[serde(default)]
    pub exclusions_by_reason: Option<std::collections::BTreeMap<String, u64>>,
    #[serde(default)]
    pub witnesses: Vec<WitnessRecord>,
    /// DESIGN §4d: when the round was frozen and drawn ([`instant`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen_at: Option<String>,
    /// DESIGN §4d: the audit log's head right after the freeze's and the draw's own entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_head_at_freeze: Option<AuditHead>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_head_at_draw: Option<AuditHead>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drawn_at: Option<String>,
    #[serde(default)]
    pub beacon_source: Option<String>,
    #[serde(default)]
    pub beacon: Option<String>,
    /// DESIGN §4c: for a `drand-quicknet:N` source, round N's signature (hex); the beacon is its
    /// SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beacon_signature: Option<String>,
    #[serde(default)]
    pub seed: Option<String>,
    #[serde(default)]
    pub prizes: Vec<PrizeRecord>,
    #[serde(default)]
    pub winners: Vec<WinnerRecord>,
    /// Left out when there are none, so that a round drawn without reserves reads as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reserves: Vec<ReserveRecord>,
}

/// The entries file: one lowercase hyphenated UUID per line, canonical order, `\n` after each.
pub fn entries_file(tickets: &[Uuid]) -> String {
    let mut out = String::with_capacity(tickets.len() * 37);
    for t in tickets {
        out.push_str(&t.hyphenated().to_string());
        out.push('\n');
    }
    out
}

/// Reads an entries file strictly: any deviation from the format is an error naming the line.
pub fn parse_entries_file(text: &str) -> Result<Vec<Uuid>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err("the last line does not end with \\n".into());
    };
    let mut tickets = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        let t = Uuid::parse_str(line)
            .ok()
            .filter(|u| u.hyphenated().to_string() == line)
            .ok_or_else(|| {
                format!(
                    "line {}: {line:?} is not a lowercase hyphenated UUID",
                    i + 1
                )
            })?;
        if let Some(prev) = tickets.last() {
            if *prev >= t {
                return Err(format!(
                    "line {}: not in ascending order (or a duplicate)",
                    i + 1
                ));
            }
        }
        tickets.push(t);
    }
    Ok(tickets)
}

/// One check of a verification, in the order they are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

fn check(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

fn hex32(s: Option<&str>) -> Option<Hash> {
    hex::decode(s?).ok()?.try_into().ok()
}

/// Recomputes everything a drawn round's record claims from the record and the entries file.
/// Stops after the first failed check: later checks depend on earlier ones.
pub fn verify(record: &RoundRecord, entries_text: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    macro_rules! push {
        ($c:expr) => {{
            let c = $c;
            let ok = c.ok;
            checks.push(c);
            if !ok {
                return checks;
            }
        }};
    }
    push!(check(
        "algorithm",
        record.algorithm == ALGORITHM,
        format!("{:?} (expected {ALGORITHM:?})", record.algorithm)
    ));
    let tickets = match parse_entries_file(entries_text) {
        Ok(t) => t,
        Err(e) => {
            push!(check("entries file", false, e));
            unreachable!()
        }
    };
    push!(check(
        "entries file",
        canonical(tickets.clone()).is_ok(),
        format!("{} tickets in canonical order", tickets.len())
    ));
    push!(check(
        "entry_count",
        record.entry_count == Some(tickets.len() as u64),
        format!(
            "record says {:?}, the entries file has {}",
            record.entry_count,
            tickets.len()
        )
    ));
    let root = super::entries_root(&tickets);
    push!(check(
        "entries_root",
        hex32(record.entries_root.as_deref()) == Some(root),
        format!("recomputed {}", hex::encode(root))
    ));
    let mut secrets = Vec::new();
    for w in &record.witnesses {
        let secret = w.secret.as_deref().and_then(|s| hex::decode(s).ok());
        let Some(secret) = secret else {
            push!(check(
                format!("witness {}", w.name),
                false,
                "no secret revealed"
            ));
            unreachable!()
        };
        let c = commitment(&record.campaign_id, record.round, &w.name, &secret);
        push!(check(
            format!("commitment of {}", w.name),
            hex32(Some(&w.commitment)) == Some(c),
            format!("recomputed {}", hex::encode(c))
        ));
        secrets.push((w.name.clone(), secret));
    }
    let beacon = record.beacon.clone().unwrap_or_default();
    push!(beacon_check(record, &beacon));
    push!(times_check(record));
    push!(audit_heads_check(record));
    if let Some(c) = reveals_before_beacon(record) {
        push!(c);
    }
    let prizes: Vec<(String, u32)> = record
        .prizes
        .iter()
        .map(|p| (p.tier.clone(), p.count))
        .collect();
    let result = draw_with_reserves(
        &record.campaign_id,
        record.round,
        &tickets,
        &secrets,
        &beacon,
        &prizes,
        record.reserves.len() as u32,
    );
    push!(check(
        "seed",
        hex32(record.seed.as_deref()) == Some(result.seed),
        format!("recomputed {}", hex::encode(result.seed))
    ));
    let expected: Vec<(u32, Uuid, &str)> = result
        .winners
        .iter()
        .map(|w| (w.rank, w.ticket, w.tier.as_str()))
        .collect();
    let claimed: Vec<(u32, Uuid, &str)> = record
        .winners
        .iter()
        .map(|w| (w.rank, w.ticket, w.tier.as_str()))
        .collect();
    let first_difference = expected
        .iter()
        .zip(&claimed)
        .position(|(a, b)| a != b)
        .map(|i| format!("rank {} differs", i + 1))
        .unwrap_or_else(|| {
            format!(
                "{} winners recomputed, the record lists {}",
                expected.len(),
                claimed.len()
            )
        });
    push!(check(
        "winners",
        expected == claimed,
        if expected == claimed {
            format!("{} winners, ranks and tiers as recomputed", expected.len())
        } else {
            first_difference
        }
    ));
    let expected: Vec<(u32, Uuid)> = result.reserves.iter().map(|r| (r.rank, r.ticket)).collect();
    let claimed: Vec<(u32, Uuid)> = record.reserves.iter().map(|r| (r.rank, r.ticket)).collect();
    push!(check(
        "reserves",
        expected == claimed,
        if expected == claimed {
            format!("{} reserves, ranks as recomputed", expected.len())
        } else {
            format!(
                "{} reserves recomputed, the record lists {} (first difference at position {})",
                expected.len(),
                claimed.len(),
                expected
                    .iter()
                    .zip(&claimed)
                    .position(|(a, b)| a != b)
                    .unwrap_or(expected.len().min(claimed.len()))
                    + 1
            )
        }
    ));
    checks
}

/// The beacon against its declared source (DESIGN §4c): for `drand-quicknet:N`, the signature
/// verified offline against quicknet's key and the beacon its SHA-256; for a free-text source,
/// passed but reported as not checkable offline.
fn beacon_check(record: &RoundRecord, beacon: &str) -> Check {
    use super::beacon::{verify_quicknet, Source};
    let source = record.beacon_source.as_deref().unwrap_or_default();
    match Source::of(source) {
        Source::None => check(
            "beacon",
            beacon.is_empty() && record.beacon_signature.is_none(),
            "no beacon source declared: the beacon is the empty string",
        ),
        Source::FreeText => check(
            "beacon",
            record.beacon_signature.is_none() && !beacon.is_empty(),
            if beacon.is_empty() {
                format!("source {source:?} declared, but the beacon is empty")
            } else {
                format!("source {source:?} is free text: not checkable offline")
            },
        ),
        Source::Quicknet(n) => match record.beacon_signature.as_deref() {
            None => check(
                "beacon",
                false,
                format!("drand quicknet round {n} declared, but the record has no beacon_signature"),
            ),
            Some(signature) => match verify_quicknet(n, signature) {
                Err(e) => check("beacon", false, format!("drand quicknet round {n}: {e}")),
                Ok(randomness) if randomness != beacon => check(
                    "beacon",
                    false,
                    format!(
                        "drand quicknet round {n}'s signature verifies, but its randomness is {randomness}, not the beacon"
                    ),
                ),
                Ok(_) => check(
                    "beacon",
                    true,
                    format!("drand quicknet round {n}: signature verified offline against the quicknet key; the beacon is its randomness"),
                ),
            },
        },
    }
}

/// The times (DESIGN §4d), when the record has them: each in the record's form, and in the order
/// the lifecycle allows — every commitment by the freeze, every reveal after it, the draw after
/// the last reveal. Records drawn before times were published have none, and pass as such.
fn times_check(record: &RoundRecord) -> Check {
    let witness_times = record
        .witnesses
        .iter()
        .flat_map(|w| [&w.committed_at, &w.revealed_at]);
    let all: Vec<&Option<String>> = [&record.frozen_at, &record.drawn_at]
        .into_iter()
        .chain(witness_times)
        .collect();
    if all.iter().all(|t| t.is_none()) {
        return check(
            "times",
            true,
            "the record gives no times (drawn before they were published)",
        );
    }
    let read =
        |what: String, t: &Option<String>| -> Result<chrono::DateTime<chrono::Utc>, String> {
            let t = t.as_deref().ok_or_else(|| format!("{what} is missing"))?;
            parse_instant(t)
                .ok_or_else(|| format!("{what} {t:?} is not RFC 3339 UTC with microseconds"))
        };
    let order = || -> Result<String, String> {
        let frozen = read("frozen_at".into(), &record.frozen_at)?;
        let drawn = read("drawn_at".into(), &record.drawn_at)?;
        for w in &record.witnesses {
            let committed = read(format!("committed_at of {}", w.name), &w.committed_at)?;
            let revealed = read(format!("revealed_at of {}", w.name), &w.revealed_at)?;
            if committed > frozen {
                return Err(format!("{} committed after the freeze", w.name));
            }
            if revealed < frozen {
                return Err(format!("{} revealed before the freeze", w.name));
            }
            if revealed > drawn {
                return Err(format!("{} revealed after the draw", w.name));
            }
        }
        Ok(format!(
            "commitments by the freeze ({frozen}), reveals after it, the draw ({drawn}) after them"
        ))
    };
    match order() {
        Ok(detail) => check("times", true, detail),
        Err(e) => check("times", false, e),
    }
}

/// The audit heads (DESIGN §4d), when the record has them: the draw's after the freeze's, each a
/// 32-byte hash. (Whether they are entries of the log is `audit verify --anchors`'s to check.)
fn audit_heads_check(record: &RoundRecord) -> Check {
    match (&record.audit_head_at_freeze, &record.audit_head_at_draw) {
        (None, None) => check(
            "audit heads",
            true,
            "the record gives no audit heads (drawn before they were published)",
        ),
        (Some(f), Some(d)) => {
            let ok = f.seq >= 1
                && d.seq > f.seq
                && hex32(Some(&f.hash)).is_some()
                && hex32(Some(&d.hash)).is_some();
            check(
                "audit heads",
                ok,
                format!("freeze at entry {}, draw at entry {}", f.seq, d.seq),
            )
        }
        _ => check(
            "audit heads",
            false,
            "only one of audit_head_at_freeze and audit_head_at_draw",
        ),
    }
}

/// For a quicknet beacon (DESIGN §4c): whether every secret was revealed before round N was
/// published, so that no witness could have known the beacon when revealing.
fn reveals_before_beacon(record: &RoundRecord) -> Option<Check> {
    use super::beacon::{round_time, Source};
    let source = record.beacon_source.as_deref().unwrap_or_default();
    let Source::Quicknet(n) = Source::of(source) else {
        return None;
    };
    let published = round_time(n)?;
    let late: Vec<&str> = record
        .witnesses
        .iter()
        .filter(|w| {
            w.revealed_at
                .as_deref()
                .and_then(parse_instant)
                .is_none_or(|t| t >= published)
        })
        .map(|w| w.name.as_str())
        .collect();
    Some(check(
        "reveals before the beacon",
        late.is_empty(),
        if late.is_empty() {
            format!(
                "every secret revealed before drand quicknet round {n} was published ({})",
                instant(published)
            )
        } else {
            format!(
                "revealed when round {n} was already out ({}), or not dated: {}",
                instant(published),
                late.join(", ")
            )
        },
    ))
}

/// Checks a campaign's drawn records together (DESIGN §4d), each as the exact bytes served: they
/// are rounds 1, 2, … of one campaign; each links to the one before by `previous_record_sha256`
/// (round 1 to 64 zeros); each round's prizes are its tiers — round 1's, which has nothing to roll
/// over — plus what the round before offered and did not award. The last check reports what the
/// last round left unawarded.
pub fn verify_chain(records: &[String]) -> Vec<Check> {
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;
    let mut parsed = Vec::new();
    for (i, text) in records.iter().enumerate() {
        match serde_json::from_str::<RoundRecord>(text) {
            Ok(r) => parsed.push((r, text)),
            Err(e) => return vec![check("records", false, format!("document {}: {e}", i + 1))],
        }
    }
    parsed.sort_by_key(|(r, _)| r.round);
    let rounds: Vec<u32> = parsed.iter().map(|(r, _)| r.round).collect();
    let campaign = parsed
        .first()
        .map(|(r, _)| r.campaign_id.clone())
        .unwrap_or_default();
    let consecutive = rounds.iter().enumerate().all(|(i, r)| *r == i as u32 + 1);
    let one_campaign = parsed.iter().all(|(r, _)| r.campaign_id == campaign);
    let mut checks = vec![check(
        "records",
        !parsed.is_empty() && consecutive && one_campaign,
        format!("rounds {rounds:?} of campaign {campaign:?}"),
    )];
    if !checks[0].ok {
        return checks;
    }
    let offered = |r: &RoundRecord| -> Vec<(String, u32)> {
        r.prizes.iter().map(|p| (p.tier.clone(), p.count)).collect()
    };
    let awarded = |r: &RoundRecord| -> HashMap<String, u32> {
        let mut by_tier = HashMap::new();
        for w in &r.winners {
            *by_tier.entry(w.tier.clone()).or_insert(0) += 1;
        }
        by_tier
    };
    let base = offered(&parsed[0].0);
    let mut previous: Option<(&RoundRecord, &String)> = None;
    for (r, text) in &parsed {
        let expected = match previous {
            None => "0".repeat(64),
            Some((_, bytes)) => hex::encode(Sha256::digest(bytes.as_bytes())),
        };
        checks.push(check(
            format!("link of round {}", r.round),
            r.previous_record_sha256.as_deref() == Some(expected.as_str()),
            format!(
                "previous_record_sha256 {:?}, {} {expected}",
                r.previous_record_sha256,
                if previous.is_some() {
                    "the round before's record hashes to"
                } else {
                    "round 1 links to"
                }
            ),
        ));
        if let Some((p, _)) = previous {
            let expected =
                super::super::lifecycle::prizes_with_rollover(&base, &offered(p), &awarded(p));
            checks.push(check(
                format!("rollover into round {}", r.round),
                offered(r) == expected,
                format!(
                    "offers {:?}; its tiers plus what round {} did not award: {expected:?}",
                    offered(r),
                    p.round
                ),
            ));
        }
        previous = Some((r, text));
    }
    let (last, _) = parsed.last().expect("not empty");
    let won = awarded(last);
    let left: Vec<String> = offered(last)
        .iter()
        .map(|(tier, count)| {
            format!(
                "{tier} {}",
                count.saturating_sub(won.get(tier).copied().unwrap_or(0))
            )
        })
        .collect();
    checks.push(check(
        "unawarded",
        true,
        format!("round {} left unawarded: {}", last.round, left.join(", ")),
    ));
    checks
}

/// Checks a round's exclusions file against its record and its entries file (DESIGN §4a): the
/// file's form and order, `exclusion_count`, `exclusions_root`, `exclusions_by_reason`,
/// `tickets_issued = entry_count + exclusion_count`, and that no ticket is in both lists.
pub fn verify_exclusions(
    record: &RoundRecord,
    entries_text: &str,
    exclusions_text: &str,
) -> Vec<Check> {
    use crate::domain::exclusion::{by_reason, exclusions_root, parse_exclusions_file};
    let mut checks = Vec::new();
    let list = match parse_exclusions_file(exclusions_text) {
        Ok(list) => list,
        Err(e) => return vec![check("exclusions file", false, e)],
    };
    checks.push(check(
        "exclusions file",
        true,
        format!("{} exclusions in canonical order", list.len()),
    ));
    checks.push(check(
        "exclusion_count",
        record.exclusion_count == Some(list.len() as u64),
        format!(
            "record says {:?}, the exclusions file has {}",
            record.exclusion_count,
            list.len()
        ),
    ));
    let root = exclusions_root(&list);
    checks.push(check(
        "exclusions_root",
        hex32(record.exclusions_root.as_deref()) == Some(root),
        format!("recomputed {}", hex::encode(root)),
    ));
    let counts = by_reason(&list);
    checks.push(check(
        "exclusions_by_reason",
        record.exclusions_by_reason.as_ref() == Some(&counts),
        format!(
            "recomputed {}",
            serde_json::to_string(&counts).unwrap_or_default()
        ),
    ));
    let issued = record.entry_count.unwrap_or(0) + list.len() as u64;
    checks.push(check(
        "tickets_issued",
        record.tickets_issued == Some(issued),
        format!(
            "record says {:?}; entries + exclusions = {issued}",
            record.tickets_issued
        ),
    ));
    let entries = parse_entries_file(entries_text).unwrap_or_default();
    let both = first_in_both(&entries, &list);
    checks.push(check(
        "disjoint",
        both.is_none(),
        match both {
            Some(t) => format!("{t} is both an entry and an exclusion"),
            None => "no ticket is both an entry and an exclusion".into(),
        },
    ));
    checks
}

/// A round's reallocations document (DESIGN §4b), as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReallocationsDocument {
    pub round: u32,
    pub reallocations: Vec<ReallocationLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReallocationLine {
    pub seq: u32,
    pub forfeited_rank: u32,
    pub reason: String,
    pub reserve_rank: Option<u32>,
    pub tier: String,
    pub at: String,
}

/// Checks a round's reallocations against its record: seq counts from 1; each forfeited rank held
/// a prize of that tier (a winner's, or one an earlier line gave to a reserve) and is forfeited
/// once; the prize goes to the lowest-ranked reserve not yet used, and to none only when none is
/// left. The prizes left unawarded are counted.
pub fn verify_reallocations(record: &RoundRecord, doc: &ReallocationsDocument) -> Vec<Check> {
    use std::collections::HashMap;
    let mut checks = vec![check(
        "reallocations round",
        doc.round == record.round,
        format!(
            "document of round {}, record of round {}",
            doc.round, record.round
        ),
    )];
    let mut held: HashMap<u32, String> = record
        .winners
        .iter()
        .map(|w| (w.rank, w.tier.clone()))
        .collect();
    let mut free: Vec<u32> = record.reserves.iter().map(|r| r.rank).collect();
    free.sort_unstable();
    free.reverse();
    let mut problem = None;
    let mut unawarded = 0;
    for (i, line) in doc.reallocations.iter().enumerate() {
        let fail = |why: String| Some(format!("seq {}: {why}", line.seq));
        if line.seq != i as u32 + 1 {
            problem = fail(format!("expected seq {}", i + 1));
        } else if !matches!(line.reason.as_str(), "unclaimed" | "declined") {
            problem = fail(format!("unknown reason {:?}", line.reason));
        } else if held.get(&line.forfeited_rank) != Some(&line.tier) {
            problem = fail(format!(
                "rank {} held no {} prize to forfeit",
                line.forfeited_rank, line.tier
            ));
        } else if line.reserve_rank != free.last().copied() {
            problem = fail(format!(
                "the prize went to {:?}, the next unused reserve is {:?}",
                line.reserve_rank,
                free.last()
            ));
        }
        if problem.is_some() {
            break;
        }
        held.remove(&line.forfeited_rank);
        match free.pop() {
            Some(reserve) => {
                held.insert(reserve, line.tier.clone());
            }
            None => unawarded += 1,
        }
    }
    checks.push(check(
        "reallocations",
        problem.is_none(),
        problem.unwrap_or_else(|| {
            format!(
                "{} reallocations in order, reserves used lowest rank first, each once; {unawarded} unawarded",
                doc.reallocations.len()
            )
        }),
    ));
    checks
}

/// The first ticket in both sorted lists.
fn first_in_both(
    entries: &[Uuid],
    exclusions: &[(Uuid, crate::domain::exclusion::Reason)],
) -> Option<Uuid> {
    let (mut i, mut j) = (0, 0);
    while i < entries.len() && j < exclusions.len() {
        match entries[i].cmp(&exclusions[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return Some(entries[i]),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::exclusion::{exclusions_file, Reason};

    /// The worked example's one exclusion.
    fn worked_exclusions() -> Vec<(Uuid, Reason)> {
        vec![(
            Uuid::parse_str("00000000-0000-4000-8000-000000000009").unwrap(),
            Reason::TooFast,
        )]
    }

    #[test]
    fn reallocations_use_reserves_in_order_each_once() {
        let (record, _) = worked_example();
        // Winners ranks 1..3 (grand, standard, standard), reserves 4 and 5.
        let line = |seq, forfeited_rank, reserve_rank: Option<u32>, tier: &str| ReallocationLine {
            seq,
            forfeited_rank,
            reason: "unclaimed".into(),
            reserve_rank,
            tier: tier.into(),
            at: "2024-07-30T12:00:00+08:00".into(),
        };
        let doc = |lines| ReallocationsDocument {
            round: 3,
            reallocations: lines,
        };
        let ok = doc(vec![
            line(1, 2, Some(4), "standard"),
            line(2, 4, Some(5), "standard"),
            line(3, 1, None, "grand"),
        ]);
        let checks = verify_reallocations(&record, &ok);
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        assert!(checks[1].detail.contains("1 unawarded"));
        let failed = |d: &ReallocationsDocument| {
            verify_reallocations(&record, d)
                .into_iter()
                .find(|c| !c.ok)
                .map(|c| c.detail)
        };
        for (bad, says) in [
            (
                doc(vec![line(1, 2, Some(5), "standard")]),
                "next unused reserve",
            ),
            (doc(vec![line(1, 2, Some(4), "grand")]), "held no grand"),
            (doc(vec![line(1, 9, Some(4), "standard")]), "rank 9"),
            (
                doc(vec![
                    line(1, 2, Some(4), "standard"),
                    line(2, 2, Some(5), "standard"),
                ]),
                "rank 2",
            ),
            (doc(vec![line(2, 2, Some(4), "standard")]), "expected seq 1"),
            (
                doc(vec![line(1, 2, None, "standard")]),
                "next unused reserve",
            ),
        ] {
            let got = failed(&bad).expect("refused");
            assert!(got.contains(says), "{got}");
        }
        let mut other = ok.clone();
        other.round = 4;
        assert!(failed(&other).is_some());
    }

    #[test]
    fn reserves_are_recomputed_and_a_changed_list_is_refused() {
        let (record, entries) = worked_example();
        assert_eq!(record.reserves.len(), 2);
        assert_eq!(record.reserves[0].rank, 4, "after the three winners");
        let last = |r: &RoundRecord| verify(r, &entries).last().cloned().unwrap();
        let ok = last(&record);
        assert!(ok.ok && ok.name == "reserves", "{ok:?}");
        let mut swapped = record.clone();
        swapped.reserves.swap(0, 1);
        swapped.reserves[0].rank = 4;
        swapped.reserves[1].rank = 5;
        let mut dropped = record.clone();
        dropped.reserves.pop();
        let mut extra = record.clone();
        extra.reserves.push(ReserveRecord {
            rank: 6,
            ticket: record.winners[0].ticket,
        });
        let mut stranger = record.clone();
        stranger.reserves[1].ticket = Uuid::nil();
        // A shorter list recomputes as that many, and holds: it is the same prefix.
        assert!(last(&dropped).ok);
        for bad in [swapped, extra, stranger] {
            let c = last(&bad);
            assert!(!c.ok && c.name == "reserves", "{bad:?}: {c:?}");
        }
        // A record without reserves reads and writes as before: no "reserves" key.
        let mut none = record.clone();
        none.reserves.clear();
        assert!(!serde_json::to_string(&none).unwrap().contains("reserves"));
    }

    #[test]
    fn exclusions_are_checked_against_the_record_and_the_entries() {
        let (record, entries) = worked_example();
        let file = exclusions_file(&worked_exclusions());
        let checks = verify_exclusions(&record, &entries, &file);
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        assert_eq!(checks.len(), 6);
        let failed = |record: &RoundRecord, file: &str| -> Vec<String> {
            verify_exclusions(record, &entries, file)
                .into_iter()
                .filter(|c| !c.ok)
                .map(|c| c.name)
                .collect()
        };
        // Another reason: the root and the counts no longer hold.
        let other = file.replace("too_fast", "staff");
        assert_eq!(
            failed(&record, &other),
            ["exclusions_root", "exclusions_by_reason"]
        );
        // A ticket dropped from the list silently.
        assert_eq!(
            failed(&record, ""),
            [
                "exclusion_count",
                "exclusions_root",
                "exclusions_by_reason",
                "tickets_issued"
            ]
        );
        let mut wrong = record.clone();
        wrong.tickets_issued = Some(7);
        assert_eq!(failed(&wrong, &file), ["tickets_issued"]);
        // An entry also listed as excluded.
        let entry = entries.lines().next().unwrap();
        let both = format!("{entry} staff\n");
        let mut record_both = record.clone();
        let listed = crate::domain::exclusion::parse_exclusions_file(&both).unwrap();
        record_both.exclusions_root = Some(hex::encode(crate::domain::exclusion::exclusions_root(
            &listed,
        )));
        record_both.exclusions_by_reason = Some([("staff".to_owned(), 1)].into());
        assert_eq!(failed(&record_both, &both), ["disjoint"]);
        assert_eq!(failed(&record, "nonsense"), ["exclusions file"]);
    }

    /// The worked example as a published record and entries file.
    fn worked_example() -> (RoundRecord, String) {
        let tickets: Vec<Uuid> = (1..=7)
            .map(|n| Uuid::parse_str(&format!("00000000-0000-4000-8000-00000000000{n}")).unwrap())
            .collect();
        let witnesses = vec![
            ("notary".to_owned(), vec![0x11; 32]),
            ("operator".to_owned(), vec![0x22; 32]),
        ];
        let prizes = vec![("grand".to_owned(), 1), ("standard".to_owned(), 2)];
        let r = draw_with_reserves("hengyang-2024", 3, &tickets, &witnesses, "", &prizes, 2);
        let record = RoundRecord {
            algorithm: ALGORITHM.into(),
            previous_record_sha256: None,
            campaign_id: "hengyang-2024".into(),
            round: 3,
            entry_count: Some(7),
            entries_root: Some(hex::encode(r.entries_root)),
            tickets_issued: Some(8),
            exclusion_count: Some(1),
            exclusions_root: Some(hex::encode(crate::domain::exclusion::exclusions_root(
                &worked_exclusions(),
            ))),
            exclusions_by_reason: Some([("too_fast".to_owned(), 1)].into()),
            witnesses: witnesses
                .iter()
                .map(|(name, secret)| WitnessRecord {
                    name: name.clone(),
                    commitment: hex::encode(commitment("hengyang-2024", 3, name, secret)),
                    secret: Some(hex::encode(secret)),
                    committed_at: None,
                    revealed_at: None,
                })
                .collect(),
            frozen_at: None,
            drawn_at: None,
            audit_head_at_freeze: None,
            audit_head_at_draw: None,
            beacon_source: None,
            beacon: Some(String::new()),
            beacon_signature: None,
            seed: Some(hex::encode(r.seed)),
            prizes: prizes
                .iter()
                .map(|(t, c)| PrizeRecord {
                    tier: t.clone(),
                    count: *c,
                })
                .collect(),
            winners: r
                .winners
                .iter()
                .map(|w| WinnerRecord {
                    rank: w.rank,
                    ticket: w.ticket,
                    tier: w.tier.clone(),
                    phone: None,
                })
                .collect(),
            reserves: r
                .reserves
                .iter()
                .map(|x| ReserveRecord {
                    rank: x.rank,
                    ticket: x.ticket,
                })
                .collect(),
        };
        (record, entries_file(&tickets))
    }

    fn first_failure(record: &RoundRecord, entries: &str) -> Option<String> {
        verify(record, entries)
            .into_iter()
            .find(|c| !c.ok)
            .map(|c| c.name)
    }

    #[test]
    fn the_worked_example_verifies() {
        let (record, entries) = worked_example();
        assert_eq!(
            record.entries_root.as_deref(),
            Some("d06b98d91471e89208b5bc8f79497b922e8f6d0c292a7b481688b06ea7518a10")
        );
        let checks = verify(&record, &entries);
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        assert_eq!(
            checks.len(),
            12,
            "with the beacon, the times, the audit heads and the reserves"
        );
        // The JSON of the contract reads back, extra fields and all.
        let mut json = serde_json::to_value(&record).unwrap();
        json["state"] = "drawn".into();
        let back: RoundRecord = serde_json::from_value(json).unwrap();
        assert!(verify(&back, &entries).iter().all(|c| c.ok));
    }

    #[test]
    fn every_tampered_field_is_caught() {
        let (record, entries) = worked_example();
        type Tamper = Box<dyn Fn(&mut RoundRecord)>;
        let cases: Vec<(&str, Tamper)> = vec![
            (
                "algorithm",
                Box::new(|r| r.algorithm = "campaign-draw/v2".into()),
            ),
            ("entry_count", Box::new(|r| r.entry_count = Some(8))),
            (
                "entries_root",
                Box::new(|r| r.entries_root = Some("00".repeat(32))),
            ),
            (
                "commitment of notary",
                Box::new(|r| r.witnesses[0].commitment = "11".repeat(32)),
            ),
            (
                "commitment of operator",
                Box::new(|r| r.witnesses[1].secret = Some("23".repeat(32))),
            ),
            ("witness notary", Box::new(|r| r.witnesses[0].secret = None)),
            ("seed", Box::new(|r| r.seed = Some("ab".repeat(32)))),
            // A beacon where no source was declared.
            ("beacon", Box::new(|r| r.beacon = Some("drand 1234".into()))),
            // A free-text source declared afterwards: the beacon is not the source's.
            (
                "seed",
                Box::new(|r| {
                    r.beacon_source = Some("福彩3D".into());
                    r.beacon = Some("0 7 2".into());
                }),
            ),
            (
                "commitment of notary",
                Box::new(|r| r.campaign_id = "other".into()),
            ),
            ("winners", Box::new(|r| r.winners.swap(0, 1))),
            ("winners", Box::new(|r| r.winners[2].tier = "grand".into())),
            (
                "winners",
                Box::new(|r| {
                    r.winners.pop();
                }),
            ),
            ("winners", Box::new(|r| r.prizes[1].count = 3)),
            ("winners", Box::new(|r| r.winners[1].ticket = Uuid::nil())),
        ];
        for (expected, tamper) in cases {
            let mut r = record.clone();
            tamper(&mut r);
            assert_eq!(first_failure(&r, &entries).as_deref(), Some(expected));
        }
        // A witness dropped from the record changes the seed.
        let mut r = record.clone();
        r.witnesses.remove(1);
        assert_eq!(first_failure(&r, &entries).as_deref(), Some("seed"));
    }

    /// The worked example drawn with drand quicknet round 657 413 as its beacon (a published
    /// round: its signature is a known answer).
    fn quicknet_example() -> (RoundRecord, String) {
        example_with(
            "drand-quicknet:657413",
            "fc1873a13f3545aeade8401532ef5519920652eee6b0d2b19ca12643b87b3587",
            Some("b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050e7be41076862b98fad56e91a6b85b89cd97b"),
        )
    }

    /// The worked example drawn again with `beacon` from `source`.
    fn example_with(source: &str, beacon: &str, signature: Option<&str>) -> (RoundRecord, String) {
        let (mut record, entries) = worked_example();
        let tickets = parse_entries_file(&entries).unwrap();
        let secrets: Vec<(String, Vec<u8>)> = record
            .witnesses
            .iter()
            .map(|w| {
                (
                    w.name.clone(),
                    hex::decode(w.secret.as_ref().unwrap()).unwrap(),
                )
            })
            .collect();
        let prizes: Vec<(String, u32)> = record
            .prizes
            .iter()
            .map(|p| (p.tier.clone(), p.count))
            .collect();
        let r = draw_with_reserves("hengyang-2024", 3, &tickets, &secrets, beacon, &prizes, 2);
        record.beacon_source = Some(source.into());
        record.beacon = Some(beacon.into());
        record.beacon_signature = signature.map(str::to_owned);
        record.seed = Some(hex::encode(r.seed));
        for (w, x) in record.winners.iter_mut().zip(&r.winners) {
            w.ticket = x.ticket;
            w.tier = x.tier.clone();
        }
        for (w, x) in record.reserves.iter_mut().zip(&r.reserves) {
            w.ticket = x.ticket;
        }
        (record, entries)
    }

    #[test]
    fn a_quicknet_beacon_is_checked_offline_and_tampering_named() {
        let (record, entries) = dated_example();
        // docs/draw-algorithm.md's worked example with a drand round: the seed and the ranks.
        assert_eq!(
            record.seed.as_deref(),
            Some("bfafec6a361111c38fab936ab6e45e921256a52eeb425e23dbfa86af1a131dd5")
        );
        let ranks: Vec<(u32, String)> = record
            .winners
            .iter()
            .map(|w| (w.rank, w.ticket.to_string()[32..].to_owned()))
            .chain(
                record
                    .reserves
                    .iter()
                    .map(|r| (r.rank, r.ticket.to_string()[32..].to_owned())),
            )
            .collect();
        let expected = [
            (1, "0005"),
            (2, "0003"),
            (3, "0004"),
            (4, "0001"),
            (5, "0002"),
        ];
        assert_eq!(ranks, expected.map(|(r, t)| (r, t.to_owned())).to_vec());
        let checks = verify(&record, &entries);
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        let beacon = checks.iter().find(|c| c.name == "beacon").unwrap();
        assert!(beacon.detail.contains("verified offline"), "{beacon:?}");
        type Tamper = Box<dyn Fn(&mut RoundRecord)>;
        let cases: Vec<Tamper> = vec![
            // Another round declared than the one signed.
            Box::new(|r| r.beacon_source = Some("drand-quicknet:657414".into())),
            // The source made free text, the signature kept.
            Box::new(|r| r.beacon_source = Some("福彩3D".into())),
            Box::new(|r| r.beacon_signature = None),
            Box::new(|r| {
                let mut s = r.beacon_signature.clone().unwrap().into_bytes();
                s[10] = if s[10] == b'a' { b'b' } else { b'a' };
                r.beacon_signature = Some(String::from_utf8(s).unwrap());
            }),
            // Another beacon typed in: not the signature's randomness.
            Box::new(|r| r.beacon = Some("00".repeat(32))),
        ];
        for tamper in cases {
            let mut r = record.clone();
            tamper(&mut r);
            assert_eq!(first_failure(&r, &entries).as_deref(), Some("beacon"));
        }
        // A free-text source is passed, but said not to be checkable; declared and left empty,
        // it fails.
        let (free, entries) = example_with("福彩3D 2024年第190期", "0 7 2", None);
        let checks = verify(&free, &entries);
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        let beacon = checks.iter().find(|c| c.name == "beacon").unwrap();
        assert!(
            beacon.detail.contains("not checkable offline"),
            "{beacon:?}"
        );
        let mut empty = free.clone();
        empty.beacon = Some(String::new());
        assert_eq!(first_failure(&empty, &entries).as_deref(), Some("beacon"));
    }

    /// The quicknet example with its times: committed a day before the freeze, revealed an hour
    /// after it, drawn a minute after round 657 413 was published.
    fn dated_example() -> (RoundRecord, String) {
        let (mut record, entries) = quicknet_example();
        let beacon_out = super::super::beacon::round_time(657_413).unwrap();
        let frozen = beacon_out - chrono::Duration::days(7);
        record.frozen_at = Some(instant(frozen));
        record.audit_head_at_freeze = Some(AuditHead {
            seq: 40,
            hash: "ab".repeat(32),
        });
        record.audit_head_at_draw = Some(AuditHead {
            seq: 44,
            hash: "cd".repeat(32),
        });
        record.drawn_at = Some(instant(beacon_out + chrono::Duration::minutes(1)));
        for (i, w) in record.witnesses.iter_mut().enumerate() {
            let i = i as i64;
            w.committed_at = Some(instant(
                frozen - chrono::Duration::days(1) + chrono::Duration::microseconds(i),
            ));
            w.revealed_at = Some(instant(frozen + chrono::Duration::hours(1 + i)));
        }
        (record, entries)
    }

    #[test]
    fn times_are_in_the_lifecycle_order_and_reveals_precede_the_beacon() {
        let (record, entries) = dated_example();
        let checks = verify(&record, &entries);
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        assert!(checks.iter().any(|c| c.name == "reveals before the beacon"));
        assert_eq!(
            record.frozen_at.as_deref().unwrap().len(),
            "2024-07-22T00:00:05.123456Z".len()
        );
        let beacon_out = super::super::beacon::round_time(657_413).unwrap();
        type Tamper = Box<dyn Fn(&mut RoundRecord)>;
        let cases: Vec<(&str, Tamper)> = vec![
            // A secret revealed once round 657 413 was out: the beacon no longer protects.
            (
                "reveals before the beacon",
                Box::new(move |r| {
                    r.witnesses[1].revealed_at =
                        Some(instant(beacon_out + chrono::Duration::seconds(1)))
                }),
            ),
            (
                "times",
                Box::new(|r| r.witnesses[0].committed_at = r.drawn_at.clone()),
            ),
            (
                "times",
                Box::new(|r| r.witnesses[0].revealed_at = Some("2023-09-08T00:00:00Z".into())),
            ),
            ("times", Box::new(|r| r.drawn_at = None)),
            // The draw's head before the freeze's, a head not a hash, one head dropped.
            (
                "audit heads",
                Box::new(|r| r.audit_head_at_draw.as_mut().unwrap().seq = 40),
            ),
            (
                "audit heads",
                Box::new(|r| r.audit_head_at_freeze.as_mut().unwrap().hash = "xyz".into()),
            ),
            ("audit heads", Box::new(|r| r.audit_head_at_freeze = None)),
            (
                "times",
                Box::new(|r| r.frozen_at = Some("2023-09-08 00:00:00".into())),
            ),
        ];
        for (expected, tamper) in cases {
            let mut r = record.clone();
            tamper(&mut r);
            assert_eq!(first_failure(&r, &entries).as_deref(), Some(expected));
        }
    }

    #[test]
    fn a_chain_links_each_record_to_the_one_before_and_rolls_prizes_over() {
        use sha2::{Digest, Sha256};
        let (mut one, _) = worked_example();
        one.previous_record_sha256 = Some("0".repeat(64));
        // Round 1 awards one standard prize fewer than it offers: round 2 offers it again.
        one.winners.pop();
        let first = serde_json::to_string(&one).unwrap();
        let mut two = one.clone();
        two.round = 4;
        two.previous_record_sha256 = Some(hex::encode(Sha256::digest(first.as_bytes())));
        two.prizes[1].count = 3;
        let second = serde_json::to_string(&two).unwrap();
        // (Rounds are counted from 1: renumber the example's round 3 as 1 and 2.)
        let renumber = |t: &str, n: u32| {
            t.replacen(
                &format!("\"round\":{}", if n == 1 { 3 } else { 4 }),
                &format!("\"round\":{n}"),
                1,
            )
        };
        let first = renumber(&first, 1);
        let mut two: RoundRecord = serde_json::from_str(&renumber(&second, 2)).unwrap();
        two.previous_record_sha256 = Some(hex::encode(Sha256::digest(first.as_bytes())));
        let second = serde_json::to_string(&two).unwrap();
        let checks = verify_chain(&[second.clone(), first.clone()]);
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        assert!(
            checks
                .last()
                .unwrap()
                .detail
                .contains("grand 0, standard 2"),
            "{checks:?}"
        );
        let failed = |records: &[String]| {
            verify_chain(records)
                .into_iter()
                .find(|c| !c.ok)
                .map(|c| c.name)
        };
        let edited = first.replacen("grand", "grand ", 1);
        assert_eq!(
            failed(&[edited, second.clone()]).as_deref(),
            Some("link of round 2")
        );
        let mut cut = two.clone();
        cut.prizes[1].count = 2;
        let cut = serde_json::to_string(&cut).unwrap();
        assert_eq!(
            failed(&[first.clone(), cut]).as_deref(),
            Some("rollover into round 2")
        );
        assert_eq!(
            failed(std::slice::from_ref(&second)).as_deref(),
            Some("records")
        );
        let mut wrong_start = one.clone();
        wrong_start.round = 1;
        wrong_start.previous_record_sha256 = Some("11".repeat(32));
        let wrong_start = serde_json::to_string(&wrong_start).unwrap();
        assert_eq!(failed(&[wrong_start]).as_deref(), Some("link of round 1"));
    }

    #[test]
    fn every_tampered_entries_file_is_caught() {
        let (record, entries) = worked_example();
        let lines: Vec<&str> = entries.lines().collect();
        let replaced = entries.replace(
            "00000000-0000-4000-8000-000000000007",
            "00000000-0000-4000-8000-000000000009",
        );
        let added = format!("{entries}00000000-0000-4000-8000-000000000008\n");
        let dropped: String = lines
            .iter()
            .filter(|l| !l.ends_with('4'))
            .map(|l| format!("{l}\n"))
            .collect();
        let swapped = entries.replace(
            "00000000-0000-4000-8000-000000000001\n00000000-0000-4000-8000-000000000002",
            "00000000-0000-4000-8000-000000000002\n00000000-0000-4000-8000-000000000001",
        );
        assert_eq!(
            first_failure(&record, &replaced).as_deref(),
            Some("entries_root")
        );
        assert_eq!(
            first_failure(&record, &added).as_deref(),
            Some("entry_count")
        );
        assert_eq!(
            first_failure(&record, &dropped).as_deref(),
            Some("entry_count")
        );
        assert_eq!(
            first_failure(&record, &swapped).as_deref(),
            Some("entries file")
        );
        assert!(parse_entries_file("0000000A-0000-4000-8000-000000000001\n")
            .unwrap_err()
            .contains("lowercase"));
        assert!(
            parse_entries_file("0000000a00004000800000000000000001\n").is_err(),
            "hyphens required"
        );
        assert_eq!(
            first_failure(&record, entries.trim_end()).as_deref(),
            Some("entries file")
        );
        let duplicated = format!("{}{}", entries, lines[6]) + "\n";
        assert_eq!(
            first_failure(&record, &duplicated).as_deref(),
            Some("entries file")
        );
    }

    #[test]
    fn an_empty_round_has_the_empty_root() {
        assert_eq!(parse_entries_file(""), Ok(vec![]));
        assert_eq!(entries_file(&[]), "");
    }
}
