//! The reports: pure functions from the read model's facts, a year, a scope and the
//! settings to a protected table.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::facts::{ExitReason, Facts, Principal, Stage};
use super::table::{Cell, Row, Table};
use super::{ReportKind, ReportSettings, Scope, Year};

/// The life areas, in the order reports list them (the plans service's codes).
pub const LIFE_AREAS: [&str; 8] = [
    "housing",
    "occupation",
    "health",
    "substance_use",
    "finances",
    "social_network",
    "daily_living",
    "other",
];

/// Builds and protects one report for `scope`.
pub fn build(
    kind: ReportKind,
    facts: &Facts,
    year: Year,
    scope: &Scope,
    settings: &ReportSettings,
    now: DateTime<Utc>,
) -> Table {
    let threshold = settings.suppression_threshold;
    match kind {
        ReportKind::Recruitment => {
            // Always built and protected for the whole programme, then cut to the scope: a
            // cell hidden in one report is hidden in every report that shows it.
            let mut table = recruitment(facts, year, settings, now);
            table.protect(threshold);
            if let Scope::Municipality(code) = scope {
                table.narrow_to(code);
            }
            table
        }
        ReportKind::InterventionCoverage => {
            let mut table = coverage(facts, scope);
            table.protect(threshold);
            table
        }
        ReportKind::Board => {
            let mut table = board(facts, year, scope, now);
            table.protect(threshold);
            table
        }
        ReportKind::Fidelity => {
            let mut table = fidelity(facts, year, scope);
            table.protect(threshold);
            table
        }
        ReportKind::Consultation => {
            let mut table = consultation(facts, year, scope);
            table.protect(threshold);
            table
        }
        ReportKind::SipKollen => {
            // As recruitment: protected for the programme, then cut to the scope.
            let mut table = sip_kollen(facts, year, settings);
            table.protect(threshold);
            if let Scope::Municipality(code) = scope {
                table.narrow_to(code);
            }
            table
        }
        ReportKind::BoardLevels => {
            let mut table = board_levels(facts, year, scope, now);
            table.protect(threshold);
            table
        }
    }
}

/// The SIP-kollen questions, in the order reports list them.
pub const SIP_KOLLEN_QUESTIONS: [&str; 5] = [
    "took_part",
    "goals_are_mine",
    "knows_who_does_what",
    "knows_follow_up",
    "plan_helps",
];

/// SIP-kollen in aggregate: per home municipality and question, the answers given in the
/// evaluations recorded in the year (yes, partly, no) and the share answering yes; then the
/// programme's total per question. No comment is ever read.
pub fn sip_kollen(facts: &Facts, year: Year, settings: &ReportSettings) -> Table {
    let mut table = Table::new(&[
        "municipality/question",
        "answers",
        "yes",
        "partly",
        "no",
        "percent_yes",
    ]);
    let mut municipalities: BTreeSet<&str> = settings
        .programme_municipalities
        .iter()
        .map(String::as_str)
        .collect();
    let mut counts: BTreeMap<(&str, usize), [u64; 3]> = BTreeMap::new();
    for plan in facts.plans.values() {
        let Some(p) = facts.participants.get(&plan.participant_id) else {
            continue;
        };
        for evaluation in plan
            .sip_kollen
            .iter()
            .filter(|e| in_year(Some(e.recorded_at), year))
        {
            for (question, answer) in &evaluation.answers {
                let Some(q) = SIP_KOLLEN_QUESTIONS.iter().position(|x| x == question) else {
                    continue;
                };
                let Some(a) = ["yes", "partly", "no"].iter().position(|x| x == answer) else {
                    continue;
                };
                municipalities.insert(p.home_municipality.as_str());
                counts.entry((p.home_municipality.as_str(), q)).or_default()[a] += 1;
            }
        }
    }
    let row = |label: String, municipality: Option<&str>, sums: [u64; 3]| {
        let answers: u64 = sums.iter().sum();
        #[allow(clippy::cast_precision_loss)]
        let share = (answers > 0).then(|| 100.0 * sums[0] as f64 / answers as f64);
        Row {
            label,
            municipality: municipality.map(str::to_owned),
            cells: vec![
                Cell::count(answers),
                Cell::count(sums[0]),
                Cell::count(sums[1]),
                Cell::count(sums[2]),
                Cell::measure(share, 1, answers),
            ],
        }
    };
    let mut totals = [[0u64; 3]; SIP_KOLLEN_QUESTIONS.len()];
    for municipality in &municipalities {
        for (q, question) in SIP_KOLLEN_QUESTIONS.iter().enumerate() {
            let sums = counts.get(&(*municipality, q)).copied().unwrap_or_default();
            for (t, n) in totals[q].iter_mut().zip(sums) {
                *t += n;
            }
            table.rows.push(row(
                format!("{municipality}/{question}"),
                Some(municipality),
                sums,
            ));
        }
    }
    let first_total = table.rows.len();
    for (q, question) in SIP_KOLLEN_QUESTIONS.iter().enumerate() {
        table
            .rows
            .push(row(format!("total/{question}"), None, totals[q]));
        // Each question's municipality rows add up to its total row.
        let parts: Vec<usize> = (0..municipalities.len())
            .map(|m| m * SIP_KOLLEN_QUESTIONS.len() + q)
            .collect();
        table.columns_add_up(&[0, 1, 2, 3], &parts, first_total + q);
    }
    table.rows_add_up(&[1, 2, 3], 0);
    table.notes = vec![
        "answers to the structured SIP-kollen questions in the evaluations recorded in the year, by the participant's current home municipality".to_owned(),
        "questions: took_part (I took part in making my plan), goals_are_mine, knows_who_does_what, knows_follow_up (I know when the plan is followed up), plan_helps".to_owned(),
        "percent_yes is shown only over enough answers; comments are never read".to_owned(),
    ];
    table
}

