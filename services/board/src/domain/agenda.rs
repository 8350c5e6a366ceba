//! The morning meeting's agenda, generated from the board.

use chrono::{Days, NaiveDate};

use super::notice::DecisionNotice;
use super::{Action, Entry, ParticipantId};

/// Why an entry is on the agenda.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AgendaReason {
    /// Put on since the team's previous meeting.
    NewEntry,
    /// The next review date has come.
    DueForReview,
    /// An open action is past its due date.
    OverdueActions,
    /// The participation consent was revoked: follow up.
    ParticipationConsentRevoked,
}

/// One participant to bring up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgendaItem {
    /// Why, in a fixed order.
    pub reasons: Vec<AgendaReason>,
    /// The entry.
    pub entry: Entry,
    /// Its overdue actions.
    pub overdue: Vec<Action>,
}

/// The agenda for `on`: entries on the board that are new since `previous_meeting` (or, with
/// none, since the day before), due for review, or with overdue actions; most acute first.
///
/// `entries` are those on the board; entries put on after `on` are left out.
pub fn agenda(
    mut entries: Vec<Entry>,
    on: NaiveDate,
    previous_meeting: Option<NaiveDate>,
) -> Vec<AgendaItem> {
    super::sort_board(&mut entries);
    let new_after = new_after(on, previous_meeting);
    entries
        .into_iter()
        .filter(|e| e.is_on_board() && e.put_on_at.date_naive() <= on)
        .filter_map(|entry| {
            let mut reasons = Vec::new();
            let put_on = entry.put_on_at.date_naive();
            if put_on > new_after {
                reasons.push(AgendaReason::NewEntry);
            }
            if entry.next_review_on.is_some_and(|review| review <= on) {
                reasons.push(AgendaReason::DueForReview);
            }
            let overdue: Vec<Action> = entry
                .actions
                .iter()
                .filter(|a| a.is_overdue(on))
                .cloned()
                .collect();
            if !overdue.is_empty() {
                reasons.push(AgendaReason::OverdueActions);
            }
            if entry.facts.participation_consent_revoked_at.is_some() {
                reasons.push(AgendaReason::ParticipationConsentRevoked);
            }
            (!reasons.is_empty()).then_some(AgendaItem {
                reasons,
                entry,
                overdue,
            })
        })
        .collect()
}

/// With no earlier meeting, "new" means yesterday or today: a morning meeting reviews what
/// came in since the last one.
fn new_after(on: NaiveDate, previous_meeting: Option<NaiveDate>) -> NaiveDate {
    previous_meeting.unwrap_or_else(|| on.checked_sub_days(Days::new(2)).unwrap_or(on))
}

