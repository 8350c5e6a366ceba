//! The morning meeting's agenda, generated from the board.

use chrono::{Days, NaiveDate};

use super::{Action, Entry};

/// Why an entry is on the agenda.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AgendaReason {
    /// Put on since the team's previous meeting.
    NewEntry,
    /// The next review date has come.
    DueForReview,
    /// An open action is past its due date.
    OverdueActions,
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
    // With no earlier meeting, "new" means put on yesterday or today: a morning meeting
    // reviews what came in since the last one.
    let new_after =
        previous_meeting.unwrap_or_else(|| on.checked_sub_days(Days::new(2)).unwrap_or(on));
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
            (!reasons.is_empty()).then_some(AgendaItem {
                reasons,
                entry,
                overdue,
            })
        })
        .collect()
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
}