/// Board status levels over time: per month of the year, the participants on the board
/// counted once each at the most acute level (1 = most acute) they had during the month,
/// then the same for the whole year.
pub fn board_levels(facts: &Facts, year: Year, scope: &Scope, now: DateTime<Utc>) -> Table {
    let top = facts
        .stays
        .values()
        .flat_map(|s| s.levels.iter().map(|(_, l)| *l))
        .max()
        .unwrap_or(3)
        .clamp(3, 7);
    let mut columns = vec!["month".to_owned(), "participants_on_board".to_owned()];
    columns.extend((1..=top).map(|l| format!("level_{l}")));
    columns.push("level_not_recorded".to_owned());
    let mut table = Table::new(&columns.iter().map(String::as_str).collect::<Vec<_>>());
    let start_of = |y: i32, m: u32| {
        NaiveDate::from_ymd_opt(y, m, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    };
    let mut periods: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = (1..=12)
        .filter_map(|m| {
            let (next_y, next_m) = if m == 12 {
                (year.get() + 1, 1)
            } else {
                (year.get(), m + 1)
            };
            Some((
                format!("{}-{m:02}", year.get()),
                start_of(year.get(), m)?,
                start_of(next_y, next_m)?,
            ))
        })
        .collect();
    if let (Some(first), Some(last)) = (periods.first(), periods.last()) {
        periods.push(("year".to_owned(), first.1, last.2));
    }
    for (label, start, end) in periods {
        // Each participant's most acute level in the period; `None` when none was recorded.
        let mut people: BTreeMap<&str, Option<u32>> = BTreeMap::new();
        for stay in facts.stays.values() {
            let Some(p) = facts.participants.get(&stay.participant_id) else {
                continue;
            };
            let until = stay.off_at.unwrap_or(now);
            if !scope.covers(&p.home_municipality) || stay.on_at >= end || until < start {
                continue;
            }
            let within = stay
                .levels
                .iter()
                .filter(|(at, _)| *at >= start && *at < end && *at <= until)
                .map(|(_, l)| *l);
            let most_acute = stay.level_at(start).into_iter().chain(within).min();
            let seen = people.entry(stay.participant_id.as_str()).or_insert(None);
            *seen = match (*seen, most_acute) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let mut sums = vec![0u64; usize::try_from(top).unwrap_or(7) + 1];
        for level in people.values() {
            let column = level
                .and_then(|l| usize::try_from(l).ok())
                .filter(|l| (1..sums.len()).contains(l))
                .map_or(sums.len() - 1, |l| l - 1);
            sums[column] += 1;
        }
        let mut cells = vec![Cell::count(u64::try_from(people.len()).unwrap_or(u64::MAX))];
        cells.extend(sums.into_iter().map(Cell::count));
        table.rows.push(Row {
            label,
            municipality: None,
            cells,
        });
    }
    let levels: Vec<usize> = (1..table.columns.len() - 1).collect();
    table.rows_add_up(&levels, 0);
    table.notes = vec![
        "each participant on the board in the month is counted once, at the most acute status level (1 = most acute) in force during the month; year: the same over the whole year".to_owned(),
        "a level counts from when the board recorded it; level_not_recorded: on the board with no level known to the read model".to_owned(),
    ];
    table
}

fn in_year(at: Option<DateTime<Utc>>, year: Year) -> bool {
    at.is_some_and(|at| at.year() == year.get())
}

fn on_in_year(on: Option<NaiveDate>, year: Year) -> bool {
    on.is_some_and(|on| on.year() == year.get())
}

/// The recruitment funnel's count columns, in order.
const FUNNEL: [&str; 11] = [
    "referred",
    "reviewed",
    "accepted",
    "declined",
    "enrolled",
    "enrolled_in_research_study",
    "discharged",
    "discharged_ordinary_care",
    "discharged_moved",
    "discharged_declined_further",
    "discharged_other",
];

/// Referred → reviewed → accepted/declined → enrolled → discharged (with reasons) per home
/// municipality, each counted by the day it happened in the year, against the target.
pub fn recruitment(
    facts: &Facts,
    year: Year,
    settings: &ReportSettings,
    now: DateTime<Utc>,
) -> Table {
    let mut columns = vec!["municipality"];
    columns.extend(FUNNEL);
    columns.push("yearly_target");
    let mut table = Table::new(&columns);
    let researched: HashSet<&str> = facts
        .research_consents
        .values()
        .filter(|c| c.active_at(now))
        .map(|c| c.participant_id.as_str())
        .collect();
    let mut municipalities: BTreeSet<&str> = settings
        .programme_municipalities
        .iter()
        .map(String::as_str)
        .collect();
    let mut counts: BTreeMap<&str, [u64; FUNNEL.len()]> = BTreeMap::new();
    for (id, p) in &facts.participants {
        let row = [
            in_year(p.referred_at, year),
            in_year(p.reviewed_at, year),
            in_year(p.accepted_at, year),
            in_year(p.declined_at, year),
            on_in_year(p.enrolled_on, year),
            on_in_year(p.enrolled_on, year) && researched.contains(id.as_str()),
            on_in_year(p.discharged_on, year),
            on_in_year(p.discharged_on, year) && p.exit == Some(ExitReason::OrdinaryCare),
            on_in_year(p.discharged_on, year) && p.exit == Some(ExitReason::Moved),
            on_in_year(p.discharged_on, year) && p.exit == Some(ExitReason::DeclinedFurther),
            on_in_year(p.discharged_on, year)
                && matches!(
                    p.exit,
                    Some(ExitReason::Deceased | ExitReason::Other) | None
                ),
        ];
        if !row.contains(&true) {
            continue;
        }
        municipalities.insert(p.home_municipality.as_str());
        let sums = counts.entry(p.home_municipality.as_str()).or_default();
        for (sum, counted) in sums.iter_mut().zip(row) {
            *sum += u64::from(counted);
        }
    }
    let mut total = [0u64; FUNNEL.len()];
    for municipality in &municipalities {
        let sums = counts.get(municipality).copied().unwrap_or_default();
        for (t, n) in total.iter_mut().zip(sums) {
            *t += n;
        }
        let mut cells: Vec<Cell> = sums.into_iter().map(Cell::count).collect();
        let target = if settings
            .programme_municipalities
            .iter()
            .any(|m| m == municipality)
        {
            settings.yearly_target.to_string()
        } else {
            "-".to_owned()
        };
        cells.push(Cell::text(target));
        table.rows.push(Row {
            label: (*municipality).to_owned(),
            municipality: Some((*municipality).to_owned()),
            cells,
        });
    }
    let mut cells: Vec<Cell> = total.into_iter().map(Cell::count).collect();
    let targets = u64::from(settings.yearly_target)
        * u64::try_from(settings.programme_municipalities.len()).unwrap_or(0);
    cells.push(Cell::text(targets.to_string()));
    table.rows.push(Row {
        label: "total".to_owned(),
        municipality: None,
        cells,
    });
    let parts: Vec<usize> = (0..municipalities.len()).collect();
    table.columns_add_up(
        &(0..FUNNEL.len()).collect::<Vec<_>>(),
        &parts,
        municipalities.len(),
    );
    // discharged = the four reasons; reviewed ≥ accepted + declined (counted as a sum: it
    // errs towards hiding more).
    table.rows_add_up(&[7, 8, 9, 10], 6);
    table.rows_add_up(&[2, 3], 1);
    table.notes = vec![
        "each stage is counted in the year it happened: referred and reviewed by the day recorded, enrolled and discharged by their dates".to_owned(),
        "a participant counts for the municipality they live in now".to_owned(),
        "discharged_other: deceased, another reason, or none recorded".to_owned(),
        "enrolled_in_research_study: enrolled in the year and holding an active research-study consent now".to_owned(),
        format!("yearly_target: new participants per municipality and year ({} per municipality)", settings.yearly_target),
    ];
    table
}

/// Why a need has no intervention, as the plans record it, and `not_recorded` for a need
/// without one and without a reason.
pub const NO_INTERVENTION_REASONS: [&str; 7] = [
    "participant_declines",
    "motivation_work",
    "none_suitable",
    "denied",
    "met_otherwise",
    "other",
    "not_recorded",
];

/// Count columns of the coverage report: needs (0), with (1) and without (2) a current
/// intervention, the reasons of those without (3 to 9), interventions per principal (10, 11).
const COVERAGE_COUNTS: usize = 3 + NO_INTERVENTION_REASONS.len() + 2;

/// Needs per life area with and without a current intervention, those without by the
/// reason the plan gives, interventions per principal, and days from decision to start, over
/// the active plans of participants in scope.
pub fn coverage(facts: &Facts, scope: &Scope) -> Table {
    let mut columns = vec![
        "life_area".to_owned(),
        "needs".to_owned(),
        "needs_with_intervention".to_owned(),
        "needs_without_intervention".to_owned(),
    ];
    columns.extend(
        NO_INTERVENTION_REASONS
            .iter()
            .map(|r| format!("without_{r}")),
    );
    columns.extend(
        [
            "interventions_region",
            "interventions_municipality",
            "median_days_decision_to_start",
        ]
        .map(str::to_owned),
    );
    let mut table = Table::new(&columns.iter().map(String::as_str).collect::<Vec<_>>());
    let region = COVERAGE_COUNTS - 2;
    let mut per_area: BTreeMap<&str, ([u64; COVERAGE_COUNTS], Vec<i64>)> = BTreeMap::new();
    for plan in facts.plans.values().filter(|p| p.active) {
        let Some(p) = facts.participants.get(&plan.participant_id) else {
            continue;
        };
        if !scope.covers(&p.home_municipality) {
            continue;
        }
        for need in &plan.needs {
            let area = LIFE_AREAS
                .iter()
                .find(|a| **a == need.life_area)
                .copied()
                .unwrap_or("other");
            let (sums, days) = per_area
                .entry(area)
                .or_insert_with(|| ([0; COVERAGE_COUNTS], Vec::new()));
            let current: Vec<_> = need.interventions.iter().filter(|i| i.current).collect();
            sums[0] += 1;
            if current.is_empty() {
                sums[2] += 1;
                let reason = need
                    .no_intervention_reason
                    .as_deref()
                    .and_then(|r| NO_INTERVENTION_REASONS.iter().position(|known| *known == r))
                    .unwrap_or(NO_INTERVENTION_REASONS.len() - 1);
                sums[3 + reason] += 1;
            } else {
                sums[1] += 1;
            }
            for intervention in current {
                match intervention.principal {
                    Principal::Region => sums[region] += 1,
                    Principal::Municipality => sums[region + 1] += 1,
                }
                days.extend(intervention.days_decision_to_start);
            }
        }
    }
    let mut total = [0u64; COVERAGE_COUNTS];
    let mut all_days = Vec::new();
    for area in LIFE_AREAS {
        let (sums, days) = per_area
            .remove(area)
            .unwrap_or(([0; COVERAGE_COUNTS], Vec::new()));
        for (t, n) in total.iter_mut().zip(sums) {
            *t += n;
        }
        all_days.extend(days.iter().copied());
        table.rows.push(area_row(area, &sums, days));
    }
    table.rows.push(area_row("total", &total, all_days));
    let parts: Vec<usize> = (0..LIFE_AREAS.len()).collect();
    table.columns_add_up(
        &(0..COVERAGE_COUNTS).collect::<Vec<_>>(),
        &parts,
        LIFE_AREAS.len(),
    );
    table.rows_add_up(&[1, 2], 0);
    table.rows_add_up(&(3..region).collect::<Vec<_>>(), 2);
    table.notes = vec![
        "over the active plans of participants in scope, as they stand now".to_owned(),
        "an intervention meets a need unless it was denied or has ended".to_owned(),
        "without_*: needs without a current intervention by the reason the plan records; without_not_recorded: no reason recorded".to_owned(),
        "median_days_decision_to_start: from a pushed decision's start to the intervention's start, where both are known".to_owned(),
    ];
    table
}

fn area_row(area: &str, sums: &[u64], mut days: Vec<i64>) -> Row {
    let base = u64::try_from(days.len()).unwrap_or(u64::MAX);
    let mut cells: Vec<Cell> = sums.iter().copied().map(Cell::count).collect();
    cells.push(Cell::measure(median(&mut days), 1, base));
    Row {
        label: area.to_owned(),
        municipality: None,
        cells,
    }
}

fn median(values: &mut [i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    #[allow(clippy::cast_precision_loss)]
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) as f64 / 2.0
    } else {
        values[mid] as f64
    })
}