/// The decisions to bring up on `on`: those about participants on the board (`entries`)
/// noted since `previous_meeting` (or, with none, since the day before) and not after `on`,
/// grouped by participant in board order, each participant's oldest first.
pub fn decisions(
    entries: &[Entry],
    notices: Vec<(ParticipantId, DecisionNotice)>,
    on: NaiveDate,
    previous_meeting: Option<NaiveDate>,
) -> Vec<(ParticipantId, Vec<DecisionNotice>)> {
    let new_after = new_after(on, previous_meeting);
    let mut sorted = entries.to_vec();
    super::sort_board(&mut sorted);
    let mut groups: Vec<(ParticipantId, Vec<DecisionNotice>)> = Vec::new();
    for entry in sorted.iter().filter(|e| e.is_on_board()) {
        if groups.iter().any(|(p, _)| *p == entry.participant_id) {
            continue;
        }
        let mut mine: Vec<DecisionNotice> = notices
            .iter()
            .filter(|(p, n)| {
                *p == entry.participant_id
                    && n.noted_at.date_naive() > new_after
                    && n.noted_at.date_naive() <= on
            })
            .map(|(_, n)| n.clone())
            .collect();
        if mine.is_empty() {
            continue;
        }
        mine.sort_by_key(|n| n.noted_at);
        groups.push((entry.participant_id, mine));
    }
    groups
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::super::tests::entry;
    use super::super::*;
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn action(due: &str, done: bool) -> Action {
        let staff = Staff::parse("s1", "SE1", "").unwrap();
        Action {
            id: ActionId::generate(),
            description: ActionDescription::parse("Hembesök").unwrap(),
            owner: staff.clone(),
            due_on: date(due),
            done: done.then(|| (Utc::now(), staff.clone())),
            created_at: Utc::now(),
            created_by: staff,
            meeting_id: None,
        }
    }

    #[test]
    fn reasons_per_entry() {
        let on = date("2026-11-20");
        // (put on, next review, actions, previous meeting, expected reasons)
        type Case = (
            &'static str,
            Option<&'static str>,
            Vec<Action>,
            Option<&'static str>,
            Vec<AgendaReason>,
        );
        let cases: Vec<Case> = vec![
            (
                "2026-11-19T09:00:00Z",
                None,
                vec![],
                None,
                vec![AgendaReason::NewEntry],
            ),
            ("2026-11-10T09:00:00Z", None, vec![], None, vec![]),
            (
                "2026-11-18T09:00:00Z",
                None,
                vec![],
                Some("2026-11-17"),
                vec![AgendaReason::NewEntry],
            ),
            (
                "2026-11-18T09:00:00Z",
                None,
                vec![],
                Some("2026-11-19"),
                vec![],
            ),
            (
                "2026-11-10T09:00:00Z",
                Some("2026-11-20"),
                vec![],
                None,
                vec![AgendaReason::DueForReview],
            ),
            (
                "2026-11-10T09:00:00Z",
                Some("2026-11-21"),
                vec![],
                None,
                vec![],
            ),
            (
                "2026-11-10T09:00:00Z",
                None,
                vec![action("2026-11-19", false)],
                None,
                vec![AgendaReason::OverdueActions],
            ),
            (
                "2026-11-10T09:00:00Z",
                None,
                vec![action("2026-11-20", false)],
                None,
                vec![],
            ),
            (
                "2026-11-10T09:00:00Z",
                None,
                vec![action("2026-11-01", true)],
                None,
                vec![],
            ),
            ("2026-11-21T09:00:00Z", None, vec![], None, vec![]),
            (
                "2026-11-20T07:00:00Z",
                Some("2026-11-19"),
                vec![action("2026-11-02", false), action("2026-11-03", true)],
                None,
                vec![
                    AgendaReason::NewEntry,
                    AgendaReason::DueForReview,
                    AgendaReason::OverdueActions,
                ],
            ),
        ];
        for (i, (put_on, review, actions, previous, expected)) in cases.into_iter().enumerate() {
            let mut e = entry(put_on, 1);
            e.next_review_on = review.map(date);
            e.actions = actions;
            let items = agenda(vec![e], on, previous.map(date));
            let reasons = items.first().map(|i| i.reasons.clone()).unwrap_or_default();
            assert_eq!(reasons, expected, "case {i}");
            if let Some(item) = items.first() {
                assert_eq!(
                    item.overdue.len(),
                    usize::from(expected.contains(&AgendaReason::OverdueActions))
                );
            }
        }
    }

    #[test]
    fn most_acute_first_and_taken_off_left_out() {
        let on = date("2026-11-20");
        let mut yellow = entry("2026-11-19T09:00:00Z", 2);
        yellow.reason = Reason::parse("gul").unwrap();
        let red = entry("2026-11-20T06:00:00Z", 1);
        let mut gone = entry("2026-11-19T09:00:00Z", 1);
        gone.taken_off = Some(TakenOff {
            at: Utc::now(),
            by: gone.put_on_by.clone(),
            reason: Reason::parse("Stabil").unwrap(),
        });
        let items = agenda(vec![yellow.clone(), gone, red.clone()], on, None);
        let ids: Vec<_> = items.iter().map(|i| i.entry.id).collect();
        assert_eq!(ids, [red.id, yellow.id]);
    }

    fn notice(noted: &str) -> DecisionNotice {
        DecisionNotice {
            kind: super::super::notice::NoticeKind::Recorded,
            external_decision_id: "BES-1".into(),
            organisation_id: "1283".into(),
            outcome: 1,
            version: 1,
            change: 0,
            intervention_id: String::new(),
            catalogue_code: String::new(),
            inbox_id: String::new(),
            park_reason: 0,
            noted_at: chrono::DateTime::parse_from_rfc3339(noted)
                .unwrap()
                .to_utc(),
        }
    }

    #[test]
    fn decisions_since_the_previous_meeting_of_participants_on_the_board() {
        let on = date("2026-11-20");
        let a = entry("2026-11-01T09:00:00Z", 2);
        let b = entry("2026-11-01T09:00:00Z", 1);
        let stranger = ParticipantId::generate();
        let notices = vec![
            (a.participant_id, notice("2026-11-19T15:00:00Z")),
            (a.participant_id, notice("2026-11-18T15:00:00Z")),
            (a.participant_id, notice("2026-11-10T15:00:00Z")),
            (b.participant_id, notice("2026-11-21T08:00:00Z")),
            (stranger, notice("2026-11-19T15:00:00Z")),
        ];
        let found = decisions(&[a.clone(), b.clone()], notices.clone(), on, None);
        assert_eq!(
            found.len(),
            1,
            "only a's, not after the day, not off the board"
        );
        assert_eq!(found[0].0, a.participant_id);
        assert_eq!(
            found[0].1.len(),
            1,
            "since the day before without a meeting"
        );
        let found = decisions(&[a.clone(), b], notices, on, Some(date("2026-11-17")));
        let times: Vec<_> = found[0].1.iter().map(|n| n.noted_at.to_rfc3339()).collect();
        assert_eq!(
            times,
            ["2026-11-18T15:00:00+00:00", "2026-11-19T15:00:00+00:00"],
            "since the last meeting, oldest first"
        );
    }

    #[test]
    fn a_revoked_participation_consent_is_on_the_agenda_until_it_counts_again() {
        let on = date("2026-11-20");
        let mut flagged = entry("2026-11-01T09:00:00Z", 2);
        flagged.facts.participation_consent_revoked_at = Some(Utc::now());
        let items = agenda(vec![flagged.clone()], on, None);
        assert_eq!(
            items[0].reasons,
            [AgendaReason::ParticipationConsentRevoked]
        );
        flagged.facts.participation_consent_revoked_at = None;
        assert!(agenda(vec![flagged], on, None).is_empty());
    }
}