/// Board stays per quarter of the year: started, ended, participants on the board, days on
/// the board, and the median length of the stays that ended.
pub fn board(facts: &Facts, year: Year, scope: &Scope, now: DateTime<Utc>) -> Table {
    let mut table = Table::new(&[
        "quarter",
        "stays_started",
        "stays_ended",
        "participants_on_board",
        "days_on_board",
        "median_days_per_ended_stay",
    ]);
    let quarter_bounds = |q: u32| {
        let start = NaiveDate::from_ymd_opt(year.get(), 3 * q + 1, 1);
        let end = if q == 3 {
            NaiveDate::from_ymd_opt(year.get() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(year.get(), 3 * q + 4, 1)
        };
        start.zip(end)
    };
    let mut year_people = BTreeSet::new();
    let mut year_sums = [0u64; 2];
    let mut year_days = 0i64;
    let mut year_lengths = Vec::new();
    for q in 0..4 {
        let Some((start, end)) = quarter_bounds(q) else {
            continue;
        };
        let mut sums = [0u64; 2];
        let mut people = BTreeSet::new();
        let mut days = 0i64;
        let mut lengths = Vec::new();
        for stay in facts.stays.values() {
            let Some(p) = facts.participants.get(&stay.participant_id) else {
                continue;
            };
            if !scope.covers(&p.home_municipality) {
                continue;
            }
            let on = stay.on_at.date_naive();
            let off = stay.off_at.map(|t| t.date_naive());
            if on >= start && on < end {
                sums[0] += 1;
            }
            if let Some(off) = off.filter(|off| *off >= start && *off < end) {
                sums[1] += 1;
                lengths.push((off - on).num_days());
            }
            // Days on the board within the quarter: [max(on, start), min(off or today, end)).
            let until = off.unwrap_or_else(|| now.date_naive()).min(end);
            let from = on.max(start);
            if until > from || (on >= start && on < end) {
                people.insert(stay.participant_id.as_str());
                days += (until - from).num_days().max(0);
            }
        }
        year_sums[0] += sums[0];
        year_sums[1] += sums[1];
        year_days += days;
        year_lengths.extend(lengths.iter().copied());
        year_people.extend(people.iter().copied());
        table.rows.push(board_row(
            format!("Q{}", q + 1),
            sums,
            &people,
            days,
            lengths,
        ));
    }
    table.rows.push(board_row(
        "year".to_owned(),
        year_sums,
        &year_people,
        year_days,
        year_lengths,
    ));
    table.columns_add_up(&[0, 1], &[0, 1, 2, 3], 4);
    table.notes = vec![
        "a stay counts in the quarter it started and the quarter it ended; participants_on_board counts each participant once per quarter (and once in the year)".to_owned(),
        "days_on_board: calendar days on the board within the quarter, stays still open counted to today".to_owned(),
        "status levels over time: the board_levels report".to_owned(),
    ];
    table
}

fn board_row(
    label: String,
    sums: [u64; 2],
    people: &BTreeSet<&str>,
    days: i64,
    mut lengths: Vec<i64>,
) -> Row {
    let participants = u64::try_from(people.len()).unwrap_or(u64::MAX);
    let ended = u64::try_from(lengths.len()).unwrap_or(u64::MAX);
    #[allow(clippy::cast_precision_loss)]
    let days = days as f64;
    Row {
        label,
        municipality: None,
        cells: vec![
            Cell::count(sums[0]),
            Cell::count(sums[1]),
            Cell::count(participants),
            Cell::measure(Some(days), 0, participants),
            Cell::measure(median(&mut lengths), 1, ended),
        ],
    }
}

/// The consultation group per quarter: cases brought by the region and by municipalities,
/// cases advised on in the quarter, meetings held. A municipality sees the cases about its
/// residents (and no meeting count, which covers everyone's cases).
pub fn consultation(facts: &Facts, year: Year, scope: &Scope) -> Table {
    let mut table = Table::new(&[
        "quarter",
        "cases",
        "cases_from_region",
        "cases_from_municipalities",
        "cases_advised",
        "meetings",
    ]);
    let quarter_of = |day: NaiveDate| (day.year() == year.get()).then(|| day.month0() / 3);
    let mut sums = [[0u64; 5]; 4];
    let in_scope: HashMap<&str, &super::consultation::CaseFact> = facts
        .consultation_cases
        .iter()
        .filter(|(_, c)| scope.covers(&c.municipality))
        .map(|(id, c)| (id.as_str(), c))
        .collect();
    for case in in_scope.values() {
        if let Some(q) = quarter_of(case.submitted_at.date_naive()) {
            let row = &mut sums[q as usize];
            row[0] += 1;
            let municipal = case.organisation.len() == 4
                && case.organisation.bytes().all(|b| b.is_ascii_digit());
            row[if municipal { 2 } else { 1 }] += 1;
        }
    }
    for meeting in &facts.consultation_meetings {
        if let Some(q) = quarter_of(meeting.held_on) {
            let row = &mut sums[q as usize];
            let advised: std::collections::BTreeSet<&str> = meeting
                .agenda
                .iter()
                .filter(|a| in_scope.contains_key(a.case_id.as_str()))
                .map(|a| a.case_id.as_str())
                .collect();
            row[3] += u64::try_from(advised.len()).unwrap_or(0);
            if *scope == Scope::Programme {
                row[4] += 1;
            }
        }
    }
    let mut total = [0u64; 5];
    for (q, row) in sums.iter().enumerate() {
        for (t, n) in total.iter_mut().zip(row) {
            *t += n;
        }
        table.rows.push(Row {
            label: format!("Q{}", q + 1),
            municipality: None,
            cells: row.iter().copied().map(Cell::count).collect(),
        });
    }
    table.rows.push(Row {
        label: "year".to_owned(),
        municipality: None,
        cells: total.iter().copied().map(Cell::count).collect(),
    });
    table.columns_add_up(&[0, 1, 2, 3], &[0, 1, 2, 3], 4);
    table.rows_add_up(&[1, 2], 0);
    table.notes = vec![
        "cases are counted in the quarter they were brought, by the organisation that brought them"
            .to_owned(),
        "cases_advised: cases discussed at a meeting in the quarter".to_owned(),
        "meetings: the group's meetings held (programme scope only)".to_owned(),
    ];
    table
}

/// The FACT-fidelity indicators the read model can compute, over the participants enrolled
/// now (meetings and evaluations counted in the year).
pub fn fidelity(facts: &Facts, year: Year, scope: &Scope) -> Table {
    let mut table = Table::new(&["indicator", "value", "participants"]);
    let enrolled: Vec<(&String, _)> = facts
        .participants
        .iter()
        .filter(|(_, p)| p.stage == Stage::Enrolled && scope.covers(&p.home_municipality))
        .collect();
    let n = u64::try_from(enrolled.len()).unwrap_or(u64::MAX);
    let mut caseload: BTreeMap<&str, u64> = BTreeMap::new();
    for (id, _) in &enrolled {
        for staff in facts.case_managers.get(*id).into_iter().flatten() {
            *caseload.entry(staff.as_str()).or_default() += 1;
        }
    }
    let mut plans_of: HashMap<&str, Vec<&super::facts::PlanFact>> = HashMap::new();
    for plan in facts.plans.values() {
        plans_of
            .entry(plan.participant_id.as_str())
            .or_default()
            .push(plan);
    }
    let no_plans = Vec::new();
    let mut with_plan = 0usize;
    let mut to_first_meeting = Vec::new();
    let mut meetings_in_year = 0u64;
    let mut evaluated = 0u64;
    for (id, p) in &enrolled {
        let plans = plans_of.get(id.as_str()).unwrap_or(&no_plans);
        with_plan += usize::from(plans.iter().any(|plan| plan.active));
        let mut first: Option<NaiveDate> = None;
        let mut evaluated_now = false;
        for plan in plans {
            for met in &plan.meetings {
                first = Some(first.map_or(*met, |f| f.min(*met)));
                meetings_in_year += u64::from(met.year() == year.get());
            }
            evaluated_now |= plan.evaluations.iter().any(|at| at.year() == year.get());
        }
        evaluated += u64::from(evaluated_now);
        if let (Some(first), Some(enrolled_on)) = (first, p.enrolled_on) {
            to_first_meeting.push((first - enrolled_on).num_days().max(0));
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let share = |k: usize| (n > 0).then(|| 100.0 * k as f64 / n as f64);
    let managers = u64::try_from(caseload.len()).unwrap_or(u64::MAX);
    let assigned: u64 = caseload.values().sum();
    #[allow(clippy::cast_precision_loss)]
    let rows: Vec<(&str, Cell)> = vec![
        ("participants_enrolled", Cell::count(n)),
        (
            "mean_caseload_per_case_manager",
            Cell::measure(
                (managers > 0).then(|| assigned as f64 / managers as f64),
                1,
                n,
            ),
        ),
        (
            "largest_caseload",
            Cell::measure(caseload.values().max().map(|m| *m as f64), 0, n),
        ),
        (
            "percent_with_active_sip",
            Cell::measure(share(with_plan), 1, n),
        ),
        (
            "median_days_enrolment_to_first_sip_meeting",
            Cell::measure(
                median(&mut to_first_meeting),
                1,
                u64::try_from(to_first_meeting.len()).unwrap_or(u64::MAX),
            ),
        ),
        (
            "sip_meetings_per_participant_in_year",
            Cell::measure((n > 0).then(|| meetings_in_year as f64 / n as f64), 2, n),
        ),
        (
            "percent_with_sip_kollen_in_year",
            Cell::measure(share(usize::try_from(evaluated).unwrap_or(0)), 1, n),
        ),
    ];
    for (label, cell) in rows {
        let base = match cell.value {
            super::Value::Measure { base, .. } => base,
            _ => n,
        };
        table.rows.push(Row {
            label: label.to_owned(),
            municipality: None,
            cells: vec![cell, Cell::count(base)],
        });
    }
    table.notes = vec![
        "over the participants enrolled now; meetings and SIP-kollen evaluations counted in the year".to_owned(),
        "computable from the feeds: caseload per case manager, share with a SIP, time to the first SIP meeting, SIP meeting frequency, SIP-kollen coverage".to_owned(),
        "not computable (not recorded in Samsyn): team staffing and disciplines, shared caseload in daily practice, psychiatrist and peer-specialist time, 24-hour crisis availability, hospital admissions and discharge planning, evidence-based interventions' own fidelity (IPS, IMR), contact frequency in the community".to_owned(),
    ];
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::facts::{ParticipantFact, StayFact};

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
    }

    fn settings() -> ReportSettings {
        ReportSettings {
            programme_municipalities: vec!["1283".into(), "1284".into()],
            ..ReportSettings::default()
        }
    }

    fn enrolled(home: &str, on: NaiveDate) -> ParticipantFact {
        ParticipantFact {
            home_municipality: home.into(),
            stage: Stage::Enrolled,
            referred_at: Some(at(on.year(), on.month(), on.day())),
            reviewed_at: Some(at(on.year(), on.month(), on.day())),
            accepted_at: Some(at(on.year(), on.month(), on.day())),
            enrolled_on: Some(on),
            ..ParticipantFact::default()
        }
    }

    #[test]
    fn a_municipality_sees_its_own_row_as_the_programme_shows_it() {
        let mut facts = Facts::default();
        let day = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        for i in 0..12 {
            facts
                .participants
                .insert(format!("h{i}"), enrolled("1283", day));
        }
        for i in 0..2 {
            facts
                .participants
                .insert(format!("g{i}"), enrolled("1284", day));
        }
        let year = Year::parse(2025).unwrap();
        let now = at(2026, 1, 1);
        let programme = build(
            ReportKind::Recruitment,
            &facts,
            year,
            &Scope::Programme,
            &settings(),
            now,
        );
        let own = build(
            ReportKind::Recruitment,
            &facts,
            year,
            &Scope::Municipality("1283".into()),
            &settings(),
            now,
        );
        assert_eq!(own.rows.len(), 1);
        assert_eq!(own.rows[0], programme.rows[0]);
        // Höganäs's 2 is hidden, and so is Helsingborg's 12 beside it.
        assert_eq!(programme.rendered()[1][5], "x");
        assert_eq!(programme.rendered()[0][5], "x");
        assert_eq!(programme.rendered()[2][5], "14");
    }

    #[test]
    fn board_days_count_within_the_quarter() {
        let mut facts = Facts::default();
        facts.participants.insert(
            "p".into(),
            enrolled("1283", NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()),
        );
        facts.stays.insert(
            "e".into(),
            StayFact {
                participant_id: "p".into(),
                team_id: "t".into(),
                on_at: at(2025, 3, 22),
                off_at: Some(at(2025, 4, 11)),
                levels: Vec::new(),
            },
        );
        let table = board(
            &facts,
            Year::parse(2025).unwrap(),
            &Scope::Programme,
            at(2026, 1, 1),
        );
        // Q1: 22 to 31 March (10 days), Q2: 1 to 10 April (10 days).
        assert_eq!(table.rendered()[0][4], "10");
        assert_eq!(table.rendered()[1][4], "10");
        assert_eq!(table.rendered()[4][4], "20");
    }

    #[test]
    fn board_levels_count_each_participant_at_the_most_acute_level_of_the_month() {
        let mut facts = Facts::default();
        for id in ["p", "q"] {
            facts.participants.insert(
                id.into(),
                enrolled("1283", NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()),
            );
        }
        // p: level 2 from 22 March, level 1 from 5 April, off on 11 April.
        let stay = |who: &str, on, off, levels| StayFact {
            participant_id: who.into(),
            team_id: "t".into(),
            on_at: on,
            off_at: off,
            levels,
        };
        facts.stays.insert(
            "e1".into(),
            stay(
                "p",
                at(2025, 3, 22),
                Some(at(2025, 4, 11)),
                vec![(at(2025, 3, 22), 2), (at(2025, 4, 5), 1)],
            ),
        );
        // q: on from 1 April with no level known, still on.
        facts
            .stays
            .insert("e2".into(), stay("q", at(2025, 4, 1), None, Vec::new()));
        let table = board_levels(
            &facts,
            Year::parse(2025).unwrap(),
            &Scope::Programme,
            at(2025, 6, 15),
        );
        let rows = table.rendered();
        let column = |name: &str| table.columns.iter().position(|c| c == name).unwrap();
        let (on, l1, l2, unknown) = (
            column("participants_on_board"),
            column("level_1"),
            column("level_2"),
            column("level_not_recorded"),
        );
        assert_eq!(rows[1][on], "0", "February");
        assert_eq!((&*rows[2][on], &*rows[2][l2]), ("1", "1"), "March");
        assert_eq!(
            (
                &*rows[3][on],
                &*rows[3][l1],
                &*rows[3][l2],
                &*rows[3][unknown]
            ),
            ("2", "1", "0", "1"),
            "April: p at its most acute, q unknown"
        );
        assert_eq!(
            (&*rows[4][on], &*rows[4][unknown]),
            ("1", "1"),
            "May: q only"
        );
        assert_eq!(rows[6][on], "0", "July: q is counted to today only");
        assert_eq!(rows[12][0], "year");
        assert_eq!((&*rows[12][on], &*rows[12][l1]), ("2", "1"));
    }

    #[test]
    fn sip_kollen_counts_answers_and_a_municipality_sees_its_row_as_the_programme_does() {
        use crate::domain::facts::{EvaluationFact, PlanFact};
        let mut facts = Facts::default();
        let day = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let mut add = |id: String, home: &str, answer: &str| {
            facts.participants.insert(id.clone(), enrolled(home, day));
            facts.plans.insert(
                id.clone(),
                PlanFact {
                    participant_id: id,
                    active: true,
                    created_at: None,
                    needs: Vec::new(),
                    meetings: Vec::new(),
                    evaluations: vec![at(2025, 5, 1)],
                    sip_kollen: vec![EvaluationFact {
                        recorded_at: at(2025, 5, 1),
                        answers: vec![
                            ("took_part".into(), answer.into()),
                            ("plan_helps".into(), "yes".into()),
                        ],
                    }],
                },
            );
        };
        // Helsingborg: 8 yes, 4 no. Höganäs: 2 yes.
        for i in 0..12 {
            add(format!("h{i}"), "1283", if i < 8 { "yes" } else { "no" });
        }
        for i in 0..2 {
            add(format!("g{i}"), "1284", "yes");
        }
        let year = Year::parse(2025).unwrap();
        let now = at(2026, 1, 1);
        let open = sip_kollen(&facts, year, &settings());
        let by_label = |t: &Table| -> HashMap<String, Vec<String>> {
            t.rendered()
                .into_iter()
                .map(|r| (r[0].clone(), r))
                .collect()
        };
        let counts = by_label(&open);
        assert_eq!(counts["1283/took_part"][1..5], ["12", "8", "0", "4"]);
        assert_eq!(counts["1283/took_part"][5], "66.7");
        assert_eq!(counts["1284/took_part"][1..3], ["2", "2"]);
        assert_eq!(counts["total/took_part"][1..5], ["14", "10", "0", "4"]);
        assert_eq!(counts["total/plan_helps"][1..3], ["14", "14"]);
        assert_eq!(counts["total/knows_follow_up"][1], "0");

        let programme = build(
            ReportKind::SipKollen,
            &facts,
            year,
            &Scope::Programme,
            &settings(),
            now,
        );
        let own = build(
            ReportKind::SipKollen,
            &facts,
            year,
            &Scope::Municipality("1283".into()),
            &settings(),
            now,
        );
        let shown = by_label(&programme);
        // Helsingborg's 4 "no" are hidden, and so is at least one cell beside them in that row.
        assert_eq!(shown["1283/took_part"][4], "x");
        assert!(
            shown["1283/took_part"][1..5]
                .iter()
                .filter(|c| *c == "x")
                .count()
                >= 2
        );
        assert_eq!(shown["1284/took_part"][1], "x");
        assert_eq!(own.rows.len(), SIP_KOLLEN_QUESTIONS.len());
        for row in &own.rows {
            assert!(programme.rows.contains(row), "{row:?}");
        }
    }
}
